"""MCollective request filters: CLI parsing, the wire form, and node-side matching.

A :class:`Filter` says which nodes a request is for.  It has five parts, each a tuple:

* ``identity`` — node names; ``"/re/"`` strings are regexes, and a Ruby :class:`Regexp`
  object may arrive on the wire (``mco rpc --limit-nodes`` sends one);
* ``cf_class`` — configuration-management classes (``classes.txt``), ``"/re/"`` allowed;
* ``fact`` — :class:`FactFilter` comparisons (``-F os=Debian``, ``-F mem>=1024``);
* ``agent`` — agent names, ``"/re/"`` allowed;
* ``compound`` — ``-S`` expressions, each a call stack of :class:`CompoundToken`.

Three jobs live here, each reproducing Ruby MCollective 2.12.5 (Debian) exactly, quirks
included (see the test golden data under ``tests/golden/filter/``):

1. Parsing the CLI flags ``-I -C -F -A -W -S`` (:func:`parse_fact`, :func:`parse_with`,
   :func:`parse_compound`, :meth:`Filter.from_cli`, :meth:`Filter.from_flags`), as
   ``Util.parse_fact_string``, ``Optionparser`` and ``Matcher::Parser``/``Scanner`` do.
   Bad input raises :class:`~mcollective_py.errors.UsageError`.
2. The wire form (:meth:`Filter.to_wire`, :meth:`Filter.from_wire`): a dict with String keys
   ``fact, cf_class, agent, identity, compound`` in Ruby's order; fact entries are hashes
   with Symbol keys ``:fact, :value, :operator``.  Malformed wire input raises
   :class:`~mcollective_py.errors.SerializationError` (it arrived in a message body).
3. Node-side matching (:func:`matches`, :func:`check`), a pure function reproducing
   ``Security::Base#validate_filter?`` and the ``Util.has_*`` helpers it calls.  Where Ruby
   would raise (a bad regex, ``Integer("08")``, a compound that is not valid Ruby), the
   request is dropped by the Ruby daemon; here the verdict is simply "no match" and
   :attr:`Verdict.error` says why.  Matching never raises.

Ruby regexes go through :mod:`mcollective_py.ruby.regex` (one translation for filters, DDL
validation and policy; every match has a time budget, and running out of it is a Ruby-style
failure: no match, with :attr:`Verdict.error` saying why); nothing is ever ``eval``-ed: the compound evaluator is a small parser of its own.

Where we knowingly differ from Ruby:

* :meth:`Filter.from_wire` is lenient for non-Ruby clients: Symbol top-level keys and
  String-keyed fact entries are honoured (Ruby ignores the first and fails the second).
  Only identities may be Regexp objects (Ruby would also take them for agents and classes).
* A :class:`Filter` does not remember a wire hash that was "empty but not Ruby's empty
  filter" (e.g. ``{"agent"=>[]}``, which Ruby rejects); give :func:`check` the raw hash.
* Regex syntax we cannot run (class intersection ``&&``, ``(?~..)``; see
  :mod:`mcollective_py.ruby.regex`) makes the test fail, as an invalid regex does in Ruby;
  so does a match that runs out of its time budget (Ruby would keep running).
* Any exception from the ``data_plugin`` callback makes that compound stack false (Ruby does
  so for a missing plugin; a failing Ruby plugin drops the request: no match either way).
* Compound expressions nested thousands deep are refused (no match).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .errors import RegexTimeout, SerializationError, UsageError
from .ruby import values as rv
from .ruby.regex import FILTER_TIMEOUT, RubyPattern, RubyRegexError, compile_ruby_regex
from .rubytypes import Regexp, Symbol

__all__ = [
    "CompoundToken",
    "DataPlugin",
    "FStatement",
    "FactFilter",
    "Filter",
    "Verdict",
    "check",
    "compile_ruby_regex",
    "eval_compound",
    "matches",
    "normalize_facts",
    "parse_compound",
    "parse_fact",
    "parse_with",
]

#: ``data_plugin(name, params) -> outputs``: runs the data plugin ``name`` (lower-case, without
#: the ``_data`` suffix, e.g. ``"fstat"``) on ``params`` (the string inside the parentheses, or
#: None) and returns its outputs by name.  Raising anything means "no such plugin / it failed":
#: the whole compound statement list then evaluates to false, as in Ruby.
DataPlugin = Callable[[str, str | None], Mapping[str, Any]]


def _rx(pattern: str) -> re.Pattern[str]:
    """An internal pattern copied from Ruby source: ^ and $ are line anchors there."""
    return re.compile(pattern, re.MULTILINE)


# =========================================================================================
# Ruby values: the few conversions MCollective's matching relies on (see mcollective_py.ruby)
# =========================================================================================


class _Abort(Exception):
    """Ruby would raise inside validate_filter?: the daemon drops the request."""


_ruby_to_s = rv.to_s
_split_str = rv.split_str
_split_re = rv.split_re
_split_words = rv.split_words
_chomp = rv.chomp
_RUBY_SPACE = rv.RUBY_SPACE


def normalize_facts(value: Any) -> Any:
    """Ruby ``Facts::Base#normalize_facts``: scalars become strings, containers keep shape."""
    if isinstance(value, (list, tuple)):
        return [normalize_facts(v) for v in value]
    if isinstance(value, Mapping):
        return {_ruby_to_s(k): normalize_facts(v) for k, v in value.items()}
    return _ruby_to_s(value)


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


# =========================================================================================
# Data model
# =========================================================================================


@dataclass(frozen=True)
class FactFilter:
    """One fact comparison: ``fact operator value`` (operator one of == != < > <= >= =~).

    For ``=~`` the value is kept as Ruby sends it, usually ``"/re/"``.
    """

    fact: str
    operator: str
    value: str

    def to_wire(self) -> dict[Symbol, str]:
        """``{:fact=>.., :value=>.., :operator=>..}`` in Ruby's key order."""
        return {
            Symbol("fact"): self.fact,
            Symbol("value"): self.value,
            Symbol("operator"): self.operator,
        }


@dataclass(frozen=True)
class FStatement:
    """A data-plugin comparison in a compound filter, e.g. ``fstat("/tmp").size>0``.

    ``value`` is the plugin output to compare (None when the call had no ``.output``);
    ``r_compare`` is the right-hand side, a :class:`Regexp` for ``=~`` / ``!=~``.
    """

    name: str
    params: str | None
    value: str | None
    operator: str
    r_compare: str | Regexp

    def to_wire(self) -> dict[str, Any]:
        """Ruby's ``create_function_hash`` order: r_compare, operator, [value], name, params."""
        out: dict[str, Any] = {"r_compare": self.r_compare, "operator": self.operator}
        if self.value is not None:
            out["value"] = self.value
        out["name"] = self.name
        out["params"] = self.params
        return out


COMPOUND_KINDS = ("statement", "fstatement", "and", "or", "not", "(", ")")


@dataclass(frozen=True)
class CompoundToken:
    """One entry of a compound call stack: ``{kind => value}`` on the wire.

    ``kind`` is one of ``statement`` (value: the statement text), ``fstatement`` (value: an
    :class:`FStatement`), ``and``, ``or``, ``not``, ``(``, ``)`` (value: the kind itself).
    """

    kind: str
    value: str | FStatement

    def to_wire(self) -> dict[str, Any]:
        value = self.value.to_wire() if isinstance(self.value, FStatement) else self.value
        return {self.kind: value}


IdentityEntry = str | Regexp


def _tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, tuple):
        return value
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"expected a sequence, got {type(value).__name__}")
    return tuple(value)


@dataclass(frozen=True)
class Filter:
    """Which nodes a request is for.  Empty parts match everything; see the module docstring.

    Sequences passed in are stored as tuples, so a Filter is immutable and hashable.
    """

    identity: tuple[IdentityEntry, ...] = ()
    cf_class: tuple[str, ...] = ()
    fact: tuple[FactFilter, ...] = ()
    agent: tuple[str, ...] = ()
    compound: tuple[tuple[CompoundToken, ...], ...] = ()

    def __post_init__(self) -> None:
        for name in ("identity", "cf_class", "fact", "agent"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        object.__setattr__(self, "compound", tuple(_tuple(s) for s in _tuple(self.compound)))

    # ------------------------------------------------------------------ building from the CLI
    @classmethod
    def from_cli(
        cls,
        *,
        identity: Iterable[str] = (),
        cf_class: Iterable[str] = (),
        fact: Iterable[str] = (),
        agent: Iterable[str] = (),
        with_: Iterable[str] = (),
        select: Iterable[str] = (),
    ) -> Filter:
        """Build a filter from the values of repeated ``-I -C -F -A -W -S`` flags.

        Fact and class entries keep the order of the arguments: ``-F``/``-C`` values first,
        then the ``-W`` tokens (use :meth:`from_flags` to keep a command line's exact
        interleaving).  Raises UsageError for an unparsable ``-F`` or ``-S`` value.
        """
        pairs: list[tuple[str, str]] = []
        for flag, values in (("-I", identity), ("-C", cf_class), ("-F", fact), ("-A", agent)):
            pairs.extend((flag, v) for v in values)
        pairs.extend(("-W", v) for v in with_)
        pairs.extend(("-S", v) for v in select)
        return cls.from_flags(pairs)

    @classmethod
    def from_flags(cls, flags: Iterable[tuple[str, str]]) -> Filter:
        """Build a filter from ``(flag, value)`` pairs in command-line order, as ``mco`` does.

        Flags: ``-I/--wi/--with-identity``, ``-C/--wc/--with-class``, ``-F/--wf/--with-fact``,
        ``-A/--wa/--with-agent``, ``-W/--with`` and ``-S/--select``.  Raises UsageError for
        an unknown flag or a value that does not parse.
        """
        parts: dict[str, list[Any]] = {
            k: [] for k in ("identity", "cf_class", "fact", "agent", "compound")
        }
        for flag, value in flags:
            kind = _FLAG_KINDS.get(flag)
            if kind is None:
                raise UsageError(
                    f"unknown filter flag {flag!r}; use one of -I, -C, -F, -A, -W or -S"
                )
            if kind == "with":
                with_part = parse_with(value)
                parts["fact"].extend(with_part.fact)
                parts["cf_class"].extend(with_part.cf_class)
            elif kind == "fact":
                parts["fact"].append(parse_fact(value))
            elif kind == "compound":
                parts["compound"].append(parse_compound(value))
            else:
                parts[kind].append(value)
        return cls._from_parts(parts)

    @classmethod
    def _from_parts(cls, parts: Mapping[str, list[Any]]) -> Filter:
        return cls(
            identity=tuple(parts["identity"]),
            cf_class=tuple(parts["cf_class"]),
            fact=tuple(parts["fact"]),
            agent=tuple(parts["agent"]),
            compound=tuple(parts["compound"]),
        )

    # ------------------------------------------------------------------ helpers
    def empty(self) -> bool:
        """True if no part holds anything (Ruby's ``Util.empty_filter?``): every node matches."""
        return not (self.identity or self.cf_class or self.fact or self.agent or self.compound)

    def is_identity_only(self) -> bool:
        """True when Ruby's client skips discovery: there are identities and all are literal.

        This is ``RPC::Client#identity_filter_discovery_optimization``: with the ``mc``
        discovery method the request then goes straight to those nodes and the filter is
        reset to the agent alone, so class, fact and compound parts are *not* applied.
        """
        return bool(self.identity) and not any(_is_regex_entry(i) for i in self.identity)

    def with_agent(self, name: str) -> Filter:
        """This filter with ``name`` in its agent list (Ruby's ``agent_filter``: ``|`` union,
        so duplicates already present are collapsed and order is kept)."""
        agents = dict.fromkeys(self.agent)
        agents.setdefault(name, None)
        return dataclasses.replace(self, agent=tuple(agents))

    # ------------------------------------------------------------------ the wire
    def to_wire(self) -> dict[str, list[Any]]:
        """The Ruby hash: String keys in Ruby's order, Symbol-keyed fact entries."""
        return {
            "fact": [f.to_wire() for f in self.fact],
            "cf_class": list(self.cf_class),
            "agent": list(self.agent),
            "identity": list(self.identity),
            "compound": [[t.to_wire() for t in stack] for stack in self.compound],
        }

    @classmethod
    def from_wire(cls, data: Any) -> Filter:
        """Decode a filter hash from a request.

        Accepts String or Symbol keys (at the top level, in fact entries and in fstatements),
        any key containing ``cf_class`` or ``puppet_class`` for classes (as Ruby does), and
        Regexp identities; unknown keys and unknown compound entries are ignored (Ruby ignores
        them too).  Raises SerializationError, naming the part, for anything else malformed.
        """
        if not isinstance(data, Mapping):
            raise SerializationError(f"filter must be a hash, got {type(data).__name__}")
        parts: dict[str, list[Any]] = {
            k: [] for k in ("identity", "cf_class", "fact", "agent", "compound")
        }
        for key, value in data.items():
            if not isinstance(key, str):
                continue
            if re.search("puppet_class|cf_class", key):
                parts["cf_class"].extend(_wire_strings(value, key))
            elif key == "identity":
                parts["identity"].extend(_wire_identities(value))
            elif key == "agent":
                parts["agent"].extend(_wire_strings(value, key))
            elif key == "fact":
                parts["fact"].extend(_wire_fact(entry) for entry in _wire_list(value, key))
            elif key == "compound":
                parts["compound"].extend(_wire_stack(stack) for stack in _wire_list(value, key))
        return cls._from_parts(parts)


_FLAG_KINDS = {
    "-I": "identity",
    "--wi": "identity",
    "--with-identity": "identity",
    "-C": "cf_class",
    "--wc": "cf_class",
    "--with-class": "cf_class",
    "-F": "fact",
    "--wf": "fact",
    "--with-fact": "fact",
    "-A": "agent",
    "--wa": "agent",
    "--with-agent": "agent",
    "-W": "with",
    "--with": "with",
    "-S": "compound",
    "--select": "compound",
}

_LINE_STARTS_WITH_SLASH = _rx(r"^/")


def _is_regex_entry(entry: IdentityEntry) -> bool:
    """Ruby's ``f.match("^/")``: a String with a line starting with ``/`` is a regex."""
    return isinstance(entry, Regexp) or bool(_LINE_STARTS_WITH_SLASH.search(entry))


# ------------------------------------------------------------------ wire decoding helpers
def _wire_list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise SerializationError(f"filter {key!r} must be an array, got {type(value).__name__}")
    return list(value)


def _wire_strings(value: Any, key: str) -> list[str]:
    out = _wire_list(value, key)
    for item in out:
        if not isinstance(item, str):
            raise SerializationError(
                f"filter {key!r} entries must be strings, got {type(item).__name__}: {item!r}"
            )
    return [str.__str__(s) for s in out]


def _wire_identities(value: Any) -> list[IdentityEntry]:
    out: list[IdentityEntry] = []
    for item in _wire_list(value, "identity"):
        if isinstance(item, Regexp):
            out.append(item)
        elif isinstance(item, str):
            out.append(str.__str__(item))
        else:
            raise SerializationError(
                f"filter 'identity' entries must be strings or regexps, got {type(item).__name__}: {item!r}"
            )
    return out


def _get(entry: Mapping[Any, Any], key: str) -> Any:
    """Symbol key first, then String key (Symbol compares equal to str, so check the type)."""
    found_str = None
    for k, v in entry.items():
        if k == key:
            if isinstance(k, Symbol):
                return v
            found_str = v
    return found_str


def _wire_fact(entry: Any) -> FactFilter:
    if not isinstance(entry, Mapping):
        raise SerializationError(f"filter 'fact' entries must be hashes, got {entry!r}")
    values = [_get(entry, k) for k in ("fact", "operator", "value")]
    if not all(isinstance(v, str) for v in values):
        raise SerializationError(
            f"filter 'fact' entry needs string :fact, :operator and :value, got {entry!r}"
        )
    return FactFilter(*(str.__str__(v) for v in values))


def _wire_stack(stack: Any) -> tuple[CompoundToken, ...]:
    out: list[CompoundToken] = []
    for entry in _wire_list(stack, "compound"):
        if not isinstance(entry, Mapping):
            raise SerializationError(f"filter 'compound' entries must be hashes, got {entry!r}")
        if not entry:
            continue
        kind, value = next(iter(entry.items()))
        if not isinstance(kind, str) or kind not in COMPOUND_KINDS:
            continue
        kind = str.__str__(kind)
        if kind == "statement":
            if not isinstance(value, str):
                raise SerializationError(f"compound statement must be a string, got {value!r}")
            out.append(CompoundToken(kind, str.__str__(value)))
        elif kind == "fstatement":
            out.append(CompoundToken(kind, _wire_fstatement(value)))
        else:
            out.append(CompoundToken(kind, kind))
    return tuple(out)


def _wire_fstatement(value: Any) -> FStatement:
    if not isinstance(value, Mapping):
        raise SerializationError(f"compound fstatement must be a hash, got {value!r}")
    name, params, output, operator, r_compare = (
        _get(value, k) for k in ("name", "params", "value", "operator", "r_compare")
    )
    if not (
        isinstance(name, str)
        and isinstance(operator, str)
        and isinstance(params, (str, type(None)))
        and isinstance(output, (str, type(None)))
        and isinstance(r_compare, (str, Regexp))
    ):
        raise SerializationError(
            "compound fstatement needs string name and operator, string or nil params and "
            f"value, and a string or regexp r_compare; got {value!r}"
        )
    return FStatement(
        str.__str__(name),
        None if params is None else str.__str__(params),
        None if output is None else str.__str__(output),
        str.__str__(operator),
        r_compare if isinstance(r_compare, Regexp) else str.__str__(r_compare),
    )


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
    for token in _split_words(text):
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
            if ch is None or ch not in _RUBY_SPACE:
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
            return ch is not None and ch in _RUBY_SPACE

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
    parts = _split_re(call, _FUNC_SPLIT)
    r_compare: str | None = parts.pop() if parts else None
    operator: str | None = parts.pop() if parts else None
    func = "".join(parts)
    output: str | None = None
    if _FUNC_WITH_CALL.search(func):
        target = func
    else:
        dotted = _split_str(func, ".")
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
    name_params = _split_str(target, "(")
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
        quotes = _split_re(params.replace(")", ""), _QUOTE_SPLIT)
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


# =========================================================================================
# Node-side matching (Security::Base#validate_filter? and the Util.has_* helpers)
# =========================================================================================


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`check`.

    ``passed``/``failed`` count the tests as Ruby does (identity is one test; each class,
    agent, fact and compound stack is one test; an empty filter starts at passed=1).
    ``error`` is set when Ruby would have raised (the request is then dropped: no match).
    """

    matched: bool
    passed: int = 0
    failed: int = 0
    error: str | None = None


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
            return any(rx.search(_chomp(k)) is not None for k in self.classes)
        return any(_chomp(k) == entry for k in self.classes)

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


_STATEMENT_OPERATOR = re.compile(r">=|<=|=|<|>")


def _eval_statement(node: _Node, statement: str) -> bool:
    """Ruby ``Matcher.eval_compound_statement``."""
    if _LINE_STARTS_WITH_SLASH.search(statement):
        return node.has_cf_class(statement)
    m = _STATEMENT_OPERATOR.search(statement)
    if not m:
        return node.has_cf_class(statement)
    operator = m[0]
    parts = _split_str(statement, operator)
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
        right = _ruby_to_s(right)
    elif isinstance(right, str):
        if _is_numeric(left):
            right = right.strip(_RUBY_SPACE)
            try:
                right = _ruby_integer(right)
            except _Abort:
                try:
                    right = _ruby_float(right)
                except _Abort:
                    raise _Abort(f"ArgumentError: invalid numeric value: {right}") from None
        elif isinstance(left, bool):
            right = right.strip(_RUBY_SPACE)
            if right not in ("true", "false"):
                raise _Abort(f"ArgumentError: invalid boolean value: {right}")
            right = right == "true"
    m = _FSTATEMENT_OPERATOR.search(fs.operator.strip(_RUBY_SPACE))
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


def _node(
    identity: str,
    facts: Mapping[str, Any],
    classes: Sequence[str],
    agents: Sequence[str],
    data_plugin: DataPlugin | None,
) -> _Node:
    normalized = normalize_facts(dict(facts))
    return _Node(identity, normalized, tuple(classes), tuple(agents), data_plugin)


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


def _is_ruby_empty_hash(data: Mapping[Any, Any]) -> bool:
    """Ruby ``Util.empty_filter?``: ``== {}`` or ``==`` the five-key empty filter exactly."""
    if not data:
        return True
    keys = {"fact", "cf_class", "agent", "identity", "compound"}
    return (
        len(data) == len(keys)
        and all(isinstance(k, str) and not isinstance(k, Symbol) and k in keys for k in data)
        and all(isinstance(v, (list, tuple)) and not v for v in data.values())
    )


def check(
    filter: Filter | Mapping[str, Any],
    *,
    identity: str,
    facts: Mapping[str, Any],
    classes: Sequence[str],
    agents: Sequence[str],
    data_plugin: DataPlugin | None = None,
) -> Verdict:
    """Ruby's ``validate_filter?`` for one node, with the counts and any Ruby error.

    ``filter`` is a :class:`Filter` or a raw wire hash; for a raw hash Ruby's emptiness rule
    is applied to the hash itself (a hash with only some of the five keys, all empty, is
    *not* empty, so it matches nothing), and a malformed hash gives ``error``.
    ``facts`` are the node's facts as a fact source returns them (normalized here: scalars
    to strings, containers keep their shape); ``classes`` are the lines of ``classes.txt``;
    ``agents`` the loaded agent names; ``data_plugin`` serves compound fstatements.
    Never raises.
    """
    if isinstance(filter, Filter):
        flt = filter
        passed = 1 if flt.empty() else 0
    else:
        passed = 1 if isinstance(filter, Mapping) and _is_ruby_empty_hash(filter) else 0
        try:
            flt = Filter.from_wire(filter)
        except SerializationError as exc:
            return Verdict(False, error=str(exc))
    node = _node(identity, facts, classes, agents, data_plugin)
    failed = 0
    try:
        for klass in flt.cf_class:
            ok = node.has_cf_class(klass)
            passed, failed = passed + ok, failed + (not ok)
        for stack in flt.compound:
            ok = _eval_stack(node, stack)
            passed, failed = passed + ok, failed + (not ok)
        for agent in flt.agent:
            ok = node.has_agent(agent) or agent == "mcollective"
            passed, failed = passed + ok, failed + (not ok)
        for fact in flt.fact:
            ok = node.has_fact(fact.fact, fact.value, fact.operator)
            passed, failed = passed + ok, failed + (not ok)
        if flt.identity:
            hits = [node.has_identity(entry) for entry in flt.identity]
            ok = hits.count(True) == 1
            passed, failed = passed + ok, failed + (not ok)
    except (_Abort, RegexTimeout) as exc:
        return Verdict(False, passed, failed, error=str(exc))
    return Verdict(failed == 0 and passed > 0, passed, failed)


def matches(
    filter: Filter | Mapping[str, Any],
    *,
    identity: str,
    facts: Mapping[str, Any],
    classes: Sequence[str],
    agents: Sequence[str],
    data_plugin: DataPlugin | None = None,
) -> bool:
    """True if a node with this identity, facts, classes and agents accepts the request.

    Exactly Ruby's ``Security::Base#validate_filter?``: every class, agent, fact and compound
    entry is one test, identity is one test passed only when exactly one entry matches,
    agent ``mcollective`` always passes, ``/re/`` entries lose every ``/`` and are unanchored
    regexes.  See :func:`check` for the arguments and the counts.  Never raises.
    """
    return check(
        filter,
        identity=identity,
        facts=facts,
        classes=classes,
        agents=agents,
        data_plugin=data_plugin,
    ).matched
