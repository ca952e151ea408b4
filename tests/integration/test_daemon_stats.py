"""rpcutil daemon_stats of a real ``mco-py server`` counts regex timeouts, and real Ruby
``mco`` (with Ruby's own rpcutil DDL, which lacks our counters) still lays it out."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import PythonFleet, lab_dir, ns_vhost, run_mco, run_mco_py

pytestmark = pytest.mark.integration

NODE = "stats-" + "a" * 40  # (a|aa)+R explores ~fib(40) paths against this identity


@pytest.fixture(scope="module")
def node() -> Iterator[PythonFleet]:
    f = PythonFleet(lab_dir("daemon-stats"), ns_vhost("mco-py-stats"), [NODE])
    with f:
        yield f


def _regex_timeouts(fleet: PythonFleet) -> int:
    r = run_mco_py(fleet.env, "rpc", "rpcutil", "daemon_stats", "-I", NODE, "--json")
    assert r.returncode == 0, r.stderr
    return int(json.loads(r.stdout)[0]["data"]["regex_timeouts"])


def test_a_filter_timeout_is_counted_and_ruby_mco_shows_it(node: PythonFleet) -> None:
    before = _regex_timeouts(node)
    # a broadcast whose identity filter runs out of time on the node: no reply, one count
    r = run_mco_py(node.env, "ping", "-I", "/(a|aa)+R/", "-t", "2")
    assert NODE not in r.stdout
    assert _regex_timeouts(node) == before + 1
    assert "regex /(a|aa)+R/ ran out of its 0.05 s budget" in node.log(NODE).read_text()

    ruby = run_mco(node.env, "rpc", "rpcutil", "daemon_stats", "-I", NODE, "--np")
    assert ruby.returncode == 0, ruby.stderr
    lines = ruby.stdout.splitlines()
    ours = [ln for ln in lines if ln.lstrip().startswith("regex_timeouts:")]
    theirs = [ln for ln in lines if ln.lstrip().startswith("Security Validated:")]
    assert ours == [f"       regex_timeouts: {before + 1}"], ruby.stdout
    # Ruby pads every label to its longest one ("Security Validated"): unchanged by ours
    assert theirs and theirs[0].index(":") == ours[0].index(":") == 21

    # mco-py picks the same DDL as Ruby mco here (Ruby's, when installed), so the same line
    py = run_mco_py(node.env, "rpc", "rpcutil", "daemon_stats", "-I", NODE)
    assert py.returncode == 0, py.stderr
    assert ours[0] in py.stdout.splitlines(), py.stdout
