"""``mco plugin doc`` text for a DDL, line for line as Ruby MCollective 2.12.5 prints it.

Ruby renders ``/etc/mcollective/rpc-help.erb`` (agents), ``data-help.erb``,
``discovery-help.erb`` or just ``metadata-help.erb`` (every other kind), values through
``to_s`` (so a Regexp validation reads ``(?-mix:...)`` and a Symbol type ``string``),
actions, inputs and outputs sorted by name, and the ``usage`` text wrapped by
``Util.align_text``.  :func:`plugin_doc` returns exactly what ``mco plugin doc
<kind>/<name>`` writes to stdout (``puts`` adds the final newline if missing).
"""

from __future__ import annotations

from collections.abc import Mapping

from mcollective_py.ddl.model import DDL, AgentDDL, DataDDL, DiscoveryDDL, Input, Output
from mcollective_py.ruby import values as rv

__all__ = ["align_text", "plugin_doc"]

_CAPABILITY_TEXT = (
    ("Filter based on configuration management classes", "classes"),
    ("Filter based on system facts", "facts"),
    ("Filter based on mcollective identity", "identity"),
    ("Filter based on mcollective agents", "agents"),
    ("Compound filters combining classes and facts", "compound"),
)


def align_text(text: str, console_cols: int = 80, preamble: int = 5) -> str:
    """``MCollective::Util.align_text``: indent by ``preamble`` and wrap at ``console_cols``.

    ``console_cols`` is the terminal width (Ruby uses 80 when stdout is not a TTY).
    Long lines are cut at the last space before the limit and the rest is carried to
    the next line, keeping that line's indentation.
    """
    cols = console_cols - preamble
    if cols <= 0:
        return text
    lines = text.split("\n")
    while lines and lines[-1] == "":  # Ruby's String#split drops trailing empty fields
        lines.pop()
    piece = ""
    whitespace = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        whitespace = len(line) - len(line.lstrip(" "))
        if line == "":
            line = " " * whitespace
        if piece:
            if whitespace >= cols:
                whitespace = 0
            if i + 1 < len(lines) and line == " " * whitespace:
                lines.insert(i + 1, "")
            line = line[:whitespace] + piece + " " + line[whitespace:]
        piece = ""
        if len(line) > cols + preamble:
            cut = line.rfind(" ", 0, cols + 1)
            if cut >= 0:
                piece = line[cut:].lstrip()
                line = line[:cut]
        if piece and i + 1 >= len(lines):
            lines.append(" " * whitespace + piece)
            piece = ""
        lines[i] = " " * preamble + line
        i += 1
    return "\n".join(lines)


def _metadata_text(ddl: DDL, columns: int) -> str:
    meta = ddl.metadata
    name = rv.to_s(meta.name)
    out = [
        f"{name}\n",
        "=" * len(meta.name) + "\n",
        "\n",
        f"{rv.to_s(meta.description)}\n",
        "\n",
        f"      Author: {rv.to_s(meta.author)}\n",
        f"     Version: {rv.to_s(meta.version)}\n",
        f"     License: {rv.to_s(meta.license)}\n",
        f"     Timeout: {rv.to_s(meta.timeout)}\n",
        f"   Home Page: {rv.to_s(meta.url)}\n",
    ]
    requirement = ddl.requirements.get("mcollective")
    if requirement:
        out.append("\n")
        out.append(f"   Requires MCollective {requirement} or newer\n")
    if ddl.usage != "":
        out.append("\n")
        out.append(align_text(ddl.usage, columns, 3) + "\n")
    return "".join(out)


def _sorted(table: Mapping[str, Input] | Mapping[str, Output]) -> list[str]:
    return sorted(table, key=lambda k: str.__str__(k))


def _input_lines(item: Input, out: list[str]) -> None:
    out.append(f"              Description: {rv.to_s(item.description)}\n")
    out.append(f"                   Prompt: {rv.to_s(item.prompt)}\n")
    out.append(f"                     Type: {item.type}\n")


def _input_details(item: Input, out: list[str]) -> None:
    if item.type == "string":
        validation = (
            list(item.validation) if isinstance(item.validation, tuple) else item.validation
        )
        out.append(f"               Validation: {rv.to_s(validation)}\n")
        out.append(f"                   Length: {rv.to_s(item.maxlength)}\n")
    elif item.type == "list":
        out.append(f"             Valid Values: {rv.join(list(item.list or ()), ', ')}\n")
    if rv.truthy(item.default):
        out.append(f"            Default Value: {rv.to_s(item.default)}\n")


def _agent_text(ddl: AgentDDL) -> str:
    names = sorted(ddl.actions)
    out = ["ACTIONS:\n", "========\n", f"   {', '.join(names)}\n", "\n"]
    for name in names:
        action = ddl.actions[name]
        out.append(f"   {name} action:\n")
        out.append("   " + "-" * (len(name) + 8) + "\n")
        out.append(f"       {rv.to_s(action.description)}\n")
        out.append("\n")
        out.append("       INPUT:\n")
        if action.inputs:
            for key in _sorted(action.inputs):
                item = action.inputs[key]
                out.append(f"           {item.name}:\n")
                _input_lines(item, out)
                out.append(
                    f"                 Optional: {'true' if rv.truthy(item.optional) else 'false'}\n"
                )
                _input_details(item, out)
                out.append("\n")
        else:
            out.append("          This action does not have any inputs\n")
        out.append("\n")
        out.append("       OUTPUT:\n")
        for key in _sorted(action.outputs):
            output = action.outputs[key]
            out.append(f"           {output.name}:\n")
            out.append(f"              Description: {rv.to_s(output.description)}\n")
            out.append(f"               Display As: {rv.to_s(output.display_as)}\n")
            if rv.truthy(output.default):
                out.append(f"            Default Value: {rv.to_s(output.default)}\n")
            out.append("\n")
    return "".join(out)


def _data_text(ddl: DataDDL) -> str:
    out = ["QUERY FUNCTION INPUT:\n", "\n"]
    query = ddl.query
    item = query.inputs.get("query") if query else None
    if item is not None:
        _input_lines(item, out)
        _input_details(item, out)
    else:
        out.append("    This plugin does not take any input\n")
    out.append("\n")
    out.append("QUERY FUNCTION OUTPUT:\n")
    out.append("\n")
    if query is not None:
        for key in _sorted(query.outputs):
            output = query.outputs[key]
            out.append(f"           {output.name}:\n")
            out.append(f"              Description: {rv.to_s(output.description)}\n")
            out.append(f"               Display As: {rv.to_s(output.display_as)}\n")
            out.append("\n")
    return "".join(out)


def _discovery_text(ddl: DiscoveryDDL) -> str:
    caps = ddl.capabilities or ()
    out = ["DISCOVERY METHOD CAPABILITIES:\n"]
    for text, cap in _CAPABILITY_TEXT:
        if cap in caps:
            out.append(f"      {text}\n")
    out.append("\n")
    return "".join(out)


def plugin_doc(ddl: DDL, *, columns: int = 80) -> str:
    """The text ``mco plugin doc <kind>/<name>`` prints for ``ddl``.

    ``columns`` is the terminal width used to wrap the ``usage`` text (Ruby: 80 when
    stdout is not a TTY, else the terminal's width).  Pure: reads nothing from disk.
    """
    meta = _metadata_text(ddl, columns)
    if isinstance(ddl, AgentDDL):
        text = meta + "\n" + _agent_text(ddl)
    elif isinstance(ddl, DataDDL):
        text = meta + "\n" + _data_text(ddl)
    elif isinstance(ddl, DiscoveryDDL):
        text = meta + "\n" + _discovery_text(ddl)
    else:
        text = meta
    return text if text.endswith("\n") else text + "\n"
