"""Real peers for the subscriber tests: a carbon-cache and a Nagios 4, each started with its
own configuration in a temporary directory on an address of ``BLOCK`` (never the system
services), and the golden journals."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

from mcollective_py.orchestrate.events import DeployEvent
from mcollective_py.orchestrate.subscribers import events_from_journal

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "orchestrate"
JOURNALS = GOLDEN / "journals"


def _block() -> str:
    """The developer's own loopback block (``MCO_TEST_NS=i16`` -> 127.0.16), else 127.0.12.
    The deploy lab and carbon listen there."""
    m = re.fullmatch(r"i(\d{1,3})", os.environ.get("MCO_TEST_NS", ""))
    return f"127.0.{m.group(1)}" if m and 1 <= int(m.group(1)) <= 254 else "127.0.12"


BLOCK = _block()


def journal(name: str) -> tuple[DeployEvent, ...]:
    with open(JOURNALS / f"{name}.jsonl", encoding="utf-8") as f:
        return events_from_journal(f).events


def shifted(events: Sequence[DeployEvent], end: float) -> list[DeployEvent]:
    """The same run moved in time so that it ends at ``end``."""
    delta = end - max(e.time for e in events)
    return [dataclasses.replace(e, time=e.time + delta) for e in events]


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Carbon:
    """carbon-cache (Debian graphite-carbon) in the foreground, 1-second whisper files."""

    def __init__(self, root: Path, host: str = f"{BLOCK}.20") -> None:
        self.root = root
        self.host = host
        self.port = free_port(host)
        self.whisper = root / "whisper"
        for d in ("whisper", "storage", "log", "conf"):
            (root / d).mkdir(parents=True, exist_ok=True)
        conf = root / "conf"
        (conf / "carbon.conf").write_text(
            "[cache]\n"
            f"STORAGE_DIR = {root / 'storage'}/\n"
            f"LOCAL_DATA_DIR = {self.whisper}/\n"
            f"WHITELISTS_DIR = {root / 'storage'}/lists/\n"
            f"CONF_DIR = {conf}/\n"
            f"LOG_DIR = {root / 'log'}/\n"
            f"PID_DIR = {root}/\n"
            "ENABLE_LOGROTATION = False\nUSER =\n"
            "MAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n"
            f"LINE_RECEIVER_INTERFACE = {host}\nLINE_RECEIVER_PORT = {self.port}\n"
            "ENABLE_UDP_LISTENER = False\n"
            f"PICKLE_RECEIVER_INTERFACE = {host}\nPICKLE_RECEIVER_PORT = {free_port(host)}\n"
            f"CACHE_QUERY_INTERFACE = {host}\nCACHE_QUERY_PORT = {free_port(host)}\n"
            "LOG_UPDATES = False\n"
        )
        (conf / "storage-schemas.conf").write_text(
            "[everything]\npattern = .*\nretentions = 1s:2d\n"
        )
        exe = shutil.which("carbon-cache")
        assert exe, "carbon-cache is not installed (Debian graphite-carbon; scripts/setup)"
        self.log = open(root / "carbon.out", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                exe,
                f"--config={conf / 'carbon.conf'}",
                f"--pidfile={root / 'carbon.pid'}",
                f"--logdir={root / 'log'}",
                "--nodaemon",
                "start",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait(self._listening, 30, f"carbon-cache on {host}:{self.port}")

    def _listening(self) -> bool:
        assert self.proc.poll() is None, (self.root / "carbon.out").read_text()
        try:
            socket.create_connection((self.host, self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def points(self, metric: str, since: float) -> list[tuple[int, float]]:
        """Non-empty (timestamp, value) points of ``metric`` read from its whisper file."""
        import whisper

        path = self.whisper / (metric.replace(".", "/") + ".wsp")
        if not path.exists():
            return []
        (start, _end, step), values = whisper.fetch(str(path), int(since) - 1)
        return [(start + i * step, v) for i, v in enumerate(values) if v is not None]

    def wait_for(self, metric: str, since: float, count: int = 1) -> list[tuple[int, float]]:
        _wait(lambda: len(self.points(metric, since)) >= count, 30, f"{metric} in whisper")
        return self.points(metric, since)

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()


OBJECTS = """\
define timeperiod {
    timeperiod_name 24x7
    alias always
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}
define command {
    command_name ok
    command_line /bin/true
}
define contact {
    contact_name ops
    host_notifications_enabled 0
    service_notifications_enabled 0
    host_notification_period 24x7
    service_notification_period 24x7
    host_notification_options n
    service_notification_options n
    host_notification_commands ok
    service_notification_commands ok
}
"""

HOST = """\
define host {{
    host_name {host}
    address {address}
    check_command ok
    max_check_attempts 1
    check_period 24x7
    contacts ops
    notification_period 24x7
    active_checks_enabled 0
}}
define service {{
    host_name {host}
    service_description {service}
    check_command ok
    max_check_attempts 1
    check_interval 5
    retry_interval 1
    check_period 24x7
    contacts ops
    notification_period 24x7
    active_checks_enabled 0
}}
"""


class Nagios:
    """Nagios 4 (Debian nagios4-core) with a minimal configuration: ``hosts`` with one
    service each, external commands on, checks and notifications off, status every second."""

    def __init__(self, root: Path, hosts: Sequence[str], service: str) -> None:
        self.root = root
        exe = shutil.which("nagios4")
        assert exe, "nagios4 is not installed (Debian nagios4-core; scripts/setup)"
        for d in ("rw", "spool", "tmp"):
            (root / d).mkdir(parents=True, exist_ok=True)
        objects = OBJECTS + "".join(
            HOST.format(host=h, address=f"127.0.13.{30 + i}", service=service)
            for i, h in enumerate(hosts)
        )
        (root / "objects.cfg").write_text(objects)
        self.command_file = root / "rw" / "nagios.cmd"
        self.status = root / "status.dat"
        self.config = root / "nagios.cfg"
        self.config.write_text(
            f"log_file={root}/nagios.log\ncfg_file={root}/objects.cfg\n"
            f"object_cache_file={root}/objects.cache\nprecached_object_file={root}/objects.precache\n"
            f"status_file={self.status}\nstatus_update_interval=1\n"
            f"state_retention_file={root}/retention.dat\nretain_state_information=1\n"
            "retention_update_interval=1\n"
            f"command_file={self.command_file}\ncheck_external_commands=1\n"
            f"lock_file={root}/nagios.lock\ntemp_file={root}/nagios.tmp\ntemp_path={root}/tmp\n"
            f"check_result_path={root}/spool\n"
            f"nagios_user={self._user()}\nnagios_group={self._group()}\n"
            "enable_notifications=0\nexecute_service_checks=0\nexecute_host_checks=0\n"
            "use_syslog=0\n"
        )
        if os.getuid() == 0:
            shutil.chown(root, "nagios", "nagios")
            for p in root.rglob("*"):
                shutil.chown(p, "nagios", "nagios")
        self.verify = subprocess.run(
            [exe, "-v", str(self.config)], capture_output=True, text=True, timeout=60, check=False
        )
        self.proc: subprocess.Popen[bytes] | None = None
        if self.verify.returncode != 0:
            return
        self.proc = subprocess.Popen(
            [exe, str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait(
            lambda: self.command_file.exists() and self.status.exists(),
            30,
            "Nagios' command file and status file",
        )

    @staticmethod
    def _user() -> str:
        return "nagios" if os.getuid() == 0 else os.environ.get("USER", "nobody")

    @staticmethod
    def _group() -> str:
        return "nagios" if os.getuid() == 0 else os.environ.get("USER", "nogroup")

    def downtimes(self) -> list[dict[str, str]]:
        """The ``hostdowntime`` and ``servicedowntime`` blocks of status.dat."""
        out: list[dict[str, str]] = []
        block: dict[str, str] | None = None
        for line in self.status.read_text(errors="replace").splitlines():
            line = line.strip()
            if line in ("hostdowntime {", "servicedowntime {"):
                block = {"type": line.split()[0]}
            elif line == "}" and block is not None:
                out.append(block)
                block = None
            elif block is not None and "=" in line:
                k, v = line.split("=", 1)
                block[k] = v
        return out

    def log_lines(self) -> list[str]:
        return (self.root / "nagios.log").read_text(errors="replace").splitlines()

    def wait_for(self, predicate: object, what: str) -> None:
        _wait(predicate, 30, what)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


# ---------------------------------------------------------------------------- Chromium

#: the page must fetch nothing: a request would go here (nothing listens) and fail
DEAD_PROXY = "127.0.13.1:9"


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and body[12] == 0, "8-bit, non-interlaced"
            channels = {2: 3, 6: 4}[color]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i] for i in range(len(r)) if i % channels < 3) for r in rows]


def count_pixels(rows: list[bytes], rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    n = 0
    for row in rows:
        for i in range(0, len(row), 3):
            if all(abs(row[i + k] - rgb[k]) <= tolerance for k in range(3)):
                n += 1
    return n


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed (scripts/setup)"
    return subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            # the page must fetch nothing: any request would go to a dead proxy and fail
            f"--proxy-server={DEAD_PROXY}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
