"""The ``psk`` security provider, byte-compatible with Ruby MCollective's ``psk`` plugin.

* ``:hash`` = MD5 hex of (serialized inner body bytes + psk), on requests and replies.
* Serializer: Marshal only (Ruby's psk has no serializer option).
* callerid from ``plugin.psk.callertype``: ``uid`` (default), ``gid``, ``group``, ``user``,
  ``identity``.  The envelope's callerid is not covered by the digest (as in Ruby); the
  body's ``:caller`` is, and a node refuses a request where the two differ
  (:func:`~.base.check_body_caller`).  Anyone with the psk may still claim any callerid.
* A bad digest raises DigestMismatch; Ruby nodes drop such messages silently, and so do ours.
"""

from __future__ import annotations

import getpass
import grp
import hashlib
import hmac
import os
import time

from ..errors import ConfigError, DigestMismatch, SerializationError
from ..message import Reply, Request
from ..rubytypes import AsciiString
from ..serializers import MARSHAL, Serializer
from .base import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_YAML_BYTES,
    Clock,
    SecurityProvider,
    check_body_caller,
    check_callerid,
    field,
    reply_envelope,
    request_envelope,
)

CALLERTYPES = ("uid", "gid", "group", "user", "identity")


def make_callerid(callertype: str, identity: str) -> str:
    """The callerid Ruby's psk plugin would send for ``callertype``."""
    if callertype == "uid":
        return f"uid={os.getuid()}"
    if callertype == "gid":
        return f"gid={os.getgid()}"
    if callertype == "group":
        return f"group={grp.getgrgid(os.getgid()).gr_name}"
    if callertype == "user":
        return f"user={getpass.getuser()}"
    if callertype == "identity":
        return f"identity={identity}"
    raise ConfigError(
        f"plugin.psk.callertype {callertype!r} is not supported; use one of {', '.join(CALLERTYPES)}"
    )


class PskSecurity(SecurityProvider):
    """Pre-shared-key MD5 digests over the serialized body."""

    name = "psk"

    def __init__(
        self,
        psk: str,
        *,
        callerid: str = "",
        serializer: Serializer = MARSHAL,
        clock: Clock = time.time,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_yaml_bytes: int = DEFAULT_MAX_YAML_BYTES,
    ) -> None:
        super().__init__(clock=clock, max_bytes=max_bytes, max_yaml_bytes=max_yaml_bytes)
        if not psk:
            raise ConfigError("no psk configured: set plugin.psk in the config or MCOLLECTIVE_PSK")
        self._psk = psk.encode("utf-8")
        self._callerid = callerid or f"uid={os.getuid()}"
        self.serializer = serializer

    def __repr__(self) -> str:  # never show the secret
        return f"PskSecurity(callerid={self._callerid!r})"

    @property
    def callerid(self) -> str:
        return self._callerid

    def digest(self, body: bytes) -> AsciiString:
        return AsciiString(hashlib.md5(body + self._psk).hexdigest())  # noqa: S324 - protocol

    def _verify(self, body: bytes, claimed: str, what: str) -> None:
        expected = self.digest(body).encode("ascii")
        if not hmac.compare_digest(expected, str(claimed).encode("utf-8", "surrogateescape")):
            raise DigestMismatch(f"{what} has a psk digest that does not match (wrong psk?)")

    # ---------------------------------------------------------------- requests
    def encode_request(self, req: Request) -> bytes:
        body = self.serializer.dumps(req.body)
        return self.serializer.dumps(request_envelope(req, body, self.digest(body)))

    def decode_request(self, payload: bytes) -> Request:
        self.check_size(payload, "request")
        env = self.serializer.loads(payload)
        if not isinstance(env, dict):
            raise SerializationError(f"request envelope is a {type(env).__name__}, not a Hash")
        body = field(env, "body", bytes, "request")
        self._verify(body, field(env, "hash", str, "request"), "request")
        callerid = check_callerid(field(env, "callerid", str, "request"))
        ttl = field(env, "ttl", int, "request")
        msgtime = field(env, "msgtime", int, "request")
        self.check_ttl(msgtime, ttl)
        flt = field(env, "filter", dict, "request")
        inner = self.serializer.loads(body)
        check_body_caller(inner, callerid)
        return Request(
            agent=field(env, "agent", str, "request"),
            collective=field(env, "collective", str, "request"),
            body=inner,
            senderid=field(env, "senderid", str, "request"),
            requestid=field(env, "requestid", str, "request"),
            callerid=callerid,
            ttl=ttl,
            msgtime=msgtime,
            filter=flt,
        )

    # ---------------------------------------------------------------- replies
    def encode_reply(self, reply: Reply) -> bytes:
        body = self.serializer.dumps(reply.body)
        return self.serializer.dumps(reply_envelope(reply, body, self.digest(body)))

    def decode_reply(self, payload: bytes) -> Reply:
        self.check_size(payload, "reply")
        env = self.serializer.loads(payload)
        if not isinstance(env, dict):
            raise SerializationError(f"reply envelope is a {type(env).__name__}, not a Hash")
        body = field(env, "body", bytes, "reply")
        self._verify(body, field(env, "hash", str, "reply"), "reply")
        return Reply(
            senderid=field(env, "senderid", str, "reply"),
            requestid=field(env, "requestid", str, "reply"),
            senderagent=field(env, "senderagent", str, "reply"),
            msgtime=field(env, "msgtime", int, "reply"),
            body=self.serializer.loads(body),
        )
