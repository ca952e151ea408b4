"""Each Puppet module documents itself as Forge modules do: a README.md (what it manages,
usage, the Hiera keys) and a REFERENCE.md that `puppet strings` (Debian's puppet-strings)
generates from the documented classes and parameters -- checked to be up to date."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO

MODULES = REPO / "puppet_modules"
NAMES = sorted(p.name for p in MODULES.iterdir() if (p / "manifests").is_dir())


def _class_params(module: str) -> list[str]:
    text = (MODULES / module / "manifests" / "init.pp").read_text()
    sig = text[text.index(f"class {module} (") :].split(") {")[0]
    return re.findall(r"^\s*[A-Z][^$\n]*\$(\w+)", sig, re.M)


@pytest.mark.parametrize("module", NAMES)
def test_readme_lists_every_hiera_key(module: str) -> None:
    readme = (MODULES / module / "README.md").read_text()
    for section in ("## What it manages", "## Usage", "## Hiera keys"):
        assert section in readme
    missing = [p for p in _class_params(module) if f"`{module}::{p}`" not in readme]
    assert missing == []


@pytest.mark.integration
def test_reference_is_what_puppet_strings_generates(tmp_path: Path) -> None:
    assert shutil.which("puppet"), "puppet is not installed: run scripts/setup"

    def generate(module: str) -> tuple[str, subprocess.CompletedProcess[str], str]:
        work = tmp_path / module
        shutil.copytree(MODULES / module, work, ignore=shutil.ignore_patterns("REFERENCE.md"))
        r = subprocess.run(
            ["puppet", "strings", "generate", "--format", "markdown", "--out", "REFERENCE.md"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        out = work / "REFERENCE.md"
        return module, r, out.read_text() if out.exists() else ""

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(generate, NAMES))
    for module, r, generated in results:
        assert r.returncode == 0, f"{module}: {r.stdout}\n{r.stderr}"
        assert "100.00% documented" in r.stdout, f"{module}: {r.stdout}"
        assert generated == (MODULES / module / "REFERENCE.md").read_text(), (
            f"puppet_modules/{module}/REFERENCE.md is stale: cd puppet_modules/{module} && "
            "puppet strings generate --format markdown --out REFERENCE.md && rm -rf .yardoc"
        )
