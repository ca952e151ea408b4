"""JUnit XML reports: kept for existing imports; the parsing lives in :mod:`.testresults`,
which also reads NUnit 3 and NUnit 2 result files the same way."""

from __future__ import annotations

from .testresults import (
    MAX_FAILED_NAMES,
    MAX_REPORT_BYTES,
    TestResultsError,
    TestSummary,
    junit_summary,
)
from .testresults import _root as _parse_xml

JUnitError = TestResultsError
JUnitSummary = TestSummary

__all__ = ["MAX_FAILED_NAMES", "MAX_REPORT_BYTES", "JUnitError", "JUnitSummary", "parse_junit"]


def parse_junit(text: str | bytes) -> TestSummary:
    """Sum up a JUnit XML report (only JUnit). Raises JUnitError for anything else."""
    return junit_summary(_parse_xml(text))
