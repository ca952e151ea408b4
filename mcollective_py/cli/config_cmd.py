"""``mco-py config show [--origin]``: the merged configuration (secrets masked)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import Terminal, add_config_option, load_config


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="inspect the configuration", description=__doc__)
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    show = csub.add_parser("show", help="print every setting (secrets masked)")
    add_config_option(show)
    show.add_argument("--origin", action="store_true", help="also say where each value came from")
    show.set_defaults(run=run_show, ttl=None)


def run_show(args: argparse.Namespace, term: Terminal) -> int:
    cfg = load_config(args)
    keys = sorted(cfg.settings)
    width = max(len(k) for k in keys)
    for k in keys:
        line = f"{k:<{width}} = {cfg.redacted(k)}"
        if args.origin:
            line += f"    # {cfg.origin(k)}"
        term.out.write(line + "\n")
    return 0
