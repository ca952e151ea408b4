"""The executor against the fake fleet: state machine, capacity guard, gates, rollback,
failure budget, migrations, pause/resume, lease and journal.  No network, no real time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mcollective_py.errors import LeaseHeld
from mcollective_py.orchestrate.events import EVENT_KINDS, NODE_STATES, DeployEvent, DeployHooks
from mcollective_py.orchestrate.journal import StateDir, new_run_id, read_journal
from mcollective_py.orchestrate.plan import Plan, Size, Strategy, make_plan, parse_steps
from mcollective_py.orchestrate.run import Executor, RunResult, open_runs
from tests.orchestrate.catalogs import catalog
from tests.orchestrate.fakefleet import FakeFleet

NODES4 = ["web1", "web2", "web3", "web4"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += max(0.0, s)


class Recorder(DeployHooks):
    def __init__(self) -> None:
        self.events: list[DeployEvent] = []

    def on_event(self, event: DeployEvent) -> None:
        self.events.append(event)


def plan_for(nodes: int = 4, lbs: tuple[str, ...] = ("lb1",), **strategy: Any) -> Plan:
    cat_kw = {k: strategy.pop(k) for k in ("migrations", "pools") if k in strategy}
    cat = catalog(nodes, lbs, **cat_kw)
    version = strategy.pop("version", "1.1.0")
    lb_state = strategy.pop("lb_state", None)
    return make_plan(cat.service("shop"), "lab", version, Strategy(**strategy), lb_state=lb_state)


def execute(
    plan: Plan,
    fleet: FakeFleet,
    tmp_path: Path,
    run_id: str | None = None,
    **kw: Any,
) -> tuple[RunResult, Recorder, str]:
    clock = FakeClock()
    state = StateDir(tmp_path / "state", clock=lambda: clock() + 1e9)
    rid = run_id or new_run_id(plan.service)
    rec = Recorder()
    ex = Executor(
        plan, fleet, state, rid, rec, caller="tester", clock=clock, sleep=clock.sleep, **kw
    )
    return ex.run(), rec, rid


def journal(tmp_path: Path, rid: str) -> list[dict[str, Any]]:
    return read_journal(tmp_path / "state" / "runs" / f"{rid}.jsonl")


def node_states(recs: list[dict[str, Any]], node: str) -> list[str]:
    return [r["state"] for r in recs if r["kind"] == "node_state" and r["node"] == node]


MACHINE = ["prefetch", "drain", "activate", "verify", "gate", "online", "done"]


def test_happy_path_two_lbs(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4, ("lb1", "lb2"))
    plan = plan_for(4, ("lb1", "lb2"), steps=parse_steps("2"), canary=Size(1))
    result, rec, rid = execute(plan, fleet, tmp_path)
    assert (result.outcome, result.exit_code) == ("done", 0)
    assert all(fleet.node(n)["current"] == "1.1.0" for n in NODES4)
    assert all(fleet.lb_state(lb, n) == "UP" for lb in ("lb1", "lb2") for n in NODES4)
    # the floor (4 - 1) held at every sample, on both LBs, and both LBs were moved and read
    assert fleet.min_sample() == 3
    moved = {(c[3][0], c[2]["server"]) for c in fleet.calls if c[1] == "to_maintenance"}
    assert moved == {(lb, n) for lb in ("lb1", "lb2") for n in NODES4} or all(
        len(c[3]) == 2 for c in fleet.calls if c[1] == "to_maintenance"
    )
    assert all(set(c[3]) == {"lb1", "lb2"} for c in fleet.calls if c[0] == "haproxy")
    recs = journal(tmp_path, rid)
    for n in NODES4:
        assert node_states(recs, n) == MACHINE
    # the journal holds exactly the events fired (plus lease records), in order
    events = [r for r in recs if r["kind"] != "lease"]
    assert events == [e.to_dict() for e in rec.events]
    assert {e.kind for e in rec.events} <= set(EVENT_KINDS)
    assert {e.state for e in rec.events if e.state} <= set(NODE_STATES)
    assert [r["detail"]["action"] for r in recs if r["kind"] == "lease"] == ["taken", "released"]
    # prefetch of a step comes before any drain of that step
    order = [(c[1], tuple(c[3])) for c in fleet.calls if c[1] in ("fetch", "to_maintenance")]
    assert order[0] == ("fetch", ("web1",)) and order[1][0] == "to_maintenance"
    assert order[2] == ("fetch", ("web2", "web3")) and order[3][0] == "to_maintenance"
    assert rec.events[0].detail["steps"] == [["web1"], ["web2", "web3"], ["web4"]]
    capacity = [e for e in rec.events if e.kind == "capacity"]
    assert capacity and all(e.detail["online"] - 1 >= e.detail["floor"] for e in capacity)
    assert {e.lb for e in capacity} == {"lb1", "lb2"}


def test_bad_version_rolled_back_and_run_fails(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    fleet.state["bad_versions"] = ["1.1.0"]
    plan = plan_for(canary=Size(1))
    result, rec, rid = execute(plan, fleet, tmp_path)
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert fleet.node("web1")["current"] == "1.0.0"  # rolled back
    assert fleet.lb_state("lb1", "web1") == "UP"  # healthy on the old release: back online
    assert [fleet.node(n)["current"] for n in NODES4[1:]] == ["1.0.0"] * 3  # budget 0: stop
    assert not [c for c in fleet.calls if c[1] == "to_maintenance" and c[2]["server"] != "web1"]
    recs = journal(tmp_path, rid)
    assert node_states(recs, "web1") == [
        "prefetch",
        "drain",
        "activate",
        "verify",
        "gate",
        "rollback",
        "rolled_back",
    ]
    end = recs[-2]
    assert end["kind"] == "run_end" and end["outcome"] == "failed"
    assert "gate: version (service)" in end["detail"]["failed"]["web1"]
    assert "1 failed node(s), more than the failure budget of 0" in end["detail"]["reason"]
    assert fleet.min_sample() >= 3


def test_unhealthy_previous_release_stays_in_maintenance(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    fleet.state["bad_versions"] = ["1.1.0"]
    fleet.node("web1")["healthy"] = True
    plan = plan_for(canary=Size(1))

    def sicken(f: FakeFleet, agent: str, action: str, idents: Any) -> None:
        if action == "rollback":
            f.node("web1")["healthy"] = False

    fleet.after_call = sicken
    result, _, rid = execute(plan, fleet, tmp_path)
    assert result.outcome == "failed" and result.in_maintenance == ("web1",)
    assert fleet.lb_state("lb1", "web1") == "MAINT"
    end = [r for r in journal(tmp_path, rid) if r["kind"] == "run_end"][0]
    assert end["detail"]["in_maintenance"] == ["web1"]
    assert "left in maintenance" in end["detail"]["failed"]["web1"]


def test_budget_counts_the_whole_run(tmp_path: Path) -> None:
    # one failure per step; budget 1: the second failure (in a later step) stops the run
    fleet = FakeFleet(NODES4)
    plan = plan_for(steps=parse_steps("2"), max_failures=Size(1))
    fleet.node("web1")["bad"] = fleet.node("web3")["bad"] = ["1.1.0"]
    result, _, rid = execute(plan, fleet, tmp_path)
    assert result.outcome == "failed"
    assert sorted(result.failed) == ["web1", "web3"]
    assert fleet.node("web2")["current"] == "1.1.0"
    assert fleet.node("web4")["current"] == "1.0.0"  # never started: the budget was spent


def test_rollback_on_failure_rolls_back_done_nodes_in_reverse(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    plan = plan_for(rollback_on_failure=True)
    fleet.node("web3")["bad"] = ["1.1.0"]
    result, rec, _ = execute(plan, fleet, tmp_path)
    assert (result.outcome, result.exit_code) == ("rolled_back", 1)
    assert [fleet.node(n)["current"] for n in NODES4] == ["1.0.0"] * 4
    rollbacks = [c[3][0] for c in fleet.calls if c[1] == "rollback"]
    assert rollbacks == ["web3", "web2", "web1"]
    assert fleet.min_sample() >= 3


def test_last_node_failing_fails_the_run(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    plan = plan_for(max_failures=Size(5))
    fleet.node("web4")["bad"] = ["1.1.0"]
    result, _, _ = execute(plan, fleet, tmp_path)
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert result.done == ("web1", "web2", "web3") and list(result.failed) == ["web4"]


def test_silent_node_fails_preflight_and_nothing_is_touched(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    fleet.node("web3")["silent"] = True
    result, rec, _ = execute(plan_for(), fleet, tmp_path)
    assert (result.outcome, result.exit_code) == ("failed", 3)
    assert "web3 did not answer rpcutil ping" in result.reason
    assert [c[1] for c in fleet.calls] == ["ping"]


def test_drain_deadline_puts_the_server_back_and_counts_a_failure(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    fleet.state["stuck_drain"] = ["web1"]
    result, _, _ = execute(plan_for(), fleet, tmp_path)
    assert result.outcome == "failed" and "still has 3 sessions" in result.failed["web1"]
    assert fleet.lb_state("lb1", "web1") == "UP" and fleet.node("web1")["current"] == "1.0.0"
    assert not [c for c in fleet.calls if c[1] == "activate"]


def test_down_server_goes_first_and_costs_no_capacity(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4, ("lb1", "lb2"))
    fleet.state["lbs"]["lb2"]["web4"]["health"] = "DOWN"
    lb_state = {lb: {n: fleet.lb_state(lb, n) for n in NODES4} for lb in ("lb1", "lb2")}
    plan = plan_for(4, ("lb1", "lb2"), lb_state=lb_state)
    assert plan.steps[0].nodes == ("web4",)
    result, _, _ = execute(plan, fleet, tmp_path)
    assert result.outcome == "done"
    assert fleet.min_sample() >= 3  # lb2 had 3 UP at the start: web4 first kept it at 3


def test_server_dropping_mid_run_stops_before_the_floor(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)

    def drop(f: FakeFleet, agent: str, action: str, idents: Any) -> None:
        if action == "to_online" and f.state["lbs"]["lb1"]["web1"]["admin"] == "READY":
            f.state["lbs"]["lb1"]["web4"]["health"] = "DOWN"  # falls over by itself

    fleet.after_call = drop
    result, rec, _ = execute(plan_for(capacity_wait=5), fleet, tmp_path)
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert "capacity guard: draining web2 would go below the floor (lb1: 3 UP, floor 3)" in (
        result.reason
    )
    assert fleet.min_sample() >= 3 - 0  # never took one more out
    assert fleet.node("web2")["current"] == "1.0.0"
    waits = [e for e in rec.events if e.kind == "capacity" and e.outcome == "wait"]
    assert len(waits) >= 5  # it waited (polled) before giving up


def test_lease_refuses_a_second_run_and_stale_lease_is_taken_over(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    lease, old = state.acquire("shop", "lab", "shop-20261204T100000Z-aaaaaa", "alice")
    assert old is None and lease.token == 1
    with pytest.raises(LeaseHeld, match=r"\Ashop in lab is locked by run shop-20261204T100000Z"):
        StateDir(tmp_path / "state").acquire("shop", "lab", "shop-20261204T100001Z-bbbbbb", "bob")
    # a holder on this host whose process is gone is stale: taken over with a new token
    path = state.lease_path("shop", "lab")
    d = json.loads(path.read_text())
    d["pid"] = _dead_pid()
    path.write_text(json.dumps(d))
    lease2, old2 = state.acquire("shop", "lab", "shop-20261204T100001Z-bbbbbb", "bob")
    assert old2 is not None and old2.run_id.endswith("aaaaaa") and lease2.token == 2
    # an expired lease of a live process elsewhere is taken over only after its expiry
    d = json.loads(path.read_text())
    d.update(host="elsewhere", pid=1)
    path.write_text(json.dumps(d))
    with pytest.raises(LeaseHeld):
        state.acquire("shop", "lab", "shop-20261204T100002Z-cccccc", "carol")
    later = StateDir(tmp_path / "state", clock=lambda: d["expiry"] + 1)
    assert later.acquire("shop", "lab", "shop-20261204T100002Z-cccccc", "carol")[0].token == 3


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_pause_after_canary_then_resume_records_the_approver(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    plan = plan_for(canary=Size(1), pause_after_canary=True)
    result, _, rid = execute(plan, fleet, tmp_path)
    assert (result.outcome, result.exit_code) == ("paused", 4)
    assert [fleet.node(n)["current"] for n in NODES4] == ["1.1.0"] + ["1.0.0"] * 3
    # the paused run keeps its lease: a new run is refused, and listed as open
    state = StateDir(tmp_path / "state")
    with pytest.raises(LeaseHeld, match="which is paused"):
        state.acquire("shop", "lab", new_run_id("shop"), "bob")
    assert open_runs(state, "shop", "lab") == [rid]
    # resumed without an approver: still paused, still holding the lease
    again, _, _ = execute(plan, fleet, tmp_path, run_id=rid)
    assert (again.outcome, again.exit_code) == ("paused", 4)
    assert open_runs(state, "shop", "lab") == [rid]
    with pytest.raises(LeaseHeld, match="which is paused"):
        state.acquire("shop", "lab", new_run_id("shop"), "bob")
    result2, rec2, _ = execute(plan, fleet, tmp_path, run_id=rid, approver="carol")
    assert (result2.outcome, result2.exit_code) == ("done", 0)
    assert [fleet.node(n)["current"] for n in NODES4] == ["1.1.0"] * 4
    resumed = [e for e in rec2.events if e.kind == "resumed"]
    assert resumed[0].approver == "carol"
    assert len([c for c in fleet.calls if c[1] == "activate" and c[3] == ["web1"]]) == 1
    assert open_runs(state, "shop", "lab") == []


MIGRATE = {"command": "bin/migrate", "phase": "pre", "timeout": 60}


def test_pre_migration_once_before_any_drain(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    plan = plan_for(migrations=MIGRATE, canary=Size(1), pause_after_canary=True)
    result, rec, rid = execute(plan, fleet, tmp_path)
    assert result.outcome == "paused"
    names = [c[1] for c in fleet.calls]
    assert names.index("migrate") < names.index("to_maintenance")
    assert fleet.state["migrations"] == [["pre", "web1", "1.1.0"]]
    execute(plan, fleet, tmp_path, run_id=rid, approver="carol")
    assert fleet.state["migrations"] == [["pre", "web1", "1.1.0"]]  # never again on resume
    assert [(e.detail["phase"], e.outcome) for e in rec.events if e.kind == "migration"] == [
        ("pre", "started"),
        ("pre", "ok"),
    ]


def test_failed_pre_migration_touches_no_node(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    fleet.node("web1")["migrate_fails"] = True
    result, _, _ = execute(plan_for(migrations=MIGRATE), fleet, tmp_path)
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert "pre migration failed on web1" in result.reason
    assert {c[1] for c in fleet.calls} == {
        "ping",
        "fetch",
        "migrate",
    }  # fetch: the command is the release's


def test_post_migration_after_the_last_node(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    result, _, _ = execute(plan_for(migrations=dict(MIGRATE, phase="post")), fleet, tmp_path)
    assert result.outcome == "done"
    names = [c[1] for c in fleet.calls]
    assert names[-1] == "migrate" and names.index("migrate") > max(
        i for i, n in enumerate(names) if n == "to_online"
    )


def test_abort_flag_stops_a_live_run_between_nodes(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    plan = plan_for()
    holder: dict[str, str] = {}

    def ask_abort(f: FakeFleet, agent: str, action: str, idents: Any) -> None:
        if action == "to_online" and idents == ["lb1"] and "rid" in holder:
            (tmp_path / "state" / "runs" / f"{holder['rid']}.abort").write_text("")

    fleet.after_call = ask_abort
    holder["rid"] = new_run_id("shop")
    result, _, _ = execute(plan, fleet, tmp_path, run_id=holder["rid"])
    assert (result.outcome, result.done) == ("aborted", ("web1",))
    assert all(fleet.lb_state("lb1", n) == "UP" for n in NODES4)


def test_journal_torn_last_line_is_ignored(tmp_path: Path) -> None:
    fleet = FakeFleet(NODES4)
    result, _, rid = execute(plan_for(), fleet, tmp_path)
    path = tmp_path / "state" / "runs" / f"{rid}.jsonl"
    n = len(read_journal(path))
    with open(path, "ab") as fh:
        fh.write(b'{"kind": "node_state", "no')
    assert len(read_journal(path)) == n
    assert os.path.getsize(path) > 0
