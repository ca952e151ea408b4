"""Random Ruby regexes from Ruby-specific pieces, on non-ASCII and multi-line values:
real ``ruby`` and :func:`mcollective_py.ruby.regex.ruby_match` must agree on every one
(a match, no match, or both refusing the pattern)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest

from mcollective_py.errors import RegexTimeout
from mcollective_py.ruby.regex import RubyRegexError, ruby_match

RUBY = shutil.which("ruby")

# fmt: off
ATOMS = [
    "a", "é", "x", r"\n", ".", r"\w", r"\W", r"\d", r"\s", r"\h", r"\b", r"\B", r"\A", r"\z",
    r"\Z", "^", "$", "(?i)", "(?m:.)", r"\u00e9", r"\x41", r"\e", r"\R", r"\X", r"\K", r"\G",
    "[[:alpha:]]", "[[:^alpha:]]", "[[:punct:]]", "[[:space:]]", "[[:lower:]]", "[[:alnum:]]",
    "[[:word:]]", "[[:print:]]", "[[:graph:]]", "[[:cntrl:]]", "[[:blank:]]", "[^[:digit:]]",
    r"\p{L}", r"\P{L}", "[^a]", r"[\w\-]", r"[^\s]", "[a-zé]", "[[a-c]x]", r"[\]]", r"[\^a]",
    "[-a]", "(a|é)", r"(?<n>a)\k<n>", "(?:ab|c)", "(?i:é)", "(?x: a )", "(?=a)", "(?<!a)",
    "a++", "(?>a*)", r"(a)\1", r"\cA", r"\/",
]
QUANTIFIERS = ["", "", "", "+", "*", "?", "{2}", "{1,}", "{,2}", "{2,3}?", "{2}?", "{2}+",
               "*+", "??", "{x}"]
TEXTS = ["café", "CAFÉ", "a\nb", "ab\n", "é\n", "", " ", "\u00a0", "١٢", "a_b-c", "«x»",
         "$+<=>^`|~", "\t", "x\n\ny", "ÄÖÜß", "\u2028", "日本", "aaa", "abab"]
# fmt: on
# Known differences: Onigmo does not fold case for [[:upper:]] / \p{Lu} under /i.
KNOWN = ("[[:upper:]]", r"\p{Lu}")

_ORACLE = r"""
require "json"
puts JSON.generate(JSON.parse($stdin.read).map { |s, o, t|
  begin; !!t.match(Regexp.new(s, o)); rescue RegexpError; "error"; end })
"""


def cases(seed: int, count: int) -> list[tuple[str, int, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        pattern = "".join(
            rng.choice(ATOMS) + rng.choice(QUANTIFIERS) for _ in range(rng.randint(1, 3))
        )
        out.append((pattern, rng.choice([0, 0, 0, 1, 2, 4, 5]), rng.choice(TEXTS)))
    return out


@pytest.mark.integration
def test_random_regexes_agree_with_ruby() -> None:
    if RUBY is None:
        pytest.fail("ruby is not installed: the regex fuzz needs /usr/bin/ruby")
    table = [c for c in cases(2026, 3000) if not any(k in c[0] for k in KNOWN)]
    proc = subprocess.run(
        [RUBY, "-e", _ORACLE], input=json.dumps(table), capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    wrong = []
    for (source, options, text), theirs in zip(table, json.loads(proc.stdout), strict=True):
        try:
            ours: bool | str = ruby_match(source, options, text)
        except RubyRegexError:
            ours = "error"
        except RegexTimeout:
            ours = "timeout"
        if ours != theirs:
            wrong.append((source, options, text, theirs, ours))
    assert not wrong, wrong[:10]
    assert len(table) > 2500
