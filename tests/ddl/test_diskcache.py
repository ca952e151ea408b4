"""The on-disk DDL cache (ddl/diskcache.py): a hit is the same model as a parse, and
nothing untrusted is ever unpickled."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from mcollective_py.ddl import clear_cache, diskcache, load_ddl_file
from mcollective_py.ddl.dsl import parse_ddl
from mcollective_py.errors import DDLError
from tests.ddl.conftest import REPO

CORE = Path("/usr/lib/ruby/vendor_ruby/mcollective")
DDLS = sorted((REPO / "ddl").glob("*.ddl")) + sorted(CORE.glob("*/*.ddl"))


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("MCO_PY_CACHE_DIR", str(where))
    monkeypatch.delenv("MCO_PY_DDL_CACHE", raising=False)
    clear_cache()
    yield where / "ddl"
    clear_cache()


def _entries(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if not p.name.startswith(".")) if d.exists() else []


def _fresh(path: Path) -> object:
    kind = path.parent.name if path.parent.parent.name == "mcollective" else "agent"
    return parse_ddl(path.read_text(), kind=kind, name=path.stem, filename=str(path), path=path)


@pytest.mark.parametrize("path", DDLS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_cache_hit_is_the_model_a_parse_gives(path: Path, cache_dir: Path) -> None:
    first = load_ddl_file(path)
    assert len(_entries(cache_dir)) == 1
    clear_cache()  # forget the in-process cache: the next load reads the disk entry
    second = load_ddl_file(path)
    assert second == first == _fresh(path)
    assert second is not first


def test_entries_are_private_and_the_directory_too(cache_dir: Path) -> None:
    load_ddl_file(REPO / "ddl" / "haproxy.ddl")
    assert cache_dir.stat().st_mode & 0o777 == 0o700
    (entry,) = _entries(cache_dir)
    assert entry.stat().st_mode & 0o077 == 0


def test_a_changed_ddl_is_a_miss_not_a_stale_hit(tmp_path: Path, cache_dir: Path) -> None:
    ddl = tmp_path / "echo.ddl"
    text = (REPO / "tests" / "agents" / "mcollective" / "agent" / "pyecho.ddl").read_text()
    ddl.write_text(text)
    before = load_ddl_file(ddl)
    clear_cache()
    ddl.write_text(text.replace('"echo"', '"echo2"', 1))
    after = load_ddl_file(ddl)
    assert before != after
    assert len(_entries(cache_dir)) == 2


def test_a_ddl_that_fails_to_parse_is_not_stored(tmp_path: Path, cache_dir: Path) -> None:
    bad = tmp_path / "bad.ddl"
    bad.write_text('metadata :name => "x"\naction "a" do\n')
    for _ in range(2):
        with pytest.raises(DDLError):
            load_ddl_file(bad)
        clear_cache()
    assert _entries(cache_dir) == []


def test_off_switch(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCO_PY_DDL_CACHE", "off")
    load_ddl_file(REPO / "ddl" / "haproxy.ddl")
    assert _entries(cache_dir) == []


def _poison(cache_dir: Path, payload: bytes) -> Path:
    """Load haproxy.ddl once (creating its entry), then overwrite the entry with ``payload``."""
    path = REPO / "ddl" / "haproxy.ddl"
    load_ddl_file(path)
    clear_cache()
    (entry,) = _entries(cache_dir)
    entry.write_bytes(payload)
    return path


def test_a_tampered_entry_is_never_executed(tmp_path: Path, cache_dir: Path) -> None:
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    path = _poison(cache_dir, pickle.dumps(Boom()))
    model = load_ddl_file(path)  # the entry is refused; the file is parsed instead
    assert model == _fresh(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [b"", b"garbage", pickle.dumps({"not": "a DDL"}), pickle.dumps(Path("/etc/passwd"))],
    ids=["empty", "garbage", "dict", "path"],
)
def test_an_entry_that_is_not_a_model_is_a_miss(cache_dir: Path, payload: bytes) -> None:
    path = _poison(cache_dir, payload)
    assert load_ddl_file(path) == _fresh(path)


def test_untrusted_places_are_not_read(tmp_path: Path, cache_dir: Path) -> None:
    path = _poison(cache_dir, pickle.dumps({"x": 1}))
    (entry,) = _entries(cache_dir)
    good = pickle.dumps(_fresh(REPO / "ddl" / "deploy.ddl"))  # a valid model of ANOTHER ddl
    entry.write_bytes(good)
    name = entry.name
    assert diskcache.load(name) is not None  # trusted: read
    os.chmod(entry, 0o666)
    assert diskcache.load(name) is None  # world-writable file
    os.chmod(entry, 0o600)
    os.chmod(cache_dir, 0o777)
    assert diskcache.load(name) is None  # world-writable directory
    os.chmod(cache_dir, 0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(good)
    entry.unlink()
    entry.symlink_to(target)
    assert diskcache.load(name) is None  # a symlink is not followed
    assert load_ddl_file(path) == _fresh(path)


def test_a_direct_call_does_not_import_the_parser_once_the_cache_is_warm(
    cache_dir: Path,
) -> None:
    """What start-up time depends on: with a warm cache, loading a DDL imports neither the
    tokenizer nor the parser (a module-set check, not a timing)."""
    code = (
        "import sys\n"
        "from mcollective_py.ddl import load_agent_ddl\n"
        "load_agent_ddl('rpcutil')\n"
        "print(sorted(m for m in sys.modules if m.startswith('mcollective_py.ddl.')))\n"
    )
    env = dict(os.environ, MCO_PY_CACHE_DIR=str(cache_dir.parent))
    cold = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    warm = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert cold.returncode == warm.returncode == 0, cold.stderr + warm.stderr
    assert "mcollective_py.ddl.parser" in cold.stdout
    assert "mcollective_py.ddl.parser" not in warm.stdout
    assert "mcollective_py.ddl.lexer" not in warm.stdout
