"""cli/codecache.py: the dataclasses' generated code, compiled once and reused by later runs
(the same classes either way; untrusted tables are never used)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcollective_py.cli import codecache

# A child process that runs as "mco-py rpc ..." would: the CLI package first, then a
# module full of dataclasses; it prints how many texts it had to compile and a few facts
# about the classes it got.
CHILD = """
import json, sys
sys.argv = ["mco-py", "rpc", "rpcutil", "ping"]
import dataclasses
import mcollective_py.cli
from mcollective_py.cli import codecache
from mcollective_py import results, exchange
from mcollective_py.filter.model import Filter

@dataclasses.dataclass(frozen=True)
class Foreign:  # not the package's: never cached
    x: int

f = Filter(identity=("a",))
try:
    f.identity = ()
    frozen = False
except dataclasses.FrozenInstanceError:
    frozen = True
print(json.dumps({
    "installed": getattr(dataclasses, "exec", None) is codecache._exec,
    "compiled": codecache._added,
    "table": len(codecache._table),
    "eq": f == Filter(identity=("a",)) and f != Filter(identity=("b",)),
    "repr": repr(f).startswith("Filter(identity=('a',)"),
    "hash": hash(f) == hash(Filter(identity=("a",))),
    "frozen": frozen,
    "foreign": Foreign(1) == Foreign(1) and repr(Foreign(2)) == "Foreign(x=2)",
    "path": codecache._path,
}))
"""


def _child(cache: Path, **env: str) -> dict[str, object]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MCO_PY_")}
    full.update(MCO_PY_CACHE_DIR=str(cache), **env)
    r = subprocess.run(
        [sys.executable, "-c", CHILD], env=full, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


SAME = {"eq": True, "repr": True, "hash": True, "frozen": True, "foreign": True}


def _table(cache: Path) -> Path:
    (found,) = (cache / "code").glob("dataclasses-*-rpc.marshal")
    return found


def test_a_second_run_compiles_nothing_and_gets_the_same_classes(tmp_path: Path) -> None:
    first = _child(tmp_path)
    assert first["installed"] is True and first["compiled"] > 50
    assert {k: first[k] for k in SAME} == SAME
    table = _table(tmp_path)
    assert table.stat().st_mode & 0o077 == 0 and table.parent.stat().st_mode & 0o777 == 0o700
    second = _child(tmp_path)
    assert second["compiled"] == 0 and second["table"] == first["table"]
    assert {k: second[k] for k in SAME} == SAME


def test_only_the_package_dataclasses_are_kept(tmp_path: Path) -> None:
    _child(tmp_path)
    import marshal

    table = marshal.loads(_table(tmp_path).read_bytes())
    assert not any("Foreign" in text or "self.x=x" in text for text in table)


@pytest.mark.parametrize(
    "spoil",
    ["world-writable", "garbage", "not-a-dict", "wrong-values", "symlink"],
)
def test_an_untrusted_or_broken_table_is_not_used(tmp_path: Path, spoil: str) -> None:
    _child(tmp_path)
    table = _table(tmp_path)
    if spoil == "world-writable":
        os.chmod(table, 0o666)
    elif spoil == "garbage":
        table.write_bytes(b"\x00garbage")
    elif spoil == "not-a-dict":
        import marshal

        table.write_bytes(marshal.dumps(["x"]))
    elif spoil == "wrong-values":
        import marshal

        table.write_bytes(marshal.dumps({"def f(): pass": "not code"}))
    else:
        other = tmp_path / "other.marshal"
        other.write_bytes(table.read_bytes())
        table.unlink()
        table.symlink_to(other)
    got = _child(tmp_path)
    assert got["compiled"] > 50  # nothing was taken from the table
    assert {k: got[k] for k in SAME} == SAME


def test_not_installed_outside_the_cli() -> None:
    """This very test process is pytest, not mco-py: it must not have the cache."""
    import dataclasses

    assert getattr(dataclasses, "exec", None) is not codecache._exec
    assert codecache.install() is False


def test_off_switch_leaves_dataclasses_alone(tmp_path: Path) -> None:
    got = _child(tmp_path, MCO_PY_CODE_CACHE="off")
    assert got["installed"] is False and {k: got[k] for k in SAME} == SAME
    assert not (tmp_path / "code").exists()


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["mco-py", "rpc", "x"], "rpc"),
        (["mco-py", "-c", "x.cfg", "ping"], "other"),  # an option value: harmless, own table
        (["mco-py", "--debug", "ping"], "ping"),
        (["mco-py"], "other"),
        (["mco-py", "../../etc"], "other"),
        (["mco-py", "A" * 40], "other"),
        (["/x/bin/mco-py", "find"], "find"),
        (["/x/mcollective_py/__main__.py", "find"], "find"),
        (["/x/bin/pytest", "tests"], ""),
        (["/x/pytest/__main__.py", "tests"], ""),
        ([], ""),
    ],
)
def test_one_table_per_subcommand_with_a_safe_name(argv: list[str], command: str) -> None:
    assert codecache._command(argv) == command
