"""The migration plan and the rollback rule, from the catalog's migrations block (golden
cases, one file each, under tests/golden/orchestrate/migrations/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mcollective_py.errors import ConfigError
from mcollective_py.orchestrate.migrations import migration_plan, rollback_allowed
from mcollective_py.release.catalog import Service, parse_catalog

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "orchestrate" / "migrations"
CASES = sorted(GOLDEN.glob("*.yaml"))


def shop_with(migrations: Any) -> str:
    """A one-service catalog whose shop has this migrations block."""
    doc = {
        "catalog": 1,
        "environments": {"lab": {}},
        "services": {
            "shop": {
                "artifact": "http://127.0.0.1:8000/shop-{version}.tar.gz",
                "port": 8081,
                "health": {"type": "tcp"},
                "migrations": migrations,
                "releases": {},
                "environments": {"lab": {}},
            }
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def load(case: dict[str, Any]) -> Service:
    return parse_catalog(shop_with(case["migrations"]), source="services.yaml").service("shop")


def test_there_are_cases() -> None:
    assert len(CASES) >= 8


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_migration_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "error" in case:
        with pytest.raises(ConfigError) as info:
            load(case)
        assert str(info.value) == case["error"]
        return
    service = load(case)
    steps = migration_plan(service, case["version"])
    assert [
        {"phase": s.phase, "command": s.command, "timeout": s.timeout, "soak": s.soak}
        for s in steps
    ] == case["plan"]
    assert all(
        s.rpc_data() == {"service": "shop", "version": case["version"], "phase": s.phase}
        for s in steps
    )
    assert [s.phase for s in steps] == sorted((s.phase for s in steps), reverse=True)  # pre first
    for rb in case["rollback"]:
        allowed, why = rollback_allowed(
            service, case["version"], rb["previous"], pre_ran=rb["pre_ran"]
        )
        assert allowed is rb["allowed"], (rb, why)
        assert why


def test_a_refused_rollback_says_what_to_declare() -> None:
    service = load({"migrations": {"pre": {"command": "bin/migrate-pre"}}})
    allowed, why = rollback_allowed(service, "1.5.0", "1.4.2", pre_ran=True)
    assert not allowed
    assert why.endswith(
        'add services.shop.migrations.rollback_compatible: {"1.5.0": ["1.4.2"]} once that is '
        "known to be true"
    )
