"""The Vagrant lab (vagrant/): ``vagrant validate`` (Debian's vagrant; no VM is started), its
Hiera hierarchy read by real Puppet, its rendered release data up to date, no private network."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import MCO_PY, REPO

pytestmark = pytest.mark.integration

VAGRANT = REPO / "vagrant"


def test_vagrant_validate(tmp_path: Path) -> None:
    exe = shutil.which("vagrant")
    assert exe, "vagrant is not installed: run scripts/setup (Debian vagrant)"
    env = {**os.environ, "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"), "WEB_NODES": "3"}
    r = subprocess.run(
        [exe, "validate", "--ignore-provider", "--no-tty"],
        cwd=VAGRANT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Vagrantfile validated successfully." in r.stdout
    for vm in ("broker", "lb1", "web1", "web2", "web3"):
        assert f"==> {vm}:" in r.stdout
    assert not (VAGRANT / ".vagrant").exists()


def test_vagrant_refuses_a_bad_node_count(tmp_path: Path) -> None:
    exe = shutil.which("vagrant")
    assert exe, "vagrant is not installed: run scripts/setup (Debian vagrant)"
    env = {**os.environ, "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"), "WEB_NODES": "0"}
    r = subprocess.run(
        [exe, "validate", "-p", "--no-tty"],
        cwd=VAGRANT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode != 0
    assert "WEB_NODES must be 1..9, got 0" in r.stdout + r.stderr


def test_no_private_network_and_no_private_addresses() -> None:
    text = "\n".join(p.read_text() for p in VAGRANT.rglob("*") if p.is_file())
    assert "private_network" not in text.replace("no private network", "")
    private = re.compile(r"\b(10\.\d+|172\.(1[6-9]|2\d|3[01])|192\.168)\.\d+\.\d+\b")
    assert private.findall(text) == []


def test_rendered_release_data_is_up_to_date() -> None:
    r = subprocess.run(
        [
            *MCO_PY,
            "release",
            "render",
            "shop",
            "1.4.2",
            "--env",
            "vagrant",
            "--catalog",
            "vagrant/services.yaml",
            "--hiera-dir",
            "vagrant",
            "--check",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_puppet_reads_the_vagrant_hierarchy(tmp_path: Path) -> None:
    """The lb VM's classes, broker and pools, as `puppet lookup` finds them."""
    facts = tmp_path / "lb1.yaml"
    facts.write_text(
        "clientcert: lb1.vagrant\nhostname: lb1\ndomain: vagrant\nfqdn: lb1.vagrant\n"
        "role: lb\ndeploy_env: vagrant\n"
    )
    state = tmp_path / "puppet"
    argv = [
        "puppet",
        "lookup",
        f"--modulepath={REPO / 'puppet_modules'}",
        f"--hiera_config={VAGRANT / 'hiera.yaml'}",
        *(f"--{d}dir={state / d}" for d in ("var", "conf", "code", "log", "run")),
        "--certname",
        "lb1.vagrant",
        "--facts",
        str(facts),
        "--render-as",
        "json",
        "--merge",
        "hash",
        "haproxy_pools::services",
    ]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stderr
    servers = json.loads(r.stdout)["shop"]["servers"]
    assert sorted(servers) == ["web1.vagrant", "web2.vagrant"]
    assert {s["address"] for s in servers.values()} == {"vagrant-host"}
    r = subprocess.run(
        [*argv[:-3], "mcollective_py::middleware_hosts"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert (r.returncode, json.loads(r.stdout or "null")) == (0, ["vagrant-host"]), r.stderr
