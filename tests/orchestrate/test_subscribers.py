"""The subscribers on golden run journals (tests/golden/orchestrate/journals/): JSON lines,
Graphite lines, Nagios commands, JUnit XML (checked against the schema Jenkins reads), the
run report, settings, and the report CLI module."""

from __future__ import annotations

import argparse
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from mcollective_py.cli.common import Terminal
from mcollective_py.cli.deploy_report import register_report
from mcollective_py.cli.deploy_report import run as report_cli
from mcollective_py.errors import ConfigError, UsageError
from mcollective_py.orchestrate.events import DeployEvent, HookFanout
from mcollective_py.orchestrate.subscribers import (
    GraphiteSubscriber,
    JsonLogSubscriber,
    JUnitSubscriber,
    NagiosSubscriber,
    ReportSubscriber,
    SubscriberSettings,
    build_subscribers,
    events_from_journal,
    read_load_samples,
    render_junit,
    render_report,
)
from mcollective_py.orchestrate.subscribers.graphite import metric_lines
from mcollective_py.orchestrate.subscribers.nagios import delete_command, schedule_commands
from tests.orchestrate.subscribers_fixtures import GOLDEN, JOURNALS, journal

NAMES = sorted(p.stem for p in JOURNALS.glob("*.jsonl"))
SCHEMA = xmlschema.XMLSchema(GOLDEN / "junit.xsd")
RUN = "20261204T140500Z-shop-7f3a"


def test_the_golden_journals_look_like_real_runs() -> None:
    assert NAMES == ["all_done_with_post", "gate_fails_in_step2", "pre_migration_fails"]
    events = journal("gate_fails_in_step2")
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert {e.node for e in events if e.node and e.kind == "node_state"} == {
        f"web{i}.staging" for i in range(1, 5)
    }
    assert {e.lb for e in events if e.lb} == {"lb1.staging", "lb2.staging"}
    assert sorted({e.step for e in events if e.kind == "step_start"}) == [0, 1, 2]
    assert [e.outcome for e in events if e.kind == "gate"].count("failed") == 1
    assert "rollback" in kinds and "migration" in kinds


# ---------------------------------------------------------------------------- reading journals


def test_journal_reading_skips_other_records_and_bad_lines() -> None:
    good = json.dumps(journal("pre_migration_fails")[0].to_dict())
    lines = [
        good,
        '{"record": "lease", "holder": "ci1"}',  # another record kind of the driver
        '{"kind": "checkpoint", "run_id": "x"}',  # a kind this version does not know
        "{not json",
        "[1, 2]",
        '{"kind": "gate"}',  # required fields missing
        good.replace('"time": 1796391000.0', '"time": NaN'),  # Python's json reads NaN
        "x" * 70_000,
        "",
        good,
    ]
    read = events_from_journal(lines)
    assert [e.kind for e in read.events] == ["run_start", "run_start"]
    assert read.skipped == 7


def test_a_golden_journal_reads_back_every_event() -> None:
    with open(JOURNALS / "gate_fails_in_step2.jsonl", encoding="utf-8") as f:
        read = events_from_journal(f)
    assert (len(read.events), read.skipped) == (63, 1)  # the lease record of the driver


# ---------------------------------------------------------------------------- JSON lines


@pytest.mark.parametrize("name", NAMES)
def test_every_json_line_carries_the_run_and_the_audit_fields(name: str) -> None:
    events = journal(name)
    out = io.StringIO()
    sub = JsonLogSubscriber(stream=out)
    for e in events:
        sub.on_event(e)
    sub.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == len(events)
    for line, event in zip(lines, events, strict=True):
        record = json.loads(line)
        assert record["correlation_id"] == record["run_id"] == event.run_id
        for key in (
            "service",
            "environment",
            "version",
            "artifact_sha256",
            "step",
            "node",
            "lb",
            "outcome",
            "duration",
            "caller",
            "approver",
            "kind",
            "@timestamp",
        ):
            assert key in record, key
        assert record["artifact_sha256"] and record["caller"] == "cert=deployer"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", record["@timestamp"])


def test_the_approver_is_on_every_line_after_the_approval() -> None:
    out = io.StringIO()
    sub = JsonLogSubscriber(stream=out)
    for e in journal("gate_fails_in_step2"):
        sub.on_event(e)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    approved_at = next(i for i, r in enumerate(records) if r["kind"] == "resumed")
    assert all(r["approver"] is None for r in records[:approved_at])
    assert all(r["approver"] == "alice" for r in records[approved_at:])
    failed_gate = next(r for r in records if r["kind"] == "gate" and r["outcome"] == "failed")
    assert failed_gate == {
        "@timestamp": failed_gate["@timestamp"],
        "approver": "alice",
        "artifact_sha256": "eebaaead9ab129904f8af45f5a7dc74aa07014555b072fdbee069066ccd53a12",
        "caller": "cert=deployer",
        "correlation_id": RUN,
        "detail": {
            "check": "http GET /health",
            "output": "HTTP 503 from http://127.0.0.14:8081/health: database pool exhausted",
        },
        "duration": 1.2,
        "environment": "staging",
        "kind": "gate",
        "lb": None,
        "node": "web4.staging",
        "outcome": "failed",
        "run_id": RUN,
        "service": "shop",
        "state": None,
        "step": 2,
        "time": failed_gate["time"],
        "version": "1.5.0",
    }


def test_json_lines_are_appended_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "deploys.jsonl"
    path.parent.mkdir()
    path.write_text('{"earlier": true}\n')
    sub = JsonLogSubscriber(path)
    events = journal("pre_migration_fails")
    for e in events:
        sub.on_event(e)
    sub.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + len(events) == 5
    assert json.loads(lines[0]) == {"earlier": True}


# ---------------------------------------------------------------------------- Graphite lines


def test_graphite_lines_of_a_run() -> None:
    counts: dict[str, int] = {}
    lines = [
        line for e in journal("gate_fails_in_step2") for line in metric_lines(e, "deploys", counts)
    ]
    names = [line.split()[0] for line in lines]
    base = "deploys.shop.staging."
    assert names[0] == base + "events.deploy_start"
    assert names[-3:] == [
        base + "events.deploy_end",
        base + "run.outcome.failed",
        base + "run.duration",
    ]
    assert names.count(base + "node.web4_staging.drain_seconds") == 2  # one per LB
    assert [line.split()[1] for line in lines if line.startswith(base + "nodes.done ")] == [
        "1",
        "2",
        "3",
    ]
    assert [line.split()[1] for line in lines if line.startswith(base + "nodes.failed ")] == ["1"]
    assert {n for n in names if ".step." in n} == {
        base + "step.canary.duration",
        base + "step.step_1.duration",
        base + "step.step_2.duration",
    }
    assert base + "migration.pre.duration" in names
    for line in lines:
        path, value, ts = line.split(" ")
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", path)
        float(value)
        assert ts.isdigit()


def test_graphite_keeps_lines_while_carbon_is_away() -> None:
    sub = GraphiteSubscriber("127.0.13.1", 9, prefix="deploys", timeout=0.5)  # nothing listens
    fan = HookFanout([sub])
    for e in journal("pre_migration_fails"):
        fan.on_event(e)
    assert sub.sent == 0 and len(sub.pending) == 5
    assert fan.errors and fan.errors[0][0] == "GraphiteSubscriber"


# ---------------------------------------------------------------------------- Nagios commands


class _RecordingNagios(NagiosSubscriber):
    def _write(self, commands: list[str], at: int) -> None:
        self.written.extend(f"[{at}] {c}" for c in commands)


def test_nagios_downtime_while_a_node_is_out_of_every_pool() -> None:
    sub = _RecordingNagios("/unused", service="shop", downtime=900)
    for e in journal("gate_fails_in_step2"):
        sub.on_event(e)
    kinds = [c.split("] ")[1].split(";")[0] for c in sub.written]
    assert (
        kinds
        == ["SCHEDULE_HOST_DOWNTIME", "SCHEDULE_SVC_DOWNTIME", "DEL_DOWNTIME_BY_START_TIME_COMMENT"]
        * 4
    )
    first = sub.written[0]
    at, command = first[1:].split("] ")
    assert command == (
        f"SCHEDULE_HOST_DOWNTIME;web1.staging;{at};{int(at) + 900};1;0;900;mco-py;"
        f"mco-py deploy {RUN}: web1.staging out of the pool"
    )
    assert sub.written[2].endswith(
        f"DEL_DOWNTIME_BY_START_TIME_COMMENT;{at};mco-py deploy {RUN}: web1.staging out of the pool"
    )
    # deleted only when back in both pools: at the second "online", not the first
    events = journal("gate_fails_in_step2")
    online = [
        e
        for e in events
        if e.kind == "node_state" and e.node == "web1.staging" and e.state == "online"
    ]
    assert sub.written[2].startswith(f"[{int(online[1].time)}]")
    assert sub.out_of_pool == {}


def test_nagios_refuses_names_that_would_break_a_command() -> None:
    with pytest.raises(
        ValueError, match=r"host name 'web1;DEL_ALL' cannot go into a Nagios command"
    ):
        schedule_commands("web1;DEL_ALL", None, 1, 60, "mco-py", "c")
    with pytest.raises(ValueError, match="comment"):
        delete_command(1, "two\nlines")


def test_nagios_without_its_command_file_says_so(tmp_path: Path) -> None:
    sub = NagiosSubscriber(tmp_path / "nagios.cmd")
    fan = HookFanout([sub])
    for e in journal("gate_fails_in_step2")[:5]:
        fan.on_event(e)
    assert fan.errors[0][1].startswith(
        f"FileNotFoundError: Nagios command file {tmp_path / 'nagios.cmd'} does not exist"
    )


# ---------------------------------------------------------------------------- JUnit


@pytest.mark.parametrize("name", NAMES)
def test_junit_validates_against_the_schema_jenkins_reads(name: str) -> None:
    SCHEMA.validate(render_junit(journal(name)))


@pytest.mark.parametrize(
    ("name", "totals"),
    [
        ("gate_fails_in_step2", {"tests": "5", "failures": "1", "errors": "0", "skipped": "0"}),
        ("all_done_with_post", {"tests": "6", "failures": "0", "errors": "0", "skipped": "0"}),
        ("pre_migration_fails", {"tests": "5", "failures": "1", "errors": "0", "skipped": "4"}),
    ],
)
def test_junit_counts(name: str, totals: dict[str, str]) -> None:
    root = ET.fromstring(render_junit(journal(name)))
    assert {k: root.get(k) for k in totals} == totals


def test_junit_one_case_per_node_per_step_and_the_failure_carries_the_gate_output() -> None:
    root = ET.fromstring(render_junit(journal("gate_fails_in_step2")))
    cases = [
        (c.get("classname"), c.get("name"))
        for c in root.iter("testcase")
        if c.get("classname") != "deploy.shop.staging.migrations"
    ]
    assert cases == [
        ("deploy.shop.staging.canary", "web1.staging"),
        ("deploy.shop.staging.step1", "web2.staging"),
        ("deploy.shop.staging.step1", "web3.staging"),
        ("deploy.shop.staging.step2", "web4.staging"),
    ]
    failure = next(root.iter("failure"))
    assert failure.get("message") == "gate http GET /health failed on web4.staging"
    assert failure.text == "HTTP 503 from http://127.0.0.14:8081/health: database pool exhausted"
    props = {p.get("name"): p.get("value") for p in next(root.iter("properties"))}
    assert props["approver"] == "alice" and props["run_id"] == RUN


@pytest.mark.parametrize(
    "broken",
    [
        '<testsuites><testsuite tests="1"><testcase name="a"/></testsuite></testsuites>',  # no name
        '<testsuite name="s" tests="1"><testcase name="a" time="1,5"/></testsuite>',
        '<testsuite name="s" tests="1"><testcase name="a"><failure/><skipped/></testcase></testsuite>',
        '<testsuite name="s" tests="1" timestamp="2026-12-04T14:05:00Z"><testcase name="a"/></testsuite>',
        '<testsuite name="s" tests="1"><testcase><system-out/></testcase></testsuite>',
    ],
)
def test_the_schema_refuses_what_jenkins_cannot_read(broken: str) -> None:
    assert not SCHEMA.is_valid(broken)


def test_the_junit_subscriber_writes_at_close(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    sub = JUnitSubscriber(path)
    for e in journal("all_done_with_post"):
        sub.on_event(e)
    assert not path.exists()
    sub.close()
    SCHEMA.validate(str(path))


# ---------------------------------------------------------------------------- report


@pytest.mark.parametrize("name", NAMES)
def test_the_report_is_self_contained(name: str) -> None:
    page = render_report(journal(name))
    assert page.startswith("<!DOCTYPE html>")
    for fetching in ("src=", "href=", "url(", "@import", "<script", "<link", "<img", "<iframe"):
        assert fetching not in page.lower(), fetching
    assert '<svg class="timeline"' in page


def test_the_report_shows_the_run() -> None:
    samples = read_load_samples((JOURNALS / "gate_fails_in_step2.load.csv").read_text())
    page = render_report(journal("gate_fails_in_step2"), samples)
    assert "<title>deploy shop 1.5.0 to staging</title>" in page
    for text in (
        RUN,
        "alice",
        "cert=deployer",
        "eebaaead9ab129904f8af45f5a7dc74aa07014555b072fdbee069066ccd53a12",
    ):
        assert text in page
    assert page.count('<path class="capacity"') == 2  # one per load balancer
    assert 'class="requests"' in page and 'class="errors"' in page
    assert page.count('class="step"') == 3
    assert "✕ gate failed: web4.staging" in page
    assert "paused; approved by alice" in page
    assert "pre migration" in page
    assert page.count('<rect class="node ') == 4
    assert "database pool exhausted" in page


def test_a_gates_retries_draw_lines_but_one_label() -> None:
    events = journal("gate_fails_in_step2")
    failed = next(e for e in events if e.kind == "gate" and e.outcome == "failed")
    retries = [DeployEvent.from_dict({**failed.to_dict(), "time": failed.time + k}) for k in (1, 2)]
    at = events.index(failed) + 1
    page = render_report([*events[:at], *retries, *events[at:]])
    assert page.count('class="failure"') == 3  # a line per failed attempt
    assert page.count("✕ gate failed: web4.staging") == 1  # one label, with the count
    assert "✕ gate failed: web4.staging (×3)" in page


@pytest.mark.parametrize(
    ("name", "touched"),
    [("pre_migration_fails", "0 of 4"), ("gate_fails_in_step2", "4 of 4")],
)
def test_the_report_says_how_many_nodes_were_touched(name: str, touched: str) -> None:
    page = render_report(journal(name))
    assert f"<tr><th>nodes touched</th><td><code>{touched}</code></td></tr>" in page


def test_the_report_escapes_what_the_journal_says() -> None:
    events = list(journal("pre_migration_fails"))
    events[2] = DeployEvent.from_dict(
        {**events[2].to_dict(), "detail": {"phase": "pre", "output": "<script>alert(1)</script>"}}
    )
    page = render_report(events)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_report_survives_hostile_detail_values() -> None:
    events = [
        DeployEvent.from_dict(
            {**e.to_dict(), "detail": {"online": "many", "total": None, "floor": float("nan")}}
        )
        if e.kind == "capacity"
        else e
        for e in journal("gate_fails_in_step2")
    ]
    assert '<svg class="timeline"' in render_report(events)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,requests,errors\n1,2,3\n", "the first line must be the header time,requests,errors"),
        ("time,requests,errors\n1,2\n", "line 2: '1,2' is not three numbers"),
        ("time,requests,errors\n1,x,3\n", "line 2: '1,x,3' is not three numbers"),
        ("time,requests,errors\n1,-2,3\n", "line 2: values must be finite and >= 0"),
    ],
)
def test_bad_load_samples_are_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        read_load_samples(text)


def test_the_report_subscriber_writes_at_close(tmp_path: Path) -> None:
    sub = ReportSubscriber(tmp_path / "r.html", JOURNALS / "gate_fails_in_step2.load.csv")
    for e in journal("gate_fails_in_step2"):
        sub.on_event(e)
    sub.close()
    assert 'class="requests"' in (tmp_path / "r.html").read_text()


# ---------------------------------------------------------------------------- settings


def test_settings_turn_subscribers_on() -> None:
    settings = SubscriberSettings.from_plugin(
        {
            "jsonlog.path": "/var/log/mco-py/deploys.jsonl",
            "graphite.address": "127.0.13.20:2003",
            "graphite.prefix": "ops.deploys",
            "nagios.command_file": "/var/lib/nagios4/rw/nagios.cmd",
            "nagios.service": "shop",
            "nagios.downtime": "900",
            "junit.path": "out/deploy-{run_id}.xml",
            "report.path": "out/{run_id}.html",
        }
    )
    assert settings.graphite_address == ("127.0.13.20", 2003)
    subs = build_subscribers(settings, run_id="R1")
    assert [type(s).__name__ for s in subs] == [
        "JsonLogSubscriber",
        "GraphiteSubscriber",
        "NagiosSubscriber",
        "JUnitSubscriber",
        "ReportSubscriber",
    ]
    assert subs[3].path == Path("out/deploy-R1.xml")  # type: ignore[attr-defined]
    assert subs[2].downtime == 900  # type: ignore[attr-defined]
    assert build_subscribers(SubscriberSettings.from_plugin({})) == []


def test_bad_settings_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        SubscriberSettings.from_plugin(
            {
                "graphite.address": "carbon",
                "graphite.prefix": "a..b",
                "nagios.downtime": "5",
                "nagios.service": "shop;x",
                "junit.file": "x.xml",
            }
        )
    assert str(info.value) == (
        "bad deploy event settings:\n"
        "  plugin.deploy_events.junit.file: unknown key; known keys: jsonlog.path, "
        "graphite.address, graphite.prefix, nagios.command_file, nagios.service, nagios.downtime, "
        "nagios.author, junit.path, report.path, report.load_samples\n"
        "  plugin.deploy_events.graphite.address = 'carbon': use HOST:PORT, e.g. 127.0.0.1:2003\n"
        "  plugin.deploy_events.graphite.prefix = 'a..b': use dot-separated letters, digits, _ "
        "and -, e.g. deploys or ops.deploys\n"
        "  plugin.deploy_events.nagios.downtime = '5': use whole seconds from 60 to 604800\n"
        "  plugin.deploy_events.nagios.service = 'shop;x': no ';' or control characters"
    )
    assert info.value.exit_code == 3


# ---------------------------------------------------------------------------- CLI module


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mco-py deploy")
    register_report(parser.add_subparsers(dest="deploy_command"))
    return parser.parse_args(["report", *argv])


def test_the_report_command_writes_the_page_and_junit(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / f"{RUN}.jsonl").write_bytes((JOURNALS / "gate_fails_in_step2.jsonl").read_bytes())
    out, err = io.StringIO(), io.StringIO()
    args = _args(
        RUN,
        "--state-dir",
        str(tmp_path),
        "-o",
        str(tmp_path / "report.html"),
        "--junit",
        str(tmp_path / "junit.xml"),
        "--load-samples",
        str(JOURNALS / "gate_fails_in_step2.load.csv"),
    )
    assert report_cli(args, Terminal(out, err)) == 0
    assert out.getvalue() == (
        f"report of run {RUN}: {tmp_path / 'report.html'} (63 events, 1 other records skipped)\n"
        f"JUnit XML: {tmp_path / 'junit.xml'}\n"
    )
    assert 'class="errors"' in (tmp_path / "report.html").read_text()
    SCHEMA.validate(str(tmp_path / "junit.xml"))


def test_the_report_command_refuses_unknown_runs_and_writes_nothing(tmp_path: Path) -> None:
    term = Terminal(io.StringIO(), io.StringIO())
    with pytest.raises(UsageError, match=r"\Ano journal for run 'r1': .*r1\.jsonl does not exist"):
        report_cli(_args("r1", "--state-dir", str(tmp_path), "-o", str(tmp_path / "x.html")), term)
    bad = tmp_path / "not-a-journal.jsonl"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(UsageError, match=r"holds no deploy events \(1 other lines\)"):
        report_cli(_args(str(bad), "-o", str(tmp_path / "x.html")), term)
    with pytest.raises(UsageError, match="is not three numbers"):
        samples = tmp_path / "load.csv"
        samples.write_text("time,requests,errors\nnope\n")
        report_cli(
            _args(
                str(JOURNALS / "gate_fails_in_step2.jsonl"),
                "-o",
                str(tmp_path / "x.html"),
                "--load-samples",
                str(samples),
            ),
            term,
        )
    assert not (tmp_path / "x.html").exists()


def test_settings_come_from_the_client_config_file(tmp_path: Path) -> None:
    from mcollective_py import config

    cfg_file = tmp_path / "client.cfg"
    cfg_file.write_text(
        "connector = rabbitmq\n"
        f"plugin.deploy_events.jsonlog.path = {tmp_path}/deploys.jsonl\n"
        "plugin.deploy_events.graphite.address = 127.0.13.20:2003\n"
        "plugin.deploy_events.report.path = reports/{run_id}.html\n"
    )
    cfg = config.load(str(cfg_file), env={}, home=str(tmp_path), system_dirs=())
    settings = SubscriberSettings.from_plugin(cfg.plugin("deploy_events"))
    assert settings == SubscriberSettings(
        jsonlog_path=f"{tmp_path}/deploys.jsonl",
        graphite_address=("127.0.13.20", 2003),
        report_path="reports/{run_id}.html",
    )


def test_the_online_lane_dips_while_a_node_is_out_of_the_pool() -> None:
    """The driver reads capacity before each drain; between readings the lane follows the
    nodes' drain/online states (for this load balancer, or for every one when none is named)."""
    from mcollective_py.orchestrate.subscribers.report import _online_steps
    from mcollective_py.orchestrate.subscribers.runview import fold

    base = {k: v for k, v in journal("all_done_with_post")[0].to_dict().items()}

    def ev(t: float, kind: str, **kw: object) -> DeployEvent:
        return DeployEvent.from_dict({**base, "kind": kind, "time": t, "detail": {}, **kw})

    cap = {"backend": "shop", "floor": 2, "total": 4}
    events = [
        ev(100.0, "run_start"),
        ev(101.0, "capacity", lb="lb1", node="web1", detail={**cap, "online": 4}),
        ev(101.1, "node_state", lb="lb1", node="web1", state="drain"),
        ev(101.2, "node_state", lb="lb2", node="web1", state="drain"),  # other LB: ignored
        ev(104.0, "node_state", lb="lb1", node="web1", state="online"),
        ev(105.0, "capacity", lb="lb1", node="web2", detail={**cap, "online": 4}),
        ev(105.1, "node_state", lb=None, node="web2", state="drain"),  # every LB
        ev(108.0, "node_state", lb=None, node="web2", state="online"),
    ]
    view = fold(events)
    steps = _online_steps(view, "lb1", view.capacity, 4)
    assert steps == [(101.0, 4), (101.1, 3), (104.0, 4), (105.0, 4), (105.1, 3), (108.0, 4)]
    page = render_report(events)
    path = re.search(r'<path class="capacity" d="([^"]+)"', page)
    assert path is not None and len(set(re.findall(r"V([0-9.]+)", path.group(1)))) == 2
