"""The filter model: :class:`Filter` and its parts, and their wire form (Ruby's hash).

A :class:`Filter` says which nodes a request is for; its parts are tuples, so it is immutable
and hashable.  :meth:`Filter.to_wire` / :meth:`Filter.from_wire` convert to and from the hash
Ruby MCollective puts in a request (String keys in Ruby's order; fact entries with Symbol
keys).  Malformed wire input raises :class:`~mcollective_py.errors.SerializationError`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SerializationError, UsageError
from ..rubytypes import Regexp, Symbol

#: ``data_plugin(name, params) -> outputs``: runs the data plugin ``name`` (lower-case, without
#: the ``_data`` suffix, e.g. ``"fstat"``) on ``params`` (the string inside the parentheses, or
#: None) and returns its outputs by name.  Raising anything means "no such plugin / it failed":
#: the whole compound statement list then evaluates to false, as in Ruby.
DataPlugin = Callable[[str, str | None], Mapping[str, Any]]


def _rx(pattern: str) -> re.Pattern[str]:
    """An internal pattern copied from Ruby source: ^ and $ are line anchors there."""
    return re.compile(pattern, re.MULTILINE)


# =========================================================================================
# Data model
# =========================================================================================


#: the CLI filter flags and the filter part each fills ("with" and "compound" are parsed)
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
            if kind in ("with", "fact", "compound"):
                # the parsers (and their regexes) are imported only when a flag needs them
                from .parse import parse_compound, parse_fact, parse_with
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
