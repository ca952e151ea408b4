"""In-process broker and connector: the test double for :class:`Connector`.

Semantics match the RabbitMQ layout closely enough for unit tests: a broadcast reaches every
connector subscribed to that (collective, agent); a directed message reaches the connector
subscribed as that identity; a reply reaches the connector that owns the reply queue.  Never
used against real nodes.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Sequence

from ..errors import TransportError
from .base import Connector, Delivery, Target


class MemoryBroker:
    """Routes messages between MemoryConnectors in one process. ``down`` simulates an outage;
    ``sent`` records every publish as ``(target, payload, reply_to)``."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.queues: dict[str, collections.deque[Delivery]] = {}
        self.bindings: dict[tuple[str, str, str], set[str]] = collections.defaultdict(set)
        self.down = False
        self.sent: list[tuple[Target, bytes, str | None]] = []
        self._seq = itertools.count(1)

    def new_queue(self) -> str:
        name = f"amq.gen-mem{next(self._seq)}"
        self.queues[name] = collections.deque()
        return name

    def route(self, target: Target, delivery: Delivery) -> None:
        with self.lock:
            self.sent.append((target, delivery.payload, delivery.reply_to))
            if target.kind == "reply":
                names = {target.reply_to}
            elif target.kind == "broadcast":
                names = self.bindings.get(("broadcast", target.collective, target.agent), set())
            else:
                names = self.bindings.get(("directed", target.collective, target.identity), set())
            for n in names:
                if n in self.queues:
                    self.queues[n].append(delivery)
            self.lock.notify_all()


class MemoryConnector(Connector):
    """A connector on a :class:`MemoryBroker`. One queue per connector receives everything it
    subscribed to, including its replies."""

    def __init__(self, broker: MemoryBroker, *, identity: str = "memory") -> None:
        self.broker = broker
        self.identity = identity
        self._queue: str | None = None

    def connect(self) -> None:
        if self.broker.down:
            raise TransportError("cannot connect to memory broker: it is down")
        if self._queue is None:
            with self.broker.lock:
                self._queue = self.broker.new_queue()

    def _q(self) -> str:
        if self._queue is None:
            raise TransportError("not connected; call connect() first")
        return self._queue

    def reply_queue(self) -> str:
        return self._q()

    def subscribe(self, targets: Sequence[Target]) -> None:
        q = self._q()
        with self.broker.lock:
            for t in targets:
                key = t.agent if t.kind == "broadcast" else t.identity
                self.broker.bindings[(t.kind, t.collective, key)].add(q)

    def publish(
        self,
        target: Target,
        payload: bytes,
        *,
        reply_to: str | None = None,
        ttl: int = 60,
        sender: str = "",
    ) -> None:
        self._q()
        if self.broker.down:
            raise TransportError("publish failed: memory broker is down")
        self.broker.route(
            target,
            Delivery(
                payload=payload,
                reply_to=reply_to,
                sender=sender or self.identity,
                expiration_ms=(ttl + 10) * 1000,
                headers={"mc_sender": sender or self.identity},
            ),
        )

    def receive(self, timeout: float) -> Delivery | None:
        q = self._q()
        with self.broker.lock:
            if not self.broker.queues[q]:
                self.broker.lock.wait_for(lambda: bool(self.broker.queues[q]), timeout=timeout)
            return self.broker.queues[q].popleft() if self.broker.queues[q] else None

    def close(self) -> None:
        if self._queue is not None:
            with self.broker.lock:
                self.broker.queues.pop(self._queue, None)
                for names in self.broker.bindings.values():
                    names.discard(self._queue)
            self._queue = None
