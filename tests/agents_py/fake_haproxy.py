"""An in-memory HAProxy runtime API for unit tests of the haproxy agent, with a fake clock."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from mcollective_py.agents.haproxy import Haproxy
from mcollective_py.agents.haproxy_runtime import CommandRefused, RuntimeAPI, RuntimeUnavailable
from mcollective_py.agents.haproxy_state import ServerState
from tests.agents_py.conftest import make_agent

_SET = re.compile(r"\Aset server ([^/ ]+)/(\S+) (state (ready|drain|maint)|weight (\d+))\Z")


def server(backend: str, name: str, **kw: object) -> ServerState:
    values: dict[str, object] = {
        "admin": "READY",
        "status": "UP",
        "op_state": "running",
        "weight": 100,
        "initial_weight": 100,
        "sessions": 0,
        "check_status": "L7OK",
        "address": "127.0.0.1:8080",
    }
    values.update(kw)
    return ServerState(backend=backend, server=name, **values)  # type: ignore[arg-type]


class FakeRuntime(RuntimeAPI):
    """Holds server states; applies ``set server`` commands like HAProxy 2.6 does.

    ``on_look`` runs before every ``servers()`` (to let time change things); ``down`` makes
    every call fail like a missing socket.
    """

    def __init__(self, rows: list[ServerState]) -> None:
        super().__init__("/fake/admin.sock")
        self.rows = {r.key: r for r in rows}
        self.sent: list[str] = []
        self.looks = 0
        self.on_look: Callable[[FakeRuntime], None] = lambda _: None
        self.down = False
        self.ignore_admin = False  # e.g. maintenance inherited from a tracked server
        self.refuse: set[tuple[str, str]] = set()  # servers whose commands are refused

    def command(self, line: str) -> str:  # pragma: no cover - not used by the agent directly
        raise AssertionError(f"unexpected raw command {line!r}")

    def servers(self) -> tuple[ServerState, ...]:
        if self.down:
            raise RuntimeUnavailable("HAProxy admin socket /fake/admin.sock does not exist")
        self.looks += 1
        self.on_look(self)
        return tuple(self.rows.values())

    def execute(self, line: str) -> None:
        self.sent.append(line)
        m = _SET.match(line)
        if not m:
            raise CommandRefused(line, "Unknown command.")
        key = (m.group(1), m.group(2))
        if key in self.refuse:
            raise CommandRefused(line, "Permission denied")
        if key not in self.rows:
            raise CommandRefused(line, "No such server.")
        row = self.rows[key]
        if m.group(4) and not self.ignore_admin:
            admin = m.group(4).upper()
            status = {"READY": "UP 1/3" if row.admin == "MAINT" else row.status}.get(admin, admin)
            if admin == "DRAIN" and row.status.startswith("DOWN"):
                status = row.status
            self.rows[key] = dataclasses.replace(row, admin=admin, status=status)
        elif m.group(5):
            self.rows[key] = dataclasses.replace(row, weight=int(m.group(5)))

    def set(self, backend: str, name: str, **kw: object) -> None:
        self.rows[(backend, name)] = dataclasses.replace(self.rows[(backend, name)], **kw)  # type: ignore[arg-type]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def fake_agent(rows: list[ServerState], **settings: str) -> tuple[Haproxy, FakeRuntime, FakeClock]:
    """A Haproxy agent whose runtime and clock are fakes."""
    fake = FakeRuntime(rows)
    clock = FakeClock()
    agent = make_agent(Haproxy, {f"plugin.haproxy.{k}": v for k, v in settings.items()})
    agent.runtime = lambda: fake  # type: ignore[method-assign]
    agent.clock = clock
    agent.sleep = clock.sleep
    return agent, fake, clock
