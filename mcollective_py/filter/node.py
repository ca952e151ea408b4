"""Node-side primitives: one node's identity, agents, classes and facts tested as Ruby does.

``Util.has_identity? / has_agent? / has_cf_class? / has_fact?`` and ``test_fact_value`` with
Ruby's conversions (``Integer()``, ``Float()``, ``<=>`` between Strings and numbers) and Ruby
regexes (time-budgeted, see :mod:`mcollective_py.ruby.regex`).  Where Ruby would raise, these
raise :class:`_Abort` and the caller turns it into "no match".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..ruby import values as rv
from ..ruby.regex import FILTER_TIMEOUT, RubyPattern, RubyRegexError, compile_ruby_regex
from ..rubytypes import Regexp
from .model import _LINE_STARTS_WITH_SLASH, DataPlugin, IdentityEntry, _rx

# =========================================================================================
# Ruby values: the few conversions MCollective's matching relies on (see mcollective_py.ruby)
# =========================================================================================


class _Abort(Exception):
    """Ruby would raise inside validate_filter?: the daemon drops the request."""


def normalize_facts(value: Any) -> Any:
    """Ruby ``Facts::Base#normalize_facts``: scalars become strings, containers keep shape."""
    if isinstance(value, (list, tuple)):
        return [normalize_facts(v) for v in value]
    if isinstance(value, Mapping):
        return {rv.to_s(k): normalize_facts(v) for k, v in value.items()}
    return rv.to_s(value)


def _ruby_integer(text: str) -> int:
    """Ruby ``Integer(str)``; raising means Ruby's ArgumentError (the request is dropped)."""
    try:
        return rv.string_to_integer(text)
    except rv.RubyTypeError as exc:
        raise _Abort(f"ArgumentError: {exc}") from None


def _ruby_float(text: str) -> float:
    """Ruby ``Float(str)``; raising means Ruby's ArgumentError (the request is dropped)."""
    try:
        return rv.string_to_float(text)
    except rv.RubyTypeError as exc:
        raise _Abort(f"ArgumentError: {exc}") from None


def _regex_or_abort(source: str, options: int = 0) -> RubyPattern:
    try:
        return compile_ruby_regex(source, options, timeout=FILTER_TIMEOUT)
    except RubyRegexError as exc:
        raise _Abort(f"RegexpError: /{source}/: {exc}") from None


class _PluginFailed(Exception):
    """A data plugin is missing or failed: Ruby's DDLValidationError, stack evaluates false."""


@dataclass(frozen=True)
class _Node:
    identity: str
    facts: Mapping[str, Any]
    classes: tuple[str, ...]
    agents: tuple[str, ...]
    data_plugin: DataPlugin | None = field(default=None)

    def has_identity(self, entry: IdentityEntry) -> bool:
        if isinstance(entry, Regexp):
            rx = _regex_or_abort(entry.source, entry.options)
            if rx.search("^/"):  # Ruby: Regexp#match("^/") is truthy, then Regexp#gsub
                raise _Abort("NoMethodError: undefined method `gsub' for a Regexp identity")
            return rx.search(self.identity) is not None
        if _LINE_STARTS_WITH_SLASH.search(entry):
            return _regex_or_abort(entry.replace("/", "")).search(self.identity) is not None
        return self.identity == entry

    def has_agent(self, entry: str) -> bool:
        if _LINE_STARTS_WITH_SLASH.search(entry):
            rx = _regex_or_abort(entry.replace("/", ""))
            return any([rx.search(a) is not None for a in self.agents])
        return entry in self.agents

    def has_cf_class(self, entry: str) -> bool:
        if _LINE_STARTS_WITH_SLASH.search(entry):
            rx = _regex_or_abort(entry.replace("/", ""))
            return any(rx.search(rv.chomp(k)) is not None for k in self.classes)
        return any(rv.chomp(k) == entry for k in self.classes)

    def has_fact(self, name: str, value: str, operator: str) -> bool:
        if name not in self.facts:
            return False
        fact = self.facts[name]
        if isinstance(fact, list):
            return any(_test_fact_value(e, value, operator) for e in fact)
        if isinstance(fact, dict):
            return any(_test_fact_value(k, value, operator) for k in fact)
        return _test_fact_value(fact, value, operator)


_SLASH_WRAPPED = _rx(r"^\/(.+)\/$")
_ALL_DIGITS = _rx(r"^[0-9]+$")
_LOOSE_DECIMAL = _rx(r"^[0-9]+.[0-9]+$")  # sic: the dot is not escaped in Ruby


def _test_fact_value(fact: Any, value: str, operator: str) -> bool:
    """Ruby ``Util.test_fact_value`` (fact is a normalized String, or a nested Array/Hash)."""
    if operator == "=~":
        m = _SLASH_WRAPPED.search(value)
        rx = _regex_or_abort(m[1] if m else value)
        if not isinstance(fact, str):
            raise _Abort(f"NoMethodError: undefined method `match' for {type(fact).__name__}")
        return rx.search(fact) is not None
    if operator == "==":
        return fact == value
    if operator in ("<=", ">=", "<", ">", "!="):
        left: Any = fact
        right: Any = value
        if isinstance(fact, str) and _ALL_DIGITS.search(value) and _ALL_DIGITS.search(fact):
            left, right = _ruby_integer(fact), _ruby_integer(value)
        elif isinstance(fact, str) and _LOOSE_DECIMAL.search(value) and _LOOSE_DECIMAL.search(fact):
            left, right = _ruby_float(fact), _ruby_float(value)
        return _compare(left, operator, right)
    return False


def _compare(left: Any, operator: str, right: Any) -> bool:
    """``left <op> right`` with Ruby's rules for the String/Integer/Float values seen here."""
    if operator == "==":
        return _ruby_equal(left, right)
    if operator == "!=":
        return not _ruby_equal(left, right)
    numeric = _is_numeric(left) and _is_numeric(right)
    if not (numeric or (isinstance(left, str) and isinstance(right, str))):
        raise _Abort(
            f"comparison of {type(left).__name__} with {type(right).__name__} failed ({operator})"
        )
    if operator == "<":
        return bool(left < right)
    if operator == ">":
        return bool(left > right)
    if operator == "<=":
        return bool(left <= right)
    return bool(left >= right)


def _is_numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ruby_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if _is_numeric(left) and _is_numeric(right):
        return bool(left == right)
    if isinstance(left, str) and isinstance(right, str):
        return str.__str__(left) == str.__str__(right)
    return bool(type(left) is type(right) and left == right)


def _node(
    identity: str,
    facts: Mapping[str, Any],
    classes: Sequence[str],
    agents: Sequence[str],
    data_plugin: DataPlugin | None,
) -> _Node:
    normalized = normalize_facts(dict(facts))
    return _Node(identity, normalized, tuple(classes), tuple(agents), data_plugin)
