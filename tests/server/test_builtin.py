"""rpcutil daemon_stats: Ruby's keys, then ours (declared in ddl/rpcutil.ddl), among them the
regex-timeout count of :mod:`mcollective_py.ruby.regex`."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcollective_py import config
from mcollective_py.ddl import AgentDDL, load_ddl_file
from mcollective_py.errors import RegexTimeout
from mcollective_py.ruby import regex as ruby_regex
from mcollective_py.server.agent import ActionRequest
from mcollective_py.server.builtin import DaemonInfo, Rpcutil
from mcollective_py.server.daemon import Stats
from tests.conftest import REPO

#: Ruby 2.12's rpcutil daemon_stats outputs (its DDL) and the longest label among them
RUBY_KEYS = {
    "threads",
    "agents",
    "pid",
    "times",
    "validated",
    "unvalidated",
    "passed",
    "filtered",
    "starttime",
    "total",
    "replies",
    "configfile",
    "version",
    "ttlexpired",
}
RUBY_LONGEST_LABEL = len("Security Validated")


def rpcutil(tmp_path: Path, stats: Stats) -> Rpcutil:
    ddl = load_ddl_file(REPO / "ddl" / "rpcutil.ddl")
    assert isinstance(ddl, AgentDDL)
    cfg_file = tmp_path / "server.cfg"
    cfg_file.write_text("identity = node1\n")
    cfg = config.load(str(cfg_file), role="server", env={}, home=str(tmp_path), system_dirs=())
    agent = Rpcutil(ddl)
    agent.info = DaemonInfo(config=cfg, configfile=str(cfg_file), stats=stats.snapshot)
    return agent


def test_daemon_stats_counts_regex_timeouts(tmp_path: Path) -> None:
    stats = Stats()
    stats.incr("overloaded", 2)
    agent = rpcutil(tmp_path, stats)
    call = ActionRequest(agent="rpcutil", action="daemon_stats", data={}, caller="uid=0")
    before = agent.handle(call)
    assert before.statuscode == 0, before.statusmsg
    assert before.data["regex_timeouts"] == ruby_regex.timeouts()
    assert before.data["overloaded"] == 2
    with pytest.raises(RegexTimeout):
        ruby_regex.compile_ruby_regex("(a|aa)+S", timeout=0.05).search("a" * 40)
    after = agent.handle(call)
    assert after.data["regex_timeouts"] == before.data["regex_timeouts"] + 1


def test_our_extra_outputs_are_declared_and_keep_rubys_alignment(tmp_path: Path) -> None:
    agent = rpcutil(tmp_path, Stats())
    reply = agent.handle(
        ActionRequest(agent="rpcutil", action="daemon_stats", data={}, caller="uid=0")
    )
    declared = agent.ddl.actions["daemon_stats"].outputs
    assert set(reply.data) == set(declared)
    assert RUBY_KEYS <= set(reply.data)
    ours = set(reply.data) - RUBY_KEYS
    assert ours == {
        "bad_messages",
        "wrong_collective",
        "unknown_agent",
        "replayed",
        "overloaded",
        "regex_timeouts",
    }
    # Ruby mco shows an output its DDL lacks by its name, padded to the longest label: none
    # of ours is longer than Ruby's longest, so Ruby's lines do not move
    assert max(len(k) for k in ours) <= RUBY_LONGEST_LABEL
    assert max(len(declared[k].display_as) for k in ours) <= RUBY_LONGEST_LABEL
