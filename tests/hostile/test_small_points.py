"""Item 9, point by point: forged log lines, audit line breaks, unbounded check timeouts,
checks that escape their process group, non-ASCII digests, a full disk during a download.
(The zip and tar.gz bombs of item 9 are in ``tests/hostile/corpus.py``: ``zip_huge_symlink``,
``zip_bomb`` and ``bomb_tar``.)"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcollective_py.agents import process
from mcollective_py.agents.healthcheck import Healthcheck
from mcollective_py.errors import DigestMismatch
from mcollective_py.rubytypes import Symbol
from mcollective_py.security.psk import PskSecurity
from mcollective_py.server.audit import AuditEvent, AuditLog
from tests.agents_py.conftest import call, make_agent
from tests.agents_py.lab import ArtifactServer
from tests.agents_py.releases_fixture import app_tarball
from tests.conftest import PSK, REPO, PythonFleet, lab_dir, ns_vhost
from tests.hostile.wire import rewrite_envelope, rpc_request, wait_for_log, wire


@pytest.fixture(scope="module")
def node() -> Iterator[PythonFleet]:
    fleet = PythonFleet(lab_dir("smallpts"), ns_vhost("mco-py-smallpts"), ["sp1"])
    with fleet:
        yield fleet


# ------------------------------------------------------------------ the request id in the log
@pytest.mark.integration
def test_a_newline_in_the_request_id_cannot_forge_a_log_line(node: PythonFleet) -> None:
    sec = PskSecurity(PSK, callerid="uid=0")
    forged_line = "W, [2026-01-01 00:00:00] WARNING -- mcollective_py.server: forged"
    payload = rewrite_envelope(
        sec.encode_request(rpc_request("rpcutil", "ping", {})), requestid=f"abc\n{forged_line}"
    )
    with wire(node.vhost) as w:
        w.publish("sp1", payload)
        assert w.replies(sec.decode_reply, wait=1) == []
    log = wait_for_log(node.log("sp1"), "a request id must match")
    assert forged_line not in log.splitlines()
    assert "'abc\\nW, [2026-01-01 00:00:00] WARNING" in log  # quoted, on the refusal's line


def test_the_audit_escaper_knows_every_line_break(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.log", jsonfile=tmp_path / "a.jsonl", redact=())
    for brk in ("\n", "\r", "\x85", "\u2028", "\u2029", "\x0b", "\x1c"):
        audit.record(
            AuditEvent(
                f"id{brk}x", 1, "uid=0", f"client{brk}x", "rpcutil", f"ping{brk}x", {"k": f"v{brk}"}
            )
        )
    assert len((tmp_path / "a.log").read_text().splitlines()) == 7
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 7 and json.loads(lines[2])["requestid"] == "id\x85x"
    assert "reqid=id\\x85x:" in (tmp_path / "a.log").read_text()
    assert "reqid=id\\u2028x:" in (tmp_path / "a.log").read_text()


# ------------------------------------------------------------------ healthcheck timeouts
def test_a_check_timeout_beyond_the_action_is_refused() -> None:
    agent = make_agent(Healthcheck)
    for action, data in (
        ("tcp", {"host": "127.0.10.61", "port": 9}),
        ("http", {"url": "http://127.0.10.61:9/"}),
        ("command", {"command": "check_true"}),
    ):
        reply = call(agent, action, timeout=10**6, **data)
        assert (reply.statuscode, reply.statusmsg) == (
            4,
            "timeout must be at most 298 seconds (the action's own timeout minus 2), got 1e+06",
        ), action


@pytest.mark.integration
def test_twenty_huge_timeouts_leave_no_thread_behind(node: PythonFleet) -> None:
    sec = PskSecurity(PSK, callerid="uid=0")
    with wire(node.vhost) as w:
        for _ in range(20):
            req = rpc_request(
                "healthcheck", "tcp", {"host": "203.0.113.9", "port": 9, "timeout": 10**6}
            )
            w.publish("sp1", sec.encode_request(req))
        replies = w.replies(sec.decode_reply, wait=5, count=20)
        stats = sec.encode_request(rpc_request("rpcutil", "daemon_stats", {}))
        w.publish("sp1", stats)
        [info] = w.replies(sec.decode_reply, wait=5, count=1)
    codes = [r.body[Symbol("statuscode")] for r in replies]
    assert codes == [4] * 20
    threads = info.body[Symbol("data")][Symbol("threads")]
    assert not [t for t in threads if "healthcheck#tcp" in t], threads


def test_a_check_that_leaves_its_session_is_killed_at_the_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "escaped.pid"
    script = tmp_path / "check_escape"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import os, subprocess, time
            child = subprocess.Popen(["sleep", "300"], start_new_session=True)
            open({str(pidfile)!r}, "w").write(str(child.pid))
            time.sleep(300)
            """
        )
    )
    script.chmod(0o755)
    agent = make_agent(Healthcheck, {"plugin.healthcheck.command_path": str(tmp_path)})
    reply = call(agent, "command", command="check_escape", timeout=1.5)
    assert reply.statuscode == 1 and "timed out" in reply.statusmsg
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            break  # killed, waiting for its reaper
        time.sleep(0.05)
    alive = Path(f"/proc/{pid}").exists() and not Path(f"/proc/{pid}/stat").read_text().split(") ")[
        1
    ].startswith("Z")
    assert not alive, f"pid {pid} survived"
    assert process.kill_marked("no-such-token") == 0


# ------------------------------------------------------------------ non-ASCII psk digest
def test_a_non_ascii_digest_is_a_plain_mismatch() -> None:
    sec = PskSecurity(PSK, callerid="uid=0")
    payload = rewrite_envelope(
        sec.encode_request(rpc_request("rpcutil", "ping", {})), hash="é" * 32
    )
    with pytest.raises(DigestMismatch, match=r"\Arequest has a psk digest that does not match"):
        sec.decode_request(payload)


@pytest.mark.integration
def test_a_non_ascii_digest_is_one_log_line_on_the_node(node: PythonFleet) -> None:
    sec = PskSecurity(PSK, callerid="uid=0")
    payload = rewrite_envelope(
        sec.encode_request(rpc_request("rpcutil", "ping", {})), hash="é" * 32
    )
    with wire(node.vhost) as w:
        w.publish("sp1", payload)
        assert w.replies(sec.decode_reply, wait=1) == []
    log = wait_for_log(node.log("sp1"), "psk digest that does not match")
    assert "Traceback" not in log and "TypeError" not in log


# ------------------------------------------------------------------ disk full during a download
@pytest.mark.integration
def test_a_full_disk_during_a_download_is_a_clear_statuscode_1(tmp_path: Path) -> None:
    server = ArtifactServer("127.0.10.62")
    try:
        data = app_tarball("1.0.0", padding=2 * 1024 * 1024)
        server.files["/shop-1.0.0.tar.gz"] = data
        code = textwrap.dedent(
            f"""
            import json, resource, signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, resource.RLIM_INFINITY))
            from mcollective_py.agents.deploy import Deploy
            from tests.agents_py.conftest import call, make_agent
            agent = make_agent(Deploy, {{
                "plugin.deploy.root": {str(tmp_path / "rel")!r},
                "plugin.deploy.config_dir": {str(tmp_path / "etc")!r},
                "plugin.deploy.artifact_url": "{server.base}/{{service}}-{{version}}.tar.gz",
            }})
            r = call(agent, "fetch", service="shop", version="1.0.0",
                     sha256={hashlib.sha256(data).hexdigest()!r})
            print(json.dumps([r.statuscode, r.statusmsg]))
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert out.returncode == 0, out.stderr
        code_, msg = json.loads(out.stdout)
        assert code_ == 1
        assert msg.startswith(f"cannot write the download of {server.base}/shop-1.0.0.tar.gz to ")
        assert "File too large after " in msg and "(over the file size limit of the daemon" in msg
        assert msg.endswith("; the partial file was deleted")
        assert list((tmp_path / "rel" / "shop" / "downloads").iterdir()) == []
    finally:
        server.stop()
