"""Pure parts of the RabbitMQ connector: pool settings and reply-to translation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcollective_py import config
from mcollective_py.connectors.rabbitmq import brokers_from_config, parse_reply_to
from mcollective_py.errors import ConfigError


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
