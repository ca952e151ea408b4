"""The YAML serializer without Ruby: the captured ssl-yaml vectors, round trips, and the error
contract (``test_yaml_ruby.py`` compares with the real Psych)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcollective_py.errors import SerializationError
from mcollective_py.rubytypes import AsciiString, HashWithDefault, Regexp, Symbol
from mcollective_py.serializers import MARSHAL, SERIALIZERS, YAML
from tests.conftest import VECTORS

YAML_VECTORS = sorted((VECTORS / "ssl-yaml").glob("*.body.bin"))


def test_registry() -> None:
    assert SERIALIZERS == {"marshal": MARSHAL, "yaml": YAML}
    assert (MARSHAL.text, YAML.text) == (False, True)


@pytest.mark.parametrize("path", YAML_VECTORS, ids=lambda p: p.name)
def test_vector_reencodes_byte_for_byte(path: Path) -> None:
    raw = path.read_bytes()
    outer = YAML.loads(raw)
    assert YAML.dumps(outer) == raw
    body = outer[Symbol("body")]
    assert type(body) is str and type(outer[Symbol("hash")]) is str
    assert outer[Symbol("hash")].count("\n") == 6
    inner = YAML.loads(body.encode())
    assert YAML.dumps(inner) == body.encode()
    assert all(type(k) is Symbol for k in outer)


def test_known_shapes() -> None:
    assert YAML.dumps("ping") == b"--- ping\n"
    assert (
        YAML.dumps({Symbol("a"): None, Symbol("b"): [], Symbol("c"): {}})
        == b"---\n:a:\n:b: []\n:c: {}\n"
    )
    assert YAML.dumps({Symbol("n"): "x\n\n"}) == b'---\n:n: "x\\n\\n"\n'
    assert YAML.dumps(["x\ny\n\n"]) == b"---\n- |+\n  x\n  y\n\n...\n"
    assert YAML.dumps(Regexp("^(n1|n2)$", 0)) == b"--- !ruby/regexp /^(n1|n2)$/\n"
    assert YAML.dumps(b"\xff\x00") == b"--- !binary |-\n  /wA=\n"
    assert (
        YAML.dumps(AsciiString("0123456789abcdef0123456789abcdef"))
        == b"--- '0123456789abcdef0123456789abcdef'\n"
    )
    assert YAML.dumps(HashWithDefault({1: 2}, default=0)) == b"---\n1: 2\n"


def test_reads_symbols_numbers_and_ruby_tags() -> None:
    text = b"---\n:sym: :value\nint: 0x1F\noct: 0755\nsexa: 1:30\nflt: 1.5e+3\nyes: yes\nnil: ~\nrx: !ruby/regexp /a.b/mi\nbin: !binary YWJj\nq: '12'\n"
    assert YAML.loads(text) == {
        Symbol("sym"): Symbol("value"),
        "int": 31,
        "oct": 493,
        "sexa": 5400,  # Psych's own arithmetic for two-part sexagesimals
        "flt": 1500.0,
        True: True,
        "nil": None,
        "rx": Regexp("a.b", 5),
        "bin": b"abc",
        "q": "12",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"--- &a [1]\n--- *a\n", "not a YAML body MCollective accepts"),
        (b"- &a 1\n- *a\n", "aliases are not allowed"),
        (b"--- !ruby/object:Object {}\n", "the tag '!ruby/object:Object' is not allowed"),
        (b"--- 2024-01-01\n", "has the shape of a Time or Date"),
        (b"--- 0b_\n", "invalid value for Integer()"),
        (b"--- " + b"[" * 70 + b"]" * 70 + b"\n", "nested deeper than 64"),
        (b"---\n:a: 1\na: 2\n", "of different types collide in Python"),
        (b"---\n? [1]\n: 2\n", "a collection as a mapping key is not supported"),
        (b"\xff\xfe\x00", "not a YAML body MCollective accepts"),
        (b"--- \x01\n", "control characters are not allowed at byte 4"),
        (b"key: [unclosed\n", "not a YAML body MCollective accepts"),
    ],
)
def test_refusals_are_serialization_errors(text: bytes, message: str) -> None:
    with pytest.raises(SerializationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        YAML.loads(text)


def test_values_yaml_cannot_carry() -> None:
    with pytest.raises(SerializationError, match="^cannot write a object as Ruby YAML$"):
        YAML.dumps({Symbol("x"): object()})
    with pytest.raises(
        SerializationError, match=r"^value holds text that is not valid UTF-8 \(a lone surrogate\)"
    ):
        YAML.dumps("bad \udcff")
    deep: list[Any] = []
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(SerializationError, match="^value is nested deeper than 200 levels$"):
        YAML.dumps(deep)


# ---------------------------------------------------------------- properties
_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | _TEXT
    | st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).map(Symbol)
    | st.binary(min_size=1, max_size=20).filter(lambda b: not b.isascii())
)
_KEYS = st.from_regex(r"[a-z_]{1,8}", fullmatch=True).map(Symbol) | _TEXT | st.integers()
VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=15,
)


def same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            same(k1, k2) and same(a[k1], b[k2]) for k1, k2 in zip(a, b, strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_round_trip(value: Any) -> None:
    if (
        isinstance(value, dict)
        and len({type(k) for k in value}) > 1
        and len({str(k) for k in value}) < len(value)
    ):
        return  # :a and "a" are distinct in Ruby, one key in Python
    again = YAML.loads(YAML.dumps(value))
    assert same(again, value), (value, again)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_raise_only_serialization_error(data: bytes) -> None:
    try:
        YAML.loads(data)
    except SerializationError:
        pass
