"""The one request exchange (discovery and RPC alike) and the pure ``plan_call``.

Golden cases for ``plan_call`` live in ``tests/golden/plan_call/``, one per file:
``{"agent", "filter": {identity, cf_class, fact, agent, select}, "nodes", "method",
"direct_addressing", "threshold", "batch_size", "limited", "want": {direct, wire_filter,
batches}}``.  The in-memory broker stands in for RabbitMQ here; tests/integration/
test_exchange_broker.py runs the same paths against the real broker and real nodes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcollective_py import render
from mcollective_py.client import CallOptions, Client
from mcollective_py.connectors.base import Target
from mcollective_py.connectors.memory import MemoryBroker, MemoryConnector
from mcollective_py.discovery import Broadcast, ping
from mcollective_py.exchange import MAX_REASONS, ExchangeHooks, Until, exchange, plan_call
from mcollective_py.filter import Filter
from mcollective_py.message import Reply, Request, new_requestid
from mcollective_py.security.psk import PskSecurity
from tests.fakes import FakeNode

GOLDEN = Path(__file__).parent / "golden" / "plan_call"
CASES = sorted(GOLDEN.glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_plan_call_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    flt = Filter.from_cli(**case["filter"]).with_agent(case["agent"])
    plan = plan_call(
        case["agent"],
        flt,
        case["nodes"],
        method=case["method"],
        direct_addressing=case["direct_addressing"],
        threshold=case["threshold"],
        batch_size=case["batch_size"],
        limited=case["limited"],
    )
    got = {
        "direct": plan.direct,
        # Symbols are str: the JSON round trip writes the wire hash as the golden file does
        "wire_filter": json.loads(json.dumps(plan.wire_filter)),
        "batches": [list(b) for b in plan.batches],
    }
    assert got == case["want"]


def test_plan_call_golden_cases_cover_both_addressing_modes() -> None:
    wants = [json.loads(p.read_text())["want"]["direct"] for p in CASES]
    assert len(CASES) >= 8 and True in wants and False in wants


def test_plan_targets_one_directed_per_node_or_one_broadcast() -> None:
    flt = Filter().with_agent("rpcutil")
    direct = plan_call("rpcutil", Filter.from_cli(identity=["a", "b"]), ["a", "b"])
    assert direct.targets("c1", "rpcutil", ["a", "b"]) == (
        Target.directed("c1", "a"),
        Target.directed("c1", "b"),
    )
    broad = plan_call("rpcutil", flt, ["a", "b"], threshold=1)
    assert broad.targets("c1", "rpcutil", ["a", "b"]) == (Target.broadcast("c1", "rpcutil"),)


# ---------------------------------------------------------------- the exchange itself
class Hooks(ExchangeHooks):
    def __init__(self) -> None:
        self.rejected: list[str] = []
        self.published: list[tuple[str, int]] = []

    def request_published(self, request: Request, targets: Any) -> None:
        self.published.append((request.requestid, len(targets)))

    def reply_rejected(self, reason: str) -> None:
        self.rejected.append(reason)


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def three(broker: MemoryBroker) -> Iterator[list[FakeNode]]:
    ns = [FakeNode(broker, f"node{i}") for i in (1, 2, 3)]
    for n in ns:
        n.start()
    yield ns
    for n in ns:
        n.stop()


SEC = PskSecurity("secret", callerid="uid=0")


def _client_side(broker: MemoryBroker) -> tuple[MemoryConnector, str]:
    conn = MemoryConnector(broker, identity="client")
    conn.connect()
    return conn, conn.reply_queue()


def _discovery_request() -> Request:
    return Request(
        agent="discovery",
        collective="mcollective",
        body="ping",
        senderid="client",
        requestid=new_requestid(),
        callerid="uid=0",
        ttl=60,
        msgtime=int(time.time()),
        filter=Filter().to_wire(),
    )


def test_exchange_stops_once_every_expected_node_answered(
    broker: MemoryBroker, three: list[FakeNode]
) -> None:
    conn, reply_to = _client_side(broker)
    hooks = Hooks()
    req = _discovery_request()
    got = exchange(
        conn,
        SEC,
        req,
        [Target.broadcast("mcollective", "discovery")],
        reply_to=reply_to,
        decode=lambda r: r.body,
        until=Until(30.0, expect=["node1", "node2", "node3"]),
        hooks=hooks,
    )
    assert got.ended == "expected" and sorted(got.senders) == ["node1", "node2", "node3"]
    assert {a.value for a in got.answers} == {"pong"} and got.rejected == 0
    assert hooks.published == [(req.requestid, 1)]


def test_quiet_period_ends_collection_with_every_node(
    broker: MemoryBroker, three: list[FakeNode]
) -> None:
    conn, reply_to = _client_side(broker)
    got = exchange(
        conn,
        SEC,
        _discovery_request(),
        [Target.broadcast("mcollective", "discovery")],
        reply_to=reply_to,
        decode=lambda r: None,
        until=Until(30.0, quiet=0.3),
    )
    assert got.ended == "quiet" and sorted(got.senders) == ["node1", "node2", "node3"]


def test_without_quiet_the_timeout_ends_collection(
    broker: MemoryBroker, three: list[FakeNode]
) -> None:
    conn, reply_to = _client_side(broker)
    got = exchange(
        conn,
        SEC,
        _discovery_request(),
        [Target.broadcast("mcollective", "discovery")],
        reply_to=reply_to,
        decode=lambda r: None,
        until=Until(0.4),
    )
    assert got.ended == "timeout" and len(got.answers) == 3


def test_limit_ends_collection(broker: MemoryBroker, three: list[FakeNode]) -> None:
    conn, reply_to = _client_side(broker)
    got = exchange(
        conn,
        SEC,
        _discovery_request(),
        [Target.broadcast("mcollective", "discovery")],
        reply_to=reply_to,
        decode=lambda r: None,
        until=Until(30.0, limit=2),
    )
    assert got.ended == "limit" and len(got.answers) == 2


def test_forged_garbage_and_undecodable_replies_are_counted_not_fatal(
    broker: MemoryBroker, three: list[FakeNode]
) -> None:
    conn, reply_to = _client_side(broker)
    req = _discovery_request()
    forged = PskSecurity("wrong").encode_reply(
        Reply("intruder", req.requestid, "discovery", 0, "x")
    )
    for payload in (b"\x04\x08garbage", forged):
        conn.publish(Target.reply(reply_to), payload)
    hooks = Hooks()

    def decode(reply: Reply) -> str:
        if reply.senderid == "node2":
            from mcollective_py.errors import SerializationError

            raise SerializationError("body is not an RPC reply")
        return str(reply.body)

    got = exchange(
        conn,
        SEC,
        req,
        [Target.broadcast("mcollective", "discovery")],
        reply_to=reply_to,
        decode=decode,
        until=Until(0.5),
        hooks=hooks,
    )
    assert sorted(got.senders) == ["node1", "node3"]
    assert got.rejected == 3 == len(hooks.rejected) == len(got.reasons)
    assert any("DigestMismatch" in r for r in hooks.rejected)
    assert "node2: body is not an RPC reply" in hooks.rejected


def test_replies_to_other_requests_are_ignored_not_rejected(broker: MemoryBroker) -> None:
    conn, reply_to = _client_side(broker)
    stray = SEC.encode_reply(Reply("node9", new_requestid(), "discovery", 0, "pong"))
    conn.publish(Target.reply(reply_to), stray)
    got = exchange(
        conn,
        SEC,
        _discovery_request(),
        [Target.broadcast("mcollective", "discovery")],
        reply_to=reply_to,
        decode=lambda r: None,
        until=Until(0.3),
    )
    assert got.answers == () and got.rejected == 0


def test_no_reply_to_only_sends(broker: MemoryBroker) -> None:
    conn, _ = _client_side(broker)
    got = exchange(
        conn,
        SEC,
        _discovery_request(),
        [Target.broadcast("mcollective", "discovery")],
        reply_to=None,
        decode=lambda r: None,
        until=Until(30.0),
    )
    assert got.ended == "sent" and got.answers == ()
    assert [(t, r) for t, _, r in broker.sent] == [
        (Target.broadcast("mcollective", "discovery"), None)
    ]


# ---------------------------------------------------------------- discovery over it
def test_ping_counts_rejected_replies_and_fires_hooks(broker: MemoryBroker) -> None:
    ns = [FakeNode(broker, "good"), FakeNode(broker, "forger", reply_psk="wrong")]
    for n in ns:
        n.start()
    try:
        conn = MemoryConnector(broker, identity="client")
        hooks = Hooks()
        got = ping(
            conn,
            SEC,
            Filter(),
            identity="client",
            collective="mcollective",
            ttl=60,
            timeout=0.5,
            hooks=hooks,
        )
        bc = Broadcast(conn, SEC, identity="client", collective="mcollective", hooks=hooks)
        found = bc.discover(Filter(), 0.5)
    finally:
        for n in ns:
            n.stop()
    assert got.senders == ("good",) and got.rejected == 1
    assert found == ("good",) and bc.rejected == 1
    assert len(hooks.rejected) == 2 and all("DigestMismatch" in r for r in hooks.rejected)


def test_client_ping_reports_rejects_and_honours_quiet(broker: MemoryBroker) -> None:
    ns = [FakeNode(broker, "good"), FakeNode(broker, "forger", reply_psk="wrong")]
    for n in ns:
        n.start()
    try:
        c = Client(MemoryConnector(broker, identity="client"), SEC, identity="client")
        res = c.ping(timeout=30.0, opts=CallOptions(discovery_quiet=0.3))
    finally:
        for n in ns:
            n.stop()
    assert res.senders == ("good",) and res.rejected == 1
    assert "DigestMismatch" in res.reasons[0]


@pytest.mark.parametrize(
    ("option", "config", "want"),
    [
        (None, None, None),  # the Ruby default: wait the whole discovery timeout
        (None, 0.25, 0.25),  # discovery_quiet in the config
        (0.5, 0.25, 0.5),  # --discovery-quiet wins
        (0.0, 0.25, None),  # --discovery-quiet 0 turns it off
    ],
)
def test_discovery_quiet_precedence(
    broker: MemoryBroker, option: float | None, config: float | None, want: float | None
) -> None:
    c = Client(MemoryConnector(broker), SEC, identity="client", config_discovery_quiet=config)
    opts = CallOptions(discovery_quiet=option)
    assert c.discovery_quiet(opts) == want
    d = c.discoverer(Filter.from_cli(fact=["role=web"]), opts)
    assert isinstance(d, Broadcast) and d.quiet == want


@pytest.mark.timeout(25)  # without the quiet period discovery alone would take 30 s
def test_rpc_discovery_with_quiet_finds_every_node(
    broker: MemoryBroker, three: list[FakeNode]
) -> None:
    c = Client(MemoryConnector(broker), SEC, identity="client")
    res = c.rpc(
        "rpcutil",
        "ping",
        {},
        Filter(),
        CallOptions(discovery_timeout=30, discovery_quiet=0.3, timeout=5),
    )
    assert sorted(res.responders) == ["node1", "node2", "node3"] and res.all_ok


def test_a_flood_of_garbage_is_counted_in_full_but_reasons_are_bounded(
    broker: MemoryBroker,
) -> None:
    conn, reply_to = _client_side(broker)
    for i in range(MAX_REASONS + 50):
        conn.publish(Target.reply(reply_to), b"junk %d" % i)
    hooks = Hooks()
    got = exchange(
        conn,
        SEC,
        _discovery_request(),
        [Target.broadcast("mcollective", "discovery")],
        reply_to=reply_to,
        decode=lambda r: None,
        until=Until(0.5),
        hooks=hooks,
    )
    assert got.rejected == MAX_REASONS + 50 == len(hooks.rejected)
    assert len(got.reasons) == MAX_REASONS


def test_rejected_text() -> None:
    assert render.rejected_text([]) == ""
    assert render.rejected_text(["A: x"]) == (
        "Rejected 1 reply (failed the security check or did not decode):\n  A: x\n"
    )
    text = render.rejected_text([f"R{i}" for i in range(12)], 40, show=3)
    assert text.splitlines() == [
        "Rejected 40 replies (failed the security check or did not decode):",
        "  R0",
        "  R1",
        "  R2",
        "  ... and 37 more",
    ]
