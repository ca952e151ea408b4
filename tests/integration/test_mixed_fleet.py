"""Issue 4: a mixed fleet — 2 stock Ruby nodes (no compat preload) hosting our Python agent
through shims, and 2 Python nodes — answers mco-py and Ruby mco with identical data."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import (
    MCO_PY,
    REPO,
    RUBY_FLEET,
    PythonFleet,
    fleet_up,
    lab_dir,
    ns_vhost,
    run_mco_py,
)

pytestmark = pytest.mark.integration
AGENT_SPEC = "tests.agents.pyecho:PyEcho"
VHOST = ns_vhost("mco-py-mixed")


@pytest.fixture(scope="module")
def mixed() -> Iterator[tuple[dict[str, str], PythonFleet]]:
    root = lab_dir("mixed")
    shims = root / "shims"
    cfg = root / "shim-build.cfg"
    cfg.write_text(f"libdir = {REPO}/tests/agents\nplugin.mcollective_py.agents = {AGENT_SPEC}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        MCO_PY + ["shim", "build", "pyecho", "--out", str(shims), "-c", str(cfg)],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    ruby_dir = root / "ruby"
    ruby_dir.mkdir()
    ruby_dir.chmod(0o755)
    # stock Debian: no compat preload; PYTHONPATH reaches the shim's child through mcollectived
    renv = fleet_up(
        ruby_dir,
        2,
        vhost=VHOST,
        extra={"LAB_COMPAT": "0", "LAB_PLUGIN_DIRS": str(shims), "PYTHONPATH": str(REPO)},
    )
    py: PythonFleet | None = None
    try:  # from here on, whatever fails, the Ruby nodes are stopped again
        assert renv["RUBYOPT"] == ""
        for i in (1, 2):  # tells `mco-py agent run -c <node's server.cfg>` where the agent is
            d = ruby_dir / "nodes" / f"node{i}" / "plugin.d"
            d.mkdir(exist_ok=True)
            (d / "mcollective_py.cfg").write_text(f"agents = {AGENT_SPEC}\n")
        py = PythonFleet(
            root / "py",
            VHOST,
            ["pynode3", "pynode4"],
            index_offset=2,
            extra_cfg=f"plugin.mcollective_py.agents = {AGENT_SPEC}\n",
            libdir=str(shims),
        )
        py.up()
        yield renv, py
    finally:
        if py is not None:
            py.down()
        subprocess.run([str(RUBY_FLEET), "down"], env=renv, capture_output=True, timeout=120)


NODES = ["node1", "node2", "pynode3", "pynode4"]


def test_mco_py_and_ruby_mco_get_identical_data_from_all_four(
    mixed: tuple[dict[str, str], PythonFleet],
) -> None:
    renv, py = mixed
    ours = run_mco_py(renv, "rpc", "pyecho", "echo", "msg=hello mixed fleet", "--json", "--dt", "2")
    theirs = subprocess.run(
        [
            "mco",
            "rpc",
            "pyecho",
            "echo",
            "msg=hello mixed fleet",
            "--json",
            "-c",
            renv["MCOLLECTIVE_CONFIG"],
        ],
        env=renv,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    for out in (ours.stdout, theirs.stdout):
        rows = {r["sender"]: r for r in json.loads(out)}
        assert sorted(rows) == NODES
        datas = [rows[n]["data"] for n in NODES]
        assert all(d == datas[0] for d in datas), datas
        assert datas[0] == {
            "message": "hello mixed fleet",
            "length": 17,
            "caller": "uid=0",
            "words": ["hello", "mixed", "fleet"],
        }
        assert {r["statuscode"] for r in rows.values()} == {0}


def test_failures_have_the_same_statuscode_and_message_on_both_hosts(
    mixed: tuple[dict[str, str], PythonFleet],
) -> None:
    renv, _ = mixed
    for code in (1, 4):
        r = run_mco_py(renv, "rpc", "pyecho", "echo", f"msg=fail:{code}", "--json", "--dt", "2")
        assert r.returncode == 1
        rows = json.loads(r.stdout)
        assert sorted(x["sender"] for x in rows) == NODES
        assert {(x["statuscode"], x["statusmsg"]) for x in rows} == {
            (code, f"asked to fail with {code}")
        }


def test_typed_inputs_and_aggregates_through_both_hosts(
    mixed: tuple[dict[str, str], PythonFleet],
) -> None:
    renv, _ = mixed
    r = run_mco_py(renv, "rpc", "pyecho", "sum", "a=2", "b=40", "--dt", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Total: 42") == 4
    assert "Sum of total: 168" in r.stdout
