"""RabbitMQ connector over AMQP 0-9-1 (pika), on the exchanges Ruby's STOMP connector uses.

==================  ==============================================  =========================
what                exchange / routing key                          Ruby STOMP destination
==================  ==============================================  =========================
broadcast request   ``<collective>_broadcast`` (topic) / agent       /exchange/<c>_broadcast/<agent>
directed request    ``<collective>_directed`` (direct) / identity    /exchange/<c>_directed/<id>
reply               ``""`` (default exchange) / reply queue name    /reply-queue/<q>
==================  ==============================================  =========================

Settings come from an unchanged Ruby ``client.cfg``/``server.cfg``: ``plugin.rabbitmq.vhost``,
``plugin.rabbitmq.pool.size`` and per pool entry N ``pool.N.host``, ``pool.N.user``,
``pool.N.password``, ``pool.N.ssl`` (+ ``.ssl.ca``, ``.ssl.cert``, ``.ssl.key``).  The pool's
``port`` is the STOMP port, so the AMQP port is ``pool.N.amqp_port`` (default 5672, 5671
with TLS).  Brokers are tried in pool order, like Ruby's pool.

Every pika/socket exception becomes :class:`TransportError` in one place,
:meth:`RabbitMQConnector._boundary`, which also forgets what the broker took away: a closed
channel (and with it the reply queue's consumer), or the whole connection.  The next call
then opens a fresh channel, and the next ``connect()`` a fresh connection; ``reply_queue()``
declares a new queue whenever the old one is gone (channel or connection closed by the
broker, or the queue deleted: the broker's consumer-cancel notice says so).  A client kept
open across such trouble therefore completes its next call.

Batched replies (:meth:`RabbitMQConnector.publish_later`, :meth:`~RabbitMQConnector.flush`):
for a process that answers in bursts (the fleet simulator), replies are handed to the
connection without waiting for the socket and written together; the frames are those of
``publish``.  On the pika versions read below, the waiting frames leave in one ``send``
(:func:`_coalesce`) instead of one system call per frame.

Receive buffer: pika reads its socket 4 KB at a time, a private class constant with no
public setting.  :func:`_tune_receive_buffer` raises it to :data:`RECV_BYTES` on each of
OUR connections only (an instance attribute on the connection's transport, never pika's
class), and only for the pika versions it was checked against (:data:`RECV_TUNED_PIKA`)
when the attribute is where and what it was; otherwise pika's default stays and a debug
line says why.  The size is measured, not maximal: pika copies the rest of its frame
buffer after every frame it decodes, so a 256 KB read costs more CPU per reply than a
4 KB one (docs/performance.md, "pika's receive buffer").
"""

from __future__ import annotations

import collections
import contextlib
import logging
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..errors import ConfigError, TransportError
from . import pika_import
from .base import Connector, Delivery, Target

pika_import.load()  # pika without its asyncio adapter (start-up time); see pika_import
import pika  # noqa: E402 - after pika_import.load(), which imports it leanly
import pika.exceptions  # noqa: E402

log = logging.getLogger(__name__)
# pika logs every failed connection attempt with a traceback; we report them ourselves.
logging.getLogger("pika").setLevel(logging.CRITICAL)

#: bytes per socket read on our pika connections (pika's own default is 4096)
RECV_BYTES = 16 * 1024
#: pika (major, minor) versions whose transport was read (1.3.2, 1.4.4): ``_MAX_RECV_BYTES``
#: on ``BlockingConnection._impl._transport``, read per ``recv`` in ``_consume``, and its
#: ``_tx_buffers`` deque of byte chunks, written front to back (:func:`_coalesce`)
RECV_TUNED_PIKA = ((1, 3), (1, 4))


@dataclass(frozen=True)
class Broker:
    """One pool entry: where to connect and as whom. ``password`` is never shown."""

    host: str
    port: int
    user: str
    password: str
    vhost: str
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def __repr__(self) -> str:
        return f"Broker({self.host}:{self.port} vhost={self.vhost} user={self.user} tls={self.tls})"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def brokers_from_config(cfg: Config) -> list[Broker]:
    """The broker pool from ``plugin.rabbitmq.*``; ConfigError on a missing/bad entry."""
    p = cfg.plugin("rabbitmq")
    vhost = p.get("vhost", "/")
    size_s = p.get("pool.size", "1").strip()
    if not size_s.isdigit() or int(size_s) < 1:
        raise ConfigError(f"plugin.rabbitmq.pool.size must be a whole number >= 1, got {size_s!r}")
    out = []
    for i in range(1, int(size_s) + 1):
        host = p.get(f"pool.{i}.host", "").strip()
        if not host:
            raise ConfigError(
                f"plugin.rabbitmq.pool.{i}.host is not set (pool.size is {size_s}); "
                "name the broker host in the config"
            )
        tls = p.get(f"pool.{i}.ssl", "0").strip().lower() in ("1", "true", "yes", "y", "t")
        port_s = p.get(f"pool.{i}.amqp_port", "5671" if tls else "5672").strip()
        if not port_s.isdigit():
            raise ConfigError(
                f"plugin.rabbitmq.pool.{i}.amqp_port must be a port number, got {port_s!r}"
            )
        out.append(
            Broker(
                host=host,
                port=int(port_s),
                user=p.get(f"pool.{i}.user", "guest"),
                password=p.get(f"pool.{i}.password", "guest"),
                vhost=vhost,
                tls=tls,
                ca=p.get(f"pool.{i}.ssl.ca"),
                cert=p.get(f"pool.{i}.ssl.cert"),
                key=p.get(f"pool.{i}.ssl.key"),
            )
        )
    return out


def parse_reply_to(reply_to: str) -> tuple[str, str]:
    """Translate a ``reply_to`` into ``(exchange, routing_key)``.

    A bare name is a queue on the default exchange (what RabbitMQ hands a STOMP client's
    temp-queue, and what our client sends).  STOMP-style prefixes are translated the way
    RabbitMQ's STOMP plugin does.
    """
    if reply_to.startswith("/exchange/"):
        rest = reply_to[len("/exchange/") :]
        ex, _, key = rest.partition("/")
        return ex, key
    for prefix in ("/reply-queue/", "/amq/queue/", "/queue/", "/temp-queue/"):
        if reply_to.startswith(prefix):
            return "", reply_to[len(prefix) :]
    if reply_to.startswith("/topic/"):
        return "amq.topic", reply_to[len("/topic/") :]
    return "", reply_to


class RabbitMQConnector(Connector):
    """pika BlockingConnection on MCollective's RabbitMQ layout. Not thread-safe: one per thread."""

    def __init__(
        self,
        brokers: Sequence[Broker],
        *,
        identity: str,
        connection_timeout: float = 5.0,
        heartbeat: int = 30,
    ) -> None:
        if not brokers:
            raise ConfigError("no RabbitMQ brokers configured (plugin.rabbitmq.pool.*)")
        self.brokers = list(brokers)
        self.identity = identity
        self.connection_timeout = connection_timeout
        self.heartbeat = heartbeat
        self.connected_to: Broker | None = None
        self._conn: Any = None
        self._ch: Any = None
        self._reply_q: str | None = None
        self._reply_tag: str | None = None
        self._inbox: collections.deque[Delivery] = collections.deque()
        self._checked_exchanges: set[str] = set()
        self._subscriptions: list[Target] = []
        #: reply properties by (sender, ttl), for publish_later (they differ only in those)
        self._reply_props: dict[tuple[str, int], Any] = {}

    @classmethod
    def from_config(cls, cfg: Config) -> RabbitMQConnector:
        return cls(
            brokers_from_config(cfg),
            identity=cfg.identity,
            connection_timeout=cfg.connection_timeout or 5.0,
        )

    # ---------------------------------------------------------------- connection
    def _params(self, b: Broker) -> pika.ConnectionParameters:
        ssl_options = None
        if b.tls:
            ctx = ssl.create_default_context(cafile=b.ca) if b.ca else ssl.create_default_context()
            if b.cert and b.key:
                ctx.load_cert_chain(b.cert, b.key)
            ssl_options = pika.SSLOptions(ctx, b.host)
        return pika.ConnectionParameters(
            host=b.host,
            port=b.port,
            virtual_host=b.vhost,
            credentials=pika.PlainCredentials(b.user, b.password),
            ssl_options=ssl_options,
            connection_attempts=1,
            socket_timeout=self.connection_timeout,
            stack_timeout=self.connection_timeout + 1,
            blocked_connection_timeout=30,
            heartbeat=self.heartbeat,
            # names the connection in rabbitmqctl list_connections and the management UI
            client_properties={"connection_name": f"mco-py {self.identity}"},
        )

    def connect(self) -> None:
        """Connect, or check that the open connection still stands (a connection the broker
        closed while we were idle is only noticed by talking to it) and reconnect if not."""
        if self._conn is not None and self._conn.is_open:
            try:
                with self._boundary("cannot check the connection"):
                    self._conn.process_data_events(time_limit=0)
            except TransportError as exc:
                log.info("connection check: %s", exc)
            if self._conn is not None and self._conn.is_open:
                return  # still up (a channel the broker closed is reopened on next use)
        failures = []
        for b in self.brokers:
            try:
                with self._boundary(b.where, broker=b):
                    self._conn = pika.BlockingConnection(self._params(b))
                _tune_receive_buffer(self._conn)
                self._channel()
                self.connected_to = b
                log.debug("connected to %s vhost %s", b.where, b.vhost)
                return
            except TransportError as exc:
                failures.append(str(exc))
        raise TransportError(
            "cannot connect to RabbitMQ at "
            + "; ".join(failures)
            + " — check that the broker runs and plugin.rabbitmq.pool.* (amqp_port, user, vhost) are right"
        )

    @contextlib.contextmanager
    def _boundary(
        self, doing: str, *, broker: Broker | None = None, missing: str = "", forget: bool = True
    ) -> Iterator[None]:
        """The one place pika/socket exceptions become TransportError ("<doing>: <reason>",
        e.g. "cannot publish to x/y: connection reset by the broker").  A channel the broker closed is forgotten with the reply queue it carried;
        a lost connection is forgotten whole.  ``missing`` replaces the reason when the broker
        answers 404 NOT_FOUND; ``broker`` names the pool entry for login/vhost refusals."""
        try:
            yield
        except (pika.exceptions.AMQPError, OSError) as exc:
            if forget and isinstance(exc, pika.exceptions.AMQPChannelError):
                self._forget_channel()
            elif forget:
                self._forget_connection()
            reason = _describe(exc, broker)
            if missing and getattr(exc, "reply_code", None) == 404:
                reason = missing
            raise TransportError(f"{doing}: {reason}") from None

    def _forget_channel(self) -> None:
        self._ch = None
        self._reply_q = None  # its consumer went with the channel; auto_delete removed it

    def _forget_connection(self) -> None:
        self._forget_channel()
        self._conn = None
        self._checked_exchanges.clear()

    def _on_cancel(self, *args: Any) -> None:
        """The broker cancelled a consumer (its queue was deleted)."""
        frame = args[-1]
        if getattr(frame.method, "consumer_tag", None) == self._reply_tag:
            log.info(
                "the broker cancelled the reply queue %s; a new one will be declared", self._reply_q
            )
            self._reply_q = None

    def close(self) -> None:
        conn = self._conn
        self._forget_connection()
        try:
            if conn is not None and conn.is_open:
                conn.close()
        except Exception:  # noqa: BLE001 - close must never raise
            pass

    @property
    def is_open(self) -> bool:
        return self._conn is not None and self._conn.is_open

    def _channel(self) -> Any:
        if self._ch is None or not self._ch.is_open:
            if self._conn is None or not self._conn.is_open:
                raise TransportError("not connected to RabbitMQ; call connect() first")
            with self._boundary("cannot open a channel"):
                self._ch = self._conn.channel()
                self._ch.add_on_cancel_callback(self._on_cancel)
        return self._ch

    # ---------------------------------------------------------------- client side
    def reply_queue(self) -> str:
        if self._reply_q is not None:
            return self._reply_q
        ch = self._channel()
        with self._boundary("cannot declare a reply queue"):
            q = ch.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
            tag = ch.basic_consume(queue=q, on_message_callback=self._on_message, auto_ack=True)
        self._reply_q, self._reply_tag = q, tag
        return q

    def _check_exchange(self, name: str) -> None:
        if name in self._checked_exchanges or name == "":
            return
        b = self.connected_to
        with self._boundary(
            f"cannot check exchange {name!r}",
            missing=f"it does not exist in vhost {b.vhost if b else '?'!r}; "
            "create the MCollective exchanges (<collective>_broadcast topic, "
            "<collective>_directed direct) or check the collective name",
        ):
            self._channel().exchange_declare(exchange=name, passive=True)
        self._checked_exchanges.add(name)

    def publish(
        self,
        target: Target,
        payload: bytes,
        *,
        reply_to: str | None = None,
        ttl: int = 60,
        sender: str = "",
    ) -> None:
        if target.kind == "broadcast":
            exchange, key = f"{target.collective}_broadcast", target.agent
        elif target.kind == "directed":
            exchange, key = f"{target.collective}_directed", target.identity
        elif target.kind == "reply":
            exchange, key = parse_reply_to(target.reply_to)
        else:
            raise TransportError(f"unknown target kind {target.kind!r}")
        if target.kind != "reply":
            self._check_exchange(exchange)
        props = _properties(reply_to, ttl, sender or self.identity)
        with self._boundary(f"cannot publish to {exchange or '(default)'}/{key}"):
            self._channel().basic_publish(
                exchange=exchange, routing_key=key, body=payload, properties=props
            )

    # ---------------------------------------------------------------- batched replies
    def publish_later(self, target: Target, payload: bytes, *, sender: str, ttl: int = 60) -> None:
        """Send a reply as :meth:`publish` does (same frames, properties and headers), but
        leave it in the connection's output buffer until :meth:`flush` or the next
        :meth:`receive` writes it.  For a process that answers in bursts (the fleet
        simulator): pika's blocking ``basic_publish`` runs its I/O loop until every byte of
        each message is written, ~4,000 messages/s here, against >20,000/s when a batch is
        written at once.  Where pika's blocking channel has no underlying channel to hand
        the message to (another pika version), this is :meth:`publish`.  TransportError on
        broker trouble."""
        if target.kind != "reply":
            raise TransportError(f"publish_later sends replies only, not a {target.kind} target")
        exchange, key = parse_reply_to(target.reply_to)
        impl = getattr(self._channel(), "_impl", None)
        if impl is None or not hasattr(impl, "basic_publish"):
            self.publish(target, payload, ttl=ttl, sender=sender)
            return
        props = self._reply_props.get((sender, ttl))
        if props is None:
            props = self._reply_props[(sender, ttl)] = _properties(None, ttl, sender)
        with self._boundary(f"cannot publish to {exchange or '(default)'}/{key}"):
            impl.basic_publish(exchange=exchange, routing_key=key, body=payload, properties=props)

    def flush(self) -> None:
        """Write everything :meth:`publish_later` queued (one ``send`` where the pika version
        allows, :func:`_coalesce`), and take in what has arrived meanwhile.  TransportError
        on broker trouble."""
        if self._conn is None:
            return
        _coalesce(self._conn)
        with self._boundary("cannot send the queued replies"):
            self._conn.process_data_events(time_limit=0)

    def has_pending_delivery(self) -> bool:
        """True when :meth:`receive` has a delivery to return without touching the socket."""
        return bool(self._inbox)

    def publish_threadsafe(
        self,
        target: Target,
        payload: bytes,
        *,
        reply_to: str | None = None,
        ttl: int = 60,
        sender: str = "",
    ) -> None:
        conn = self._conn
        if conn is None or not conn.is_open:
            log.warning("dropping a message for %s: not connected to RabbitMQ", target)
            return

        def send() -> None:
            try:
                self.publish(target, payload, reply_to=reply_to, ttl=ttl, sender=sender)
            except TransportError as exc:
                log.warning("could not send to %s: %s", target.reply_to or target, exc)

        try:
            # from a worker thread: report, but leave the connection state to its own thread
            with self._boundary(
                f"cannot hand a message for {target} to the connection", forget=False
            ):
                conn.add_callback_threadsafe(send)
        except (TransportError, RuntimeError) as exc:
            log.warning("dropping a message: %s", exc)

    # ---------------------------------------------------------------- node side
    def subscribe(self, targets: Sequence[Target]) -> None:
        """Bind one exclusive server-named queue per target (broadcast: exchange
        ``<c>_broadcast`` key agent; directed: ``<c>_directed`` key identity)."""
        ch = self._channel()
        for t in targets:
            exchange, key = _binding(t)
            self._check_exchange(exchange)
            with self._boundary(f"cannot subscribe to {exchange}/{key}"):
                q = ch.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
                ch.queue_bind(queue=q, exchange=exchange, routing_key=key)
                ch.basic_consume(queue=q, on_message_callback=self._on_message, auto_ack=True)
            self._subscriptions.append(t)

    def subscribe_shared(self, targets: Sequence[Target]) -> str:
        """Bind every target to ONE exclusive, auto-deleted, server-named queue with one
        consumer, and return the queue's name.

        For a process that answers for many identities (the fleet simulator): 10,000
        directed targets become 10,000 bindings on one queue, not 10,000 queues.  A
        delivery's ``destination`` (``exchange/routing_key``) says which binding matched.
        Every target is checked before anything is declared (only broadcast and directed
        targets can be subscribed: TransportError otherwise), and every exchange is checked
        once (a missing one: TransportError naming it and what to do).  Broker failures are
        TransportError through the connector's one boundary, like everything else here; the
        queue goes with the channel, so after trouble ``connect()`` and call this again.
        """
        bindings = [_binding(t) for t in targets]
        for exchange in sorted({e for e, _ in bindings}):
            self._check_exchange(exchange)
        ch = self._channel()
        with self._boundary(f"cannot bind {len(bindings)} subscriptions to one queue"):
            q = ch.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
            for exchange, key in bindings:
                ch.queue_bind(queue=q, exchange=exchange, routing_key=key)
            ch.basic_consume(queue=q, on_message_callback=self._on_message, auto_ack=True)
        self._subscriptions.extend(targets)
        return str(q)

    # ---------------------------------------------------------------- receiving
    def _on_message(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        # once per message: kept to plain operations (no per-reply work beyond the Delivery)
        raw = props.headers
        headers = {str(k): _hdr(v) for k, v in raw.items()} if raw else {}
        exp = props.expiration
        self._inbox.append(
            Delivery(
                body,
                props.reply_to,
                headers.get("mc_sender"),
                int(exp) if exp and str(exp).isdigit() else None,
                headers,
                method.exchange + "/" + method.routing_key,
            )
        )

    def receive(self, timeout: float) -> Delivery | None:
        if self._inbox:
            return self._inbox.popleft()
        if self._conn is None:
            raise TransportError("not connected to RabbitMQ; call connect() first")
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            left = deadline - time.monotonic()
            with self._boundary("lost the RabbitMQ connection"):
                self._conn.process_data_events(time_limit=max(0.0, min(left, 0.25)))
            if self._inbox:
                return self._inbox.popleft()
            if left <= 0:
                return None


def _binding(t: Target) -> tuple[str, str]:
    """``(exchange, routing_key)`` a node binds for a broadcast or directed target."""
    if t.kind == "broadcast":
        return f"{t.collective}_broadcast", t.agent
    if t.kind == "directed":
        return f"{t.collective}_directed", t.identity
    raise TransportError(f"cannot subscribe to a {t.kind} target")


def _tune_receive_buffer(conn: Any, size: int = RECV_BYTES) -> bool:
    """Make ``conn`` (a pika BlockingConnection) read its socket ``size`` bytes at a time.

    Only on pika versions in :data:`RECV_TUNED_PIKA`, and only when the connection's
    transport still has an integer ``_MAX_RECV_BYTES`` (pika 1.3/1.4's
    ``_AsyncTransportBase``); the value is set on this one transport instance, so other
    pika connections in the process keep pika's default.  Returns whether it was set;
    never raises (pika's default is a correct fallback: 4 KB reads measured no slower
    than 16 KB within this machine's noise, docs/performance.md).
    """
    if _pika_version() not in RECV_TUNED_PIKA:
        log.debug("pika %s: socket reads left at pika's default size", pika.__version__)
        return False
    transport: Any = getattr(getattr(conn, "_impl", None), "_transport", None)
    current = getattr(transport, "_MAX_RECV_BYTES", None)
    if type(current) is not int:
        log.debug(
            "pika %s: no integer _MAX_RECV_BYTES on the transport (%r); socket reads left "
            "at pika's default size",
            pika.__version__,
            type(transport).__name__,
        )
        return False
    transport._MAX_RECV_BYTES = size
    return True


def _properties(reply_to: str | None, ttl: int, sender: str) -> Any:
    """The AMQP properties of every message we send (Ruby's STOMP connector sets the same)."""
    return pika.BasicProperties(
        content_type="text/plain; charset=UTF-8",
        expiration=str((ttl + 10) * 1000),
        reply_to=reply_to,
        headers={"mc_sender": sender},
    )


def _coalesce(conn: Any) -> bool:
    """Join the frames waiting in ``conn``'s (a pika BlockingConnection) output buffer into
    one chunk, so they leave in one ``send``: pika writes each frame with its own system
    call, three per message.  The bytes and their order are unchanged.  Only on the pika
    versions whose transport was read (:data:`RECV_TUNED_PIKA`: ``_tx_buffers``, a deque of
    byte chunks written front to back) and only when the buffer still is one; otherwise
    nothing is done (pika's frame-by-frame writes are the correct fallback).  Returns
    whether it joined anything; never raises."""
    if _pika_version() not in RECV_TUNED_PIKA:
        return False
    transport = getattr(getattr(conn, "_impl", None), "_transport", None)
    buffers = getattr(transport, "_tx_buffers", None)
    if not isinstance(buffers, collections.deque) or len(buffers) < 2:
        return False
    if not all(type(b) is bytes for b in buffers):
        return False
    joined = b"".join(buffers)
    buffers.clear()
    buffers.append(joined)
    return True


def _pika_version() -> tuple[int, ...]:
    return tuple(int(x) for x in pika.__version__.split(".")[:2] if x.isdigit())


def _hdr(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _describe(exc: BaseException, broker: Broker | None = None) -> str:
    """A short human reason for a pika/socket failure (pika nests the real cause in args);
    ``broker`` names the user and vhost when the broker refused a login."""
    if broker is not None and isinstance(exc, pika.exceptions.ProbableAuthenticationError):
        return f"login refused for user {broker.user!r}"
    if broker is not None and isinstance(exc, pika.exceptions.ProbableAccessDeniedError):
        return f"vhost {broker.vhost!r} does not exist or user {broker.user!r} may not use it"
    if isinstance(exc, pika.exceptions.ConnectionClosedByBroker):
        return f"the broker closed the connection ({exc.reply_code} {exc.reply_text})"
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
        return f"the broker closed the channel ({exc.reply_code} {exc.reply_text})"
    text = " ".join([str(exc), repr(exc), *(repr(a) for a in exc.args)])
    low = text.lower()
    if "connectionrefused" in low or "connection refused" in low:
        return "connection refused"
    if (
        isinstance(exc, OSError)
        and getattr(exc, "errno", None) in (-2, -3, -5)
        or "name or service not known" in low
    ):
        return "host name does not resolve"
    if "timed out" in low or "timeout" in low:
        return "connection timed out"
    if "not_allowed" in low and "vhost" in low:
        return "vhost not found or not allowed"
    if "ssl" in low and ("certificate" in low or "handshake" in low):
        return "TLS handshake failed (check plugin.rabbitmq.pool.N.ssl.ca/cert/key)"
    if "connectionreset" in low or "reset by peer" in low:
        return "connection reset by the broker"
    return str(exc) or (repr(exc.args[0]) if exc.args else type(exc).__name__)
