"""Reading a request's inputs the way the DDL describes them.

Ruby's client sends the DDL default of a *required* input only; an optional input that was
not given is simply absent, and the agent must apply its default itself.  :func:`arg` does
that from the DDL, so the documented default and the one used are the same value.
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
