"""Starting and stopping the lab's processes, by pid only.

A lab process is started detached (its own session, stdin from /dev/null, stdout and stderr
appended to its log file), so it outlives the ``mco-py lab up`` that started it.  It is stopped
by the pid the lab recorded, never by name: SIGTERM, then SIGKILL after ``grace`` seconds.
A pid is only signalled while the process still runs the program the lab started (its
``/proc/PID/cmdline`` contains ``marker``), so a recycled pid is never hit.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..errors import LabError


def spawn(
    argv: Sequence[str], log: Path, *, env: Mapping[str, str], cwd: Path | None = None
) -> int:
    """Start ``argv`` detached; returns its pid.  LabError when it cannot be started."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        actions = [
            (os.POSIX_SPAWN_DUP2, null, 0),
            (os.POSIX_SPAWN_DUP2, fd, 1),
            (os.POSIX_SPAWN_DUP2, fd, 2),
        ]
        if cwd is not None:
            # posix_spawn has no chdir action before Python 3.13: run through env -C
            argv = ["/usr/bin/env", "-C", str(cwd), *argv]
        return os.posix_spawn(argv[0], list(argv), dict(env), file_actions=actions, setsid=True)
    except OSError as exc:
        raise LabError(f"cannot start {argv[0]}: {exc}") from None
    finally:
        os.close(fd)
        os.close(null)


def cmdline(pid: int) -> str:
    """The process's command line (arguments joined by spaces), "" when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def running(pid: int, marker: str = "") -> bool:
    """The process exists, is not a zombie, and (if given) its command line has ``marker``."""
    if pid <= 0:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        _reap(pid)
        return False
    return not marker or marker in cmdline(pid)


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our own child (else nothing to do)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(pid: int, marker: str, *, grace: float = 5.0) -> bool:
    """Stop the process ``pid`` if it still runs ``marker``.  Returns whether it was running."""
    if not running(pid, marker):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not wait_for(lambda: not running(pid), grace):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return True
        wait_for(lambda: not running(pid), 5.0)
    _reap(pid)
    return True


def read_pid(pidfile: str | Path) -> int:
    """The pid in a pid file, 0 when there is none."""
    try:
        return int(Path(pidfile).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def wait_for(cond: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
    """Poll ``cond`` until it is true or ``timeout`` seconds passed; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
