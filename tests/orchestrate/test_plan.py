"""The pure planner against golden files: one case per file in tests/golden/orchestrate/plan/.

Each case is YAML: ``input`` (``catalog``: a path in the repository, or ``synthetic``:
arguments of ``tests.orchestrate.catalogs.catalog_doc``; ``service``, ``environment``,
``version``, ``strategy`` (CLI spellings), optional ``lb_state`` and ``current_versions``) and
``expected``: the ``describe`` lines of the plan, or ``error`` (class and message).
Regenerate after an intended change with ``MCO_REGEN_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcollective_py.errors import MCollectiveError
from mcollective_py.orchestrate.plan import Plan, Size, Strategy, describe, make_plan, parse_steps
from mcollective_py.release import load_catalog
from mcollective_py.release.catalog import parse_catalog
from tests.conftest import REPO
from tests.orchestrate.catalogs import catalog_doc

GOLDEN = REPO / "tests" / "golden" / "orchestrate" / "plan"
CASES = sorted(GOLDEN.glob("*.yaml"))


def strategy(d: dict[str, Any]) -> Strategy:
    kw: dict[str, Any] = {}
    for k, v in d.items():
        if k == "steps":
            kw[k] = parse_steps(str(v))
        elif k in ("canary", "max_unavailable", "max_failures"):
            kw[k] = Size.parse(str(v), f"--{k}")
        else:
            kw[k] = v
    return Strategy(**kw)


def plan_case(inp: dict[str, Any]) -> Plan:
    if "catalog" in inp:
        cat = load_catalog(REPO / inp["catalog"])
    else:
        syn = dict(inp["synthetic"])
        if "lbs" in syn:
            syn["lbs"] = tuple(syn["lbs"])
        cat = parse_catalog(
            yaml.safe_dump(catalog_doc(**syn), sort_keys=False), source="test-catalog.yaml"
        )
    return make_plan(
        cat.service(inp.get("service", "shop")),
        inp.get("environment", "lab"),
        str(inp["version"]),
        strategy(inp.get("strategy") or {}),
        lb_state=inp.get("lb_state"),
        current_versions=inp.get("current_versions"),
    )


def outcome(inp: dict[str, Any]) -> dict[str, Any]:
    try:
        plan = plan_case(inp)
    except MCollectiveError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"lines": describe(plan)}
    # a resumed run follows the journaled plan: the round trip must be exact
    assert Plan.from_dict(plan.to_dict()) == plan
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_plan_golden(case: Path) -> None:
    doc = yaml.safe_load(case.read_text())
    got = outcome(doc["input"])
    if os.environ.get("MCO_REGEN_GOLDEN"):
        doc["expected"] = got
        case.write_text(yaml.safe_dump(doc, sort_keys=False, width=200))
    assert got == doc["expected"]


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", r"\A--steps sizes must be at least 1 or 1%, got '0'\Z"),
        ("1,,2", r"\A--steps needs comma separated sizes such as 1,25%,100%, got '1,,2'\Z"),
        ("120%", r"\A--steps must be a number of nodes or a percentage such as 25%, got '120%'\Z"),
        ("x", r"\A--steps must be a number of nodes or a percentage such as 25%, got 'x'\Z"),
    ],
)
def test_bad_steps(text: str, message: str) -> None:
    with pytest.raises(MCollectiveError, match=message):
        parse_steps(text)
