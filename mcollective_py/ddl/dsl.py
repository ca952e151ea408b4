"""Evaluate a parsed DDL the way Ruby's ``MCollective::DDL`` classes do (without eval).

:func:`parse_ddl` is the entry point: text -> tokens -> AST -> model.  The DSL methods
(``metadata``, ``requires``, ``usage``, ``action``, ``input``, ``output``, ``display``,
``summarize``, ``aggregate``, ``dataquery``, ``discovery``, ``capabilities``) follow
``ddl/base.rb``, ``ddl/agentddl.rb``, ``ddl/dataddl.rb`` and ``ddl/discoveryddl.rb`` of
MCollective 2.12.5: same required properties, same checks in the same order, same
messages (each followed by what to do about it), same results (a repeated ``action``
adds to the first one; a repeated ``input`` replaces it in place; inside ``summarize``
any unknown call such as ``summary(:x)`` is an aggregate function).

Ruby-side plumbing needed by public agents is also evaluated: local variables, arrays
and hashes, ``.each``/``.each_with_index``/``.map`` loops with block parameters, and
common String/Symbol methods (``capitalize upcase downcase swapcase sub gsub strip
to_s to_sym ...``) used inside ``#{}`` interpolation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcollective_py.ddl.lexer import Source
from mcollective_py.ddl.model import (
    DDL,
    Action,
    AgentDDL,
    AggregateCall,
    DataDDL,
    DataQuery,
    DiscoveryDDL,
    Input,
    Metadata,
    Output,
    PluginDDL,
)
from mcollective_py.ddl.parser import (
    ArrayLit,
    Assign,
    BinOp,
    Block,
    Call,
    HashLit,
    If,
    Lit,
    Logic,
    Neg,
    Node,
    Not,
    RegexLit,
    Str,
    Var,
    parse_program,
)
from mcollective_py.ddl.rubycore import MAX_STRING, RubyCoreMethods, flatten, is_numeric, type_name
from mcollective_py.errors import DDLError
from mcollective_py.ruby import values as rv
from mcollective_py.ruby.regex import RubyRegexError, compile_ruby_regex
from mcollective_py.ruby.values import RubyHash, RubyTypeError
from mcollective_py.rubytypes import RE_EXTENDED, RE_IGNORECASE, RE_MULTILINE, Regexp, Symbol

__all__ = ["MCOLLECTIVE_VERSION", "parse_ddl"]

#: The MCollective version ``requires :mcollective => ".."`` is checked against.
MCOLLECTIVE_VERSION = "2.12.5"

#: Aggregate plugins Ruby finds on a Debian client (``PluginManager.find("aggregate")``);
#: outside ``summarize`` only these names act as aggregate functions.
CORE_AGGREGATES = ("average", "sum", "summary")

_METADATA_KEYS = ("name", "description", "author", "license", "version", "url", "timeout")
_CAPABILITIES = ("classes", "facts", "identity", "agents", "compound")
_MAX_DEPTH = 100


# What Ruby 2.12.5's DDL objects answer ``respond_to?`` with: the public methods of each DDL
# class beyond Object's (DDL::AgentDDL.public_instance_methods - Object.public_instance_methods),
# and Object's own public methods (Ruby 3.1 with MCollective loaded).
_BASE_METHODS = (
    "entities findddlfile help input loadddlfile meta metadata output pluginname plugintype "
    "requirements requires template_for_plugintype usage validate_input_argument "
    "validate_requirements"
).split()
_RESPONDS_TO = {
    "base": frozenset(_BASE_METHODS),
    "agent": frozenset(
        _BASE_METHODS
        + (
            "action action_interface actions aggregate is_function? method_missing "
            "set_default_input_arguments summarize symbolize_basic_input_arguments "
            "validate_rpc_request"
        ).split()
    ),
    "data": frozenset(_BASE_METHODS + ["dataquery", "dataquery_interface"]),
    "discovery": frozenset(_BASE_METHODS + ["capabilities", "discovery", "discovery_interface"]),
}
_OBJECT_METHODS = frozenset(
    (
        "! != !~ <=> == === =~ __id__ __send__ class clone define_singleton_method display dup "
        "enum_for eql? equal? extend freeze frozen? hash inspect instance_eval instance_exec "
        "instance_of? instance_variable_defined? instance_variable_get instance_variable_set "
        "instance_variables is_a? itself kind_of? method methods nil? object_id pretty_inspect "
        "pretty_print pretty_print_cycle pretty_print_inspect pretty_print_instance_variables "
        "private_methods protected_methods public_method public_methods public_send "
        "remove_instance_variable respond_to? send singleton_class singleton_method "
        "singleton_methods systemu taint tainted? tap then to_enum to_json to_s trust untaint "
        "untrust untrusted? yield_self"
    ).split()
)


class _Scope:
    def __init__(self, parent: _Scope | None = None) -> None:
        self.vars: dict[str, Any] = {}
        self.parent = parent

    def find(self, name: str) -> _Scope | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope
            scope = scope.parent
        return None


@dataclass
class _Entity:
    key: Any
    description: Any
    inputs: dict[Any, Input] = field(default_factory=dict)
    outputs: dict[Any, Output] = field(default_factory=dict)
    display: str = "failed"
    aggregates: list[AggregateCall] | None = None
    capabilities: list[str] = field(default_factory=list)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _sym(text: str) -> Symbol:
    return Symbol(text)


class _Interpreter(RubyCoreMethods):
    def __init__(self, src: Source, kind: str, name: str) -> None:
        self.src = src
        self.kind = kind
        self.name = name
        self.meta: RubyHash | None = None
        self.usage: Any = ""
        self.requirements: dict[str, str] = {}
        self.entities: dict[Any, _Entity] = {}
        self.current: _Entity | None = None
        self.aggregating = False
        self.depth = 0

    # ------------------------------------------------------------------ errors

    def run(self, program: Sequence[Node]) -> None:
        scope = _Scope()
        for stmt in program:
            self.eval(stmt, scope)

    def eval_body(self, body: Sequence[Node], scope: _Scope) -> Any:
        value = None
        for stmt in body:
            value = self.eval(stmt, scope)
        return value

    def eval(self, node: Node, scope: _Scope) -> Any:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail(node, "the DDL nests blocks or expressions too deeply")
        try:
            return self._eval(node, scope)
        finally:
            self.depth -= 1

    def _eval(self, node: Node, scope: _Scope) -> Any:
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Str):
            text = "".join(
                part if isinstance(part, str) else rv.to_s(self.eval_body(part, scope))
                for part in node.parts
            )
            return Symbol(text) if node.symbol else text
        if isinstance(node, RegexLit):
            options = 0
            for flag, bit in (("i", RE_IGNORECASE), ("x", RE_EXTENDED), ("m", RE_MULTILINE)):
                if flag in node.flags:
                    options |= bit
            regexp = Regexp(node.source, options)
            try:
                compile_ruby_regex(node.source, options)
            except RubyRegexError as exc:
                if not exc.unsupported:  # Ruby refuses an invalid literal when it parses the file
                    raise self.fail(
                        node, f"invalid regex literal {rv.inspect(regexp)}: {exc}"
                    ) from None
            return regexp
        if isinstance(node, ArrayLit):
            return [self.eval(item, scope) for item in node.items]
        if isinstance(node, HashLit):
            result = RubyHash()
            for key, value in node.pairs:
                result[self.eval(key, scope)] = self.eval(value, scope)
            return result
        if isinstance(node, Var):
            found = scope.find(node.name)
            return found.vars[node.name] if found else None
        if isinstance(node, Assign):
            value = self.eval(node.value, scope)
            target = scope.find(node.name) or scope
            target.vars[node.name] = value
            return value
        if isinstance(node, Neg):
            value = self.eval(node.operand, scope)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return -value
            raise self.fail(node, f"undefined method '-@' for {rv.inspect(value)}")
        if isinstance(node, BinOp):
            return self.binop(node, self.eval(node.left, scope), self.eval(node.right, scope))
        if isinstance(node, Call):
            return self.call(node, scope)
        if isinstance(node, If):
            branch = node.then if rv.truthy(self.eval(node.cond, scope)) else node.orelse
            return self.eval_body(branch, scope)
        if isinstance(node, Not):
            return not rv.truthy(self.eval(node.operand, scope))
        if isinstance(node, Logic):
            left = self.eval(node.left, scope)
            if rv.truthy(left) == (node.op == "||"):
                return left
            return self.eval(node.right, scope)
        raise self.fail(node, f"cannot evaluate {type(node).__name__}")  # pragma: no cover

    def binop(self, node: BinOp, left: Any, right: Any) -> Any:
        op = node.op
        if op == "==":
            return rv.eq(left, right)
        if op == "!=":
            return not rv.eq(left, right)
        try:
            if rv.is_string(left):
                if op == "+":
                    if not rv.is_string(right):
                        raise RubyTypeError(
                            f"no implicit conversion of {type_name(right)} into String"
                        )
                    return self._limit(node, left + right)
                if op == "*":
                    if not isinstance(right, int) or isinstance(right, bool) or right < 0:
                        raise RubyTypeError("String * needs a non-negative Integer")
                    if len(left) * right > MAX_STRING:
                        raise self.fail(node, "string is too long for a DDL")
                    return left * right
                if op == "%":
                    args = right if isinstance(right, list) else [right]
                    return rv.sprintf(left, args)
            if isinstance(left, list) and op == "+":
                if not isinstance(right, list):
                    raise RubyTypeError(f"no implicit conversion of {type_name(right)} into Array")
                return left + right
            if is_numeric(left) and is_numeric(right):
                if op == "+":
                    return left + right
                if op == "-":
                    return left - right
                if op == "*":
                    return left * right
                if op in "/%":
                    if right == 0 and isinstance(right, int) and isinstance(left, int):
                        raise RubyTypeError("divided by 0")
                    if op == "/":
                        if isinstance(left, int) and isinstance(right, int):
                            return left // right
                        return left / right if right else float("nan")
                    return left % right
        except RubyTypeError as exc:
            raise self.fail(node, f"{exc} (in '{op}')") from None
        except (OverflowError, ZeroDivisionError) as exc:
            raise self.fail(node, str(exc)) from None
        raise self.fail(node, f"undefined method '{op}' for {rv.inspect(left)}")

    def call(self, node: Call, scope: _Scope) -> Any:
        if node.receiver is not None:
            receiver = self.eval(node.receiver, scope)
            args = [self.eval(a, scope) for a in node.args]
            return self.method(node, receiver, args, node.block, scope)
        args = [self.eval(a, scope) for a in node.args]
        if node.name == "respond_to?":
            return self.respond_to(node, args)
        handler = self._dsl_methods().get(node.name)
        if handler is not None:
            return handler(node, args, node.block, scope)
        if self.kind == "agent" and (self.aggregating or node.name in CORE_AGGREGATES):
            return RubyHash([(_sym("function"), _sym(node.name)), (_sym("args"), args)])
        known = ", ".join(sorted(self._dsl_methods()))
        if not node.args and node.block is None:
            raise self.fail(
                node,
                f"undefined local variable or method '{node.name}' ({_article(self.kind)} {self.kind} DDL may call: {known})",
            )
        raise self.fail(
            node,
            f"undefined method '{node.name}' ({_article(self.kind)} {self.kind} DDL may call: {known})",
        )

    def respond_to(self, node: Call, args: list[Any]) -> bool:
        """``respond_to?(:name)`` as Ruby's DDL object answers it (public methods only)."""
        self.arity(node, args, 1, 2)
        name = args[0]
        if not isinstance(name, str):
            raise self.fail(node, f"respond_to?: {rv.inspect(name)} is not a symbol nor a string")
        text = str.__str__(name)
        return text in _RESPONDS_TO.get(self.kind, _RESPONDS_TO["base"]) or text in _OBJECT_METHODS

    def _dsl_methods(self) -> dict[str, Callable[[Call, list[Any], Block | None, _Scope], Any]]:
        methods: dict[str, Callable[[Call, list[Any], Block | None, _Scope], Any]] = {
            "metadata": self.dsl_metadata,
            "requires": self.dsl_requires,
            "usage": self.dsl_usage,
            "input": self.dsl_input,
            "output": self.dsl_output,
        }
        if self.kind == "agent":
            methods.update(
                action=self.dsl_action,
                display=self.dsl_display,
                summarize=self.dsl_summarize,
                aggregate=self.dsl_aggregate,
            )
        elif self.kind == "data":
            methods["dataquery"] = self.dsl_dataquery
        elif self.kind == "discovery":
            methods.update(discovery=self.dsl_discovery, capabilities=self.dsl_capabilities)
        return methods

    def run_block(self, block: Block | None, scope: _Scope, values: Sequence[Any] = ()) -> Any:
        if block is None:
            return None
        inner = _Scope(scope)
        params = block.params
        vals = list(values)
        if len(params) > 1 and len(vals) == 1 and isinstance(vals[0], list):
            vals = list(vals[0])
        for i, param in enumerate(params):
            inner.vars[param] = vals[i] if i < len(vals) else None
        return self.eval_body(block.body, inner)

    # ------------------------------------------------------------------ DSL: base

    def dsl_metadata(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 1)
        meta = args[0]
        if not isinstance(meta, RubyHash):
            raise self.fail(node, "metadata expects :name => .., :description => .. pairs")
        for key in _METADATA_KEYS:
            if _sym(key) not in meta:
                raise self.fail(
                    node, f"Metadata needs a :{key} property; add :{key} => ... to the metadata"
                )
        for key in _METADATA_KEYS[:-1]:
            value = meta.get(_sym(key))
            if not rv.is_string(value):
                raise self.fail(
                    node, f"metadata :{key} must be a String, not {rv.inspect(value)}; quote it"
                )
        timeout = meta.get(_sym("timeout"))
        if not is_numeric(timeout):
            raise self.fail(
                node, f"metadata :timeout must be a number of seconds, not {rv.inspect(timeout)}"
            )
        self.meta = meta
        return meta

    def dsl_requires(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 1)
        req = args[0]
        if not isinstance(req, RubyHash):
            raise self.fail(node, "Requirement should be a hash in the form :item => 'requirement'")
        for key in req.keys():
            if not rv.eq(key, _sym("mcollective")):
                raise self.fail(
                    node,
                    f"Requirement {rv.to_s(key)} is not a valid requirement, only mcollective is supported",
                )
            value = req.get(key)
            if not rv.is_string(value):
                raise self.fail(
                    node, f"requires :mcollective needs a version String, not {rv.inspect(value)}"
                )
            self.requirements["mcollective"] = value
        wanted = self.requirements.get("mcollective")
        if wanted is not None and version_compare(MCOLLECTIVE_VERSION, wanted) < 0:
            raise self.fail(
                node,
                f"{self.kind.capitalize()} plugin '{self.name}' requires MCollective version "
                f"{wanted} or newer (this tool speaks {MCOLLECTIVE_VERSION})",
            )
        return True

    def dsl_usage(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 1)
        if not rv.is_string(args[0]):
            raise self.fail(node, f"usage expects a String, not {rv.inspect(args[0])}")
        self.usage = args[0]
        return args[0]

    def dsl_input(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 2)
        argument, props = args
        label = rv.inspect(argument)
        if self.kind == "agent" and not (isinstance(props, RubyHash) and _sym("optional") in props):
            raise self.fail(
                node,
                f"Input needs a :optional property (input {label}); add :optional => true or false",
            )
        if self.kind == "data" and not rv.eq(argument, _sym("query")):
            raise self.fail(
                node, f"The only valid input name for a data query is 'query' (got {label})"
            )
        entity = self.current
        if entity is None:
            where = (
                "an action block"
                if self.kind == "agent"
                else ("a dataquery block" if self.kind == "data" else "an entity")
            )
            raise self.fail(
                node,
                f"Cannot figure out what entity input {rv.to_s(argument)} belongs to; declare inputs inside {where}",
            )
        if not isinstance(props, RubyHash):
            raise self.fail(node, f"input {label} expects :prompt => .., :type => .. pairs")
        for key in ("prompt", "description", "type"):
            if _sym(key) not in props:
                raise self.fail(
                    node, f"Input needs a :{key} property (input {label}); add :{key} => ..."
                )
        in_type = props.get(_sym("type"))
        if rv.eq(in_type, _sym("string")):
            if _sym("validation") not in props:
                raise self.fail(
                    node,
                    f"Input type :string needs a :validation argument (input {label}); add e.g. :validation => '^.+$'",
                )
            if _sym("maxlength") not in props:
                raise self.fail(
                    node,
                    f"Input type :string needs a :maxlength argument (input {label}); add e.g. :maxlength => 0 (0 = no limit)",
                )
        elif rv.eq(in_type, _sym("list")) and _sym("list") not in props:
            raise self.fail(
                node,
                f'Input type :list needs a :list argument (input {label}); add e.g. :list => ["a", "b"]',
            )
        item = self._make_input(node, argument, props, label)
        _store(entity.inputs, argument, item)
        return item

    def _make_input(self, node: Call, argument: Any, props: RubyHash, label: str) -> Input:
        if not isinstance(argument, str):
            raise self.fail(node, f"input name must be a Symbol or String, not {label}")
        for key in ("prompt", "description"):
            value = props.get(_sym(key))
            if not rv.is_string(value):
                raise self.fail(
                    node, f"input {label}: :{key} must be a String, not {rv.inspect(value)}"
                )
        in_type = props.get(_sym("type"))
        if not isinstance(in_type, Symbol):
            raise self.fail(
                node,
                f"input {label}: :type must be a Symbol such as :string, not {rv.inspect(in_type)}",
            )
        optional = props.get(_sym("optional"))
        if optional is not None and not isinstance(optional, bool):
            raise self.fail(
                node, f"input {label}: :optional must be true or false, not {rv.inspect(optional)}"
            )
        validation: Any = None
        maxlength: int | None = None
        choices: tuple[Any, ...] | None = None
        if in_type == "string":
            validation = props.get(_sym("validation"))
            if isinstance(validation, list):
                validation = tuple(rv.plain_dict(validation))
            elif validation is not None and not isinstance(validation, (str, Regexp)):
                raise self.fail(
                    node,
                    f"input {label}: :validation must be a regex String, a /regex/ or a validator Symbol, not {rv.inspect(validation)}",
                )
            maxlength = props.get(_sym("maxlength"))
            if maxlength is not None and (
                not isinstance(maxlength, int) or isinstance(maxlength, bool)
            ):
                raise self.fail(
                    node,
                    f"input {label}: :maxlength must be an Integer (0 = no limit), not {rv.inspect(maxlength)}",
                )
        elif in_type == "list":
            raw = props.get(_sym("list"))
            if not isinstance(raw, list):
                raise self.fail(
                    node,
                    f"input {label}: :list must be an Array of the allowed values, not {rv.inspect(raw)}",
                )
            choices = tuple(rv.plain_dict(raw))
        return Input(
            key=argument,
            prompt=props.get(_sym("prompt")),
            description=props.get(_sym("description")),
            type=str.__str__(in_type),
            optional=optional,
            default=rv.plain_dict(props.get(_sym("default"))),
            validation=validation,
            maxlength=maxlength,
            list=choices,
        )

    def dsl_output(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 2)
        argument, props = args
        label = rv.inspect(argument)
        if self.current is None:
            raise self.fail(
                node,
                f"Cannot figure out what action input {rv.to_s(argument)} belongs to; declare outputs inside an action block",
            )
        if not isinstance(props, RubyHash):
            raise self.fail(
                node, f"output {label} expects :description => .., :display_as => .. pairs"
            )
        if _sym("description") not in props:
            raise self.fail(
                node,
                f"Output {rv.to_s(argument)} needs a description argument; add :description => ...",
            )
        if _sym("display_as") not in props:
            raise self.fail(
                node,
                f"Output {rv.to_s(argument)} needs a display_as argument; add :display_as => ...",
            )
        if not isinstance(argument, str):
            raise self.fail(node, f"output name must be a Symbol or String, not {label}")
        for key in ("description", "display_as"):
            value = props.get(_sym(key))
            if not rv.is_string(value):
                raise self.fail(
                    node, f"output {label}: :{key} must be a String, not {rv.inspect(value)}"
                )
        item = Output(
            key=argument,
            description=props.get(_sym("description")),
            display_as=props.get(_sym("display_as")),
            default=rv.plain_dict(props.get(_sym("default"))),
        )
        _store(self.current.outputs, argument, item)
        return item

    # ------------------------------------------------------------------ DSL: agent

    def dsl_action(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 2)
        name, props = args
        if not isinstance(props, RubyHash) or _sym("description") not in props:
            raise self.fail(
                node,
                f"Action needs a :description property (action {rv.inspect(name)}); add :description => ...",
            )
        if not rv.is_string(name):
            raise self.fail(node, f"action name must be a String, not {rv.inspect(name)}; quote it")
        description = props.get(_sym("description"))
        if not rv.is_string(description):
            raise self.fail(
                node,
                f"action {rv.inspect(name)}: :description must be a String, not {rv.inspect(description)}",
            )
        key = rv.hash_key(name)
        if key not in self.entities:
            self.entities[key] = _Entity(name, description)
        self.current = self.entities[key]
        try:
            self.run_block(block, scope)
        finally:
            self.current = None
        return None

    def dsl_display(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 1)
        pref = args[0]
        if not (isinstance(pref, Symbol) and pref in ("ok", "failed", "flatten", "always")):
            raise self.fail(
                node,
                f"Display preference {rv.to_s(pref)} is not valid, should be :ok, :failed, :flatten or :always",
            )
        if self.current is None:
            raise self.fail(node, "display must be called inside an action block")
        self.current.display = str.__str__(pref)
        return pref

    def dsl_summarize(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 0)
        if block is None:
            raise self.fail(
                node, "summarize needs a block: summarize do aggregate summary(:output) end"
            )
        self.aggregating = True
        try:
            self.run_block(block, scope)
        finally:
            self.aggregating = False
        return None

    def dsl_aggregate(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 1, 2)
        function = args[0]
        fmt = args[1] if len(args) > 1 else RubyHash([(_sym("format"), None)])
        if not isinstance(fmt, RubyHash):
            raise self.fail(node, "Formats supplied to aggregation functions should be a hash")
        if _sym("format") not in fmt:
            raise self.fail(
                node, "Formats supplied to aggregation functions must have a :format key"
            )
        if not isinstance(function, RubyHash):
            raise self.fail(
                node,
                "Functions supplied to aggregate should be a hash; write e.g. aggregate summary(:output)",
            )
        if self.current is None:
            raise self.fail(
                node, "aggregate must be called inside an action block (in its summarize block)"
            )
        if not rv.truthy(function.get(_sym("args"))):
            raise self.fail(
                node,
                f"aggregate method for action '{self.current.key}' missing a function parameter",
            )
        fname = function.get(_sym("function"))
        fargs = function.get(_sym("args"))
        if not isinstance(fname, str) or not isinstance(fargs, list):
            raise self.fail(node, "aggregate expects a function call such as summary(:output)")
        extra = fmt.get(_sym("format"))
        if extra is None:
            extra = function.get(_sym("format"))
        if extra is not None and not rv.is_string(extra):
            raise self.fail(node, f"aggregate :format must be a String, not {rv.inspect(extra)}")
        call = AggregateCall(str.__str__(fname), tuple(rv.plain_dict(fargs)), extra)
        if self.current.aggregates is None:
            self.current.aggregates = []
        self.current.aggregates.append(call)
        return self.current.aggregates

    # ------------------------------------------------------------------ DSL: data, discovery

    def dsl_dataquery(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 1)
        props = args[0]
        if not isinstance(props, RubyHash) or _sym("description") not in props:
            raise self.fail(node, "Data queries need a :description; add :description => ...")
        key = rv.hash_key(_sym("data"))
        if key in self.entities:
            raise self.fail(node, "Data queries can only have one definition")
        description = props.get(_sym("description"))
        if not rv.is_string(description):
            raise self.fail(
                node, f"dataquery :description must be a String, not {rv.inspect(description)}"
            )
        self.entities[key] = self.current = _Entity(_sym("data"), description)
        try:
            self.run_block(block, scope)
        finally:
            self.current = None
        return None

    def dsl_discovery(self, node: Call, args: list[Any], block: Block | None, scope: _Scope) -> Any:
        self.arity(node, args, 0)
        key = rv.hash_key(_sym("discovery"))
        if key in self.entities:
            raise self.fail(node, "Discovery plugins can only have one definition")
        self.entities[key] = self.current = _Entity(_sym("discovery"), None)
        try:
            self.run_block(block, scope)
        finally:
            self.current = None
        return None

    def dsl_capabilities(
        self, node: Call, args: list[Any], block: Block | None, scope: _Scope
    ) -> Any:
        caps = flatten(args)
        if not caps:
            raise self.fail(node, "Discovery plugin capabilities can't be empty")
        entity = self.entities.get(rv.hash_key(_sym("discovery")))
        for cap in caps:
            if not (isinstance(cap, Symbol) and cap in _CAPABILITIES):
                raise self.fail(
                    node,
                    f"{rv.to_s(cap)} is not a valid capability, valid capabilities are "
                    ":classes, :facts, :identity, :agents and :compound",
                )
            if entity is None:
                raise self.fail(node, "capabilities must be called inside a discovery block")
            entity.capabilities.append(str.__str__(cap))
        return None

    # ------------------------------------------------------------------ builtin methods

    def build(self, path: Path | None) -> DDL:
        if self.meta is None:
            raise DDLError(
                f"{self.src.filename}: no metadata; every DDL starts with "
                "metadata :name => .., :description => .., :author => .., :license => .., "
                ":version => .., :url => .., :timeout => .."
            )
        meta = self.meta
        metadata = Metadata(
            **{k: meta.get(_sym(k)) for k in _METADATA_KEYS},
            extra={
                k: rv.plain_dict(v)
                for k, v in meta.items()
                if not (isinstance(k, Symbol) and k in _METADATA_KEYS)
            },
        )
        common: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "metadata": metadata,
            "usage": self.usage,
            "requirements": dict(self.requirements),
            "path": path,
        }
        if self.kind == "agent":
            actions = {}
            for entity in self.entities.values():
                actions[entity.key] = Action(
                    name=entity.key,
                    description=entity.description,
                    display=entity.display,
                    inputs=_finish(self.src, entity.inputs),
                    outputs=_finish(self.src, entity.outputs),
                    aggregates=None if entity.aggregates is None else tuple(entity.aggregates),
                )
            return AgentDDL(actions=actions, **common)
        if self.kind == "data":
            data = self.entities.get(rv.hash_key(_sym("data")))
            query = None
            if data is not None:
                query = DataQuery(
                    data.description,
                    _finish(self.src, data.inputs),
                    _finish(self.src, data.outputs),
                )
            return DataDDL(query=query, **common)
        if self.kind == "discovery":
            disc = self.entities.get(rv.hash_key(_sym("discovery")))
            caps = None if disc is None else tuple(disc.capabilities)
            return DiscoveryDDL(capabilities=caps, **common)
        return PluginDDL(**common)


def _store(table: dict[Any, Any], key: Any, item: Any) -> None:
    table[rv.hash_key(key)] = item


def _finish(src: Source, table: dict[Any, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in table.values():
        if item.key in result:
            raise DDLError(
                f"{src.filename}: {item.name!r} is declared both as :{item.name} and "
                f'"{item.name}"; use one spelling (Symbols are usual)'
            )
        result[item.key] = item
    return result


def version_compare(a: str, b: str) -> int:
    """``MCollective::Util.versioncmp``: -1, 0 or 1 comparing two version strings."""
    token = re.compile(r"[-.]|\d+|[^-.\d]+")
    ax: list[str] = token.findall(a)
    bx: list[str] = token.findall(b)
    while ax and bx:
        x = ax.pop(0)
        y = bx.pop(0)
        if x == y:
            continue
        if x == "-":
            return -1
        if y == "-":
            return 1
        if x == ".":
            return -1
        if y == ".":
            return 1
        if x.isdigit() and y.isdigit():
            if x.startswith("0") or y.startswith("0"):
                return (x.upper() > y.upper()) - (x.upper() < y.upper())
            return (int(x) > int(y)) - (int(x) < int(y))
        return (x.upper() > y.upper()) - (x.upper() < y.upper())
    return (a > b) - (a < b)


def parse_ddl(
    text: str,
    *,
    kind: str = "agent",
    name: str | None = None,
    filename: str = "<ddl>",
    path: Path | None = None,
) -> DDL:
    """Parse DDL source ``text`` into the model (:class:`AgentDDL` for ``kind="agent"``,
    :class:`DataDDL`, :class:`DiscoveryDDL`, else :class:`PluginDDL`).

    ``name`` is the plugin name (default: ``filename``'s stem); ``filename`` is used in
    error messages.  Raises :class:`~mcollective_py.errors.DDLError` whose message
    starts with ``filename:line:column:`` for syntax errors, unsupported Ruby and DSL
    errors (the same checks Ruby makes, plus the stricter ones listed in
    :mod:`mcollective_py.ddl.model`).  Never evaluates code.
    """
    plugin = name if name is not None else Path(filename).stem
    src = Source(text, filename)
    try:
        program = parse_program(src)
        interp = _Interpreter(src, kind, plugin)
        interp.run(program)
        return interp.build(path)
    except RecursionError:
        raise DDLError(f"{filename}: the DDL nests too deeply to be parsed") from None
