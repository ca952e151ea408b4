"""Nagios: scheduled downtime for each node while it is out of the pool.

Through Nagios' external command file (a FIFO, ``command_file`` in nagios.cfg), one line per
command, ``[<unix time>] <COMMAND>;<args>``:

* when a node starts draining: ``SCHEDULE_HOST_DOWNTIME`` for the node (the Nagios host name
  is the node's identity) and, when a Nagios service name is configured,
  ``SCHEDULE_SVC_DOWNTIME`` for that service on it -- fixed, ``downtime`` seconds long, with
  the comment ``mco-py deploy <run>: <node> out of the pool``;
* when the node is back in every pool it left (``online`` for each LB it drained from), or
  the run is through with it (``done``, ``rolled_back``):
  ``DEL_DOWNTIME_BY_START_TIME_COMMENT`` with that start time and comment, which removes
  exactly the downtimes this run scheduled and none an operator set;
* a node that ``failed`` and was not rolled back keeps its downtime (it is still out); the
  fixed downtime ends by itself after ``downtime`` seconds.

Nagios ignores a line that is not one of its commands, so names are checked here: a host or
service name with ``;``, newlines or control characters is refused (``ValueError``).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..events import DeployEvent, DeployHooks

_NAME = re.compile(r"\A[^;\x00-\x1f\x7f]{1,200}\Z")


def _check(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} cannot go into a Nagios command (';' or control characters)"
        )
    return name


def schedule_commands(
    node: str, service: str | None, start: int, duration: int, author: str, comment: str
) -> list[str]:
    """The SCHEDULE_* commands (without the ``[time]`` prefix) for one node."""
    _check(node, "host name")
    _check(author, "author")
    _check(comment, "comment")
    end = start + duration
    out = [f"SCHEDULE_HOST_DOWNTIME;{node};{start};{end};1;0;{duration};{author};{comment}"]
    if service:
        _check(service, "service name")
        out.append(
            f"SCHEDULE_SVC_DOWNTIME;{node};{service};{start};{end};1;0;{duration};{author};{comment}"
        )
    return out


def delete_command(start: int, comment: str) -> str:
    """Removes every downtime with this start time and comment (host and service)."""
    return f"DEL_DOWNTIME_BY_START_TIME_COMMENT;{start};{_check(comment, 'comment')}"


class NagiosSubscriber(DeployHooks):
    """Writes downtime commands to a running Nagios' command file."""

    def __init__(
        self,
        command_file: str | Path,
        *,
        service: str | None = None,
        downtime: int = 1800,
        author: str = "mco-py",
    ) -> None:
        self.command_file = Path(command_file)
        self.service = service
        self.downtime = downtime
        self.author = author
        self.out_of_pool: dict[
            tuple[str, str], tuple[int, str]
        ] = {}  # (run, node) -> start, comment
        self.drained_from: dict[tuple[str, str], set[str]] = {}  # LBs a node is out of
        self.written: list[str] = []

    def _write(self, commands: list[str], at: int) -> None:
        """One write per batch; O_NONBLOCK so a Nagios that is not reading makes it fail
        (ENXIO) instead of hanging the run."""
        try:
            mode = os.stat(self.command_file).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Nagios command file {self.command_file} does not exist: is Nagios running "
                "with check_external_commands=1?"
            ) from None
        if not stat.S_ISFIFO(mode):
            raise ValueError(f"{self.command_file} is not a FIFO (Nagios' command_file)")
        data = "".join(f"[{at}] {c}\n" for c in commands).encode("utf-8")
        fd = os.open(self.command_file, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.written.extend(commands)

    def on_event(self, event: DeployEvent) -> None:
        if event.kind != "node_state" or not event.node:
            return
        key = (event.run_id, event.node)
        at = int(event.time)
        if event.state == "drain":
            self.drained_from.setdefault(key, set()).add(event.lb or "")
            if key not in self.out_of_pool:
                comment = f"mco-py deploy {event.run_id}: {event.node} out of the pool"
                commands = schedule_commands(
                    event.node, self.service, at, self.downtime, self.author, comment
                )
                self._write(commands, at)
                self.out_of_pool[key] = (at, comment)
            return
        if event.state == "online":
            left = self.drained_from.get(key, set())
            left.discard(event.lb or "")
            if event.lb is None:
                left.clear()
            if left:
                return  # still out of another pool
        elif event.state not in ("done", "rolled_back"):
            return
        self.drained_from.pop(key, None)
        if key in self.out_of_pool:
            start, comment = self.out_of_pool.pop(key)
            self._write([delete_command(start, comment)], at)

    def close(self) -> None:
        """Nothing to flush: each command was written when its event came."""
