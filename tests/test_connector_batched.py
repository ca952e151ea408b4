"""The connector's batched writes (publish_later/flush, used by the fleet simulator): the frames waiting in pika's output buffer are
joined into one chunk, bytes and order unchanged, or left alone when the buffer is not what
the pika versions it was checked against have."""

from __future__ import annotations

import collections
import types

import pytest

from mcollective_py.connectors import rabbitmq


def conn_with(buffers: object) -> object:
    transport = types.SimpleNamespace(_tx_buffers=buffers)
    return types.SimpleNamespace(_impl=types.SimpleNamespace(_transport=transport))


def test_frames_are_joined_in_order() -> None:
    frames = collections.deque([b"\x01method", b"\x02header", b"\x03body", b"\x01next"])
    assert rabbitmq._coalesce(conn_with(frames)) is True
    assert list(frames) == [b"\x01method\x02header\x03body\x01next"]


@pytest.mark.parametrize(
    "buffers",
    [
        collections.deque([b"one frame"]),
        collections.deque(),
        [b"a", b"b"],  # not pika's deque
        collections.deque([b"a", memoryview(b"b")]),  # not all bytes
        None,
    ],
    ids=["one", "empty", "list", "memoryview", "none"],
)
def test_anything_else_is_left_alone(buffers: object) -> None:
    before = list(buffers) if isinstance(buffers, (list, collections.deque)) else buffers
    assert rabbitmq._coalesce(conn_with(buffers)) is False
    after = list(buffers) if isinstance(buffers, (list, collections.deque)) else buffers
    assert after == before


def test_other_pika_versions_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rabbitmq, "_pika_version", lambda: (9, 9))
    frames = collections.deque([b"a", b"b"])
    assert rabbitmq._coalesce(conn_with(frames)) is False
    assert list(frames) == [b"a", b"b"]
