"""Broken DDL files give one precise error (file:line:column + what was expected), never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcollective_py.ddl import parse_ddl
from mcollective_py.errors import DDLError
from tests.ddl.conftest import MALFORMED, PROJECT_DDLS, VALID_FIXTURES

LOCATED = re.compile(r"^[\w.<>-]+:\d+:\d+: \S")


def _kind(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first.split("kind:", 1)[1].strip() if "kind:" in first else "agent"


def test_there_are_enough_malformed_cases() -> None:
    assert len(MALFORMED) >= 15
    for path in MALFORMED:
        assert path.with_suffix(".err").is_file(), f"{path.name} has no expected error file"


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_file_gives_the_expected_error(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expected = path.with_suffix(".err").read_text(encoding="utf-8").rstrip("\n")
    with pytest.raises(DDLError) as info:
        parse_ddl(text, kind=_kind(text), filename=path.name)
    assert str(info.value) == expected
    assert LOCATED.match(str(info.value)), "errors name file:line:column"


def _check(text: str) -> None:
    """Parsing either works or raises DDLError located in the file; nothing else escapes."""
    try:
        parse_ddl(text, filename="fuzz.ddl")
    except DDLError as exc:
        assert str(exc).startswith("fuzz.ddl:"), str(exc)


SOURCES = [p.read_text(encoding="utf-8") for p in PROJECT_DDLS + VALID_FIXTURES]


@pytest.mark.parametrize("index", range(len(SOURCES)))
def test_every_truncation_fails_cleanly(index: int) -> None:
    text = SOURCES[index]
    for cut in range(0, len(text), max(1, len(text) // 150)):
        _check(text[:cut])


_RUBYISH = st.sampled_from(
    list("\"'`:,()[]{}|#\\/%<>=-+*.;\n ~^&!?@$0123456789abcdeAZ_\t")
    + ["do", "end", "<<-", "#{", "=>", "%w[", "__END__", "=begin"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(SOURCES),
    start=st.integers(min_value=0, max_value=20_000),
    drop=st.integers(min_value=0, max_value=40),
    insert=st.lists(_RUBYISH, max_size=6),
)
def test_mutated_ddls_fail_cleanly(source: str, start: int, drop: int, insert: list[str]) -> None:
    start %= max(1, len(source))
    _check(source[:start] + "".join(insert) + source[start + drop :])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_random_text_fails_cleanly(text: str) -> None:
    _check(text)


@pytest.mark.parametrize(
    "text",
    [
        "metadata " + "[" * 5000 + "]" * 5000,
        "metadata " + "(" * 5000 + ")" * 5000,
        'usage "' + '#{"' * 500 + '"}' * 500 + '"',
        "[1].each do |a|\n" * 2000 + "end\n" * 2000,
        "[1].each { |a| " * 2000 + "}" * 2000,
        "x = " + "-" * 5000 + "1",
        "x = " + " + ".join(["1"] * 5000),
        "x = 'a'" + ".to_s" * 5000,
    ],
    ids=[
        "brackets",
        "parens",
        "interpolation",
        "do-blocks",
        "brace-blocks",
        "minus",
        "sum",
        "chain",
    ],
)
def test_pathological_nesting_is_a_located_error(text: str) -> None:
    with pytest.raises(DDLError, match=r"^fuzz\.ddl:\d+:\d+: .*(nest|deep)"):
        parse_ddl(text, filename="fuzz.ddl")
