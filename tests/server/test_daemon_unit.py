"""The daemon's decisions on the in-memory broker (the real broker: tests/integration)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcollective_py.client import CallOptions, Client
from mcollective_py.connectors.base import Delivery
from mcollective_py.connectors.memory import MemoryBroker, MemoryConnector
from mcollective_py.ddl import load_agent_ddl
from mcollective_py.filter import Filter
from mcollective_py.message import Request, new_requestid
from mcollective_py.rpc import RPCRequest
from mcollective_py.security.psk import PskSecurity
from mcollective_py.server.agent import AgentContext, AgentLoadError
from mcollective_py.server.daemon import Daemon, NodeView
from tests.agents.pyecho import PyEcho

REPO = Path(__file__).resolve().parents[2]
LIBDIR = str(REPO / "tests" / "agents")


def make_daemon(broker: MemoryBroker, identity: str = "node1", **kw) -> Daemon:  # type: ignore[no-untyped-def]
    ctx = AgentContext(identity=identity)
    agent = PyEcho(load_agent_ddl("pyecho", [LIBDIR]), ctx)
    return Daemon(
        connector=MemoryConnector(broker, identity=identity),
        security=PskSecurity("secret"),
        node=NodeView(identity, ["mcollective"], lambda: {"role": "web"}, lambda: ["roles::web"]),
        agents={"pyecho": agent},
        **kw,
    )


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def running(broker: MemoryBroker) -> Iterator[Daemon]:
    import threading

    d = make_daemon(broker)
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not broker.bindings and time.monotonic() < deadline:
        time.sleep(0.01)
    yield d
    d.stop()
    t.join(timeout=5)


def client(broker: MemoryBroker) -> Client:
    return Client(
        MemoryConnector(broker, identity="client"),
        PskSecurity("secret", callerid="uid=7"),
        identity="client",
    )


def test_answers_rpc_and_discovery(broker: MemoryBroker, running: Daemon) -> None:
    c = client(broker)
    res = c.rpc(
        "pyecho",
        "echo",
        {"msg": "hi there"},
        Filter.from_cli(fact=["role=web"]),
        CallOptions(discovery_timeout=0.3, timeout=2),
    )
    assert res.responders == ("node1",)
    r = res.replies[0]
    assert r.statuscode == 0 and r.data == {
        "message": "hi there",
        "length": 8,
        "caller": "uid=7",
        "words": ["hi", "there"],
    }
    assert c.ping(timeout=0.3).replies and running.stats.snapshot()["replies"] >= 2


def test_filtered_out_requests_get_no_reply(broker: MemoryBroker, running: Daemon) -> None:
    res = client(broker).rpc(
        "pyecho",
        "echo",
        {"msg": "x"},
        Filter.from_cli(identity=["node1"], fact=["role=db"]),
        CallOptions(timeout=0.3),
    )
    # identity-only? no: a fact filter is present, but literal -I skips discovery and resets the wire filter (Ruby)
    assert res.responders == ("node1",)
    res = client(broker).rpc(
        "pyecho",
        "echo",
        {"msg": "x"},
        Filter.from_cli(fact=["role=db"]),
        CallOptions(discovery_timeout=0.3, timeout=0.3),
    )
    assert not res.sent
    assert running.stats.snapshot()["filtered"] >= 1


def test_statuscodes_from_exceptions_and_validation(broker: MemoryBroker, running: Daemon) -> None:
    c = client(broker)
    flt = Filter.from_cli(identity=["node1"])
    r = c.rpc("pyecho", "echo", {"msg": "fail:1"}, flt, CallOptions(timeout=2)).replies[0]
    assert (r.statuscode, r.statusmsg) == (1, "asked to fail with 1")
    r = c.rpc("pyecho", "echo", {"msg": "fail:4"}, flt, CallOptions(timeout=2)).replies[0]
    assert r.statuscode == 4
    r = c.rpc("pyecho", "echo", {}, flt, CallOptions(timeout=2)).replies[0]
    assert (r.statuscode, r.statusmsg) == (4, "Action echo needs a msg argument")
    r = c.rpc("pyecho", "nosuch", {}, flt, CallOptions(timeout=2)).replies[0]
    assert (r.statuscode, r.statusmsg) == (
        4,
        "Attempted to call action nosuch for pyecho but it's not declared in the DDL",
    )


def _delivery(payload: bytes) -> Delivery:
    return Delivery(payload=payload, reply_to="q", sender="x")


def _req(
    agent: str = "pyecho", collective: str = "mcollective", msgtime: int | None = None
) -> Request:
    return Request(
        agent=agent,
        collective=collective,
        body=RPCRequest(agent, "echo", "uid=0", {"msg": "a"}).to_wire(),
        senderid="c",
        requestid=new_requestid(),
        callerid="uid=0",
        ttl=60,
        msgtime=int(time.time()) if msgtime is None else msgtime,
        filter={"fact": [], "cf_class": [], "agent": [], "identity": [], "compound": []},
    )


@pytest.mark.parametrize(
    ("payload", "counter"),
    [
        (lambda s: b"\x04\x08garbage", "bad_messages"),
        (lambda s: b"", "bad_messages"),
        (lambda s: s.encode_request(_req())[:-7], "bad_messages"),
        (lambda s: PskSecurity("wrong").encode_request(_req()), "unvalidated"),
        (lambda s: s.encode_request(_req(msgtime=1)), "ttlexpired"),
        (lambda s: s.encode_request(_req(collective="other")), "wrong_collective"),
        (lambda s: s.encode_request(_req(agent="nosuchagent")), "unknown_agent"),
    ],
    ids=[
        "garbage",
        "empty",
        "truncated",
        "wrong-psk",
        "expired",
        "wrong-collective",
        "unknown-agent",
    ],
)
def test_refusals_are_counted_and_answered_with_silence(
    broker: MemoryBroker, payload, counter: str, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    d = make_daemon(broker)
    with caplog.at_level("WARNING", logger="mcollective_py.server"):
        assert d.handle(_delivery(payload(PskSecurity("secret")))) is None
    snap = d.stats.snapshot()
    assert snap[counter] == 1 and snap["total"] == 1 and snap["replies"] == 0
    assert len([r for r in caplog.records if "rejected" in r.getMessage()]) == 1


def test_replay_hook_drops_second_copy(broker: MemoryBroker) -> None:
    seen: set[str] = set()

    def fresh(req: Request) -> str:
        if req.requestid in seen:
            return "replayed"
        seen.add(req.requestid)
        return "admitted"

    d = make_daemon(broker, replay_check=fresh)
    payload = PskSecurity("secret").encode_request(_req())
    assert d.handle(_delivery(payload)) is not None
    assert d.handle(_delivery(payload)) is None
    assert d.stats.snapshot()["replayed"] == 1


def test_no_reply_when_process_results_false(broker: MemoryBroker) -> None:
    d = make_daemon(broker)
    req = _req()
    body = RPCRequest("pyecho", "echo", "uid=0", {"msg": "a"}, process_results=False).to_wire()
    from dataclasses import replace

    assert (
        d.handle(_delivery(PskSecurity("secret").encode_request(replace(req, body=body)))) is None
    )


def test_agent_out_of_step_with_ddl_refuses_to_load() -> None:
    from mcollective_py.server.agent import Agent, action

    class Half(Agent):
        name = "pyecho"

        @action
        def echo(self, req, reply):  # type: ignore[no-untyped-def]
            pass

        @action
        def extra(self, req, reply):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(
        AgentLoadError,
        match=r"DDL actions without a method: sum; @action methods not in the DDL: extra",
    ):
        Half(load_agent_ddl("pyecho", [LIBDIR]))


def test_overload_is_refused_not_queued(broker: MemoryBroker) -> None:
    d = make_daemon(broker, threads=1, max_pending=1)
    import threading

    gate = threading.Event()
    orig = d.dispatch
    d.dispatch = lambda dv, req: (gate.wait(2), orig(dv, req))[1]  # type: ignore[method-assign]
    d.connector.connect()
    p = PskSecurity("secret").encode_request(_req())
    d.submit(_delivery(p))
    d.submit(_delivery(p))
    assert d.stats.snapshot()["overloaded"] == 1
    gate.set()
    d.drain(5)


def test_envelope_agent_must_match_the_signed_body(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    d = make_daemon(broker)
    req = replace(
        _req(agent="pyecho"), body=RPCRequest("rpcutil", "echo", "uid=0", {"msg": "a"}).to_wire()
    )
    with caplog.at_level("WARNING", logger="mcollective_py.server"):
        assert d.handle(_delivery(PskSecurity("secret").encode_request(req))) is None
    assert d.stats.snapshot()["bad_messages"] == 1
    assert "envelope agent 'pyecho' differs from the signed body's 'rpcutil'" in caplog.text


def test_replay_check_may_answer_with_a_bool(broker: MemoryBroker) -> None:
    d = make_daemon(broker, replay_check=lambda req: True)
    assert d.handle(_delivery(PskSecurity("secret").encode_request(_req()))) is not None
    d = make_daemon(broker, replay_check=lambda req: False)
    assert d.handle(_delivery(PskSecurity("secret").encode_request(_req()))) is None
