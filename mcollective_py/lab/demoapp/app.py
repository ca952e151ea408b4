"""The lab's demo service ``shop``: a tiny HTTP app, one copy per release directory.

    python app.py --host 127.0.14.11 --port 8081

It reads ``release.json`` next to it once, at start (so only a restart serves a new release),
and answers:

* ``GET /health``  -- 200 ``ok`` when the release is healthy, 503 with the reason when not
  (release 3.0.0 of the lab is built broken on purpose, so its canary fails the health gate);
* ``GET /version`` -- ``{"service": ..., "version": ...}`` as JSON (the healthcheck agent's
  ``service`` action reads ``version``);
* anything else    -- 200, a line naming the release and the node (what the load generator gets).

Standard library only: a release must run with whatever Python the node has.
"""

from __future__ import annotations

import argparse
import http.server
import json
import signal
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class Handler(http.server.BaseHTTPRequestHandler):
    release: dict[str, Any] = {}
    node = ""
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        rel = self.release
        if self.path == "/health":
            if rel.get("healthy", True):
                self._answer(200, "text/plain", "ok\n")
            else:
                self._answer(503, "text/plain", f"unhealthy: {rel.get('broken', 'broken')}\n")
        elif self.path == "/version":
            body = json.dumps({"service": rel.get("service"), "version": rel.get("version")})
            self._answer(200, "application/json", body + "\n")
        else:
            self._answer(
                200, "text/plain", f"{rel.get('service')} {rel.get('version')} on {self.node}\n"
            )

    def _answer(self, code: int, ctype: str, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # health checks and killed clients hang up early


def main() -> int:
    p = argparse.ArgumentParser(description="the lab's demo service")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    Handler.release = json.loads((HERE / "release.json").read_text(encoding="utf-8"))
    Handler.node = f"{a.host}:{a.port}"
    httpd = Server((a.host, a.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        httpd.serve_forever(poll_interval=0.1)
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
