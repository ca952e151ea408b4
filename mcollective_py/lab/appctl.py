"""The lab app nodes' service manager: what ``plugin.deploy.restart_command`` runs.

``mco-py lab appctl restart --pidfile P --log L --host H --port N --release-dir DIR`` stops the
app recorded in the pid file (by that pid, only while it still runs ``app.py``), starts
``DIR/app.py`` detached, records its pid and waits until ``/version`` answers.  The deploy agent
runs it with the release it activates (``{release_dir}``), and again with the old one when it
switches back.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from . import processes

APP_MARKER = "app.py"


@dataclass(frozen=True)
class Started:
    pid: int
    answer: str


def stop(pidfile: Path) -> bool:
    """Stop the app of ``pidfile``; returns whether one was running."""
    was = processes.stop(processes.read_pid(pidfile), APP_MARKER)
    pidfile.unlink(missing_ok=True)
    return was


def restart(
    pidfile: Path, log: Path, host: str, port: int, release_dir: Path, timeout: float = 10
) -> Started:
    """Stop the old app, start the one in ``release_dir``; LabError if it does not answer."""
    app = release_dir / "app.py"
    if not app.is_file():
        raise LabError(f"{app} does not exist: {release_dir} is not a release of the demo app")
    stop(pidfile)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    pid = processes.spawn(
        [sys.executable, str(app), "--host", host, "--port", str(port)],
        log,
        env=env,
        cwd=release_dir,
    )
    pidfile.write_text(f"{pid}\n")
    answer: list[str] = []

    def answers() -> bool:
        if not processes.running(pid):
            return True
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/version", timeout=1) as r:  # noqa: S310
                answer.append(r.read().decode().strip())
                return True
        except OSError:
            return False

    processes.wait_for(answers, timeout, poll=0.02)
    if not answer:
        tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
        raise LabError(
            f"the app of {release_dir} did not answer on {host}:{port} within {timeout:g} s; "
            f"{log}: {tail}"
        )
    return Started(pid, answer[0])
