"""Pure parts of the deploy agent against golden data: archive safety, restart plans
(including the Windows ones, which cannot run here), sc.exe output, cleanup, Puppet summaries,
plus the layout's link switching."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from mcollective_py.agents import artifacts, extraction, puppet_run, releases
from mcollective_py.agents import service_managers as sm
from mcollective_py.agents.deploy import Deploy
from mcollective_py.agents.process import CommandResult
from tests.agents_py.conftest import call, golden_cases, load_case, make_agent

_TAR_KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "other": tarfile.CHRTYPE,
}


@pytest.mark.parametrize("path", golden_cases("archive_members"), ids=lambda p: p.stem)
def test_archive_members(path: Path, tmp_path: Path) -> None:
    """Each case's entries become a real tar; the extractor unpacks it or names the rule."""
    case = load_case(path)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, link in case["entries"]:
            info = tarfile.TarInfo(name)
            info.type = _TAR_KINDS[kind]
            info.linkname = link
            data = b"x\n" if kind == "file" else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "a.tar"
    archive.write_bytes(raw.getvalue())
    dest = tmp_path / "release"
    dest.mkdir()
    if case["error"] is None:
        assert extraction.extract(archive, dest) == len(case["entries"])
    else:
        with pytest.raises(extraction.UnsafeArchive, match=case["error"]):
            extraction.extract(archive, dest)


@pytest.mark.parametrize("path", golden_cases("restart_plan"), ids=lambda p: p.stem)
def test_restart_plan(path: Path) -> None:
    case = load_case(path)
    kwargs = {"values": case.get("values", {}), **case.get("options", {})}
    if "error" in case:
        with pytest.raises(ValueError, match=case["error"]):
            sm.restart_plan(case["kind"], case["unit"], **kwargs)
        return
    plan = sm.restart_plan(case["kind"], case["unit"], **kwargs)
    assert [
        {"argv": list(s.argv), "ok_exit": list(s.ok_exit), "until": s.until} for s in plan
    ] == case["expected"]


@pytest.mark.parametrize("path", golden_cases("sc_query"), ids=lambda p: p.stem)
def test_sc_query_state(path: Path) -> None:
    case = load_case(path)
    assert sm.sc_state(case["output"]) == case["state"]


@pytest.mark.parametrize("path", golden_cases("cleanup"), ids=lambda p: p.stem)
def test_cleanup_plan(path: Path) -> None:
    case = load_case(path)
    args = (case["versions"], case["current"], case["previous"], case["keep"])
    if "error" in case:
        with pytest.raises(ValueError, match=case["error"]):
            releases.plan_cleanup(*args)
        return
    assert releases.plan_cleanup(*args) == (case["kept"], case["removed"])


@pytest.mark.parametrize("path", golden_cases("puppet_summary"), ids=lambda p: p.stem)
def test_puppet_summary(path: Path) -> None:
    case = load_case(path)
    if "error" in case:
        with pytest.raises(puppet_run.SummaryError, match=case["error"]):
            puppet_run.parse_summary(case["yaml"])
        return
    summary = puppet_run.parse_summary(case["yaml"])
    assert {**summary.as_reply(), "changed": summary.changed, "failed": summary.failed} == case[
        "expected"
    ]


def test_puppet_command_line_keeps_request_values_as_single_arguments() -> None:
    argv = puppet_run.apply_argv(
        "/etc/puppet/site.pp",
        lastrunfile="/var/x/summary.yaml",
        extra_args="--modulepath=/m --hiera_config='/etc/hiera x.yaml'",
        noop=True,
        tags="app_release,haproxy_pools",
    )
    assert argv == [
        "puppet",
        "apply",
        "--detailed-exitcodes",
        "--color=false",
        "--modulepath=/m",
        "--hiera_config=/etc/hiera x.yaml",
        "--lastrunfile=/var/x/summary.yaml",
        "--noop",
        "--tags=app_release,haproxy_pools",
        "/etc/puppet/site.pp",
    ]
    assert puppet_run.release_facts("shop", "1.4.2") == {
        "FACTER_app": "shop",
        "FACTER_app_version": "1.4.2",
    }


# --------------------------------------------------------------------------- executing plans


class ScriptedWindows:
    """Answers sc.exe like a Windows host would, from a script of (exit, state) per call."""

    def __init__(self, script: list[tuple[int, str | None]]) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], left: float) -> CommandResult:
        self.calls.append(tuple(argv))
        code, state = self.script.pop(0)
        out = (
            f"SERVICE_NAME: ShopSvc\r\n        STATE              : 1  {state} \r\n"
            if state
            else "[SC] StartService FAILED 1058:\r\n"
        )
        return CommandResult(tuple(argv), code, out, 0.01, False)


def test_windows_restart_waits_for_stopped_then_running() -> None:
    plan = sm.restart_plan("windows", "ShopSvc")
    runner = ScriptedWindows(
        [
            (0, "STOP_PENDING"),
            (0, "STOP_PENDING"),
            (0, "STOPPED"),
            (0, "START_PENDING"),
            (0, "START_PENDING"),
            (0, "RUNNING"),
        ]
    )
    slept: list[float] = []
    sm.execute(plan, runner, timeout=30, poll=0.5, sleep=slept.append)
    assert [c[1] for c in runner.calls] == ["stop", "query", "query", "start", "query", "query"]
    assert slept == [0.5, 0.5]


def test_windows_restart_of_a_stopped_service_and_a_failing_start() -> None:
    plan = sm.restart_plan("windows", "ShopSvc")
    ok = ScriptedWindows(
        [(sm.SC_NOT_ACTIVE, "STOPPED"), (0, "STOPPED"), (0, "RUNNING"), (0, "RUNNING")]
    )
    sm.execute(plan, ok, timeout=30, sleep=lambda _: None)
    failing = ScriptedWindows([(0, "STOPPED"), (0, "STOPPED"), (1058, None)])
    with pytest.raises(
        sm.RestartFailed,
        match=r"^sc.exe exited 1058: .*sc.exe start ShopSvc: \[SC\] StartService FAILED 1058:$",
    ):
        sm.execute(plan, failing, timeout=30, sleep=lambda _: None)


def test_restart_gives_up_at_the_timeout() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    stuck = ScriptedWindows([(0, "STOP_PENDING")] * 100)
    with pytest.raises(sm.RestartFailed, match=r"no time left of the 5 s restart timeout$"):
        sm.execute(
            sm.restart_plan("windows", "ShopSvc"),
            stuck,
            timeout=5,
            poll=1,
            clock=lambda: now[0],
            sleep=sleep,
        )


# --------------------------------------------------------------------------- layout


def test_switch_is_atomic_and_relative(tmp_path: Path) -> None:
    layout = releases.ReleaseLayout(tmp_path, "shop")
    for v in ("1.0", "1.1"):
        layout.release_dir(v).mkdir(parents=True)
    layout.switch(layout.current_link, "1.0")
    assert os.readlink(layout.current_link) == "releases/1.0"
    inode = layout.current_link.lstat().st_ino
    layout.switch(layout.current_link, "1.1")
    assert os.readlink(layout.current_link) == "releases/1.1"
    assert layout.current_link.lstat().st_ino != inode  # replaced, not rewritten
    assert sorted(p.name for p in layout.base.iterdir()) == [
        "current",
        "releases",
    ]  # no temp link left
    with pytest.raises(releases.LayoutError, match="is not unpacked"):
        layout.switch(layout.current_link, "9.9")


def test_names_cannot_leave_the_root(tmp_path: Path) -> None:
    for bad in ("../x", "Shop", "shop/x", ""):
        with pytest.raises(releases.LayoutError, match="service name"):
            releases.ReleaseLayout(tmp_path, bad)
    layout = releases.ReleaseLayout(tmp_path, "shop")
    for bad in ("..", "../1.0", "1.0/..", ".hidden", "1.0\n"):
        with pytest.raises(releases.LayoutError, match="version"):
            layout.release_dir(bad)


def test_a_foreign_current_is_reported(tmp_path: Path) -> None:
    layout = releases.ReleaseLayout(tmp_path, "shop")
    layout.base.mkdir()
    layout.current_link.symlink_to("/etc")
    with pytest.raises(releases.LayoutError, match=r"points to '/etc', not releases/<version>"):
        layout.current_version()


def test_locks_are_exclusive_per_name(tmp_path: Path) -> None:
    layout = releases.ReleaseLayout(tmp_path, "shop")
    other = releases.ReleaseLayout(tmp_path, "shop")
    with layout.lock():
        with pytest.raises(
            releases.Busy, match=r"another deploy action \(switch\) is running for shop"
        ):
            with other.lock():
                pass
        with other.lock("fetch-1.0"):  # a download does not block a switch
            pass
    with other.lock():
        pass


def test_artifact_url_template() -> None:
    assert artifacts.artifact_url(
        "http://r/{service}/{service}-{version}.tar.gz", "shop", "1.4.2"
    ) == ("http://r/shop/shop-1.4.2.tar.gz")
    with pytest.raises(ValueError, match=r"unknown placeholder \{env\}"):
        artifacts.artifact_url("http://r/{env}/{version}", "shop", "1")
    with pytest.raises(ValueError, match="does not give an http"):
        artifacts.artifact_url("file:///{service}", "shop", "1")
    assert artifacts.parse_checksum("ABCDEF" * 10 + "abcd  shop-1.4.2.tar.gz\n") == (
        "abcdef" * 10 + "abcd"
    )
    with pytest.raises(ValueError, match="no SHA-256"):
        artifacts.parse_checksum("404 not found")


# --------------------------------------------------------------------------- the agent, scripted


class RecordingRunner:
    """Stands in for process.run: records argument lists, answers sc.exe like Windows."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: str | None = None,
        env: dict | None = None,
    ) -> CommandResult:
        self.calls.append(list(argv))
        state = "STOPPED" if len([c for c in self.calls if c[1:2] == ["query"]]) == 1 else "RUNNING"
        out = f"        STATE              : 4  {state}\r\n" if argv[1:2] == ["query"] else ""
        return CommandResult(tuple(argv), 0, out, 0.0, False)


def windows_node(tmp_path: Path, **settings: str) -> tuple[Deploy, RecordingRunner]:
    layout = releases.ReleaseLayout(tmp_path / "releases", "shop")
    for v in ("1.0", "1.1"):
        layout.release_dir(v).mkdir(parents=True)
    layout.switch(layout.current_link, "1.0")
    agent = make_agent(
        Deploy,
        {
            "plugin.deploy.root": str(tmp_path / "releases"),
            "plugin.deploy.config_dir": str(tmp_path / "etc"),
            **{f"plugin.deploy.{k}": v for k, v in settings.items()},
        },
    )
    runner = RecordingRunner()
    agent.run = runner
    return agent, runner


def test_activate_restarts_a_windows_service_with_sc_exe(tmp_path: Path) -> None:
    agent, runner = windows_node(tmp_path, service_manager="windows", unit="Shop{service}Svc")
    reply = call(agent, "activate", service="shop", version="1.1")
    assert reply.statuscode == 0, reply.statusmsg
    sc = r"C:\Windows\System32\sc.exe"
    assert runner.calls == [
        [sc, "stop", "ShopshopSvc"],
        [sc, "query", "ShopshopSvc"],
        [sc, "start", "ShopshopSvc"],
        [sc, "query", "ShopshopSvc"],
    ]
    assert reply.data["restarted"] is True and reply.data["current_version"] == "1.1"


def test_activate_recycles_an_iis_app_pool_per_service_setting(tmp_path: Path) -> None:
    agent, runner = windows_node(
        tmp_path,
        service_manager="systemd",
        **{
            "shop.service_manager": "iis",
            "shop.unit": "ShopPool",
            "appcmd": r"C:\inetsrv\appcmd.exe",
        },
    )
    assert call(agent, "activate", service="shop", version="1.1").statuscode == 0
    assert runner.calls == [
        [r"C:\inetsrv\appcmd.exe", "recycle", "apppool", "/apppool.name:ShopPool"]
    ]


def test_the_release_data_can_choose_the_service_manager(tmp_path: Path) -> None:
    agent, runner = windows_node(tmp_path)
    (tmp_path / "etc" / "releases").mkdir(parents=True)
    (tmp_path / "etc" / "releases" / "shop.yaml").write_text(
        'service: "shop"\nservice_manager: "systemd"\nunit: "shop-web"\n'
    )
    assert call(agent, "activate", service="shop", version="1.1").statuscode == 0
    assert runner.calls == [["systemctl", "restart", "shop-web"]]
    assert call(agent, "rollback", service="shop", restart=False).statuscode == 0
    assert len(runner.calls) == 1


def test_a_busy_service_and_bad_names(tmp_path: Path) -> None:
    agent, _ = windows_node(tmp_path)
    with releases.ReleaseLayout(tmp_path / "releases", "shop").lock():
        busy = call(agent, "activate", service="shop", version="1.1")
    assert busy.statuscode == 1 and busy.statusmsg.startswith(
        "another deploy action (switch) is running for shop"
    )
    for data in (
        {"service": "shop", "version": "../1.0"},
        {"service": "../shop", "version": "1.0"},
        {"service": "shop", "version": "1.0\n"},
    ):
        assert call(agent, "activate", **data).statuscode == 4
    nothing = call(agent, "rollback", service="shop")
    assert (nothing.statuscode, nothing.statusmsg) == (
        1,
        "shop has no previous release to roll back to; pass version=",
    )


def test_process_run_keeps_a_tail_and_kills_the_group(tmp_path: Path) -> None:
    from mcollective_py.agents import process

    result = process.run(
        ["/bin/sh", "-c", "for i in $(seq 1 50); do echo line $i; done; exit 3"], timeout=10
    )
    assert result.exit_code == 3 and result.output.splitlines() == [
        f"line {i}" for i in range(31, 51)
    ]
    marker = tmp_path / "child-alive"
    slow = process.run(["/bin/sh", "-c", f"(sleep 1; touch {marker}) & sleep 30"], timeout=0.3)
    assert (
        slow.timed_out
        and slow.exit_code is None
        and slow.describe() == f"sh timed out after {slow.duration:.1f} s"
    )
    import time as _time

    _time.sleep(1.2)
    assert not marker.exists(), "the background child must die with the group"
    with pytest.raises(
        process.CommandNotRunnable, match="cannot run /nonexistent: No such file or directory"
    ):
        process.run(["/nonexistent"], timeout=1)


def test_an_error_after_the_switch_switches_back(tmp_path: Path) -> None:
    """A bad setting that only shows after `current` moved must not leave it moved."""
    agent, runner = windows_node(tmp_path, service_manager="windows", restart_timeout="0")
    reply = call(agent, "activate", service="shop", version="1.1")
    assert reply.statuscode == 1
    layout = releases.ReleaseLayout(tmp_path / "releases", "shop")
    assert os.readlink(layout.current_link).endswith("1.0"), reply.statusmsg
    assert "restart_timeout = '0' is not a positive number of seconds" in reply.statusmsg
    assert reply.data["current_version"] == "1.0" and runner.calls == []
