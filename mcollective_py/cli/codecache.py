"""The code ``dataclasses`` generates, compiled once and kept between ``mco-py`` runs.

Every ``@dataclass`` builds its ``__init__``, ``__repr__``, ``__eq__`` (and for frozen ones
``__setattr__``, ``__delattr__``, ``__hash__``) as source text and compiles each with
``exec``.  A direct ``mco-py rpc ... -I node`` defines ~45 dataclasses before it sends
anything, and compiling their methods is about a tenth of its start-up (bench/startup.py).
The text is the same on every run, so :func:`install` gives the ``dataclasses`` module an
``exec`` that looks the text up in a table of code objects compiled by an earlier run and
compiles only what is new; :func:`save` (at exit) writes the table back when it grew.
Nothing else changes: the same text, compiled the same way, runs in the same namespaces.

Only for this package's own dataclasses, one table per ``mco-py`` subcommand (what one
command defines, nothing more), only in the CLI process (``cli/__init__.py`` installs it,
so library users never get it),
only on the Python versions whose ``dataclasses`` was read (:data:`VERSIONS`: one
``exec(text, globals, ns)`` per generated method), and never when ``MCO_PY_CODE_CACHE=off``.

Trust: the table holds code that will run, so it gets the same protection as Python's own
``__pycache__``, and more: it is read only as :func:`mcollective_py.cachefiles.read_private`
allows (a directory and file owned by this user and writable by nobody else, no symlink),
at most 2 MiB, holds only ``str`` to code-object entries, and is named after the
interpreter's bytecode magic number (another Python never reads it).  Whatever goes wrong
(missing, unreadable, foreign, corrupt), the text is compiled as ``dataclasses`` would.
"""

from __future__ import annotations

import atexit
import builtins
import importlib.util
import marshal
import os
import re
import sys
from typing import Any

from .. import cachefiles

#: Python versions whose dataclasses module calls ``exec(text, globals, ns)`` per method
VERSIONS = ((3, 11), (3, 12))
MAX_BYTES = 2 << 20
MAX_ENTRIES = 4000

_PACKAGE = "mcollective_py."
_COMMAND = re.compile(r"\A[a-z][a-z0-9_-]{0,30}\Z")

_table: dict[str, Any] = {}
_added = 0
_path = ""


def _command(argv: list[str]) -> str:
    """The ``mco-py`` subcommand this process runs (``rpc``, ``ping``...), or ``other``:
    each keeps its own table, so a table holds what one command defines and no more.
    ``""`` when the process is not ``mco-py`` (``python -m mcollective_py`` counts), e.g. a
    test runner or a program using the package: those get no cache."""
    prog = argv[0] if argv else ""
    main = os.path.join("mcollective_py", "__main__.py")
    if os.path.basename(prog) != "mco-py" and not prog.endswith(main):
        return ""
    for arg in argv[1:]:
        if not arg.startswith("-"):
            return arg if _COMMAND.match(arg) else "other"
    return "other"


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:  # noqa: A002
    """``exec`` for the dataclasses module: text it generated before runs precompiled
    (only for this package's dataclasses: ``globals`` is the defining module's namespace)."""
    global _added
    if isinstance(source, str) and str((globals or {}).get("__name__", "")).startswith(_PACKAGE):
        code = _table.get(source)
        if code is None:
            code = compile(source, "<string>", "exec")
            if len(_table) < MAX_ENTRIES:
                _table[source] = code
                _added += 1
        source = code
    builtins.exec(source, globals, locals)  # noqa: S102 - what dataclasses itself runs


def _load(path: str) -> dict[str, Any]:
    data = cachefiles.read_private(path, MAX_BYTES)
    if data is None:
        return {}
    try:
        table = marshal.loads(data)
    except Exception:  # noqa: BLE001 - a bad table is only a miss
        return {}
    if not isinstance(table, dict):
        return {}
    code_type = type(_load.__code__)
    return {k: v for k, v in table.items() if isinstance(k, str) and isinstance(v, code_type)}


def save() -> None:
    """Write the table back if this run compiled anything new; never raises."""
    if _added and _path:
        try:
            data = marshal.dumps(_table)
        except Exception:  # noqa: BLE001 - the cache is an optimisation only
            return
        cachefiles.write_private(_path, data)


def install() -> bool:
    """Give ``dataclasses`` the caching ``exec``; False (nothing done) where it does not
    apply.  Must run before the package's dataclasses are defined to help them."""
    global _table, _path
    if sys.version_info[:2] not in VERSIONS:
        return False
    if os.environ.get("MCO_PY_CODE_CACHE", "on").lower() in ("off", "0", "no", "false"):
        return False
    command = _command(sys.argv)
    if not command:
        return False
    import dataclasses

    if getattr(dataclasses, "exec", builtins.exec) is not builtins.exec:
        return getattr(dataclasses, "exec", None) is _exec
    magic = importlib.util.MAGIC_NUMBER.hex()
    name = f"dataclasses-{magic}-{command}.marshal"
    _path = os.path.join(cachefiles.root(), "code", name)
    _table = _load(_path)
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    atexit.register(save)
    return True
