"""Discovery: which nodes a request is for.

``Discovery`` is a one-verb protocol: ``discover(filter, timeout) -> tuple[str, ...]``
(identities in the order found, no duplicates).  Implementations:

* :class:`Static` — literal ``-I`` identities; no network round (``-I node1``).
* :class:`Broadcast` — the ``mc`` method: send ``"ping"`` to the ``discovery`` agent with the
  filter and collect sender ids for the discovery timeout (default 2 s), or until no new
  node answered for the quiet period (``--discovery-quiet``); one :func:`exchange.exchange`.
* :class:`NodeList` — ``flatfile`` (``--nodes FILE``) and ``stdin`` (text or JSON):
  a given list, narrowed by identity filters the Ruby way (each regex greps the list, exact
  names are appended).  Other filter kinds are refused, as Ruby refuses them.  The regexes
  are Ruby's (``ruby.regex``: Onigmo semantics, a time budget per match), never Python's
  :mod:`re`.

Pure parsing helpers (:func:`parse_node_lines`, :func:`parse_node_json`) are separate so
they can be tested with golden data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .connectors.base import Connector, Target
from .errors import RegexTimeout, UsageError
from .exchange import Collected, ExchangeHooks, Until, exchange
from .filter import Filter
from .message import IDENTITY_RE, Reply, Request, new_requestid
from .rubytypes import Regexp
from .security.base import SecurityProvider

if TYPE_CHECKING:
    from .ruby.regex import RubyPattern


class Discovery(Protocol):
    """Find the identities matching ``flt`` within ``timeout`` seconds."""

    name: str

    def discover(self, flt: Filter, timeout: float) -> tuple[str, ...]: ...


def _uniq(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return tuple(seen)


class Static:
    """Literal identities given on the command line."""

    name = "static"

    def __init__(self, identities: Sequence[str]) -> None:
        self.identities = _uniq(identities)

    def discover(self, flt: Filter, timeout: float) -> tuple[str, ...]:
        return self.identities


def parse_node_lines(text: str, source: str) -> tuple[str, ...]:
    """One identity per line; blank and ``#`` lines skipped; each must match ``^[\\w.-]+$``.

    Raises UsageError naming the source, line number and value of the first bad line.
    """
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not IDENTITY_RE.match(line):
            raise UsageError(
                f"{source}:{n}: {line!r} is not a valid identity (letters, digits, '_', '.', '-')"
            )
        out.append(line)
    return _uniq(out)


def parse_node_json(text: str, source: str) -> tuple[str, ...]:
    """A JSON array of objects with ``"sender"`` or ``"certname"`` (e.g. ``mco rpc --json``)."""
    import json  # only here: a direct call or mc discovery never reads JSON (start-up time)

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(doc, list):
        raise UsageError(f"{source}: expected a JSON array of objects with 'sender' or 'certname'")
    out = []
    for i, item in enumerate(doc):
        name = item.get("sender") or item.get("certname") if isinstance(item, dict) else None
        if not isinstance(name, str) or not IDENTITY_RE.match(name):
            raise UsageError(f"{source}: item {i} has no valid 'sender' or 'certname'")
        out.append(name)
    return _uniq(out)


def parse_stdin(text: str, fmt: str = "auto") -> tuple[str, ...]:
    """``--dm stdin --do auto|text|json``: auto picks JSON when the text starts with ``[``."""
    if fmt == "auto":
        fmt = "json" if text.lstrip().startswith("[") else "text"
    if fmt == "json":
        return parse_node_json(text, "stdin")
    if fmt == "text":
        return parse_node_lines(text, "stdin")
    raise UsageError(f"unknown stdin discovery format {fmt!r}; use auto, text or json")


def _is_regex_entry(ident: str) -> bool:
    """Ruby's ``identity.match("^/")``: an entry with a line starting with ``/`` is a regex
    (Ruby's ``^`` matches at the start and after every ``\\n``)."""
    return ident.startswith("/") or "\n/" in ident


def _identity_regex(ident: str | Regexp) -> RubyPattern:
    """The Ruby regex of a ``/.../`` identity entry (every ``/`` removed, as Ruby's
    ``gsub("/", "")``) or of a Regexp entry; UsageError for one that does not compile."""
    from .ruby.regex import RubyRegexError, compile_ruby_regex  # on use: start-up time

    source, options = (
        (ident.replace("/", ""), 0) if isinstance(ident, str) else (ident.source, ident.options)
    )
    try:
        return compile_ruby_regex(source, options)
    except RubyRegexError as exc:
        raise UsageError(f"identity filter {ident!r} is not a valid regex: {exc}") from None


def narrow_by_identity(nodes: Sequence[str], flt: Filter, method: str) -> tuple[str, ...]:
    """Apply a filter to a given node list exactly as Ruby's flatfile/stdin methods do.

    Class and fact filters are refused (UsageError).  With no identity filter the whole list
    is the answer.  Otherwise, entry by entry: a ``/regex/`` entry *replaces* the result with
    the list's matches; a literal entry is appended if the list holds it.  Regexes have
    Ruby's semantics and the time budget of :mod:`mcollective_py.ruby.regex`; a bad one, or
    one that runs out of time on a node name, is a UsageError naming the entry.
    """
    for kind, present in (("class", flt.cf_class), ("fact", flt.fact)):
        if present:
            raise UsageError(
                f"cannot use {kind} filters with the {method} discovery method; "
                "use identity filters (-I) or the mc method"
            )
    if not flt.identity:
        return tuple(nodes)
    result: list[str] = []
    for ident in flt.identity:
        if isinstance(ident, str) and not _is_regex_entry(ident):
            if ident in nodes:
                result.append(ident)
            continue
        rx = _identity_regex(ident)
        try:
            result = [n for n in nodes if rx.search(n) is not None]
        except RegexTimeout as exc:
            raise UsageError(
                f"identity filter {ident!r} could not be matched against the {method} list: {exc}"
            ) from None
    return _uniq(result)


class NodeList:
    """``flatfile`` / ``stdin`` discovery over a known list of identities."""

    def __init__(self, nodes: Sequence[str], name: str) -> None:
        self.nodes = _uniq(nodes)
        self.name = name

    @classmethod
    def from_file(cls, path: str) -> NodeList:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read node list {path}: {exc.strerror or exc}") from None
        return cls(parse_node_lines(text, path), "flatfile")

    def discover(self, flt: Filter, timeout: float) -> tuple[str, ...]:
        return narrow_by_identity(self.nodes, flt, self.name)


class Broadcast:
    """The ``mc`` method: ask every node matching the filter to say ``pong``.

    ``quiet`` (seconds, None for off) ends discovery once no new node answered for that
    long, the timeout staying the upper bound.  ``rejected`` counts, over this object's
    life, the replies refused as forged or undecodable; ``hooks`` hears each one.
    """

    name = "mc"

    def __init__(
        self,
        connector: Connector,
        security: SecurityProvider,
        *,
        identity: str,
        collective: str,
        ttl: int = 60,
        limit: int | None = None,
        quiet: float | None = None,
        hooks: ExchangeHooks | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connector = connector
        self.security = security
        self.identity = identity
        self.collective = collective
        self.ttl = ttl
        self.limit = limit
        self.quiet = quiet
        self.hooks = hooks
        self.clock = clock
        self.rejected = 0

    def discover(self, flt: Filter, timeout: float) -> tuple[str, ...]:
        got = ping(
            self.connector,
            self.security,
            flt,
            identity=self.identity,
            collective=self.collective,
            ttl=self.ttl,
            timeout=timeout,
            limit=self.limit,
            quiet=self.quiet,
            hooks=self.hooks,
            clock=self.clock,
        )
        self.rejected += got.rejected
        return _uniq(got.senders)


def _pong(reply: Reply) -> None:
    """A discovery answer carries nothing we use (Ruby sends ``"pong"``)."""


def ping(
    connector: Connector,
    security: SecurityProvider,
    flt: Filter,
    *,
    identity: str,
    collective: str,
    ttl: int,
    timeout: float,
    limit: int | None = None,
    expect: Sequence[str] = (),
    quiet: float | None = None,
    hooks: ExchangeHooks | None = None,
    on_reply: Callable[[str, float], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Collected[None]:
    """Broadcast ``"ping"`` to the discovery agent and collect who answers, until
    ``timeout`` — or earlier once ``limit`` replies arrived, every name in ``expect``
    answered, or (with ``quiet``) nobody new answered for ``quiet`` seconds.

    Replies that fail security or do not decode are counted in ``Collected.rejected`` and
    reported to ``hooks.reply_rejected``; replies to other requests are ignored.
    ``on_reply(sender, ms)`` hears each accepted answer as it comes.  TransportError
    propagates.
    """
    connector.connect()
    reply_to = connector.reply_queue()
    req = Request(
        agent="discovery",
        collective=collective,
        body="ping",
        senderid=identity,
        requestid=new_requestid(),
        callerid=security.callerid,
        ttl=ttl,
        msgtime=int(time.time()),
        filter=flt.to_wire(),  # as Ruby: the discovery agent is not added to the filter
    )
    return exchange(
        connector,
        security,
        req,
        (Target.broadcast(collective, "discovery"),),
        reply_to=reply_to,
        decode=_pong,
        until=Until(timeout, expect, limit, quiet),
        hooks=hooks,
        on_answer=None if on_reply is None else (lambda a: on_reply(a.sender, a.ms)),
        clock=clock,
    )
