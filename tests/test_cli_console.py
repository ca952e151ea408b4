"""CLI console behaviour that needs no broker: progress only on a terminal."""

from __future__ import annotations

import io

from mcollective_py.cli.common import Terminal
from mcollective_py.cli.console import ConsoleEvents
from mcollective_py.results import NodeReply


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(out: io.StringIO) -> str:
    ev = ConsoleEvents(Terminal(out, io.StringIO(), color=False), progress=True)
    ev.request_sent("0" * 32, ["a", "b"], True, 2)
    ev.reply_received(NodeReply("a", "x", "y", 0, "OK"), 1, 2)
    ev.reply_received(NodeReply("b", "x", "y", 0, "OK"), 2, 2)
    ev.finish()
    return out.getvalue()


def test_progress_is_drawn_on_a_terminal() -> None:
    text = _run(Tty())
    assert text.startswith("\n\r ") and text.endswith("] 2 / 2\n\n")
    assert "[ ====" in text


def test_no_progress_when_not_a_terminal() -> None:
    assert _run(io.StringIO()) == ""
