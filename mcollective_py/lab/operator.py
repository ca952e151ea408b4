"""Driving the lab the way an operator does: ``mco-py`` commands as child processes.

:func:`install` puts one release on every app node through the agents (``deploy fetch`` and
``deploy activate`` on all web nodes at once, then ``haproxy wait_for_state UP`` of every node
on the load balancer), which is how a first release lands on an empty estate: no traffic yet,
so no pool moves.  Rolling releases under traffic are ``mco-py deploy run``'s job
(:func:`deploy_command`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import LabError
from .estate import Estate

MCO_PY = (sys.executable, "-m", "mcollective_py")


@dataclass(frozen=True)
class Command:
    """One ``mco-py`` command the lab ran, and what came of it."""

    argv: tuple[str, ...]
    exit_code: int
    output: str
    replies: tuple[dict[str, Any], ...] = ()

    @property
    def shown(self) -> str:
        """The command as an operator types it (``mco-py ...``)."""
        return " ".join(("mco-py", *self.argv))


class OperatorEvents:
    """Hooks: each command before it runs and after; no-ops by default."""

    def command(self, shown: str) -> None:
        """A command is about to run."""

    def finished(self, cmd: Command) -> None:
        """It finished."""


def mco_py(
    argv: Sequence[str], env: dict[str, str], events: OperatorEvents, timeout: float = 300
) -> Command:
    shown = " ".join(("mco-py", *argv))
    events.command(shown)
    try:
        r = subprocess.run(
            [*MCO_PY, *argv], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"{shown} took more than {timeout:g} s") from None
    replies: tuple[dict[str, Any], ...] = ()
    if "--json" in argv and r.stdout.strip():
        try:
            doc = json.loads(r.stdout)
            replies = tuple(x for x in doc if isinstance(x, dict)) if isinstance(doc, list) else ()
        except json.JSONDecodeError:
            replies = ()
    cmd = Command(tuple(argv), r.returncode, r.stdout + r.stderr, replies)
    events.finished(cmd)
    return cmd


def rpc(
    estate: Estate,
    agent: str,
    action: str,
    data: dict[str, str],
    identities: Sequence[str],
    env: dict[str, str],
    events: OperatorEvents,
) -> Command:
    """``mco-py rpc AGENT ACTION k=v... -I ID... -c CLIENT_CFG --json``; LabError unless every
    node answered statuscode 0."""
    argv = ["rpc", agent, action, *(f"{k}={v}" for k, v in data.items())]
    argv += [a for i in identities for a in ("-I", i)]
    argv += ["-c", estate.client_cfg, "--json"]
    cmd = mco_py(argv, env, events)
    answered = {r.get("sender"): r for r in cmd.replies}
    bad = [
        f"{i}: {answered[i].get('statusmsg')}" if i in answered else f"{i}: no answer"
        for i in identities
        if i not in answered or answered[i].get("statuscode") != 0
    ]
    if cmd.exit_code != 0 or bad:
        raise LabError(
            f"{cmd.shown} failed (exit {cmd.exit_code}): {'; '.join(bad) or cmd.output.strip()[-400:]}"
        )
    return cmd


def install(
    estate: Estate, version: str, env: dict[str, str], events: OperatorEvents | None = None
) -> list[Command]:
    """``version`` current and serving on every app node, and UP in HAProxy."""
    ev = events or OperatorEvents()
    webs = [n.identity for n in estate.web_nodes]
    svc = {"service": estate.service, "version": version}
    done = [
        rpc(estate, "deploy", "fetch", svc, webs, env, ev),
        rpc(estate, "deploy", "activate", svc, webs, env, ev),
        rpc(estate, "healthcheck", "service", {**svc, "retries": "3"}, webs, env, ev),
    ]
    lb = [n.identity for n in estate.lb_nodes]
    for w in webs:
        done.append(
            rpc(
                estate,
                "haproxy",
                "wait_for_state",
                {"server": w, "backend": estate.service, "state": "UP", "timeout": "20"},
                lb,
                env,
                ev,
            )
        )
    return done


#: Seconds a node gets to pass its gates: the lab's app answers within a second of its
#: restart (two on a Ruby node), so a broken release is rolled back without the driver's
#: default 30 s wait.
GATE_DEADLINE = 8


def deploy_command(estate: Estate, version: str, *, canary: int = 1) -> list[str]:
    """The ``mco-py deploy run`` arguments that roll ``version`` through the lab."""
    return [
        "deploy",
        "run",
        estate.service,
        version,
        "--env",
        estate.environment,
        "--catalog",
        estate.catalog,
        "-c",
        estate.client_cfg,
        "--state-dir",
        estate.deploy_state_dir,
        "--canary",
        str(canary),
        "--gate-deadline",
        str(GATE_DEADLINE),
        "--yes",
    ]
