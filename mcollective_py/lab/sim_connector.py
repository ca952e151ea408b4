"""The simulator's connector: many identities behind ONE queue per broker connection.

:meth:`RabbitMQConnector.subscribe` gives each subscription its own exclusive queue, which
is right for a node (a handful of agents) but would mean 10,000 queues for 10,000 simulated
identities.  :class:`SharedQueueConnector` makes ``subscribe`` use the connector's public
:meth:`RabbitMQConnector.subscribe_shared` instead: one exclusive, auto-deleted queue bound
once per target (``<collective>_broadcast``/agent, ``<collective>_directed``/identity); a
delivery's ``destination`` (``exchange/routing_key``) says which binding matched.
Everything else (connecting, the broker pool, publishing, receiving, mapping broker failures
to TransportError) is the parent's.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..connectors.base import Target
from ..connectors.rabbitmq import RabbitMQConnector


class SharedQueueConnector(RabbitMQConnector):
    """``subscribe`` binds every target to a single queue (one consumer per connection)."""

    def subscribe(self, targets: Sequence[Target]) -> None:
        self.subscribe_shared(targets)
