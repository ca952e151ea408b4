"""The ``haproxy`` agent: move servers in and out of HAProxy pools on a load balancer.

Actions (``ddl/haproxy.ddl``): ``status``, ``enable`` (READY), ``disable`` (MAINT),
``drain`` (DRAIN, wait for the sessions to end or the timeout, then MAINT), ``set_weight``,
``wait_for_state``, and the pool moves of the ``haproxy_pools`` layout (one backend per
service, a server per node, pool = admin state): ``to_maintenance`` (drain, then MAINT;
fails when sessions outlive the timeout unless ``force``) and ``to_online`` (READY, then
wait for a settled UP).

Contract of every action:

* ``server`` is looked up in ``backend`` (one name, a comma separated list, or ``all``;
  default: every backend that has it).  Anything named that does not exist fails the request
  before any change (``fail_on_not_found``, default true); with ``fail_on_not_found=false``
  the rest is done and the missing part is reported as ``absent``.
* A server already in the target state gets no command and the action succeeds at once
  (``changed`` false).  Admin state and health are independent: a server whose check is
  DOWN can be put in MAINT or DRAIN.
* The state before and after is returned (``state_before`` / ``state_after``, plus one
  ``backends`` entry per backend), read back from HAProxy after the change; a change that
  did not take (e.g. maintenance inherited from a tracked server) fails the request.
* A missing or unusable socket is statuscode 1 naming the path and ``plugin.haproxy.socket``.

Settings (``plugin.haproxy.*`` in server.cfg): ``socket`` (default
``/run/haproxy/admin.sock``, the ``haproxy_pools`` Puppet module's), ``socket_timeout``
(seconds per command, default 5), ``poll_interval`` (seconds between two looks while
waiting, default 0.2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from ..ddl import AgentDDL
from ..server.agent import Aborted, ActionRequest, Agent, AgentContext, InvalidData, Reply, action
from . import haproxy_state as hs
from .haproxy_runtime import HAProxyRuntimeError, RuntimeAPI
from .haproxy_state import Selection, ServerState

DEFAULT_SOCKET = "/run/haproxy/admin.sock"
#: The longest wait a request may ask for (the DDL timeout is 300 s).
MAX_WAIT = 290


class Haproxy(Agent):
    """HAProxy runtime API actions; see the module docstring for the contract."""

    name = "haproxy"

    def __init__(self, ddl: AgentDDL, context: AgentContext | None = None) -> None:
        super().__init__(ddl, context)
        #: injectable for tests: a monotonic clock and a sleep
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], None] = time.sleep

    # ------------------------------------------------------------------ I/O helpers

    def runtime(self) -> RuntimeAPI:
        """The runtime API client for this node's socket (``plugin.haproxy.socket``)."""
        configured = self.settings.configured("socket")
        if configured:
            path, setting = configured, "plugin.haproxy.socket"
        else:
            path, setting = DEFAULT_SOCKET, "the default; set plugin.haproxy.socket"
        return RuntimeAPI(
            path, timeout=self.settings.seconds("socket_timeout", default=5.0), setting=setting
        )

    def _servers(self, api: RuntimeAPI) -> tuple[ServerState, ...]:
        try:
            return api.servers()
        except HAProxyRuntimeError as exc:
            raise Aborted(str(exc)) from None

    def _send(self, api: RuntimeAPI, commands: Iterable[str]) -> None:
        """Send the commands in order; Aborted at the first refusal, naming what was
        already done (HAProxy has no transactions)."""
        sent: list[str] = []
        for command in commands:
            try:
                api.execute(command)
            except HAProxyRuntimeError as exc:  # CommandRefused or RuntimeUnavailable
                done = f" (already done: {'; '.join(sent)})" if sent else ""
                raise Aborted(f"{exc}{done}") from None
            sent.append(command)

    def _refresh(self, api: RuntimeAPI, before: Sequence[ServerState]) -> list[ServerState]:
        """The same servers, as they are now (one that disappeared keeps its old state)."""
        now = hs.by_key(self._servers(api))
        return [now.get(row.key, row) for row in before]

    def _wait(
        self,
        api: RuntimeAPI,
        rows: Sequence[ServerState],
        done: Callable[[Sequence[ServerState]], bool],
        timeout: float,
    ) -> tuple[list[ServerState], bool, float]:
        """Look at ``rows`` every poll_interval until ``done`` or ``timeout`` seconds passed.
        Returns the last rows, whether done, and the seconds waited."""
        start = self.clock()
        current = list(rows)
        while True:
            if done(current):
                return current, True, self.clock() - start
            elapsed = self.clock() - start
            if elapsed >= timeout:
                return current, False, elapsed
            self.sleep(min(self.settings.seconds("poll_interval", default=0.2), timeout - elapsed))
            current = self._refresh(api, current)

    # ------------------------------------------------------------------ inputs

    def _max_wait(self) -> float:
        return max(0.0, min(float(MAX_WAIT), self.timeout - 5))

    def _timeout(self, req: ActionRequest) -> float:
        value = int(req.data["timeout"])
        limit = self._max_wait()
        if value < 0 or value > limit:
            raise InvalidData(f"timeout must be between 0 and {limit:g} seconds, got {value}")
        return float(value)

    def _select(self, api: RuntimeAPI, req: ActionRequest) -> Selection:
        """The servers the request names; Aborted when something named is missing and
        fail_on_not_found is true (before any change)."""
        server = req.data["server"]
        try:
            backends = hs.split_backends(req.data["backend"])
        except ValueError as exc:
            raise InvalidData(str(exc)) from None
        rows = self._servers(api)
        selection = hs.select(rows, server, backends)
        if not selection.complete and req.data["fail_on_not_found"]:
            known = ", ".join(dict.fromkeys(r.backend for r in rows)) or "none"
            raise Aborted(
                f"{selection.problem()} (backends: {known}); "
                "fail_on_not_found=false reports it as absent instead"
            )
        return selection

    # ------------------------------------------------------------------ replies

    @staticmethod
    def _report(
        reply: Reply, selection: Selection, after: Sequence[ServerState], changed: bool
    ) -> None:
        """Fill backends / state_before / state_after / changed from the rows before
        (``selection.rows``) and after; what was named but not found is listed as absent."""
        before = selection.rows
        rows: list[dict[str, object]] = [
            {
                "backend": b.backend,
                "server": b.server,
                "state_before": b.state,
                "state_after": a.state,
                "admin": a.admin,
                "status": a.status,
                "weight_before": b.weight,
                "weight": a.weight,
                "sessions": a.sessions,
                "check_status": a.check_status,
            }
            for b, a in zip(before, after, strict=True)
        ]
        for entry in selection.absent():
            rows.append({**entry, "state_before": "absent", "state_after": "absent"})
        reply["backends"] = rows
        reply["state_before"] = hs.summary(r.state for r in before)
        reply["state_after"] = hs.summary(r.state for r in after)
        reply["changed"] = changed

    def _admin_move(self, req: ActionRequest, reply: Reply, target: str) -> None:
        api = self.runtime()
        selection = self._select(api, req)
        commands = hs.plan_admin(selection.rows, target)
        self._send(api, commands)
        after = self._refresh(api, selection.rows) if commands else list(selection.rows)
        self._report(reply, selection, after, bool(commands))
        stuck = [r for r in after if r.admin != target]
        if stuck:
            raise Aborted(_stuck_message(stuck, target))

    def _drain(self, req: ActionRequest, reply: Reply, *, strict: bool) -> None:
        """DRAIN what is READY, wait for 0 sessions, then MAINT; ``strict`` (to_maintenance)
        and not drained in time: leave it in DRAIN and fail, unless ``force``."""
        timeout = self._timeout(req)
        api = self.runtime()
        selection = self._select(api, req)
        before = selection.rows
        to_drain = hs.plan_admin([r for r in before if r.admin == "READY"], "DRAIN")
        self._send(api, to_drain)
        current = self._refresh(api, before) if to_drain else list(before)
        pending = [r for r in current if r.admin != "MAINT"]
        last, drained, waited = self._wait(
            api, pending, lambda rows: hs.sessions(rows) == 0, timeout
        )
        reply["waited"] = round(waited, 3)
        reply["drained"] = drained
        reply["sessions"] = hs.sessions(last)
        if not drained and strict and not req.data["force"]:
            self._report(reply, selection, self._refresh(api, before), bool(to_drain))
            raise Aborted(
                f"server {selection.server} still has {reply['sessions']} session(s) after "
                f"{timeout:g} s, so it stays in DRAIN (no new traffic); retry with a longer "
                "timeout, or force=true to put it in MAINT anyway"
            )
        now = hs.by_key([*current, *last])
        to_maint = hs.plan_admin([now[r.key] for r in before], "MAINT")
        self._send(api, to_maint)
        changed = bool(to_drain or to_maint)
        after = self._refresh(api, before) if changed else list(before)
        self._report(reply, selection, after, changed)
        stuck = [r for r in after if r.admin != "MAINT"]
        if stuck:
            raise Aborted(_stuck_message(stuck, "MAINT"))

    # ------------------------------------------------------------------ actions

    @action
    def status(self, req: ActionRequest, reply: Reply) -> None:
        """State, weight, sessions and check of the server (every server when not given)."""
        selection = self._select(self.runtime(), req)
        rows = selection.rows
        reply["backends"] = [r.as_reply() for r in rows] + selection.absent()
        reply["state"] = hs.summary(r.state for r in rows)
        reply["sessions"] = hs.sessions(rows)
        if rows:
            reply["weight"] = rows[0].weight
            reply["check_status"] = rows[0].check_status

    @action
    def enable(self, req: ActionRequest, reply: Reply) -> None:
        """READY in every selected backend."""
        self._admin_move(req, reply, "READY")

    @action
    def disable(self, req: ActionRequest, reply: Reply) -> None:
        """MAINT in every selected backend, whatever the health check says."""
        self._admin_move(req, reply, "MAINT")

    @action
    def drain(self, req: ActionRequest, reply: Reply) -> None:
        """DRAIN, wait until the sessions end or the timeout passes, then MAINT."""
        self._drain(req, reply, strict=False)

    @action
    def to_maintenance(self, req: ActionRequest, reply: Reply) -> None:
        """Drain then MAINT; sessions outliving the timeout fail the move unless forced."""
        self._drain(req, reply, strict=True)

    @action
    def to_online(self, req: ActionRequest, reply: Reply) -> None:
        """READY, then wait until every selected backend reports a settled UP."""
        timeout = self._timeout(req)
        api = self.runtime()
        selection = self._select(api, req)
        commands = hs.plan_admin(selection.rows, "READY")
        self._send(api, commands)
        current = self._refresh(api, selection.rows) if commands else list(selection.rows)
        after, up, waited = self._wait(
            api, current, lambda rows: all(hs.reached(r, "UP") for r in rows), timeout
        )
        reply["waited"] = round(waited, 3)
        self._report(reply, selection, after, bool(commands))
        if not up:
            down = [r for r in after if not hs.reached(r, "UP")]
            raise Aborted(
                f"server {selection.server} is READY but not UP after {timeout:g} s: "
                + ", ".join(
                    f"{r.backend} {r.status} (check {r.check_status or 'none'})" for r in down
                )
            )

    @action
    def set_weight(self, req: ActionRequest, reply: Reply) -> None:
        """Set the weight: absolute (0-256) or a percentage of the initial weight."""
        weight = int(req.data["weight"])
        percent = bool(req.data["percent"])
        api = self.runtime()
        selection = self._select(api, req)
        before = selection.rows
        try:
            targets = {r.key: hs.weight_target(r, weight, percent) for r in before}
            commands = hs.plan_weight(before, weight, percent)
        except ValueError as exc:
            raise InvalidData(str(exc)) from None
        self._send(api, commands)
        after = self._refresh(api, before) if commands else list(before)
        self._report(reply, selection, after, bool(commands))
        if before:
            reply["weight_before"] = before[0].weight
            reply["weight_after"] = after[0].weight
        wrong = [r for r in after if r.weight != targets[r.key]]
        if wrong:
            raise Aborted(
                "HAProxy did not take the weight: "
                + ", ".join(
                    f"{r.backend}/{r.server} has {r.weight}, not {targets[r.key]}" for r in wrong
                )
            )

    @action
    def wait_for_state(self, req: ActionRequest, reply: Reply) -> None:
        """Wait until every selected backend reports ``state``; fails on timeout."""
        wanted = str(req.data["state"])
        timeout = self._timeout(req)
        api = self.runtime()
        selection = self._select(api, req)
        after, done, waited = self._wait(
            api, selection.rows, lambda rows: hs.all_reached(rows, wanted), timeout
        )
        reply["waited"] = round(waited, 3)
        reply["reached"] = done
        self._report(reply, selection, after, False)
        if selection.rows and not done:
            raise Aborted(
                f"server {selection.server} did not reach {wanted} within {timeout:g} s: "
                + ", ".join(f"{r.backend} {r.status}" for r in after)
            )


def _stuck_message(rows: Sequence[ServerState], target: str) -> str:
    where = ", ".join(f"{r.backend}/{r.server} is {r.state} ({r.status})" for r in rows)
    return (
        f"HAProxy did not put the server in {target}: {where}; a server tracking another one, "
        "or in maintenance because its address does not resolve, follows that instead"
    )
