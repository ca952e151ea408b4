"""Ruby (Onigmo) regular expressions, translated once and run with a time budget.

Every Ruby regex the package evaluates goes through here: request filters (``-I /re/``,
``-F fact=/re/``, compound statements), DDL ``:validation`` patterns and DDL String
methods, actionpolicy compound filters and healthcheck ``body_regex``.  One translation,
so a filter and a DDL validation give the same verdict -- Ruby's.

The engine is the PyPI :mod:`regex` module (Onigmo-like: ``\\p{..}``, POSIX classes,
atomic groups, possessive quantifiers, ``\\G``, ``\\K``, ``\\X``, subroutine calls), chosen
over :mod:`re` for two reasons: it covers Ruby syntax :mod:`re` lacks, and it takes a
``timeout`` and releases the GIL while it matches (``concurrent=True``), so a catastrophic
pattern sent by a client cannot stop the daemon's other threads.

Ruby semantics reproduced (each checked against real ``ruby`` in
``tests/ruby/test_regex_table.py``):

* ``^`` and ``$`` are always line anchors; ``^`` never matches after a final newline.
* ``\\A`` start, ``\\z`` end, ``\\Z`` end or before a final newline.
* ``\\w \\d \\s \\h`` (and their negations) are ASCII-only; ``\\b \\B`` are Unicode-aware.
* POSIX bracket classes (``[[:alpha:]]``, ``[[:^digit:]]``) and ``\\p{..}`` are Unicode.
* Options ``i``, ``x``, ``m`` (Ruby's ``m`` is "dot matches newline"), ``(?i)`` reaching
  to the end of its enclosing group, ``(?imx-imx:..)``.
* ``(?<name>..)``, ``(?'name'..)``, ``\\k<name>``, ``\\g<name>`` (a subroutine call),
  ``\\u{..}``, ``\\e``, ``\\cX``, ``\\R``, nested character classes (``[a[bc]]``).

Refused as unsupported (:class:`RubyRegexError` with ``unsupported=True``): class
intersection ``&&``, a negated nested class, the absent operator ``(?~..)``.

Time: every match runs with a budget (:data:`DEFAULT_TIMEOUT` seconds, :data:`FILTER_TIMEOUT`
for wire filters, or the ``timeout`` given); running out raises
:class:`~mcollective_py.errors.RegexTimeout`, is logged and counted (:func:`timeouts`), and
the pattern is then refused at once for :data:`REFUSE_FOR` seconds, so a sender repeating
a catastrophic pattern costs one budget, not one per message.  Callers turn it into a clear failure (filter: no match with
a reason; DDL validation: a refused input; healthcheck: a failed check).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from mcollective_py.errors import RegexTimeout
from mcollective_py.rubytypes import RE_EXTENDED, RE_IGNORECASE, RE_MULTILINE


class _ImportOnUse:
    """The ``regex`` package, imported on first use: ~8 ms of start-up that a command
    matching no regex (``rpc ... -I node``) never needs.  Replaces itself in this module's
    globals with the real module at the first attribute read."""

    def __getattr__(self, name: str) -> Any:
        import regex

        globals()["_regex"] = regex
        return getattr(regex, name)


_regex: Any = _ImportOnUse()

__all__ = [
    "DEFAULT_TIMEOUT",
    "FILTER_TIMEOUT",
    "REFUSE_FOR",
    "RubyPattern",
    "RubyRegexError",
    "compile_ruby_regex",
    "ruby_match",
    "timeouts",
    "translate",
]

log = logging.getLogger(__name__)

#: Seconds one match (search, split or substitution) may run before it is abandoned.
DEFAULT_TIMEOUT = 0.25


class RubyRegexError(re.error):
    """A Ruby regex that is invalid, or uses a construct we cannot run.

    ``unsupported`` is True for the latter (valid Ruby, no equivalent here).  A subclass of
    :class:`re.error` so callers that handled :mod:`re` errors keep working.
    """

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


#: Seconds a wire filter regex may run: filters are checked on the daemon's receiving
#: thread, so their budget is tighter than the one for agents' patterns.  (The regex module
#: counts CPU time: on a loaded machine the wall time is longer.)
FILTER_TIMEOUT = 0.05

#: A pattern that ran out of time is refused at once for this many seconds (so a sender
#: repeating it costs nothing more), remembering at most ``_REMEMBER`` patterns.
REFUSE_FOR = 600.0
_REMEMBER = 1024

_timeout_lock = threading.Lock()
_timeout_count = 0
_refused: OrderedDict[tuple[str, int], float] = OrderedDict()


def timeouts() -> int:
    """How many matches ran out of time, or were refused as known to, in this process."""
    return _timeout_count


def _count_timeout(source: str, options: int, seconds: float, subject_len: int) -> RegexTimeout:
    global _timeout_count
    with _timeout_lock:
        _timeout_count += 1
        _refused[(source, options)] = time.monotonic() + REFUSE_FOR
        _refused.move_to_end((source, options))
        while len(_refused) > _REMEMBER:
            _refused.popitem(last=False)
    log.warning(
        "regex /%s/ ran out of its %.2f s budget on a %d-character value; treated as a "
        "failure, and refused at once for the next %d s",
        source[:200],
        seconds,
        subject_len,
        REFUSE_FOR,
    )
    return RegexTimeout(source, seconds)


def _known_to_time_out(source: str, options: int, seconds: float) -> RegexTimeout | None:
    global _timeout_count
    with _timeout_lock:
        until = _refused.get((source, options))
        if until is None:
            return None
        if until < time.monotonic():
            del _refused[(source, options)]
            return None
        _timeout_count += 1
    log.debug("regex /%s/ refused: it ran out of time recently", source[:200])
    return RegexTimeout(source, seconds)


# ------------------------------------------------------------------------------ translation
_ASCII_SHORTHAND = {"w": "a-zA-Z0-9_", "d": "0-9", "s": " \\t\\n\\v\\f\\r", "h": "0-9a-fA-F"}
_NEGATED_SHORTHAND = {"W": "w", "D": "d", "S": "s", "H": "h"}

# POSIX bracket classes, Unicode-aware as Onigmo's are for UTF-8 strings, written as set
# members of the regex module.
_POSIX = {
    "alpha": r"\p{Alphabetic}",
    "alnum": r"\p{Alphabetic}\p{Nd}",
    "digit": r"\p{Nd}",
    "upper": r"\p{Uppercase}",
    "lower": r"\p{Lowercase}",
    "space": r"\p{White_Space}",
    "blank": r"\p{Zs}\t",
    "cntrl": r"\p{Cc}",
    "punct": r"\p{P}$+<=>^`|~",
    "xdigit": "0-9a-fA-F",
    "word": r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}",
    "graph": "",  # see _POSIX_NOT
    "print": "",
    "ascii": r"\x00-\x7f",
}
_POSIX_NOT = {
    "graph": r"\p{White_Space}\p{Cc}\p{Cn}\p{Cs}",
    "print": r"\p{Cc}\p{Cn}\p{Cs}\p{Zl}\p{Zp}",
}

_ESCAPE_OUTSIDE = {
    "w": "[a-zA-Z0-9_]",
    "W": "[^a-zA-Z0-9_]",
    "d": "[0-9]",
    "D": "[^0-9]",
    "s": "[ \\t\\n\\v\\f\\r]",
    "S": "[^ \\t\\n\\v\\f\\r]",
    "h": "[0-9a-fA-F]",
    "H": "[^0-9a-fA-F]",
    "z": "(?:\\Z)",
    "Z": "(?=\\n?\\Z)",
    "e": "\\x1b",
    "R": "(?:\\r\\n|[\\n\\v\\f\\r\\x85\\u2028\\u2029])",
    "B": "(?:(?<=\\w)(?=\\w)|(?<!\\w)(?!\\w))",  # \B also matches in "", as in Ruby
}
# Escapes the regex module understands with Ruby's meaning; passed through unchanged.
_PASS_OUTSIDE = set("AbGKXtnrfva0123456789pP")
_PASS_IN_CLASS = set("tnrfvabpP")

_GROUP_OPEN = re.compile(
    r"\(\?(?:<(?![=!])([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'|([imx]*-?[imx]*)([:)]))"
)
_OPTION_FLAGS = str.maketrans({"m": "s"})
_INTERVAL = re.compile(r"\{([0-9]*)(?:(,)([0-9]*))?\}")


def _control_char(ch: str) -> str:
    return _regex.escape(chr(ord(ch) & 0x1F))


class _Translator:
    """One pass over a Ruby pattern, producing regex-module syntax."""

    def __init__(self, src: str, *, extended: bool = False) -> None:
        self.src = src
        self.i = 0
        self.extended = [extended]  # per open group: is /x in effect here
        self.named = False  # a named group was seen
        self.numbered = False  # a numbered back reference or call was seen

    def fail(self, message: str, *, unsupported: bool = False) -> RubyRegexError:
        return RubyRegexError(f"{message} in /{self.src}/", unsupported=unsupported)

    # -------------------------------------------------------------------- escapes
    def _numeric_escape(self, d: str) -> str | None:
        """``\\xHH``, ``\\u{..}``/``\\uHHHH``, ``\\cX``: the literal they stand for, or None."""
        src, i = self.src, self.i
        if d == "x":
            m = re.compile(r"[0-9a-fA-F]{1,2}").match(src, i + 2)
            if not m:
                raise self.fail("invalid hex escape")
            self.i = m.end()
            return _regex.escape(chr(int(m[0], 16)))
        if d == "u":
            m = re.compile(r"\{([0-9a-fA-F ]{1,60})\}|([0-9a-fA-F]{4})").match(src, i + 2)
            if not m:
                raise self.fail("invalid Unicode escape")
            self.i = m.end()
            try:
                codes = (m[1] or m[2]).split()
                return "".join(_regex.escape(chr(int(c, 16))) for c in codes)
            except (ValueError, OverflowError):
                raise self.fail(f"invalid Unicode escape {m[0]!r}") from None
        if d == "c":
            if i + 2 >= len(src):
                raise self.fail("too short control escape")
            self.i = i + 3
            return _control_char(src[i + 2])
        return None

    def escape_outside(self) -> str:
        src, i = self.src, self.i
        if i + 1 >= len(src):
            raise self.fail("too short escape sequence")
        d = src[i + 1]
        literal = self._numeric_escape(d)
        if literal is not None:
            return literal
        self.i = i + 2
        if d in _ESCAPE_OUTSIDE:
            return _ESCAPE_OUTSIDE[d]
        if d in "kg" and i + 2 < len(src) and src[i + 2] in "<'":
            close = ">" if src[i + 2] == "<" else "'"
            end = src.find(close, i + 3)
            if end < 0:
                raise self.fail(f"invalid group name in \\{d}")
            name = src[i + 3 : end]
            self.i = end + 1
            if name.lstrip("-").isdigit():
                self.numbered = True
            if d == "k":
                return f"(?P={name})" if not name.lstrip("-").isdigit() else f"\\{name}"
            return f"(?&{name})" if not name.isdigit() else f"(?{name})"
        if d in "123456789":
            self.numbered = True
        if d in "AbGK":  # zero-width: grouped, so that a quantifier may follow (Ruby allows it)
            return f"(?:\\{d})"
        if d in "pP" and self.i < len(self.src) and self.src[self.i] == "{":
            end = self.src.find("}", self.i)
            if end < 0:
                raise self.fail("invalid character property name")
            self.i = end + 1
            return "\\" + d + self.src[i + 2 : end + 1]
        if d in _PASS_OUTSIDE:
            return "\\" + d
        if d.isalpha():  # Ruby treats unknown letter escapes as the letter itself
            return _regex.escape(d)
        return "\\" + d

    # -------------------------------------------------------------------- classes
    def char_class(self) -> str:
        """Translate the bracket class at ``src[i] == "["``."""
        members, extras, negated = self._class_body()
        if not extras:
            if not members:
                raise self.fail("empty char-class")
            return ("[^" if negated else "[") + "".join(members) + "]"
        alternatives = (["[" + "".join(members) + "]"] if members else []) + extras
        either = "(?:" + "|".join(alternatives) + ")"
        return f"(?:(?!{either})(?s:.))" if negated else either

    def _class_body(self) -> tuple[list[str], list[str], bool]:
        src = self.src
        members: list[str] = []
        extras: list[str] = []  # whole alternatives (negated shorthands inside a class)
        self.i += 1
        negated = src.startswith("^", self.i)
        self.i += negated
        first = True
        while True:
            if self.i >= len(src):
                raise self.fail("premature end of char-class")
            c = src[self.i]
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if c == "\\":
                members.extend(self._class_escape(extras))
            elif c == "[" and src.startswith("[:", self.i):
                m = re.compile(r"\[:(\^?)([a-z]+):\]").match(src, self.i)
                if m and m[2] in _POSIX:
                    members.extend(self._posix(m[2], negated=bool(m[1]), extras=extras))
                    self.i = m.end()
                else:  # "[:" not a POSIX class: a nested class starting with ":"
                    members.extend(self._nested(extras))
            elif c == "[":
                members.extend(self._nested(extras))
            elif c == "&" and src.startswith("&&", self.i):
                raise self.fail(
                    "character class intersection (&&) is not supported", unsupported=True
                )
            elif c in "|~&[" or (c == "-" and members and members[-1] == "-"):
                members.append("\\" + c)  # literal; never a set operation
                self.i += 1
            else:
                members.append(c)
                self.i += 1
        if members and members[0] == "^":
            members[0] = "\\^"
        return members, extras, negated

    def _nested(self, extras: list[str]) -> list[str]:
        inner, inner_extras, inner_negated = self._class_body()
        if inner_negated:
            raise self.fail("a negated nested character class is not supported", unsupported=True)
        extras.extend(inner_extras)
        return inner

    def _posix(self, name: str, *, negated: bool, extras: list[str]) -> list[str]:
        """Set members for ``[:name:]`` / ``[:^name:]``; negations that are not one
        property become whole alternatives in ``extras``."""
        if name in _POSIX_NOT:
            if negated:
                return [_POSIX_NOT[name]]
            extras.append(f"(?:(?![{_POSIX_NOT[name]}])(?s:.))")
            return []
        members = _POSIX[name]
        if not negated:
            return [members]
        single = re.fullmatch(r"\\p(\{[A-Za-z_]+\})", members)
        if single:
            return ["\\P" + single[1]]
        extras.append(f"[^{members}]")
        return []

    def _class_escape(self, extras: list[str]) -> list[str]:
        src, i = self.src, self.i
        if i + 1 >= len(src):
            raise self.fail("premature end of char-class")
        d = src[i + 1]
        literal = self._numeric_escape(d)
        if literal is not None:
            return [literal]
        self.i = i + 2
        if d in _ASCII_SHORTHAND:
            return [_ASCII_SHORTHAND[d]]
        if d in _NEGATED_SHORTHAND:
            extras.append(f"[^{_ASCII_SHORTHAND[_NEGATED_SHORTHAND[d]]}]")
            return []
        if d == "e":
            return ["\\x1b"]
        if d in "AzZGRKXk":
            raise self.fail(f"invalid escape \\{d} in a character class")
        if d in _PASS_IN_CLASS or d.isdigit():
            if d.isdigit():
                m = re.compile(r"[0-7]{1,3}").match(src, i + 1)
                if m:
                    self.i = m.end()
                    return [f"\\x{int(m[0], 8) & 0xFF:02x}"]
            return ["\\" + d]
        if d.isalpha():
            return [_regex.escape(d)]
        return ["\\" + d]

    # -------------------------------------------------------------------- the pattern
    def _quantifier(self) -> tuple[str, bool] | None:
        """The quantifier at the cursor (consumed) and whether it takes a lazy/possessive
        suffix, or None.  ``{`` that is not an interval is a literal, as in Ruby."""
        src, i = self.src, self.i
        c = src[i]
        if c in "*+?":
            self.i = i + 1
            if self.i < len(src) and src[self.i] in "?+":  # lazy / possessive
                self.i += 1
            return src[i : self.i], True
        if c == "{":
            m = _INTERVAL.match(src, i)
            if m is None or (m[1] == "" and m[2] is None) or (m[1] == "" and m[3] == ""):
                return None
            self.i = m.end()
            # {n,m}? is lazy; {n}? is (?:x{n})? in Ruby; {..}+ is never possessive in Ruby
            if m[2] is not None and self.i < len(src) and src[self.i] == "?":
                self.i += 1
            return src[i : self.i], True
        return None

    def run(self) -> str:
        src = self.src
        out: list[str] = []
        closers = [0]  # per open group: scoped option groups to close with it
        opens: list[int] = []  # where each open group starts in ``out``
        atom: int | None = None  # where the item a quantifier would repeat starts
        quantified = False  # that item already has a quantifier: Ruby stacks them
        while self.i < len(src):
            c = src[self.i]
            if self.extended[-1] and c in " \t\n\r\f\v":
                self.i += 1
                continue
            if c in "*+?{":
                start = self.i
                found = self._quantifier()
                if found is not None:
                    if atom is None:
                        raise self.fail(f"target of repeat operator is not specified at {start}")
                    if quantified:  # a** is (?:a*)* in Ruby
                        out.insert(atom, "(?:")
                        out.append(")")
                    out.append(found[0])
                    quantified = True
                    continue
                out.append("\\{")
                atom, quantified = len(out) - 1, False
                self.i += 1
                continue
            quantified = False
            if c == "\\":
                atom = len(out)
                out.append(self.escape_outside())
            elif c == "[":
                atom = len(out)
                out.append(self.char_class())
            elif c == "^":
                atom = len(out)
                out.append("(?:\\A|(?<=\\n)(?!\\Z))")  # never after a final newline
                self.i += 1
            elif c == "(":
                depth = len(closers)
                start = len(out)
                out.append(self._group(closers))
                if len(closers) > depth:
                    opens.append(start)
                atom = None
            elif c == ")":
                if len(closers) == 1:
                    raise self.fail("unmatched close parenthesis")
                out.append(")" * (closers.pop() + 1))
                self.extended.pop()
                atom = opens.pop()
                self.i += 1
            elif c == "#" and self.extended[-1]:  # an /x comment runs to the end of the line
                end = src.find("\n", self.i)
                self.i = len(src) if end < 0 else end
            elif c == "$":
                atom = len(out)
                out.append("(?:$)")
                self.i += 1
            else:
                atom = None if c == "|" else len(out)
                out.append(c)
                self.i += 1
        if len(closers) != 1:
            raise self.fail("end pattern with unmatched parenthesis")
        out.append(")" * closers[0])
        if self.named and self.numbered:
            raise self.fail("numbered backref/call is not allowed. (use name)")
        return "".join(out)

    def _flags(self, spec: str) -> str:
        """``(?imx-imx`` flags in regex-module letters; a flag both set and cleared is
        cleared (Ruby's last word); updates the /x state of the current group."""
        on, _, off = spec.partition("-")
        on = "".join(c for c in on if c not in off)
        if "x" in on:
            self.extended[-1] = True
        elif "x" in off:
            self.extended[-1] = False
        flags = on.translate(_OPTION_FLAGS) + ("-" + off.translate(_OPTION_FLAGS) if off else "")
        return flags

    def _group(self, closers: list[int]) -> str:
        src, i = self.src, self.i
        if src.startswith("(?~", i):
            raise self.fail("the absent operator (?~...) is not supported", unsupported=True)
        if src.startswith("(?#", i):
            end = src.find(")", i)
            if end < 0:
                raise self.fail("end pattern in group")
            self.i = end + 1
            return ""
        m = _GROUP_OPEN.match(src, i)
        if m and m[4] == ")":
            # an isolated (?i) covers the rest of the enclosing group, alternatives included
            self.i = m.end()
            flags = self._flags(m[3])
            if flags in ("", "-"):
                return ""
            closers[-1] += 1
            return f"(?{flags}:"
        closers.append(0)
        self.extended.append(self.extended[-1])
        if m and (m[1] or m[2]):
            self.i = m.end()
            self.named = True
            return f"(?P<{m[1] or m[2]}>"
        if m:
            self.i = m.end()
            flags = self._flags(m[3])
            return f"(?{flags}:" if flags not in ("", "-") else "(?:"
        if src.startswith("(?", i):
            self.i = i + 2
            return "(?"
        self.i = i + 1
        return "("


def translate(source: str, options: int = 0) -> str:
    """The regex-module pattern text for Ruby ``source`` (option bits applied separately;
    ``/x`` matters here because its comments are dropped)."""
    return _Translator(source, extended=bool(options & RE_EXTENDED)).run()


# ------------------------------------------------------------------------------ compiled
class RubyPattern:
    """A compiled Ruby regex.  Every operation runs within the time budget.

    ``search``, ``split``, ``sub``, ``fullmatch`` mirror :class:`re.Pattern`; each raises
    :class:`~mcollective_py.errors.RegexTimeout` when it runs out of time.
    """

    __slots__ = ("source", "options", "pattern", "timeout")

    def __init__(self, source: str, options: int, pattern: Any, timeout: float) -> None:
        self.source = source
        self.options = options
        self.pattern = pattern
        self.timeout = timeout

    def _run(self, text: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method(*args, **kwargs)`` of the compiled pattern, within the budget."""
        known = _known_to_time_out(self.source, self.options, self.timeout)
        if known is not None:
            raise known
        try:
            return method(*args, timeout=self.timeout, concurrent=True, **kwargs)
        except TimeoutError:
            raise _count_timeout(self.source, self.options, self.timeout, len(text)) from None

    def search(self, text: str) -> Any:
        """An unanchored search, like Ruby's ``=~`` / ``String#match``: a match or None."""
        return self._run(text, self.pattern.search, text)

    def fullmatch(self, text: str) -> Any:
        return self._run(text, self.pattern.fullmatch, text)

    def split(self, text: str) -> list[str | None]:
        return list(self._run(text, self.pattern.split, text))

    def sub(self, repl: Any, text: str, count: int = 0) -> str:
        return str(self._run(text, self.pattern.sub, repl, text, count=count))

    @property
    def groups(self) -> int:
        return int(self.pattern.groups)

    def __repr__(self) -> str:
        return f"RubyPattern(/{self.source}/{self.options})"


@functools.lru_cache(maxsize=1024)
def _compiled(source: str, options: int) -> Any:
    flags = _regex.MULTILINE | _regex.VERSION0
    if options & RE_IGNORECASE:
        flags |= _regex.IGNORECASE
    if options & RE_EXTENDED:
        flags |= _regex.VERBOSE
    if options & RE_MULTILINE:
        flags |= _regex.DOTALL
    text = translate(source, options)
    try:
        return _regex.compile(text, flags)
    except _regex.error as exc:
        raise RubyRegexError(f"{exc} in /{source}/") from None
    except (OverflowError, RecursionError, ValueError) as exc:
        raise RubyRegexError(f"{exc} in /{source}/") from None


def compile_ruby_regex(
    source: str, options: int = 0, *, timeout: float | None = None
) -> RubyPattern:
    """Compile Ruby regex ``source`` with Ruby option bits (1=i, 2=x, 4=m).

    ``timeout`` is the budget of each later match in seconds (default
    :data:`DEFAULT_TIMEOUT`).  Raises :class:`RubyRegexError` if the regex is invalid or
    uses a construct we cannot run.
    """
    return RubyPattern(
        source, options, _compiled(source, options), DEFAULT_TIMEOUT if timeout is None else timeout
    )


def ruby_match(source: str, options: int, value: str, *, timeout: float | None = None) -> bool:
    """``value.match(regex)`` is truthy (an unanchored search with Ruby semantics).

    Raises :class:`RubyRegexError` for a bad pattern and
    :class:`~mcollective_py.errors.RegexTimeout` when the budget runs out.
    """
    return compile_ruby_regex(source, options, timeout=timeout).search(value) is not None
