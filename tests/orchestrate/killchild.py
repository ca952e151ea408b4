"""Child process for the SIGKILL tests: runs a deploy over a file-backed FakeFleet and kills
itself (SIGKILL, no clean-up of any kind) at the point given.

    python -m tests.orchestrate.killchild SPEC.json

SPEC: {"state_dir", "fleet", "plan" (Plan.to_dict), "run_id",
       "kill": {"event_state": "gate", "node": "web2"} or {"call": [agent, action, node, when]}}
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from mcollective_py.orchestrate.events import DeployEvent, DeployHooks
from mcollective_py.orchestrate.journal import StateDir
from mcollective_py.orchestrate.plan import Plan
from mcollective_py.orchestrate.run import Executor
from tests.orchestrate.fakefleet import FakeFleet


class KillAt(DeployHooks):
    def __init__(self, state: str, node: str) -> None:
        self.state, self.node = state, node

    def on_event(self, event: DeployEvent) -> None:
        if event.kind == "node_state" and (event.state, event.node) == (self.state, self.node):
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    fleet = FakeFleet([], path=None)
    fleet.path = Path(spec["fleet"])
    fleet.load()
    kill = spec["kill"]
    hooks = DeployHooks()
    if "event_state" in kill:
        hooks = KillAt(kill["event_state"], kill["node"])
    else:
        fleet.kill_at = tuple(kill["call"])  # type: ignore[assignment]
    plan = Plan.from_dict(spec["plan"])
    result = Executor(
        plan,
        fleet,
        StateDir(spec["state_dir"]),
        spec["run_id"],
        hooks,
        caller="killchild",
        sleep=lambda s: None,
    ).run()
    print(result.outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
