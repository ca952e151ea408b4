"""The RPC client: discover → plan → exchange (publish, collect, decode) → Results.

Build one with :meth:`Client.from_config` (connector and security provider by entry point).
The client never prints: it reports progress through :class:`ClientEvents` hooks (no-ops
by default; the CLI subclasses them).  Decisions that are pure (limit picking, addressing
mode, wait time) are module functions so they can be tested on their own; the addressing
rule is :func:`exchange.plan_call`, and every send-and-collect, discovery's included, is one
:func:`exchange.exchange`.

Addressing, as Ruby's client decides it (spec §4.3): a request goes *direct* (one message
per node to ``<collective>_directed``) when direct addressing is on and either the filter
holds only literal identities, the discovery method is not ``mc``, batching or a node limit
is in force, or at most ``direct_addressing_threshold`` nodes were discovered; otherwise one
*broadcast* goes to ``<collective>_broadcast`` and the nodes apply the filter themselves.
When the direct decision is made before encoding, the wire filter is reset to just the agent
(as Ruby does); when the threshold makes it, the original filter stays in the payload.

The client waits for every discovered node until the timeout, keeps only authentic replies
with its own request id, and names the nodes that stayed silent in ``Results.no_response``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .connectors.base import Connector, Target
from .discovery import Broadcast, Discovery, NodeList, Static, ping
from .errors import ConfigError, UsageError
from .exchange import Answer, ExchangeHooks, Until, exchange, plan_call
from .filter import Filter
from .message import Reply, Request, new_requestid
from .results import NodeReply, PingReply, PingResults, Results, Stats
from .rpc import RPCReply, RPCRequest
from .security.base import SecurityProvider

if TYPE_CHECKING:
    from .config import Config

DEFAULT_DISCOVERY_TIMEOUT = {"mc": 2.0, "flatfile": 0.0, "stdin": 0.0, "static": 0.0}


@dataclass(frozen=True)
class CallOptions:
    """How to make one call. ``None`` means "use config or the method's default"."""

    timeout: float | None = None
    agent_timeout: float = 10.0
    discovery_timeout: float | None = None
    discovery_method: str = "mc"
    nodes: tuple[str, ...] | None = None
    collective: str | None = None
    ttl: int | None = None
    batch_size: int = 0
    batch_sleep: float = 1.0
    limit_nodes: str | None = None
    limit_method: str = "first"
    limit_seed: int | None = None
    process_results: bool = True
    #: seconds: end ``mc`` discovery (and ping) once no new node answered for this long
    discovery_quiet: float | None = None


class ClientEvents(ExchangeHooks):
    """Progress hooks; every one does nothing by default. The engine never prints."""

    def discovery_started(self, method: str, timeout: float) -> None:
        pass

    def discovery_finished(self, nodes: Sequence[str], seconds: float) -> None:
        pass

    def request_sent(self, requestid: str, nodes: Sequence[str], direct: bool, total: int) -> None:
        pass

    def reply_received(self, reply: NodeReply, received: int, expected: int) -> None:
        pass

    def batch_sleep(self, seconds: float) -> None:
        pass


# ---------------------------------------------------------------- pure decisions
def parse_limit(text: str) -> str:
    """Validate ``--limit-nodes`` (``N`` or ``N%``), return it unchanged."""
    if not re.fullmatch(r"\d+%?", text):
        raise UsageError(
            f"invalid --limit-nodes {text!r}; give a count like 5 or a percentage like 25%"
        )
    return text


def pick_nodes(
    nodes: Sequence[str], limit: str, method: str = "first", seed: int | None = None
) -> tuple[str, ...]:
    """Ruby's ``pick_nodes_from_discovered``: N nodes, or N% (truncated, at least 1)."""
    if limit.endswith("%"):
        count = int(len(nodes) * (float(limit[:-1]) / 100))
        count = count or 1
    else:
        count = int(limit)
    if len(nodes) <= count:
        return tuple(nodes)
    if method == "first":
        return tuple(nodes[:count])
    haystack = sorted(nodes) if seed is not None else list(nodes)
    import random  # only for --limit-nodes; not at start-up

    rng = random.Random(seed)
    return tuple(haystack.pop(rng.randrange(len(haystack))) for _ in range(count))


def reply_wait(opts: CallOptions, discovery_timeout: float) -> float:
    """Seconds to wait for replies: ``-t`` if given, else the agent's DDL timeout plus the
    discovery timeout (Ruby's rule)."""
    return opts.timeout if opts.timeout is not None else opts.agent_timeout + discovery_timeout


# ---------------------------------------------------------------- the client
@dataclass
class Client:
    """Makes calls over one connector with one security provider.

    Build it with :meth:`from_config` (the composition root the CLI, the tests and the
    orchestrator share); the constructor is for tests that hand in doubles.
    """

    connector: Connector
    security: SecurityProvider
    identity: str
    collective: str = "mcollective"
    collectives: tuple[str, ...] = ("mcollective",)
    ttl: int = 60
    direct_addressing: bool = True
    direct_addressing_threshold: int = 10
    config_discovery_timeout: float | None = None
    config_discovery_quiet: float | None = None
    events: ClientEvents = field(default_factory=ClientEvents)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_config(cls, config: Config, events: ClientEvents | None = None) -> Client:
        """A client for ``config``: the connector and the security provider named there
        (found by entry point, see :mod:`mcollective_py.plugins`), identity, collectives,
        ttl, addressing and discovery settings.  Not yet connected.  Raises ConfigError
        for an unknown or incomplete connector/security setting."""
        from . import plugins

        quiet_ms = config.get_float("discovery_quiet")
        if quiet_ms is not None and not quiet_ms >= 0:
            raise ConfigError(
                f"discovery_quiet must be a number of milliseconds >= 0 (0 is off), got "
                f"{config.get('discovery_quiet')!r} (from {config.origin('discovery_quiet')})"
            )
        return cls(
            connector=plugins.connector_from_config(config),
            security=plugins.security_from_config(config),
            identity=config.identity,
            collective=config.main_collective,
            collectives=config.collectives,
            ttl=config.ttl,
            direct_addressing=config.direct_addressing,
            direct_addressing_threshold=config.direct_addressing_threshold,
            config_discovery_timeout=config.discovery_timeout,
            config_discovery_quiet=None if not quiet_ms else quiet_ms / 1000.0,
            events=events or ClientEvents(),
        )

    # ---------------------------------------------------------------- helpers
    def _collective(self, opts: CallOptions) -> str:
        c = opts.collective or self.collective
        if c not in self.collectives:
            raise UsageError(
                f"collective {c!r} is not one of the configured collectives ({', '.join(self.collectives)})"
            )
        return c

    def discovery_timeout(self, opts: CallOptions, method: str) -> float:
        if opts.discovery_timeout is not None:
            return opts.discovery_timeout
        if self.config_discovery_timeout is not None and method == "mc":
            return self.config_discovery_timeout
        return DEFAULT_DISCOVERY_TIMEOUT.get(method, 2.0)

    def discovery_quiet(self, opts: CallOptions) -> float | None:
        """The quiet period in seconds (``--discovery-quiet``, else ``discovery_quiet``),
        or None: wait the whole discovery timeout, as Ruby does."""
        if opts.discovery_quiet is not None:
            return opts.discovery_quiet or None
        return self.config_discovery_quiet

    def _method_for(self, flt: Filter, opts: CallOptions) -> str:
        if opts.discovery_method != "mc" and flt.compound:
            return "mc"  # compound filters force mc, as in Ruby
        return opts.discovery_method

    def discoverer(self, flt: Filter, opts: CallOptions) -> Discovery:
        method = self._method_for(flt, opts)
        if method == "mc":
            if flt.is_identity_only():
                return Static([str(i) for i in flt.identity])
            return Broadcast(
                self.connector,
                self.security,
                identity=self.identity,
                collective=self._collective(opts),
                ttl=opts.ttl or self.ttl,
                quiet=self.discovery_quiet(opts),
                hooks=self.events,
                clock=self.clock,
            )
        if method in ("flatfile", "stdin"):
            if opts.nodes is None:
                raise UsageError(f"the {method} discovery method needs a node list")
            if not self.direct_addressing:
                raise UsageError(
                    f"the {method} discovery method needs direct_addressing = 1 in the config"
                )
            return NodeList(opts.nodes, method)
        raise UsageError(f"unknown discovery method {method!r}; use mc, flatfile or stdin")

    def discover(
        self, flt: Filter, opts: CallOptions = CallOptions()
    ) -> tuple[tuple[str, ...], float, str]:
        """Run discovery; returns ``(nodes, seconds_taken, method_name)``."""
        d = self.discoverer(flt, opts)
        timeout = self.discovery_timeout(opts, d.name)
        start = self.clock()
        if d.name == "mc":
            self.events.discovery_started(d.name, timeout)
        nodes = d.discover(flt, timeout)
        took = self.clock() - start
        if d.name == "mc":
            self.events.discovery_finished(nodes, took)
        return nodes, took, d.name

    # ---------------------------------------------------------------- rpc
    def rpc(
        self,
        agent: str,
        action: str,
        data: Mapping[str, Any] | None = None,
        flt: Filter | None = None,
        opts: CallOptions = CallOptions(),
    ) -> Results:
        """Call ``agent#action`` with ``data`` on every node matching ``flt``.

        ``data`` must already be validated and typed (the DDL's job).  Raises TransportError
        on broker trouble and UsageError on contradictory options; node failures are data.
        Replies refused as forged or undecodable are counted in ``Results.rejected_replies``
        and each is reported to ``events.reply_rejected``.
        """
        flt = (flt or Filter()).with_agent(agent)
        wall_start = time.time()
        t0 = self.clock()
        collective = self._collective(opts)
        ttl = opts.ttl or self.ttl
        if opts.limit_nodes is not None:
            parse_limit(opts.limit_nodes)

        nodes, disc_time, method = self.discover(flt, opts)
        if opts.limit_nodes is not None:
            nodes = pick_nodes(nodes, opts.limit_nodes, opts.limit_method, opts.limit_seed)
        requestid = new_requestid()
        if not nodes:
            return Results(
                agent,
                action,
                requestid,
                (),
                (),
                Stats(wall_start, disc_time, 0.0, self.clock() - t0),
                method,
                sent=False,
            )

        plan = plan_call(
            agent,
            flt,
            nodes,
            method=method,
            direct_addressing=self.direct_addressing,
            threshold=self.direct_addressing_threshold,
            batch_size=opts.batch_size,
            limited=opts.limit_nodes is not None,
        )
        body = RPCRequest(
            agent, action, self.security.callerid, dict(data or {}), opts.process_results
        ).to_wire()
        self.connector.connect()
        reply_to = self.connector.reply_queue() if opts.process_results else None
        req = Request(
            agent=agent,
            collective=collective,
            body=body,
            senderid=self.identity,
            requestid=requestid,
            callerid=self.security.callerid,
            ttl=ttl,
            msgtime=int(time.time()),
            filter=plan.wire_filter,
        )
        wait = reply_wait(opts, self.discovery_timeout(opts, method))

        replies: list[NodeReply] = []

        def heard(answer: Answer[RPCReply]) -> None:
            body = answer.value
            nr = NodeReply(
                sender=answer.sender,
                agent=agent,
                action=action,
                statuscode=body.statuscode,
                statusmsg=body.statusmsg,
                data=body.data,
                time_ms=answer.ms,
            )
            replies.append(nr)
            self.events.reply_received(nr, len(replies), len(nodes))

        rejected = 0
        block_start = self.clock()
        for n, batch in enumerate(plan.batches):
            if n > 0 and opts.batch_sleep > 0:
                self.events.batch_sleep(opts.batch_sleep)
                self.sleep(opts.batch_sleep)
            # msgtime is per message in Ruby too: a later batch must not expire early.
            got = exchange(
                self.connector,
                self.security,
                replace(req, msgtime=int(time.time())),
                plan.targets(collective, agent, batch),
                reply_to=reply_to,
                decode=_rpc_body,
                until=Until(wait, batch),
                hooks=_BatchHooks(self.events, requestid, batch, plan.direct, len(nodes)),
                on_answer=heard,
                clock=self.clock,
            )
            rejected += got.rejected

        block_time = self.clock() - block_start
        return Results(
            agent=agent,
            action=action,
            requestid=requestid,
            discovered=tuple(nodes),
            replies=tuple(replies),
            stats=Stats(wall_start, disc_time, block_time, self.clock() - t0),
            discovery_method=method,
            rejected_replies=rejected,
        )

    # ---------------------------------------------------------------- ping
    def ping(
        self,
        flt: Filter | None = None,
        *,
        timeout: float = 5.0,
        opts: CallOptions = CallOptions(),
        on_reply: Callable[[str, float], Any] | None = None,
    ) -> PingResults:
        """``mco ping``: broadcast to the discovery agent, wait ``timeout`` (plus ``--dt``),
        return every answer with its round-trip time, and how many replies were refused.
        Stops early when the filter names literal identities and all of them answered, or
        when the quiet period (``opts.discovery_quiet`` / ``discovery_quiet``) passes with
        no new answer."""
        flt = flt or Filter()
        expect = [str(i) for i in flt.identity] if flt.is_identity_only() else []
        dt = opts.discovery_timeout or 0.0
        got = ping(
            self.connector,
            self.security,
            flt,
            identity=self.identity,
            collective=self._collective(opts),
            ttl=opts.ttl or self.ttl,
            timeout=timeout + dt,
            expect=expect,
            quiet=self.discovery_quiet(opts),
            hooks=self.events,
            on_reply=on_reply,
            clock=self.clock,
        )
        return PingResults(
            tuple(PingReply(a.sender, a.ms) for a in got.answers), got.rejected, got.reasons
        )


def _rpc_body(reply: Reply) -> RPCReply:
    return RPCReply.from_wire(reply.body)


class _BatchHooks(ExchangeHooks):
    """One batch's exchange, reported as the client's events."""

    def __init__(
        self, events: ClientEvents, requestid: str, batch: Sequence[str], direct: bool, total: int
    ) -> None:
        self.events = events
        self.sent = (requestid, tuple(batch), direct, total)

    def request_published(self, request: Request, targets: Sequence[Target]) -> None:
        self.events.request_sent(*self.sent)

    def reply_rejected(self, reason: str) -> None:
        self.events.reply_rejected(reason)


__all__ = [
    "CallOptions",
    "Client",
    "ClientEvents",
    "parse_limit",
    "pick_nodes",
    "reply_wait",
]
