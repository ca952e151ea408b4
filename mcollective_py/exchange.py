"""One request exchange: publish to targets, collect replies, decode, count rejects, fire hooks.

Discovery (``discovery.ping``, the ``mc`` method) and RPC (``Client.rpc``) both send one
request and wait for the answers; both do it through :func:`exchange`, so a bad reply is
treated the same way everywhere.  Beside it sits :func:`plan_call`, the pure decision of *how*
an RPC call is addressed (direct or broadcast, which wire filter, which batches).

Contract of :func:`exchange`:

* The encoded request goes to every target, in order, with ``reply_to`` and ``ttl``;
  then ``hooks.request_published`` fires.
* Collection ends as :class:`Until` says: at the first of every name in ``expect``
  answered; ``limit`` replies accepted; ``timeout`` seconds after the publish; or, when
  ``quiet`` is set, ``quiet`` seconds after the last accepted reply (or after the publish,
  when none came yet).
* A reply that fails the security check or does not decode is *rejected*: counted, its
  reason handed to ``hooks.reply_rejected`` and logged (debug), and collection goes on.  A reply with another
  request id (an earlier call's straggler) or from a sender already heard is ignored, not
  counted: it is not wrong, just not ours.
* ``decode`` turns an authentic reply's body into the caller's value; a
  :class:`SerializationError` from it is a rejection too.
* TransportError propagates; nothing else is raised for anything a node sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .connectors.base import Connector, Target
from .errors import MarshalError, SecurityError, SerializationError
from .filter import Filter
from .message import Reply, Request
from .security.base import SecurityProvider

T = TypeVar("T")
log = logging.getLogger(__name__)

#: reasons kept per exchange (every reject is still counted and reported to the hooks): a
#: flood of garbage must not grow memory without bound
MAX_REASONS = 100


class ExchangeHooks:
    """What an exchange reports as it goes; every hook does nothing by default."""

    def request_published(self, request: Request, targets: Sequence[Target]) -> None:
        """The request went out to every target."""

    def reply_rejected(self, reason: str) -> None:
        """A reply was refused (bad signature, undecodable); ``reason`` says why."""


@dataclass(frozen=True)
class Until:
    """When collecting stops: ``timeout`` seconds after the publish at the latest; earlier
    once every name in ``expect`` answered, ``limit`` answers came, or (``quiet`` set) no
    new answer came for ``quiet`` seconds."""

    timeout: float
    expect: Collection[str] = ()
    limit: int | None = None
    quiet: float | None = None


@dataclass(frozen=True)
class Answer(Generic[T]):
    """One accepted reply: who sent it, the decoded value, milliseconds after the publish."""

    sender: str
    value: T
    ms: float


@dataclass(frozen=True)
class Collected(Generic[T]):
    """What one exchange collected: accepted answers in arrival order, and the rejects."""

    answers: tuple[Answer[T], ...] = ()
    rejected: int = 0
    #: why, for the first :data:`MAX_REASONS` rejects
    reasons: tuple[str, ...] = field(default=())
    #: why collection ended: "expected", "limit", "quiet", "timeout"
    ended: str = "timeout"

    @property
    def senders(self) -> tuple[str, ...]:
        return tuple(a.sender for a in self.answers)


def exchange(
    connector: Connector,
    security: SecurityProvider,
    request: Request,
    targets: Sequence[Target],
    *,
    reply_to: str | None,
    decode: Callable[[Reply], T],
    until: Until,
    hooks: ExchangeHooks | None = None,
    on_answer: Callable[[Answer[T]], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Collected[T]:
    """Publish ``request`` to ``targets`` and collect the answers (see the module contract).

    With ``reply_to`` None the request is only sent (``--no-results``): nothing is collected.
    """
    hooks = hooks or ExchangeHooks()
    payload = security.encode_request(request)
    for target in targets:
        connector.publish(
            target, payload, reply_to=reply_to, ttl=request.ttl, sender=request.senderid
        )
    sent_at = clock()
    hooks.request_published(request, targets)
    if reply_to is None:
        return Collected(ended="sent")
    expect, limit, quiet = until.expect, until.limit, until.quiet
    waiting = set(expect)
    answers: list[Answer[T]] = []
    seen: set[str] = set()
    reasons: list[str] = []
    rejected = 0

    def reject(reason: str) -> None:
        nonlocal rejected
        rejected += 1
        if len(reasons) < MAX_REASONS:
            reasons.append(reason)
        log.debug("request %s: rejected a reply: %s", request.requestid, reason)
        hooks.reply_rejected(reason)

    last = sent_at
    ended = "timeout"
    while True:
        if expect and not waiting:
            ended = "expected"
            break
        if limit is not None and len(answers) >= limit:
            ended = "limit"
            break
        now = clock()
        left = until.timeout - (now - sent_at)
        if left <= 0:
            break
        calm = None if quiet is None else quiet - (now - last)
        if calm is not None and calm <= 0:
            ended = "quiet"
            break
        delivery = connector.receive(left if calm is None else min(left, calm))
        if delivery is None:  # receive waited out the nearer bound
            ended = "quiet" if calm is not None and calm < left else "timeout"
            break
        try:
            reply = security.decode_reply(delivery.payload)
        except (SecurityError, SerializationError, MarshalError) as exc:
            reject(f"{type(exc).__name__}: {exc}")
            continue
        if reply.requestid != request.requestid or reply.senderid in seen:
            continue  # another call's reply, or a duplicate
        try:
            value = decode(reply)
        except (SerializationError, MarshalError) as exc:
            reject(f"{reply.senderid}: {exc}")
            continue
        seen.add(reply.senderid)
        waiting.discard(reply.senderid)
        last = clock()
        answer = Answer(reply.senderid, value, (last - sent_at) * 1000.0)
        answers.append(answer)
        if on_answer is not None:
            on_answer(answer)
    return Collected(tuple(answers), rejected, tuple(reasons), ended)


# ---------------------------------------------------------------- the pure decision
@dataclass(frozen=True)
class CallPlan:
    """How one RPC call is addressed.

    * ``direct``: one message per node to ``<collective>_directed``; else one broadcast.
    * ``wire_filter``: the filter hash the request carries.
    * ``batches``: the node groups sent together (one group without batching).
    """

    direct: bool
    wire_filter: dict[str, list[Any]]
    batches: tuple[tuple[str, ...], ...]

    def targets(self, collective: str, agent: str, batch: Sequence[str]) -> tuple[Target, ...]:
        """Where one batch goes."""
        if self.direct:
            return tuple(Target.directed(collective, node) for node in batch)
        return (Target.broadcast(collective, agent),)


def plan_call(
    agent: str,
    flt: Filter,
    nodes: Sequence[str],
    *,
    method: str = "mc",
    direct_addressing: bool = True,
    threshold: int = 10,
    batch_size: int = 0,
    limited: bool = False,
) -> CallPlan:
    """Ruby's addressing rule (spec §4.3) for a call to ``agent`` on the discovered ``nodes``.

    Direct when direct addressing is on and either the decision can be made before encoding
    (the filter holds only literal identities under ``mc``, the method is not ``mc``,
    batching, or a node limit) — then the wire filter is reset to the agent alone — or at
    most ``threshold`` nodes were discovered (the original filter stays).  Otherwise one
    broadcast carrying the filter.  ``flt`` must already include ``agent``.
    """
    early = direct_addressing and (
        (method == "mc" and flt.is_identity_only()) or method != "mc" or batch_size > 0 or limited
    )
    direct = early or (direct_addressing and len(nodes) <= threshold)
    wire = Filter().with_agent(agent).to_wire() if early else flt.to_wire()
    if batch_size > 0:
        batches = tuple(tuple(nodes[i : i + batch_size]) for i in range(0, len(nodes), batch_size))
    else:
        batches = (tuple(nodes),)
    return CallPlan(direct, wire, batches)


__all__ = [
    "Answer",
    "CallPlan",
    "Collected",
    "ExchangeHooks",
    "MAX_REASONS",
    "Until",
    "exchange",
    "plan_call",
]
