"""Real Puppet 7 and HAProxy on the modules and the rendered Hiera data.

Puppet takes 2-4 s to start, so every Puppet command runs once, concurrently, in the
session fixture ``puppet``; the tests then read its results.  All runs are isolated from the
system (``puppet_flags``); the real applies write only under a temporary directory.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.agents_py.lab import admin_command
from tests.release.conftest import (
    EXAMPLE_CATALOG,
    MODULE_NAMES,
    MODULES,
    REPO,
    SITE_PP,
    build_hiera,
    free_port,
    integration,
    puppet_errors,
    puppet_flags,
    run,
)

pytestmark = integration

Proc = subprocess.CompletedProcess[str]

#: The venv the modules' mcollective_py::venv_dir points at in the real applies: this
#: repository's (the one running the tests), so the exec runs the real `mco-py shim build`.
VENV = Path(sys.prefix)


@dataclass
class PuppetLab:
    root: Path
    hiera: Path
    out: Path  # where the real applies write
    frontend_port: int  # shop's HAProxy frontend in lab
    node_ports: dict[str, int]  # shop's lab nodes
    results: dict[str, Proc] = field(default_factory=dict)

    def data(self, rel: str) -> Any:
        return yaml.safe_load((self.hiera / "data" / rel).read_text())


def _test_catalog(
    frontend_port: int, node_ports: dict[str, int], search_port: int
) -> dict[str, Any]:
    """The example catalog with free ports in lab and fast health checks (100 ms)."""
    doc = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    shop = doc["services"]["shop"]
    shop["health"]["interval"] = 0.1
    shop["environments"]["lab"]["frontend"] = f"127.0.0.1:{frontend_port}"
    for node, port in node_ports.items():
        shop["environments"]["lab"]["nodes"][node]["port"] = port
    doc["services"]["search"]["environments"]["lab"]["frontend"] = f"127.0.0.1:{search_port}"
    return doc


def _facts_file(path: Path, certname: str, **facts: str) -> Path:
    host, _, domain = certname.partition(".")
    path.write_text(
        yaml.safe_dump(
            {"clientcert": certname, "hostname": host, "domain": domain, "fqdn": certname, **facts}
        )
    )
    return path


@pytest.fixture(scope="session")
def puppet(tmp_path_factory: pytest.TempPathFactory) -> PuppetLab:
    for tool in ("puppet", "puppet-lint", "haproxy", "ruby"):
        assert shutil.which(tool), (
            f"{tool} is not installed: run scripts/setup (Debian's puppet, puppet-lint, haproxy)"
        )
    assert (VENV / "bin" / "mco-py").is_file(), f"no {VENV}/bin/mco-py: pip install -e . first"
    root = tmp_path_factory.mktemp("puppet")
    node_ports = {"web1.lab": free_port(), "web2.lab": free_port(), "web3.lab": free_port()}
    lab = PuppetLab(
        root=root,
        hiera=root / "hiera",
        out=root / "out",
        frontend_port=free_port(),
        node_ports=node_ports,
    )
    build_hiera(lab.hiera, _test_catalog(lab.frontend_port, node_ports, free_port()))
    out = lab.out
    # Real applies: lb2.lab and web1.lab write under out/ (nodes level of the copy of hiera/).
    mco = {
        "mcollective_py::install_method": "none",
        "mcollective_py::venv_dir": str(VENV),
        "mcollective_py::daemon_package": None,
        "mcollective_py::manage_service": False,
    }
    (lab.hiera / "data" / "nodes" / "lb2.lab.yaml").write_text(
        yaml.safe_dump(
            {
                "haproxy_pools::config_dir": str(out / "lb" / "haproxy"),
                "haproxy_pools::socket_path": str(out / "lb" / "admin.sock"),
                "haproxy_pools::state_file": str(out / "lb" / "server-state"),
                "haproxy_pools::manage_package": False,
                "haproxy_pools::manage_service": False,
                "haproxy_pools::log_target": "stdout",
                "mcollective_py::confdir": str(out / "lb" / "mcollective"),
                "mcollective_py::libdir": str(out / "lb" / "plugins"),
                "mcollective_py::client": True,
                # Debian's mcollectived with Ruby shims of the Python agents that exist today
                # (haproxy; server.cfg names its class until the package registers it as an
                # entry point): `mco-py shim build -c server.cfg` must see that setting.
                "mcollective_py::agents": ["haproxy"],
                "mcollective_py::server_settings": {
                    "plugin.mcollective_py.agents": "mcollective_py.agents.haproxy:Haproxy"
                },
                **mco,
            }
        )
    )
    (lab.hiera / "data" / "nodes" / "web1.lab.yaml").write_text(
        yaml.safe_dump(
            {
                "app_release::config_dir": str(out / "web" / "mcollective-py"),
                "app_release::install_root": str(out / "web" / "releases"),
                "mcollective_py::confdir": str(out / "web" / "mcollective"),
                "mcollective_py::libdir": str(out / "web" / "plugins"),
                # mco-py's own daemon: a systemd unit, no shims
                "mcollective_py::daemon": "mco-py",
                "mcollective_py::unit_dir": str(out / "web" / "systemd"),
                **mco,
            }
        )
    )
    (out / "lb").mkdir(parents=True)
    (out / "web" / "systemd").mkdir(parents=True)

    def flags(name: str) -> list[str]:
        return puppet_flags(root / "state" / name, lab.hiera)

    web = {"FACTER_role": "web", "FACTER_app": "shop", "FACTER_deploy_env": "lab"}
    lb = {"FACTER_role": "lb", "FACTER_deploy_env": "lab"}
    web_facts = _facts_file(
        root / "web1.facts.yaml", "web1.lab", role="web", app="shop", deploy_env="lab"
    )
    lb_facts = _facts_file(root / "lb1.facts.yaml", "lb1.lab", role="lb", deploy_env="lab")

    def lookup(name: str, certname: str, facts: Path, key: str, *extra: str) -> Callable[[], Proc]:
        return lambda: run(
            [
                "puppet",
                "lookup",
                *flags(name),
                "--certname",
                certname,
                "--facts",
                str(facts),
                key,
                "--render-as",
                "json",
                *extra,
            ]
        )

    def apply(name: str, certname: str, env: dict[str, str], *extra: str) -> Callable[[], Proc]:
        return lambda: run(
            [
                "puppet",
                "apply",
                *flags(name),
                "--certname",
                certname,
                "--detailed-exitcodes",
                *extra,
                str(SITE_PP),
            ],
            env=env,
        )

    manifests = {m: sorted(str(p) for p in (MODULES / m).rglob("*.pp")) for m in MODULE_NAMES}
    jobs: dict[str, Callable[[], Proc]] = {
        "apply lb2": apply("apply-lb", "lb2.lab", lb),
        "apply web1": apply("apply-web", "web1.lab", web),
        "noop lb1": apply("noop-lb", "lb1.lab", lb, "--noop"),
        "noop web2": apply("noop-web", "web2.lab", web, "--noop"),
        "noop web2 other version": apply(
            "noop-web-v", "web2.lab", {**web, "FACTER_app_version": "1.4.1"}, "--noop"
        ),
        "lookup version": lookup("l1", "web1.lab", web_facts, "app_release::version"),
        "lookup nodes": lookup("l2", "web1.lab", web_facts, "app_release::nodes"),
        "lookup pools": lookup(
            "l3", "lb1.lab", lb_facts, "haproxy_pools::services", "--merge", "hash"
        ),
        "lookup maxconn": lookup("l4", "lb1.lab", lb_facts, "haproxy_pools::maxconn"),
        "epp validate": lambda: run(
            ["puppet", "epp", "validate", *(str(p) for p in sorted(MODULES.rglob("*.epp")))]
        ),
        "parser validate": lambda: run(
            ["puppet", "parser", "validate", *(f for fs in manifests.values() for f in fs)]
        ),
        **{
            f"lint {m}": (lambda m=m: run(["puppet-lint", "--fail-on-warnings", str(MODULES / m)]))
            for m in MODULE_NAMES
        },
        "lint site.pp": lambda: run(["puppet-lint", "--fail-on-warnings", str(SITE_PP)]),
    }
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        lab.results = {name: f.result() for name, f in futures.items()}
    # Applying again changes nothing (the shims are not built again).
    lab.results["apply lb2 again"] = apply("apply-lb", "lb2.lab", lb)()
    # As if the package had been upgraded since the last build, which also had an agent
    # dropped since, and the libdir held an old, broken DDL: the next run builds again.
    agent_dir = out / "lb" / "plugins" / "mcollective" / "agent"
    built = agent_dir.parent / "mco-py-shims.built"
    if built.is_file():  # else the first apply failed, and its test says why
        text = re.sub(r"(?m)^agents:.*$", "agents: haproxy dropped", built.read_text())
        built.write_text(re.sub(r"(?m)^mco-py .*$", "mco-py 0.0.1", text))
        (agent_dir / "haproxy.ddl").write_text("# an old DDL\n")
        for name in ("dropped.rb", "dropped.ddl", "site.rb"):
            (agent_dir / name).write_text("# not built by this run\n")
        lab.results["apply lb2 after an upgrade"] = apply("apply-lb", "lb2.lab", lb)()
    lab.results["_seconds"] = subprocess.CompletedProcess(
        [], 0, f"{time.monotonic() - started:.1f}", ""
    )
    return lab


def _show(p: Proc) -> str:
    def clean(text: str) -> str:
        return "\n".join(
            line for line in text.splitlines() if not line.startswith("Error: Facter:")
        )

    return f"rc={p.returncode}\n--- stdout\n{clean(p.stdout)}\n--- stderr\n{clean(p.stderr)}"


def test_parser_validate_every_module(puppet: PuppetLab) -> None:
    p = puppet.results["parser validate"]
    assert (p.returncode, p.stdout, puppet_errors(p.stderr)) == (0, "", []), _show(p)


def test_epp_templates_validate(puppet: PuppetLab) -> None:
    p = puppet.results["epp validate"]
    assert p.returncode == 0, _show(p)


@pytest.mark.parametrize("module", [*MODULE_NAMES, "site.pp"])
def test_puppet_lint_fail_on_warnings(puppet: PuppetLab, module: str) -> None:
    p = puppet.results[f"lint {module}"]
    assert (p.returncode, p.stdout) == (0, ""), _show(p)


@pytest.mark.parametrize("key", ["version", "nodes"])
def test_lookup_returns_the_rendered_release(puppet: PuppetLab, key: str) -> None:
    p = puppet.results[f"lookup {key}"]
    assert p.returncode == 0, _show(p)
    rendered = puppet.data("releases/shop/lab.yaml")
    assert json.loads(p.stdout) == rendered[f"app_release::{key}"]


def test_lookup_merges_every_pool_of_the_environment(puppet: PuppetLab) -> None:
    p = puppet.results["lookup pools"]
    assert p.returncode == 0, _show(p)
    expected = {}
    for f in sorted((puppet.hiera / "data" / "pools" / "lab").glob("*.yaml")):
        expected.update(yaml.safe_load(f.read_text())["haproxy_pools::services"])
    assert set(expected) == {"shop", "search"}
    assert json.loads(p.stdout) == expected


def test_lookup_uses_the_node_level(puppet: PuppetLab) -> None:
    """--certname without --node: the nodes/ level (hiera/data/nodes/lb1.lab.yaml) applies."""
    p = puppet.results["lookup maxconn"]
    assert (p.returncode, json.loads(p.stdout or "null")) == (0, 2000), _show(p)


@pytest.mark.parametrize(("name", "certname"), [("noop lb1", "lb1.lab"), ("noop web2", "web2.lab")])
def test_noop_apply_compiles(puppet: PuppetLab, name: str, certname: str) -> None:
    p = puppet.results[name]
    output = p.stdout + p.stderr
    assert p.returncode in (0, 2), _show(p)
    assert f"Compiled catalog for {certname}" in output
    assert puppet_errors(output) == [], _show(p)


def test_data_of_another_version_is_refused(puppet: PuppetLab) -> None:
    p = puppet.results["noop web2 other version"]
    assert p.returncode in (1, 4, 6), _show(p)
    assert (
        "app_release: Hiera holds release 1.4.2 of shop for lab, but 1.4.1 was asked for; render and commit "
        "it first: mco-py release render shop 1.4.1 --env lab"
    ) in p.stderr


def test_real_apply_of_a_web_node(puppet: PuppetLab) -> None:
    p = puppet.results["apply web1"]
    assert p.returncode == 2, _show(p)
    assert puppet_errors(p.stdout + p.stderr) == [], _show(p)
    descriptor = yaml.safe_load(
        (puppet.out / "web" / "mcollective-py" / "releases" / "shop.yaml").read_text()
    )
    rendered = puppet.data("releases/shop/lab.yaml")
    port = puppet.node_ports["web1.lab"]
    assert descriptor == {
        "service": "shop",
        "version": rendered["app_release::version"],
        "deploy_env": "lab",
        "deploy_method": "artifact",
        "artifact_url": rendered["app_release::artifact_url"],
        "sha256": rendered["app_release::sha256"],
        "service_manager": "none",
        "unit": "shop",
        "address": "127.0.0.11",
        "port": port,
        "health_url": f"http://127.0.0.11:{port}/health",
        "release_dir": f"{puppet.out}/web/releases/shop/releases/1.4.2",
        "current": f"{puppet.out}/web/releases/shop/current",
    }
    # daemon => mco-py: `mco-py server` in the foreground under systemd, and no shims
    mco = puppet.out / "web" / "mcollective"
    unit = (puppet.out / "web" / "systemd" / "mco-py-server.service").read_text().splitlines()
    assert f"ExecStart={VENV}/bin/mco-py server -c {mco}/server.cfg" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "Type=simple" in unit
    assert "daemonize = 0" in (mco / "server.cfg").read_text().splitlines()
    assert not (puppet.out / "web" / "plugins").exists()


def test_the_mco_py_unit_verifies(puppet: PuppetLab) -> None:
    """systemd's own check of the unit written for `daemon => mco-py` (ExecStart exists...)."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    assert puppet.results["apply web1"].returncode == 2, _show(puppet.results["apply web1"])
    check = run(
        ["systemd-analyze", "verify", str(puppet.out / "web" / "systemd" / "mco-py-server.service")]
    )
    assert check.returncode == 0, _show(check)
    assert "mco-py-server.service" not in check.stdout + check.stderr, _show(check)


def test_real_apply_of_a_load_balancer(puppet: PuppetLab) -> None:
    p = puppet.results["apply lb2"]
    assert p.returncode == 2, _show(p)
    assert puppet_errors(p.stdout + p.stderr) == [], _show(p)
    again = puppet.results["apply lb2 again"]
    assert again.returncode == 0, "a second apply must change nothing\n" + _show(again)
    cfg = puppet.out / "lb" / "haproxy" / "haproxy.cfg"
    check = run(["haproxy", "-c", "-f", str(cfg)])
    assert (check.returncode, check.stdout.strip()) == (0, "Configuration file is valid"), _show(
        check
    )
    assert "[WARNING]" not in check.stderr, check.stderr
    text = cfg.read_text()
    assert (
        f"    server web3.lab 127.0.0.13:{puppet.node_ports['web3.lab']} check weight 100 disabled\n"
        in text
    )
    # mcollective_py: the configs (the shims: see the tests below)
    mco = puppet.out / "lb" / "mcollective"
    server_cfg = dict(
        line.split(" = ", 1)
        for line in (mco / "server.cfg").read_text().splitlines()
        if " = " in line
    )
    assert server_cfg["identity"] == "lb2.lab"
    assert server_cfg["securityprovider"] == "psk" and server_cfg["plugin.psk"] == "mco-lab-psk"
    assert server_cfg["plugin.rabbitmq.pool.1.host"] == "127.0.0.1"
    assert server_cfg["plugin.yaml"] == str(mco / "facts.yaml")
    assert yaml.safe_load((mco / "facts.yaml").read_text())["role"] == "lb"
    assert (mco / "client.cfg").stat().st_mode & 0o777 == 0o640
    assert server_cfg["daemonize"] == "1"


SHIM_BUILD = "Exec[mcollective_py: mco-py shim build]/returns: executed successfully"


def test_ruby_shims_are_built_by_mco_py_once(puppet: PuppetLab) -> None:
    """daemon => mcollectived: the exec runs the real `mco-py shim build` of this repository's
    venv into the libdir on the first run, and not again on an unchanged node."""
    first, again = puppet.results["apply lb2"], puppet.results["apply lb2 again"]
    assert SHIM_BUILD in first.stdout, _show(first)
    assert (again.returncode, puppet_errors(again.stdout + again.stderr)) == (0, []), _show(again)
    assert "shim build" not in again.stdout, _show(again)
    agent_dir = puppet.out / "lb" / "plugins" / "mcollective" / "agent"
    rb = agent_dir / "haproxy.rb"
    ruby = run(["ruby", "-c", str(rb)])
    assert ruby.stdout.strip() == "Syntax OK", _show(ruby)
    text = rb.read_text()
    assert text.startswith("# Generated by `mco-py shim build`")
    assert "class Haproxy < RPC::Agent" in text
    # the shim runs VENV/bin/python -m mcollective_py agent run -c <mcollectived's config> ...
    assert re.search(rf'\["{re.escape(str(VENV))}/bin/python3?", "-m", "mcollective_py"\]', text), (
        text
    )
    # the DDL comes from the installed package (an editable install: the repository's ddl/)
    assert (agent_dir / "haproxy.ddl").read_bytes() == (REPO / "ddl" / "haproxy.ddl").read_bytes()
    assert (agent_dir.parent / "mco-py-shims.txt").read_text().splitlines()[2:] == [
        "agents: haproxy",
        f"config: {puppet.out}/lb/mcollective/server.cfg",
        "command: default (the Python of mco-py, -m mcollective_py)",
    ]


def test_ruby_shims_are_built_again_after_an_upgrade(puppet: PuppetLab) -> None:
    """Another mco-py version than the last build's: build again, with the package's DDL
    (not the libdir's old copy), and remove the shims of agents dropped since."""
    p = puppet.results.get("apply lb2 after an upgrade")
    assert p is not None, _show(puppet.results["apply lb2"])
    assert p.returncode == 2 and SHIM_BUILD in p.stdout, _show(p)
    assert puppet_errors(p.stdout + p.stderr) == [], _show(p)
    agent_dir = puppet.out / "lb" / "plugins" / "mcollective" / "agent"
    assert sorted(f.name for f in agent_dir.iterdir()) == ["haproxy.ddl", "haproxy.rb", "site.rb"]
    assert (agent_dir / "haproxy.ddl").read_bytes() == (REPO / "ddl" / "haproxy.ddl").read_bytes()
    version = run([str(VENV / "bin" / "mco-py"), "--version"]).stdout.strip()
    built = (agent_dir.parent / "mco-py-shims.built").read_text().splitlines()
    assert built[-1] == version and "agents: haproxy" in built, built


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's API
        body = self.server.node_name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def running_haproxy(puppet: PuppetLab) -> Iterator[Path]:
    """HAProxy started from the applied config, with the lab's shop nodes answering."""
    assert puppet.results["apply lb2"].returncode == 2, _show(puppet.results["apply lb2"])
    servers = []
    for node, address in (
        ("web1.lab", "127.0.0.11"),
        ("web2.lab", "127.0.0.12"),
        ("web3.lab", "127.0.0.13"),
    ):
        httpd = ThreadingHTTPServer((address, puppet.node_ports[node]), _Health)
        httpd.node_name = node  # type: ignore[attr-defined]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
    sock = puppet.out / "lb" / "admin.sock"
    proc = subprocess.Popen(
        ["haproxy", "-db", "-f", str(puppet.out / "lb" / "haproxy" / "haproxy.cfg")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None, (
                f"haproxy exited: {proc.stderr.read() if proc.stderr else ''}"
            )
            assert time.monotonic() < deadline, "haproxy's admin socket did not appear"
            time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
        for httpd in servers:
            httpd.shutdown()
            httpd.server_close()


def _admin(sock: Path, command: str) -> str:
    return admin_command(sock, command)


def _status(sock: Path) -> dict[str, str]:
    rows = csv.DictReader(io.StringIO(_admin(sock, "show stat").lstrip("# ")))
    # "UP 1/3" (a server fresh out of MAINT/DRAIN, counting checks) is UP
    return {
        r["svname"]: r["status"].split()[0]
        for r in rows
        if r["pxname"] == "shop" and r["svname"].endswith(".lab")
    }


def _wait_status(sock: Path, want: dict[str, str], timeout: float = 10) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        now = _status(sock)
        if all(now.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def _served_by(port: int, n: int) -> list[str]:
    out = []
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: shop\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.decode().partition("\r\n\r\n")
        assert head.startswith("HTTP/1.0 200"), head
        out.append(body)
    return out


def test_haproxy_agent_can_drive_the_pools(puppet: PuppetLab, running_haproxy: Path) -> None:
    """The runtime API calls the haproxy agent makes move servers between the pools, and
    traffic follows: backend = service name, server = node identity."""
    sock = running_haproxy
    assert _wait_status(sock, {"web1.lab": "UP", "web2.lab": "UP", "web3.lab": "MAINT"}) == {
        "web1.lab": "UP",
        "web2.lab": "UP",
        "web3.lab": "MAINT",
    }
    assert sorted(set(_served_by(puppet.frontend_port, 6))) == ["web1.lab", "web2.lab"]
    # web1 to the maintenance pool, web3 to the online pool
    assert _admin(sock, "set server shop/web1.lab state drain") == "\n"
    assert _wait_status(sock, {"web1.lab": "DRAIN"})["web1.lab"] == "DRAIN"
    assert _admin(sock, "set server shop/web1.lab state maint") == "\n"
    assert _admin(sock, "set server shop/web3.lab state ready") == "\n"
    assert _wait_status(sock, {"web1.lab": "MAINT", "web3.lab": "UP"}) == {
        "web1.lab": "MAINT",
        "web2.lab": "UP",
        "web3.lab": "UP",
    }
    assert sorted(set(_served_by(puppet.frontend_port, 6))) == ["web2.lab", "web3.lab"]
    assert _admin(sock, "set server shop/nosuch.lab state maint").strip() == "No such server."
