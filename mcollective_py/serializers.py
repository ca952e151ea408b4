"""Serializers: how a security provider turns Ruby values into bytes and back.

``Serializer`` is a two-verb protocol.  ``MARSHAL`` (Ruby Marshal 4.8) is what every
MCollective security plugin uses by default and the only one psk knows.  ``YAML`` is the
other choice of the ``ssl`` and ``aes_security`` plugins (``plugin.ssl_serializer = yaml``):
it writes what Ruby 3.1's ``YAML.dump`` (Psych 4.0.3 on libyaml 0.2.5) writes, byte for byte,
and reads what Ruby's ``YAML.safe_load(text, permitted_classes: [Symbol, Regexp])`` reads.

Errors: the Marshal codec raises :class:`~mcollective_py.errors.MarshalError` (a bad payload)
or :class:`SerializationError` (an unsupported value); the YAML one raises only
:class:`SerializationError`, whatever the input.

YAML, in detail
===============

Writing follows Psych's choices (which node style each Ruby value asks for) and libyaml's
emitter (which style it finally gets, where lines break, when ``...`` ends a document):

=======================  =====================================================================
Python (Ruby)            YAML
=======================  =====================================================================
Symbol ``:agent``        plain ``:agent`` (the empty Symbol: ``!ruby/symbol``)
str, AsciiString         plain when Psych's scanner would read it back as the same String;
                         ``'single'`` when it would read another type (``'1'``, ``'true'``,
                         ``'08'``), ``"double"`` for ``y``/``n``, for text that starts a line
                         with a non-word character and has no ``"`` after it (``"/tmp"``), and
                         whenever libyaml needs escapes; literal ``|`` blocks for multi-line
                         text (with ``-``/``+`` chomping and ``...`` after a trailing ``+``)
bytes                    as str when ASCII-only; otherwise ``!binary`` + base64 literal
int, float, None, bool   ``12``, ``1.0e+20``/``.inf``/``.nan``, empty, ``true``/``false``
list, tuple, dict        block sequences and mappings; empty ones as ``[]``/``{}``; a list,
                         dict or Regexp met twice (same object) gets an anchor ``&1`` and
                         aliases ``*1``, as Psych does
Regexp                   ``!ruby/regexp /source/flags``
=======================  =====================================================================

Reading uses libyaml's scanner and parser (the ones Psych uses, through PyYAML's binding;
PyYAML's pure-Python ones if it was built without libyaml, about 10x slower) with a composer
and constructor of our own: no implicit type resolution by PyYAML, no Python tags.  Plain scalars are typed as Psych's ``ScalarScanner`` types them
(``:sym`` -> Symbol, ints incl. ``0x``/``0b``/octal/``1:30`` sexagesimal, floats, ``~``/``null``,
``yes``/``no``/``on``/``off``...), quoted and block scalars stay strings.  Tags accepted:
``!ruby/regexp``, ``!binary``, ``!ruby/symbol``/``!ruby/sym``, ``!str``/``!ruby/string``/``!!str``;
anything else is refused.  Like Ruby's safe_load with ``aliases: false``, an alias is refused;
so are times and dates (not permitted classes in Ruby either), nesting deeper than 64, more
than :data:`MAX_NODES` nodes, and keys that Python would merge (``:a`` and ``"a"``).  Refusing
aliases means no YAML value can be larger than its text (no "billion laughs"); the security
providers cap the text itself (``max_yaml_bytes``) before parsing.

Where we knowingly differ from Ruby:

* Strings shaped like a date or time (``2023-02-30``, ``2024-13-01 10:00:00``) are
  single-quoted even when Ruby writes them plain: Ruby's safe_load refuses such plain scalars,
  so Ruby cannot read its own output; ours it can.  Strings Psych's scanner cannot type
  (``0b_``) make Ruby's ``YAML.dump`` raise; we single-quote them.
* A ``<<`` merge key is read as a plain key; a stream of several documents is refused (Ruby
  reads the first); an Array/Hash used as a Hash key is refused (Python dicts cannot hold it);
  a tag not listed above is refused (Ruby types ``!!int 5`` as if it had no tag).
* Text with invalid UTF-8 (lone surrogates from the Marshal decoder) is refused, as Ruby
  refuses it; nesting deeper than 200 levels is refused when writing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import unicodedata
from typing import Any, Protocol

from . import marshal
from .errors import SerializationError
from .lazy import lazy_re
from .rubytypes import RE_EXTENDED, RE_IGNORECASE, RE_MULTILINE, Regexp, Symbol, float_to_s

__all__ = ["MARSHAL", "SERIALIZERS", "YAML", "MarshalSerializer", "Serializer", "YamlSerializer"]


class Serializer(Protocol):
    """Encode a Ruby-shaped value to bytes and back. ``loads`` raises only
    MarshalError/SerializationError on bad input.

    ``text`` says what ``dumps`` output is inside an envelope: a UTF-8 String (True, YAML)
    or a binary String (False, Marshal).  Envelopes embed the serialized body accordingly.
    """

    name: str
    text: bool

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class MarshalSerializer:
    """Ruby Marshal 4.8 through our own codec (``marshal.py``)."""

    name = "marshal"
    text = False

    def dumps(self, obj: Any) -> bytes:
        return marshal.dumps(obj)

    def loads(self, data: bytes) -> Any:
        return marshal.loads(data)


class YamlSerializer:
    """Psych-compatible YAML (see the module docstring for the mapping)."""

    name = "yaml"
    text = True

    def dumps(self, obj: Any) -> bytes:
        try:
            text = _Emitter().document(obj)
        except RecursionError:
            raise SerializationError("value is nested too deeply to write as YAML") from None
        return text.encode("utf-8")

    def loads(self, data: bytes) -> Any:
        import yaml  # PyYAML's parser; imported on first use to keep start-up fast

        loader = None
        try:
            loader = _loader_class()(data)  # the reader already decodes the first chunk
            return loader.get_single_data()
        except yaml.MarkedYAMLError as exc:
            where = ""
            if exc.problem_mark is not None:
                where = (
                    f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
                )
            raise SerializationError(
                f"not a YAML body MCollective accepts: {exc.problem}{where}"
            ) from None
        except yaml.reader.ReaderError as exc:
            raise SerializationError(
                f"not a YAML body MCollective accepts: {exc.reason} at byte {exc.position}"
            ) from None
        except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
            raise SerializationError(
                f"not a YAML body MCollective accepts: {type(exc).__name__}"
            ) from None
        finally:
            if loader is not None:
                loader.dispose()


MARSHAL = MarshalSerializer()
YAML = YamlSerializer()
#: By the names ``plugin.ssl_serializer`` / ``plugin.aes.serializer`` use.
SERIALIZERS: dict[str, Serializer] = {"marshal": MARSHAL, "yaml": YAML}


# =========================================================================================
# Psych's ScalarScanner: what type a plain scalar has (used to read, and to decide quoting)
# =========================================================================================


class _Untypable(Exception):
    """Psych's scanner raises on this text (``Integer("0b")``) or yields a class Ruby's
    safe_load does not permit (Time, Date)."""


_RUBY_SPACE = " \t\n\v\f\r"
_STRINGISH = lazy_re(r"^[^0-9.:\-]?(?:[^\W\d_]|[_ \t\n\v\f\r!@#$%^&*(){}<>|/\\~;=])+", re.M)
_NOT_YTONF = lazy_re(r"^[^ytonf~]", re.M | re.I)
_NULL = lazy_re(r"^null$", re.M | re.I)
_TRUE = lazy_re(r"^(?:yes|true|on)$", re.M | re.I)
_FALSE = lazy_re(r"^(?:no|false|off)$", re.M | re.I)
_TIME = lazy_re(
    r"^-?[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t\n\v\f\r]+)[0-9]{1,2}:[0-9][0-9]:[0-9][0-9]"
    r"(?:\.[0-9]*)?(?:[ \t\n\v\f\r]*(?:Z|[-+][0-9]{1,2}:?(?:[0-9][0-9])?))?$"
)
_DATE = lazy_re(r"^[0-9]{4}-(?:1[012]|0[0-9]|[0-9])-(?:[12][0-9]|3[01]|0[0-9]|[0-9])$")
_POS_INF = lazy_re(r"^\+?\.inf$", re.I)
_NEG_INF = lazy_re(r"^-\.inf$", re.I)
_NAN = lazy_re(r"^\.nan$", re.I)
_QUOTED_SYMBOL = lazy_re(r"^:([\"'])(.*)\1")
_SEXAGESIMAL_INT = lazy_re(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}$")
_SEXAGESIMAL_FLOAT = lazy_re(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}\.[0-9_]*$")
_FLOAT = lazy_re(r"^[-+]?(?:[0-9][0-9_,]*)?\.[0-9]*(?:[eE][-+][0-9]+)?$")
_LONE_DOT = lazy_re(r"^[-+]?\.$")
_INTEGER = lazy_re(
    r"^(?:[-+]?0b[0-1_,]+|[-+]?0[0-7_,]+|[-+]?(?:0|[1-9](?:[0-9]|,[0-9]|_[0-9])*)"
    r"|[-+]?0x[0-9a-fA-F_,]+)$"
)
_TO_I = lazy_re(r"[ \t\n\v\f\r]*([-+]?[0-9]+(?:_[0-9]+)*)")
_TO_F = lazy_re(
    r"[ \t\n\v\f\r]*([-+]?[0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?(?:[eE][-+]?[0-9]+)?)"
)
_STRING = object()  # "it is a String" marker of _scan


def _ruby_to_i(text: str) -> int:
    m = _TO_I.match(text)
    return int(m[1].replace("_", "")) if m else 0


def _ruby_to_f(text: str) -> float:
    m = _TO_F.match(text)
    return float(m[1].replace("_", "")) if m else 0.0


def _ruby_integer(text: str) -> int:
    """Ruby ``Integer(s)`` for the shapes ``_INTEGER`` lets through (separators removed)."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    try:
        if body[:2] in ("0b", "0x"):
            return sign * int(body[2:], 2 if body[1] == "b" else 16)
        if len(body) > 1 and body[0] == "0":
            return sign * int(body[1:], 8)
        return sign * int(body, 10)
    except ValueError:
        raise _Untypable(f"invalid value for Integer(): {text!r}") from None


def _scan(text: str) -> Any:
    """Psych's ``ScalarScanner#tokenize`` of a plain scalar: the Ruby value it stands for,
    or ``_STRING`` when Psych keeps it a String.  Raises _Untypable (see there)."""
    if not text:
        return None
    if "\n" in text or _STRINGISH.search(text):
        if len(text) > 5 or _NOT_YTONF.search(text):
            return _STRING
        if text == "~" or _NULL.search(text):
            return None
        if _TRUE.search(text):
            return True
        if _FALSE.search(text):
            return False
        return _STRING
    if _TIME.search(text) or _DATE.search(text):
        # Psych asks its class loader for Time/Date before parsing; safe_load refuses both.
        raise _Untypable(f"{text!r} has the shape of a Time or Date, which safe_load refuses")
    if _POS_INF.search(text):
        return float("inf")
    if _NEG_INF.search(text):
        return float("-inf")
    if _NAN.search(text):
        return float("nan")
    if text.startswith(":") and len(text) > 1:
        q = _QUOTED_SYMBOL.match(text)
        name = q[2] if q else text
        return Symbol(name[1:] if name.startswith(":") else name)
    if _SEXAGESIMAL_INT.search(text):
        return sum(_ruby_to_i(n) * 60 ** abs(e - 2) for e, n in enumerate(text.split(":")))
    if _SEXAGESIMAL_FLOAT.search(text):
        return sum(_ruby_to_f(n) * 60 ** abs(e - 2) for e, n in enumerate(text.split(":"))) + 0.0
    if _FLOAT.search(text):
        if _LONE_DOT.search(text):
            return _STRING
        cleaned = re.sub(r"\.([Ee]|$)", r"\1", text.replace(",", "").replace("_", ""))
        try:
            return float(cleaned)
        except ValueError:
            raise _Untypable(f"invalid value for Float(): {cleaned!r}") from None
    if _INTEGER.search(text):
        return _ruby_integer(text.replace(",", "").replace("_", ""))
    return _STRING


# =========================================================================================
# Writing: Psych's node choices, then libyaml 0.2.5's emitter (block style, 2-space indent,
# 80 columns, Unicode output)
# =========================================================================================

_PLAIN, _SINGLE, _DOUBLE, _LITERAL = "plain", "single", "double", "literal"
_WIDTH = 80
_SURROGATE = lazy_re(r"[\ud800-\udfff]")
_MAX_DUMP_DEPTH = 200  # the emitter recurses; this keeps it far from Python's limit
_BREAKS = "\r\n\x85\u2028\u2029"
_TAG_DIRECTIVES = (("!", "!"), ("!!", "tag:yaml.org,2002:"))
_TAG_SAFE = lazy_re(r"[0-9A-Za-z_\-;/?:@&=+$,.~*'()\[\]]")
_ESCAPES = {
    "\0": "0",
    "\a": "a",
    "\b": "b",
    "\t": "t",
    "\n": "n",
    "\v": "v",
    "\f": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\u2028": "L",
    "\u2029": "P",
}


def _printable(c: str) -> bool:
    """libyaml's IS_PRINTABLE (tab and CR are not; nor are astral characters)."""
    o = ord(c)
    return (
        o == 0x0A
        or 0x20 <= o <= 0x7E
        or 0xA0 <= o <= 0xD7FF
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)
    )


def _blankz(text: str, i: int) -> bool:
    """libyaml's IS_BLANKZ at index ``i`` (past the end counts, as the terminating NUL does)."""
    return i >= len(text) or text[i] in " \t\0" or text[i] in _BREAKS


class _Analysis:
    """Which styles libyaml allows for a scalar (``yaml_emitter_analyze_scalar``)."""

    __slots__ = ("multiline", "flow_plain", "block_plain", "single", "block")

    def __init__(self, text: str) -> None:
        if not text:
            self.multiline, self.flow_plain, self.block_plain = False, False, True
            self.single, self.block = True, False
            return
        flow_ind = block_ind = text.startswith(("---", "..."))
        line_breaks = special = False
        leading_space = leading_break = trailing_space = trailing_break = False
        break_space = space_break = previous_space = previous_break = False
        preceded_by_ws = True
        last = len(text) - 1
        for i, c in enumerate(text):
            followed_by_ws = _blankz(text, i + 1)
            if i == 0:
                if c in "#,[]{}&*!|>'\"%@`":
                    flow_ind = block_ind = True
                if c in "?:":
                    flow_ind = True
                    block_ind = block_ind or followed_by_ws
                if c == "-" and followed_by_ws:
                    flow_ind = block_ind = True
            else:
                if c in ",?[]{}":
                    flow_ind = True
                if c == ":":
                    flow_ind = True
                    block_ind = block_ind or followed_by_ws
                if c == "#" and preceded_by_ws:
                    flow_ind = block_ind = True
            if not _printable(c):
                special = True
            if c in _BREAKS:
                line_breaks = True
            if c == " ":
                leading_space = leading_space or i == 0
                trailing_space = trailing_space or i == last
                break_space = break_space or previous_break
                previous_space, previous_break = True, False
            elif c in _BREAKS:
                leading_break = leading_break or i == 0
                trailing_break = trailing_break or i == last
                space_break = space_break or previous_space
                previous_space, previous_break = False, True
            else:
                previous_space = previous_break = False
            preceded_by_ws = _blankz(text, i)
        plain = not (leading_space or leading_break or trailing_space or trailing_break)
        flow_plain = block_plain = plain
        single = block = True
        if trailing_space:
            block = False
        if break_space:
            flow_plain = block_plain = single = False
        if space_break or special:
            flow_plain = block_plain = single = block = False
        if line_breaks:
            flow_plain = block_plain = False
        if flow_ind:
            flow_plain = False
        if block_ind:
            block_plain = False
        self.multiline, self.flow_plain, self.block_plain = line_breaks, flow_plain, block_plain
        self.single, self.block = single, block


class _Scalar:
    """One scalar as Psych hands it to libyaml: text, tag, implicit flags, requested style."""

    __slots__ = ("text", "tag", "plain_implicit", "quoted_implicit", "style", "analysis")

    def __init__(self, text: str, tag: str | None, plain: bool, quoted: bool, style: str) -> None:
        if not text.isascii() and _SURROGATE.search(text):
            raise SerializationError(
                "value holds text that is not valid UTF-8 (a lone surrogate); Ruby's YAML refuses it too"
            )
        self.text, self.tag, self.plain_implicit, self.quoted_implicit = text, tag, plain, quoted
        self.style = style
        self.analysis = _Analysis(text)

    def shown_tag(self) -> tuple[str, str]:
        """(handle, suffix) libyaml writes; ("", "") when the tag stays implicit."""
        if self.tag is None or self.plain_implicit or self.quoted_implicit:
            return "", ""
        for handle, prefix in _TAG_DIRECTIVES:
            if len(prefix) < len(self.tag) and self.tag.startswith(prefix):
                return handle, self.tag[len(prefix) :]
        return "", self.tag


def _has_inner_newline(text: str) -> bool:
    """Ruby ``text =~ /\\n(?!\\Z)/``: a newline that is not the string's last character, nor
    the one before a final newline."""
    n = len(text)
    return any(
        c == "\n" and not (i + 1 == n or (i + 2 == n and text[i + 1] == "\n"))
        for i, c in enumerate(text)
    )


def _ruby_word(c: str) -> bool:
    """Ruby's ``[[:word:]]``: letters, marks, decimal digits, connector punctuation."""
    return unicodedata.category(c)[0] in "LM" or unicodedata.category(c) in ("Nd", "Pc")


def _line_starts_with_nonword(text: str) -> bool:
    """Ruby ``text =~ /^[^[:word:]][^"]*$/`` (``^``/``$`` are line anchors in Ruby)."""
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    for p in starts:
        if p < len(text) and not _ruby_word(text[p]):
            end = text.find("\n", p + 1)
            if '"' not in text[p + 1 : len(text) if end < 0 else end]:
                return True
    return False


def _is_plain_string(text: str) -> bool:
    try:
        return _scan(text) is _STRING
    except _Untypable:
        return False  # Ruby's YAML.dump raises here; quoting is what lets Ruby read it back


def _string_scalar(text: str) -> _Scalar:
    """Psych ``visit_String`` for a String that is not binary."""
    if _has_inner_newline(text):
        return _Scalar(text, None, True, True, _LITERAL)
    if text == "<<":
        return _Scalar(text, "tag:yaml.org,2002:str", False, False, _SINGLE)
    if text in ("y", "n") or _line_starts_with_nonword(text):
        return _Scalar(text, None, True, True, _DOUBLE)
    if not _is_plain_string(text) or re.match(r"0[0-7]*[89]", text):
        return _Scalar(text, None, True, True, _SINGLE)
    return _Scalar(text, None, True, True, _PLAIN)


def _regexp_inspect(rx: Regexp) -> str:
    """Ruby ``Regexp#inspect``: unescaped ``/`` escaped, flags in ``mix`` order (+ ``n``)."""
    out: list[str] = []
    i = 0
    while i < len(rx.source):
        c = rx.source[i]
        if c == "\\" and i + 1 < len(rx.source):
            out.append(rx.source[i : i + 2])
            i += 2
            continue
        out.append("\\/" if c == "/" else c)
        i += 1
    flags = "".join(
        f
        for bit, f in ((RE_MULTILINE, "m"), (RE_IGNORECASE, "i"), (RE_EXTENDED, "x"))
        if rx.options & bit
    )
    return "/" + "".join(out) + "/" + flags + ("n" if rx.options & 32 else "")


def _scalar_for(value: Any) -> _Scalar | None:
    """The scalar Psych writes for ``value``; None for collections."""
    if value is None:
        return _Scalar("", "tag:yaml.org,2002:null", True, False, _PLAIN)
    if value is True or value is False:
        return _Scalar("true" if value else "false", None, True, False, _PLAIN)
    if isinstance(value, Symbol):
        name = str.__str__(value)
        if not name:
            return _Scalar("", "!ruby/symbol", False, False, _PLAIN)
        return _Scalar(":" + name, None, True, False, _PLAIN)
    if isinstance(value, str):
        return _string_scalar(str.__str__(value))
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        if raw.isascii():
            return _string_scalar(raw.decode("ascii"))
        return _Scalar(base64.b64encode(raw).decode("ascii"), "!binary", False, False, _LITERAL)
    if isinstance(value, int):
        return _Scalar(str(value), None, True, False, _PLAIN)
    if isinstance(value, float):
        if value != value:
            text = ".nan"
        elif value in (float("inf"), float("-inf")):
            text = ".inf" if value > 0 else "-.inf"
        else:
            text = float_to_s(value)
        return _Scalar(text, None, True, False, _PLAIN)
    if isinstance(value, Regexp):
        return _Scalar(_regexp_inspect(value), "!ruby/regexp", False, False, _PLAIN)
    if isinstance(value, (list, tuple, dict)):
        return None
    raise SerializationError(f"cannot write a {type(value).__name__} as Ruby YAML")


def _shareable(value: Any) -> bool:
    """Objects Psych registers (and so aliases when met again): Hash, Array, Regexp."""
    return isinstance(value, (dict, list, Regexp))


class _Emitter:
    """Writes one YAML document the way Psych + libyaml 0.2.5 do (our own code, modelled on
    the observable behaviour of ``emitter.c``).  Only what Psych produces is supported:
    block collections, empty flow collections, the four scalar styles above, anchors,
    aliases and explicit (``?``) keys."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True
        self.indent = -1
        self.open_ended = 0
        self.anchors: dict[int, int] = {}
        self.anchored: set[int] = set()

    # ------------------------------------------------------------ public entry
    def document(self, obj: Any) -> str:
        self._number_aliases(obj)
        self.write_indent()
        self.indicator("---", True, False, False)
        self.node(obj, mapping=False, simple_key=False)
        self.write_indent()  # implicit document end
        if not self.open_ended:
            self.open_ended = 1
        if self.open_ended == 2:  # stream end after a "keep" block scalar
            self.indicator("...", True, False, False)
            self.write_indent()
        return "".join(self.out)

    def _number_aliases(self, root: Any) -> None:
        """Psych numbers an anchor when an object is met the second time, in walk order."""
        seen: set[int] = set()
        keep: list[Any] = []  # keep ids stable while walking

        def walk(value: Any, depth: int) -> None:
            if depth > _MAX_DUMP_DEPTH:
                raise SerializationError(f"value is nested deeper than {_MAX_DUMP_DEPTH} levels")
            if _shareable(value):
                if id(value) in seen:
                    if id(value) not in self.anchors:
                        self.anchors[id(value)] = len(self.anchors) + 1
                    return
                seen.add(id(value))
                keep.append(value)
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(k, depth + 1)
                    walk(v, depth + 1)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    walk(v, depth + 1)

        walk(root, 0)

    # ------------------------------------------------------------ low-level writers
    def put(self, text: str) -> None:
        self.out.append(text)
        self.column += len(text)

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0

    def write_break(self, c: str) -> None:
        if c == "\n":
            self.put_break()
        else:
            self.out.append(c)
            self.column = 0

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.put_break()
        if self.column < indent:
            self.put(" " * (indent - self.column))
        self.whitespace = self.indention = True

    def indicator(self, text: str, need_ws: bool, is_ws: bool, is_indention: bool) -> None:
        if need_ws and not self.whitespace:
            self.put(" ")
        self.put(text)
        self.whitespace = is_ws
        self.indention = self.indention and is_indention

    def push_indent(self, flow: bool, indentless: bool) -> int:
        old = self.indent
        if self.indent < 0:
            self.indent = 2 if flow else 0
        elif not indentless:
            self.indent += 2
        return old

    # ------------------------------------------------------------ nodes
    def anchor_of(self, value: Any) -> tuple[str | None, bool]:
        """(anchor, is_alias) for ``value``."""
        if not _shareable(value) or id(value) not in self.anchors:
            return None, False
        name = str(self.anchors[id(value)])
        if id(value) in self.anchored:
            return name, True
        self.anchored.add(id(value))
        return name, False

    def node(self, value: Any, *, mapping: bool, simple_key: bool) -> None:
        anchor, alias = self.anchor_of(value)
        if alias:
            self.indicator("*", True, False, False)
            self.put(anchor or "")
            self.whitespace = self.indention = False
            if simple_key:
                self.put(" ")
            return
        scalar = _scalar_for(value)
        if scalar is not None:
            self.scalar(scalar, anchor, simple_key)
            return
        if anchor is not None:
            self.indicator("&", True, False, False)
            self.put(anchor)
            self.whitespace = self.indention = False
        if isinstance(value, dict):
            self.mapping(value)
        else:
            self.sequence(value, mapping)

    def empty_flow(self, opening: str, closing: str) -> None:
        self.indicator(opening, True, True, False)
        self.indicator(closing, False, False, False)

    def sequence(self, items: list[Any] | tuple[Any, ...], mapping: bool) -> None:
        if not items:
            self.empty_flow("[", "]")
            return
        old = self.push_indent(False, mapping and not self.indention)
        for item in items:
            self.write_indent()
            self.indicator("-", True, False, True)
            self.node(item, mapping=False, simple_key=False)
        self.indent = old

    def mapping(self, items: dict[Any, Any]) -> None:
        if not items:
            self.empty_flow("{", "}")
            return
        old = self.push_indent(False, False)
        for key, value in items.items():
            self.write_indent()
            if self.simple_key(key):
                self.node(key, mapping=True, simple_key=True)
                self.indicator(":", False, False, False)
            else:
                self.indicator("?", True, False, True)
                self.node(key, mapping=True, simple_key=False)
                self.write_indent()
                self.indicator(":", True, False, True)
            self.node(value, mapping=True, simple_key=False)
        self.indent = old

    def simple_key(self, key: Any) -> bool:
        """libyaml ``check_simple_key``: short single-line scalars, aliases, empty collections."""
        length = 0
        if _shareable(key) and id(key) in self.anchors:
            length += len(str(self.anchors[id(key)]))
            if id(key) in self.anchored:
                return length <= 128
        scalar = _scalar_for(key)
        if scalar is not None:
            if scalar.analysis.multiline:
                return False
            handle, suffix = scalar.shown_tag()
            length += len(handle) + len(suffix) + len(scalar.text.encode("utf-8", "surrogatepass"))
        elif key:  # a non-empty collection
            return False
        return length <= 128

    def scalar(self, s: _Scalar, anchor: str | None, simple_key: bool) -> None:
        a = s.analysis
        handle, suffix = s.shown_tag()
        no_tag = not handle and not suffix
        style = s.style
        if simple_key and a.multiline:
            style = _DOUBLE
        if style == _PLAIN:
            if (
                not a.block_plain
                or (not s.text and simple_key)
                or (no_tag and not s.plain_implicit)
            ):
                style = _SINGLE
        if style == _SINGLE and not a.single:
            style = _DOUBLE
        if style == _LITERAL and (not a.block or simple_key):
            style = _DOUBLE
        if no_tag and not s.quoted_implicit and style != _PLAIN:
            handle = "!"
        if anchor is not None:
            self.indicator("&", True, False, False)
            self.put(anchor)
            self.whitespace = self.indention = False
        if handle:
            if not self.whitespace:
                self.put(" ")
            self.put(handle)
            self.whitespace = self.indention = False
            if suffix:
                self.tag_content(suffix, need_ws=False)
        elif suffix:
            self.indicator("!<", True, False, False)
            self.tag_content(suffix, need_ws=False)
            self.indicator(">", False, False, False)
        old = self.push_indent(True, False)
        if style == _PLAIN:
            self.write_plain(s.text, not simple_key)
        elif style == _SINGLE:
            self.write_single(s.text, not simple_key)
        elif style == _DOUBLE:
            self.write_double(s.text, not simple_key)
        else:
            self.write_literal(s.text)
        self.indent = old

    def tag_content(self, text: str, need_ws: bool) -> None:
        if need_ws and not self.whitespace:
            self.put(" ")
        for c in text:
            if _TAG_SAFE.match(c):
                self.put(c)
            else:
                self.put("".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass")))
        self.whitespace = self.indention = False

    # ------------------------------------------------------------ scalar writers
    def write_plain(self, text: str, allow_breaks: bool) -> None:
        if not self.whitespace and text:
            self.put(" ")
        spaces = breaks = False
        n = len(text)
        for i, c in enumerate(text):
            if c == " ":
                if (
                    allow_breaks
                    and not spaces
                    and self.column > _WIDTH
                    and (i + 1 >= n or text[i + 1] != " ")
                ):
                    self.write_indent()
                else:
                    self.put(c)
                spaces = True
            elif c in _BREAKS:
                if not breaks and c == "\n":
                    self.put_break()
                self.write_break(c)
                self.indention = breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(c)
                self.indention = spaces = breaks = False
        self.whitespace = self.indention = False

    def write_single(self, text: str, allow_breaks: bool) -> None:
        self.indicator("'", True, False, False)
        spaces = breaks = False
        n = len(text)
        for i, c in enumerate(text):
            if c == " ":
                if (
                    allow_breaks
                    and not spaces
                    and self.column > _WIDTH
                    and 0 < i < n - 1
                    and text[i + 1] != " "
                ):
                    self.write_indent()
                else:
                    self.put(c)
                spaces = True
            elif c in _BREAKS:
                if not breaks and c == "\n":
                    self.put_break()
                self.write_break(c)
                self.indention = breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put("''" if c == "'" else c)
                self.indention = spaces = breaks = False
        if breaks:
            self.write_indent()
        self.indicator("'", False, False, False)
        self.whitespace = self.indention = False

    def write_double(self, text: str, allow_breaks: bool) -> None:
        self.indicator('"', True, False, False)
        spaces = False
        n = len(text)
        i = 0
        while i < n:
            c = text[i]
            if not _printable(c) or c in _BREAKS or c in '"\\':
                code = ord(c)
                if c in _ESCAPES:
                    self.put("\\" + _ESCAPES[c])
                elif code <= 0xFF:
                    self.put(f"\\x{code:02X}")
                elif code <= 0xFFFF:
                    self.put(f"\\u{code:04X}")
                else:
                    self.put(f"\\U{code:08X}")
                spaces = False
            elif c == " ":
                if allow_breaks and not spaces and self.column > _WIDTH and 0 < i < n - 1:
                    self.write_indent()
                    if text[i + 1] == " ":
                        self.put("\\")
                else:
                    self.put(c)
                spaces = True
            else:
                self.put(c)
                spaces = False
            i += 1
        self.indicator('"', False, False, False)
        self.whitespace = self.indention = False

    def write_literal(self, text: str) -> None:
        self.indicator("|", True, False, False)
        if text and (text[0] == " " or text[0] in _BREAKS):
            self.indicator("2", False, False, False)
        self.open_ended = 0
        if not text or text[-1] not in _BREAKS:
            self.indicator("-", False, False, False)
        elif len(text) == 1 or text[-2] in _BREAKS:
            self.indicator("+", False, False, False)
            self.open_ended = 2
        self.put_break()
        self.indention = self.whitespace = True
        breaks = True
        for c in text:
            if c in _BREAKS:
                self.write_break(c)
                self.indention = breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(c)
                self.indention = breaks = False


# =========================================================================================
# Reading: PyYAML's parser, our own resolution and construction (Psych's ToRuby, safe mode)
# =========================================================================================

_PLAIN_TAG = "tag:mcollective-py,2024:plain"  # an untagged plain scalar: typed by _scan
_STR_TAGS = frozenset({"tag:yaml.org,2002:str", "!str", "!ruby/string"})
_BINARY_TAGS = frozenset({"!binary", "tag:yaml.org,2002:binary"})
_SYMBOL_TAG = lazy_re(r"!ruby/sym(?:bol)?(?::.*)?")
_REGEXP_TEXT = lazy_re(r"/(.*)/([mixn]*)", re.S)
_MAX_DEPTH = 64
#: Most nodes (scalars, sequences, mappings) one YAML document may hold.  Aliases are refused,
#: so this is also the expanded size: no YAML value is larger than its text.
MAX_NODES = 50_000


@functools.cache
def _loader_class() -> Any:
    """Our PyYAML loader class, built on first use (PyYAML is imported only then)."""
    import yaml
    from yaml.composer import Composer, ComposerError
    from yaml.constructor import ConstructorError, SafeConstructor
    from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
    from yaml.resolver import Resolver

    # libyaml's scanner and parser (the ones Psych uses) when PyYAML was built with them: ~10x
    # faster than the pure-Python ones; our own composer on top either way (aliases, depth
    # and node caps are checked there).
    parser: Any
    try:
        from yaml._yaml import CParser as parser
    except ImportError:  # pragma: no cover - PyYAML without libyaml
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class PyParser(Reader, Scanner, Parser):
            def __init__(self, stream: bytes) -> None:
                Reader.__init__(self, stream)
                Scanner.__init__(self)
                Parser.__init__(self)

        parser = PyParser

    class Loader(Composer, parser, SafeConstructor, Resolver):
        """A safe loader that knows only Psych's safe types (see the module docstring)."""

        yaml_implicit_resolvers = {}  # PyYAML registries, emptied on purpose
        yaml_constructors = {}
        yaml_multi_constructors = {}

        def __init__(self, stream: bytes) -> None:
            parser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._depth = 0
            self._nodes = 0

        def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
            if kind is ScalarNode and implicit[0]:
                return _PLAIN_TAG
            return str(super().resolve(kind, value, implicit))

        def compose_node(self, parent: Node | None, index: Any) -> Node | None:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise ComposerError(
                    None,
                    None,
                    "aliases are not allowed (Ruby's safe_load refuses them too)",
                    event.start_mark,
                )
            self._depth += 1
            self._nodes += 1
            if self._nodes > MAX_NODES:
                raise ComposerError(
                    None, None, f"more than {MAX_NODES} nodes", self.peek_event().start_mark
                )
            try:
                if self._depth > _MAX_DEPTH:
                    raise ComposerError(
                        None, None, f"nested deeper than {_MAX_DEPTH}", self.peek_event().start_mark
                    )
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_object(self, node: Node, deep: bool = False) -> Any:
            return super().construct_object(node, deep=True)

        def construct_undefined(self, node: Node) -> Any:
            raise ConstructorError(
                None, None, f"the tag {node.tag!r} is not allowed", node.start_mark
            )

        def construct_plain(self, node: ScalarNode) -> Any:
            try:
                value = _scan(node.value)
            except _Untypable as exc:
                raise ConstructorError(None, None, str(exc), node.start_mark) from None
            return node.value if value is _STRING else value

        def construct_str(self, node: ScalarNode) -> str:
            return str(node.value)

        def construct_tagged_scalar(self, node: Node) -> Any:
            if not isinstance(node, ScalarNode):
                return self.construct_undefined(node)
            tag = node.tag
            if tag in _STR_TAGS:
                return str(node.value)
            if tag in _BINARY_TAGS:
                try:
                    return binascii.a2b_base64(node.value.encode("ascii"))
                except (binascii.Error, UnicodeEncodeError):
                    raise ConstructorError(
                        None, None, "!binary holds invalid base64", node.start_mark
                    ) from None
            if _SYMBOL_TAG.fullmatch(tag):
                return Symbol(node.value)
            if tag == "!ruby/regexp":
                m = _REGEXP_TEXT.fullmatch(node.value)
                if m is None:
                    raise ConstructorError(
                        None, None, "!ruby/regexp is not /source/flags", node.start_mark
                    )
                options = 0
                for flag, bit in (
                    ("i", RE_IGNORECASE),
                    ("x", RE_EXTENDED),
                    ("m", RE_MULTILINE),
                    ("n", 32),
                ):
                    if flag in m[2]:
                        options |= bit
                if not m[1].isascii():
                    options |= 16  # Ruby marks a non-ASCII source FIXEDENCODING
                return Regexp(m[1], options, m[1].isascii())
            return self.construct_undefined(node)

        def construct_seq(self, node: SequenceNode) -> list[Any]:
            return [self.construct_object(child) for child in node.value]

        def construct_map(self, node: MappingNode) -> dict[Any, Any]:
            out: dict[Any, Any] = {}
            types: dict[Any, type] = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node)
                try:
                    hash(key)
                except TypeError:
                    raise ConstructorError(
                        None,
                        None,
                        "a collection as a mapping key is not supported",
                        key_node.start_mark,
                    ) from None
                if key in types and types[key] is not type(key):
                    raise ConstructorError(
                        None,
                        None,
                        f"keys {key!r} of different types collide in Python",
                        key_node.start_mark,
                    )
                types[key] = type(key)
                out[key] = self.construct_object(value_node)
            return out

    Loader.add_constructor(_PLAIN_TAG, Loader.construct_plain)
    Loader.add_constructor("tag:yaml.org,2002:str", Loader.construct_str)
    Loader.add_constructor("tag:yaml.org,2002:seq", Loader.construct_seq)
    Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_map)
    Loader.add_constructor(None, Loader.construct_tagged_scalar)

    return Loader
