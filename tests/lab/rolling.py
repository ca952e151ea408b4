"""A rolling deploy done by hand through the agents, node by node, as an operator would type
it before ``mco-py deploy`` existed: the demo's deployer in the tests that must not wait for
the driver (issue 12).  Per node: ``haproxy to_maintenance`` (drains it) -> ``deploy fetch`` ->
``deploy activate`` -> ``healthcheck service`` -> ``haproxy to_online`` (waits for passing
checks).  The first failing node is rolled back (``deploy rollback``, ``to_online``) and the
run stops: exit 1, like the driver's "failed and rolled back".
"""

from __future__ import annotations

import time
from pathlib import Path

from mcollective_py.errors import LabError
from mcollective_py.lab.demo import DemoEvents, DeployRun
from mcollective_py.lab.estate import Estate
from mcollective_py.lab.operator import rpc


def deploy_by_hand(
    estate: Estate,
    version: str,
    expected_exit: int,
    env: dict[str, str],
    ev: DemoEvents,
    report_dir: Path,
) -> DeployRun:
    started = time.monotonic()
    lb = [n.identity for n in estate.lb_nodes]
    svc = estate.service
    for node in estate.web_nodes:
        me = [node.identity]
        pool = {"server": node.identity, "backend": svc}
        rpc(estate, "haproxy", "to_maintenance", {**pool, "timeout": "20"}, lb, env, ev)
        try:
            rpc(estate, "deploy", "fetch", {"service": svc, "version": version}, me, env, ev)
            rpc(estate, "deploy", "activate", {"service": svc, "version": version}, me, env, ev)
            rpc(estate, "healthcheck", "smoke", {"service": svc, "version": version}, me, env, ev)
            rpc(estate, "haproxy", "to_online", {**pool, "timeout": "5"}, lb, env, ev)
        except LabError as exc:
            ev.output(f"{node.identity}: {exc}; rolling back")
            rpc(estate, "deploy", "rollback", {"service": svc}, me, env, ev)
            rpc(estate, "haproxy", "to_online", {**pool, "timeout": "20"}, lb, env, ev)
            return DeployRun(version, 1, expected_exit, "", "", "", time.monotonic() - started)
    return DeployRun(version, 0, expected_exit, "", "", "", time.monotonic() - started)
