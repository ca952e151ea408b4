"""Item 1: a release artifact must not write outside the release, on any Python.

Every archive of :mod:`tests.hostile.corpus` is refused with a message naming the member and
the rule, and nothing appears outside the release directory (the whole box around it is
listed before and after).  Then the same archives through the real ``deploy fetch`` against
an artifact server on loopback: statuscode 1, no release, no download, ``current`` untouched.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcollective_py.agents import extraction
from mcollective_py.agents.artifacts import ArtifactError, unpack
from mcollective_py.agents.deploy import Deploy
from tests.agents_py.conftest import call, make_agent
from tests.agents_py.lab import ArtifactServer
from tests.agents_py.releases_fixture import app_tarball
from tests.conftest import PythonFleet, lab_dir, ns_vhost, run_mco_py
from tests.hostile.corpus import CORPUS

HOST = "127.0.10.21"


def _tree(root: Path, skip: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            continue
        for name in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


@pytest.fixture(scope="module")
def built() -> dict[str, bytes]:
    return {name: builder() for name, (builder, _, _) in CORPUS.items()}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_archive_is_refused_and_nothing_escapes(
    name: str, built: dict[str, bytes], tmp_path: Path
) -> None:
    _, suffix, rule = CORPUS[name]
    box = tmp_path / "box"
    release = box / "deep" / "release"
    release.mkdir(parents=True)
    archive = box / f"artifact{suffix}"
    archive.write_bytes(built[name])
    before = _tree(box, release)
    tmp_before = set(os.listdir("/tmp"))
    with pytest.raises(ArtifactError, match=rf"\Arefusing to unpack artifact{suffix}: {rule}"):
        unpack(archive, release)
    assert _tree(box, release) == before
    assert not {n for n in set(os.listdir("/tmp")) - tmp_before if n.startswith("escaped")}
    written = sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(release) for f in fs)
    assert written <= 200 * len(built[name])  # a bomb stops at the ratio cap


def test_the_long_path_alias_is_refused_by_the_link_rule_too(
    built: dict[str, bytes], tmp_path: Path
) -> None:
    """With the name caps lifted, the CVE-2025-4517 archive still cannot get out: its next
    member is written through one of its own symlinks, which is never followed."""
    release = tmp_path / "release"
    release.mkdir()
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(built["hardlink_to_symlink_long_path"])
    with pytest.raises(
        ArtifactError, match=r"archive entry 'a/b/c/.*' is written through the symlink 'a'\Z"
    ):
        unpack(archive, release, extraction.Limits(max_name=1 << 20, max_depth=1000))
    assert not (tmp_path / "escaped-cve.txt").exists()


def test_a_legitimate_archive_still_unpacks(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, kind, link, data in (
            ("./", tarfile.DIRTYPE, "", b""),
            ("./bin", tarfile.DIRTYPE, "", b""),
            ("./bin/run", tarfile.REGTYPE, "", b"#!/bin/sh\n"),
            ("./VERSION", tarfile.REGTYPE, "", b"1.0\n"),
            ("./docs/latest", tarfile.SYMTYPE, "../VERSION", b""),
            ("./VERSION.copy", tarfile.LNKTYPE, "./VERSION", b""),
        ):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.size = len(data)
            info.mode = 0o4755 if name.endswith("run") else 0o644
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "ok.tar.gz"
    archive.write_bytes(raw.getvalue())
    dest = tmp_path / "release"
    dest.mkdir()
    assert unpack(archive, dest) == 6
    assert (dest / "docs" / "latest").read_bytes() == b"1.0\n"
    assert os.stat(dest / "VERSION.copy").st_ino == os.stat(dest / "VERSION").st_ino
    assert os.stat(dest / "bin" / "run").st_mode & 0o7777 == 0o755  # set-uid dropped


def test_caps_are_settings(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(app_tarball("1.0"))
    dest = tmp_path / "r"
    dest.mkdir()
    with pytest.raises(
        ArtifactError, match=r"archive has more than 2 members \(at 'bin/smoke-test'"
    ):
        unpack(archive, dest, extraction.Limits(max_members=2))


@pytest.mark.integration
@pytest.mark.parametrize(
    "name", ["hardlink_to_symlink_long_path", "symlink_swapped_later", "bomb_tar", "zip_bomb"]
)
def test_deploy_fetch_refuses_and_leaves_nothing(
    name: str, built: dict[str, bytes], tmp_path: Path
) -> None:
    server = ArtifactServer(HOST)
    try:
        root = tmp_path / "releases"
        settings = {
            "plugin.deploy.root": str(root),
            "plugin.deploy.config_dir": str(tmp_path / "etc"),
            "plugin.deploy.artifact_url": f"{server.base}/a/{{service}}-{{version}}.tar.gz",
        }
        agent = make_agent(Deploy, settings)
        good = app_tarball("1.0.0")
        server.files["/a/shop-1.0.0.tar.gz"] = good
        ok = call(
            agent, "fetch", service="shop", version="1.0.0", sha256=hashlib.sha256(good).hexdigest()
        )
        assert ok.statuscode == 0, ok.statusmsg
        assert call(agent, "activate", service="shop", version="1.0.0").statuscode == 0
        data = built[name]
        server.files["/a/shop-6.6.6.tar.gz"] = data
        before = _tree(tmp_path, root / "shop" / "releases" / "1.0.0")
        reply = call(
            agent, "fetch", service="shop", version="6.6.6", sha256=hashlib.sha256(data).hexdigest()
        )
        assert reply.statuscode == 1
        assert reply.statusmsg.startswith("refusing to unpack 6.6.6.part: archive ")
        assert reply.statusmsg.endswith(
            "; the download and the partial unpack were deleted; nothing was activated"
        )
        after = _tree(tmp_path, root / "shop" / "releases" / "1.0.0")
        assert {p for p in after - before if not p.endswith(".lock")} == set()
        assert os.readlink(root / "shop" / "current") == "releases/1.0.0"
        assert sorted(p.name for p in (root / "shop" / "releases").iterdir()) == ["1.0.0"]
        assert list((root / "shop" / "downloads").iterdir()) == []
    finally:
        server.stop()


@pytest.fixture(scope="module")
def deploy_node() -> Iterator[tuple[PythonFleet, ArtifactServer, Path]]:
    server = ArtifactServer("127.0.10.22")
    root = lab_dir("archnode")
    releases = root / "releases"
    extra = (
        f"plugin.deploy.root = {releases}\nplugin.deploy.config_dir = {root / 'etc'}\n"
        f"plugin.deploy.artifact_url = {server.base}/a/{{service}}-{{version}}.tar.gz\n"
    )
    fleet = PythonFleet(root, ns_vhost("mco-py-archnode"), ["arch1"], extra_cfg=extra)
    try:
        fleet.up()
        yield fleet, server, releases
    finally:
        fleet.down()
        server.stop()


@pytest.mark.integration
def test_a_daemon_refuses_the_cve_archive_and_keeps_current(
    deploy_node: tuple[PythonFleet, ArtifactServer, Path], built: dict[str, bytes]
) -> None:
    fleet, server, releases = deploy_node
    good = app_tarball("1.0.0")
    server.files["/a/shop-1.0.0.tar.gz"] = good
    for argv in (
        ["fetch", "service=shop", "version=1.0.0", f"sha256={hashlib.sha256(good).hexdigest()}"],
        ["activate", "service=shop", "version=1.0.0", "restart=false"],
    ):
        r = run_mco_py(fleet.env, "rpc", "deploy", *argv, "-I", "arch1", "--json")
        assert json.loads(r.stdout)[0]["statuscode"] == 0, r.stdout + r.stderr
    evil = built["hardlink_to_symlink_long_path"]
    server.files["/a/shop-6.6.6.tar.gz"] = evil
    sha = hashlib.sha256(evil).hexdigest()
    r = run_mco_py(
        fleet.env,
        "rpc",
        "deploy",
        "fetch",
        "service=shop",
        "version=6.6.6",
        f"sha256={sha}",
        "-I",
        "arch1",
        "--json",
    )
    [reply] = json.loads(r.stdout)
    assert reply["statuscode"] == 1
    assert re.fullmatch(
        r"refusing to unpack 6\.6\.6\.part: archive entry 'd{60}'\.\.\. has a name longer than "
        r"1024 bytes \(plugin\.deploy\.unpack_max_name\); the download and the partial unpack "
        r"were deleted; nothing was activated",
        reply["statusmsg"],
    ), reply["statusmsg"]
    assert os.readlink(releases / "shop" / "current") == "releases/1.0.0"
    assert sorted(p.name for p in (releases / "shop" / "releases").iterdir()) == ["1.0.0"]
    assert not list(fleet.root.rglob("escaped*"))
