"""Restarting a service after a release switch: the commands, decided by pure functions.

:func:`restart_plan` turns the configured kind into argument lists (never a shell string):

==========  ===============================================================================
kind        steps
==========  ===============================================================================
none        nothing (something else restarts the service, or it reads ``current`` itself)
systemd     ``systemctl restart UNIT``
sysv        ``/etc/init.d/UNIT restart`` (the init directory is configurable)
command     the configured command line, split like a shell would, placeholders filled
            per argument (``{service}`` ``{version}`` ``{release_dir}`` ``{unit}``)
windows     ``sc.exe stop NAME`` (1062 "not started" is fine), ``sc.exe query NAME`` until
            STOPPED, ``sc.exe start NAME``, ``sc.exe query NAME`` until RUNNING
iis         ``appcmd.exe recycle apppool /apppool.name:POOL``
==========  ===============================================================================

:func:`execute` runs a plan with a command runner (injectable, so the Windows plans are
tested here with a scripted runner; they cannot run on Linux).
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .process import CommandResult

KINDS = ("none", "systemd", "sysv", "command", "windows", "iis")
DEFAULT_SC = r"C:\Windows\System32\sc.exe"
DEFAULT_APPCMD = r"C:\Windows\System32\inetsrv\appcmd.exe"
#: sc.exe exit codes: the service is not started (stop) / already running (start).
SC_NOT_ACTIVE = 1062
SC_ALREADY_RUNNING = 1056
#: Names sc.exe and appcmd accept here: no quotes, spaces or shell/cmd metacharacters.
WINDOWS_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.@-]{0,255}\Z")
UNIT_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9@_.:-]{0,254}\Z")


@dataclass(frozen=True)
class Step:
    """One command of a plan. ``ok_exit``: exit codes that count as success.  ``until``: run
    again (a query) until its output shows this service state."""

    argv: tuple[str, ...]
    ok_exit: tuple[int, ...] = (0,)
    until: str | None = None


def fill(argument: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` placeholders of ``values`` in one argument; other text stays."""
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), argument)


def command_argv(template: str, values: Mapping[str, str]) -> tuple[str, ...]:
    """A configured command line as an argument list: split first, then fill each
    argument, so a value can never add arguments or shell syntax. ValueError if empty."""
    argv = tuple(fill(a, values) for a in shlex.split(template))
    if not argv:
        raise ValueError("the command is empty")
    return argv


def restart_plan(
    kind: str,
    unit: str,
    *,
    values: Mapping[str, str] | None = None,
    command: str | None = None,
    init_dir: str = "/etc/init.d",
    systemctl: str = "systemctl",
    sc: str = DEFAULT_SC,
    appcmd: str = DEFAULT_APPCMD,
) -> tuple[Step, ...]:
    """The steps that restart ``unit`` with service manager ``kind``. ValueError for an
    unknown kind, an unsafe name, or ``command`` without a command line."""
    if kind not in KINDS:
        raise ValueError(f"service manager {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "none":
        return ()
    if kind == "command":
        if not command:
            raise ValueError("service manager 'command' needs plugin.deploy.restart_command")
        return (Step(command_argv(command, {**(values or {}), "unit": unit})),)
    if kind in ("windows", "iis"):
        if not WINDOWS_NAME_RE.match(unit):
            raise ValueError(
                f"{unit!r} is not a Windows service or app pool name this agent accepts"
            )
        if kind == "iis":
            return (Step((appcmd, "recycle", "apppool", f"/apppool.name:{unit}")),)
        return (
            Step((sc, "stop", unit), ok_exit=(0, SC_NOT_ACTIVE)),
            Step((sc, "query", unit), until="STOPPED"),
            Step((sc, "start", unit), ok_exit=(0, SC_ALREADY_RUNNING)),
            Step((sc, "query", unit), until="RUNNING"),
        )
    if not UNIT_RE.match(unit):
        raise ValueError(f"{unit!r} is not a service name this agent accepts")
    if kind == "systemd":
        return (Step((systemctl, "restart", unit)),)
    return (Step((f"{init_dir.rstrip('/')}/{unit}", "restart")),)


_SC_STATE = re.compile(r"^\s*STATE\s*:\s*\d+\s+([A-Z_]+)", re.MULTILINE)


def sc_state(output: str) -> str | None:
    """The service state in ``sc.exe query`` output (``RUNNING``, ``STOPPED``,
    ``STOP_PENDING``...), None when there is none."""
    m = _SC_STATE.search(output)
    return m.group(1) if m else None


Runner = Callable[[Sequence[str], float], CommandResult]


class RestartFailed(Exception):
    """A step of a restart plan failed; the message names the step and its output."""


def execute(
    plan: Sequence[Step],
    run: Runner,
    *,
    timeout: float,
    poll: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CommandResult]:
    """Run the steps in order within ``timeout`` seconds overall. Returns every result;
    raises RestartFailed at the first failing step."""
    deadline = clock() + timeout
    results = []
    for step in plan:
        while True:
            left = deadline - clock()
            if left <= 0:
                raise RestartFailed(
                    f"{' '.join(step.argv)}: no time left of the {timeout:g} s restart timeout"
                )
            result = run(step.argv, left)
            results.append(result)
            if result.exit_code not in step.ok_exit:
                raise RestartFailed(
                    f"{result.describe()}: {' '.join(step.argv)}: {result.output.strip()[-300:]}"
                )
            if step.until is None:
                break
            state = sc_state(result.output)
            if state == step.until:
                break
            if state is None:
                raise RestartFailed(
                    f"{' '.join(step.argv)} gave no STATE line: {result.output.strip()[-300:]}"
                )
            sleep(min(poll, max(0.0, deadline - clock())))
    return results
