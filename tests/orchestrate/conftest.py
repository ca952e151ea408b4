"""The one deploy lab (tests/orchestrate/lab.py) every lab test module of this package shares:
started once per session, on first use, and stopped by pid at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.orchestrate.lab import DeployLab


@pytest.fixture(scope="session")
def lab() -> Iterator[DeployLab]:
    lab = DeployLab()
    try:
        yield lab
    finally:
        lab.stop()
