"""Console progress and discovery messages for the client commands, laid out like ``mco``'s."""

from __future__ import annotations

from collections.abc import Sequence

from .. import render
from ..client import ClientEvents
from ..results import NodeReply
from .common import Terminal


class ConsoleEvents(ClientEvents):
    """Prints discovery and progress the way ``mco`` does (progress on a terminal only)."""

    def __init__(self, term: Terminal, *, progress: bool, announce_discovery: bool = True) -> None:
        self.term = term
        self.progress = progress and term.tty
        self.announce = announce_discovery
        self.width = render.progress_width(term.columns()) if self.progress else 0
        self.spin = 0
        self.started = False
        #: replies refused during discovery and collection, and why (the first few)
        self.rejected = 0
        self.reasons: list[str] = []

    def reply_rejected(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < 10:
            self.reasons.append(reason)

    def discovery_started(self, method: str, timeout: float) -> None:
        if self.announce:
            t = int(timeout) if float(timeout).is_integer() else timeout
            self.term.err.write(
                f"Discovering hosts using the {method} method for {t} second(s) .... "
            )
            self.term.err.flush()

    def discovery_finished(self, nodes: Sequence[str], seconds: float) -> None:
        if self.announce:
            self.term.err.write(f"{len(nodes)}\n")
            self.term.err.flush()

    def request_sent(self, requestid: str, nodes: Sequence[str], direct: bool, total: int) -> None:
        if self.progress and not self.started:
            self.started = True
            self.term.out.write(
                "\n" + render.progress(0, total, self.width, self.term.color, self.spin)
            )
            self.term.out.flush()

    def reply_received(self, reply: NodeReply, received: int, expected: int) -> None:
        if self.progress:
            self.spin += 1
            self.term.out.write(
                render.progress(received, expected, self.width, self.term.color, self.spin)
            )
            self.term.out.flush()

    def finish(self) -> None:
        if self.progress and self.started:
            self.term.out.write("\n\n")
            self.term.out.flush()
