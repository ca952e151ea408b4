"""Building a node daemon from its config: the daemon's composition root.

``mco-py server`` calls :func:`build_daemon`; so can a test or any other host of the daemon,
without going through ``cli/``.  The connector and the security provider are the ones named
in the config, found by entry point (:mod:`mcollective_py.plugins`); agents come from
:mod:`.registry`; every agent gets the same :class:`AgentContext`, made by
:meth:`AgentContext.from_config`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..message import Request
from ..plugins import connector_from_config, security_from_config
from ..rpc import RPCRequest
from ..security.base import SecurityProvider
from .agent import Agent, AgentContext
from .builtin import DaemonInfo, Rpcutil
from .daemon import Daemon, NodeView
from .facts import NodeState
from .registry import load_agents

ReplayCheck = Callable[[Request], "str | bool"]
Authorizer = Callable[[Request, RPCRequest], tuple[bool, str]]
Auditor = Callable[..., None]


def build_daemon(cfg: Config, reread: Callable[[], Config] | None = None) -> Daemon:
    """A ready Daemon for ``cfg`` (not yet connected).  ``reread()`` returns the config as
    it is now on disk; SIGHUP uses it for agent settings (identity, collectives, broker and
    security settings keep their start-up values until a restart).  Raises ConfigError or
    AgentLoadError when something named in the config cannot be had."""
    state = NodeState((cfg.get("plugin.yaml") or "").split(":"), cfg.get("classesfile"))
    agents = load_agents(cfg, AgentContext.from_config(cfg, state))
    provider = security_from_config(cfg)
    daemon = Daemon(
        connector=connector_from_config(cfg),
        security=provider,
        node=NodeView(cfg.identity, cfg.collectives, state.facts, state.classes),
        agents=agents,
        threads=cfg.get_int("plugin.mcollective_py.threads", 8) or 8,
        replay_check=replay_check(cfg, provider),
        authorize=authorizer(cfg, state),
        audit=auditor(cfg),
    )
    info = DaemonInfo(
        config=cfg,
        configfile=cfg.files[-1] if cfg.files else "",
        stats=daemon.stats.snapshot,
        agents=lambda: list(daemon.agents.values()),
    )
    _tell_rpcutil(agents, info)

    def reload() -> dict[str, Agent]:
        state.reload()
        now = reread() if reread is not None else cfg
        # identity stays the start-up one: the daemon is subscribed under it
        fresh = load_agents(now, AgentContext.from_config(now, state, identity=cfg.identity))
        _tell_rpcutil(fresh, info)
        return fresh

    daemon.reload_hook = reload
    return daemon


def _tell_rpcutil(agents: dict[str, Agent], info: DaemonInfo) -> None:
    for a in agents.values():
        if isinstance(a, Rpcutil):
            a.info = info


def replay_check(cfg: Config, provider: SecurityProvider) -> ReplayCheck | None:
    """Replay protection (on unless ``plugin.mcollective_py.replay_protection = 0``): a
    bounded cache of seen request ids per TTL window, ``replay_skew`` seconds of clock skew
    tolerated, TTLs above ``replay_max_ttl`` refused.  ``replay_strict = 1`` also refuses the
    same caller's identical request under a new request id, keyed on what ``provider``
    authenticated only — stronger against a tampered replay, but it drops an honest repeat
    within the window, hence off by default."""
    from .replay import DEFAULT_MAX_TTL, ReplayCache, content_key

    if not cfg.get_bool("plugin.mcollective_py.replay_protection", True):
        return None
    max_ttl = cfg.get_int("plugin.mcollective_py.replay_max_ttl", DEFAULT_MAX_TTL)
    if max_ttl is None or max_ttl < 1:
        raise ConfigError(
            f"plugin.mcollective_py.replay_max_ttl = {max_ttl} (from "
            f"{cfg.origin('plugin.mcollective_py.replay_max_ttl')}) must be at least 1 second"
        )
    cache = ReplayCache(
        skew=cfg.get_float("plugin.mcollective_py.replay_skew", 60.0) or 0.0,
        max_entries=cfg.get_int("plugin.mcollective_py.replay_max_entries", 100_000) or 100_000,
        max_ttl=max_ttl,
    )
    strict = cfg.get_bool("plugin.mcollective_py.replay_strict", False)

    def check(req: Request) -> str | bool:
        return cache.check(
            req.requestid,
            req.msgtime,
            req.ttl,
            content_key(req, provider.authenticated(req)) if strict else None,
        )

    return check


def authorizer(cfg: Config, state: NodeState) -> Authorizer | None:
    """Ruby's switches: ``rpcauthorization = 1`` with ``rpcauthprovider = action_policy``."""
    if not cfg.get_bool("rpcauthorization", False):
        return None
    provider = (cfg.get("rpcauthprovider") or "").strip().lower()
    if provider not in ("action_policy", "actionpolicy"):
        raise ConfigError(
            f"rpcauthprovider {provider!r} (from {cfg.origin('rpcauthprovider')}) is not supported; use action_policy"
        )
    from .policy import PolicyDir

    policies = PolicyDir.from_config(cfg)

    def check(req: Request, rpc: RPCRequest) -> tuple[bool, str]:
        d = policies.authorize(
            caller=req.callerid,
            agent=req.agent,
            action=rpc.action,
            facts=state.facts(),
            classes=state.classes(),
        )
        return d.allowed, d.reason

    return check


def auditor(cfg: Config) -> Auditor | None:
    """Ruby's switches: ``rpcaudit = 1`` with ``rpcauditprovider = logfile``."""
    if not cfg.get_bool("rpcaudit", False):
        return None
    provider = (cfg.get("rpcauditprovider") or "").strip().lower()
    if provider != "logfile":
        raise ConfigError(
            f"rpcauditprovider {provider!r} (from {cfg.origin('rpcauditprovider')}) is not supported; use logfile"
        )
    from .audit import AuditEvent, AuditLog

    log = AuditLog.from_config(cfg)

    def record(
        *, req: Request, rpc: RPCRequest, result: Any, allowed: bool, reason: str, duration: float
    ) -> None:
        log.record(
            AuditEvent.from_request(
                req,
                decision="allowed" if allowed else "denied",
                statuscode=result.statuscode,
                statusmsg=result.statusmsg,
                duration=duration,
                reason=reason or None,
            )
        )

    return record


__all__ = ["auditor", "authorizer", "build_daemon", "replay_check"]
