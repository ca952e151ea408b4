"""The Ruby core methods a DDL file may call, emulated for the DDL interpreter.

DDL files call a few methods on Ruby values: ``act.capitalize``, ``"%s" % x``,
``%w[a b].each``, ``name.sub(/p$/, "pp")``, ``list.join(", ")``, ``hash.fetch(:k)``...
:class:`RubyCoreMethods` answers them with Ruby's results (String, Symbol, Array, Hash,
numeric and Object methods); the DDL language itself (statements, the DSL calls ``action``,
``input``...) is :mod:`mcollective_py.ddl.dsl`, which mixes this class in.  Anything not
listed fails with ``undefined method`` -- nothing is ever ``eval``-ed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from mcollective_py.ddl.lexer import Source
from mcollective_py.ddl.parser import Block, Call, Node
from mcollective_py.errors import DDLError
from mcollective_py.ruby import values as rv
from mcollective_py.ruby.regex import RubyRegexError, compile_ruby_regex
from mcollective_py.ruby.values import RubyHash, RubyTypeError
from mcollective_py.rubytypes import Regexp, Symbol

__all__ = ["MAX_STRING", "RubyCoreMethods", "flatten", "is_numeric", "type_name"]

MAX_STRING = 1_000_000


def type_name(value: Any) -> str:
    return rv.class_name(value)


class RubyCoreMethods:
    """Ruby core methods on DDL values; the interpreter supplies ``src`` and ``run_block``."""

    src: Source

    def fail(self, node: Node | int, message: str) -> DDLError:
        offset = node if isinstance(node, int) else node.offset
        return self.src.error(offset, message)

    def arity(self, node: Call, args: list[Any], low: int, high: int | None = None) -> None:
        high = low if high is None else high
        if low <= len(args) <= high:
            return
        expected = str(low) if low == high else f"{low}..{high}"
        raise self.fail(
            node,
            f"{node.name}: wrong number of arguments (given {len(args)}, expected {expected})",
        )

    def _limit(self, node: Node, text: str) -> str:
        if len(text) > MAX_STRING:
            raise self.fail(node, "string is too long for a DDL")
        return text

    def run_block(self, block: Block | None, scope: Any, values: Sequence[Any] = ()) -> Any:
        raise NotImplementedError  # pragma: no cover - the interpreter's

    def method(
        self, node: Call, recv: Any, args: list[Any], block: Block | None, scope: Any
    ) -> Any:
        name = node.name
        try:
            if name in ("each", "each_pair", "each_with_index", "map", "collect"):
                return self._iterate(node, recv, args, block, scope)
            if block is not None:
                raise self.fail(node, f"a block cannot be given to '{name}' here")
            if rv.is_string(recv):
                return self._string_method(node, recv, args)
            if isinstance(recv, Symbol):
                return self._symbol_method(node, recv, args)
            if isinstance(recv, list):
                return self._array_method(node, recv, args)
            if isinstance(recv, RubyHash):
                return self._hash_method(node, recv, args)
            if is_numeric(recv):
                return self._number_method(node, recv, args)
            return self._object_method(node, recv, args)
        except RubyTypeError as exc:
            raise self.fail(node, f"{name}: {exc}") from None

    def _no_method(self, node: Call, recv: Any) -> DDLError:
        return self.fail(
            node,
            f"undefined method '{node.name}' for {rv.inspect(recv)}:{type_name(recv)} "
            "(not supported in DDL files)",
        )

    def _iterate(
        self, node: Call, recv: Any, args: list[Any], block: Block | None, scope: Any
    ) -> Any:
        self.arity(node, args, 0)
        if block is None:
            raise self.fail(node, f"{node.name} needs a block: .{node.name} do |item| ... end")
        if isinstance(recv, RubyHash):
            items: list[Any] = [[k, v] for k, v in recv.items()]
        elif isinstance(recv, list):
            items = list(recv)
        else:
            raise self._no_method(node, recv)
        results = []
        for index, item in enumerate(items):
            values = [item, index] if node.name == "each_with_index" else [item]
            results.append(self.run_block(block, scope, values))
        return results if node.name in ("map", "collect") else recv

    def _object_method(self, node: Call, recv: Any, args: list[Any]) -> Any:
        name = node.name
        if name in ("to_s", "inspect", "nil?", "frozen?", "freeze", "dup", "itself", "to_a"):
            self.arity(node, args, 0)
            if name == "to_s":
                return rv.to_s(recv)
            if name == "inspect":
                return rv.inspect(recv)
            if name == "nil?":
                return recv is None
            if name == "frozen?":
                return True
            if name == "to_a" and recv is None:
                return []
            if name != "to_a":
                return recv
        raise self._no_method(node, recv)

    def _string_method(self, node: Call, recv: str, args: list[Any]) -> Any:
        name = node.name
        nullary: dict[str, Callable[[str], Any]] = {
            "to_s": lambda s: s,
            "to_str": lambda s: s,
            "dup": lambda s: s,
            "freeze": lambda s: s,
            "itself": lambda s: s,
            "to_sym": Symbol,
            "intern": Symbol,
            "capitalize": _capitalize,
            "upcase": str.upper,
            "downcase": str.lower,
            "swapcase": str.swapcase,
            "strip": lambda s: s.strip(" \t\n\v\f\r\0"),
            "lstrip": lambda s: s.lstrip(" \t\n\v\f\r\0"),
            "rstrip": lambda s: s.rstrip(" \t\n\v\f\r\0"),
            "chop": lambda s: s[:-2] if s.endswith("\r\n") else s[:-1],
            "reverse": lambda s: s[::-1],
            "length": len,
            "size": len,
            "empty?": lambda s: s == "",
            "to_i": rv.to_i,
            "to_f": rv.to_f,
            "inspect": rv.inspect,
        }
        if name in nullary:
            self.arity(node, args, 0)
            return nullary[name](recv)
        if name == "chomp":
            self.arity(node, args, 0, 1)
            if args:
                suffix = _string_arg(args[0])
                return recv[: -len(suffix)] if suffix and recv.endswith(suffix) else recv
            for ending in ("\r\n", "\n", "\r"):
                if recv.endswith(ending):
                    return recv[: -len(ending)]
            return recv
        if name in ("sub", "gsub"):
            self.arity(node, args, 2)
            return self._substitute(node, recv, args[0], args[1], every=name == "gsub")
        if name in ("ljust", "rjust", "center"):
            self.arity(node, args, 1, 2)
            width = args[0]
            pad = _string_arg(args[1]) if len(args) > 1 else " "
            if (
                not isinstance(width, int)
                or isinstance(width, bool)
                or not pad
                or width > MAX_STRING
            ):
                raise RubyTypeError("expects an Integer width and a non-empty pad string")
            return _justify(recv, width, pad, name)
        if name in ("start_with?", "end_with?", "include?"):
            self.arity(node, args, 1)
            other = _string_arg(args[0])
            if name == "start_with?":
                return recv.startswith(other)
            if name == "end_with?":
                return recv.endswith(other)
            return other in recv
        if name == "split":
            self.arity(node, args, 0, 1)
            if not args or args[0] is None or args[0] == " ":
                return recv.split()
            if isinstance(args[0], Regexp):
                parts = self._regex(node, args[0]).split(recv)
            else:
                parts = recv.split(_string_arg(args[0]))
            while parts and parts[-1] == "":
                parts.pop()
            return parts
        if name == "tr":
            self.arity(node, args, 2)
            return _tr(recv, _string_arg(args[0]), _string_arg(args[1]))
        raise self._no_method(node, recv)

    def _regex(self, node: Call, regexp: Regexp) -> Any:
        try:
            return compile_ruby_regex(regexp.source, regexp.options)
        except RubyRegexError as exc:
            raise self.fail(node, f"regex {rv.inspect(regexp)} cannot be used: {exc}") from None

    def _substitute(
        self, node: Call, recv: str, pattern: Any, replacement: Any, *, every: bool
    ) -> str:
        if isinstance(replacement, RubyHash):
            raise self.fail(
                node, f"{node.name} with a Hash replacement is not supported in DDL files"
            )
        repl = _string_arg(replacement)
        if isinstance(pattern, Regexp):
            regex = self._regex(node, pattern)
        elif rv.is_string(pattern):
            regex = re.compile(re.escape(pattern))
        else:
            raise RubyTypeError(f"wrong argument type {type_name(pattern)} (expected Regexp)")

        def expand(m: Any) -> str:
            return _expand_replacement(repl, m)

        return self._limit(node, regex.sub(expand, recv, count=0 if every else 1))

    def _symbol_method(self, node: Call, recv: Symbol, args: list[Any]) -> Any:
        name = node.name
        text = str.__str__(recv)
        if name in ("to_s", "id2name", "name"):
            self.arity(node, args, 0)
            return text
        if name in ("to_sym", "freeze", "dup", "itself"):
            self.arity(node, args, 0)
            return recv
        if name in ("capitalize", "upcase", "downcase", "swapcase"):
            self.arity(node, args, 0)
            return Symbol(self._string_method(node, text, args))
        if name in ("length", "size", "empty?", "inspect", "start_with?", "end_with?"):
            return self._string_method(node, text, args) if name != "inspect" else rv.inspect(recv)
        raise self._no_method(node, recv)

    def _number_method(self, node: Call, recv: Any, args: list[Any]) -> Any:
        name = node.name
        self.arity(node, args, 0)
        if name in ("to_s", "inspect"):
            return rv.to_s(recv)
        if name in ("to_i", "to_int", "truncate"):
            return int(recv)
        if name == "to_f":
            return float(recv)
        if name == "abs":
            return abs(recv)
        if name in ("freeze", "dup", "itself"):
            return recv
        raise self._no_method(node, recv)

    def _array_method(self, node: Call, recv: list[Any], args: list[Any]) -> Any:
        name = node.name
        if name == "join":
            self.arity(node, args, 0, 1)
            sep = _string_arg(args[0]) if args and args[0] is not None else ""
            return self._limit(node, rv.join(recv, sep))
        if name == "[]":
            self.arity(node, args, 1)
            index = args[0]
            if not isinstance(index, int) or isinstance(index, bool):
                raise RubyTypeError(f"no implicit conversion of {type_name(index)} into Integer")
            return recv[index] if -len(recv) <= index < len(recv) else None
        if name == "include?":
            self.arity(node, args, 1)
            return any(rv.eq(v, args[0]) for v in recv)
        self.arity(node, args, 0)
        simple: dict[str, Callable[[list[Any]], Any]] = {
            "first": lambda a: a[0] if a else None,
            "last": lambda a: a[-1] if a else None,
            "length": len,
            "size": len,
            "empty?": lambda a: not a,
            "dup": list,
            "to_a": lambda a: a,
            "freeze": lambda a: a,
            "flatten": flatten,
            "compact": lambda a: [v for v in a if v is not None],
            "reverse": lambda a: a[::-1],
            "uniq": _uniq,
            "to_s": rv.inspect,
            "inspect": rv.inspect,
        }
        if name in simple:
            return simple[name](recv)
        if name == "sort":
            if all(rv.is_string(v) for v in recv) or all(is_numeric(v) for v in recv):
                return sorted(recv)
            raise RubyTypeError("comparison of mixed Array elements failed")
        raise self._no_method(node, recv)

    def _hash_method(self, node: Call, recv: RubyHash, args: list[Any]) -> Any:
        name = node.name
        if name in ("[]", "fetch"):
            self.arity(node, args, 1, 2 if name == "fetch" else 1)
            if name == "fetch" and args[0] not in recv:
                if len(args) > 1:
                    return args[1]
                raise RubyTypeError(f"key not found: {rv.inspect(args[0])}")
            return recv.get(args[0])
        if name in ("key?", "has_key?", "include?", "member?"):
            self.arity(node, args, 1)
            return args[0] in recv
        if name == "merge":
            self.arity(node, args, 1)
            if not isinstance(args[0], RubyHash):
                raise RubyTypeError(f"no implicit conversion of {type_name(args[0])} into Hash")
            return RubyHash(recv.items() + args[0].items())
        self.arity(node, args, 0)
        if name == "keys":
            return recv.keys()
        if name == "values":
            return [v for _, v in recv.items()]
        if name in ("length", "size"):
            return len(recv)
        if name == "empty?":
            return len(recv) == 0
        if name in ("dup", "freeze", "to_h"):
            return recv
        if name == "to_a":
            return [[k, v] for k, v in recv.items()]
        if name in ("to_s", "inspect"):
            return rv.inspect(recv)
        raise self._no_method(node, recv)

    # ------------------------------------------------------------------ model


def is_numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flatten(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out.extend(flatten(value))
        else:
            out.append(value)
    return out


def _uniq(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for value in values:
        key = rv.hash_key(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _string_arg(value: Any) -> str:
    if not rv.is_string(value):
        raise RubyTypeError(f"no implicit conversion of {type_name(value)} into String")
    return str(value)


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:].lower()


def _justify(text: str, width: int, pad: str, how: str) -> str:
    missing = width - len(text)
    if missing <= 0:
        return text
    if how == "ljust":
        return text + (pad * missing)[:missing]
    if how == "rjust":
        return (pad * missing)[:missing] + text
    left = missing // 2
    right = missing - left
    return (pad * left)[:left] + text + (pad * right)[:right]


def _tr(text: str, source: str, target: str) -> str:
    def expand(spec: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(spec):
            if i + 2 < len(spec) and spec[i + 1] == "-":
                out.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
                i += 3
            else:
                out.append(spec[i])
                i += 1
        return "".join(out)

    if source.startswith("^") and len(source) > 1:
        raise RubyTypeError("tr with a negated set is not supported in DDL files")
    src_chars = expand(source)
    dst_chars = expand(target)
    if not dst_chars:
        return "".join(c for c in text if c not in src_chars)
    dst_chars = dst_chars + dst_chars[-1] * max(0, len(src_chars) - len(dst_chars))
    table = {ord(s): dst_chars[i] for i, s in reversed(list(enumerate(src_chars)))}
    return text.translate(table)


def _expand_replacement(repl: str, m: Any) -> str:
    """Ruby ``sub``/``gsub`` replacement: ``\\0 \\& \\1..\\9 \\k<name> \\` \\' \\\\``."""
    out = []
    i = 0
    while i < len(repl):
        ch = repl[i]
        if ch == "\\" and i + 1 < len(repl):
            nxt = repl[i + 1]
            if nxt.isdigit():
                group = int(nxt)
                if group <= (m.re.groups or 0):
                    out.append(m.group(group) or "")
                i += 2
                continue
            if nxt == "&":
                out.append(m.group(0))
                i += 2
                continue
            if nxt == "`":
                out.append(m.string[: m.start()])
                i += 2
                continue
            if nxt == "'":
                out.append(m.string[m.end() :])
                i += 2
                continue
            if nxt == "\\":
                out.append("\\")
                i += 2
                continue
            if nxt == "k" and repl.startswith("<", i + 2):
                close = repl.find(">", i + 3)
                if close > 0:
                    try:
                        out.append(m.group(repl[i + 3 : close]) or "")
                    except (IndexError, re.error):
                        raise RubyTypeError(
                            f"undefined group name reference: {repl[i + 3 : close]}"
                        ) from None
                    i = close + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)
