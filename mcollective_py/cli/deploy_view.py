"""The terminal view of a deploy run: a :class:`DeployHooks` subscriber.

On a terminal, the line at the bottom is rewritten live (step, node, state, last gate);
finished things (steps, nodes done or failed, capacity waits, the end) are printed as lines
above it.  Not on a terminal, every event of interest is one plain line, nothing rewritten:

    14:52:01 step canary: web1
    14:52:01 web1 drain
    14:52:03 web1 gate version (service) ok
"""

from __future__ import annotations

import time
from typing import IO

from ..orchestrate.events import DeployEvent, DeployHooks


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _step_label(name: object, index: int | None) -> str:
    """``step canary``, ``step 1``, ... whatever the plan called the step."""
    text = str(name) if name else str(index)
    return text if text.startswith("step") else f"step {text}"


class ProgressView(DeployHooks):
    """Writes the run to ``out``; ``live`` (a tty) rewrites a status line in place."""

    def __init__(self, out: IO[str], *, live: bool) -> None:
        self.out = out
        self.live = live
        self._status = ""
        self._step = ""

    # ---------------------------------------------------------------- output
    def _line(self, text: str) -> None:
        if self.live and self._status:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        if self.live and self._status:
            self.out.write(self._status)
        self.out.flush()

    def _live(self, text: str) -> None:
        if not self.live:
            return
        self._status = text
        self.out.write("\r\033[K" + text)
        self.out.flush()

    # ---------------------------------------------------------------- events
    def on_event(self, e: DeployEvent) -> None:
        t = _clock(e.time)
        d = e.detail
        if e.kind == "run_start":
            self._line(f"{t} run {e.run_id}: {e.service} {e.version} in {e.environment}")
        elif e.kind == "resumed":
            who = f", approved by {e.approver}" if e.approver else ""
            self._line(f"{t} resumed {e.run_id}{who}")
        elif e.kind == "preflight":
            if e.outcome == "ok":
                self._line(f"{t} preflight: {len(d.get('asked', []))} node(s) answered")
            else:
                self._line(f"{t} preflight FAILED: {', '.join(sorted(d.get('failed', {})))}")
        elif e.kind == "migration":
            self._line(f"{t} migration {d.get('phase')} on {e.node}: {e.outcome}")
        elif e.kind == "step_start":
            self._step = _step_label(d.get("name"), e.step)
            self._line(f"{t} {self._step}: {', '.join(d.get('nodes', []))}")
        elif e.kind == "node_state":
            if e.state in ("done", "failed", "rolled_back"):
                why = f" ({d.get('reason')})" if d.get("reason") else ""
                self._line(f"{t} {e.node} {e.state}{why}")
            elif self.live:
                self._live(f"[{self._step}] {e.node}: {e.state} ...")
            else:
                self._line(f"{t} {e.node} {e.state}")
        elif e.kind == "gate":
            text = f"{e.node} gate {d.get('check')} ({d.get('action')}) {e.outcome}"
            if e.outcome != "ok" or not self.live:
                self._line(f"{t} {text}" + (f": {d.get('output')}" if e.outcome != "ok" else ""))
            else:
                self._live(f"[{self._step}] {text}")
        elif e.kind == "capacity":
            if e.outcome != "ok":
                self._line(
                    f"{t} capacity: {e.lb} has {d.get('online')} UP, floor {d.get('floor')}: "
                    f"waiting before draining {e.node}"
                )
            elif self.live:
                self._live(f"[{self._step}] {e.lb}: {d.get('online')}/{d.get('total')} UP")
        elif e.kind == "step_end":
            self._line(f"{t} {_step_label(d.get('name'), e.step)} {e.outcome}")
        elif e.kind == "rollback":
            if d.get("scope") == "run":
                self._line(f"{t} rolling back the run: {', '.join(d.get('nodes', []))}")
        elif e.kind == "paused":
            self.close()
            self._line(f"{t} paused after the {d.get('after')}")
        elif e.kind == "run_end":
            self.close()  # the status line goes: the end is a line of its own
            reason = f": {d.get('reason')}" if d.get("reason") else ""
            self._line(f"{t} run {e.outcome}{reason}")

    def close(self) -> None:
        if self.live and self._status:
            self.out.write("\r\033[K")
            self.out.flush()
            self._status = ""
