"""The lab's release tarballs and the demo app they hold (run for real, on loopback)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mcollective_py.agents.extraction import extract
from mcollective_py.lab import releases
from mcollective_py.lab.appctl import restart, stop
from mcollective_py.lab.lifecycle import free_port
from mcollective_py.lab.processes import running

HOST = "127.0.14.90"


def test_tarballs_are_byte_stable_and_differ_by_version() -> None:
    a = releases.tarball("shop", "1.0.0", True)
    assert a == releases.tarball("shop", "1.0.0", True)
    assert a != releases.tarball("shop", "2.0.0", True)


def test_a_release_holds_the_app_its_tests_and_its_metadata() -> None:
    data = releases.tarball("shop", "3.0.0", False)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = sorted(m.name for m in tar.getmembers())
        meta = json.loads(tar.extractfile("release.json").read())  # type: ignore[union-attr]
        modes = {m.name: m.mode for m in tar.getmembers()}
    assert names == ["VERSION", "app.py", "bin/migrate", "bin/smoke-test", "release.json"]
    assert meta["version"] == "3.0.0" and meta["healthy"] is False
    assert modes["bin/smoke-test"] == 0o755


def test_build_writes_tarballs_and_checksum_files(tmp_path: Path) -> None:
    sums = releases.build(tmp_path, "shop", {"1.0.0": True, "3.0.0": False})
    for version, digest in sums.items():
        tgz = tmp_path / "shop" / f"shop-{version}.tar.gz"
        assert hashlib.sha256(tgz.read_bytes()).hexdigest() == digest
        assert (tmp_path / "shop" / f"shop-{version}.tar.gz.sha256").read_text() == (
            f"{digest}  shop-{version}.tar.gz\n"
        )


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize(("version", "healthy"), [("2.0.0", True), ("3.0.0", False)])
def test_the_app_smoke_test_and_migration(tmp_path: Path, version: str, healthy: bool) -> None:
    rel = tmp_path / "shop" / "releases" / version
    rel.mkdir(parents=True)
    archive = tmp_path / f"shop-{version}.tar.gz"
    archive.write_bytes(releases.tarball("shop", version, healthy))
    extract(archive, rel)  # the deploy agent's own unpacker (no tarfile filter on Debian's 3.11.2)
    port = free_port(HOST)
    pidfile = tmp_path / "app.pid"
    started = restart(pidfile, tmp_path / "app.log", HOST, port, rel)
    try:
        assert json.loads(started.answer) == {"service": "shop", "version": version}
        assert _get(f"http://{HOST}:{port}/health")[0] == (200 if healthy else 503)
        assert _get(f"http://{HOST}:{port}/")[1] == f"shop {version} on {HOST}:{port}\n"
        junit = tmp_path / "smoke.xml"
        smoke = subprocess.run(
            [str(rel / "bin" / "smoke-test"), str(junit), f"http://{HOST}:{port}"],
            env={"DEPLOY_VERSION": version, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            check=False,
        )
        assert smoke.returncode == (0 if healthy else 1)
        assert ('failures="0"' in junit.read_text()) is healthy
        for _ in range(2):
            migrate = subprocess.run(
                [sys.executable, str(rel / "bin" / "migrate")],
                env={"DEPLOY_VERSION": version},
                capture_output=True,
                text=True,
                check=True,
            )
        assert "schema of shop" in migrate.stdout
        lines = (tmp_path / "shop" / "migrations.log").read_text().splitlines()
        assert [line.split()[1] for line in lines] == [version]
    finally:
        pid = started.pid
        assert stop(pidfile) is True
    assert not running(pid)
    assert not pidfile.exists()
    assert stop(pidfile) is False
