"""Issue 2 acceptance: mco-py against real Ruby mcollectived nodes, compared with Ruby mco."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import MCO_PY, REPO, run_mco, run_mco_py

pytestmark = pytest.mark.integration


def test_ping_lists_every_node(ruby_fleet: dict[str, str]) -> None:
    r = run_mco_py(ruby_fleet, "ping", "-t", "1")
    assert r.returncode == 0, r.stderr
    names = sorted(line.split()[0] for line in r.stdout.splitlines() if " time=" in line)
    assert names == ["node1", "node2", "node3"]
    assert "3 replies max:" in r.stdout


def test_inventory_json_matches_ruby(ruby_fleet: dict[str, str]) -> None:
    ours = run_mco_py(ruby_fleet, "rpc", "rpcutil", "inventory", "-I", "node1", "--json")
    theirs = run_mco(ruby_fleet, "rpc", "rpcutil", "inventory", "-I", "node1", "--json")
    assert ours.returncode == 0 and theirs.returncode == 0, (ours.stderr, theirs.stderr)
    a, b = json.loads(ours.stdout), json.loads(theirs.stdout)
    assert len(a) == len(b) == 1
    for key in (
        "agents",
        "facts",
        "classes",
        "collectives",
        "main_collective",
        "version",
        "data_plugins",
    ):
        assert a[0]["data"][key] == b[0]["data"][key], key
    assert a[0]["data"]["facts"] == {
        "role": "web",
        "datacenter": "ams",
        "node_index": "1",
        "environment": "lab",
    }
    assert set(a[0]) == set(b[0])  # same JSON schema


FILTERS = [
    ["-F", "role=web"],
    ["-F", "role=db"],
    ["-F", "datacenter=ams"],
    ["-F", "node_index>1"],
    ["-F", "node_index<=2"],
    ["-F", "role=/^w/"],
    ["-F", "role!=web"],
    ["-F", "nosuch=x"],
    ["-C", "haproxy"],
    ["-C", "roles::db"],
    ["-C", "/roles/"],
    ["-A", "rpcutil"],
    ["-A", "echo"],
    ["-A", "nosuchagent"],
    ["-I", "/node[12]/"],
    ["-I", "/3$/"],
    ["-W", "role=web datacenter=fra"],
    ["-W", "haproxy"],
    ["-F", "role=web", "-C", "haproxy", "-F", "datacenter=ams"],
    ["-S", "role=web and not datacenter=fra"],
    ["-S", "/roles::db/ or node_index=3"],
]


def test_filters_select_what_ruby_selects(ruby_fleet: dict[str, str]) -> None:
    def both(flt: list[str]) -> tuple[list[str], list[str], list[str]]:
        ours = run_mco_py(ruby_fleet, "find", *flt, "--dt", "2")
        theirs = run_mco(ruby_fleet, "find", *flt)
        assert "Traceback" not in ours.stderr, ours.stderr
        return flt, sorted(ours.stdout.split()), sorted(theirs.stdout.split())

    with ThreadPoolExecutor(max_workers=6) as pool:
        rows = list(pool.map(both, FILTERS))
    mismatches = [(f, o, t) for f, o, t in rows if o != t]
    assert not mismatches, mismatches
    # the table is not vacuous: most filters select something, some select nothing
    assert sum(1 for _, o, _ in rows if o) >= 15 and sum(1 for _, o, _ in rows if not o) >= 2


def _cfg_with(ruby_fleet: dict[str, str], tmp_path: Path, extra: str) -> str:
    cfg = tmp_path / "client.cfg"
    cfg.write_text(Path(ruby_fleet["MCOLLECTIVE_CONFIG"]).read_text() + extra)
    return str(cfg)


def test_broadcast_and_direct_both_work(ruby_fleet: dict[str, str], tmp_path: Path) -> None:
    from mcollective_py import config
    from mcollective_py.client import CallOptions, Client, ClientEvents
    from mcollective_py.filter import Filter

    class Rec(ClientEvents):
        direct: list[bool] = []

        def request_sent(self, requestid, nodes, direct, total):  # type: ignore[no-untyped-def]
            self.direct.append(direct)

    env = {k: v for k, v in ruby_fleet.items() if k != "MCOLLECTIVE_CONFIG"}
    for extra, want_direct in (
        ("direct_addressing_threshold = 1\n", False),
        ("", True),
        ("direct_addressing = 0\n", False),
    ):
        cfg = config.load(_cfg_with(ruby_fleet, tmp_path, extra), env=env)
        rec = Rec()
        rec.direct = []
        c = Client.from_config(cfg, rec)
        try:
            res = c.rpc("rpcutil", "ping", {}, Filter(), CallOptions(discovery_timeout=1.5))
        finally:
            c.connector.close()
        assert sorted(res.responders) == ["node1", "node2", "node3"], extra
        assert res.all_ok and rec.direct == [want_direct], extra


def test_concurrent_clients_never_see_each_others_replies(ruby_fleet: dict[str, str]) -> None:
    procs = [
        subprocess.Popen(
            MCO_PY + ["rpc", "rpcutil", "ping", "--json", "--dt", "1.5"],
            env=ruby_fleet,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        senders = [r["sender"] for r in json.loads(out)]
        assert sorted(senders) == ["node1", "node2", "node3"]  # each exactly once


def test_wrong_psk_all_discovered_nodes_are_named_silent(
    ruby_fleet: dict[str, str], tmp_path: Path
) -> None:
    nodes = tmp_path / "nodes.txt"
    nodes.write_text("node1\nnode2\nnode3\n")
    env = dict(ruby_fleet, MCOLLECTIVE_PSK="not-the-lab-psk")
    start = time.monotonic()
    r = run_mco_py(env, "rpc", "rpcutil", "ping", "--nodes", str(nodes), "-t", "2")
    assert r.returncode == 1, r.stderr
    assert time.monotonic() - start < 20
    assert "Finished processing \x1b[31m0\x1b[0m / \x1b[31m3\x1b[0m hosts" in r.stdout
    tail = r.stdout[r.stdout.index("No response from:") :]
    assert all(n in tail for n in ("node1", "node2", "node3"))


def test_broker_down_one_line_error_exit_3(ruby_fleet: dict[str, str], tmp_path: Path) -> None:
    cfg = Path(ruby_fleet["MCOLLECTIVE_CONFIG"]).read_text()
    cfg = cfg.replace(
        "plugin.rabbitmq.pool.1.host = 127.0.0.1",
        "plugin.rabbitmq.pool.1.host = 127.0.0.1\nplugin.rabbitmq.pool.1.amqp_port = 5999",
    )
    f = tmp_path / "down.cfg"
    f.write_text(cfg)
    r = run_mco_py(ruby_fleet, "rpc", "rpcutil", "ping", "-I", "node1", "-c", str(f))
    assert r.returncode == 3
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "127.0.0.1:5999: connection refused" in r.stderr


def test_facts_matches_ruby(ruby_fleet: dict[str, str]) -> None:
    ours = run_mco_py(ruby_fleet, "facts", "role")
    theirs = run_mco(ruby_fleet, "facts", "role")
    assert ours.returncode == theirs.returncode == 0
    strip = lambda s: [ln for ln in s.splitlines() if not ln.startswith("Finished processing")]  # noqa: E731
    assert strip(ours.stdout) == strip(theirs.stdout)
    assert "web                                      found 2 times" in ours.stdout


def test_inventory_command_layout_matches_ruby(ruby_fleet: dict[str, str]) -> None:
    ours = run_mco_py(ruby_fleet, "inventory", "node1")
    theirs = run_mco(ruby_fleet, "inventory", "node1")
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    volatile = (
        "Total Messages",
        "Messages Passed",
        "Messages Filtered",
        "Replies Sent",
        "Processor Time",
        "System Time",
    )
    keep = lambda s: [ln for ln in s.splitlines() if not any(v in ln for v in volatile)]  # noqa: E731
    assert keep(ours.stdout) == keep(theirs.stdout)


def _blocks(text: str) -> tuple[list[str], list[str]]:
    """Split mco rpc output into per-node blocks (sorted) and everything else, timings masked."""
    import re

    text = re.sub(r"in [0-9.]+ ms", "in X ms", text)
    text = re.sub(r"Timestamp: \d+", "Timestamp: T", text)
    blocks, rest, cur = [], [], []
    for line in text.split("\n"):
        if re.match(r"^node\d ", line):
            cur = [line]
            blocks.append(cur)
        elif cur and line.startswith("   ") and not line.startswith("   \x1b[1m"):
            cur.append(line)
        else:
            cur = []
            rest.append(line)
    # aggregate lines ("   web = 2") with equal counts come in reply-arrival order: sort runs
    out: list[str] = []
    run: list[str] = []
    for line in [*rest, None]:
        if line is not None and re.match(r"^ +\S+ = \d+$", line):
            run.append(line)
            continue
        out += sorted(run)
        run = []
        if line is not None:
            out.append(line)
    return sorted("\n".join(b) for b in blocks), out


@pytest.mark.parametrize(
    "call",
    [
        ["rpcutil", "inventory", "-I", "node1"],
        ["rpcutil", "get_fact", "fact=role"],
        ["rpcutil", "get_fact", "fact=datacenter", "-F", "role=web"],
        ["rpcutil", "ping", "-I", "node1", "-I", "node2"],
        ["rpcutil", "daemon_stats", "-I", "node2", "--display", "failed"],
        ["rpcutil", "collective_info"],
    ],
    ids=lambda c: " ".join(c),
)
def test_rpc_text_layout_matches_mco_line_by_line(
    ruby_fleet: dict[str, str], call: list[str]
) -> None:
    ours = run_mco_py(ruby_fleet, "rpc", *call)
    theirs = run_mco(ruby_fleet, "rpc", *call, "--np")
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    ob, orest = _blocks(ours.stdout)
    tb, trest = _blocks(theirs.stdout)
    assert ob == tb
    assert orest == trest  # blank lines, aggregate summary, Finished line (timing masked)
    if "get_fact" in call:
        assert "Summary of Value:" in ours.stdout


def test_rpc_validation_refuses_bad_input_before_sending(ruby_fleet: dict[str, str]) -> None:
    r = run_mco_py(ruby_fleet, "rpc", "rpcutil", "get_fact", "fact=bad fact!", "-I", "node1")
    assert r.returncode == 2 and r.stdout == ""
    assert "input 'fact': \"bad fact!\" does not match the pattern" in r.stderr
    r = run_mco_py(ruby_fleet, "rpc", "rpcutil", "nosuch")
    assert r.returncode == 2 and "action 'nosuch' is not declared in the rpcutil DDL" in r.stderr


def test_plugin_doc_matches_mco(ruby_fleet: dict[str, str]) -> None:
    ours = run_mco_py(ruby_fleet, "plugin", "doc", "agent/rpcutil")
    theirs = run_mco(ruby_fleet, "plugin", "doc", "agent/rpcutil")
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout


def test_pool_fails_over_to_the_next_broker_in_order(
    ruby_fleet: dict[str, str], tmp_path: Path
) -> None:
    cfg = Path(ruby_fleet["MCOLLECTIVE_CONFIG"]).read_text()
    cfg = cfg.replace("plugin.rabbitmq.pool.size = 1", "plugin.rabbitmq.pool.size = 2")
    cfg = cfg.replace(
        "plugin.rabbitmq.pool.1.host = 127.0.0.1",
        "plugin.rabbitmq.pool.1.host = 127.0.0.1\nplugin.rabbitmq.pool.1.amqp_port = 5999\n"
        "plugin.rabbitmq.pool.2.host = 127.0.0.1\nplugin.rabbitmq.pool.2.user = mcollective\n"
        "plugin.rabbitmq.pool.2.password = marionette",
    )
    f = tmp_path / "pool.cfg"
    f.write_text(cfg)
    r = run_mco_py(ruby_fleet, "rpc", "rpcutil", "ping", "-I", "node1", "-c", str(f), "--json")
    assert r.returncode == 0, r.stderr
    assert [x["sender"] for x in json.loads(r.stdout)] == ["node1"]
    # with both down, the error names both brokers in order
    f.write_text(
        cfg.replace(
            "plugin.rabbitmq.pool.2.host = 127.0.0.1",
            "plugin.rabbitmq.pool.2.host = 127.0.0.1\nplugin.rabbitmq.pool.2.amqp_port = 5998",
        )
    )
    r = run_mco_py(ruby_fleet, "ping", "-c", str(f))
    assert r.returncode == 3
    assert "127.0.0.1:5999: connection refused; 127.0.0.1:5998: connection refused" in r.stderr


def test_stdin_discovery_from_mco_json(ruby_fleet: dict[str, str]) -> None:
    listing = json.dumps([{"sender": "node2"}, {"sender": "node3"}])
    r = run_mco_py(ruby_fleet, "rpc", "rpcutil", "ping", "--dm", "stdin", "--json", stdin=listing)
    assert r.returncode == 0, r.stderr
    assert sorted(x["sender"] for x in json.loads(r.stdout)) == ["node2", "node3"]
    r = run_mco_py(
        ruby_fleet,
        "rpc",
        "rpcutil",
        "ping",
        "--dm",
        "stdin",
        "--do",
        "text",
        "--json",
        stdin="node1\n",
    )
    assert [x["sender"] for x in json.loads(r.stdout)] == ["node1"]


def test_verbose_output_matches_mco_layout(ruby_fleet: dict[str, str]) -> None:
    import re

    ours = run_mco_py(ruby_fleet, "rpc", "rpcutil", "ping", "-I", "node1", "-v")
    theirs = run_mco(ruby_fleet, "rpc", "rpcutil", "ping", "-I", "node1", "-v", "--np")
    mask = lambda s: re.sub(r"\d+(\.\d+)?", "N", s)  # noqa: E731 - timings, epoch seconds, dates
    assert ours.returncode == theirs.returncode == 0
    assert mask(ours.stdout).splitlines() == mask(theirs.stdout).splitlines()
    assert "---- rpcutil#ping call stats ----" in ours.stdout
