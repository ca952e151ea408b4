"""plugin doc text, line for line as Ruby's `mco plugin doc` prints it."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mcollective_py.ddl import parse_ddl, plugin_doc
from mcollective_py.ddl.doc import align_text
from tests.ddl.conftest import (
    GOLDEN,
    MCO,
    PROJECT_DDLS,
    VALID_FIXTURES,
    clean_env,
    debian_ddls,
    kind_of,
    ruby_integration,
    run_ruby,
)

DOC_GOLDEN = GOLDEN / "doc"
OURS = ("haproxy", "healthcheck", "deploy")
# Ruby's `mco plugin doc` crashes on it ("comparison of String with :choice failed": it
# sorts input names that mix Symbols and Strings); ours sorts them by name.
RUBY_CANNOT_DOCUMENT = "syntax_zoo"

DEBIAN = [("debian", p) for p in debian_ddls()]
PROJECT = [("project", p) for p in PROJECT_DDLS]
FIXTURES = [("fixture", p) for p in VALID_FIXTURES if p.stem != RUBY_CANNOT_DOCUMENT]
WITH_GOLDEN = DEBIAN + [s for s in PROJECT if s[1].stem in OURS] + FIXTURES


def _id(source: tuple[str, Path]) -> str:
    return f"{source[0]}:{kind_of(source[1])}/{source[1].stem}"


def _doc(path: Path) -> str:
    return plugin_doc(
        parse_ddl(path.read_text(encoding="utf-8"), kind=kind_of(path), filename=str(path))
    )


@pytest.mark.parametrize("source", WITH_GOLDEN, ids=_id)
def test_doc_matches_golden_from_real_mco(source: tuple[str, Path]) -> None:
    origin, path = source
    golden = (DOC_GOLDEN / f"{origin}--{kind_of(path)}--{path.stem}.txt").read_text(
        encoding="utf-8"
    )
    ours = _doc(path)
    assert ours.splitlines() == golden.splitlines()
    assert ours == golden


def _libdir(root: Path, files: list[Path]) -> Path:
    for path in files:
        target = root / "mcollective" / kind_of(path)
        target.mkdir(parents=True, exist_ok=True)
        (target / path.name).write_bytes(path.read_bytes())
    (root / "client.cfg").write_text(
        f"libdir = {root}\nconnector = rabbitmq\nsecurityprovider = psk\nplugin.psk = x\n"
    )
    return root


@pytest.fixture(scope="module")
def core_libdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty libdir: mco then finds only Debian's core plugins."""
    return _libdir(tmp_path_factory.mktemp("core"), [])


@pytest.fixture(scope="module")
def project_libdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<dir>/mcollective/<kind>/<name>.ddl holding ddl/*.ddl and the test fixtures."""
    return _libdir(tmp_path_factory.mktemp("project"), PROJECT_DDLS + VALID_FIXTURES)


def _mco_doc(libdir: Path, target: str) -> subprocess.CompletedProcess[str]:
    assert MCO is not None
    return subprocess.run(
        [MCO, "plugin", "doc", target, "-c", str(libdir / "client.cfg")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )


needs_mco = pytest.mark.skipif(MCO is None, reason="mco not installed")


@ruby_integration
@needs_mco
def test_rpcutil_doc_matches_real_mco_line_by_line(core_libdir: Path) -> None:
    real = _mco_doc(core_libdir, "agent/rpcutil")
    assert real.returncode == 0, real.stderr
    ours = _doc(Path("/usr/lib/ruby/vendor_ruby/mcollective/agent/rpcutil.ddl"))
    for number, (theirs, mine) in enumerate(
        zip(real.stdout.splitlines(), ours.splitlines(), strict=True), 1
    ):
        assert mine == theirs, f"line {number}"
    assert ours == real.stdout


@ruby_integration
def test_every_doc_matches_ruby_ddl_help() -> None:
    """Ruby's DDL#help (what `mco plugin doc` prints) for every DDL, in one Ruby process."""
    sources = [path for _, path in DEBIAN + PROJECT + FIXTURES]
    cases = [{"mode": "help", "path": str(p), "kind": kind_of(p), "name": p.stem} for p in sources]
    for path, outcome in zip(sources, run_ruby("ruby_oracle.rb", cases), strict=True):
        assert outcome["ok"], (path, outcome)
        assert _doc(path) == outcome["result"], path


@ruby_integration
@needs_mco
def test_docs_match_real_mco(core_libdir: Path, project_libdir: Path) -> None:
    """The real `mco plugin doc` command for our DDLs and one DDL of each core kind."""
    core = {"mc", "fstat_data", "shellsafe_validator", "average", "rabbitmq"}
    jobs = [(core_libdir, p) for _, p in DEBIAN if p.stem in core]
    jobs += [(project_libdir, p) for _, p in PROJECT]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda job: _mco_doc(job[0], f"{kind_of(job[1])}/{job[1].stem}"), jobs)
        )
    for (_, path), real in zip(jobs, results, strict=True):
        assert real.returncode == 0, (path, real.stderr)
        assert _doc(path) == real.stdout, path


@ruby_integration
@needs_mco
def test_ruby_cannot_document_mixed_key_types_but_we_can(project_libdir: Path) -> None:
    real = _mco_doc(project_libdir, f"agent/{RUBY_CANNOT_DOCUMENT}")
    assert "comparison of String with :choice failed" in real.stdout + real.stderr
    text = _doc(next(p for p in VALID_FIXTURES if p.stem == RUBY_CANNOT_DOCUMENT))
    assert (
        text.index("           choice:")
        < text.index("           legacy:")
        < text.index("           path:")
    )


ALIGN_CASES = [
    ("short", 80, 3),
    ("\n  two\n\n  lines\n\n\n", 80, 3),
    ("a " * 50, 40, 5),
    ("  indented " + "word " * 20 + "\n\n  next paragraph " + "x" * 30 + " y", 60, 2),
    ("  " + "long " * 30 + "\n" + " " * 70 + "deep " * 5, 60, 3),
    ("first line that is long enough to wrap around the edge\n\nafter blank", 30, 3),
    ("x", 3, 5),
    ("tab\tseparated words that go past the limit of the console width", 30, 3),
]


@ruby_integration
def test_align_text_matches_ruby() -> None:
    ruby = run_ruby(
        "ruby_oracle.rb",
        [{"mode": "align", "text": t, "cols": c, "preamble": p} for t, c, p in ALIGN_CASES],
    )
    for (text, cols, preamble), outcome in zip(ALIGN_CASES, ruby, strict=True):
        assert outcome["ok"], outcome
        assert align_text(text, cols, preamble) == outcome["result"], (text, cols, preamble)


def test_align_text_wraps_and_indents() -> None:
    assert align_text("short", 80, 3) == "   short"
    assert align_text("x", 3, 5) == "x", "too narrow: returned as is"
    wrapped = align_text("word " * 30, 40, 5)
    assert all(
        line.startswith("     ") and len(line.rstrip()) <= 40 for line in wrapped.split("\n")
    )
    assert wrapped.split() == ("word " * 30).split()


def test_doc_shows_ruby_value_forms() -> None:
    text = _doc(next(p for p in VALID_FIXTURES if p.stem == "puppet_like"))
    assert "               Validation: puppet_variable\n" in text
    assert '            Default Value: ["a", :b, 1, 2.0, nil, true, {"k"=>[1]}]\n' in text
    assert "            Default Value: -1\n" in text
    data = _doc(next(p for p in VALID_FIXTURES if p.stem == "data_like"))
    assert "               Validation: (?-mix:^[\\w\\_]+$)\n" in data
