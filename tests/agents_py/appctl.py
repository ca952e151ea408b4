"""Test service manager for the deploy tests: ``restart`` stops the app it started before
(by the pid in its pid file) and starts ``APP`` again, detached, then waits until it answers.

    python appctl.py restart --pidfile P --app ROOT/shop/current/app.py --host H --port N
    python appctl.py stop --pidfile P

Only the process recorded in the pid file is ever signalled.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def stop(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return
    for _ in range(200):
        if _gone(pid):
            break
        time.sleep(0.025)
    pidfile.unlink(missing_ok=True)


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie its (new) parent has not reaped yet."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def start(pidfile: Path, app: str, host: str, port: int) -> int:
    log = open(pidfile.with_suffix(".log"), "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, app, "--host", host, "--port", str(port)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pidfile.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"app exited {proc.returncode}", file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/version", timeout=1) as resp:  # noqa: S310
                print(f"started pid {proc.pid}, serving {resp.read().decode().strip()}")
                return 0
        except OSError:
            time.sleep(0.05)
    print("app did not answer within 10 s", file=sys.stderr)
    return 1


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["restart", "stop"])
    p.add_argument("--pidfile", required=True, type=Path)
    p.add_argument("--app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    stop(a.pidfile)
    if a.command == "restart":
        return start(a.pidfile, a.app, a.host, a.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
