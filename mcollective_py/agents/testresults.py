"""Test result files, pure: what a smoke test run says, the same way for JUnit, NUnit 3 and
NUnit 2 (tests, failures, errors, skipped, time, the failed cases' names).

The format is recognised by the root element:

==================================  ==========================================================
``<testsuites>`` / ``<testsuite>``  JUnit XML (pytest, Maven surefire, Ant, Jenkins)
``<test-run>``                      NUnit 3 ``TestResult.xml`` (nunit3-console, dotnet test's
                                    NUnit logger)
``<test-results>``                  NUnit 2 ``TestResult.xml`` (nunit-console 2.x)
==================================  ==========================================================

Counting rules, so the three agree:

* Counts come from the test cases (``<testcase>``, ``<test-case>``) when there are any; the
  root's or a suite's attributes only when there are none (they are sometimes missing or
  stale).
* failure: JUnit ``<failure>``; NUnit 3 ``result="Failed"`` (no error label); NUnit 2
  ``result="Failure"``.
* error: JUnit ``<error>``; NUnit 3 ``result="Failed"`` with ``label`` Error, Invalid or
  Cancelled; NUnit 2 ``result`` Error, NotRunnable or Cancelled.
* skipped: JUnit ``<skipped>``; NUnit 3 ``result`` Skipped or Inconclusive; NUnit 2
  ``result`` Ignored, Skipped or Inconclusive, or ``executed="False"``.
* failed names: JUnit ``classname.name``; NUnit 3 ``fullname``; NUnit 2 ``name`` (which is the
  full name there); at most ``MAX_FAILED_NAMES``, failures and errors in document order.
* time: JUnit the suites' ``time``; NUnit 3 the run's ``duration``; NUnit 2 the top-level
  suites' ``time``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

#: Reports larger than this are refused rather than parsed.
MAX_REPORT_BYTES = 10 * 1024 * 1024
#: How many failed test names a summary keeps.
MAX_FAILED_NAMES = 10

NUNIT3_ERROR_LABELS = ("Error", "Invalid", "Cancelled")
NUNIT2_ERRORS = ("Error", "NotRunnable", "Cancelled")
NUNIT2_SKIPPED = ("Ignored", "Skipped", "Inconclusive")


class TestResultsError(ValueError):
    """The text is not a test result file of a known format."""

    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class TestSummary:
    """Totals of one result file."""

    __test__ = False  # not a pytest test class

    tests: int
    failures: int
    errors: int
    skipped: int
    time: float  # seconds, as the report says
    failed: tuple[str, ...] = field(default=())  # names of failures and errors
    format: str = "junit"  # junit | nunit3 | nunit2

    @property
    def passed(self) -> bool:
        """At least one test ran and none failed or errored."""
        return self.tests > self.skipped and self.failures == 0 and self.errors == 0

    def as_reply(self) -> dict[str, object]:
        return {
            "tests": self.tests,
            "failures": self.failures,
            "errors": self.errors,
            "skipped": self.skipped,
            "test_time": round(self.time, 3),
            "failed_tests": list(self.failed),
        }


def _number(element: ET.Element, name: str, cast: type[int] | type[float]) -> int | float:
    raw = element.get(name)
    if raw is None or raw.strip() == "":
        return cast(0)
    try:
        return cast(float(raw.replace(",", ""))) if cast is int else cast(raw.replace(",", ""))
    except ValueError:
        raise TestResultsError(f"<{element.tag}> has {name}={raw!r}, not a number") from None


def _root(text: str | bytes) -> ET.Element:
    if len(text) > MAX_REPORT_BYTES:
        raise TestResultsError(f"report is larger than {MAX_REPORT_BYTES} bytes")
    try:
        return ET.fromstring(text)  # noqa: S314 - our own release's report, size-capped
    except ET.ParseError as exc:
        raise TestResultsError(f"not well-formed XML: {exc}") from None


def parse_test_results(text: str | bytes) -> TestSummary:
    """Sum up a JUnit, NUnit 3 or NUnit 2 result file. TestResultsError for anything else."""
    root = _root(text)
    if root.tag in ("testsuites", "testsuite"):
        return junit_summary(root)
    if root.tag == "test-run":
        return nunit3_summary(root)
    if root.tag == "test-results":
        return nunit2_summary(root)
    raise TestResultsError(
        f"root element is <{root.tag}>, not JUnit (<testsuites>, <testsuite>), "
        "NUnit 3 (<test-run>) or NUnit 2 (<test-results>)"
    )


def junit_summary(root: ET.Element) -> TestSummary:
    """A JUnit ``<testsuites>`` or ``<testsuite>`` root (see the module docstring)."""
    if root.tag == "testsuite":
        suites = [root]
    elif root.tag == "testsuites":
        suites = list(root.iter("testsuite"))
    else:
        raise TestResultsError(f"root element is <{root.tag}>, not <testsuites> or <testsuite>")
    tests = failures = errors = skipped = 0
    seconds = 0.0
    failed: list[str] = []
    for suite in suites:
        cases = suite.findall("testcase")
        if not cases and suite.find("testsuite") is not None:
            continue  # only groups nested suites, which are counted themselves
        if cases:
            tests += len(cases)
            for case in cases:
                kinds = {child.tag for child in case}
                if "failure" in kinds:
                    failures += 1
                elif "error" in kinds:
                    errors += 1
                elif "skipped" in kinds:
                    skipped += 1
                if kinds & {"failure", "error"} and len(failed) < MAX_FAILED_NAMES:
                    name = case.get("name", "?")
                    cls = case.get("classname")
                    failed.append(f"{cls}.{name}" if cls else name)
        else:
            tests += int(_number(suite, "tests", int))
            failures += int(_number(suite, "failures", int))
            errors += int(_number(suite, "errors", int))
            skipped += int(_number(suite, "skipped", int))
        seconds += float(_number(suite, "time", float))
    if root.tag == "testsuites" and root.get("time") and not seconds:
        seconds = float(_number(root, "time", float))
    return TestSummary(tests, failures, errors, skipped, seconds, tuple(failed), "junit")


def nunit3_summary(root: ET.Element) -> TestSummary:
    """An NUnit 3 ``<test-run>`` root."""
    cases = list(root.iter("test-case"))
    failed: list[str] = []
    seconds = float(_number(root, "duration", float))
    if not cases:
        return TestSummary(
            int(_number(root, "total", int)),
            int(_number(root, "failed", int)),
            0,
            int(_number(root, "skipped", int)) + int(_number(root, "inconclusive", int)),
            seconds,
            (),
            "nunit3",
        )
    failures = errors = skipped = 0
    case_seconds = 0.0
    for case in cases:
        result = case.get("result", "")
        case_seconds += float(_number(case, "duration", float))
        if result == "Failed":
            if case.get("label") in NUNIT3_ERROR_LABELS:
                errors += 1
            else:
                failures += 1
            if len(failed) < MAX_FAILED_NAMES:
                failed.append(case.get("fullname") or case.get("name") or "?")
        elif result in ("Skipped", "Inconclusive"):
            skipped += 1
    return TestSummary(
        len(cases), failures, errors, skipped, seconds or case_seconds, tuple(failed), "nunit3"
    )


def nunit2_summary(root: ET.Element) -> TestSummary:
    """An NUnit 2 ``<test-results>`` root."""
    cases = list(root.iter("test-case"))
    top = root.findall("test-suite")
    seconds = sum(float(_number(s, "time", float)) for s in top)
    if not cases:
        return TestSummary(
            int(_number(root, "total", int)) + int(_number(root, "not-run", int)),
            int(_number(root, "failures", int)),
            int(_number(root, "errors", int)),
            int(_number(root, "not-run", int)),
            seconds,
            (),
            "nunit2",
        )
    failures = errors = skipped = 0
    failed: list[str] = []
    for case in cases:
        result = case.get("result", "")
        executed = case.get("executed", "True") == "True"
        bad = False
        if result == "Failure":
            failures += 1
            bad = True
        elif result in NUNIT2_ERRORS:
            errors += 1
            bad = True
        elif result in NUNIT2_SKIPPED or not executed:
            skipped += 1
        if bad and len(failed) < MAX_FAILED_NAMES:
            failed.append(case.get("name") or "?")
    return TestSummary(len(cases), failures, errors, skipped, seconds, tuple(failed), "nunit2")
