"""Compatibility: reading one input the old way.

The agent framework now hands every action complete inputs (``req.data`` holds each DDL
input, its default filled in; see :mod:`mcollective_py.server.agent`), so actions read
``req.data["name"]``.  :func:`arg` stays for code not converted yet; it gives the same value.
"""

from __future__ import annotations

import copy
from typing import Any

from ..ddl import AgentDDL
from ..server.agent import ActionRequest


def arg(ddl: AgentDDL, req: ActionRequest, name: str) -> Any:
    """The value of input ``name``: the request's, else the DDL default (None without one)."""
    if name in req.data and req.data[name] is not None:
        return req.data[name]
    item = ddl.actions[req.action].inputs.get(name)
    return copy.deepcopy(item.default) if item is not None else None
