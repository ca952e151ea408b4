"""``mco-py server -c server.cfg [--pidfile FILE] [--daemonize]``: run a node.

Reads MCollective's ``server.cfg`` (identity, collectives, connector, psk, ``plugin.yaml``
facts, ``classesfile``, ``libdir``, ``logfile``, ``loglevel``), subscribes for every loaded
agent, and serves until SIGTERM/SIGINT (in-flight requests finish first).  SIGHUP re-reads
facts and classes, re-reads the config for agent settings and loads the agents again (new
agents and changed DDLs are picked up and subscribed; identity, collectives, broker and
security settings, and changed code of an already loaded agent, need a restart).  Exit 0 on a clean stop, 3 when config, broker or agents are unusable at
start.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .. import config as config_mod
from ..config import Config
from ..errors import ConfigError
from ..masking import LogFilter
from .common import Terminal, make_connector

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}


def register(sub: Any) -> None:
    p = sub.add_parser("server", help="run a node daemon", description=__doc__)
    p.add_argument(
        "-c", "--config", metavar="FILE", help="server.cfg (default /etc/mcollective/server.cfg)"
    )
    p.add_argument("--pidfile", metavar="FILE", help="write the daemon's pid here")
    p.add_argument(
        "--daemonize", action="store_true", help="detach from the terminal (use with --pidfile)"
    )
    p.set_defaults(run=run, ttl=None)


def setup_logging(cfg: Config, *, foreground: bool) -> None:
    level = LEVELS.get((cfg.get("loglevel") or "info").strip().lower(), logging.INFO)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    logfile = cfg.get("logfile")
    handler: logging.Handler
    if (cfg.get("logger_type") or "file").strip() == "console" or not logfile:
        handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            handler = logging.FileHandler(logfile, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot open logfile {logfile} (from {cfg.origin('logfile')}): {exc.strerror}"
            ) from None
    handler.setFormatter(
        logging.Formatter(
            "%(levelname).1s, [%(asctime)s #%(process)d] %(levelname)s -- %(name)s: %(message)s"
        )
    )
    handler.addFilter(LogFilter())  # secrets never reach the log, tracebacks included
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def build(cfg: Config, reread: Any = None) -> Any:
    """A ready Daemon for ``cfg`` (not yet connected).  ``reread()`` returns the config as
    it is now on disk; SIGHUP uses it for agent settings (identity, collectives, broker and
    security settings keep their start-up values until a restart)."""
    from .. import security
    from ..server.agent import AgentContext
    from ..server.builtin import DaemonInfo, Rpcutil
    from ..server.daemon import Daemon, NodeView
    from ..server.facts import NodeState
    from ..server.registry import load_agents

    fact_files = (cfg.get("plugin.yaml") or "").split(":")
    state = NodeState(fact_files, cfg.get("classesfile"))
    context = AgentContext(
        identity=cfg.identity,
        settings={k: s.value for k, s in cfg.settings.items()},
        facts=state.facts,
        classes=state.classes,
    )
    agents = load_agents(cfg, context)
    provider = security.from_config(cfg)
    daemon = Daemon(
        connector=make_connector(cfg),
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
    for a in agents.values():
        if isinstance(a, Rpcutil):
            a.info = info

    def reload() -> dict[str, Any]:
        state.reload()
        now = reread() if reread is not None else cfg
        ctx = AgentContext(
            identity=cfg.identity,
            settings={k: s.value for k, s in now.settings.items()},
            facts=state.facts,
            classes=state.classes,
        )
        fresh = load_agents(now, ctx)
        for a in fresh.values():
            if isinstance(a, Rpcutil):
                a.info = info
        return fresh

    daemon.reload_hook = reload
    return daemon


def replay_check(cfg: Config, provider: Any) -> Any:
    """Replay protection (on unless ``plugin.mcollective_py.replay_protection = 0``): a
    bounded cache of seen request ids per TTL window, ``replay_skew`` seconds of clock skew
    tolerated, TTLs above ``replay_max_ttl`` refused.  ``replay_strict = 1`` also refuses the
    same caller's identical request under a new request id, keyed on what ``provider``
    authenticated only — stronger against a tampered replay, but it drops an honest repeat
    within the window, hence off by default."""
    from ..server.replay import DEFAULT_MAX_TTL, ReplayCache, content_key

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
    return lambda req: cache.check(
        req.requestid,
        req.msgtime,
        req.ttl,
        content_key(req, provider.authenticated(req)) if strict else None,
    )


def authorizer(cfg: Config, state: Any) -> Any:
    """Ruby's switches: ``rpcauthorization = 1`` with ``rpcauthprovider = action_policy``."""
    if not cfg.get_bool("rpcauthorization", False):
        return None
    provider = (cfg.get("rpcauthprovider") or "").strip().lower()
    if provider not in ("action_policy", "actionpolicy"):
        raise ConfigError(
            f"rpcauthprovider {provider!r} (from {cfg.origin('rpcauthprovider')}) is not supported; use action_policy"
        )
    from ..server.policy import PolicyDir

    policies = PolicyDir.from_config(cfg)

    def check(req: Any, rpc: Any) -> tuple[bool, str]:
        d = policies.authorize(
            caller=req.callerid,
            agent=req.agent,
            action=rpc.action,
            facts=state.facts(),
            classes=state.classes(),
        )
        return d.allowed, d.reason

    return check


def auditor(cfg: Config) -> Any:
    """Ruby's switches: ``rpcaudit = 1`` with ``rpcauditprovider = logfile``."""
    if not cfg.get_bool("rpcaudit", False):
        return None
    provider = (cfg.get("rpcauditprovider") or "").strip().lower()
    if provider != "logfile":
        raise ConfigError(
            f"rpcauditprovider {provider!r} (from {cfg.origin('rpcauditprovider')}) is not supported; use logfile"
        )
    from ..server.audit import AuditEvent, AuditLog

    log = AuditLog.from_config(cfg)

    def record(
        *, req: Any, rpc: Any, result: Any, allowed: bool, reason: str, duration: float
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


def _daemonize() -> None:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def run(args: argparse.Namespace, term: Terminal) -> int:
    cfg = config_mod.load(args.config, role="server")
    setup_logging(cfg, foreground=not args.daemonize)
    # fail before detaching: errors reach the terminal
    daemon = build(cfg, reread=lambda: config_mod.load(args.config, role="server"))
    if args.daemonize:
        _daemonize()
    if args.pidfile:
        tmp = Path(f"{args.pidfile}.tmp")
        tmp.write_text(f"{os.getpid()}\n")
        tmp.replace(args.pidfile)
    log = logging.getLogger("mcollective_py.server")
    log.info(
        "mco-py server %s starting with %s (agents: %s)",
        cfg.identity,
        ", ".join(cfg.files),
        ", ".join(sorted(daemon.agents)),
    )

    # handlers only set flags: logging from a signal handler can re-enter the log stream
    def on_term(signum: int, frame: Any) -> None:
        daemon.stop()

    def on_hup(signum: int, frame: Any) -> None:
        daemon.request_reload()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        daemon.run()
    finally:
        if args.pidfile:
            try:
                if Path(args.pidfile).read_text().strip() == str(os.getpid()):
                    Path(args.pidfile).unlink()
            except OSError:
                pass
    log.info("stopped")
    return 0
