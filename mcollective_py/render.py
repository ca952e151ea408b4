"""Text output laid out exactly like Ruby ``mco``'s, as pure functions returning strings.

Nothing here prints: ``cli/`` writes what these return.  The layouts follow MCollective
2.12.5 (``rpc/helpers.rb``, ``rpc/stats.rb``, the ping/find/facts/inventory applications),
including their quirks, because operators diff our output against ``mco``'s:

* values that are not Strings are shown with Ruby's ``pretty_inspect`` (our
  :func:`pretty_inspect`: Ruby's ``inspect`` syntax, 79-column wrapping);
* result keys are sorted, labels right-aligned to the longest label + 3 spaces;
* in ``-v`` mode the lines of a multi-line inspect are run together, as Ruby does.

Colours are ANSI escapes, on when ``color`` is true (``mco`` colours even without a TTY).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .results import NodeReply, PingReply, Results
from .rpc import StatusCode
from .ruby.inspect import CUT_MARK, DEFAULT_BUDGET, Budget, inspect, is_hash
from .rubytypes import AsciiString, EncodedString, Symbol, float_to_s

# ---------------------------------------------------------------- colours
_COLORS = {
    "red": "\033[31m",
    "green": "\033[32m",
    "yellow": "\033[33m",
    "bold": "\033[1m",
    "reset": "\033[0m",
}


def colorize(code: str, text: Any, color: bool = True) -> str:
    """``Util.colorize``: wrap ``text`` in an ANSI colour and reset, or leave it plain."""
    if not color:
        return str(text)
    return f"{_COLORS[code]}{text}{_COLORS['reset']}"


# ---------------------------------------------------------------- Ruby pretty_inspect
# A small Wadler-style pretty printer with Ruby PP's document shapes:
#   Array: group(1, "[", "]") { a, <breakable> b }
#   Hash:  group(1, "{", "}") { group { k "=>" group(1) { <breakable ""> v } }, <breakable> ... }


@dataclass(frozen=True)
class _Text:
    s: str


@dataclass(frozen=True)
class _Break:
    sep: str = " "


@dataclass(frozen=True)
class _Group:
    indent: int
    parts: tuple[Any, ...]


class _DocBuilder:
    """Builds the document of a value, stopping once the inspect budget is spent.

    The budget is counted while walking (values visited, characters of text), so a value
    built from shared references costs time in the budget, not in its expanded size.
    """

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.nodes = 0
        self.chars = 0
        self.cut = False

    def _text(self, s: str) -> _Text:
        self.chars += len(s)
        if self.chars > self.budget.chars:
            self.cut = True
            return _Text(s[: max(0, len(s) - (self.chars - self.budget.chars))])
        return _Text(s)

    def doc(self, value: Any) -> Any:
        self.nodes += 1
        if self.cut or self.nodes > self.budget.nodes:
            self.cut = True
            return _Text("")
        if isinstance(value, (list, tuple)) and value:
            parts: list[Any] = [self._text("[")]
            for i, v in enumerate(value):
                if self.cut:
                    break
                if i:
                    parts += [self._text(","), _Break()]
                parts.append(self.doc(v))
            parts.append(self._text("]"))
            return _Group(1, tuple(parts))
        if is_hash(value) and value:
            parts = [self._text("{")]
            for i, (k, v) in enumerate(value.items()):
                if self.cut:
                    break
                if i:
                    parts += [self._text(","), _Break()]
                key = self.doc(k)
                arrow = self._text("=>")
                parts.append(_Group(0, (key, arrow, _Group(1, (_Break(""), self.doc(v))))))
            parts.append(self._text("}"))
            return _Group(1, tuple(parts))
        if isinstance(value, str) and not isinstance(value, Symbol):
            lines = re.findall(r"[^\n]*\n|[^\n]+", str.__str__(value))  # Ruby's String#lines
            if len(lines) > 1:  # Ruby's String#pretty_print: "a\n" + "b"
                parts = []
                for i, line in enumerate(lines):
                    if self.cut:
                        break
                    if i:
                        parts += [self._text(" +"), _Break()]
                    parts.append(self._text(inspect(line)))
                return _Group(0, tuple(parts))
        return self._text(inspect(value))


def _flat_width(doc: Any) -> int:
    if isinstance(doc, _Text):
        return len(doc.s)
    if isinstance(doc, _Break):
        return len(doc.sep)
    return sum(_flat_width(p) for p in doc.parts)


def pretty_inspect(value: Any, width: int = 79, budget: Budget = DEFAULT_BUDGET) -> str:
    """Ruby's ``pretty_inspect`` without the trailing newline (``PP.pp`` into a String).

    Stops once ``budget`` is spent and ends with :data:`~mcollective_py.ruby.inspect.CUT_MARK`.
    """
    out: list[str] = []
    col = 0
    builder = _DocBuilder(budget)
    root = builder.doc(value)
    # stack items: (indent, flat?, doc); processed left to right
    stack: list[tuple[int, bool, Any]] = [(0, False, _Group(0, (root,)))]

    def fits(rest_width: int, items: list[tuple[int, bool, Any]]) -> bool:
        # Does everything up to the next possible line break fit in rest_width?
        w = rest_width
        work = list(items)
        while work and w >= 0:
            ind, flat, d = work.pop()
            if isinstance(d, _Text):
                w -= len(d.s)
            elif isinstance(d, _Break):
                if not flat:
                    return True
                w -= len(d.sep)
            else:
                for p in reversed(d.parts):
                    work.append((ind + d.indent, flat, p))
        return w >= 0

    while stack:
        ind, flat, d = stack.pop()
        if isinstance(d, _Text):
            out.append(d.s)
            col += len(d.s)
        elif isinstance(d, _Break):
            if flat:
                out.append(d.sep)
                col += len(d.sep)
            else:
                out.append("\n" + " " * ind)
                col = ind
        else:
            if flat:
                for p in reversed(d.parts):
                    stack.append((ind + d.indent, True, p))
            else:
                trial = [(ind + d.indent, True, p) for p in reversed(d.parts)]
                as_flat = fits(width - col, stack + trial)
                for p in reversed(d.parts):
                    stack.append((ind + d.indent, as_flat, p))
    return "".join(out) + (CUT_MARK if builder.cut else "")


def display_value(value: Any) -> str:
    """How ``mco`` shows a value after a label: Strings raw, everything else pretty_inspect
    (Integers too: 2.12.5 only prints String and Float-free ``Numeric`` instances raw)."""
    if isinstance(value, (str, bytes)) and not isinstance(value, Symbol):
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str.__str__(value)
    return pretty_inspect(value)


# ---------------------------------------------------------------- rpc results
_STATUS_COLORS = {1: "red", 2: "yellow", 3: "yellow", 4: "yellow", 5: "red"}


def status_text(code: int, color: bool) -> str:
    if code == 0 or code not in _STATUS_COLORS:
        return ""
    return colorize(_STATUS_COLORS[code], StatusCode(code).label, color)


def text_for_result(
    reply: NodeReply, labels: Mapping[str, str] | None = None, *, color: bool = True
) -> str:
    """One node's block, as ``RPC::Helpers.text_for_result`` lays it out.

    ``labels`` maps output keys to their DDL ``display_as``; keys without one show their name.
    """
    labels = labels or {}
    text = "%-40s %s\n" % (reply.sender, status_text(reply.statuscode, color))
    if reply.statusmsg != "OK":
        text += "   %s\n" % colorize("yellow", reply.statusmsg, color)
    if reply.statuscode == 0:
        data = reply.data
        if data:
            names = {k: labels.get(k, k) for k in data}
            longest = max(len(n) for n in names.values())
            for k in sorted(data):
                label = names[k]
                padding = longest - len(label) + 3
                text += " " * padding + f"{label}:"
                v = data[k]
                if isinstance(v, (str, bytes)) and not isinstance(v, Symbol):
                    lines = display_value(v).split("\n")
                    lines = lines if lines != [""] else []
                    if not lines:
                        text += "\n"
                    for i, line in enumerate(lines):
                        pad = " " if i == 0 else " " * (padding + len(label) + 2)
                        text += f"{pad}{line}\n"
                else:
                    joiner = "\n" + " " * (longest + 5)
                    text += " " + joiner.join(pretty_inspect(v).split("\n")) + "\n"
    return text + "\n"


def verbose_text_for_result(reply: NodeReply) -> str:
    """``-v`` layout (``old_rpcresults``): sender, statusmsg, then the data's inspect."""
    text = "%-40s: %s\n" % (reply.sender, reply.statusmsg)
    if reply.statuscode <= 1:
        data = {Symbol(k): v for k, v in reply.data.items()}
        for line in pretty_inspect(data).split("\n"):
            text += f"    {line}"
        text += "\n\n"
    elif reply.statuscode not in (2, 3, 4):
        text += "\n\n"
    return text


def should_display(code: int, display: str) -> bool:
    """``display`` is the DDL's ``:ok``/``:failed``/``:always`` (or ``--display`` ok|failed|all)."""
    if display == "ok":
        return code == 0
    if display in ("always", "all"):
        return True
    return code > 0


def rpc_results_text(
    results: Results,
    *,
    display: str = "failed",
    labels: Mapping[str, str] | None = None,
    verbose: bool = False,
    color: bool = True,
) -> str:
    """What ``printrpc`` prints for a call: the blocks of the shown replies, wrapped in
    blank lines (``"\\n%s\\n"``)."""
    if verbose:
        body = "".join(verbose_text_for_result(r) for r in results.replies)
    else:
        body = "".join(
            text_for_result(r, labels, color=color)
            for r in results.replies
            if should_display(r.statuscode, display)
        )
    return f"\n{body}\n"


def _node_columns(nodes: Sequence[str]) -> str:
    """Ruby's ``No response from:`` table: sorted names in columns of at least 30, ≤ 90 wide."""
    size = max(max(len(n) for n in nodes), 30)
    per_line = max(90 // size, 1)
    srt = sorted(nodes)
    out = ""
    for i in range(0, len(srt), per_line):
        chunk = srt[i : i + per_line]
        chunk += [""] * (per_line - len(chunk))
        out += "   " + "".join(f" {c:<{size}}" for c in chunk) + "\n"
    return out


def rpc_stats_text(
    results: Results,
    *,
    caption: str = "rpc stats",
    verbose: bool = False,
    color: bool = True,
    aggregates: str = "",
) -> str:
    """``RPC::Stats#report``: the summary (or the ``-v`` stats block), then the nodes that did
    not answer or were not expected.  Joined like Ruby's array of lines; print with
    :func:`puts`."""
    st = results.stats
    ok, failed = len(results.ok), len(results.failed)
    discovered, responses = len(results.discovered), len(results.replies)
    parts: list[str] = [aggregates if aggregates else ""]
    if verbose:
        parts.append(colorize("yellow", f"---- {caption} ----", color))
        c = "red" if responses < discovered else "reset"
        parts.append(
            "           Nodes: %s / %s"
            % (colorize(c, discovered, color), colorize(c, responses, color))
        )
        parts.append(
            "     Pass / Fail: %s / %s"
            % (colorize("reset", ok, color), colorize("reset", failed, color))
        )
        parts.append("      Start Time: %s" % ruby_time(st.start_time))
        parts.append("  Discovery Time: %.2fms" % (st.discovery_time * 1000))
        parts.append("      Agent Time: %.2fms" % (st.block_time * 1000))
        parts.append("      Total Time: %.2fms" % (st.total_time * 1000))
    else:
        c = "red" if responses < discovered else "green"
        parts.append(
            "Finished processing %s / %s hosts in %.2f ms"
            % (colorize(c, responses, color), colorize(c, discovered, color), st.block_time * 1000)
        )
    parts.append("")
    for title, nodes in (
        ("No response from:", results.no_response),
        ("Unexpected response from:", results.unexpected),
    ):
        if nodes:
            parts += ["", colorize("red", title, color) + "\n\n" + _node_columns(nodes)]
    parts.append("")
    return "\n".join(parts)


def puts(text: str) -> str:
    """Ruby ``puts``: add a newline unless the text already ends with one."""
    return text if text.endswith("\n") else text + "\n"


def ruby_time(epoch: float) -> str:
    """Ruby's ``Time#to_s`` in the local zone: ``2026-11-26 11:03:53 +0000``."""
    t = _dt.datetime.fromtimestamp(epoch).astimezone()
    return t.strftime("%Y-%m-%d %H:%M:%S %z")


def progress(current: int, total: int, width: int = 0, color: bool = True, spin: int = 0) -> str:
    """One progress update: ``\\r3 / 5`` off a terminal (width 0), else the twirl bar."""
    if width <= 0:
        return f"\r{current} / {total}"
    twirl = "|/-\\|/-\\"
    mark = (
        colorize("green", "*", color)
        if current == total
        else colorize("red", twirl[spin % 8], color)
    )
    dashes = round((current / total) * width) if total else width
    return f"\r {mark} [ " + "=" * dashes + ">" + " " * (width - dashes) + f" ] {current} / {total}"


def progress_width(columns: int) -> int:
    """The twirl bar's width for a terminal of ``columns`` (Ruby: cols-22, capped at 60)."""
    cols = columns - 22
    if cols <= 0:
        return 0
    return min(cols, 60)


# ---------------------------------------------------------------- ping / find / facts / inventory
def ping_line(sender: str, ms: float) -> str:
    return "%-40s time=%.2f ms" % (sender, ms)


def ping_summary(replies: Sequence[PingReply]) -> str:
    """The block after the per-node lines (starts with the two blank lines)."""
    text = "\n\n---- ping statistics ----\n"
    if replies:
        times = [r.time_ms for r in replies]
        avg = sum(times) / len(times)
        text += "%d replies max: %.2f min: %.2f avg: %.2f \n" % (
            len(times),
            max(times),
            min(times),
            avg,
        )
    else:
        text += "No responses received\n"
    return text


def rejected_text(reasons: Sequence[str], count: int | None = None, *, show: int = 10) -> str:
    """``-v``: how many replies were refused as forged or undecodable (``count``, default
    ``len(reasons)``) and why, one reason a line (the first ``show``); empty for none."""
    n = len(reasons) if count is None else count
    if not n:
        return ""
    text = f"Rejected {n} {'reply' if n == 1 else 'replies'} (failed the security check or did not decode):\n"
    text += "".join(f"  {r}\n" for r in reasons[:show])
    if n > min(show, len(reasons)):
        text += f"  ... and {n - min(show, len(reasons))} more\n"
    return text


def facts_text(fact: str, values: Mapping[str, Sequence[str]], *, verbose: bool = False) -> str:
    """``mco facts FACT``: each value and how many nodes have it (``-v``: which nodes)."""
    if not values:
        return f"No values found for fact {fact}\n"
    size = max(max(len(k) for k in values), 40)
    out = [f"Report for fact: {fact}\n\n"]
    for k in sorted(values):
        out.append(f"        {k:<{size}} found {len(values[k])} times\n")
        if verbose:
            out.append("\n")
            out += [f"            {n}\n" for n in sorted(values[k])]
            out.append("\n")
    return "".join(out)


def fact_value_text(value: Any) -> str:
    """How ``mco facts`` groups a value: Ruby ``to_s`` (Strings raw, others inspect)."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, float):
        return float_to_s(value)
    if isinstance(value, (dict, list)):
        return inspect(value)
    return "" if value is None else inspect(value)


def inventory_text(node: str, stats: Mapping[str, Any], inv: Mapping[str, Any]) -> str:
    """``mco inventory NODE`` from ``daemon_stats`` and ``inventory`` reply data."""
    times = stats.get("times") or {}
    tget: Callable[[str], Any] = (
        (lambda k: times.get(k)) if isinstance(times, dict) else (lambda k: None)
    )
    lines = [f"Inventory for {node}:", "", "   Server Statistics:"]
    lines.append(f"                      Version: {_s(stats.get('version'))}")
    start = stats.get("starttime")
    lines.append(
        f"                   Start Time: {ruby_time(start) if isinstance(start, (int, float)) else _s(start)}"
    )
    lines.append(f"                  Config File: {_s(stats.get('configfile'))}")
    if "collectives" in inv:
        lines.append(
            f"                  Collectives: {', '.join(map(_s, inv.get('collectives') or []))}"
        )
    if "main_collective" in inv:
        lines.append(f"              Main Collective: {_s(inv.get('main_collective'))}")
    lines.append(f"                   Process ID: {_s(stats.get('pid'))}")
    lines.append(f"               Total Messages: {_s(stats.get('total'))}")
    lines.append(f"      Messages Passed Filters: {_s(stats.get('passed'))}")
    lines.append(f"            Messages Filtered: {_s(stats.get('filtered'))}")
    lines.append(f"             Expired Messages: {_s(stats.get('ttlexpired'))}")
    lines.append(f"                 Replies Sent: {_s(stats.get('replies'))}")
    lines.append(f"         Total Processor Time: {_s(tget('utime'))} seconds")
    lines.append(f"                  System Time: {_s(tget('stime'))} seconds")
    lines += ["", "   Agents:"]
    agents = sorted(map(_s, inv.get("agents") or []))
    lines += _groups_of_3(agents) if agents else ["      No agents installed"]
    lines += ["", "   Data Plugins:"]
    plugins = sorted(map(_s, inv.get("data_plugins") or []))
    lines += (
        _groups_of_3([p.replace("_data", "") for p in plugins])
        if plugins
        else ["      No data plugins installed"]
    )
    lines += ["", "   Configuration Management Classes:"]
    classes = sorted(map(_s, inv.get("classes") or []))
    if classes:
        size = max(max(len(c) for c in classes), 30)
        per = max(90 // size, 1)
        for i in range(0, len(classes), per):
            chunk = classes[i : i + per]
            chunk += [""] * (per - len(chunk))
            lines.append("   " + "".join(f" {c:<{size}}" for c in chunk))
    else:
        lines.append("      No classes applied")
    lines += ["", "   Facts:"]
    facts = inv.get("facts") or {}
    if isinstance(facts, dict) and facts:
        for k in sorted(facts, key=str):
            lines.append(f"      {_s(k)} => {fact_value_text(facts[k])}")
    else:
        lines.append("      No facts known")
    return "\n".join(lines) + "\n"


def _groups_of_3(items: Sequence[str]) -> list[str]:
    out = []
    for i in range(0, len(items), 3):
        chunk = list(items[i : i + 3]) + [""] * (3 - len(items[i : i + 3]))
        out.append("      %-15s %-15s %-15s" % tuple(chunk))
    return out


def _s(v: Any) -> str:
    """Ruby string interpolation (``to_s``) of a value."""
    if v is None:
        return ""
    if isinstance(v, (str, AsciiString, EncodedString)):
        return str.__str__(v)
    if isinstance(v, float):
        return float_to_s(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return inspect(v) if isinstance(v, (list, dict)) else str(v)
