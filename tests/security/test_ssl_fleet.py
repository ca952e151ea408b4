"""Issue 7 acceptance (client side): ``mco-py`` with ``securityprovider = ssl`` against real Ruby
mcollectived nodes in ssl mode (``LAB_SECURITY=ssl``), with Marshal and then YAML bodies.

An unknown key (``intruder``, not in the nodes' ``ssl_client_cert_dir``) and a forged request
(intruder's private key, lab-client's name) must get no reply, and the nodes must log why.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RUBY_FLEET, fleet_up, lab_dir, ns_vhost, run_mco_py

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ssl_fleet() -> Iterator[dict[str, str]]:
    """Three Ruby nodes in ssl mode (Marshal); the YAML test switches the same lab over."""
    env = fleet_up(
        lab_dir("ssl-fleet"), 3, vhost=ns_vhost("mco-py-ssl"), extra={"LAB_SECURITY": "ssl"}
    )
    yield env
    subprocess.run([str(RUBY_FLEET), "down"], env=env, capture_output=True, timeout=120)


class NodeLogs:
    """What the nodes log from now on (each log file read from its current end)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.files = sorted(Path(env["LAB_DIR"]).glob("nodes/node*/mcollectived.log"))
        self.offsets = {p: p.stat().st_size for p in self.files}

    def new(self) -> str:
        out = []
        for p in self.files:
            with p.open("rb") as f:
                f.seek(self.offsets[p])
                out.append(f.read().decode(errors="replace"))
        return "".join(out)


def ping_names(env: dict[str, str]) -> tuple[int, list[str]]:
    r = run_mco_py(env, "ping", "-t", "1")
    return r.returncode, sorted(
        line.split()[0] for line in r.stdout.splitlines() if " time=" in line
    )


def check_lab(env: dict[str, str]) -> None:
    # 1. ping and a directed rpc call work with the lab's own client key
    assert ping_names(env) == (0, ["node1", "node2", "node3"])
    r = run_mco_py(env, "rpc", "rpcutil", "inventory", "-I", "node1", "--json")
    assert r.returncode == 0, r.stderr
    [reply] = json.loads(r.stdout)
    assert (reply["sender"], reply["statuscode"]) == ("node1", 0)
    assert reply["data"]["facts"]["role"] == "web" and "rpcutil" in reply["data"]["agents"]

    # 2. a key no node trusts: no replies, and every node says why
    logs = NodeLogs(env)
    intruder = dict(
        env,
        MCOLLECTIVE_SSL_PRIVATE=env["LAB_SSL_INTRUDER_PRIVATE"],
        MCOLLECTIVE_SSL_PUBLIC=env["LAB_SSL_INTRUDER_PUBLIC"],
    )
    code, names = ping_names(intruder)
    assert names == [] and code != 0
    r = run_mco_py(intruder, "rpc", "rpcutil", "ping", "-I", "node1", "-t", "2", "--json")
    assert json.loads(r.stdout or "[]") == []
    assert (
        logs.new().count("Failed to handle message: Could not find a public key for intruder") == 4
    )

    # 3. forged: intruder's private key, claiming to be lab-client
    logs = NodeLogs(env)
    forged = dict(
        env,
        MCOLLECTIVE_SSL_PRIVATE=env["LAB_SSL_INTRUDER_PRIVATE"],
        MCOLLECTIVE_SSL_PUBLIC=env["LAB_SSL_CLIENT_PUBLIC"],
    )
    assert ping_names(forged)[1] == []
    assert (
        logs.new().count("Failed to handle message: Received an invalid signature in message") == 3
    )


def test_mco_py_with_ssl_marshal_against_ruby_nodes(ssl_fleet: dict[str, str]) -> None:
    assert ssl_fleet["LAB_SSL_SERIALIZER"] == "marshal"
    check_lab(ssl_fleet)


def test_mco_py_with_ssl_yaml_against_ruby_nodes(ssl_fleet: dict[str, str]) -> None:
    """YAML bodies: the lab's compat preload lets the Ruby nodes decode them (§0.2)."""
    env = fleet_up(
        Path(ssl_fleet["LAB_DIR"]),
        3,
        vhost=ns_vhost("mco-py-ssl"),
        extra={"LAB_SECURITY": "ssl", "LAB_SSL_SERIALIZER": "yaml"},
    )
    assert env["LAB_SSL_SERIALIZER"] == "yaml"
    assert "plugin.ssl_serializer = yaml" in Path(env["MCOLLECTIVE_CONFIG"]).read_text()
    check_lab(env)
