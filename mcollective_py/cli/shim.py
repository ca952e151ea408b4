"""``mco-py shim build AGENT... --out DIR``: Ruby shim agents so a Ruby mcollectived hosts
Python agents. DIR becomes a libdir: ``DIR/mcollective/agent/<name>.{rb,ddl}``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .. import config as config_mod
from ..errors import DDLError, UsageError
from .common import Terminal


def register(sub: Any) -> None:
    p = sub.add_parser(
        "shim", help="generate Ruby shim agents for Python agents", description=__doc__
    )
    ssub = p.add_subparsers(dest="shim_command", metavar="SUBCOMMAND", required=True)
    b = ssub.add_parser("build", help="write shims for the named agents")
    b.add_argument("agents", nargs="+", metavar="AGENT")
    b.add_argument("--out", required=True, metavar="DIR", help="libdir to write into")
    b.add_argument(
        "-c", "--config", metavar="FILE", help="server.cfg (for libdir and extra agents)"
    )
    b.add_argument(
        "--command",
        dest="shim_cmd",
        metavar="CMD",
        help="how the shim starts mco-py (default: this Python with -m mcollective_py)",
    )
    b.set_defaults(run=run, ttl=None)


def run(args: argparse.Namespace, term: Terminal) -> int:
    from ..ddl import AgentDDL, load_agent_ddl
    from ..server.registry import agent_classes
    from ..server.shims import default_command, shim_files

    cfg = config_mod.load(args.config, role="server", env={})
    known = agent_classes(cfg)
    unknown = [a for a in args.agents if a not in known]
    if unknown:
        raise UsageError(
            f"no Python agent called {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    command = args.shim_cmd.split() if args.shim_cmd else default_command()
    out = Path(args.out)
    for name in args.agents:
        # The installed package's DDL first: --out is usually a libdir that still holds the
        # previous version's copy, which must not be copied onto itself after an upgrade.
        try:
            ddl = load_agent_ddl(name, [])
        except DDLError:
            ddl = load_agent_ddl(name, list(cfg.libdir))
        assert isinstance(ddl, AgentDDL)
        assert ddl.path is not None
        for rel, text in shim_files(
            ddl, Path(ddl.path).read_text(encoding="utf-8"), command
        ).items():
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, dest)
            term.out.write(f"wrote {dest}\n")
    return 0
