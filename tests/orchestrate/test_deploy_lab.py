"""``mco-py deploy`` end to end: real RabbitMQ, two real HAProxies, four app processes and six
``mco-py server`` nodes on 127.0.12.x, under continuous load (tests/orchestrate/lab.py).

The tests share one lab (the session fixture ``lab`` of tests/orchestrate/conftest.py, also
used by test_deploy_migrations_lab.py) and run in order: each deploys the next release.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.orchestrate.lab import LBS, NODES, DeployLab, Load

pytestmark = pytest.mark.integration


def _journal(lab: DeployLab, out: str) -> list[dict[str, Any]]:
    m = re.search(r"^Journal (\S+)$", out, re.M)
    assert m, out
    return [json.loads(line) for line in Path(m.group(1)).read_text().splitlines() if line]


def _report(lab: DeployLab, name: str, text: str) -> None:
    """Numbers the acceptance asks to be printed (visible with -s; kept in the lab dir)."""
    print(f"\n[{name}] {text}")
    with open(lab.root / "report.txt", "a") as fh:
        fh.write(f"[{name}] {text}\n")


def _wait_for_record(path_holder: Any, cond: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = path_holder()
        if path and path.exists():
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if cond(rec):
                    return rec  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise TimeoutError("journal record not seen")


def _wait_for_last_record(path_holder: Any, cond: Any, timeout: float = 120) -> dict[str, Any]:
    """Wait until the *newest* complete record of the journal satisfies ``cond``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = path_holder()
        if path and path.exists():
            lines = [x for x in path.read_text().split("\n")[:-1] if x]
            if lines:
                rec = json.loads(lines[-1])
                if cond(rec):
                    return rec  # type: ignore[no-any-return]
        time.sleep(0.005)
    raise TimeoutError("journal record not seen")


def _newest_journal(lab: DeployLab, before: set[Path]) -> Path | None:
    runs = set((lab.root / "state" / "runs").glob("*.jsonl"))
    new = sorted(runs - before)
    return new[0] if new else None


def _runs(lab: DeployLab) -> set[Path]:
    d = lab.root / "state" / "runs"
    return set(d.glob("*.jsonl")) if d.exists() else set()


def test_rolling_deploy_zero_failed_requests_two_lbs(lab: DeployLab) -> None:
    with Load(lab) as load:
        time.sleep(0.5)
        r = lab.deploy(
            "run", "shop", "1.1.0", "--env", "lab", "--yes", "--max-unavailable", "1", "--smoke"
        )
        time.sleep(0.5)
    assert r.returncode == 0, r.stdout + r.stderr
    assert lab.versions() == {n: "1.1.0" for n in NODES}
    assert load.ok > 100 and load.samples > 20
    assert load.failed == 0, load.errors[:5]
    assert load.min_up == {"lb1": 3, "lb2": 3}  # never below the floor of 3, on either LB
    assert load.maint_seen == {lb: set(NODES) for lb in LBS}  # both LBs were moved
    recs = _journal(lab, r.stdout)
    cap = {rec["lb"] for rec in recs if rec["kind"] == "capacity"}
    assert cap == set(LBS)  # the guard read both
    m = re.search(
        r"time\s+([\d.]+) s wall, ([\d.]+) s in node calls and waits \(drains, activations, gates, reads, settles\), ([\d.]+) s driver overhead",
        r.stdout,
    )
    assert m, r.stdout
    _report(
        lab,
        "4-node run",
        f"requests ok={load.ok} failed={load.failed}; samples={load.samples} min UP {load.min_up}; "
        f"wall {m.group(1)} s, node calls and waits {m.group(2)} s, driver overhead {m.group(3)} s",
    )
    assert "Run shop-" in r.stdout and "run done" in r.stdout
    smoke = [rec for rec in recs if rec["kind"] == "gate" and rec["detail"]["check"] == "smoke"]
    assert sorted(rec["node"] for rec in smoke) == sorted(NODES)  # the smoke test gated each
    assert all(rec["outcome"] == "ok" for rec in smoke)


def test_bad_release_is_rolled_back_and_the_run_fails(lab: DeployLab) -> None:
    with Load(lab) as load:
        r = lab.deploy("shop", "1.2.0", "--env", "lab", "--yes", "--gate-deadline", "3")
        time.sleep(0.3)
    assert r.returncode == 1, r.stdout + r.stderr
    assert lab.versions() == {n: "1.1.0" for n in NODES}
    assert load.failed == 0, load.errors[:5]
    assert min(load.min_up.values()) >= 3
    recs = _journal(lab, r.stdout)
    end = next(rec for rec in recs if rec["kind"] == "run_end")
    assert end["outcome"] == "failed"
    assert "gate: health (http)" in end["detail"]["failed"]["web1"]
    states = [rec["state"] for rec in recs if rec["kind"] == "node_state" and rec["node"] == "web1"]
    assert states[-2:] == ["rollback", "rolled_back"]
    assert all(h.states()[n] == "UP" for h in lab.haproxies.values() for n in NODES)
    _report(lab, "bad release", f"requests ok={load.ok} failed={load.failed}; exit {r.returncode}")


def test_pause_after_canary_holds_the_lease_then_resume(lab: DeployLab) -> None:
    r = lab.deploy("run", "shop", "1.3.0", "--env", "lab", "--yes", "--pause-after-canary")
    assert r.returncode == 4, r.stdout + r.stderr
    run_id = re.search(r"^Run (\S+)$", r.stdout, re.M).group(1)  # type: ignore[union-attr]
    assert lab.versions()["web1"] == "1.3.0" and lab.versions()["web2"] == "1.1.0"
    second = lab.deploy("run", "shop", "1.3.0", "--env", "lab", "--yes")
    assert second.returncode == 2
    assert f"locked by run {run_id}" in second.stderr and "which is paused" in second.stderr
    resumed = lab.deploy("resume", run_id, "--approver", "alice")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert lab.versions() == {n: "1.3.0" for n in NODES}
    recs = _journal(lab, resumed.stdout)
    assert any(rec["kind"] == "resumed" and rec["approver"] == "alice" for rec in recs)


def test_sigkill_mid_node_then_reconcile_and_resume(lab: DeployLab) -> None:
    before = _runs(lab)
    proc = subprocess.Popen(
        lab.deploy_cmd("run", "shop", "1.4.0", "--env", "lab", "--yes"),
        env=lab.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        _wait_for_record(
            lambda: _newest_journal(lab, before), lambda rec: rec.get("kind") == "run_start"
        )
        # a second deploy of the same service+env is refused while the first holds the lease
        second = lab.deploy("run", "shop", "1.4.0", "--env", "lab", "--yes")
        assert second.returncode == 2 and "is locked by run" in second.stderr, second.stderr
        # kill while a node after web1 is being activated: the journal's newest record
        victim = _wait_for_last_record(
            lambda: _newest_journal(lab, before),
            lambda rec: (
                rec.get("kind") == "node_state"
                and rec.get("node") != "web1"
                and rec.get("state") == "activate"
            ),
        )["node"]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -9
    path = _newest_journal(lab, before)
    assert path is not None
    run_id = path.stem
    # reconcile reports the truth: the victim in maintenance on both LBs, what each runs
    time.sleep(2)  # the node finishes the activation the dead driver asked for
    rc = lab.deploy("reconcile", "shop", "--env", "lab")
    assert rc.returncode == 1, rc.stdout + rc.stderr
    truth = lab.versions()
    for n in NODES:
        line = next(x for x in rc.stdout.splitlines() if x.strip().startswith(n + " "))
        states = {lb: h.states()[n] for lb, h in lab.haproxies.items()}
        assert line.split()[1] == truth[n], rc.stdout
        assert all(f"{lb}={st}" in line for lb, st in states.items()), (rc.stdout, states)
    killed = next(x for x in rc.stdout.splitlines() if x.strip().startswith(victim + " "))
    assert "lb1=MAINT" in killed and "lb2=MAINT" in killed, rc.stdout
    assert f"unfinished runs  {run_id}" in rc.stdout
    resumed = lab.deploy("resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert lab.versions() == {n: "1.4.0" for n in NODES}
    assert all(h.states()[n] == "UP" for h in lab.haproxies.values() for n in NODES)


def test_haproxy_reload_mid_deploy_keeps_the_maintenance_server_out(lab: DeployLab) -> None:
    before = _runs(lab)
    with Load(lab) as load:
        proc = subprocess.Popen(
            # gates take >= 2 s (min healthy time): web2 stays in MAINT well past the reload
            lab.deploy_cmd(
                "run", "shop", "1.5.0", "--env", "lab", "--yes", "--min-healthy-time", "2"
            ),
            env=lab.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            _wait_for_record(
                lambda: _newest_journal(lab, before),
                lambda rec: (
                    rec.get("kind") == "node_state"
                    and rec.get("node") == "web2"
                    and rec.get("state") == "activate"
                ),
            )
            lab.haproxies["lb1"].reload()
            time.sleep(0.5)
            after = lab.haproxies["lb1"].states()
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert after["web2"].startswith("MAINT"), after
    assert proc.returncode == 0, out + err
    assert lab.versions() == {n: "1.5.0" for n in NODES}
    assert load.failed == 0, load.errors[:5]
    _report(
        lab,
        "reload",
        f"after reload lb1 web2 {after['web2']}; requests ok={load.ok} failed={load.failed}",
    )


def test_abort_of_a_killed_run_then_reconcile_repair(lab: DeployLab) -> None:
    before = _runs(lab)
    proc = subprocess.Popen(
        lab.deploy_cmd("run", "shop", "1.6.0", "--env", "lab", "--yes"),
        env=lab.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        victim = _wait_for_last_record(
            lambda: _newest_journal(lab, before),
            lambda rec: rec.get("kind") == "node_state" and rec.get("state") == "verify",
        )["node"]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    path = _newest_journal(lab, before)
    assert path is not None
    # the victim is out of the pool on both LBs; abort finishes it and starts no other node
    assert all(h.states()[victim].startswith("MAINT") for h in lab.haproxies.values())
    before_versions = lab.versions()
    ab = lab.deploy("abort", path.stem)
    assert ab.returncode == 1, ab.stdout + ab.stderr
    assert f"Run {path.stem}: aborted" in ab.stdout
    after = lab.versions()
    assert after[victim] == "1.6.0"
    assert {n: v for n, v in after.items() if n != victim} == {
        n: v for n, v in before_versions.items() if n != victim
    }
    assert all(h.states()[n] == "UP" for h in lab.haproxies.values() for n in NODES)
    rc = lab.deploy("reconcile", "shop", "--env", "lab", "--repair")
    assert rc.returncode == 0, rc.stdout + rc.stderr  # nothing out of the pool, nothing to do
    assert "unfinished runs" not in rc.stdout


def test_a_server_falling_over_mid_run_stops_the_run_at_the_floor(lab: DeployLab) -> None:
    appctl = [sys.executable, str(REPO / "tests" / "agents_py" / "appctl.py")]
    web3 = lab.root / "nodes" / "web3"
    before = _runs(lab)
    with Load(lab) as load:
        proc = subprocess.Popen(
            lab.deploy_cmd(
                "run",
                "shop",
                "1.3.0",
                "--env",
                "lab",
                "--yes",
                "--settle",
                "2",
                "--capacity-wait",
                "2",
            ),
            env=lab.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            _wait_for_last_record(
                lambda: _newest_journal(lab, before),
                lambda rec: rec.get("kind") == "step_end" and rec.get("step") == 0,
            )
            # web3's app dies by itself during the settle time after the canary
            subprocess.run([*appctl, "stop", "--pidfile", str(web3 / "app.pid")], check=True)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    try:
        assert proc.returncode == 1, out + err
        assert "capacity guard: draining web2 would go below the floor" in out, out
        assert min(load.min_up.values()) >= 2  # web3's own failure, never one more
        recs = _journal(lab, out)
        waits = [r for r in recs if r["kind"] == "capacity" and r["outcome"] == "wait"]
        assert waits and all(r["detail"]["online"] == 3 for r in waits)
        assert not [
            r
            for r in recs
            if r["kind"] == "node_state" and r["node"] == "web2" and r["state"] == "drain"
        ]
    finally:  # web3 back, on what it ran
        subprocess.run(
            [
                *appctl,
                "restart",
                "--pidfile",
                str(web3 / "app.pid"),
                "--app",
                str(web3 / "releases" / "shop" / "current" / "app.py"),
                "--host",
                lab.addr["web3"],
                "--port",
                str(lab.port["web3"]),
            ],
            check=True,
            capture_output=True,
        )
