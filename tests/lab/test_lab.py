"""The lab for real: RabbitMQ (own vhost), HAProxy from ``puppet apply``, the artifact server,
``mco-py server`` nodes and the demo app, driven with the ordinary ``mco-py`` commands.

One lab for the module (``up`` takes ~15 s): 3 app nodes, the last of them a Ruby
``mcollectived`` hosting deploy and healthcheck through shims (``--ruby-nodes 1``), so every
test also drives a Ruby node.  The tests run in file order and the last one takes the lab down
and checks that nothing of it is left.  The labs of these tests use the loopback block
``PREFIX``.  The README's command itself (``mco-py lab demo`` on a lab of its own) is
``test_demo_acceptance.py``.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcollective_py.lab import INITIAL_VERSION, Estate, LabSpec, child_env, down, install, up
from mcollective_py.lab import demo as demo_mod
from mcollective_py.lab.broker import vhosts
from mcollective_py.lab.load import LoadGenerator
from mcollective_py.lab.processes import read_pid, running, wait_for
from tests.conftest import lab_dir, ns_vhost, run_mco_py

pytestmark = pytest.mark.integration

NODES = 3
RUBY = 1
#: The loopback /24 of these tests' labs (the lab's default is 127.0.14.).
PREFIX = "127.0.17."


@pytest.fixture(scope="module")
def lab() -> Iterator[Estate]:
    root = lab_dir("lab")
    down(root)  # a lab an interrupted run left here
    spec = LabSpec(
        root=root, vhost=ns_vhost("mco-py-lab"), nodes=NODES, ruby_nodes=RUBY, prefix=PREFIX
    )
    try:
        estate = up(spec).estate
        install(estate, INITIAL_VERSION, child_env())
        yield estate
    finally:
        down(root)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_mco_py(child_env(), *args, timeout=timeout)


def _pids(estate: Estate) -> dict[tuple[str, str], int]:
    return {
        (p.role, p.identity): read_pid(p.pidfile) if p.role == "app" else p.pid
        for p in estate.processes
    }


def test_status_json_lists_every_process(lab: Estate) -> None:
    r = _cli("lab", "status", "--json", "--state-dir", lab.root)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    rows = {(p["role"], p["identity"]): p for p in doc["processes"]}
    webs = [f"web{i}.lab" for i in range(1, NODES + 1)]
    assert sorted(rows) == sorted(
        [("haproxy", "lb1.lab"), ("artifacts", "lab"), ("server", "lb1.lab")]
        + [("server", w) for w in webs[:-RUBY]]
        + [("mcollectived", w) for w in webs[-RUBY:]]
        + [("app", w) for w in webs]
    )
    assert all(p["running"] and p["pid"] > 0 for p in rows.values()), rows
    assert rows[("app", "web2.lab")]["address"] == f"{PREFIX}12"
    for key in ("catalog", "hiera_config", "client_cfg"):
        assert Path(doc[key]).is_file(), key
    assert Path(doc["haproxy_socket"]).is_socket()
    assert doc["frontend"] == f"{lab.frontend[0]}:{lab.frontend[1]}"
    assert "password" not in r.stdout
    assert _pids(lab)[("app", "web2.lab")] == rows[("app", "web2.lab")]["pid"]


def test_the_nodes_answer_the_ordinary_commands(lab: Estate) -> None:
    r = _cli("find", "-c", lab.client_cfg, "-F", "role=web")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == [f"web{i}.lab" for i in range(1, NODES + 1)]
    r = _cli("rpc", "haproxy", "status", "-I", "lb1.lab", "-c", lab.client_cfg, "--json")
    backends = json.loads(r.stdout)[0]["data"]["backends"]
    assert {(b["server"], b["state"]) for b in backends} == {
        (f"web{i}.lab", "UP") for i in range(1, NODES + 1)
    }


def test_the_ruby_node_is_debians_mcollectived(lab: Estate) -> None:
    r = _cli("inventory", f"web{NODES}.lab", "-c", lab.client_cfg)
    assert r.returncode == 0, r.stderr
    assert "Version: 2.12.5" in r.stdout
    assert "deploy" in r.stdout and "healthcheck" in r.stdout
    r = _cli("inventory", "web1.lab", "-c", lab.client_cfg)
    assert "Version: 2.12.5" not in r.stdout


def test_up_twice_is_harmless(lab: Estate) -> None:
    before = _pids(lab)
    r = _cli(
        "lab",
        "up",
        "--state-dir",
        lab.root,
        "--vhost",
        lab.vhost,
        "--nodes",
        str(NODES),
        "--ruby-nodes",
        str(RUBY),
        "--prefix",
        PREFIX,
    )
    assert r.returncode == 0, r.stderr
    assert "is already up (reused)" in r.stdout
    assert "mco-py rpc deploy" not in r.stdout  # v1 serves already: nothing installed again
    assert _pids(lab) == before


def test_a_different_lab_in_the_same_directory_is_refused(lab: Estate) -> None:
    r = _cli(
        "lab",
        "up",
        "--state-dir",
        lab.root,
        "--vhost",
        lab.vhost,
        "--nodes",
        str(NODES),
        "--prefix",
        PREFIX,
    )
    assert r.returncode == 2
    assert "run mco-py lab down first" in r.stderr


def test_v1_serves_every_request_through_the_frontend(lab: Estate) -> None:
    load = LoadGenerator(*lab.frontend, rate=100).start()
    assert wait_for(lambda: load.snapshot().requests >= 40, 60)
    report = load.stop()
    assert report.failures == 0, report.errors
    assert report.answers == {f"shop {INITIAL_VERSION}": report.requests}


def test_the_demo_phases_with_the_driver_through_a_ruby_node(lab: Estate) -> None:
    """The demo's phases (load, v2, broken v3, report) on this lab, whose last node is a Ruby
    ``mcollectived``: the driver moves it through the shims without losing a request, and
    3.0.0's canary is rolled back."""
    reports = Path(lab.root) / "reports"
    outcome = demo_mod.run(lab, child_env(), demo_mod.DemoEvents(), report_dir=reports)
    assert outcome.problems == (), outcome
    assert outcome.versions == {f"web{i}.lab": "2.0.0" for i in range(1, NODES + 1)}
    two, three = outcome.deploys
    assert (two.exit_code, two.outcome, two.verdict) == (0, "done", "done")
    assert two.nodes == {f"web{i}.lab": "done" for i in range(1, NODES + 1)}
    assert (three.exit_code, three.verdict) == (1, "failed and rolled back (web1.lab)")
    assert {Path(r.report).parent for r in outcome.deploys} == {reports}
    phases = {p.name: p for p in outcome.load.phases}
    assert phases["2.0.0"].requests > 0 and phases["2.0.0"].failures == 0
    assert outcome.load.failures == 0, outcome.load.errors
    assert set(outcome.load.answers) == {"shop 1.0.0", "shop 2.0.0"}
    with sqlite3.connect(lab.database) as db:
        rows = db.execute("select version, phase, node, outcome from mco_migrations").fetchall()
    assert sorted(rows) == [("2.0.0", "pre", "web1.lab", "ok"), ("3.0.0", "pre", "web1.lab", "ok")]


def test_the_demo_on_a_kept_lab_serving_2_0_0_starts_from_1_0_0_again(lab: Estate) -> None:
    """``mco-py lab demo --keep`` on this lab (every node on 2.0.0 after the test above): the
    demo reuses the lab, puts 1.0.0 back and rolls 2.0.0 again, rather than finding nothing
    to do; the lab keeps running."""
    before = {k: v for k, v in _pids(lab).items() if k[0] != "app"}
    reports = Path(lab.root) / "reports-kept"
    # fmt: off
    r = _cli(
        "lab", "demo", "--keep", "--state-dir", lab.root, "--vhost", lab.vhost,
        "--nodes", str(NODES), "--ruby-nodes", str(RUBY), "--prefix", PREFIX,
        "--report-dir", str(reports), timeout=180,
    )
    # fmt: on
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "is already up (reused)" in r.stdout
    webs = ", ".join(f"web{i}.lab" for i in range(1, NODES + 1))
    assert f"putting shop {INITIAL_VERSION} back on {webs}" in r.stdout
    assert re.search(r"^deploy 2\.0\.0: done in ", r.stdout, re.M)
    assert "failed requests: 0\n" in r.stdout and "result: as expected" in r.stdout
    assert f"the lab keeps running: mco-py lab status --state-dir {lab.root}" in r.stdout
    assert {k: v for k, v in _pids(lab).items() if k[0] != "app"} == before


def test_down_leaves_nothing_behind(lab: Estate) -> None:
    pids = _pids(lab)
    ports = [(p.address, p.port) for p in lab.processes if p.port]
    assert all(running(pid) for pid in pids.values())
    r = _cli("lab", "down", "--state-dir", lab.root)
    assert r.returncode == 0, r.stderr
    assert f"lab in {lab.root} is down" in r.stdout
    assert [pid for pid in pids.values() if running(pid)] == []
    assert lab.vhost not in vhosts()
    assert not Path(lab.root).exists()
    for address, port in ports:
        with socket.socket() as s:
            assert s.connect_ex((address, port)) != 0, f"{address}:{port} still listens"
    r = _cli("lab", "status", "--state-dir", lab.root)
    assert r.returncode == 4
    r = _cli("lab", "down", "--state-dir", lab.root)
    assert (r.returncode, r.stdout) == (0, f"no lab in {lab.root}; nothing to do\n")
