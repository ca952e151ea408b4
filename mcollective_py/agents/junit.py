"""JUnit XML reports, pure: what a smoke test run says (tests, failures, errors, time).

Reads the common shapes: a ``<testsuites>`` root (pytest >= 5, Maven surefire aggregates,
Jenkins) or a single ``<testsuite>`` root (older pytest, Ant, junit-xml).  Counts come from
the ``<testcase>`` elements themselves when there are any (a suite's attributes are
sometimes missing or stale); a suite without test cases contributes its attributes, unless
it only groups nested suites (which are counted themselves).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

#: Reports larger than this are refused rather than parsed.
MAX_REPORT_BYTES = 10 * 1024 * 1024
#: How many failed test names a summary keeps.
MAX_FAILED_NAMES = 10


class JUnitError(ValueError):
    """The text is not a JUnit XML report."""


@dataclass(frozen=True)
class JUnitSummary:
    """Totals of one report."""

    tests: int
    failures: int
    errors: int
    skipped: int
    time: float  # seconds, as the report says
    failed: tuple[str, ...] = field(default=())  # "classname.name" of failures and errors

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
        raise JUnitError(f"<{element.tag}> has {name}={raw!r}, not a number") from None


def parse_junit(text: str | bytes) -> JUnitSummary:
    """Sum up a JUnit XML report. Raises JUnitError for anything else."""
    if len(text) > MAX_REPORT_BYTES:
        raise JUnitError(f"report is larger than {MAX_REPORT_BYTES} bytes")
    try:
        root = ET.fromstring(text)  # noqa: S314 - our own release's report, size-capped
    except ET.ParseError as exc:
        raise JUnitError(f"not well-formed XML: {exc}") from None
    if root.tag == "testsuite":
        suites = [root]
    elif root.tag == "testsuites":
        suites = list(root.iter("testsuite"))
    else:
        raise JUnitError(f"root element is <{root.tag}>, not <testsuites> or <testsuite>")
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
    return JUnitSummary(tests, failures, errors, skipped, seconds, tuple(failed))
