"""``mco-py facts FACT``: how many nodes report each value of a fact (rpcutil get_fact)."""

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
    p = sub.add_parser(
        "facts", help="report the values of a fact across nodes", description=__doc__
    )
    p.add_argument("fact", help="fact name, e.g. role")
    add_common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, term: Terminal) -> int:
    from .. import render
    from .console import ConsoleEvents

    cfg = load_config(args)
    flt = build_filter(args)
    color = cfg.color and term.color
    events = ConsoleEvents(term, progress=False, announce_discovery=False)
    client = make_client(cfg, events)
    try:
        results = client.rpc(
            "rpcutil", "get_fact", {"fact": args.fact}, flt, call_options(args, cfg)
        )
    finally:
        client.connector.close()
    values: dict[str, list[str]] = {}
    for r in results.ok:
        v = r.data.get("value")
        if v is not None:
            values.setdefault(render.fact_value_text(v), []).append(r.sender)
    term.out.write(render.facts_text(args.fact, values, verbose=args.verbose))
    if args.json:
        return 0 if results.all_ok else 1
    if results.sent:
        term.out.write(
            render.puts(render.rpc_stats_text(results, verbose=args.verbose, color=color))
        )
    else:
        term.err.write("\nNo request sent, we did not discover any nodes.\n")
    return 0 if results.all_ok else 1
