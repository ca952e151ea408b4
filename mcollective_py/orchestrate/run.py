"""The executor: carries out a :class:`~.plan.Plan` over a :class:`~.fleet.Fleet`.

Per node, a state machine written ahead to the journal (``node_state`` events, fsync'ed before
the action they announce)::

    pending -> prefetch -> drain -> activate -> verify -> gate -> online -> done
                  |          |        \\________\\_______\\_______\\-> rollback -> rolled_back
                  v          v                                              \\-> failed
                failed     failed (put back online: it was never touched)

* **preflight**: every node and every load balancer answers ``rpcutil ping``; a silent one
  fails the run before anything is touched (exit 3).
* **prefetch**: ``deploy fetch`` on every node of the step before any drain, so the time out of
  the pool is only activation; ``deploy status`` records each node's previous version.
* **drain**: before *each* drain the capacity guard reads every load balancer's live state
  (haproxy ``status``) and drains only if every LB keeps at least ``floor`` servers UP
  (a server already DOWN/MAINT costs nothing); otherwise it waits up to ``capacity_wait`` and
  then stops the run.  Then ``to_maintenance`` on every LB holding the server, with
  ``drain_timeout``.  DOWN counts as drained.  **Deadline policy**: sessions that outlive the
  deadline are never cut: the server is put back online, left on its old release, and counts
  as a failed node.
* **activate** (``deploy activate``), **verify** (``deploy status`` must *report* the target
  version), **gate** (the plan's health checks, retried until ``gate_deadline``; with
  ``min_healthy_time`` they must pass again after that long), **online** (``to_online`` on
  every LB, which waits for a settled UP).
* **migrations** (the catalog's ``pre``/``post`` phases, :mod:`.migrations`): ``pre`` on the
  plan's first node (``deploy fetch``, then ``deploy migrate``) after preflight and before any
  drain; ``post`` after the last node is done and the phase's ``soak``.
* **rollback**: a node failing activate/verify/gate/online is rolled back to its recorded
  previous release (``deploy rollback version=PREV``, idempotent), verified and re-gated on
  it, and put back online only if healthy; otherwise it stays in maintenance and the run's end
  says so.  Once ``pre`` started, only to a release the catalog declares compatible with the
  new schema (:func:`.migrations.rollback_verdict`); otherwise the node stays in maintenance
  on the new release and the run says why.

The failure budget (``plan.max_failures``) counts failed nodes over the whole run; one more
stops it, and ``rollback_on_failure`` then rolls back the nodes already done (reverse order,
same capacity guard).  Any failed node fails the run (exit 1), the last one included.

Resume (:meth:`Executor.run` on a journal that has records): nodes in a terminal state are
left alone; a node caught in ``rollback`` finishes its rollback; a node caught anywhere else
starts its machine again (every action is idempotent: a MAINT server is not drained twice, an
active release is not re-activated).  A migration journaled ``ok`` is never asked again; one
cut off is asked again and the node's ledger answers "already applied" if it completed.

Nothing here prints; everything is reported through ``DeployHooks``.
"""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ValidationError
from ..release.catalog import Service
from .events import DeployEvent, DeployHooks
from .fleet import Fleet
from .journal import LEASE_TTL, Journal, Lease, StateDir, read_journal
from .migrations import rollback_verdict
from .plan import Plan, lb_states_from_status, migration_phases, node_gates

TERMINAL = ("done", "failed", "rolled_back")
PING_TIMEOUT = 10.0
STATUS_TIMEOUT = 15.0
FETCH_TIMEOUT = 600.0
ACTIVATE_TIMEOUT = 180.0
CHECK_TIMEOUT = 60.0
CAPACITY_POLL = 1.0
#: Renew the lease (TTL ``journal.LEASE_TTL``) when it is older than this; check it otherwise.
LEASE_RENEW = 20.0


@dataclass(frozen=True)
class RunResult:
    """How a run ended: ``outcome`` done | failed | rolled_back | aborted | paused."""

    run_id: str
    outcome: str
    exit_code: int
    reason: str = ""
    done: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)
    in_maintenance: tuple[str, ...] = ()
    overhead: float = 0.0
    waited: float = 0.0  # seconds in fleet calls (node actions, status reads) and sleeps
    wall: float = 0.0


class _Stop(Exception):
    """Ends the run early with an outcome (internal)."""

    def __init__(self, outcome: str, reason: str, exit_code: int = 1) -> None:
        super().__init__(reason)
        self.outcome, self.reason, self.exit_code = outcome, reason, exit_code


@dataclass
class _Reply:
    ok: bool
    message: str
    data: Mapping[str, Any]


class Executor:
    """Runs (or resumes) one run.  ``clock``/``sleep`` are injectable (tests run instantly)."""

    def __init__(
        self,
        plan: Plan,
        fleet: Fleet,
        state: StateDir,
        run_id: str,
        hooks: DeployHooks | None = None,
        *,
        caller: str | None = None,
        approver: str | None = None,
        abort: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.plan, self.fleet, self.state, self.run_id = plan, fleet, state, run_id
        self.hooks = hooks or DeployHooks()
        self.caller = caller or _whoami()
        self.approver = approver
        self.abort_mode = abort
        self.clock, self.sleep, self.wall = clock, sleep, wall
        self.journal_path = state.journal_path(run_id)
        self.node_state: dict[str, str] = {n.identity: "pending" for n in plan.nodes}
        self.reasons: dict[str, str] = {}
        self.left_in_maintenance: dict[str, list[str]] = {}
        self.previous: dict[str, str | None] = {}
        self.migrations_done: set[str] = set()
        self.migrations_tried: set[str] = set()  # started (maybe half-way): the schema may differ
        self.paused = False
        self.approved = False
        self.lease: Lease | None = None
        self.journal: Journal | None = None
        self.waited = 0.0  # seconds in fleet calls and sleeps: the nodes' time, not ours
        self._step = 0
        self._node_t0: dict[str, float] = {}  # wall time a node's machine (re)started
        self._run_t0: float | None = None  # wall time of run_start (from the journal on resume)
        self._renewed = 0.0
        self._resumed = False
        # the lease must outlive the longest call between two records (a drain, a gate round)
        self.lease_ttl = LEASE_TTL + 2 * (
            plan.drain_timeout + plan.online_timeout + plan.gate_deadline + plan.capacity_wait
        )
        self._load()

    # ---------------------------------------------------------------- journal
    def _load(self) -> None:
        if not self.journal_path.exists():
            return
        self._resumed = True
        for rec in read_journal(self.journal_path):
            kind, node, detail = rec.get("kind"), rec.get("node"), rec.get("detail") or {}
            if kind == "run_start" and isinstance(rec.get("time"), int | float):
                self._run_t0 = float(rec["time"])
            if kind == "node_state" and node in self.node_state:
                self.node_state[node] = str(rec.get("state"))
                self._note(node, str(rec.get("state")), detail)
                if "previous_version" in detail:
                    self.previous[node] = detail["previous_version"]
            elif kind == "migration":
                self.migrations_tried.add(str(detail.get("phase")))
                if rec.get("outcome") == "ok":
                    self.migrations_done.add(str(detail.get("phase")))
            elif kind == "paused":
                self.paused, self.approved = True, False
            elif kind == "resumed" and rec.get("approver"):
                self.approved = True

    def emit(self, kind: str, **kw: Any) -> DeployEvent:
        """Journal first (fsync), then the hooks: the journal is written ahead.  ``detail`` is
        made JSON-plain first, so a subscriber sees exactly what the journal holds."""
        if "detail" in kw:
            kw["detail"] = json.loads(json.dumps(kw["detail"], default=str))
        ev = DeployEvent(
            kind=kind,
            run_id=self.run_id,
            service=self.plan.service,
            environment=self.plan.environment,
            version=self.plan.version,
            time=self.wall(),
            caller=self.caller,
            **kw,
        )
        if self.lease is not None:  # fencing: never act on a lease that is no longer ours
            if self.wall() - self._renewed > LEASE_RENEW:
                self.lease = self.state.renew(self.lease, self.lease_ttl)
                self._renewed = self.wall()
            else:
                self.state.check(self.lease)
        assert self.journal is not None
        self.journal.append(ev.to_dict())
        self.hooks.on_event(ev)
        return ev

    def _record(self, record: dict[str, Any]) -> None:
        assert self.journal is not None
        self.journal.append(record)

    def _note(self, node: str, state: str, detail: Mapping[str, Any]) -> None:
        if "reason" in detail:
            self.reasons[node] = str(detail["reason"])
        if state == "failed" and detail.get("in_maintenance"):
            self.left_in_maintenance[node] = list(detail["in_maintenance"])
        elif state in ("done", "rolled_back", "drain"):
            self.left_in_maintenance.pop(node, None)

    def _set(self, node: str, state: str, outcome: str | None = None, **detail: Any) -> None:
        """Enter ``state``; a final state (done, failed, rolled_back) carries ``duration``:
        seconds since the node's machine started (prefetch, or drain in a run-wide rollback)."""
        now = self.wall()
        if state in ("prefetch", "drain") and node not in self._node_t0:
            self._node_t0[node] = now
        duration = None
        if state in TERMINAL:
            t0 = self._node_t0.pop(node, None)
            duration = max(0.0, now - t0) if t0 is not None else None
        self.node_state[node] = state
        self._note(node, state, detail)
        self.emit(
            "node_state",
            step=self._step,
            node=node,
            state=state,
            outcome=outcome,
            duration=duration,
            detail=detail,
        )

    # ---------------------------------------------------------------- fleet
    def _call(
        self,
        agent: str,
        action: str,
        data: Mapping[str, Any],
        nodes: Sequence[str],
        timeout: float,
    ) -> dict[str, _Reply]:
        """One call; every asked node gets an entry (silent ones: not ok, "no response")."""
        out: dict[str, _Reply] = {}
        if not nodes:
            return out
        t0 = self.clock()
        try:
            res = self.fleet.call(agent, action, data, list(nodes), timeout=timeout)
        except ValidationError as exc:
            return {n: _Reply(False, f"refused by the {agent} DDL: {exc}", {}) for n in nodes}
        finally:
            self.waited += self.clock() - t0
        for r in res.replies:
            if r.sender in nodes:
                out[r.sender] = _Reply(r.ok, r.statusmsg, dict(r.data))
        for n in nodes:
            out.setdefault(n, _Reply(False, f"no response within {timeout:g} s", {}))
        return out

    def _sleep(self, seconds: float) -> None:
        t0 = self.clock()
        try:
            self.sleep(seconds)
        finally:
            self.waited += self.clock() - t0

    # ---------------------------------------------------------------- the run
    def run(self, lease_owner: str | None = None) -> RunResult:
        """Take the lease, run (or resume) to the end or a pause; never raises for a node's
        failure.  Raises LeaseHeld, JournalError, TransportError (infrastructure)."""
        t_start = self.clock()
        self.lease, old = self.state.acquire(
            self.plan.service,
            self.plan.environment,
            self.run_id,
            lease_owner or self.caller,
            self.lease_ttl,
        )
        self._renewed = self.wall()
        self.journal = Journal(self.journal_path)
        self._record(
            {
                "kind": "lease",
                "run_id": self.run_id,
                "time": self.wall(),
                "detail": {
                    "action": "takeover" if old is not None else "taken",
                    "token": self.lease.token,
                    "owner": self.lease.owner,
                    "pid": self.lease.pid,
                    "host": self.lease.host,
                    "expiry": self.lease.expiry,
                    "previous_holder": old.run_id if old else None,
                },
            }
        )
        result: RunResult | None = None
        try:
            result = self._run()
        except _Stop as stop:
            result = self._finish(stop.outcome, stop.reason, stop.exit_code)
        finally:
            if result is None:  # infrastructure trouble: keep the journal open-ended (resume)
                self.journal.close()
        wall = self.clock() - t_start
        return replace(result, wall=wall, waited=self.waited, overhead=max(0.0, wall - self.waited))

    def _run(self) -> RunResult:
        plan = self.plan
        if self._resumed:
            self.emit(
                "resumed",
                approver=self.approver if self.paused and not self.approved else None,
                detail={"abort": self.abort_mode, "states": dict(self.node_state)},
            )
            if self.paused and self.approver:
                self.approved = True
        else:
            self._run_t0 = self.wall()
            self.emit(
                "run_start",
                artifact_sha256=plan.sha256,
                detail={
                    "plan": plan.to_dict(),
                    "nodes": [n.identity for n in plan.nodes],
                    "steps": [list(s.nodes) for s in plan.steps],
                    "strategy": {
                        "floor": plan.floor,
                        "max_unavailable": plan.max_unavailable,
                        "max_failures": plan.max_failures,
                        "settle": plan.settle,
                        "pause_after_canary": plan.pause_after_canary,
                        "rollback_on_failure": plan.rollback_on_failure,
                    },
                    "journal": str(self.journal_path),
                },
            )
        if not plan.nodes:
            return self._finish("done", "every node is already on the target version", 0)
        self._preflight()
        if self.abort_mode:
            self._finish_inflight()
            raise _Stop("aborted", "aborted by the operator", 1)
        self._migrate("pre")
        budget_spent = False
        for step in plan.steps:
            self._step = step.index
            todo = [n for n in step.nodes if self.node_state[n] not in TERMINAL]
            if not todo:
                continue
            if step.name != "canary" and self.paused and not self.approved:
                return self._park(step.index, "still waiting for approval (resume --approver)")
            self.emit(
                "step_start", step=step.index, detail={"name": step.name, "nodes": list(todo)}
            )
            t_step = self.wall()
            ok = self._step_nodes(todo)
            self.emit(
                "step_end",
                step=step.index,
                outcome="ok" if ok else "failed",
                duration=max(0.0, self.wall() - t_step),
                detail={"name": step.name, "failures": self._failures()},
            )
            if self._failures() > plan.max_failures:
                budget_spent = True
                break
            last = step is plan.steps[-1]
            if step.name == "canary" and plan.pause_after_canary and not self.approved and not last:
                return self._park(step.index, "paused after the canary")
            if not last and plan.settle:
                self._sleep(plan.settle)
        if budget_spent:
            n = self._failures()
            reason = f"{n} failed node(s), more than the failure budget of {plan.max_failures}"
            if plan.rollback_on_failure:
                refused = self._rollback_done()
                if refused:
                    raise _Stop(
                        "failed", f"{reason}; the done nodes were not rolled back: {refused}", 1
                    )
                raise _Stop("rolled_back", reason, 1)
            raise _Stop("failed", reason, 1)
        if self._failures():
            raise _Stop("failed", f"{self._failures()} node(s) failed", 1)
        post = [p for p in migration_phases(plan) if p.get("phase") == "post"]
        if post and "post" not in self.migrations_done:
            soak = float(post[0].get("soak") or 0.0)
            if soak:
                self._sleep(soak)
            self._migrate("post")
        return self._finish("done", "", 0)

    def _park(self, step: int, reason: str) -> RunResult:
        """Stop on purpose (exit 4): the lease is kept, with no expiry, until resume/abort."""
        self.paused = True
        self.emit("paused", step=step, detail={"after": "canary", "reason": reason})
        assert self.lease is not None
        self.lease = self.state.renew(self.lease, paused=True)
        self.lease = None  # parked: emit() must not renew it any more
        self.journal_close()
        return RunResult(self.run_id, "paused", 4, reason, self._done())

    def journal_close(self) -> None:
        if self.journal is not None:
            self.journal.close()

    # ---------------------------------------------------------------- pieces
    def _failures(self) -> int:
        return sum(
            1 for s in self.node_state.values() if s in ("failed", "rolled_back", "rollback")
        )

    def _done(self) -> tuple[str, ...]:
        return tuple(n for n, s in self.node_state.items() if s == "done")

    def _check_abort(self) -> None:
        if self.state.abort_path(self.run_id).exists():
            self.state.abort_path(self.run_id).unlink(missing_ok=True)
            raise _Stop("aborted", "aborted by the operator (deploy abort)", 1)

    def _preflight(self) -> None:
        plan = self.plan
        targets = [n.identity for n in plan.nodes] + list(plan.load_balancers)
        replies = self._call("rpcutil", "ping", {}, targets, PING_TIMEOUT)
        silent = sorted(n for n, r in replies.items() if not r.ok)
        self.emit(
            "preflight",
            outcome="failed" if silent else "ok",
            detail={"asked": targets, "failed": {n: replies[n].message for n in silent}},
        )
        if silent:
            raise _Stop(
                "failed",
                f"preflight: {', '.join(silent)} did not answer rpcutil ping; nothing was touched",
                3,
            )

    def _migrate(self, phase: str) -> None:
        """Run one phase on the first node of the plan, once: a phase recorded ok in the
        journal is not asked again; one that started and was cut off is asked again, and the
        node's migration ledger (one lock per database) answers "already applied" if it had
        completed.  A failed ``pre`` stops the run before any node is touched."""
        phases = {str(p.get("phase")): p for p in migration_phases(self.plan)}
        m = phases.get(phase)
        if m is None or phase in self.migrations_done:
            return
        node = self.plan.steps[0].nodes[0] if self.plan.steps else self.plan.nodes[0].identity
        # write-ahead: a kill during the migration leaves "started" without "ok", and resume
        # asks again (the node's ledger never applies a completed phase twice)
        self.migrations_tried.add(phase)
        self.emit(
            "migration",
            node=node,
            outcome="started",
            detail={"phase": phase, "command": m.get("command")},
        )
        t0 = self.clock()
        # the command is the release's own: the node needs the release fetched (not active)
        fetched = self._call(
            "deploy",
            "fetch",
            {
                "service": self.plan.service,
                "version": self.plan.version,
                "sha256": self.plan.sha256,
            },
            [node],
            FETCH_TIMEOUT,
        )[node]
        if not fetched.ok:
            r = _Reply(False, f"deploy fetch before the migration: {fetched.message}", {})
        else:
            r = self._call(
                "deploy",
                "migrate",
                {"service": self.plan.service, "version": self.plan.version, "phase": phase},
                [node],
                float(m.get("timeout") or 600) + 30,
            )[node]
        self.emit(
            "migration",
            node=node,
            outcome="ok" if r.ok else "failed",
            duration=self.clock() - t0,
            detail={
                "phase": phase,
                "command": m.get("command"),
                "message": r.message,
                "output": str(r.data.get("output") or r.data.get("detail") or r.message)[:2000],
                "already_applied": bool(r.data.get("already_applied")),
                "applied_by": r.data.get("applied_by"),
            },
        )
        if not r.ok:
            where = "no node was touched" if phase == "pre" else "every node is on the new release"
            raise _Stop("failed", f"{phase} migration failed on {node}: {r.message}; {where}", 1)
        self.migrations_done.add(phase)

    def _may_roll_back(self, previous: str | None) -> tuple[bool, str]:
        """:func:`~.migrations.rollback_verdict` for this run: once ``pre`` started, only to
        a release the catalog declared compatible with the new schema."""
        m = self.plan.migration or {}
        return rollback_verdict(
            self.plan.service,
            self.plan.version,
            previous,
            has_pre=any(p.get("phase") == "pre" for p in migration_phases(self.plan)),
            pre_ran="pre" in self.migrations_tried,
            compatible=[str(v) for v in m.get("rollback_compatible") or ()],
        )

    # -- capacity
    def _lb_states(self) -> dict[str, dict[str, str]]:
        plan = self.plan
        if not plan.load_balancers:
            return {}
        replies = self._call(
            "haproxy", "status", {"backend": plan.backend}, plan.load_balancers, STATUS_TIMEOUT
        )
        out: dict[str, dict[str, str]] = {}
        for lb, r in replies.items():
            if not r.ok:
                raise _Stop(
                    "failed",
                    f"capacity guard: load balancer {lb} did not report its state ({r.message})",
                    3,
                )
            out[lb] = lb_states_from_status(list(r.data.get("backends") or []), str(plan.backend))
        return out

    def _room_for(self, node: str) -> tuple[bool, dict[str, str]]:
        """Whether draining ``node`` keeps every LB at or above the floor (live read)."""
        plan = self.plan
        ours = {n.identity for n in plan.nodes} | {s for s, _ in plan.skipped}
        ok, why = True, {}
        for lb, states in self._lb_states().items():
            online = sum(1 for s, st in states.items() if st == "UP" and s in ours)
            cost = 1 if states.get(node) == "UP" else 0
            fits = online - cost >= plan.floor
            self.emit(
                "capacity",
                step=self._step,
                node=node,
                lb=lb,
                outcome="ok" if fits else "wait",
                detail={
                    "backend": plan.backend,
                    "online": online,
                    "floor": plan.floor,
                    "total": plan.total,
                    "down": sorted(s for s, st in states.items() if st != "UP"),
                },
            )
            if not fits:
                ok = False
                why[lb] = f"{online} UP, floor {plan.floor}"
        return ok, why

    def _wait_for_room(self, node: str) -> bool:
        deadline = self.clock() + self.plan.capacity_wait
        while True:
            ok, why = self._room_for(node)
            if ok:
                return True
            if self.clock() >= deadline:
                raise _Stop(
                    "failed",
                    f"capacity guard: draining {node} would go below the floor ("
                    + "; ".join(f"{lb}: {w}" for lb, w in why.items())
                    + f") and capacity did not come back within {self.plan.capacity_wait:g} s",
                    1,
                )
            self._sleep(CAPACITY_POLL)

    # -- per step
    def _step_nodes(self, todo: list[str]) -> bool:
        plan = self.plan
        rollbacks = [n for n in todo if self.node_state[n] == "rollback"]
        for n in rollbacks:
            self._rollback_node(n, self.reasons.get(n) or "resumed during rollback")
        todo = [n for n in todo if self.node_state[n] not in TERMINAL]
        # prefetch: every node of the step, before any drain
        for n in todo:
            self._set(n, "prefetch")
        fetched = self._call(
            "deploy",
            "fetch",
            {"service": plan.service, "version": plan.version, "sha256": plan.sha256},
            todo,
            FETCH_TIMEOUT,
        )
        status = self._call("deploy", "status", {"service": plan.service}, todo, STATUS_TIMEOUT)
        ready = []
        for n in todo:
            if not fetched[n].ok:
                self._set(n, "failed", "failed", reason=f"prefetch: {fetched[n].message}")
                continue
            if not status[n].ok:
                self._set(n, "failed", "failed", reason=f"deploy status: {status[n].message}")
                continue
            cur = status[n].data.get("current_version")
            if n not in self.previous or cur != plan.version:
                self.previous[n] = cur if cur != plan.version else self.previous.get(n)
            ready.append(n)
        all_ok = len(ready) == len(todo)
        while ready:
            self._check_abort()
            if self._failures() > plan.max_failures:
                return False
            wave = self._drain_wave(ready)
            ready = [n for n in ready if n not in wave and self.node_state[n] not in TERMINAL]
            live = [n for n in wave if self.node_state[n] == "drain"]
            if not self._activate_wave(live):
                all_ok = False
            if any(self.node_state[n] != "done" for n in wave):
                all_ok = False
        return all_ok

    def _drain_wave(self, ready: list[str]) -> list[str]:
        """Drain as many of ``ready`` as capacity allows now (at least one, waiting for room)."""
        plan = self.plan
        wave: list[str] = []
        for n in ready:
            if len(wave) >= plan.max_unavailable:
                break
            if wave:
                ok, _ = self._room_for(n)
                if not ok:
                    break
            else:
                self._wait_for_room(n)
            node = plan.node(n)
            self._set(n, "drain", previous_version=self.previous.get(n))
            wave.append(n)
            if not node.load_balancers:
                continue
            replies = self._call(
                "haproxy",
                "to_maintenance",
                {"server": n, "backend": plan.backend, "timeout": int(plan.drain_timeout)},
                node.load_balancers,
                plan.drain_timeout + 30,
            )
            bad = {lb: r.message for lb, r in replies.items() if not r.ok}
            if bad:
                # deadline policy: never cut sessions; back online, old release, a failure
                back = self._call(
                    "haproxy",
                    "to_online",
                    {"server": n, "backend": plan.backend, "timeout": int(plan.online_timeout)},
                    node.load_balancers,
                    plan.online_timeout + 30,
                )
                still = sorted(lb for lb, r in back.items() if not r.ok)
                reason = "drain: " + "; ".join(f"{lb}: {m}" for lb, m in bad.items())
                if still:
                    reason += f"; could not put it back online on {', '.join(still)}"
                self._set(n, "failed", "failed", reason=reason, in_maintenance=still)
        return wave

    def _activate_wave(self, live: list[str]) -> bool:
        plan = self.plan
        if not live:
            return False
        for n in live:
            self._set(n, "activate")
        act = self._call(
            "deploy",
            "activate",
            {"service": plan.service, "version": plan.version},
            live,
            ACTIVATE_TIMEOUT,
        )
        failed = {n: f"activate: {act[n].message}" for n in live if not act[n].ok}
        live = [n for n in live if n not in failed]
        for n in live:
            self._set(n, "verify")
        bad = self._verify(live, plan.version)
        failed.update(bad)
        live = [n for n in live if n not in bad]
        for n in live:
            self._set(n, "gate")
        bad = self._gates(live, plan.version)
        failed.update(bad)
        live = [n for n in live if n not in bad]
        for n in live:
            self._set(n, "online")
            problem = self._online(n)
            if problem:
                failed[n] = problem
            else:
                self._set(n, "done", "ok")
        for n, reason in failed.items():
            self._rollback_node(n, reason)
        return not failed

    def _verify(self, nodes: list[str], version: str) -> dict[str, str]:
        st = self._call("deploy", "status", {"service": self.plan.service}, nodes, STATUS_TIMEOUT)
        bad = {}
        for n in nodes:
            r = st[n]
            if not r.ok:
                bad[n] = f"verify: deploy status failed: {r.message}"
            elif r.data.get("current_version") != version:
                bad[n] = (
                    f"verify: the node reports {r.data.get('current_version')!r}, not {version}"
                )
        return bad

    def _gates(self, nodes: list[str], version: str) -> dict[str, str]:
        """Every gate on every node, retried until the deadline; with ``min_healthy_time`` a
        second passing round after that long.  Returns node -> why it failed."""
        plan = self.plan
        t0 = self.clock()
        deadline = t0 + plan.gate_deadline
        rounds_needed = 2 if plan.min_healthy_time > 0 else 1
        passed: dict[str, int] = {n: 0 for n in nodes}
        last: dict[str, str] = {}
        pending = list(nodes)
        while pending:
            for n in list(pending):
                problem = self._gate_round(n, version)
                if problem is None:
                    passed[n] += 1
                    if passed[n] >= rounds_needed:
                        pending.remove(n)
                else:
                    passed[n] = 0
                    last[n] = problem
            if not pending:
                break
            if self.clock() >= deadline:
                return {
                    n: f"gate: {last.get(n, 'not healthy long enough')} "
                    f"(deadline {plan.gate_deadline:g} s)"
                    for n in pending
                }
            wait = (
                plan.min_healthy_time if all(passed[n] for n in pending) else plan.gate_retry_delay
            )
            self._sleep(max(0.0, min(wait, deadline - self.clock())))
        return {}

    def _gate_round(self, node: str, version: str) -> str | None:
        for g in self.plan.gates_for(node, version):
            r = self._call("healthcheck", g.action, g.data, [node], CHECK_TIMEOUT)[node]
            ok = r.ok and r.data.get("ok", True) is not False
            self.emit(
                "gate",
                step=self._step,
                node=node,
                outcome="ok" if ok else "failed",
                duration=float(r.data.get("duration") or 0.0),
                detail={
                    "check": g.name,
                    "action": g.action,
                    "version": version,
                    "output": str(r.data.get("detail") or r.message)[:500],
                },
            )
            if not ok:
                return f"{g.name} ({g.action}): {str(r.data.get('detail') or r.message)[:300]}"
        return None

    def _online(self, n: str) -> str | None:
        plan = self.plan
        node = plan.node(n)
        if not node.load_balancers:
            return None
        replies = self._call(
            "haproxy",
            "to_online",
            {"server": n, "backend": plan.backend, "timeout": int(plan.online_timeout)},
            node.load_balancers,
            plan.online_timeout + 30,
        )
        bad = {lb: r.message for lb, r in replies.items() if not r.ok}
        if bad:
            return "online: " + "; ".join(f"{lb}: {m}" for lb, m in bad.items())
        return None

    def _to_maintenance(self, n: str, *, force: bool = True) -> str | None:
        """Out of the pool on every LB holding ``n``.  ``force`` (a failing node): MAINT even
        when sessions outlive the deadline; without it (a healthy node) such a drain fails."""
        node = self.plan.node(n)
        replies = self._call(
            "haproxy",
            "to_maintenance",
            {
                "server": n,
                "backend": self.plan.backend,
                "timeout": int(self.plan.drain_timeout),
                "force": force,
            },
            node.load_balancers,
            self.plan.drain_timeout + 30,
        )
        bad = {lb: r.message for lb, r in replies.items() if not r.ok}
        return "; ".join(f"{lb}: {m}" for lb, m in bad.items()) or None

    def _rollback_node(self, n: str, reason: str) -> None:
        """Back to the previous release; online only if healthy, else left in maintenance."""
        plan = self.plan
        prev = self.previous.get(n)
        allowed, why = self._may_roll_back(prev)
        if prev and not allowed:
            # the schema moved on: the old release may not run on it; out of the pool, stays
            problem = self._to_maintenance(n) if plan.node(n).load_balancers else None
            self._set(
                n,
                "failed",
                "failed",
                reason=f"{reason}; not rolled back to {prev}: {why}; left in maintenance"
                + (f" (taking it out of the pool failed: {problem})" if problem else ""),
                in_maintenance=list(plan.node(n).load_balancers),
                rollback_refused=why,
            )
            return
        self._set(n, "rollback", "failed", reason=reason, previous_version=prev)
        self.emit("rollback", step=self._step, node=n, detail={"to": prev, "reason": reason})
        if not prev:
            self._set(
                n,
                "failed",
                "failed",
                reason=f"{reason}; no previous release to roll back to: left in maintenance",
                in_maintenance=list(plan.node(n).load_balancers),
            )
            return
        # the node may have been put online (a failed to_online, or a kill): out first
        problem = self._to_maintenance(n) if plan.node(n).load_balancers else None
        r = self._call(
            "deploy",
            "rollback",
            {"service": plan.service, "version": prev},
            [n],
            ACTIVATE_TIMEOUT,
        )[n]
        bad: dict[str, str] = {}
        if problem:
            bad[n] = f"could not take it out of the pool: {problem}"
        elif not r.ok:
            bad[n] = f"deploy rollback: {r.message}"
        else:
            bad = self._verify([n], prev) or self._gates([n], prev)
        if not bad:
            online = self._online(n)
            if online:
                bad[n] = online
        if bad:
            self._set(
                n,
                "failed",
                "failed",
                reason=f"{reason}; rollback to {prev} did not make it healthy ({bad[n]}): "
                "left in maintenance",
                in_maintenance=list(plan.node(n).load_balancers),
            )
        else:
            self._set(n, "rolled_back", "rolled_back", reason=reason, version=prev)

    def _rollback_done(self) -> str:
        """``--rollback-on-failure``: the nodes already done, in reverse order, guarded.
        Returns why it rolled nothing back ("" when it did): after ``pre``, a previous
        release not declared compatible with the new schema keeps every node where it is."""
        plan = self.plan
        done = [n.identity for n in plan.nodes if self.node_state[n.identity] == "done"]
        refusals = {
            why
            for ok, why in (
                self._may_roll_back(self.previous.get(n)) for n in done if self.previous.get(n)
            )
            if not ok
        }
        if done and refusals:
            why = "; ".join(sorted(refusals))
            self.emit(
                "rollback", outcome="refused", detail={"scope": "run", "nodes": [], "reason": why}
            )
            return why
        self.emit("rollback", detail={"scope": "run", "nodes": list(reversed(done))})
        for n in reversed(done):
            self._wait_for_room(n)
            self._set(n, "drain", previous_version=self.previous.get(n))
            problem = self._to_maintenance(n, force=False) if plan.node(n).load_balancers else None
            if problem:  # the deadline policy: never cut sessions; it stays on the new release
                back = self._online(n)
                self._set(
                    n,
                    "done",
                    "ok",
                    note=f"not rolled back: drain failed ({problem})"
                    + (f"; {back}" if back else ""),
                )
                continue
            self._rollback_node(n, "run rolled back (--rollback-on-failure)")
        return ""

    def _finish_inflight(self) -> None:
        """``abort``: bring nodes caught mid-machine to a safe end; start nothing new."""
        inflight = [
            n
            for n, s in self.node_state.items()
            if s not in TERMINAL and s not in ("pending", "prefetch")
        ]
        for n in inflight:
            if self.node_state[n] == "rollback":
                self._rollback_node(n, self.reasons.get(n) or "aborted during rollback")
                continue
            # finish it: the same machine again from the drain (a no-op on a MAINT server;
            # the driver may have died before the drain reached the LBs)
            live = [m for m in self._drain_wave([n]) if self.node_state[m] == "drain"]
            self._activate_wave(live)

    def _finish(self, outcome: str, reason: str, exit_code: int) -> RunResult:
        plan = self.plan
        failed = {
            n: self.reasons.get(n, "") or s
            for n, s in self.node_state.items()
            if s in ("failed", "rolled_back")
        }
        maint = tuple(
            n
            for n, s in self.node_state.items()
            if plan.node(n).load_balancers
            and (n in self.left_in_maintenance or s not in (*TERMINAL, "pending", "prefetch"))
        )
        self.emit(
            "run_end",
            outcome=outcome,
            duration=max(0.0, self.wall() - self._run_t0) if self._run_t0 is not None else None,
            detail={
                "reason": reason,
                "exit_code": exit_code,
                "done": list(self._done()),
                "failed": failed,
                "in_maintenance": list(maint),
                "pending": [n for n, s in self.node_state.items() if s in ("pending", "prefetch")],
            },
        )
        if self.lease is not None:
            self.state.release(self.lease)
            self._record(
                {
                    "kind": "lease",
                    "run_id": self.run_id,
                    "time": self.wall(),
                    "detail": {"action": "released", "token": self.lease.token},
                }
            )
            self.lease = None
        self.journal_close()
        return RunResult(self.run_id, outcome, exit_code, reason, self._done(), failed, maint)


@dataclass(frozen=True)
class NodeTruth:
    """One node as the fleet reports it now."""

    identity: str
    lb_states: Mapping[str, str]
    current_version: str | None
    previous_version: str | None
    answered: bool
    repaired: bool = False
    note: str = ""

    @property
    def out_of_pool(self) -> bool:
        return any(s in ("MAINT", "DRAIN") for s in self.lb_states.values())


@dataclass(frozen=True)
class Reconciliation:
    """The truth about a service in an environment: every LB's view and every node's release."""

    service: str
    environment: str
    load_balancers: tuple[str, ...]
    nodes: tuple[NodeTruth, ...]
    silent: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        for n in d["nodes"]:
            n["lb_states"] = dict(n["lb_states"])
        return d


def reconcile(
    service: Service,
    environment: str,
    fleet: Fleet,
    *,
    repair_versions: Sequence[str] = (),
    repair: bool = False,
) -> Reconciliation:
    """Rebuild the truth from every LB's ``haproxy status`` and every node's ``deploy status``.

    With ``repair``: a node out of the pool (MAINT/DRAIN on some LB) whose current release is
    one of ``repair_versions`` (a run's target or a previous release) and passes its gates is
    put back online on those LBs; any other node is only reported."""
    placement = service.placement(environment)
    lbs = tuple(placement.load_balancers) if service.lb is not None else ()
    idents = [n.identity for n in placement.nodes]
    silent: list[str] = []
    views: dict[str, dict[str, str]] = {}
    if lbs:
        res = fleet.call(
            "haproxy", "status", {"backend": service.name}, list(lbs), timeout=STATUS_TIMEOUT
        )
        got = {r.sender: r for r in res.replies}
        for lb in lbs:
            r = got.get(lb)
            if r is None or not r.ok:
                silent.append(lb)
                continue
            views[lb] = lb_states_from_status(list(r.data.get("backends") or []), service.name)
    st = fleet.call("deploy", "status", {"service": service.name}, idents, timeout=STATUS_TIMEOUT)
    status = {r.sender: r for r in st.replies if r.ok}
    silent += [n for n in idents if n not in status]
    out = []
    for n in placement.nodes:
        r = status.get(n.identity)
        truth = NodeTruth(
            n.identity,
            {lb: views[lb].get(n.identity, "absent") for lb in views},
            r.data.get("current_version") if r else None,
            r.data.get("previous_version") if r else None,
            r is not None,
        )
        if repair and truth.out_of_pool:
            truth = _repair(service, n.address, n.port, truth, fleet, repair_versions)
        out.append(truth)
    return Reconciliation(service.name, environment, lbs, tuple(out), tuple(silent))


def _repair(
    service: Service,
    address: str,
    port: int,
    truth: NodeTruth,
    fleet: Fleet,
    versions: Sequence[str],
) -> NodeTruth:
    if truth.current_version is None or truth.current_version not in versions:
        return replace(
            truth,
            note=f"left out: runs {truth.current_version!r}, not one of {', '.join(versions) or 'none'}",
        )
    for g in node_gates(service, address, port, truth.current_version):
        res = fleet.call("healthcheck", g.action, g.data, [truth.identity], timeout=CHECK_TIMEOUT)
        r = next((x for x in res.replies if x.sender == truth.identity), None)
        if r is None or not r.ok or r.data.get("ok") is False:
            why = (r.data.get("detail") or r.statusmsg) if r else "no response"
            return replace(truth, note=f"left out: gate {g.name} failed: {why}")
    lbs = [lb for lb, s in truth.lb_states.items() if s in ("MAINT", "DRAIN")]
    res = fleet.call(
        "haproxy",
        "to_online",
        {"server": truth.identity, "backend": service.name, "timeout": 30},
        lbs,
        timeout=60,
    )
    ok = {r.sender for r in res.replies if r.ok}
    states = dict(truth.lb_states)
    for lb in ok:
        states[lb] = "UP"
    if set(lbs) <= ok:
        return replace(truth, lb_states=states, repaired=True, note="put back online")
    return replace(
        truth, lb_states=states, note=f"to_online failed on {', '.join(sorted(set(lbs) - ok))}"
    )


def open_runs(state: StateDir, service: str, environment: str) -> list[str]:
    """Runs of ``service`` in ``environment`` whose journal has no ``run_end`` (killed,
    paused or live): a new run is refused while one exists (resume or abort it first)."""
    out = []
    for run_id in state.runs():
        if not run_id.startswith(f"{service}-"):
            continue
        recs = read_journal(state.journal_path(run_id))
        start = next((r for r in recs if r.get("kind") in ("run_start",)), None)
        if start is None or (start.get("service"), start.get("environment")) != (
            service,
            environment,
        ):
            continue
        if not any(r.get("kind") == "run_end" for r in recs):
            out.append(run_id)
    return out


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


__all__ = ["TERMINAL", "Executor", "RunResult", "open_runs", "reconcile"]
