"""Connector: the broker shell. Moves opaque payloads between clients and nodes.

A connector knows MCollective's addressing on its broker and nothing about what the bytes
mean.  Contract:

* ``connect()`` reaches a broker (trying the pool in order) or raises TransportError naming
  every ``host:port`` tried and why.
* ``reply_queue()`` (clients) declares, once, a private queue for replies and returns the
  name to put in ``reply_to``.
* ``subscribe(targets)`` (nodes) starts delivery of requests for broadcast agents and the
  node's own directed queue.
* ``publish(target, payload, ...)`` sends one message; TransportError on failure.
* ``receive(timeout)`` returns the next :class:`Delivery`, or None when ``timeout`` seconds
  pass with nothing; it never blocks longer than ``timeout``.
* ``close()`` is idempotent and never raises.

No broker library exception ever leaves a connector: they become TransportError here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """Where a message goes.

    * ``broadcast``: every node subscribed to ``agent`` in ``collective``.
    * ``directed``: the node ``identity`` in ``collective``.
    * ``reply``: a reply destination exactly as received in a request's ``reply_to``.
    """

    kind: str
    collective: str = ""
    agent: str = ""
    identity: str = ""
    reply_to: str = ""

    @classmethod
    def broadcast(cls, collective: str, agent: str) -> Target:
        return cls("broadcast", collective=collective, agent=agent)

    @classmethod
    def directed(cls, collective: str, identity: str) -> Target:
        return cls("directed", collective=collective, identity=identity)

    @classmethod
    def reply(cls, reply_to: str) -> Target:
        return cls("reply", reply_to=reply_to)


@dataclass(frozen=True)
class Delivery:
    """One received message: the payload bytes plus the transport facts about it."""

    payload: bytes
    reply_to: str | None = None
    sender: str | None = None
    expiration_ms: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    destination: str = ""


class Connector(ABC):
    """Move payloads to and from the broker on MCollective's destinations."""

    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def reply_queue(self) -> str: ...

    @abstractmethod
    def subscribe(self, targets: Sequence[Target]) -> None: ...

    @abstractmethod
    def publish(
        self,
        target: Target,
        payload: bytes,
        *,
        reply_to: str | None = None,
        ttl: int = 60,
        sender: str = "",
    ) -> None: ...

    @abstractmethod
    def receive(self, timeout: float) -> Delivery | None: ...

    def publish_threadsafe(
        self,
        target: Target,
        payload: bytes,
        *,
        reply_to: str | None = None,
        ttl: int = 60,
        sender: str = "",
    ) -> None:
        """``publish`` from another thread than the one calling ``receive``: the message is
        handed to the connector's own thread and sent from there.  Errors are logged, not
        raised (the caller has moved on).  Connectors that are thread-safe may just publish."""
        self.publish(target, payload, reply_to=reply_to, ttl=ttl, sender=sender)

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Connector:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
