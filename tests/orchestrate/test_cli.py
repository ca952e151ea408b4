"""``mco-py deploy`` command line: argument shapes, exit codes, refusals before any network
work, status from a journal, and the plain-line progress view."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcollective_py.cli.deploy import normalize_argv
from mcollective_py.cli.deploy_view import ProgressView
from mcollective_py.cli.main import main
from mcollective_py.orchestrate.events import HookFanout
from mcollective_py.orchestrate.journal import StateDir, new_run_id
from mcollective_py.orchestrate.plan import Size, Strategy, make_plan
from mcollective_py.orchestrate.run import Executor
from tests.orchestrate.catalogs import catalog, catalog_doc
from tests.orchestrate.fakefleet import FakeFleet

NODES = ["web1", "web2", "web3", "web4"]


@pytest.fixture
def cat_file(tmp_path: Path) -> Path:
    p = tmp_path / "services.yaml"
    p.write_text(yaml.safe_dump(catalog_doc(4), sort_keys=False))
    return p


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_shorthand_is_run() -> None:
    assert normalize_argv(["deploy", "shop", "1.1.0", "--env", "lab"]) == [
        "deploy",
        "run",
        "shop",
        "1.1.0",
        "--env",
        "lab",
    ]
    assert normalize_argv(["deploy", "status"]) == ["deploy", "status"]
    assert normalize_argv(["deploy", "--help"]) == ["deploy", "--help"]
    assert normalize_argv(["rpc", "shop"]) == ["rpc", "shop"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], r"--steps sizes must be at least 1 or 1%, got '0'"),
        (["--max-unavailable", "100%"], r"would leave 0 server\(s\) online"),
        (["--canary", "x"], r"--canary must be a number of nodes or a percentage"),
        (["--settle", "-1"], r"--settle must be 0 to 86400 seconds, got -1.0"),
        (["--drain-timeout", "300"], r"--drain-timeout must be 1 to 290 seconds .*, got 300"),
    ],
)
def test_bad_strategy_exits_2_before_any_network_work(
    capsys: pytest.CaptureFixture[str],
    cat_file: Path,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    # -c names a config that does not exist: reaching the network step would exit 3
    code, out, err = run_cli(
        capsys,
        "deploy",
        "shop",
        "1.1.0",
        "--env",
        "lab",
        "--catalog",
        str(cat_file),
        "-c",
        str(tmp_path / "missing.cfg"),
        "--state-dir",
        str(tmp_path / "st"),
        "--yes",
        *args,
    )
    assert code == 2, err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "st").exists()  # nothing half-written


def test_unknown_service_and_version(
    capsys: pytest.CaptureFixture[str], cat_file: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli(
        capsys,
        "deploy",
        "plan",
        "nosuch",
        "1.1.0",
        "--env",
        "lab",
        "--catalog",
        str(cat_file),
        "--offline",
    )
    assert code == 2 and "unknown service 'nosuch'" in err and "(known: shop)" in err
    code, _, err = run_cli(
        capsys,
        "deploy",
        "plan",
        "shop",
        "9.0.0",
        "--env",
        "lab",
        "--catalog",
        str(cat_file),
        "--offline",
    )
    assert code == 2 and "unknown version '9.0.0' of shop (known: 1.0.0, 1.1.0, 1.2.0)" in err


def test_plan_offline_prints_the_plan(
    capsys: pytest.CaptureFixture[str], cat_file: Path, tmp_path: Path
) -> None:
    code, out, _ = run_cli(
        capsys,
        "deploy",
        "plan",
        "shop",
        "1.1.0",
        "--env",
        "lab",
        "--catalog",
        str(cat_file),
        "--offline",
        "--steps",
        "1,50%",
        "--canary",
        "1",
        "--hiera-dir",
        str(tmp_path / "nohiera"),
    )
    assert code == 0
    assert out.splitlines()[:10] == [
        "Deploy shop 1.1.0 to lab: 4 of 4 node(s), sha256 bbbbbbbbbbbb",
        "  artifact         http://127.0.12.2:8000/shop-1.1.0.tar.gz",
        "  load balancers   lb1 (backend shop)",
        "  capacity         floor 3 UP of 4 on every load balancer (max unavailable 1)",
        "  failure budget   0 node(s); settle 0 s; drain deadline 30 s",
        "  gates            version (service), health (http); deadline 30 s",
        "  canary           web1",
        "  step 1           web2",
        "  step 2           web3, web4",
        "  note             offline: live state not read",
    ]
    assert "Hiera diff: not shown (no hiera.yaml in" in out


def _fake_run(tmp_path: Path, **strategy: Any) -> tuple[str, Path]:
    plan = make_plan(catalog(4).service("shop"), "lab", "1.1.0", Strategy(**strategy))
    state = tmp_path / "state"
    rid = new_run_id("shop")
    Executor(
        plan, FakeFleet(NODES), StateDir(state), rid, caller="tester", sleep=lambda s: None
    ).run()
    return rid, state


def test_status_lists_runs_and_shows_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rid, state = _fake_run(tmp_path, canary=Size(1), pause_after_canary=True)
    code, out, _ = run_cli(capsys, "deploy", "status", "--state-dir", str(state))
    assert code == 0 and out == f"{rid:<40} shop 1.1.0 lab        paused\n"
    code, out, _ = run_cli(capsys, "deploy", "status", rid, "--state-dir", str(state))
    lines = out.splitlines()
    assert lines[0].startswith(f"Run {rid}: shop 1.1.0 in lab, by tester, started ")
    assert lines[1:6] == [
        "  outcome  paused",
        "  web1                     done",
        "  web2                     pending",
        "  web3                     pending",
        "  web4                     pending",
    ]
    code, out, _ = run_cli(capsys, "deploy", "status", rid, "--json", "--state-dir", str(state))
    doc = json.loads(out)
    assert doc["summary"]["outcome"] == "paused" and doc["records"][0]["kind"] == "lease"
    code, _, err = run_cli(capsys, "deploy", "status", "nosuch", "--state-dir", str(state))
    assert code == 2 and "no journal at" in err and "nosuch.jsonl" in err
    code, _, err = run_cli(capsys, "deploy", "status", "../etc", "--state-dir", str(state))
    assert code == 2 and "invalid run id '../etc'" in err


def test_a_new_run_is_refused_while_one_is_unfinished(
    capsys: pytest.CaptureFixture[str], cat_file: Path, tmp_path: Path
) -> None:
    rid, state = _fake_run(tmp_path, canary=Size(1), pause_after_canary=True)
    code, _, err = run_cli(
        capsys,
        "deploy",
        "shop",
        "1.1.0",
        "--env",
        "lab",
        "--catalog",
        str(cat_file),
        "--state-dir",
        str(state),
        "-c",
        str(tmp_path / "missing.cfg"),
        "--yes",
    )
    assert code == 2
    assert f"shop in lab is locked by run {rid}" in err and "which is paused" in err


def test_resume_of_an_ended_run_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rid, state = _fake_run(tmp_path)
    code, _, err = run_cli(capsys, "deploy", "resume", rid, "--state-dir", str(state))
    assert code == 2 and f"run {rid} has ended (done); nothing to resume" in err


def test_progress_view_plain_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    view = ProgressView(out, live=False)
    plan = make_plan(catalog(2).service("shop"), "lab", "1.1.0", Strategy())
    fleet = FakeFleet(["web1", "web2"])
    fleet.node("web2")["bad"] = ["1.1.0"]
    Executor(
        plan,
        fleet,
        StateDir(tmp_path),
        new_run_id("shop"),
        HookFanout([view]),
        sleep=lambda s: None,
    ).run()
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines[1:12] == [
        "preflight: 3 node(s) answered",
        "step 1: web1",
        "web1 prefetch",
        "web1 drain",
        "web1 activate",
        "web1 verify",
        "web1 gate",
        "web1 gate version (service) ok",
        "web1 gate health (http) ok",
        "web1 online",
        "web1 done",
    ]
    assert "web2 gate version (service) failed: version 1.1.0, expected 1.1.0" in lines
    assert lines[-1].startswith("run failed: 1 failed node(s), more than the failure budget of 0")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_view_live_rewrites_one_status_line(tmp_path: Path) -> None:
    out = _Tty()
    view = ProgressView(out, live=True)
    plan = make_plan(catalog(2).service("shop"), "lab", "1.1.0", Strategy())
    hooks = HookFanout([view])
    Executor(
        plan,
        FakeFleet(["web1", "web2"]),
        StateDir(tmp_path),
        new_run_id("shop"),
        hooks,
        sleep=lambda s: None,
    ).run()
    hooks.close()
    text = out.getvalue()
    assert "\r\x1b[K[step 1] web1: drain ..." in text  # rewritten in place, not a new line
    assert "\r\x1b[K[step 1] web1 gate health (http) ok" in text
    lines = [line.rsplit("\r\x1b[K", 1)[-1] for line in text.split("\n") if line]
    assert [line.split(" ", 1)[1] for line in lines if line.endswith(" done")] == [
        "web1 done",
        "web2 done",
        "run done",  # on a line of its own: the status line was cleared first
    ]
    assert "web1 drain\n" not in text  # states in flight are not printed as lines on a tty


class _Client:
    class connector:  # noqa: N801 - what the command closes
        @staticmethod
        def close() -> None:
            return None


def test_run_feeds_the_configured_subscribers_and_warns_about_a_failing_one(
    capsys: pytest.CaptureFixture[str],
    cat_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = FakeFleet(NODES)
    monkeypatch.setattr("mcollective_py.cli.deploy._fleet", lambda args: (fleet, _Client()))
    cfg = tmp_path / "client.cfg"
    cfg.write_text(
        f"plugin.deploy_events.jsonlog.path = {tmp_path}/events-{{run_id}}.jsonl\n"
        f"plugin.deploy_events.junit.path = {tmp_path}/junit-{{run_id}}.xml\n"
        # nothing listens there: the subscriber fails, the run goes on
        "plugin.deploy_events.graphite.address = 127.0.16.250:9\n"
    )
    state = tmp_path / "state"
    argv = ["deploy", "shop", "1.1.0", "--env", "lab", "--catalog", str(cat_file)]
    argv += ["--state-dir", str(state), "-c", str(cfg), "--yes", "--run-id", "ci-42"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, out + err
    assert "Run ci-42\n" in out and "Run ci-42: done" in out
    lines = (tmp_path / "events-ci-42.jsonl").read_text().splitlines()
    assert len(lines) > 20 and all(json.loads(line)["correlation_id"] == "ci-42" for line in lines)
    assert (tmp_path / "junit-ci-42.xml").read_text().startswith("<?xml")
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert (
        warnings[0].startswith("mco-py deploy: warning: subscriber GraphiteSubscriber failed ")
        and "the run went on; first: ConnectionRefusedError" in warnings[0]
    )
    # the same run id again is refused before anything moves
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "run ci-42 exists already" in err
    # the report finds the run in the same state dir
    code, out, err = run_cli(
        capsys,
        "deploy",
        "report",
        "ci-42",
        "--state-dir",
        str(state),
        "-o",
        str(tmp_path / "r.html"),
    )
    assert code == 0, err
    assert out.startswith(f"report of run ci-42: {tmp_path / 'r.html'} (")


def test_report_defaults_to_the_drivers_state_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCO_PY_STATE_DIR", str(tmp_path / "st"))
    code, _, err = run_cli(capsys, "deploy", "report", "nosuch-run")
    assert code == 2
    assert f"{tmp_path / 'st' / 'runs' / 'nosuch-run.jsonl'} does not exist" in err


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("plugin.deploy_events.bogus = 1\n", "plugin.deploy_events.bogus: unknown key"),
        ("plugin.deploy_events.graphite.address = nope\n", "use HOST:PORT"),
    ],
)
def test_bad_subscriber_settings_are_refused_before_the_network(
    capsys: pytest.CaptureFixture[str],
    cat_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lines: str,
    message: str,
) -> None:
    def no_network(args: Any) -> Any:
        raise AssertionError("reached the network")

    monkeypatch.setattr("mcollective_py.cli.deploy._fleet", no_network)
    cfg = tmp_path / "client.cfg"
    cfg.write_text(lines)
    code, _, err = run_cli(
        capsys,
        "deploy",
        "shop",
        "1.1.0",
        "--env",
        "lab",
        "--catalog",
        str(cat_file),
        "--state-dir",
        str(tmp_path / "state"),
        "-c",
        str(cfg),
        "--yes",
    )
    assert code == 3 and message in err


def test_a_bad_run_id_is_refused(
    capsys: pytest.CaptureFixture[str], cat_file: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli(
        capsys,
        "deploy",
        "shop",
        "1.1.0",
        "--env",
        "lab",
        "--catalog",
        str(cat_file),
        "--state-dir",
        str(tmp_path / "state"),
        "--run-id",
        "../x",
        "--yes",
    )
    assert code == 2 and "--run-id '../x': use 1 to 128 letters" in err


def test_resume_feeds_the_subscribers_of_the_same_run(
    capsys: pytest.CaptureFixture[str],
    cat_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = FakeFleet(NODES)
    monkeypatch.setattr("mcollective_py.cli.deploy._fleet", lambda args: (fleet, _Client()))
    cfg = tmp_path / "client.cfg"
    cfg.write_text(f"plugin.deploy_events.jsonlog.path = {tmp_path}/events.jsonl\n")
    state = str(tmp_path / "state")
    code, out, err = run_cli(
        capsys,
        "deploy",
        "shop",
        "1.1.0",
        "--env",
        "lab",
        "--catalog",
        str(cat_file),
        "--state-dir",
        state,
        "-c",
        str(cfg),
        "--yes",
        "--canary",
        "1",
        "--pause-after-canary",
        "--run-id",
        "ci-7",
    )
    assert code == 4, out + err
    code, out, err = run_cli(
        capsys,
        "deploy",
        "resume",
        "ci-7",
        "--approver",
        "carol",
        "--state-dir",
        state,
        "-c",
        str(cfg),
    )
    assert code == 0, out + err
    events = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds.count("run_start") == 1 and kinds.count("paused") == 1
    assert kinds.count("run_end") == 1 and kinds[-1] == "run_end"
    assert {e["correlation_id"] for e in events} == {"ci-7"}
    resumed = next(e for e in events if e["kind"] == "resumed")
    assert resumed["approver"] == "carol" and events[-1]["approver"] == "carol"
