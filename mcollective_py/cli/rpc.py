"""``mco-py rpc AGENT ACTION [key=value ...]``: call an action on every matching node.

Exit codes: 0 every discovered node answered OK; 1 a node failed, stayed silent, or nothing
was discovered; 2 bad usage or input (nothing was sent); 3 broker or config trouble.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .common import (
    Terminal,
    add_common_options,
    build_filter,
    call_options,
    load_config,
    make_client,
)

if TYPE_CHECKING:
    from ..results import Results
    from .agent_ddl import ActionInfo


def register(sub: Any) -> None:
    p = sub.add_parser("rpc", help="call an agent action on matching nodes", description=__doc__)
    p.add_argument("agent", help="agent name, e.g. rpcutil")
    p.add_argument("action", help="action name, e.g. ping")
    p.add_argument("arguments", nargs="*", metavar="key=value", help="action inputs")
    add_common_options(p)
    r = p.add_argument_group("rpc")
    r.add_argument("--batch", dest="batch", metavar="N", help="send to N nodes at a time")
    r.add_argument(
        "--batch-sleep",
        dest="batch_sleep",
        type=float,
        default=None,
        metavar="SEC",
        help="seconds between batches (default 1)",
    )
    r.add_argument(
        "--limit-nodes",
        "--ln",
        "--limit",
        dest="limit_nodes",
        metavar="N|N%",
        help="only call N (or N%%) of the discovered nodes",
    )
    r.add_argument(
        "--limit-seed",
        dest="limit_seed",
        type=int,
        metavar="SEED",
        help="seed for random node limiting",
    )
    r.add_argument(
        "--limit-method",
        dest="limit_method",
        choices=("first", "random"),
        help="how --limit-nodes picks (default first)",
    )
    r.add_argument(
        "-1", "--one", dest="one", action="store_true", help="call only one node (--limit-nodes 1)"
    )
    r.add_argument(
        "--display",
        choices=("ok", "failed", "all"),
        help="which replies to show (default: the DDL's)",
    )
    r.add_argument(
        "--no-results",
        "--nr",
        dest="no_results",
        action="store_true",
        help="send and do not wait for replies",
    )
    p.set_defaults(run=run)


def _batch(text: str | None) -> int:
    if text is None:
        return 0
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--batch needs a whole number of nodes >= 1, got {text!r}")
    return int(text)


def run(args: argparse.Namespace, term: Terminal) -> int:
    from . import agent_ddl
    from .console import ConsoleEvents

    cfg = load_config(args)
    flt = build_filter(args)
    # 1. The DDL turns strings into typed, validated inputs before anything touches the network.
    action = agent_ddl.load_action(args.agent, args.action, cfg)
    data = action.prepare(args.arguments)
    opts = call_options(args, cfg, agent_timeout=action.timeout)
    limit = "1" if args.one else args.limit_nodes
    opts = replace(
        opts,
        batch_size=_batch(args.batch),
        batch_sleep=args.batch_sleep
        if args.batch_sleep is not None
        else float(cfg.get_float("default_batch_sleep_time", 1.0) or 1.0),
        limit_nodes=limit,
        limit_method=args.limit_method or (cfg.get("rpclimitmethod") or "first"),
        limit_seed=args.limit_seed,
        process_results=not args.no_results,
    )
    color = cfg.color and term.color
    events = ConsoleEvents(
        term, progress=not (args.no_progress or args.json), announce_discovery=not args.json
    )
    client = make_client(cfg, events)
    try:
        results = client.rpc(args.agent, args.action, data, flt, opts)
    finally:
        client.connector.close()

    if args.no_results:
        term.out.write(f"Request sent with id: {results.requestid}\n")
        return 0
    events.finish()
    if not results.sent:
        term.out.write("\n\n" if events.progress else "\n")
        term.err.write("\nNo request sent, we did not discover any nodes.\n")
        return 1
    if args.json:
        write_json(results, term)
    else:
        write_text(results, args, action, term, color)
    if args.verbose:
        from .. import render

        term.err.write(render.rejected_text(events.reasons, events.rejected))
    return 0 if results.all_ok else 1


def write_json(results: Results, term: Terminal) -> None:
    """``mco rpc --json`` schema; silent nodes are named on stderr (stdout stays pure JSON)."""
    from ..rubytypes import plain

    doc = [
        {
            "agent": r.agent,
            "action": r.action,
            "sender": r.sender,
            "statuscode": r.statuscode,
            "statusmsg": r.statusmsg,
            "data": plain(dict(r.data)),
        }
        for r in results.replies
    ]
    import json

    if term.tty:
        term.out.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        term.out.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
    if results.no_response:
        term.err.write("No response from: " + " ".join(sorted(results.no_response)) + "\n")


def write_text(
    results: Results,
    args: argparse.Namespace,
    action: ActionInfo,
    term: Terminal,
    color: bool,
) -> None:
    from .. import render

    display = args.display or action.display
    term.out.write(
        render.rpc_results_text(
            results, display=display, labels=action.labels, verbose=args.verbose, color=color
        )
    )
    term.out.write(
        render.puts(
            render.rpc_stats_text(
                results,
                caption=f"{results.agent}#{results.action} call stats",
                verbose=args.verbose,
                color=color,
                aggregates=action.summary_text(results, color=color),
            )
        )
    )
