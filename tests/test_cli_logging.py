"""``mco-py``'s own log goes through the masking LogFilter: ``--debug`` never prints a psk,
a password or a URL's user-info, in messages or tracebacks."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import types
from collections.abc import Iterator
from typing import Any

import pytest

from mcollective_py.cli import main as cli_main
from mcollective_py.cli.common import ClientLogHandler, Terminal, setup_logging

PSK = "topsecretpsk"
PASSWORD = "wrongpassword99"
URL = f"amqp://mcollective:{PASSWORD}@127.0.18.1:5672/mcollective"


def _leak(args: argparse.Namespace, term: Terminal) -> int:
    log = logging.getLogger("mcollective_py.connectors.leak")
    log.debug("connecting to %s with plugin.psk=%s", URL, PSK)
    log.warning("retrying %s", URL)
    try:
        raise RuntimeError(f"broker said no to {URL} (psk: {PSK})")
    except RuntimeError:
        log.exception("connection failed")
    return 0


def _register(sub: Any) -> None:
    sub.add_parser("leak", help="log secrets").set_defaults(run=_leak)


LEAK = types.ModuleType("leak")
LEAK.register = _register  # type: ignore[attr-defined]


@contextlib.contextmanager
def bare_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """A root logger with no handlers, as in a fresh ``mco-py`` process; pytest's own
    capture handlers (added for each test phase) and the levels are put back afterwards."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", root.level)
    pika = logging.getLogger("pika")
    monkeypatch.setattr(pika, "level", pika.level)
    monkeypatch.setattr(cli_main, "COMMANDS", (*cli_main.COMMANDS, LEAK))
    saved = root.handlers[:]
    root.handlers = []
    try:
        yield root
    finally:
        root.handlers = saved


def test_debug_output_is_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with bare_root(monkeypatch):
        assert cli_main.main(["--debug", "leak"]) == 0
    err = capsys.readouterr().err
    assert PSK not in err and PASSWORD not in err, err
    lines = err.splitlines()
    assert lines[0] == (
        "mco-py: DEBUG mcollective_py.connectors.leak: connecting to "
        "amqp://********@127.0.18.1:5672/mcollective with plugin.psk=********"
    )
    assert lines[1] == (
        "mco-py: WARNING mcollective_py.connectors.leak: retrying "
        "amqp://********@127.0.18.1:5672/mcollective"
    )
    assert lines[2] == "mco-py: ERROR mcollective_py.connectors.leak: connection failed"
    assert lines[3] == "Traceback (most recent call last):"
    # the value of "psk:" runs to the next space: the ")" goes too (over-masking is preferred)
    assert lines[-1] == (
        "RuntimeError: broker said no to amqp://********@127.0.18.1:5672/mcollective (psk: ********"
    )


def test_without_debug_only_warnings_and_still_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with bare_root(monkeypatch):
        assert cli_main.main(["leak"]) == 0
    err = capsys.readouterr().err
    assert "DEBUG" not in err and PSK not in err and PASSWORD not in err
    assert "retrying amqp://********@127.0.18.1:5672/mcollective" in err


def test_setup_is_idempotent_and_leaves_other_handlers_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with bare_root(monkeypatch) as root:
        first, second = io.StringIO(), io.StringIO()
        setup_logging(True, first)
        setup_logging(True, second)  # replaces the first: one line per record, not two
        logging.getLogger("x").debug("token=%s", PSK)
        assert first.getvalue() == ""
        assert second.getvalue() == "mco-py: DEBUG x: token=********\n"
        assert [type(h) for h in root.handlers] == [ClientLogHandler]
        other = logging.StreamHandler(io.StringIO())
        root.handlers = [other]
        assert setup_logging(False) is None and root.handlers == [other]
