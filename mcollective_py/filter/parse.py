"""Parsing the CLI filter flags ``-I -C -F -A -W -S`` exactly as Ruby MCollective 2.12.5 does.

``Util.parse_fact_string`` (:func:`parse_fact`), ``-W`` (:func:`parse_with`) and
``Matcher::Scanner``/``Parser``/``create_function_hash`` (:func:`parse_compound`), quirks
included.  Bad input raises :class:`~mcollective_py.errors.UsageError`.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import UsageError
from ..ruby import values as rv
from ..ruby.regex import compile_ruby_regex
from ..rubytypes import Regexp
from .model import CompoundToken, FactFilter, Filter, FStatement, _rx

# =========================================================================================
# Parsing: -F / -W
# =========================================================================================

_FACT_FORMS = (
    (_rx(r"^([^ ]+?)[ ]*=>[ ]*(.+)"), ">="),
    (_rx(r"^([^ ]+?)[ ]*=<[ ]*(.+)"), "<="),
    (_rx(r"^([^ ]+?)[ ]*(<=|>=|<|>|!=|==|=~)[ ]*(.+)"), None),
    (_rx(r"^(.+?)[ ]*=[ ]*\/(.+)\/$"), "=~"),
    (_rx(r"^([^= ]+?)[ ]*=[ ]*(.+)"), "=="),
)


def parse_fact(text: str) -> FactFilter:
    """Parse a ``-F`` value exactly as Ruby's ``Util.parse_fact_string``.

    The first form that matches wins: ``a=>b`` (>=), ``a=<b`` (<=), ``a<op>b`` for op in
    ``<= >= < > != == =~``, ``a=/re/`` (=~, value kept as ``"/re/"``), ``a=b`` (==).
    Like Ruby, ``^``/``$`` are line anchors and spaces around the operator are dropped.
    Raises UsageError if no form matches.
    """
    for pattern, operator in _FACT_FORMS:
        m = pattern.search(text)
        if not m:
            continue
        if operator is None:
            return FactFilter(m[1], m[2], m[3])
        if operator == "=~":
            return FactFilter(m[1], "=~", f"/{m[2]}/")
        return FactFilter(m[1], operator, m[2])
    raise UsageError(
        f"could not parse fact filter {text!r}; use fact=value, fact=/regex/ or "
        "fact<op>value with op one of ==, !=, <, >, <=, >=, =~"
    )


def parse_with(text: str) -> Filter:
    """Parse a ``-W`` value: each whitespace-separated token is a fact if :func:`parse_fact`
    accepts it, otherwise a class.  Returns a Filter holding only ``fact`` and ``cf_class``."""
    facts: list[FactFilter] = []
    classes: list[str] = []
    for token in rv.split_words(text):
        try:
            facts.append(parse_fact(token))
        except UsageError:
            classes.append(token)
    return Filter(fact=tuple(facts), cf_class=tuple(classes))


# =========================================================================================
# Parsing: -S (a faithful port of Matcher::Scanner, Matcher::Parser, create_function_hash)
# =========================================================================================


class _TokenizeError(Exception):
    pass


_OPERATOR_CHAR = frozenset("=<>")


class _Scanner:
    """Ruby ``Matcher::Scanner``: character positions, quirks and all."""

    def __init__(self, text: str) -> None:
        self.args = list(text)
        self.token_index = 0
        self.separation_counter = 0
        self.white_spaces = 0

    def at(self, j: int) -> str | None:
        n = len(self.args)
        return self.args[j] if -n <= j < n else None

    def get_token(self) -> tuple[str | None, Any]:
        ti = self.token_index
        if ti >= len(self.args):
            return None, None
        c = self.args[ti]
        if c in "()":
            return c, c
        if c == "!":
            return "not", "not"
        if c == " ":
            return " ", " "
        for word in ("not", "and", "or"):
            if c == word[0]:
                rest = len(word)
                if all(self.at(ti + k) == word[k] for k in range(1, rest)) and self.at(
                    ti + rest
                ) in (" ", "("):
                    self.token_index += rest - 1
                    return word, word
                break
        return self._gen_statement()

    def _is_klass(self, j: int) -> bool:
        while j < len(self.args) and self.at(j) == " ":
            j += 1
        return self.at(j) not in _OPERATOR_CHAR

    def _lookahead(self, index: int) -> int | None:
        index += 1
        while index <= len(self.args):
            self.white_spaces += 1
            ch = self.at(index)
            if ch is None or ch not in rv.RUBY_SPACE:
                self.separation_counter += 1
                return index
            index += 1
        return None

    def _gen_statement(self) -> tuple[str, Any]:
        func = False
        value: list[str] = []
        j = self.token_index
        escaped = False
        n = len(self.args)
        at = self.at

        def take(ch: str | None) -> None:
            if ch is None:  # Ruby: ``current_token_value << nil`` raises TypeError
                raise _TokenizeError("no implicit conversion of nil into String")
            value.append(ch)

        def is_space(ch: str | None) -> bool:
            return ch is not None and ch in rv.RUBY_SPACE

        try:
            if at(j) == "/":
                while True:
                    take(at(j))
                    j += 1
                    if j >= n or is_space(at(j)):
                        break
            elif at(j) in _OPERATOR_CHAR:
                take(at(j))
                j += 1
                if at(j) == "/":
                    while True:
                        take(at(j))
                        j += 1
                        if at(j) == "/":
                            take("/")
                            break
                        if j >= n or at(j) == "/":
                            break
                    while j < n and at(j) not in (" ", ")"):
                        take(at(j))
                        j += 1
            else:
                while True:
                    if at(j) == "/":
                        take("/")
                        j += 1
                        while j < n and at(j) != "/":
                            if at(j) == "\\":
                                take(at(j))
                                j += 1
                                escaped = True
                            take(at(j))
                            j += 1
                        if at(j) is not None:
                            take(at(j))
                        break
                    if at(j) == "(":
                        func = True
                        take(at(j))
                        j += 1
                        while j < n:
                            take(at(j))
                            if at(j) == ")":
                                j += 1
                                break
                            j += 1
                    elif at(j) in ('"', "'"):
                        escaped = True
                        quote = at(j)
                        j += 1
                        self.white_spaces += 1
                        while j < n:
                            if at(j) == "\\":
                                j += 1
                                self.white_spaces += 1
                                if not j < n:
                                    break
                            elif at(j) == quote:
                                j += 1
                                self.white_spaces += 1
                                break
                            take(at(j))
                            j += 1
                    else:
                        take(at(j))
                        j += 1
                    if at(j) == " " and self._is_klass(j) and at(j - 1) not in _OPERATOR_CHAR:
                        break
                    if (
                        at(j) == " "
                        and self.separation_counter < 2
                        and not _STATEMENT_HAS_OPERATOR.search("".join(value))
                    ):
                        index = self._lookahead(j)
                        if index is not None:
                            j = index
                    if j >= n or is_space(at(j)) or at(j) == ")":
                        break
                self.separation_counter = 0
        except _TokenizeError as exc:
            raise UsageError(
                f"could not tokenize {''.join(value)!r} in -S input {''.join(self.args)!r}: {exc}"
            ) from None

        token = "".join(value)
        self.token_index += len(token) + self.white_spaces - 1
        self.white_spaces = 0
        bad = ("bad_token", (self.token_index - len(token) + 1, self.token_index))
        if (
            _BAD_FUNC_OPEN.search(token)
            or _BAD_REGEX_COMPARE.search(token)
            or _BAD_SLASH_COMPARE.search(token)
        ):
            return bad
        if func:
            if _FSTATEMENT_SQ.search(token) or _FSTATEMENT_DQ.search(token):
                return "fstatement", token
            return bad
        if escaped:
            return "statement", token
        if token.count("/") % 2:
            return bad
        return "statement", token


_STATEMENT_HAS_OPERATOR = _rx(r"^.+(=|<|>).+$")
_BAD_FUNC_OPEN = _rx(r".+?\($")
_BAD_REGEX_COMPARE = _rx(r"^\/.+?\/(<|>|=).+")
_BAD_SLASH_COMPARE = _rx(r"^.+?\/(<|>|=).+")
_FSTATEMENT_SQ = re.compile(
    r"^.+?\((\s*(')[^']*(')\s*(,\s*(')[^']*('))*)?\)(\.[a-zA-Z0-9_]+)?((!=|<=|>=|=|>|<).+)?$",
    re.MULTILINE | re.ASCII,
)
_FSTATEMENT_DQ = re.compile(
    r'^.+?\((\s*(")[^"]*(")\s*(,\s*(")[^"]*("))*)?\)(\.[a-zA-Z0-9_]+)?((!=|<=|>=|=|>|<).+)?$',
    re.MULTILINE | re.ASCII,
)


def _matches(token: str | None, pattern: str) -> bool:
    """Ruby ``token =~ /pattern/`` where token may be nil."""
    return token is not None and re.search(pattern, token) is not None


def _excerpt(args: list[str], start: int, end: int) -> str:
    n = len(args)
    lo, hi = (max(0, min(n, i)) for i in (start, end + 1))
    return "".join(args[lo:hi]) or "".join(args)


def _execution_stack(text: str) -> list[tuple[str, Any]]:
    """Ruby ``Matcher::Parser#parse``: the token stack, or UsageError naming the problem."""
    sc = _Scanner(text)
    stack: list[tuple[str, Any]] = []
    token_errors: list[tuple[int, int]] = []
    parse_errors: list[tuple[int, int]] = []
    paren_errors: list[int] = []
    pre_index = sc.token_index
    p_token: str | None = None
    c_token, c_value = sc.get_token()
    while c_token is not None:
        sc.token_index += 1
        n_token, n_value = sc.get_token()
        if n_token != " ":
            at_end = sc.token_index == len(sc.args)
            if c_token == "bad_token":
                token_errors.append(c_value)
            elif c_token in ("and", "or"):
                if not (
                    _matches(n_token, r"not|fstatement|statement|\(")
                    or (at_end and n_token is not None)
                ):
                    parse_errors.append((pre_index, sc.token_index))
                if p_token is None:
                    parse_errors.append((pre_index - len(c_token), sc.token_index))
                elif p_token in ("and", "or"):
                    parse_errors.append((pre_index - 1 - len(p_token), pre_index - 1))
            elif c_token == "not":
                if not _matches(n_token, r"fstatement|statement|\(|not"):
                    parse_errors.append((pre_index, sc.token_index))
            elif c_token in ("statement", "fstatement"):
                if not _matches(n_token, r"and|or|\)") and not at_end:
                    parse_errors.append((pre_index, sc.token_index))
            elif c_token == ")":
                if n_token is None and not at_end:
                    parse_errors.append((pre_index, sc.token_index))
                if paren_errors:
                    paren_errors.pop()
                else:
                    paren_errors.append(sc.token_index)
            elif c_token == "(":
                if not _matches(n_token, r"fstatement|statement|not|\("):
                    parse_errors.append((pre_index, sc.token_index))
                paren_errors.append(sc.token_index)
            else:
                parse_errors.append((pre_index, sc.token_index))
            if c_token != "bad_token":
                stack.append((c_token, c_value))
            p_token = c_token
            c_token, c_value = n_token, n_value
        pre_index = sc.token_index

    hint = (
        "; a compound filter joins statements (fact=value, fact>1, fact=/re/, class, /class_re/, "
        "plugin('arg').output=value) with and, or, not and parentheses"
    )
    if token_errors:
        bad = ", ".join(repr(_excerpt(sc.args, a, b)) for a, b in token_errors)
        raise UsageError(f"malformed token(s) {bad} in -S input {text!r}{hint}")
    if parse_errors:
        bad = ", ".join(repr(_excerpt(sc.args, a, b)) for a, b in parse_errors)
        raise UsageError(f"parse error(s) near {bad} in -S input {text!r}{hint}")
    if paren_errors:
        raise UsageError(f"unbalanced parentheses in -S input {text!r}{hint}")
    return stack


_FUNC_SPLIT = re.compile(r"(!=|>=|<=|<|>|=)")
_FUNC_WITH_CALL = _rx(r"^.+\(.*\)$")
_SLASHED_VALUE = _rx(r"^\/.*\/$")
_EDGE_SLASHES = _rx(r"^\/|\/$")
_QUOTE_SPLIT = re.compile(r"('|\")")


def _function_hash(call: str) -> FStatement:
    """Ruby ``Matcher.create_function_hash``: ``fstat("/tmp").size>0`` -> FStatement."""
    parts = rv.split_re(call, _FUNC_SPLIT)
    r_compare: str | None = parts.pop() if parts else None
    operator: str | None = parts.pop() if parts else None
    func = "".join(parts)
    output: str | None = None
    if _FUNC_WITH_CALL.search(func):
        target = func
    else:
        dotted = rv.split_str(func, ".")
        output = dotted.pop() if dotted else None
        target = ".".join(dotted)
    r_value: str | Regexp | None = r_compare
    if r_compare is not None and _SLASHED_VALUE.search(r_compare):
        operator = {"=": "=~", "!=": "!=~"}.get(operator or "", operator)
        source = _EDGE_SLASHES.sub("", r_compare)
        try:
            compile_ruby_regex(source)
        except re.error as exc:
            raise UsageError(
                f"invalid regular expression /{source}/ in -S input {call!r}: {exc}"
            ) from None
        r_value = Regexp(source, 16 if not source.isascii() else 0, ascii=source.isascii())
    elif operator == "=":
        operator = "=="
    name_params = rv.split_str(target, "(")
    name = name_params[0] if name_params else None
    params: str | None = name_params[1] if len(name_params) > 1 else None
    if params == ")":
        params = None
    elif params is None:
        raise UsageError(
            f"could not parse data function {call!r} in -S input; "
            "write it as plugin('argument').output<op>value, e.g. fstat('/tmp').size>0"
        )
    else:
        quotes = rv.split_re(params.replace(")", ""), _QUOTE_SPLIT)
        for i, item in enumerate(quotes):
            if "'" in item or '"' in item:
                del quotes[i]
                break
        for i, item in enumerate(reversed(quotes)):
            if "'" in item or '"' in item:
                del quotes[len(quotes) - i - 1]
                break
        params = "".join(quotes)
    if name is None or operator is None or r_value is None:
        raise UsageError(f"could not parse data function {call!r} in -S input")
    return FStatement(name=name, params=params, value=output, operator=operator, r_compare=r_value)


def parse_compound(text: str) -> tuple[CompoundToken, ...]:
    """Parse a ``-S`` value into Ruby's call stack (``Matcher.create_compound_callstack``).

    Example: ``"foo=bar and not /web/"`` -> statement ``foo=bar``, ``and``, ``not``,
    statement ``/web/``.  Data-plugin calls become ``fstatement`` tokens.  The empty string
    gives an empty stack (which no node matches).  Raises UsageError for malformed tokens,
    parse errors and unbalanced parentheses, as ``mco`` refuses them.
    """
    tokens: list[CompoundToken] = []
    for kind, value in _execution_stack(text):
        if kind == "fstatement":
            tokens.append(CompoundToken(kind, _function_hash(value)))
        else:
            tokens.append(CompoundToken(kind, value))
    return tuple(tokens)
