"""Hostile release archives, built by the tests themselves (nothing binary is checked in).

Each builder returns the archive bytes; :data:`CORPUS` names every case with the rule the
extractor must report.  The targets they aim at are ``escaped*`` names one or more levels
above the release directory, which the tests then look for.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from collections.abc import Callable


def _tar(build: Callable[[tarfile.TarFile], None], compress: bool = True) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0) if compress else raw.getvalue()


def _file(tar: tarfile.TarFile, name: str, data: bytes = b"x\n", mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _special(tar: tarfile.TarFile, name: str, kind: bytes, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    if kind == tarfile.DIRTYPE:
        info.mode = 0o755
    tar.addfile(info)


def hardlink_to_symlink_long_path() -> bytes:
    """CVE-2025-4517's shape: a chain of long directory names reached through short symlinks
    (so ``realpath`` gives up past PATH_MAX), a link climbing out from the end of the chain,
    and a hard link whose target is that symlink entry, then a write through the hard link."""

    def build(tar: tarfile.TarFile) -> None:
        comp = "d" * 247
        steps = "abcdefghijklmnop"
        path = ""
        for step in steps:
            _special(tar, f"{path}{comp}", tarfile.DIRTYPE)
            _special(tar, f"{path}{step}", tarfile.SYMTYPE, comp)
            path += f"{comp}/"
        chain = "/".join(steps)
        long_link = f"{chain}/{'l' * 254}"
        _special(tar, long_link, tarfile.SYMTYPE, "../" * len(steps))
        _special(tar, "escape", tarfile.SYMTYPE, f"{long_link}/../..")
        _special(tar, "alias", tarfile.LNKTYPE, "escape")
        _file(tar, "escape/escaped-cve.txt", b"owned\n")

    return _tar(build)


def hardlink_to_symlink() -> bytes:
    """The aliasing part alone: a harmless symlink, a hard link to that *symlink entry*
    (``tarfile`` makes a second symlink the member checks never saw), then a symlink swap."""

    def build(tar: tarfile.TarFile) -> None:
        _file(tar, "VERSION", b"1\n")
        _special(tar, "s", tarfile.SYMTYPE, "VERSION")
        _special(tar, "h", tarfile.LNKTYPE, "s")

    return _tar(build)


def hardlink_outside() -> bytes:
    def build(tar: tarfile.TarFile) -> None:
        _special(tar, "passwd", tarfile.LNKTYPE, "../escaped-hard.txt")

    return _tar(build)


def absolute() -> bytes:
    def build(tar: tarfile.TarFile) -> None:
        _file(tar, "/tmp/escaped-absolute.txt")

    return _tar(build)


def dotdot() -> bytes:
    def build(tar: tarfile.TarFile) -> None:
        _file(tar, "VERSION")
        _file(tar, "sub/../../escaped-dotdot.txt")

    return _tar(build)


def symlink_then_write() -> bytes:
    """A symlink to the parent, then a file written through it."""

    def build(tar: tarfile.TarFile) -> None:
        _special(tar, "up", tarfile.SYMTYPE, "..")
        _file(tar, "up/escaped-through-link.txt")

    return _tar(build)


def symlink_inside_then_write() -> bytes:
    """A symlink that stays inside, then a write through it: still refused (never followed)."""

    def build(tar: tarfile.TarFile) -> None:
        _special(tar, "real", tarfile.DIRTYPE)
        _special(tar, "alias", tarfile.SYMTYPE, "real")
        _file(tar, "alias/file.txt")

    return _tar(build)


def symlink_swapped_later() -> bytes:
    """``b -> a/..`` is inside while ``a`` is a plain name; ``a -> .`` made later turns it out."""

    def build(tar: tarfile.TarFile) -> None:
        _special(tar, "b", tarfile.SYMTYPE, "a/..")
        _special(tar, "a", tarfile.SYMTYPE, ".")

    return _tar(build)


def duplicate_then_link() -> bytes:
    """A file, then the same name again as a symlink out."""

    def build(tar: tarfile.TarFile) -> None:
        _file(tar, "conf")
        _special(tar, "conf", tarfile.SYMTYPE, "/etc/passwd")

    return _tar(build)


def device() -> bytes:
    def build(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("null")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        tar.addfile(info)

    return _tar(build)


def fifo() -> bytes:
    def build(tar: tarfile.TarFile) -> None:
        _special(tar, "pipe", tarfile.FIFOTYPE)

    return _tar(build)


def bomb_tar(size: int = 300 * 1024 * 1024) -> bytes:
    """About 1000:1: ``size`` zero bytes in one member, gzip-compressed."""
    info = tarfile.TarInfo("zeros.bin")
    info.size = size
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    block = bytes(1024 * 1024)
    comp = gzip.GzipFile  # streaming: never holds the whole tar in memory
    out = io.BytesIO()
    with comp(fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(header)
        left = size
        while left:
            n = min(left, len(block))
            gz.write(block[:n])
            left -= n
        gz.write(bytes(1024))  # end-of-archive blocks
    return out.getvalue()


def many_members(count: int = 100_000) -> bytes:
    """``count`` empty files (tar headers only)."""
    info = tarfile.TarInfo("f")
    blocks = io.BytesIO()
    for i in range(count):
        info.name = f"m/{i}"
        blocks.write(info.tobuf(format=tarfile.USTAR_FORMAT))
    blocks.write(bytes(1024))
    return gzip.compress(blocks.getvalue(), compresslevel=1, mtime=0)


def _zip(build: Callable[[zipfile.ZipFile], None]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        build(zf)
    return raw.getvalue()


def _zip_symlink(zf: zipfile.ZipFile, name: str, target: bytes) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16) | 0x20
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, target)


def zip_dotdot() -> bytes:
    return _zip(lambda zf: zf.writestr("../escaped-zip.txt", b"x"))


def zip_absolute() -> bytes:
    return _zip(lambda zf: zf.writestr("/tmp/escaped-zip-abs.txt", b"x"))


def zip_symlink_then_write() -> bytes:
    def build(zf: zipfile.ZipFile) -> None:
        _zip_symlink(zf, "up", b"..")
        zf.writestr("up/escaped-zip-link.txt", b"x")

    return _zip(build)


def zip_bomb(size: int = 300 * 1024 * 1024) -> bytes:
    """About 1000:1 deflate of zeros, written in chunks."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as fh:
            block = bytes(1024 * 1024)
            for _ in range(size // len(block)):
                fh.write(block)
    return raw.getvalue()


def zip_huge_symlink(size: int = 200 * 1024 * 1024) -> bytes:
    """A "symlink" whose target is 200 MB of zeros: reading it whole is the memory bomb."""

    def build(zf: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16) | 0x20
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as fh:
            block = bytes(1024 * 1024)
            for _ in range(size // len(block)):
                fh.write(block)

    return _zip(build)


#: name -> (builder, file suffix, a regex the refusal must match)
CORPUS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "hardlink_to_symlink_long_path": (
        hardlink_to_symlink_long_path,
        ".tar.gz",
        r"archive entry 'd{60}'\.\.\. has a name longer than 1024 bytes",
    ),
    "hardlink_to_symlink": (
        hardlink_to_symlink,
        ".tar.gz",
        r"archive entry 'h' is a hard link to 's', which is not a regular file extracted before it",
    ),
    "hardlink_outside": (
        hardlink_outside,
        ".tar.gz",
        r"archive entry 'passwd' is a hard link to '\.\./escaped-hard\.txt', which is not a regular file",
    ),
    "absolute": (absolute, ".tar.gz", r"archive entry '/tmp/escaped-absolute\.txt' is absolute"),
    "dotdot": (
        dotdot,
        ".tar.gz",
        r"archive entry 'sub/\.\./\.\./escaped-dotdot\.txt' is absolute or has a '\.\.' part",
    ),
    "symlink_then_write": (
        symlink_then_write,
        ".tar.gz",
        r"archive entry 'up' is a symlink to '\.\.', outside the release",
    ),
    "symlink_inside_then_write": (
        symlink_inside_then_write,
        ".tar.gz",
        r"archive entry 'alias/file\.txt' is written through the symlink 'alias'",
    ),
    "symlink_swapped_later": (
        symlink_swapped_later,
        ".tar.gz",
        r"archive entry 'b' is a symlink that resolves outside the release",
    ),
    "duplicate_then_link": (
        duplicate_then_link,
        ".tar.gz",
        r"archive entry 'conf' appears twice in the archive",
    ),
    "device": (device, ".tar.gz", r"archive entry 'null' is a device, fifo or other special file"),
    "fifo": (fifo, ".tar.gz", r"archive entry 'pipe' is a device, fifo or other special file"),
    "bomb_tar": (
        bomb_tar,
        ".tar.gz",
        r"archive entry 'zeros\.bin' takes the unpacked size over \d+ bytes",
    ),
    "many_members": (
        many_members,
        ".tar.gz",
        r"archive has more than 20000 members \(at 'm/20000'; plugin\.deploy\.unpack_max_members\)",
    ),
    "zip_dotdot": (
        zip_dotdot,
        ".zip",
        r"archive entry '\.\./escaped-zip\.txt' is absolute or has a '\.\.' part",
    ),
    "zip_absolute": (
        zip_absolute,
        ".zip",
        r"archive entry '/tmp/escaped-zip-abs\.txt' is absolute",
    ),
    "zip_symlink_then_write": (
        zip_symlink_then_write,
        ".zip",
        r"archive entry 'up' is a symlink to '\.\.', outside the release",
    ),
    "zip_bomb": (
        zip_bomb,
        ".zip",
        r"archive entry 'zeros\.bin' takes the unpacked size over \d+ bytes",
    ),
    "zip_huge_symlink": (
        zip_huge_symlink,
        ".zip",
        r"archive entry 'link' is a symlink with a 209715200-byte target",
    ),
}
