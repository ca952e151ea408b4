"""Raw access to a node's queues for the hostile daemon tests: publish any bytes, collect
replies, read the daemon's counters and log.  Real broker, real ``mco-py server``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika

from mcollective_py import marshal
from mcollective_py.message import Request, new_requestid
from mcollective_py.rpc import RPCRequest
from mcollective_py.rubytypes import Symbol

BROKER_USER = pika.PlainCredentials("mcollective", "marionette")


def filter_for(agent: str) -> dict[str, list[Any]]:
    return {"fact": [], "cf_class": [], "agent": [agent], "identity": [], "compound": []}


def rpc_request(
    agent: str,
    action: str,
    data: dict[str, Any],
    *,
    caller: str = "uid=0",
    ttl: int = 60,
    flt: dict[str, list[Any]] | None = None,
) -> Request:
    """A request as ``mco-py rpc`` builds it (body ``:caller`` = envelope callerid)."""
    return Request(
        agent=agent,
        collective="mcollective",
        body=RPCRequest(agent, action, caller, data).to_wire(),
        senderid="mco-lab-client",
        requestid=new_requestid(),
        callerid=caller,
        ttl=ttl,
        msgtime=int(time.time()),
        filter=flt if flt is not None else filter_for(agent),
    )


def rewrite_envelope(payload: bytes, **fields: Any) -> bytes:
    """A captured Marshal envelope with some top-level fields replaced (digest untouched)."""
    env = marshal.loads(payload)
    for key, value in fields.items():
        env[Symbol(key)] = value
    return marshal.dumps(env)


@dataclass
class Wire:
    channel: Any
    reply_queue: str

    def publish(self, node: str, payload: bytes) -> None:
        self.channel.basic_publish(
            "mcollective_directed", node, payload, pika.BasicProperties(reply_to=self.reply_queue)
        )

    def replies(self, decode: Callable[[bytes], Any], wait: float, count: int = 0) -> list[Any]:
        """Replies arriving within ``wait`` seconds (stops early at ``count``)."""
        out: list[Any] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not (count and len(out) >= count):
            method, _, body = self.channel.basic_get(self.reply_queue, auto_ack=True)
            if method is None:
                time.sleep(0.05)
                continue
            out.append(decode(body))
        return out


@contextmanager
def wire(vhost: str) -> Iterator[Wire]:
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672, vhost, BROKER_USER))
    try:
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        yield Wire(ch, q)
    finally:
        conn.close()


def wait_for_log(path: Any, text: str, count: int = 1, timeout: float = 5.0) -> str:
    """The log once ``text`` appears ``count`` times in it (AssertionError after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text(errors="replace")
        if content.count(text) >= count or time.monotonic() > deadline:
            assert content.count(text) >= count, (
                f"{text!r} x{count} not in {path}:\n{content[-3000:]}"
            )
            return str(content)
        time.sleep(0.1)
