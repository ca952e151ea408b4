"""psk security against the real captured vectors (../shared/vectors/psk-marshal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcollective_py import marshal
from mcollective_py.errors import (
    DigestMismatch,
    InvalidCallerId,
    MarshalError,
    MessageExpired,
    SerializationError,
)
from mcollective_py.message import Reply, Request, new_requestid
from mcollective_py.rubytypes import AsciiString, Symbol
from mcollective_py.security.psk import PskSecurity, make_callerid
from tests.conftest import VECTORS

PSK_DIR = VECTORS / "psk-marshal"
REQUESTS = sorted(p for p in PSK_DIR.glob("*request*.body.bin"))
REPLIES = sorted(p for p in PSK_DIR.glob("*reply*.body.bin"))


def sec(now: float = 1795691300) -> PskSecurity:
    return PskSecurity("mco-lab-psk", callerid="uid=0", clock=lambda: now)


def test_vectors_are_present() -> None:
    assert len(REQUESTS) >= 8 and len(REPLIES) >= 8


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.name)
def test_request_vector_decodes_and_reencodes_identically(path: Path) -> None:
    raw = path.read_bytes()
    s = sec()
    req = s.decode_request(raw)
    assert req.collective == "mcollective" and req.senderid == "mco-lab-client"
    assert req.callerid == "uid=0" and req.ttl == 60
    assert s.encode_request(req) == raw


@pytest.mark.parametrize("path", REPLIES, ids=lambda p: p.name)
def test_reply_vector_decodes_and_reencodes_identically(path: Path) -> None:
    raw = path.read_bytes()
    s = sec()
    rep = s.decode_reply(raw)
    assert rep.body == "pong" or rep.body[Symbol("statuscode")] == 0
    assert s.encode_reply(rep) == raw


def test_we_build_the_directed_rpcutil_request_byte_for_byte() -> None:
    """A request built from scratch (not decoded) equals what Ruby mco sent."""
    raw = (PSK_DIR / "rpcutil-ping-directed-request.sent.body.bin").read_bytes()
    want = sec().decode_request(raw)
    agent = "rpcutil"  # Ruby links the outer :agent to the filter's agent string: same object
    body = {
        Symbol("agent"): "rpcutil",
        Symbol("action"): AsciiString("ping"),
        Symbol("caller"): "uid=0",
        Symbol("data"): {Symbol("process_results"): True},
    }
    req = Request(
        agent=agent,
        collective="mcollective",
        body=body,
        senderid="mco-lab-client",
        requestid=AsciiString(want.requestid),
        callerid="uid=0",
        ttl=60,
        msgtime=want.msgtime,
        filter={"fact": [], "cf_class": [], "agent": [agent], "identity": [], "compound": []},
    )
    assert sec().encode_request(req) == raw


def test_wrong_psk_is_refused() -> None:
    raw = REQUESTS[0].read_bytes()
    with pytest.raises(
        DigestMismatch, match=r"^request has a psk digest that does not match \(wrong psk\?\)$"
    ):
        PskSecurity("not-the-psk", clock=lambda: 1795691300).decode_request(raw)


def test_expired_request_is_refused_and_future_is_allowed() -> None:
    raw = (PSK_DIR / "rpcutil-ping-directed-request.sent.body.bin").read_bytes()
    with pytest.raises(MessageExpired, match=r"^message is 61 seconds old, TTL is 60$"):
        sec(now=1795691253 + 61).decode_request(raw)
    sec(now=1795691253 + 60).decode_request(raw)
    sec(now=1795691253 - 3600).decode_request(raw)  # msgtime in the future: allowed, as in Ruby


def test_tampered_body_is_refused() -> None:
    raw = bytearray((PSK_DIR / "rpcutil-ping-directed-request.sent.body.bin").read_bytes())
    i = raw.index(b"ping")
    raw[i] = ord("q")
    with pytest.raises(DigestMismatch):
        sec().decode_request(bytes(raw))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"garbage",
        b"\x04\x08[\x00",
        marshal.dumps({Symbol("body"): "x"}),
        marshal.dumps("just a string"),
    ],
)
def test_malformed_payloads_raise_only_documented_errors(payload: bytes) -> None:
    with pytest.raises((MarshalError, SerializationError)):
        sec().decode_request(payload)


def test_bad_callerid_is_refused() -> None:
    s = sec()
    req = Request(
        "rpcutil", "mcollective", "ping", "me", new_requestid(), "not a callerid", 60, 1795691300
    )
    with pytest.raises(
        InvalidCallerId, match=r"callerid 'not a callerid' is not of the form kind=value"
    ):
        s.decode_request(s.encode_request(req))


def test_reply_roundtrip_and_requestid_kept() -> None:
    s = sec()
    rep = Reply(
        "node1",
        new_requestid(),
        "rpcutil",
        1795691300,
        {Symbol("statuscode"): 0, Symbol("statusmsg"): "OK", Symbol("data"): {}},
    )
    assert s.decode_reply(s.encode_reply(rep)) == rep


def test_callerid_kinds() -> None:
    import os

    assert make_callerid("uid", "x") == f"uid={os.getuid()}"
    assert make_callerid("identity", "node1") == "identity=node1"
    with pytest.raises(Exception, match=r"plugin.psk.callertype 'nope' is not supported"):
        make_callerid("nope", "x")


def test_repr_never_shows_the_psk() -> None:
    assert "mco-lab-psk" not in repr(sec())
