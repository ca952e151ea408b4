"""The lab's files, as text: pure functions of the :class:`~.estate.Estate` (golden-tested).

* the service catalog ``services.yaml`` (the lab's ``shop`` with its releases and checksums);
* ``client.cfg`` and each node's ``server.cfg``, ``facts.yaml`` and ``classes.txt``;
* the Hiera node data and the manifest with which ``puppet apply`` renders HAProxy's config
  from ``puppet_modules/haproxy_pools`` (the paths of a lab, not of a real load balancer).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .estate import RELEASES, Estate, LabNode

#: HAProxy checks of the lab: fast, so that pool moves settle in well under a second.
HEALTH = {
    "type": "http",
    "path": "/health",
    "expect_status": 200,
    "interval": 0.2,
    "timeout": 1,
    "rise": 2,
    "fall": 2,
}


def catalog_doc(estate: Estate, checksums: Mapping[str, str]) -> dict[str, Any]:
    """The lab's service catalog (docs/release.md): one load-balanced service with the
    releases the lab built (``checksums``: version -> SHA-256 of its tarball)."""
    lb = estate.lb_nodes[0].identity
    return {
        "catalog": 1,
        "environments": {estate.environment: {"load_balancers": [lb]}},
        "defaults": {
            "os": "linux",
            "deploy": "artifact",
            "batch": {"size": 1, "canary": 1, "pause": 0, "max_failures": 0},
        },
        "services": {
            estate.service: {
                "description": "The lab's demo shop (mcollective_py/lab/demoapp), behind HAProxy",
                "role": "web",
                "artifact": f"{estate.artifact_base}/{{service}}/{{service}}-{{version}}.tar.gz",
                "port": estate.web_nodes[0].app_port,
                "health": dict(HEALTH),
                "lb": {"mode": "http", "balance": "roundrobin"},
                "migrations": {
                    "command": "bin/migrate",
                    "phase": "pre",
                    "timeout": 60,
                    # the demo's migration adds nothing an earlier release cannot run on
                    "rollback_compatible": {
                        v: list(RELEASES)[:i] for i, v in enumerate(RELEASES) if i
                    },
                },
                "releases": {v: {"sha256": checksums[v]} for v in RELEASES if v in checksums},
                "environments": {
                    estate.environment: {
                        "frontend": f"{estate.frontend[0]}:{estate.frontend[1]}",
                        "service_manager": "none",
                        "nodes": {
                            n.identity: {"address": n.address, "port": n.app_port}
                            for n in estate.web_nodes
                        },
                    }
                },
            }
        },
    }


def catalog_text(estate: Estate, checksums: Mapping[str, str]) -> str:
    head = (
        "# The lab's service catalog, written by `mco-py lab up` (docs/lab.md). Do not edit:\n"
        "# `mco-py lab down && mco-py lab up` writes it again with fresh ports and checksums.\n"
    )
    return head + yaml.safe_dump(catalog_doc(estate, checksums), sort_keys=False)


def _common_cfg(estate: Estate, libdir: str = "/usr/share/mcollective/plugins") -> str:
    b = estate.broker
    return (
        "main_collective = mcollective\n"
        "collectives = mcollective\n"
        f"libdir = {libdir}\n"
        "securityprovider = psk\n"
        f"plugin.psk = {b['psk']}\n"
        "connector = rabbitmq\n"
        f"plugin.rabbitmq.vhost = {estate.vhost}\n"
        "plugin.rabbitmq.pool.size = 1\n"
        f"plugin.rabbitmq.pool.1.host = {b['host']}\n"
        f"plugin.rabbitmq.pool.1.port = {b['stomp_port']}\n"
        f"plugin.rabbitmq.pool.1.amqp_port = {b['amqp_port']}\n"
        f"plugin.rabbitmq.pool.1.user = {b['user']}\n"
        f"plugin.rabbitmq.pool.1.password = {b['password']}\n"
    )


def client_cfg(estate: Estate) -> str:
    """The client config every ``mco-py`` command of the lab uses (``-c``)."""
    return (
        f"# The lab's client config, written by `mco-py lab up` ({estate.root}).\n"
        + _common_cfg(estate)
        + "identity = lab-client\nlogger_type = console\nloglevel = warn\n"
    )


def server_cfg(estate: Estate, node: LabNode, python: str) -> str:
    """A node's ``server.cfg``: identity, facts, classes and its agents' settings.  Web
    nodes run deploy + healthcheck (the app restarted by ``mco-py lab appctl``), the load
    balancer runs haproxy on the lab HAProxy's admin socket.  A Ruby node's file is read by
    ``mcollectived`` and, for the agents' settings, by ``mco-py agent run`` (its shims)."""
    d = Path(node.dir)
    libdir = "/usr/share/mcollective/plugins"
    ruby = node.daemon == "mcollectived"
    if ruby:  # Debian's mcollectived, hosting deploy and healthcheck through the lab's shims
        libdir += f":{estate.shims_dir}"
    lines = [
        f"# {node.identity} of the lab, written by `mco-py lab up`"
        + (" (Ruby mcollectived with mco-py shims)." if ruby else "."),
        _common_cfg(estate, libdir).rstrip("\n"),
        f"identity = {node.identity}",
        f"logfile = {d / 'server.log'}",
        "loglevel = info",
        f"plugin.yaml = {d / 'facts.yaml'}",
        f"classesfile = {d / 'classes.txt'}",
    ]
    if ruby:
        lines += ["daemonize = 0", "factsource = yaml"]
    if node.role == "lb":
        lines += [
            "plugin.deploy.activate_agent = false",
            "plugin.healthcheck.activate_agent = false",
            f"plugin.haproxy.socket = {estate.haproxy_socket}",
            "plugin.haproxy.poll_interval = 0.05",
        ]
    else:
        restart = " ".join(
            shlex.quote(a)
            for a in (
                python,
                "-m",
                "mcollective_py",
                "lab",
                "appctl",
                "restart",
                "--pidfile",
                str(d / "app.pid"),
                "--log",
                str(d / "app.log"),
                "--host",
                node.address,
                "--port",
                str(node.app_port),
                "--release-dir",
            )
        )
        lines += [
            "plugin.haproxy.activate_agent = false",
            f"plugin.deploy.root = {node.release_root}",
            f"plugin.deploy.config_dir = {d / 'etc'}",
            f"plugin.deploy.artifact_url = {estate.artifact_base}/{{service}}/{{service}}-{{version}}.tar.gz",
            "plugin.deploy.checksum_url = {url}.sha256",
            "plugin.deploy.download_timeout = 10",
            "plugin.deploy.service_manager = command",
            f"plugin.deploy.restart_command = {restart} {{release_dir}}",
            "plugin.deploy.restart_timeout = 30",
            f"plugin.deploy.{estate.service}.migrate_dsn = sqlite:///{estate.database}",
            f"plugin.healthcheck.version_url = {node.app_url}/version",
            f"plugin.healthcheck.smoke_command = bin/smoke-test {{junit}} {node.app_url}",
        ]
    return "\n".join(lines) + "\n"


def facts_yaml(node: LabNode) -> str:
    return yaml.safe_dump(dict(node.facts), sort_keys=True)


def classes_txt(node: LabNode) -> str:
    return "".join(f"{c}\n" for c in node.classes)


def lb_hiera(estate: Estate) -> str:
    """Hiera node data of the lab's load balancer: the ``haproxy_pools`` paths of this lab
    (its config, admin socket and state file under the lab directory), no package and no
    service (the lab starts HAProxy itself), logging to stdout (HAProxy's log file)."""
    hap = Path(estate.haproxy_cfg).parent
    data = {
        "haproxy_pools::config_dir": str(hap),
        "haproxy_pools::socket_path": estate.haproxy_socket,
        "haproxy_pools::state_file": str(hap / "server-state"),
        "haproxy_pools::manage_package": False,
        "haproxy_pools::manage_service": False,
        "haproxy_pools::log_target": "stdout",
        "haproxy_pools::maxconn": 2000,
    }
    return "# Written by `mco-py lab up`: the lab's load balancer.\n" + yaml.safe_dump(
        data, sort_keys=True
    )


LB_MANIFEST = (
    "# Written by `mco-py lab up`: the load balancer's part of examples/site.pp.\n"
    "include haproxy_pools\n"
)
