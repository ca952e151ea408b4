"""Ruby value semantics (to_s, inspect, format, regexes) checked against real Ruby."""

from __future__ import annotations

from typing import Any

import pytest

from mcollective_py.ddl.dsl import version_compare
from mcollective_py.ruby import values as rv
from mcollective_py.ruby.regex import RubyRegexError, compile_ruby_regex, ruby_match
from mcollective_py.rubytypes import Regexp, Symbol
from tests.ddl.conftest import ruby_integration, run_ruby
from tests.ddl.rubyshape import tag

FLOATS = [1e15, 1e16, 123456789012345678.0, 0.0001, 0.00001, 1.5, -0.0, 100.0, 1 / 3, 2.5e-5, 1e100,
          1234567890123456.0, 999999999999999.9, 0.00012, -12.75, 5e-324, 1.7976931348623157e308]  # fmt: skip
VALUES: list[Any] = [
    None, True, 1, -2**70, 1.5, "tab\t\"q\"\\ \x1b\x01 caf\u00e9 #{x} #@y #$z", Symbol("a"), Symbol("a b"),
    Symbol("ok?"), Symbol("set="), [1, [None, "x"]], {Symbol("a"): 1, "b": [True]}, {}, [],
]  # fmt: skip
FORMATS: list[tuple[str, list[Any]]] = [
    ("%d", [3.99]), ("%d", [-3.99]), ("%d", ["12"]), ("%d", ["0x1A"]), ("%d", ["012"]), ("%d", ["1_000"]),
    ("%5.1s|", ["abc"]), ("%-6s|", [Symbol("sym")]), ("%s", [[1, 2]]), ("%s", [None]), ("%p", ["q"]),
    ("%05.1f", [3.14159]), ("%+d", [5]), ("% d", [5]), ("%e", [12345.678]), ("%g", [0.0001]), ("%g", [1e20]),
    ("%x|%X|%o|%#x", [255, 255, 8, 255]), ("%b|%08b|%-6b|%+b", [5, 5, 5, 5]), ("%c%c", [65, "B"]),
    ("%10s = %s", ["value", 3]), ("100%%", []), ("%f", [1]), ("%.0f", [2.5]), ("%s and %s", ["a", Symbol("b")]),
]  # fmt: skip
BAD_FORMATS: list[tuple[str, list[Any]]] = [
    ("%d", ["1.5"]), ("%f", [None]), ("%d", [None]), ("%s %s", [1]), ("%f", ["x"]), ("%z", [1]), ("50%", []), ("%c", ["BC"]),
]  # fmt: skip
REGEXES: list[tuple[str, int, str]] = [
    ("^a$", 0, "x\na\ny"), (r"\Aa\z", 0, "a\n"), (r"\Aa\Z", 0, "a\n"), (r"\Aa\Z", 0, "a\n\n"), ("a.c", 0, "a\nc"),
    ("a.c", 4, "a\nc"), ("ABC", 1, "xabcx"), ("a b c", 2, "abc"), (r"\w+", 0, "\u00e9"), (r"\d", 0, "\u0663"),
    (r"\s", 0, "\u00a0"), (r"\h{2}", 0, "fF"), (r"[\h-]+\z", 0, "a-f"), (r"(?<y>\d{4})-\k<y>", 0, "2024-2024"),
    ("a(?i)b", 0, "aB"), ("(?i:a)b", 0, "Ab"), ("(?i:a)b", 0, "AB"), ("(?m:a.)b", 0, "a\nb"), (r"a\/b", 0, "a/b"),
    ("[[:digit:]]+", 0, "42"), ("[[:space:]]", 0, "\t"), ("x{,2}y", 0, "xxy"), (r"a\e", 0, "a\x1b"),
    (r"\x41\u0042", 0, "AB"), (r"(?#comment)a", 0, "a"), ("a++b", 0, "aab"), ("(?>a+)b", 0, "aab"), (r"\bx\b", 0, "a x b"),
    (r"[]a]", 0, "]"), (r"[^]a]", 0, "b"), (r"\y", 0, "y"),
]  # fmt: skip


@ruby_integration
def test_values_format_like_ruby() -> None:
    cases = (
        [{"mode": "to_s", "value": tag(f)} for f in FLOATS]
        + [{"mode": "inspect", "value": tag(v)} for v in VALUES]
        + [{"mode": "to_s", "value": tag(v)} for v in VALUES]
        + [{"mode": "format", "format": f, "args": tag(a)} for f, a in FORMATS + BAD_FORMATS]
        + [{"mode": "match", "source": s, "opts": o, "value": v} for s, o, v in REGEXES]
    )
    results = iter(run_ruby("ruby_oracle.rb", cases))
    for f in FLOATS:
        assert rv.to_s(f) == next(results)["result"], f
    for v in VALUES:
        assert rv.inspect(v) == next(results)["result"], v
    for v in VALUES:
        assert rv.to_s(v) == next(results)["result"], v
    for fmt, args in FORMATS:
        assert rv.sprintf(fmt, args) == next(results)["result"], (fmt, args)
    for fmt, args in BAD_FORMATS:
        outcome = next(results)
        assert not outcome["ok"], (fmt, args)
        with pytest.raises(rv.RubyTypeError) as info:
            rv.sprintf(fmt, args)
        assert str(info.value) == outcome["error"]
    for source, options, value in REGEXES:
        assert ruby_match(source, options, value) == next(results)["result"], (
            source,
            options,
            value,
        )


def test_float_to_s_examples() -> None:
    assert [rv.float_to_s(f) for f in (1e15, 1e14, 0.0001, 0.00001, -0.0)] == [
        "1.0e+15",
        "100000000000000.0",
        "0.0001",
        "1.0e-05",
        "-0.0",
    ]
    assert rv.float_to_s(float("nan")) == "NaN" and rv.float_to_s(float("-inf")) == "-Infinity"


def test_equality_and_hash_keys_follow_ruby() -> None:
    assert (
        rv.eq(1, 1.0) and not rv.eq(True, 1) and not rv.eq(Symbol("a"), "a") and rv.eq([1], [1.0])
    )
    assert rv.hash_key(1) != rv.hash_key(1.0) and rv.hash_key(True) != rv.hash_key(1)
    table = rv.RubyHash([(Symbol("a"), 1), ("a", 2), (1, "i"), (1.0, "f"), (True, "t")])
    assert len(table) == 5 and table.get("a") == 2 and table.get(Symbol("a")) == 1
    table[Symbol("a")] = 3
    assert table.keys()[0] == Symbol("a") and table.get(Symbol("a")) == 3


@pytest.mark.parametrize(
    ("text", "as_int", "as_float"),
    [
        ("12abc", 12, 12.0),
        ("  -3.5e2x", -3, -350.0),
        ("abc", 0, 0.0),
        ("1_000", 1000, 1000.0),
        ("\n7", 7, 7.0),
    ],
)
def test_lenient_numbers(text: str, as_int: int, as_float: float) -> None:
    assert rv.to_i(text) == as_int and rv.to_f(text) == as_float


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("2.12.5", "2.2.1", 1), ("2.12.5", "2.12.5", 0), ("2.12.5", "2.13.0", -1), ("2.12.5", "3.0", -1),
     ("1.0-rc1", "1.0", 1), ("1.05", "1.1", -1), ("1.0a", "1.0b", -1)],
)  # fmt: skip
def test_version_compare(a: str, b: str, expected: int) -> None:
    assert version_compare(a, b) == expected


def test_regexp_to_s() -> None:
    assert rv.regexp_to_s(Regexp("a/b", 1)) == "(?i-mx:a\\/b)"
    assert rv.regexp_to_s(Regexp("(?m:x)(y)")) == "(?-mix:(?m:x)(y))"
    assert rv.regexp_to_s(Regexp("(?mi-x:x)")) == "(?mi-x:x)"


@pytest.mark.parametrize(
    "source",
    ["[a-z&&[^aeiou]]", "(?~abc)", "[a[^b]]"],
)
def test_constructs_we_cannot_run_are_reported(source: str) -> None:
    with pytest.raises(RubyRegexError) as info:
        compile_ruby_regex(source)
    assert info.value.unsupported


@pytest.mark.parametrize("source", ["[", "(", ")", "a{2,1}", "*a"])
def test_invalid_regexes_are_reported(source: str) -> None:
    with pytest.raises(RubyRegexError) as info:
        compile_ruby_regex(source)
    assert not info.value.unsupported
