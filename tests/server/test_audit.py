"""AuditLog: Ruby's rpcaudit line (checked against Ruby's own Logfile plugin), JSON lines,
redaction, append-only writes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from mcollective_py import config, marshal
from mcollective_py.message import Request
from mcollective_py.ruby.inspect import CUT_MARK, Budget
from mcollective_py.rubytypes import AsciiString, Symbol
from mcollective_py.server.audit import (
    DEFAULT_LOGFILE,
    REDACTED,
    AuditEvent,
    AuditLog,
    json_data,
)

NOW = 1795692174.25  # 2026-11-26 11:22:54 UTC
DATA = {Symbol("fact"): "osfamily", Symbol("process_results"): True}


def event(**kw: Any) -> AuditEvent:
    base: dict[str, Any] = {
        "requestid": "e793642dd17c533dbf1dd2b87771be3d",
        "reqtime": 1795692170,
        "caller": "cert=lab-client",
        "sender": "mco-lab-client",
        "agent": "rpcutil",
        "action": "get_fact",
        "data": DATA,
    }
    return AuditEvent(**{**base, **kw})


def test_ruby_line_format(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log", clock=lambda: NOW)
    assert audit.record(event()) is True
    assert (tmp_path / "audit.log").read_text() == (
        "[2026-11-26 11:22:54 UTC] reqid=e793642dd17c533dbf1dd2b87771be3d: reqtime=1795692170 "
        'caller=cert=lab-client@mco-lab-client agent=rpcutil action=get_fact data={:fact=>"osfamily", :process_results=>true}\n'
    )


def test_json_lines_with_decision_status_and_duration(tmp_path: Path) -> None:
    audit = AuditLog(None, jsonfile=tmp_path / "audit.jsonl", clock=lambda: NOW)
    audit.record(
        event(
            decision="denied",
            statuscode=1,
            statusmsg="You are not authorized to call this agent or action.",
            reason="denied by rpcutil.policy line 2",
        )
    )
    audit.record(event(statuscode=0, statusmsg="OK", duration=0.0123456789))
    first, second = (
        json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()
    )
    assert first == {
        "time": "2026-11-26T11:22:54.250Z",
        "requestid": "e793642dd17c533dbf1dd2b87771be3d",
        "reqtime": 1795692170,
        "caller": "cert=lab-client",
        "sender": "mco-lab-client",
        "agent": "rpcutil",
        "action": "get_fact",
        "data": {"fact": "osfamily", "process_results": True},
        "decision": "denied",
        "statuscode": 1,
        "statusmsg": "You are not authorized to call this agent or action.",
        "duration": None,
        "reason": "denied by rpcutil.policy line 2",
    }
    assert (second["decision"], second["statuscode"], second["duration"]) == (
        "allowed",
        0,
        0.012346,
    )


def test_secrets_are_redacted_at_any_depth_in_both_formats(tmp_path: Path) -> None:
    audit = AuditLog(
        tmp_path / "a.log",
        jsonfile=tmp_path / "a.jsonl",
        redact=["password", "API_Key"],
        clock=lambda: NOW,
    )
    data = {
        Symbol("user"): "bob",
        Symbol("password"): "hunter2",
        Symbol("nested"): [{"api_key": "k-123", "ok": 1}],
    }
    audit.record(event(data=data))
    text = (tmp_path / "a.log").read_text() + (tmp_path / "a.jsonl").read_text()
    assert "hunter2" not in text and "k-123" not in text
    assert ':password=>"[REDACTED]"' in text and '"api_key": "[REDACTED]"' in text and "bob" in text
    assert REDACTED == "[REDACTED]"


class CountingList(list):  # type: ignore[type-arg]
    """A list that counts how often it is walked (as tests/ruby/test_inspect.py does)."""

    walks = 0

    def __iter__(self) -> Any:
        CountingList.walks += 1
        return super().__iter__()


class CountingHash(dict):  # type: ignore[type-arg]
    """A Hash that counts how often its items are walked."""

    walks = 0

    def items(self) -> Any:
        CountingHash.walks += 1
        return super().items()


def shared_tree(depth: int, leaf: Any) -> Any:
    """``x = [x, x]`` ``depth`` deep (2**depth leaves from depth + 1 objects), every other
    level a Hash ``{:l => x, :r => x}``."""
    x = leaf
    for level in range(depth):
        x = CountingHash({Symbol("l"): x, Symbol("r"): x}) if level % 2 else CountingList([x, x])
    return x


def test_a_shared_reference_value_is_never_expanded(tmp_path: Path) -> None:
    """``x = [x, x]`` 20 deep (what a raised max_expansion lets through): redaction copies
    each distinct value once, both formats stop at the budget, the secret is still hidden."""
    budget = Budget(chars=4000, nodes=600)
    audit = AuditLog(tmp_path / "a.log", jsonfile=tmp_path / "a.jsonl", budget=budget)
    leaf = {Symbol("password"): "hunter2", Symbol("url"): "http://u:pw@127.0.18.1/x"}
    CountingList.walks = CountingHash.walks = 0
    data = {Symbol("tree"): shared_tree(20, leaf)}
    assert audit.record(event(data=data)) is True
    # 10 distinct lists and 10 distinct hashes, each walked once for both formats (2**20
    # leaves expanded would be about a million walks)
    assert (CountingList.walks, CountingHash.walks) == (10, 10)
    line = (tmp_path / "a.log").read_text()
    assert line.endswith(CUT_MARK + "\n")
    assert len(line) < 4000 + 300
    assert "hunter2" not in line and "pw@" not in line
    assert ':password=>"[REDACTED]"' in line and "http://********@127.0.18.1/x" in line
    text = (tmp_path / "a.jsonl").read_text()
    assert "hunter2" not in text and "pw@" not in text
    record = json.loads(text)
    # the budget, plus the mark and its place ("key": "…")
    assert len(json.dumps(record["data"], ensure_ascii=False)) <= 4000 + len(CUT_MARK) + 20
    assert json.dumps(record["data"], ensure_ascii=False).count(CUT_MARK) == 1
    first_leaf = record["data"]["tree"]
    for _ in range(10):
        first_leaf = first_leaf["l"][0]
    assert first_leaf == {"password": REDACTED, "url": "http://********@127.0.18.1/x"}


def test_a_marshal_linked_value_stays_cheap(tmp_path: Path) -> None:
    """The same shape straight from the wire: a few hundred bytes, decoded with links."""
    inner = marshal.loads(marshal.dumps(["leaf"]))
    value: Any = inner
    for _ in range(20):
        value = [value, value]
    wire = marshal.dumps({Symbol("x"): value})
    assert len(wire) < 1000
    decoded = marshal.loads(wire, max_expansion=1 << 30)
    audit = AuditLog(tmp_path / "a.log", jsonfile=tmp_path / "a.jsonl")  # default budget
    assert audit.record(event(data=decoded)) is True
    assert (tmp_path / "a.log").read_text().endswith(CUT_MARK + "\n")
    assert CUT_MARK in (tmp_path / "a.jsonl").read_text()


def test_a_cycle_is_cut_not_a_crash(tmp_path: Path) -> None:
    cycle: list[Any] = [1]
    cycle.append(cycle)
    audit = AuditLog(tmp_path / "a.log", jsonfile=tmp_path / "a.jsonl")
    assert audit.record(event(data={Symbol("c"): cycle})) is True
    assert (tmp_path / "a.log").read_text().endswith(CUT_MARK + "\n")
    record = json.loads((tmp_path / "a.jsonl").read_text())
    assert record["data"]["c"][0] == 1 and CUT_MARK in json.dumps(record, ensure_ascii=False)


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (Budget(), {"a": [1, "xyz"], "b": None}),
        # the third value (the list's first item) is one too many
        (Budget(chars=100, nodes=2), {"a": [CUT_MARK]}),
        # {"a": [1, "xyz"]} is 17 characters of JSON: with 16, the "z" does not fit
        (Budget(chars=16, nodes=100), {"a": [1, "xy" + CUT_MARK]}),
        (Budget(chars=17, nodes=100), {"a": [1, "xyz"], "b": CUT_MARK}),
    ],
)
def test_json_data_is_cut_where_the_budget_runs_out(budget: Budget, expected: Any) -> None:
    assert json_data({Symbol("a"): [1, b"xyz"], "b": None}, budget) == expected


def test_control_characters_cannot_forge_lines(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.log", clock=lambda: NOW)
    audit.record(
        event(requestid="x\n[2026-01-01 00:00:00 UTC] reqid=forged", data={Symbol("m"): "a\nb"})
    )
    lines = (tmp_path / "a.log").read_text().splitlines()
    assert len(lines) == 1
    assert "reqid=x\\x0A[2026" in lines[0] and 'data={:m=>"a\\nb"}' in lines[0]


def test_from_request_takes_the_raw_data_hash() -> None:
    body = {
        Symbol("agent"): "rpcutil",
        Symbol("action"): AsciiString("get_fact"),
        Symbol("caller"): "uid=0",
        Symbol("data"): DATA,
    }
    req = Request("rpcutil", "mcollective", body, "client1", "0" * 32, "uid=0", 60, 1795692170)
    ev = AuditEvent.from_request(req, decision="denied", statuscode=1)
    assert (
        ev.requestid,
        ev.reqtime,
        ev.caller,
        ev.sender,
        ev.agent,
        ev.action,
        ev.data,
        ev.decision,
        ev.statuscode,
    ) == (
        "0" * 32,
        1795692170,
        "uid=0",
        "client1",
        "rpcutil",
        "get_fact",
        DATA,
        "denied",
        1,
    )
    assert (
        AuditEvent.from_request(
            Request("discovery", "m", "ping", "c", "0" * 32, "uid=0", 60, 1)
        ).action
        == ""
    )


def test_appends_only_and_creates_0640(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("earlier line\n")
    audit = AuditLog(path, clock=lambda: NOW)
    audit.record(event())
    assert path.read_text().startswith("earlier line\n[2026-11-26")
    fresh = tmp_path / "new.log"
    old = os.umask(0)
    try:
        AuditLog(fresh, clock=lambda: NOW).record(event())
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_concurrent_records_never_interleave(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.log", jsonfile=tmp_path / "a.jsonl", clock=lambda: NOW)
    big = {Symbol("blob"): "x" * 20000}

    def worker(i: int) -> None:
        for j in range(25):
            audit.record(event(requestid=f"{i:02d}{j:030d}", data=big))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "a.log").read_text().splitlines()
    assert len(lines) == 200 and all(
        line.endswith('"}') and line.count("reqid=") == 1 for line in lines
    )
    assert len([json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]) == 200


def test_unwritable_file_returns_false_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit = AuditLog(tmp_path / "missing-dir" / "a.log", clock=lambda: NOW)
    assert audit.record(event()) is False
    assert audit.record(event()) is False
    assert caplog.text.count("cannot append to the audit log") == 1


def test_from_config(tmp_path: Path) -> None:
    cfg_file = tmp_path / "server.cfg"
    cfg_file.write_text(
        f"plugin.rpcaudit.logfile = {tmp_path}/r.log\nplugin.rpcaudit.jsonfile = {tmp_path}/r.jsonl\nplugin.rpcaudit.redact = ssn, pin\n"
    )
    audit = AuditLog.from_config(
        config.load(str(cfg_file), role="server", env={}, home=str(tmp_path), system_dirs=())
    )
    assert (audit.logfile, audit.jsonfile) == (tmp_path / "r.log", tmp_path / "r.jsonl")
    assert {"ssn", "pin", "password", "psk"} <= audit.redact
    bare = tmp_path / "bare.cfg"
    bare.write_text("identity = n1\n")
    assert AuditLog.from_config(
        config.load(str(bare), role="server", env={}, home=str(tmp_path), system_dirs=())
    ).logfile == Path(DEFAULT_LOGFILE)


# ---------------------------------------------------------------- against Ruby's own plugin
RUBY_AUDIT = r"""
require "mcollective"
require "mcollective/audit/logfile"
$stdin.binmode
log = ARGV[0]
MCollective::Config.instance.instance_variable_set(:@pluginconf, {"rpcaudit.logfile" => log})
Req = Struct.new(:uniqid, :time, :caller, :sender, :agent, :action, :data)
Marshal.load($stdin.read).each do |r|
  MCollective::RPC::Logfile.new.audit_request(Req.new(*r), nil)
end
"""


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("ruby") is None, reason="needs ruby")
def test_lines_equal_rubys_logfile_plugin(tmp_path: Path) -> None:
    datas = [
        DATA,
        {},
        {
            Symbol("msg"): 'quote " and \\ and é and \n',
            Symbol("n"): 1.5,
            Symbol("list"): [None, False, 2**70],
            Symbol("h"): {"k": Symbol("v")},
        },
        {Symbol("process_results"): True, Symbol("weird name"): -0.0},
    ]
    rows = [
        ["id%d" % i, 1795692170 + i, "uid=0", "client1", "rpcutil", "get_fact", d]
        for i, d in enumerate(datas)
    ]
    ruby_log = tmp_path / "ruby.log"
    r = subprocess.run(
        ["ruby", "-I/usr/lib/ruby/vendor_ruby", "-e", RUBY_AUDIT, str(ruby_log)],
        input=marshal.dumps(rows),
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    ours = AuditLog(tmp_path / "ours.log", redact=(), clock=lambda: NOW)
    for row in rows:
        ours.record(AuditEvent(*row[:6], data=row[6]))
    strip = lambda text: [line.split("] ", 1)[1] for line in text.splitlines()]  # noqa: E731 - timestamps differ
    assert strip((tmp_path / "ours.log").read_text()) == strip(ruby_log.read_text())
    assert all(
        line.startswith("[20") and line[20:25] == " UTC]"
        for line in ruby_log.read_text().splitlines()
    )
