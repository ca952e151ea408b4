"""The release directory layout of one service on a node, and its atomic switches.

::

    <root>/<service>/
        releases/<version>/            unpacked releases; a directory appears here only
                                       complete (unpacked in staging, then renamed)
        releases/<version>/.mco-release.json   what was fetched: version, sha256, url, time
        releases/.staging-<version>-<pid>/     an unpack in progress (removed on failure,
                                               and by the next fetch or cleanup)
        downloads/<version>.part       a download in progress or interrupted (resumable)
        current  -> releases/<version> the active release (relative symlink)
        previous -> releases/<version> the release that was active before (rollback target)
        .switch.lock                   held (flock) by activate / rollback / cleanup
        .fetch-<version>.lock          held by the fetch of that version

Links are switched atomically: a new symlink under a temporary name, then ``rename`` over
the old one, so a reader sees the old or the new target, never no link.  Names are checked
again here (``service``/``version`` patterns of the DDL) so no input can leave ``<root>``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.platform == "win32":  # pragma: no cover - not run on the CI
    import msvcrt
else:
    import fcntl

SERVICE_RE = re.compile(r"\A[a-z][a-z0-9_-]{0,62}\Z")
VERSION_RE = re.compile(r"\A[0-9A-Za-z][0-9A-Za-z._+-]{0,63}\Z")
MARKER = ".mco-release.json"
STAGING_PREFIX = ".staging-"


class LayoutError(Exception):
    """A name is invalid, a release is missing, or the service is busy."""


class Busy(LayoutError):
    """Another action holds the service's lock."""


@dataclass(frozen=True)
class ReleaseInfo:
    """One unpacked release and what its marker says."""

    version: str
    path: Path
    fetched_at: float
    sha256: str | None = None
    url: str | None = None


def check_service(service: str) -> str:
    if not SERVICE_RE.match(service):
        raise LayoutError(f"service name {service!r} is not valid ({SERVICE_RE.pattern})")
    return service


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise LayoutError(f"version {version!r} is not valid ({VERSION_RE.pattern})")
    return version


class ReleaseLayout:
    """Paths and link operations for ``<root>/<service>``; see the module docstring."""

    def __init__(self, root: str | Path, service: str) -> None:
        self.root = Path(root)
        self.service = check_service(service)
        self.base = self.root / service
        self.releases = self.base / "releases"
        self.downloads = self.base / "downloads"
        self.current_link = self.base / "current"
        self.previous_link = self.base / "previous"

    def release_dir(self, version: str) -> Path:
        return self.releases / check_version(version)

    def part_file(self, version: str) -> Path:
        return self.downloads / f"{check_version(version)}.part"

    def ensure(self) -> None:
        """Create the directories (not the links)."""
        for d in (self.releases, self.downloads):
            d.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading

    def _link_version(self, link: Path) -> str | None:
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # not a link
                raise LayoutError(f"{link} exists but is not a symlink; move it away") from None
            raise
        parts = Path(target).parts
        if len(parts) != 2 or parts[0] != "releases" or not VERSION_RE.match(parts[1]):
            raise LayoutError(f"{link} points to {target!r}, not releases/<version>")
        return parts[1]

    def current_version(self) -> str | None:
        """The version ``current`` points to, None when there is no link."""
        return self._link_version(self.current_link)

    def previous_version(self) -> str | None:
        return self._link_version(self.previous_link)

    def activated_at(self) -> float | None:
        """When ``current`` was last switched (the link's own mtime)."""
        try:
            return self.current_link.lstat().st_mtime
        except FileNotFoundError:
            return None

    def info(self, version: str) -> ReleaseInfo | None:
        """The unpacked release ``version``, None when it is not there."""
        path = self.release_dir(version)
        if not path.is_dir():
            return None
        marker: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads((path / MARKER).read_text(encoding="utf-8"))
            marker = loaded if isinstance(loaded, dict) else {}
        fetched = marker.get("fetched_at")
        if not isinstance(fetched, (int, float)):
            fetched = path.stat().st_mtime
        return ReleaseInfo(version, path, float(fetched), marker.get("sha256"), marker.get("url"))

    def available(self) -> list[ReleaseInfo]:
        """Every unpacked release, oldest fetch first."""
        if not self.releases.is_dir():
            return []
        found = []
        for entry in self.releases.iterdir():
            if entry.name.startswith(".") or not VERSION_RE.match(entry.name):
                continue
            info = self.info(entry.name)
            if info is not None:
                found.append(info)
        return sorted(found, key=lambda r: (r.fetched_at, r.version))

    def partial_downloads(self) -> dict[str, int]:
        """``{version: bytes so far}`` of interrupted downloads."""
        if not self.downloads.is_dir():
            return {}
        out = {}
        for entry in sorted(self.downloads.glob("*.part")):
            version = entry.name[: -len(".part")]
            if VERSION_RE.match(version):
                out[version] = entry.stat().st_size
        return out

    # ------------------------------------------------------------------ writing

    def switch(self, link: Path, version: str | None) -> None:
        """Point ``link`` at ``releases/<version>`` atomically (remove it for None)."""
        if version is None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            return
        if not self.release_dir(version).is_dir():
            raise LayoutError(
                f"release {self.service} {version} is not unpacked in {self.releases}"
            )
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"releases/{version}", tmp)
        os.replace(tmp, link)
        _fsync_dir(link.parent)

    def write_marker(self, directory: Path, data: dict[str, Any]) -> None:
        (directory / MARKER).write_text(json.dumps(data, sort_keys=True) + "\n", encoding="utf-8")

    def staging_dir(self, version: str) -> Path:
        return self.releases / f"{STAGING_PREFIX}{check_version(version)}-{os.getpid()}"

    def remove_staging(self, version: str | None = None) -> list[str]:
        """Remove leftover unpack directories: every one of ``version`` (the caller holds
        its fetch lock), or, without a version, those whose process is gone.  Returns their
        names."""
        if not self.releases.is_dir():
            return []
        removed = []
        for entry in self.releases.iterdir():
            if (
                not entry.name.startswith(STAGING_PREFIX)
                or not entry.is_dir()
                or entry.is_symlink()
            ):
                continue
            # ".staging-<version>-<pid>": compare the whole version, never a prefix of it
            if version is not None and entry.name.rsplit("-", 1)[0] != STAGING_PREFIX + version:
                continue
            if version is None and _alive(entry.name.rsplit("-", 1)[-1]):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        return removed

    def remove_release(self, version: str) -> None:
        """Delete an unpacked release (never the current or previous one: callers check).
        It is first renamed out of ``releases/<version>`` so it vanishes at once."""
        path = self.release_dir(version)
        doomed = self.releases / f"{STAGING_PREFIX}removing-{version}-{os.getpid()}"
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self, what: str = "switch") -> Iterator[None]:
        """Hold one of the service's locks, or raise Busy at once when another action holds
        it: ``switch`` (activate, rollback, cleanup) or ``fetch-<version>`` (one download),
        so a long download never blocks a rollback."""
        self.base.mkdir(parents=True, exist_ok=True)
        path = self.base / f".{what}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                _flock(fd)
            except BlockingIOError:
                raise Busy(
                    f"another deploy action ({what}) is running for {self.service} (lock {path}); "
                    "try again when it has finished"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {time.time():.0f}\n".encode())
            yield
        finally:
            os.close(fd)


def plan_cleanup(
    versions: list[str], current: str | None, previous: str | None, keep: int
) -> tuple[list[str], list[str]]:
    """Which releases ``cleanup`` keeps and removes, both oldest first.

    ``versions`` are oldest first.  Kept: the current one, the ``keep`` newest others, and
    the previous one (the rollback target) even when it is older.  ValueError for a
    negative ``keep``.
    """
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, got {keep}")
    others = [v for v in versions if v != current]
    newest = set(others[len(others) - keep :]) if keep else set()
    kept = [v for v in versions if v in newest or v in (current, previous)]
    removed = [v for v in versions if v not in kept]
    return kept, removed


def _alive(pid_text: str) -> bool:
    """Whether the process of a staging directory still runs (unknown: assume it does)."""
    if not pid_text.isdigit():
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate it there
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


if sys.platform == "win32":  # pragma: no cover - not run on the CI

    def _flock(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            raise BlockingIOError from None

else:

    def _flock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
