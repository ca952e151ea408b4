"""Finding DDL files along libdirs, the Debian core dir and ddl/, and the loader cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcollective_py.ddl import (
    AgentDDL,
    DataDDL,
    clear_cache,
    find_ddl,
    load_agent_ddl,
    load_ddl,
    load_ddl_file,
    search_path,
)
from mcollective_py.ddl.loader import CORE_LIBDIR, PROJECT_DDL_DIR
from mcollective_py.errors import DDLError
from tests.ddl.conftest import REPO

MINIMAL = (
    'metadata :name => "{name}", :description => "{text}", :author => "a", :license => "l",\n'
    '         :version => "1.0", :url => "u", :timeout => 5\n'
    'action "ping", :description => "p" do\nend\n'
)


def _write(root: Path, kind: str, name: str, text: str = "") -> Path:
    path = root / "mcollective" / kind / f"{name}.ddl"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = MINIMAL.format(name=name, text=text or str(root))
    if kind != "agent":
        body = body.split("action")[0]
    path.write_text(body)
    return path


def test_project_ddl_dir_is_the_repository_ddl_dir() -> None:
    assert PROJECT_DDL_DIR == REPO / "ddl"
    assert CORE_LIBDIR == Path("/usr/lib/ruby/vendor_ruby")


def test_search_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert search_path(
        "agent", [one, two], core_libdir=Path("/core"), project_dir=Path("/proj")
    ) == [
        one / "mcollective" / "agent",
        two / "mcollective" / "agent",
        Path("/core/mcollective/agent"),
        Path("/proj"),
    ]
    assert search_path("data", [one], core_libdir=Path("/core"), project_dir=Path("/proj")) == [
        one / "mcollective" / "data",
        Path("/core/mcollective/data"),
    ]


def test_first_libdir_wins(tmp_path: Path) -> None:
    first = _write(tmp_path / "one", "agent", "thing")
    _write(tmp_path / "two", "agent", "thing")
    assert find_ddl("thing", "agent", [tmp_path / "one", tmp_path / "two"]) == first
    assert (
        find_ddl("thing", "agent", [tmp_path / "missing", tmp_path / "two"]).parent.parent.parent
        == tmp_path / "two"
    )


def test_libdir_shadows_core_and_core_precedes_project(tmp_path: Path) -> None:
    mine = _write(tmp_path, "agent", "rpcutil")
    assert find_ddl("rpcutil", libdirs=[tmp_path]) == mine
    if (CORE_LIBDIR / "mcollective" / "agent" / "rpcutil.ddl").is_file():
        assert find_ddl("rpcutil") == CORE_LIBDIR / "mcollective" / "agent" / "rpcutil.ddl"


def test_project_ddls_are_found_last(tmp_path: Path) -> None:
    assert find_ddl("haproxy", core_libdir=tmp_path) == REPO / "ddl" / "haproxy.ddl"
    ddl = load_agent_ddl("deploy", core_libdir=tmp_path)
    assert "fetch" in ddl.actions
    with pytest.raises(DDLError):
        find_ddl("haproxy", "agent", core_libdir=tmp_path, project_dir=None)


def test_kind_suffix_fallback_like_plugin_doc(tmp_path: Path) -> None:
    path = _write(tmp_path, "data", "thing_data")
    assert find_ddl("thing", "data", [tmp_path], core_libdir=None) == path
    assert find_ddl("thing_data", "data", [tmp_path], core_libdir=None) == path
    ddl = load_ddl("thing", "data", [tmp_path], core_libdir=None)
    assert isinstance(ddl, DataDDL) and ddl.name == "thing_data"


def test_unknown_agent_lists_every_place_looked(tmp_path: Path) -> None:
    with pytest.raises(DDLError) as info:
        find_ddl(
            "nosuch", "agent", [tmp_path], core_libdir=Path("/core"), project_dir=Path("/proj")
        )
    message = str(info.value)
    assert message.startswith("no DDL found for agent 'nosuch'; looked in: ")
    for place in (
        tmp_path / "mcollective/agent/nosuch.ddl",
        "/core/mcollective/agent/nosuch.ddl",
        "/proj/nosuch.ddl",
    ):
        assert str(place) in message
    assert "libdir" in message


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", ".hidden", "x y"])
def test_names_are_checked(name: str) -> None:
    with pytest.raises(DDLError, match="invalid agent name"):
        find_ddl(name)


def test_invalid_kind() -> None:
    with pytest.raises(DDLError, match="invalid plugin kind"):
        find_ddl("x", "../agent")


def test_cache_returns_the_same_model_until_the_file_changes(tmp_path: Path) -> None:
    clear_cache()
    path = _write(tmp_path, "agent", "cached", "first")
    first = load_ddl("cached", libdirs=[tmp_path], core_libdir=None)
    assert load_ddl("cached", libdirs=[tmp_path], core_libdir=None) is first
    path.write_text(MINIMAL.format(name="cached", text="second, longer"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = load_ddl("cached", libdirs=[tmp_path], core_libdir=None)
    assert second is not first and second.metadata.description == "second, longer"
    clear_cache()
    assert load_ddl("cached", libdirs=[tmp_path], core_libdir=None) is not second


def test_load_file_infers_kind_and_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "agent", "inferred")
    ddl = load_ddl_file(path)
    assert isinstance(ddl, AgentDDL) and ddl.name == "inferred" and ddl.path == path
    loose = tmp_path / "loose.ddl"
    loose.write_text(MINIMAL.format(name="loose", text="x"))
    assert load_ddl_file(loose).kind == "agent"


def test_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(DDLError, match=r"^cannot read DDL .*missing\.ddl"):
        load_ddl_file(tmp_path / "missing.ddl")
    binary = tmp_path / "binary.ddl"
    binary.write_bytes(b'metadata :name => "\xff"')
    with pytest.raises(DDLError, match=r"binary\.ddl: not UTF-8 text \(byte 19\)"):
        load_ddl_file(binary)


def test_parse_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "mcollective" / "agent" / "broken.ddl"
    broken.parent.mkdir(parents=True)
    broken.write_text('metadata :name => "x",\n  :description => \n')
    with pytest.raises(
        DDLError, match=rf"^{broken}:3:1: syntax error: expected a value after '=>'"
    ):
        load_ddl("broken", libdirs=[tmp_path], core_libdir=None)
