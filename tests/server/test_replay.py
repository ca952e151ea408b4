"""ReplayCache: each request id admitted once while valid; bounded; injectable clock."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from mcollective_py.message import Request, new_requestid
from mcollective_py.rubytypes import Symbol
from mcollective_py.server.replay import ReplayCache, ReplayStats, content_key

T0 = 1_795_690_000


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def req(requestid: str = "a" * 32, msgtime: int = T0, ttl: int = 60) -> Request:
    return Request("rpcutil", "mcollective", "ping", "client", requestid, "uid=0", ttl, msgtime)


def test_a_request_is_admitted_once() -> None:
    cache = ReplayCache(clock=Clock())
    assert cache.admit(req()) is True
    assert cache.admit(req()) is False
    assert cache(req("b" * 32, msgtime=T0 + 1)) is True
    assert cache.stats() == ReplayStats(admitted=2, replayed=1, size=2)


def test_a_capture_republished_with_a_new_request_id_is_still_a_replay() -> None:
    """The request id is not signed: the content key (callerid, msgtime, ttl, body) catches it."""
    cache = ReplayCache(clock=Clock())
    body = {Symbol("agent"): "rpcutil", Symbol("action"): "ping", Symbol("data"): {}}
    original = Request(
        "rpcutil", "mcollective", body, "client", new_requestid(), "cert=alice", 60, T0
    )
    assert cache.admit(original) is True
    for forged in (
        replace(original, requestid=new_requestid()),
        replace(
            original, requestid=new_requestid(), senderid="elsewhere", collective="other", filter={}
        ),
    ):
        assert cache.admit(forged) is False
    # a different body, caller, msgtime or ttl is a different request
    assert (
        cache.admit(
            replace(
                original, requestid=new_requestid(), body={**body, Symbol("action"): "inventory"}
            )
        )
        is True
    )
    assert cache.admit(replace(original, requestid=new_requestid(), callerid="cert=bob")) is True
    assert cache.admit(replace(original, requestid=new_requestid(), msgtime=T0 + 1)) is True
    assert cache.stats() == ReplayStats(admitted=4, replayed=2, size=4)
    assert content_key(original) == content_key(replace(original, requestid="x" * 32))


def test_an_id_is_remembered_exactly_as_long_as_the_ttl_check_accepts_it() -> None:
    """Providers refuse a request when int(now) - msgtime > ttl; until then it is remembered."""
    clock = Clock()
    cache = ReplayCache(clock=clock)
    assert cache.check("x", T0, 60) == "admitted"
    clock.now = T0 + 60.999  # int(now) - msgtime == 60: still valid, so still a replay
    assert cache.check("x", T0, 60) == "replayed"
    clock.now = T0 + 61  # expired for everyone: forgotten, and refused as expired
    assert cache.check("x", T0, 60) == "expired"
    assert len(cache) == 0


def test_future_msgtime_beyond_the_skew_is_refused() -> None:
    clock = Clock()
    cache = ReplayCache(skew=30, clock=clock)
    assert cache.check("early", T0 + 31, 60) == "too_new"
    assert cache.check("ok", T0 + 30, 60) == "admitted"
    # it stays remembered for its whole window, measured from its own msgtime
    clock.now = T0 + 90
    assert cache.check("ok", T0 + 30, 60) == "replayed"
    clock.now = T0 + 91
    assert cache.check("ok", T0 + 30, 60) == "expired"


def test_full_cache_refuses_rather_than_forgetting_a_valid_id() -> None:
    clock = Clock()
    cache = ReplayCache(max_entries=3, clock=clock)
    for i in range(3):
        assert cache.check(f"id{i}", T0, 60) == "admitted"
    assert cache.check("id3", T0, 60) == "full"
    assert cache.check("id0", T0, 60) == "replayed"  # nothing was forgotten
    clock.now = T0 + 61
    assert cache.check("id3", T0 + 61, 60) == "admitted"  # expired ids made room
    assert cache.stats() == ReplayStats(admitted=4, replayed=1, full=1, size=1)


def test_different_ttls_expire_independently() -> None:
    clock = Clock()
    cache = ReplayCache(clock=clock)
    cache.check("long", T0, 600)
    cache.check("short", T0, 10)
    clock.now = T0 + 11
    assert cache.check("short", T0, 10) == "expired"
    assert cache.check("long", T0, 600) == "replayed"
    assert len(cache) == 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\Askew must be >= 0, max_entries and max_ttl >= 1\Z"):
        ReplayCache(max_entries=0)
    with pytest.raises(ValueError, match=r"\Askew must be >= 0, max_entries and max_ttl >= 1\Z"):
        ReplayCache(max_ttl=0)
    assert repr(ReplayCache(clock=Clock())) == "ReplayCache(skew=60.0, max_entries=100000, size=0)"


def test_concurrent_replays_admit_exactly_one() -> None:
    cache = ReplayCache(clock=Clock())
    ids = [new_requestid() for _ in range(200)]
    admitted: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for rid in ids:
            if cache.check(rid, T0, 60) == "admitted":
                with lock:
                    admitted.append(rid)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(admitted) == sorted(ids)
    assert cache.stats() == ReplayStats(admitted=200, replayed=1400, size=200)


def test_memory_stays_bounded_under_a_steady_stream() -> None:
    clock = Clock()
    cache = ReplayCache(max_entries=1000, clock=clock)
    for i in range(20_000):  # 10 requests per second for 2000 s, ttl 60
        clock.now = T0 + i / 10
        assert cache.check(f"r{i}", int(clock.now), 60) == "admitted"
    assert len(cache) <= 62 * 10
