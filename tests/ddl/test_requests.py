"""Request validation, CLI conversion and defaults -- compared with Ruby's own code."""

from __future__ import annotations

from typing import Any

import pytest

from mcollective_py.ddl import (
    AgentDDL,
    apply_defaults,
    coerce_cli_arguments,
    parse_cli_argument,
    parse_ddl,
    prepare_request,
    reply_defaults,
    request_problems,
    ruby_rejection,
    validate_request,
)
from mcollective_py.errors import UsageError, ValidationError
from mcollective_py.rubytypes import Symbol
from tests.ddl.conftest import ruby_integration, run_ruby
from tests.ddl.rubyshape import tag

META = (
    'metadata :name => "t", :description => "d", :author => "a", :license => "l",\n'
    '         :version => "1", :url => "u", :timeout => 1\n'
)
MISSING = object()


def one_input(spec: str, key: str = ":x") -> str:
    return (
        META
        + f'action "act", :description => "d" do\n  input {key}, :prompt => "X", :description => "the x", {spec}\nend\n'
    )


def string_input(validation: str, maxlength: int = 0, optional: str = "false") -> str:
    return f":type => :string, :validation => {validation}, :maxlength => {maxlength}, :optional => {optional}"


RE = string_input("'^[a-z]+$'", 10)
ANCHORED = string_input(r"'\A[a-z]+\z'")
REGEXP_I = string_input("/^ab+c$/i")
REGEXP_X = string_input("/\\A a b c \\z/x")
SHELL = string_input(":shellsafe")
IPV4 = string_input(":ipv4address")
IPV6 = string_input(":ipv6address")
LIST = ':type => :list, :list => ["up", "down", 1], :optional => false'
BOOL = ":type => :boolean, :optional => false"
INT = ":type => :integer, :optional => false"
FLOAT = ":type => :float, :optional => false"
NUMBER = ":type => :number, :optional => false"
OPTIONAL = string_input("'^x$'", 1, "true")

# (id, ddl text, request data or MISSING for "no :x key")
CASES: list[tuple[str, str, Any]] = [
    ("regex-ok", one_input(RE), "abc"),
    ("regex-digit", one_input(RE), "abc1"),
    ("regex-line-anchor-lets-newline-through", one_input(RE), "abc\n; rm -rf /"),
    ("maxlength-exceeded", one_input(RE), "abcdefghijk"),
    ("maxlength-exact", one_input(RE), "abcdefghij"),
    ("maxlength-and-regex-both-fail", one_input(RE), "ABCDEFGHIJKL"),
    ("regex-empty", one_input(RE), ""),
    ("string-given-int", one_input(RE), 5),
    ("string-given-nil", one_input(RE), None),
    ("string-given-symbol", one_input(RE), Symbol("abc")),
    ("string-given-array", one_input(RE), ["abc"]),
    ("string-given-bool", one_input(RE), True),
    ("anchored-ok", one_input(ANCHORED), "abc"),
    ("anchored-trailing-newline", one_input(ANCHORED), "abc\n"),
    ("anchored-inner-newline", one_input(ANCHORED), "ab\nc"),
    ("big-Z-allows-final-newline", one_input(string_input(r"'\Aabc\Z'")), "abc\n"),
    ("regexp-literal-i", one_input(REGEXP_I), "ABBC"),
    ("regexp-literal-i-fail", one_input(REGEXP_I), "ac"),
    ("regexp-literal-x", one_input(REGEXP_X), "abc"),
    ("word-is-ascii", one_input(string_input(r"'\A\w+\z'")), "caf\u00e9"),
    ("digit-is-ascii", one_input(string_input(r"'\A\d+\z'")), "\u0661\u0662"),
    ("maxlength-counts-characters", one_input(string_input("'.'", 3)), "\u00e9\u00e9\u00e9"),
    ("lookahead-ok", one_input(string_input(r"'\A(?=.*\d)[a-z\d]{4,}\z'")), "ab12"),
    ("lookahead-fail", one_input(string_input(r"'\A(?=.*\d)[a-z\d]{4,}\z'")), "abcd"),
    ("named-backref-ok", one_input(string_input(r"'\A(?<q>[\"x])\w+\k<q>\z'")), "xabcx"),
    ("named-backref-fail", one_input(string_input(r"'\A(?<q>[\"x])\w+\k<q>\z'")), 'xabc"'),
    ("hex-class", one_input(string_input(r"'\A\h+\z'")), "deadBEEF"),
    ("hex-class-fail", one_input(string_input(r"'\A\h+\z'")), "xyz"),
    ("posix-class", one_input(string_input("'\\A[[:alnum:]_-]+\\z'")), "web-01_a"),
    ("inline-flag-group", one_input(string_input("'\\Aa(?i)bc\\z'")), "aBC"),
    ("inline-flag-group-scope", one_input(string_input("'\\A(?:a(?i)b)c\\z'")), "aBC"),
    ("dot-stops-at-newline", one_input(string_input("'\\Aa.c\\z'")), "a\nc"),
    ("multiline-option-dot", one_input(string_input("/\\Aa.c\\z/m")), "a\nc"),
    ("shellsafe-ok", one_input(SHELL), "ls -la /tmp"),
    ("shellsafe-semicolon", one_input(SHELL), "a; b"),
    ("shellsafe-backtick", one_input(SHELL), "`id`"),
    ("shellsafe-dollar", one_input(SHELL), "$HOME"),
    ("shellsafe-pipe", one_input(SHELL), "a|b"),
    ("shellsafe-and", one_input(SHELL), "a && b"),
    ("shellsafe-single-ampersand", one_input(SHELL), "a & b"),
    ("shellsafe-gt", one_input(SHELL), "a > b"),
    ("shellsafe-lt-and-dollar", one_input(SHELL), "$a < b"),
    ("ipv4-ok", one_input(IPV4), "127.0.1.10"),
    ("ipv4-cidr", one_input(IPV4), "127.0.0.0/8"),
    ("ipv4-netmask", one_input(IPV4), "127.1.2.3/255.255.0.0"),
    ("ipv4-bad-netmask", one_input(IPV4), "127.1.2.3/255.0.255.0"),
    ("ipv4-octet-256", one_input(IPV4), "256.1.1.1"),
    ("ipv4-zero-padded", one_input(IPV4), "01.2.3.4"),
    ("ipv4-three-octets", one_input(IPV4), "1.2.3"),
    ("ipv4-given-v6", one_input(IPV4), "::1"),
    ("ipv4-leading-space", one_input(IPV4), " 1.2.3.4"),
    ("ipv4-prefix-33", one_input(IPV4), "1.2.3.4/33"),
    ("ipv4-prefix-leading-zero", one_input(IPV4), "1.2.3.4/08"),
    ("ipv4-trailing-newline", one_input(IPV4), "1.2.3.4\n"),
    ("ipv4-empty-prefix", one_input(IPV4), "1.2.3.4/"),
    ("ipv4-hostname", one_input(IPV4), "localhost"),
    ("ipv6-loopback", one_input(IPV6), "::1"),
    ("ipv6-full", one_input(IPV6), "2001:db8:0:0:0:0:0:1"),
    ("ipv6-compressed", one_input(IPV6), "2001:db8::1"),
    ("ipv6-v4-mapped", one_input(IPV6), "::ffff:192.0.2.1"),
    ("ipv6-zone", one_input(IPV6), "fe80::1%eth0"),
    ("ipv6-brackets", one_input(IPV6), "[2001:db8::1]"),
    ("ipv6-prefix", one_input(IPV6), "2001:db8::/32"),
    ("ipv6-triple-colon", one_input(IPV6), "2001:db8:::1"),
    ("ipv6-given-v4", one_input(IPV6), "192.0.2.1"),
    ("ipv6-nine-groups", one_input(IPV6), "1:2:3:4:5:6:7:8:9"),
    ("ipv6-uppercase", one_input(IPV6), "2001:DB8::1"),
    ("ipv6-bad-embedded-octet", one_input(IPV6), "::ffff:300.1.1.1"),
    ("ipv6-trailing-compression", one_input(IPV6), "1:2:3:4:5:6:7::"),
    ("ipv6-too-long-with-compression", one_input(IPV6), "1:2:3:4::5:6:7:8"),
    ("ipv6-bracketed-v4", one_input(IPV6), "[1.2.3.4]"),
    ("list-ok", one_input(LIST), "up"),
    ("list-case-matters", one_input(LIST), "UP"),
    ("list-integer", one_input(LIST), 1),
    ("list-float-equals-integer", one_input(LIST), 1.0),
    ("list-string-is-not-integer", one_input(LIST), "1"),
    ("list-true-is-not-1", one_input(LIST), True),
    ("list-nil", one_input(LIST), None),
    ("boolean-true", one_input(BOOL), True),
    ("boolean-false", one_input(BOOL), False),
    ("boolean-string", one_input(BOOL), "true"),
    ("boolean-integer", one_input(BOOL), 1),
    ("integer-ok", one_input(INT), 5),
    ("integer-negative", one_input(INT), -5),
    ("integer-bignum", one_input(INT), 2**70),
    ("integer-given-float", one_input(INT), 5.0),
    ("integer-given-string", one_input(INT), "5"),
    ("integer-given-true", one_input(INT), True),
    ("float-ok", one_input(FLOAT), 1.5),
    ("float-given-integer", one_input(FLOAT), 1),
    ("float-given-string", one_input(FLOAT), "1.5"),
    ("number-integer", one_input(NUMBER), 1),
    ("number-float", one_input(NUMBER), 1.5),
    ("number-string", one_input(NUMBER), "1"),
    ("number-false", one_input(NUMBER), False),
    ("optional-missing", one_input(OPTIONAL), MISSING),
    ("optional-present-ok", one_input(OPTIONAL), "x"),
    ("optional-present-bad", one_input(OPTIONAL), "y"),
    ("required-missing", one_input(RE), MISSING),
    ("type-hash-refused", one_input(":type => :hash, :optional => true"), {"a": 1}),
    ("type-array-refused", one_input(":type => :array, :optional => true"), [1]),
    ("type-any-refused", one_input(":type => :any, :optional => true"), "x"),
    ("unknown-validator", one_input(string_input(":service_name")), "sshd"),
    ("validator-regex-symbol", one_input(string_input(":regex")), "x"),
    ("validation-typecheck-symbol", one_input(string_input(":integer")), "5"),
    ("validation-nil", one_input(string_input("nil")), "anything at all"),
    ("validation-array", one_input(string_input('["a", "b"]')), "a"),
    ("validation-array-fail", one_input(string_input('["a", "b"]')), "c"),
    ("maxlength-zero-unlimited", one_input(string_input("'.'", 0)), "x" * 5000),
    ("string-ddl-key", one_input(RE, key='"x"'), "abc"),
]


def _data(value: Any) -> dict[Any, Any]:
    return {} if value is MISSING else {Symbol("x"): value}


EXTRA: list[tuple[str, str, str, dict[Any, Any]]] = [
    ("request-string-key-matches-symbol-input", one_input(RE), "act", {"x": "abc"}),
    (
        "request-symbol-key-does-not-match-string-input",
        one_input(RE, key='"x"'),
        "act",
        {Symbol("x"): "abc"},
    ),
    (
        "request-extra-keys-ignored",
        one_input(RE),
        "act",
        {Symbol("x"): "abc", Symbol("process_results"): True},
    ),
    ("unknown-action", one_input(RE), "nope", {}),
    (
        "two-problems-ruby-reports-the-first",
        META + 'action "act", :description => "d" do\n'
        f'  input :a, :prompt => "A", :description => "a", {INT}\n'
        f'  input :b, :prompt => "B", :description => "b", {RE}\n'
        "end\n",
        "act",
        {Symbol("b"): "B!"},
    ),
]

ALL = [(cid, ddl, "act", _data(v)) for cid, ddl, v in CASES] + EXTRA


def test_the_table_is_large_enough() -> None:
    assert len(ALL) >= 60


@pytest.fixture(scope="module")
def ruby_outcomes() -> dict[str, dict[str, Any]]:
    payload = [
        {"mode": "validate", "ddl": ddl, "action": action, "data": tag(data)}
        for _, ddl, action, data in ALL
    ]
    return {
        cid: out for (cid, *_), out in zip(ALL, run_ruby("ruby_oracle.rb", payload), strict=True)
    }


@ruby_integration
@pytest.mark.parametrize(("cid", "ddl_text", "action", "data"), ALL, ids=[c[0] for c in ALL])
def test_validation_matches_ruby(
    cid: str,
    ddl_text: str,
    action: str,
    data: dict[Any, Any],
    ruby_outcomes: dict[str, dict[str, Any]],
) -> None:
    ddl = parse_ddl(ddl_text, name="t", filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    problems = request_problems(ddl, action, data)
    ruby = ruby_outcomes[cid]
    assert (not problems) == ruby["ok"], (problems, ruby)
    if problems:
        assert problems[0].ruby_message == ruby["error"]
        assert ruby_rejection(ddl, action, data) == ruby["error"]


@pytest.mark.parametrize(("cid", "ddl_text", "action", "data"), ALL, ids=[c[0] for c in ALL])
def test_problem_messages_are_helpful(
    cid: str, ddl_text: str, action: str, data: dict[Any, Any]
) -> None:
    ddl = parse_ddl(ddl_text, filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    problems = request_problems(ddl, action, data)
    if not problems:
        validate_request(ddl, action, data)  # does not raise
        return
    with pytest.raises(ValidationError) as info:
        validate_request(ddl, action, data)
    assert info.value.problems == tuple(p.message for p in problems)
    for problem in problems:
        assert "; " in problem.message, "each line says what to try"
        if problem.input is not None:
            assert problem.message.startswith(f"input '{problem.input}'")


def test_all_problems_are_reported_at_once() -> None:
    ddl = parse_ddl(EXTRA[-1][1], filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    with pytest.raises(ValidationError) as info:
        validate_request(ddl, "act", {Symbol("b"): "B!" * 10})
    assert [line.split(":")[0] for line in info.value.problems] == [
        "input 'a' is required; add a=<A> (a)",
        "input 'b'",
        "input 'b'",
    ]
    assert "is 20 characters, longer than the maximum of 10" in info.value.problems[1]
    assert "does not match the pattern ^[a-z]+$" in info.value.problems[2]


# --------------------------------------------------------------------------- CLI conversion

BOOLEAN_INPUTS = [
    "true",
    "T",
    "Yes",
    "y",
    "1",
    "0",
    "no",
    "N",
    "false",
    "F",
    "maybe",
    "",
    "TRUE ",
    "on",
]
NUMBER_INPUTS = [
    "12", "1.5", "-1", "1e3", " 12", "12 ", "1_000", "0x10", "12\nabc", "abc\n12", "1.5\n2",
    "1.5.2", ".5", "5.", "007", "\u0661\u0662", "",
]  # fmt: skip


def _convert(kind: str, value: str) -> tuple[bool, Any]:
    ddl = parse_ddl(one_input(BOOL if kind == "boolean" else NUMBER), filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    try:
        return True, coerce_cli_arguments(ddl.actions["act"], {"x": value})[Symbol("x")]
    except ValidationError:
        return False, None


@ruby_integration
def test_cli_conversion_matches_ruby() -> None:
    cases = [("boolean", v) for v in BOOLEAN_INPUTS] + [("number", v) for v in NUMBER_INPUTS]
    ruby = run_ruby("ruby_oracle.rb", [{"mode": kind, "value": v} for kind, v in cases])
    for (kind, value), outcome in zip(cases, ruby, strict=True):
        ok, converted = _convert(kind, value)
        assert ok == outcome["ok"], (kind, value, outcome)
        if ok:
            assert tag(converted) == outcome["result"], (kind, value)


def test_cli_conversion_examples() -> None:
    ddl = parse_ddl(open_ddl("haproxy"), filename="haproxy.ddl")
    assert isinstance(ddl, AgentDDL)
    data = coerce_cli_arguments(
        ddl.actions["status"], ["server=web1", "fail_on_not_found=no", "extra=1", "a=b=c"]
    )
    assert data == {"server": "web1", "fail_on_not_found": False, "extra": "1", "a": "b=c"}
    assert all(type(k) is Symbol for k in data)
    numbers = coerce_cli_arguments(ddl.actions["set_weight"], ["weight=12", "server=x"])
    assert numbers[Symbol("weight")] == 12 and type(numbers[Symbol("weight")]) is int
    with pytest.raises(
        ValidationError, match=r"input 'weight': \"-1\" does not look like a number"
    ):
        coerce_cli_arguments(ddl.actions["set_weight"], ["weight=-1"])
    with pytest.raises(
        ValidationError, match=r"input 'fail_on_not_found': \"maybe\" is not a boolean"
    ):
        coerce_cli_arguments(ddl.actions["status"], ["fail_on_not_found=maybe"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=b", ("a", "b")),
        ("a=b=c", ("a", "b=c")),
        ("==x", ("=", "x")),
        ("x\nk=v\ny=z", ("k", "v\ny=z")),  # the key as Ruby finds it; the value intact
        ("k=abc\n123", ("k", "abc\n123")),
        ("k=\nabc", ("k", "\nabc")),
    ],
)
def test_parse_cli_argument_like_ruby(text: str, expected: tuple[str, str]) -> None:
    assert parse_cli_argument(text) == expected


@pytest.mark.parametrize("text", ["a=", "=b", "ab", ""])
def test_parse_cli_argument_refuses(text: str) -> None:
    with pytest.raises(UsageError, match=r"^could not parse argument .*expected key=value"):
        parse_cli_argument(text)


def test_prepare_request_reports_everything_once() -> None:
    ddl = parse_ddl(open_ddl("haproxy"), filename="haproxy.ddl")
    assert isinstance(ddl, AgentDDL)
    with pytest.raises(ValidationError) as info:
        prepare_request(ddl, "set_weight", ["weight=heavy", "backend=bad name", "oops"])
    assert info.value.problems == (
        "could not parse argument 'oops': expected key=value with a non-empty key and value (e.g. server=web1)",
        "input 'weight': \"heavy\" does not look like a number; write digits (12) or digits.digits (1.5), without sign or exponent",
        "input 'server' is required; add server=<Server> (Server to change)",
        "input 'backend': \"bad name\" does not match the pattern \\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}\\z "
        "(Only change the weight in this backend (all backends when not given)); use a value that matches it",
    )
    assert prepare_request(ddl, "set_weight", ["server=web1", "weight=7"]) == {
        "server": "web1",
        "weight": 7,
    }


def open_ddl(name: str) -> str:
    from tests.ddl.conftest import REPO

    return (REPO / "ddl" / f"{name}.ddl").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- defaults

DEFAULTS_DDL = META + (
    'action "act", :description => "d" do\n'
    f'  input :a, :prompt => "A", :description => "a", {INT}, :default => 5\n'
    '  input :b, :prompt => "B", :description => "b", :type => :string, :validation => ".",'
    ' :maxlength => 0, :optional => true, :default => "opt"\n'
    f'  input :c, :prompt => "C", :description => "c", {INT}\n'
    f'  input :d, :prompt => "D", :description => "d", {BOOL}, :default => false\n'
    f'  input :e, :prompt => "E", :description => "e", {LIST}, :default => ["up"]\n'
    "end\n"
)
DEFAULT_CASES: list[dict[Any, Any]] = [
    {},
    {Symbol("a"): 1},
    {"a": 1},
    {Symbol("c"): 2, Symbol("b"): "given"},
    {Symbol("d"): True, Symbol("e"): "down"},
]


@ruby_integration
def test_defaults_match_ruby() -> None:
    ddl = parse_ddl(DEFAULTS_DDL, filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    payload = [
        {"mode": "defaults", "ddl": DEFAULTS_DDL, "action": "act", "data": tag(d)}
        for d in DEFAULT_CASES
    ]
    for data, outcome in zip(DEFAULT_CASES, run_ruby("ruby_oracle.rb", payload), strict=True):
        assert outcome["ok"], outcome
        assert tag(apply_defaults(ddl.actions["act"], data)) == outcome["result"]


def test_defaults_only_for_required_inputs() -> None:
    ddl = parse_ddl(DEFAULTS_DDL, filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    action = ddl.actions["act"]
    result = apply_defaults(action, {})
    assert result == {"a": 5, "d": False, "e": ["up"]}
    assert "b" not in result, "optional inputs never get their default sent"
    result[Symbol("e")].append("mutated")
    assert action.inputs["e"].default == ["up"], "defaults are copied"


def test_reply_defaults() -> None:
    ddl = parse_ddl(open_ddl("haproxy"), filename="haproxy.ddl")
    assert isinstance(ddl, AgentDDL)
    data = reply_defaults(ddl.actions["status"])
    assert data == {
        "backends": [],
        "state": "unknown",
        "weight": None,
        "sessions": 0,
        "check_status": None,
    }
    assert all(type(k) is Symbol for k in data)


def test_multi_line_values_reach_validation_intact() -> None:
    # Ruby's validation /^\d+$/ accepts "abc\n123" (line anchors); the CLI must not cut it
    ddl = parse_ddl(one_input(string_input(r"'^\d+$'")), filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    data = prepare_request(ddl, "act", ["x=abc\n123"])
    assert data == {Symbol("x"): "abc\n123"}
    with pytest.raises(ValidationError, match=r"input 'x': .*does not match the pattern"):
        prepare_request(ddl, "act", ["x=abc\ndef"])
