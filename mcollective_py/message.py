"""MCollective request and reply envelopes: the shell between security and the RPC body.

These hold decoded values only, never bytes: a security provider turns them into wire
payloads and back (see ``security/``).  ``body`` is the inner message: an RPC body
(``rpc.RPCRequest.to_wire()`` / ``rpc.RPCReply.to_wire()``) or, for the ``discovery``
agent, the plain String ``"ping"`` / ``"pong"``.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .rubytypes import AsciiString

REQUESTID_RE = re.compile(r"^[0-9a-f]{32}$")
CALLERID_RE = re.compile(r"^[\w]+=[\w.\-]+$")
IDENTITY_RE = re.compile(r"^[\w.\-]+$")


def new_requestid() -> AsciiString:
    """A fresh request id exactly as Ruby's ``SSL.uuid`` without dashes: a UUIDv5 in the DNS
    namespace of 16 random bytes' hex, as 32 lowercase hex chars (US-ASCII, like Ruby)."""
    return AsciiString(uuid.uuid5(uuid.NAMESPACE_DNS, os.urandom(16).hex()).hex)


def empty_filter() -> dict[str, list[Any]]:
    """Ruby's empty filter, with String keys in Ruby's order."""
    return {"fact": [], "cf_class": [], "agent": [], "identity": [], "compound": []}


@dataclass(frozen=True)
class Request:
    """A request as it travels: addressing, caller, freshness and the inner body."""

    agent: str
    collective: str
    body: Any
    senderid: str
    requestid: str
    callerid: str
    ttl: int
    msgtime: int
    filter: Mapping[str, Any] = field(default_factory=empty_filter)


@dataclass(frozen=True)
class Reply:
    """A node's reply: who answered which request, and the inner reply body."""

    senderid: str
    requestid: str
    senderagent: str
    msgtime: int
    body: Any
