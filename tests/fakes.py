"""Test doubles: nodes that answer on the in-memory broker (unit tests only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from mcollective_py.connectors.base import Target
from mcollective_py.connectors.memory import MemoryBroker, MemoryConnector
from mcollective_py.filter import matches
from mcollective_py.message import Reply
from mcollective_py.rpc import RPCReply, RPCRequest
from mcollective_py.security.psk import PskSecurity


class FakeNode(threading.Thread):
    """Answers discovery pings and RPC calls like a node would; ``handler(request) -> RPCReply``."""

    def __init__(
        self,
        broker: MemoryBroker,
        identity: str,
        *,
        psk: str = "secret",
        facts: Mapping[str, Any] | None = None,
        classes: tuple[str, ...] = (),
        agents: tuple[str, ...] = ("rpcutil", "discovery"),
        handler: Callable[[RPCRequest], RPCReply] | None = None,
        delay: float = 0.0,
        silent: bool = False,
        reply_psk: str | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"fake-{identity}")
        self.identity = identity
        self.conn = MemoryConnector(broker, identity=identity)
        self.sec = PskSecurity(psk)
        self.reply_sec = PskSecurity(reply_psk or psk)
        self.facts = dict(facts or {})
        self.classes = classes
        self.agents = agents
        self.handler = handler or (lambda r: RPCReply(0, "OK", {"pong": 1}))
        self.delay = delay
        self.silent = silent
        self.requests: list[Any] = []
        self._halt = threading.Event()
        self.conn.connect()
        self.conn.subscribe(
            [Target.broadcast("mcollective", a) for a in agents]
            + [Target.directed("mcollective", identity)]
        )

    def run(self) -> None:
        while not self._halt.is_set():
            d = self.conn.receive(0.05)
            if d is None:
                continue
            try:
                req = self.sec.decode_request(d.payload)
            except Exception:  # noqa: BLE001 - a fake node ignores what it cannot read
                continue
            if not matches(
                req.filter,
                identity=self.identity,
                facts=self.facts,
                classes=self.classes,
                agents=self.agents,
            ):
                continue
            self.requests.append(req)
            if self.silent:
                continue
            if self.delay:
                time.sleep(self.delay)
            if req.agent == "discovery":
                body: Any = "pong"
            else:
                body = self.handler(RPCRequest.from_wire(req.body)).to_wire()
            rep = Reply(self.identity, req.requestid, req.agent, int(time.time()), body)
            assert d.reply_to
            self.conn.publish(Target.reply(d.reply_to), self.reply_sec.encode_reply(rep))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2)
