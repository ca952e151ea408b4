"""Results of one RPC call: the replies, who was asked, who stayed silent, and timings.

Pure data (frozen dataclasses); rendering lives in ``render.py``, exit codes in ``cli/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NodeReply:
    """One node's answer. ``data`` keys are plain strings; values are decoded Ruby values."""

    sender: str
    agent: str
    action: str
    statuscode: int
    statusmsg: str
    data: Mapping[str, Any] = field(default_factory=dict)
    time_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.statuscode == 0


@dataclass(frozen=True)
class Stats:
    """Timings in seconds (epoch start, durations), as ``mco``'s call stats show them."""

    start_time: float = 0.0
    discovery_time: float = 0.0
    block_time: float = 0.0
    total_time: float = 0.0


@dataclass(frozen=True)
class Results:
    """Everything one call produced.

    * ``discovered``: the nodes the request was meant for (in discovery order).
    * ``replies``: every authentic reply with this call's request id, in arrival order.
    * ``no_response``: discovered nodes that did not answer before the timeout.
    * ``unexpected``: nodes that answered but were not discovered (still in ``replies``).
    """

    agent: str
    action: str
    requestid: str
    discovered: tuple[str, ...]
    replies: tuple[NodeReply, ...]
    stats: Stats = Stats()
    discovery_method: str = "mc"
    sent: bool = True
    rejected_replies: int = 0

    @property
    def responders(self) -> tuple[str, ...]:
        return tuple(r.sender for r in self.replies)

    @property
    def no_response(self) -> tuple[str, ...]:
        seen = set(self.responders)
        return tuple(n for n in self.discovered if n not in seen)

    @property
    def unexpected(self) -> tuple[str, ...]:
        disc = set(self.discovered)
        return tuple(r.sender for r in self.replies if r.sender not in disc)

    @property
    def ok(self) -> tuple[NodeReply, ...]:
        return tuple(r for r in self.replies if r.ok)

    @property
    def failed(self) -> tuple[NodeReply, ...]:
        return tuple(r for r in self.replies if not r.ok)

    @property
    def all_ok(self) -> bool:
        """True iff something was discovered, every discovered node answered, and all said OK."""
        return bool(self.discovered) and not self.no_response and not self.failed


@dataclass(frozen=True)
class PingReply:
    """One answer to ``ping`` (the discovery agent): who, and the round-trip in ms."""

    sender: str
    time_ms: float


@dataclass(frozen=True)
class PingResults:
    """Everything one ``ping`` produced: the answers in arrival order, and the replies refused
    (failed the security check or did not decode) with the reason for each."""

    replies: tuple[PingReply, ...] = ()
    rejected: int = 0
    reasons: tuple[str, ...] = ()

    @property
    def senders(self) -> tuple[str, ...]:
        return tuple(r.sender for r in self.replies)
