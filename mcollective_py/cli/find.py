"""``mco-py find``: list the identities matching the filters (discovery only)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    Terminal,
    add_common_options,
    build_filter,
    call_options,
    load_config,
    make_client,
)


def register(sub: Any) -> None:
    p = sub.add_parser("find", help="list nodes matching the filters", description=__doc__)
    add_common_options(p, rpc=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, term: Terminal) -> int:
    cfg = load_config(args)
    flt = build_filter(args)
    client = make_client(cfg)
    try:
        nodes, took, method = client.discover(flt, call_options(args, cfg))
    finally:
        client.connector.close()
    for n in nodes:
        term.out.write(n + "\n")
    if args.verbose:
        term.err.write(
            f"\nDiscovered {len(nodes)} nodes in {took:.2f} seconds using the {method} discovery plugin\n"
        )
    return 0 if nodes else 1
