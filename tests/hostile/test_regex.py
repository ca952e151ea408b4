"""Issue 10 item 2 acceptance: no sender-chosen regex stalls a node.

A real ``mco-py server`` on the real broker gets a burst of requests whose identity filter is
catastrophic (``/(a|aa)+X/`` and the issue's ``/(.|.|.|.)*X/`` against a 48-character
identity) and healthcheck calls whose ``body_regex`` is catastrophic on the body it fetches.
Meanwhile ``rpcutil ping`` is sent every 100 ms: every ping must be answered within 1 s.
The bounded patterns are answered as clear failures (the filter drops the request and says
why in the log; the healthcheck replies with a failed check) and counted; a pattern that ran
out of time once is refused at once afterwards.

Also the inspect budget (issue 10 item 5): a request whose data is ``x = [x, x]`` 20 deep
(a few hundred bytes of Marshal, 2**20 leaves expanded) is rendered by ``rpc -v`` within
the budget, cut and marked.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from mcollective_py import marshal
from mcollective_py.message import Request, new_requestid
from mcollective_py.rpc import RPCReply, RPCRequest
from mcollective_py.ruby.inspect import CUT_MARK, inspect
from mcollective_py.security.psk import PskSecurity
from tests.conftest import PSK, PythonFleet, lab_dir, ns_vhost

pytestmark = pytest.mark.integration

NODE = "hostile-" + "a" * 40  # 48 characters: (a|aa)+X explores ~fib(40) paths
# two distinct exponential patterns (each costs one budget, then is refused at once) and
# the example, which the regex engine runs in linear time
CATASTROPHIC_FILTERS = ["/(a|aa)+X/", "/(a|aa)+Y/", "/(.|.|.|.)*X/", "/(a|aa)+X/"]
BODY = "a" * 40 + "\n"
BODY_REGEX = "(a|aa)+X"


@pytest.fixture(scope="module")
def fleet() -> Iterator[PythonFleet]:
    f = PythonFleet(lab_dir("hostile-regex"), ns_vhost("mco-py-hostile"), [NODE])
    with f:
        yield f


@pytest.fixture(scope="module")
def body_url() -> Iterator[str]:
    """An HTTP server in our address block serving a body that ``BODY_REGEX`` chokes on."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            data = BODY.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.11.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.11.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Wire:
    """A raw client on the fleet's vhost: publish psk requests, collect replies by id."""

    def __init__(self, vhost: str) -> None:
        self.conn = pika.BlockingConnection(
            pika.ConnectionParameters(
                "127.0.0.1", 5672, vhost, pika.PlainCredentials("mcollective", "marionette")
            )
        )
        self.ch = self.conn.channel()
        self.reply_q = self.ch.queue_declare("", exclusive=True).method.queue
        self.psk = PskSecurity(PSK, callerid="uid=0")
        self.sent: dict[str, float] = {}
        self.replies: dict[str, tuple[float, RPCReply]] = {}

    def send(self, agent: str, action: str, data: dict[str, Any], identity: list[Any]) -> str:
        rid = new_requestid()
        req = Request(
            agent=agent,
            collective="mcollective",
            body=RPCRequest(agent, action, "uid=0", data).to_wire(),
            senderid="hostile-client",
            requestid=rid,
            callerid="uid=0",
            ttl=60,
            msgtime=int(time.time()),
            filter={
                "fact": [],
                "cf_class": [],
                "agent": [agent],
                "identity": identity,
                "compound": [],
            },
        )
        payload = self.psk.encode_request(req)
        self.sent[rid] = time.monotonic()
        self.ch.basic_publish(
            "mcollective_directed", NODE, payload, pika.BasicProperties(reply_to=self.reply_q)
        )
        return rid

    def pump(self, seconds: float) -> None:
        """Collect replies for ``seconds`` (stamping each with its arrival time)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            method, _, body = self.ch.basic_get(self.reply_q, auto_ack=True)
            if method is None:
                self.conn.sleep(0.01)
                continue
            reply = self.psk.decode_reply(body)
            self.replies[reply.requestid] = (time.monotonic(), RPCReply.from_wire(reply.body))

    def close(self) -> None:
        self.conn.close()


def test_catastrophic_regexes_do_not_stall_the_node(fleet: PythonFleet, body_url: str) -> None:
    wire = Wire(fleet.vhost)
    log_before = fleet.log(NODE).read_text().count("\n")
    try:
        # the hostile burst: catastrophic filters, and healthchecks with a catastrophic body_regex
        filtered = [
            wire.send("rpcutil", "ping", {}, [CATASTROPHIC_FILTERS[i % 4]]) for i in range(16)
        ]
        checks = [
            wire.send(
                "healthcheck",
                "http",
                {"url": body_url, "body_regex": BODY_REGEX, "retries": 0, "timeout": 5},
                [],
            )
            for _ in range(4)
        ]
        # rpcutil ping every 100 ms while the burst is processed
        pings = []
        for _ in range(30):
            pings.append(wire.send("rpcutil", "ping", {}, [NODE]))
            wire.pump(0.1)
        wire.pump(3)
    finally:
        wire.close()

    latencies = {rid: wire.replies[rid][0] - wire.sent[rid] for rid in pings if rid in wire.replies}
    assert len(latencies) == len(pings), f"unanswered pings: {len(pings) - len(latencies)}"
    print(
        f"rpcutil ping during the burst: {len(latencies)} answered, slowest {max(latencies.values()):.3f} s"
    )
    slow = {rid: round(t, 3) for rid, t in latencies.items() if t >= 1.0}
    assert not slow, f"pings answered after 1 s or more: {slow}"
    assert all(wire.replies[rid][1].statuscode == 0 for rid in pings)

    # the catastrophic filters: dropped (no reply), the reason logged
    assert not any(rid in wire.replies for rid in filtered)
    new_lines = fleet.log(NODE).read_text().splitlines()[log_before:]
    bounded = [ln for ln in new_lines if "took longer than" in ln and "does not pass filters" in ln]
    # (.|.|.|.)*X is linear for the regex engine; the (a|aa)+ ones are all refused
    assert len(bounded) == 12, new_lines[-20:]
    ran_out = [ln for ln in new_lines if "ran out of its" in ln]
    assert sum(1 for ln in ran_out if "+X/" in ln or "+Y/" in ln) == 2, ran_out
    assert any(f"/{BODY_REGEX}/" in ln for ln in ran_out)

    # the catastrophic body_regex: a clear failed check, not a hang
    for rid in checks:
        assert rid in wire.replies, "healthcheck did not answer"
        reply = wire.replies[rid][1]
        assert reply.statuscode != 0
        assert "body_regex failed" in reply.statusmsg and "took longer than" in reply.statusmsg
    assert fleet.procs[NODE].poll() is None


def test_shared_reference_data_is_rendered_within_the_budget() -> None:
    value: Any = "leaf"
    for _ in range(20):
        value = [value, value]  # 2**20 leaves, 21 objects
    wire_bytes = marshal.dumps({"data": value})
    assert len(wire_bytes) < 1000
    # the daemon's decoder refuses this by default (max_expansion; test_decode_limits.py):
    # here the renderer's own budget is under test, for a value that got past a raised cap
    decoded = marshal.loads(wire_bytes, max_expansion=1 << 30)
    text = inspect(decoded)
    assert text.endswith(CUT_MARK)
    assert len(text) <= 1_000_000 + len(CUT_MARK)
