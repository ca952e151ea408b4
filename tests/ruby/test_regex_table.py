"""The Ruby regex table: real ``ruby`` gives the verdict; filters and DDL validation agree.

Each case is ``(source, options, text)``.  Ruby decides ``!!text.match(Regexp.new(source,
options))``; then the same case goes through our three entry points, all of which must give
Ruby's verdict: :func:`mcollective_py.ruby.regex.ruby_match`, a ``-F fact=~/re/`` request
filter matched node-side (:func:`mcollective_py.filter.check`), and a DDL ``:validation``
(:func:`mcollective_py.ddl.validators.regex`).  Options reach the filter as a leading
``(?imx)`` group, since a fact filter cannot carry Regexp options.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from mcollective_py.ddl import validators
from mcollective_py.filter import FactFilter, Filter, check
from mcollective_py.ruby.regex import RubyRegexError, ruby_match
from mcollective_py.rubytypes import Regexp

RUBY = shutil.which("ruby")
IC, X, M = 1, 2, 4

# fmt: off
TABLE: list[tuple[str, int, str]] = [
    # POSIX bracket classes on non-ASCII text
    (r"\A[[:alpha:]]+\z", 0, "café"),
    (r"\A[[:alpha:]]+\z", 0, "naïve-x"),
    (r"\A[[:alnum:]]+\z", 0, "Größe42"),
    (r"\A[[:upper:]]+\z", 0, "ÉCOLE"),
    (r"\A[[:lower:]]+\z", 0, "école"),
    (r"\A[[:digit:]]+\z", 0, "١٢٣"),
    (r"\A[[:space:]]+\z", 0, "\u00a0\u2003"),
    (r"[[:punct:]]", 0, "«»"),
    (r"[[:punct:]]", 0, "$"),
    (r"\A[[:word:]]+\z", 0, "snake_çase"),
    (r"[[:^alpha:]]", 0, "éa"),
    (r"\A[^[:alpha:]]+\z", 0, "123"),
    (r"[[:xdigit:]]", 0, "٣"),
    (r"\A[[:graph:]]+\z", 0, "é!"),
    (r"[[:cntrl:]]", 0, "a\tb"),
    # \p{...}
    (r"\A\p{L}+\z", 0, "ĳsland"),
    (r"\p{Greek}", 0, "abc λ"),
    (r"\A\p{Han}+\z", 0, "漢字"),
    (r"\p{^L}", 0, "éé"),
    (r"\P{L}", 0, "é1"),
    (r"\A\p{Lu}\p{Ll}+\z", 0, "Ärger"),
    # \w \d \s are ASCII; \b \B follow Unicode
    (r"\w", 0, "é"),
    (r"\A\w+\z", 0, "abc_9"),
    (r"\W", 0, "é"),
    (r"\d", 0, "٣"),
    (r"\s", 0, "\u00a0"),
    (r"\bé", 0, "café"),
    (r"\bé", 0, "é"),
    (r"f\b", 0, "café"),
    (r"\Bé", 0, "café"),
    (r"\B", 0, ""),
    (r"[\w]", 0, "é"),
    (r"[^\W]", 0, "é"),
    (r"[\S]", 0, "\u00a0"),
    # \h \H
    (r"\A\h+\z", 0, "deadBEEF"),
    (r"\h", 0, "ghij"),
    (r"\A\H+\z", 0, "xyz"),
    # \A \z \Z
    (r"\Aab\z", 0, "ab\n"),
    (r"ab\Z", 0, "ab\n"),
    (r"ab\Z", 0, "ab\n\n"),
    (r"\Aab", 0, "x\nab"),
    # line anchors on multi-line values
    (r"^\d+$", 0, "abc\n123"),
    (r"^[a-z]+$", 0, "ok\n; rm -rf /"),
    (r"\A[a-z]+\z", 0, "ok\n; rm -rf /"),
    (r"^$", 0, "a\n"),
    (r"^$", 0, "a\n\nb"),
    (r"b$", 0, "ab\nc"),
    (r"\n^", 0, "a\n"),
    # (?i) and /i
    (r"WEB", IC, "web01"),
    (r"é", IC, "CAFÉ"),
    (r"a(?i)b", 0, "aB"),
    (r"a(?i)B|c", 0, "C"),
    (r"(?i:x)y", 0, "XY"),
    (r"(?i-i:x)", IC, "X"),
    # /m (dot matches newline) and /x
    (r"a.b", 0, "a\nb"),
    (r"a.b", M, "a\nb"),
    (r"(?m:a.b)", 0, "a\nb"),
    (r"a b # a comment", X, "ab"),
    (r"a\ b", X, "a b"),
    (r"[ ]", X, " "),
    # other Ruby syntax
    (r"(?<y>\d+)-\k<y>", 0, "12-12"),
    (r"(?<y>\d+)-\k<y>", 0, "12-13"),
    (r"\A(?<p>a|\(\g<p>\))\z", 0, "((a))"),
    (r"\A(?>a+)a\z", 0, "aaa"),
    (r"\Aa++a\z", 0, "aaa"),
    (r"\u{e9}", 0, "café"),
    (r"\e", 0, "\x1b"),
    (r"x{,2}y", 0, "xxxy"),
    (r"[a[bc]]+\z", 0, "cab"),
    (r"[a|b]", 0, "|"),
    (r"\R", 0, "a\r\nb"),
    (r"\Gab", 0, "xab"),
    (r"a\Kb", 0, "ab"),
    # Ruby stacks quantifiers, and {n}? / {n}+ are not lazy / possessive there
    (r"\Aa**\z", 0, "aaa"),
    (r"\A(?:ab){2}+\z", 0, "abababab"),
    (r"\Aa{2}?\z", 0, ""),
    (r"\Aa{1,3}?b", 0, "aab"),
    (r"^*x", 0, "x"),
    (r"\A\p{L}+\z", IC, "ÉcOle"),
    (r"a{x}", 0, "a{x}"),
    # a numbered back reference next to a named group is an error in Ruby
]
REFUSED: list[tuple[str, int, str]] = [
    (r"(?<n>a)\1", 0, "aa"),
    (r"a|*b", 0, "b"),
]
# fmt: on

_ORACLE = r"""
require "json"
cases = JSON.parse($stdin.read)
puts JSON.generate(cases.map { |src, opts, text|
  begin
    !!text.match(Regexp.new(src, opts))
  rescue RegexpError => e
    "error: #{e.message}"
  end
})
"""


@pytest.fixture(scope="module")
def ruby_verdicts() -> list[Any]:
    if RUBY is None:
        pytest.fail("ruby is not installed: the regex table needs /usr/bin/ruby")
    proc = subprocess.run(
        [RUBY, "-e", _ORACLE],
        input=json.dumps(TABLE),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    verdicts = json.loads(proc.stdout)
    assert len(verdicts) == len(TABLE)
    return list(verdicts)


def _filter_verdict(source: str, options: int, text: str) -> bool:
    flags = "".join(c for bit, c in ((IC, "i"), (X, "x"), (M, "m")) if options & bit)
    prefixed = f"(?{flags})" + source if flags else source
    flt = Filter(fact=(FactFilter("f", "=~", f"/{prefixed}/"),))
    verdict = check(flt, identity="node", facts={"f": text}, classes=(), agents=())
    assert verdict.error is None, verdict.error
    return verdict.matched


def _ddl_problem(source: str, options: int, text: str) -> str:
    return validators.regex(text, Regexp(source, options)) or ""


def _ddl_verdict(source: str, options: int, text: str) -> bool:
    problem = validators.regex(text, Regexp(source, options))
    assert problem is None or problem.startswith("value should match"), problem
    return problem is None


def test_table_is_big_enough() -> None:
    assert len(TABLE) >= 40


@pytest.mark.integration
@pytest.mark.parametrize("case", REFUSED, ids=[repr(c) for c in REFUSED])
def test_patterns_ruby_refuses_are_refused(case: tuple[str, int, str]) -> None:
    source, options, text = case
    proc = subprocess.run(
        [RUBY or "ruby", "-e", _ORACLE], input=json.dumps([case]), capture_output=True,
        text=True, check=True, timeout=60,
    )  # fmt: skip
    assert str(json.loads(proc.stdout)[0]).startswith("error: ")
    with pytest.raises(RubyRegexError):
        ruby_match(source, options, text)
    assert _ddl_problem(source, options, text).startswith("validation regex")


@pytest.mark.integration
@pytest.mark.parametrize(("index", "case"), list(enumerate(TABLE)), ids=[repr(c) for c in TABLE])
def test_regex_gives_rubys_verdict(
    ruby_verdicts: list[Any], index: int, case: tuple[str, int, str]
) -> None:
    source, options, text = case
    theirs = ruby_verdicts[index]
    assert isinstance(theirs, bool), f"Ruby refused the table case: {theirs}"
    assert ruby_match(source, options, text) is theirs
    assert _filter_verdict(source, options, text) is theirs
    assert _ddl_verdict(source, options, text) is theirs
