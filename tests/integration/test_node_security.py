"""Issue 7 acceptance, node side: Ruby ``mco`` with ssl ↔ ``mco-py server`` with ssl; replays run
once; actionpolicy denials reach the caller and the audit log; no secret in any log."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from mcollective_py.message import Request, new_requestid
from mcollective_py.rpc import RPCRequest
from mcollective_py.security.psk import PskSecurity
from tests import conftest
from tests.conftest import PSK, REPO, TEST_ROOT, VECTORS, PythonFleet, lab_dir, ns_vhost, run_mco_py

pytestmark = pytest.mark.integration
KEYS = VECTORS / "ssl-marshal" / "keys"  # the lab's published throwaway keys
AGENT = "tests.agents.pyecho:PyEcho"


def _mco(
    env: dict[str, str], cfg: Path, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in env.items() if not k.startswith("MCOLLECTIVE_")}
    e.update(extra or {})
    return subprocess.run(
        ["mco", *args, "-c", str(cfg)], env=e, capture_output=True, text=True, timeout=60
    )


# ---------------------------------------------------------------- ssl both ways
@pytest.fixture(scope="module")
def ssl_node() -> Iterator[tuple[PythonFleet, Path]]:
    root = lab_dir("ssl-node")
    keys = conftest.ssl_keys(root)
    fleet = PythonFleet(
        root, ns_vhost("mco-py-sslnode"), ["sslnode1"], extra_cfg=conftest.ssl_node_cfg(keys)
    )
    client = root / "ssl-client.cfg"
    client.write_text(conftest.ssl_client_cfg(fleet.client_cfg.read_text(), keys))
    fleet.client_cfg.write_text(client.read_text())  # the fleet's readiness ping must use ssl too
    with fleet:
        yield fleet, keys


def test_ruby_mco_with_ssl_talks_to_mco_py_server_with_ssl(
    ssl_node: tuple[PythonFleet, Path],
) -> None:
    fleet, _ = ssl_node
    r = _mco(fleet.env, fleet.client_cfg, "ping", "-t", "1")
    assert r.returncode == 0 and "sslnode1" in r.stdout, r.stdout + r.stderr
    r = _mco(fleet.env, fleet.client_cfg, "rpc", "rpcutil", "inventory", "-I", "sslnode1", "--json")
    assert r.returncode == 0, r.stderr
    [reply] = json.loads(r.stdout)
    assert reply["statuscode"] == 0 and reply["data"]["facts"]["role"] == "web"
    # and mco-py with ssl too
    r = run_mco_py(fleet.env, "rpc", "rpcutil", "ping", "-I", "sslnode1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["sender"] == "sslnode1", r.stderr


@pytest.mark.parametrize(
    ("private", "public", "why"),
    [
        ("intruder-private.pem", "intruder.pem", "no public key"),
        ("intruder-private.pem", "lab-client.pem", "signature"),
    ],
    ids=["unknown-cert", "forged"],
)
def test_unknown_or_forged_cert_is_refused_by_our_node(
    ssl_node: tuple[PythonFleet, Path], private: str, public: str, why: str
) -> None:
    fleet, keys = ssl_node
    log = fleet.log("sslnode1")
    before = log.read_text().count("failed security")
    extra = {
        "MCOLLECTIVE_SSL_PRIVATE": str(keys / private),
        "MCOLLECTIVE_SSL_PUBLIC": str(keys / public),
    }
    r = _mco(
        fleet.env,
        fleet.client_cfg,
        "rpc",
        "rpcutil",
        "ping",
        "-I",
        "sslnode1",
        "-t",
        "2",
        extra=extra,
    )
    assert "sslnode1" in r.stdout and "No response from" in r.stdout, r.stdout  # named as silent
    time.sleep(0.5)
    assert log.read_text().count("failed security") == before + 1
    r = run_mco_py({**fleet.env, **extra}, "rpc", "rpcutil", "ping", "-I", "sslnode1", "-t", "2")
    assert r.returncode == 1 and "No response from" in r.stdout


# ---------------------------------------------------------------- replay, policy, audit (psk)
POLICY = "policy default deny\nallow\tuid=0\techo\t*\t*\n# everything else is denied: sum too\n"


@pytest.fixture(scope="module")
def guarded() -> Iterator[PythonFleet]:
    root = lab_dir("guarded")
    extra = (
        f"plugin.mcollective_py.agents = {AGENT}\n"
        "rpcauthorization = 1\nrpcauthprovider = action_policy\n"
        f"rpcaudit = 1\nrpcauditprovider = logfile\nplugin.rpcaudit.logfile = {root}/guard1/audit.log\n"
        f"plugin.rpcaudit.jsonfile = {root}/guard1/audit.jsonl\n"
    )
    fleet = PythonFleet(
        root, ns_vhost("mco-py-guarded"), ["guard1"], extra_cfg=extra, libdir=f"{REPO}/tests/agents"
    )
    (root / "guard1" / "policies").mkdir()
    (root / "guard1" / "policies" / "pyecho.policy").write_text(POLICY)
    with fleet:
        yield fleet


def test_denied_caller_gets_status_1_and_audit_records_it(guarded: PythonFleet) -> None:
    ok = run_mco_py(guarded.env, "rpc", "pyecho", "echo", "msg=allowed", "-I", "guard1", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)[0]["statuscode"] == 0, ok.stdout + ok.stderr
    r = subprocess.run(
        [
            "mco",
            "rpc",
            "pyecho",
            "sum",
            "a=1",
            "-I",
            "guard1",
            "--json",
            "-c",
            str(guarded.client_cfg),
        ],
        env=guarded.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    [reply] = json.loads(r.stdout)
    assert (reply["statuscode"], reply["statusmsg"]) == (
        1,
        "You are not authorized to call this agent or action.",
    )
    assert reply["data"] == {"total": None}  # Ruby's denial keeps the DDL output defaults
    audit = (guarded.root / "guard1" / "audit.log").read_text().splitlines()
    assert any(
        re.search(
            r"caller=uid=0@mco-lab-client agent=pyecho action=sum data=\{:a=>1, :process_results=>true\}",
            ln,
        )
        for ln in audit
    ), audit
    events = [
        json.loads(ln) for ln in (guarded.root / "guard1" / "audit.jsonl").read_text().splitlines()
    ]
    assert [(e["action"], e["decision"], e["statuscode"]) for e in events] == [
        ("echo", "allowed", 0),
        ("sum", "denied", 1),
    ]


def test_replayed_request_runs_once(guarded: PythonFleet) -> None:
    sec = PskSecurity(PSK, callerid="uid=0")
    req = Request(
        agent="pyecho",
        collective="mcollective",
        body=RPCRequest("pyecho", "echo", "uid=0", {"msg": "once"}).to_wire(),
        senderid="mco-lab-client",
        requestid=new_requestid(),
        callerid="uid=0",
        ttl=60,
        msgtime=int(time.time()),
        filter={"fact": [], "cf_class": [], "agent": ["pyecho"], "identity": [], "compound": []},
    )
    payload = sec.encode_request(req)
    conn = pika.BlockingConnection(
        pika.ConnectionParameters(
            "127.0.0.1", 5672, guarded.vhost, pika.PlainCredentials("mcollective", "marionette")
        )
    )
    try:
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        for _ in range(3):  # the capture, re-published verbatim twice
            ch.basic_publish(
                "mcollective_directed", "guard1", payload, pika.BasicProperties(reply_to=q)
            )
        replies = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            method, _, body = ch.basic_get(q, auto_ack=True)
            if method is None:
                time.sleep(0.1)
                continue
            replies.append(sec.decode_reply(body))
    finally:
        conn.close()
    assert len(replies) == 1 and replies[0].requestid == req.requestid
    events = [
        json.loads(ln) for ln in (guarded.root / "guard1" / "audit.jsonl").read_text().splitlines()
    ]
    assert sum(1 for e in events if e["requestid"] == req.requestid) == 1  # executed once
    assert guarded.log("guard1").read_text().count(f"rejected request {req.requestid}") == 2


def test_no_secret_in_any_log_we_wrote() -> None:
    """psk and private key material never reach our logs (daemon, stderr, audit)."""
    secrets = [PSK]
    for pem in KEYS.glob("*private*.pem"):
        body = [ln for ln in pem.read_text().splitlines() if ln and not ln.startswith("-----")]
        secrets += body[:3]
    logs = [p for p in TEST_ROOT.rglob("*") if p.is_file() and p.suffix in (".log", ".jsonl")]
    logs = [p for p in logs if "mcollectived" not in p.name]  # Ruby's own logs are not ours
    assert len(logs) >= 5
    leaks = [(str(p), s[:12]) for p in logs for s in secrets if s in p.read_text(errors="replace")]
    assert not leaks, leaks
