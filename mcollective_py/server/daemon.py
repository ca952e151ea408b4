"""The node daemon: receive → decode → check → filter → agent → reply, forever.

Recipe for one message (:meth:`Daemon.handle`):

1. decode and authenticate it with the security provider (psk/ssl; size caps first);
2. refuse it if expired, if its request id or sender id is malformed (they are not signed,
   and they reach the log), for a collective we are not in, or for an agent we do not run;
3. match the filter against our identity, facts, classes and agents;
4. only then ask the replay check, so only requests that would run are remembered;
5. dispatch: ``discovery`` answers ``pong``; RPC agents validate against their DDL and run
   (secrets in a reply's status message are masked, :mod:`..masking`);
6. reply to the request's ``reply_to`` unless the client asked for no results.

Every refusal is counted in :class:`Stats` and logged in one line; nothing a sender puts on
the wire can stop the daemon: all failures end in a count and a log line.  Requests run on a
bounded worker pool; when it is full, further requests are refused (counted as
``overloaded``) rather than queued without bound.  A lost broker connection is retried with
back-off until it returns, then every subscription is made again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from ..connectors.base import Connector, Delivery, Target
from ..errors import (
    DigestMismatch,
    InvalidCallerId,
    MarshalError,
    MessageExpired,
    SecurityError,
    SerializationError,
    TransportError,
)
from ..filter import check as filter_check
from ..masking import mask_text
from ..message import IDENTITY_RE, Reply, Request
from ..rpc import RPCRequest
from ..security.base import SecurityProvider
from .agent import ActionRequest, Agent
from .builtin import discovery_reply

log = logging.getLogger("mcollective_py.server")

#: What a request id may look like (Ruby sends 32 hex digits; other clients UUIDs).
REQUESTID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")

#: Counter names; the first eight are Ruby's ``daemon_stats`` keys.
COUNTERS = (
    "total",
    "validated",
    "unvalidated",
    "passed",
    "filtered",
    "ttlexpired",
    "replies",
    "bad_messages",
    "wrong_collective",
    "unknown_agent",
    "replayed",
    "overloaded",
    "denied",
    "reply_failures",
)


class Stats:
    """Thread-safe message counters (:data:`COUNTERS`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c = dict.fromkeys(COUNTERS, 0)

    def incr(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._c[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c)


@dataclass
class NodeView:
    """What the filter is matched against; callables so facts stay current."""

    identity: str
    collectives: Sequence[str]
    facts: Callable[[], Mapping[str, Any]]
    classes: Callable[[], list[str]]


@dataclass
class Daemon:
    """One node. ``agents`` maps name → Agent (RPC agents; ``discovery`` is built in)."""

    connector: Connector
    security: SecurityProvider
    node: NodeView
    agents: dict[str, Agent]
    stats: Stats = field(default_factory=Stats)
    #: returns "admitted", or why the request must not run (replayed, expired, too_new, full)
    replay_check: Callable[[Request], str | bool] | None = None
    #: (request, rpc) -> (allowed, reason); None = no authorization (Ruby's rpcauthorization=0)
    authorize: Callable[[Request, RPCRequest], tuple[bool, str]] | None = None
    audit: Callable[..., None] | None = None
    #: SIGHUP: returns the agents to serve from now on (facts/classes are re-read inside it)
    reload_hook: Callable[[], dict[str, Agent]] | None = None
    threads: int = 8
    max_pending: int = 64
    reconnect_max: float = 2.0
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._pool = ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix="mco-py-request"
        )
        self._pending = threading.BoundedSemaphore(self.max_pending)
        self._inflight = 0
        self._inflight_lock = threading.Condition()

    # ---------------------------------------------------------------- subscriptions
    def targets(self) -> list[Target]:
        names = ["discovery", *self.agents]
        out = [Target.broadcast(c, a) for c in self.node.collectives for a in names]
        out += [Target.directed(c, self.node.identity) for c in self.node.collectives]
        return out

    def connect(self) -> None:
        self.connector.connect()
        self.connector.subscribe(self.targets())
        log.info(
            "subscribed to %d agents in %s as %s",
            len(self.agents) + 1,
            ",".join(self.node.collectives),
            self.node.identity,
        )

    # ---------------------------------------------------------------- main loop
    def run(self) -> None:
        """Serve until :meth:`stop`; reconnects by itself after broker trouble."""
        delay = 0.2
        while not self._stop.is_set():
            try:
                self.connect()
                delay = 0.2
                while not self._stop.is_set():
                    if self._reload.is_set() and self._do_reload():
                        self.connector.close()  # the agent set changed: subscribe again
                        break
                    d = self.connector.receive(0.5)
                    if d is not None:
                        self.submit(d)
            except Exception as exc:  # noqa: BLE001 - TransportError, or anything else: keep serving
                if self._stop.is_set():
                    break
                if not isinstance(exc, TransportError):
                    log.exception("unexpected error in the receive loop; reconnecting")
                log.warning("broker connection lost (%s); reconnecting in %.1f s", exc, delay)
                self.connector.close()
                self._stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max)
        log.info("stopping: finishing in-flight requests")
        self.drain()
        self.connector.close()

    def stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        """Ask the main loop to run ``reload_hook`` (safe from a signal handler)."""
        self._reload.set()

    def _do_reload(self) -> bool:
        """Run the reload hook on the main thread; True if the set of agents changed."""
        self._reload.clear()
        log.info("SIGHUP: reloading facts, classes and agents")
        if self.reload_hook is None:
            return False
        try:
            agents = self.reload_hook()
        except Exception as exc:  # noqa: BLE001 - a bad reload keeps the running agents
            log.error("reload failed, keeping the loaded agents: %s", exc)
            return False
        changed = set(agents) != set(self.agents)
        self.agents = agents
        log.info("reloaded: agents %s", ", ".join(sorted(agents)))
        return changed

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for in-flight requests (SIGTERM finishes them before exit)."""
        with self._inflight_lock:
            self._inflight_lock.wait_for(lambda: self._inflight == 0, timeout=timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, d: Delivery) -> None:
        """Check a delivery here, on the receiving thread (decode, security, TTL, replay,
        collective, agent, filter: all cheap), and queue only admitted requests for the
        worker pool — floods of bad messages never take a worker.  When the pool is
        saturated, admitted requests are refused and counted as ``overloaded``."""
        req = self.admit(d)
        if req is None:
            return
        if not self._pending.acquire(blocking=False):
            self.stats.incr("overloaded")
            log.warning(
                "refusing request %s for %s: %d requests already pending",
                req.requestid,
                req.agent,
                self.max_pending,
            )
            return
        with self._inflight_lock:
            self._inflight += 1

        def work() -> None:
            try:
                out = self.dispatch(d, req)
                if out is not None:
                    target, payload = out
                    try:
                        self.connector.publish_threadsafe(
                            target, payload, sender=self.node.identity
                        )
                    except Exception as exc:  # noqa: BLE001 - a lost reply must not kill the worker
                        self._reject(
                            "reply_failures",
                            "could not send the reply to %s: %s",
                            req.requestid,
                            exc,
                        )
            finally:
                self._pending.release()
                with self._inflight_lock:
                    self._inflight -= 1
                    self._inflight_lock.notify_all()

        self._pool.submit(work)

    # ---------------------------------------------------------------- one message
    def handle(self, d: Delivery) -> tuple[Target, bytes] | None:
        """Process one delivery start to end; returns the reply to send, if any. Never raises."""
        req = self.admit(d)
        return None if req is None else self.dispatch(d, req)

    def admit(self, d: Delivery) -> Request | None:
        """Steps 1–3: the decoded request if it may run here, else None (counted, logged).
        Never raises."""
        try:
            return self._admit(d)
        except Exception:  # noqa: BLE001 - the daemon must survive anything
            self.stats.incr("bad_messages")
            log.exception("unexpected failure handling a message from %s", d.sender or "?")
            return None

    def _reject(self, counter: str, msg: str, *args: Any) -> None:
        self.stats.incr(counter)
        log.warning(msg, *args)

    def _admit(self, d: Delivery) -> Request | None:
        self.stats.incr("total")
        try:
            req = self.security.decode_request(d.payload)
        except (MarshalError, SerializationError) as exc:
            self._reject(
                "bad_messages",
                "rejected an undecodable message (%d bytes) from %r: %s",
                len(d.payload),
                d.sender or "?",
                exc,
            )
            return None
        except MessageExpired as exc:
            self.stats.incr("validated")
            self._reject(
                "ttlexpired", "rejected an expired message from %r: %s", d.sender or "?", exc
            )
            return None
        except (DigestMismatch, InvalidCallerId, SecurityError) as exc:
            self._reject(
                "unvalidated",
                "rejected a message that failed security from %r: %s",
                d.sender or "?",
                exc,
            )
            return None
        self.stats.incr("validated")
        if not REQUESTID_RE.fullmatch(req.requestid) or not IDENTITY_RE.fullmatch(req.senderid):
            self._reject(
                "bad_messages",
                "rejected request %r from %r: a request id must match %s and a sender id %s",
                req.requestid[:80],
                req.senderid[:80],
                REQUESTID_RE.pattern,
                IDENTITY_RE.pattern,
            )
            return None
        who = f"{req.callerid}@{req.senderid}"
        if req.collective not in self.node.collectives:
            self._reject(
                "wrong_collective",
                "rejected request %s for collective %r we are not in, from %s",
                req.requestid,
                req.collective,
                who,
            )
            return None
        if req.agent != "discovery" and req.agent not in self.agents:
            self._reject(
                "unknown_agent",
                "rejected request %s for agent %r which is not loaded, from %s",
                req.requestid,
                req.agent,
                who,
            )
            return None
        verdict = filter_check(
            req.filter,
            identity=self.node.identity,
            facts=self.node.facts(),
            classes=self.node.classes(),
            agents=["discovery", *self.agents],
        )
        if not verdict.matched:
            self.stats.incr("filtered")
            log.info(
                "message %s for agent %r from %s does not pass filters%s",
                req.requestid,
                req.agent,
                who,
                f" ({verdict.error})" if verdict.error else "",
            )
            return None
        if self.replay_check is not None:
            outcome = self.replay_check(req)
            if outcome is True:
                outcome = "admitted"
            if outcome != "admitted":
                self._reject(
                    "replayed",
                    "rejected request %s for %s from %s: %s",
                    req.requestid,
                    req.agent,
                    who,
                    outcome,
                )
                return None
        self.stats.incr("passed")
        return req

    def dispatch(self, d: Delivery, req: Request) -> tuple[Target, bytes] | None:
        """Steps 4–5 for an admitted request: run it and build the reply. Never raises."""
        try:
            return self._dispatch(d, req)
        except Exception:  # noqa: BLE001 - the daemon must survive anything
            self.stats.incr("bad_messages")
            log.exception("unexpected failure running request %s for %s", req.requestid, req.agent)
            return None

    def _dispatch(self, d: Delivery, req: Request) -> tuple[Target, bytes] | None:
        who = f"{req.callerid}@{req.senderid}"

        if req.agent == "discovery":
            body: Any = discovery_reply(req.body)
            process = True
        else:
            try:
                rpc = RPCRequest.from_wire(req.body)
            except SerializationError as exc:
                self._reject(
                    "bad_messages", "rejected request %s from %s: %s", req.requestid, who, exc
                )
                return None
            if rpc.agent != req.agent:
                # the envelope's :agent is not covered by the digest/signature; the body's is
                self._reject(
                    "bad_messages",
                    "rejected request %s from %s: envelope agent %r differs from the signed body's %r",
                    req.requestid,
                    who,
                    req.agent,
                    rpc.agent,
                )
                return None
            process = rpc.process_results
            started = time.monotonic()
            agent = self.agents[req.agent]
            allowed, reason = (True, "") if self.authorize is None else self.authorize(req, rpc)
            if allowed:
                result = agent.handle(
                    ActionRequest(
                        agent=req.agent,
                        action=rpc.action,
                        data=rpc.data,
                        caller=req.callerid,
                        sender=req.senderid,
                        requestid=req.requestid,
                        collective=req.collective,
                        ttl=req.ttl,
                        msgtime=req.msgtime,
                    )
                )
            else:
                self.stats.incr("denied")
                log.warning("denied %s#%s to %s: %s", req.agent, rpc.action, who, reason)
                result = agent.denied_reply(rpc.action)
            # an agent's error text can quote a URL or a setting: the one masking rule
            masked = mask_text(result.statusmsg)
            if masked != result.statusmsg:
                result = replace(result, statusmsg=masked)
            if self.audit is not None:
                self.audit(
                    req=req,
                    rpc=rpc,
                    result=result,
                    allowed=allowed,
                    reason=reason,
                    duration=time.monotonic() - started,
                )
            body = result.to_wire()
        if not process:
            return None
        if not d.reply_to:
            self._reject(
                "reply_failures",
                "request %s from %s has no reply-to; not answering",
                req.requestid,
                who,
            )
            return None
        payload = self.security.encode_reply(
            Reply(
                senderid=self.node.identity,
                requestid=req.requestid,
                senderagent=req.agent,
                msgtime=int(self.clock()),
                body=body,
            )
        )
        self.stats.incr("replies")
        return Target.reply(d.reply_to), payload
