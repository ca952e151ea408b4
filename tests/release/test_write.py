"""Writing release data: atomic per file, nothing half-written, nothing left behind on failure."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO, Any

import pytest

from mcollective_py.errors import ConfigError, UsageError
from mcollective_py.release import hiera
from mcollective_py.release.hiera import (
    FileChange,
    data_dir,
    plan_writes,
    write_atomic,
    write_files,
)


def _listing(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_plan_and_write(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "same.yaml").write_text("x: 1\n")
    (tmp_path / "a" / "old.yaml").write_text("x: 1\n")
    changes = plan_writes(
        tmp_path, {"a/old.yaml": "x: 2\n", "a/same.yaml": "x: 1\n", "b/c/new.yaml": "y: 1\n"}
    )
    assert [(c.path.relative_to(tmp_path).as_posix(), c.status) for c in changes] == [
        ("a/old.yaml", "changed"),
        ("a/same.yaml", "unchanged"),
        ("b/c/new.yaml", "new"),
    ]
    before = (tmp_path / "a" / "same.yaml").stat().st_mtime_ns
    written = write_files(changes)
    assert [c.status for c in written] == ["changed", "new"]
    assert _listing(tmp_path) == {
        "a/old.yaml": "x: 2\n",
        "a/same.yaml": "x: 1\n",
        "b/c/new.yaml": "y: 1\n",
    }
    assert (
        tmp_path / "a" / "same.yaml"
    ).stat().st_mtime_ns == before  # unchanged files are not touched
    assert stat.S_IMODE((tmp_path / "b" / "c" / "new.yaml").stat().st_mode) == 0o644


def test_diff(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text("a: 1\nb: 2\n")
    [change] = plan_writes(tmp_path, {"f.yaml": "a: 1\nb: 3\n"})
    assert change.diff() == (
        f"--- a/{tmp_path}/f.yaml\n+++ b/{tmp_path}/f.yaml\n@@ -1,2 +1,2 @@\n a: 1\n-b: 2\n+b: 3\n"
    )
    new = FileChange(path=Path("x/new.yaml"), old=None, new="a: 1")
    assert (
        new.diff()
        == "--- /dev/null\n+++ b/x/new.yaml\n@@ -0,0 +1 @@\n+a: 1\n\\ No newline at end of file\n"
    )
    assert FileChange(path=Path("s"), old="a\n", new="a\n").diff() == ""


class _DiskFullAfter:
    """A binary file object that accepts ``limit`` bytes, then fails like a full disk."""

    def __init__(self, real: IO[bytes], limit: int) -> None:
        self.real, self.limit = real, limit

    def write(self, data: bytes) -> int:
        self.real.write(data[: self.limit])
        self.real.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __enter__(self) -> _DiskFullAfter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()


def test_failure_mid_write_leaves_the_old_file_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "releases" / "shop" / "lab.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("version: 1.4.1\n")
    real_fdopen = os.fdopen
    seen: list[str] = []

    def fdopen(fd: int, mode: str = "r", *a: Any, **kw: Any) -> Any:
        fh = real_fdopen(fd, mode, *a, **kw)
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        return _DiskFullAfter(fh, limit=5)

    monkeypatch.setattr(hiera.os, "fdopen", fdopen)
    with pytest.raises(
        ConfigError, match=r"\Acannot write .*/releases/shop/lab\.yaml: No space left on device\Z"
    ):
        write_atomic(target, "version: 1.4.2\n" * 100)
    assert seen and Path(seen[0]).parent == target.parent  # the temp file was next to the target
    assert _listing(tmp_path) == {"releases/shop/lab.yaml": "version: 1.4.1\n"}


def test_failure_on_a_later_file_changes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text("old a\n")
    (tmp_path / "b.yaml").write_text("old b\n")
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second file's data
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(hiera.os, "fsync", fsync)
    with pytest.raises(ConfigError, match=r"Input/output error"):
        write_files(plan_writes(tmp_path, {"a.yaml": "new a\n", "b.yaml": "new b\n"}))
    assert _listing(tmp_path) == {"a.yaml": "old a\n", "b.yaml": "old b\n"}


def test_failed_rename_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def replace(src: str, dst: str) -> None:
        raise OSError(errno.EACCES, "Permission denied", dst)

    monkeypatch.setattr(hiera.os, "replace", replace)
    with pytest.raises(ConfigError, match=r"\Acannot write .*x\.yaml: Permission denied\Z"):
        write_atomic(tmp_path / "x.yaml", "x: 1\n")
    assert list(tmp_path.iterdir()) == []


def test_data_dir(tmp_path: Path) -> None:
    with pytest.raises(
        UsageError, match=r"\Ano hiera\.yaml in '.*'; point --hiera-dir at the directory"
    ):
        data_dir(tmp_path)
    (tmp_path / "hiera.yaml").write_text("version: 3\n")
    with pytest.raises(ConfigError, match=r"is not a Hiera 5 config"):
        data_dir(tmp_path)
    (tmp_path / "hiera.yaml").write_text("version: 5\n")
    assert data_dir(tmp_path) == tmp_path / "data"
    (tmp_path / "hiera.yaml").write_text("version: 5\ndefaults: {datadir: hieradata}\n")
    assert data_dir(tmp_path) == tmp_path / "hieradata"
