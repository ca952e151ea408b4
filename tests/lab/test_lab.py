"""The lab for real: RabbitMQ (own vhost), HAProxy from ``puppet apply``, the artifact server,
``mco-py server`` nodes and the demo app, driven with the ordinary ``mco-py`` commands.

One lab for the module (``up`` takes ~15 s): 3 app nodes, the last of them a Ruby
``mcollectived`` hosting deploy and healthcheck through shims (``--ruby-nodes 1``), so every
test also drives a Ruby node.  The tests run in file order and the last one takes the lab down
and checks that nothing of it is left.  ``test_the_demo_with_the_deploy_driver`` is the
acceptance test of the README's first command: ``mco-py lab demo`` end to end with the real
``mco-py deploy`` (a lab of its own, 4 nodes).  The labs use the loopback block ``PREFIX``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
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
from tests.lab.rolling import deploy_by_hand

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


def test_demo_release_phases_with_a_rolling_deploy_by_hand(lab: Estate) -> None:
    """The demo's phases (load, v2, broken v3, report) with the deploy done node by node
    through the agents: the lab moves pools without losing a request, and 3.0.0's first node
    fails its smoke test and is rolled back.  The last node is a Ruby node."""
    outcome = demo_mod.run(
        lab,
        child_env(),
        demo_mod.DemoEvents(),
        report_dir=Path(lab.root) / "reports",
        deployer=deploy_by_hand,
    )
    assert outcome.problems == (), outcome
    assert outcome.versions == {f"web{i}.lab": "2.0.0" for i in range(1, NODES + 1)}
    assert [r.exit_code for r in outcome.deploys] == [0, 1]
    phases = {p.name: p for p in outcome.load.phases}
    assert phases["2.0.0"].requests > 0 and phases["2.0.0"].failures == 0
    assert phases["3.0.0"].failures == 0
    assert outcome.load.failures == 0, outcome.load.errors
    assert set(outcome.load.answers) == {"shop 1.0.0", "shop 2.0.0"}


def test_the_demo_with_the_deploy_driver() -> None:
    """The acceptance test: ``mco-py lab demo`` (what the README's first command runs) with
    the real driver: 2.0.0 rolled with no failed request and its ``pre`` migration run once
    through the agents, the broken 3.0.0 rolled back at its canary, an HTML run report per
    run, and nothing of the lab left afterwards."""
    env = child_env()
    root = lab_dir("lab-demo")
    reports = lab_dir("lab-demo-reports")
    vhost = ns_vhost("mco-py-lab-demo")
    # fmt: off
    r = run_mco_py(
        env, "lab", "demo", "--state-dir", str(root), "--vhost", vhost,
        "--report-dir", str(reports), "--prefix", PREFIX, timeout=240,
    )
    # fmt: on
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    out = r.stdout
    assert "failed requests: 0\n" in out
    assert re.search(r"^  2\.0\.0 +\d+ requests, 0 failed", out, re.M), out[-2000:]
    assert re.search(r"^deploy 2\.0\.0: done in ", out, re.M)
    assert re.search(r"^deploy 3\.0\.0: failed and rolled back \(web1\.lab\) in ", out, re.M)
    assert "result: as expected" in out
    assert re.findall(r"^  web\d\.lab +(\S+)$", out, re.M) == ["2.0.0"] * 4
    html = sorted(reports.glob("*.html"))
    assert len(html) == 2, out[-2000:]
    for page in html:
        assert f"HTML run report: {page}" in out
        assert "<svg" in page.read_text()
    journals = sorted(reports.glob("*-journal.jsonl"))
    assert len(journals) == 2
    migrations = [
        (rec["version"], rec["outcome"], (rec.get("detail") or {}).get("phase"))
        for j in journals
        for rec in map(json.loads, j.read_text().splitlines())
        if rec.get("kind") == "migration"
    ]
    assert sorted(migrations) == sorted(
        [(v, o, "pre") for v in ("2.0.0", "3.0.0") for o in ("started", "ok")]
    ), migrations
    assert not root.exists()
    assert vhost not in vhosts()
    shutil.rmtree(reports)  # the demo keeps them on purpose; the test does not


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
