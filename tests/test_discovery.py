"""flatfile/stdin discovery: identity regexes are Ruby's, matched within a time budget.

The expected lists were checked with real Ruby 3.1 (``hosts.grep(Regexp.new(i.gsub("/", "")))``,
what the flatfile plugin does).
"""

from __future__ import annotations

import pytest

from mcollective_py.discovery import NodeList, narrow_by_identity
from mcollective_py.errors import UsageError
from mcollective_py.filter import Filter
from mcollective_py.ruby import regex as ruby_regex

NODES = ("web1", "webA", "web-z", "db1", "café1")


def narrowed(*identity: str, nodes: tuple[str, ...] = NODES) -> tuple[str, ...]:
    return narrow_by_identity(nodes, Filter.from_cli(identity=list(identity)), "flatfile")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        # Onigmo's \h is a hex digit (Python's re has no \h and refused the pattern)
        ("/^web\\h$/", ("web1", "webA")),
        # POSIX bracket classes, Unicode-aware as in Ruby
        ("/^[[:alpha:]]+[[:digit:]]$/", ("web1", "db1", "café1")),
        # every "/" is removed before compiling, as Ruby's gsub("/", "") does
        ("/web-/z/", ("web-z",)),
        # Ruby's (?i) and anchors
        ("/(?i)^WEB/", ("web1", "webA", "web-z")),
    ],
)
def test_identity_regexes_have_ruby_semantics(entry: str, expected: tuple[str, ...]) -> None:
    assert narrowed(entry) == expected


def test_literal_and_regex_entries_combine_like_ruby() -> None:
    assert narrowed("db1", "nothere") == ("db1",)
    assert narrowed("db1", "/^web1$/") == ("web1",)  # a regex entry replaces the result
    assert narrowed("/^web1$/", "db1") == ("web1", "db1")
    assert NodeList(NODES, "stdin").discover(Filter.from_cli(identity=["/1$/"]), 0) == (
        "web1",
        "db1",
        "café1",
    )


def test_a_bad_regex_names_the_entry() -> None:
    with pytest.raises(UsageError, match=r"^identity filter '/web\(/' is not a valid regex: "):
        narrowed("/web(/")


def test_a_catastrophic_regex_is_abandoned_and_counted() -> None:
    before = ruby_regex.timeouts()
    with pytest.raises(
        UsageError,
        match=r"^identity filter '/\(a\|aa\)\+Q/' could not be matched against the flatfile "
        r"list: regex /\(a\|aa\)\+Q/ took longer than 0\.25 s and was abandoned",
    ):
        narrowed("/(a|aa)+Q/", nodes=("a" * 40,))
    assert ruby_regex.timeouts() == before + 1
