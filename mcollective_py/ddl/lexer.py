"""Tokenizer for the subset of Ruby that DDL files are written in.

Produces :class:`Token` objects for the parser.  Handles Ruby strings (single and
double quoted, ``%q %Q %()``, heredocs ``<<ID <<-ID <<~ID``) with escapes and
``#{...}`` interpolation, symbols (``:a``, ``:"a b"``, ``%s()``), labels (``key:``),
regex literals (``/re/imx``, ``%r{re}``), word arrays (``%w[] %i[]``), integers,
floats, comments (``#``, ``=begin``/``=end``), ``__END__`` and line continuations.

Every syntax problem raises :class:`~mcollective_py.errors.DDLError` whose message
starts with ``file:line:column:`` and says what was expected.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from mcollective_py.errors import DDLError

__all__ = ["Interpolation", "Source", "Token", "tokenize"]

KEYWORDS = frozenset(
    "alias and begin BEGIN break case class def defined? do else elsif end END ensure "
    "false for if in module next nil not or redo rescue retry return self super then "
    "true undef unless until when while yield __FILE__ __LINE__ __ENCODING__".split()
)

# operators, longest first
_OPERATORS = sorted(
    "**= <=> === ... <<= >>= &&= ||= ** == =~ != !~ <= >= && || :: .. -> => += -= *= /= %= "
    "|= &= ^= << >> ( ) [ ] { } , . ; = + - * / % | & ! < > ? ~ ^ :".split(),
    key=len,
    reverse=True,
)

_MAX_INTERPOLATION_DEPTH = 20

_PERCENT_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}

_DQ_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "s": " ",
    "r": "\r",
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "f": "\f",
    "v": "\v",
}


class Source:
    """A DDL file's text and name; turns offsets into ``file:line:column`` errors."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self._line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._line_starts.append(i + 1)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of ``offset``."""
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def where(self, offset: int) -> str:
        """``file:line:column`` of ``offset``."""
        line, col = self.position(offset)
        return f"{self.filename}:{line}:{col}"

    def error(self, offset: int, message: str) -> DDLError:
        """A :class:`DDLError` located at ``offset``."""
        return DDLError(f"{self.where(offset)}: {message}")


@dataclass
class Interpolation:
    """A ``#{...}`` inside a string: its tokens (ending with an ``eof`` token)."""

    tokens: list[Token]
    offset: int


@dataclass
class Token:
    """One token.

    ``kind`` is one of ``ident const ivar gvar label int float string symbol dsym
    regex words symbols op kw eof``.  ``value`` depends on the kind: the text for
    names/operators/keywords, the number, a list of parts (``str`` or
    :class:`Interpolation`) for strings and ``dsym``, ``(source, flags)`` for regexes,
    a list of ``str`` for word arrays.
    """

    kind: str
    value: Any
    offset: int
    end: int = 0
    space_before: bool = False
    nl_before: bool = False

    def describe(self) -> str:
        """How the token reads in an error message."""
        if self.kind == "eof":
            return "end of file"
        if self.kind in ("op", "kw"):
            return f"'{self.value}'"
        if self.kind == "string":
            return "a string"
        if self.kind in ("symbol", "dsym"):
            return "a symbol"
        if self.kind == "label":
            return f"label '{self.value}:'"
        if self.kind in ("int", "float"):
            return "a number"
        if self.kind == "regex":
            return "a regex"
        if self.kind in ("words", "symbols"):
            return "a word list"
        return f"'{self.value}'"


_VALUE_END_KINDS = frozenset(
    (
        "int",
        "float",
        "string",
        "symbol",
        "dsym",
        "regex",
        "words",
        "symbols",
        "const",
        "ivar",
        "gvar",
    )
)


def _is_digit(ch: str) -> bool:
    return len(ch) == 1 and "0" <= ch <= "9"


def _is_ascii_alnum(ch: str) -> bool:
    return len(ch) == 1 and (_is_digit(ch) or "a" <= ch.lower() <= "z")


def _is_space(ch: str) -> bool:
    return ch in (" ", "\t", "\n", "\v", "\f", "\r")


def _is_ident_start(ch: str) -> bool:
    return ("a" <= ch.lower() <= "z") or ch == "_" or ord(ch) > 127


def _is_ident_char(ch: str) -> bool:
    return _is_ascii_alnum(ch) or ch == "_" or ord(ch) > 127


class _Lexer:
    def __init__(self, src: Source, depth: int = 0) -> None:
        self.src = src
        self.text = src.text
        self.depth = depth
        self.pending_heredocs: list[tuple[Token, str, str, bool]] = []

    # ------------------------------------------------------------------ helpers

    def err(self, offset: int, message: str) -> DDLError:
        return self.src.error(offset, message)

    def _value_position(
        self, tokens: list[Token], space_before: bool, newline: bool, pos: int
    ) -> bool:
        """True when the next token starts a value (so ``/`` is a regex, ``%w`` a list)."""
        if not tokens or newline:
            return True
        prev = tokens[-1]
        if prev.kind in _VALUE_END_KINDS:
            return False
        if prev.kind == "kw":
            return prev.value not in ("end", "true", "false", "nil", "self")
        if prev.kind == "op":
            return prev.value not in (")", "]", "}")
        if prev.kind == "ident":
            # ``foo /re/`` (a command argument) vs ``foo / 2``
            nxt = self.text[pos + 1 : pos + 2]
            return space_before and nxt not in (" ", "\t", "=", "")
        return True  # labels and anything else

    # ------------------------------------------------------------------ main loop

    def tokenize(self, pos: int = 0, *, until_brace: bool = False) -> tuple[list[Token], int]:
        text = self.text
        n = len(text)
        tokens: list[Token] = []
        space = False
        newline = True
        depth = 0
        at_line_start = True
        while True:
            if pos >= n:
                if until_brace:
                    raise self.err(
                        pos, "syntax error: expected '}' to close '#{', found end of file"
                    )
                if self.pending_heredocs:
                    tok, ident, _, _ = self.pending_heredocs[0]
                    raise self.err(
                        tok.offset,
                        f"syntax error: heredoc <<{ident} has no body and no terminator '{ident}'",
                    )
                tokens.append(Token("eof", None, pos, pos, space, newline))
                return tokens, pos
            ch = text[pos]
            if at_line_start and not until_brace:
                if text.startswith("=begin", pos) and (pos + 6 >= n or text[pos + 6] in " \t\r\n"):
                    end = self._find_line_starting(pos, "=end")
                    if end < 0:
                        raise self.err(pos, "syntax error: '=begin' comment without '=end'")
                    pos = end
                    newline = True
                    continue
                if text.startswith("__END__", pos) and text[pos + 7 : pos + 8] in ("", "\n", "\r"):
                    tokens.append(Token("eof", None, pos, pos, space, True))
                    return tokens, pos
            at_line_start = False
            if ch in " \t\r\f\v":
                pos += 1
                space = True
                continue
            if ch == "\\" and text.startswith("\n", pos + 1):
                pos += 2
                space = True
                continue
            if ch == "\\" and text.startswith("\r\n", pos + 1):
                pos += 3
                space = True
                continue
            if ch == "\n":
                pos += 1
                if self.pending_heredocs and not until_brace:
                    pos = self._read_heredoc_bodies(pos)
                space = True
                newline = True
                at_line_start = True
                continue
            if ch == "#":
                end = text.find("\n", pos)
                pos = n if end < 0 else end
                continue
            start = pos
            tok, pos = self._token(tokens, pos, space, newline)
            tok.offset = start
            tok.end = pos
            tok.space_before = space
            tok.nl_before = newline
            space = False
            newline = False
            if until_brace and tok.kind == "op":
                if tok.value == "{":
                    depth += 1
                elif tok.value == "}":
                    if depth == 0:
                        tokens.append(
                            Token("eof", None, start, start, tok.space_before, tok.nl_before)
                        )
                        return tokens, pos
                    depth -= 1
            tokens.append(tok)

    def _find_line_starting(self, pos: int, marker: str) -> int:
        """Offset just past the line that starts with ``marker`` after ``pos`` (-1 if none)."""
        text = self.text
        i = text.find("\n", pos)
        while i >= 0:
            if text.startswith(marker, i + 1):
                end = text.find("\n", i + 1)
                return len(text) if end < 0 else end + 1
            i = text.find("\n", i + 1)
        return -1

    def _token(
        self, tokens: list[Token], pos: int, space: bool, newline: bool
    ) -> tuple[Token, int]:
        text = self.text
        ch = text[pos]
        nxt = text[pos + 1 : pos + 2]
        if _is_digit(ch):
            return self._number(pos)
        if _is_ident_start(ch):
            return self._identifier(pos)
        if ch == "@":
            end = pos + 1
            while end < len(text) and (_is_ident_char(text[end]) or text[end] == "@"):
                end += 1
            return Token("ivar", text[pos:end], pos), end
        if ch == "$":
            end = pos + 1
            while end < len(text) and _is_ident_char(text[end]):
                end += 1
            return Token("gvar", text[pos : max(end, pos + 2)], pos), max(end, pos + 2)
        if ch == '"':
            parts, end = self._dq_body(pos + 1, '"', None)
            return Token("string", parts, pos), end
        if ch == "'":
            value, end = self._sq_body(pos + 1, "'", None)
            return Token("string", [value], pos), end
        if ch == "`":
            raise self.err(
                pos,
                "unsupported Ruby construct: backtick command execution is not allowed in a DDL",
            )
        if ch == ":":
            if nxt == ":":
                return Token("op", "::", pos), pos + 2
            if nxt == '"':
                parts, end = self._dq_body(pos + 2, '"', None)
                return Token("dsym", parts, pos), end
            if nxt == "'":
                value, end = self._sq_body(pos + 2, "'", None)
                return Token("dsym", [value], pos), end
            if nxt and _is_ident_start(nxt):
                end = pos + 1
                while end < len(text) and _is_ident_char(text[end]):
                    end += 1
                if (
                    end < len(text)
                    and text[end] in "?!="
                    and text[end + 1 : end + 2] not in ("=", "~", ">")
                ):
                    end += 1
                return Token("symbol", text[pos + 1 : end], pos), end
            return Token("op", ":", pos), pos + 1
        value_pos = self._value_position(tokens, space, newline, pos)
        if ch == "/" and value_pos:
            return self._regex(pos + 1, "/", None, pos)
        if ch == "%" and value_pos:
            lit = self._percent(pos)
            if lit is not None:
                return lit
        if ch == "<" and text.startswith("<<", pos) and value_pos:
            lit = self._heredoc_start(pos)
            if lit is not None:
                return lit
        for op in _OPERATORS:
            if text.startswith(op, pos):
                return Token("op", op, pos), pos + len(op)
        raise self.err(pos, f"syntax error: unexpected character {ch!r}")

    # ------------------------------------------------------------------ numbers/names

    def _number(self, pos: int) -> tuple[Token, int]:
        text = self.text
        n = len(text)
        low = text[pos : pos + 2].lower()
        prefixed = low in ("0x", "0b", "0o", "0d")
        if prefixed or (low[:1] == "0" and low[1:2] != "" and (_is_digit(low[1]) or low[1] == "_")):
            base = {"0x": 16, "0b": 2, "0o": 8, "0d": 10}.get(low, 8)
            start = pos + 2 if prefixed else pos + 1
            end = start
            while end < n and (_is_ascii_alnum(text[end]) or text[end] == "_"):
                end += 1
            digits = text[start:end]
            try:
                if not digits or digits.startswith("_") or digits.endswith("_") or "__" in digits:
                    raise ValueError(digits)
                return Token("int", int(digits.replace("_", ""), base), pos), end
            except ValueError:
                raise self.err(
                    pos, f"syntax error: invalid number literal {text[pos:end]!r}"
                ) from None
        end = pos
        while end < n and (
            _is_digit(text[end]) or (text[end] == "_" and _is_digit(text[end + 1 : end + 2]))
        ):
            end += 1
        is_float = False
        if end + 1 < n and text[end] == "." and _is_digit(text[end + 1]):
            is_float = True
            end += 1
            while end < n and (
                _is_digit(text[end]) or (text[end] == "_" and _is_digit(text[end + 1 : end + 2]))
            ):
                end += 1
        if end < n and text[end] in "eE":
            m_end = end + 1
            if m_end < n and text[m_end] in "+-":
                m_end += 1
            if m_end < n and _is_digit(text[m_end]):
                is_float = True
                end = m_end
                while end < n and _is_digit(text[end]):
                    end += 1
        if end < n and (_is_ident_char(text[end])):
            bad_end = end
            while bad_end < n and _is_ident_char(text[bad_end]):
                bad_end += 1
            raise self.err(pos, f"syntax error: invalid number literal {text[pos:bad_end]!r}")
        literal = text[pos:end].replace("_", "")
        if is_float:
            return Token("float", float(literal), pos), end
        return Token("int", int(literal), pos), end

    def _identifier(self, pos: int) -> tuple[Token, int]:
        text = self.text
        end = pos
        while end < len(text) and _is_ident_char(text[end]):
            end += 1
        if end < len(text) and text[end] in "?!" and text[end + 1 : end + 2] != "=":
            end += 1
        elif text[end : end + 2] in ("?=", "!=") and text[end + 2 : end + 3] == "=":
            end += 1
        word = text[pos:end]
        # ``key: value`` label (but not ``a::b``)
        if (
            end < len(text)
            and text[end] == ":"
            and text[end + 1 : end + 2] != ":"
            and word[-1] not in "?!"
        ):
            return Token("label", word, pos), end + 1
        if word in KEYWORDS or word == "defined?":
            return Token("kw", word, pos), end
        if word[0].isupper():
            return Token("const", word, pos), end
        return Token("ident", word, pos), end

    # ------------------------------------------------------------------ strings

    def _closing(self, open_ch: str) -> str:
        return _PERCENT_PAIRS.get(open_ch, open_ch)

    def _sq_body(self, pos: int, close: str, open_ch: str | None) -> tuple[str, int]:
        """Single-quoted body: only ``\\\\`` and ``\\<delimiter>`` are escapes."""
        text = self.text
        out: list[str] = []
        depth = 0
        start = pos - 1
        while pos < len(text):
            ch = text[pos]
            if (
                ch == "\\"
                and pos + 1 < len(text)
                and text[pos + 1] in ("\\", close, open_ch or close)
            ):
                out.append(text[pos + 1])
                pos += 2
                continue
            if open_ch and ch == open_ch:
                depth += 1
            elif ch == close:
                if depth == 0:
                    return "".join(out), pos + 1
                depth -= 1
            out.append(ch)
            pos += 1
        raise self.err(start, f"syntax error: unterminated string, expected closing {close!r}")

    def _dq_body(
        self, pos: int, close: str | None, open_ch: str | None, *, limit: int | None = None
    ) -> tuple[list[Any], int]:
        """Double-quoted body (escapes + ``#{}``); ``close=None`` reads up to ``limit``."""
        text = self.text
        end_limit = len(text) if limit is None else limit
        parts: list[Any] = []
        buf: list[str] = []
        depth = 0
        start = pos - 1
        while pos < end_limit:
            ch = text[pos]
            if ch == "\\":
                value, pos = self._dq_escape(pos, end_limit)
                buf.append(value)
                continue
            if ch == "#" and pos + 1 < end_limit:
                nxt = text[pos + 1]
                if nxt == "{":
                    if buf:
                        parts.append("".join(buf))
                        buf = []
                    if self.depth >= _MAX_INTERPOLATION_DEPTH:
                        raise self.err(pos, "#{} interpolation nested too deeply for a DDL")
                    sub_lexer = _Lexer(self.src, self.depth + 1)
                    try:
                        sub, after = sub_lexer.tokenize(pos + 2, until_brace=True)
                    except DDLError as exc:
                        if "unterminated" not in str(exc) and "end of file" not in str(exc):
                            raise
                        raise self.err(
                            pos, "syntax error: expected '}' to close this '#{'"
                        ) from None
                    if sub_lexer.pending_heredocs:
                        raise self.err(
                            pos, "unsupported Ruby construct: a heredoc inside #{} interpolation"
                        )
                    if after > end_limit:
                        raise self.err(
                            pos, "syntax error: expected '}' to close '#{' on the same line"
                        )
                    parts.append(Interpolation(sub, pos))
                    pos = after
                    continue
                if nxt in "@$" and pos + 2 < end_limit and _is_ident_start(text[pos + 2]):
                    raise self.err(
                        pos,
                        f"unsupported Ruby construct: '#{nxt}' interpolation; write #{{...}} or escape it as \\#",
                    )
            if close is not None:
                if open_ch and ch == open_ch:
                    depth += 1
                elif ch == close:
                    if depth == 0:
                        if buf or not parts:
                            parts.append("".join(buf))
                        return parts, pos + 1
                    depth -= 1
            buf.append(ch)
            pos += 1
        if close is None:
            if buf or not parts:
                parts.append("".join(buf))
            return parts, pos
        raise self.err(start, f"syntax error: unterminated string, expected closing {close!r}")

    def _dq_escape(self, pos: int, limit: int) -> tuple[str, int]:
        text = self.text
        if pos + 1 >= limit:
            raise self.err(pos, "syntax error: unterminated string, a backslash ends the file")
        c = text[pos + 1]
        if c in _DQ_ESCAPES and not (c == "0" and _is_digit(text[pos + 2 : pos + 3])):
            return _DQ_ESCAPES[c], pos + 2
        if c == "\n":
            return "", pos + 2
        if c in "01234567":
            end = pos + 1
            while end < limit and end < pos + 4 and text[end] in "01234567":
                end += 1
            return chr(int(text[pos + 1 : end], 8) & 0xFF), end
        if c == "x":
            end = pos + 2
            while end < limit and end < pos + 4 and text[end] in "0123456789abcdefABCDEF":
                end += 1
            if end == pos + 2:
                raise self.err(
                    pos, "syntax error: invalid hex escape, expected \\x followed by 1-2 hex digits"
                )
            return chr(int(text[pos + 2 : end], 16)), end
        if c == "u":
            if text.startswith("{", pos + 2):
                close = text.find("}", pos + 3, limit)
                body = text[pos + 3 : close] if close >= 0 else ""
                codes = body.split()
                if close < 0 or not codes or not all(_is_hex(cp) and len(cp) <= 6 for cp in codes):
                    raise self.err(
                        pos, "syntax error: invalid Unicode escape, expected \\u{hex digits}"
                    )
                try:
                    return "".join(chr(int(cp, 16)) for cp in codes), close + 1
                except (ValueError, OverflowError):
                    raise self.err(pos, "syntax error: invalid Unicode codepoint") from None
            digits = text[pos + 2 : pos + 6]
            if len(digits) != 4 or not _is_hex(digits):
                raise self.err(
                    pos,
                    "syntax error: invalid Unicode escape, expected \\u followed by 4 hex digits",
                )
            return chr(int(digits, 16)), pos + 6
        if c == "c" or (c == "C" and text.startswith("-", pos + 2)):
            at = pos + 2 if c == "c" else pos + 3
            if at >= limit:
                raise self.err(pos, "syntax error: invalid control escape")
            target = text[at]
            return ("\x7f" if target == "?" else chr(ord(target) & 0x1F)), at + 1
        if c == "M" and text.startswith("-", pos + 2):
            raise self.err(pos, "unsupported Ruby construct: \\M- meta escapes")
        return c, pos + 2  # any other escaped character stands for itself

    def _regex(self, pos: int, close: str, open_ch: str | None, start: int) -> tuple[Token, int]:
        text = self.text
        out: list[str] = []
        depth = 0
        while pos < len(text):
            ch = text[pos]
            if ch == "\\" and pos + 1 < len(text):
                if text[pos + 1] == "/":
                    out.append("/")
                else:
                    out.append(text[pos : pos + 2])
                pos += 2
                continue
            if ch == "#" and text.startswith("{", pos + 1):
                raise self.err(
                    pos, "unsupported Ruby construct: #{} interpolation inside a regex literal"
                )
            if open_ch and ch == open_ch:
                depth += 1
            elif ch == close:
                if depth == 0:
                    pos += 1
                    flags_start = pos
                    while (
                        pos < len(text) and _is_ascii_alnum(text[pos]) and not _is_digit(text[pos])
                    ):
                        pos += 1
                    flags = text[flags_start:pos]
                    bad = [f for f in flags if f not in "imxounse"]
                    if bad:
                        raise self.err(
                            flags_start,
                            f"syntax error: unknown regex option '{bad[0]}', expected i, m or x",
                        )
                    return Token("regex", ("".join(out), flags), start), pos
                depth -= 1
            out.append(ch)
            pos += 1
        raise self.err(start, f"syntax error: unterminated regex, expected closing {close!r}")

    def _percent(self, pos: int) -> tuple[Token, int] | None:
        text = self.text
        kind = text[pos + 1 : pos + 2]
        if (
            kind
            and kind in "wWiIqQrs"
            and pos + 2 < len(text)
            and not _is_ascii_alnum(text[pos + 2])
            and not _is_space(text[pos + 2])
        ):
            delim_at = pos + 2
        elif kind and kind in "([{<|!/^":
            kind, delim_at = "Q", pos + 1
        else:
            return None
        open_ch = text[delim_at]
        close = self._closing(open_ch)
        nest = open_ch if open_ch in _PERCENT_PAIRS else None
        body = delim_at + 1
        if kind == "q":
            value, end = self._sq_body(body, close, nest)
            return Token("string", [value], pos), end
        if kind == "Q":
            parts, end = self._dq_body(body, close, nest)
            return Token("string", parts, pos), end
        if kind == "s":
            value, end = self._sq_body(body, close, nest)
            return Token("dsym", [value], pos), end
        if kind == "r":
            tok, end = self._regex(body, close, nest, pos)
            return tok, end
        words, end = self._words(body, close, nest, interpolate=kind in "WI", start=pos)
        return Token("words" if kind in "wW" else "symbols", words, pos), end

    def _words(
        self, pos: int, close: str, open_ch: str | None, *, interpolate: bool, start: int
    ) -> tuple[list[str], int]:
        text = self.text
        words: list[str] = []
        buf: list[str] = []
        have = False
        depth = 0
        while pos < len(text):
            ch = text[pos]
            if ch == "\\" and pos + 1 < len(text):
                nxt = text[pos + 1]
                if interpolate:
                    value, pos = self._dq_escape(pos, len(text))
                    buf.append(value)
                    have = True
                    continue
                if _is_space(nxt) or nxt in ("\\", close, open_ch or close):
                    buf.append(nxt)
                else:
                    buf.append("\\" + nxt)
                have = True
                pos += 2
                continue
            if interpolate and ch == "#" and text.startswith("{", pos + 1):
                raise self.err(pos, "unsupported Ruby construct: #{} interpolation inside %W/%I")
            if _is_space(ch):
                if have:
                    words.append("".join(buf))
                    buf, have = [], False
                pos += 1
                continue
            if open_ch and ch == open_ch:
                depth += 1
            elif ch == close:
                if depth == 0:
                    if have:
                        words.append("".join(buf))
                    return words, pos + 1
                depth -= 1
            buf.append(ch)
            have = True
            pos += 1
        raise self.err(start, f"syntax error: unterminated word list, expected closing {close!r}")

    # ------------------------------------------------------------------ heredocs

    def _heredoc_start(self, pos: int) -> tuple[Token, int] | None:
        text = self.text
        i = pos + 2
        mode = ""
        if i < len(text) and text[i] in "~-":
            mode = text[i]
            i += 1
        quote = text[i : i + 1]
        if quote in ("'", '"'):
            close = text.find(quote, i + 1)
            nl = text.find("\n", i + 1)
            if close < 0 or (0 <= nl < close):
                raise self.err(pos, "syntax error: unterminated heredoc identifier")
            ident = text[i + 1 : close]
            end = close + 1
        elif i < len(text) and _is_ident_start(text[i]):
            end = i
            while end < len(text) and _is_ident_char(text[end]):
                end += 1
            ident = text[i:end]
            quote = ""
        else:
            return None
        tok = Token("string", [""], pos)
        self.pending_heredocs.append((tok, ident, mode, quote != "'"))
        return tok, end

    def _read_heredoc_bodies(self, pos: int) -> int:
        pending, self.pending_heredocs = self.pending_heredocs, []
        text = self.text
        for tok, ident, mode, interpolate in pending:
            lines: list[tuple[int, int]] = []  # (start, end-including-newline)
            found = False
            while pos < len(text):
                nl = text.find("\n", pos)
                line_end = len(text) if nl < 0 else nl + 1
                content = text[pos : nl if nl >= 0 else len(text)].rstrip("\r")
                if (content.strip() if mode else content) == ident:
                    pos = line_end
                    found = True
                    break
                lines.append((pos, line_end))
                pos = line_end
            if not found:
                raise self.err(
                    tok.offset,
                    f"syntax error: heredoc <<{mode}{ident} is missing its terminator line '{ident}'",
                )
            indent = _squiggly_indent([text[s:e] for s, e in lines]) if mode == "~" else 0
            parts: list[Any] = []
            for start, end in lines:
                body_start = _skip_indent(text, start, end, indent)
                if interpolate:
                    parts.extend(self._dq_body(body_start, None, None, limit=end)[0])
                else:
                    parts.append(text[body_start:end])
            tok.value = _merge_parts(parts)
        return pos


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def _squiggly_indent(lines: list[str]) -> int:
    widths = []
    for line in lines:
        if not line.strip():
            continue
        width = 0
        for ch in line:
            if ch == " ":
                width += 1
            elif ch == "\t":
                width = (width // 8 + 1) * 8
            else:
                break
        widths.append(width)
    return min(widths) if widths else 0


def _skip_indent(text: str, start: int, end: int, indent: int) -> int:
    width = 0
    pos = start
    while pos < end and width < indent and text[pos] in " \t":
        step = 1 if text[pos] == " " else (width // 8 + 1) * 8 - width
        if width + step > indent:
            break
        width += step
        pos += 1
    return pos


def _merge_parts(parts: list[Any]) -> list[Any]:
    merged: list[Any] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged or [""]


def tokenize(src: Source) -> list[Token]:
    """Tokenize a whole DDL source; the list ends with an ``eof`` token.

    Raises :class:`~mcollective_py.errors.DDLError` (``file:line:col: ...``).
    """
    tokens, _ = _Lexer(src).tokenize(0)
    return tokens
