"""The simulator's connector: many identities behind ONE queue per broker connection.

:class:`RabbitMQConnector` gives each subscription its own exclusive queue, which is right
for a node (a handful of agents) but would mean 10,000 queues for 10,000 simulated
identities.  :class:`SharedQueueConnector` declares one exclusive, auto-deleted queue and
binds it once per target (``<collective>_broadcast``/agent, ``<collective>_directed``/
identity); a delivery's ``destination`` (``exchange/routing_key``) says which binding
matched.  Everything else (connecting, the broker pool, publishing, receiving, mapping broker
failures to TransportError) is the parent's.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..connectors.base import Target
from ..connectors.rabbitmq import RabbitMQConnector
from ..errors import TransportError


class SharedQueueConnector(RabbitMQConnector):
    """``subscribe`` binds every target to a single queue (one consumer per connection)."""

    def subscribe(self, targets: Sequence[Target]) -> None:
        ch = self._channel()
        bindings = []
        for t in targets:
            if t.kind == "broadcast":
                bindings.append((f"{t.collective}_broadcast", t.agent))
            elif t.kind == "directed":
                bindings.append((f"{t.collective}_directed", t.identity))
            else:
                raise TransportError(f"cannot subscribe to a {t.kind} target")
        for exchange in sorted({e for e, _ in bindings}):
            self._check_exchange(exchange)
        try:
            q = ch.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
            for exchange, key in bindings:
                ch.queue_bind(queue=q, exchange=exchange, routing_key=key)
            ch.basic_consume(queue=q, on_message_callback=self._on_message, auto_ack=True)
        except TransportError:
            raise
        except Exception as exc:  # noqa: BLE001 - pika's errors, translated here (no pika import)
            raise TransportError(
                f"cannot bind {len(bindings)} simulated subscriptions: {exc or type(exc).__name__}"
            ) from None
        self._subscriptions.extend(targets)
