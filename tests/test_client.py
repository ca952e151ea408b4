"""Client behaviour on the in-memory broker with fake nodes (the real broker: tests/integration)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcollective_py import client as client_mod
from mcollective_py.client import CallOptions, Client, ClientEvents
from mcollective_py.connectors.memory import MemoryBroker, MemoryConnector
from mcollective_py.errors import TransportError, UsageError
from mcollective_py.filter import Filter
from mcollective_py.rpc import RPCReply
from mcollective_py.security.psk import PskSecurity
from tests.fakes import FakeNode

FACTS = {
    "node1": {"role": "web", "datacenter": "ams"},
    "node2": {"role": "db", "datacenter": "ams"},
    "node3": {"role": "web", "datacenter": "fra"},
}


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def nodes(broker: MemoryBroker) -> Iterator[dict[str, FakeNode]]:
    ns = {
        n: FakeNode(broker, n, facts=f, classes=(f"roles::{f['role']}",)) for n, f in FACTS.items()
    }
    for n in ns.values():
        n.start()
    yield ns
    for n in ns.values():
        n.stop()


class Recorder(ClientEvents):
    def __init__(self) -> None:
        self.sent: list[tuple[tuple[str, ...], bool]] = []
        self.rejected: list[str] = []
        self.sleeps: list[float] = []

    def request_sent(self, requestid, nodes, direct, total):  # type: ignore[no-untyped-def]
        self.sent.append((tuple(nodes), direct))

    def reply_rejected(self, reason: str) -> None:
        self.rejected.append(reason)

    def batch_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def make(broker: MemoryBroker, psk: str = "secret", **kw) -> tuple[Client, Recorder]:  # type: ignore[no-untyped-def]
    ev = Recorder()
    c = Client(
        MemoryConnector(broker, identity="client"),
        PskSecurity(psk, callerid="uid=0"),
        identity="client",
        events=ev,
        sleep=lambda s: None,
        **kw,
    )
    return c, ev


FAST = CallOptions(discovery_timeout=0.3, timeout=1.0)


def test_discovery_finds_matching_nodes(broker: MemoryBroker, nodes: dict[str, FakeNode]) -> None:
    c, _ = make(broker)
    found, _, method = c.discover(Filter.from_cli(fact=["role=web"]), FAST)
    assert sorted(found) == ["node1", "node3"] and method == "mc"


def test_literal_identities_skip_discovery(
    broker: MemoryBroker, nodes: dict[str, FakeNode]
) -> None:
    c, ev = make(broker)
    res = c.rpc("rpcutil", "ping", {}, Filter.from_cli(identity=["node1", "node2"]), FAST)
    assert sorted(res.responders) == ["node1", "node2"] and res.all_ok
    # no discovery broadcast went out: every publish was a directed rpcutil request
    assert all(t.kind == "directed" for t, _, _ in broker.sent if t.kind != "reply")
    assert ev.sent == [(("node1", "node2"), True)]
    # direct decided before encoding: the wire filter is reset to just the agent
    assert nodes["node1"].requests[0].filter["identity"] == []


def test_threshold_switches_to_broadcast(broker: MemoryBroker, nodes: dict[str, FakeNode]) -> None:
    c, ev = make(broker, direct_addressing_threshold=2)
    res = c.rpc("rpcutil", "ping", {}, Filter.from_cli(fact=["datacenter=/a|f/"]), FAST)
    assert sorted(res.responders) == ["node1", "node2", "node3"]
    assert ev.sent[-1][1] is False  # 3 nodes > threshold 2: one broadcast
    c2, ev2 = make(broker)
    res = c2.rpc("rpcutil", "ping", {}, Filter.from_cli(fact=["role=web"]), FAST)
    assert ev2.sent[-1][1] is True  # 2 nodes <= 10: direct, original filter kept
    assert nodes["node1"].requests[-1].filter["fact"]


def test_silent_and_failed_nodes_are_reported(broker: MemoryBroker) -> None:
    ns = [
        FakeNode(broker, "ok1"),
        FakeNode(broker, "bad1", handler=lambda r: RPCReply(1, "boom", {})),
        FakeNode(broker, "mute1", silent=True),
    ]
    for n in ns:
        n.start()
    try:
        c, _ = make(broker)
        res = c.rpc(
            "rpcutil",
            "ping",
            {},
            Filter.from_cli(identity=["ok1", "bad1", "mute1"]),
            CallOptions(timeout=0.5),
        )
    finally:
        for n in ns:
            n.stop()
    assert [r.sender for r in res.ok] == ["ok1"]
    assert [r.sender for r in res.failed] == ["bad1"]
    assert res.no_response == ("mute1",)
    assert not res.all_ok


def test_wrong_psk_node_stays_silent(broker: MemoryBroker) -> None:
    n = FakeNode(broker, "node1", psk="other")
    n.start()
    try:
        c, _ = make(broker)
        res = c.rpc(
            "rpcutil", "ping", {}, Filter.from_cli(identity=["node1"]), CallOptions(timeout=0.3)
        )
    finally:
        n.stop()
    assert res.no_response == ("node1",) and n.requests == []


def test_replies_failing_security_are_rejected_and_counted(broker: MemoryBroker) -> None:
    n = FakeNode(broker, "node1", reply_psk="forged")
    n.start()
    try:
        c, ev = make(broker)
        res = c.rpc(
            "rpcutil", "ping", {}, Filter.from_cli(identity=["node1"]), CallOptions(timeout=0.3)
        )
    finally:
        n.stop()
    assert res.no_response == ("node1",) and res.rejected_replies == 1
    assert "DigestMismatch" in ev.rejected[0]


def test_batches_reuse_one_requestid_and_sleep_between(
    broker: MemoryBroker, nodes: dict[str, FakeNode]
) -> None:
    c, ev = make(broker)
    opts = CallOptions(timeout=1.0, batch_size=2, batch_sleep=0.5)
    res = c.rpc("rpcutil", "ping", {}, Filter.from_cli(identity=["node1", "node2", "node3"]), opts)
    assert [s[0] for s in ev.sent] == [("node1", "node2"), ("node3",)]
    assert ev.sleeps == [0.5]
    ids = {n.requests[-1].requestid for n in nodes.values()}
    assert ids == {res.requestid}


def test_limit_nodes(broker: MemoryBroker, nodes: dict[str, FakeNode]) -> None:
    c, _ = make(broker)
    res = c.rpc(
        "rpcutil",
        "ping",
        {},
        Filter.from_cli(identity=["node1", "node2", "node3"]),
        CallOptions(timeout=1.0, limit_nodes="1"),
    )
    assert res.discovered == ("node1",) and res.responders == ("node1",)


@pytest.mark.parametrize(
    ("nodes", "limit", "method", "seed", "want"),
    [
        (["a", "b", "c", "d"], "2", "first", None, ("a", "b")),
        (["a", "b", "c", "d"], "50%", "first", None, ("a", "b")),
        (["a", "b", "c"], "10%", "first", None, ("a",)),  # truncates to 0, then at least 1
        (["a", "b"], "5", "first", None, ("a", "b")),
    ],
)
def test_pick_nodes(
    nodes: list[str], limit: str, method: str, seed: int | None, want: tuple[str, ...]
) -> None:
    assert client_mod.pick_nodes(nodes, limit, method, seed) == want


def test_random_pick_with_seed_is_repeatable() -> None:
    a = client_mod.pick_nodes(list("abcdefgh"), "3", "random", 42)
    assert a == client_mod.pick_nodes(list("hgfedcba"), "3", "random", 42) and len(set(a)) == 3


def test_bad_limit_is_usage_error() -> None:
    with pytest.raises(UsageError, match=r"^invalid --limit-nodes '1x'"):
        client_mod.parse_limit("1x")


def test_nothing_discovered_sends_nothing(broker: MemoryBroker, nodes: dict[str, FakeNode]) -> None:
    c, ev = make(broker)
    res = c.rpc("rpcutil", "ping", {}, Filter.from_cli(fact=["role=nosuch"]), FAST)
    assert not res.sent and res.discovered == () and ev.sent == []


def test_unknown_collective_is_refused(broker: MemoryBroker) -> None:
    c, _ = make(broker)
    with pytest.raises(
        UsageError,
        match=r"collective 'other' is not one of the configured collectives \(mcollective\)",
    ):
        c.rpc(
            "rpcutil", "ping", {}, Filter.from_cli(identity=["x"]), CallOptions(collective="other")
        )


def test_broker_down_is_transport_error(broker: MemoryBroker) -> None:
    broker.down = True
    c, _ = make(broker)
    with pytest.raises(TransportError):
        c.rpc("rpcutil", "ping", {}, Filter.from_cli(identity=["x"]), FAST)


def test_flatfile_narrowing_like_ruby() -> None:
    from mcollective_py.discovery import narrow_by_identity

    nodes = ("web1", "web2", "db1")
    assert narrow_by_identity(nodes, Filter.from_cli(identity=["/web/"]), "flatfile") == (
        "web1",
        "web2",
    )
    assert narrow_by_identity(nodes, Filter.from_cli(identity=["db1", "nothere"]), "flatfile") == (
        "db1",
    )
    # a regex entry replaces what came before, as in Ruby
    assert narrow_by_identity(nodes, Filter.from_cli(identity=["db1", "/web1/"]), "flatfile") == (
        "web1",
    )
    with pytest.raises(
        UsageError, match=r"cannot use fact filters with the flatfile discovery method"
    ):
        narrow_by_identity(nodes, Filter.from_cli(fact=["a=b"]), "flatfile")


def test_node_list_parsing_errors_name_the_line() -> None:
    from mcollective_py.discovery import parse_node_json, parse_node_lines

    assert parse_node_lines("# c\nnode1\n\nnode2\nnode1\n", "f") == ("node1", "node2")
    with pytest.raises(UsageError, match=r"^f:2: 'bad name' is not a valid identity"):
        parse_node_lines("ok\nbad name\n", "f")
    assert parse_node_json('[{"sender":"a"},{"certname":"b"}]', "stdin") == ("a", "b")
    with pytest.raises(UsageError, match=r"^stdin is not valid JSON"):
        parse_node_json("[", "stdin")
