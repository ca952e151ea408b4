"""Paths and helpers for the release tests: the example catalog, golden files, real Puppet runs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from mcollective_py.release import load_catalog, render_release
from mcollective_py.release.catalog import Catalog

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CATALOG = REPO / "examples" / "services.yaml"
SITE_PP = REPO / "examples" / "site.pp"
HIERA = REPO / "hiera"
MODULES = REPO / "puppet_modules"
MODULE_NAMES = ("app_release", "haproxy_pools", "mcollective_py")
GOLDEN = REPO / "tests" / "golden" / "release"

#: The releases whose data is checked in under hiera/data (service, version, environment).
CHECKED_IN = (
    ("shop", "1.4.2", "lab"),
    ("shop", "1.4.2", "staging"),
    ("shop", "1.4.1", "production"),
    ("search", "2.1.0", "lab"),
    ("search", "2.0.3", "production"),
    ("reports", "2026.11.2", "lab"),
    ("reports", "2026.11.1", "production"),
)

integration = pytest.mark.integration


@pytest.fixture(scope="session")
def example_catalog() -> Catalog:
    return load_catalog(EXAMPLE_CATALOG)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_hiera(dest: Path, catalog_doc: dict[str, object]) -> Catalog:
    """A copy of the repository's hiera/ at ``dest``, with the CHECKED_IN releases of
    ``catalog_doc`` rendered into it (what `mco-py release render` writes)."""
    from mcollective_py.release import data_dir, plan_writes, write_files
    from mcollective_py.release.catalog import parse_catalog

    shutil.copytree(HIERA, dest)
    for sub in ("releases", "pools"):
        shutil.rmtree(dest / "data" / sub, ignore_errors=True)
    catalog = parse_catalog(yaml.safe_dump(catalog_doc), source="test-catalog.yaml")
    for service, version, env in CHECKED_IN:
        write_files(plan_writes(data_dir(dest), render_release(catalog, service, version, env)))
    return catalog


def puppet_flags(state: Path, hiera: Path) -> list[str]:
    """Flags that keep Puppet away from the system's own dirs (TOOLING.md section 1)."""
    return [
        f"--modulepath={MODULES}",
        f"--hiera_config={hiera / 'hiera.yaml'}",
        "--color=false",
        *(f"--{d}dir={state / d}" for d in ("var", "conf", "code", "log", "run")),
    ]


def run(
    cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=full_env, check=False
    )


def puppet_errors(output: str) -> list[str]:
    """Error lines of a Puppet run, without Facter's expected noise in containers
    (``Error: Facter: Permission denied @ rb_sysopen - /proc/1/environ``)."""
    return [
        line
        for line in output.splitlines()
        if line.startswith("Error:") and not line.startswith("Error: Facter:")
    ]
