"""The load generator against a real HTTP server on loopback that fails on demand."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mcollective_py.lab.load import LoadGenerator
from mcollective_py.lab.processes import wait_for

HOST = "127.0.14.91"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def do_GET(self) -> None:  # noqa: N802
        code = 503 if self.server.failing else 200
        body = b"shop 2.0.0 on test\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def site() -> Iterator[Any]:
    httpd = http.server.ThreadingHTTPServer((HOST, 0), _Handler)
    httpd.daemon_threads = True
    httpd.failing = False  # type: ignore[attr-defined]
    t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_counts_requests_failures_and_phases(site: Any) -> None:
    load = LoadGenerator(HOST, site.server_address[1], rate=200, workers=2)
    load.mark("good")  # before start: every request belongs to a phase
    load.start()
    assert wait_for(lambda: load.snapshot().requests >= 20, 30)
    site.failing = True
    load.mark("bad")
    before = load.snapshot().requests
    assert wait_for(lambda: load.snapshot().requests >= before + 10, 30)
    report = load.stop()
    good, bad = report.phases
    assert (good.name, bad.name) == ("good", "bad")
    assert good.failures == 0 and good.requests >= 20
    # at most one request per worker was in flight when the server started failing
    assert bad.failures >= bad.requests - 2 and bad.failures >= 8
    assert report.requests == good.requests + bad.requests
    assert report.failures == good.failures + bad.failures
    assert sum(s.requests for s in report.per_second) == report.requests
    assert sum(s.failures for s in report.per_second) == report.failures
    assert report.answers["shop 2.0.0"] == report.requests - report.failures
    assert report.errors and report.errors[0].endswith("HTTP 503: shop 2.0.0 on test")


def test_a_refused_connection_is_a_failed_request() -> None:
    from mcollective_py.lab.lifecycle import free_port

    load = LoadGenerator(HOST, free_port(HOST), rate=100, workers=1).start()
    assert wait_for(lambda: load.snapshot().requests >= 3, 30)
    report = load.stop()
    assert report.failures == report.requests
    assert "ConnectionRefusedError" in report.errors[0]
