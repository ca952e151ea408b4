"""ssl security against the real captured vectors (../shared/vectors/ssl-marshal, ssl-yaml).

Every captured body is decoded and checked the node's (or the client's) way, and every
accepted one is re-encoded from the decoded value with the key that really signed it: the
bytes must be Ruby's, signature included (PKCS#1 v1.5 is deterministic).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from mcollective_py import config, marshal
from mcollective_py.errors import (
    ConfigError,
    DigestMismatch,
    InvalidCallerId,
    MarshalError,
    MessageExpired,
    SerializationError,
)
from mcollective_py.message import Reply, Request, new_requestid
from mcollective_py.rubytypes import AsciiString, Symbol
from mcollective_py.security import from_config
from mcollective_py.security.ssl import (
    ClientCertDir,
    SslSecurity,
    load_private_key,
    load_public_key,
)
from mcollective_py.serializers import MARSHAL, SERIALIZERS, YAML
from tests.conftest import VECTORS

KEYS = VECTORS / "ssl-marshal" / "keys"
MSGTIME = 1795692132  # the rpcutil-ping-bcast request in ssl-marshal


def body_vectors() -> list[tuple[str, Path]]:
    return [
        (d, p)
        for d in ("ssl-marshal", "ssl-yaml")
        for p in sorted((VECTORS / d).glob("*.body.bin"))
    ]


def facts_of(path: Path) -> dict[str, Any]:
    """What the capture tool found when it checked this body the Ruby way."""
    return dict(
        json.loads(path.with_name(path.name.replace(".body.bin", ".decoded.json")).read_text())
    )


def clock_at(path: Path, serializer: Any) -> Callable[[], float]:
    env = serializer.loads(path.read_bytes())
    return lambda: float(env[Symbol("msgtime")])


@functools.cache
def private(name: str) -> rsa.RSAPrivateKey:  # loading validates the key: ~80 ms, so once
    return load_private_key(KEYS / f"{name}-private.pem", "test")


@functools.cache
def public(name: str) -> rsa.RSAPublicKey:
    return load_public_key(KEYS / f"{name}.pem", "test")


def client(
    serializer: Any = MARSHAL, key: str = "lab-client", clock: Callable[[], float] = lambda: MSGTIME
) -> SslSecurity:
    """What SslSecurity.client(...) builds from the lab's client.cfg keys."""
    return SslSecurity(
        private(key),
        f"cert={key}",
        reply_key=public("server-public"),
        serializer=serializer,
        clock=clock,
    )


def node(
    serializer: Any = MARSHAL,
    clock: Callable[[], float] = lambda: MSGTIME,
    enforce_ttl: bool = True,
) -> SslSecurity:
    """What SslSecurity.node(...) builds from the lab's server.cfg keys."""
    return SslSecurity(
        private("server"),
        "cert=server-public",
        reply_key=public("server-public"),
        caller_keys=ClientCertDir(KEYS / "clients"),
        serializer=serializer,
        enforce_ttl=enforce_ttl,
        role="node",
        clock=clock,
    )


def test_classmethods_build_what_the_helpers_build() -> None:
    c = SslSecurity.client(
        KEYS / "lab-client-private.pem",
        KEYS / "lab-client.pem",
        KEYS / "server-public.pem",
        serializer=YAML,
    )
    n = SslSecurity.node(
        KEYS / "server-private.pem", KEYS / "server-public.pem", KEYS / "clients", enforce_ttl=False
    )
    assert (repr(c), repr(n)) == (repr(client(YAML)), repr(node()))
    assert n.enforce_ttl is False and c.signature(b"x") == client().signature(b"x")


def test_every_vector_is_here() -> None:
    vectors = body_vectors()
    assert len(vectors) == 96
    requests = [facts_of(p) for _, p in vectors if facts_of(p)["verify_key"].startswith("clients/")]
    assert len(requests) == 50
    assert sum(1 for f in requests if not f["verify_key_exists"]) == 8  # intruder, 4 per serializer
    assert (
        sum(1 for f in requests if f["verify_key_exists"] and not f["signature_ok"]) == 8
    )  # forged


@pytest.mark.parametrize(
    ("kind", "path"), body_vectors(), ids=lambda v: v if isinstance(v, str) else v.name
)
def test_vector_is_judged_as_ruby_judged_it_and_reencodes_byte_for_byte(
    kind: str, path: Path
) -> None:
    facts = facts_of(path)
    serializer = SERIALIZERS[facts["serializer"]]
    raw = path.read_bytes()
    clock = clock_at(path, serializer)
    signer = facts["signed_by"].removesuffix("-private.pem")
    if facts["verify_key"].startswith("clients/"):  # a request, checked by a node
        if not facts["verify_key_exists"]:
            with pytest.raises(
                InvalidCallerId,
                match=r"^Could not find a public key for intruder \(intruder\.pem in plugin\.ssl_client_cert_dir\)$",
            ):
                node(serializer, clock).decode_request(raw)
            return
        if not facts["signature_ok"]:
            with pytest.raises(
                DigestMismatch, match=r"^request from cert=lab-client has an invalid signature$"
            ):
                node(serializer, clock).decode_request(raw)
            return
        req = node(serializer, clock).decode_request(raw)
        assert (
            req.callerid == "cert=lab-client" and req.senderid == "mco-lab-client" and req.ttl == 60
        )
        assert req.body == "ping" or req.body[Symbol("caller")] == "cert=lab-client"
        assert client(serializer, signer, clock).encode_request(req) == raw
    else:  # a reply, checked by the client
        rep = client(serializer, clock=clock).decode_reply(raw)
        assert rep.body == "pong" or rep.body[Symbol("statuscode")] == 0
        assert node(serializer, clock).encode_reply(rep) == raw


@pytest.mark.parametrize("kind", ["ssl-marshal", "ssl-yaml"])
@pytest.mark.parametrize("scenario", ["intruder", "forged"])
def test_refused_requests_are_still_reproduced_byte_for_byte(kind: str, scenario: str) -> None:
    """Decoding with a node that *does* trust the intruder key shows we build exactly the
    bytes Ruby's mco built with it (the refusal is about trust, not about format)."""
    raw = (VECTORS / kind / f"{scenario}-ping-bcast-request.sent.body.bin").read_bytes()
    serializer = SERIALIZERS[kind.removeprefix("ssl-")]
    trusting = SslSecurity(
        private("server"),
        "cert=server-public",
        caller_keys=_Keys({"intruder": KEYS / "intruder.pem", "lab-client": KEYS / "intruder.pem"}),
        serializer=serializer,
        clock=clock_at(VECTORS / kind / f"{scenario}-ping-bcast-request.sent.body.bin", serializer),
    )
    req = trusting.decode_request(raw)
    assert req.callerid == ("cert=intruder" if scenario == "intruder" else "cert=lab-client")
    again = SslSecurity(private("intruder"), req.callerid, serializer=serializer)
    assert again.encode_request(req) == raw


class _Keys:
    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def public_key(self, name: str) -> rsa.RSAPublicKey:
        if name not in self.files:
            raise InvalidCallerId(f"no key for {name}")
        return load_public_key(self.files[name], "test")


@pytest.mark.parametrize("serializer", [MARSHAL, YAML], ids=lambda s: s.name)
def test_we_build_the_directed_rpcutil_request_byte_for_byte(serializer: Any) -> None:
    """A request built from scratch (not decoded) equals what Ruby mco sent."""
    kind = f"ssl-{serializer.name}"
    raw = (VECTORS / kind / "rpcutil-ping-directed-request.sent.body.bin").read_bytes()
    want = node(
        serializer,
        clock_at(VECTORS / kind / "rpcutil-ping-directed-request.sent.body.bin", serializer),
    ).decode_request(raw)
    agent = "rpcutil"  # Ruby links the outer :agent to the filter's agent string: same object
    body = {
        Symbol("agent"): "rpcutil",
        Symbol("action"): AsciiString("ping"),
        Symbol("caller"): "cert=lab-client",
        Symbol("data"): {Symbol("process_results"): True},
    }
    sec = client(serializer)
    req = Request(
        agent=agent,
        collective="mcollective",
        body=body,
        senderid="mco-lab-client",
        requestid=AsciiString(want.requestid),
        callerid=sec.callerid,
        ttl=60,
        msgtime=want.msgtime,
        filter={"fact": [], "cf_class": [], "agent": [agent], "identity": [], "compound": []},
    )
    assert sec.encode_request(req) == raw


def test_signature_is_ruby_base64_encode64() -> None:
    sig = client().signature(b"anything")
    lines = sig.split("\n")
    assert type(sig) is AsciiString and sig.endswith("\n")
    assert [len(x) for x in lines] == [60, 60, 60, 60, 60, 44, 0]


# ---------------------------------------------------------------- tampering and freshness
def _envelope(raw: bytes) -> dict[Any, Any]:
    env = marshal.loads(raw)
    assert isinstance(env, dict)
    return env


RPC_REQUEST = VECTORS / "ssl-marshal" / "rpcutil-ping-bcast-request.sent.body.bin"


def test_tampered_body_is_refused() -> None:
    raw = bytearray(RPC_REQUEST.read_bytes())
    i = raw.index(b"ping")
    raw[i] = ord("q")
    with pytest.raises(
        DigestMismatch, match=r"^request from cert=lab-client has an invalid signature$"
    ):
        node().decode_request(bytes(raw))


@pytest.mark.parametrize(("key", "label"), [("ttl", "TTL"), ("msgtime", "message time")])
def test_outer_ttl_or_msgtime_that_differs_from_the_signed_one_is_refused(
    key: str, label: str
) -> None:
    env = _envelope(RPC_REQUEST.read_bytes())
    env[Symbol(key)] += 3600  # not covered by the signature: only the signed copy counts
    with pytest.raises(
        DigestMismatch,
        match=rf"^request \w+ from cert=lab-client@mco-lab-client {label} does not match the signed {label} - possible tampering$",
    ):
        node().decode_request(marshal.dumps(env))


def test_enforce_ttl_off_logs_and_uses_the_signed_values(caplog: pytest.LogCaptureFixture) -> None:
    env = _envelope(RPC_REQUEST.read_bytes())
    env[Symbol("ttl")] = 100000
    env[Symbol("msgtime")] = 1
    caplog.set_level(logging.WARNING, logger="mcollective_py.security.ssl")
    req = node(enforce_ttl=False).decode_request(marshal.dumps(env))
    assert (req.ttl, req.msgtime) == (60, MSGTIME)
    assert [r.getMessage().split(" ", 2)[2] for r in caplog.records] == [
        "from cert=lab-client@mco-lab-client TTL does not match the signed TTL - possible tampering",
        "from cert=lab-client@mco-lab-client message time does not match the signed message time - possible tampering",
    ]


def test_signed_body_without_ttl_is_refused_unless_enforce_ttl_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signer = client()
    body = marshal.dumps({Symbol("ssl_msg"): "ping"})
    env = _envelope(RPC_REQUEST.read_bytes())
    env[Symbol("body")] = body
    env[Symbol("hash")] = signer.signature(body)
    with pytest.raises(DigestMismatch, match=r"does not have a signed TTL$"):
        node().decode_request(marshal.dumps(env))
    req = node(enforce_ttl=False).decode_request(marshal.dumps(env))
    assert req.body == "ping" and req.ttl == 60
    assert "does not have a signed TTL" in caplog.text


def test_signed_body_that_is_not_the_wrapper_is_refused() -> None:
    signer = client()
    body = marshal.dumps(
        "ping"
    )  # Ruby's pre-2.0 protocol, accepted by Ruby when enforce_ttl is unset
    env = _envelope(RPC_REQUEST.read_bytes())
    env[Symbol("body")] = body
    env[Symbol("hash")] = signer.signature(body)
    with pytest.raises(SerializationError, match=r"^signed request body is a str, not the"):
        node().decode_request(marshal.dumps(env))


def test_expiry_uses_the_signed_msgtime() -> None:
    raw = RPC_REQUEST.read_bytes()
    with pytest.raises(MessageExpired, match=r"^message is 61 seconds old, TTL is 60$"):
        node(clock=lambda: MSGTIME + 61).decode_request(raw)
    node(clock=lambda: MSGTIME + 60).decode_request(raw)
    node(clock=lambda: MSGTIME - 3600).decode_request(raw)  # future msgtime: allowed, as in Ruby


@pytest.mark.parametrize(
    ("callerid", "error"),
    [
        ("uid=0", r"^callerid 'uid=0' is not of the form cert=<name> that ssl needs$"),
        (
            "xcert=lab-client",
            r"^callerid 'xcert=lab-client' is not of the form cert=<name> that ssl needs$",
        ),
        (
            "cert=nobody",
            r"^Could not find a public key for nobody \(nobody\.pem in plugin\.ssl_client_cert_dir\)$",
        ),
        ("cert=../lab-client", r"is not of the form kind=value$"),
        ("not a callerid", r"is not of the form kind=value$"),
    ],
)
def test_callerids_a_node_refuses(callerid: str, error: str) -> None:
    env = _envelope(RPC_REQUEST.read_bytes())
    env[Symbol("callerid")] = callerid
    with pytest.raises(InvalidCallerId, match=error):
        node().decode_request(marshal.dumps(env))


def test_reply_signed_by_another_key_is_refused() -> None:
    rep = Reply(
        "node1",
        new_requestid(),
        "rpcutil",
        MSGTIME,
        {Symbol("statuscode"): 0, Symbol("statusmsg"): "OK", Symbol("data"): {}},
    )
    impostor = SslSecurity(private("intruder"), "cert=intruder")
    with pytest.raises(DigestMismatch, match=r"^reply from node1 has an invalid signature$"):
        client().decode_reply(impostor.encode_reply(rep))
    assert client().decode_reply(node().encode_reply(rep)) == rep


@pytest.mark.parametrize("serializer", [MARSHAL, YAML], ids=lambda s: s.name)
def test_roundtrip_both_directions(serializer: Any) -> None:
    c, n = client(serializer), node(serializer)
    data = {
        Symbol("fact"): "osfamily",
        Symbol("text"): "multi\nline é",
        Symbol("process_results"): True,
    }
    body = {
        Symbol("agent"): "rpcutil",
        Symbol("action"): "get_fact",
        Symbol("caller"): c.callerid,
        Symbol("data"): data,
    }
    req = Request("rpcutil", "mcollective", body, "me", new_requestid(), c.callerid, 60, MSGTIME)
    assert n.decode_request(c.encode_request(req)) == req
    rep = Reply(
        "node1",
        req.requestid,
        "rpcutil",
        MSGTIME,
        {
            Symbol("statuscode"): 0,
            Symbol("statusmsg"): "OK",
            Symbol("data"): {Symbol("value"): None},
        },
    )
    assert c.decode_reply(n.encode_reply(rep)) == rep
    # a node's own requests (registration) carry the server key's name and verify by it
    own = Request(
        "registration",
        "mcollective",
        ["rpcutil"],
        "node1",
        new_requestid(),
        n.callerid,
        60,
        MSGTIME,
    )
    assert n.callerid == "cert=server-public"
    trusting = SslSecurity(
        private("server"),
        "cert=x",
        caller_keys=_Keys({"server-public": KEYS / "server-public.pem"}),
        serializer=serializer,
        clock=lambda: MSGTIME,
    )
    assert trusting.decode_request(n.encode_request(own)) == own


PROVIDERS = {s.name: (node(s), client(s)) for s in (MARSHAL, YAML)}  # keys load in ~80 ms each


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300)
    | st.sampled_from([b"", b"\x04\x08", b"---\n", b"--- {}\n", b"--- []\n", b"--- *a\n"])
)
def test_any_payload_raises_only_documented_errors(payload: bytes) -> None:
    for n, c in PROVIDERS.values():
        for call in (n.decode_request, c.decode_reply):
            try:
                call(payload)
            except (
                MarshalError,
                SerializationError,
                DigestMismatch,
                InvalidCallerId,
                MessageExpired,
            ):
                pass


@pytest.mark.parametrize(
    "env",
    [
        {Symbol("body"): b"x", Symbol("callerid"): "cert=lab-client"},
        {Symbol("body"): 5, Symbol("callerid"): "cert=lab-client", Symbol("hash"): "AAAA"},
        {
            Symbol("body"): b"x",
            Symbol("callerid"): "cert=lab-client",
            Symbol("hash"): "not base64!",
        },
        {Symbol("body"): b"x", Symbol("callerid"): "cert=lab-client", Symbol("hash"): "AAA"},
        "just a string",
    ],
)
def test_malformed_envelopes(env: Any) -> None:
    with pytest.raises((SerializationError, DigestMismatch)):
        node().decode_request(marshal.dumps(env))


# ---------------------------------------------------------------- keys and configuration
def test_client_cert_dir_accepts_x509_certificates_and_rereads_changed_files(
    tmp_path: Path,
) -> None:
    key = private("lab-client")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab-client")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(__import__("datetime").datetime(2020, 1, 1))
        .not_valid_after(__import__("datetime").datetime(2040, 1, 1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "lab-client.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    sec = SslSecurity.node(
        KEYS / "server-private.pem", KEYS / "server-public.pem", tmp_path, clock=lambda: MSGTIME
    )
    assert sec.decode_request(RPC_REQUEST.read_bytes()).callerid == "cert=lab-client"
    (tmp_path / "lab-client.pem").write_bytes(
        (KEYS / "intruder.pem").read_bytes() + b"\n"
    )  # replaced: new size
    with pytest.raises(DigestMismatch):
        sec.decode_request(RPC_REQUEST.read_bytes())
    (tmp_path / "lab-client.pem").write_text("garbage\n")
    with pytest.raises(InvalidCallerId, match=r"is not an RSA public key or X509 certificate$"):
        sec.decode_request(RPC_REQUEST.read_bytes())
    assert repr(ClientCertDir(tmp_path)) == "ClientCertDir(plugin.ssl_client_cert_dir)"


def _cfg(
    tmp_path: Path, text: str, role: str = "client", env: dict[str, str] | None = None
) -> config.Config:
    path = tmp_path / f"{role}.cfg"
    path.write_text(text)
    return config.load(str(path), role=role, env=env or {}, home=str(tmp_path), system_dirs=())


def test_from_config_client_and_node(tmp_path: Path) -> None:
    client_cfg = _cfg(
        tmp_path,
        f"securityprovider = ssl\nplugin.ssl_serializer = yaml\nplugin.ssl_server_public = {KEYS}/server-public.pem\nplugin.ssl_client_private = {KEYS}/lab-client-private.pem\nplugin.ssl_client_public = {KEYS}/lab-client.pem\n",
    )
    sec = from_config(client_cfg)
    assert isinstance(sec, SslSecurity)
    assert repr(sec) == "SslSecurity(role='client', callerid='cert=lab-client', serializer='yaml')"
    env = {
        "MCOLLECTIVE_SSL_PRIVATE": f"{KEYS}/intruder-private.pem",
        "MCOLLECTIVE_SSL_PUBLIC": f"{KEYS}/intruder.pem",
    }
    assert (
        from_config(_cfg(tmp_path, (tmp_path / "client.cfg").read_text(), env=env)).callerid
        == "cert=intruder"
    )
    node_cfg = _cfg(
        tmp_path,
        f"securityprovider = ssl\nplugin.ssl_server_private = {KEYS}/server-private.pem\nplugin.ssl_server_public = {KEYS}/server-public.pem\nplugin.ssl_client_cert_dir = {KEYS}/clients\nplugin.ssl.enforce_ttl = 0\n",
        role="server",
    )
    nsec = from_config(node_cfg)
    assert isinstance(nsec, SslSecurity)
    assert (
        repr(nsec)
        == "SslSecurity(role='node', callerid='cert=server-public', serializer='marshal')"
    )
    assert nsec.enforce_ttl is False


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "plugin.ssl_serializer = json\n",
            r"^plugin\.ssl_serializer = 'json' \(from .*client\.cfg:2\) is not supported; use one of marshal, yaml$",
        ),
        (
            "",
            r"^securityprovider ssl needs plugin\.ssl_client_private in the client config or export MCOLLECTIVE_SSL_PRIVATE/MCOLLECTIVE_SSL_PUBLIC$",
        ),
        (
            "plugin.ssl_client_private = /nonexistent/me.pem\nplugin.ssl_client_public = /x/me.pem\nplugin.ssl_server_public = /x/s.pem\n",
            r"^plugin\.ssl_client_private = /nonexistent/me\.pem \(from .*client\.cfg:2\) cannot be read: No such file or directory; check the path and its permissions$",
        ),
        (
            f"plugin.ssl_client_private = {KEYS}/lab-client.pem\nplugin.ssl_client_public = /x/me.pem\nplugin.ssl_server_public = /x/s.pem\n",
            r"^plugin\.ssl_client_private = .*/lab-client\.pem \(from .*\) is not a PEM RSA private key$",
        ),
        (
            f"plugin.ssl_client_private = {KEYS}/lab-client-private.pem\nplugin.ssl_client_public = /x/bad name.pem\nplugin.ssl_server_public = /x/s.pem\n",
            r"^plugin\.ssl_client_public = /x/bad name\.pem gives the callerid 'cert=bad name', which is not valid",
        ),
        (
            f"plugin.ssl_client_private = {KEYS}/lab-client-private.pem\nplugin.ssl_client_public = /x/me.pem\nplugin.ssl_server_public = {KEYS}/server-private.pem\n",
            r"^plugin\.ssl_server_public = .*/server-private\.pem \(from .*\) is not an RSA public key or X509 certificate$",
        ),
    ],
)
def test_client_config_errors_name_setting_and_path_never_contents(
    tmp_path: Path, text: str, error: str
) -> None:
    with pytest.raises(ConfigError, match=error) as info:
        from_config(_cfg(tmp_path, "securityprovider = ssl\n" + text))
    assert "BEGIN" not in str(info.value) and "MII" not in str(info.value)


def test_node_config_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^securityprovider ssl needs plugin\.ssl_server_private in the server config$",
    ):
        from_config(_cfg(tmp_path, "securityprovider = ssl\n", role="server"))
    text = f"securityprovider = ssl\nplugin.ssl_server_private = {KEYS}/server-private.pem\nplugin.ssl_server_public = {KEYS}/server-public.pem\nplugin.ssl_client_cert_dir = {tmp_path}/nope\n"
    with pytest.raises(
        ConfigError,
        match=r"^plugin\.ssl_client_cert_dir = .*/nope \(from .*server\.cfg:4\) is not a directory",
    ):
        from_config(_cfg(tmp_path, text, role="server"))


def test_encrypted_and_non_rsa_private_keys_are_config_errors(tmp_path: Path) -> None:
    key = private("lab-client")
    enc = tmp_path / "enc.pem"
    enc.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(
        ConfigError,
        match=r"^plugin\.x = .*/enc\.pem is encrypted; MCollective's ssl plugin needs an unencrypted key",
    ):
        load_private_key(enc, "plugin.x")
    ecf = tmp_path / "ec.pem"
    ecf.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match=r"holds a \w*PrivateKey, not an RSA key$"):
        load_private_key(ecf, "plugin.x")
    empty = tmp_path / "empty.pem"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=r"is empty; it must hold a PEM key$"):
        load_public_key(empty, "plugin.y")


def test_reprs_and_errors_never_show_key_material() -> None:
    sec = client()
    pem = (KEYS / "lab-client-private.pem").read_text()
    secret_line = pem.splitlines()[1]
    assert secret_line not in repr(sec) and "private" not in repr(sec)
    assert str(KEYS) not in repr(sec) and str(KEYS) not in repr(node())


FORGED_YAML = VECTORS / "ssl-yaml" / "forged-ping-bcast-request.sent.body.bin"


def test_no_key_material_in_logs_or_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every failure path of the provider, logged at DEBUG: no line of any private key shows."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    raw = RPC_REQUEST.read_bytes()
    attempts: list[Callable[[], Any]] = [
        lambda: node(clock=lambda: MSGTIME + 999).decode_request(raw),
        lambda: node(enforce_ttl=False).decode_request(
            marshal.dumps({**_envelope(raw), Symbol("ttl"): 1})
        ),
        lambda: node().decode_request(raw[:-5]),
        lambda: client().decode_reply(raw),
        lambda: load_private_key(KEYS / "server-public.pem", "plugin.ssl_server_private"),
        lambda: load_public_key(KEYS / "server-private.pem", "plugin.ssl_server_public"),
        lambda: SslSecurity.node(
            KEYS / "server-private.pem", KEYS / "server-public.pem", tmp_path / "none"
        ),
        lambda: node(YAML).decode_request(FORGED_YAML.read_bytes()),
    ]
    for attempt in attempts:
        try:
            seen.append(repr(attempt()))
        except Exception as exc:  # collecting every message
            seen.append(f"{type(exc).__name__}: {exc}")
    text = caplog.text + "\n".join(seen)
    assert "DigestMismatch" in text and "ConfigError" in text
    for pem in KEYS.glob("*-private.pem"):
        for line in pem.read_text().splitlines()[1:-1]:
            assert line not in text
