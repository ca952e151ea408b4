"""The rollout planner: pure (catalog service + release + live state + strategy -> Plan).

``make_plan`` reads nothing and calls nothing: the same inputs always give the same plan, so it
is tested with golden files (``tests/golden/orchestrate/plan/*.json``).  The plan is what the
executor (``run.py``) carries out and what the journal records first (``Plan.to_dict``), so a
resumed run follows exactly the plan it started with.

Rules, in order:

* **Nodes**: every node of the service in the environment (catalog order).  A node whose
  current version is already the target (``current_versions``) is left out (``skipped``).
  Nodes that are not UP on some load balancer (DOWN, MAINT, DRAIN) come first: moving them
  costs no capacity.
* **Steps**: the canary (``canary`` nodes, N or N% of the nodes rounded up) on its own, then
  batches of ``steps`` sizes (N or N%, rounded up, at least 1); the last size repeats until
  every node has a step.  ``--steps 1,25%,100%`` on 8 nodes: 1, 2, 5.
* **Capacity floor**: ``floor = total - max_unavailable`` servers must stay UP on *every* load
  balancer, counting servers that are already down (Kubernetes' ``maxUnavailable``).  A plan
  whose floor is below 1 (it would empty the pool) is refused (``PlanRefused``).
* **Failure budget**: ``max_failures`` (N or N% of the nodes, rounded down) failed nodes are
  tolerated over the *whole* run; one more stops it.  Any failed node still fails the run.
* **Gates**: the node must answer the target version (healthcheck ``service``), then the
  catalog's health check (``http``/``tcp``/``command``) run on the node against its address,
  then, with ``smoke``, the release's smoke test (healthcheck ``smoke``, JUnit report).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import PlanRefused, UsageError
from ..release.catalog import Service

_SIZE_RE = re.compile(r"\A([0-9]{1,5})(%?)\Z")


@dataclass(frozen=True)
class Size:
    """A node count (``3``) or a percentage of the service's nodes (``25%``)."""

    value: int
    percent: bool = False

    @classmethod
    def parse(cls, text: str, what: str) -> Size:
        """``"3"`` or ``"25%"``; UsageError naming ``what`` otherwise."""
        m = _SIZE_RE.match(str(text).strip())
        if not m or (m.group(2) and not 0 <= int(m.group(1)) <= 100):
            raise UsageError(
                f"{what} must be a number of nodes or a percentage such as 25%, got {text!r}"
            )
        return cls(int(m.group(1)), bool(m.group(2)))

    def of(self, total: int, *, round_up: bool = True) -> int:
        """The count this size means for ``total`` nodes."""
        if not self.percent:
            return self.value
        exact = total * self.value / 100
        return math.ceil(exact) if round_up else math.floor(exact)

    def __str__(self) -> str:
        return f"{self.value}{'%' if self.percent else ''}"


def parse_steps(text: str) -> tuple[Size, ...]:
    """``"1,25%,100%"`` -> sizes; every size must mean at least one node."""
    parts = [p for p in str(text).split(",")]
    if not parts or any(not p.strip() for p in parts) or len(parts) > 100:
        raise UsageError(f"--steps needs comma separated sizes such as 1,25%,100%, got {text!r}")
    sizes = tuple(Size.parse(p, "--steps") for p in parts)
    if any(s.value == 0 for s in sizes):
        raise UsageError(f"--steps sizes must be at least 1 or 1%, got {text!r}")
    return sizes


@dataclass(frozen=True)
class Strategy:
    """How to roll out; ``None`` fields take the catalog's ``batch`` defaults.

    Times are seconds.  ``drain_timeout``: how long a drain may wait for sessions to end
    (then the node is put back online and counts as failed: see docs/deploy.md).
    ``capacity_wait``: how long to wait for the pool to regain capacity before stopping.
    ``min_healthy_time``: the gates must pass again after this long.  ``gate_deadline``: time
    for all gates of a node, retries included.
    """

    steps: tuple[Size, ...] | None = None
    canary: Size | None = None
    max_unavailable: Size = Size(1)
    max_failures: Size | None = None
    settle: float | None = None
    pause_after_canary: bool = False
    rollback_on_failure: bool = False
    drain_timeout: float = 30.0
    online_timeout: float = 30.0
    capacity_wait: float = 60.0
    min_healthy_time: float = 0.0
    gate_deadline: float = 30.0
    gate_retry_delay: float = 1.0
    smoke: bool = False


@dataclass(frozen=True)
class PlannedNode:
    """One node to deploy: identity (= HAProxy server name), address, and the load balancers
    that hold it (its state on each, as read when planning)."""

    identity: str
    address: str
    port: int
    load_balancers: tuple[str, ...]
    lb_state: Mapping[str, str] = field(default_factory=dict)
    current_version: str | None = None


@dataclass(frozen=True)
class Step:
    """A batch: ``index`` 0 is the canary (when there is one), then 1, 2, ..."""

    index: int
    name: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Gate:
    """One health check on the node: ``healthcheck#action`` with ``data``."""

    name: str
    action: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Plan:
    """Everything the executor needs, frozen; ``to_dict``/``from_dict`` for the journal."""

    service: str
    environment: str
    version: str
    sha256: str
    artifact_url: str
    backend: str | None
    load_balancers: tuple[str, ...]
    nodes: tuple[PlannedNode, ...]
    steps: tuple[Step, ...]
    total: int
    floor: int
    max_unavailable: int
    max_failures: int
    settle: float
    pause_after_canary: bool
    rollback_on_failure: bool
    drain_timeout: float
    online_timeout: float
    capacity_wait: float
    min_healthy_time: float
    gate_deadline: float
    gate_retry_delay: float
    gates: tuple[Gate, ...]
    migration: Mapping[str, Any] | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    def node(self, identity: str) -> PlannedNode:
        for n in self.nodes:
            if n.identity == identity:
                return n
        raise KeyError(identity)

    def gates_for(self, identity: str, version: str) -> tuple[Gate, ...]:
        """The gates of ``identity`` checking ``version`` (the target, or the previous one
        after a rollback)."""
        out = []
        for g in self.gates:
            data = dict(g.data)
            if g.action in ("service", "smoke"):
                data["version"] = version
            node = self.node(identity)
            for k, v in list(data.items()):
                if isinstance(v, str):
                    data[k] = v.replace("{address}", node.address).replace("{port}", str(node.port))
            if g.action == "tcp":
                data["port"] = int(data["port"])
            out.append(Gate(g.name, g.action, data))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["nodes"] = [dict(asdict(n), lb_state=dict(n.lb_state)) for n in self.nodes]
        d["gates"] = [
            {"name": g.name, "action": g.action, "data": dict(g.data)} for g in self.gates
        ]
        d["migration"] = dict(self.migration) if self.migration else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        kw = dict(d)
        kw["load_balancers"] = tuple(d["load_balancers"])
        kw["nodes"] = tuple(
            PlannedNode(
                identity=n["identity"],
                address=n["address"],
                port=int(n["port"]),
                load_balancers=tuple(n["load_balancers"]),
                lb_state=dict(n.get("lb_state") or {}),
                current_version=n.get("current_version"),
            )
            for n in d["nodes"]
        )
        kw["steps"] = tuple(Step(s["index"], s["name"], tuple(s["nodes"])) for s in d["steps"])
        kw["gates"] = tuple(Gate(g["name"], g["action"], dict(g["data"])) for g in d["gates"])
        kw["skipped"] = tuple(tuple(x) for x in d.get("skipped") or ())
        kw["warnings"] = tuple(d.get("warnings") or ())
        known = {k: kw[k] for k in cls.__dataclass_fields__ if k in kw}
        return cls(**known)


def _gates(service: Service, smoke: bool = False) -> tuple[Gate, ...]:
    """The version gate, then the catalog's health check, with address/port placeholders,
    then (``smoke``) the release's smoke test (healthcheck ``smoke``)."""
    gates = [
        Gate(
            "version",
            "service",
            {"service": service.name, "version": "", "url": "http://{address}:{port}/version"},
        )
    ]
    h = service.health
    port = str(h.port) if h.port else "{port}"
    if h.type == "http":
        data: dict[str, Any] = {
            "url": f"http://{{address}}:{port}{h.path}",
            "expect_status": h.expect_status,
            "timeout": h.timeout,
        }
        if h.contains:
            data["contains"] = h.contains
        gates.append(Gate("health", "http", data))
    elif h.type == "tcp":
        gates.append(
            Gate("health", "tcp", {"host": "{address}", "port": port, "timeout": h.timeout})
        )
    elif h.type == "command" and h.command:
        gates.append(Gate("health", "command", {"command": h.command, "timeout": h.timeout}))
    if smoke:
        gates.append(Gate("smoke", "smoke", {"service": service.name, "version": ""}))
    return tuple(gates)


def node_gates(service: Service, address: str, port: int, version: str) -> tuple[Gate, ...]:
    """The gates of one node checking ``version`` (``reconcile --repair`` uses them)."""
    out = []
    for g in _gates(service):
        data: dict[str, Any] = {}
        for k, v in g.data.items():
            data[k] = (
                v.replace("{address}", address).replace("{port}", str(port))
                if isinstance(v, str)
                else v
            )
        if g.action in ("service", "smoke"):
            data["version"] = version
        if g.action == "tcp":
            data["port"] = int(data["port"])
        out.append(Gate(g.name, g.action, data))
    return tuple(out)


def make_plan(
    service: Service,
    environment: str,
    version: str,
    strategy: Strategy,
    *,
    lb_state: Mapping[str, Mapping[str, str]] | None = None,
    current_versions: Mapping[str, str | None] | None = None,
) -> Plan:
    """The ordered plan of ``version`` of ``service`` in ``environment``.

    ``lb_state``: per load balancer, server name -> state (UP, DOWN, MAINT, DRAIN, NOLB) as
    read from the service's backend; a load balancer that lacks a server does not hold it.
    ``None`` means unknown: every node is assumed UP on every load balancer.
    ``current_versions``: node -> version it runs now (``None``: unknown/none).

    Raises UsageError for a version the catalog does not allow here, PlanRefused when the
    strategy breaks a safety rule.
    """
    release = service.release(version, environment)
    if service.deploy != "artifact":
        raise PlanRefused(
            f"{service.name} is released by Puppet (deploy: {service.deploy}); mco-py deploy "
            "drives artifact releases (deploy: artifact) only: use mco-py rpc deploy "
            "puppet_apply, or switch the service to artifact releases"
        )
    placement = service.placement(environment)
    lbs = tuple(placement.load_balancers) if service.lb is not None else ()
    versions = dict(current_versions or {})
    nodes: list[PlannedNode] = []
    skipped: list[tuple[str, str]] = []
    warnings: list[str] = []
    for n in placement.nodes:
        if lb_state is None:
            holding = lbs
            states = {lb: "UP" for lb in lbs}
        else:
            holding = tuple(lb for lb in lbs if n.identity in lb_state.get(lb, {}))
            states = {lb: str(lb_state[lb][n.identity]) for lb in holding}
            missing = [lb for lb in lbs if lb not in holding]
            if missing:
                warnings.append(f"{n.identity} is not a server of {', '.join(missing)}")
        pn = PlannedNode(n.identity, n.address, n.port, holding, states, versions.get(n.identity))
        if versions.get(n.identity) == version:
            skipped.append((n.identity, f"already on {version}"))
            continue
        nodes.append(pn)
    # nodes already out of the pool first: moving them costs no capacity (stable otherwise)
    nodes.sort(key=lambda pn: 0 if any(s != "UP" for s in pn.lb_state.values()) else 1)

    total = len(placement.nodes)
    batch = service.batch
    max_unavailable = strategy.max_unavailable.of(total)
    floor = total - max_unavailable
    if lbs and floor < 1:
        raise PlanRefused(
            f"--max-unavailable {strategy.max_unavailable} of {total} node(s) of "
            f"{service.name} would leave {floor} server(s) online (the floor must be at least "
            "1): lower --max-unavailable or add nodes"
        )
    if max_unavailable < 1:
        raise PlanRefused(
            f"--max-unavailable {strategy.max_unavailable} of {total} node(s) allows no node "
            "out of the pool, so nothing can be deployed: use at least 1"
        )
    if lb_state is not None:
        for lb in lbs:
            up = sum(1 for s in lb_state.get(lb, {}).values() if s == "UP")
            if up < floor:
                warnings.append(
                    f"{lb}: only {up} of {total} servers UP, below the floor {floor}; the run "
                    "waits for capacity before every drain of an UP server"
                )
    failures = (
        strategy.max_failures if strategy.max_failures is not None else Size(batch.max_failures)
    ).of(total, round_up=False)

    canary = strategy.canary if strategy.canary is not None else Size(batch.canary)
    sizes = strategy.steps or (Size(batch.size, batch.percent),)
    order = [pn.identity for pn in nodes]
    steps: list[Step] = []
    c = min(canary.of(total), len(order)) if canary.value else 0
    if c:
        steps.append(Step(0, "canary", tuple(order[:c])))
    rest = order[c:]
    k = 0
    while rest:
        size = max(1, sizes[min(k, len(sizes) - 1)].of(total))
        k += 1
        steps.append(Step(k, f"step {k}", tuple(rest[:size])))
        rest = rest[size:]

    migration = None
    if service.migrations is not None:
        m = service.migrations
        phases = [
            {"phase": p.phase, "command": p.command, "timeout": p.timeout, "soak": p.soak}
            for p in m.phases()
        ]
        # command/phase/timeout: the first phase (what journals before the phased form held)
        migration = {
            **{k: phases[0][k] for k in ("command", "phase", "timeout")},
            "phases": phases,
            "rollback_compatible": list(m.rollback_compatible.get(version, ())),
        }
    return Plan(
        service=service.name,
        environment=environment,
        version=version,
        sha256=release.sha256,
        artifact_url=service.artifact_url(version),
        backend=service.name if lbs else None,
        load_balancers=lbs,
        nodes=tuple(nodes),
        steps=tuple(steps),
        total=total,
        floor=floor if lbs else 0,
        max_unavailable=max_unavailable,
        max_failures=failures,
        settle=strategy.settle if strategy.settle is not None else batch.pause,
        pause_after_canary=strategy.pause_after_canary,
        rollback_on_failure=strategy.rollback_on_failure,
        drain_timeout=strategy.drain_timeout,
        online_timeout=strategy.online_timeout,
        capacity_wait=strategy.capacity_wait,
        min_healthy_time=strategy.min_healthy_time,
        gate_deadline=strategy.gate_deadline,
        gate_retry_delay=strategy.gate_retry_delay,
        gates=_gates(service, strategy.smoke),
        migration=migration,
        skipped=tuple(skipped),
        warnings=tuple(warnings),
    )


def migration_phases(plan: Plan) -> list[dict[str, Any]]:
    """The plan's migration phases in run order, each ``{phase, command, timeout, soak}``
    (a plan journalled before phased migrations holds one phase and no ``phases``)."""
    m = plan.migration
    if not m:
        return []
    phases = m.get("phases")
    if isinstance(phases, list):
        return [dict(p) for p in phases]
    return [
        {
            "phase": m.get("phase"),
            "command": m.get("command"),
            "timeout": m.get("timeout", 600),
            "soak": 0.0,
        }
    ]


def describe(plan: Plan) -> list[str]:
    """The plan as text lines (``mco-py deploy plan``); pure, so golden-testable."""
    lines = [
        f"Deploy {plan.service} {plan.version} to {plan.environment}: {len(plan.nodes)} of "
        f"{plan.total} node(s), sha256 {plan.sha256[:12]}",
        f"  artifact         {plan.artifact_url}",
    ]
    if plan.load_balancers:
        lines.append(
            f"  load balancers   {', '.join(plan.load_balancers)} (backend {plan.backend})"
        )
        lines.append(
            f"  capacity         floor {plan.floor} UP of {plan.total} on every load balancer "
            f"(max unavailable {plan.max_unavailable})"
        )
    lines.append(
        f"  failure budget   {plan.max_failures} node(s); settle {plan.settle:g} s; "
        f"drain deadline {plan.drain_timeout:g} s"
    )
    again = f", again after {plan.min_healthy_time:g} s" if plan.min_healthy_time else ""
    lines.append(
        "  gates            "
        + ", ".join(f"{g.name} ({g.action})" for g in plan.gates)
        + f"; deadline {plan.gate_deadline:g} s{again}"
    )
    for ph in migration_phases(plan):
        when = (
            "before any node is drained"
            if ph["phase"] == "pre"
            else f"after the last node is online + {float(ph.get('soak') or 0):g} s soak"
        )
        lines.append(
            f"  migration        {ph['phase']}: {ph['command']} (once, on the first node, {when})"
        )
    for s in plan.steps:
        lines.append(f"  {s.name:<16} {', '.join(s.nodes)}")
    if plan.pause_after_canary and plan.steps and plan.steps[0].name == "canary":
        lines.append("  pause            after the canary (resume RUN --approver NAME)")
    for ident, why in plan.skipped:
        lines.append(f"  skip             {ident}: {why}")
    for w in plan.warnings:
        lines.append(f"  warning          {w}")
    return lines


def lb_states_from_status(rows: Sequence[Mapping[str, Any]], backend: str) -> dict[str, str]:
    """server -> state from haproxy ``status`` reply rows, for ``backend`` only."""
    out: dict[str, str] = {}
    for r in rows:
        if isinstance(r, Mapping) and r.get("backend") == backend and r.get("server"):
            if r.get("state") in (None, "absent"):
                continue
            out[str(r["server"])] = str(r.get("state"))
    return out
