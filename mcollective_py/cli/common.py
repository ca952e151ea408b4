"""Options every ``mco-py`` command shares, and turning them into Config/Filter/Client.

Flags follow Ruby ``mco``'s spelling (``-I/--wi/--with-identity``, ``--dt``, ``--nodes`` …) so
muscle memory and scripts carry over.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from .. import config as config_mod
from ..config import Config
from ..errors import UsageError
from ..masking import LogFilter

if TYPE_CHECKING:  # imported where used: start-up of every command stays light
    from ..client import CallOptions, Client, ClientEvents
    from ..connectors.base import Connector
    from ..filter import Filter


class ClientLogHandler(logging.StreamHandler):
    """``mco-py``'s own log handler: one line per record on stderr, every record (message
    and traceback) passed through :class:`..masking.LogFilter` first, so ``--debug`` never
    prints a psk, a password or a URL's user-info."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.setFormatter(logging.Formatter("mco-py: %(levelname)s %(name)s: %(message)s"))
        self.addFilter(LogFilter())


def setup_logging(debug: bool, stream: IO[str] | None = None) -> ClientLogHandler | None:
    """Log to ``stream`` (stderr) at WARNING, or DEBUG with ``--debug`` (pika at INFO then),
    through :class:`ClientLogHandler`.  A handler of an earlier call is replaced; when the
    root logger has other handlers (an embedding program's), they are left alone and none
    is added (as :func:`logging.basicConfig` does).  Returns the handler added, if any."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, ClientLogHandler)]:
        root.removeHandler(old)
    handler = None
    if not root.handlers:
        handler = ClientLogHandler(stream if stream is not None else sys.stderr)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    if debug:
        logging.getLogger("pika").setLevel(logging.INFO)
    return handler


def add_config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="MCollective client.cfg to load (over the system files)",
    )


def add_common_options(p: argparse.ArgumentParser, *, rpc: bool = True) -> None:
    """Config, filter, discovery and timing flags."""
    add_config_option(p)
    g = p.add_argument_group("host filters")
    g.add_argument(
        "-I",
        "--wi",
        "--with-identity",
        dest="f_identity",
        action="append",
        default=[],
        metavar="ID",
        help="identity, or /regex/",
    )
    g.add_argument(
        "-C",
        "--wc",
        "--with-class",
        dest="f_class",
        action="append",
        default=[],
        metavar="CLASS",
        help="configuration management class, or /regex/",
    )
    g.add_argument(
        "-F",
        "--wf",
        "--with-fact",
        dest="f_fact",
        action="append",
        default=[],
        metavar="FACT",
        help="fact=value (also == != < > <= >= =~ and fact=/regex/)",
    )
    g.add_argument(
        "-A",
        "--wa",
        "--with-agent",
        dest="f_agent",
        action="append",
        default=[],
        metavar="AGENT",
        help="nodes that have this agent",
    )
    g.add_argument(
        "-W",
        "--with",
        dest="f_with",
        action="append",
        default=[],
        metavar="FILTER",
        help="combined fact and class filter, e.g. 'role=web roles::web'",
    )
    g.add_argument(
        "-S",
        "--select",
        dest="f_select",
        action="append",
        default=[],
        metavar="EXPR",
        help="compound filter, e.g. 'role=web and not /db/'",
    )
    d = p.add_argument_group("discovery and timing")
    d.add_argument(
        "-T", "--target", dest="collective", metavar="COLLECTIVE", help="collective to address"
    )
    d.add_argument(
        "--dt",
        "--discovery-timeout",
        dest="discovery_timeout",
        type=_seconds("--dt"),
        metavar="SEC",
        help="seconds to wait for discovery replies (mc default 2)",
    )
    d.add_argument(
        "--discovery-quiet",
        dest="discovery_quiet",
        type=_milliseconds("--discovery-quiet"),
        metavar="MS",
        help="end mc discovery once no new node answered for MS ms "
        "(the discovery timeout stays the upper bound; default: config discovery_quiet, "
        "else wait the whole timeout as mco does)",
    )
    d.add_argument(
        "-t",
        "--timeout",
        dest="timeout",
        type=_seconds("-t"),
        metavar="SEC",
        help="seconds to wait for replies",
    )
    d.add_argument(
        "--ttl",
        dest="ttl",
        type=_whole("--ttl"),
        metavar="SEC",
        help="message time-to-live in seconds (default 60)",
    )
    d.add_argument(
        "--dm",
        "--disc-method",
        dest="discovery_method",
        metavar="METHOD",
        help="discovery method: mc, flatfile, stdin",
    )
    d.add_argument(
        "--do",
        "--disc-option",
        dest="discovery_options",
        action="append",
        default=[],
        metavar="OPT",
        help="discovery option (flatfile: path; stdin: auto|text|json)",
    )
    d.add_argument(
        "--nodes",
        dest="nodes_file",
        metavar="FILE",
        help="discover from a file of identities (flatfile)",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "-v", "--verbose", action="store_true", help="more detail (per-node status, call stats)"
    )
    if rpc:
        o.add_argument(
            "-j",
            "--json",
            action="store_true",
            help="JSON output, the same schema as mco rpc --json",
        )
        o.add_argument(
            "--np",
            "--no-progress",
            dest="no_progress",
            action="store_true",
            help="no progress indicator",
        )


def _seconds(flag: str) -> Any:
    def conv(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag} needs a number of seconds, got {text!r}"
            ) from None
        if v < 0 or v != v:
            raise argparse.ArgumentTypeError(f"{flag} must not be negative, got {text!r}")
        return v

    return conv


def _milliseconds(flag: str) -> Any:
    def conv(text: str) -> float:
        if not text.isdigit():
            raise argparse.ArgumentTypeError(
                f"{flag} needs a whole number of milliseconds (0 turns it off), got {text!r}"
            )
        return int(text) / 1000.0

    return conv


def _whole(flag: str) -> Any:
    def conv(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"{flag} needs a whole number >= 1, got {text!r}")
        return int(text)

    return conv


def load_config(args: argparse.Namespace) -> Config:
    overrides: dict[str, tuple[str, str]] = {}
    if getattr(args, "ttl", None) is not None:
        overrides["ttl"] = (str(args.ttl), "--ttl")
    return config_mod.load(getattr(args, "config", None), overrides=overrides)


def build_filter(args: argparse.Namespace) -> Filter:
    from ..filter import Filter

    return Filter.from_cli(
        identity=args.f_identity,
        cf_class=args.f_class,
        fact=args.f_fact,
        agent=args.f_agent,
        with_=args.f_with,
        select=args.f_select,
    )


def call_options(
    args: argparse.Namespace,
    cfg: Config,
    *,
    stdin: IO[str] | None = None,
    agent_timeout: float = 10.0,
) -> CallOptions:
    """Discovery method and node list from ``--dm/--do/--nodes`` (stdin read here, once)."""
    from ..client import CallOptions
    from ..discovery import parse_stdin

    method = args.discovery_method or cfg.default_discovery_method
    nodes: tuple[str, ...] | None = None
    if args.nodes_file:
        method = "flatfile"
        from ..discovery import NodeList

        nodes = NodeList.from_file(args.nodes_file).nodes
    elif method == "flatfile":
        if not args.discovery_options:
            raise UsageError(
                "the flatfile discovery method needs a file: --do FILE or --nodes FILE"
            )
        from ..discovery import NodeList

        nodes = NodeList.from_file(args.discovery_options[0]).nodes
    elif method == "stdin":
        fmt = args.discovery_options[0] if args.discovery_options else "auto"
        stream = stdin if stdin is not None else sys.stdin
        nodes = parse_stdin(stream.read(), fmt)
    elif method != "mc":
        raise UsageError(f"unknown discovery method {method!r}; use mc, flatfile or stdin")
    return CallOptions(
        timeout=args.timeout,
        agent_timeout=agent_timeout,
        discovery_timeout=args.discovery_timeout,
        discovery_method=method,
        nodes=nodes,
        collective=args.collective,
        ttl=args.ttl,
        discovery_quiet=args.discovery_quiet,
    )


def make_connector(cfg: Config) -> Connector:
    """The configured connector (the composition root: :mod:`mcollective_py.plugins`)."""
    from ..plugins import connector_from_config

    return connector_from_config(cfg)


def make_client(cfg: Config, events: ClientEvents | None = None) -> Client:
    """The configured client (the composition root: :meth:`Client.from_config`)."""
    from ..client import Client

    return Client.from_config(cfg, events)


@dataclass
class Terminal:
    """Where output goes; ``tty`` decides progress and JSON pretty-printing."""

    out: IO[str]
    err: IO[str]
    color: bool = True

    @property
    def tty(self) -> bool:
        try:
            return self.out.isatty()
        except (AttributeError, ValueError):
            return False

    def columns(self) -> int:
        try:
            return os.get_terminal_size(self.out.fileno()).columns
        except (OSError, AttributeError, ValueError):
            return 80
