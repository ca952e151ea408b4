"""Our DDL model rebuilt as the structure Ruby's DDL classes hold, tagged for JSON.

``ruby_ddl_dump.rb`` prints what Ruby loaded with the same tagging, so the two compare
with ``==``: Symbols are ``{"sym": s}``, Floats ``{"float": Float#to_s}``, Regexps
``{"re": source, "opts": n}``, Hashes ``{"hash": [[k, v], ...]}`` in insertion order.
"""

from __future__ import annotations

from typing import Any

from mcollective_py.ddl.model import DDL, AgentDDL, DataDDL, DiscoveryDDL, Input, Output
from mcollective_py.ruby.values import float_to_s
from mcollective_py.rubytypes import Regexp, Symbol


def tag(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return {"float": float_to_s(value)}
    if isinstance(value, Symbol):
        return {"sym": str.__str__(value)}
    if isinstance(value, str):
        return value
    if isinstance(value, Regexp):
        return {"re": value.source, "opts": value.options}
    if isinstance(value, (list, tuple)):
        return [tag(v) for v in value]
    if isinstance(value, dict):
        return {"hash": [[tag(k), tag(v)] for k, v in value.items()]}
    raise TypeError(value)


def _h(*pairs: tuple[str, Any]) -> dict[str, Any]:
    return {"hash": [[{"sym": k}, v] for k, v in pairs]}


def _input(item: Input) -> Any:
    pairs = [
        ("prompt", tag(item.prompt)),
        ("description", tag(item.description)),
        ("type", {"sym": item.type}),
        ("default", tag(item.default)),
        ("optional", tag(item.optional)),
    ]
    if item.type == "string":
        pairs += [("validation", tag(item.validation)), ("maxlength", tag(item.maxlength))]
    elif item.type == "list":
        pairs.append(("list", tag(item.list)))
    return _h(*pairs)


def _output(item: Output) -> Any:
    return _h(
        ("description", tag(item.description)),
        ("display_as", tag(item.display_as)),
        ("default", tag(item.default)),
    )


def _table(items: dict[str, Any], convert: Any) -> Any:
    return {"hash": [[tag(item.key), convert(item)] for item in items.values()]}


def entities(ddl: DDL) -> Any:
    if isinstance(ddl, AgentDDL):
        out = []
        for action in ddl.actions.values():
            pairs: list[tuple[str, Any]] = [
                ("action", tag(action.name)),
                ("input", _table(dict(action.inputs), _input)),
                ("output", _table(dict(action.outputs), _output)),
                ("display", {"sym": action.display}),
                ("description", tag(action.description)),
            ]
            if action.aggregates is not None:
                calls = []
                for call in action.aggregates:
                    parts = [("function", {"sym": call.function}), ("args", tag(list(call.args)))]
                    if call.format is not None:
                        parts.append(("format", tag(call.format)))
                    calls.append(_h(*parts))
                pairs.append(("aggregate", calls))
            out.append([tag(action.name), _h(*pairs)])
        return {"hash": out}
    if isinstance(ddl, DataDDL):
        if ddl.query is None:
            return {"hash": []}
        query = _h(
            ("description", tag(ddl.query.description)),
            ("input", _table(dict(ddl.query.inputs), _input)),
            ("output", _table(dict(ddl.query.outputs), _output)),
        )
        return {"hash": [[{"sym": "data"}, query]]}
    if isinstance(ddl, DiscoveryDDL):
        if ddl.capabilities is None:
            return {"hash": []}
        caps = _h(("capabilities", [{"sym": c} for c in ddl.capabilities]))
        return {"hash": [[{"sym": "discovery"}, caps]]}
    return {"hash": []}


def metadata(ddl: DDL) -> Any:
    """Metadata as sorted tagged pairs (key order carries no meaning)."""
    meta = ddl.metadata
    pairs = [
        [{"sym": k}, tag(getattr(meta, k))]
        for k in ("name", "description", "author", "license", "version", "url", "timeout")
    ]
    pairs += [[tag(k), tag(v)] for k, v in meta.extra.items()]
    return sorted(pairs, key=repr)


def requirements(ddl: DDL) -> Any:
    return {"hash": [[{"sym": k}, v] for k, v in ddl.requirements.items()]}
