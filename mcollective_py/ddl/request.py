"""Turning user input into a valid request for an agent action, the way Ruby does.

Client flow of ``mco rpc AGENT ACTION k=v ...`` (``application/rpc.rb``,
``RPC::Client#validate_request``), reproduced by :func:`prepare_request`:

1. :func:`parse_cli_argument` -- each ``k=v`` must match Ruby's ``/^(.+?)=(.+)$/``
   (line anchored: for a multi-line argument the first matching line wins).
2. :func:`coerce_cli_arguments` -- keys become Symbols; values stay Strings except for
   inputs typed ``:boolean`` (``true t yes y 1`` / ``false f no n 0``, any case) and
   ``:integer :float :number`` (``\\d+`` -> Integer, ``\\d+.\\d+`` -> Float; no sign, no
   exponent -- ``-1`` is refused, as in Ruby).  Nothing is parsed as JSON: Ruby never
   does, and ``:hash``/``:array`` inputs cannot be validated in 2.12.5 anyway.
3. :func:`apply_defaults` -- a DDL ``:default`` is added **only for a required input**
   that is missing (``set_default_input_arguments``); defaults of optional inputs are
   never sent, the agent must apply them itself.
4. :func:`validate_request` -- ``validate_rpc_request``: the action must exist, every
   required input must be present, every present input must pass its type and
   validation.  Unlike Ruby (which stops at the first failure) all problems are
   reported at once in a :class:`~mcollective_py.errors.ValidationError`, one line each,
   saying which input, which value, what is wrong and what to try.

The node side calls :func:`request_problems` (or :func:`ruby_rejection`) with the
same DDL: a request Ruby would refuse gets statuscode 4 and, as statusmsg, Ruby's
own message for the first problem (``Cannot validate input fact: value should match
^[\\w\\-\\.]+$``).  The server does not add defaults, like Ruby.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mcollective_py.ddl.model import INPUT_TYPES, Action, AgentDDL, Input
from mcollective_py.ddl.validators import (
    Validator,
    length,
    run_validation,
    typecheck,
)
from mcollective_py.errors import UsageError, ValidationError
from mcollective_py.lazy import lazy_re
from mcollective_py.ruby import values as rv
from mcollective_py.ruby.inspect import Budget, inspect
from mcollective_py.rubytypes import Regexp, Symbol

__all__ = [
    "Problem",
    "apply_defaults",
    "coerce_cli_arguments",
    "parse_cli_argument",
    "prepare_request",
    "reply_defaults",
    "request_problems",
    "ruby_rejection",
    "validate_request",
]

# Ruby's /^(.+?)=(.+)$/, except that the value runs to the end of the argument: Ruby cuts
# it at the first newline, we pass a multi-line value through intact.
_CLI_ARGUMENT = lazy_re(r"^([^\n]+?)=(.+)\Z", re.MULTILINE | re.DOTALL)
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_FLOAT = lazy_re(r"^[0-9]+\.[0-9]+$", re.MULTILINE)
_INT = lazy_re(r"^[0-9]+$", re.MULTILINE)
_BOOLEAN_HINT = "use true or false (also yes/no, y/n, t/f, 1/0)"


@dataclass(frozen=True)
class Problem:
    """One reason a request is refused.

    ``message`` is for people (input, value, what is wrong, what to try);
    ``ruby_message`` is what Ruby MCollective says for the same problem (the
    ``DDLValidationError``/``RuntimeError`` text a Ruby node puts in statusmsg).
    """

    input: str | None
    value: Any
    message: str
    ruby_message: str


_SHOW_BUDGET = Budget(chars=200, nodes=200)


def _show(value: Any) -> str:
    """A value as a message shows it: its inspect, cut to 80 characters (walking no more of
    the value than that needs, however large it is)."""
    text = inspect(value, _SHOW_BUDGET)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- CLI


def parse_cli_argument(text: str) -> tuple[str, str]:
    """Split one ``key=value`` command-line argument like ``mco rpc`` does.

    The key is found as Ruby's ``/^(.+?)=(.+)$/`` finds it (the first line holding a
    ``=``); the value is everything after that ``=``, newlines included (``mco`` keeps only
    the rest of that line).  Raises :class:`~mcollective_py.errors.UsageError` when there
    is no such key or the value is empty (for example ``key=`` or ``=value``).
    """
    m = _CLI_ARGUMENT.search(text)
    if m is None:
        raise UsageError(
            f"could not parse argument {text!r}: expected key=value with a non-empty key "
            "and value (e.g. server=web1)"
        )
    return m.group(1), m.group(2)


def _string_to_boolean(text: str) -> bool:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{text} does not look like a boolean argument")


def _string_to_number(text: str) -> int | float:
    if _FLOAT.search(text):
        return rv.to_f(text)
    if _INT.search(text):
        return rv.to_i(text)
    raise ValueError(f"{text} does not look like a number")


def _coerce(
    action: Action | None, arguments: Iterable[str] | Mapping[str, str]
) -> tuple[dict[Symbol, Any], list[str], set[str]]:
    """(data, problems, names of inputs whose conversion failed)."""
    problems: list[str] = []
    failed: set[str] = set()
    pairs: list[tuple[str, str]] = []
    if isinstance(arguments, Mapping):
        pairs = [(str(k), v) for k, v in arguments.items()]
    else:
        for text in arguments:
            try:
                pairs.append(parse_cli_argument(text))
            except UsageError as exc:
                problems.append(str(exc))
    data: dict[Symbol, Any] = {Symbol(key): value for key, value in pairs}
    if action is None:
        return data, problems, failed
    for key, value in list(data.items()):
        item = action.inputs.get(key)
        if item is None or not isinstance(value, str):
            continue
        try:
            if item.type == "boolean":
                data[key] = _string_to_boolean(value)
            elif item.type in ("integer", "float", "number"):
                data[key] = _string_to_number(value)
        except ValueError:
            failed.add(str.__str__(key))
            if item.type == "boolean":
                problems.append(f"input '{key}': {_show(value)} is not a boolean; {_BOOLEAN_HINT}")
            else:
                problems.append(
                    f"input '{key}': {_show(value)} does not look like a number; "
                    "write digits (12) or digits.digits (1.5), without sign or exponent"
                )
    return data, problems, failed


def coerce_cli_arguments(
    action: Action | None, arguments: Iterable[str] | Mapping[str, str]
) -> dict[Symbol, Any]:
    """``key=value`` strings (or an already split mapping) -> request data.

    Keys become Symbols; booleans and numbers are converted for inputs of those types
    (see the module docs); every other value stays a String.  ``action`` may be None
    (unknown action: nothing is converted, like Ruby).  Raises
    :class:`~mcollective_py.errors.ValidationError` listing every argument that
    could not be parsed or converted.
    """
    data, problems, _ = _coerce(action, arguments)
    if problems:
        raise ValidationError(problems)
    return data


# --------------------------------------------------------------------------- defaults


def apply_defaults(action: Action, data: Mapping[Any, Any]) -> dict[Any, Any]:
    """Return ``data`` plus the DDL default of every *required* input that is missing.

    Ruby's client does exactly this (``set_default_input_arguments``): optional inputs
    never get their default sent.  The default is added under the DDL's key (a Symbol
    for ``input :name``), as a copy.
    """
    result = dict(data)
    for key, item in action.inputs.items():
        if key in result or item.default is None or item.optional:
            continue
        result[key] = copy.deepcopy(item.default)
    return result


def reply_defaults(action: Action) -> dict[Any, Any]:
    """The reply data a node starts from: every output key set to a copy of its default."""
    return {key: copy.deepcopy(item.default) for key, item in action.outputs.items()}


# --------------------------------------------------------------------------- validation


def _lookup(
    item_key: str, data: Mapping[Any, Any], inputs: Mapping[str, Input]
) -> tuple[bool, Any]:
    """Find the request value for a DDL key with Ruby's Symbol/String rules."""
    for key, value in data.items():
        if str.__str__(key) != str.__str__(item_key):
            continue
        ddl_symbol = isinstance(item_key, Symbol)
        if isinstance(key, Symbol):
            if ddl_symbol:
                return True, value
        elif not ddl_symbol or not any(
            not isinstance(k, Symbol) and str.__str__(k) == str.__str__(item_key) for k in inputs
        ):
            return True, value
    return False, None


def _input_problems(
    item: Input, value: Any, validators: Mapping[str, Validator] | None
) -> list[Problem]:
    name = item.name

    def problem(ruby: str, text: str) -> Problem:
        return Problem(
            name, value, f"input '{name}': {text}", f"Cannot validate input {name}: {ruby}"
        )

    shown = _show(value)
    if item.type == "string":
        failure = typecheck(value, "string")
        if failure:
            return [problem(failure, f"{shown} is not a String; give text")]
        found: list[Problem] = []
        failure = length(value, item.maxlength or 0)
        if failure:
            found.append(
                problem(
                    failure,
                    f"{shown} is {len(value)} characters, longer than the maximum of {item.maxlength}; shorten it",
                )
            )
        failure = run_validation(value, _validation_value(item), validators)
        if failure:
            found.append(problem(failure, _validation_hint(item, shown, failure)))
        return found
    if item.type == "list":
        failure = run_validation(value, list(item.list or ()), validators)
        if failure:
            choices = rv.join(list(item.list or ()), ", ")
            return [problem(failure, f"{shown} is not allowed; use one of: {choices}")]
        return []
    failure = run_validation(value, Symbol(item.type), validators)
    if not failure:
        return []
    hints = {
        "integer": f"{shown} is not an Integer; use a whole number such as 5",
        "float": f"{shown} is not a Float; use a decimal number such as 1.5",
        "number": f"{shown} is not a number; use e.g. 5 or 1.5",
        "boolean": f"{shown} is not a boolean; {_BOOLEAN_HINT}",
    }
    if item.type in hints:
        return [problem(failure, hints[item.type])]
    return [
        problem(
            failure,
            f"type :{item.type} cannot be validated by MCollective 2.12.5, so every value is "
            f"refused ({failure}); change the DDL to one of :{', :'.join(INPUT_TYPES)}",
        )
    ]


def _validation_value(item: Input) -> Any:
    return list(item.validation) if isinstance(item.validation, tuple) else item.validation


def _validation_hint(item: Input, shown: str, failure: str) -> str:
    validation = item.validation
    if isinstance(validation, (str, Regexp)):
        if failure.startswith("validation regex"):
            return f"{failure}; the DDL needs a regex Python can run"
        return (
            f"{shown} does not match the pattern {rv.to_s(validation)} "
            f"({item.description}); use a value that matches it"
        )
    if isinstance(validation, Symbol):
        vname = str.__str__(validation)
        if vname == "shellsafe":
            return f"{shown} is not shell safe ({failure}); remove ` $ ; | && > and <"
        if vname == "ipv4address":
            return f"{shown} is not an IPv4 address; use a dotted quad such as 192.0.2.10"
        if vname == "ipv6address":
            return f"{shown} is not an IPv6 address; use one such as 2001:db8::1"
        if failure.startswith("Unknown validator"):
            return (
                f"the DDL uses validator :{vname}, which is not available here; "
                "install it or pass it in validators="
            )
        return f"{shown} failed validator :{vname} ({failure})"
    if isinstance(validation, tuple):
        return f"{shown} is not allowed; use one of: {rv.join(list(validation), ', ')}"
    return failure


def request_problems(
    ddl: AgentDDL,
    action: str,
    data: Mapping[Any, Any],
    *,
    validators: Mapping[str, Validator] | None = None,
) -> tuple[Problem, ...]:
    """Every reason Ruby's ``validate_rpc_request`` would refuse ``action`` with ``data``.

    Problems come in Ruby's order (DDL input order; per input: missing, type/length,
    validation), so ``problems[0].ruby_message`` is the message Ruby gives.  Keys of
    ``data`` not in the DDL are ignored.  ``validators`` adds named validators (for
    ``:validation => :name``) beyond shellsafe/ipv4address/ipv6address.
    """
    found = ddl.actions.get(action)
    if found is None:
        known = ", ".join(sorted(ddl.actions)) or "none"
        return (
            Problem(
                None,
                action,
                f"action {action!r} is not declared in the {ddl.name} DDL; use one of: {known}",
                f"Attempted to call action {action} for {ddl.name} but it's not declared in the DDL",
            ),
        )
    problems: list[Problem] = []
    for key, item in found.inputs.items():
        present, value = _lookup(key, data, found.inputs)
        if not present:
            if item.required:
                problems.append(
                    Problem(
                        item.name,
                        None,
                        f"input '{item.name}' is required; add {item.name}=<{item.prompt}> ({item.description})",
                        f"Action {action} needs a {item.name} argument",
                    )
                )
            continue
        problems.extend(_input_problems(item, value, validators))
    return tuple(problems)


def validate_request(
    ddl: AgentDDL,
    action: str,
    data: Mapping[Any, Any],
    *,
    validators: Mapping[str, Validator] | None = None,
) -> None:
    """Raise :class:`~mcollective_py.errors.ValidationError` with every problem, if any."""
    problems = request_problems(ddl, action, data, validators=validators)
    if problems:
        raise ValidationError([p.message for p in problems])


def ruby_rejection(
    ddl: AgentDDL,
    action: str,
    data: Mapping[Any, Any],
    *,
    validators: Mapping[str, Validator] | None = None,
) -> str | None:
    """The statusmsg a Ruby node replies with (statuscode 4), or None if it accepts."""
    problems = request_problems(ddl, action, data, validators=validators)
    return problems[0].ruby_message if problems else None


def prepare_request(
    ddl: AgentDDL,
    action: str,
    arguments: Iterable[str] | Mapping[str, str],
    *,
    validators: Mapping[str, Validator] | None = None,
) -> dict[Any, Any]:
    """The whole client side of ``mco rpc AGENT ACTION k=v ...``: parse, convert,
    add defaults, validate.  Returns the request data (Symbol keys); raises
    :class:`~mcollective_py.errors.ValidationError` listing every problem found.
    """
    found = ddl.actions.get(action)
    data, problems, failed = _coerce(found, arguments)
    request: dict[Any, Any] = dict(data)
    if found is not None:
        request = apply_defaults(found, request)
    for problem in request_problems(ddl, action, request, validators=validators):
        if problem.input is None or problem.input not in failed:
            problems.append(problem.message)
    if problems:
        raise ValidationError(problems)
    return request
