"""Our YAML serializer against the real Ruby (Psych 4.0.3 on libyaml 0.2.5, Debian 12).

One long-lived ``ruby`` child answers length-prefixed frames on stdin/stdout:

* ``D`` (dump): ``YAML.dump(Marshal.load(payload))``.  We send our Marshal encoding of a value
  (the Marshal codec is checked against Ruby elsewhere) and require Ruby's YAML to equal ours,
  byte for byte.
* ``L`` (load): ``Marshal.dump(YAML.safe_load(payload, permitted_classes: [Symbol, Regexp]))``
  - what MCollective's ssl plugin does with a YAML body.  We require Ruby to read our YAML
  back as the value we wrote.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcollective_py import marshal
from mcollective_py.errors import MarshalError, SerializationError
from mcollective_py.rubytypes import AsciiString, Regexp, Symbol
from mcollective_py.serializers import YAML
from tests.rubychild import RubyChild

RUBY = shutil.which("ruby")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(RUBY is None, reason="needs the ruby binary"),
]

RUBY_HANDLERS = r"""
require "yaml"
def handle(op, payload)
  case op
  when 68 then YAML.dump(Marshal.load(payload))
  when 76 then Marshal.dump(YAML.safe_load(payload.force_encoding("UTF-8"), permitted_classes: [Symbol, Regexp]))
  else raise "bad op #{op}"
  end
end
"""


class RubyYaml(RubyChild):
    def __init__(self, ruby: str) -> None:
        super().__init__(ruby, RUBY_HANDLERS)

    def dump(self, value: Any) -> bytes:
        ok, out = self.call(b"D", marshal.dumps(value))
        assert ok, f"ruby YAML.dump raised: {out.decode('utf-8', 'replace')}"
        return out

    def load(self, text: bytes) -> bytes:
        ok, out = self.call(b"L", text)
        assert ok, f"ruby safe_load raised: {out.decode('utf-8', 'replace')}"
        return out


@pytest.fixture(scope="module")
def ruby() -> Iterator[RubyYaml]:
    assert RUBY is not None
    server = RubyYaml(RUBY)
    yield server
    server.close()


def as_ruby_reads(value: Any) -> Any:
    """What a YAML round trip gives in Ruby for the values of ``test_mcollective_messages``:
    ASCII-only binary and US-ASCII strings come back as UTF-8 Strings."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("ascii") if bytes(value).isascii() else bytes(value)
    if isinstance(value, AsciiString):
        return str.__str__(value)
    if isinstance(value, dict):
        return {as_ruby_reads(k): as_ruby_reads(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_ruby_reads(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types (Symbol vs String, int vs float, NaN == NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(k1, k2) and same(v1, v2)
            for (k1, v1), (k2, v2) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def reads_like_ruby(ruby: RubyYaml, text: bytes) -> Any:
    """Our loader and Ruby's safe_load agree on ``text``: the same value, or both refuse."""
    ok, out = ruby.call(b"L", text)
    if ok:
        try:
            theirs = marshal.loads(out)
        except MarshalError:  # keys Ruby keeps apart but Python merges: we must refuse
            ok = False
    if not ok:
        with pytest.raises(SerializationError):
            YAML.loads(text)
        return None
    ours = YAML.loads(text)
    assert same(ours, theirs), f"we read {ours!r}, Ruby read {theirs!r} from {text!r}"
    return ours


def check(ruby: RubyYaml, value: Any) -> None:
    """Our YAML of ``value`` is Ruby's, byte for byte, and both sides read it the same."""
    ours = YAML.dumps(value)
    theirs = ruby.dump(value)
    assert ours == theirs, f"\nours:   {ours!r}\nruby:   {theirs!r}"
    reads_like_ruby(ruby, ours)


# ---------------------------------------------------------------- hand-picked corners
TRICKY_STRINGS = [
    "",
    " ",
    "a",
    "y",
    "n",
    "Y",
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "null",
    "Null",
    "~",
    "<<",
    "1",
    "01",
    "08",
    "0o7",
    "0x1F",
    "0b101",
    "1_000",
    "1,000",
    "+1",
    "-1",
    "1.0",
    "1.",
    ".5",
    "1e5",
    "1.0e+5",
    ".inf",
    "-.inf",
    ".NaN",
    "1:30",
    "1:30.5",
    "-1:2:3",
    "2024-01-01",
    "2024-1-1",
    "2024-01-01 10:00:00",
    "2024-01-01T10:00:00Z",
    ":foo",
    ":",
    "::",
    ':"q"',
    "foo:",
    "a: b",
    "a:b",
    "a #b",
    "a#b",
    "#x",
    "- x",
    "-x",
    "-",
    "--",
    "---",
    "...",
    "? x",
    "?x",
    "!x",
    "&a",
    "*a",
    "@x",
    "%x",
    "`x",
    "|x",
    ">x",
    "'q'",
    '"q"',
    "a'b",
    'a"b',
    "[x]",
    "{x}",
    "x,y",
    "/tmp/x",
    '/tmp/"x',
    "trailing ",
    " leading",
    "two  spaces",
    "tab\tx",
    "cr\rx",
    "x\n",
    "x\n\n",
    "\n",
    "\n\n",
    "a\nb",
    "a\nb\n",
    "a\nb\n\n",
    "\na",
    " a\nb",
    "a \nb",
    "a\n b",
    "a\r\nb",
    "é",
    "日本語",
    "\u00a0x",
    "\u0085x",
    "a\u2028b",
    "\ufeffbom",
    "emoji \U0001f600",
    "\x00",
    "\x01",
    "\x7f",
    "a\\b",
    "cert=lab-client",
    "uid=0",
    "0123456789abcdef0123456789abcdef",
    "e793642dd17c533dbf1dd2b87771be3d",
    "9a9a",
    "1e",
    "12e3",
    "a" * 100 + " " + "b" * 10,
    ("word " * 30).strip(),
    "x " * 60,
    "'" + "w " * 50 + "'",
    '"' + "w " * 50,
    "long  " * 20,
    "k" * 130,
    "a" * 79 + "  b",
    "é" * 50 + " " + "é" * 40,
]


@pytest.mark.parametrize("text", TRICKY_STRINGS, ids=repr)
def test_tricky_string_as_value_key_and_item(ruby: RubyYaml, text: str) -> None:
    check(ruby, text)
    check(ruby, {Symbol("k"): text, text: 1})
    check(ruby, [text, [text]])


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**31,
        2**64,
        -(2**70),
        1.5,
        -0.0,
        1e20,
        1e-5,
        1 / 3,
        1e16,
        123456789.125,
        float("inf"),
        float("-inf"),
        float("nan"),
        Symbol("agent"),
        Symbol(""),
        Symbol("with space"),
        Symbol("a:b"),
        Symbol("1"),
        Symbol("é"),
        b"abc",
        b"\xff\x00binary",
        bytes(range(256)),
        AsciiString("ping"),
        Regexp("^(n1|n2)$", 0),
        Regexp("a/b", 1),
        Regexp("x", 7),
        Regexp("é", 0, False),
        [],
        {},
        [[]],
        [{}],
        {Symbol("a"): []},
        {Symbol("a"): {}},
        [[1, [2, [3]]]],
        {1: 2, 2.5: None, None: 1},
        {(): 1} if False else {Symbol("x"): {Symbol("y"): {Symbol("z"): [1, {Symbol("w"): None}]}}},
        {"k" * 130: 1},
        {"multi\nline": 1},
        {Symbol(""): 1},
        {None: 1},
        {"": 2},
        {b"\xff": 1},
    ],
    ids=repr,
)
def test_scalar_and_collection_corners(ruby: RubyYaml, value: Any) -> None:
    check(ruby, value)


@pytest.mark.parametrize(
    "text", ["2023-02-30", "2024-13-01 10:00:00", "2024-01-01 10:00:00 +25:00", "0b_", "0x_"]
)
def test_where_we_quote_and_ruby_does_not(ruby: RubyYaml, text: str) -> None:
    """Ruby writes these plain (or raises), then cannot read them back: its safe_load refuses
    anything shaped like a Time/Date, and ``Integer("0b")`` raises.  We quote them."""
    ok, theirs = ruby.call(b"D", marshal.dumps(text))
    assert not ok or theirs == f"--- {text}\n".encode()
    assert not ok or not ruby.call(b"L", theirs)[0]
    ours = YAML.dumps(text)
    assert ours == f"--- '{text}'\n".encode()
    assert reads_like_ruby(ruby, ours) == text


def test_shared_objects_get_anchors_like_psych(ruby: RubyYaml) -> None:
    shared_list = [1, 2]
    shared_hash = {Symbol("a"): shared_list}
    value = [shared_hash, shared_list, shared_hash, {Symbol("k"): shared_list}]
    assert YAML.dumps(value) == ruby.dump(value)
    with pytest.raises(SerializationError, match="aliases are not allowed"):
        YAML.loads(YAML.dumps(value))


def test_mcollective_messages(ruby: RubyYaml) -> None:
    rpc = {
        Symbol("agent"): "rpcutil",
        Symbol("action"): "inventory",
        Symbol("caller"): "cert=lab-client",
        Symbol("data"): {Symbol("process_results"): True, Symbol("fact"): "osfamily"},
    }
    wrapper = {Symbol("ssl_msg"): rpc, Symbol("ssl_ttl"): 60, Symbol("ssl_msgtime"): 1795692174}
    body = YAML.dumps(wrapper).decode()
    env = {
        Symbol("body"): body,
        Symbol("senderid"): "mco-lab-client",
        Symbol("requestid"): "0123456789abcdef0123456789abcdef",
        Symbol("filter"): {
            "fact": [{Symbol("fact"): "role", Symbol("value"): "web", Symbol("operator"): "=="}],
            "cf_class": ["roles::web"],
            "agent": ["rpcutil"],
            "identity": [Regexp("^(node1|node2)$", 0)],
            "compound": [
                [
                    {"statement": "role=web"},
                    {"and": "and"},
                    {"fstatement": {"name": "fstat", "params": "/tmp"}},
                ]
            ],
        },
        Symbol("hash"): "A" * 60 + "\n" + "B" * 44 + "\n",
    }
    for value in (wrapper, env):
        check(ruby, value)
        assert same(YAML.loads(YAML.dumps(value)), as_ruby_reads(value))
    inventory = {
        Symbol("statuscode"): 0,
        Symbol("statusmsg"): "OK",
        Symbol("data"): {
            Symbol("agents"): ["discovery", "rpcutil"],
            Symbol("facts"): {
                "role": "web",
                "node_index": "1",
                "uptime": "2 days",
                "mem": "1024",
                "ok": "true",
            },
            Symbol("times"): {Symbol("utime"): 0.12, Symbol("stime"): 0.0},
            Symbol("threads"): ["#<Thread:0x000055d5 run>"],
        },
    }
    check(ruby, inventory)
    assert same(YAML.loads(YAML.dumps(inventory)), as_ruby_reads(inventory))


# ---------------------------------------------------------------- reading YAML Ruby did not write
HAND_WRITTEN = [
    "--- 0x1F\n",
    "--- -0b101\n",
    "--- 0755\n",
    "--- 1_000\n",
    "--- 1,000\n",
    "--- 08\n",
    "--- 1:30\n",
    "--- 1:2:3\n",
    "--- -1:30.5\n",
    "--- 1.\n",
    "--- .5\n",
    "--- +.5e+3\n",
    "--- 1e5\n",
    "--- -.e+5\n",
    "--- yes\n",
    "--- Off\n",
    "--- oN\n",
    "--- ~\n",
    "--- NULL\n",
    "--- \n",
    "--- .Inf\n",
    "--- -.INF\n",
    "--- .NaN\n",
    "--- :sym\n",
    "--- :'quoted sym'\n",
    '--- :"dq"x\n',
    "--- ':not'\n",
    "--- !!str 123\n",
    "--- !str 12\n",
    "--- !ruby/string x\n",
    "--- !ruby/symbol foo\n",
    "--- !ruby/sym bar\n",
    "--- ! 12\n",
    "--- !ruby/regexp /a.b/mix\n",
    "--- !ruby/regexp /é/\n",
    "--- !binary |\n  YWJj\n",
    "--- !binary YW Jj\n",
    "--- {a: 1, :b: [1, 2], 'c': {}}\n",
    "--- [a, :b, 'c', \"d\", 1.5]\n",
    "---\n:a: >\n  folded\n  text\n\n  para\n",
    "---\n:a: |2-\n   indented\n",
    "---\n- &x 1\n- 2\n",
    "---\n- &x 1\n- *x\n",
    "--- !ruby/object:Object {}\n",
    "--- !ruby/hash:Hash {}\n",
    "--- 2024-01-01\n",
    "--- 2024-01-01 10:00:00\n",
    "--- 2023-02-30\n",
    "--- !!int 5\n",
    "--- !!float 5\n",
    "---\n:a: 1\n'a': 2\n",
    "---\n:a: 1\n:a: 2\n",
    "---\n? [1]\n: 2\n",
    "--- a\n--- b\n",
    "",
    "---\n",
    "\t",
    '--- "\\x01"\n',
    "--- 'it''s'\n",
    "--- x #comment\n",
    "- 1\n- 2\n",
    "foo: bar\n",
    "--- |+\n  keep\n\n...\n",
    "%YAML 1.1\n--- 1\n",
]
DIFFERENT_ON_PURPOSE = {
    "---\n? [1]\n: 2\n": "Ruby allows an Array as a Hash key; Python dicts cannot",
    "--- a\n--- b\n": "Ruby reads the first document of a stream; we refuse a stream",
    "--- !!int 5\n": "Ruby falls back to scanning unknown tags; we refuse tags we do not know",
    "--- !!float 5\n": "same: a tag we do not know is refused",
}


@pytest.mark.parametrize("text", HAND_WRITTEN, ids=repr)
def test_we_read_what_ruby_reads(ruby: RubyYaml, text: str) -> None:
    if text in DIFFERENT_ON_PURPOSE:
        with pytest.raises(SerializationError):
            YAML.loads(text.encode())
        return
    reads_like_ruby(ruby, text.encode())


# ---------------------------------------------------------------- generated values
_TEXT = st.text(
    alphabet=st.sampled_from(
        list("ab yn0189:#-?,[]{}'\"\\/!&*|>%@`~.+_=\t\n\r")
        + ["é", "\u2028", "\x85", "日", "\U0001f600", "\x01"]
    ),
    max_size=12,
) | st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT
    | _TEXT.map(Symbol)
    | st.binary(max_size=10)
)
_KEYS = _TEXT | _TEXT.map(Symbol) | st.integers(min_value=-100, max_value=100)


def _dedupe_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in pairs:
        if k not in out:  # :a and "a" would collide in Python; Ruby keeps both
            out[k] = v
    return out


VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(st.tuples(_KEYS, inner), max_size=4).map(_dedupe_keys)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_generated_values_match_ruby(ruby: RubyYaml, value: Any) -> None:
    check(ruby, value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200))
def test_generated_long_text_matches_ruby(ruby: RubyYaml, text: str) -> None:
    check(ruby, {Symbol("statusmsg"): text, Symbol("words"): " ".join([text] * 3)})
