"""Issue 4: a running daemon answers again within 10 s of a broker restart, unaided."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.conftest import PythonFleet, lab_dir, ns_vhost, run_mco, run_mco_py

pytestmark = [pytest.mark.integration, pytest.mark.broker_restart]


@pytest.fixture
def node() -> Iterator[PythonFleet]:
    fleet = PythonFleet(lab_dir("restart"), ns_vhost("mco-py-restart"), ["restartnode"])
    with fleet:
        yield fleet


def test_daemon_answers_within_10s_after_broker_restart(
    node: PythonFleet, ruby_fleet: dict[str, str]
) -> None:
    pid = node.pid("restartnode")
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True, timeout=120)
    try:
        time.sleep(2)
    finally:
        subprocess.run(
            ["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True, timeout=180
        )
    subprocess.run(
        ["rabbitmqctl", "-q", "await_startup"], check=True, capture_output=True, timeout=180
    )
    started = time.monotonic()
    answered = None
    while time.monotonic() - started < 30:
        r = run_mco_py(node.env, "ping", "-I", "restartnode", "-t", "1")
        if r.returncode == 0:
            answered = time.monotonic() - started
            break
    assert (
        node.procs["restartnode"].pid == pid and node.procs["restartnode"].poll() is None
    )  # never restarted
    assert answered is not None and answered < 10, answered
    log = node.log("restartnode").read_text()
    assert "broker connection lost" in log and log.count("subscribed to") >= 2
    # the Ruby reference nodes reconnect too (later tests rely on them)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if run_mco(ruby_fleet, "ping", "-t", "1").stdout.count(" time=") == 3:
            break
        time.sleep(1)
