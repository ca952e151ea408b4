"""Parsed DDLs kept on disk between commands, so a command does not import the parser.

Parsing ``rpcutil.ddl`` takes ~5 ms, but importing the tokenizer, parser and DSL rules to
do it takes ~15 ms more: a fifth of a direct ``mco-py rpc rpcutil ping -I node`` (see
``bench/startup.py``).  :func:`load` returns the model a previous command parsed from the
very same bytes, or None; :func:`store` keeps one after a parse.

Where: ``$MCO_PY_CACHE_DIR/ddl``, else ``$XDG_CACHE_HOME/mco-py/ddl``, else
``~/.cache/mco-py/ddl``.  ``MCO_PY_DDL_CACHE=off`` turns it off.

Contract:

* An entry's name is a SHA-256 over the DDL file's bytes, its path, kind and plugin name,
  and the size and mtime of every module the parse depends on (this package's parser,
  DSL rules and model): a changed DDL or a changed parser is simply a miss.  Only a
  successful parse is stored; a DDL that fails to parse is parsed (and refused) again.
* Trust: an entry is read only from a directory and a file owned by this user and not
  writable by group or others (opened without following a symlink), at most 1 MiB, and
  unpickled by a loader that builds only the DDL model's own classes, the Ruby stand-in
  types and ``pathlib`` paths (any other global is refused).  Whatever fails, the entry is
  ignored (logged at debug) and the DDL parsed from its file.
* Writes go to a temporary file in the same directory, then ``os.replace``: readers
  never see half an entry.  A cache that cannot be written (read-only home, full disk)
  costs only the parse.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import stat
import tempfile
from pathlib import Path
from typing import Any

from mcollective_py.ddl.model import DDL

log = logging.getLogger(__name__)

#: entries larger than this are not read (the biggest DDL we know pickles to ~20 KB)
MAX_ENTRY_BYTES = 1 << 20
#: modules whose classes an entry may hold (checked in :class:`_ModelUnpickler`)
_ALLOWED_MODULES = (
    "mcollective_py.ddl.model",
    "mcollective_py.rubytypes",
    "mcollective_py.ruby.values",
)
_ALLOWED_GLOBALS = {
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePosixPath"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("collections", "OrderedDict"),
}
#: the modules a parse depends on (their size and mtime are part of every key)
_PARSER_MODULES = ("dsl", "parser", "lexer", "rubycore", "model", "loader", "diskcache")

_fingerprint: bytes | None = None


def enabled() -> bool:
    return os.environ.get("MCO_PY_DDL_CACHE", "on").lower() not in ("off", "0", "no", "false")


def directory() -> Path:
    """Where entries live (not created here)."""
    base = os.environ.get("MCO_PY_CACHE_DIR")
    if base:
        return Path(base) / "ddl"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "mco-py" / "ddl"


def _parser_fingerprint() -> bytes:
    global _fingerprint
    if _fingerprint is None:
        here = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for name in _PARSER_MODULES + ("../rubytypes", "../ruby/values"):
            try:
                st = os.stat(here / f"{name}.py")
                h.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
            except OSError:
                h.update(f"{name}:missing;".encode())
        _fingerprint = h.digest()
    return _fingerprint


def key(data: bytes, path: str, kind: str, plugin: str) -> str:
    """The entry name for a DDL file's bytes read from ``path`` as ``kind``/``plugin``."""
    h = hashlib.sha256(_parser_fingerprint())
    for part in (path, kind, plugin):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    h.update(data)
    return h.hexdigest()


class _ModelUnpickler(pickle.Unpickler):
    """Builds only the DDL model's classes and plain values."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS or module in _ALLOWED_MODULES:
            found = super().find_class(module, name)
            if (module, name) in _ALLOWED_GLOBALS or (
                isinstance(found, type) and found.__module__ == module
            ):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a DDL model")


def _trusted(st: os.stat_result, what: str) -> bool:
    if st.st_uid != os.geteuid():
        log.debug("DDL cache: %s is not owned by uid %d; ignored", what, os.geteuid())
        return False
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        log.debug("DDL cache: %s is writable by group or others; ignored", what)
        return False
    return True


def load(entry: str) -> DDL | None:
    """The cached model called ``entry``, or None (missing, untrusted or unreadable)."""
    if not enabled():
        return None
    where = directory()
    try:
        if not _trusted(os.stat(where), str(where)):
            return None
        fd = os.open(where / entry, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _trusted(st, entry):
            return None
        if st.st_size > MAX_ENTRY_BYTES:
            log.debug("DDL cache: %s is %d bytes; ignored", entry, st.st_size)
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_ENTRY_BYTES + 1)
        model = _ModelUnpickler(io.BytesIO(data)).load()
    except Exception as exc:  # noqa: BLE001 - a bad entry is only a miss
        log.debug("DDL cache: %s unreadable (%s); parsing the file instead", entry, exc)
        return None
    finally:
        os.close(fd)
    return model if isinstance(model, DDL) else None


def store(entry: str, model: DDL) -> None:
    """Keep ``model`` as ``entry``; never raises (a cache that cannot be written is skipped)."""
    if not enabled():
        return
    where = directory()
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(os.stat(where), str(where)):
            return
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) > MAX_ENTRY_BYTES:
            return
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, where / entry)
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation only
        log.debug("DDL cache: cannot store %s in %s (%s)", entry, where, exc)
