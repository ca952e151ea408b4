"""``mco-py inventory NODE``: one node's server statistics, agents, classes and facts."""

from __future__ import annotations

import argparse
from typing import Any

from .common import Terminal, add_config_option, load_config, make_client


def register(sub: Any) -> None:
    p = sub.add_parser("inventory", help="show one node's inventory", description=__doc__)
    p.add_argument("node", help="the node's identity")
    add_config_option(p)
    p.add_argument(
        "-t",
        "--timeout",
        type=float,
        default=None,
        metavar="SEC",
        help="seconds to wait (default 10)",
    )
    p.add_argument("-T", "--target", dest="collective", metavar="COLLECTIVE")
    p.set_defaults(run=run, ttl=None)


def run(args: argparse.Namespace, term: Terminal) -> int:
    from .. import render
    from ..client import CallOptions
    from ..filter import Filter

    cfg = load_config(args)
    client = make_client(cfg)
    flt = Filter.from_cli(identity=[args.node])
    opts = CallOptions(timeout=args.timeout, collective=args.collective)
    try:
        stats = client.rpc("rpcutil", "daemon_stats", {}, flt, opts)
        if not stats.replies:
            term.err.write(f"Did not receive any results from node {args.node}\n")
            return 1
        st = stats.replies[0]
        if not st.ok:
            term.err.write(f"Failed to retrieve daemon_stats from {args.node}: {st.statusmsg}\n")
            return 1
        inv = client.rpc("rpcutil", "inventory", {}, flt, opts)
    finally:
        client.connector.close()
    if not inv.replies:
        term.err.write(f"Did not receive any results from node {args.node}\n")
        return 1
    r = inv.replies[0]
    if not r.ok:
        term.err.write(f"Failed to retrieve inventory for {args.node}: {r.statusmsg}\n")
        return 1
    term.out.write(render.inventory_text(r.sender, st.data, r.data))
    return 0
