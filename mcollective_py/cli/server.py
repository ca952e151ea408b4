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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config as config_mod
from ..config import Config
from ..errors import ConfigError
from ..masking import LogFilter
from .common import Terminal

if TYPE_CHECKING:
    from ..server.daemon import Daemon

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


def build(cfg: Config, reread: Callable[[], Config] | None = None) -> Daemon:
    """A ready Daemon for ``cfg``: :func:`mcollective_py.server.assembly.build_daemon`."""
    from ..server.assembly import build_daemon

    return build_daemon(cfg, reread)


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
