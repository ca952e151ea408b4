"""Migrations through the driver, and one run with every subscriber on, in the real deploy
lab (the shared session fixture ``lab``: real RabbitMQ, two HAProxies, three ``mco-py
server`` nodes and a Ruby ``mcollectived``).  Every node's migration database is a real
PostgreSQL database (``<ns>_deploylab_<hex>``); each release's ``bin/migrate`` logs what it
really ran (``DeployLab.migration_runs``), and the node's ledger ``mco_migrations`` is read
back with psycopg.

The tests read the versions the nodes run now and deploy releases of their own (2.x), so
they can follow test_deploy_lab.py in the same lab.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import yaml

from tests.conftest import REPO, lab_dir
from tests.orchestrate.lab import BLOCK, LBS, NODES, DeployLab
from tests.orchestrate.subscribers_fixtures import (
    GOLDEN,
    Carbon,
    Nagios,
    chromium,
    count_pixels,
    png_pixels,
)

pytestmark = pytest.mark.integration

PHASED = {
    "pre": {"command": "bin/migrate pre", "timeout": 60},
    "post": {"command": "bin/migrate post", "timeout": 60, "soak": 1},
}


def _journal(out: str) -> list[dict[str, Any]]:
    m = re.search(r"^Journal (\S+)$", out, re.M)
    assert m, out
    return [json.loads(line) for line in Path(m.group(1)).read_text().splitlines() if line]


def _index(recs: list[dict[str, Any]], pred: Any) -> list[int]:
    return [i for i, r in enumerate(recs) if pred(r)]


def _all_up(lab: DeployLab) -> bool:
    return all(h.states()[n] == "UP" for h in lab.haproxies.values() for n in NODES)


def _wait_for(path: Path, pred: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if pred(rec):
                    return rec  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise TimeoutError(f"no such record in {path}")


def test_pre_once_before_any_drain_and_post_after_the_last_node_and_the_soak(
    lab: DeployLab,
) -> None:
    catalog = lab.write_catalog("phased", PHASED)
    r = lab.deploy("run", "shop", "2.0.0", "--env", "lab", "--yes", catalog=catalog)
    assert r.returncode == 0, r.stdout + r.stderr
    assert lab.versions() == {n: "2.0.0" for n in NODES}
    recs = _journal(r.stdout)
    pre = _index(recs, lambda x: x["kind"] == "migration" and x["detail"]["phase"] == "pre")
    post = _index(recs, lambda x: x["kind"] == "migration" and x["detail"]["phase"] == "post")
    drains = _index(recs, lambda x: x["kind"] == "node_state" and x["state"] == "drain")
    done = _index(recs, lambda x: x["kind"] == "node_state" and x["state"] == "done")
    assert [recs[i]["outcome"] for i in pre] == ["started", "ok"]
    assert pre[-1] < drains[0]  # pre completed before the first drain
    assert len(done) == len(NODES) and post[0] > done[-1]
    assert recs[post[0]]["time"] - recs[done[-1]]["time"] >= 1.0  # the 1 s soak
    assert [recs[i]["outcome"] for i in post] == ["started", "ok"]
    assert lab.migration_runs("2.0.0") == ["pre", "post"]  # each ran exactly once
    assert sorted(lab.migration_rows("2.0.0")) == [("post", "ok", "web1"), ("pre", "ok", "web1")]
    assert "migration        pre: bin/migrate pre (once, on the first node, before any" in r.stdout


def test_a_failing_pre_touches_no_node(lab: DeployLab) -> None:
    before = lab.versions()
    catalog = lab.write_catalog("phased", PHASED)
    (lab.ctl / "fail-pre").write_text("")
    try:
        r = lab.deploy("run", "shop", "2.1.0", "--env", "lab", "--yes", catalog=catalog)
    finally:
        (lab.ctl / "fail-pre").unlink()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "pre migration failed on web1" in r.stdout and "no node was touched" in r.stdout
    recs = _journal(r.stdout)
    assert not [x for x in recs if x["kind"] == "node_state"]  # no drain, no activate
    assert lab.versions() == before and _all_up(lab)
    assert lab.migration_runs("2.1.0") == ["pre"]
    assert lab.migration_rows("2.1.0") == [("pre", "failed", "web1")]


def test_a_driver_killed_during_pre_and_resumed_does_not_run_it_twice(lab: DeployLab) -> None:
    catalog = lab.write_catalog("phased", PHASED)
    run_id = f"mig-kill-{os.getpid()}"
    journal = lab.root / "state" / "runs" / f"{run_id}.jsonl"
    (lab.ctl / "slow-pre").write_text("4")
    try:
        proc = subprocess.Popen(
            lab.deploy_cmd(
                "run", "shop", "2.2.0", "--env", "lab", "--yes", "--run-id", run_id, catalog=catalog
            ),
            env=lab.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        try:
            _wait_for(journal, lambda x: x.get("kind") == "migration")
            time.sleep(0.5)  # the node is running bin/migrate now (it sleeps 4 s)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
        assert proc.returncode == -9
        resumed = lab.deploy("resume", run_id)
    finally:
        (lab.ctl / "slow-pre").unlink()
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert lab.versions() == {n: "2.2.0" for n in NODES}
    assert lab.migration_runs("2.2.0") == ["pre", "post"]  # pre once, though asked twice
    recs = _journal(resumed.stdout)
    pre = [x for x in recs if x["kind"] == "migration" and x["detail"]["phase"] == "pre"]
    assert [x["outcome"] for x in pre] == ["started", "started", "ok"]
    assert pre[-1]["detail"]["already_applied"] is True


def _edge_catalog(lab: DeployLab, name: str) -> Path:
    """The phased catalog plus an environment ``edge``: the Ruby node alone, no LB."""
    doc_path = lab.write_catalog(name, PHASED)
    doc = yaml.safe_load(doc_path.read_text())
    doc["environments"]["edge"] = {"load_balancers": []}
    envs = doc["services"]["shop"]["environments"]
    envs["edge"] = dict(envs["lab"], nodes={"node1": envs["lab"]["nodes"]["node1"]})
    doc_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return doc_path


def test_two_drivers_racing_on_one_database_run_a_migration_once(lab: DeployLab) -> None:
    """Two drivers at once, each holding its own lease: the service in ``lab`` and in
    ``edge`` (node1 alone, no load balancer), one migration database for both."""
    doc_path = _edge_catalog(lab, "race")
    (lab.ctl / "slow-pre").write_text("3")
    try:
        procs = [
            subprocess.Popen(
                lab.deploy_cmd("run", "shop", "2.3.0", "--env", env, "--yes", catalog=doc_path),
                env=lab.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            for env in ("lab", "edge")
        ]
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        (lab.ctl / "slow-pre").unlink()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
    assert lab.migration_runs("2.3.0").count("pre") == 1
    assert lab.migration_runs("2.3.0").count("post") == 1
    pres = [
        x
        for out, _ in outs
        for x in _journal(out)
        if x["kind"] == "migration" and x["outcome"] == "ok" and x["detail"]["phase"] == "pre"
    ]
    assert sorted(x["detail"]["already_applied"] for x in pres) == [False, True]
    assert lab.versions() == {n: "2.3.0" for n in NODES}


def test_after_pre_a_failing_node_stays_in_maintenance_unless_rollback_is_declared(
    lab: DeployLab,
) -> None:
    previous = lab.versions()["web1"]
    catalog = lab.write_catalog("phased", PHASED)
    r = lab.deploy(
        "run", "shop", "2.9.0", "--env", "lab", "--yes", "--gate-deadline", "3", catalog=catalog
    )
    assert r.returncode == 1, r.stdout + r.stderr
    end = next(x for x in _journal(r.stdout) if x["kind"] == "run_end")
    why = end["detail"]["failed"]["web1"]
    assert f"not rolled back to {previous}: the pre migration of shop 2.9.0 ran" in why
    assert "left in maintenance" in why and end["detail"]["in_maintenance"] == ["web1"]
    assert "IN MAINTENANCE  web1" in r.stdout
    assert all(h.states()["web1"].startswith("MAINT") for h in lab.haproxies.values())
    assert lab.versions()["web1"] == "2.9.0"  # left where it failed, out of the pool
    # roll forward: web1 (in maintenance on 2.9.0) gets the good release and goes online
    r = lab.deploy("run", "shop", "2.5.0", "--env", "lab", "--yes", catalog=catalog)
    assert r.returncode == 0, r.stdout + r.stderr
    assert lab.versions() == {n: "2.5.0" for n in NODES} and _all_up(lab)
    # the same failure with the rollback declared compatible: rolled back, back online
    previous = "2.5.0"
    compatible = lab.write_catalog(
        "compatible", dict(PHASED, rollback_compatible={"2.9.0": [previous]})
    )
    r = lab.deploy(
        "run", "shop", "2.9.0", "--env", "lab", "--yes", "--gate-deadline", "3", catalog=compatible
    )
    assert r.returncode == 1, r.stdout + r.stderr
    recs = _journal(r.stdout)
    states = [x["state"] for x in recs if x["kind"] == "node_state" and x["node"] == "web1"]
    assert states[-2:] == ["rollback", "rolled_back"]
    assert lab.versions()["web1"] == previous and _all_up(lab)


def test_sqlite_migrations_through_the_driver(lab: DeployLab) -> None:
    """The Ruby node's shim reads its plugin.d at each request: its ``shop`` migrations go to
    a SQLite database for this run (environment ``edge``: node1 alone)."""
    db = lab.root / "sqlite" / "shop.db"
    db.parent.mkdir(exist_ok=True)
    db.parent.chmod(0o777)
    settings = lab.root / "ruby" / "nodes" / "node1" / "plugin.d" / "deploy.cfg"
    original = settings.read_text()
    settings.write_text(original + f"shop.migrate_dsn = sqlite:///{db}\n")
    try:
        r = lab.deploy(
            "run", "shop", "2.6.0", "--env", "edge", "--yes", catalog=_edge_catalog(lab, "sqlite")
        )
    finally:
        settings.write_text(original)
    assert r.returncode == 0, r.stdout + r.stderr
    recs = _journal(r.stdout)
    pre = _index(recs, lambda x: x["kind"] == "migration" and x["detail"]["phase"] == "pre")
    post = _index(recs, lambda x: x["kind"] == "migration" and x["detail"]["phase"] == "post")
    activate = _index(recs, lambda x: x["kind"] == "node_state" and x["state"] == "activate")
    done = _index(recs, lambda x: x["kind"] == "node_state" and x["state"] == "done")
    assert pre[-1] < activate[0] and post[0] > done[-1]
    assert lab.migration_runs("2.6.0") == ["pre", "post"]
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select phase, outcome, node from mco_migrations where version = '2.6.0' "
            "order by phase desc"
        ).fetchall()
    assert rows == [("pre", "ok", "node1"), ("post", "ok", "node1")]
    assert lab.migration_rows("2.6.0") == []  # not in PostgreSQL
    assert lab.versions()["node1"] == "2.6.0"


def test_one_run_with_every_subscriber_on(lab: DeployLab) -> None:
    """JSON lines (run id on every line), carbon (read back from whisper), Nagios (the
    downtime commands accepted), JUnit (valid against the XSD), the HTML report from
    ``mco-py deploy report RUN`` (rendered by headless Chromium)."""
    out_dir = lab.root / "events"
    nagios_root = lab_dir("deploy-lab-nagios")
    carbon = Carbon(lab.root / "carbon", host=f"{BLOCK}.20")
    nagios = Nagios(nagios_root, NODES, "shop")
    try:
        cfg = lab.client_cfg_with(
            "events",
            {
                "plugin.deploy_events.jsonlog.path": str(out_dir / "deploys.jsonl"),
                "plugin.deploy_events.graphite.address": f"{carbon.host}:{carbon.port}",
                "plugin.deploy_events.graphite.prefix": "i16",
                "plugin.deploy_events.nagios.command_file": str(nagios.command_file),
                "plugin.deploy_events.nagios.service": "shop",
                "plugin.deploy_events.junit.path": str(out_dir / "junit-{run_id}.xml"),
                "plugin.deploy_events.report.path": str(out_dir / "{run_id}.html"),
            },
        )
        run_id = f"events-{os.getpid()}"
        t0 = time.time()
        r = lab.deploy(
            "run", "shop", "2.4.0", "--env", "lab", "--yes", "--run-id", run_id, config=cfg
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "warning" not in r.stderr, r.stderr  # every subscriber did its job
        # JSON lines: every line carries the run id
        lines = (out_dir / "deploys.jsonl").read_text().splitlines()
        events = [json.loads(x) for x in lines]
        assert len(events) > 30 and {e["correlation_id"] for e in events} == {run_id}
        assert {e["run_id"] for e in events} == {run_id}
        # carbon: read back from whisper
        base = "i16.shop.lab."
        assert carbon.wait_for(base + "events.deploy_start", t0 - 1)
        assert carbon.wait_for(base + "events.deploy_end", t0 - 1)
        assert carbon.wait_for(base + "nodes.done", t0 - 1)
        drained = carbon.wait_for(base + "node.web2.drain_seconds", t0 - 1)
        assert all(v >= 0 for _, v in drained)
        # Nagios: each node's downtime scheduled, then deleted
        nagios.wait_for(
            lambda: (
                "\n".join(nagios.log_lines()).count("DEL_DOWNTIME_BY_START_TIME_COMMENT")
                == len(NODES)
            ),
            "Nagios to take every command",
        )
        log = "\n".join(nagios.log_lines())
        for n in NODES:
            assert f"EXTERNAL COMMAND: SCHEDULE_HOST_DOWNTIME;{n};" in log
            assert f"EXTERNAL COMMAND: SCHEDULE_SVC_DOWNTIME;{n};shop;" in log
        nagios.wait_for(lambda: nagios.downtimes() == [], "every downtime removed")
        # JUnit: valid against the schema
        xmlschema.XMLSchema(GOLDEN / "junit.xsd").validate(str(out_dir / f"junit-{run_id}.xml"))
        # the report, from the journal by `deploy report RUN` (the driver's state dir)
        page = lab.root / f"{run_id}.html"
        rep = lab.deploy("report", run_id, "-o", str(page), "--junit", str(lab.root / "j.xml"))
        assert rep.returncode == 0, rep.stdout + rep.stderr
        assert rep.stdout.startswith(f"report of run {run_id}: {page} (")
        dom = chromium("--dump-dom", page.as_uri())
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert '<svg class="timeline"' in dom.stdout and dom.stdout.count('class="capacity"') == 2
        shot = lab.root / f"{run_id}.png"
        result = chromium(f"--screenshot={shot}", "--window-size=1200,1100", page.as_uri())
        assert result.returncode == 0, result.stderr[-2000:]
        width, height, rows = png_pixels(shot.read_bytes())
        assert (width, height) == (1200, 1100)
        assert count_pixels(rows[150:700], (0x00, 0x69, 0x5C)) > 200  # capacity lines (teal)
        assert count_pixels(rows[150:700], (0x2E, 0x7D, 0x32)) > 100  # nodes done (green)
        assert lab.versions() == {n: "2.4.0" for n in NODES} and _all_up(lab)
        assert set(LBS) == {e["lb"] for e in events if e["kind"] == "capacity"}
    finally:
        carbon.stop()
        nagios.stop()
        import shutil

        shutil.rmtree(nagios_root, ignore_errors=True)
