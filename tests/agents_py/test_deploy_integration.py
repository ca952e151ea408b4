"""The deploy agent against a real artifact HTTP server on loopback and a real app process.

The app is in the artifact: ``app.py`` serves the VERSION it read when it started, so only a
restart (``appctl.py``, the configured ``command`` service manager) makes a new release
visible.  The app's version is read back with the healthcheck agent's ``service`` action.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mcollective_py.agents.deploy import Deploy
from mcollective_py.agents.healthcheck import Healthcheck
from mcollective_py.rpc import RPCReply
from tests.agents_py.conftest import REPO, call, make_agent
from tests.agents_py.lab import ArtifactServer, free_port
from tests.agents_py.releases_fixture import app_tarball, app_zip, evil_tarball, sha256

pytestmark = pytest.mark.integration

APP_HOST = "127.0.0.71"


@dataclass
class Node:
    """One app node: its release root, settings, and the app's pid file."""

    root: Path
    settings: dict[str, str]
    server: ArtifactServer
    pidfile: Path
    port: int

    def deploy(self, **extra: str) -> Deploy:
        return make_agent(
            Deploy, {**self.settings, **{f"plugin.deploy.{k}": v for k, v in extra.items()}}
        )

    def publish(self, version: str, data: bytes, name: str | None = None) -> str:
        self.server.files[f"/artifacts/shop/{name or f'shop-{version}.tar.gz'}"] = data
        return sha256(data)

    def served_version(self) -> RPCReply:
        agent = make_agent(
            Healthcheck,
            {"plugin.healthcheck.version_url": f"http://{APP_HOST}:{self.port}/version"},
        )
        return call(agent, "service", service="shop", version="0", retries=0, timeout=2)

    @property
    def shop(self) -> Path:
        return self.root / "shop"

    def current(self) -> str | None:
        link = self.shop / "current"
        return os.readlink(link) if link.is_symlink() else None


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    server = ArtifactServer()
    port = free_port(APP_HOST)
    root = tmp_path / "releases"
    pidfile = tmp_path / "app.pid"
    restart = (
        f"{sys.executable} {REPO / 'tests' / 'agents_py' / 'appctl.py'} restart --pidfile {pidfile} "
        f"--app {root / 'shop' / 'current' / 'app.py'} --host {APP_HOST} --port {port}"
    )
    settings = {
        "plugin.deploy.root": str(root),
        "plugin.deploy.config_dir": str(tmp_path / "etc"),
        "plugin.deploy.artifact_url": f"{server.base}/artifacts/{{service}}/{{service}}-{{version}}.tar.gz",
        "plugin.deploy.service_manager": "command",
        "plugin.deploy.restart_command": restart,
        "plugin.deploy.restart_timeout": "20",
    }
    n = Node(root, settings, server, pidfile, port)
    try:
        yield n
    finally:
        subprocess.run(
            [
                sys.executable,
                str(REPO / "tests" / "agents_py" / "appctl.py"),
                "stop",
                "--pidfile",
                str(pidfile),
            ],
            check=False,
            timeout=30,
        )
        server.stop()


def test_fetch_activate_rollback(node: Node) -> None:
    shas = {v: node.publish(v, app_tarball(v)) for v in ("1.0.0", "1.1.0")}
    agent = node.deploy()
    fetched = call(agent, "fetch", service="shop", version="1.0.0", sha256=shas["1.0.0"])
    assert fetched.statuscode == 0, fetched.statusmsg
    assert fetched.data["path"] == str(node.shop / "releases" / "1.0.0")
    assert fetched.data["sha256"] == shas["1.0.0"] and fetched.data["already_present"] is False
    assert node.current() is None  # fetch never activates
    again = call(agent, "fetch", service="shop", version="1.0.0")  # no sha256 needed now
    assert again.statuscode == 0 and again.data["already_present"] is True
    assert again.data["sha256"] == shas["1.0.0"] and again.data["url"] == fetched.data["url"]

    first = call(agent, "activate", service="shop", version="1.0.0")
    assert first.statuscode == 0, first.statusmsg
    assert (
        first.data["previous_version"],
        first.data["current_version"],
        first.data["restarted"],
    ) == (None, "1.0.0", True)
    assert node.served_version().data["version"] == "1.0.0"

    assert (
        call(agent, "fetch", service="shop", version="1.1.0", sha256=shas["1.1.0"]).statuscode == 0
    )
    assert node.served_version().data["version"] == "1.0.0"  # fetched, not active
    second = call(agent, "activate", service="shop", version="1.1.0")
    assert second.statuscode == 0, second.statusmsg
    assert second.data["detail"] == "current -> 1.1.0; restarted"
    assert node.current() == "releases/1.1.0"
    assert node.served_version().data["version"] == "1.1.0"

    again = call(agent, "activate", service="shop", version="1.1.0")
    assert (
        again.statuscode == 0
        and again.data["changed"] is False
        and again.data["restarted"] is False
    )

    status = call(agent, "status", service="shop")
    assert {
        k: status.data[k]
        for k in ("current_version", "previous_version", "available_versions", "partial_downloads")
    } == {
        "current_version": "1.1.0",
        "previous_version": "1.0.0",
        "available_versions": ["1.0.0", "1.1.0"],
        "partial_downloads": {},
    }
    assert abs(status.data["activated_at"] - time.time()) < 60

    back = call(agent, "rollback", service="shop")
    assert back.statuscode == 0, back.statusmsg
    assert (back.data["previous_version"], back.data["current_version"]) == ("1.1.0", "1.0.0")
    assert node.served_version().data["version"] == "1.0.0"
    assert os.readlink(node.shop / "previous") == "releases/1.1.0"


def test_a_corrupted_artifact_is_refused_and_current_stays(node: Node) -> None:
    good = app_tarball("2.0.0")
    agent = node.deploy()
    ok_sha = node.publish("1.0.0", app_tarball("1.0.0"))
    assert call(agent, "fetch", service="shop", version="1.0.0", sha256=ok_sha).statuscode == 0
    assert call(agent, "activate", service="shop", version="1.0.0").statuscode == 0
    corrupted = bytearray(good)
    corrupted[len(corrupted) // 2] ^= 0xFF
    node.publish("2.0.0", bytes(corrupted))
    reply = call(agent, "fetch", service="shop", version="2.0.0", sha256=sha256(good))
    assert reply.statuscode == 1
    assert reply.statusmsg == (
        f"SHA-256 mismatch for {node.server.base}/artifacts/shop/shop-2.0.0.tar.gz: expected {sha256(good)}, "
        f"got {sha256(bytes(corrupted))}; the download was deleted and nothing was unpacked or activated"
    )
    assert not (node.shop / "releases" / "2.0.0").exists()
    assert not (node.shop / "downloads" / "2.0.0.part").exists()
    assert [p.name for p in (node.shop / "releases").iterdir()] == ["1.0.0"]
    assert node.current() == "releases/1.0.0"
    assert node.served_version().data["version"] == "1.0.0"
    refused = call(agent, "activate", service="shop", version="2.0.0")
    assert (refused.statuscode, refused.statusmsg) == (
        1,
        "shop 2.0.0 is not fetched on this node; run deploy fetch first",
    )


def test_kill_in_the_middle_of_fetch_then_resume(node: Node, tmp_path: Path) -> None:
    agent = node.deploy()
    assert (
        call(
            agent,
            "fetch",
            service="shop",
            version="1.0.0",
            sha256=node.publish("1.0.0", app_tarball("1.0.0")),
        ).statuscode
        == 0
    )
    assert call(agent, "activate", service="shop", version="1.0.0").statuscode == 0
    big = app_tarball("2.0.0", padding=1_500_000)
    big_sha = node.publish("2.0.0", big)
    node.server.trickle["/artifacts/shop/shop-2.0.0.tar.gz"] = (16384, 0.02)

    cfg = tmp_path / "server.cfg"
    cfg.write_text(
        "identity = web1.lab\nplugin.mcollective_py.agents = mcollective_py.agents.deploy:Deploy\n"
        + "".join(f"{k} = {v}\n" for k, v in node.settings.items())
    )
    request, reply_file = tmp_path / "request.json", tmp_path / "reply.json"
    request.write_text(
        json.dumps(
            {
                "agent": "deploy",
                "action": "fetch",
                "callerid": "cert=ops",
                "uniqid": "k1",
                "data": {"service": "shop", "version": "2.0.0", "sha256": big_sha},
            }
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcollective_py",
            "agent",
            "run",
            "-c",
            str(cfg),
            "deploy",
            str(request),
            str(reply_file),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    part = node.shop / "downloads" / "2.0.0.part"
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and part.stat().st_size >= 200_000):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the download never got going"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # our own child
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    kept = part.stat().st_size
    assert 200_000 <= kept < len(big)
    assert not (node.shop / "releases" / "2.0.0").exists()
    assert not any(p.name.startswith(".staging") for p in (node.shop / "releases").iterdir())
    assert node.current() == "releases/1.0.0"
    assert node.served_version().data["version"] == "1.0.0"
    assert not reply_file.exists()
    status = call(agent, "status", service="shop")
    assert status.data["partial_downloads"] == {"2.0.0": kept}

    node.server.trickle.clear()
    node.server.requests.clear()
    resumed = call(agent, "fetch", service="shop", version="2.0.0", sha256=big_sha)
    assert resumed.statuscode == 0, resumed.statusmsg
    assert resumed.data["resumed_from"] == kept and resumed.data["bytes"] == len(big)
    assert node.server.requests == [("/artifacts/shop/shop-2.0.0.tar.gz", f"bytes={kept}-")]
    assert (node.shop / "releases" / "2.0.0" / "VERSION").read_text() == "2.0.0\n"
    assert not part.exists()
    assert node.current() == "releases/1.0.0"  # still not activated


def test_a_server_without_range_support_restarts_the_download(node: Node) -> None:
    data = app_tarball("3.0.0", padding=50_000)
    sha = node.publish("3.0.0", data)
    part = node.shop / "downloads" / "3.0.0.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage from an older attempt")
    node.server.ranges = False
    reply = call(node.deploy(), "fetch", service="shop", version="3.0.0", sha256=sha)
    assert reply.statuscode == 0, reply.statusmsg
    assert reply.data["resumed_from"] == 0 and reply.data["bytes"] == len(data)


def test_hooks_and_a_failed_restart(node: Node, tmp_path: Path) -> None:
    for v in ("1.0.0", "1.1.0"):
        assert (
            call(
                node.deploy(),
                "fetch",
                service="shop",
                version=v,
                sha256=node.publish(v, app_tarball(v)),
            ).statuscode
            == 0
        )
    assert call(node.deploy(), "activate", service="shop", version="1.0.0").statuscode == 0
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(
        f'#!/bin/sh\necho "$1 $DEPLOY_VERSION $DEPLOY_PREVIOUS_VERSION $(pwd)" >> {log}\n[ "$1" != fail ]\n'
    )
    hook.chmod(0o755)

    refused = call(
        node.deploy(pre_activate=f"{hook} fail"), "activate", service="shop", version="1.1.0"
    )
    assert refused.statuscode == 1
    assert refused.statusmsg.startswith("pre_activate hook hook.sh exited 1: ")
    assert refused.statusmsg.endswith("; nothing was switched (1.0.0 stays current)")
    assert node.current() == "releases/1.0.0"

    broken = call(
        node.deploy(restart_command="/bin/false"), "activate", service="shop", version="1.1.0"
    )
    assert broken.statuscode == 1
    assert broken.statusmsg.startswith("restart (command) failed: false exited 1")
    assert broken.statusmsg.endswith(
        "; switched back to 1.0.0, and restarting 1.0.0 failed too: restart (command) failed: false exited 1: /bin/false: "
    )
    assert node.current() == "releases/1.0.0"

    post_fails = call(
        node.deploy(post_activate=f"{hook} fail"), "activate", service="shop", version="1.1.0"
    )
    assert post_fails.statuscode == 1 and post_fails.statusmsg.endswith(
        "; switched back to 1.0.0 and restarted 1.0.0"
    )
    assert node.served_version().data["version"] == "1.0.0"

    hooked = call(
        node.deploy(pre_activate=f"{hook} pre", post_activate=f"{hook} post {{version}}"),
        "activate",
        service="shop",
        version="1.1.0",
    )
    assert hooked.statuscode == 0, hooked.statusmsg
    assert (
        hooked.data["detail"]
        == "pre_activate hook ok; current -> 1.1.0; restarted; post_activate hook ok"
    )
    release = node.shop / "releases" / "1.1.0"
    assert log.read_text().splitlines()[-2:] == [
        f"pre 1.1.0 1.0.0 {release}",
        f"post 1.1.0 1.0.0 {release}",
    ]
    assert node.served_version().data["version"] == "1.1.0"


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink"])
def test_unsafe_artifacts_are_not_unpacked(node: Node, kind: str) -> None:
    data = evil_tarball(kind)
    reply = call(
        node.deploy(), "fetch", service="shop", version="6.6.6", sha256=node.publish("6.6.6", data)
    )
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith("refusing to unpack 6.6.6.part: archive entry ")
    assert reply.statusmsg.endswith("; nothing was activated")
    assert not (node.shop / "releases" / "6.6.6").exists()
    assert [p.name for p in (node.shop / "releases").iterdir()] == []
    assert (
        not (node.root / "escaped.txt").exists() and not (node.root.parent / "escaped.txt").exists()
    )


def test_zip_artifact_checksum_url_and_release_data(node: Node, tmp_path: Path) -> None:
    zipped = app_zip("4.0.0")
    node.server.files["/artifacts/shop/shop-4.0.0.zip"] = zipped
    node.server.files["/artifacts/shop/shop-4.0.0.zip.sha256"] = (
        f"{sha256(zipped)}  shop-4.0.0.zip\n".encode()
    )
    agent = node.deploy(
        **{
            "shop.artifact_url": f"{node.server.base}/artifacts/{{service}}/{{service}}-{{version}}.zip",
            "checksum_url": "{url}.sha256",
        }
    )
    reply = call(agent, "fetch", service="shop", version="4.0.0")
    assert reply.statuscode == 0, reply.statusmsg
    assert (node.shop / "releases" / "4.0.0" / "VERSION").read_text() == "4.0.0\n"
    again = call(agent, "fetch", service="shop", version="4.0.0")
    assert again.statuscode == 0 and again.data["already_present"] is True

    data = app_tarball("5.0.0")
    node.server.files["/elsewhere/shop.tgz"] = data
    (tmp_path / "etc" / "releases").mkdir(parents=True)
    (tmp_path / "etc" / "releases" / "shop.yaml").write_text(
        f'service: "shop"\nversion: "5.0.0"\nartifact_url: "{node.server.base}/elsewhere/shop.tgz"\nsha256: "{sha256(data)}"\n'
    )
    conflict = call(node.deploy(), "fetch", service="shop", version="5.0.0", sha256="0" * 64)
    assert conflict.statuscode == 1 and conflict.statusmsg.startswith(
        f"sha256 {'0' * 64} differs from the release data"
    )
    from_data = call(node.deploy(), "fetch", service="shop", version="5.0.0")
    assert from_data.statuscode == 0, from_data.statusmsg
    assert from_data.data["url"] == f"{node.server.base}/elsewhere/shop.tgz"
    unknown = call(node.deploy(), "fetch", service="shop", version="7.0.0")
    assert unknown.statuscode == 1 and unknown.statusmsg.startswith(
        "no SHA-256 known for shop 7.0.0"
    )


def test_missing_artifact_and_cleanup(node: Node) -> None:
    missing = call(node.deploy(), "fetch", service="shop", version="9.9.9", sha256="a" * 64)
    assert missing.statuscode == 1
    assert missing.statusmsg == (
        f"no artifact at {node.server.base}/artifacts/shop/shop-9.9.9.tar.gz (HTTP 404); check the version and "
        "plugin.deploy.artifact_url"
    )
    agent = node.deploy(service_manager="none")
    for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"):
        assert (
            call(
                agent, "fetch", service="shop", version=v, sha256=node.publish(v, app_tarball(v))
            ).statuscode
            == 0
        )
    assert call(agent, "activate", service="shop", version="1.1.0").statusmsg == "OK"
    assert call(agent, "activate", service="shop", version="1.2.0").data["restarted"] is False
    (node.shop / "releases" / ".staging-1.9.0-999999999").mkdir()  # a dead fetch's leftovers
    reply = call(agent, "cleanup", service="shop", keep=1)
    assert reply.statuscode == 0, reply.statusmsg
    assert (reply.data["kept"], reply.data["removed"], reply.data["removed_count"]) == (
        ["1.1.0", "1.2.0", "1.3.0"],
        ["1.0.0"],
        1,
    )
    assert sorted(p.name for p in (node.shop / "releases").iterdir()) == ["1.1.0", "1.2.0", "1.3.0"]
    assert call(agent, "cleanup", service="shop", keep=-1).statuscode == 4
