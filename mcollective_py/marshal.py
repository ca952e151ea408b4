"""Ruby Marshal 4.8 codec for the values MCollective puts on the wire.

Contract
========

``dumps(obj) -> bytes`` writes what Ruby 3.1's ``Marshal.dump`` writes for the equivalent
Ruby value, byte for byte (checked against real Ruby by ``tests/test_marshal_ruby.py``).  It
raises :class:`~mcollective_py.errors.MarshalError` naming the type of any value it cannot
represent, and for text that cannot be encoded (e.g. a lone surrogate in a ``str``).

``loads(data) -> value`` reads one Marshal 4.8 value that must fill ``data`` exactly.  It is
meant for untrusted network input: for *any* bytes it returns a value or raises
``MarshalError`` (never ``IndexError``, ``UnicodeDecodeError``, ``RecursionError``...), it
never instantiates a class named in the data, it needs no Python stack for nesting, it runs
in time linear in ``len(data)`` (a Hash whose numeric keys pile up on one Python hash value,
a hash-flooding pattern, is refused), and the memory it allocates is bounded by about 40x
``len(data)`` (the worst case is an Array of empty Hashes) plus about 250 bytes per level of
nesting (``max_depth``), and by the ``max_*`` limits.

Type mapping (see :mod:`mcollective_py.rubytypes`)
==================================================

=====================  =========================  ==========================================
Ruby                   Marshal                    Python
=====================  =========================  ==========================================
nil / true / false     ``0`` ``T`` ``F``          None / True / False
Integer                ``i`` (Fixnum) ``l``       int; ints outside -2**30..2**30-1 are
                       (Bignum)                   written as Bignums, like 64-bit Ruby does
Float                  ``f``                      float (Ruby's shortest text: ``1e2``,
                                                  ``1e-5``, ``-0``, ``inf``, ``nan``...)
String, UTF-8          ``I"`` + ``:E`` true       str
String, US-ASCII       ``I"`` + ``:E`` false      AsciiString
String, other          ``I"`` + ``:encoding``     EncodedString(text, encoding)
String, ASCII-8BIT     ``"``                      bytes (``bytearray`` is accepted by dumps)
Symbol                 ``:`` / ``;`` / ``I:``     Symbol
Array                  ``[``                      list (``tuple`` is accepted by dumps)
Hash                   ``{``                      dict
Hash with default      ``}``                      HashWithDefault (written as ``{`` when its
                                                  default is None, as Ruby does)
Regexp                 ``I/``                     Regexp(source, options, ascii)
=====================  =========================  ==========================================

Everything else (``o`` objects, ``u``/``U``/``C``/``e``/``d`` user classes, ``S`` Structs,
``c``/``m``/``M`` classes and modules, ``I`` on other types, instance variables other than
the encoding ones) is refused with ``MarshalError``.

Text that is not valid in its declared encoding
===============================================

Ruby strings may hold bytes that are invalid in their encoding (e.g. a Latin-1 file read as
UTF-8).  ``loads`` keeps them with Python's ``surrogateescape`` convention (PEP 383): each bad
byte becomes U+DC80..U+DCFF in the ``str``/``AsciiString``/``EncodedString``, and ``dumps``
turns those back into the original bytes, so such a string round-trips exactly.  When that
cannot work (an ``encoding`` Python has no codec for, or bytes its codec cannot decode and
re-encode to the same bytes), the String is returned as ``bytes``: the content is kept, the
encoding tag is lost.  Symbols and Regexp sources must be valid (Ruby itself refuses invalid
ones); ``dumps`` writes a Regexp whose source is not ASCII as UTF-8 whatever its ``ascii``.

Object links (``@``) and what ``dumps`` shares
==============================================

Ruby numbers every non-immediate object it writes (strings, floats, bignums, arrays, hashes,
regexps, and the name string of an ``encoding`` ivar; root = 0) and writes ``@<n>`` when the
same object comes again.  ``loads`` resolves every link: a linked value is the *same* Python
object.  ``dumps`` writes a link exactly where Ruby would for the equivalent Ruby objects, so
that re-encoding a decoded Ruby message gives back its bytes:

* the same object again, by identity: ``list``, ``dict``, ``Regexp``, ``str``,
  ``AsciiString``, ``EncodedString``, ``bytes``, a float that Ruby keeps on the heap (inf,
  nan, -0.0, magnitudes below ~1e-77 or above ~1e77) and an int outside -2**62..2**62-1.
  Real MCollective relies on this: a Ruby request's ``:agent`` is a link to the same String
  in ``filter["agent"]``.  Build messages the way Ruby does (one object where Ruby shares one)
  to get Ruby's bytes;
* except ``""`` and one-character ``str``/``bytes``, which are never linked: CPython shares
  those objects on its own (decoding two distinct Ruby ``"a"`` gives one Python object);
* a float equal, bit for bit, to an earlier one that 64-bit Ruby keeps as an immediate
  "flonum" (every other float): Ruby registers those by value, so ``[1.5, 1.5]`` is
  ``f 1.5 @``;
* a Hash *key* String equal (same type, encoding and text) to an earlier Hash key: Ruby
  interns String keys (``rb_hash_key_str`` makes them fstrings), so repeated keys are one
  object.  Keys never link to values, nor values to keys;
* a repeated ``encoding`` name (Ruby writes one name String per dump).

Never linked: ints in -2**62..2**62-1 (Ruby Fixnums; those beyond 2**30 get a fresh Bignum
each time), tuples (CPython shares equal tuple constants), None, bools; Symbols always go
through the symbol table.  The one case where a re-encoding differs from Ruby's bytes is Ruby
data that links a one-character or empty String; the value decoded is the same either way.

Decoder limits
==============

``max_depth`` (default 64) bounds nesting, ``max_length`` (16 MiB) the declared byte length of
any one String/Symbol/Regexp source/Bignum, and ``max_items`` (1,000,000) the total number of
declared Array elements, Hash keys and values, and instance variables.

Links are counted as what they expand to: a link to an Array or Hash costs one item plus
every item inside it (and inside whatever it links to in turn), a link to a String one item
per started 64 bytes.  ``max_expansion`` (100,000) bounds what links add in total, and the
expanded total must stay within ``max_items``.  So a value decoded from ``n`` bytes is never
larger, walked in full (audit rendering, JSON, validation), than about ``n + max_expansion``
items: the 528-byte ``x = [x, x]`` twenty levels deep, which is three million items walked,
is refused after a few hundred bytes.  Declared lengths and
counts may not exceed what the remaining input could hold, the version must be 4.8, and
trailing bytes are an error.  A link to an object that is still being read (a reference
cycle) is refused unless ``allow_cycles=True``: MCollective never sends one, and cyclic values
make JSON output and ``rubytypes.plain`` recurse forever.  Hash keys must be hashable and
stay distinct in Python: an Array/Hash key, or keys that Ruby keeps apart but Python merges
(``:a`` and ``"a"``, ``1``/``1.0``/``true``), raise ``MarshalError``.  Floats are accepted
only in the textual forms Ruby writes (sign, digits, ``.``, exponent; ``inf``/``-inf``/``nan``).

The compiled fast path
======================

``loads`` first hands the input to ``mcollective_py._cmarshal.fast_loads``, a small C
decoder, when it is built (``ACCELERATED``), ``MCO_PY_PURE_MARSHAL=1`` is not set, and
``allow_cycles`` is False.  Its contract: it returns exactly the value the pure decoder
below would return (same types, values, dict order, object sharing and Symbol cache), or a
FALLBACK sentinel, and then the pure decoder runs and gives the value or the
``MarshalError``.  It never raises and never produces an error of its own, so everything
above holds with or without it, messages included.

It reads the subset MCollective messages use: ``0 T F``, Fixnums, Bignums of at most 8 bytes,
binary Strings, ``I"`` Strings and ``I/`` Regexps whose only instance variable is ``E``,
``:`` Symbols and ``;`` links, Arrays, Hashes, ``@`` links and Floats, under the same limits
and link accounting as the pure decoder, check for check.  Everything else (``}``, ``I:``,
``encoding`` names, the unsupported types), any malformed or truncated input, any limit
reached, a link to an object still being read, a Hash with more than 32 numeric keys (a
stricter stand-in for the hash-flooding check) and any failed allocation give FALLBACK.  It
bounds-checks every read, does its arithmetic in 64 bits on lengths that are at most 32 bits
on the wire, and keeps nesting on a heap stack.  ``tests/test_marshal_accel.py`` checks it
against the pure decoder on the captured vectors, generated values and hostile inputs.
Without a C compiler and Python's headers the package installs without it.
"""

from __future__ import annotations

import codecs
import functools
import math
import os
import re
import struct
from typing import Any

from .errors import MarshalError
from .rubytypes import AsciiString, EncodedString, HashWithDefault, Regexp, Symbol

__all__ = [
    "ACCELERATED",
    "loads",
    "dumps",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_EXPANSION",
]

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_LENGTH = 16 * 1024 * 1024
DEFAULT_MAX_ITEMS = 1_000_000
DEFAULT_MAX_EXPANSION = 100_000

# Fixnum range of Marshal (Ruby writes anything outside it as a Bignum, even on 64 bits).
_FIXNUM_MIN = -(2**30)
_FIXNUM_MAX = 2**30 - 1
# Longest Float text we accept; Ruby writes at most 24 bytes ("-1.7976931348623157e308").
_MAX_FLOAT_TEXT = 64

_UNSUPPORTED = {
    ord("o"): "Object",
    ord("u"): "user-defined _dump",
    ord("U"): "user-defined marshal_dump",
    ord("C"): "subclass of a core class",
    ord("e"): "object extended with a module",
    ord("d"): "Data object",
    ord("S"): "Struct",
    ord("c"): "Class",
    ord("m"): "Module",
    ord("M"): "old-style Module",
}

_FLOAT_RE = re.compile(rb"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_FLOAT_SPECIAL = frozenset({b"nan", b"inf", b"-inf"})

# Ruby encoding names that Python spells differently (Python normalises case and -/_).
_CODEC_ALIASES = {"windows-31j": "cp932", "cp65001": "utf-8", "ibm437": "cp437"}
# Python "text encodings" that are really transforms, never Ruby string encodings.
_NOT_CHARSETS = frozenset(
    {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)


class _Pending:
    """Placeholder for an object whose slot is reserved but that is not complete yet."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<pending>"


_PENDING: Any = _Pending()

# Symbols are immutable and every message repeats the same few, so share them across calls.
_SYMBOL_CACHE: dict[str, Symbol] = {}
_SYMBOL_CACHE_MAX = 4096
_SYMBOL_CACHE_NAME_MAX = 64


# The optional compiled fast path (mcollective_py/_cmarshal.c, see "The compiled fast path"
# above): None when it is not built or MCO_PY_PURE_MARSHAL=1.  Tests set it to None to
# compare with the pure decoder.
_FAST: Any = None
_FALLBACK: Any = None
if os.environ.get("MCO_PY_PURE_MARSHAL") != "1":
    try:
        from . import _cmarshal  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        pass
    else:
        _cmarshal.configure(
            Symbol,
            AsciiString,
            Regexp,
            _SYMBOL_CACHE,
            _SYMBOL_CACHE_MAX,
            _SYMBOL_CACHE_NAME_MAX,
        )
        _FAST = _cmarshal.fast_loads
        _FALLBACK = _cmarshal.FALLBACK
ACCELERATED: bool = _FAST is not None


@functools.lru_cache(maxsize=64)
def _codec_for(encoding: str) -> str | None:
    """Python codec name for a Ruby encoding name, or None when Python has none."""
    name = _CODEC_ALIASES.get(encoding.lower(), encoding)
    try:
        info = codecs.lookup(name)
        b"".decode(info.name)  # refuses bytes->bytes and str->str codecs
    except (LookupError, ValueError):
        return None
    if info.name in _NOT_CHARSETS:
        return None
    return info.name


def _decode_encoded(raw: bytes, encoding: str) -> EncodedString | bytes:
    """Text of ``raw`` in Ruby ``encoding``, or ``raw`` itself when it cannot round-trip."""
    codec = _codec_for(encoding)
    if codec is None:
        return raw
    try:
        text = raw.decode(codec, "surrogateescape")
        if text.encode(codec, "surrogateescape") != raw:
            return raw
    except (UnicodeError, ValueError):
        return raw
    return EncodedString(text, encoding)


def _bits(value: float) -> int:
    bits: int = struct.unpack("<Q", struct.pack("<d", value))[0]
    return bits


def _is_flonum(value: float) -> bool:
    """True if 64-bit Ruby stores this float as an immediate (linked by value in Marshal)."""
    bits = _bits(value)
    if bits == 0:
        return True  # +0.0
    return ((bits >> 60) & 7) in (3, 4) and bits != 0x3000000000000000


# ---------------------------------------------------------------------------------------------
# Decoder


def loads(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_length: int = DEFAULT_MAX_LENGTH,
    max_items: int = DEFAULT_MAX_ITEMS,
    max_expansion: int = DEFAULT_MAX_EXPANSION,
    allow_cycles: bool = False,
) -> Any:
    """Decode one Ruby Marshal 4.8 value that fills ``data`` exactly.

    Returns the Python value per the module's type mapping.  Raises ``MarshalError`` for
    anything that is not one complete, supported Marshal 4.8 value within the limits (see
    the module docstring), and ``TypeError`` only if ``data`` is not bytes-like.
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"marshal.loads() needs bytes, not {type(data).__name__}")
        data = bytes(data)
    if data[:2] != b"\x04\x08":
        if len(data) < 2:
            raise MarshalError(
                f"Marshal data too short ({len(data)} bytes): expected the version header 04 08"
            )
        raise MarshalError(
            f"unsupported Marshal version {data[0]}.{data[1]}: only 4.8 (Ruby 1.8 and later) "
            "is understood"
        )
    if _FAST is not None and not allow_cycles:
        value = _FAST(data, max_depth, max_length, max_items, max_expansion)
        if value is not _FALLBACK:
            return value
    try:
        inp = _Input(data, max_depth, max_length, max_items)
        inp.max_expansion = max_expansion
        return _decode(inp, allow_cycles)
    except IndexError:
        raise MarshalError(
            f"Marshal data truncated: the input ends inside a value ({len(data)} bytes)"
        ) from None
    except RecursionError:
        raise MarshalError(
            "Marshal data nested too deeply for Python's stack; lower max_depth"
        ) from None


class _Input:
    """The input and tables of one ``loads`` call, shared by the helpers below.

    Helpers take a position and return ``(value, next position)``; an ``IndexError`` from
    reading past the end means the input is truncated (``loads`` reports it).
    """

    __slots__ = (
        "data",
        "text",
        "dlen",
        "objs",
        "syms",
        "ebyte",
        "max_depth",
        "max_length",
        "max_items",
        "max_expansion",
        "sizes",
        "linked",
    )

    def __init__(self, data: bytes, max_depth: int, max_length: int, max_items: int) -> None:
        self.data = data
        self.text = data.decode("latin-1")  # one char per byte; slicing it decodes ASCII
        self.dlen = len(data)
        self.objs: list[Any] = []  # object table for '@'; _PENDING while incomplete
        self.syms: list[Any] = []  # symbol table for ';'; _PENDING while incomplete
        self.ebyte = -1  # the 1-byte w_long of the :E symbol's index once known; -2: too big
        self.max_depth = max_depth
        self.max_length = max_length
        self.max_items = max_items
        self.max_expansion = DEFAULT_MAX_EXPANSION
        self.sizes: dict[int, int] = {}  # object index of a closed Array/Hash -> its items
        self.linked = 0  # items added by links so far (their expanded size)


_HINT = "pass a larger %s to accept it"


def _fail(msg: str, at: int, hint: str = "") -> MarshalError:
    return MarshalError(f"{msg} at offset {at}{'; ' + hint if hint else ''}")


def _rlong(inp: _Input, p: int) -> tuple[int, int]:
    """A w_long (packed integer) at p."""
    data = inp.data
    c = data[p]
    p += 1
    if c == 0:
        return 0, p
    if c < 128:
        if c > 4:
            return c - 5, p
        end = p + c
        if end > inp.dlen:
            raise IndexError
        return int.from_bytes(data[p:end], "little"), end
    if c < 252:
        return c - 251, p
    k = 256 - c
    end = p + k
    if end > inp.dlen:
        raise IndexError
    return int.from_bytes(data[p:end], "little") - (1 << (8 * k)), end


def _rlen(inp: _Input, p: int, what: str) -> tuple[int, int]:
    """A byte length at p: non-negative, within max_length and the remaining input."""
    n, q = _rlong(inp, p)
    if n < 0:
        raise _fail(f"{what} has negative length {n}", p)
    if n > inp.max_length:
        raise _fail(
            f"{what} of {n} bytes exceeds max_length={inp.max_length}", p, _HINT % "max_length"
        )
    if q + n > inp.dlen:
        raise _fail(f"{what} declares {n} bytes but only {inp.dlen - q} remain", p)
    return n, q


def _rcount(inp: _Input, p: int, what: str, per_item: int, budget: int) -> tuple[int, int, int]:
    """An entry count at p -> (count, next position, max_items budget left)."""
    n, q = _rlong(inp, p)
    if n < 0:
        raise _fail(f"{what} has negative size {n}", p)
    if n * per_item > inp.dlen - q:
        raise _fail(f"{what} declares {n} entries but only {inp.dlen - q} bytes remain", p)
    budget -= n * per_item
    if budget < 0:
        raise _fail(
            f"{what} of {n} entries takes the value over max_items={inp.max_items}",
            p,
            _HINT % "max_items",
        )
    return n, q, budget


def _rsymbol(inp: _Input, p: int, depth: int) -> tuple[Symbol, int]:
    """A Symbol at p: ``:`` name, ``;`` link, or ``I:`` name with an encoding."""
    data = inp.data
    syms = inp.syms
    t = data[p]
    if t == 0x3B:  # ';'
        i, q = _rlong(inp, p + 1)
        if not 0 <= i < len(syms) or syms[i] is _PENDING:
            raise _fail(f"Symbol link ;{i} refers to no symbol", p)
        sym: Symbol = syms[i]
        return sym, q
    ivar = t == 0x49 and data[p + 1] == 0x3A  # 'I:'
    if t != 0x3A and not ivar:
        raise _fail(f"expected a Symbol, found {_type_name(t)}", p)
    n, q = _rlen(inp, p + 2 if ivar else p + 1, "Symbol")
    raw = data[q : q + n]
    q += n
    if not ivar:
        if not raw.isascii():
            raise _fail(f"Symbol {raw!r} is not ASCII and carries no encoding", p)
        name = raw.decode("ascii")
        cached = _SYMBOL_CACHE.get(name)
        if cached is None:
            cached = Symbol(name)
            if n <= _SYMBOL_CACHE_NAME_MAX:
                if len(_SYMBOL_CACHE) >= _SYMBOL_CACHE_MAX:
                    _SYMBOL_CACHE.clear()
                _SYMBOL_CACHE[name] = cached
        syms.append(cached)
        return cached, q
    idx = len(syms)
    syms.append(_PENDING)
    enc, q = _rivars(inp, q, depth, p)
    try:
        if enc is True:
            name = raw.decode("utf-8")
        elif enc is False or enc is None:
            name = raw.decode("ascii")
        else:
            raise _fail(f"Symbol {raw!r} in encoding {enc} is not supported", p)
    except UnicodeDecodeError:
        raise _fail(f"Symbol {raw!r} is not valid in its encoding", p) from None
    sym = Symbol(name)
    syms[idx] = sym
    return sym, q


def _rivars(inp: _Input, p: int, depth: int, at: int) -> tuple[bool | str | None, int]:
    """An instance-variable list at p -> (True for UTF-8, False for US-ASCII, an encoding
    name, or None when the list is empty (binary); next position).  Only the encoding ivars
    ``E`` and ``encoding`` are accepted."""
    if depth > inp.max_depth:
        raise _fail(f"nesting deeper than max_depth={inp.max_depth}", at, _HINT % "max_depth")
    n, p, _ = _rcount(inp, p, "instance variable list", 2, inp.max_items)
    enc: bool | str | None = None
    for _ in range(n):
        name, p = _rsymbol(inp, p, depth + 1)
        if enc is not None:
            raise _fail("String carries more than one encoding", p)
        if name == "E":
            t = inp.data[p]
            if t != 0x54 and t != 0x46:
                raise _fail(f"encoding flag E must be true or false, not {_type_name(t)}", p)
            enc = t == 0x54
            p += 1
            if inp.ebyte == -1:
                i = inp.syms.index("E")
                inp.ebyte = _wlong(i)[0] if i < 123 else -2
        elif name == "encoding":
            value, q = _rencname(inp, p, depth + 1)
            if isinstance(value, bytes):
                raw = value
            elif isinstance(value, str):
                raw = value.encode("utf-8", "surrogateescape")
            else:
                raise _fail(f"encoding name must be a String, not {_rname(value)}", p)
            if not raw or not raw.isascii() or len(raw) > 64:
                raise _fail(f"invalid encoding name {raw!r}", p)
            enc = raw.decode("ascii")
            p = q
        else:
            raise _fail(f"instance variable {name!r} is not supported", p)
    return enc, p


def _rencname(inp: _Input, p: int, depth: int) -> tuple[Any, int]:
    """The value of an ``encoding`` ivar at p: a String, or a link to one."""
    data = inp.data
    t = data[p]
    if t == 0x22:  # '"'
        n, q = _rlen(inp, p + 1, "String")
        raw = data[q : q + n]
        inp.objs.append(raw)
        return raw, q + n
    if t == 0x49 and data[p + 1] == 0x22:  # 'I"'
        return _rstring(inp, p, depth)
    if t == 0x40:  # '@'
        return _rlink(inp, p)
    raise _fail(f"encoding name must be a String, not {_type_name(t)}", p)


def _rstring(inp: _Input, p: int, depth: int) -> tuple[Any, int]:
    """``I"`` at p: a String with encoding ivars (the general case)."""
    n, q = _rlen(inp, p + 2, "String")
    raw = inp.data[q : q + n]
    objs = inp.objs
    idx = len(objs)
    objs.append(_PENDING)
    enc, q = _rivars(inp, q + n, depth, p)
    s: Any
    if enc is True:
        s = raw.decode("utf-8", "surrogateescape")
    elif enc is False:
        s = AsciiString(raw.decode("ascii", "surrogateescape"))
    elif enc is None:
        s = raw
    else:
        s = _decode_encoded(raw, enc)
    objs[idx] = s
    return s, q


def _rlink(inp: _Input, p: int) -> tuple[Any, int]:
    """``@`` at p: an earlier object."""
    i, q = _rlong(inp, p + 1)
    objs = inp.objs
    if not 0 <= i < len(objs):
        raise _fail(f"object link @{i} refers to no object", p)
    o = objs[i]
    if o is _PENDING:
        raise _fail(
            f"object link @{i} refers to an object that is still being read (a reference "
            "cycle; pass allow_cycles=True to accept it)",
            p,
        )
    size = inp.sizes.get(i)
    if size is None:
        size = 1 + len(o) // 64 if isinstance(o, (str, bytes)) else 1
    inp.linked += size
    if inp.linked > inp.max_expansion:
        raise _fail(
            f"object links expand the value by more than max_expansion={inp.max_expansion} "
            "items (shared references, e.g. x = [x, x] nested)",
            p,
            _HINT % "max_expansion",
        )
    return o, q


def _rscalar(inp: _Input, p: int, depth: int) -> tuple[Any, int]:  # noqa: C901 - type switch
    """Any value but an Array or Hash, at p: the less common types and the slow paths."""
    data = inp.data
    t = data[p]
    if t == 0x49:  # 'I'
        t = data[p + 1]
        if t == 0x22:
            return _rstring(inp, p, depth)
        if t == 0x3A:
            return _rsymbol(inp, p, depth)
        if t == 0x2F:  # 'I/' Regexp: source, options byte, encoding ivars
            n, q = _rlen(inp, p + 2, "Regexp")
            raw = data[q : q + n]
            options = data[q + n]
            idx = len(inp.objs)
            inp.objs.append(_PENDING)
            enc, q = _rivars(inp, q + n + 1, depth, p)
            try:
                if enc is True:
                    rx = Regexp(raw.decode("utf-8"), options, ascii=False)
                elif enc is False:
                    rx = Regexp(raw.decode("ascii"), options, ascii=True)
                else:
                    raise _fail(f"Regexp in encoding {enc or 'ASCII-8BIT'} is not supported", p)
            except UnicodeDecodeError:
                raise _fail(f"Regexp source {raw!r} is not valid in its encoding", p) from None
            inp.objs[idx] = rx
            return rx, q
        raise _fail(f"instance variables on {_type_name(t)} are not supported", p)
    if t == 0x3A or t == 0x3B:  # ':' ';'
        return _rsymbol(inp, p, depth)
    if t == 0x69:  # 'i'
        return _rlong(inp, p + 1)
    if t == 0x30:  # '0'
        return None, p + 1
    if t == 0x54:  # 'T'
        return True, p + 1
    if t == 0x46:  # 'F'
        return False, p + 1
    if t == 0x22:  # '"' binary String
        n, q = _rlen(inp, p + 1, "String")
        raw = data[q : q + n]
        inp.objs.append(raw)
        return raw, q + n
    if t == 0x40:  # '@'
        return _rlink(inp, p)
    if t == 0x6C:  # 'l' Bignum
        sign = data[p + 1]
        if sign != 0x2B and sign != 0x2D:
            raise _fail(f"Bignum sign must be '+' or '-', not {_show(sign)}", p)
        shorts, q = _rlong(inp, p + 2)
        if shorts < 0 or 2 * shorts > inp.max_length:
            raise _fail(f"Bignum of {shorts} 16-bit words is not accepted", p)
        end = q + 2 * shorts
        if end > inp.dlen:
            raise _fail(f"Bignum declares {2 * shorts} bytes but only {inp.dlen - q} remain", p)
        v = int.from_bytes(data[q:end], "little")
        if sign == 0x2D:
            v = -v
        inp.objs.append(v)
        return v, end
    if t == 0x66:  # 'f' Float
        n, q = _rlen(inp, p + 1, "Float")
        if n > _MAX_FLOAT_TEXT:
            raise _fail(f"Float text of {n} bytes is too long", p)
        raw = data[q : q + n]
        if raw not in _FLOAT_SPECIAL and _FLOAT_RE.fullmatch(raw) is None:
            raise _fail(f"invalid Float text {raw!r}", p)
        f = float(raw)  # a fresh object each time, even for nan/inf
        inp.objs.append(f)
        return f, q + n
    if t == 0x2F:  # '/' without ivars: a binary (/n) Regexp
        raise _fail("Regexp without encoding (binary /n Regexp) is not supported", p)
    raise _fail(f"{_type_name(t)} is not supported", p)


_CONTAINER = {0x5B: "Array", 0x7B: "Hash", 0x7D: "Hash"}
_MAX_SAME_HASH = 32
_NO_TAIL = "\uffff"  # never in the latin-1 text, so a tail that is this never matches
# w_long byte -> its value when it is a 1-byte non-negative length (0, 5..127), else -1.
_SMALL = tuple(0 if c == 0 else c - 5 if 4 < c < 128 else -1 for c in range(256))


def _decode(inp: _Input, allow_cycles: bool) -> Any:  # noqa: C901 - the hot path, see below
    """Parse the value after the header and check that it ends the input.

    Speed (CPython 3.11, where function calls and bytecodes are what cost): one loop with an
    explicit stack of open containers, so the usual tokens (``I"`` strings with the ``:E``
    tail, symbols, symbol links, small ints, nil/true/false, Array/Hash headers) cost no
    call.  Strings are sliced from the latin-1 text of the whole input; only non-ASCII ones
    are decoded from bytes.  Everything else goes through the helpers above.

    The ``I"`` fast path relies on this: with a 1-byte length byte ``c`` (< 128) the String
    ends at ``b = pos + c - 2``, and the tail ``06 ; <E> T|F`` can only match there when the
    length is real (c >= 5): for c < 5, ``b`` falls on the ``I"`` header, which cannot match.
    """
    data = raw = inp.data
    text = inp.text
    dlen = inp.dlen
    objs = inp.objs
    syms = inp.syms
    max_depth = inp.max_depth
    max_items = inp.max_items
    tstart = text.startswith
    objs_append = objs.append
    syms_append = syms.append
    symget = _SYMBOL_CACHE.get
    tail_t = tail_f = _NO_TAIL
    # The innermost open container: cur (list/dict), mode (1 Array, 2 Hash, 4 the default
    # value of a Hash, 0 none: the root), left (values still to place), key (the Hash key
    # just read), cidx (its object index), cn (declared size), cat (its offset, for
    # messages).  The outer ones wait on the stack.
    stack: list[tuple[Any, int, int, Any, int, int, int, int]] = []
    cur: Any = None
    mode = left = cn = cidx = cat = depth = 0
    spent = 0  # items spent (declared + linked) when the innermost open container began
    key: Any = None
    budget = max_items
    pos = 2
    same_hash: dict[tuple[int, int], int] = {}
    v: Any
    while True:
        if mode == 2:  # a Hash key: a Symbol nearly always, a String in filters
            t = data[pos]
            if t == 0x3A:  # ':'
                b = pos + 2 + _SMALL[data[pos + 1]]
                if pos + 2 < b <= dlen and (key := symget(text[pos + 2 : b])) is not None:
                    syms_append(key)
                    pos = b
                else:
                    key, pos = _rsymbol(inp, pos, depth)
            elif t == 0x3B:  # ';' (syms never holds _PENDING while this loop runs)
                i = _SMALL[data[pos + 1]]
                if 0 <= i < len(syms):
                    key = syms[i]
                    pos += 2
                else:
                    key, pos = _rsymbol(inp, pos, depth)
            elif (
                t == 0x49
                and data[pos + 1] == 0x22
                and (c := data[pos + 2]) < 128
                and tstart(tail_t, pos + c - 2)
            ):
                b = pos + c - 2
                key = text[pos + 3 : b]
                if not key.isascii():
                    key = raw[pos + 3 : b].decode("utf-8", "surrogateescape")
                pos = b + 4
                objs_append(key)
            elif t == 0x5B or t == 0x7B or t == 0x7D:
                raise _fail(f"Hash key of type {_CONTAINER[t]} is not supported", pos)
            else:
                key, pos = _rscalar(inp, pos, depth)
                if tail_t is _NO_TAIL and inp.ebyte >= 0:
                    tail_t = "\x06;" + chr(inp.ebyte) + "T"
                    tail_f = "\x06;" + chr(inp.ebyte) + "F"
                if type(key) is int or type(key) is float:
                    # Python's int/float hashes are not randomised: refuse a Hash whose
                    # numeric keys pile up on one hash (quadratic dict inserts otherwise).
                    hk = (cidx, hash(key))
                    same_hash[hk] = same_hash.get(hk, 0) + 1
                    if same_hash[hk] > _MAX_SAME_HASH:
                        raise _fail(
                            f"Hash has more than {_MAX_SAME_HASH} numeric keys with one "
                            "Python hash value (a hash-flooding pattern)",
                            cat,
                        )

        t = data[pos]
        if t == 0x49 and data[pos + 1] == 0x22:  # 'I"' String
            c = data[pos + 2]
            b = pos + c - 2
            if c < 128 and tstart(tail_t, b):
                v = text[pos + 3 : b]
                if not v.isascii():
                    v = raw[pos + 3 : b].decode("utf-8", "surrogateescape")
                pos = b + 4
                objs_append(v)
            elif c < 128 and tstart(tail_f, b):
                v = text[pos + 3 : b]
                if v.isascii():
                    v = AsciiString(v)
                else:
                    v = AsciiString(raw[pos + 3 : b].decode("ascii", "surrogateescape"))
                pos = b + 4
                objs_append(v)
            else:
                v, pos = _rstring(inp, pos, depth)
                if tail_t is _NO_TAIL and inp.ebyte >= 0:
                    tail_t = "\x06;" + chr(inp.ebyte) + "T"
                    tail_f = "\x06;" + chr(inp.ebyte) + "F"
        elif t == 0x69:  # 'i' Fixnum
            v = _SMALL[data[pos + 1]]
            if v >= 0:
                pos += 2
            else:
                v, pos = _rlong(inp, pos + 1)
        elif t == 0x7B or t == 0x5B or t == 0x7D:  # '{' '[' '}'
            per = 1 if t == 0x5B else 2
            n = _SMALL[data[pos + 1]]
            if n >= 0:
                if n * per > dlen - pos - 2:
                    raise _fail(
                        f"{_CONTAINER[t]} declares {n} entries but only {dlen - pos - 2} "
                        "bytes remain",
                        pos + 1,
                    )
                budget -= n * per
                if budget < 0:
                    raise _fail(
                        f"{_CONTAINER[t]} of {n} entries takes the value over "
                        f"max_items={max_items}",
                        pos,
                        _HINT % "max_items",
                    )
                npos = pos + 2
            else:
                n, npos, budget = _rcount(inp, pos + 1, _CONTAINER[t], per, budget)
            if inp.linked and budget < inp.linked:
                raise _fail(
                    f"the value expanded through its object links exceeds max_items={max_items}",
                    pos,
                    _HINT % "max_items",
                )
            if depth >= max_depth:
                raise _fail(f"nesting deeper than max_depth={max_depth}", pos, _HINT % "max_depth")
            new: Any
            if t == 0x5B:
                new = []
                nmode = 1
            elif t == 0x7B:
                new = {}
                nmode = 2
            else:
                new = HashWithDefault()
                nmode = 2
                if not n:
                    nmode = 4  # no pairs: straight to the default value
                    n = 1
            if n:
                stack.append((cur, mode, left, key, cidx, cn, cat, spent))
                spent = max_items - budget - n * per + inp.linked
                depth += 1
                cidx = len(objs)
                objs_append(new if allow_cycles else _PENDING)
                cur = new
                mode = nmode
                left = cn = n
                cat = pos
                pos = npos
                continue
            objs_append(new)
            v = new
            pos = npos
        elif t == 0x3A:  # ':' Symbol
            b = pos + 2 + _SMALL[data[pos + 1]]
            if pos + 2 < b <= dlen and (v := symget(text[pos + 2 : b])) is not None:
                syms_append(v)
                pos = b
            else:
                v, pos = _rsymbol(inp, pos, depth)
        elif t == 0x3B:  # ';' Symbol link
            i = _SMALL[data[pos + 1]]
            if 0 <= i < len(syms):
                v = syms[i]
                pos += 2
            else:
                v, pos = _rsymbol(inp, pos, depth)
        elif t == 0x54:  # 'T'
            v = True
            pos += 1
        elif t == 0x46:  # 'F'
            v = False
            pos += 1
        elif t == 0x30:  # '0'
            v = None
            pos += 1
        else:
            v, pos = _rscalar(inp, pos, depth)
            if tail_t is _NO_TAIL and inp.ebyte >= 0:
                tail_t = "\x06;" + chr(inp.ebyte) + "T"
                tail_f = "\x06;" + chr(inp.ebyte) + "F"

        # Place v in the open container, and close every container that this completes.
        while True:
            if mode == 2:
                try:
                    cur[key] = v
                except TypeError:
                    raise _fail(f"Hash key of type {_rname(key)} is not supported", cat) from None
            elif mode == 1:
                cur.append(v)
            elif mode == 4:
                cur.default = v
            else:
                if pos != dlen:
                    raise MarshalError(
                        f"{dlen - pos} trailing bytes after the Marshal value at offset {pos}"
                    )
                return v
            left -= 1
            if left:
                break
            if mode == 2:
                if len(cur) != cn:
                    raise _fail(
                        f"Hash has {cn} keys but only {len(cur)} are distinct in Python (keys "
                        'such as :a and "a", or 1, 1.0 and true, differ in Ruby but not in '
                        "Python)",
                        cat,
                    )
                if type(cur) is HashWithDefault:
                    mode = 4
                    left = 1
                    break
            objs[cidx] = cur
            inp.sizes[cidx] = max_items - budget + inp.linked - spent
            v = cur
            cur, mode, left, key, cidx, cn, cat, spent = stack.pop()
            depth -= 1


def _show(byte: int) -> str:
    return repr(chr(byte)) if 0x20 < byte < 0x7F else f"0x{byte:02x}"


def _type_name(t: int) -> str:
    name = _UNSUPPORTED.get(t)
    if name is not None:
        return f"Marshal type {_show(t)} ({name})"
    known = {0x22: "String", 0x5B: "Array", 0x7B: "Hash", 0x7D: "Hash", 0x66: "Float"}
    if t in known:
        return f"Marshal type {_show(t)} ({known[t]})"
    if t in (0x69, 0x6C, 0x30, 0x54, 0x46, 0x40, 0x3B):
        return f"Marshal type {_show(t)}"
    return f"unknown Marshal type byte {_show(t)}"


def _rname(value: Any) -> str:
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Hash"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# Encoder


def _wlong(x: int) -> bytes:
    """Marshal's packed long (w_long)."""
    if x == 0:
        return b"\x00"
    if 0 < x < 123:
        return bytes((x + 5,))
    if -124 < x < 0:
        return bytes(((x - 5) & 0xFF,))
    buf = bytearray(1)
    for i in range(1, 5):
        buf.append(x & 0xFF)
        x >>= 8
        if x == 0:
            buf[0] = i
            return bytes(buf)
        if x == -1:
            buf[0] = 256 - i
            return bytes(buf)
    raise MarshalError(f"length or count {x} does not fit Marshal's 32-bit packed long")


_WLONG = [_wlong(i) for i in range(256)]


def _float_text(value: float) -> bytes:
    """Ruby's w_float text: the shortest digits that round-trip, in exponent form when the
    decimal point falls more than 3 places before them or after the last one (``100.0`` ->
    ``1e2``, ``1e16`` -> ``1e16``, ``0.0001`` -> ``0.0001``, ``1e-05`` -> ``1e-5``)."""
    if value != value:
        return b"nan"
    if value == math.inf:
        return b"inf"
    if value == -math.inf:
        return b"-inf"
    if value == 0.0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    text = repr(value)  # shortest round-trip digits, like ruby_dtoa mode 0
    sign = ""
    if text[0] == "-":
        sign = "-"
        text = text[1:]
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    decpt = len(whole) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    decpt -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    ndigits = len(digits)
    if decpt < -3 or decpt > ndigits:
        out = digits[0] + ("." + digits[1:] if ndigits > 1 else "") + f"e{decpt - 1}"
    elif decpt > 0:
        out = digits[:decpt] + ("." + digits[decpt:] if ndigits > decpt else "")
    else:
        out = "0." + "0" * -decpt + digits
    return (sign + out).encode("ascii")


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as Ruby Marshal 4.8, byte-identical to Ruby 3.1's ``Marshal.dump``.

    See the module docstring for the type mapping and when ``@`` links are written.
    Raises ``MarshalError`` for a value (or dict key) of an unsupported type, text that its
    encoding cannot hold, or nesting deeper than Python's recursion limit.
    """
    try:
        return _dump(obj)
    except RecursionError:
        raise MarshalError("value nested too deeply to encode (or a cyclic tuple)") from None


# b'I"' + the packed length, for the usual short Strings.
_STR_HEAD = [b'I"' + _WLONG[n] for n in range(256)]


def _dump(root: Any) -> bytes:  # noqa: C901 - one closure set per call, for speed
    """One encoding run: Ruby's w_object, with its symbol table and object numbering.

    Written as closures over local state (cheaper than attributes in CPython); ``nobj`` is
    the index the next object written gets.
    """
    out: list[bytes] = [b"\x04\x08"]
    put = out.append
    syms: dict[str, int] = {}
    ids: dict[int, int] = {}  # id(object) -> object index, for identity links
    flonums: dict[int, int] = {}  # float bits -> object index
    keystrs: dict[tuple[Any, Any], int] = {}  # (kind, text) of String Hash keys -> index
    encnames: dict[str, int] = {}
    keep: list[Any] = []  # temporaries whose id() was registered stay alive
    nobj = 0
    # The ":E" ivar of a String once the :E symbol exists: b"\x06;<index>T" / b"...F".
    etail_t = etail_f = b""

    def wlong(x: int) -> bytes:
        return _WLONG[x] if 0 <= x < 256 else _wlong(x)

    def link(obj: Any) -> bool:
        """Write ``@n`` if ``obj`` (by identity) was written before; else number it."""
        nonlocal nobj
        i = ids.get(id(obj))
        if i is not None:
            put(b"@")
            put(wlong(i))
            return True
        ids[id(obj)] = nobj
        nobj += 1
        return False

    def symbol(name: str) -> None:
        nonlocal etail_t, etail_f
        i = syms.get(name)
        if i is not None:
            put(b";")
            put(wlong(i))
            return
        syms[name] = i = len(syms)
        if name == "E":
            etail_t = b"\x06;" + wlong(i) + b"T"
            etail_f = b"\x06;" + wlong(i) + b"F"
        raw = _encode_text(name, "utf-8", "Symbol")
        if raw.isascii():
            put(b":")
            put(wlong(len(raw)))
            put(raw)
        else:
            put(b"I:")
            put(wlong(len(raw)))
            put(raw)
            put(b"\x06")
            symbol("E")
            put(b"T")

    def string(value: Any) -> None:
        """A String whose object slot the caller has already numbered."""
        tv = type(value)
        if tv is str:
            raw = value.encode() if value.isascii() else _encode_text(value, "utf-8", "str")
            utf8 = True
        elif tv is AsciiString:
            raw = _encode_text(value, "ascii", "AsciiString")
            utf8 = False
        elif isinstance(value, (bytes, bytearray)):
            put(b'"')
            put(wlong(len(value)))
            put(bytes(value))
            return
        elif isinstance(value, EncodedString):
            encoded_string(value)
            return
        else:  # other str subclasses (StrEnum...) are plain UTF-8 text
            raw = _encode_text(value, "utf-8", "str")
            utf8 = True
        n = len(raw)
        put(_STR_HEAD[n] if n < 256 else b'I"' + _wlong(n))
        put(raw)
        if etail_t:
            put(etail_t if utf8 else etail_f)
        else:
            put(b"\x06")
            symbol("E")
            put(b"T" if utf8 else b"F")

    def encoded_string(value: EncodedString) -> None:
        nonlocal nobj
        encoding = value.encoding
        codec = _codec_for(encoding) if isinstance(encoding, str) and encoding.isascii() else None
        if codec is None:
            raise MarshalError(
                f"EncodedString encoding {encoding!r} has no Python codec; "
                "pass the raw bytes as bytes instead"
            )
        raw = _encode_text(value, codec, f"EncodedString({encoding})")
        put(b'I"')
        put(wlong(len(raw)))
        put(raw)
        put(b"\x06")
        symbol("encoding")
        # Ruby writes each encoding name once per dump, then links to that name String.
        i = encnames.get(encoding)
        if i is None:
            encnames[encoding] = nobj
            nobj += 1
            put(b'"')
            put(wlong(len(encoding)))
            put(encoding.encode("ascii"))
        else:
            put(b"@")
            put(wlong(i))

    def hash_key(key: Any) -> None:
        """A non-Symbol Hash key.  Ruby interns String keys (fstrings), so a key equal to an
        earlier *key* (same type, encoding and text) is a link; keys never link to values."""
        nonlocal nobj
        tk = type(key)
        if tk is str:
            kind: Any = "s"
        elif tk is AsciiString:
            kind = "a"
        elif tk is bytes:
            kind = "b"
        elif tk is EncodedString:
            kind = ("e", key.encoding)
        elif isinstance(key, str) and not isinstance(key, (Symbol, AsciiString, EncodedString)):
            kind = "s"
            key = str(key)
        else:
            write(key)
            return
        skey = (kind, key)
        i = keystrs.get(skey)
        if i is not None:
            put(b"@")
            put(wlong(i))
            return
        keystrs[skey] = nobj
        nobj += 1
        string(key)

    def hash_(obj: dict[Any, Any], default: Any) -> None:
        if link(obj):
            return
        n = len(obj)
        put(b"{" if default is None else b"}")  # Ruby writes '}' only for a non-nil default
        put(wlong(n))
        for k, v in obj.items():
            if type(k) is Symbol:
                i = syms.get(k)
                if i is not None:
                    put(b";")
                    put(_WLONG[i] if i < 256 else _wlong(i))
                else:
                    symbol(k)
            else:
                hash_key(k)
            write(v)
        if default is not None:
            write(default)

    def array(obj: list[Any] | tuple[Any, ...], linkable: bool) -> None:
        nonlocal nobj
        if linkable:
            if link(obj):
                return
        else:
            nobj += 1  # tuples are never linked (CPython shares equal constants)
        put(b"[")
        put(wlong(len(obj)))
        for item in obj:
            write(item)

    def float_(value: float) -> None:
        nonlocal nobj
        if _is_flonum(value):
            # 64-bit Ruby keeps most floats as immediates ("flonums"), registered by value:
            # an equal flonum later in the dump is a link.
            bits = _bits(value)
            i = flonums.get(bits)
            if i is not None:
                put(b"@")
                put(wlong(i))
                return
            flonums[bits] = nobj
            nobj += 1
        elif link(value):  # heap floats (inf, nan, -0.0, tiny, huge): by identity
            return
        text = _float_text(value)
        put(b"f")
        put(_WLONG[len(text)])
        put(text)

    def bignum(value: int) -> None:
        nonlocal nobj
        # Ruby makes a fresh Bignum for every Integer in 2**30..2**62 (a Fixnum in memory),
        # so those never link; real Bignums beyond that are objects, linked by identity.
        if -(2**62) <= value < 2**62:
            nobj += 1
        elif link(value):
            return
        mag = abs(value)
        shorts = (mag.bit_length() + 15) // 16
        put(b"l+" if value > 0 else b"l-")
        put(wlong(shorts))
        put(mag.to_bytes(2 * shorts, "little"))

    def regexp(value: Regexp) -> None:
        if link(value):
            return
        if not isinstance(value.source, str):
            raise MarshalError(f"Regexp source must be str, not {type(value.source).__name__}")
        if not 0 <= value.options <= 255:
            raise MarshalError(f"Regexp options {value.options} do not fit in one byte")
        raw = _encode_text(value.source, "utf-8", "Regexp source")
        put(b"I/")
        put(wlong(len(raw)))
        put(raw)
        put(bytes((value.options,)))
        put(b"\x06")
        symbol("E")
        # A non-ASCII source can only be UTF-8 (a US-ASCII Regexp cannot hold it).
        put(b"F" if value.ascii and raw.isascii() else b"T")

    def write(obj: Any) -> None:  # noqa: C901 - a type switch, commonest first
        nonlocal nobj
        t = type(obj)
        if t is str:
            n = len(obj)
            if n > 1:  # "" and 1-char strs are shared by CPython itself: never linked
                i = ids.get(id(obj))
                if i is not None:
                    put(b"@")
                    put(_WLONG[i] if i < 256 else _wlong(i))
                    return
                ids[id(obj)] = nobj
            nobj += 1
            if etail_t and n < 256 and obj.isascii():
                put(_STR_HEAD[n])
                put(obj.encode())
                put(etail_t)
            else:
                string(obj)
        elif t is Symbol:
            i = syms.get(obj)
            if i is not None:
                put(b";")
                put(_WLONG[i] if i < 256 else _wlong(i))
            else:
                symbol(obj)
        elif t is dict:
            hash_(obj, None)
        elif t is int:
            if _FIXNUM_MIN <= obj <= _FIXNUM_MAX:
                put(b"i")
                put(_WLONG[obj] if 0 <= obj < 256 else _wlong(obj))
            else:
                bignum(obj)
        elif t is bool:
            put(b"T" if obj else b"F")
        elif obj is None:
            put(b"0")
        elif t is list:
            array(obj, True)
        elif t is AsciiString:
            if not link(obj):
                string(obj)
        elif t is bytes:
            if len(obj) > 1:
                if not link(obj):
                    string(obj)
            else:
                nobj += 1
                string(obj)
        elif t is float:
            float_(obj)
        else:
            write_other(obj)

    def write_other(obj: Any) -> None:
        """The less common types, and subclasses of the supported ones (IntEnum, StrEnum...).

        A subclass instance is written as a fresh base-type value, kept alive so that its
        id() is never reused within this run."""
        if isinstance(obj, (EncodedString, bytearray)):
            if not link(obj):
                string(obj)
        elif isinstance(obj, HashWithDefault):
            hash_(obj, obj.default)
        elif isinstance(obj, dict):
            hash_(obj, None)
        elif isinstance(obj, tuple):
            array(obj, False)
        elif isinstance(obj, list):
            array(obj, True)
        elif isinstance(obj, Regexp):
            regexp(obj)
        elif isinstance(obj, bool):
            put(b"T" if obj else b"F")
        elif isinstance(obj, (int, float, str)) and not isinstance(obj, (Symbol, AsciiString)):
            base: Any = (
                int(obj)
                if isinstance(obj, int)
                else float(obj)
                if isinstance(obj, float)
                else str(obj)
            )
            keep.append(base)
            write(base)
        else:
            raise MarshalError(
                f"cannot encode a value of type {type(obj).__name__} as Ruby Marshal: "
                "use None, bool, int, float, str, bytes, Symbol, AsciiString, EncodedString, "
                "list, tuple, dict, HashWithDefault or Regexp"
            )

    write(root)
    return b"".join(out)


def _encode_text(text: str, codec: str, what: str) -> bytes:
    try:
        return text.encode(codec, "surrogateescape")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise MarshalError(
            f"{what} {_short(text)} has {bad!r} at index {exc.start}, which {codec} cannot encode"
        ) from None


def _short(text: str) -> str:
    text = str(text)  # the plain text, not a subclass's repr
    return repr(text if len(text) <= 40 else text[:37] + "...")
