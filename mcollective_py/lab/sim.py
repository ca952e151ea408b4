"""Fleet simulator: N MCollective identities (``sim-00001`` …) served by a few processes.

``mco-py lab sim --nodes N -c SERVER_CFG`` (see ``cli/lab_sim.py``) answers the built-in
``discovery`` agent and ``rpcutil`` for every simulated identity, on the broker, collective and
security provider that ``SERVER_CFG`` names, with the native wire format (psk or ssl, Marshal),
so Ruby ``mco`` and ``mco-py`` can both be measured against 1 to 10,000 nodes on one machine.

How N identities share a few broker connections (one per process):

* every process declares ONE exclusive queue and binds it to ``<collective>_broadcast`` with
  the keys ``discovery`` and ``rpcutil`` (one broadcast copy per process, answered for every
  identity of the process whose filter matches) and to ``<collective>_directed`` once per
  identity it serves (direct addressing reaches exactly one identity: the routing key);
* a request is decoded and authenticated ONCE per process (the package's own security
  provider); the last one is remembered by its payload bytes, so the copies a directed
  request (``-I a -I b …``) sends to each identity are decoded and checked once, and each
  copy only has its TTL checked again;
* each identity is checked against the filter (the package's own node-side
  :func:`mcollective_py.filter.check`; the wire filter is parsed once per request) and
  answered by its own :class:`Daemon` through :meth:`Daemon.dispatch` with its own
  :class:`Rpcutil` — the same code path as ``mco-py server``, so the replies are what a real
  node sends;
* except where every node sends the same reply body (:data:`SAME_ON_EVERY_NODE`:
  ``discovery``, rpcutil ``ping``): there only the first matching identity is dispatched,
  and the others' replies are its reply with the identity's bytes in the envelope's
  ``:senderid`` replaced (:func:`splice`; the psk ``:hash`` and the ssl signature cover
  the body only).  That is byte for byte what their own dispatch encodes in the same
  second; a splice that is not exact (the identity not in the reply exactly once, another
  length) falls back to the full dispatch for that identity.  Every other rpcutil action
  (inventory, get_fact, daemon_stats, …) answers per-node data and is dispatched per
  identity;
* an optional per-node delay distribution (:func:`parse_delay`) holds each reply back; the
  replies wait in a heap and go out from the process's only (pika) thread, handed to the
  connection without waiting for the socket and written in batches of
  :data:`FLUSH_EVERY` (:meth:`RabbitMQConnector.publish_later`, ``flush``).

Facts and classes are deterministic per identity (:func:`node_facts`, :func:`node_classes`):
odd nodes are ``role=web``, even ``role=db``, the first half ``datacenter=ams`` and the rest
``fra``, as in ruby-fleet, plus the usual facter-style facts.

A lab tool, not a node: no replay cache, no actionpolicy, no audit log (the security
provider still authenticates every request and checks its TTL).

Contract: :func:`run` serves until ``stop`` is set (SIGTERM in the CLI), reconnects each
process after broker trouble (and subscribes again), and raises ConfigError/UsageError before
any process starts when the config or the arguments are unusable.  Nothing here prints.
"""

from __future__ import annotations

import heapq
import logging
import math
import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ..config import Config
from ..connectors.base import Delivery, Target
from ..errors import (
    ConfigError,
    DigestMismatch,
    InvalidCallerId,
    MarshalError,
    MCollectiveError,
    MessageExpired,
    SecurityError,
    SerializationError,
    TransportError,
    UsageError,
)
from ..filter import Filter
from ..filter import check as filter_check
from ..message import Request
from ..rpc import RPCReply, RPCRequest, StatusCode
from ..security.base import SecurityProvider
from ..server.agent import ActionError
from ..server.builtin import Rpcutil

log = logging.getLogger("mcollective_py.lab.sim")

MAX_NODES = 10_000
#: the agents every simulated node answers
AGENTS = ("discovery", "rpcutil")
DATACENTERS = ("ams", "fra")
#: replies handed to the connection between two writes to the socket: the first replies of
#: a broadcast leave while the rest are still being made, and pika's per-write cost is
#: shared by this many (fewer when no delivery is waiting: then they are written at once)
FLUSH_EVERY = 64


# ---------------------------------------------------------------- pure parts
@dataclass(frozen=True)
class DelaySpec:
    """Per-reply delay in milliseconds: ``none``, ``fixed:MS``, ``uniform:LO:HI`` or
    ``exp:MEAN[:MAX]`` (exponential, capped at MAX, default 10×MEAN)."""

    kind: str = "none"
    a: float = 0.0
    b: float = 0.0

    def seconds(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a / 1000
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b) / 1000
        if self.kind == "exp":
            return min(rng.expovariate(1 / self.a), self.b) / 1000 if self.a > 0 else 0.0
        return 0.0

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"fixed:{self.a:g}"
        if self.kind == "uniform":
            return f"uniform:{self.a:g}:{self.b:g}"
        if self.kind == "exp":
            return f"exp:{self.a:g}:{self.b:g}"
        return "none"


def parse_delay(text: str) -> DelaySpec:
    """``"none"``, ``"0"``, ``"fixed:20"``, ``"uniform:5:50"``, ``"exp:20"``, ``"exp:20:500"``
    (milliseconds, at most 60,000) → :class:`DelaySpec`; UsageError naming the bad part."""
    spec = text.strip().lower()
    if spec in ("", "none", "0"):
        return DelaySpec()
    kind, _, rest = spec.partition(":")
    parts = rest.split(":") if rest else []
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise UsageError(
            f"--delay {text!r}: {rest!r} is not a number of milliseconds; "
            "use fixed:MS, uniform:LO:HI or exp:MEAN[:MAX]"
        ) from None
    if any(not math.isfinite(x) or x < 0 or x > 60_000 for x in nums):
        raise UsageError(f"--delay {text!r}: milliseconds must be between 0 and 60000")
    if kind == "fixed" and len(nums) == 1:
        return DelaySpec("fixed", nums[0])
    if kind == "uniform" and len(nums) == 2 and nums[0] <= nums[1]:
        return DelaySpec("uniform", nums[0], nums[1])
    if kind == "exp" and len(nums) in (1, 2):
        cap = nums[1] if len(nums) == 2 else min(60_000.0, nums[0] * 10)
        return DelaySpec("exp", nums[0], cap)
    raise UsageError(
        f"--delay {text!r} is not a delay distribution; use none, fixed:MS, uniform:LO:HI "
        "(LO <= HI) or exp:MEAN[:MAX] (milliseconds)"
    )


def identities(n: int, prefix: str = "sim-") -> list[str]:
    """``sim-00001`` … ``sim-NNNNN`` (at least five digits); UsageError outside 1..10,000."""
    if not 1 <= n <= MAX_NODES:
        raise UsageError(f"--nodes {n}: the simulator serves 1 to {MAX_NODES:,} nodes")
    width = max(5, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def node_facts(index: int, total: int, identity: str) -> dict[str, Any]:
    """Facter-style facts of simulated node ``index`` (1-based) of ``total``; deterministic."""
    rng = random.Random(f"facts:{identity}")
    role = "web" if index % 2 == 1 else "db"
    cores = rng.choice((2, 4, 8, 16))
    mem_mb = cores * rng.choice((2048, 4096))
    return {
        "role": role,
        "datacenter": DATACENTERS[0] if index <= (total + 1) // 2 else DATACENTERS[1],
        "node_index": str(index),
        "environment": "lab",
        "hostname": identity,
        "fqdn": f"{identity}.sim.lab",
        "ipaddress": f"127.15.{index // 256}.{index % 256}",
        "kernel": "Linux",
        "kernelrelease": "6.1.0-17-amd64",
        "osfamily": "Debian",
        "operatingsystem": "Debian",
        "operatingsystemrelease": "12.4",
        "architecture": "amd64",
        "virtual": "kvm",
        "is_virtual": "true",
        "processorcount": str(cores),
        "memorysize_mb": str(mem_mb),
        "uptime_seconds": str(rng.randrange(3600, 90 * 86400)),
        "timezone": "UTC",
        "os": {"family": "Debian", "name": "Debian", "release": {"major": "12", "full": "12.4"}},
    }


def node_classes(index: int) -> list[str]:
    """Puppet classes of simulated node ``index`` (the ``classes.txt`` lines)."""
    if index % 2 == 1:
        return ["roles::web", "profile::base", "profile::monitoring", "haproxy", "mcollective"]
    return ["roles::db", "profile::base", "profile::monitoring", "postgresql", "mcollective"]


def default_processes(n: int) -> int:
    """One process per 500 nodes, 1 to 4."""
    return max(1, min(4, math.ceil(n / 500)))


def shards(names: Sequence[str], processes: int) -> list[list[str]]:
    """Split ``names`` into ``processes`` contiguous, near-equal, non-empty slices."""
    processes = max(1, min(processes, len(names)))
    size, extra = divmod(len(names), processes)
    out, start = [], 0
    for p in range(processes):
        end = start + size + (1 if p < extra else 0)
        out.append(list(names[start:end]))
        start = end
    return out


# ---------------------------------------------------------------- one process's nodes
class InlineRpcutil(Rpcutil):
    """rpcutil whose actions run on the calling thread: they never block, and a thread per
    call per simulated identity would cost more than the action itself.  Exceptions map to
    status codes as in :class:`Agent`."""

    def _run_with_timeout(self, method: Any, req: Any, reply: Any) -> RPCReply:
        try:
            result = method(req, reply)
        except ActionError as exc:
            reply.fail(str(exc), int(exc.code))
            return cast(RPCReply, reply.to_rpc())
        except Exception as exc:  # noqa: BLE001 - mapped to statuscode 5, as Agent does
            reply.fail(f"{type(exc).__name__}: {exc}", StatusCode.UNKNOWN_ERROR)
            return cast(RPCReply, reply.to_rpc())
        if isinstance(result, Mapping):
            reply.data.update({str(k): v for k, v in result.items()})
        return cast(RPCReply, reply.to_rpc())


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


@dataclass(frozen=True)
class Outgoing:
    """A reply waiting for its node's simulated delay."""

    due: float
    identity: str
    target: Target
    payload: bytes


class Shard:
    """The simulated nodes of one process: decides every reply to a delivery.  No broker."""

    def __init__(
        self,
        cfg: Config,
        names: Sequence[str],
        total: int,
        *,
        security: SecurityProvider,
        connector: Any = None,
        delay: DelaySpec = DelaySpec(),
        seed: int = 0,
        index_of: Callable[[str], int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from ..ddl import load_agent_ddl
        from ..server.agent import AgentContext
        from ..server.builtin import DaemonInfo
        from ..server.daemon import Daemon, NodeView, Stats

        self.cfg, self.security, self.delay, self.seed = cfg, security, delay, seed
        self.names = list(names)
        self.stats = Stats()
        self.clock = clock
        self._memo: _Memo | None = None
        self.collectives = tuple(cfg.collectives)
        ddl = load_agent_ddl("rpcutil", list(cfg.libdir))
        self.daemons: dict[str, Any] = {}
        self.facts: dict[str, dict[str, Any]] = {}
        self.classes: dict[str, list[str]] = {}
        position = index_of or (lambda name: int(name.rsplit("-", 1)[-1]))
        settings = {k: s.value for k, s in cfg.settings.items()}
        for name in self.names:
            i = position(name)
            facts, classes = node_facts(i, total, name), node_classes(i)
            self.facts[name], self.classes[name] = facts, classes
            ctx = AgentContext(
                identity=name,
                settings=settings,
                facts=_constant(facts),
                classes=_constant(classes),
            )
            rpcutil = InlineRpcutil(ddl, ctx)
            daemon = Daemon(
                connector=connector,
                security=security,
                node=NodeView(name, self.collectives, ctx.facts, ctx.classes),
                agents={"rpcutil": rpcutil},
                stats=self.stats,
                threads=1,
                clock=clock,
            )
            rpcutil.info = DaemonInfo(
                config=cfg,
                configfile=cfg.files[-1] if cfg.files else "",
                stats=self.stats.snapshot,
                agents=_constant(list(daemon.agents.values())),
            )
            self.daemons[name] = daemon

    def targets(self) -> list[Target]:
        """Broadcast keys once per agent, and a directed binding per identity."""
        out = [Target.broadcast(c, a) for c in self.collectives for a in AGENTS]
        out += [Target.directed(c, n) for c in self.collectives for n in self.names]
        return out

    def decode(self, d: Delivery) -> Request | None:
        """Decode and authenticate once for the whole shard (counted like the daemon).

        The last authenticated request is remembered by its payload bytes: a directed
        request (``-I a -I b …``) brings the same payload once per identity, and it is
        decoded and checked once; each later copy only has its TTL checked again."""
        self.stats.incr("total")
        memo = self._memo
        if memo is not None and memo.payload == d.payload:
            try:
                self.security.check_ttl(memo.request.msgtime, memo.request.ttl)
            except MessageExpired as exc:
                self.stats.incr("ttlexpired")
                log.warning("rejected an expired message from %s: %s", d.sender or "?", exc)
                return None
            req = memo.request
        else:
            decoded = self._authenticate(d)
            if decoded is None:
                return None
            req = decoded
            self._memo = _Memo(d.payload, req)
        self.stats.incr("validated")
        if req.collective not in self.collectives or req.agent not in AGENTS:
            self.stats.incr("wrong_collective" if req.agent in AGENTS else "unknown_agent")
            return None
        return req

    def _authenticate(self, d: Delivery) -> Request | None:
        try:
            return self.security.decode_request(d.payload)
        except (MarshalError, SerializationError) as exc:
            self.stats.incr("bad_messages")
            log.warning("rejected an undecodable message from %s: %s", d.sender or "?", exc)
        except MessageExpired as exc:
            self.stats.incr("ttlexpired")
            log.warning("rejected an expired message from %s: %s", d.sender or "?", exc)
        except (DigestMismatch, InvalidCallerId, SecurityError) as exc:
            self.stats.incr("unvalidated")
            log.warning("rejected a message that failed security from %s: %s", d.sender, exc)
        return None

    def recipients(self, d: Delivery, req: Request) -> list[str]:
        """Who the delivery is for: the routing key's identity when it came through the
        directed exchange, else every identity of the shard whose filter matches.

        The verdict is :func:`mcollective_py.filter.check`'s for every identity; the wire
        filter is parsed once per request (a filter with no tests at all gets one verdict
        for everybody, since no test looks at the node), and a filter of literal
        identities only is answered by counting: an identity passes when exactly one entry
        names it, as ``check`` decides it."""
        exchange, _, key = d.destination.partition("/")
        if exchange.endswith("_directed"):
            candidates = [key] if key in self.daemons else []
        else:
            candidates = self.names
        if not candidates:
            return []
        memo = self._memo
        if memo is not None and memo.request is req:
            if memo.filter is None:
                memo.filter = self._filter_plan(req)
            plan = memo.filter
        else:
            plan = self._filter_plan(req)
        out: list[str]
        if plan.everyone is not None:
            out = list(candidates) if plan.everyone else []
        elif plan.named is not None:
            named = plan.named
            out = [name for name in candidates if named[name] == 1]
        else:
            flt, needs_facts = plan.parsed, plan.needs_facts
            assert flt is not None
            out = [
                name
                for name in candidates
                if filter_check(
                    flt,
                    identity=name,
                    facts=self.facts[name] if needs_facts else {},
                    classes=self.classes[name],
                    agents=list(AGENTS),
                ).matched
            ]
        if len(out) < len(candidates):
            self.stats.incr("filtered", len(candidates) - len(out))
        return out

    def _filter_plan(self, req: Request) -> _FilterPlan:
        raw = req.filter
        try:
            flt = Filter.from_wire(raw)
        except SerializationError:
            flt = None
        if flt is None or flt.empty():
            # no node-dependent test: the raw filter's verdict is everybody's (Ruby's
            # emptiness rule applies to the raw hash; a malformed one matches nobody)
            first = self.names[0]
            verdict = filter_check(
                raw, identity=first, facts={}, classes=self.classes[first], agents=list(AGENTS)
            )
            return _FilterPlan(everyone=verdict.matched)
        if flt.is_identity_only() and not (flt.cf_class or flt.fact or flt.agent or flt.compound):
            return _FilterPlan(named=Counter(i for i in flt.identity if isinstance(i, str)))
        # facts only matter to fact and compound filters; skipping them there saves
        # normalizing 20 facts per identity per request (the verdict is the same)
        return _FilterPlan(parsed=flt, needs_facts=bool(flt.fact or flt.compound))

    def answer(self, d: Delivery, now: float) -> list[Outgoing]:
        """Every reply this shard sends for ``d``, each with its due time.  Never raises."""
        return list(self.answers(d, now))

    def answers(self, d: Delivery, now: float) -> Iterator[Outgoing]:
        """:meth:`answer` one reply at a time, so the first ones can be sent while the rest
        are still being encoded.  Never raises.

        A node-independent request (:data:`SAME_ON_EVERY_NODE`) is dispatched in full for
        the first identity only; the other identities' replies are that reply with the
        identity's bytes replaced (:func:`splice`), which is what their own dispatch would
        have encoded: the body and its digest/signature are the same on every node, and
        only the envelope's ``:senderid`` names the node.  Whenever a splice is not exact
        (the identity is not in the reply exactly once, or the lengths differ) that
        identity gets its full dispatch.  The template lasts while the clock stays in the
        same second (replies carry the second they were made in)."""
        try:
            req = self.decode(d)
            if req is None:
                return
            names = self.recipients(d, req)
            if not names:
                return
            self.stats.incr("passed", len(names))
            memo = self._memo if self._memo is not None and self._memo.request is req else None
            second = int(self.clock())
            shared = False
            if memo is not None and d.reply_to:
                if memo.node_independent is None:
                    memo.node_independent = node_independent(req)
                shared = memo.node_independent
            template = memo.template if memo is not None and shared else None
            if template is not None and (
                template.second != second or template.reply_to != d.reply_to
            ):
                template = None
            for name in names:
                out = None
                if template is not None:
                    payload = splice(template.payload, template.at, name.encode("utf-8"))
                    if payload is not None:
                        self.stats.incr("replies")
                        out = (template.target, payload)
                if out is None:
                    out = self.daemons[name].dispatch(d, req)
                    if out is None:
                        continue
                    if memo is not None and shared and template is None:
                        template = Template.of(name, out, second, d.reply_to)
                        memo.template = template
                wait = 0.0
                if self.delay.kind != "none":
                    wait = self.delay.seconds(random.Random(f"{self.seed}:{name}:{req.requestid}"))
                yield Outgoing(now + wait, name, out[0], out[1])
        except Exception:  # noqa: BLE001 - a simulated node survives anything, like the daemon
            self.stats.incr("bad_messages")
            log.exception("unexpected failure handling a message from %s", d.sender or "?")


#: (agent, rpc action) pairs whose reply body is the same on every node: discovery's
#: ``pong`` (any action: its reply depends on the request body only) and rpcutil ``ping``
SAME_ON_EVERY_NODE = frozenset({("discovery", None), ("rpcutil", "ping")})


def node_independent(req: Request) -> bool:
    """True when every node would send ``req`` the same reply body (:data:`SAME_ON_EVERY_NODE`):
    the reply differs between nodes only in the envelope's ``:senderid``."""
    if req.agent == "discovery":
        return True
    try:
        rpc = RPCRequest.from_wire(req.body)
    except SerializationError:
        return False
    return rpc.agent == req.agent and (req.agent, rpc.action) in SAME_ON_EVERY_NODE


@dataclass(frozen=True)
class Template:
    """One fully dispatched reply that the other identities' replies are spliced from."""

    identity: bytes
    at: Span
    target: Target
    payload: bytes
    second: int
    reply_to: str | None

    @classmethod
    def of(
        cls, identity: str, out: tuple[Target, bytes], second: int, reply_to: str | None
    ) -> Template | None:
        """The template made from ``identity``'s reply, or None when the identity is not
        in the reply exactly once (then every identity is dispatched in full)."""
        raw = identity.encode("utf-8")
        start = out[1].find(raw)
        if start < 0 or out[1].find(raw, start + 1) >= 0:
            return None
        return cls(raw, Span(start, start + len(raw)), out[0], out[1], second, reply_to)


@dataclass(frozen=True)
class Span:
    """Where a template's identity sits in its encoded reply."""

    start: int
    end: int


def splice(payload: bytes, at: Span, identity: bytes) -> bytes | None:
    """``payload`` with the bytes at ``at`` replaced by ``identity``, or None unless the
    lengths match and ``identity`` then occurs in the result exactly once, at ``at``."""
    if len(identity) != at.end - at.start:
        return None
    out = payload[: at.start] + identity + payload[at.end :]
    if out.find(identity) != at.start or out.find(identity, at.start + 1) >= 0:
        return None
    return out


@dataclass(frozen=True)
class _FilterPlan:
    """How one request's filter is matched: the same verdict for ``everyone`` (no test
    looks at the node), by counting ``named`` literal identities, or ``parsed`` with
    :func:`mcollective_py.filter.check` per identity."""

    everyone: bool | None = None
    named: Counter[str] | None = None
    parsed: Filter | None = None
    needs_facts: bool = False


@dataclass
class _Memo:
    """The last authenticated request, by its payload bytes, and what was learnt about it."""

    payload: bytes
    request: Request
    node_independent: bool | None = None
    template: Template | None = None
    filter: _FilterPlan | None = None


# ---------------------------------------------------------------- the processes
@dataclass(frozen=True)
class SimPlan:
    """What to run: validated before any process starts."""

    config_file: str
    names: tuple[str, ...]
    processes: int
    delay: DelaySpec = DelaySpec()
    seed: int = 0


def plan(config_file: str, nodes: int, processes: int | None, delay: str, seed: int = 0) -> SimPlan:
    """Validate the arguments and the config (security, broker pool, rpcutil DDL) up front."""
    from .. import config as config_mod
    from .. import security
    from ..connectors.rabbitmq import brokers_from_config
    from ..ddl import load_agent_ddl

    names = identities(nodes)
    if processes is not None and not 1 <= processes <= 64:
        raise UsageError(f"--processes {processes}: give 1 to 64")
    spec = parse_delay(delay)
    cfg = config_mod.load(config_file, role="server")
    if cfg.connector != "rabbitmq":
        raise ConfigError(
            f"connector {cfg.connector!r} (from {cfg.origin('connector')}) is not supported by "
            "the simulator; set connector = rabbitmq"
        )
    security.from_config(cfg)
    brokers_from_config(cfg)
    try:
        load_agent_ddl("rpcutil", list(cfg.libdir))
    except MCollectiveError as exc:
        raise ConfigError(f"the simulator needs the rpcutil DDL: {exc}") from None
    procs = processes if processes is not None else default_processes(nodes)
    return SimPlan(config_file, tuple(names), min(procs, nodes), spec, seed)


def serve_shard(
    p: SimPlan,
    names: Sequence[str],
    stop: Any,
    ready: Any,
    index: int = 0,
    *,
    reconnect_max: float = 2.0,
) -> None:
    """One process: connect, bind, answer until ``stop`` is set; reconnect after trouble.
    Process ``index`` tries the broker pool starting at entry ``index`` (round robin), so a
    pool of several brokers carries the simulated fleet spread across all of them."""
    from .. import config as config_mod
    from .. import security as security_mod
    from .sim_connector import SharedQueueConnector

    # a signal handler must not touch the multiprocessing Event (its set() can deadlock
    # against a wait() interrupted on the same thread): it only flips a local flag
    flag: list[bool] = []
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: flag.append(True))

    def stopping() -> bool:
        return bool(flag) or stop.is_set()

    cfg = config_mod.load(p.config_file, role="server")
    sec = security_mod.from_config(cfg)
    from ..connectors.rabbitmq import brokers_from_config

    pool = brokers_from_config(cfg)
    k = index % len(pool)
    conn = SharedQueueConnector(
        pool[k:] + pool[:k], identity=cfg.identity, connection_timeout=cfg.connection_timeout or 5.0
    )
    shard = Shard(
        cfg, names, len(p.names), security=sec, connector=conn, delay=p.delay, seed=p.seed
    )
    pending: list[tuple[float, int, Outgoing]] = []
    seq = 0
    unflushed = 0
    delay = 0.2
    announced = False
    while not stopping():
        try:
            conn.connect()
            conn.subscribe(shard.targets())
            where = conn.connected_to.where if conn.connected_to else "?"
            if not announced:
                ready.put((os.getpid(), len(names), where))
                announced = True
            else:
                log.warning("reconnected to %s and bound %d identities again", where, len(names))
            delay = 0.2
            unflushed = 0  # a new connection: nothing of the old one's is waiting
            while not stopping():
                now = time.monotonic()
                wait = 0.2 if not pending else max(0.0, min(0.2, pending[0][0] - now))
                d = conn.receive(wait)
                now = time.monotonic()
                if d is not None:
                    for out in shard.answers(d, now):
                        if out.due <= now:
                            conn.publish_later(out.target, out.payload, sender=out.identity)
                            unflushed += 1
                            if unflushed >= FLUSH_EVERY:
                                conn.flush()
                                unflushed = 0
                        else:
                            seq += 1
                            heapq.heappush(pending, (out.due, seq, out))
                while pending and pending[0][0] <= now:
                    out = heapq.heappop(pending)[2]
                    conn.publish_later(out.target, out.payload, sender=out.identity)
                    unflushed += 1
                    if unflushed >= FLUSH_EVERY:
                        conn.flush()
                        unflushed = 0
                # a burst of directed copies is answered before the socket is written to
                if unflushed and not conn.has_pending_delivery():
                    conn.flush()
                    unflushed = 0
        except TransportError as exc:
            if stopping():
                break
            log.warning(
                "sim process %d: broker connection lost (%s); reconnecting in %.1f s",
                os.getpid(),
                exc,
                delay,
            )
            conn.close()
            until = time.monotonic() + delay
            while time.monotonic() < until and not stopping():
                time.sleep(0.05)
            delay = min(delay * 2, reconnect_max)
    conn.close()


@dataclass(frozen=True)
class Ready:
    """The fleet is up: ``nodes`` identities bound by ``processes`` processes."""

    nodes: int
    processes: int
    first: str
    last: str
    brokers: tuple[str, ...]
    pids: tuple[int, ...]


def run(
    p: SimPlan,
    should_stop: Callable[[], bool],
    *,
    on_ready: Callable[[Ready], None] = lambda r: None,
    ready_timeout: float = 300.0,
) -> int:
    """Start the processes, report readiness once, serve until ``should_stop()`` is true
    (polled every 0.2 s; the CLI flips it on SIGTERM), then stop every process.
    Returns how many processes died on their own (0 on a clean run).  TransportError if the
    processes are not bound within ``ready_timeout`` seconds."""
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    ready = ctx.Queue()
    procs = []
    for index, names in enumerate(shards(p.names, p.processes)):
        proc = ctx.Process(
            target=serve_shard,
            args=(p, names, stop, ready, index),
            name="mco-py-sim",
            daemon=True,
        )
        proc.start()
        procs.append(proc)
    try:
        seen: list[tuple[int, int, str]] = []
        deadline = time.monotonic() + ready_timeout
        while len(seen) < len(procs):
            if should_stop():
                return 0
            dead = [pr for pr in procs if not pr.is_alive()]
            if dead:
                raise TransportError(
                    f"{len(dead)} simulator process(es) exited while starting (exit code "
                    f"{dead[0].exitcode}); run with --debug to see why"
                )
            if time.monotonic() > deadline:
                raise TransportError(
                    f"only {len(seen)} of {len(procs)} simulator processes bound their "
                    f"identities within {ready_timeout:g} s; is the broker overloaded?"
                )
            try:
                seen.append(ready.get(timeout=0.2))
            except Exception:  # noqa: BLE001 - queue.Empty: poll again
                continue
        on_ready(
            Ready(
                nodes=len(p.names),
                processes=len(procs),
                first=p.names[0],
                last=p.names[-1],
                brokers=tuple(sorted({w for _, _, w in seen})),
                pids=tuple(pr.pid or 0 for pr in procs),
            )
        )
        while not should_stop():
            if any(not pr.is_alive() for pr in procs):
                break
            time.sleep(0.2)
        return 0 if should_stop() else sum(1 for pr in procs if not pr.is_alive())
    finally:
        stop.set()
        for pr in procs:
            pr.join(timeout=10)
        for pr in procs:
            if pr.is_alive():
                pr.kill()
                pr.join()


def fact_table(total: int) -> Mapping[str, dict[str, Any]]:
    """Every simulated node's facts (for tests and documentation)."""
    return {name: node_facts(i, total, name) for i, name in enumerate(identities(total), 1)}
