"""What a deploy run reports while it runs: one event type, one hook, fan-out.

The contract every subscriber (terminal progress view, JSON lines, Graphite, Nagios, JUnit,
the run report) builds on:

* The executor fires a :class:`DeployEvent` for every step it takes, through
  :meth:`DeployHooks.on_event`. The same events, as :meth:`DeployEvent.to_dict`, are the
  records of the run journal (one JSON object a line), so a report can be made from a journal
  alone and a resumed run continues the same stream.
* ``on_event`` must not raise: :class:`HookFanout` catches what a subscriber raises, records
  it in ``errors`` and carries on, so a broken Graphite never stops a deploy.
* Events are frozen and carry plain data only (str, int, float, bool, None, tuples and dicts
  of those in ``detail``).

Kinds (``DeployEvent.kind``), in the order a run fires them:

=====================  ======================================================================
``run_start``          plan accepted, lease taken (``detail``: strategy, nodes, steps, caller)
``preflight``          every node and LB answered (or not: ``outcome`` failed)
``migration``          a database migration phase (``detail.phase`` pre|post) ran
``step_start``         a step (canary, or the k-th batch) begins (``detail.nodes``)
``node_state``         one node entered ``state`` (see ``NODE_STATES``); ``outcome`` of the
                       state it left when that matters
``gate``               one health gate's result on one node (``detail``: check, output)
``capacity``           a live LB sample (``detail``: backend, online, floor, total)
``step_end``           a step is over (``outcome`` ok|failed)
``paused``             the run stopped on purpose (``--pause-after-canary``); exit 4
``resumed``            ``resume RUN`` took over (``approver`` set when it approves a pause)
``rollback``           a node (or the run) is being rolled back
``run_end``            final ``outcome``: done | failed | rolled_back | aborted
=====================  ======================================================================

What the executor (``run.py``) puts in ``detail`` (added fields; nothing above changed):

* ``run_start``: ``plan`` (the whole ``Plan.to_dict()``, which ``resume`` reads back),
  ``nodes``, ``steps`` (node lists), ``strategy`` (floor, max_unavailable, max_failures,
  settle, pause_after_canary, rollback_on_failure), ``journal`` (its path).
* ``resumed``: ``abort`` (bool), ``states`` (node -> state read from the journal).
* ``preflight``: ``asked`` (identities), ``failed`` (identity -> message).
* ``migration``: fired twice per phase, ``outcome`` started (before the call) then ok |
  failed (with ``duration``); ``detail``: ``phase``, ``command``, and on the second event
  ``message``, ``output`` (the command's output), ``already_applied``, ``applied_by``;
  ``node`` is the node it ran on.  A subscriber counts a phase once (the second event).
* ``node_state``: ``previous_version`` (on ``drain`` and ``rollback``), ``reason`` (on
  ``failed``, ``rollback``, ``rolled_back``), ``in_maintenance`` (LBs where a ``failed`` node
  was left in maintenance), ``rollback_refused`` (on ``failed``: why the migration rule kept
  it from rolling back), ``version`` (on ``rolled_back``: the release it runs now).  One
  ``drain``/``online`` per node with ``lb`` unset (every LB of the node at once).  The final
  states (done, failed, rolled_back) carry ``duration``: seconds since the node's prefetch.
* ``step_end``, ``run_end``: ``duration`` (``run_end``: since ``run_start``, resumes included).
* ``gate``: ``check`` (gate name), ``action`` (healthcheck action), ``version``, ``output``.
* ``capacity``: also ``down`` (servers not UP); ``outcome`` ok | wait; ``lb`` and ``node``
  (the server about to be drained) are set.
* ``rollback``: ``to`` and ``reason`` for a node; ``scope: "run"`` and ``nodes`` when
  ``--rollback-on-failure`` rolls back the nodes already done.
* ``paused``: ``after`` ("canary").
* ``run_end``: ``reason``, ``exit_code``, ``done``, ``failed`` (node -> reason),
  ``in_maintenance``, ``pending``.

The journal (``journal.py``) also holds records that are not events, each with a ``kind`` of
its own: ``lease`` (``detail.action`` taken | takeover | released, ``token``, ``owner``,
``pid``, ``host``, ``expiry``, ``previous_holder``).  A subscriber reading a journal skips
kinds it does not know.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: The per-node state machine, in order (``failed`` and ``rolled_back`` are terminal too).
NODE_STATES = (
    "pending",
    "preflight",
    "prefetch",
    "drain",
    "activate",
    "verify",
    "gate",
    "online",
    "done",
    "failed",
    "rollback",
    "rolled_back",
)

EVENT_KINDS = (
    "run_start",
    "preflight",
    "migration",
    "step_start",
    "node_state",
    "gate",
    "capacity",
    "step_end",
    "paused",
    "resumed",
    "rollback",
    "run_end",
)


@dataclass(frozen=True)
class DeployEvent:
    """One thing that happened in a run. Unused fields stay ``None``/empty."""

    kind: str
    run_id: str
    service: str
    environment: str
    version: str
    time: float = field(default_factory=time.time)
    step: int | None = None  # 0 = canary, then 1, 2, ...
    node: str | None = None
    lb: str | None = None
    state: str | None = None  # for node_state: one of NODE_STATES
    outcome: str | None = None  # ok | failed | skipped | done | rolled_back | aborted ...
    duration: float | None = None  # seconds the thing took, when it has a length
    caller: str | None = None
    approver: str | None = None
    artifact_sha256: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``detail`` copied); ``None`` fields are kept for a stable schema."""
        d = asdict(self)
        d["detail"] = dict(self.detail)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeployEvent:
        """The inverse of :meth:`to_dict`; unknown keys are ignored (journals from newer versions)."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["detail"] = dict(known.get("detail") or {})
        return cls(**known)


class DeployHooks:
    """Subscriber base: every hook does nothing. Subclass and override what you need."""

    def on_event(self, event: DeployEvent) -> None:
        """Called once per event, in order, from the executor's thread. Must not raise."""

    def close(self) -> None:
        """Called once when the run ends (also on failure): flush files, close sockets."""


class HookFanout(DeployHooks):
    """Sends every event to each subscriber; a subscriber that raises is recorded, not fatal."""

    def __init__(self, subscribers: Iterable[DeployHooks] = ()) -> None:
        self.subscribers = list(subscribers)
        self.errors: list[tuple[str, str]] = []  # (subscriber class, message)

    def on_event(self, event: DeployEvent) -> None:
        for s in self.subscribers:
            try:
                s.on_event(event)
            except Exception as exc:  # noqa: BLE001 - a subscriber must never stop a deploy
                self.errors.append((type(s).__name__, f"{type(exc).__name__}: {exc}"))

    def close(self) -> None:
        for s in self.subscribers:
            try:
                s.close()
            except Exception as exc:  # noqa: BLE001
                self.errors.append((type(s).__name__, f"{type(exc).__name__}: {exc}"))
