"""Shared fixtures: where ../shared is, and a real Ruby MCollective fleet on a real RabbitMQ."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MCO_SHARED") or REPO.parent / "shared")
VECTORS = SHARED / "vectors"
RUBY_FLEET = SHARED / "lab" / "ruby-fleet"
MCO_PY = [sys.executable, "-m", "mcollective_py"]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"shared material not found at {SHARED}; set MCO_SHARED"
    return SHARED


def _fleet_env(lab_dir: Path, vhost: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCOLLECTIVE_", "LAB_"))}
    env.pop("RUBYOPT", None)
    env.update({"LAB_DIR": str(lab_dir), "LAB_VHOST": vhost})
    env.update(extra or {})
    return env


def fleet_up(lab_dir: Path, n: int = 3, vhost: str = "/mco-py-test", extra: dict[str, str] | None = None) -> dict[str, str]:
    """Start (or reuse) a Ruby fleet; returns the environment for clients (``ruby-fleet env``)."""
    env = _fleet_env(lab_dir, vhost, extra)
    r = subprocess.run([str(RUBY_FLEET), "up", str(n)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"ruby-fleet up failed:\n{r.stdout}\n{r.stderr}"
    out = subprocess.run([str(RUBY_FLEET), "env"], env=env, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("export "):
            k, v = line[len("export ") :].split("=", 1)
            env[k] = v.strip("'")
    env["PYTHONPATH"] = str(REPO)
    return env


def lab_dir(name: str) -> Path:
    """A fresh lab state dir the ``rabbitmq`` user can read: ruby-fleet hands a definitions
    file in it to ``rabbitmqctl import_definitions``, which the broker reads itself, and
    pytest's own tmp dirs are private (0700), so the import fails there."""
    d = Path("/tmp/mco-py-tests") / name
    if d.exists():  # stop nodes a previous, interrupted run left behind (by their pid files)
        subprocess.run([str(RUBY_FLEET), "down"], env=_fleet_env(d, "/"), capture_output=True, timeout=120)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for p in (d.parent, d):
        p.chmod(0o755)
    return d


@pytest.fixture(scope="session")
def ruby_fleet() -> Iterator[dict[str, str]]:
    """Three real Ruby mcollectived nodes (node1 web/ams, node2 db/ams, node3 web/fra) in their
    own vhost, psk security, compat preload on. Yields the client environment."""
    assert shutil.which("rabbitmqctl"), "RabbitMQ is not installed: run scripts/setup"
    lab = lab_dir("psk-fleet")
    env = fleet_up(lab)
    yield env
    subprocess.run([str(RUBY_FLEET), "down"], env=env, capture_output=True, timeout=120)


def run_mco_py(env: dict[str, str], *args: str, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(MCO_PY + list(args), env=env, capture_output=True, text=True, timeout=timeout, input=stdin, cwd=REPO)


def run_mco(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Real Ruby ``mco`` with the lab's client.cfg."""
    return subprocess.run(["mco", *args, "-c", env["MCOLLECTIVE_CONFIG"]], env=env, capture_output=True, text=True, timeout=timeout)
