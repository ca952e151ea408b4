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

from collections.abc import Callable, Mapping, Sequence
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


class ClientFleet:
    """The real :class:`Fleet` over a :class:`~mcollective_py.client.Client` (built by the
    CLI, the composition root, and handed in; this module never builds one).

    Each call checks ``data`` against the agent's DDL (found along ``libdirs`` and the
    project's ``ddl/``): string keys become the DDL's Symbol keys, the defaults of required
    inputs are added, and a refused input raises ``ValidationError`` before anything is sent.
    Identities are static: the request goes to exactly ``identities`` (no discovery round).
    ``options(timeout)`` makes the client's call options (the composition root passes
    ``lambda t: CallOptions(timeout=t, agent_timeout=t)``), so this module imports neither the
    client nor, through it, a connector or a security provider.
    """

    def __init__(
        self, client: Any, options: Callable[[float], Any], libdirs: Sequence[str] = ()
    ) -> None:
        self.client = client
        self.options = options
        self.libdirs = list(libdirs)

    def call(
        self,
        agent: str,
        action: str,
        data: Mapping[str, Any],
        identities: Sequence[str],
        *,
        timeout: float,
    ) -> Results:
        from ..ddl import apply_defaults, load_agent_ddl, validate_request
        from ..filter import Filter
        from ..rubytypes import Symbol

        ddl = load_agent_ddl(agent, self.libdirs)
        request: dict[Any, Any] = {Symbol(str(k)): v for k, v in data.items()}
        if action in ddl.actions:
            request = apply_defaults(ddl.actions[action], request)
        validate_request(ddl, action, request)
        flt = Filter.from_cli(identity=list(identities))
        results: Results = self.client.rpc(agent, action, request, flt, self.options(timeout))
        return results
