"""Release artifacts: where they come from, downloading (resumable), verifying, unpacking.

* :func:`artifact_url` fills a URL template (``{service}``, ``{version}``).
* Redirects are followed only to the same host and port, never from https to http
  (:func:`redirect_problem`), for artifacts and checksum files alike.
* :func:`download` streams to a ``.part`` file with ``requests``; when the file already
  holds bytes it asks for the rest (HTTP ``Range``) and appends, and starts over when the
  server does not resume.  It never verifies: the caller hashes the complete file
  (:func:`sha256_file`) before anything is unpacked.
* :func:`unpack` extracts ``.tar``/``.tar.gz``/``.tgz``/``.tar.bz2``/``.tar.xz`` and ``.zip``
  archives (detected by content) member by member with :mod:`.extraction`, which never
  follows a link and caps members, bytes, ratio, name length and depth.

Every failure is an :class:`ArtifactError` whose message says what to try; requests'
exceptions do not leave this module.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tarfile
import urllib.parse
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from ..masking import mask_url
from . import extraction

CHUNK = 64 * 1024
USER_AGENT = "mcollective-py deploy"
SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")


class ArtifactError(Exception):
    """An artifact cannot be found, downloaded, verified or unpacked."""


# --------------------------------------------------------------------------- URLs


def artifact_url(template: str, service: str, version: str) -> str:
    """``template`` with ``{service}`` and ``{version}`` filled in; ValueError for any other
    placeholder or a result that is not an http(s) URL."""
    url = template.replace("{service}", service).replace("{version}", version)
    unknown = re.findall(r"\{[^{}]*\}", url)
    if unknown:
        raise ValueError(
            f"URL template {template!r} has unknown placeholder {unknown[0]}; use {{service}} and {{version}}"
        )
    if not re.match(r"\Ahttps?://[^\s]+\Z", url):
        raise ValueError(f"URL template {template!r} does not give an http(s) URL: {url!r}")
    return url


def parse_checksum(text: str) -> str:
    """The SHA-256 in a checksum file (``<hex>`` or ``<hex>  name``); ValueError if none."""
    first = text.strip().split()[0].lower() if text.strip() else ""
    if not SHA256_RE.match(first):
        raise ValueError(f"no SHA-256 at the start of {text.strip()[:80]!r}")
    return first


# --------------------------------------------------------------------------- download


@dataclass(frozen=True)
class Download:
    """What :func:`download` did."""

    url: str
    path: Path
    size: int  # bytes in the file now
    resumed_from: int  # bytes that were already there and kept (0: from the start)


def _content_range_start(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/200`` -> (100, 200); ``bytes */200`` -> (None, 200)."""
    m = re.match(r"\Abytes (?:(\d+)-\d+|\*)/(\d+|\*)\Z", (value or "").strip())
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


#: Redirects followed for one download or checksum file.
MAX_REDIRECTS = 5


def redirect_problem(current: str, target: str) -> str | None:
    """None if a download may follow a redirect from ``current`` to ``target``, else why not:
    only to the same host and port (or from http to https on their default ports), and never
    from https to plain http (pure)."""
    a, b = urllib.parse.urlsplit(current), urllib.parse.urlsplit(target)
    if b.scheme not in ("http", "https"):
        return f"{mask_url(current)} redirects to {mask_url(target)!r}, which is not http(s)"
    if a.scheme == "https" and b.scheme == "http":
        return f"{mask_url(current)} redirects from https to plain http ({mask_url(target)})"
    default = {"http": 80, "https": 443}
    try:
        ports = (a.port or default[a.scheme], b.port or default[b.scheme])
        upgrade = a.scheme == "http" and b.scheme == "https" and ports == (80, 443)
        same = a.hostname == b.hostname and (ports[0] == ports[1] or upgrade)
    except (KeyError, ValueError):
        same = False
    if not same:
        return f"{mask_url(current)} redirects to another host ({mask_url(target)})"
    if b.username is not None or "@" in b.netloc:
        return f"{mask_url(current)} redirects to a URL with user-info"
    return None


def _get(url: str, *, headers: dict[str, str], timeout: float) -> requests.Response:
    """GET ``url`` streaming, following at most :data:`MAX_REDIRECTS` redirects that pass
    :func:`redirect_problem`; ArtifactError for one that does not.  The caller closes the
    response."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        resp = requests.get(
            current, headers=headers, stream=True, timeout=timeout, allow_redirects=False
        )
        if not resp.is_redirect:
            return resp
        target = urllib.parse.urljoin(current, resp.headers.get("Location", ""))
        resp.close()
        problem = redirect_problem(current, target)
        if problem is not None:
            raise ArtifactError(f"refusing to follow a redirect: {problem}")
        current = target
    raise ArtifactError(f"{mask_url(url)} redirects more than {MAX_REDIRECTS} times")


def download(
    url: str,
    part: Path,
    *,
    timeout: float,
    on_chunk: Callable[[int], None] | None = None,
) -> Download:
    """Fetch ``url`` into ``part``, resuming what is already there. Raises ArtifactError.

    ``timeout`` bounds connecting and each read (not the whole transfer).  ``on_chunk`` is
    called with the byte count after every chunk written.
    """
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with _get(url, headers=headers, timeout=timeout) as resp:
            if have and resp.status_code == 416:
                _, total = _content_range_start(resp.headers.get("Content-Range"))
                if total == have:  # already complete
                    return Download(url, part, have, have)
                part.unlink()
                return download(url, part, timeout=timeout, on_chunk=on_chunk)
            if have and resp.status_code == 206:
                start, _ = _content_range_start(resp.headers.get("Content-Range"))
                if start != have:
                    part.unlink()
                    return download(url, part, timeout=timeout, on_chunk=on_chunk)
                mode, kept = "ab", have
            elif resp.status_code == 200:
                mode, kept = "wb", 0
            elif resp.status_code == 404:
                raise ArtifactError(
                    f"no artifact at {url} (HTTP 404); check the version and plugin.deploy.artifact_url"
                )
            else:
                raise ArtifactError(f"GET {url} answered HTTP {resp.status_code} {resp.reason}")
            expected = resp.headers.get("Content-Length")
            written = 0
            try:
                with open(part, mode) as out:
                    for chunk in resp.iter_content(CHUNK):
                        out.write(chunk)
                        written += len(chunk)
                        if on_chunk is not None:
                            on_chunk(kept + written)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:
                part.unlink(missing_ok=True)
                raise ArtifactError(
                    f"cannot write the download of {url} to {part.parent}: "
                    f"{exc.strerror or exc} after {kept + written} bytes"
                    f"{_DISK_HINTS.get(exc.errno or 0, '')}; the partial file was deleted"
                ) from None
    except requests.RequestException as exc:
        raise ArtifactError(
            f"download of {url} failed: {_reason(exc)}; {part.stat().st_size if part.exists() else 0} bytes "
            "are kept, and the next fetch resumes from there"
        ) from None
    if expected is not None and expected.isdigit() and written != int(expected):
        raise ArtifactError(
            f"download of {url} ended after {written} of {expected} bytes; the next fetch resumes"
        )
    return Download(url, part, kept + written, kept)


_DISK_HINTS = {
    errno.ENOSPC: " (the disk is full: free space or move plugin.deploy.root)",
    errno.EFBIG: " (over the file size limit of the daemon: check its ulimit -f)",
    errno.EDQUOT: " (over the disk quota of the daemon's user)",
}


def fetch_text(url: str, *, timeout: float, limit: int = 4096) -> str:
    """A small text document (a checksum file). Raises ArtifactError."""
    try:
        with _get(url, headers={"User-Agent": USER_AGENT}, timeout=timeout) as resp:
            if resp.status_code != 200:
                raise ArtifactError(f"GET {url} answered HTTP {resp.status_code}")
            return (resp.raw.read(limit, decode_content=True) or b"").decode(
                "utf-8", errors="replace"
            )
    except requests.RequestException as exc:
        raise ArtifactError(f"GET {url} failed: {_reason(exc)}") from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _reason(exc: BaseException) -> str:
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return m.group(1) if m else text[:200]


# --------------------------------------------------------------------------- unpacking


def unpack(archive: Path, dest: Path, limits: extraction.Limits | None = None) -> int:
    """Extract ``archive`` (tar family or zip) into the existing directory ``dest`` member by
    member (:func:`.extraction.extract`: no link is ever followed, caps in ``limits``).
    Returns the number of entries. Raises ArtifactError for an unsafe or unreadable one; the
    caller removes ``dest``."""
    try:
        return extraction.extract(archive, dest, limits or extraction.Limits())
    except ValueError as exc:
        raise ArtifactError(f"refusing to unpack {archive.name}: {exc}") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"cannot unpack {archive.name}: {exc}") from None
    except OSError as exc:
        raise ArtifactError(
            f"cannot unpack {archive.name}: {exc.strerror or exc}"
            + ("; the disk is full" if exc.errno == errno.ENOSPC else "")
        ) from None
