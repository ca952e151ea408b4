"""Ruby 3.1's ``inspect``, written while it walks, within a budget.

A decoded value can be tiny on the wire and huge when expanded: Marshal back-references let a
sender build ``x = [x, x]`` twenty deep, 2**20 leaves from a few hundred bytes.  Expanding it
first and cutting afterwards costs time in the expanded size; here the walk itself stops once
:class:`Budget` is spent and the text ends with :data:`CUT_MARK`.  Cost is linear in the
budget, whatever the value.

:func:`inspect` is the one implementation: :func:`mcollective_py.rubytypes.inspect` (audit
lines, policy messages), DDL values (:mod:`mcollective_py.ruby.values`) and rendering
(:mod:`mcollective_py.render`) all call it.  Below the budget its output is exactly Ruby's.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from mcollective_py.lazy import lazy_re
from mcollective_py.rubytypes import Regexp, Symbol, float_to_s

__all__ = [
    "CUT_MARK",
    "DEFAULT_BUDGET",
    "Budget",
    "escape_slashes",
    "inspect",
    "inspect_text",
    "is_hash",
    "keyword",
    "scalar",
]

#: What ends a text cut short by its budget (not valid Ruby, on purpose).
CUT_MARK = "…(cut: inspect budget reached)"


@dataclass(frozen=True)
class Budget:
    """How much :func:`inspect` may produce: ``chars`` of text and ``nodes`` values visited."""

    chars: int = 1_000_000
    nodes: int = 200_000


DEFAULT_BUDGET = Budget()

_SIMPLE_SYMBOL = lazy_re(
    r"\A(?:[A-Za-z_][A-Za-z_0-9]*[?!=]?|\[\]=?|[+\-*/%<>!~^&|]|\*\*|<=>|==|===|=~|!=|!~|<<|>>|<=|>=|\+@|-@)\Z"
)
# What Ruby (Onigmo's "print" class) escapes in a UTF-8 String's inspect: controls (but
# U+0085), surrogates, unassigned, line/paragraph separators.  Ruby 3.1 knows Unicode 13;
# characters assigned later are escaped by Ruby and shown by us.
_UNPRINTABLE = frozenset(("Cc", "Cs", "Cn", "Zl", "Zp"))
_ESCAPES = {
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\f": "\\f",
    "\v": "\\v",
    "\a": "\\a",
    "\b": "\\b",
    "\x1b": "\\e",
    '"': '\\"',
    "\\": "\\\\",
}


def inspect_text(s: str) -> str:
    """``String#inspect`` of a UTF-8 String."""
    out = ['"']
    n = len(s)
    for i, ch in enumerate(s):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == "#" and i + 1 < n and s[i + 1] in "{$@":
            out.append("\\#")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        elif unicodedata.category(ch) in _UNPRINTABLE and ch != "\x85":
            out.append(f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\u{{{ord(ch):X}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _inspect_bytes(b: bytes) -> str:
    out = ['"']
    for i, byte in enumerate(b):
        ch = chr(byte)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == "#" and i + 1 < len(b) and chr(b[i + 1]) in "{$@":
            out.append("\\#")
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02X}")
    out.append('"')
    return "".join(out)


def escape_slashes(source: str) -> str:
    """Regexp#inspect writes an unescaped ``/`` in the source as ``\\/``."""
    out = []
    i = 0
    while i < len(source):
        if source[i] == "\\" and i + 1 < len(source):
            out.append(source[i : i + 2])
            i += 2
            continue
        out.append("\\/" if source[i] == "/" else source[i])
        i += 1
    return "".join(out)


def keyword(value: Any) -> str | None:
    """``"nil"``, ``"true"``, ``"false"`` for None, True, False (by identity); else None."""
    if value is None or value is True or value is False:
        return {None: "nil", True: "true", False: "false"}[value]
    return None


def scalar(value: Any) -> str:
    """``inspect`` of a value that is not an Array or Hash."""
    literal = keyword(value)
    if literal is not None:
        return literal
    if isinstance(value, Symbol):
        text = str.__str__(value)
        return f":{text}" if _SIMPLE_SYMBOL.match(text) else f":{inspect_text(text)}"
    if isinstance(value, bytes):
        return _inspect_bytes(value)
    if isinstance(value, str):
        return inspect_text(str.__str__(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_to_s(value)
    if isinstance(value, Regexp):
        flags = "".join(c for bit, c in ((4, "m"), (1, "i"), (2, "x")) if value.options & bit)
        return f"/{escape_slashes(value.source)}/{flags}"
    return inspect_text(str(value))


def is_hash(value: Any) -> bool:
    """A Ruby Hash: a dict, or a Hash stand-in with ordered ``items()`` (``RubyHash``)."""
    return isinstance(value, dict) or (
        not isinstance(value, (str, bytes, list, tuple, Regexp))
        and callable(getattr(value, "items", None))
    )


class _Spent(Exception):
    """The budget ran out; the text written so far is kept."""


class _Writer:
    __slots__ = ("parts", "chars", "nodes", "budget")

    def __init__(self, budget: Budget) -> None:
        self.parts: list[str] = []
        self.chars = 0
        self.nodes = 0
        self.budget = budget

    def write(self, text: str) -> None:
        room = self.budget.chars - self.chars
        if len(text) > room:
            self.parts.append(text[: max(room, 0)])
            self.chars = self.budget.chars
            raise _Spent
        self.parts.append(text)
        self.chars += len(text)

    def visit(self) -> None:
        self.nodes += 1
        if self.nodes > self.budget.nodes:
            raise _Spent

    def value(self, value: Any) -> None:
        self.visit()
        if isinstance(value, (list, tuple)):
            self.write("[")
            for i, item in enumerate(value):
                if i:
                    self.write(", ")
                self.value(item)
            self.write("]")
        elif is_hash(value):
            self.write("{")
            for i, (k, v) in enumerate(value.items()):
                if i:
                    self.write(", ")
                self.value(k)
                self.write("=>")
                self.value(v)
            self.write("}")
        elif isinstance(value, (str, bytes)) and not isinstance(value, Symbol):
            room = self.budget.chars - self.chars
            # the inspect of a prefix is a prefix of the inspect: never escape more than fits
            self.write(scalar(value[: room + 1] if len(value) > room else value))
        else:
            self.write(scalar(value))


def inspect(value: Any, budget: Budget = DEFAULT_BUDGET) -> str:
    """Ruby 3.1's ``inspect`` of a decoded value (one line).

    Stops when ``budget`` is spent and ends the text with :data:`CUT_MARK`; time and
    memory are linear in the budget, not in the size of the expanded value.
    """
    writer = _Writer(budget)
    try:
        writer.value(value)
    except (_Spent, RecursionError):
        return "".join(writer.parts) + CUT_MARK
    return "".join(writer.parts)
