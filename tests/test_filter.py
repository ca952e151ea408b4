"""Filter parsing, wire form and node-side matching.

Golden cases live in ``tests/golden/filter/``, one per file:

* ``parse_*.json``: ``kind`` is ``fact`` (a ``-F`` value), ``compound`` (a ``-S`` value) or
  ``flags`` (``[flag, value]`` pairs in command-line order); ``expect`` is the wire value in
  readable JSON (Hash order kept; Regexp as ``{"$regexp": src, "options": n}``), or
  ``"error": true`` when mco refuses the input.
* ``match_*.json``: a filter (``flags``, or a raw ``wire`` hash) and a ``node`` (identity,
  facts as a fact source returns them, classes, agents, and ``data``: plugin -> params ->
  outputs, params ``null`` written as ``"null"``); ``expect`` holds ``matched`` and ``error``
  (Ruby raised inside validate_filter?, so the daemon drops the request).

The expected values were produced by the real Ruby code; ``test_filter_ruby.py`` re-checks
the whole table against Ruby on every run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from mcollective_py.errors import SerializationError, UsageError
from mcollective_py.filter import (
    CompoundToken,
    FactFilter,
    Filter,
    FStatement,
    check,
    compile_ruby_regex,
    eval_compound,
    matches,
    normalize_facts,
    parse_compound,
    parse_fact,
    parse_with,
)
from mcollective_py.rubytypes import Regexp, Symbol

GOLDEN = Path(__file__).parent / "golden" / "filter"


def _load() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(GOLDEN.glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        case["name"] = path.stem
        cases.append(case)
    return cases


ALL_CASES = _load()
PARSE_CASES = [c for c in ALL_CASES if "kind" in c]
MATCH_CASES = [c for c in ALL_CASES if "node" in c]


# ---------------------------------------------------------------- golden helpers
def readable(value: Any) -> Any:
    """Our wire value as the golden files write it (Symbols become plain strings)."""
    if isinstance(value, Mapping):
        return {str.__str__(k): readable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [readable(v) for v in value]
    if isinstance(value, Regexp):
        return {"$regexp": value.source, "options": value.options}
    if isinstance(value, str):
        return str.__str__(value)
    return value


def _regexp_or(value: Any) -> Any:
    if isinstance(value, dict) and "$regexp" in value:
        return Regexp(value["$regexp"], value["options"], ascii=value["$regexp"].isascii())
    return value


def wire_from_readable(wire: Mapping[str, Any]) -> dict[str, Any]:
    """The golden readable wire hash as it arrives decoded from Marshal."""
    out: dict[str, Any] = {}
    for key, value in wire.items():
        if key == "fact":
            out[key] = [{Symbol(k): v for k, v in f.items()} for f in value]
        elif key == "compound":
            out[key] = [
                [
                    {
                        k: (
                            {fk: _regexp_or(fv) for fk, fv in v.items()}
                            if isinstance(v, dict)
                            else v
                        )
                        for k, v in e.items()
                    }
                    for e in stack
                ]
                for stack in value
            ]
        else:
            out[key] = [_regexp_or(v) for v in value]
    return out


def flag_pairs(flags: list[list[str]]) -> list[tuple[str, str]]:
    return [(flag, value) for flag, value in flags]


def filter_from_case(case: Mapping[str, Any]) -> Filter | dict[str, Any]:
    if "flags" in case:
        return Filter.from_flags(flag_pairs(case["flags"]))
    return wire_from_readable(case["wire"])


def golden_data_plugin(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]] | None,
) -> Callable[[str, str | None], Mapping[str, Any]] | None:
    if not table:
        return None

    def plugin(name: str, params: str | None) -> Mapping[str, Any]:
        return table[name].get("null" if params is None else params, {})

    return plugin


def run_match(case: Mapping[str, Any]) -> Any:
    node = case["node"]
    return check(
        filter_from_case(case),
        identity=node["identity"],
        facts=node["facts"],
        classes=node["classes"],
        agents=node["agents"],
        data_plugin=golden_data_plugin(node.get("data")),
    )


# ---------------------------------------------------------------- the golden table
def test_golden_table_size() -> None:
    assert len(PARSE_CASES) >= 40
    assert len(MATCH_CASES) >= 40


@pytest.mark.parametrize("case", PARSE_CASES, ids=[c["name"] for c in PARSE_CASES])
def test_parse_golden(case: dict[str, Any]) -> None:
    def parse() -> Any:
        if case["kind"] == "fact":
            return parse_fact(case["input"]).to_wire()
        if case["kind"] == "compound":
            return [t.to_wire() for t in parse_compound(case["input"])]
        return Filter.from_flags(flag_pairs(case["flags"])).to_wire()

    if case.get("error"):
        with pytest.raises(UsageError):
            parse()
    else:
        assert readable(parse()) == case["expect"]


@pytest.mark.parametrize("case", MATCH_CASES, ids=[c["name"] for c in MATCH_CASES])
def test_match_golden(case: dict[str, Any]) -> None:
    verdict = run_match(case)
    assert verdict.matched is case["expect"]["matched"]
    assert (verdict.error is not None) is case["expect"]["error"], verdict.error


# ---------------------------------------------------------------- parsing
def test_parse_fact_forms() -> None:
    assert parse_fact("a=b") == FactFilter("a", "==", "b")
    assert parse_fact("a=>1") == FactFilter("a", ">=", "1")
    assert parse_fact("a=/x/") == FactFilter("a", "=~", "/x/")
    assert parse_fact("a=/x/i") == FactFilter("a", "==", "/x/i")


def test_parse_fact_error_message() -> None:
    with pytest.raises(
        UsageError,
        match=r"^could not parse fact filter 'a b=c'; use fact=value, fact=/regex/ or fact<op>value",
    ):
        parse_fact("a b=c")


def test_parse_with_splits_facts_and_classes() -> None:
    assert parse_with(" a=b  web\tx>1 ") == Filter(
        cf_class=("web",), fact=(FactFilter("a", "==", "b"), FactFilter("x", ">", "1"))
    )


def test_parse_compound_tokens() -> None:
    stack = parse_compound("not base and fstat('/tmp').size>0")
    assert stack == (
        CompoundToken("not", "not"),
        CompoundToken("statement", "base"),
        CompoundToken("and", "and"),
        CompoundToken("fstatement", FStatement("fstat", "/tmp", "size", ">", "0")),
    )


def test_parse_compound_regex_is_regexp() -> None:
    (token,) = parse_compound("fstat('/tmp').type=/dir/")
    assert token.value == FStatement("fstat", "/tmp", "type", "=~", Regexp("dir", 0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo and", r"^parse error\(s\) near .* in -S input 'foo and'; a compound filter joins"),
        ("(foo", r"^unbalanced parentheses in -S input '\(foo'"),
        ("foo/bar", r"^malformed token\(s\) 'foo/bar' in -S input"),
        (
            "fstat('/tmp').size",
            r"^could not parse data function .fstat\('/tmp'\)\.size. in -S input; write it as",
        ),
        ("f('x').y=/(/", r"^invalid regular expression /\(/ in -S input"),
    ],
)
def test_parse_compound_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_compound(text)


def test_from_cli_orders_flags_then_with() -> None:
    flt = Filter.from_cli(
        identity=["n1"], cf_class=["c1"], fact=["a=1"], agent=["x"], with_=["b=2 c2"], select=["c3"]
    )
    assert flt == Filter(
        identity=("n1",),
        cf_class=("c1", "c2"),
        fact=(FactFilter("a", "==", "1"), FactFilter("b", "==", "2")),
        agent=("x",),
        compound=((CompoundToken("statement", "c3"),),),
    )


def test_from_flags_unknown_flag() -> None:
    with pytest.raises(
        UsageError, match=r"^unknown filter flag '-X'; use one of -I, -C, -F, -A, -W or -S$"
    ):
        Filter.from_flags([("-X", "a")])


def test_from_flags_long_names() -> None:
    flt = Filter.from_flags(
        [("--with-fact", "a=1"), ("--wc", "c"), ("--with-identity", "n"), ("--select", "x")]
    )
    assert flt.fact == (FactFilter("a", "==", "1"),)
    assert flt.cf_class == ("c",)
    assert flt.identity == ("n",)
    assert len(flt.compound) == 1


# ---------------------------------------------------------------- helpers
def test_empty() -> None:
    assert Filter().empty()
    assert not Filter(agent=("x",)).empty()


def test_sequences_become_tuples() -> None:
    flt = Filter(identity=["a"], compound=[[CompoundToken("statement", "x")]])  # type: ignore[arg-type]
    assert flt.identity == ("a",)
    assert flt.compound == ((CompoundToken("statement", "x"),),)
    hash(flt)
    with pytest.raises(TypeError):
        Filter(identity="node1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter(), False),
        (Filter(identity=("n1", "n2")), True),
        (
            Filter(identity=("n1",), fact=(FactFilter("a", "==", "b"),)),
            True,
        ),  # Ruby ignores the fact
        (Filter(identity=("n1", "/n/")), False),
        (Filter(identity=("n1\n/x",)), False),  # "^/" is a line anchor in Ruby
        (Filter(identity=(Regexp("n1"),)), False),
        (Filter(agent=("rpcutil",)), False),
    ],
)
def test_is_identity_only(flt: Filter, expected: bool) -> None:
    assert flt.is_identity_only() is expected


def test_with_agent_is_a_union() -> None:
    assert Filter(agent=("a", "b", "a")).with_agent("b").agent == ("a", "b")
    assert Filter(agent=("a",)).with_agent("c").agent == ("a", "c")
    assert Filter().with_agent("rpcutil") == Filter(agent=("rpcutil",))


# ---------------------------------------------------------------- wire form
def test_to_wire_key_order_and_types() -> None:
    wire = Filter.from_flags([("-F", "a>=1"), ("-I", "n1"), ("-A", "rpcutil")]).to_wire()
    assert list(wire) == ["fact", "cf_class", "agent", "identity", "compound"]
    assert all(type(k) is str for k in wire)
    (entry,) = wire["fact"]
    assert list(entry) == ["fact", "value", "operator"]
    assert all(type(k) is Symbol for k in entry)
    assert entry == {"fact": "a", "value": "1", "operator": ">="}


def test_empty_to_wire() -> None:
    assert Filter().to_wire() == {
        "fact": [],
        "cf_class": [],
        "agent": [],
        "identity": [],
        "compound": [],
    }


def test_fstatement_wire_order() -> None:
    (token,) = parse_compound("fstat('/tmp').size>0")
    assert list(token.to_wire()["fstatement"]) == [
        "r_compare",
        "operator",
        "value",
        "name",
        "params",
    ]
    (token,) = parse_compound("fstat('/tmp')=1")
    assert list(token.to_wire()["fstatement"]) == ["r_compare", "operator", "name", "params"]


def test_wire_round_trip() -> None:
    flt = Filter.from_flags(
        [
            ("-W", "a=1 web"),
            ("-F", "b=/x/"),
            ("-I", "n1"),
            ("-A", "rpcutil"),
            ("-S", "a=1 and not fstat('/tmp').type=/dir/"),
        ]
    )
    flt = dataclass_replace_identity(flt, (*flt.identity, Regexp("^n(1|2)$")))
    assert Filter.from_wire(flt.to_wire()) == flt


def dataclass_replace_identity(flt: Filter, identity: tuple[Any, ...]) -> Filter:
    return Filter(identity, flt.cf_class, flt.fact, flt.agent, flt.compound)


def test_from_wire_is_tolerant() -> None:
    flt = Filter.from_wire(
        {
            Symbol("agent"): ["rpcutil"],
            "puppet_class": ["web"],
            "cf_class": ["base"],
            "fact": [{"fact": "a", "value": "1", "operator": "=="}],  # string keys
            "identity": [Regexp("^n1$")],
            "compound": [
                [{"statement": "x"}, {}, {"bogus": 1}, {Symbol("and"): "and"}, {"statement": "y"}]
            ],
            "unknown": "ignored",
            7: "ignored",
        }
    )
    assert flt == Filter(
        identity=(Regexp("^n1$"),),
        cf_class=("web", "base"),
        fact=(FactFilter("a", "==", "1"),),
        agent=("rpcutil",),
        compound=(
            (
                CompoundToken("statement", "x"),
                CompoundToken("and", "and"),
                CompoundToken("statement", "y"),
            ),
        ),
    )


def test_from_wire_prefers_symbol_keys() -> None:
    entry = {"fact": "str", Symbol("fact"): "sym", Symbol("value"): "v", Symbol("operator"): "=="}
    assert Filter.from_wire({"fact": [entry]}).fact == (FactFilter("sym", "==", "v"),)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("nope", r"^filter must be a hash, got str$"),
        ({"agent": "rpcutil"}, r"^filter 'agent' must be an array, got str$"),
        ({"agent": [1]}, r"^filter 'agent' entries must be strings, got int: 1$"),
        (
            {"identity": [None]},
            r"^filter 'identity' entries must be strings or regexps, got NoneType",
        ),
        ({"fact": ["a=b"]}, r"^filter 'fact' entries must be hashes"),
        (
            {"fact": [{"fact": "a", "value": 1, "operator": "=="}]},
            r"^filter 'fact' entry needs string",
        ),
        ({"compound": [["x"]]}, r"^filter 'compound' entries must be hashes"),
        ({"compound": [[{"statement": 5}]]}, r"^compound statement must be a string"),
        (
            {"compound": [[{"fstatement": {"name": "f"}}]]},
            r"^compound fstatement needs string name",
        ),
    ],
)
def test_from_wire_errors(wire: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        Filter.from_wire(wire)


# ---------------------------------------------------------------- matching
NODE: dict[str, Any] = {
    "identity": "web1",
    "facts": {"os": "Debian"},
    "classes": ["base"],
    "agents": ["rpcutil"],
}


def test_check_counts() -> None:
    verdict = check(
        Filter.from_flags([("-C", "base"), ("-F", "os=Debian"), ("-I", "web1")]), **NODE
    )
    assert (verdict.matched, verdict.passed, verdict.failed, verdict.error) == (True, 3, 0, None)
    verdict = check(Filter(), **NODE)
    assert (verdict.matched, verdict.passed, verdict.failed) == (True, 1, 0)


def test_check_reports_ruby_errors() -> None:
    verdict = check(Filter.from_flags([("-I", "/web[/")]), **NODE)
    assert not verdict.matched
    assert verdict.error is not None and verdict.error.startswith("RegexpError: /web[/:")


def test_check_malformed_wire_is_no_match() -> None:
    verdict = check({"agent": "rpcutil"}, **NODE)
    assert (verdict.matched, verdict.error) == (False, "filter 'agent' must be an array, got str")


def test_matches_takes_raw_wire() -> None:
    wire = Filter.from_flags([("-F", "os=Debian")]).to_wire()
    assert matches(wire, **NODE)
    assert not matches({"identity": []}, **NODE)  # not Ruby's empty filter


def test_classes_are_chomped() -> None:
    assert matches(
        Filter(cf_class=("base",)), identity="x", facts={}, classes=["base\r\n"], agents=[]
    )


def test_data_plugin_errors_make_the_stack_false() -> None:
    def broken(name: str, params: str | None) -> Mapping[str, Any]:
        raise RuntimeError("boom")

    flt = Filter.from_flags([("-S", "not fstat('/x').size=1")])
    assert not matches(flt, data_plugin=broken, **NODE)
    assert not matches(flt, **NODE)  # no data plugins at all


def test_data_plugin_gets_lowercase_name_and_params() -> None:
    calls: list[tuple[str, str | None]] = []

    def plugin(name: str, params: str | None) -> Mapping[str, Any]:
        calls.append((name, params))
        return {"size": 3}

    flt = Filter.from_flags([("-S", "FStat_Data('/x').size=3 and sysctl().size>2")])
    assert matches(flt, data_plugin=plugin, **NODE)
    assert calls == [("fstat", "/x"), ("sysctl", None)]


def test_eval_compound() -> None:
    stack = parse_compound("os=Debian and not web")
    assert eval_compound(stack, facts={"os": "Debian"}, classes=["base"])
    assert not eval_compound(stack, facts={"os": "Debian"}, classes=["web"])
    assert not eval_compound(parse_compound("os<1x2"), facts={"os": "1.5"}, classes=[])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "true"),
        (3, "3"),
        (1.0, "1.0"),
        (1e14, "100000000000000.0"),
        (1e15, "1.0e+15"),
        (1.234567890123456e15, "1.234567890123456e+15"),
        (0.0001, "0.0001"),
        (0.00009, "9.0e-05"),
        (-0.0, "-0.0"),
        (float("inf"), "Infinity"),
        (float("nan"), "NaN"),
        ({1: [2.5, None]}, {"1": ["2.5", ""]}),
    ],
)
def test_normalize_facts_like_ruby(value: Any, expected: Any) -> None:
    assert normalize_facts(value) == expected


# ---------------------------------------------------------------- Ruby regexes
@pytest.mark.parametrize(
    ("source", "text", "found"),
    [
        (r"\Aab\z", "ab", True),
        (r"\Aab\z", "ab\n", False),
        (r"ab\Z", "ab\n", True),
        (r"^b", "a\nb", True),  # ^ is a line anchor
        (r"a$", "a\nb", True),
        (r"^$", "a\n", False),  # Ruby's ^ does not match after a final newline
        (r"\w", "é", False),  # \w \d \s are ASCII in Ruby
        (r"\d", "٣", False),
        (r"\s", "\u00a0", False),
        (r"\h+\z", "beef", True),
        (r"(?<y>\d+)-\k<y>", "12-12", True),
        (r"[[:digit:]]+x", "12x", True),
        (r"[[:alpha:][:digit:]]", "-", False),
        (r"[[:alpha:]]", "é", True),  # Unicode, as in Ruby
        (r"[^[:alpha:]]", "é", False),
        (r"[[:^digit:]]", "٣", False),
        (r"[^x[:digit:]]", "\n", True),
        (r"(?m:a.b)", "a\nb", True),  # Ruby m is Python DOTALL
        (r"[a|b]", "|", True),
        (r"\e", "\x1b", True),
        (r"\p{L}", "é", True),  # supported since the regex module runs our patterns
        (r"[[a]]", "a", True),
    ],
)
def test_compile_ruby_regex(source: str, text: str, found: bool) -> None:
    assert (compile_ruby_regex(source).search(text) is not None) is found


def test_compile_ruby_regex_options() -> None:
    assert compile_ruby_regex("WEB", 1).search("web")
    assert compile_ruby_regex("a.b", 4).search("a\nb")
    assert compile_ruby_regex("a b # comment", 2).search("ab")


@pytest.mark.parametrize("source", ["(", "[a", "[a&&b]", "[a[^b]]", "(?~ab)", "\\"])
def test_compile_ruby_regex_refuses(source: str) -> None:
    with pytest.raises(re.error):
        compile_ruby_regex(source)
