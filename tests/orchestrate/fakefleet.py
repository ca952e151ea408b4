"""An in-memory fleet for the executor's unit tests: app nodes with releases and load
balancers with one backend, answering the agent actions the executor uses like the real
agents do (same reply fields, non-zero statuscode on failure, silence for a dead node).

With ``path`` the whole state is loaded from / saved to a JSON file around every call, so a
driver SIGKILLed in a child process and the one resuming it see the same fleet.  ``samples``
records, after every call, how many servers each load balancer has UP: the tests check that
no sample is below the floor.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mcollective_py.results import NodeReply, Results


class FakeFleet:
    def __init__(
        self,
        nodes: Sequence[str],
        lbs: Sequence[str] = ("lb1",),
        *,
        backend: str = "shop",
        version: str = "1.0.0",
        path: Path | None = None,
    ) -> None:
        self.backend = backend
        self.path = path
        self.state: dict[str, Any] = {
            "nodes": {
                n: {
                    "current": version,
                    "previous": None,
                    "available": [version],
                    "healthy": True,
                    "silent": False,
                }
                for n in nodes
            },
            "lbs": {lb: {n: {"admin": "READY", "health": "UP"} for n in nodes} for lb in lbs},
            "bad_versions": [],  # releases whose app is unhealthy
            "stuck_drain": [],  # servers whose sessions never end
            "migrations": [],
            "calls": [],
            "samples": [],
        }
        self.kill_at: tuple[str, str, str, str] | None = None  # agent, action, node, before|after
        self.after_call: Callable[[FakeFleet, str, str, Sequence[str]], None] | None = None
        if path is not None:
            self.save()

    # ---------------------------------------------------------------- persistence
    def save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state))
            os.replace(tmp, self.path)

    def load(self) -> None:
        if self.path is not None and self.path.exists():
            self.state = json.loads(self.path.read_text())

    # ---------------------------------------------------------------- views
    @property
    def calls(self) -> list[list[Any]]:
        return self.state["calls"]  # type: ignore[no-any-return]

    def node(self, n: str) -> dict[str, Any]:
        return self.state["nodes"][n]  # type: ignore[no-any-return]

    def lb_state(self, lb: str, server: str) -> str:
        s = self.state["lbs"][lb][server]
        return str(s["admin"] if s["admin"] != "READY" else s["health"])

    def online(self, lb: str) -> int:
        return sum(1 for s in self.state["lbs"][lb] if self.lb_state(lb, s) == "UP")

    def min_sample(self) -> int:
        return min(min(s.values()) for s in self.state["samples"]) if self.state["samples"] else 0

    def _healthy(self, n: str) -> bool:
        node = self.node(n)
        return (
            bool(node["healthy"])
            and node["current"] not in self.state["bad_versions"]
            and node["current"] not in node.get("bad", [])
        )

    # ---------------------------------------------------------------- the Fleet verb
    def call(
        self,
        agent: str,
        action: str,
        data: Mapping[str, Any],
        identities: Sequence[str],
        *,
        timeout: float,
    ) -> Results:
        self.load()
        self.state["calls"].append([agent, action, dict(data), list(identities)])
        self._maybe_kill(agent, action, data, identities, "before")
        replies = []
        for ident in identities:
            if ident in self.state["nodes"] and self.node(ident)["silent"]:
                continue
            if ident not in self.state["nodes"] and ident not in self.state["lbs"]:
                continue
            code, msg, out = self._answer(agent, action, dict(data), ident)
            replies.append(NodeReply(ident, agent, action, code, msg, out))
        self.state["samples"].append({lb: self.online(lb) for lb in self.state["lbs"]})
        self.save()
        if self.after_call is not None:
            self.after_call(self, agent, action, identities)
            self.save()
        self._maybe_kill(agent, action, data, identities, "after")
        return Results(agent, action, "req", tuple(identities), tuple(replies))

    def _maybe_kill(
        self, agent: str, action: str, data: Mapping[str, Any], idents: Sequence[str], when: str
    ) -> None:
        if self.kill_at is None:
            return
        a, b, node, w = self.kill_at
        target = data.get("server", None) if agent == "haproxy" else None
        if (a, b, w) == (agent, action, when) and (node in idents or node == target):
            self.save()
            os.kill(os.getpid(), signal.SIGKILL)

    def _answer(
        self, agent: str, action: str, data: dict[str, Any], ident: str
    ) -> tuple[int, str, dict[str, Any]]:
        key = f"{agent}#{action}"
        if key == "rpcutil#ping":
            return 0, "OK", {"pong": 1}
        if agent == "haproxy":
            return self._haproxy(action, data, ident)
        node = self.node(ident)
        if key == "deploy#fetch":
            if data["version"] not in node["available"]:
                node["available"].append(data["version"])
            return 0, "OK", {"already_present": False}
        if key == "deploy#status":
            return (
                0,
                "OK",
                {
                    "current_version": node["current"],
                    "previous_version": node["previous"],
                    "available_versions": list(node["available"]),
                },
            )
        if key in ("deploy#activate", "deploy#rollback"):
            v = data.get("version") or node["previous"]
            if v not in node["available"]:
                return 1, f"release {v} is not fetched", {}
            before = node["current"]
            if before != v:
                node["previous"], node["current"] = before, v
            return (
                0,
                "OK",
                {"previous_version": before, "current_version": v, "changed": before != v},
            )
        if key == "deploy#migrate":
            self.state["migrations"].append([data["phase"], ident, data["version"]])
            if node.get("migrate_fails"):
                return 1, "migration failed: exit 1", {}
            return 0, "OK", {}
        if key == "healthcheck#service":
            ok = self._healthy(ident) and node["current"] == data["version"]
            detail = f"version {node['current']}, expected {data['version']}"
            return (
                (0 if ok else 1),
                ("OK" if ok else detail),
                {"ok": ok, "detail": detail, "version": node["current"]},
            )
        if agent == "healthcheck":
            ok = self._healthy(ident)
            detail = "200 OK" if ok else "503 Service Unavailable"
            return (0 if ok else 1), ("OK" if ok else detail), {"ok": ok, "detail": detail}
        return 2, f"unknown action {key}", {}

    def _haproxy(
        self, action: str, data: dict[str, Any], lb: str
    ) -> tuple[int, str, dict[str, Any]]:
        servers = self.state["lbs"][lb]
        if action == "status":
            rows = [
                {"backend": self.backend, "server": s, "state": self.lb_state(lb, s)}
                for s in servers
            ]
            return 0, "OK", {"backends": rows}
        s = data["server"]
        if s not in servers:
            return 1, f"no server {s}", {}
        if action == "to_maintenance":
            if s in self.state["stuck_drain"] and not data.get("force"):
                servers[s]["admin"] = "DRAIN"
                return 1, f"server {s} still has 3 sessions after {data['timeout']} s", {}
            servers[s]["admin"] = "MAINT"
            return 0, "OK", {"state_after": "MAINT"}
        if action == "to_online":
            servers[s]["admin"] = "READY"
            servers[s]["health"] = "UP" if self._healthy(s) else "DOWN"
            if servers[s]["health"] != "UP":
                return 1, f"server {s} is READY but not UP", {}
            return 0, "OK", {"state_after": "UP"}
        return 2, f"unknown action haproxy#{action}", {}
