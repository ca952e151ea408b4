"""The request exchange against the real RabbitMQ and real ``mco-py server`` nodes:
rejected replies reported by ``ping -v``, quiet-period discovery, and a long-lived Client
that survives the broker closing its connection or deleting its reply queue.

Only our own namespaced vhost is touched: the connection closed is the one named
``mco-py mco-lab-client`` in that vhost, the queue deleted is that client's reply queue.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator

import pika
import pytest

from mcollective_py import config
from mcollective_py.client import CallOptions, Client
from mcollective_py.connectors.rabbitmq import RabbitMQConnector
from mcollective_py.filter import Filter
from mcollective_py.message import Reply
from mcollective_py.security.psk import PskSecurity
from tests.conftest import PSK, PythonFleet, run_mco_py

pytestmark = pytest.mark.integration
NODES = ["node1", "node2", "node3"]


def _ctl(*args: str) -> str:
    r = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return r.stdout


# ---------------------------------------------------------------- a rogue responder
class Rogue(threading.Thread):
    """Answers every discovery ping in the vhost twice: once with bytes that are no
    message at all, once with a reply signed with the wrong psk."""

    def __init__(self, vhost: str) -> None:
        super().__init__(daemon=True, name="rogue")
        self.vhost = vhost
        self.answered = 0
        self.ready = threading.Event()
        self.halt = threading.Event()

    def run(self) -> None:
        conn = pika.BlockingConnection(
            pika.ConnectionParameters(
                "127.0.0.1", 5672, self.vhost, pika.PlainCredentials("mcollective", "marionette")
            )
        )
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        ch.queue_bind(q, "mcollective_broadcast", routing_key="discovery")
        good, forged = PskSecurity(PSK), PskSecurity("not-the-psk")
        self.ready.set()
        try:
            while not self.halt.is_set():
                method, props, body = ch.basic_get(q, auto_ack=True)
                if method is None:
                    conn.process_data_events(time_limit=0.05)
                    continue
                req = good.decode_request(body)
                reply = Reply("rogue", req.requestid, "discovery", int(time.time()), "pong")
                for payload in (b"\x04\x08garbage", forged.encode_reply(reply)):
                    ch.basic_publish("", props.reply_to, payload)
                self.answered += 1
        finally:
            conn.close()


@pytest.fixture
def rogue(python_fleet: PythonFleet) -> Iterator[Rogue]:
    r = Rogue(python_fleet.vhost)
    r.start()
    assert r.ready.wait(10)
    yield r
    r.halt.set()
    r.join(timeout=10)


def test_ping_v_reports_the_replies_it_rejected(python_fleet: PythonFleet, rogue: Rogue) -> None:
    r = run_mco_py(python_fleet.env, "ping", "-t", "3", "-v")
    assert r.returncode == 0, r.stderr
    assert sorted(ln.split()[0] for ln in r.stdout.splitlines()[:3]) == NODES
    assert "3 replies max:" in r.stdout and "rogue" not in r.stdout
    lines = r.stderr.splitlines()
    assert rogue.answered == 1
    assert lines[0] == "Rejected 2 replies (failed the security check or did not decode):"
    assert any("DigestMismatch" in ln for ln in lines[1:3])
    assert any("MarshalError" in ln or "SerializationError" in ln for ln in lines[1:3])
    quiet = run_mco_py(python_fleet.env, "ping", "-t", "2")
    assert quiet.returncode == 0 and "Rejected" not in quiet.stderr  # only with -v


def test_rpc_v_reports_rejected_discovery_replies(python_fleet: PythonFleet, rogue: Rogue) -> None:
    r = run_mco_py(python_fleet.env, "rpc", "rpcutil", "ping", "-F", "role=web", "-v")
    assert r.returncode == 0, r.stderr
    assert "Rejected 2 replies" in r.stderr


# ---------------------------------------------------------------- quiet-period discovery
def _client(fleet: PythonFleet) -> Client:
    return Client.from_config(config.load(str(fleet.client_cfg), env={}, system_dirs=()))


def test_quiet_discovery_ends_early_and_finds_every_node(python_fleet: PythonFleet) -> None:
    c = _client(python_fleet)
    try:
        res = c.rpc(
            "rpcutil",
            "ping",
            {},
            Filter(),
            CallOptions(discovery_timeout=10, discovery_quiet=0.8, timeout=10),
        )
    finally:
        c.connector.close()
    assert sorted(res.discovered) == NODES and res.all_ok
    # the whole 10 s bound without the quiet period; nodes answer in milliseconds
    assert res.stats.discovery_time < 5, res.stats


def test_find_with_discovery_quiet_flag(python_fleet: PythonFleet) -> None:
    start = time.monotonic()
    r = run_mco_py(python_fleet.env, "find", "--dt", "10", "--discovery-quiet", "800")
    took = time.monotonic() - start
    assert r.returncode == 0 and sorted(r.stdout.split()) == NODES, r.stderr
    assert took < 8, took


# ---------------------------------------------------------------- a long-lived client
def _own_connection(vhost: str) -> str:
    """The pid of the test client's connection in our own vhost (named by the connector)."""
    rows = [
        ln.split("\t")
        for ln in _ctl("list_connections", "pid", "vhost", "client_properties").splitlines()[1:]
    ]
    mine = [r[0] for r in rows if len(r) == 3 and r[1] == vhost and "mco-py mco-lab-client" in r[2]]
    assert len(mine) == 1, rows
    return mine[0]


def _all_reply(c: Client) -> None:
    res = c.rpc("rpcutil", "ping", {}, Filter(), CallOptions(discovery_timeout=2, timeout=10))
    assert sorted(res.responders) == NODES and res.all_ok, res


def test_client_survives_the_broker_closing_its_connection(python_fleet: PythonFleet) -> None:
    c = _client(python_fleet)
    try:
        _all_reply(c)
        pid = _own_connection(python_fleet.vhost)
        _ctl("close_connection", pid, "i11b test: closing our own client connection")
        deadline = time.monotonic() + 20
        while pid in _ctl("list_connections", "pid") and time.monotonic() < deadline:
            time.sleep(0.2)
        _all_reply(c)  # the next call reconnects and declares a new reply queue
        assert _own_connection(python_fleet.vhost) != pid
        assert len(c.ping(timeout=2).replies) == 3
    finally:
        c.connector.close()


def test_client_survives_its_reply_queue_being_deleted(python_fleet: PythonFleet) -> None:
    c = _client(python_fleet)
    try:
        _all_reply(c)
        assert isinstance(c.connector, RabbitMQConnector)
        old = c.connector.reply_queue()
        _ctl("delete_queue", "-p", python_fleet.vhost, old)
        deadline = time.monotonic() + 20
        while old in _ctl("list_queues", "-p", python_fleet.vhost, "name") and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        _all_reply(c)
        assert c.connector.reply_queue() != old
    finally:
        c.connector.close()
