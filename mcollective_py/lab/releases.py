"""The lab's release artifacts: tarballs of the demo service, built from ``demoapp/``.

Each release is ``<service>-<version>.tar.gz`` holding the app (``app.py``), its smoke test
and migration (``bin/``), and ``release.json`` (service, version, healthy).  The bytes depend
only on the sources and the version (fixed mtimes and owners), so the SHA-256 written into the
lab's catalog and next to the tarball (``.sha256``, what ``plugin.deploy.checksum_url`` reads)
is stable.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path

DEMOAPP = Path(__file__).resolve().parent / "demoapp"
FILES = (("app.py", 0o644), ("bin/smoke-test", 0o755), ("bin/migrate", 0o755))
MTIME = 1_767_225_600  # 2026-01-01


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, MTIME
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def tarball(service: str, version: str, healthy: bool) -> bytes:
    """The release's .tar.gz bytes (pure: same arguments and sources, same bytes)."""
    release = {"service": service, "version": version, "healthy": healthy}
    if not healthy:
        release["broken"] = "release built broken on purpose (the lab's bad release)"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in FILES:
            _add(tar, name, (DEMOAPP / name).read_bytes(), mode)
        _add(tar, "release.json", (json.dumps(release, indent=2) + "\n").encode(), 0o644)
        _add(tar, "VERSION", f"{version}\n".encode(), 0o644)
    return gzip.compress(raw.getvalue(), mtime=0)


def build(dest: Path, service: str, releases: Mapping[str, bool]) -> dict[str, str]:
    """Write every release (and its ``.sha256``) under ``dest/<service>/``; returns
    version -> SHA-256."""
    out = dest / service
    out.mkdir(parents=True, exist_ok=True)
    sums = {}
    for version, healthy in releases.items():
        data = tarball(service, version, healthy)
        name = f"{service}-{version}.tar.gz"
        digest = hashlib.sha256(data).hexdigest()
        (out / name).write_bytes(data)
        (out / f"{name}.sha256").write_text(f"{digest}  {name}\n")
        sums[version] = digest
    return sums
