"""Unpacking a release archive member by member, so that nothing can land outside the release.

:func:`extract` reads a tar (plain, gzip, bzip2, xz) or zip archive and writes each member
itself; it never calls ``tarfile``'s or ``zipfile``'s own extraction, so it does not depend on
the extraction filters of the running Python (absent below 3.11.4, and bypassed by
CVE-2025-4517 up to 3.13).  The rules, checked member by member before anything is written:

* names: relative, ``/``-separated, no ``..`` part, no backslash, NUL or drive letter; at most
  :attr:`Limits.max_name` bytes and :attr:`Limits.max_depth` components; each name once;
* kinds: regular files, directories, symlinks and hard links only (no devices, fifos,
  sockets); set-id and sticky bits are dropped;
* symlinks: a relative target that resolves inside the release, following the links the
  archive created before it; when the archive is complete, every link is resolved again with
  all of them (a later link can change where an earlier one leads);
* hard links: only to a regular file this archive already wrote;
* every path is opened one component at a time from a directory descriptor with
  ``O_NOFOLLOW`` (``O_DIRECTORY`` for parents, ``O_EXCL`` for new files), so an existing
  symlink is never followed, whatever the archive made earlier;
* caps (:class:`Limits`): members, total bytes written, and the ratio of bytes written to the
  archive's size on disk (decompression bombs), counted while the data streams, not from
  declared sizes alone.

A refusal raises :class:`UnsafeArchive` naming the member and the rule; the caller removes
the directory it extracted into (``deploy fetch`` unpacks into a staging directory).  POSIX
only: it needs ``dir_fd`` support in ``os``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tarfile
import zipfile
from collections.abc import Generator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["Limits", "UnsafeArchive", "extract"]

CHUNK = 64 * 1024
#: Longest symlink target read from a zip member.
MAX_LINK = 4096
#: Links followed while resolving one symlink target (as the kernel's MAXSYMLINKS).
MAX_HOPS = 40
_DRIVE = re.compile(r"\A[A-Za-z]:")


class UnsafeArchive(ValueError):
    """The archive breaks a rule; the message names the member and the rule."""


@dataclass(frozen=True)
class Limits:
    """Caps for one archive (``plugin.deploy.unpack_*`` settings)."""

    max_members: int = 20_000
    max_bytes: int = 2 * 1024**3
    max_ratio: int = 200
    max_name: int = 1024
    max_depth: int = 32


@dataclass(frozen=True)
class _Member:
    name: str
    kind: str  # file | dir | symlink | hardlink | other
    mode: int
    size: int
    link: str
    mtime: float | None


# --------------------------------------------------------------------------- names


def member_parts(name: str, limits: Limits) -> list[str]:
    """The components of a member name, or UnsafeArchive naming the rule it breaks."""
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchive(f"archive entry {name!r} is absolute or has a '..' part")
    if "\x00" in name or "\\" in name:
        raise UnsafeArchive(f"archive entry {name!r} has a backslash or NUL in its name")
    if len(name.encode("utf-8", "surrogateescape")) > limits.max_name:
        raise UnsafeArchive(
            f"archive entry {name[:60]!r}... has a name longer than {limits.max_name} bytes "
            "(plugin.deploy.unpack_max_name)"
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"archive entry {name!r} is absolute or has a '..' part")
    if len(parts) > limits.max_depth:
        raise UnsafeArchive(
            f"archive entry {name!r} is {len(parts)} directories deep, more than "
            f"{limits.max_depth} (plugin.deploy.unpack_max_depth)"
        )
    return parts


def resolve_inside(start: list[str], target: str, links: dict[str, str]) -> list[str] | None:
    """Where the link target ``target``, placed in directory ``start``, leads, following the
    archive's own ``links`` (path -> target); None when it leaves the root, is absolute, or
    loops."""
    if not target or target.startswith("/") or "\\" in target or _DRIVE.match(target):
        return None
    stack = list(start)
    pending = [p for p in target.split("/") if p not in ("", ".")]
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not stack:
                return None
            stack.pop()
            continue
        here = "/".join([*stack, part])
        if here in links:
            hops += 1
            inner = links[here]
            if hops > MAX_HOPS or not inner or inner.startswith("/") or _DRIVE.match(inner):
                return None
            pending = [p for p in inner.split("/") if p not in ("", ".")] + pending
            continue
        stack.append(part)
    return stack


# --------------------------------------------------------------------------- readers


def _tar_members(
    tar: tarfile.TarFile,
) -> Generator[tuple[_Member, IO[bytes] | None], None, None]:
    while True:
        info = tar.next()
        if info is None:
            return
        if info.isdir():
            kind = "dir"
        elif info.isreg():
            kind = "file"
        elif info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hardlink"
        else:
            kind = "other"
        member = _Member(info.name, kind, info.mode, info.size, info.linkname, float(info.mtime))
        yield member, (tar.extractfile(info) if kind == "file" else None)


def _zip_members(
    archive: zipfile.ZipFile,
) -> Generator[tuple[_Member, IO[bytes] | None], None, None]:
    for info in archive.infolist():
        mode = info.external_attr >> 16
        link = ""
        if stat.S_ISLNK(mode):
            kind = "symlink"
            if info.file_size > MAX_LINK:
                raise UnsafeArchive(
                    f"archive entry {info.filename!r} is a symlink with a {info.file_size}-byte target"
                )
            with archive.open(info) as fh:
                link = fh.read(MAX_LINK + 1).decode("utf-8", "surrogateescape")
        elif info.is_dir():
            kind = "dir"
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            kind = "other"
        else:
            kind = "file"
        member = _Member(info.filename, kind, mode & 0o7777 or 0o644, info.file_size, link, None)
        if kind == "file":
            with archive.open(info) as fh:
                yield member, fh
        else:
            yield member, None


# --------------------------------------------------------------------------- writing


class _Writer:
    """Creates members below one directory descriptor, never following a link."""

    def __init__(self, root_fd: int, limits: Limits, archive_size: int) -> None:
        self.root_fd = root_fd
        self.limits = limits
        self.byte_cap = min(limits.max_bytes, max(archive_size, 1) * limits.max_ratio)
        self.written = 0
        self.count = 0
        self.seen: set[str] = set()
        self.files: set[str] = set()
        self.links: dict[str, str] = {}
        self.dirs: dict[str, int] = {}  # path -> open fd

    def close(self) -> None:
        for fd in self.dirs.values():
            os.close(fd)
        self.dirs.clear()

    def _dir(self, parts: list[str], name: str, create: bool = True) -> int:
        """The fd of directory ``parts`` (made when missing), walked without following links."""
        fd = self.root_fd
        for i, part in enumerate(parts):
            path = "/".join(parts[: i + 1])
            if path in self.dirs:
                fd = self.dirs[path]
                continue
            if path in self.links:
                raise UnsafeArchive(
                    f"archive entry {name!r} is written through the symlink {path!r}"
                )
            try:
                sub = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                sub = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeArchive(
                        f"archive entry {name!r} goes through {path!r}, which is not a directory"
                    ) from None
                raise
            self.dirs[path] = sub
            fd = sub
        return fd

    def add(self, m: _Member, data: IO[bytes] | None) -> None:
        limits = self.limits
        self.count += 1
        if self.count > limits.max_members:
            raise UnsafeArchive(
                f"archive has more than {limits.max_members} members (at {m.name!r}; "
                "plugin.deploy.unpack_max_members)"
            )
        parts = member_parts(m.name, limits)
        path = "/".join(parts)
        if not parts:
            if m.kind == "dir":
                return  # "./": the release directory itself
            raise UnsafeArchive(f"archive entry {m.name!r} has an empty name")
        if m.kind == "other":
            raise UnsafeArchive(f"archive entry {m.name!r} is a device, fifo or other special file")
        if m.kind == "dir":
            if path in self.files or path in self.links:
                raise UnsafeArchive(f"archive entry {m.name!r} appears twice in the archive")
            self._dir(parts, m.name)
            return
        if path in self.seen or path in self.dirs:
            raise UnsafeArchive(f"archive entry {m.name!r} appears twice in the archive")
        self.seen.add(path)
        parent = self._dir(parts[:-1], m.name)
        leaf = parts[-1]
        if m.kind == "symlink":
            if resolve_inside(parts[:-1], m.link, self.links) is None:
                raise UnsafeArchive(
                    f"archive entry {m.name!r} is a symlink to {m.link!r}, outside the release"
                )
            self.links[path] = m.link
            os.symlink(m.link, leaf, dir_fd=parent)
            return
        if m.kind == "hardlink":
            target = "/".join(p for p in m.link.split("/") if p not in ("", "."))
            if m.link.startswith("/") or target not in self.files:
                raise UnsafeArchive(
                    f"archive entry {m.name!r} is a hard link to {m.link!r}, which is not a "
                    "regular file extracted before it"
                )
            tparts = target.split("/")
            tdir = self._dir(tparts[:-1], m.name, create=False)
            os.link(tparts[-1], leaf, src_dir_fd=tdir, dst_dir_fd=parent, follow_symlinks=False)
            self.files.add(path)
            return
        assert data is not None
        if m.size > self.byte_cap - self.written:
            raise self._too_big(m.name)
        mode = 0o755 if m.mode & 0o111 else 0o644
        fd = os.open(
            leaf,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            mode,
            dir_fd=parent,
        )
        try:
            while chunk := data.read(CHUNK):
                self.written += len(chunk)
                if self.written > self.byte_cap:
                    raise self._too_big(m.name)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            if m.mtime is not None:
                os.utime(fd, (m.mtime, m.mtime))
        finally:
            os.close(fd)
        self.files.add(path)

    def _too_big(self, name: str) -> UnsafeArchive:
        return UnsafeArchive(
            f"archive entry {name!r} takes the unpacked size over {self.byte_cap} bytes "
            f"(plugin.deploy.unpack_max_bytes = {self.limits.max_bytes}, at most "
            f"plugin.deploy.unpack_max_ratio = {self.limits.max_ratio} times the archive size)"
        )

    def check_links(self) -> None:
        """With every link of the archive in place: each still resolves inside."""
        for path, target in self.links.items():
            if resolve_inside(path.split("/")[:-1], target, self.links) is None:
                raise UnsafeArchive(
                    f"archive entry {path!r} is a symlink that resolves outside the release"
                )


def extract(archive: Path, dest: Path, limits: Limits = Limits()) -> int:
    """Unpack ``archive`` (tar family or zip, by content) into the existing, empty directory
    ``dest``; returns the number of members.  UnsafeArchive names the member and the rule it
    broke; ``tarfile.TarError``, ``zipfile.BadZipFile``, ``OSError`` and ``EOFError`` pass
    through for unreadable archives.  On any error ``dest`` may hold a partial tree: the
    caller removes it."""
    if not {os.open, os.mkdir, os.symlink, os.link} <= os.supports_dir_fd:  # pragma: no cover
        raise UnsafeArchive("this platform cannot unpack without following links (no dir_fd)")
    size = archive.stat().st_size
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    writer = _Writer(root_fd, limits, size)
    try:
        with ExitStack() as stack:
            members: Generator[tuple[_Member, IO[bytes] | None], None, None]
            if tarfile.is_tarfile(archive):
                tar = stack.enter_context(tarfile.open(archive, "r:*"))
                members = _tar_members(tar)
            elif zipfile.is_zipfile(archive):
                zf = stack.enter_context(zipfile.ZipFile(archive))
                if len(zf.infolist()) > limits.max_members:
                    raise UnsafeArchive(
                        f"archive has {len(zf.infolist())} members, more than "
                        f"{limits.max_members} (plugin.deploy.unpack_max_members)"
                    )
                members = _zip_members(zf)
            else:
                raise UnsafeArchive(f"{archive.name} is neither a tar nor a zip archive")
            stack.enter_context(closing(members))
            for member, data in members:
                writer.add(member, data)
        writer.check_links()
        return writer.count
    finally:
        writer.close()
        os.close(root_fd)
