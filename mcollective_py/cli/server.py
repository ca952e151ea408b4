"""``mco-py server -c server.cfg [--pidfile FILE] [--daemonize]``: run a node.

Reads MCollective's ``server.cfg`` (identity, collectives, connector, psk, ``plugin.yaml``
facts, ``classesfile``, ``libdir``, ``logfile``, ``loglevel``), subscribes for every loaded
agent, and serves until SIGTERM/SIGINT (in-flight requests finish first).  SIGHUP re-reads
facts and classes.  Exit 0 on a clean stop, 3 when config, broker or agents are unusable at
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
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def build(cfg: Config) -> Any:
    """A ready Daemon for ``cfg`` (not yet connected)."""
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
    daemon = Daemon(
        connector=make_connector(cfg),
        security=security.from_config(cfg),
        node=NodeView(cfg.identity, cfg.collectives, state.facts, state.classes),
        agents=agents,
        threads=cfg.get_int("plugin.mcollective_py.threads", 8) or 8,
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
    daemon.node_state = state  # type: ignore[attr-defined]
    return daemon


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
    daemon = build(cfg)  # fail before detaching: errors reach the terminal
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

    def on_term(signum: int, frame: Any) -> None:
        log.info("signal %d: finishing in-flight requests and exiting", signum)
        daemon.stop()

    def on_hup(signum: int, frame: Any) -> None:
        log.info("SIGHUP: reloading facts and classes")
        daemon.node_state.reload()

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
