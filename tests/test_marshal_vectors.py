"""Every Marshal body captured from real Ruby MCollective 2.12.5, decoded and re-encoded.

The vectors live in the shared directory (``$MCO_SHARED``, else ``<repo>/../shared``), under
``vectors/psk-marshal`` and ``vectors/ssl-marshal``.  For each ``*.body.bin`` (the outer
message; its ``:body`` is Marshal again) we decode both layers, compare them with the
structure Ruby wrote to the matching ``*.decoded.json``, and require ``dumps`` to give back
both layers byte for byte.  The spec's §2.1 example body is checked the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mcollective_py import marshal
from mcollective_py.rubytypes import AsciiString, Symbol

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MCO_SHARED", REPO.parent / "shared"))
VECTOR_DIRS = [SHARED / "vectors" / "psk-marshal", SHARED / "vectors" / "ssl-marshal"]
BODIES = sorted(p for d in VECTOR_DIRS for p in d.glob("*.body.bin"))
PSK = b"mco-lab-psk"

S = Symbol


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name.removesuffix('.body.bin')}"


def _raw(value: Any) -> bytes:
    """The bytes of a decoded Ruby String, whatever its Python type."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, AsciiString):
        return value.encode("ascii", "surrogateescape")
    return str(value).encode("utf-8", "surrogateescape")


def mismatches(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Differences between a decoded value and Ruby's JSON rendering of the same value.

    The rendering (``vectors/tools/decode.rb``): Symbols are ``":name"`` (keys and values),
    Strings that are not clean UTF-8 text are ``{"base64": ...}``, other Strings are plain
    JSON strings, whatever their encoding.  Hash key order must match.
    """
    if isinstance(expected, dict) and set(expected) == {"base64"}:
        if not isinstance(actual, (str, bytes)) or isinstance(actual, Symbol):
            return [f"{path}: expected a binary String, got {type(actual).__name__}"]
        if _raw(actual) != base64.b64decode(expected["base64"]):
            return [f"{path}: String bytes differ"]
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a Hash, got {type(actual).__name__}"]
        want = [(k[1:], True) if k.startswith(":") else (k, False) for k in expected]
        got = [(str.__str__(k), isinstance(k, Symbol)) for k in actual]
        if want != got:
            return [f"{path}: keys {got} != {want}"]
        problems = []
        for (name, _), (jkey, jvalue) in zip(want, expected.items(), strict=True):
            key = S(name) if jkey.startswith(":") else name
            problems += mismatches(jvalue, actual[key], f"{path}[{jkey!r}]")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected an Array of {len(expected)}, got {actual!r}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in mismatches(e, a, f"{path}[{i}]")
        ]
    if isinstance(expected, str):
        if isinstance(actual, Symbol):
            ok = ":" + actual == expected
        elif isinstance(actual, (str, bytes)):
            ok = _raw(actual) == expected.encode("utf-8")
        else:
            ok = False
        return [] if ok else [f"{path}: {actual!r} != {expected!r}"]
    if type(expected) is not type(actual) or expected != actual:
        return [f"{path}: {actual!r} != {expected!r}"]
    return []


def test_the_vectors_are_there() -> None:
    # 40 psk + 48 ssl bodies; a wrong MCO_SHARED must not make the suite pass vacuously.
    assert len(BODIES) == 88, f"vectors not found under {SHARED}"


@pytest.mark.parametrize("body_path", BODIES, ids=_id)
def test_vector_decodes_to_rubys_structure_and_reencodes_identically(body_path: Path) -> None:
    data = body_path.read_bytes()
    rendered = json.loads(
        body_path.with_name(body_path.name.replace(".body.bin", ".decoded.json")).read_text()
    )

    outer = marshal.loads(data)
    assert isinstance(outer, dict) and all(type(k) is Symbol for k in outer)
    assert mismatches({k: v for k, v in rendered.items() if k.startswith(":")}, outer) == []
    body = outer[S("body")]
    assert type(body) is bytes

    inner = marshal.loads(body)
    assert mismatches(rendered["body_decoded"], inner) == []

    assert marshal.dumps(inner) == body
    assert marshal.dumps(outer) == data


@pytest.mark.parametrize("body_path", [p for p in BODIES if "psk" in p.parent.name], ids=_id)
def test_psk_digest_is_over_the_decoded_body_bytes(body_path: Path) -> None:
    outer = marshal.loads(body_path.read_bytes())
    assert type(outer[S("hash")]) is AsciiString  # md5 hex is US-ASCII on the wire
    assert hashlib.md5(outer[S("body")] + PSK).hexdigest() == outer[S("hash")]


def test_rpc_request_shares_the_agent_string_like_ruby() -> None:
    # Ruby's client puts one String object in both :agent and filter["agent"]; the wire
    # has a link, and decoding gives one Python object.
    data = (SHARED / "vectors/psk-marshal/rpcutil-ping-bcast-request.sent.body.bin").read_bytes()
    outer = marshal.loads(data)
    assert outer[S("agent")] is outer[S("filter")]["agent"][0]
    assert b":\nagent@" in data


# The spec's §2.1 example inner RPC body, as printed there.
SPEC_EXAMPLE_BODY = bytes.fromhex(
    "0408 7b09 3a0a6167656e74 4922 0c7270637574696c 06 3a06 45 54"
    " 3a0b616374696f6e 4922 0970696e67 06 3b06 54"
    " 3a0b63616c6c6572 4922 0d7569643d31303030 06 3b06 54"
    " 3a0964617461 7b06 3a1470726f636573735f726573756c7473 54".replace(" ", "")
)
SPEC_EXAMPLE_VALUE = {
    S("agent"): "rpcutil",
    S("action"): "ping",
    S("caller"): "uid=1000",
    S("data"): {S("process_results"): True},
}


def test_spec_example_body() -> None:
    value = marshal.loads(SPEC_EXAMPLE_BODY)
    assert value == SPEC_EXAMPLE_VALUE
    assert [type(k) for k in value] == [Symbol] * 4
    assert all(type(v) is str for v in list(value.values())[:3])
    assert marshal.dumps(SPEC_EXAMPLE_VALUE) == SPEC_EXAMPLE_BODY
    # The spec's "full vector" digest is md5 of this body + psk "changeme".
    assert hashlib.md5(SPEC_EXAMPLE_BODY + b"changeme").hexdigest() == (
        "3d9b11785ef7db18ea15a64359817954"
    )


def test_spec_example_envelope_layout() -> None:
    # The byte fragments §2.1 gives for the outer envelope of the full vector.
    agent = "rpcutil"
    envelope = {
        S("body"): SPEC_EXAMPLE_BODY,
        S("senderid"): "client1.example",
        S("requestid"): AsciiString("0123456789abcdef0123456789abcdef"),
        S("filter"): {
            "fact": [],
            "cf_class": [],
            "agent": [agent],
            "identity": ["node1"],
            "compound": [],
        },
        S("collective"): "mcollective",
        S("agent"): agent,
        S("callerid"): "uid=0",
        S("ttl"): 60,
        S("msgtime"): 1795690635,
        S("hash"): AsciiString("3d9b11785ef7db18ea15a64359817954"),
    }
    data = marshal.dumps(envelope)
    assert data.startswith(
        bytes.fromhex("04087b0f") + bytes.fromhex("3a09626f6479 22 63".replace(" ", ""))
    )
    assert data[12 : 12 + 94] == SPEC_EXAMPLE_BODY
    assert bytes.fromhex("4922 09 66616374 06 3b07 54".replace(" ", "")) in data
    assert b":\x08ttl" + bytes.fromhex("6941") in data
    assert b":\x0cmsgtime" + bytes.fromhex("6c2b07") + (1795690635).to_bytes(4, "little") in data
    assert data.endswith(
        b":\x09hash"
        + bytes.fromhex("492225")
        + b"3d9b11785ef7db18ea15a64359817954"
        + bytes.fromhex("063b0746")
    )
    assert marshal.loads(data) == envelope
