"""The healthcheck agent: pure parts with golden data, checks against real loopback servers."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcollective_py.agents import healthcheck as hc
from mcollective_py.agents.healthcheck import Healthcheck
from mcollective_py.agents.junit import JUnitError, parse_junit
from mcollective_py.ddl import AgentDDL, load_ddl_file
from tests.agents_py.conftest import REPO, call, golden_cases, load_case, make_agent
from tests.agents_py.lab import Site, free_port

JUNIT = golden_cases("junit")


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    try:
        yield s
    finally:
        s.stop()


def agent(**settings: str) -> Healthcheck:
    return make_agent(Healthcheck, {f"plugin.healthcheck.{k}": v for k, v in settings.items()})


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize("path", JUNIT, ids=lambda p: p.stem)
def test_junit_golden(path: Path) -> None:
    case = load_case(path)
    if "error" in case:
        with pytest.raises(JUnitError, match=case["error"]):
            parse_junit(case["xml"])
        return
    got = parse_junit(case["xml"])
    assert {
        "tests": got.tests,
        "failures": got.failures,
        "errors": got.errors,
        "skipped": got.skipped,
        "time": round(got.time, 3),
        "failed": list(got.failed),
        "passed": got.passed,
    } == case["expected"]


def test_backoff_doubles_up_to_the_cap() -> None:
    assert hc.backoff_delays(0, 1) == []
    assert hc.backoff_delays(6, 1) == [1, 2, 4, 8, 16, 30]
    assert hc.backoff_delays(3, 0.5, cap=1) == [0.5, 1, 1]


def test_json_path_and_text() -> None:
    doc = {"status": "ok", "checks": {"db": {"ok": True}}, "nodes": [{"v": 1}, None]}
    assert hc.json_path(doc, "checks.db.ok") is True
    assert hc.json_path(doc, "nodes.0.v") == 1
    with pytest.raises(KeyError, match="no field checks.cache in the JSON body"):
        hc.json_path(doc, "checks.cache.ok")
    with pytest.raises(KeyError, match="no field nodes.5"):
        hc.json_path(doc, "nodes.5")
    assert [hc.json_text(v) for v in (True, None, 42, 1.5, "ok", {"b": 1, "a": [1]})] == [
        "true",
        "null",
        "42",
        "1.5",
        "ok",
        '{"a":[1],"b":1}',
    ]


def test_placeholders_touch_only_known_names() -> None:
    values = {"service": "shop", "junit": "/tmp/j.xml"}
    assert hc.expand("--out={junit}", values) == "--out=/tmp/j.xml"
    assert hc.expand('{"a": {unknown}}', values) == '{"a": {unknown}}'


def test_programs_must_live_in_an_allowed_directory(tmp_path: Path) -> None:
    allowed = tmp_path / "checks"
    check = executable(allowed / "check_ok", "#!/bin/sh\nexit 0\n")
    outside = executable(tmp_path / "evil", "#!/bin/sh\nexit 0\n")
    (allowed / "sneaky").symlink_to(outside)
    assert hc.resolve_program("check_ok", [str(allowed)]) == check
    assert hc.resolve_program(str(check), [str(allowed)]) == check
    for bad in ("evil", str(outside), f"{allowed}/../evil", "sneaky", "nosuch"):
        with pytest.raises(ValueError, match="is not in an allowed directory"):
            hc.resolve_program(bad, [str(allowed)])
    with pytest.raises(ValueError, match="must be a bare name or an absolute path"):
        hc.resolve_program("./check_ok", [str(allowed)])


# --------------------------------------------------------------------------- http


def test_http_ok_with_body_and_json_checks(site: Site) -> None:
    site.routes["/health"] = lambda: (
        200,
        json.dumps({"status": "ok", "checks": {"db": True}, "n": 3}),
    )
    reply = call(
        agent(),
        "http",
        url=site.url("/health"),
        contains='"ok"',
        body_regex=r'"n": \d',
        json_field="checks.db",
    )
    assert reply.statuscode == 0, reply.statusmsg
    assert (
        reply.data["ok"] is True
        and reply.data["status_code"] == 200
        and reply.data["attempts"] == 1
    )
    assert reply.data["detail"].startswith(f"HTTP 200 from {site.url('/health')} in ")
    assert reply.data["detail"].endswith(
        "body contains '\"ok\"', body matches /\"n\": \\d/, checks.db is 'true'"
    )
    assert (
        call(agent(), "http", url=site.url("/health"), json_field="n", json_value="3").statuscode
        == 0
    )


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"expect_status": 204}, "^HTTP 200 from .*, expected 204$"),
        ({"contains": "green"}, "but the body does not contain 'green'$"),
        ({"body_regex": "^up$"}, r"but the body does not match /\^up\$/$"),
        ({"json_field": "status", "json_value": "ok"}, "but status is 'down', expected 'ok'$"),
        ({"json_field": "checks.db"}, "but checks.db is false$"),
        ({"json_field": "checks.cache"}, "but there is no field checks.cache in the JSON body$"),
    ],
)
def test_http_failures_say_what_was_found(site: Site, inputs: dict, message: str) -> None:
    site.routes["/health"] = lambda: (200, '{"status": "down", "checks": {"db": false}}')
    reply = call(agent(), "http", url=site.url("/health"), **inputs)
    assert reply.statuscode == 1
    assert reply.data["ok"] is False and reply.statusmsg == reply.data["detail"]
    assert re.search(message, reply.statusmsg), reply.statusmsg


def test_http_retries_with_back_off_until_healthy(site: Site) -> None:
    answers = iter([(503, "starting"), (503, "starting"), (200, "ok")])
    site.routes["/health"] = lambda: next(answers)
    start = time.monotonic()
    reply = call(agent(), "http", url=site.url("/health"), retries=5, retry_delay=0.1)
    assert reply.statuscode == 0, reply.statusmsg
    assert reply.data["attempts"] == 3
    assert time.monotonic() - start >= 0.3  # 0.1 + 0.2
    give_up = call(agent(), "http", url=site.url("/nothing"), retries=2, retry_delay=0.05)
    assert give_up.statuscode == 1 and give_up.data["attempts"] == 3
    assert give_up.data["status_code"] == 404


def test_http_unreachable_and_slow(site: Site) -> None:
    port = free_port("127.0.0.61")
    refused = call(agent(), "http", url=f"http://127.0.0.61:{port}/health")
    assert refused.statuscode == 1
    assert (
        refused.statusmsg
        == f"cannot connect to http://127.0.0.61:{port}/health: Connection refused"
    )

    def late() -> tuple[int, str]:
        time.sleep(1)
        return 200, "late"

    site.routes["/slow"] = late
    slow = call(agent(), "http", url=site.url("/slow"), timeout=0.3)
    assert (
        slow.statuscode == 1
        and slow.statusmsg == f"no answer from {site.url('/slow')} within 0.3 s"
    )


def test_http_bad_inputs() -> None:
    assert call(agent(), "http", url="ftp://x/").statuscode == 4
    bad = call(agent(), "http", url="http://127.0.0.1/", body_regex="(")
    assert bad.statuscode == 4 and bad.statusmsg.startswith(
        "body_regex '(' is not a valid regular expression"
    )
    lone = call(agent(), "http", url="http://127.0.0.1/", json_value="ok")
    assert (lone.statuscode, lone.statusmsg) == (
        4,
        "json_value needs json_field: which field should have that value?",
    )
    many = call(agent(), "http", url="http://127.0.0.1/", retries=21)
    assert (many.statuscode, many.statusmsg) == (4, "retries must be between 0 and 20, got 21")


# --------------------------------------------------------------------------- tcp


def test_tcp() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.62", 0))
        listener.listen()
        port = listener.getsockname()[1]
        reply = call(agent(), "tcp", host="127.0.0.62", port=port)
        assert reply.statuscode == 0 and reply.data["ok"] is True
        assert reply.data["detail"].startswith(f"connected to 127.0.0.62:{port} in ")
    refused = call(agent(), "tcp", host="127.0.0.62", port=port, retries=1, retry_delay=0.05)
    assert refused.statuscode == 1 and refused.data["attempts"] == 2
    assert refused.statusmsg == f"127.0.0.62:{port} refused the connection"
    assert (
        call(agent(), "tcp", host="127.0.0.62", port=70000).statusmsg
        == "port must be between 1 and 65535, got 70000"
    )
    assert call(agent(), "tcp", host="127.0.0.62;reboot", port=1).statuscode == 4


# --------------------------------------------------------------------------- command


def test_command_runs_allowed_programs_without_a_shell(tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    executable(
        checks / "check_disk",
        '#!/bin/sh\necho "args: $*"\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22; do echo line $i; done\necho "DISK OK"\nexit 0\n',
    )
    executable(checks / "check_warn", "#!/bin/sh\necho WARNING\nexit 1\n")
    executable(checks / "check_hang", "#!/bin/sh\nsleep 30\n")
    hc_agent = agent(command_path=str(checks))
    reply = call(hc_agent, "command", command="check_disk -w '10 %' \"*\"")
    assert reply.statuscode == 0, reply.statusmsg
    assert (
        reply.data["exit_code"] == 0
        and reply.data["detail"] == "check_disk exited 0 (expected 0): DISK OK"
    )
    lines = reply.data["output"].splitlines()
    assert len(lines) == 20 and lines[-1] == "DISK OK"  # only the tail
    full = call(hc_agent, "command", command="check_disk -w '10 %' \"*\"")
    assert "args: -w 10 % *" not in full.data["output"]  # first line is beyond the tail
    warn = call(hc_agent, "command", command="check_warn")
    assert (warn.statuscode, warn.statusmsg) == (1, "check_warn exited 1 (expected 0): WARNING")
    assert call(hc_agent, "command", command="check_warn", expect_exit=1).statuscode == 0
    start = time.monotonic()
    hang = call(hc_agent, "command", command="check_hang", timeout=0.5)
    assert hang.statuscode == 1 and hang.data["exit_code"] is None
    assert hang.statusmsg.startswith("check_hang timed out after 0.")
    assert time.monotonic() - start < 5


def test_command_refuses_programs_outside_the_path_and_shell_syntax(tmp_path: Path) -> None:
    hc_agent = agent(command_path=str(tmp_path))
    reply = call(hc_agent, "command", command="/bin/rm -rf /tmp/nothing")
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith("program '/bin/rm' is not in an allowed directory")
    assert call(hc_agent, "command", command="check; reboot").statuscode == 4  # shellsafe
    assert call(hc_agent, "command", command="check $(reboot)").statuscode == 4
    unbalanced = call(hc_agent, "command", command="check 'open")
    assert unbalanced.statuscode == 4 and "cannot be split into arguments" in unbalanced.statusmsg


# --------------------------------------------------------------------------- smoke


SMOKE = """#!/bin/sh
# args: JUNIT_PATH ; writes a report from $RESULT (pass|fail|none)
[ "$(pwd)" = "$DEPLOY_RELEASE_DIR" ] || exit 9
[ "$1" = "$SMOKE_JUNIT_XML" ] || exit 8
case "$(cat RESULT)" in
  pass) printf '<testsuite tests="3" time="0.5"><testcase name="home"/><testcase name="login"/><testcase name="cart"/></testsuite>' > "$1" ;;
  fail) printf '<testsuite time="0.5"><testcase classname="shop" name="home"/><testcase classname="shop" name="cart"><failure/></testcase></testsuite>' > "$1"; echo "1 failed"; exit 1 ;;
  none) echo "crashed early"; exit 2 ;;
esac
"""


def release(root: Path, service: str, version: str, result: str) -> Path:
    rel = root / service / "releases" / version
    executable(rel / "bin" / "smoke-test", SMOKE)
    (rel / "RESULT").write_text(result)
    link = root / service / "current"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(f"releases/{version}")
    return rel


def test_smoke_reads_the_junit_report(tmp_path: Path) -> None:
    release(tmp_path, "shop", "1.4.2", "pass")
    hc_agent = make_agent(Healthcheck, {"plugin.deploy.root": str(tmp_path)})
    reply = call(hc_agent, "smoke", service="shop", version="1.4.2")
    assert reply.statuscode == 0, reply.statusmsg
    assert {
        k: reply.data[k]
        for k in ("version", "tests", "failures", "errors", "skipped", "exit_code", "ok")
    } == {
        "version": "1.4.2",
        "tests": 3,
        "failures": 0,
        "errors": 0,
        "skipped": 0,
        "exit_code": 0,
        "ok": True,
    }
    assert reply.data["detail"] == "3 tests, 0 failures, 0 errors, 0 skipped in 0.5 s (shop 1.4.2)"


def test_smoke_failures(tmp_path: Path) -> None:
    hc_agent = make_agent(Healthcheck, {"plugin.healthcheck.root": str(tmp_path)})
    release(tmp_path, "shop", "1.4.3", "fail")
    failed = call(hc_agent, "smoke", service="shop")
    assert failed.statuscode == 1
    assert (
        failed.statusmsg
        == "smoke-test exited 1: 2 tests, 1 failures, 0 errors, 0 skipped in 0.5 s (shop 1.4.3); failed: shop.cart"
    )
    assert failed.data["failed_tests"] == ["shop.cart"] and failed.data["output"] == "1 failed"
    release(tmp_path, "shop", "1.4.4", "none")
    none = call(hc_agent, "smoke", service="shop")
    assert none.statuscode == 1 and none.statusmsg.startswith(
        "smoke-test exited 2 and wrote no JUnit report"
    )
    wrong = call(hc_agent, "smoke", service="shop", version="1.4.2")
    assert (wrong.statuscode, wrong.statusmsg) == (
        1,
        "the current release of shop is 1.4.4, not 1.4.2",
    )
    missing = call(hc_agent, "smoke", service="cart")
    assert missing.statuscode == 1 and missing.statusmsg.startswith(
        "cart has no current release on this node"
    )
    escape = make_agent(
        Healthcheck,
        {
            "plugin.healthcheck.root": str(tmp_path),
            "plugin.healthcheck.smoke_command": "../../../x {junit}",
        },
    )
    assert call(escape, "smoke", service="shop").statusmsg.startswith(
        "smoke command '../../../x' leaves the release directory"
    )


# --------------------------------------------------------------------------- service


def test_service_version_endpoint(site: Site, tmp_path: Path) -> None:
    versions = iter(["1.4.1", "1.4.1", "1.4.2"])
    site.routes["/shop/version"] = lambda: (
        200,
        json.dumps({"name": "shop", "version": next(versions)}),
    )
    release(tmp_path, "shop", "1.4.2", "pass")
    hc_agent = make_agent(
        Healthcheck,
        {
            "plugin.deploy.root": str(tmp_path),
            "plugin.healthcheck.version_url": site.url("/{service}/version"),
        },
    )
    reply = call(hc_agent, "service", service="shop", retries=3, retry_delay=0.05)
    assert reply.statuscode == 0, reply.statusmsg
    assert (reply.data["version"], reply.data["expected_version"], reply.data["attempts"]) == (
        "1.4.2",
        "1.4.2",
        3,
    )
    site.routes["/plain"] = lambda: (200, "1.4.1\n")
    plain = call(hc_agent, "service", service="shop", version="1.4.2", url=site.url("/plain"))
    assert plain.statuscode == 1
    assert plain.statusmsg == f"{site.url('/plain')} answered '1.4.1', expected 1.4.2"
    assert plain.data["version"] == "1.4.1"


def test_service_needs_a_url(tmp_path: Path) -> None:
    reply = call(agent(), "service", service="shop", version="1.0")
    assert reply.statuscode == 1
    assert reply.statusmsg == (
        "no version URL for shop: pass url=..., or set plugin.healthcheck.version_url "
        "(or plugin.healthcheck.shop.version_url) in the node's server.cfg"
    )


def test_per_service_settings_win(site: Site) -> None:
    site.routes["/shop-version"] = lambda: (200, "2.0")
    hc_agent = agent(
        **{"version_url": "http://127.0.0.1:9/none", "shop.version_url": site.url("/shop-version")}
    )
    assert call(hc_agent, "service", service="shop", version="2.0").statuscode == 0
    assert os.environ.get("SMOKE_JUNIT_XML") is None


# --------------------------------------------------------------------------- inputs and settings


def test_the_ddls_defaults_reach_the_checks(tmp_path: Path) -> None:
    """The action reads the complete inputs the framework hands it (``req.data``): a default
    changed in the DDL changes the check, with nothing in the agent re-resolving it."""
    text = (REPO / "ddl" / "healthcheck.ddl").read_text()
    text = text.replace(
        ":type        => :integer,\n                 :optional    => true,\n                 :default     => 0}",
        ":type        => :integer,\n                 :optional    => true,\n                 :default     => 2}",
    ).replace(":default     => 1}", ":default     => 0.01}")
    assert text.count(":default     => 2}") == 1 and ":default     => 0.01}" in text
    changed = tmp_path / "healthcheck.ddl"
    changed.write_text(text)
    loaded = load_ddl_file(changed)
    assert isinstance(loaded, AgentDDL)
    with socket.socket() as s:
        s.bind(("127.0.18.1", 0))
        port = s.getsockname()[1]  # closed when the check runs: refused
    reply = call(Healthcheck(loaded), "tcp", host="127.0.18.1", port=port)
    assert (reply.statuscode, reply.data["attempts"]) == (1, 3), reply.statusmsg
    assert call(agent(), "tcp", host="127.0.18.1", port=port).data["attempts"] == 1


def test_settings_come_through_agent_settings(tmp_path: Path) -> None:
    plain = agent()
    assert plain.settings.text("command_path") == hc.DEFAULT_COMMAND_PATH
    assert plain.settings.text("smoke_command") == hc.DEFAULT_SMOKE_COMMAND
    assert plain.release_root() == hc.DEFAULT_ROOT
    # an empty value counts as unset
    assert agent(command_path="", root="").settings.text("command_path") == hc.DEFAULT_COMMAND_PATH
    deploy_root = make_agent(Healthcheck, {"plugin.deploy.root": "/srv/deploy"})
    assert deploy_root.release_root() == "/srv/deploy"
    both = make_agent(
        Healthcheck, {"plugin.deploy.root": "/srv/deploy", "plugin.healthcheck.root": "/srv/hc"}
    )
    assert both.release_root() == "/srv/hc"
    # the command action looks programs up in plugin.healthcheck.command_path only
    reply = call(agent(command_path=str(tmp_path)), "command", command="check_nothing")
    assert reply.statuscode == 1
    assert reply.statusmsg == (
        f"program 'check_nothing' is not in an allowed directory ({tmp_path}); "
        "add its directory to plugin.healthcheck.command_path"
    )
