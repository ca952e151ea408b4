"""Item 8: ``healthcheck http`` fetches only allowed URLs (default: loopback and the node's
own addresses), and downloads (artifacts, checksum files) follow redirects only to the same
host and never from https to plain http."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcollective_py.agents.artifacts import redirect_problem
from mcollective_py.agents.deploy import Deploy
from mcollective_py.agents.healthcheck import Healthcheck, url_allowed
from tests.agents_py.conftest import call, make_agent
from tests.agents_py.releases_fixture import app_tarball
from tests.conftest import PythonFleet, lab_dir, ns_vhost, run_mco_py

OWN = frozenset({"198.51.100.7"})  # a documentation address standing in for the node's own


def fake_dns(table: dict[str, list[str]]) -> Any:
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "allow", "problem"),
    [
        ("http://127.0.0.1:8080/health", [], None),
        ("http://[::1]:8080/health", [], None),
        ("http://198.51.100.7/health", [], None),
        ("http://localhost:8080/", [], None),
        ("http://203.0.113.9/health", [], r"is not on this node"),
        ("http://rebind.example/", [], r"is not on this node"),
        ("http://127.0.0.1@203.0.113.9/", [], r"has user-info"),
        ("http://u:pw@127.0.0.1/", [], r"'http://\*\*\*\*\*\*\*\*@127\.0\.0\.1/' has user-info"),
        ("ftp://127.0.0.1/", [], r"is not an http\(s\) URL"),
        ("file:///etc/passwd", [], r"is not an http\(s\) URL"),
        ("http://127.0.0.1:80/health", ["http://127.0.0.1:80/health"], None),
        (
            "http://127.0.0.1:8000/health",
            ["http://127.0.0.1:80"],
            r"not under plugin\.healthcheck\.http_allow",
        ),
        ("http://127.0.0.1:80/secret", ["http://127.0.0.1:80/health"], r"not under"),
        ("http://203.0.113.9/x", ["http://203.0.113.9/"], None),
    ],
)
def test_url_allowed(url: str, allow: list[str], problem: str | None) -> None:
    dns = fake_dns(
        {"localhost": ["127.0.0.1", "::1"], "rebind.example": ["127.0.0.1", "203.0.113.9"]}
    )
    got = url_allowed(url, allow, OWN, dns)
    if problem is None:
        assert got is None
    else:
        assert got is not None and __import__("re").search(problem, got), got


@pytest.mark.parametrize(
    ("current", "target", "problem"),
    [
        ("http://a.example/x", "http://a.example/y", None),
        ("http://a.example/x", "https://a.example:443/y", None),
        ("https://a.example/x", "http://a.example/y", "from https to plain http"),
        ("http://a.example/x", "http://b.example/x", "to another host"),
        ("http://a.example:8080/x", "http://a.example:8081/x", "to another host"),
        ("http://a.example/x", "http://u:p@a.example/x", "user-info"),
        ("http://a.example/x", "file:///etc/passwd", "not http"),
    ],
)
def test_redirect_rule(current: str, target: str, problem: str | None) -> None:
    got = redirect_problem(current, target)
    assert (got is None) if problem is None else (got is not None and problem in got), got


class Server:
    """A loopback HTTP server answering ``routes[path] = (status, headers, body)``."""

    def __init__(self, host: str) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                status, headers, body = owner.routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    a, b = Server("127.0.10.51"), Server("127.0.10.52")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.mark.integration
def test_artifact_and_checksum_redirects(servers: tuple[Server, Server], tmp_path: Path) -> None:
    a, b = servers
    good = app_tarball("1.0.0")
    sha = hashlib.sha256(good).hexdigest()
    b.routes["/shop-2.0.0.tar.gz"] = (200, {}, good)
    a.routes["/shop-2.0.0.tar.gz"] = (302, {"Location": f"{b.base}/shop-2.0.0.tar.gz"}, b"")
    a.routes["/shop-1.0.0.tar.gz"] = (301, {"Location": "/real/shop-1.0.0.tar.gz"}, b"")
    a.routes["/real/shop-1.0.0.tar.gz"] = (200, {}, good)
    b.routes["/sums/shop-3.0.0"] = (200, {}, f"{sha}  shop.tgz\n".encode())
    a.routes["/sums/shop-3.0.0"] = (307, {"Location": f"{b.base}/sums/shop-3.0.0"}, b"")
    settings = {
        "plugin.deploy.root": str(tmp_path / "rel"),
        "plugin.deploy.config_dir": str(tmp_path / "etc"),
        "plugin.deploy.artifact_url": f"{a.base}/{{service}}-{{version}}.tar.gz",
        "plugin.deploy.checksum_url": f"{a.base}/sums/{{service}}-{{version}}",
    }
    agent = make_agent(Deploy, settings)
    same_host = call(agent, "fetch", service="shop", version="1.0.0", sha256=sha)
    assert same_host.statuscode == 0, same_host.statusmsg
    other_host = call(agent, "fetch", service="shop", version="2.0.0", sha256=sha)
    assert other_host.statuscode == 1
    assert other_host.statusmsg == (
        f"refusing to follow a redirect: {a.base}/shop-2.0.0.tar.gz redirects to another host "
        f"({b.base}/shop-2.0.0.tar.gz)"
    )
    checksum = call(agent, "fetch", service="shop", version="3.0.0")
    assert checksum.statuscode == 1
    assert checksum.statusmsg.startswith(
        "cannot get the SHA-256 of shop 3.0.0: refusing to follow a redirect: "
    )
    assert not (tmp_path / "rel" / "shop" / "releases" / "2.0.0").exists()


@pytest.mark.integration
def test_healthcheck_http_agent_refuses_before_connecting(servers: tuple[Server, Server]) -> None:
    a, _ = servers
    a.routes["/health"] = (200, {}, b"ok")
    a.routes["/secret.json"] = (200, {}, b'{"token": "t0ken-value"}')
    agent = make_agent(Healthcheck)
    assert call(agent, "http", url=f"{a.base}/health").statuscode == 0  # loopback: allowed
    far = call(agent, "http", url="http://203.0.113.9/health", timeout=1)
    assert far.statuscode == 1
    assert far.statusmsg.startswith(
        "refusing to fetch 'http://203.0.113.9/health' is not on this node"
    )
    narrow = make_agent(Healthcheck, {"plugin.healthcheck.http_allow": f"{a.base}/health"})
    assert call(narrow, "http", url=f"{a.base}/health").statuscode == 0
    secret = call(narrow, "http", url=f"{a.base}/secret.json", json_field="token")
    assert secret.statuscode == 1 and "t0ken-value" not in json.dumps(secret.data)
    assert "not under plugin.healthcheck.http_allow" in secret.statusmsg


@pytest.fixture(scope="module")
def node() -> Iterator[PythonFleet]:
    fleet = PythonFleet(lab_dir("httpallow"), ns_vhost("mco-py-httpallow"), ["ha1"])
    with fleet:
        yield fleet


@pytest.mark.integration
def test_a_daemon_refuses_a_foreign_url(node: PythonFleet) -> None:
    r = run_mco_py(
        node.env,
        "rpc",
        "healthcheck",
        "http",
        "url=http://203.0.113.9/x",
        "timeout=1",
        "-I",
        "ha1",
        "--json",
    )
    [reply] = json.loads(r.stdout)
    assert reply["statuscode"] == 1
    assert reply["statusmsg"].startswith(
        "refusing to fetch 'http://203.0.113.9/x' is not on this node"
    )
