"""MCollective's validator plugins, reimplemented (``validator/*_validator.rb``).

Each function takes the value to check (plus the validator's argument) and returns
``None`` when the value passes, else the exact ``ValidatorError`` message Ruby gives
(``value should match ^x$``, ``value should be a integer`` -- sic).  Callers add the
input name and a hint; :mod:`mcollective_py.ddl.request` does that.

``ipv4address``/``ipv6address`` follow Ruby 3.1's ``IPAddr.new`` (ipaddr 1.2.4): it
accepts a prefix or netmask suffix (``127.0.0.0/8``), ``[v6]`` brackets and ``%zone``
ids, and refuses zero-padded IPv4 octets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mcollective_py.errors import RegexTimeout
from mcollective_py.lazy import lazy_re
from mcollective_py.ruby import values as rv
from mcollective_py.ruby.regex import RubyRegexError, compile_ruby_regex
from mcollective_py.rubytypes import Regexp, Symbol

__all__ = [
    "CORE_VALIDATORS",
    "TYPECHECKS",
    "Validator",
    "array",
    "ip_family",
    "ipv4address",
    "ipv6address",
    "length",
    "regex",
    "shellsafe",
    "typecheck",
]

#: A named validator: value -> None (pass) or Ruby's failure message.
Validator = Callable[[Any], "str | None"]

#: Type names ``Validator.validate`` routes to the typecheck validator.
TYPECHECKS = ("integer", "boolean", "float", "number", "string")

_SHELL_UNSAFE = ("`", "$", ";", "|", "&&", ">", "<")


def shellsafe(value: Any) -> str | None:
    """Refuse strings containing `` ` $ ; | && > < `` (checked in that order)."""
    if not rv.is_string(value):
        return "value should be a String"
    for chars in _SHELL_UNSAFE:
        if chars in value:
            return f"value should not have {chars} in it"
    return None


def typecheck(value: Any, type_name: str) -> str | None:
    """``integer`` (not bool), ``float``, ``number``, ``string`` (not Symbol), ``boolean``."""
    checks: dict[str, Callable[[Any], bool]] = {
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, float),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "string": rv.is_string,
        "boolean": lambda v: isinstance(v, bool),
    }
    check = checks.get(type_name)
    if check is not None and check(value):
        return None
    return f"value should be a {type_name}"


def length(value: Any, maxlength: int) -> str | None:
    """Refuse a value longer than ``maxlength`` characters (0 or less: no limit)."""
    try:
        size = len(value)
    except TypeError:
        return f"undefined method `size' for {rv.inspect(value)}"
    if maxlength > 0 and size > maxlength:
        return f"Input string is longer than {maxlength} character(s)"
    return None


def regex(value: Any, pattern: str | Regexp) -> str | None:
    """Ruby ``value.match(pattern)``: unanchored, ``^``/``$`` are line anchors.

    A pattern we cannot run (see :mod:`~mcollective_py.ruby.regex`), or one that runs out
    of its time budget, fails with a message saying so.
    """
    if not rv.is_string(value):
        return f"undefined method `match' for {rv.inspect(value)}"
    source, options = (
        (pattern.source, pattern.options) if isinstance(pattern, Regexp) else (pattern, 0)
    )
    try:
        compiled = compile_ruby_regex(source, options)
    except RubyRegexError as exc:
        return f"validation regex {rv.to_s(pattern)} cannot be used: {exc}"
    try:
        found = compiled.search(value)
    except RegexTimeout as exc:
        return f"validation regex {rv.to_s(pattern)} cannot be used: {exc}"
    if found is None:
        return f"value should match {rv.to_s(pattern)}"
    return None


def array(value: Any, choices: Sequence[Any]) -> str | None:
    """The value must equal (Ruby ``==``) one of ``choices``."""
    if any(rv.eq(value, choice) for choice in choices):
        return None
    return f"value should be one of {rv.join(list(choices), ', ')}"


# --------------------------------------------------------------------------- IPAddr

_IN4 = lazy_re(r"\A(\d+)\.(\d+)\.(\d+)\.(\d+)\Z", re.ASCII)
_IN6_FULL = lazy_re(
    r"\A(?:(?:[\da-f]{1,4}:){7}[\da-f]{1,4}|((?:[\da-f]{1,4}:){6})(\d+)\.(\d+)\.(\d+)\.(\d+))\Z",
    re.ASCII | re.IGNORECASE,
)
_IN6_COMPRESSED = lazy_re(
    r"\A((?:(?:[\da-f]{1,4}:)*[\da-f]{1,4})?)::"
    r"((?:((?:[\da-f]{1,4}:)*)(?:[\da-f]{1,4}|(\d+)\.(\d+)\.(\d+)\.(\d+)))?)\Z",
    re.ASCII | re.IGNORECASE,
)


class _Invalid(Exception):
    pass


def _in_addr(octets: Sequence[str]) -> int:
    result = 0
    for octet in octets:
        number = int(octet)
        if number >= 256 or (len(octet) > 1 and octet.startswith("0")):
            raise _Invalid
        result = result << 8 | number
    return result


def _in6_addr(text: str) -> int | None:
    m = _IN6_FULL.match(text)
    if m:
        if m.group(2):
            addr = _in_addr(m.group(2, 3, 4, 5))
            left = m.group(1) + ":"
        else:
            addr = 0
            left = text
        right = ""
    else:
        m = _IN6_COMPRESSED.match(text)
        if not m:
            raise _Invalid
        if m.group(4):
            if text.count(":") > 6:
                raise _Invalid
            addr = _in_addr(m.group(4, 5, 6, 7))
            left = m.group(1)
            right = m.group(3) + "0:0"
        else:
            limit = 8 if (m.group(1) == "" or m.group(2) == "") else 7
            if text.count(":") > limit:
                raise _Invalid
            left, right, addr = m.group(1), m.group(2), 0
    lparts = _ruby_split(left, ":")
    rparts = _ruby_split(right, ":")
    rest = 8 - len(lparts) - len(rparts)
    if rest < 0:
        return None
    value = 0
    for part in lparts + ["0"] * rest + rparts:
        value = value << 16 | int(part or "0", 16)
    return value | addr


def _ruby_split(text: str, sep: str) -> list[str]:
    parts = text.split(sep) if text else []
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _parse_ip(text: str, family: str | None = None) -> tuple[str, int | None, int]:
    """``IPAddr.new(text)`` -> (family, address, mask); raises :class:`_Invalid`."""
    prefix, slash, prefixlen = text.partition("/")
    m = re.match(r"\A\[(.*)\]\Z", prefix, re.IGNORECASE | re.ASCII)
    if m:
        prefix = m.group(1)
        family = "ipv6"
    m = re.match(r"\A(.*)(%\w+)\Z", prefix, re.ASCII)
    if m:
        prefix = m.group(1)
        family = "ipv6"
    addr: int | None = None
    found: str | None = None
    if family in (None, "ipv4"):
        m4 = _IN4.match(prefix)
        if m4:
            addr = _in_addr(m4.groups())
            found = "ipv4"
    if found is None and family in (None, "ipv6"):
        addr = _in6_addr(prefix)
        found = "ipv6"
    if found is None or (family is not None and found != family):
        raise _Invalid
    bits = 32 if found == "ipv4" else 128
    full = (1 << bits) - 1
    if not slash:
        return found, addr, full
    if addr is None:
        raise _Invalid
    if re.match(r"\A(0|[1-9]+\d*)\Z", prefixlen, re.ASCII):
        length_ = int(prefixlen)
        if not 0 <= length_ <= bits:
            raise _Invalid
        return found, addr, (full >> (bits - length_)) << (bits - length_)
    if re.match(r"\A\d+\Z", prefixlen, re.ASCII):
        raise _Invalid  # leading zeros in prefix
    mfamily, maddr, mmask = _parse_ip(prefixlen)
    if mfamily != found or maddr is None:
        raise _Invalid
    inverted = maddr ^ mmask
    if (inverted + 1) & inverted:
        raise _Invalid
    return found, addr, maddr


def ip_family(value: Any) -> str | None:
    """``"ipv4"``/``"ipv6"`` if Ruby's ``IPAddr.new(value)`` accepts it, else None."""
    if not rv.is_string(value):
        return None
    try:
        return _parse_ip(value)[0]
    except (_Invalid, ValueError):
        return None


def ipv4address(value: Any) -> str | None:
    """Accept what ``IPAddr.new`` parses as IPv4."""
    return None if ip_family(value) == "ipv4" else "value should be an ipv4 address"


def ipv6address(value: Any) -> str | None:
    """Accept what ``IPAddr.new`` parses as IPv6."""
    return None if ip_family(value) == "ipv6" else "value should be an ipv6 address"


#: Named validators a DDL can give as ``:validation => :name``.
CORE_VALIDATORS: Mapping[str, Validator] = {
    "shellsafe": shellsafe,
    "ipv4address": ipv4address,
    "ipv6address": ipv6address,
}

# Names that Ruby resolves to a method taking a different number of arguments.
_ARITY_MISMATCH = {
    "regex": "wrong number of arguments (given 1, expected 2)",
    "length": "wrong number of arguments (given 1, expected 2)",
    "array": "wrong number of arguments (given 1, expected 2)",
    "typecheck": "wrong number of arguments (given 1, expected 2)",
    "hash": "wrong number of arguments (given 1, expected 0)",
    "name": "wrong number of arguments (given 1, expected 0)",
    "to_s": "wrong number of arguments (given 1, expected 0)",
    "inspect": "wrong number of arguments (given 1, expected 0)",
    "class": "wrong number of arguments (given 1, expected 0)",
    "freeze": "wrong number of arguments (given 1, expected 0)",
    "object_id": "wrong number of arguments (given 1, expected 0)",
}


def run_validation(
    value: Any, validation: Any, extra: Mapping[str, Validator] | None = None
) -> str | None:
    """``MCollective::Validator.validate(value, validation)``: route by validation kind.

    Type names go to :func:`typecheck`; a String or Regexp to :func:`regex`; a Symbol
    to the named validator (``extra`` first, then :data:`CORE_VALIDATORS`); a list to
    :func:`array`; anything else (``nil``) passes.  Returns Ruby's message or None.
    """
    if isinstance(validation, Symbol):
        name = str.__str__(validation)
        if name in TYPECHECKS:
            return typecheck(value, name)
        if extra and name in extra:
            return extra[name](value)
        if name in CORE_VALIDATORS:
            return CORE_VALIDATORS[name](value)
        if name in _ARITY_MISMATCH:
            return _ARITY_MISMATCH[name]
        return f"Unknown validator: '{name}'."
    if isinstance(validation, (str, Regexp)):
        return regex(value, validation)
    if isinstance(validation, (list, tuple)):
        return array(value, validation)
    return None
