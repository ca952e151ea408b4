"""Smoke test result files: JUnit, NUnit 3 and NUnit 2 give the same summary structure
(golden result files under tests/golden/agents/testresults/, one case each), and
``healthcheck smoke`` reports an NUnit run the way it reports a JUnit one."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from mcollective_py.agents.healthcheck import Healthcheck
from mcollective_py.agents.junit import JUnitError, parse_junit
from mcollective_py.agents.testresults import (
    TestResultsError,
    TestSummary,
    parse_test_results,
)
from tests.agents_py.conftest import GOLDEN, call, make_agent

CASES = GOLDEN / "testresults"
SAME_RUN = sorted(CASES.glob("shop_smoke.*.xml"))
SINGLE = sorted(p for p in CASES.glob("*.xml") if not p.name.startswith("shop_smoke."))


def summary(s: TestSummary) -> dict[str, object]:
    return {
        "tests": s.tests,
        "failures": s.failures,
        "errors": s.errors,
        "skipped": s.skipped,
        "time": round(s.time, 3),
        "failed": list(s.failed),
        "passed": s.passed,
    }


def expected(name: str) -> dict[str, object]:
    data = json.loads((CASES / f"{name}.expected.json").read_text())
    assert isinstance(data, dict)
    return data


def test_one_run_in_three_formats() -> None:
    assert [p.name for p in SAME_RUN] == [
        "shop_smoke.junit.xml",
        "shop_smoke.nunit2.xml",
        "shop_smoke.nunit3.xml",
    ]


@pytest.mark.parametrize("path", SAME_RUN, ids=lambda p: p.name)
def test_every_format_gives_the_same_summary(path: Path) -> None:
    got = parse_test_results(path.read_bytes())
    assert got.format == path.suffixes[0][1:]
    assert summary(got) == expected("shop_smoke")["expected"]
    assert got.as_reply() == {
        "tests": 6,
        "failures": 1,
        "errors": 1,
        "skipped": 1,
        "test_time": 2.75,
        "failed_tests": [
            "Shop.Smoke.CartTests.AddsAnItem",
            "Shop.Smoke.CheckoutTests.TakesPayment",
        ],
    }


@pytest.mark.parametrize("path", SINGLE, ids=lambda p: p.stem)
def test_single_cases(path: Path) -> None:
    case = expected(path.stem)
    if "error" in case:
        with pytest.raises(TestResultsError, match=str(case["error"])):
            parse_test_results(path.read_bytes())
        return
    assert summary(parse_test_results(path.read_bytes())) == case["expected"]


def test_the_junit_alias_still_reads_only_junit() -> None:
    assert JUnitError is TestResultsError
    junit = (CASES / "shop_smoke.junit.xml").read_bytes()
    assert summary(parse_junit(junit)) == expected("shop_smoke")["expected"]
    with pytest.raises(
        JUnitError, match=r"root element is <test-run>, not <testsuites> or <testsuite>"
    ):
        parse_junit((CASES / "shop_smoke.nunit3.xml").read_bytes())


def test_bad_numbers_are_named() -> None:
    with pytest.raises(TestResultsError, match=r"<test-run> has total='lots', not a number"):
        parse_test_results('<test-run total="lots"/>')


# ---------------------------------------------------------------------------- the agent


SMOKE = """#!/bin/sh
# writes the release's result file (TestResult.xml, NUnit) where the agent asks
cp RESULT.xml "$1"
exit "$(cat EXIT)"
"""


def nunit_release(root: Path, result: Path, exit_code: int) -> None:
    rel = root / "shop" / "releases" / "1.5.0"
    (rel / "bin").mkdir(parents=True)
    smoke = rel / "bin" / "smoke-test"
    smoke.write_text(SMOKE)
    smoke.chmod(smoke.stat().st_mode | stat.S_IXUSR)
    shutil.copy(result, rel / "RESULT.xml")
    (rel / "EXIT").write_text(str(exit_code))
    (root / "shop" / "current").symlink_to("releases/1.5.0")


@pytest.mark.parametrize("fmt", ["nunit3", "nunit2", "junit"])
def test_smoke_reports_every_format_the_same_way(tmp_path: Path, fmt: str) -> None:
    nunit_release(tmp_path, CASES / f"shop_smoke.{fmt}.xml", 1)
    agent = make_agent(Healthcheck, {"plugin.healthcheck.root": str(tmp_path)})
    reply = call(agent, "smoke", service="shop")
    assert reply.statuscode == 1
    assert reply.statusmsg == (
        "smoke-test exited 1: 6 tests, 1 failures, 1 errors, 1 skipped in 2.8 s (shop 1.5.0); "
        "failed: Shop.Smoke.CartTests.AddsAnItem, Shop.Smoke.CheckoutTests.TakesPayment"
    )
    assert (reply.data["tests"], reply.data["failed_tests"]) == (
        6,
        ["Shop.Smoke.CartTests.AddsAnItem", "Shop.Smoke.CheckoutTests.TakesPayment"],
    )


def test_smoke_passes_on_a_green_nunit3_run(tmp_path: Path) -> None:
    nunit_release(tmp_path, CASES / "nunit3_passing_inconclusive.xml", 0)
    agent = make_agent(Healthcheck, {"plugin.healthcheck.root": str(tmp_path)})
    reply = call(agent, "smoke", service="shop")
    assert reply.statuscode == 0, reply.statusmsg
    assert reply.data["detail"] == "3 tests, 0 failures, 0 errors, 1 skipped in 0.5 s (shop 1.5.0)"
