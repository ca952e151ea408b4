"""Pure HAProxy parts against golden data: parsing real runtime API answers, and planning."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mcollective_py.agents import haproxy_state as hs
from mcollective_py.agents.haproxy_state import RuntimeFormatError, ServerState
from tests.agents_py.conftest import golden_cases, load_case

PARSE = golden_cases("haproxy_parse")
PLAN = golden_cases("haproxy_plan")


def _row(data: dict[str, Any]) -> ServerState:
    return ServerState(
        backend=data["backend"],
        server=data["server"],
        admin=data["admin"],
        status=data["status"],
        op_state=data.get("op_state", "running"),
        weight=data["weight"],
        initial_weight=data["initial_weight"],
        sessions=data.get("sessions", 0),
        check_status=data.get("check_status", "L7OK"),
        address=data.get("address", "127.0.0.1:80"),
    )


def _plain(row: ServerState) -> dict[str, Any]:
    return {
        "backend": row.backend,
        "server": row.server,
        "state": row.state,
        "admin": row.admin,
        "status": row.status,
        "op_state": row.op_state,
        "weight": row.weight,
        "initial_weight": row.initial_weight,
        "sessions": row.sessions,
        "check_status": row.check_status,
        "address": row.address,
        "settled": row.settled,
    }


def test_there_are_golden_cases() -> None:
    assert len(PARSE) >= 6 and len(PLAN) >= 15


@pytest.mark.parametrize("path", PARSE, ids=lambda p: p.stem)
def test_parse(path: Path) -> None:
    case = load_case(path)
    if "error" in case:
        with pytest.raises(RuntimeFormatError, match=case["error"]):
            hs.parse_servers(case["show_stat"], case["show_servers_state"])
        return
    rows = hs.parse_servers(case["show_stat"], case["show_servers_state"])
    assert [_plain(r) for r in rows] == case["expected"]


@pytest.mark.parametrize("path", PLAN, ids=lambda p: p.stem)
def test_plan(path: Path) -> None:
    case = load_case(path)
    rows = [_row(r) for r in case["rows"]]
    op = case["op"]
    if op == "admin":
        assert list(hs.plan_admin(rows, case["target"])) == case["expected"]
    elif op == "weight":
        if "error" in case:
            with pytest.raises(ValueError, match=case["error"]):
                hs.plan_weight(rows, case["weight"], case["percent"])
        else:
            assert list(hs.plan_weight(rows, case["weight"], case["percent"])) == case["expected"]
    elif op == "reached":
        got = {s: [hs.reached(r, s) for r in rows] for s in case["states"]}
        assert got == case["expected"]
    elif op == "select":
        if "error" in case:
            with pytest.raises(ValueError, match=case["error"]):
                hs.split_backends(case["backend"])
            return
        sel = hs.select(rows, case["server"], hs.split_backends(case["backend"]))
        assert {
            "rows": [list(r.key) for r in sel.rows],
            "complete": sel.complete,
            "problem": sel.problem(),
        } == case["expected"]
    else:  # pragma: no cover - a broken case file
        pytest.fail(f"unknown op {op!r}")


def test_commands_never_carry_a_bad_name() -> None:
    row = _row(
        {
            "backend": "app",
            "server": "web1\nshow info",
            "admin": "READY",
            "status": "UP",
            "weight": 1,
            "initial_weight": 1,
        }
    )
    with pytest.raises(ValueError, match=re.escape("'web1\\nshow info' is not a valid HAProxy")):
        hs.admin_command(row, "MAINT")
    with pytest.raises(ValueError, match="admin state must be one of READY, DRAIN, MAINT"):
        hs.admin_command(_row({**_plain(row), "server": "web1"}), "DOWN")


def test_summary_words() -> None:
    assert hs.summary([]) == "absent"
    assert hs.summary(["UP", "UP"]) == "UP"
    assert hs.summary(["UP", "MAINT"]) == "MIXED"
