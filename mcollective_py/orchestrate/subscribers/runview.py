"""A finished (or interrupted) run, folded from its events: steps, nodes, gates, migrations.

The JUnit file and the HTML report both need the same view of a run; this is it.  Pure:
:func:`fold` takes events in journal order and never raises for odd sequences (a missing
``step_end``, a node without a final state): what is unknown stays None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..events import DeployEvent

FINAL_NODE_STATES = ("done", "failed", "rolled_back")


@dataclass
class NodeRun:
    """One node in one step."""

    node: str
    step: int
    states: list[tuple[float, str, str | None]] = field(default_factory=list)  # time, state, lb
    gates: list[DeployEvent] = field(default_factory=list)
    final: str | None = None  # done | failed | rolled_back, when the run got that far
    reason: str | None = None
    started: float | None = None
    ended: float | None = None
    duration: float | None = None

    @property
    def failed(self) -> bool:
        return self.final in ("failed", "rolled_back") or any(
            g.outcome == "failed" for g in self.gates
        )


@dataclass
class StepRun:
    step: int
    nodes: list[str]
    started: float
    ended: float | None = None
    outcome: str | None = None
    duration: float | None = None


@dataclass
class RunView:
    run_id: str = ""
    service: str = ""
    environment: str = ""
    version: str = ""
    caller: str | None = None
    approver: str | None = None
    artifact_sha256: str | None = None
    started: float | None = None
    ended: float | None = None
    outcome: str | None = None
    planned_nodes: list[str] = field(default_factory=list)
    steps: dict[int, StepRun] = field(default_factory=dict)
    nodes: dict[tuple[int, str], NodeRun] = field(default_factory=dict)
    migrations: list[DeployEvent] = field(default_factory=list)
    capacity: list[DeployEvent] = field(default_factory=list)
    pauses: list[DeployEvent] = field(default_factory=list)
    rollbacks: list[DeployEvent] = field(default_factory=list)
    events: list[DeployEvent] = field(default_factory=list)

    @property
    def not_deployed(self) -> list[str]:
        """Planned nodes no step reached (the run ended first)."""
        reached = {n for _, n in self.nodes} | {n for s in self.steps.values() for n in s.nodes}
        return [n for n in self.planned_nodes if n not in reached]


def step_name(step: int) -> str:
    return "canary" if step == 0 else f"step {step}"


def _node(view: RunView, e: DeployEvent) -> NodeRun | None:
    if e.node is None:
        return None
    step = e.step if e.step is not None else -1
    key = (step, e.node)
    if key not in view.nodes:
        view.nodes[key] = NodeRun(e.node, step, started=e.time)
    return view.nodes[key]


def fold(events: Iterable[DeployEvent]) -> RunView:
    """The view of one run (the first run id seen; events of other runs are ignored)."""
    view = RunView()
    for e in events:
        if not view.run_id:
            view.run_id, view.service = e.run_id, e.service
            view.environment, view.version = e.environment, e.version
        if e.run_id != view.run_id:
            continue
        view.events.append(e)
        view.caller = e.caller or view.caller
        view.approver = e.approver or view.approver
        view.artifact_sha256 = e.artifact_sha256 or view.artifact_sha256
        if view.started is None:
            view.started = e.time
        view.ended = max(view.ended or e.time, e.time)
        if e.kind == "run_start":
            nodes = e.detail.get("nodes")
            if isinstance(nodes, list | tuple):
                view.planned_nodes = [str(n) for n in nodes]
        elif e.kind == "run_end":
            view.outcome = e.outcome
        elif e.kind == "migration":
            # the driver fires a phase twice (started, then ok|failed): one entry per phase,
            # the latest word on it ("started" alone: the run was cut off during it)
            phase = e.detail.get("phase")
            same = [i for i, m in enumerate(view.migrations) if m.detail.get("phase") == phase]
            if same and view.migrations[same[-1]].outcome == "started":
                view.migrations[same[-1]] = e
            else:
                view.migrations.append(e)
        elif e.kind == "capacity":
            view.capacity.append(e)
        elif e.kind in ("paused", "resumed"):
            view.pauses.append(e)
        elif e.kind == "rollback":
            view.rollbacks.append(e)
        elif e.kind == "step_start" and e.step is not None:
            nodes = e.detail.get("nodes")
            names = [str(n) for n in nodes] if isinstance(nodes, list | tuple) else []
            view.steps[e.step] = StepRun(e.step, names, e.time)
        elif e.kind == "step_end" and e.step is not None and e.step in view.steps:
            s = view.steps[e.step]
            s.ended, s.outcome, s.duration = e.time, e.outcome, e.duration
        elif e.kind == "gate":
            n = _node(view, e)
            if n is not None:
                n.gates.append(e)
                n.ended = e.time
        elif e.kind == "node_state":
            n = _node(view, e)
            if n is None or e.state is None:
                continue
            n.states.append((e.time, e.state, e.lb))
            n.ended = e.time
            if e.state in FINAL_NODE_STATES:
                n.final = e.state
                n.duration = e.duration
                reason = e.detail.get("reason")
                if isinstance(reason, str):
                    n.reason = reason
            elif e.state == "failed":
                n.final = "failed"
    return view
