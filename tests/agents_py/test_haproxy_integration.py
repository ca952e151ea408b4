"""The haproxy agent against a real HAProxy 2.6 with 3 local HTTP servers (backend ``app``).

Every test starts a fresh HAProxy (``hap_lab``) and checks the outcome with its own
``show stat`` (``lab.status``), independent of the agent's parsing.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from mcollective_py.agents.haproxy import Haproxy
from tests.agents_py.conftest import REPO, call, make_agent
from tests.agents_py.lab import HAProxyLab

pytestmark = pytest.mark.integration


def agent_for(lab: HAProxyLab) -> Haproxy:
    return make_agent(
        Haproxy, {"plugin.haproxy.socket": lab.socket, "plugin.haproxy.poll_interval": "0.05"}
    )


class SlowRequest(threading.Thread):
    """A GET /slow through the frontend, held ``secs`` by the backend that gets it."""

    def __init__(self, lab: HAProxyLab, secs: float) -> None:
        super().__init__(daemon=True)
        self.url = lab.url(f"/slow?secs={secs}")
        self.status: int | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        with urllib.request.urlopen(self.url, timeout=30) as resp:  # noqa: S310 - loopback
            resp.read()
            self.status = resp.status
        self.finished_at = time.monotonic()


def hold_request_on_web1(lab: HAProxyLab, secs: float) -> SlowRequest:
    """Send one slow request that lands on web1 (the others get weight 0 meanwhile)."""
    for name in ("web2", "web3"):
        assert lab.command(f"set server app/{name} weight 0").strip() == ""
    request = SlowRequest(lab, secs)
    request.start()
    assert lab.backends["web1"].held.wait(5), "the slow request did not reach web1"
    for name in ("web2", "web3"):
        lab.command(f"set server app/{name} weight 100")
    assert lab.stat()[("app", "web1")]["scur"] == "1"
    return request


def test_status_reads_what_show_stat_says(hap_lab: HAProxyLab) -> None:
    reply = call(agent_for(hap_lab), "status", server="web1")
    assert reply.statuscode == 0, reply.statusmsg
    assert [(b["backend"], b["state"], b["weight"]) for b in reply.data["backends"]] == [
        ("app", "UP", 100),
        ("other", "UP", 10),
    ]
    assert reply.data["check_status"] == "L7OK"
    every = call(agent_for(hap_lab), "status", backend="app")
    assert [b["server"] for b in every.data["backends"]] == ["web1", "web2", "web3"]


def test_disable_then_already_down(hap_lab: HAProxyLab) -> None:
    agent = agent_for(hap_lab)
    reply = call(agent, "disable", server="web2", backend="app")
    assert reply.statuscode == 0, reply.statusmsg
    assert (reply.data["state_before"], reply.data["state_after"], reply.data["changed"]) == (
        "UP",
        "MAINT",
        True,
    )
    assert hap_lab.status("app", "web2") == "MAINT"
    assert hap_lab.status("other", "web1") == "UP"  # only the named backend
    start = time.monotonic()
    again = call(agent, "disable", server="web2", backend="app")
    assert again.statuscode == 0 and again.data["changed"] is False
    assert again.data["state_before"] == again.data["state_after"] == "MAINT"
    assert time.monotonic() - start < 1


def test_disable_a_server_whose_check_is_down(hap_lab: HAProxyLab) -> None:
    hap_lab.backends["web3"].healthy = False
    hap_lab.wait_until(lambda: hap_lab.status("app", "web3") == "DOWN", what="web3 DOWN")
    reply = call(agent_for(hap_lab), "disable", server="web3")
    assert reply.statuscode == 0, reply.statusmsg
    assert (reply.data["state_before"], reply.data["state_after"]) == ("DOWN", "MAINT")
    assert hap_lab.status("app", "web3") == "MAINT"


def test_enable_from_maint_and_already_up(hap_lab: HAProxyLab) -> None:
    agent = agent_for(hap_lab)
    hap_lab.command("set server app/web1 state maint")
    hap_lab.command("set server other/web1 state drain")
    reply = call(agent, "enable", server="web1")
    assert reply.statuscode == 0, reply.statusmsg
    assert [(b["backend"], b["state_before"], b["admin"]) for b in reply.data["backends"]] == [
        ("app", "MAINT", "READY"),
        ("other", "DRAIN", "READY"),
    ]
    assert hap_lab.status("app", "web1").startswith("UP")
    up = call(agent, "enable", server="web2")
    assert up.statuscode == 0 and up.data["changed"] is False and up.data["state_after"] == "UP"


def test_drain_returns_only_after_the_held_request_ended(hap_lab: HAProxyLab) -> None:
    request = hold_request_on_web1(hap_lab, secs=1.5)
    reply = call(agent_for(hap_lab), "drain", server="web1", backend="app", timeout=20)
    returned = time.monotonic()
    assert reply.statuscode == 0, reply.statusmsg
    request.join(5)
    assert request.status == 200, "draining must not cut the session"
    assert request.finished_at is not None and request.finished_at <= returned
    assert reply.data["drained"] is True and reply.data["sessions"] == 0
    assert reply.data["waited"] >= 0.8
    assert (reply.data["state_before"], reply.data["state_after"]) == ("UP", "MAINT")
    assert hap_lab.status("app", "web1") == "MAINT"


def test_drain_times_out_then_maint(hap_lab: HAProxyLab) -> None:
    request = hold_request_on_web1(hap_lab, secs=2)
    reply = call(agent_for(hap_lab), "drain", server="web1", backend="app", timeout=1)
    assert reply.statuscode == 0, reply.statusmsg
    assert reply.data["drained"] is False and reply.data["sessions"] == 1
    assert 1 <= reply.data["waited"] < 2
    assert hap_lab.status("app", "web1") == "MAINT"
    request.join(5)


def test_to_maintenance_refuses_to_cut_sessions_unless_forced(hap_lab: HAProxyLab) -> None:
    agent = agent_for(hap_lab)
    request = hold_request_on_web1(hap_lab, secs=2)
    reply = call(agent, "to_maintenance", server="web1", backend="app", timeout=1)
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith(
        "server web1 still has 1 session(s) after 1 s, so it stays in DRAIN"
    )
    assert hap_lab.status("app", "web1") == "DRAIN"
    forced = call(agent, "to_maintenance", server="web1", backend="app", timeout=0, force=True)
    assert forced.statuscode == 0 and forced.data["state_after"] == "MAINT"
    assert hap_lab.status("app", "web1") == "MAINT"
    request.join(5)


def test_to_online_waits_for_settled_up(hap_lab: HAProxyLab) -> None:
    agent = agent_for(hap_lab)
    hap_lab.command("set server app/web2 state maint")
    reply = call(agent, "to_online", server="web2", backend="app", timeout=10)
    assert reply.statuscode == 0, reply.statusmsg
    assert (reply.data["state_before"], reply.data["state_after"]) == ("MAINT", "UP")
    assert reply.data["waited"] > 0
    assert hap_lab.status("app", "web2") == "UP"  # settled: no health counter
    already = call(agent, "to_online", server="web1", backend="app", timeout=10)
    assert already.statuscode == 0 and already.data["changed"] is False
    assert already.data["waited"] < 0.1


def test_to_online_fails_for_a_sick_server(hap_lab: HAProxyLab) -> None:
    hap_lab.command("set server app/web2 state maint")
    hap_lab.backends["web2"].healthy = False
    reply = call(agent_for(hap_lab), "to_online", server="web2", backend="app", timeout=2)
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith("server web2 is READY but not UP after 2 s: app DOWN")
    assert hap_lab.status("app", "web2").startswith("DOWN")


def test_set_weight_absolute_and_percent(hap_lab: HAProxyLab) -> None:
    agent = agent_for(hap_lab)
    reply = call(agent, "set_weight", server="web1", weight=50, percent=True)
    assert reply.statuscode == 0, reply.statusmsg
    assert hap_lab.command("get weight app/web1").strip() == "50 (initial 100)"
    assert hap_lab.command("get weight other/web1").strip() == "5 (initial 10)"
    assert call(agent, "set_weight", server="web1", backend="app", weight=0).statuscode == 0
    assert hap_lab.stat()[("app", "web1")]["weight"] == "0"
    assert (
        call(agent, "set_weight", server="web1", backend="app", weight=0).data["changed"] is False
    )


def test_wait_for_state(hap_lab: HAProxyLab) -> None:
    agent = agent_for(hap_lab)
    hap_lab.backends["web3"].healthy = False
    reply = call(agent, "wait_for_state", server="web3", backend="app", state="DOWN", timeout=10)
    assert reply.statuscode == 0 and reply.data["reached"] is True
    assert hap_lab.status("app", "web3").startswith("DOWN")
    late = call(agent, "wait_for_state", server="web3", backend="app", state="UP", timeout=1)
    assert late.statuscode == 1 and late.data["reached"] is False


def test_unknown_server_and_backend(hap_lab: HAProxyLab) -> None:
    agent = agent_for(hap_lab)
    reply = call(agent, "disable", server="web9")
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith("server web9 is in no backend (backends: app, other)")
    nob = call(agent, "disable", server="web1", backend="nosuch")
    assert nob.statuscode == 1 and nob.statusmsg.startswith("no backend named nosuch")
    lenient = call(agent, "disable", server="web9", fail_on_not_found=False)
    assert lenient.statuscode == 0 and lenient.data["state_after"] == "absent"
    assert {hap_lab.status("app", n) for n in ("web1", "web2", "web3")} == {"UP"}


def test_missing_socket(hap_lab: HAProxyLab) -> None:
    missing = str(Path(hap_lab.socket).with_name("gone.sock"))
    reply = call(make_agent(Haproxy, {"plugin.haproxy.socket": missing}), "disable", server="web1")
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith(
        f"HAProxy admin socket {missing} does not exist (set by plugin.haproxy.socket"
    )
    hap_lab.proc.terminate()  # HAProxy gone; its socket file may stay behind
    hap_lab.proc.wait(5)
    dead = call(agent_for(hap_lab), "status")
    assert dead.statuscode == 1
    assert re.search(
        r"(does not exist|refuses connections \(HAProxy is not running\?\))", dead.statusmsg
    )


def test_through_mco_py_agent_run(hap_lab: HAProxyLab, tmp_path: Path) -> None:
    """The way a Ruby node runs the agent (shim -> ``mco-py agent run``)."""
    cfg = tmp_path / "server.cfg"
    cfg.write_text(
        f"identity = lb1.lab\nplugin.haproxy.socket = {hap_lab.socket}\n"
        "plugin.mcollective_py.agents = mcollective_py.agents.haproxy:Haproxy\n"
    )
    request, reply_file = tmp_path / "request.json", tmp_path / "reply.json"
    request.write_text(
        json.dumps(
            {
                "agent": "haproxy",
                "action": "disable",
                "data": {"server": "web1", "backend": "app"},
                "callerid": "cert=ops",
                "sender": "ops",
                "uniqid": "1",
            }
        )
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcollective_py",
            "agent",
            "run",
            "-c",
            str(cfg),
            "haproxy",
            str(request),
            str(reply_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(reply_file.read_text())
    assert (data["state_before"], data["state_after"], data["changed"]) == ("UP", "MAINT", True)
    assert hap_lab.status("app", "web1") == "MAINT"
