"""``mco-py plugin doc AGENT`` (like ``mco plugin doc agent/AGENT``) and
``mco-py plugin ddl2json AGENT [--out FILE]`` (the agent's DDL as Choria JSON)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from .. import config as config_mod
from ..errors import UsageError
from .common import Terminal, add_config_option


def register(sub: Any) -> None:
    p = sub.add_parser("plugin", help="document plugins from their DDL", description=__doc__)
    psub = p.add_subparsers(dest="plugin_command", metavar="SUBCOMMAND", required=True)
    d = psub.add_parser("doc", help="show a plugin's documentation (agent/NAME or NAME)")
    d.add_argument("plugin", metavar="[TYPE/]NAME")
    add_config_option(d)
    d.set_defaults(run=run_doc, ttl=None)
    j = psub.add_parser("ddl2json", help="print an agent DDL as Choria JSON DDL")
    j.add_argument("plugin", metavar="AGENT")
    j.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    add_config_option(j)
    j.set_defaults(run=run_json, ttl=None)


def _split(text: str) -> tuple[str, str]:
    kind, _, name = text.rpartition("/")
    return (kind or "agent"), name


def run_doc(args: argparse.Namespace, term: Terminal) -> int:
    from ..ddl import load_ddl, plugin_doc

    cfg = config_mod.load(args.config)
    kind, name = _split(args.plugin)
    ddl = load_ddl(name, kind, list(cfg.libdir))
    columns = term.columns() if term.tty else 80
    term.out.write(plugin_doc(ddl, columns=columns))
    return 0


def run_json(args: argparse.Namespace, term: Terminal) -> int:
    from ..ddl import AgentDDL, load_ddl, to_choria_json

    cfg = config_mod.load(args.config)
    kind, name = _split(args.plugin)
    if kind != "agent":
        raise UsageError(f"ddl2json converts agent DDLs only, not {kind!r}")
    ddl = load_ddl(name, "agent", list(cfg.libdir))
    assert isinstance(ddl, AgentDDL)
    text = json.dumps(to_choria_json(ddl), indent=2) + "\n"
    if args.out:
        tmp = Path(f"{args.out}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, args.out)
    else:
        term.out.write(text)
    return 0
