"""Private cache files: where they live, and the one way they are read and written.

Used by :mod:`mcollective_py.ddl.diskcache` (parsed DDLs) and
:mod:`mcollective_py.cli.codecache` (compiled dataclass methods).  Both hold what a later
run will trust, so both follow the same rules:

* Where: ``$MCO_PY_CACHE_DIR``, else ``$XDG_CACHE_HOME/mco-py``, else ``~/.cache/mco-py``;
  each cache in its own subdirectory, created mode 0700.
* :func:`read_private` returns a file's bytes only when its directory and the file itself
  are owned by this user and writable by nobody else, the file is a regular file opened
  without following a symlink, and it is at most ``max_bytes`` long; otherwise None.
* :func:`write_private` writes a 0600 temporary file in the same directory and renames it
  over the target (readers never see half a file); it never raises: a cache that cannot be
  written (read-only home, full disk, a foreign directory) is only a missed optimisation.

Only ``os`` and ``stat`` are imported: the CLI reads a cache before anything else.
"""

from __future__ import annotations

import os
import stat


def root() -> str:
    """The cache root (not created here)."""
    base = os.environ.get("MCO_PY_CACHE_DIR")
    if base:
        return base
    xdg = os.environ.get("XDG_CACHE_HOME")
    return os.path.join(xdg if xdg else os.path.expanduser("~/.cache"), "mco-py")


def trusted(st: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_private(path: str, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` when it and its directory are trusted (module docstring)."""
    try:
        if not trusted(os.stat(os.path.dirname(path) or ".")):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not trusted(st) or st.st_size > max_bytes:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
        return data if len(data) <= max_bytes else None
    except OSError:
        return None
    finally:
        os.close(fd)


def write_private(path: str, data: bytes) -> bool:
    """Replace ``path`` with ``data`` atomically (0600; directory 0700); False if not done."""
    directory = os.path.dirname(path) or "."
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not trusted(os.stat(directory)):
            return False
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:  # noqa: BLE001 - a cache is an optimisation only
        return False
    return True
