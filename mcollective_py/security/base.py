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
* Size before work: a payload longer than ``max_bytes`` (``max_yaml_bytes`` with the YAML
  serializer, whose parser is ~100x slower than Marshal's) is refused with SerializationError
  before a single byte is decoded, so before any digest or signature check.
* Caller binding: a request whose signed RPC body carries a ``:caller`` different from the
  envelope's ``:callerid`` raises InvalidCallerId (:func:`check_body_caller`); Ruby clients
  always send both equal, and only the body is covered by the psk digest.
* :meth:`authenticated` gives the parts of a request the provider authenticated, for the
  node's strict replay check.

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

#: Default caps on a whole wire message (``plugin.mcollective_py.max_message_bytes`` /
#: ``max_yaml_bytes``).
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_YAML_BYTES = 128 * 1024


class SecurityProvider(ABC):
    """Encode/decode MCollective envelopes with authentication and freshness checks."""

    name: str = "base"
    #: the serializer of envelopes and bodies (set by each provider)
    serializer: Any
    #: whether ``msgtime`` and ``ttl`` are covered by the digest/signature
    signs_window: bool = False

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_yaml_bytes: int = DEFAULT_MAX_YAML_BYTES,
    ) -> None:
        self.clock = clock
        self.max_bytes = max_bytes
        self.max_yaml_bytes = max_yaml_bytes

    def check_size(self, payload: bytes, what: str) -> None:
        """SerializationError if ``payload`` is over the cap for this provider's serializer."""
        yaml = getattr(self.serializer, "name", "") == "yaml"
        cap = min(self.max_bytes, self.max_yaml_bytes) if yaml else self.max_bytes
        if len(payload) > cap:
            setting = (
                "max_yaml_bytes" if yaml and cap == self.max_yaml_bytes else "max_message_bytes"
            )
            raise SerializationError(
                f"{what} of {len(payload)} bytes is over the {cap}-byte cap "
                f"(plugin.mcollective_py.{setting}); not decoded"
            )

    def authenticated(self, req: Request) -> tuple[Any, ...]:
        """The parts of ``req`` its digest/signature covers (the caller through the body's
        ``:caller``, which :func:`check_body_caller` bound to the envelope; ``msgtime`` and
        ``ttl`` only when :attr:`signs_window`)."""
        if self.signs_window:
            return (req.callerid, req.msgtime, req.ttl, req.body)
        return (req.callerid, req.body)

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


def check_body_caller(body: Any, callerid: str) -> None:
    """InvalidCallerId unless an RPC body's signed ``:caller`` equals the envelope callerid.

    A body that is not a Hash (the ``discovery`` agent's ``"ping"``) carries no caller; a
    Hash with an ``:action`` must carry one."""
    if not isinstance(body, Mapping):
        return
    present, caller = False, None
    for k, v in body.items():
        if k == "caller":
            present, caller = True, v
            break
    if not present:
        if any(k == "action" for k in body):
            raise InvalidCallerId(f"request body has no :caller; the envelope claims {callerid!r}")
        return
    if not isinstance(caller, str) or caller != callerid:
        raise InvalidCallerId(
            f"envelope callerid {callerid!r} differs from the signed body's :caller "
            f"{str(caller)[:80]!r} (rewritten envelope?)"
        )


def check_callerid(callerid: str) -> str:
    if not CALLERID_RE.match(callerid):
        raise InvalidCallerId(f"callerid {callerid!r} is not of the form kind=value")
    return callerid
