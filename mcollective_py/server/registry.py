"""Finding and loading agents: which Python agent classes exist, and binding each to its DDL.

Agent classes come from, in order:

* the built-in ``rpcutil``;
* the entry point group ``mcollective_py.agents`` (this package registers haproxy,
  healthcheck and deploy there; other packages may add their own);
* ``plugin.mcollective_py.agents = module:Class, ...`` in the config (local or test agents).

An agent is skipped when ``plugin.<name>.activate_agent`` is false (or ``activate_agents``
is false and the per-agent key does not say otherwise), as in Ruby.  Its DDL is looked up
along ``libdir`` and the project's ``ddl/``.  A class that cannot be imported or whose DDL
does not match raises :class:`AgentLoadError` naming the agent — a node must not start with
half its agents silently missing.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from ..config import Config
from ..ddl import AgentDDL, load_agent_ddl
from ..errors import MCollectiveError
from .agent import Agent, AgentContext, AgentLoadError
from .builtin import Rpcutil

ENTRY_POINT_GROUP = "mcollective_py.agents"


def _import(spec: str) -> type[Agent]:
    mod, _, attr = spec.strip().partition(":")
    if not mod or not attr:
        raise AgentLoadError(f"agent class {spec!r} must be given as module:Class")
    try:
        cls = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise AgentLoadError(f"cannot import agent class {spec!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise AgentLoadError(f"{spec!r} is not an Agent subclass")
    return cls


def agent_classes(cfg: Config) -> dict[str, type[Agent]]:
    """Every known agent class by name (later sources override earlier ones)."""
    found: dict[str, type[Agent]] = {"rpcutil": Rpcutil}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = _import(ep.value)
    extra = cfg.get("plugin.mcollective_py.agents") or ""
    for spec in (s for s in extra.split(",") if s.strip()):
        cls = _import(spec)
        found[cls.name] = cls
    return found


def is_active(cfg: Config, name: str) -> bool:
    key = f"plugin.{name}.activate_agent"
    if cfg.get(key) is not None:
        return cfg.get_bool(key)
    return cfg.get_bool("activate_agents", True)


def load_agents(
    cfg: Config, context: AgentContext, *, extra_libdirs: tuple[str, ...] = ()
) -> dict[str, Agent]:
    """Instantiate every active agent bound to its DDL. Raises AgentLoadError."""
    agents: dict[str, Agent] = {}
    for name, cls in agent_classes(cfg).items():
        if not is_active(cfg, name):
            continue
        try:
            ddl = load_agent_ddl(name, [*cfg.libdir, *extra_libdirs])
        except MCollectiveError as exc:
            raise AgentLoadError(f"agent {name!r} has no usable DDL: {exc}") from None
        if not isinstance(ddl, AgentDDL):
            raise AgentLoadError(f"the DDL found for agent {name!r} is not an agent DDL")
        agents[name] = cls(ddl, context)
    return agents


def describe(agents: dict[str, Agent]) -> list[dict[str, Any]]:
    """One line of facts per loaded agent, for logs."""
    return [
        {"agent": n, "ddl": str(a.ddl.path), "timeout": a.timeout}
        for n, a in sorted(agents.items())
    ]
