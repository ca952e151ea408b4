"""Ruby (Onigmo) regular expressions run on Python's :mod:`re`.

DDL validations are Ruby regexes: a String (``'^[a-z]+$'``) or a Regexp literal.
Ruby's semantics that differ from Python's and that we reproduce:

* ``^`` and ``$`` are always *line* anchors (Python: :data:`re.MULTILINE`), so
  ``'^[a-z]+$'`` accepts ``"ok\\n; rm -rf /"`` in Ruby too -- we match Ruby, not
  what the DDL author probably meant.
* ``\\A`` start, ``\\z`` end (Python ``\\Z``), ``\\Z`` end or before a final newline.
* ``\\d \\w \\s \\b`` are ASCII-only (:data:`re.ASCII`); ``\\h`` is a hex digit.
* Option ``m`` is Python's DOTALL; ``(?<name>...)``, ``\\k<name>`` and mid-pattern
  ``(?i)`` groups are rewritten to Python syntax.
* POSIX brackets (``[[:alpha:]]``) become their ASCII ranges (Ruby's are Unicode-aware).

Constructs Python cannot express (``\\G``, ``\\K``, ``\\X``, ``\\p{..}``, nested or
intersected character classes, ``(?~...)``, subexpression calls) raise
:class:`RubyRegexError`.  Matching is unanchored search, like ``String#match``.
"""

from __future__ import annotations

import functools
import re

from mcollective_py.rubytypes import RE_EXTENDED, RE_IGNORECASE, RE_MULTILINE

__all__ = ["RubyRegexError", "compile_ruby_regex", "ruby_match"]


class RubyRegexError(ValueError):
    """A Ruby regex that is invalid, or uses a construct Python cannot express.

    ``unsupported`` is True for the latter (valid Ruby, no Python equivalent).
    """

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


_POSIX = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\v\\f\\r",
    "blank": " \\t",
    "xdigit": "0-9a-fA-F",
    "word": "a-zA-Z0-9_",
    "punct": "!-/:-@\\[-`{-~",
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": " -~",
    "graph": "!-~",
    "ascii": "\\x00-\\x7f",
}

_FLAG_MAP = {"i": "i", "x": "x", "m": "s"}


def _translate(source: str) -> str:
    out: list[str] = []
    # one entry per open group: how many extra ")" to emit when it closes
    pending: list[int] = [0]
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "\\":
            piece, i = _escape(source, i, in_class=False)
            out.append(piece)
            continue
        if ch == "[":
            piece, i = _char_class(source, i)
            out.append(piece)
            continue
        if ch == "(":
            if source.startswith("(?", i):
                piece, i, opened, isolated = _group_open(source, i)
                out.append(piece)
                if isolated:
                    pending[-1] += 1
                elif opened:
                    pending.append(0)
                continue
            pending.append(0)
            out.append("(")
            i += 1
            continue
        if ch == ")":
            if len(pending) == 1:
                raise RubyRegexError("unmatched close parenthesis")
            out.append(")" * pending.pop())
            out.append(")")
            i += 1
            continue
        out.append(ch)
        i += 1
    if len(pending) != 1:
        raise RubyRegexError("end pattern with unmatched parenthesis")
    out.append(")" * pending[0])
    return "".join(out)


def _group_open(source: str, i: int) -> tuple[str, int, bool, bool]:
    """Translate a ``(?`` group opener; returns (text, new index, opens a group, isolated)."""
    rest = source[i + 2 :]
    if rest.startswith("<=") or rest.startswith("<!"):
        return source[i : i + 4], i + 4, True, False
    m = re.match(r"<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'", rest)
    if m:
        name = m.group(1) or m.group(2)
        return f"(?P<{name}>", i + 2 + m.end(), True, False
    if rest[:1] in (":", "=", "!", ">"):
        return source[i : i + 3], i + 3, True, False
    if rest.startswith("#"):
        end = source.find(")", i)
        if end < 0:
            raise RubyRegexError("end pattern in group")
        return "", end + 1, False, False
    m = re.match(r"([imx]*)(?:-([imx]*))?([:)])", rest)
    if m:
        on = "".join(_FLAG_MAP[c] for c in m.group(1))
        off = "".join(_FLAG_MAP[c] for c in (m.group(2) or ""))
        flags = on + ("-" + off if off else "")
        end = i + 2 + m.end()
        if not flags:
            return ("(?:", end, True, False) if m.group(3) == ":" else ("", end, False, False)
        # ``(?i)`` switches options up to the end of the enclosing group: make it a
        # scoped group that we close when the enclosing one closes.
        return f"(?{flags}:", end, m.group(3) == ":", m.group(3) == ")"
    raise RubyRegexError(f"unsupported group syntax (?{rest[:1]}", unsupported=True)


def _escape(source: str, i: int, *, in_class: bool) -> tuple[str, int]:
    if i + 1 >= len(source):
        raise RubyRegexError("too short escape sequence")
    c = source[i + 1]
    simple = {
        "A": "\\A",
        "z": "\\Z",
        "Z": "(?=\\n?\\Z)",
        "h": "0-9a-fA-F" if in_class else "[0-9a-fA-F]",
        "H": "[^0-9a-fA-F]",
        "e": "\\x1b",
        "/": "/",
        "R": "(?:\\r\\n|[\\n\\v\\f\\r\\x85\\u2028\\u2029])",
    }
    if c in "AzZR" and in_class:
        raise RubyRegexError(f"invalid escape \\{c} in a character class")
    if c == "H" and in_class:
        raise RubyRegexError("\\H in a character class is not supported", unsupported=True)
    if c in simple:
        return simple[c], i + 2
    if c in "dDwWsSbBtnrfvaG0123456789":
        if c == "G":
            raise RubyRegexError("\\G is not supported", unsupported=True)
        if c in "0123456789" and in_class:
            m = re.match(r"[0-7]{1,3}", source[i + 1 :])
            if m:
                return f"\\x{int(m.group(0), 8):02x}", i + 1 + m.end()
        return source[i : i + 2], i + 2
    if c == "x":
        m = re.match(r"[0-9a-fA-F]{1,2}", source[i + 2 :])
        if not m:
            raise RubyRegexError("invalid hex escape")
        return f"\\x{int(m.group(0), 16):02x}", i + 2 + m.end()
    if c == "u":
        m = re.match(r"\{([0-9a-fA-F]{1,6})\}|([0-9a-fA-F]{4})", source[i + 2 :])
        if not m:
            raise RubyRegexError("invalid Unicode escape")
        return re.escape(chr(int(m.group(1) or m.group(2), 16))), i + 2 + m.end()
    if c == "c":
        if i + 2 >= len(source):
            raise RubyRegexError("too short control escape")
        return re.escape(chr(ord(source[i + 2]) & 0x1F)), i + 3
    if c == "k":
        m = re.match(r"<([A-Za-z_]\w*)>", source[i + 2 :])
        if not m:
            raise RubyRegexError("only \\k<name> back references are supported", unsupported=True)
        return f"(?P={m.group(1)})", i + 2 + m.end()
    if c in "KXgpPNO":
        raise RubyRegexError(f"\\{c} is not supported", unsupported=True)
    if c.isalpha():  # unknown letter escapes stand for the letter itself in Ruby
        return re.escape(c), i + 2
    return source[i : i + 2], i + 2


def _char_class(source: str, i: int) -> tuple[str, int]:
    out = ["["]
    i += 1
    if source.startswith("^", i):
        out.append("^")
        i += 1
    first = True
    while i < len(source):
        ch = source[i]
        if ch == "]" and not first:
            out.append("]")
            return "".join(out), i + 1
        first = False
        if ch == "\\":
            piece, i = _escape(source, i, in_class=True)
            out.append(piece)
            continue
        if ch == "[":
            m = re.match(r"\[:(\^?)([a-z]+):\]", source[i:])
            if m and m.group(2) in _POSIX and not m.group(1):
                out.append(_POSIX[m.group(2)])
                i += m.end()
                continue
            raise RubyRegexError("nested character classes are not supported", unsupported=True)
        if source.startswith("&&", i):
            raise RubyRegexError(
                "character class intersection (&&) is not supported", unsupported=True
            )
        if ch == "]" or ch == "[":
            out.append("\\" + ch)
        else:
            out.append(ch)
        i += 1
    raise RubyRegexError("premature end of char-class")


@functools.lru_cache(maxsize=512)
def compile_ruby_regex(source: str, options: int = 0) -> re.Pattern[str]:
    """Compile Ruby regex ``source`` with Ruby option bits (1=i, 2=x, 4=m).

    Raises :class:`RubyRegexError` if the regex is invalid or not expressible.
    """
    flags = re.MULTILINE | re.ASCII
    if options & RE_IGNORECASE:
        flags |= re.IGNORECASE
    if options & RE_EXTENDED:
        flags |= re.VERBOSE
    if options & RE_MULTILINE:
        flags |= re.DOTALL
    translated = _translate(source)
    try:
        return re.compile(translated, flags)
    except re.error as exc:
        raise RubyRegexError(str(exc)) from None
    except (OverflowError, RecursionError) as exc:  # pragma: no cover - pathological input
        raise RubyRegexError(str(exc)) from None


def ruby_match(source: str, options: int, value: str) -> bool:
    """``value.match(regex)`` is truthy (an unanchored search with Ruby semantics)."""
    return compile_ruby_regex(source, options).search(value) is not None
