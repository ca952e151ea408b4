"""Every DDL we know parses, and our model equals what Ruby MCollective's DDL classes load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcollective_py.ddl import parse_ddl
from tests.ddl import rubyshape
from tests.ddl.conftest import (
    MALFORMED,
    PROJECT_DDLS,
    VALID_FIXTURES,
    debian_ddls,
    kind_of,
    ruby_integration,
    run_ruby,
)

ALL_DDLS = debian_ddls() + PROJECT_DDLS + VALID_FIXTURES


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _load(path: Path) -> Any:
    return parse_ddl(path.read_text(encoding="utf-8"), kind=kind_of(path), filename=str(path))


def test_the_file_sets_are_not_empty() -> None:
    assert {"haproxy", "healthcheck", "deploy"} <= {p.stem for p in PROJECT_DDLS}
    assert len(VALID_FIXTURES) >= 7
    assert len(debian_ddls()) >= 20


@pytest.mark.parametrize("path", ALL_DDLS, ids=_id)
def test_every_ddl_parses(path: Path) -> None:
    ddl = _load(path)
    assert ddl.name == path.stem
    assert ddl.kind == kind_of(path)


@pytest.fixture(scope="module")
def ruby_models() -> dict[Path, Any]:
    payload = [{"path": str(p), "kind": kind_of(p), "name": p.stem} for p in ALL_DDLS]
    return dict(zip(ALL_DDLS, run_ruby("ruby_ddl_dump.rb", payload), strict=True))


@pytest.mark.parametrize("path", ALL_DDLS, ids=_id)
@ruby_integration
def test_model_equals_ruby(path: Path, ruby_models: dict[Path, Any]) -> None:
    ruby = ruby_models[path]
    assert ruby["ok"], ruby.get("error")
    ddl = _load(path)
    assert rubyshape.entities(ddl) == ruby["entities"]
    assert rubyshape.metadata(ddl) == sorted(ruby["meta"]["hash"], key=repr)
    assert rubyshape.tag(ddl.usage) == ruby["usage"]
    assert rubyshape.requirements(ddl) == ruby["requirements"]


@ruby_integration
def test_ruby_also_rejects_every_malformed_file() -> None:
    payload = [{"path": str(p), "kind": _malformed_kind(p), "name": p.stem} for p in MALFORMED]
    results = run_ruby("ruby_ddl_dump.rb", payload)
    accepted = [p.name for p, r in zip(MALFORMED, results, strict=True) if r["ok"]]
    assert accepted == []


def _malformed_kind(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    return first.split("kind:", 1)[1].strip() if "kind:" in first else "agent"
