"""``mco-py``: the command-line entry point. The only place that prints or exits.

Recipe of ``main``:
1. parse the command line (argparse: bad usage exits 2);
2. run the chosen command, which loads config, builds a client and renders results;
3. turn every error into its exit code and a one-line message — no tracebacks for
   MCollectiveError, broker errors included (exit 3).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import MCollectiveError
from .common import Terminal, setup_logging

#: The command modules under ``mcollective_py.cli``, by name; each has ``register(sub)``.
#: Only the module of the command being run is imported (start-up cost: ``mco-py rpc``
#: never imports the release, server or shim code); ``--help`` and unknown commands
#: import them all.  A module object may be given instead of a name (tests do).
COMMANDS: tuple[Any, ...] = (
    "ping",
    "rpc",
    "find",
    "facts",
    "inventory",
    "plugin",
    "config_cmd",
    "release",
    "deploy",
    "server",
    "agent_cmd",
    "shim",
    "lab",
)
#: command word on the command line -> module name, where they differ
_WORD = {"config": "config_cmd", "agent": "agent_cmd"}


def _module_name(entry: Any) -> str:
    return entry if isinstance(entry, str) else str(entry.__name__).rsplit(".", 1)[-1]


def command_modules(argv: Sequence[str]) -> list[Any]:
    """The command modules to register for ``argv``: just the chosen one when the first
    word names a command, else every one (for help and usage errors)."""
    word = next((a for a in argv if not a.startswith("-")), None)
    wanted = _WORD.get(word or "", word or "")
    names = [_module_name(e) for e in COMMANDS]
    entries = [e for e in COMMANDS if _module_name(e) == wanted] if wanted in names else COMMANDS
    out, seen = [], set()
    for e in sorted(entries, key=lambda e: isinstance(e, str)):  # module objects win
        name = _module_name(e)
        if name in seen:
            continue
        seen.add(name)
        out.append(importlib.import_module(f"{__package__}.{e}") if isinstance(e, str) else e)
    order: dict[str, int] = {}
    for i, n in enumerate(names):
        order.setdefault(n, i)
    return sorted(out, key=lambda m: order.get(_module_name(m), len(order)))


def _columns() -> int:
    """The terminal width ``shutil.get_terminal_size`` would give (``$COLUMNS``, else the
    terminal on stdout, else 80), without importing shutil: argparse's formatter imports it
    (with bz2, lzma and zlib, ~2 ms) on every command's start, to check each argument."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Formatter(argparse.HelpFormatter):
    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv`` (every command when ``argv`` is None)."""
    p = _Parser(
        prog="mco-py", description="Python client for MCollective 2.x (native wire format)."
    )
    p.add_argument("--version", action="version", version=f"mco-py {__version__}")
    p.add_argument("--debug", action="store_true", help="log debug detail to stderr")
    sub = p.add_subparsers(dest="mco_py_command", metavar="COMMAND", parser_class=_Parser)
    for mod in command_modules([] if argv is None else argv):
        mod.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["deploy"]:  # ``deploy SERVICE VERSION`` is ``deploy run SERVICE VERSION``
        from .deploy import normalize_argv

        argv = normalize_argv(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    setup_logging(args.debug)  # every line masked: no psk or URL password, even with --debug
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
