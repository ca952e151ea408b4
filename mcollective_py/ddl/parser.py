"""Parser for the Ruby subset DDL files use: tokens -> a small AST (never ``eval``).

Supported: method calls with or without parentheses (``input :x, :type => :string``),
``do |a, b| ... end`` and ``{ |a| ... }`` blocks, receivers and method chains
(``act.capitalize``, ``%w[a b].each do |act|``), local variable assignment, literals
(strings with interpolation, symbols, numbers, ``true false nil``, arrays, hashes with
``=>`` or ``key:`` labels, regexes), ``+ - * / %`` and indexing ``x[0]``; conditions:
``if``/``elsif``/``else``/``unless`` ... ``end``, the modifier forms (``stmt if cond``,
``stmt unless cond``), ``== != && || !`` (Ruby's precedence: ``!`` > ``* / %`` > ``+ -``
> ``== !=`` > ``&&`` > ``||``) and ``respond_to?(:name)`` (a call like any other).
Statements end at a newline or ``;`` unless the line ends in a comma, an operator,
``=>`` or an open bracket; a line starting with ``.method`` continues the previous one.

Anything else (``while``, ``case``, ``def``, constants, instance variables, ``<``, ``and``
...) is rejected with a ``file:line:column: unsupported Ruby construct ...`` error.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcollective_py.ddl.lexer import Interpolation, Source, Token, tokenize
from mcollective_py.errors import DDLError
from mcollective_py.rubytypes import Symbol

__all__ = [
    "ArrayLit",
    "Assign",
    "BinOp",
    "Block",
    "Call",
    "HashLit",
    "If",
    "Lit",
    "Logic",
    "Neg",
    "Node",
    "Not",
    "RegexLit",
    "Str",
    "Var",
    "parse_program",
]


@dataclass(frozen=True)
class Node:
    """Base of all AST nodes; ``offset`` locates it in the source for errors."""

    offset: int


@dataclass(frozen=True)
class Lit(Node):
    """A literal value: int, float, bool, None, str or Symbol."""

    value: object


@dataclass(frozen=True)
class Str(Node):
    """A string with ``#{}`` parts (``symbol=True`` for ``:"..#{}.."``)."""

    parts: tuple[str | tuple[Node, ...], ...]
    symbol: bool = False


@dataclass(frozen=True)
class RegexLit(Node):
    """A regex literal: Ruby source text and option letters."""

    source: str
    flags: str


@dataclass(frozen=True)
class ArrayLit(Node):
    """``[a, b]``, ``%w[]`` or ``%i[]``."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class HashLit(Node):
    """``{k => v, label: v}`` or bare trailing hash arguments."""

    pairs: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Var(Node):
    """A local variable (or block parameter) read."""

    name: str


@dataclass(frozen=True)
class Assign(Node):
    """``name = value``."""

    name: str
    value: Node


@dataclass(frozen=True)
class Block(Node):
    """A ``do |params| ... end`` or ``{ |params| ... }`` block."""

    params: tuple[str, ...]
    body: tuple[Node, ...]


@dataclass(frozen=True)
class Call(Node):
    """A method call; ``receiver`` is None for DSL calls like ``input``."""

    receiver: Node | None
    name: str
    args: tuple[Node, ...]
    block: Block | None


@dataclass(frozen=True)
class BinOp(Node):
    """``left op right`` for ``+ - * / %`` and the comparisons ``== !=``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Neg(Node):
    """Unary minus."""

    operand: Node


@dataclass(frozen=True)
class Not(Node):
    """``!operand``."""

    operand: Node


@dataclass(frozen=True)
class Logic(Node):
    """``left && right`` / ``left || right`` (short-circuit; the value is an operand)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class If(Node):
    """``if cond ... else ... end`` (``elsif`` nests an If in ``orelse``; ``unless`` and the
    modifier forms are written with it too)."""

    cond: Node
    then: tuple[Node, ...]
    orelse: tuple[Node, ...]


#: How deeply expressions, blocks and brackets may nest (real DDLs use fewer than 10).
MAX_NESTING = 40

_UNSUPPORTED_KEYWORDS = {
    "while": "loops other than .each",
    "until": "loops other than .each",
    "for": "loops other than .each",
    "case": "case expressions",
    "def": "method definitions",
    "class": "class definitions",
    "module": "module definitions",
    "begin": "begin/rescue blocks",
    "rescue": "begin/rescue blocks",
    "yield": "yield",
    "return": "return",
    "self": "self",
    "super": "super",
    "alias": "alias",
    "undef": "undef",
    "BEGIN": "BEGIN blocks",
    "END": "END blocks",
    "defined?": "defined?",
    "not": "boolean operators",
    "and": "boolean operators",
    "or": "boolean operators",
    "__FILE__": "__FILE__",
    "__LINE__": "__LINE__",
    "__ENCODING__": "__ENCODING__",
    "break": "break/next",
    "next": "break/next",
    "redo": "redo/retry",
    "retry": "redo/retry",
}

_VALUE_TOKEN_KINDS = frozenset(
    (
        "int",
        "float",
        "string",
        "symbol",
        "dsym",
        "regex",
        "words",
        "symbols",
        "label",
        "ident",
        "const",
        "ivar",
        "gvar",
    )
)


class _Parser:
    def __init__(
        self, src: Source, tokens: list[Token], scopes: list[set[str]], depth: int = 0
    ) -> None:
        self.src = src
        self.tokens = tokens
        self.pos = 0
        self.scopes = scopes
        self.depth = depth

    # ------------------------------------------------------------------ token helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.pos + k, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def is_op(self, value: str, tok: Token | None = None) -> bool:
        t = tok or self.tok
        return t.kind == "op" and t.value == value

    def is_kw(self, value: str, tok: Token | None = None) -> bool:
        t = tok or self.tok
        return t.kind == "kw" and t.value == value

    def error(self, tok: Token, message: str) -> DDLError:
        return self.src.error(tok.offset, message)

    def expected(self, what: str, tok: Token | None = None) -> DDLError:
        t = tok or self.tok
        return self.error(t, f"syntax error: expected {what}, found {t.describe()}")

    def expect_op(self, value: str, what: str | None = None) -> Token:
        if not self.is_op(value):
            raise self.expected(what or f"'{value}'")
        return self.advance()

    def is_local(self, name: str) -> bool:
        return any(name in scope for scope in self.scopes)

    def unsupported(self, tok: Token, what: str) -> DDLError:
        return self.error(
            tok,
            f"unsupported Ruby construct: {what} (a DDL may only use method calls, literals, "
            "local variables, string methods and .each loops)",
        )

    # ------------------------------------------------------------------ statements

    def parse_statements(self, closer: str, opener: Token | None = None) -> tuple[Node, ...]:
        """Statements up to ``closer`` ('end', '}' or 'eof'); the closer is not consumed."""
        body: list[Node] = []
        while True:
            while self.is_op(";"):
                self.advance()
            if self._at_closer(closer):
                return tuple(body)
            if self.tok.kind == "eof":
                raise self._missing_closer(closer, opener)
            body.append(self.parse_statement())
            tok = self.tok
            if self.is_op(";") or tok.nl_before or self._at_closer(closer) or tok.kind == "eof":
                continue
            if tok.kind == "kw" and tok.value in ("and", "or", "not", "rescue", "while", "until"):
                raise self.unsupported(tok, f"'{tok.value}' ({_UNSUPPORTED_KEYWORDS[tok.value]})")
            if tok.kind in _VALUE_TOKEN_KINDS:
                raise self.expected("',' between arguments, or a newline before the next statement")
            if tok.kind == "op" and tok.value in (")", "]", "}"):
                pair = {")": "(", "]": "[", "}": "{"}[tok.value]
                raise self.error(
                    tok,
                    f"syntax error: unexpected '{tok.value}' (there is no open '{pair}' to close)",
                )
            raise self.expected("a newline or ';' after the statement")

    def _at_closer(self, closer: str) -> bool:
        if closer == "eof":
            return self.tok.kind == "eof"
        if closer == "end":
            return self.is_kw("end")
        if closer == "branch":  # the body of an if/elsif branch
            return self.tok.kind == "kw" and self.tok.value in ("elsif", "else", "end")
        return self.is_op(closer)

    def _missing_closer(self, closer: str, opener: Token | None) -> DDLError:
        closer = "end" if closer == "branch" else closer
        if opener is None:
            return self.expected(f"'{closer}'")
        line, col = self.src.position(opener.offset)
        return self.expected(f"'{closer}' to close '{opener.value}' opened at {line}:{col}")

    def parse_statement(self) -> Node:
        tok = self.tok
        if tok.kind == "ident" and self.is_op("=", self.peek()):
            self.advance()
            self.advance()
            if self.tok.kind == "eof":
                raise self.expected("a value after '='")
            value = self.parse_expression(allow_do=True, allow_command=True)
            self.scopes[-1].add(tok.value)
            return self._modifiers(Assign(tok.offset, tok.value, value))
        if tok.kind == "kw" and tok.value == "end":
            raise self.error(
                tok, "syntax error: unexpected 'end' (there is no open 'do' block to close)"
            )
        if self.is_op("}"):
            raise self.error(tok, "syntax error: unexpected '}' (there is no open '{' to close)")
        if self.is_op(")"):
            raise self.error(tok, "syntax error: unexpected ')' (there is no open '(' to close)")
        if self.is_op("]"):
            raise self.error(tok, "syntax error: unexpected ']' (there is no open '[' to close)")
        node = self.parse_expression(allow_do=True, allow_command=True)
        if tok.kind == "ident" and self.is_op("=") and not self.tok.nl_before:
            raise self.error(self.tok, "syntax error: only a plain local variable can be assigned")
        return self._modifiers(node)

    def _modifiers(self, node: Node) -> Node:
        """``stmt if cond`` / ``stmt unless cond`` (any number, applied left to right)."""
        while (
            self.tok.kind == "kw" and self.tok.value in ("if", "unless") and not self.tok.nl_before
        ):
            kw = self.advance()
            if self.tok.kind == "eof" or self.tok.nl_before:
                raise self.expected(f"a condition after '{kw.value}'")
            cond = self.parse_expression()
            if kw.value == "unless":
                cond = Not(cond.offset, cond)
            node = If(kw.offset, cond, (node,), ())
        return node

    def parse_if(self) -> Node:
        """``if``/``unless`` cond [then] body {``elsif`` cond [then] body} [``else`` body] ``end``."""
        opener = self.advance()
        branches: list[tuple[Node, tuple[Node, ...]]] = []
        while True:
            if self.tok.kind == "eof":
                raise self.expected(f"a condition after '{self.tokens[self.pos - 1].value}'")
            cond = self.parse_expression()
            if self.is_kw("then"):
                self.advance()
            elif self.is_op(";"):
                self.advance()
            elif not self.tok.nl_before:
                raise self.expected("'then' or a newline after the condition")
            branches.append((cond, self.parse_statements("branch", opener)))
            if self.is_kw("elsif"):
                if opener.value == "unless":
                    raise self.error(self.tok, "syntax error: 'unless' has no 'elsif'")
                self.advance()
                continue
            break
        orelse: tuple[Node, ...] = ()
        if self.is_kw("else"):
            self.advance()
            orelse = self.parse_statements("end", opener)
        if not self.is_kw("end"):
            raise self._missing_closer("end", opener)
        self.advance()
        for cond, body in reversed(branches[1:]):
            orelse = (If(cond.offset, cond, body, orelse),)
        cond, body = branches[0]
        if opener.value == "unless":
            cond = Not(cond.offset, cond)
        return If(opener.offset, cond, body, orelse)

    # ------------------------------------------------------------------ expressions

    def parse_expression(self, *, allow_do: bool = False, allow_command: bool = False) -> Node:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(
                self.tok, f"nesting deeper than {MAX_NESTING} levels is not supported in a DDL"
            )
        try:
            node = self._parse_logic(("||", "&&"), allow_do=allow_do, allow_command=allow_command)
            self._reject_operator()
            return node
        finally:
            self.depth -= 1

    def _parse_logic(self, ops: tuple[str, ...], *, allow_do: bool, allow_command: bool) -> Node:
        """``||`` binds looser than ``&&``, which binds looser than ``== !=``."""
        if not ops:
            return self._parse_equality(allow_do=allow_do, allow_command=allow_command)
        node = self._parse_logic(ops[1:], allow_do=allow_do, allow_command=allow_command)
        while self.is_op(ops[0]) and not self.tok.nl_before:
            op = self.advance()
            right = self._parse_logic(ops[1:], allow_do=allow_do, allow_command=False)
            node = Logic(op.offset, op.value, node, right)
        return node

    def _parse_equality(self, *, allow_do: bool, allow_command: bool) -> Node:
        node = self._parse_additive(allow_do=allow_do, allow_command=allow_command)
        if self.tok.kind == "op" and self.tok.value in ("==", "!=") and not self.tok.nl_before:
            op = self.advance()
            right = self._parse_additive(allow_do=allow_do, allow_command=False)
            node = BinOp(op.offset, op.value, node, right)
        return node

    def _parse_additive(self, *, allow_do: bool, allow_command: bool) -> Node:
        node = self.parse_term(allow_do=allow_do, allow_command=allow_command)
        while self.tok.kind == "op" and self.tok.value in ("+", "-") and not self.tok.nl_before:
            op = self.advance()
            right = self.parse_term(allow_do=allow_do)
            node = BinOp(op.offset, op.value, node, right)
        return node

    def _reject_operator(self) -> None:
        tok = self.tok
        if tok.kind == "op" and not tok.nl_before and tok.value in (
            "==", "!=", "===", "=~", "!~", "<", ">", "<=", ">=", "<=>", "&&", "||", "?",
            "..", "...", "**", "<<", ">>", "&", "|", "^", "+=", "-=", "*=", "/=", "||=", "&&=",
        ):  # fmt: skip
            raise self.unsupported(tok, f"operator '{tok.value}'")

    def parse_term(self, *, allow_do: bool = False, allow_command: bool = False) -> Node:
        node = self.parse_unary(allow_do=allow_do, allow_command=allow_command)
        while (
            self.tok.kind == "op" and self.tok.value in ("*", "/", "%") and not self.tok.nl_before
        ):
            op = self.advance()
            right = self.parse_unary(allow_do=allow_do)
            node = BinOp(op.offset, op.value, node, right)
        return node

    def parse_unary(self, *, allow_do: bool = False, allow_command: bool = False) -> Node:
        tok = self.tok
        if self.is_op("-"):
            self.advance()
            nxt = self.tok
            if nxt.kind in ("int", "float") and nxt.offset == tok.offset + 1:
                self.advance()
                return self.parse_postfix(Lit(tok.offset, -nxt.value), allow_do=allow_do)
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.error(
                    tok, f"nesting deeper than {MAX_NESTING} levels is not supported in a DDL"
                )
            try:
                return Neg(tok.offset, self.parse_unary(allow_do=allow_do))
            finally:
                self.depth -= 1
        if self.is_op("+"):
            raise self.unsupported(tok, "unary '+'")
        if self.is_op("!"):
            self.advance()
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.error(
                    tok, f"nesting deeper than {MAX_NESTING} levels is not supported in a DDL"
                )
            try:
                return Not(tok.offset, self.parse_unary(allow_do=allow_do))
            finally:
                self.depth -= 1
        return self.parse_postfix(
            self.parse_primary(allow_do=allow_do, allow_command=allow_command), allow_do=allow_do
        )

    def parse_postfix(self, node: Node, *, allow_do: bool) -> Node:
        while True:
            tok = self.tok
            if self.is_op(".") or (self.is_op("&") and self.is_op(".", self.peek())):
                if self.is_op("&"):
                    raise self.unsupported(tok, "safe navigation '&.'")
                self.advance()
                name_tok = self.tok
                if name_tok.kind not in ("ident", "const", "kw") and not (name_tok.kind == "label"):
                    raise self.expected("a method name after '.'")
                if name_tok.kind == "label":
                    raise self.expected("a method name after '.'")
                self.advance()
                args: tuple[Node, ...] = ()
                if self.is_op("(") and not self.tok.space_before:
                    args = self.parse_paren_args()
                block = self.parse_block_if_any(allow_do=allow_do)
                node = Call(name_tok.offset, node, name_tok.value, args, block)
                continue
            if self.is_op("::"):
                raise self.unsupported(tok, "constant lookup '::'")
            if self.is_op("[") and not tok.space_before and not tok.nl_before:
                self.advance()
                index_args = self.parse_arg_list("]")
                node = Call(tok.offset, node, "[]", index_args, None)
                continue
            return node

    def parse_block_if_any(self, *, allow_do: bool, allow_brace: bool = True) -> Block | None:
        tok = self.tok
        if allow_brace and self.is_op("{") and not tok.nl_before:
            self.advance()
            params = self.parse_block_params()
            self.scopes.append(set(params))
            try:
                body = self.parse_statements("}", tok)
            finally:
                self.scopes.pop()
            self.advance()
            return Block(tok.offset, params, body)
        if allow_do and self.is_kw("do") and not tok.nl_before:
            self.advance()
            params = self.parse_block_params()
            self.scopes.append(set(params))
            try:
                body = self._statements_until_end(tok)
            finally:
                self.scopes.pop()
            return Block(tok.offset, params, body)
        return None

    def _statements_until_end(self, opener: Token) -> tuple[Node, ...]:
        body = self.parse_statements("end", opener)
        self.advance()
        return body

    def parse_block_params(self) -> tuple[str, ...]:
        if self.is_op("||"):
            self.advance()
            return ()
        if not self.is_op("|"):
            return ()
        self.advance()
        params: list[str] = []
        while True:
            tok = self.tok
            if tok.kind != "ident":
                if params and self.is_op("|"):
                    break
                if self.is_op("*") or self.is_op("&") or self.is_op("("):
                    raise self.unsupported(tok, "splat or destructuring block parameters")
                raise self.expected("a block parameter name")
            params.append(tok.value)
            self.advance()
            if self.is_op(","):
                self.advance()
                continue
            break
        self.expect_op("|", "'|' to close the block parameters")
        return tuple(params)

    # ------------------------------------------------------------------ primaries

    def parse_primary(self, *, allow_do: bool = False, allow_command: bool = False) -> Node:
        tok = self.tok
        kind = tok.kind
        if kind in ("int", "float"):
            self.advance()
            return Lit(tok.offset, tok.value)
        if kind == "string":
            return self.parse_string()
        if kind == "symbol":
            self.advance()
            return Lit(tok.offset, Symbol(tok.value))
        if kind == "dsym":
            self.advance()
            return self._str_node(tok, symbol=True)
        if kind == "regex":
            self.advance()
            source, flags = tok.value
            return RegexLit(tok.offset, source, flags)
        if kind in ("words", "symbols"):
            self.advance()
            items = tuple(Lit(tok.offset, w if kind == "words" else Symbol(w)) for w in tok.value)
            return ArrayLit(tok.offset, items)
        if kind == "kw":
            if tok.value in ("true", "false", "nil"):
                self.advance()
                return Lit(tok.offset, {"true": True, "false": False, "nil": None}[tok.value])
            if tok.value in ("if", "unless"):
                return self.parse_if()
            if tok.value in ("do", "end", "then", "else", "elsif", "when", "in", "ensure"):
                raise self.expected("a value", tok)
            raise self.unsupported(
                tok, f"'{tok.value}' ({_UNSUPPORTED_KEYWORDS.get(tok.value, 'keyword')})"
            )
        if kind == "const":
            raise self.unsupported(tok, f"constant '{tok.value}'")
        if kind in ("ivar", "gvar"):
            raise self.unsupported(tok, f"variable '{tok.value}'")
        if kind == "label":
            raise self.error(
                tok,
                f"syntax error: unexpected label '{tok.value}:' (key: value pairs belong in a method call's arguments or a {{}} hash)",
            )
        if kind == "ident":
            return self.parse_identifier(allow_do=allow_do, allow_command=allow_command)
        if kind == "op":
            if tok.value == "[":
                self.advance()
                return ArrayLit(tok.offset, self.parse_arg_list("]", allow_pairs=False))
            if tok.value == "{":
                return self.parse_hash()
            if tok.value == "(":
                self.advance()
                if self.is_op(")"):
                    self.advance()
                    return Lit(tok.offset, None)
                inner = self.parse_expression(allow_do=True, allow_command=True)
                while self.is_op(";"):
                    self.advance()
                self.expect_op(")", "')' to close '('")
                return inner
            if tok.value == "->":
                raise self.unsupported(tok, "lambdas")
        if kind == "eof":
            raise self.expected("a value")
        raise self.expected("a value")

    def parse_string(self) -> Node:
        first = self.tok
        node = self._str_node(self.advance(), symbol=False)
        # adjacent literals concatenate: "a" "b"
        while self.tok.kind == "string" and not self.tok.nl_before:
            if self.is_op(":", self.peek()) and self.peek().offset == self.tok.end:
                break
            nxt = self._str_node(self.advance(), symbol=False)
            node = _concat(first.offset, node, nxt)
        return node

    def _str_node(self, tok: Token, *, symbol: bool) -> Node:
        parts: list[str | tuple[Node, ...]] = []
        for part in tok.value:
            if isinstance(part, Interpolation):
                parts.append(self.parse_interpolation(part))
            else:
                parts.append(part)
        if all(isinstance(p, str) for p in parts):
            text = "".join(p for p in parts if isinstance(p, str))
            if symbol:
                return Lit(tok.offset, Symbol(text))
            return Lit(tok.offset, text)
        return Str(tok.offset, tuple(parts), symbol)

    def parse_interpolation(self, interp: Interpolation) -> tuple[Node, ...]:
        sub = _Parser(self.src, interp.tokens, self.scopes, self.depth)
        return sub.parse_statements("eof")

    def parse_identifier(self, *, allow_do: bool, allow_command: bool) -> Node:
        tok = self.advance()
        name = tok.value
        nxt = self.tok
        if self.is_op("(") and not nxt.space_before:
            args = self.parse_paren_args()
            block = self.parse_block_if_any(allow_do=allow_do)
            return Call(tok.offset, None, name, args, block)
        if self.is_local(name):
            return Var(tok.offset, name)
        if allow_command and self._starts_command_arg(nxt):
            args = self.parse_command_args()
            if self.is_op("{") and not self.tok.nl_before:
                raise self.error(
                    self.tok,
                    "syntax error: a { } block cannot follow arguments without parentheses; use do ... end",
                )
            block = self.parse_block_if_any(allow_do=allow_do, allow_brace=False)
            return Call(tok.offset, None, name, args, block)
        block = self.parse_block_if_any(allow_do=allow_do)
        return Call(tok.offset, None, name, (), block)

    def _starts_command_arg(self, tok: Token) -> bool:
        if tok.nl_before or not tok.space_before:
            return False
        if tok.kind in _VALUE_TOKEN_KINDS:
            return True
        if tok.kind == "kw":
            return tok.value in (
                "true",
                "false",
                "nil",
                "self",
                "not",
                "defined?",
                "__FILE__",
                "__LINE__",
            )
        if tok.kind == "op":
            after = self.peek()
            if tok.value in ("[", "(", "->", "::"):
                return True
            if tok.value in ("-", "*", "&", "!", ":") and after.offset == tok.offset + 1:
                return True
        return False

    # ------------------------------------------------------------------ argument lists

    def parse_paren_args(self) -> tuple[Node, ...]:
        self.expect_op("(")
        return self.parse_arg_list(")")

    def parse_arg_list(self, closer: str, *, allow_pairs: bool = True) -> tuple[Node, ...]:
        """Comma separated values up to ``closer`` (consumed); newlines are free inside."""
        opener = self.tokens[self.pos - 1]
        line, col = self.src.position(opener.offset)
        args: list[Node] = []
        pairs: list[tuple[Node, Node]] = []
        while True:
            if self.is_op(closer):
                self.advance()
                break
            if self.tok.kind == "eof":
                raise self.expected(f"'{closer}' to close '{opener.value}' opened at {line}:{col}")
            self._collect_arg(args, pairs, allow_pairs=allow_pairs, allow_command=False)
            if self.is_op(","):
                self.advance()
                continue
            if self.is_op(closer):
                self.advance()
                break
            raise self.expected(
                f"',' or '{closer}' to close '{opener.value}' opened at {line}:{col}"
            )
        if pairs:
            args.append(HashLit(pairs[0][0].offset, tuple(pairs)))
        return tuple(args)

    def _collect_arg(
        self,
        args: list[Node],
        pairs: list[tuple[Node, Node]],
        *,
        allow_pairs: bool,
        allow_command: bool,
    ) -> None:
        """Parse one argument: a positional value or a ``key => value`` / ``key: value`` pair."""
        tok = self.tok
        if tok.kind in ("op",) and tok.value in ("*", "**", "&") and self.peek().offset == tok.end:
            raise self.unsupported(tok, f"'{tok.value}' argument splat / block pass")
        if tok.kind == "label" or (
            tok.kind == "string" and self.is_op(":", self.peek()) and self.peek().offset == tok.end
        ):
            if not allow_pairs:
                raise self.error(
                    tok, "syntax error: unexpected 'key:' label inside [ ] (use { } for a hash)"
                )
            if tok.kind == "label":
                self.advance()
                key: Node = Lit(tok.offset, Symbol(tok.value))
                after = f"'{tok.value}:'"
            else:
                key = self._str_node(self.advance(), symbol=True)
                self.advance()
                after = "':'"
            pairs.append((key, self._pair_value(after)))
            return
        if self.tok.kind == "eof":
            raise self.expected("an argument")
        value = self.parse_expression(allow_do=not allow_command, allow_command=allow_command)
        if allow_pairs and self.is_op("=>"):
            self.advance()
            pairs.append((value, self._pair_value("'=>'")))
            return
        if pairs:
            raise self.error(
                tok, "syntax error: positional arguments must come before key => value pairs"
            )
        args.append(value)

    def _hash_pair(self, start: Token) -> tuple[Node, Node]:
        collected: list[tuple[Node, Node]] = []
        positional: list[Node] = []
        self._collect_arg(positional, collected, allow_pairs=True, allow_command=False)
        if positional or not collected:
            raise self.expected(
                "'=>' after the hash key" if positional else "'key => value' in the hash",
                self.tok if positional else start,
            )
        return collected[0]

    def parse_command_args(self) -> tuple[Node, ...]:
        args: list[Node] = []
        pairs: list[tuple[Node, Node]] = []
        while True:
            self._collect_arg(args, pairs, allow_pairs=True, allow_command=True)
            if self.is_op(",") and not self.tok.nl_before:
                self.advance()
                continue
            break
        if pairs:
            args.append(HashLit(pairs[0][0].offset, tuple(pairs)))
        return tuple(args)

    def _pair_value(self, after: str) -> Node:
        if self.tok.kind == "eof" or (
            self.tok.kind == "op" and self.tok.value in (",", ")", "}", "]")
        ):
            raise self.expected(f"a value after {after}")
        return self.parse_expression(allow_do=False, allow_command=False)

    def parse_hash(self) -> Node:
        opener = self.advance()
        pairs: list[tuple[Node, Node]] = []
        line, col = self.src.position(opener.offset)
        while True:
            if self.is_op("}"):
                self.advance()
                return HashLit(opener.offset, tuple(pairs))
            if self.tok.kind == "eof":
                raise self.expected(f"'}}' to close '{{' opened at {line}:{col}")
            start = self.tok
            pairs.append(self._hash_pair(start))
            if self.is_op(","):
                self.advance()
                continue
            if self.is_op("}"):
                continue
            raise self.expected(f"',' or '}}' to close '{{' opened at {line}:{col}")


def _concat(offset: int, a: Node, b: Node) -> Node:
    def parts(n: Node) -> tuple[str | tuple[Node, ...], ...]:
        if isinstance(n, Lit):
            return (str(n.value),)
        assert isinstance(n, Str)
        return n.parts

    merged = parts(a) + parts(b)
    if all(isinstance(p, str) for p in merged):
        return Lit(offset, "".join(p for p in merged if isinstance(p, str)))
    return Str(offset, merged, False)


def parse_program(src: Source) -> tuple[Node, ...]:
    """Parse a whole DDL source into its top-level statements.

    Raises :class:`~mcollective_py.errors.DDLError` (``file:line:col: ...``) on the
    first syntax error or unsupported construct.
    """
    tokens = tokenize(src)
    parser = _Parser(src, tokens, [set()])
    return parser.parse_statements("eof")
