"""Unit tests of the Marshal codec: exact bytes per type, links, limits, error messages.

The byte tables were produced by Ruby 3.1's ``Marshal.dump`` of the equivalent Ruby values
(``tests/test_marshal_ruby.py`` checks the same things against a live Ruby).  The 04 08
version header is left out of the tables.
"""

from __future__ import annotations

import enum
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcollective_py import marshal
from mcollective_py.errors import MarshalError
from mcollective_py.rubytypes import AsciiString, EncodedString, HashWithDefault, Regexp, Symbol

H = b"\x04\x08"
S = Symbol


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (floats by bits, so nan and -0.0
    work; str subclasses and encodings are told apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, EncodedString):
        return a == b and a.encoding == b.encoding
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return (
            list(a) == list(b)
            and all(same(k1, k2) for k1, k2 in zip(a, b, strict=True))
            and all(same(a[k], b[k]) for k in a)
            and same(getattr(a, "default", None), getattr(b, "default", None))
        )
    return bool(a == b)


# (Python value, Ruby's Marshal.dump without the header)
TABLE = [
    (None, b"0"),
    (True, b"T"),
    (False, b"F"),
    (0, b"i\x00"),
    (1, b"i\x06"),
    (122, b"i\x7f"),
    (123, b"i\x01{"),
    (-1, b"i\xfa"),
    (-123, b"i\x80"),
    (-124, b"i\xff\x84"),
    (255, b"i\x01\xff"),
    (256, b"i\x02\x00\x01"),
    (-256, b"i\xff\x00"),
    (-257, b"i\xfe\xff\xfe"),
    (65536, b"i\x03\x00\x00\x01"),
    (-65537, b"i\xfd\xff\xff\xfe"),
    (2**30 - 1, b"i\x04\xff\xff\xff?"),
    (-(2**30), b"i\xfc\x00\x00\x00\xc0"),
    (2**30, b"l+\x07\x00\x00\x00@"),
    (-(2**30) - 1, b"l-\x07\x01\x00\x00@"),
    (2**31, b"l+\x07\x00\x00\x00\x80"),
    (-(2**32), b"l-\x08\x00\x00\x00\x00\x01\x00"),
    (2**64, b"l+\n\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00"),
    (1795691252, b"l+\x07\xf4\x12\x08k"),
    (2**62, b"l+\t\x00\x00\x00\x00\x00\x00\x00@"),
    (-(2**70), b"l-\n\x00\x00\x00\x00\x00\x00\x00\x00@\x00"),
    (1.5, b"f\x081.5"),
    (1.0, b"f\x061"),
    (-0.0, b"f\x07-0"),
    (0.0, b"f\x060"),
    (100.0, b"f\x081e2"),
    (1e20, b"f\t1e20"),
    (1e-05, b"f\t1e-5"),
    (0.0001, b"f\x0b0.0001"),
    (1e16, b"f\t1e16"),
    (123456789012345.0, b"f\x14123456789012345"),
    (1.2345678901234568e16, b"f\x1612345678901234568"),
    (0.1, b"f\x080.1"),
    (1.0 / 3, b"f\x170.3333333333333333"),
    (2.5e-07, b"f\x0b2.5e-7"),
    (5e-324, b"f\x0b5e-324"),
    (1.7976931348623157e308, b"f\x1b1.7976931348623157e308"),
    (math.inf, b"f\x08inf"),
    (-math.inf, b"f\t-inf"),
    (math.nan, b"f\x08nan"),
    (-1.23e20, b"f\r-1.23e20"),
    ("a", b'I"\x06a\x06:\x06ET'),
    ("", b'I"\x00\x06:\x06ET'),
    ("é", b'I"\x07\xc3\xa9\x06:\x06ET'),
    (AsciiString("a"), b'I"\x06a\x06:\x06EF'),
    (b"a", b'"\x06a'),
    (b"\xff", b'"\x06\xff'),
    (EncodedString("日本", "Shift_JIS"), b'I"\t\x93\xfa\x96{\x06:\rencoding"\x0eShift_JIS'),
    (EncodedString("é", "ISO-8859-1"), b'I"\x06\xe9\x06:\rencoding"\x0fISO-8859-1'),
    (Symbol("a"), b":\x06a"),
    (Symbol(""), b":\x00"),
    (Symbol("é"), b"I:\x07\xc3\xa9\x06:\x06ET"),
    (Symbol("E"), b":\x06E"),
    ([], b"[\x00"),
    ({}, b"{\x00"),
    ([1, [2]], b"[\x07i\x06[\x06i\x07"),
    ({Symbol("a"): 1, "b": None}, b'{\x07:\x06ai\x06I"\x06b\x06:\x06ET0'),
    (HashWithDefault({1: 2}, default=5), b"}\x06i\x06i\x07i\n"),
    (Regexp("a"), b"I/\x06a\x00\x06:\x06EF"),
    (Regexp("a", 7), b"I/\x06a\x07\x06:\x06EF"),
    (Regexp("é", 16, ascii=False), b"I/\x07\xc3\xa9\x10\x06:\x06ET"),
    (Regexp("^(n1|n2)$"), b"I/\x0e^(n1|n2)$\x00\x06:\x06EF"),
]


@pytest.mark.parametrize(("value", "wire"), TABLE, ids=[repr(v) for v, _ in TABLE])
def test_dumps_writes_rubys_bytes(value: Any, wire: bytes) -> None:
    assert marshal.dumps(value) == H + wire


@pytest.mark.parametrize(("value", "wire"), TABLE, ids=[repr(v) for v, _ in TABLE])
def test_loads_reads_rubys_bytes(value: Any, wire: bytes) -> None:
    assert same(marshal.loads(H + wire), value)


# ---------------------------------------------------------------------------------------------
# Decoding details


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        (b"i\x01\x05", 5),  # non-canonical packed ints are accepted, as by Ruby
        (b"i\x02\x05\x00", 5),
        (b"i\x05", 0),
        (b"i\xfb", 0),
        (b"l+\x00", 0),  # a Bignum of no words
        (b"l+\x06\x05\x00", 5),  # a Bignum that fits a Fixnum
        (b"f\x0e1.5e+0003", 1500.0),
        (b'I"\x06a\x00', b"a"),  # no ivars: binary, as Ruby does
        (b"}\x000", HashWithDefault()),  # a nil default
    ],
)
def test_loads_accepts_what_ruby_accepts(wire: bytes, value: Any) -> None:
    assert same(marshal.loads(H + wire), value)


def test_hash_with_nil_default_is_rewritten_as_a_plain_hash_like_ruby() -> None:
    assert marshal.dumps(marshal.loads(H + b"}\x000")) == H + b"{\x00"
    assert marshal.dumps(HashWithDefault({}, default=None)) == H + b"{\x00"


def test_symbols_decode_as_symbols_and_compare_like_text() -> None:
    value = marshal.loads(H + b"[\x08:\x06a;\x00:\x06b")
    assert value == ["a", "a", "b"]
    assert [type(v) for v in value] == [Symbol] * 3
    assert value[0] is value[1]


def test_invalid_utf8_round_trips_through_surrogateescape() -> None:
    wire = H + b'[\x07I"\x07a\xff\x06:\x06ETI"\x06\xfe\x06;\x00F'
    value = marshal.loads(wire)
    assert value == ["a\udcff", "\udcfe"]
    assert type(value[1]) is AsciiString
    assert marshal.dumps(value) == wire


def test_encoded_strings_share_one_encoding_name_like_ruby() -> None:
    # Ruby: s = "日本".encode("Shift_JIS"); Marshal.dump([s, s.dup, "x".encode("EUC-JP"),
    # "y".encode("Shift_JIS")]); the second Shift_JIS name is a link to object 2.
    wire = (
        H + b'[\tI"\t\x93\xfa\x96{\x06:\rencoding"\x0eShift_JISI"\t\x93\xfa\x96{\x06;\x00@\x07'
        b'I"\x06x\x06;\x00"\x0bEUC-JPI"\x06y\x06;\x00@\x07'
    )
    value = marshal.loads(wire)
    assert [(v, v.encoding) for v in value] == [
        ("日本", "Shift_JIS"),
        ("日本", "Shift_JIS"),
        ("x", "EUC-JP"),
        ("y", "Shift_JIS"),
    ]
    assert marshal.dumps(value) == wire


def test_text_not_valid_in_its_encoding_keeps_its_bytes() -> None:
    # Invalid Shift_JIS still round-trips (surrogateescape); an encoding Python has no
    # codec for gives the bytes.
    wire = H + b'I"\x06\x81\x06:\rencoding"\x0eShift_JIS'
    value = marshal.loads(wire)
    assert same(value, EncodedString("\udc81", "Shift_JIS"))
    assert marshal.dumps(value) == wire
    assert same(marshal.loads(H + b'I"\x06a\x06:\rencoding"\x0cNo-Such'), b"a")


def test_link_resolves_to_the_same_object() -> None:
    value = marshal.loads(H + b'[\x08I"\x07ab\x06:\x06ET@\x06[\x00')
    assert value[0] is value[1]


def test_object_numbering_counts_floats_bignums_and_encoding_names() -> None:
    # objects: 0 root, 1 1.5, 2 bignum, 3 Shift_JIS string, 4 its name, 5 [] -> @5
    wire = H + b'[\x0af\x081.5l+\x07\x00\x00\x00@I"\x06x\x06:\rencoding"\x0eShift_JIS[\x00@\x0a'
    value = marshal.loads(wire)
    assert value[3] is value[4] == []
    assert marshal.dumps(value) == wire


def test_cycles_are_refused_unless_allowed() -> None:
    wire = H + b"[\x06@\x00"
    with pytest.raises(
        MarshalError, match=r"^object link @0 refers to an object that is still being read"
    ):
        marshal.loads(wire)
    value = marshal.loads(wire, allow_cycles=True)
    assert value[0] is value
    assert marshal.dumps(value) == wire


def test_deep_nesting_needs_no_python_stack() -> None:
    depth = 100_000
    wire = H + b"[\x06" * depth + b"[\x00"
    value = marshal.loads(wire, max_depth=depth + 1)
    for _ in range(depth):
        value = value[0]
    assert value == []


# ---------------------------------------------------------------------------------------------
# Links written by dumps


def test_same_string_object_is_linked() -> None:
    agent = "rpcutil"
    assert marshal.dumps([agent, agent]) == H + b'[\x07I"\x0crpcutil\x06:\x06ET@\x06'


def test_equal_but_distinct_strings_are_not_linked() -> None:
    a = "".join(["rpc", "util"])
    b = "".join(["rpc", "util"])
    assert a is not b
    assert marshal.dumps([a, b]) == H + b'[\x07I"\x0crpcutil\x06:\x06ETI"\x0crpcutil\x06;\x00T'


@pytest.mark.parametrize("value", ["", "a", b"", b"a"], ids=repr)
def test_empty_and_one_character_strings_are_never_linked(value: Any) -> None:
    # CPython shares these objects by itself; two Ruby "a" are distinct.
    assert b"@" not in marshal.dumps([value, value])[3:]


def test_string_hash_keys_are_interned_like_ruby() -> None:
    # Ruby: Marshal.dump([{"a"=>1},{"a"=>2}]): the second key is a link (fstring).
    assert (
        marshal.dumps([{"a": 1}, {"a": 2}])
        == H + b'[\x07{\x06I"\x06a\x06:\x06ETi\x06{\x06@\x07i\x07'
    )
    # Keys link only to keys of the same encoding; the last "ab" is the same object as
    # the first value (one interned literal), hence its identity link @3.
    value = [{"ab": "ab"}, {AsciiString("ab"): 1, b"ab": 2}, "ab"]
    wire = marshal.dumps(value)
    assert wire.count(b"ab") == 4
    assert wire.endswith(b"@\x08")


def test_flonums_link_by_value_heap_floats_by_identity() -> None:
    assert marshal.dumps([1.5, float("1.5")]) == H + b"[\x07f\x081.5@\x06"
    big = 1e300
    assert marshal.dumps([big, float("1e300")]) == H + b"[\x07f\x0a1e300f\x0a1e300"
    assert marshal.dumps([big, big]) == H + b"[\x07f\x0a1e300@\x06"
    assert marshal.dumps([float("-0"), float("-0")]) == H + b"[\x07f\x07-0f\x07-0"


def test_fixnum_range_bignums_are_never_linked_true_bignums_by_identity() -> None:
    t = 1795691252
    assert marshal.dumps([t, t]) == H + b"[\x07l+\x07\xf4\x12\x08kl+\x07\xf4\x12\x08k"
    b = 2**70
    assert marshal.dumps([b, b]) == H + b"[\x07l+\x0a" + b"\x00" * 8 + b"@\x00@\x06"


def test_shared_containers_and_regexps_are_linked_tuples_are_not() -> None:
    inner: list[Any] = []
    rx = Regexp("a")
    assert (
        marshal.dumps([inner, inner, rx, rx]) == H + b"[\x09[\x00@\x06I/\x06a\x00\x06:\x06EF@\x07"
    )
    t = (1,)
    assert marshal.dumps([t, t]) == H + b"[\x07[\x06i\x06[\x06i\x06"


def test_symbol_table_counts_the_encoding_symbol() -> None:
    # Ruby: Marshal.dump([:E, "a"]) and Marshal.dump([:"é", :"é", "é", :E])
    assert marshal.dumps([S("E"), "a"]) == H + b'[\x07:\x06EI"\x06a\x06;\x00T'
    assert (
        marshal.dumps([S("é"), S("é"), "é", S("E")])
        == H + b'[\x09I:\x07\xc3\xa9\x06:\x06ET;\x00I"\x07\xc3\xa9\x06;\x06T;\x06'
    )


# ---------------------------------------------------------------------------------------------
# Python types that dumps maps


class Colour(enum.IntEnum):
    RED = 1


class Word(enum.StrEnum):
    HI = "hi"


@pytest.mark.parametrize(
    ("value", "same_as"),
    [
        ((1, "a"), [1, "a"]),
        (bytearray(b"ab"), b"ab"),
        (Colour.RED, 1),
        (Word.HI, "hi"),
        (HashWithDefault({1: 2}, default=None), {1: 2}),
    ],
    ids=repr,
)
def test_dumps_maps_python_types(value: Any, same_as: Any) -> None:
    assert marshal.dumps(value) == marshal.dumps(same_as)


def test_loads_accepts_bytes_like_input() -> None:
    assert marshal.loads(bytearray(H + b"T")) is True
    assert marshal.loads(memoryview(H + b"T")) is True
    with pytest.raises(TypeError, match=r"^marshal.loads\(\) needs bytes, not str$"):
        marshal.loads("\x04\x08T")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Errors: every message is pinned

DECODE_ERRORS = [
    (
        b"\x04\x09T",
        r"^unsupported Marshal version 4\.9: only 4\.8 \(Ruby 1\.8 and later\) is understood$",
    ),
    (b"\x04", r"^Marshal data too short \(1 bytes\): expected the version header 04 08$"),
    (H + b"TT", r"^1 trailing bytes after the Marshal value at offset 3$"),
    (H + b"i", r"^Marshal data truncated: the input ends inside a value \(3 bytes\)$"),
    (H + b"[\x07T", r"^Array declares 2 entries but only 1 bytes remain at offset 3$"),
    (
        H + b"[\x04\xff\xff\xff\x7f",
        r"^Array declares 2147483647 entries but only 0 bytes remain at offset 3$",
    ),
    (H + b"{\x07T", r"^Hash declares 2 entries but only 1 bytes remain at offset 3$"),
    (H + b'"\x0aab', r"^String declares 5 bytes but only 2 remain at offset 3$"),
    (H + b'"\xfa', r"^String has negative length -1 at offset 3$"),
    (
        H + b'"\x04\xff\xff\xff\x7f',
        r"^String of 2147483647 bytes exceeds max_length=16777216 at offset 3; pass a larger max_length to accept it$",
    ),
    (H + b"o:\x0bObject\x00", r"^Marshal type 'o' \(Object\) is not supported at offset 2$"),
    (
        H + b"u:\x09Time\x06x",
        r"^Marshal type 'u' \(user-defined _dump\) is not supported at offset 2$",
    ),
    (
        H + b"U:\x08Foo0",
        r"^Marshal type 'U' \(user-defined marshal_dump\) is not supported at offset 2$",
    ),
    (
        H + b"C:\x08Foo[\x00",
        r"^Marshal type 'C' \(subclass of a core class\) is not supported at offset 2$",
    ),
    (
        H + b"e:\x08Foo[\x00",
        r"^Marshal type 'e' \(object extended with a module\) is not supported at offset 2$",
    ),
    (H + b"d:\x08Foo0", r"^Marshal type 'd' \(Data object\) is not supported at offset 2$"),
    (H + b"S:\x08Foo\x00", r"^Marshal type 'S' \(Struct\) is not supported at offset 2$"),
    (H + b"c\x0bObject", r"^Marshal type 'c' \(Class\) is not supported at offset 2$"),
    (H + b"m\x0bKernel", r"^Marshal type 'm' \(Module\) is not supported at offset 2$"),
    (H + b"M\x0bKernel", r"^Marshal type 'M' \(old-style Module\) is not supported at offset 2$"),
    (H + b"Z", r"^unknown Marshal type byte 'Z' is not supported at offset 2$"),
    (H + b"\xff", r"^unknown Marshal type byte 0xff is not supported at offset 2$"),
    (
        H + b"I[\x00\x00",
        r"^instance variables on Marshal type '\[' \(Array\) are not supported at offset 2$",
    ),
    (H + b'I"\x06a\x06:\x07@x0', r"^instance variable :@x is not supported at offset 11$"),
    (
        H + b'I"\x06a\x06:\x06Ei\x06',
        r"^encoding flag E must be true or false, not Marshal type 'i' at offset 10$",
    ),
    (H + b'I"\x06a\x07:\x06ET:\x06EF', r"^String carries more than one encoding at offset 14$"),
    (H + b'I"\x06a\x06:\rencoding"\x00', r"^invalid encoding name b'' at offset 17$"),
    (
        H + b'I"\x06a\x06:\rencodingi\x00',
        r"^encoding name must be a String, not Marshal type 'i' at offset 17$",
    ),
    (H + b"{\x06[\x00T", r"^Hash key of type Array is not supported at offset 4$"),
    (H + b"[\x07[\x00{\x06@\x06T", r"^Hash key of type Array is not supported at offset 6$"),
    (
        H + b'{\x07:\x06ai\x06I"\x06a\x06:\x06ETi\x07',
        r"^Hash has 2 keys but only 1 are distinct in Python \(keys such as :a and \"a\", or 1, 1\.0 and true, differ in Ruby but not in Python\) at offset 2$",
    ),
    (H + b"{\x07i\x06Ti\x06F", r"^Hash has 2 keys but only 1 are distinct in Python"),
    (H + b"@\x06", r"^object link @1 refers to no object at offset 2$"),
    (H + b";\x00", r"^Symbol link ;0 refers to no symbol at offset 2$"),
    (H + b'I"\x06a\x06;\x00T', r"^Symbol link ;0 refers to no symbol at offset 7$"),
    (H + b"f\x081_5", r"^invalid Float text b'1_5' at offset 2$"),
    (H + b"f\x00", r"^invalid Float text b'' at offset 2$"),
    (H + b"f\x0dinfinity", r"^invalid Float text b'infinity' at offset 2$"),
    # Ruby's strtod takes any prefix ("1.5x", "."); we take only numbers as Ruby writes them
    (H + b"f\x091.5x", r"^invalid Float text b'1.5x' at offset 2$"),
    (H + b"f\x06.", r"^invalid Float text b'\.' at offset 2$"),
    (H + b"f\x46" + b"1" * 65, r"^Float text of 65 bytes is too long at offset 2$"),
    (H + b"l*\x06\x01\x00", r"^Bignum sign must be '\+' or '-', not '\*' at offset 2$"),
    (H + b"l+\x7f\x00", r"^Bignum declares 244 bytes but only 1 remain at offset 2$"),
    (
        H + b"/\x06a\x00",
        r"^Regexp without encoding \(binary /n Regexp\) is not supported at offset 2$",
    ),
    (
        H + b'I/\x06a\x00\x06:\rencoding"\x0eShift_JIS',
        r"^Regexp in encoding Shift_JIS is not supported at offset 2$",
    ),
    (
        H + b"I/\x07\xc3\xa9\x00\x06:\x06EF",
        r"^Regexp source b'\\xc3\\xa9' is not valid in its encoding at offset 2$",
    ),
    (H + b":\x06\xff", r"^Symbol b'\\xff' is not ASCII and carries no encoding at offset 2$"),
    (H + b"I:\x06\xff\x06:\x06ET", r"^Symbol b'\\xff' is not valid in its encoding at offset 2$"),
]


@pytest.mark.parametrize(
    ("wire", "message"), DECODE_ERRORS, ids=[repr(w) for w, _ in DECODE_ERRORS]
)
def test_decode_errors(wire: bytes, message: str) -> None:
    with pytest.raises(MarshalError, match=message):
        marshal.loads(wire)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            {"max_depth": 2},
            r"^nesting deeper than max_depth=2 at offset 6; pass a larger max_depth to accept it$",
        ),
        (
            {"max_items": 2},
            r"^Array of 1 entries takes the value over max_items=2 at offset 6; pass a larger max_items to accept it$",
        ),
        (
            {"max_length": 0},
            r"^String of 1 bytes exceeds max_length=0 at offset 9; pass a larger max_length to accept it$",
        ),
    ],
)
def test_limits(limits: dict[str, int], message: str) -> None:
    wire = H + b'[\x06[\x06[\x06"\x06a'
    assert marshal.loads(wire) == [[[b"a"]]]
    with pytest.raises(MarshalError, match=message):
        marshal.loads(wire, **limits)


def test_max_items_counts_ivars_and_hash_entries() -> None:
    wire = marshal.dumps({S("a"): "x", S("b"): "y"})  # 4 Hash items, 1 ivar pair per String
    assert marshal.loads(wire, max_items=4) == {"a": "x", "b": "y"}
    with pytest.raises(MarshalError, match=r"^Hash of 2 entries takes the value over max_items=3"):
        marshal.loads(wire, max_items=3)


ENCODE_ERRORS = [
    ({1, 2}, r"^cannot encode a value of type set as Ruby Marshal: use None, bool, int"),
    ({frozenset(): 1}, r"^cannot encode a value of type frozenset as Ruby Marshal"),
    (object(), r"^cannot encode a value of type object as Ruby Marshal"),
    ("a\ud800", r"^str 'a\\ud800' has '\\ud800' at index 1, which utf-8 cannot encode$"),
    (AsciiString("é"), r"^AsciiString 'é' has 'é' at index 0, which ascii cannot encode$"),
    (
        EncodedString("€", "ISO-8859-1"),
        r"^EncodedString\(ISO-8859-1\) '€' has '€' at index 0, which iso8859-1 cannot encode$",
    ),
    (
        EncodedString("x", "No-Such"),
        r"^EncodedString encoding 'No-Such' has no Python codec; pass the raw bytes as bytes instead$",
    ),
    (S("\ud800"), r"^Symbol '\\ud800' has"),
    (Regexp("a", 300), r"^Regexp options 300 do not fit in one byte$"),
]


@pytest.mark.parametrize(
    ("value", "message"),
    ENCODE_ERRORS,
    ids=[f"{i}-{type(v).__name__}" for i, (v, _) in enumerate(ENCODE_ERRORS)],
)
def test_encode_errors(value: Any, message: str) -> None:
    with pytest.raises(MarshalError, match=message):
        marshal.dumps(value)


def test_encoding_too_deep_a_value_is_a_marshal_error() -> None:
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(MarshalError, match=r"^value nested too deeply to encode"):
        marshal.dumps(value)


# ---------------------------------------------------------------------------------------------
# Round trip (Python only; see test_marshal_ruby.py for the same against Ruby)

values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(),
        st.binary(),
        st.text(st.characters(max_codepoint=127)).map(AsciiString),
        st.text().map(Symbol),
        st.builds(Regexp, st.text("ab.*"), st.integers(0, 7)),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.integers(), st.text().map(Symbol), st.binary()), children, max_size=4
        ),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_round_trip(value: Any) -> None:
    wire = marshal.dumps(value)
    back = marshal.loads(wire)
    assert same(back, value)
    assert marshal.dumps(back) == wire
