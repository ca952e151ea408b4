"""Real services on loopback addresses for the agent tests: tiny HTTP servers and HAProxy.

Everything binds to 127.0.0.x with a port the kernel picks, runs in threads of the test
process or as child processes started here, and is stopped by the object that started it
(by its own handle / pid), never by name.
"""

from __future__ import annotations

import csv
import http.server
import io
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def free_port(host: str) -> int:
    """A TCP port free on ``host`` right now (small race; fine on loopback)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def admin_command(sock: str | Path, line: str) -> str:
    """One command on an HAProxy admin socket, read to its end: the tests' own view of
    HAProxy, independent of the agent's runtime client under test."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(line.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Backend._Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        owner = self.server.owner
        owner.requests.append(url.path)
        if url.path == "/health":
            code = 200 if owner.healthy else 503
            self._answer(code, b"ok\n" if code == 200 else b"sick\n")
            return
        if url.path == "/slow":
            secs = float(parse_qs(url.query).get("secs", ["2"])[0])
            owner.held.set()
            time.sleep(secs)
        self._answer(200, f"{owner.name}\n".encode())

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature
        pass


@dataclass
class Backend:
    """One HTTP server in a thread: ``/health`` (200, or 503 when not ``healthy``),
    ``/slow?secs=N`` (holds the request N seconds), anything else answers its name."""

    name: str
    host: str
    healthy: bool = True
    requests: list[str] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)

    class _Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        owner: Backend

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # health checks hang up early; not interesting

    def start(self) -> Backend:
        self._httpd = self._Server((self.host, 0), _Handler)
        self._httpd.owner = self
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


HAPROXY_CFG = """\
global
    stats socket {socket} mode 600 level admin
    stats timeout 30s

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend app
    bind {frontend_host}:{frontend_port}
    default_backend app

backend app
    balance roundrobin
    option httpchk GET /health
    default-server inter 100ms fastinter 100ms downinter 100ms rise 2 fall 2
{servers}
backend other
    default-server inter 100ms fastinter 100ms downinter 100ms rise 2 fall 2
    server web1 {web1} check weight 10
    server extra {extra} weight 1
"""


class HAProxyLab:
    """HAProxy 2.6 (foreground child) with backend ``app`` = web1..web3 (check, weight 100)
    and backend ``other`` = web1 + extra; admin socket in a private temp dir."""

    def __init__(self, prefix: str = "127.0.0.") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hap-"))
        self.socket = str(self.dir / "admin.sock")
        self.backends = {
            f"web{i}": Backend(f"web{i}", f"{prefix}{50 + i}").start() for i in (1, 2, 3)
        }
        self.frontend = (f"{prefix}50", free_port(f"{prefix}50"))
        servers = "".join(
            f"    server {b.name} {b.host}:{b.port} check weight 100\n"
            for b in self.backends.values()
        )
        web1 = self.backends["web1"]
        cfg = HAPROXY_CFG.format(
            socket=self.socket,
            frontend_host=self.frontend[0],
            frontend_port=self.frontend[1],
            servers=servers,
            web1=f"{web1.host}:{web1.port}",
            extra=f"{web1.host}:{web1.port}",
        )
        (self.dir / "haproxy.cfg").write_text(cfg)
        self.proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(self.dir / "haproxy.cfg")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.wait_until(lambda: Path(self.socket).exists(), what="the admin socket")
        self.wait_until(self.settled, what="every server settled UP")

    def settled(self) -> bool:
        """Every server UP without a health counter (or without checks)."""
        rows = [r for k, r in self.stat().items() if k[1] not in ("FRONTEND", "BACKEND")]
        return bool(rows) and all(r["status"] in ("UP", "no check") for r in rows)

    def wait_until(self, cond: Callable[[], bool], *, timeout: float = 10, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"haproxy exited {self.proc.returncode}: {err}")
            try:
                if cond():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"waited {timeout} s for {what}")

    def command(self, line: str) -> str:
        return admin_command(self.socket, line)

    def stat(self) -> dict[tuple[str, str], dict[str, str]]:
        """``show stat`` rows by (backend, server): the independent view the tests check."""
        text = self.command("show stat").lstrip("# ")
        return {(r["pxname"], r["svname"]): r for r in csv.DictReader(io.StringIO(text))}

    def status(self, backend: str, server: str) -> str:
        return self.stat()[(backend, server)]["status"]

    def url(self, path: str = "/") -> str:
        return f"http://{self.frontend[0]}:{self.frontend[1]}{path}"

    def stop(self) -> None:
        """Stop HAProxy (our child) and the backends; safe to call twice."""
        if getattr(self, "_stopped", False):
            return
        self._stopped = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()
        for b in self.backends.values():
            b.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


Route = Callable[[], "tuple[int, bytes | str]"]


class _RouteHandler(http.server.BaseHTTPRequestHandler):
    server: Site._Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        site = self.server.site
        path = urlparse(self.path).path
        site.hits[path] = site.hits.get(path, 0) + 1
        route = site.routes.get(path)
        code, body = route() if route else (404, "not found\n")
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature
        pass


class Site:
    """An HTTP server in a thread answering ``routes[path]() -> (status, body)``."""

    class _Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        site: Site

    def __init__(self, host: str = "127.0.0.60") -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self._httpd = self._Server((host, 0), _RouteHandler)
        self._httpd.site = self
        self.host, self.port = host, int(self._httpd.server_address[1])
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _ArtifactHandler(http.server.BaseHTTPRequestHandler):
    server: ArtifactServer._Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        path = urlparse(self.path).path
        owner.requests.append((path, self.headers.get("Range")))
        body = owner.files.get(path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = re.match(r"\Abytes=(\d+)-\Z", self.headers.get("Range") or "")
        if match and owner.ranges:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        chunk, pause = owner.trickle.get(path, (len(body) or 1, 0.0))
        try:
            for offset in range(start, len(body), chunk):
                self.wfile.write(body[offset : offset + chunk])
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed: that is the point of some tests

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature
        pass


class ArtifactServer:
    """Serves ``files[path]`` bytes over HTTP on loopback, with ``Range: bytes=N-``
    support (``ranges``) and optional trickling: ``trickle[path] = (chunk, pause)``."""

    class _Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        owner: ArtifactServer

    def __init__(self, host: str = "127.0.0.70") -> None:
        self.files: dict[str, bytes] = {}
        self.trickle: dict[str, tuple[int, float]] = {}
        self.ranges = True
        self.requests: list[tuple[str, str | None]] = []
        self._httpd = self._Server((host, 0), _ArtifactHandler)
        self._httpd.owner = self
        self.host, self.port = host, int(self._httpd.server_address[1])
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
