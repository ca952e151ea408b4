"""SIGKILL of the driver at each state of the node state machine (a child process over a
file-backed fake fleet), then ``resume`` in this process: every node ends online on the new
version, nothing is left in maintenance, and ``reconcile`` on the killed run reports the truth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mcollective_py.orchestrate.journal import StateDir, new_run_id, read_journal
from mcollective_py.orchestrate.plan import Size, Strategy, make_plan
from mcollective_py.orchestrate.run import Executor, open_runs, reconcile
from tests.conftest import REPO
from tests.orchestrate.catalogs import catalog
from tests.orchestrate.fakefleet import FakeFleet

NODES = ["web1", "web2", "web3", "web4"]

KILLS = {
    # before the action the state announces (the record is on disk, the action not done)
    **{
        s: {"event_state": s, "node": "web2"}
        for s in ("prefetch", "drain", "activate", "verify", "gate", "online", "done")
    },
    # in the middle: the action done, its outcome not yet journaled
    "after_drain": {"call": ["haproxy", "to_maintenance", "web2", "after"]},
    "after_activate": {"call": ["deploy", "activate", "web2", "after"]},
    "after_to_online": {"call": ["haproxy", "to_online", "web2", "after"]},
}


def _kill_run(
    tmp_path: Path,
    kill: dict[str, Any],
    *,
    bad: bool = False,
    migrations: dict[str, Any] | None = None,
) -> tuple[FakeFleet, StateDir, str, Any]:
    cat = catalog(4, ("lb1", "lb2"), migrations=migrations)
    service = cat.service("shop")
    plan = make_plan(service, "lab", "1.1.0", Strategy(canary=Size(1)))
    fleet = FakeFleet(NODES, ("lb1", "lb2"), path=tmp_path / "fleet.json")
    if bad:
        fleet.node("web2")["bad"] = ["1.1.0"]
        fleet.save()
    state_dir = tmp_path / "state"
    rid = new_run_id("shop")
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "state_dir": str(state_dir),
                "fleet": str(fleet.path),
                "plan": plan.to_dict(),
                "run_id": rid,
                "kill": kill,
            }
        )
    )
    r = subprocess.run(
        [sys.executable, "-m", "tests.orchestrate.killchild", str(spec)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == -9, f"the child was not killed: rc={r.returncode} {r.stdout} {r.stderr}"
    fleet.load()
    return fleet, StateDir(state_dir), rid, (service, plan)


@pytest.mark.parametrize("where", list(KILLS))
def test_sigkill_then_resume_finishes_every_node(tmp_path: Path, where: str) -> None:
    fleet, state, rid, (service, plan) = _kill_run(tmp_path, KILLS[where])
    assert open_runs(state, "shop", "lab") == [rid]
    # reconcile on the killed run reports the truth (what the fleet says, not the journal)
    truth = {n.identity: n for n in reconcile(service, "lab", fleet).nodes}
    for n in NODES:
        assert truth[n].current_version == fleet.node(n)["current"]
        assert dict(truth[n].lb_states) == {lb: fleet.lb_state(lb, n) for lb in ("lb1", "lb2")}
    result = Executor(plan, fleet, state, rid, caller="resumer", sleep=lambda s: None).run()
    assert (result.outcome, result.exit_code) == ("done", 0), result.reason
    assert [fleet.node(n)["current"] for n in NODES] == ["1.1.0"] * 4
    assert all(fleet.lb_state(lb, n) == "UP" for lb in ("lb1", "lb2") for n in NODES)
    assert fleet.min_sample() >= 3
    recs = read_journal(state.journal_path(rid))
    leases = [r["detail"] for r in recs if r["kind"] == "lease"]
    assert [x["action"] for x in leases] == ["taken", "takeover", "released"]
    assert leases[1]["token"] == leases[0]["token"] + 1  # the fencing token moved on
    assert open_runs(state, "shop", "lab") == []


def test_sigkill_during_rollback_then_resume_finishes_the_rollback(tmp_path: Path) -> None:
    fleet, state, rid, (service, plan) = _kill_run(
        tmp_path, {"call": ["deploy", "rollback", "web2", "before"]}, bad=True
    )
    assert fleet.node("web2")["current"] == "1.1.0" and fleet.lb_state("lb1", "web2") == "MAINT"
    truth = {n.identity: n for n in reconcile(service, "lab", fleet).nodes}
    assert truth["web2"].out_of_pool and truth["web2"].current_version == "1.1.0"
    result = Executor(plan, fleet, state, rid, caller="resumer", sleep=lambda s: None).run()
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert fleet.node("web2")["current"] == "1.0.0"
    assert all(fleet.lb_state(lb, "web2") == "UP" for lb in ("lb1", "lb2"))
    assert result.in_maintenance == ()


def test_reconcile_repair_puts_a_healthy_node_back(tmp_path: Path) -> None:
    fleet, state, rid, (service, plan) = _kill_run(tmp_path, KILLS["gate"])
    assert fleet.lb_state("lb1", "web2") == "MAINT"
    rec = reconcile(service, "lab", fleet, repair=True, repair_versions=["1.1.0", "1.0.0"])
    web2 = next(n for n in rec.nodes if n.identity == "web2")
    assert web2.repaired and web2.note == "put back online"
    assert all(fleet.lb_state(lb, "web2") == "UP" for lb in ("lb1", "lb2"))


def test_abort_of_a_killed_run_finishes_the_node_in_flight_and_starts_no_other(
    tmp_path: Path,
) -> None:
    fleet, state, rid, (service, plan) = _kill_run(tmp_path, KILLS["drain"])
    assert fleet.lb_state("lb1", "web2") == "UP"  # killed before the drain reached the LBs
    result = Executor(plan, fleet, state, rid, caller="op", abort=True, sleep=lambda s: None).run()
    assert (result.outcome, result.exit_code) == ("aborted", 1)
    assert [fleet.node(n)["current"] for n in NODES] == ["1.1.0", "1.1.0", "1.0.0", "1.0.0"]
    assert all(fleet.lb_state(lb, n) == "UP" for lb in ("lb1", "lb2") for n in NODES)
    assert fleet.min_sample() >= 3
    assert open_runs(state, "shop", "lab") == []


def test_abort_of_a_paused_run(tmp_path: Path) -> None:
    cat = catalog(4, ("lb1",))
    plan = make_plan(
        cat.service("shop"), "lab", "1.1.0", Strategy(canary=Size(1), pause_after_canary=True)
    )
    fleet = FakeFleet(NODES)
    state = StateDir(tmp_path / "state")
    rid = new_run_id("shop")
    assert Executor(plan, fleet, state, rid, sleep=lambda s: None).run().outcome == "paused"
    result = Executor(plan, fleet, state, rid, abort=True, sleep=lambda s: None).run()
    assert (result.outcome, result.done) == ("aborted", ("web1",))
    assert state.read_lease("shop", "lab") is None  # released: a new run may start
    assert [fleet.node(n)["current"] for n in NODES] == ["1.1.0"] + ["1.0.0"] * 3


MIGRATE = {"command": "bin/migrate", "phase": "pre", "timeout": 60}


@pytest.mark.parametrize(
    ("kill", "runs"),
    [
        ({"call": ["deploy", "migrate", "web1", "after"]}, 2),  # done, but not journaled: again
        ({"event_state": "prefetch", "node": "web1"}, 1),  # journaled as ok: never again
    ],
)
def test_sigkill_around_the_pre_migration(tmp_path: Path, kill: dict[str, Any], runs: int) -> None:
    fleet, state, rid, (service, plan) = _kill_run(tmp_path, kill, migrations=MIGRATE)
    assert fleet.state["migrations"] == [["pre", "web1", "1.1.0"]]
    result = Executor(plan, fleet, state, rid, caller="resumer", sleep=lambda s: None).run()
    assert result.outcome == "done"
    assert fleet.state["migrations"] == [["pre", "web1", "1.1.0"]] * runs
    assert all(fleet.lb_state("lb1", n) == "UP" for n in NODES)
