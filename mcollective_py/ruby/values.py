"""Ruby value semantics that DDLs, filters and rendering must reproduce exactly.

MCollective evaluates DDL files and prints results with Ruby's own rules; wherever
our output has to match ``mco`` byte for byte, we follow those rules here instead of
Python's:

* :func:`to_s` / :func:`inspect` -- ``Object#to_s`` and ``#inspect`` (Ruby 3.1 forms:
  ``{:a=>1}``, ``1.0e+20``, ``nil``, ``(?-mix:re)``).
* :func:`eq` and :func:`hash_key` -- Ruby equality (``==``) and Hash key identity
  (``eql?``): ``1 == 1.0`` but they are different Hash keys; ``true != 1``;
  ``:a != "a"`` (Python conflates all three pairs).
* :func:`to_i` / :func:`to_f` -- ``String#to_i`` / ``String#to_f`` (lenient prefixes);
  :func:`string_to_integer` / :func:`string_to_float` -- ``Integer(str)`` / ``Float(str)``.
* :func:`split_str`, :func:`split_words`, :func:`chomp` -- the String methods filters use.
* :func:`sprintf` -- ``Kernel#format`` as used by aggregate formats.
* :class:`RubyHash` -- an insertion-ordered Hash keyed by Ruby identity, used while
  evaluating DDL files so that ``"prompt" => x`` is not taken for ``:prompt => x``.

Values are the Python stand-ins of :mod:`mcollective_py.rubytypes`: ``None``, bool,
int, float, str, :class:`~mcollective_py.rubytypes.Symbol`, list, dict,
:class:`~mcollective_py.rubytypes.Regexp` (plus :class:`RubyHash` during evaluation).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

from mcollective_py import rubytypes
from mcollective_py.lazy import lazy_re
from mcollective_py.ruby import inspect as _inspect
from mcollective_py.rubytypes import RE_EXTENDED, RE_IGNORECASE, RE_MULTILINE, Regexp, Symbol

__all__ = [
    "RubyHash",
    "RubyTypeError",
    "RUBY_SPACE",
    "chomp",
    "class_name",
    "eq",
    "float_to_s",
    "hash_key",
    "inspect",
    "is_string",
    "join",
    "plain_dict",
    "regexp_to_s",
    "split_re",
    "split_str",
    "split_words",
    "sprintf",
    "string_to_float",
    "string_to_integer",
    "to_f",
    "to_i",
    "to_s",
    "truthy",
]


class RubyTypeError(Exception):
    """A Ruby ``TypeError``/``ArgumentError`` raised while emulating a Ruby operation.

    ``str()`` is the message Ruby would give (e.g. ``can't convert nil into Integer``).
    """


def truthy(value: Any) -> bool:
    """Ruby truthiness: everything except ``nil`` and ``false`` is true."""
    return value is not None and value is not False


def is_string(value: Any) -> bool:
    """True for a Ruby String (a ``str`` that is not a :class:`Symbol`)."""
    return isinstance(value, str) and not isinstance(value, Symbol)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class RubyHash:
    """An insertion-ordered Ruby Hash whose keys follow Ruby's ``eql?`` identity.

    Only used while evaluating DDL source; :func:`plain_dict` turns it into a plain
    ``dict`` (Symbol keys stay Symbols) for the model.
    """

    __slots__ = ("_items",)

    def __init__(self, pairs: Sequence[tuple[Any, Any]] = ()) -> None:
        self._items: dict[Any, tuple[Any, Any]] = {}
        for key, value in pairs:
            self[key] = value

    def __setitem__(self, key: Any, value: Any) -> None:
        hk = hash_key(key)
        if hk in self._items:  # Ruby keeps the original key object and position
            self._items[hk] = (self._items[hk][0], value)
        else:
            self._items[hk] = (key, value)

    def get(self, key: Any, default: Any = None) -> Any:
        """``hash[key]`` (``default`` when missing)."""
        item = self._items.get(hash_key(key))
        return default if item is None else item[1]

    def __contains__(self, key: Any) -> bool:
        return hash_key(key) in self._items

    def delete(self, key: Any) -> Any:
        """``hash.delete(key)``: remove and return the value (``None`` if missing)."""
        item = self._items.pop(hash_key(key), None)
        return None if item is None else item[1]

    def keys(self) -> list[Any]:
        return [k for k, _ in self._items.values()]

    def items(self) -> list[tuple[Any, Any]]:
        return list(self._items.values())

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RubyHash):
            return NotImplemented
        return len(self) == len(other) and all(
            k in other and eq(v, other.get(k)) for k, v in self.items()
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return inspect(self)


def hash_key(value: Any) -> Any:
    """A Python-hashable key that is equal exactly when Ruby's ``eql?`` is true."""
    if value is None:
        return ("nil",)
    if isinstance(value, bool):
        return ("bool", value)
    if _is_int(value):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, Symbol):
        return ("sym", str.__str__(value))
    if isinstance(value, str):
        return ("str", str.__str__(value))
    if isinstance(value, (list, tuple)):
        return ("arr", tuple(hash_key(v) for v in value))
    if isinstance(value, RubyHash):
        return ("hash", tuple((hash_key(k), hash_key(v)) for k, v in value.items()))
    if isinstance(value, dict):
        return ("hash", tuple((hash_key(k), hash_key(v)) for k, v in value.items()))
    if isinstance(value, Regexp):
        return ("re", value.source, value.options)
    return ("obj", id(value))


def eq(a: Any, b: Any) -> bool:
    """Ruby ``a == b`` for DDL values (numeric types compare by value, nothing else mixes)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return (
            isinstance(a, str)
            and isinstance(b, str)
            and isinstance(a, Symbol) == isinstance(b, Symbol)
            and str.__str__(a) == str.__str__(b)
        )
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (dict, RubyHash)) and isinstance(b, (dict, RubyHash)):
        ha = a if isinstance(a, RubyHash) else RubyHash(list(a.items()))
        hb = b if isinstance(b, RubyHash) else RubyHash(list(b.items()))
        return ha == hb
    if isinstance(a, Regexp) and isinstance(b, Regexp):
        return a.source == b.source and a.options == b.options
    return bool(a == b)


def plain_dict(value: Any) -> Any:
    """Recursively turn :class:`RubyHash` into ``dict`` and tuples into lists."""
    if isinstance(value, RubyHash):
        return {plain_dict(k): plain_dict(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {plain_dict(k): plain_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_dict(v) for v in value]
    return value


# --------------------------------------------------------------------------- to_s / inspect


def float_to_s(value: float) -> str:
    """Ruby ``Float#to_s`` (see :func:`mcollective_py.rubytypes.float_to_s`)."""
    return rubytypes.float_to_s(value)


def regexp_to_s(regexp: Regexp) -> str:
    """Ruby ``Regexp#to_s``: ``(?-mix:source)`` with the option letters on/off.

    Like Ruby, a source that is itself one ``(?flags:...)`` group is merged into the
    outer options (``/(?i:a)/.to_s == "(?i-mx:a)"``).
    """
    source = regexp.source
    options = regexp.options
    m = re.match(r"\(\?([mix]*)(?:-([mix]*))?:", source)
    if m and _group_closes_at_end(source, m.end()):
        for letter in m.group(1):
            options |= _OPTION_BITS[letter]
        for letter in m.group(2) or "":
            options &= ~_OPTION_BITS[letter]
        source = source[m.end() : -1]
    on = "".join(c for c in "mix" if options & _OPTION_BITS[c])
    off = "".join(c for c in "mix" if not options & _OPTION_BITS[c])
    return f"(?{on}{'-' + off if off else ''}:{_inspect.escape_slashes(source)})"


_OPTION_BITS = {"i": RE_IGNORECASE, "x": RE_EXTENDED, "m": RE_MULTILINE}


def _group_closes_at_end(source: str, start: int) -> bool:
    depth = 1
    i = start
    in_class = False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i == len(source) - 1
        i += 1
    return False


def inspect(value: Any) -> str:
    """Ruby ``#inspect`` (Ruby 3.1 forms) of a value, within the default budget."""
    return _inspect.inspect(value)


def to_s(value: Any) -> str:
    """Ruby ``#to_s`` of a DDL value (``nil`` -> ``""``; Arrays/Hashes -> inspect)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Regexp):
        return regexp_to_s(value)
    return inspect(value)


def join(values: Sequence[Any], separator: str = "") -> str:
    """Ruby ``Array#join``: ``to_s`` of each element, nested arrays joined recursively."""
    return separator.join(
        join(v, separator) if isinstance(v, (list, tuple)) else to_s(v) for v in values
    )


# --------------------------------------------------------------------------- numbers


_TO_I = lazy_re(r"[ \t\n\v\f\r]*([+-]?)([0-9]+(?:_[0-9]+)*)")
_TO_F = lazy_re(
    r"[ \t\n\v\f\r]*([+-]?[0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?(?:[eE][+-]?[0-9]+)?)"
)


def to_i(text: str) -> int:
    """Ruby ``String#to_i``: the leading integer (after whitespace), else 0."""
    m = _TO_I.match(text)
    if not m:
        return 0
    return int(m.group(1) + m.group(2).replace("_", ""))


def to_f(text: str) -> float:
    """Ruby ``String#to_f``: the leading decimal number (after whitespace), else 0.0."""
    m = _TO_F.match(text)
    if not m:
        return 0.0
    return float(m.group(1).replace("_", ""))


RUBY_SPACE = " \t\n\v\f\r"  # Ruby's \s, and what strip and split(" ") remove

_INT_BODY = lazy_re(
    r"(?P<sign>[+-]?)(?:"
    r"0[xX](?P<hex>[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*)"
    r"|0[bB](?P<bin>[01]+(?:_[01]+)*)"
    r"|0[oO](?P<oct>[0-7]+(?:_[0-7]+)*)"
    r"|0[dD](?P<dec>[0-9]+(?:_[0-9]+)*)"
    r"|0_?(?P<oct0>[0-7]+(?:_[0-7]+)*)"
    r"|(?P<plain>[1-9][0-9]*(?:_[0-9]+)*|0))"
)
_FLOAT_DEC = lazy_re(
    r"[+-]?(?:[0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?|\.[0-9]+(?:_[0-9]+)*)"
    r"(?:[eE][+-]?[0-9]+(?:_[0-9]+)*)?"
)
_FLOAT_HEX = lazy_re(
    r"(?P<sign>[+-]?)0[xX](?P<int>[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*)"
    r"(?:\.(?P<frac>[0-9a-fA-F]*))?(?:[pP](?P<exp>[+-]?[0-9]+))?"
)


def string_to_integer(text: str) -> int:
    """Ruby ``Integer(str)``: whitespace around, sign, ``0x 0b 0o 0d`` and ``0`` (octal!).

    Raises :class:`RubyTypeError` with Ruby's message for anything else.
    """
    m = _INT_BODY.fullmatch(text.strip(RUBY_SPACE))
    if not m:
        raise RubyTypeError(f"invalid value for Integer(): {inspect(text)}")
    for group, base in (("hex", 16), ("bin", 2), ("oct", 8), ("dec", 10), ("oct0", 8)):
        if m[group] is not None:
            number = int(m[group].replace("_", ""), base)
            break
    else:
        number = int(m["plain"].replace("_", ""))
    return -number if m["sign"] == "-" else number


def string_to_float(text: str) -> float:
    """Ruby ``Float(str)``: decimal with underscores and exponent, or hexadecimal.

    Raises :class:`RubyTypeError` with Ruby's message for anything else.
    """
    body = text.strip(RUBY_SPACE)
    if _FLOAT_DEC.fullmatch(body):
        return float(body.replace("_", ""))
    m = _FLOAT_HEX.fullmatch(body)
    if m:
        number = float.fromhex(
            f"0x{m['int'].replace('_', '')}.{m['frac'] or '0'}p{m['exp'] or '0'}"
        )
        return -number if m["sign"] == "-" else number
    raise RubyTypeError(f"invalid value for Float(): {inspect(text)}")


def _kernel_integer(value: Any) -> int:
    if _is_int(value):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise RubyTypeError(float_to_s(value))
        return int(value)  # truncates toward zero, like Ruby's sprintf %d
    if is_string(value):
        return string_to_integer(value)
    if value is None:
        raise RubyTypeError("can't convert nil into Integer")
    raise RubyTypeError(f"can't convert {class_name(value)} into Integer")


def _kernel_float(value: Any) -> float:
    if isinstance(value, bool):
        raise RubyTypeError(f"can't convert {class_name(value)} into Float")
    if isinstance(value, (int, float)):
        return float(value)
    if is_string(value):
        return string_to_float(value)
    if value is None:
        raise RubyTypeError("can't convert nil into Float")
    raise RubyTypeError(f"can't convert {class_name(value)} into Float")


# --------------------------------------------------------------------------- Strings


def split_str(text: str, sep: str) -> list[str]:
    """Ruby ``String#split(sep)`` for a non-space String separator (trailing "" dropped)."""
    if not text:
        return []
    parts = text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def split_re(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Ruby ``String#split(/(re)/)`` with a fixed internal pattern: captures kept, trailing
    empty fields dropped."""
    if not text:
        return []
    parts = [p or "" for p in pattern.split(text)]
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def split_words(text: str) -> list[str]:
    """Ruby ``String#split(" ")``: awk-style split on runs of ASCII whitespace."""
    return [w for w in re.split(r"[ \t\n\v\f\r]+", text) if w]


def chomp(line: str) -> str:
    """Ruby ``String#chomp``: drop one trailing ``\\r\\n``, ``\\n`` or ``\\r``."""
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


def class_name(value: Any) -> str:
    """Ruby class name of a value as used in messages (`Integer`, `nil`, `Hash`...)."""
    literal = _inspect.keyword(value)
    if literal is not None:
        return literal
    if _is_int(value):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, Symbol):
        return "Symbol"
    if isinstance(value, str):
        return "String"
    if isinstance(value, (list, tuple)):
        return "Array"
    if isinstance(value, (dict, RubyHash)):
        return "Hash"
    if isinstance(value, Regexp):
        return "Regexp"
    return type(value).__name__


_DIRECTIVE = lazy_re(r"%([-+ 0#]*)(\d+)?(?:\.(\d+))?([sdiufeEgGxXobBcp%])")


def sprintf(fmt: str, args: Sequence[Any]) -> str:
    """Ruby ``format(fmt, *args)`` for the directives aggregate formats use.

    Supports flags ``-+ 0#``, width, precision and ``s p d i u f e E g G x X o b B c %``.
    Arguments are converted the Ruby way (``%s`` uses ``to_s``, ``%d`` truncates
    Floats and parses Strings strictly).  Raises :class:`RubyTypeError` with Ruby's
    message when an argument cannot be converted, too few are given, or the format
    has a directive outside that set.  (Negative ``%x``/``%o`` print with a minus sign,
    where Ruby prints two's complement ``..f01``.)
    """
    out: list[str] = []
    pos = 0
    argi = 0
    while True:
        nxt = fmt.find("%", pos)
        if nxt < 0:
            out.append(fmt[pos:])
            return "".join(out)
        out.append(fmt[pos:nxt])
        m = _DIRECTIVE.match(fmt, nxt)
        if not m:
            if nxt + 1 >= len(fmt):
                raise RubyTypeError("incomplete format specifier; use %% (double %) instead")
            raise RubyTypeError(f"malformed format string - %{fmt[nxt + 1]}")
        pos = m.end()
        flags, width, prec, conv = m.group(1), m.group(2), m.group(3), m.group(4)
        if conv == "%":
            out.append("%")
            continue
        if argi >= len(args):
            raise RubyTypeError("too few arguments")
        arg = args[argi]
        argi += 1
        out.append(_format_one(flags, width, prec, conv, arg))


def _format_one(flags: str, width: str | None, prec: str | None, conv: str, arg: Any) -> str:
    spec = "%" + flags + (width or "") + (f".{prec}" if prec is not None else "")
    if conv in "sp":
        return (spec + "s") % (to_s(arg) if conv == "s" else inspect(arg))
    if conv in "diu":
        return (spec + "d") % _kernel_integer(arg)
    if conv in "feEgG":
        return (spec + conv) % _kernel_float(arg)
    if conv in "xXo":
        return (spec + conv) % _kernel_integer(arg)
    if conv in "bB":
        number = _kernel_integer(arg)
        body = format(abs(number), "b")
        if prec is not None:
            body = body.rjust(int(prec), "0")
        if "#" in flags and number:
            body = "0" + conv + body
        sign = "-" if number < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
        w = int(width or 0)
        if "-" in flags:
            return (sign + body).ljust(w)
        if "0" in flags and prec is None:
            return sign + body.rjust(w - len(sign), "0")
        return (sign + body).rjust(w)
    if is_string(arg) and len(arg) != 1:  # "c"
        raise RubyTypeError("%c requires a character")
    char = arg if is_string(arg) else chr(_kernel_integer(arg))
    return (spec.replace("0", "") + "s") % char[:1]
