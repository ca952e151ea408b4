"""Compound (``-S``) expressions evaluated on a node, as ``Matcher.eval_compound_*`` does.

Statements and data-plugin fstatements become ``true``/``false`` first (eagerly, as Ruby
does), then the words are evaluated by a small boolean parser of our own -- Ruby ``eval``s
them; nothing here is ever ``eval``-ed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ..errors import RegexTimeout
from ..ruby import values as rv
from ..rubytypes import Regexp
from .model import CompoundToken, DataPlugin, FStatement
from .node import (
    _LINE_STARTS_WITH_SLASH,
    _Abort,
    _compare,
    _is_numeric,
    _Node,
    _node,
    _PluginFailed,
    _regex_or_abort,
    _ruby_float,
    _ruby_integer,
)

_STATEMENT_OPERATOR = re.compile(r">=|<=|=|<|>")


def _eval_statement(node: _Node, statement: str) -> bool:
    """Ruby ``Matcher.eval_compound_statement``."""
    if _LINE_STARTS_WITH_SLASH.search(statement):
        return node.has_cf_class(statement)
    m = _STATEMENT_OPERATOR.search(statement)
    if not m:
        return node.has_cf_class(statement)
    operator = m[0]
    parts = rv.split_str(statement, operator)
    name = parts[0] if parts else ""
    value = parts[1] if len(parts) > 1 else None
    if value is None:
        raise _Abort(f"NoMethodError: undefined method `split' for nil (statement {statement!r})")
    if value[:1] == "/":
        operator = "=~"
    elif operator == "=":
        operator = "=="
    return node.has_fact(name, value, operator)


class _WholeResult:
    """The data plugin's Result object itself (an fstatement without ``.output``)."""


def _plugin_name(name: str) -> str:
    """Ruby ``Data.pluginname`` without the ``_data`` suffix."""
    lowered = name.lower()
    return lowered[: -len("_data")] if lowered.endswith("_data") else lowered


_FSTATEMENT_OPERATOR = re.compile(r"(?:(!=|<=|>=|<|>)|==?)")


def _eval_fstatement(node: _Node, fs: FStatement) -> bool:
    """Ruby ``Matcher.eval_compound_fstatement`` with ``execute_function``."""
    if node.data_plugin is None:
        raise _PluginFailed(fs.name)
    try:
        result = node.data_plugin(_plugin_name(fs.name), fs.params)
    except Exception as exc:  # any plugin failure: Ruby's DDLValidationError path
        raise _PluginFailed(fs.name) from exc
    left: Any
    if fs.value is None:
        left = _WholeResult()
    else:
        left = result.get(fs.value) if isinstance(result, Mapping) else None
    if left is None:
        return False
    if isinstance(left, (str, bool)) and ("<" in fs.operator or ">" in fs.operator):
        return False
    if fs.params is not None and "`" in fs.params:
        return False
    if "=~" in fs.operator:  # =~ and !=~
        if not isinstance(left, str):
            return False
        r = fs.r_compare
        rx = _regex_or_abort(r.source, r.options) if isinstance(r, Regexp) else _regex_or_abort(r)
        found = rx.search(left) is not None
        return not found if fs.operator == "!=~" else found
    right: Any = fs.r_compare
    if isinstance(left, str):
        right = rv.to_s(right)
    elif isinstance(right, str):
        if _is_numeric(left):
            right = right.strip(rv.RUBY_SPACE)
            try:
                right = _ruby_integer(right)
            except _Abort:
                try:
                    right = _ruby_float(right)
                except _Abort:
                    raise _Abort(f"ArgumentError: invalid numeric value: {right}") from None
        elif isinstance(left, bool):
            right = right.strip(rv.RUBY_SPACE)
            if right not in ("true", "false"):
                raise _Abort(f"ArgumentError: invalid boolean value: {right}")
            right = right == "true"
    m = _FSTATEMENT_OPERATOR.search(fs.operator.strip(rv.RUBY_SPACE))
    if not m:
        raise _Abort(f"ArgumentError: invalid operator: {fs.operator}")
    return _compare(left, m[1] or "==", right)


class _BooleanExpression:
    """Evaluates what Ruby would ``eval``: ``true``/``false`` joined by ``&& || ! ( )``.

    Grammar (Ruby precedence): or := and ('||' and)* ; and := not ('&&' not)* ;
    not := '!' not | '(' [or] ')' | true | false.  Anything else is a Ruby SyntaxError.
    Values follow Ruby: ``()`` is nil, ``&&``/``||`` return an operand.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def evaluate(self) -> bool:
        if not self.tokens:
            return False  # eval("") is nil
        value = self._or()
        if self.pos != len(self.tokens):
            self._fail()
        return bool(value)

    def _fail(self) -> NoReturn:
        raise _Abort(f"SyntaxError in compound expression: {' '.join(self.tokens)!r}")

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _or(self) -> bool | None:
        value = self._and()
        while self._peek() == "||":
            self.pos += 1
            right = self._and()
            value = value if value else right
        return value

    def _and(self) -> bool | None:
        value = self._not()
        while self._peek() == "&&":
            self.pos += 1
            right = self._not()
            value = right if value else value
        return value

    def _not(self) -> bool | None:
        token = self._peek()
        self.pos += 1
        if token == "!":
            return not self._not()
        if token in ("true", "false"):
            return token == "true"
        if token == "(":
            if self._peek() == ")":
                self.pos += 1
                return None
            value = self._or()
            if self._peek() != ")":
                self._fail()
            self.pos += 1
            return value
        self._fail()


_OPERATOR_TOKENS = {"and": "&&", "or": "||", "not": "!", "(": "(", ")": ")"}


def _eval_stack(node: _Node, stack: Sequence[CompoundToken]) -> bool:
    """One compound call stack, as validate_filter? evaluates it (statements first, eagerly)."""
    words: list[str] = []
    try:
        for token in stack:
            if token.kind == "statement" and isinstance(token.value, str):
                words.append("true" if _eval_statement(node, token.value) else "false")
            elif token.kind == "fstatement" and isinstance(token.value, FStatement):
                words.append("true" if _eval_fstatement(node, token.value) else "false")
            elif token.kind in _OPERATOR_TOKENS:
                words.append(_OPERATOR_TOKENS[token.kind])
    except _PluginFailed:
        return False
    try:
        return _BooleanExpression(words).evaluate()
    except RecursionError:  # thousands of nested "not"/"(" from the wire
        raise _Abort("compound expression nested too deeply") from None


def eval_compound(
    stack: Sequence[CompoundToken],
    *,
    facts: Mapping[str, Any],
    classes: Sequence[str],
    data_plugin: DataPlugin | None = None,
) -> bool:
    """Evaluate one compound call stack (from :func:`parse_compound`) against a node.

    Facts are normalized like Ruby's fact sources; ``data_plugin`` serves fstatements (see
    :data:`DataPlugin`).  Returns False where Ruby would raise.  Never raises.
    """
    node = _node("", facts, classes, (), data_plugin)
    try:
        return _eval_stack(node, stack)
    except (_Abort, RegexTimeout):
        return False
