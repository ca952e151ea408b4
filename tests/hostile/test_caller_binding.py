"""Item 3: a captured request with a rewritten envelope callerid is refused, under psk and
ssl, while the real caller's requests still work from Ruby ``mco`` and ``mco-py``.

The psk node allows ``uid=0`` to call ``pyecho echo`` only, and ``uid=4242`` ``pyecho sum``:
before the fix, rewriting a captured ``sum`` request's envelope callerid to ``uid=4242``
(without knowing the psk) passed ``actionpolicy``.  It runs with ``replay_strict = 1``, so
the same capture re-sent with a new request id and a new ``msgtime`` is refused too: the
strict key holds only what the psk digest covers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcollective_py.errors import InvalidCallerId
from mcollective_py.message import new_requestid
from mcollective_py.security.psk import PskSecurity
from tests import conftest
from tests.conftest import PSK, REPO, VECTORS, PythonFleet, lab_dir, ns_vhost, run_mco_py
from tests.hostile.wire import rewrite_envelope, rpc_request, wait_for_log, wire

pytestmark = pytest.mark.integration
KEYS = VECTORS / "ssl-marshal" / "keys"
AGENT = "tests.agents.pyecho:PyEcho"
POLICY = "policy default deny\nallow\tuid=0\techo\t*\t*\nallow\tuid=4242\tsum\t*\t*\n"
SSL_POLICY = (
    "policy default deny\nallow\tcert=lab-client\techo\t*\t*\nallow\tcert=admin\tsum\t*\t*\n"
)


def _mco(cfg: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in env.items() if not k.startswith("MCOLLECTIVE_")}
    return subprocess.run(
        ["mco", *args, "-c", str(cfg)], env=e, capture_output=True, text=True, timeout=60
    )


def _guarded(name: str, extra: str, policy: str, root: Path | None = None) -> PythonFleet:
    root = root or lab_dir(name)
    cfg = (
        f"plugin.mcollective_py.agents = {AGENT}\n"
        "rpcauthorization = 1\nrpcauthprovider = action_policy\n"
        "plugin.mcollective_py.replay_strict = 1\n" + extra
    )
    fleet = PythonFleet(
        root, ns_vhost(f"mco-py-{name}"), [f"{name}1"], extra_cfg=cfg, libdir=f"{REPO}/tests/agents"
    )
    (root / f"{name}1" / "policies").mkdir(exist_ok=True)
    (root / f"{name}1" / "policies" / "pyecho.policy").write_text(policy)
    (root / f"{name}1" / "policies" / "rpcutil.policy").write_text("policy default allow\n")
    return fleet


@pytest.fixture(scope="module")
def psk_node() -> Iterator[PythonFleet]:
    fleet = _guarded("cbpsk", "", POLICY)
    with fleet:
        yield fleet


@pytest.fixture(scope="module")
def ssl_node() -> Iterator[tuple[PythonFleet, Path]]:
    root = lab_dir("cbssl")
    keys = conftest.ssl_keys(root)
    shutil.copy(keys / "intruder.pem", keys / "clients" / "admin.pem")  # a second, real caller
    fleet = _guarded("cbssl", conftest.ssl_node_cfg(keys), SSL_POLICY, root)
    fleet.client_cfg.write_text(conftest.ssl_client_cfg(fleet.client_cfg.read_text(), keys))
    with fleet:
        yield fleet, keys


def test_psk_provider_refuses_a_body_caller_that_differs() -> None:
    sec = PskSecurity(PSK, callerid="uid=0")
    payload = sec.encode_request(rpc_request("pyecho", "sum", {"a": 1}))
    forged = rewrite_envelope(payload, callerid="uid=4242")
    with pytest.raises(
        InvalidCallerId,
        match=r"\Aenvelope callerid 'uid=4242' differs from the signed body's :caller 'uid=0'",
    ):
        sec.decode_request(forged)
    assert sec.decode_request(payload).callerid == "uid=0"


def test_rewritten_callerid_is_refused_by_a_psk_node(psk_node: PythonFleet) -> None:
    sec = PskSecurity(PSK, callerid="uid=0")
    log = psk_node.log("cbpsk1")
    captured = sec.encode_request(rpc_request("pyecho", "sum", {"a": 20, "b": 22}))
    forged = rewrite_envelope(captured, callerid="uid=4242", requestid=new_requestid())
    with wire(psk_node.vhost) as w:
        w.publish("cbpsk1", captured)
        [denied] = w.replies(sec.decode_reply, wait=5, count=1)
        assert denied.body[next(k for k in denied.body if k == "statuscode")] == 1
        w.publish("cbpsk1", forged)
        assert w.replies(sec.decode_reply, wait=2) == []  # refused: no reply at all
    wait_for_log(log, "differs from the signed body's :caller 'uid=0' (rewritten envelope?)")
    stats = run_mco_py(psk_node.env, "rpc", "rpcutil", "daemon_stats", "-I", "cbpsk1", "--json")
    assert json.loads(stats.stdout)[0]["data"]["unvalidated"] >= 1


def test_strict_replay_key_ignores_the_unsigned_window(psk_node: PythonFleet) -> None:
    """psk's digest covers the body only: a capture re-sent with a new request id and a
    fresh msgtime and ttl is the same request."""
    sec = PskSecurity(PSK, callerid="uid=0")
    captured = sec.encode_request(rpc_request("pyecho", "echo", {"msg": "strict-once"}))
    time.sleep(1.1)
    altered = rewrite_envelope(
        captured, requestid=new_requestid(), msgtime=int(time.time()), ttl=120
    )
    with wire(psk_node.vhost) as w:
        w.publish("cbpsk1", captured)
        w.publish("cbpsk1", altered)
        replies = w.replies(sec.decode_reply, wait=3)
    assert len(replies) == 1


def test_the_real_psk_caller_still_works_from_mco_py_and_ruby_mco(psk_node: PythonFleet) -> None:
    r = run_mco_py(psk_node.env, "rpc", "pyecho", "echo", "msg=py", "-I", "cbpsk1", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    [reply] = json.loads(r.stdout)
    assert (reply["statuscode"], reply["data"]["caller"]) == (0, "uid=0")
    r = _mco(
        psk_node.client_cfg,
        psk_node.env,
        "rpc",
        "pyecho",
        "echo",
        "msg=ruby",
        "-I",
        "cbpsk1",
        "--json",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    [reply] = json.loads(r.stdout)
    assert (reply["statuscode"], reply["data"]["caller"]) == (0, "uid=0")


def test_rewritten_callerid_is_refused_by_an_ssl_node(ssl_node: tuple[PythonFleet, Path]) -> None:
    from mcollective_py.security.ssl import SslSecurity

    fleet, keys = ssl_node
    sec = SslSecurity.client(
        keys / "lab-client-private.pem", keys / "lab-client.pem", keys / "server-public.pem"
    )
    captured = sec.encode_request(rpc_request("pyecho", "sum", {"a": 1}, caller="cert=lab-client"))
    forged = rewrite_envelope(captured, callerid="cert=admin", requestid=new_requestid())
    with wire(fleet.vhost) as w:
        w.publish("cbssl1", forged)
        assert w.replies(sec.decode_reply, wait=2) == []
        w.publish("cbssl1", captured)
        [denied] = w.replies(sec.decode_reply, wait=5, count=1)
    assert denied.body[next(k for k in denied.body if k == "statuscode")] == 1
    wait_for_log(fleet.log("cbssl1"), "request from cert=admin has an invalid signature")
    # the admin's own key, claiming lab-client in the signed body, is refused too
    admin = SslSecurity.client(
        keys / "intruder-private.pem", keys / "clients" / "admin.pem", keys / "server-public.pem"
    )
    mixed = admin.encode_request(rpc_request("pyecho", "echo", {"msg": "x"}, caller="cert=admin"))
    body_lie = admin.encode_request(
        rpc_request("pyecho", "echo", {"msg": "y"}, caller="cert=lab-client")
    )
    body_lie = rewrite_envelope(body_lie, callerid="cert=admin")
    with wire(fleet.vhost) as w:
        w.publish("cbssl1", body_lie)
        w.publish("cbssl1", mixed)
        replies = w.replies(admin.decode_reply, wait=3)
    assert len(replies) == 1  # only the honest one
    wait_for_log(fleet.log("cbssl1"), "differs from the signed body's :caller 'cert=lab-client'")


def test_the_real_ssl_caller_still_works_from_mco_py_and_ruby_mco(
    ssl_node: tuple[PythonFleet, Path],
) -> None:
    fleet, _ = ssl_node
    r = run_mco_py(fleet.env, "rpc", "pyecho", "echo", "msg=py", "-I", "cbssl1", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)[0]["data"]["caller"] == "cert=lab-client"
    r = _mco(
        fleet.client_cfg, fleet.env, "rpc", "pyecho", "echo", "msg=ruby", "-I", "cbssl1", "--json"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)[0]["data"]["caller"] == "cert=lab-client"


def test_the_strict_key_holds_only_authenticated_parts() -> None:
    from mcollective_py.security.ssl import SslSecurity
    from mcollective_py.server.replay import content_key

    req = rpc_request("pyecho", "echo", {"msg": "x"})
    moved = type(req)(**{**req.__dict__, "msgtime": req.msgtime + 5, "ttl": 600})
    psk = PskSecurity(PSK, callerid="uid=0")
    assert psk.authenticated(req) == (req.callerid, req.body)
    assert content_key(req, psk.authenticated(req)) == content_key(moved, psk.authenticated(moved))
    ssl = SslSecurity.node(
        KEYS / "server-private.pem", KEYS / "server-public.pem", KEYS / "clients"
    )
    assert ssl.authenticated(req) == (req.callerid, req.msgtime, req.ttl, req.body)
    assert content_key(req, ssl.authenticated(req)) != content_key(moved, ssl.authenticated(moved))
