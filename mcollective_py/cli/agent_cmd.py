"""``mco-py agent run [-c server.cfg] AGENT REQUEST_FILE REPLY_FILE``: run one action of a
Python agent from an ``implemented_by`` request file (what the Ruby shims call).

Reads the request JSON (``{"agent","action","data","sender","callerid","uniqid",...}``),
runs the action (DDL validation, defaults, timeout = DDL timeout minus 1.5 s so the answer
beats Ruby's own timeout), writes the reply data as a JSON object to REPLY_FILE, prints a
failure's statusmsg on stderr and exits with the statuscode (0 OK .. 5).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from .. import config as config_mod
from ..errors import MCollectiveError
from ..rpc import StatusCode
from ..rubytypes import plain
from .common import Terminal


def register(sub: Any) -> None:
    p = sub.add_parser("agent", help="run Python agents outside the daemon", description=__doc__)
    asub = p.add_subparsers(dest="agent_command", metavar="SUBCOMMAND", required=True)
    r = asub.add_parser("run", help="run one request file through an agent (used by Ruby shims)")
    r.add_argument(
        "-c", "--config", metavar="FILE", help="the node's server.cfg (agent settings, facts)"
    )
    r.add_argument("agent")
    r.add_argument("request_file")
    r.add_argument("reply_file")
    r.set_defaults(run=run, ttl=None)


def _write_reply(path: str, data: Any) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(plain(data), fh)
    os.replace(tmp, path)


def _quiet_logging(cfg: config_mod.Config) -> None:
    """Log to the node's logfile, never to stderr: stderr is the statusmsg of a failure."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    logfile = cfg.get("logfile")
    try:
        handler: logging.Handler = (
            logging.FileHandler(logfile, encoding="utf-8") if logfile else logging.NullHandler()
        )
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(
        logging.Formatter(
            "%(levelname).1s, [%(asctime)s #%(process)d] %(levelname)s -- %(name)s: %(message)s"
        )
    )
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def run(args: argparse.Namespace, term: Terminal) -> int:
    from ..server.agent import ActionRequest, AgentContext
    from ..server.facts import NodeState
    from ..server.registry import agent_classes, load_agents

    try:
        req = json.loads(Path(args.request_file).read_text(encoding="utf-8"))
        if not isinstance(req, dict) or not isinstance(req.get("data", {}), dict):
            raise ValueError("not a JSON object with a 'data' object")
    except (OSError, ValueError) as exc:
        term.err.write(f"cannot read request file {args.request_file}: {exc}\n")
        return int(StatusCode.MISSING_DATA)
    try:
        cfg = config_mod.load(args.config, role="server", env={})
        _quiet_logging(cfg)
        if args.agent not in agent_classes(cfg):
            raise MCollectiveError(f"no Python agent called {args.agent!r} is installed")
        state = NodeState((cfg.get("plugin.yaml") or "").split(":"), cfg.get("classesfile"))
        context = AgentContext.from_config(cfg, state)
        only = config_mod.Config(
            settings={
                **cfg.settings,
                "activate_agents": config_mod.Setting("0", "agent run"),
                f"plugin.{args.agent}.activate_agent": config_mod.Setting("1", "agent run"),
            },
            role=cfg.role,
            files=cfg.files,
        )
        agent = load_agents(only, context)[args.agent]
    except MCollectiveError as exc:
        term.err.write(f"{exc}\n")
        _write_reply(args.reply_file, {})
        return int(StatusCode.UNKNOWN_ERROR)
    agent.timeout_override = max(1.0, agent.timeout - 1.5)
    data = {str(k): v for k, v in req.get("data", {}).items() if k != "process_results"}
    result = agent.handle(
        ActionRequest(
            agent=args.agent,
            action=str(req.get("action", "")),
            data=data,
            caller=str(req.get("callerid") or ""),
            sender=str(req.get("sender") or ""),
            requestid=str(req.get("uniqid") or ""),
            collective=str(req.get("collective") or ""),
        )
    )
    _write_reply(args.reply_file, dict(result.data))
    # A timed-out action goes on in its thread: let it finish before the process exits, or a
    # state change (a deploy's link switch, hooks, restart) would be cut off half-way.
    for t in threading.enumerate():
        if t is not threading.current_thread() and t.name.startswith(f"{args.agent}#"):
            t.join()
    if result.statuscode:
        term.err.write(result.statusmsg.rstrip("\n") + "\n")
    return int(result.statuscode)
