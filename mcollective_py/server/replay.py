"""Replay protection for the node: a request is executed at most once while it is valid.

A request is valid while ``int(now) - msgtime <= ttl`` (the security provider refuses it
after that, as Ruby does).  :class:`ReplayCache` remembers every admitted request until the
moment it stops being valid, so a captured request published again is refused for as long as
the TTL check alone would still let it through.

What identifies "the same request": its request id, and — when a ``content`` key is given
to :meth:`ReplayCache.check` — a digest of the parts the sender authenticated, and only
those (:meth:`SecurityProvider.authenticated`: with ssl the callerid, msgtime, ttl and body;
with psk the body, whose ``:caller`` is bound to the envelope callerid, since psk's digest
covers neither msgtime nor ttl; see :func:`content_key`).  The request id is not covered by
the psk digest nor the ssl signature, so an attacker re-publishing a capture can change it;
only the content key catches that, and an attacker cannot change what it is made of.  Its
price: two requests from one caller with the same body (and, with ssl, the same TTL and
``msgtime`` second) are executed once within the window (two ``mco ping`` runs within a
second, a health poll).  The node therefore uses the content key only with
``plugin.mcollective_py.replay_strict = 1``; by default it keys on request ids, as the
protocol intends (see docs/security.md).  :meth:`ReplayCache.admit` is the strict check.

* A message from further in the future than ``skew`` seconds is refused: it would otherwise
  stay valid (and have to be remembered) for as long as its sender's clock is ahead.  Ruby
  accepts any future ``msgtime``; this is where we are stricter (``skew`` is configurable).
* A TTL above ``max_ttl`` seconds is refused (``ttl_too_long``): no request is remembered for
  longer than ``max_ttl + skew`` seconds, so a huge TTL cannot make an entry permanent.
* The cache holds at most ``max_entries`` requests.  Expired entries are always forgotten
  first; when it is still full of requests that are all valid, new requests are refused
  (counted as ``full``) rather than forgetting one that could then be replayed: size it above
  your peak requests per ``max_ttl`` window.
* Ask only for a request that will run: *after* it was authenticated (``decode_request``)
  and after the collective, agent and filter checks (the daemon does), so that neither
  made-up requests nor altered copies aimed at other nodes take room.
* With psk, ``msgtime`` and ``ttl`` are not covered by the digest, so a capture re-sent with a
  new ``msgtime`` after its window is new again: only ssl makes the window itself authentic.

Thread-safe, O(log n) per request, and the clock is injectable.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import marshal
from ..errors import MarshalError
from ..message import Request

__all__ = ["DEFAULT_MAX_TTL", "OUTCOMES", "ReplayCache", "ReplayStats", "content_key"]

#: The longest TTL a node accepts by default (``plugin.mcollective_py.replay_max_ttl``).
DEFAULT_MAX_TTL = 3600

#: The outcomes :meth:`ReplayCache.check` reports; only ``admitted`` may be executed.
OUTCOMES = ("admitted", "replayed", "expired", "too_new", "ttl_too_long", "full")


def content_key(req: Request, parts: tuple[Any, ...] | None = None) -> str | None:
    """A digest of what the sender authenticated: ``parts``, from the security provider's
    :meth:`~mcollective_py.security.base.SecurityProvider.authenticated` (default: callerid,
    msgtime, ttl and body, as ssl signs them).  None if they cannot be serialized, which
    decoded values always can."""
    if parts is None:
        parts = (req.callerid, req.msgtime, req.ttl, req.body)
    try:
        raw = marshal.dumps(list(parts))
    except MarshalError:
        return None
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class ReplayStats:
    """How many requests got each outcome, and how many are remembered now."""

    admitted: int = 0
    replayed: int = 0
    expired: int = 0
    too_new: int = 0
    ttl_too_long: int = 0
    full: int = 0
    size: int = 0


class ReplayCache:
    """Requests seen within their TTL window (see the module docstring).

    ``skew``: how far (seconds) a request's ``msgtime`` may be ahead of our clock.
    ``max_ttl``: the longest TTL accepted.  ``max_entries``: the hard bound on remembered
    requests.  ``clock``: seconds since the epoch.
    """

    def __init__(
        self,
        *,
        skew: float = 60.0,
        max_entries: int = 100_000,
        max_ttl: int = DEFAULT_MAX_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if skew < 0 or max_entries < 1 or max_ttl < 1:
            raise ValueError("skew must be >= 0, max_entries and max_ttl >= 1")
        self.skew = skew
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.clock = clock
        self._until: dict[str, float] = {}  # "id:<requestid>" / "sum:<content key>" -> expiry
        self._heap: list[tuple[float, tuple[str, ...]]] = []  # one entry per remembered request
        self._counts = dict.fromkeys(OUTCOMES, 0)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ReplayCache(skew={self.skew}, max_entries={self.max_entries}, size={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._heap)

    def check(self, requestid: str, msgtime: int, ttl: int, content: str | None = None) -> str:
        """Record the request if it is new and valid; return one of :data:`OUTCOMES`.

        ``admitted``: first time seen, execute it.  ``replayed``: its request id or its
        ``content`` key was seen and is still remembered.  ``expired``: older than its TTL.
        ``too_new``: ``msgtime`` is more than ``skew`` seconds ahead.  ``ttl_too_long``: the
        TTL is over ``max_ttl``.  ``full``: no room without forgetting a valid request.
        """
        keys: tuple[str, ...] = (f"id:{requestid}",) + ((f"sum:{content}",) if content else ())
        now = self.clock()
        with self._lock:
            self._forget_expired(now)
            if any(k in self._until for k in keys):
                outcome = "replayed"
            elif int(now) - msgtime > ttl:  # the providers' own test (whole seconds)
                outcome = "expired"
            elif msgtime - now > self.skew:
                outcome = "too_new"
            elif ttl > self.max_ttl:
                outcome = "ttl_too_long"
            elif len(self._heap) >= self.max_entries:
                outcome = "full"
            else:
                until = float(msgtime + ttl + 1)  # valid while int(now) - msgtime <= ttl
                for k in keys:
                    self._until[k] = until
                heapq.heappush(self._heap, (until, keys))
                outcome = "admitted"
            self._counts[outcome] += 1
        return outcome

    def admit(self, req: Request, parts: tuple[Any, ...] | None = None) -> bool:
        """True if ``req`` may be executed (first time seen by id *and* content, within its
        window): the strict check.  ``parts``: what the provider authenticated (see
        :func:`content_key`).  Call it after ``decode_request``."""
        outcome = self.check(req.requestid, req.msgtime, req.ttl, content_key(req, parts))
        return outcome == "admitted"

    def __call__(self, req: Request) -> bool:
        return self.admit(req)

    def stats(self) -> ReplayStats:
        with self._lock:
            return ReplayStats(**self._counts, size=len(self._heap))

    def _forget_expired(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            until, keys = heapq.heappop(heap)
            for k in keys:
                if self._until.get(k) == until:
                    del self._until[k]
