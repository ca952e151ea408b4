"""Shared helpers for the DDL tests: where the DDL files are and how to ask real Ruby."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GOLDEN = REPO / "tests" / "golden" / "ddl"
PROJECT_DDLS = sorted((REPO / "ddl").glob("*.ddl"))
VALID_FIXTURES = sorted((GOLDEN / "valid").glob("*/*.ddl"))
MALFORMED = sorted((GOLDEN / "malformed").glob("*.ddl"))
CORE = Path("/usr/lib/ruby/vendor_ruby")
RUBY = shutil.which("ruby")
HAVE_RUBY_MCOLLECTIVE = bool(RUBY) and (CORE / "mcollective.rb").is_file()
MCO = shutil.which("mco")

F = TypeVar("F", bound=Callable[..., Any])


def ruby_integration(func: F) -> F:
    """Mark a test that runs real Ruby: ``integration``, skipped only when Ruby is absent."""
    func = pytest.mark.skipif(
        not HAVE_RUBY_MCOLLECTIVE, reason="ruby + Debian mcollective not installed"
    )(func)
    return pytest.mark.integration(func)


def debian_ddls() -> list[Path]:
    """Every .ddl shipped by Debian's mcollective packages (dpkg -L), else the core dir."""
    try:
        out = subprocess.run(
            ["dpkg", "-L", "mcollective-common", "mcollective", "mcollective-client"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        ).stdout
        paths = sorted({Path(line) for line in out.splitlines() if line.endswith(".ddl")})
    except (OSError, subprocess.TimeoutExpired):
        paths = []
    if not paths:
        paths = sorted((CORE / "mcollective").glob("*/*.ddl"))
    return [p for p in paths if p.is_file()]


def kind_of(path: Path) -> str:
    """Plugin kind of a DDL from its directory (``.../agent/x.ddl``); ``ddl/`` is agent."""
    return (
        path.parent.name
        if path.parent.name in ("agent", "data", "discovery", "validator", "aggregate", "connector")
        else "agent"
    )


def clean_env() -> dict[str, str]:
    """The environment without what changes Ruby/mco behaviour (RUBYOPT, MCOLLECTIVE_*)."""
    return {
        k: v for k, v in os.environ.items() if k != "RUBYOPT" and not k.startswith("MCOLLECTIVE_")
    }


def run_ruby(script: str, payload: Any, *, timeout: float = 60) -> Any:
    """Run ``tests/ddl/<script>`` with JSON on stdin; return its JSON stdout."""
    assert RUBY is not None
    proc = subprocess.run(
        [RUBY, str(HERE / script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=clean_env(),
    )
    assert proc.returncode == 0, f"{script} failed: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)
