"""SecurityProvider: turns Request/Reply envelopes into wire payloads and back.

Contract for every provider:

* ``encode_request(req) -> bytes`` / ``encode_reply(reply) -> bytes`` never fail on values
  built by this package (a value the serializer cannot write raises SerializationError).
* ``decode_request(payload)`` / ``decode_reply(payload)`` return the envelope only if the
  payload is well formed AND authentic (digest/signature) AND, for requests, within its TTL.
  Otherwise they raise: ``MarshalError``/``SerializationError`` (malformed),
  ``DigestMismatch`` (not authentic), ``MessageExpired`` (too old), ``InvalidCallerId``.
  They never raise anything else, whatever the bytes.
* ``callerid`` is the caller identity this provider stamps on requests (``uid=0``,
  ``cert=name``).

The clock is injectable (``clock``) so TTL tests run instantly.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidCallerId, MessageExpired, SerializationError
from ..message import CALLERID_RE, Reply, Request
from ..rubytypes import Symbol

Clock = Callable[[], float]


class SecurityProvider(ABC):
    """Encode/decode MCollective envelopes with authentication and freshness checks."""

    name: str = "base"

    def __init__(self, *, clock: Clock = time.time) -> None:
        self.clock = clock

    @property
    @abstractmethod
    def callerid(self) -> str:
        """The ``kind=value`` caller id stamped on requests made with this provider."""

    @abstractmethod
    def encode_request(self, req: Request) -> bytes: ...

    @abstractmethod
    def decode_request(self, payload: bytes) -> Request: ...

    @abstractmethod
    def encode_reply(self, reply: Reply) -> bytes: ...

    @abstractmethod
    def decode_reply(self, payload: bytes) -> Reply: ...

    # ---------------------------------------------------------------- shared checks
    def check_ttl(self, msgtime: int, ttl: int) -> None:
        """Raise MessageExpired if ``now - msgtime > ttl`` (a future msgtime is allowed, as in
        Ruby)."""
        age = int(self.clock()) - msgtime
        if age > ttl:
            raise MessageExpired(f"message is {age} seconds old, TTL is {ttl}")


def request_envelope(req: Request, body: Any, signature: str) -> dict[Symbol, Any]:
    """The outer request Hash every provider serializes, in Ruby's key order
    (``Security::Base#create_request``): body, senderid, requestid, filter, collective, agent,
    callerid, ttl, msgtime, hash."""
    return {
        Symbol("body"): body,
        Symbol("senderid"): req.senderid,
        Symbol("requestid"): req.requestid,
        Symbol("filter"): req.filter,
        Symbol("collective"): req.collective,
        Symbol("agent"): req.agent,
        Symbol("callerid"): req.callerid,
        Symbol("ttl"): req.ttl,
        Symbol("msgtime"): req.msgtime,
        Symbol("hash"): signature,
    }


def reply_envelope(reply: Reply, body: Any, signature: str) -> dict[Symbol, Any]:
    """The outer reply Hash, in Ruby's key order (``create_reply``): senderid, requestid,
    senderagent, msgtime, body, hash."""
    return {
        Symbol("senderid"): reply.senderid,
        Symbol("requestid"): reply.requestid,
        Symbol("senderagent"): reply.senderagent,
        Symbol("msgtime"): reply.msgtime,
        Symbol("body"): body,
        Symbol("hash"): signature,
    }


def field(env: Mapping[Any, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """Fetch a required envelope field (Symbol or String key) of the given type."""
    for k, v in env.items():
        if k == key:
            if not isinstance(v, kind) or isinstance(v, bool) and bool not in _as_tuple(kind):
                raise SerializationError(f"{what} field :{key} has type {type(v).__name__}")
            return v
    raise SerializationError(f"{what} lacks the :{key} field")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def check_callerid(callerid: str) -> str:
    if not CALLERID_RE.match(callerid):
        raise InvalidCallerId(f"callerid {callerid!r} is not of the form kind=value")
    return callerid
