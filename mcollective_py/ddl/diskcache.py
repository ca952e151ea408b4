"""Parsed DDLs kept on disk between commands, so a command does not import the parser.

Parsing ``rpcutil.ddl`` takes ~5 ms, but importing the tokenizer, parser and DSL rules to
do it takes ~15 ms more: a fifth of a direct ``mco-py rpc rpcutil ping -I node`` (see
``bench/startup.py``).  :func:`load` returns the model a previous command parsed from the
very same bytes, or None; :func:`store` keeps one after a parse.

Where: ``ddl/`` under the cache root (:mod:`mcollective_py.cachefiles`: ``$MCO_PY_CACHE_DIR``,
``$XDG_CACHE_HOME/mco-py`` or ``~/.cache/mco-py``).  ``MCO_PY_DDL_CACHE=off`` turns it off.

Contract:

* An entry's name is a SHA-256 over the DDL file's bytes, its path, kind and plugin name,
  and the size and mtime of every module the parse depends on (this package's parser,
  DSL rules and model): a changed DDL or a changed parser is simply a miss.  Only a
  successful parse is stored; a DDL that fails to parse is parsed (and refused) again.
* Trust: an entry is read only as :func:`mcollective_py.cachefiles.read_private` allows
  (owner-only directory and file, no symlink, at most 1 MiB) and unpickled by a loader that
  builds only the DDL model's own classes, the Ruby stand-in types and ``pathlib`` paths
  (any other global is refused).  Whatever fails, the entry is ignored (logged at debug)
  and the DDL parsed from its file.
* Writes are atomic (:func:`mcollective_py.cachefiles.write_private`); a cache that cannot
  be written (read-only home, full disk) costs only the parse.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
from pathlib import Path
from typing import Any

from mcollective_py import cachefiles
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
    return Path(cachefiles.root()) / "ddl"


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


def load(entry: str) -> DDL | None:
    """The cached model called ``entry``, or None (missing, untrusted or unreadable)."""
    if not enabled():
        return None
    data = cachefiles.read_private(str(directory() / entry), MAX_ENTRY_BYTES)
    if data is None:
        return None
    try:
        model = _ModelUnpickler(io.BytesIO(data)).load()
    except Exception as exc:  # noqa: BLE001 - a bad entry is only a miss
        log.debug("DDL cache: %s unreadable (%s); parsing the file instead", entry, exc)
        return None
    return model if isinstance(model, DDL) else None


def store(entry: str, model: DDL) -> None:
    """Keep ``model`` as ``entry``; never raises (a cache that cannot be written is skipped)."""
    if not enabled():
        return
    try:
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation only
        log.debug("DDL cache: cannot pickle %s (%s)", entry, exc)
        return
    if len(data) <= MAX_ENTRY_BYTES and not cachefiles.write_private(
        str(directory() / entry), data
    ):
        log.debug("DDL cache: cannot store %s in %s", entry, directory())
