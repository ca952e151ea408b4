"""Export an agent DDL as a Choria JSON DDL (``https://choria.io/schemas/mcorpc/ddl/v1/agent.json``).

Choria (the maintained MCollective successor) reads agent DDLs as JSON files placed
next to the ``.ddl``.  :func:`to_choria_json` maps our model onto that schema:

* ``metadata``: the seven required keys (plus ``provider``/``service`` when the DDL
  has them);
* ``actions``: one object per action in file order with ``action``, ``description``,
  ``display``, ``input``, ``output`` and, when the action summarizes, ``aggregate``
  (``{"function": "summary", "args": ["out", {"format": ".."}]}``);
* inputs carry ``prompt description type optional default`` plus ``validation
  maxlength`` (strings) or ``list`` (lists).  A Regexp validation becomes its source,
  a named validator its name (``shellsafe``), a list of allowed values an anchored
  alternation; no validation becomes ``.*`` and no maxlength ``0``;
* ``display :flatten`` (deprecated in Ruby, unknown to Choria) becomes ``always``.

Values become JSON: Symbols -> strings, Hash keys -> strings, Regexps -> their source.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mcollective_py.ddl.model import Action, AgentDDL, Input
from mcollective_py.rubytypes import Regexp, Symbol

__all__ = ["CHORIA_AGENT_SCHEMA", "to_choria_json"]

#: The ``$schema`` Choria agent JSON DDLs declare.
CHORIA_AGENT_SCHEMA = "https://choria.io/schemas/mcorpc/ddl/v1/agent.json"


def _json(value: Any) -> Any:
    if isinstance(value, Symbol):
        return str.__str__(value)
    if isinstance(value, Regexp):
        return value.source
    if isinstance(value, dict):
        return {_key(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, str):
        return str.__str__(value)
    return value


def _key(key: Any) -> str:
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return ""
    if isinstance(key, str):
        return str.__str__(key)
    return str(_json(key))


def _validation(item: Input) -> str:
    validation = item.validation
    if validation is None:
        return ".*"
    if isinstance(validation, Symbol):
        return str.__str__(validation)
    if isinstance(validation, Regexp):
        return validation.source
    if isinstance(validation, tuple):
        return "\\A(?:" + "|".join(re.escape(str(_json(v))) for v in validation) + ")\\z"
    return str.__str__(validation)


def _input(item: Input) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt": item.prompt,
        "description": item.description,
        "type": item.type,
        "default": _json(item.default),
        "optional": bool(item.optional),
    }
    if item.type == "string":
        out["validation"] = _validation(item)
        out["maxlength"] = item.maxlength or 0
    elif item.type == "list":
        out["list"] = [_json(v) for v in item.list or ()]
    return out


def _action(action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": action.name,
        "input": {item.name: _input(item) for item in action.inputs.values()},
        "output": {
            item.name: {
                "description": item.description,
                "display_as": item.display_as,
                "default": _json(item.default),
            }
            for item in action.outputs.values()
        },
        "display": "always" if action.display == "flatten" else action.display,
        "description": action.description,
    }
    if action.aggregates:
        aggregates = []
        for call in action.aggregates:
            args = [_json(a) for a in call.args]
            if call.format is not None:
                if len(args) > 1 and isinstance(args[1], dict):
                    args[1].setdefault("format", call.format)
                else:
                    args = args[:1] + [{"format": call.format}]
            aggregates.append({"function": call.function, "args": args})
        out["aggregate"] = aggregates
    return out


def to_choria_json(ddl: AgentDDL) -> dict[str, Any]:
    """The Choria JSON DDL (a dict ready for ``json.dumps``) of an agent DDL."""
    meta = ddl.metadata
    metadata: dict[str, Any] = {
        "name": meta.name,
        "description": meta.description,
        "author": meta.author,
        "license": meta.license,
        "version": meta.version,
        "url": meta.url,
        "timeout": meta.timeout,
    }
    for extra in ("provider", "service"):
        if extra in meta.extra:
            metadata[extra] = _json(meta.extra[extra])
    return {
        "$schema": CHORIA_AGENT_SCHEMA,
        "metadata": metadata,
        "actions": [_action(action) for action in ddl.actions.values()],
    }
