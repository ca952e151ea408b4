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
