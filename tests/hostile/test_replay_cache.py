"""Item 4: altered copies of one capture cannot fill the replay cache.

Only requests that will run are remembered (after authentication, collective, agent and
filter checks), a TTL above ``replay_max_ttl`` is refused instead of making an entry
permanent, and a full cache forgets expired entries before it refuses anything.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcollective_py.message import new_requestid
from mcollective_py.security.psk import PskSecurity
from mcollective_py.server.replay import ReplayCache, ReplayStats
from tests.conftest import PSK, PythonFleet, lab_dir, ns_vhost, run_mco_py
from tests.hostile.wire import rewrite_envelope, rpc_request, wait_for_log, wire

T0 = 1_795_690_000


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def test_a_huge_ttl_is_refused_not_remembered_forever() -> None:
    cache = ReplayCache(max_entries=2, max_ttl=300, clock=Clock())
    assert cache.check("a", T0, 10**9) == "ttl_too_long"
    assert cache.check("b", T0, 300) == "admitted"
    assert cache.stats() == ReplayStats(admitted=1, ttl_too_long=1, size=1)


def test_a_full_cache_forgets_expired_entries_before_refusing() -> None:
    clock = Clock()
    cache = ReplayCache(max_entries=2, max_ttl=300, clock=clock)
    assert cache.check("short", T0, 5) == "admitted"
    assert cache.check("long", T0, 300) == "admitted"
    assert cache.check("next", T0, 60) == "full"
    clock.now = T0 + 6  # "short" is no longer valid: its place is free
    assert cache.check("next", T0 + 6, 60) == "admitted"
    assert cache.stats().size == 2


@pytest.fixture(scope="module")
def node() -> Iterator[PythonFleet]:
    extra = "plugin.mcollective_py.replay_max_entries = 12\nplugin.mcollective_py.replay_max_ttl = 300\n"
    fleet = PythonFleet(
        lab_dir("replayfill"), ns_vhost("mco-py-replayfill"), ["rf1"], extra_cfg=extra
    )
    with fleet:
        yield fleet


@pytest.mark.integration
def test_altered_copies_do_not_fill_the_cache(node: PythonFleet) -> None:
    sec = PskSecurity(PSK, callerid="uid=0")
    captured = sec.encode_request(rpc_request("rpcutil", "ping", {}))
    elsewhere = {
        "fact": [],
        "cf_class": [],
        "agent": [],
        "identity": ["other-node"],
        "compound": [],
    }
    variants = [
        {"collective": "othercollective"},
        {"filter": elsewhere},
        {"agent": "nosuchagent"},
        {"ttl": 10**9},
    ]
    with wire(node.vhost) as w:
        for i in range(60):
            w.publish(
                "rf1", rewrite_envelope(captured, requestid=new_requestid(), **variants[i % 4])
            )
        assert w.replies(sec.decode_reply, wait=2) == []
    log = wait_for_log(node.log("rf1"), "ttl_too_long", count=15)
    assert log.count("for collective 'othercollective' we are not in") == 15
    assert log.count("which is not loaded") == 15
    assert log.count("does not pass filters") >= 15
    assert "full" not in log.replace("fully", "")
    # a fresh legitimate request still runs, several times
    for _ in range(3):
        r = run_mco_py(node.env, "rpc", "rpcutil", "ping", "-I", "rf1", "--json")
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.integration
def test_a_capture_with_an_unsigned_ttl_rewrite_cannot_pin_an_entry(node: PythonFleet) -> None:
    sec = PskSecurity(PSK, callerid="uid=0")
    req = rpc_request("rpcutil", "ping", {})
    payload = rewrite_envelope(sec.encode_request(req), ttl=10**9)
    with wire(node.vhost) as w:
        w.publish("rf1", payload)
        assert w.replies(sec.decode_reply, wait=1.5) == []
    wait_for_log(node.log("rf1"), f"rejected request {req.requestid} for rpcutil")
