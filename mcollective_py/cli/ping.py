"""``mco-py ping``: who is out there, and how fast they answer (the discovery agent)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import Terminal, add_common_options, build_filter, load_config, make_client


def register(sub: Any) -> None:
    p = sub.add_parser("ping", help="ping all nodes matching the filters", description=__doc__)
    add_common_options(p, rpc=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, term: Terminal) -> int:
    from .. import render
    from ..client import CallOptions

    cfg = load_config(args)
    flt = build_filter(args)
    client = make_client(cfg)

    def show(sender: str, ms: float) -> None:
        term.out.write(render.ping_line(sender, ms) + "\n")
        term.out.flush()

    try:
        results = client.ping(
            flt,
            timeout=args.timeout if args.timeout is not None else 5.0,
            opts=CallOptions(
                discovery_timeout=args.discovery_timeout,
                collective=args.collective,
                ttl=args.ttl,
                discovery_quiet=args.discovery_quiet,
            ),
            on_reply=show,
        )
    finally:
        client.connector.close()
    term.out.write(render.ping_summary(results.replies))
    if args.verbose:
        term.err.write(render.rejected_text(results.reasons, results.rejected))
    if flt.is_identity_only():
        silent = [str(i) for i in flt.identity if str(i) not in set(results.senders)]
        if silent:
            term.err.write("No response from: " + " ".join(silent) + "\n")
            return 1
    return 0 if results.replies else 1
