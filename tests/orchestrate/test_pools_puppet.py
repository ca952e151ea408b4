"""Real Puppet on a load balancer during a deploy: ``haproxy_pools`` must not put a server the
deploy has in maintenance back online — neither by a run that changes nothing, nor by a run
that changes the configuration and reloads HAProxy (the server states are saved first and
``load-server-state-from-file`` restores them).

Puppet starts HAProxy itself (service provider ``base``, master-worker, pid file) and reloads it
with USR2; the test stops it by that pid."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.agents_py.lab import admin_command, free_port
from tests.conftest import lab_dir
from tests.orchestrate.subscribers_fixtures import BLOCK
from tests.release.conftest import MODULES, puppet_errors

pytestmark = pytest.mark.integration

SERVERS = {"web1": f"{BLOCK}.21", "web2": f"{BLOCK}.22", "web3": f"{BLOCK}.23"}


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # health checks hang up early; not interesting


class LB:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "haproxy"
        self.socket = root / "admin.sock"
        self.pidfile = root / "haproxy.pid"
        self.frontend = f"{BLOCK}.6:{free_port(f'{BLOCK}.6')}"
        self.apps = []
        self.ports = {}
        for name, addr in SERVERS.items():
            httpd = _Server((addr, 0), _Health)
            threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
            self.apps.append(httpd)
            self.ports[name] = int(httpd.server_address[1])

    def manifest(self, weights: dict[str, int]) -> str:
        servers = ", ".join(
            f"'{n}' => {{ address => '{a}', port => {self.ports[n]}, weight => {weights.get(n, 100)} }}"
            for n, a in SERVERS.items()
        )
        cfg = self.dir / "haproxy.cfg"
        return f"""
class {{ 'haproxy_pools':
  services         => {{ 'shop' => {{
    frontend => '{self.frontend}',
    check    => {{ type => 'http', path => '/health', interval_ms => 100, rise => 2, fall => 2 }},
    servers  => {{ {servers} }},
  }} }},
  config_dir       => '{self.dir}',
  socket_path      => '{self.socket}',
  state_file       => '{self.root / "server-state"}',
  manage_package   => false,
  manage_service   => true,
  service_name     => 'haproxy-i12-test',
  service_provider => 'base',
  start_command    => '/usr/sbin/haproxy -W -D -p {self.pidfile} -f {cfg}',
  status_command   => '/bin/sh -c "kill -0 $(cat {self.pidfile})"',
  reload_command   => '/bin/sh -c "kill -USR2 $(cat {self.pidfile})"',
  log_target       => '{BLOCK}.9:514',
}}
"""

    def apply(self, weights: dict[str, int]) -> subprocess.CompletedProcess[str]:
        state = self.root / "puppet"
        hiera = self.root / "hiera.yaml"
        hiera.write_text("---\nversion: 5\nhierarchy: []\n")
        return subprocess.run(
            [
                "puppet",
                "apply",
                "--detailed-exitcodes",
                f"--modulepath={MODULES}",
                f"--hiera_config={hiera}",
                "--color=false",
                *(f"--{d}dir={state / d}" for d in ("var", "conf", "code", "log", "run")),
                "-e",
                self.manifest(weights),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "FACTER_role": "lb"},
        )

    def command(self, line: str) -> str:
        return admin_command(self.socket, line)

    def stat(self) -> dict[str, dict[str, str]]:
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        return {r["svname"]: r for r in rows if r["pxname"] == "shop" and r["svname"] in SERVERS}

    def wait(self, cond: Any, timeout: float = 15) -> dict[str, dict[str, str]]:
        deadline = time.monotonic() + timeout
        last: dict[str, dict[str, str]] = {}
        while time.monotonic() < deadline:
            try:
                last = self.stat()
                if cond(last):
                    return last
            except OSError:
                pass
            time.sleep(0.05)
        return last

    def stop(self) -> None:
        try:
            pid = int(self.pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            pass
        for httpd in self.apps:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture
def lb() -> Iterator[LB]:
    for tool in ("puppet", "haproxy", "socat"):
        assert shutil.which(tool), f"{tool} is not installed: run scripts/setup"
    lb = LB(lab_dir("pools-puppet"))
    try:
        yield lb
    finally:
        lb.stop()


def _show(p: subprocess.CompletedProcess[str]) -> str:
    return f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"


def test_puppet_runs_keep_a_maintenance_server_out(lb: LB) -> None:
    first = lb.apply({})
    assert first.returncode == 2 and not puppet_errors(first.stdout + first.stderr), _show(first)
    states = lb.wait(lambda s: len(s) == 3 and all(r["status"] == "UP" for r in s.values()))
    assert {n: r["status"] for n, r in states.items()} == {n: "UP" for n in SERVERS}
    # the deploy takes web1 out of the pool (what haproxy to_maintenance does)
    assert lb.command("set server shop/web1 state maint") == "\n"
    assert lb.stat()["web1"]["status"] == "MAINT"

    # a Puppet run that changes nothing: no reload, web1 stays out
    same = lb.apply({})
    assert same.returncode == 0, _show(same)
    assert lb.stat()["web1"]["status"] == "MAINT"

    # a Puppet run that changes the pool (web3's weight): states saved, HAProxy reloaded
    changed = lb.apply({"web3": 50})
    assert changed.returncode == 2, _show(changed)
    assert "save server states" in changed.stdout and "haproxy-i12-test" in changed.stdout
    after = lb.wait(lambda s: s.get("web3", {}).get("weight") == "50")
    assert after["web3"]["weight"] == "50", after  # the new configuration is live
    assert after["web1"]["status"] == "MAINT", after  # and web1 is still out of the pool
    assert after["web2"]["status"].startswith("UP")
