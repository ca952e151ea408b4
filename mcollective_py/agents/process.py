"""Running a command for an agent: an argument list, never a shell, with a timeout.

:func:`run` is the only way the agents start programs (health check commands, smoke tests,
deploy hooks, service managers, Puppet).  It takes an argument vector (``shell=False``), so
no text from a request is ever parsed by a shell; puts the child in its own session so a
timeout kills the whole process group, and marks its environment (``MCO_PY_RUN=<token>``) so
that descendants that left the group (``setsid``, a daemonizing double fork) are found in
``/proc`` and killed too; keeps only the tail of the output (in a temporary
file, so a chatty command cannot fill memory); and reports a program that cannot be started
as :class:`CommandNotRunnable` instead of an exit code.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: How much output is kept (the last lines / bytes).
TAIL_LINES = 20
TAIL_BYTES = 4096


class CommandNotRunnable(Exception):
    """The program does not exist, is not executable, or the directory is missing."""


@dataclass(frozen=True)
class CommandResult:
    """How a command ended. ``exit_code`` is None when it was killed at the timeout."""

    argv: tuple[str, ...]
    exit_code: int | None
    output: str  # tail of stdout and stderr together
    duration: float
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        """``'cmd' exited 3`` / ``'cmd' timed out after 5 s``, for messages."""
        name = re.split(r"[\\/]", self.argv[0])[-1] if self.argv else "command"
        if self.timed_out:
            return f"{name} timed out after {self.duration:.1f} s"
        return f"{name} exited {self.exit_code}"


#: Environment variables a child (hook, check, restart, Puppet) never inherits: psk, broker
#: credentials and key paths of the daemon.  Hook output can reach the caller in a reply.
SECRET_ENV_PREFIXES = ("MCOLLECTIVE_", "STOMP_")
#: The environment variable that marks every process a :func:`run` started.
RUN_MARK = "MCO_PY_RUN"


def tail(text: str, lines: int = TAIL_LINES, size: int = TAIL_BYTES) -> str:
    """The last ``lines`` lines of ``text``, at most ``size`` characters."""
    kept = "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return kept[-size:]


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run ``argv`` (no shell) with ``env`` added to this process's environment.

    Waits at most ``timeout`` seconds, then kills the command's process group.  Raises
    CommandNotRunnable when the program cannot be started; never raises for an exit code.
    """
    argv = tuple(str(a) for a in argv)
    if not argv:
        raise CommandNotRunnable("empty command")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIXES)}
    full_env.update(env or {})
    token = uuid.uuid4().hex
    full_env[RUN_MARK] = token
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=full_env,
                start_new_session=True,
            )
        except OSError as exc:
            raise CommandNotRunnable(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        timed_out = False
        try:
            code: int | None = proc.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            proc.wait()
            kill_marked(token)
            code = None
        duration = time.monotonic() - start
        out.seek(0, os.SEEK_END)
        length = out.tell()
        out.seek(max(0, length - 4 * TAIL_BYTES))
        text = out.read().decode("utf-8", errors="replace")
    return CommandResult(argv, code, tail(text), duration, timed_out)


def _marked(token: str) -> list[int]:
    """Pids of processes whose environment holds ``MCO_PY_RUN=<token>`` (Linux ``/proc``)."""
    needle = f"{RUN_MARK}={token}".encode()
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry))
    return pids


def kill_marked(token: str, rounds: int = 5) -> int:
    """SIGKILL every process still carrying ``token`` (a timed-out command's descendants that
    escaped its process group), a few rounds in case one was forking.  Returns how many."""
    killed = 0
    for _ in range(rounds):
        pids = [p for p in _marked(token) if p != os.getpid()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
    return killed


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command and everything it started in its session."""
    killpg = getattr(os, "killpg", None)
    try:
        if killpg is not None:
            killpg(proc.pid, signal.SIGKILL)
        else:  # Windows: no process groups of this kind
            proc.kill()
    except ProcessLookupError:
        pass
