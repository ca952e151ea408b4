"""Python stand-ins for the Ruby values MCollective puts on the wire.

Mapping used by every serializer (Marshal, YAML, JSON):

==================  ======================================================
Ruby                Python
==================  ======================================================
nil/true/false      None / True / False
Integer             int (Fixnum or Bignum is an encoding detail)
Float               float
String (UTF-8)      str
String (US-ASCII)   AsciiString (a str subclass)
String (binary)     bytes
String (other enc)  EncodedString (a str subclass carrying ``encoding``)
Symbol              Symbol (a str subclass; ``Symbol("agent") != "agent"`` for dict keys? no:
                    it hashes and compares like its text, see below)
Array               list
Hash                dict (insertion order kept)
Hash with default   HashWithDefault (a dict subclass carrying ``default``)
Regexp              Regexp (frozen dataclass: source, options)
==================  ======================================================

``Symbol`` compares equal to the plain string with the same text, so ``body["agent"]``
finds a ``Symbol("agent")`` key: MCollective itself falls back from symbol to string
keys in most places.  Serializers preserve the *type* (``type(k) is Symbol``), which is
what makes re-encoding byte-identical.
"""

from __future__ import annotations

import decimal
import math
from dataclasses import dataclass
from typing import Any


class Symbol(str):
    """A Ruby Symbol, e.g. ``:agent``. Equal to and hashed like its text."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f":{str.__str__(self)}"


class AsciiString(str):
    """A Ruby String tagged US-ASCII (Marshal ivar ``E`` = false)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"AsciiString({str.__repr__(self)})"


class EncodedString(str):
    """A Ruby String in an encoding other than UTF-8/US-ASCII/binary (``encoding`` ivar)."""

    encoding: str

    def __new__(cls, text: str, encoding: str) -> EncodedString:
        obj = super().__new__(cls, text)
        obj.encoding = encoding
        return obj

    def __repr__(self) -> str:
        return f"EncodedString({str.__repr__(self)}, {self.encoding!r})"


class HashWithDefault(dict):  # type: ignore[type-arg,unused-ignore]
    """A Ruby Hash that has a default value (Marshal type ``}``)."""

    def __init__(self, *args: Any, default: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def __repr__(self) -> str:
        return f"HashWithDefault({dict.__repr__(self)}, default={self.default!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HashWithDefault):
            return dict.__eq__(self, other) and self.default == other.default
        return dict.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment,unused-ignore]


# Regexp option bits, as Ruby stores them.
RE_IGNORECASE = 1
RE_EXTENDED = 2
RE_MULTILINE = 4


@dataclass(frozen=True)
class Regexp:
    """A Ruby Regexp literal: its source text and option bits (1=i, 2=x, 4=m).

    ``ascii`` records the encoding flag Ruby attaches (US-ASCII source => True), so a
    decoded Regexp re-encodes to the same bytes.
    """

    source: str
    options: int = 0
    ascii: bool = True

    def __repr__(self) -> str:
        flags = "".join(c for bit, c in ((1, "i"), (2, "x"), (4, "m")) if self.options & bit)
        return f"/{self.source}/{flags}"


def symbolize(data: dict[str, Any]) -> dict[Symbol, Any]:
    """Return a copy of ``data`` with its top-level keys turned into Symbols."""
    return {Symbol(k): v for k, v in data.items()}


def plain(value: Any) -> Any:
    """Convert a decoded Ruby value to plain JSON-able Python (symbols -> str, bytes -> str).

    Used for ``--json`` output and for comparing against Ruby's JSON.  Binary strings are
    decoded as UTF-8 with replacement, Regexps become ``/src/``.
    """
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Regexp):
        return repr(value)
    return value


# ---------------------------------------------------------------- Ruby Float#to_s
def float_to_s(x: float) -> str:
    """Ruby's ``Float#to_s``: shortest round-trip digits; fixed notation when the decimal
    point falls within the first 15 positions, or at the 16th with digits after it
    (``1000000000000000.2``; but ``1.5e+15``), or up to 4 places after it
    (``0.0001``); otherwise ``d.ddde+XX`` (as real Ruby 3.1 prints them)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    t = decimal.Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0") or "0"
    exp = int(t.exponent) + len(t.digits)  # decimal point position
    if 0 < exp <= 15 or (exp == 16 and len(digits) > 16):
        if len(digits) <= exp:
            return f"{sign}{digits}{'0' * (exp - len(digits))}.0"
        return f"{sign}{digits[:exp]}.{digits[exp:]}"
    if -4 < exp <= 0:
        return f"{sign}0.{'0' * -exp}{digits}"
    mant = digits[0] + "." + (digits[1:] or "0")
    return f"{sign}{mant}e{exp - 1:+03d}"


def inspect(value: Any) -> str:
    """Ruby 3.1's ``inspect`` of a decoded value (one line), within the default budget.

    The implementation is :func:`mcollective_py.ruby.inspect.inspect`; this name stays for
    the callers that only need ``rubytypes``.
    """
    from mcollective_py.ruby.inspect import inspect as _inspect

    return _inspect(value)
