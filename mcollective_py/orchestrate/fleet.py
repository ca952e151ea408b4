"""The narrow seam between the orchestrator and the nodes.

The executor talks to nodes only through :class:`Fleet`: one RPC to a *static* list of
identities (no discovery: the plan names every node), returning the ordinary
:class:`~mcollective_py.results.Results`. A silent node is in ``Results.no_response`` and the
executor treats it as a failure, never as a skip. Implementations:

* ``ClientFleet`` (real): over a :class:`~mcollective_py.client.Client` built by the
  composition root and handed in; this module never builds connectors or security itself.
* ``FakeFleet`` (tests): scripted answers, in ``tests/orchestrate/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..results import Results


class Fleet(Protocol):
    """One verb. Raises only ``TransportError`` (broker trouble) and ``ValidationError``
    (inputs a DDL refuses); a node's own failure is a reply with a non-zero statuscode."""

    def call(
        self,
        agent: str,
        action: str,
        data: Mapping[str, Any],
        identities: Sequence[str],
        *,
        timeout: float,
    ) -> Results: ...
