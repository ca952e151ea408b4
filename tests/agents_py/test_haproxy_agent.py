"""The haproxy agent's decisions, against an in-memory runtime API and a fake clock."""

from __future__ import annotations

import re

import pytest

from mcollective_py.agents.haproxy import Haproxy
from tests.agents_py.conftest import call, make_agent
from tests.agents_py.fake_haproxy import FakeRuntime, fake_agent, server


def two_backends(**kw: object) -> list:
    return [server("app", "web1", **kw), server("app", "web2"), server("other", "web1", **kw)]


def test_disable_puts_every_backend_in_maint_and_reports_before_after() -> None:
    agent, fake, _ = fake_agent(two_backends())
    reply = call(agent, "disable", server="web1")
    assert reply.statuscode == 0, reply.statusmsg
    assert fake.sent == ["set server app/web1 state maint", "set server other/web1 state maint"]
    assert reply.data["state_before"] == "UP" and reply.data["state_after"] == "MAINT"
    assert reply.data["changed"] is True
    assert [
        (b["backend"], b["state_before"], b["state_after"]) for b in reply.data["backends"]
    ] == [
        ("app", "UP", "MAINT"),
        ("other", "UP", "MAINT"),
    ]


def test_already_in_target_state_succeeds_at_once() -> None:
    agent, fake, clock = fake_agent(two_backends(admin="MAINT", status="MAINT"))
    for act in ("disable", "drain", "to_maintenance"):
        reply = call(agent, act, server="web1")
        assert reply.statuscode == 0, (act, reply.statusmsg)
        assert reply.data["changed"] is False and reply.data["state_after"] == "MAINT"
    assert fake.sent == [] and clock.slept == []
    agent, fake, clock = fake_agent(two_backends())
    for act in ("enable", "to_online"):
        reply = call(agent, act, server="web1")
        assert reply.statuscode == 0 and reply.data["changed"] is False, act
    assert fake.sent == [] and clock.slept == []


def test_a_down_server_can_be_disabled() -> None:
    agent, fake, _ = fake_agent([server("app", "web1", status="DOWN", check_status="L4CON")])
    reply = call(agent, "disable", server="web1")
    assert reply.statuscode == 0
    assert (reply.data["state_before"], reply.data["state_after"]) == ("DOWN", "MAINT")


def test_drain_waits_until_sessions_end_then_maint() -> None:
    agent, fake, clock = fake_agent([server("app", "web1", sessions=3)])

    def fewer(rt: FakeRuntime) -> None:  # one session ends per look once draining
        row = rt.rows[("app", "web1")]
        if row.admin == "DRAIN":
            rt.set("app", "web1", sessions=max(0, row.sessions - 1))

    fake.on_look = fewer
    reply = call(agent, "drain", server="web1", timeout=10)
    assert reply.statuscode == 0, reply.statusmsg
    assert fake.sent == ["set server app/web1 state drain", "set server app/web1 state maint"]
    assert reply.data["drained"] is True and reply.data["sessions"] == 0
    assert reply.data["waited"] == pytest.approx(0.4)  # 3 -> 2 at once, then two polls of 0.2 s
    assert reply.data["state_after"] == "MAINT"


def test_drain_gives_up_waiting_after_the_timeout_and_still_goes_to_maint() -> None:
    agent, fake, clock = fake_agent([server("app", "web1", sessions=2)], poll_interval="0.5")
    reply = call(agent, "drain", server="web1", timeout=3)
    assert reply.statuscode == 0
    assert reply.data["drained"] is False and reply.data["sessions"] == 2
    assert reply.data["waited"] == pytest.approx(3.0)
    assert fake.rows[("app", "web1")].admin == "MAINT"
    assert max(clock.slept) == 0.5


def test_to_maintenance_fails_and_stays_in_drain_when_sessions_outlive_the_timeout() -> None:
    agent, fake, _ = fake_agent([server("app", "web1", sessions=1)])
    reply = call(agent, "to_maintenance", server="web1", timeout=2)
    assert reply.statuscode == 1
    assert reply.statusmsg == (
        "server web1 still has 1 session(s) after 2 s, so it stays in DRAIN (no new traffic); "
        "retry with a longer timeout, or force=true to put it in MAINT anyway"
    )
    assert fake.rows[("app", "web1")].admin == "DRAIN"
    assert reply.data["state_after"] == "DRAIN" and reply.data["drained"] is False
    forced = call(agent, "to_maintenance", server="web1", timeout=1, force=True)
    assert forced.statuscode == 0 and forced.data["state_after"] == "MAINT"
    assert forced.data["state_before"] == "DRAIN"


def test_to_online_waits_for_a_settled_up() -> None:
    agent, fake, clock = fake_agent([server("app", "web1", admin="MAINT", status="MAINT")])

    def settle(rt: FakeRuntime) -> None:
        if rt.looks >= 4 and rt.rows[("app", "web1")].admin == "READY":
            rt.set("app", "web1", status="UP")

    fake.on_look = settle
    reply = call(agent, "to_online", server="web1")
    assert reply.statuscode == 0, reply.statusmsg
    assert fake.sent == ["set server app/web1 state ready"]
    assert reply.data["state_after"] == "UP" and reply.data["waited"] > 0
    assert reply.data["backends"][0]["status"] == "UP"


def test_to_online_fails_when_the_check_stays_down() -> None:
    agent, fake, _ = fake_agent([server("app", "web1", admin="MAINT", status="MAINT")])
    fake.on_look = lambda rt: rt.set("app", "web1", status="DOWN", check_status="L7STS")
    reply = call(agent, "to_online", server="web1", timeout=2)
    assert reply.statuscode == 1
    assert reply.statusmsg == "server web1 is READY but not UP after 2 s: app DOWN (check L7STS)"
    assert reply.data["state_after"] == "DOWN"


def test_set_weight() -> None:
    agent, fake, _ = fake_agent(two_backends())
    reply = call(agent, "set_weight", server="web1", weight=50, percent=True)
    assert reply.statuscode == 0
    assert fake.sent == ["set server app/web1 weight 50", "set server other/web1 weight 50"]
    assert (reply.data["weight_before"], reply.data["weight_after"]) == (100, 50)
    again = call(agent, "set_weight", server="web1", weight=50)
    assert again.statuscode == 0 and again.data["changed"] is False
    bad = call(agent, "set_weight", server="web1", weight=300)
    assert (bad.statuscode, bad.statusmsg) == (4, "weight must be between 0 and 256, got 300")


def test_wait_for_state() -> None:
    agent, fake, _ = fake_agent([server("app", "web1")])
    fake.on_look = lambda rt: rt.set("app", "web1", status="DOWN") if rt.looks > 2 else None
    reply = call(agent, "wait_for_state", server="web1", state="DOWN", timeout=5)
    assert reply.statuscode == 0 and reply.data["reached"] is True
    assert reply.data["state_before"] == "UP" and reply.data["state_after"] == "DOWN"
    timeout = call(agent, "wait_for_state", server="web1", state="MAINT", timeout=1)
    assert timeout.statuscode == 1 and timeout.data["reached"] is False
    assert timeout.statusmsg == "server web1 did not reach MAINT within 1 s: app DOWN"


def test_not_found_fails_before_any_change() -> None:
    agent, fake, _ = fake_agent(two_backends())
    reply = call(agent, "disable", server="web9")
    assert reply.statuscode == 1
    assert reply.statusmsg == (
        "server web9 is in no backend (backends: app, other); "
        "fail_on_not_found=false reports it as absent instead"
    )
    partial = call(agent, "disable", server="web2", backend="app,other")
    assert partial.statuscode == 1
    assert partial.statusmsg.startswith(
        "server web2 is not in backend other (backends: app, other)"
    )
    assert fake.sent == []


def test_not_found_can_be_reported_as_absent() -> None:
    agent, fake, _ = fake_agent(two_backends())
    reply = call(agent, "disable", server="web9", fail_on_not_found=False)
    assert reply.statuscode == 0
    assert reply.data["state_before"] == reply.data["state_after"] == "absent"
    assert reply.data["backends"] == [
        {
            "backend": None,
            "server": "web9",
            "state": "absent",
            "state_before": "absent",
            "state_after": "absent",
        }
    ]
    partial = call(agent, "disable", server="web2", backend="app,nosuch", fail_on_not_found=False)
    assert partial.statuscode == 0 and fake.sent == ["set server app/web2 state maint"]
    assert [b["state_after"] for b in partial.data["backends"]] == ["MAINT", "absent"]


def test_status_every_server_and_one() -> None:
    agent, fake, _ = fake_agent(two_backends(sessions=2))
    every = call(agent, "status")
    assert every.statuscode == 0 and len(every.data["backends"]) == 3
    assert every.data["sessions"] == 4 and every.data["state"] == "UP"
    one = call(agent, "status", server="web1", backend="other")
    assert one.data["backends"] == [
        {
            "backend": "other",
            "server": "web1",
            "state": "UP",
            "admin": "READY",
            "status": "UP",
            "weight": 100,
            "initial_weight": 100,
            "sessions": 2,
            "check_status": "L7OK",
        }
    ]
    assert (one.data["weight"], one.data["check_status"]) == (100, "L7OK")


def test_a_change_that_does_not_take_fails() -> None:
    agent, fake, _ = fake_agent([server("app", "web1")])
    fake.ignore_admin = True
    reply = call(agent, "disable", server="web1")
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith(
        "HAProxy did not put the server in MAINT: app/web1 is UP (UP)"
    )


def test_socket_trouble_is_statuscode_1() -> None:
    agent, fake, _ = fake_agent([server("app", "web1")])
    fake.down = True
    reply = call(agent, "status", server="web1")
    assert (reply.statuscode, reply.statusmsg) == (
        1,
        "HAProxy admin socket /fake/admin.sock does not exist",
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"server": "web1;show info"}, r"Cannot validate input server: value should match \\A"),
        ({"server": "web1\nshow info"}, r"Cannot validate input server: value should match \\A"),
        ({"server": "web1", "backend": "app other"}, r"Cannot validate input backend"),
        (
            {"server": "web1", "timeout": "10"},
            r"Cannot validate input timeout: value should be a integer",
        ),
        (
            {"server": "web1", "timeout": 291},
            r"^timeout must be between 0 and 290 seconds, got 291$",
        ),
        ({"server": "web1", "timeout": -1}, r"^timeout must be between 0 and 290 seconds, got -1$"),
    ],
)
def test_inputs_are_checked_before_anything_is_sent(data: dict, message: str) -> None:
    agent, fake, _ = fake_agent([server("app", "web1")])
    reply = call(agent, "drain", **data)
    assert reply.statuscode == 4
    assert re.search(message, reply.statusmsg), reply.statusmsg
    assert fake.sent == []


def test_bad_settings_are_named() -> None:
    agent, _, _ = fake_agent([server("app", "web1", sessions=1)], poll_interval="soon")
    reply = call(agent, "drain", server="web1", timeout=1)
    assert (reply.statuscode, reply.statusmsg) == (
        1,
        "plugin.haproxy.poll_interval = 'soon' is not a positive number of seconds",
    )


def test_missing_socket_names_the_path_and_the_setting(tmp_path) -> None:
    path = tmp_path / "no" / "admin.sock"
    agent = make_agent(Haproxy, {"plugin.haproxy.socket": str(path)})
    reply = call(agent, "status", server="web1")
    assert reply.statuscode == 1
    assert reply.statusmsg == (
        f"HAProxy admin socket {path} does not exist (set by plugin.haproxy.socket in the node's "
        "server.cfg); check that HAProxy runs with 'stats socket <path> level admin' and that "
        "the path is right"
    )
    default = call(make_agent(Haproxy), "status", server="web1")
    assert default.statuscode == 1
    assert default.statusmsg.startswith(
        "HAProxy admin socket /run/haproxy/admin.sock does not exist (set by the default; "
        "set plugin.haproxy.socket in the node's server.cfg)"
    )


def test_a_plain_file_is_not_a_socket(tmp_path) -> None:
    path = tmp_path / "admin.sock"
    path.write_text("")
    reply = call(make_agent(Haproxy, {"plugin.haproxy.socket": str(path)}), "status")
    assert reply.statuscode == 1 and f"{path} is not a socket" in reply.statusmsg


def test_a_refused_command_says_what_was_already_done() -> None:
    agent, fake, _ = fake_agent(two_backends())
    fake.refuse.add(("other", "web1"))
    reply = call(agent, "disable", server="web1")
    assert reply.statuscode == 1
    assert reply.statusmsg == (
        "HAProxy refused 'set server other/web1 state maint': Permission denied "
        "(already done: set server app/web1 state maint)"
    )
