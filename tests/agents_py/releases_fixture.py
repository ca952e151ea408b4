"""Release artifacts built by the tests: a tiny app that serves its own VERSION."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
import zipfile

APP = '''\
"""A released app: serves the VERSION it read at start on /version (JSON) and /health."""
import argparse, http.server, json, pathlib
here = pathlib.Path(__file__).parent
VERSION = (here / "VERSION").read_text().strip()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": VERSION}).encode() if self.path == "/version" else b"ok"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
p = argparse.ArgumentParser(); p.add_argument("--host"); p.add_argument("--port", type=int)
a = p.parse_args()
http.server.HTTPServer((a.host, a.port), H).serve_forever()
'''

SMOKE = """#!/bin/sh
printf '<testsuite tests="1"><testcase name="version"/></testsuite>' > "$1"
"""


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def app_tarball(version: str, padding: int = 0, extra: dict[str, bytes] | None = None) -> bytes:
    """A .tar.gz release of the app, the same bytes for the same arguments; ``padding``
    bytes (pseudo-random, incompressible) make it big."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        _add(tar, "VERSION", f"{version}\n".encode())
        _add(tar, "app.py", APP.encode())
        _add(tar, "bin/smoke-test", SMOKE.encode(), 0o755)
        if padding:
            _add(tar, "assets/blob.bin", random.Random(version).randbytes(padding))
        for name, data in (extra or {}).items():
            _add(tar, name, data)
    return gzip.compress(raw.getvalue(), mtime=0)


def evil_tarball(kind: str) -> bytes:
    """A .tar.gz that tries to leave the release directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        _add(tar, "VERSION", b"6.6.6\n")
        if kind == "traversal":
            _add(tar, "../../escaped.txt", b"gotcha")
        elif kind == "absolute":
            _add(tar, "/tmp/escaped.txt", b"gotcha")
        elif kind == "symlink":
            info = tarfile.TarInfo("etc")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc"
            tar.addfile(info)
    return buf.getvalue()


def app_zip(version: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("VERSION", f"{version}\n")
        zf.writestr("app.py", APP)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
