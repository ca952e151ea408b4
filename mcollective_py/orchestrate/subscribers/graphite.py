"""Graphite: a run's numbers as carbon plaintext metrics (``path value timestamp\\n``).

Metric paths, under ``<prefix>.<service>.<environment>`` (each component reduced to
``[A-Za-z0-9_-]``, so ``web1.lab`` becomes ``web1_lab``):

==================================  ===========================================================
``events.deploy_start``             1 at the run's start (an annotation series: graph it with
                                    ``drawAsInfinite()``)
``events.deploy_end``               1 at the run's end
``run.duration``                    seconds, at the end
``run.outcome.<outcome>``           1 at the end (done, failed, rolled_back, aborted)
``step.<canary|step_N>.duration``   seconds, when the step ends
``nodes.done`` / ``nodes.failed``   how many nodes so far, when a node finishes
``node.<node>.drain_seconds``       how long the node took to drain (from ``drain`` to the
                                    node's next state; or a drain event's own ``duration``)
``migration.<phase>.duration``      seconds of a migration phase (its ok|failed event; the
                                    ``started`` event the driver fires first has none)
==================================  ===========================================================

Timestamps are the events' own (whole seconds).  Sending is best effort and never blocks a
run for long: a connection (``timeout`` seconds) per event batch; when carbon is away, lines
are kept (at most ``MAX_PENDING``) and sent with the next batch, the oldest dropped first
(counted in ``dropped``).
"""

from __future__ import annotations

import re
import socket
from collections import deque

from ..events import DeployEvent, DeployHooks

MAX_PENDING = 10_000
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def component(text: str) -> str:
    """One metric path component: anything but letters, digits, ``_`` and ``-`` becomes ``_``."""
    return _UNSAFE.sub("_", text)[:100] or "_"


def metric_lines(event: DeployEvent, prefix: str, counts: dict[str, int]) -> list[str]:
    """The plaintext lines for one event; ``counts`` keeps the per-run node totals (and
    which nodes were counted, so a node that failed and was then rolled back counts once)."""
    base = ".".join(component(p) for p in (*prefix.split("."), event.service, event.environment))
    ts = int(event.time)
    out: list[str] = []

    def put(path: str, value: float) -> None:
        out.append(f"{base}.{path} {value:g} {ts}")

    if event.kind == "run_start":
        put("events.deploy_start", 1)
    elif event.kind == "run_end":
        put("events.deploy_end", 1)
        put(f"run.outcome.{component(event.outcome or 'unknown')}", 1)
        if event.duration is not None:
            put("run.duration", round(event.duration, 3))
    elif event.kind == "step_end" and event.step is not None and event.duration is not None:
        name = "canary" if event.step == 0 else f"step_{event.step}"
        put(f"step.{name}.duration", round(event.duration, 3))
    elif event.kind == "node_state" and event.node:
        drained_at = counts.pop(f"drain:{event.node}", None)
        if event.state == "drain" and event.duration is not None:
            put(f"node.{component(event.node)}.drain_seconds", round(event.duration, 3))
        elif event.state == "drain":
            # the driver announces a drain before it happens (write-ahead): its length is the
            # time to the node's next state (activate, or failed when the deadline hit)
            counts[f"drain:{event.node}"] = int(event.time * 1000)
        elif drained_at is not None:
            seconds = max(0.0, event.time - drained_at / 1000)
            put(f"node.{component(event.node)}.drain_seconds", round(seconds, 3))
        if event.state in ("done", "failed", "rolled_back"):
            key = "done" if event.state == "done" else "failed"
            if f"node:{event.node}" not in counts:  # failed, then rolled back: one node
                counts[f"node:{event.node}"] = 1
                counts[key] = counts.get(key, 0) + 1
                put(f"nodes.{key}", counts[key])
    elif event.kind == "migration" and event.duration is not None:
        phase = component(str(event.detail.get("phase", "unknown")))
        put(f"migration.{phase}.duration", round(event.duration, 3))
    return out


class GraphiteSubscriber(DeployHooks):
    """Sends each event's metrics to carbon's plaintext receiver at ``host:port``."""

    def __init__(
        self, host: str, port: int = 2003, *, prefix: str = "deploys", timeout: float = 2.0
    ) -> None:
        self.address = (host, port)
        self.prefix = prefix
        self.timeout = timeout
        self.pending: deque[str] = deque()
        self.dropped = 0
        self.sent = 0
        self._counts: dict[str, dict[str, int]] = {}

    def on_event(self, event: DeployEvent) -> None:
        lines = metric_lines(event, self.prefix, self._counts.setdefault(event.run_id, {}))
        for line in lines:
            if len(self.pending) >= MAX_PENDING:
                self.pending.popleft()
                self.dropped += 1
            self.pending.append(line)
        if lines:
            self.flush()

    def flush(self) -> None:
        """Send what is pending; OSError (carbon away) leaves it pending."""
        if not self.pending:
            return
        payload = "".join(line + "\n" for line in self.pending).encode("ascii")
        with socket.create_connection(self.address, timeout=self.timeout) as sock:
            sock.sendall(payload)
        self.sent += len(self.pending)
        self.pending.clear()

    def close(self) -> None:
        self.flush()
