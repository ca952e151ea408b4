"""Issue 4 acceptance: Python nodes answer Ruby ``mco`` like Ruby nodes do, and survive abuse."""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from pathlib import Path

import pika
import pytest

from mcollective_py.message import Request, new_requestid
from mcollective_py.rpc import RPCRequest
from mcollective_py.security.psk import PskSecurity
from tests.conftest import PSK, PythonFleet, ns_vhost, run_mco_py

pytestmark = pytest.mark.integration


def mco(env: dict[str, str], cfg: str, *args: str) -> tuple[int, str]:
    import subprocess

    r = subprocess.run(
        ["mco", *args, "-c", cfg], env=env, capture_output=True, text=True, timeout=60
    )
    return r.returncode, r.stdout


def test_ruby_mco_sees_python_nodes_like_ruby_nodes(
    ruby_fleet: dict[str, str], python_fleet: PythonFleet
) -> None:
    ruby_cfg, py_cfg = ruby_fleet["MCOLLECTIVE_CONFIG"], str(python_fleet.client_cfg)
    env = dict(ruby_fleet)

    def names(out: str) -> list[str]:
        return sorted(ln.split()[0] for ln in out.splitlines() if " time=" in ln)

    rc_r, out_r = mco(env, ruby_cfg, "ping", "-t", "1")
    rc_p, out_p = mco(env, py_cfg, "ping", "-t", "1")
    assert rc_r == rc_p == 0 and names(out_r) == names(out_p) == ["node1", "node2", "node3"]

    for node in ("node1", "node2"):
        rc_r, out_r = mco(env, ruby_cfg, "rpc", "rpcutil", "inventory", "-I", node, "--json")
        rc_p, out_p = mco(env, py_cfg, "rpc", "rpcutil", "inventory", "-I", node, "--json")
        assert rc_r == rc_p == 0
        a, b = json.loads(out_r)[0]["data"], json.loads(out_p)[0]["data"]
        for key in ("facts", "classes", "collectives", "main_collective"):
            assert a[key] == b[key], (node, key)
        ours_only = {
            "haproxy",
            "healthcheck",
            "deploy",
        }  # the product's agents, on every Python node
        assert [x for x in a["agents"] if x != "echo"] == [
            x for x in b["agents"] if x not in ours_only
        ]
        assert ours_only <= set(b["agents"])  # and the lab adds echo to Ruby nodes

    for flt in (
        ["-F", "role=web"],
        ["-C", "roles::db"],
        ["-F", "datacenter=ams", "-A", "rpcutil"],
        ["-I", "/node[23]/"],
    ):
        _, out_r = mco(env, ruby_cfg, "find", *flt)
        _, out_p = mco(env, py_cfg, "find", *flt)
        assert sorted(out_r.split()) == sorted(out_p.split()) != [], flt

    _, out_r = mco(env, ruby_cfg, "facts", "role")
    _, out_p = mco(env, py_cfg, "facts", "role")
    strip = lambda s: [ln for ln in s.splitlines() if "Finished processing" not in ln]  # noqa: E731
    assert strip(out_r) == strip(out_p) and "found 2 times" in out_p


def test_mco_py_client_against_python_nodes(python_fleet: PythonFleet) -> None:
    r = run_mco_py(
        python_fleet.env, "rpc", "rpcutil", "get_fact", "fact=role", "--json", "--dt", "1"
    )
    assert r.returncode == 0, r.stderr
    got = {x["sender"]: x["data"]["value"] for x in json.loads(r.stdout)}
    assert got == {"node1": "web", "node2": "db", "node3": "web"}


# ---------------------------------------------------------------- hostile traffic
def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _stats(env: dict[str, str], node: str) -> dict[str, int]:
    r = run_mco_py(env, "rpc", "rpcutil", "daemon_stats", "-I", node, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]["data"]


def test_hostile_traffic_is_counted_logged_and_survived(python_fleet: PythonFleet) -> None:
    node = "node3"
    env = python_fleet.env
    pid = python_fleet.pid(node)
    before = _stats(env, node)
    log_before = python_fleet.log(node).read_text().count("\n")
    rss_before = _rss_kb(pid)

    good = PskSecurity(PSK, callerid="uid=0")
    wrong = PskSecurity("not-the-psk", callerid="uid=0")

    def request(collective: str = "mcollective", msgtime: int | None = None) -> Request:
        return Request(
            agent="rpcutil",
            collective=collective,
            body=RPCRequest("rpcutil", "ping", "uid=0").to_wire(),
            senderid="attacker",
            requestid=new_requestid(),
            callerid="uid=0",
            ttl=60,
            msgtime=int(time.time()) if msgtime is None else msgtime,
            filter={
                "fact": [],
                "cf_class": [],
                "agent": ["rpcutil"],
                "identity": [],
                "compound": [],
            },
        )

    rnd = random.Random(7)
    valid = good.encode_request(request())
    kinds: list[tuple[str, bytes]] = []
    for _ in range(200):
        kinds.append(("garbage", bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 300)))))
        kinds.append(("truncated", valid[: rnd.randint(2, len(valid) - 1)]))
        kinds.append(("wrong_psk", wrong.encode_request(request())))
        kinds.append(("expired", good.encode_request(request(msgtime=int(time.time()) - 3600))))
        kinds.append(
            ("wrong_collective", good.encode_request(request(collective="othercollective")))
        )
    rnd.shuffle(kinds)

    conn = pika.BlockingConnection(
        pika.ConnectionParameters(
            "127.0.0.1",
            5672,
            python_fleet.vhost,
            pika.PlainCredentials("mcollective", "marionette"),
        )
    )
    ch = conn.channel()
    reply_q = ch.queue_declare("", exclusive=True).method.queue

    pings: list[bool] = []
    stop = threading.Event()

    def pinger() -> None:
        while not stop.is_set():
            r = run_mco_py(env, "ping", "-I", node, "-t", "3")
            pings.append(r.returncode == 0)

    t = threading.Thread(target=pinger)
    t.start()
    try:
        for i, (_, payload) in enumerate(kinds):
            ch.basic_publish(
                "mcollective_directed", node, payload, pika.BasicProperties(reply_to=reply_q)
            )
            if i % 100 == 0:
                time.sleep(0.1)
        # let the daemon work through its queue while pings continue
        deadline = time.monotonic() + 60
        refused = ("bad_messages", "unvalidated", "ttlexpired", "wrong_collective")
        while time.monotonic() < deadline:  # pings and these stats calls count in "total" too
            s = _stats(env, node)
            if sum(s[k] - before[k] for k in refused) >= len(kinds):
                break
            time.sleep(0.5)
    finally:
        stop.set()
        t.join()
        conn.close()

    after = _stats(env, node)
    delta = {
        k: after[k] - before[k]
        for k in ("bad_messages", "unvalidated", "ttlexpired", "wrong_collective", "replies")
    }
    assert delta["bad_messages"] == 400, delta  # garbage + truncated
    assert delta["unvalidated"] == 200, delta
    assert delta["ttlexpired"] == 200, delta
    assert delta["wrong_collective"] == 200, delta
    assert pings and all(pings), pings  # answered pings throughout
    assert python_fleet.procs[node].poll() is None

    new_lines = python_fleet.log(node).read_text().splitlines()[log_before:]
    rejections = [ln for ln in new_lines if "rejected" in ln]
    assert len(rejections) == 1000, len(rejections)  # one line per rejected message
    assert sum(1 for ln in rejections if re.search(r"undecodable", ln)) == 400
    rss_after = _rss_kb(pid)
    assert rss_after - rss_before < 30_000, (
        rss_before,
        rss_after,
    )  # bounded: < 30 MB growth for 1,000 messages
    assert PSK not in python_fleet.log(node).read_text()
    os.sync()


def test_sighup_loads_new_agents_and_sigterm_exits_cleanly(tmp_path: Path) -> None:
    import signal

    from tests.conftest import REPO, lab_dir

    fleet = PythonFleet(
        lab_dir("hup"), ns_vhost("mco-py-hup"), ["hupnode"], libdir=f"{REPO}/tests/agents"
    )
    try:
        fleet.up()
        r = run_mco_py(
            fleet.env, "rpc", "pyecho", "echo", "msg=x", "-I", "hupnode", "-t", "2", "--json"
        )
        assert r.returncode == 1  # not loaded yet: no answer
        cfg = fleet.root / "hupnode" / "server.cfg"
        cfg.write_text(
            cfg.read_text() + "plugin.mcollective_py.agents = tests.agents.pyecho:PyEcho\n"
        )
        fleet.procs["hupnode"].send_signal(signal.SIGHUP)  # re-reads server.cfg for agents
        time.sleep(1.5)
        r = run_mco_py(
            fleet.env, "rpc", "pyecho", "echo", "msg=x", "-I", "hupnode", "-t", "2", "--json"
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)[0]["data"]["message"] == "x"
        (fleet.root / "hupnode" / "facts.yaml").write_text("---\nrole: reloaded\n")
        fleet.procs["hupnode"].send_signal(signal.SIGHUP)
        time.sleep(1.5)
        r = run_mco_py(
            fleet.env, "rpc", "rpcutil", "get_fact", "fact=role", "-I", "hupnode", "--json"
        )
        assert json.loads(r.stdout)[0]["data"]["value"] == "reloaded"
        p = fleet.procs["hupnode"]
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
        assert "stopped" in fleet.log("hupnode").read_text()
        assert not (fleet.root / "hupnode" / "pid").exists()  # pid file removed on a clean stop
    finally:
        fleet.down()
