"""Regressions from the review: link escapes, staging clean-up, secrets in children."""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import pytest

from mcollective_py.agents.artifacts import ArtifactError, unpack
from mcollective_py.agents.process import run
from mcollective_py.agents.releases import STAGING_PREFIX, ReleaseLayout


def _links_archive(path: Path, links: list[tuple[str, str]]) -> None:
    with tarfile.open(path, "w:gz") as t:
        for name, target in links:
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.SYMTYPE
            ti.linkname = target
            t.addfile(ti)


def test_a_link_through_another_link_cannot_leave_the_release(tmp_path: Path) -> None:
    arch = tmp_path / "a.tar.gz"
    _links_archive(arch, [("b", "a/.."), ("a", ".")])  # b sorts before a: text checks pass
    dest = tmp_path / "release"
    dest.mkdir()
    with pytest.raises(ArtifactError, match=r"'b' is a symlink that resolves outside the release"):
        unpack(arch, dest)


def test_a_relative_link_inside_the_release_is_fine(tmp_path: Path) -> None:
    arch = tmp_path / "ok.tar.gz"
    with tarfile.open(arch, "w:gz") as t:
        for d in ("docs",):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            t.addfile(ti)
        ti = tarfile.TarInfo("VERSION")
        t.addfile(ti)
        ti = tarfile.TarInfo("docs/latest")
        ti.type = tarfile.SYMTYPE
        ti.linkname = "../VERSION"
        t.addfile(ti)
    dest = tmp_path / "release"
    dest.mkdir()
    assert unpack(arch, dest) == 3
    assert os.path.realpath(dest / "docs" / "latest") == os.path.realpath(dest / "VERSION")


def test_staging_cleanup_of_one_version_spares_a_longer_version(tmp_path: Path) -> None:
    layout = ReleaseLayout(tmp_path, "shop")
    layout.releases.mkdir(parents=True)
    mine = layout.releases / f"{STAGING_PREFIX}1.0-{os.getpid()}"
    other = layout.releases / f"{STAGING_PREFIX}1.0-rc1-{os.getpid()}"
    mine.mkdir()
    other.mkdir()
    assert layout.remove_staging("1.0") == [mine.name]
    assert other.is_dir()


def test_children_do_not_inherit_the_daemons_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCOLLECTIVE_PSK", "topsecret")
    monkeypatch.setenv("STOMP_PASSWORD", "alsosecret")
    monkeypatch.setenv("HARMLESS", "kept")
    res = run([sys.executable, "-c", "import os; print(sorted(os.environ))"], timeout=10)
    assert res.exit_code == 0
    assert "MCOLLECTIVE_PSK" not in res.output and "STOMP_PASSWORD" not in res.output
    assert "HARMLESS" in res.output
