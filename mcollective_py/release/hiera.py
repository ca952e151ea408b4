"""Per-release Hiera data: render it from the catalog, compare it with what is on disk, write it.

One release of one service in one environment becomes (paths relative to the Hiera datadir):

* ``releases/<service>/<env>.yaml``: the ``app_release::*`` class parameters of the release
  (version, artifact URL, SHA-256, health URL, service manager, nodes);
* ``pools/<env>/<service>.yaml``: the service's HAProxy pool for ``haproxy_pools::services``
  (only for a load-balanced service; it does not depend on the version).

Rendering is pure and byte-stable: the same catalog, service, version and environment always
give the same bytes (sorted nodes, no timestamps, no paths of the machine).  Writing is atomic
per file: a temporary file in the same directory, fsync, rename; on any failure the old files
stay as they were and no temporary file is left behind.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jinja2
import yaml

from ..errors import ConfigError, UsageError
from .catalog import Catalog

RELEASE_PATH = "releases/{service}/{env}.yaml"
POOL_PATH = "pools/{env}/{service}.yaml"


def _quote(value: object) -> str:
    """A YAML double-quoted scalar that Hiera will not interpolate (``%{`` is escaped)."""
    text = json.dumps(str(value), ensure_ascii=True)
    return text.replace("%{", "%{literal('%')}{")


@functools.cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(  # YAML, not HTML: no autoescaping
        loader=jinja2.PackageLoader("mcollective_py.release", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["q"] = _quote
    return env


def render_release(catalog: Catalog, service: str, version: str, env: str) -> dict[str, str]:
    """The Hiera data files of ``version`` of ``service`` in ``env``: relative path -> text.

    Raises UsageError for an unknown service, environment or version, a malformed version, or
    a version the catalog does not allow in ``env``; nothing is rendered then.
    """
    catalog.environment(env)
    svc = catalog.service(service)
    release = svc.release(version, env)
    placement = svc.placement(env)
    t = _templates()
    local = svc.health.url("127.0.0.1", svc.port)
    files = {
        RELEASE_PATH.format(service=svc.name, env=env): t.get_template("release.yaml.j2").render(
            service=svc,
            release=release,
            env=env,
            placement=placement,
            artifact_url=svc.artifact_url(version),
            manager=svc.manager_in(env),
            health_url=local,
        )
    }
    if svc.lb is not None and placement.frontend is not None:
        host, port = placement.frontend
        frontend = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        files[POOL_PATH.format(service=svc.name, env=env)] = t.get_template("pool.yaml.j2").render(
            service=svc, env=env, placement=placement, frontend=frontend, check=svc.health
        )
    return files


def data_dir(hiera_dir: str | Path) -> Path:
    """The datadir of the Hiera 5 config in ``hiera_dir`` (``defaults.datadir``, else ``data``).

    Raises UsageError if ``hiera_dir`` holds no hiera.yaml, ConfigError if it is not Hiera 5.
    """
    config = Path(hiera_dir) / "hiera.yaml"
    try:
        doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"no hiera.yaml in {str(hiera_dir)!r}; point --hiera-dir at the directory that holds "
            "hiera.yaml (the repository's hiera/)"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {config}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != 5:
        raise ConfigError(f"{config} is not a Hiera 5 config (version: 5)")
    defaults = doc.get("defaults") or {}
    datadir = defaults.get("datadir", "data") if isinstance(defaults, dict) else "data"
    if not isinstance(datadir, str) or not datadir:
        raise ConfigError(f"{config}: defaults.datadir must be a directory name")
    return Path(hiera_dir) / datadir


@dataclass(frozen=True)
class FileChange:
    """What writing ``new`` to ``path`` would do; ``old`` is None when the file does not exist."""

    path: Path
    old: str | None
    new: str

    @property
    def status(self) -> Literal["new", "changed", "unchanged"]:
        if self.old is None:
            return "new"
        return "unchanged" if self.old == self.new else "changed"

    def diff(self) -> str:
        """A unified diff from the file on disk to the rendered text ('' when unchanged)."""
        old = [] if self.old is None else self.old.splitlines(keepends=True)
        lines = difflib.unified_diff(
            old,
            self.new.splitlines(keepends=True),
            fromfile="/dev/null" if self.old is None else f"a/{self.path}",
            tofile=f"b/{self.path}",
        )
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in lines
        )


def plan_writes(root: str | Path, files: Mapping[str, str]) -> list[FileChange]:
    """Compare rendered ``files`` (relative paths) with what is under ``root``, in path order.

    Raises ConfigError if an existing file cannot be read.
    """
    changes = []
    for rel in sorted(files):
        path = Path(root) / rel
        try:
            old: str | None = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        changes.append(FileChange(path=path, old=old, new=files[rel]))
    return changes


def write_files(changes: Iterable[FileChange]) -> list[FileChange]:
    """Write every new or changed file atomically; returns the ones written.

    All temporary files are written and fsynced before the first rename, so a failure while
    writing changes nothing on disk.  Raises ConfigError (with the path) on an OS error.
    """
    todo = [c for c in changes if c.status != "unchanged"]
    staged: list[tuple[str, Path]] = []
    target = Path()
    try:
        for c in todo:
            target = c.path
            staged.append((_stage(c.path, c.new), c.path))
        for tmp, path in staged:
            target = path
            os.replace(tmp, path)
            _fsync_dir(path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return todo


def write_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temp file in the same directory, fsync, rename)."""
    p = Path(path)
    write_files([FileChange(path=p, old=None, new=text)])


def _stage(path: Path, text: str) -> str:
    """Write ``text`` to a fsynced temporary file next to ``path``; returns its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
