"""Finding and loading DDL files, with a cache.

Search order for ``find_ddl(name, kind, libdirs)`` (Ruby searches its libdirs, then the
rest of ``$LOAD_PATH``, which on Debian holds the core plugins):

1. ``<libdir>/mcollective/<kind>/<name>.ddl`` for each libdir, in order;
2. the Debian core plugin dir ``/usr/lib/ruby/vendor_ruby/mcollective/<kind>/``;
3. for agents, this project's own ``ddl/`` directory (``ddl/<name>.ddl`` at the
   repository root: haproxy, healthcheck, deploy).

Like ``mco plugin doc``, a name is tried as given and then with ``_<kind>`` appended
(``data/fstat`` finds ``fstat_data.ddl``).  Loaded DDLs are cached per file and reloaded
when the file's size or modification time changes; between commands, parsed DDLs are kept
on disk by :mod:`.diskcache` (keyed by the file's bytes), and the parser is imported only
when a DDL really has to be parsed.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from mcollective_py.ddl import diskcache
from mcollective_py.ddl.model import DDL, AgentDDL
from mcollective_py.errors import DDLError

__all__ = [
    "CORE_LIBDIR",
    "PROJECT_DDL_DIR",
    "clear_cache",
    "find_ddl",
    "load_agent_ddl",
    "load_ddl",
    "load_ddl_file",
    "search_path",
]

#: Debian's Ruby library dir; core plugins live in ``<it>/mcollective/<kind>/``.
CORE_LIBDIR = Path("/usr/lib/ruby/vendor_ruby")

#: This project's agent DDLs: ``ddl/`` at the repository root in a checkout or editable
#: install, else where the package installs them (``<prefix>/share/mcollective-py/ddl``).
_CHECKOUT_DDL_DIR = Path(__file__).resolve().parents[2] / "ddl"
PROJECT_DDL_DIR = (
    _CHECKOUT_DDL_DIR
    if (_CHECKOUT_DDL_DIR / "rpcutil.ddl").is_file()
    else Path(sys.prefix) / "share" / "mcollective-py" / "ddl"
)

_NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_KIND = re.compile(r"\A[a-z][a-z_]*\Z")
_CACHE: dict[tuple[str, str, str], tuple[int, int, DDL]] = {}
_LOCK = threading.Lock()


def search_path(
    kind: str = "agent",
    libdirs: Sequence[str | Path] = (),
    *,
    core_libdir: Path | None = CORE_LIBDIR,
    project_dir: Path | None = PROJECT_DDL_DIR,
) -> list[Path]:
    """The directories searched for ``kind`` DDLs, in order (existing or not)."""
    dirs = [Path(d) / "mcollective" / kind for d in libdirs]
    if core_libdir is not None:
        dirs.append(core_libdir / "mcollective" / kind)
    if kind == "agent" and project_dir is not None:
        dirs.append(project_dir)
    return dirs


def find_ddl(
    name: str,
    kind: str = "agent",
    libdirs: Sequence[str | Path] = (),
    *,
    core_libdir: Path | None = CORE_LIBDIR,
    project_dir: Path | None = PROJECT_DDL_DIR,
) -> Path:
    """Path of the DDL for plugin ``name`` of ``kind`` (``agent``, ``data``, ...).

    Raises :class:`~mcollective_py.errors.DDLError` naming every place it looked when
    there is none, or when ``name``/``kind`` are not plain plugin names.
    """
    if not _KIND.match(kind):
        raise DDLError(f"invalid plugin kind {kind!r}; use e.g. agent, data, discovery, validator")
    if not _NAME.match(name):
        raise DDLError(f"invalid {kind} name {name!r}; names use letters, digits, '_', '-' and '.'")
    dirs = search_path(kind, libdirs, core_libdir=core_libdir, project_dir=project_dir)
    candidates = [name] if name.endswith(f"_{kind}") else [name, f"{name}_{kind}"]
    for candidate in candidates:
        for directory in dirs:
            path = directory / f"{candidate}.ddl"
            if path.is_file():
                return path
    looked = ", ".join(str(d / f"{name}.ddl") for d in dirs)
    raise DDLError(
        f"no DDL found for {kind} '{name}'; looked in: {looked}. "
        f"Install the {kind}'s DDL in one of them or add its libdir (libdir = ... in the config)"
    )


def load_ddl_file(path: str | Path, *, kind: str | None = None, name: str | None = None) -> DDL:
    """Parse the DDL file at ``path`` (cached until the file changes).

    ``kind`` defaults to the parent directory's name when the file sits in
    ``.../mcollective/<kind>/``, else ``agent``; ``name`` to the file's stem.
    Raises :class:`~mcollective_py.errors.DDLError` if it cannot be read or parsed.
    """
    path = Path(path)
    if kind is None:
        parent = path.parent
        kind = parent.name if parent.parent.name == "mcollective" else "agent"
    plugin = name if name is not None else path.stem
    try:
        stat = path.stat()
    except OSError as exc:
        raise DDLError(f"cannot read DDL {path}: {exc.strerror or exc}") from None
    key = (str(path.resolve()), kind, plugin)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return cached[2]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DDLError(f"cannot read DDL {path}: {exc.strerror or exc}") from None
    entry = diskcache.key(data, str(path), kind, plugin)
    ddl = diskcache.load(entry)
    if ddl is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DDLError(
                f"{path}: not UTF-8 text (byte {exc.start}); save the DDL as UTF-8"
            ) from None
        from mcollective_py.ddl.dsl import parse_ddl

        ddl = parse_ddl(text, kind=kind, name=plugin, filename=str(path), path=path)
        diskcache.store(entry, ddl)
    with _LOCK:
        _CACHE[key] = (stat.st_mtime_ns, stat.st_size, ddl)
    return ddl


def load_ddl(
    name: str,
    kind: str = "agent",
    libdirs: Sequence[str | Path] = (),
    *,
    core_libdir: Path | None = CORE_LIBDIR,
    project_dir: Path | None = PROJECT_DDL_DIR,
) -> DDL:
    """:func:`find_ddl` then :func:`load_ddl_file` (cached)."""
    path = find_ddl(name, kind, libdirs, core_libdir=core_libdir, project_dir=project_dir)
    return load_ddl_file(path, kind=kind)


def load_agent_ddl(
    name: str,
    libdirs: Sequence[str | Path] = (),
    *,
    core_libdir: Path | None = CORE_LIBDIR,
    project_dir: Path | None = PROJECT_DDL_DIR,
) -> AgentDDL:
    """The agent DDL for ``name`` (see :func:`load_ddl`)."""
    ddl = load_ddl(name, "agent", libdirs, core_libdir=core_libdir, project_dir=project_dir)
    if not isinstance(ddl, AgentDDL):  # pragma: no cover - kind "agent" always builds one
        raise DDLError(f"{ddl.path}: not an agent DDL")
    return ddl


def clear_cache() -> None:
    """Forget every cached DDL."""
    with _LOCK:
        _CACHE.clear()
