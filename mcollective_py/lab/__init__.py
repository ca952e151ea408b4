"""The local lab: a real estate on loopback addresses (docs/lab.md).

One RabbitMQ vhost, HAProxy configured by ``puppet apply`` of ``haproxy_pools``, an artifact
server holding releases of a demo service, N app nodes (the app plus ``mco-py server`` with the
deploy and healthcheck agents) and a load balancer node (``mco-py server`` with the haproxy
agent).  Python API, also used by tests as a fixture::

    from mcollective_py.lab import LabSpec, up, down, install
    estate = up(LabSpec(root=Path("/tmp/my-lab"), vhost="/my-lab")).estate
    install(estate, "1.0.0", child_env())
    ...  # estate.client_cfg, estate.catalog, estate.frontend, estate.haproxy_socket, ...
    down(Path(estate.root))

Nothing here prints; ``cli/lab.py`` does.
"""

from __future__ import annotations

from .estate import INITIAL_VERSION, RELEASES, Estate, LabNode, LabProcess, LabSpec, load_estate
from .lifecycle import DownResult, LabEvents, UpResult, alive, child_env, current_pids, down, up
from .operator import Command, OperatorEvents, deploy_command, install

__all__ = [
    "INITIAL_VERSION",
    "RELEASES",
    "Command",
    "DownResult",
    "Estate",
    "LabEvents",
    "LabNode",
    "LabProcess",
    "LabSpec",
    "OperatorEvents",
    "UpResult",
    "alive",
    "child_env",
    "current_pids",
    "deploy_command",
    "down",
    "install",
    "load_estate",
    "up",
]
