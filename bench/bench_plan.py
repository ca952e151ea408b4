"""Benchmark: planning rollouts of a large fleet, and the driver's own overhead.

Run ``.venv/bin/python bench/bench_plan.py [--services N] [--nodes M]`` from the repository
root.

What it measures
    A synthetic catalog of N services (default 70) with M nodes each (default 20) behind two
    load balancers.  For every service: ``make_plan`` with a live LB state (two servers DOWN
    on one LB), the nodes' current versions, canary 1 and ``--steps 1,25%,100%``, then
    ``Plan.to_dict``/``from_dict`` (what the journal stores and resume reads back).
    Then one complete run of a 20-node service through the executor over an in-memory fleet
    whose every answer is instant, with a real journal (fsync per record) in a temporary
    state dir: with no network and no waiting, its wall time *is* the driver's overhead
    (planning + state machine + journal + lease + hooks).

It prints the times.  Nothing about time is asserted: this reports, it does not gate.
The real 4-node run's overhead (wall minus drains, activations, gates and waits) is printed
by every ``mco-py deploy run`` and by tests/orchestrate/test_deploy_lab.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcollective_py.orchestrate.journal import StateDir, new_run_id  # noqa: E402
from mcollective_py.orchestrate.plan import Plan, Size, Strategy, make_plan, parse_steps  # noqa: E402
from mcollective_py.orchestrate.run import Executor  # noqa: E402
from mcollective_py.release.catalog import parse_catalog  # noqa: E402
from tests.orchestrate.fakefleet import FakeFleet  # noqa: E402


def synthetic_catalog(services: int, nodes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(services):
        out[f"svc{i:03d}"] = {
            "artifact": "http://127.0.12.2:8000/{service}-{version}.tar.gz",
            "port": 8000 + i,
            "health": {"type": "http", "path": "/health"},
            "lb": {"mode": "http"},
            "batch": {"size": "25%", "canary": 1},
            "releases": {"1.0.0": {"sha256": "a" * 64}, "1.1.0": {"sha256": "b" * 64}},
            "environments": {
                "lab": {
                    "frontend": f"127.0.12.1:{9000 + i}",
                    "nodes": {
                        f"n{j:02d}.svc{i:03d}": {"address": f"127.0.12.{10 + j}"}
                        for j in range(nodes)
                    },
                }
            },
        }
    return {
        "catalog": 1,
        "environments": {"lab": {"load_balancers": ["lb1", "lb2"]}},
        "services": out,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=70)
    p.add_argument("--nodes", type=int, default=20)
    a = p.parse_args()
    catalog = parse_catalog(yaml.safe_dump(synthetic_catalog(a.services, a.nodes)))
    strategy = Strategy(steps=parse_steps("1,25%,100%"), canary=Size(1), max_unavailable=Size(3))
    t0 = time.perf_counter()
    plans = []
    for svc in catalog.services.values():
        idents = [n.identity for n in svc.placement("lab").nodes]
        lb_state = {
            "lb1": {n: "UP" for n in idents},
            "lb2": {n: ("DOWN" if k < 2 else "UP") for k, n in enumerate(idents)},
        }
        versions = {n: "1.0.0" for n in idents}
        plan = make_plan(
            svc, "lab", "1.1.0", strategy, lb_state=lb_state, current_versions=versions
        )
        assert Plan.from_dict(plan.to_dict()) == plan
        plans.append(plan)
    took = time.perf_counter() - t0
    print(
        f"planning {a.services} services x {a.nodes} nodes: {took * 1000:.1f} ms "
        f"({took / a.services * 1000:.2f} ms per service, journal round trip included)"
    )
    plan = plans[0]
    fleet = FakeFleet([n.identity for n in plan.nodes], ("lb1", "lb2"), backend=plan.service)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        result = Executor(
            plan, fleet, StateDir(d), new_run_id(plan.service), sleep=lambda s: None
        ).run()
        took = time.perf_counter() - t0
    print(
        f"driver overhead, {len(plan.nodes)}-node run over an instant fleet: {took * 1000:.0f} ms "
        f"({took / len(plan.nodes) * 1000:.1f} ms per node, {len(fleet.calls)} calls; "
        f"outcome {result.outcome})"
    )
    return 0 if result.outcome == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
