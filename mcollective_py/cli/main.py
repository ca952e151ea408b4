"""``mco-py``: the command-line entry point. The only place that prints or exits.

Recipe of ``main``:
1. parse the command line (argparse: bad usage exits 2);
2. run the chosen command, which loads config, builds a client and renders results;
3. turn every error into its exit code and a one-line message — no tracebacks for
   MCollectiveError, broker errors included (exit 3).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import MCollectiveError
from . import (
    agent_cmd,
    config_cmd,
    facts,
    find,
    inventory,
    lab,
    ping,
    plugin,
    release,
    rpc,
    server,
    shim,
)
from .common import Terminal

COMMANDS = (
    ping,
    rpc,
    find,
    facts,
    inventory,
    plugin,
    config_cmd,
    release,
    server,
    agent_cmd,
    shim,
    lab,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mco-py", description="Python client for MCollective 2.x (native wire format)."
    )
    p.add_argument("--version", action="version", version=f"mco-py {__version__}")
    p.add_argument("--debug", action="store_true", help="log debug detail to stderr")
    sub = p.add_subparsers(dest="mco_py_command", metavar="COMMAND", parser_class=_Parser)
    for mod in COMMANDS:
        mod.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="mco-py: %(levelname)s %(name)s: %(message)s",
    )
    if args.debug:
        logging.getLogger("pika").setLevel(logging.INFO)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    term = Terminal(sys.stdout, sys.stderr, color=not os.environ.get("NO_COLOR"))
    try:
        return int(args.run(args, term))
    except MCollectiveError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"mco-py {args.mco_py_command}: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"mco-py {args.mco_py_command}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
