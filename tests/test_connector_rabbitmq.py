"""Pure parts of the RabbitMQ connector: pool settings, reply-to translation, and the one\nboundary where pika errors become TransportError (pika mocked; the real broker:\ntests/integration/test_exchange_broker.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from mcollective_py import config
from mcollective_py.connectors.base import Target
from mcollective_py.connectors.rabbitmq import (
    Broker,
    RabbitMQConnector,
    brokers_from_config,
    parse_reply_to,
)
from mcollective_py.errors import ConfigError, TransportError


@pytest.mark.parametrize(
    ("reply_to", "want"),
    [
        ("amq.gen-abc", ("", "amq.gen-abc")),  # what our client and RabbitMQ's temp-queue give
        ("/reply-queue/amq.gen-abc", ("", "amq.gen-abc")),
        ("/amq/queue/q1", ("", "q1")),
        ("/queue/q1", ("", "q1")),
        ("/temp-queue/q1", ("", "q1")),
        ("/exchange/mcollective_reply/client_123_1", ("mcollective_reply", "client_123_1")),
        ("/topic/replies.x", ("amq.topic", "replies.x")),
    ],
)
def test_reply_to_translation(reply_to: str, want: tuple[str, str]) -> None:
    assert parse_reply_to(reply_to) == want


def _cfg(tmp_path: Path, text: str) -> config.Config:
    f = tmp_path / "c.cfg"
    f.write_text(text)
    return config.load(str(f), env={}, home=str(tmp_path), system_dirs=())


def test_pool_settings_from_an_unchanged_ruby_client_cfg(tmp_path: Path) -> None:
    cfg = _cfg(
        tmp_path,
        "plugin.rabbitmq.vhost = /mcollective\nplugin.rabbitmq.pool.size = 2\n"
        "plugin.rabbitmq.pool.1.host = 127.0.0.1\nplugin.rabbitmq.pool.1.port = 61613\n"
        "plugin.rabbitmq.pool.1.user = u\nplugin.rabbitmq.pool.1.password = s3cr3t-pw\n"
        "plugin.rabbitmq.pool.2.host = 127.0.0.2\nplugin.rabbitmq.pool.2.ssl = 1\n",
    )
    b1, b2 = brokers_from_config(cfg)
    assert (b1.host, b1.port, b1.user, b1.vhost, b1.tls) == (
        "127.0.0.1",
        5672,
        "u",
        "/mcollective",
        False,
    )
    assert (b2.host, b2.port, b2.tls) == ("127.0.0.2", 5671, True)  # TLS default AMQP port
    assert b1.password == "s3cr3t-pw" and "s3cr3t" not in repr(b1)  # the password never shows


def test_missing_pool_host_is_a_clear_error(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "plugin.rabbitmq.pool.size = 2\nplugin.rabbitmq.pool.1.host = 127.0.0.1\n")
    with pytest.raises(
        ConfigError, match=r"^plugin.rabbitmq.pool.2.host is not set \(pool.size is 2\)"
    ):
        brokers_from_config(cfg)


# ---------------------------------------------------------------- the error boundary (pika mocked)
def _connector(mocker: Any) -> tuple[RabbitMQConnector, Any]:
    """A connector whose pika connection is a double: ``conn.channel()`` hands out channels
    whose ``queue_declare`` names queues q1, q2, ..."""
    c = RabbitMQConnector([Broker("127.0.0.1", 5672, "u", "p", "/v")], identity="client1")
    conn = mocker.MagicMock(is_open=True)
    names = iter(f"q{i}" for i in range(1, 10))

    def channel() -> Any:
        ch = mocker.MagicMock(is_open=True)
        ch.queue_declare.side_effect = lambda **kw: mocker.MagicMock(
            method=mocker.MagicMock(queue=next(names))
        )
        ch.basic_consume.return_value = "ctag"
        return ch

    conn.channel.side_effect = channel
    c._conn = conn
    return c, conn


def test_a_channel_closed_by_the_broker_takes_the_reply_queue_with_it(mocker: Any) -> None:
    c, conn = _connector(mocker)
    assert c.reply_queue() == "q1"
    c._ch.basic_publish.side_effect = pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION")
    with pytest.raises(
        TransportError, match=r"^cannot publish to \(default\)/x: the broker closed the channel"
    ):
        c.publish(Target.reply("x"), b"payload")
    assert c.reply_queue() == "q2"  # declared anew on a fresh channel, not the stale q1
    assert c._conn is conn  # the connection itself stays


def test_a_lost_connection_is_forgotten_and_connect_opens_a_new_one(mocker: Any) -> None:
    c, conn = _connector(mocker)
    c.reply_queue()
    conn.process_data_events.side_effect = pika.exceptions.StreamLostError("reset by peer")
    fresh, _ = _connector(mocker)
    made = mocker.patch.object(pika, "BlockingConnection", return_value=fresh._conn)
    c.connect()  # the probe fails: reconnect
    assert made.call_count == 1 and c._conn is fresh._conn and c.reply_queue() == "q1"


def test_a_missing_exchange_is_named_with_what_to_do(mocker: Any) -> None:
    c, _ = _connector(mocker)
    c.connected_to = c.brokers[0]
    c._channel().exchange_declare.side_effect = pika.exceptions.ChannelClosedByBroker(
        404, "NOT_FOUND - no exchange 'other_broadcast' in vhost '/v'"
    )
    with pytest.raises(
        TransportError,
        match=r"^cannot check exchange 'other_broadcast': it does not exist in vhost '/v'; "
        r"create the MCollective exchanges",
    ):
        c.publish(Target.broadcast("other", "rpcutil"), b"payload")


def test_a_reply_queue_cancelled_by_the_broker_is_declared_anew(mocker: Any) -> None:
    c, _ = _connector(mocker)
    assert c.reply_queue() == "q1"
    cancel = mocker.MagicMock(method=mocker.MagicMock(consumer_tag="ctag"))
    c._on_cancel(c._ch, cancel)  # what pika calls on Basic.Cancel (queue deleted)
    assert c.reply_queue() == "q2"
    other = mocker.MagicMock(method=mocker.MagicMock(consumer_tag="someone-else"))
    c._on_cancel(c._ch, other)
    assert c.reply_queue() == "q2"


# ---------------------------------------------------------------- one queue, many bindings
def test_subscribe_shared_binds_every_target_to_one_queue(mocker: Any) -> None:
    c, conn = _connector(mocker)
    targets = [
        Target.broadcast("mcollective", "rpcutil"),
        Target.directed("mcollective", "sim-00001"),
        Target.directed("mcollective", "sim-00002"),
    ]
    assert c.subscribe_shared(targets) == "q1"
    ch = c._ch
    assert ch.queue_declare.call_count == 1  # one queue, not one per target
    assert [call.kwargs for call in ch.queue_bind.call_args_list] == [
        {"queue": "q1", "exchange": "mcollective_broadcast", "routing_key": "rpcutil"},
        {"queue": "q1", "exchange": "mcollective_directed", "routing_key": "sim-00001"},
        {"queue": "q1", "exchange": "mcollective_directed", "routing_key": "sim-00002"},
    ]
    # each exchange checked once, before anything is declared
    assert sorted(call.kwargs["exchange"] for call in ch.exchange_declare.call_args_list) == [
        "mcollective_broadcast",
        "mcollective_directed",
    ]
    assert ch.basic_consume.call_count == 1
    assert ch.basic_consume.call_args.kwargs["queue"] == "q1"


def test_subscribe_shared_deliveries_name_the_binding_that_matched(mocker: Any) -> None:
    c, _ = _connector(mocker)
    c.subscribe_shared([Target.directed("mcollective", "sim-00002")])
    on_message = c._ch.basic_consume.call_args.kwargs["on_message_callback"]
    method = mocker.MagicMock(exchange="mcollective_directed", routing_key="sim-00002")
    props = pika.BasicProperties(
        reply_to="amq.gen-r", expiration="70000", headers={"mc_sender": b"client1"}
    )
    on_message(c._ch, method, props, b"payload")
    d = c.receive(0)
    assert d is not None
    assert (d.payload, d.destination, d.reply_to, d.sender, d.expiration_ms) == (
        b"payload",
        "mcollective_directed/sim-00002",
        "amq.gen-r",
        "client1",
        70000,
    )


def test_subscribe_shared_refuses_a_reply_target_before_declaring_anything(mocker: Any) -> None:
    c, conn = _connector(mocker)
    with pytest.raises(TransportError, match=r"^cannot subscribe to a reply target$"):
        c.subscribe_shared([Target.directed("mcollective", "n1"), Target.reply("q")])
    assert conn.channel.call_count == 0  # nothing declared, not even a channel


def test_subscribe_shared_broker_failure_is_a_transport_error(mocker: Any) -> None:
    c, _ = _connector(mocker)
    ch = c._channel()
    ch.queue_bind.side_effect = pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED")
    with pytest.raises(
        TransportError,
        match=r"^cannot bind 2 subscriptions to one queue: the broker closed the channel "
        r"\(403 ACCESS_REFUSED\)$",
    ):
        c.subscribe_shared(
            [Target.directed("mcollective", "n1"), Target.directed("mcollective", "n2")]
        )
    assert c._ch is None  # the channel (and the half-bound queue with it) is forgotten


def test_subscribe_shared_missing_exchange_names_it(mocker: Any) -> None:
    c, _ = _connector(mocker)
    c.connected_to = c.brokers[0]
    c._channel().exchange_declare.side_effect = pika.exceptions.ChannelClosedByBroker(
        404, "NOT_FOUND"
    )
    with pytest.raises(
        TransportError, match=r"^cannot check exchange 'other_directed': it does not exist"
    ):
        c.subscribe_shared([Target.directed("other", "n1")])


# ---------------------------------------------------------------- pika's receive buffer
def test_receive_buffer_is_raised_on_this_connection_only(mocker: Any) -> None:
    from pika.adapters.utils.io_services_utils import _AsyncTransportBase

    from mcollective_py.connectors import rabbitmq

    transport = mocker.MagicMock(_MAX_RECV_BYTES=4096)
    conn = mocker.MagicMock(_impl=mocker.MagicMock(_transport=transport))
    assert rabbitmq._tune_receive_buffer(conn) is True
    assert transport._MAX_RECV_BYTES == rabbitmq.RECV_BYTES
    assert _AsyncTransportBase._MAX_RECV_BYTES == 4096  # pika's class is untouched


@pytest.mark.parametrize(
    ("version", "transport_attr"),
    [("2.0.0", 4096), ("1.2.1", 4096), ("1.4.4", None), ("1.4.4", "4096")],
    ids=["newer-pika", "older-pika", "attribute-gone", "attribute-not-int"],
)
def test_receive_buffer_falls_back_to_pikas_default(
    mocker: Any, version: str, transport_attr: Any
) -> None:
    from mcollective_py.connectors import rabbitmq

    mocker.patch.object(rabbitmq.pika, "__version__", version)
    transport = mocker.MagicMock(spec=["write"])  # no _MAX_RECV_BYTES unless given
    if transport_attr is not None:
        transport._MAX_RECV_BYTES = transport_attr
    conn = mocker.MagicMock(_impl=mocker.MagicMock(_transport=transport))
    assert rabbitmq._tune_receive_buffer(conn) is False
    assert getattr(transport, "_MAX_RECV_BYTES", None) == transport_attr  # left as it was


def test_connect_tunes_the_receive_buffer_of_the_real_pika_transport(mocker: Any) -> None:
    """Against the installed pika's real transport class: the attribute is still there."""
    from pika.adapters.utils.io_services_utils import _AsyncPlaintextTransport

    assert isinstance(_AsyncPlaintextTransport._MAX_RECV_BYTES, int)
    c, conn = _connector(mocker)
    fresh = mocker.MagicMock(is_open=True)
    fresh._impl._transport = mocker.MagicMock(_MAX_RECV_BYTES=4096)
    c._conn = None
    mocker.patch.object(pika, "BlockingConnection", return_value=fresh)
    c.connect()
    assert fresh._impl._transport._MAX_RECV_BYTES == 16 * 1024
