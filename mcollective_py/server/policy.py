"""``actionpolicy`` authorization: the policy files of MCollective's actionpolicy plugin, read
and applied the same way, except that callers are matched exactly.

Files, under ``<configdir>/policies/`` (``configdir`` = the directory of ``server.cfg``):

* ``<agent>.policy``; if it is missing and ``plugin.actionpolicy.enable_default`` is on,
  ``<default_name>.policy`` (``plugin.actionpolicy.default_name``, default ``default``).
  With neither, the request is allowed only if ``plugin.actionpolicy.allow_unconfigured`` is on.
* ``groups``: ``<group> <callerid> <callerid>...`` per line.

Settings are switched on the way Ruby reads them: a value that starts with ``1`` or contains
a ``y``/``Y`` (so ``1``, ``y``, ``yes``; note that ``true`` and ``on`` mean *off*).

Rule language (one line each; ``#`` comments and blank lines are skipped)::

    policy default allow|deny
    allow|deny <TAB> callers <TAB> actions <TAB> facts [<TAB> classes]

Fields are separated by one or more TABs.  The first rule whose callers, actions, facts and
classes all match decides; when none does, the last ``policy default`` line decides (without
one, ``allow_unconfigured``).

* callers: ``*``, or space-separated callerids and group names;
* actions: ``*`` or space-separated action names;
* facts: ``*``, space-separated ``fact=value`` / ``fact<value`` / ``fact>value`` tokens that
  must all hold (values compared as strings), or a compound expression
  (``role=web and not env=dev``); classes: ``*``, space-separated class names (``/re/``
  allowed), or a compound expression.  A compound expression is one that has a token
  ``and``/``or``/``not``, a token starting with ``!``, or ``(...)``; it is tokenized by
  :func:`mcollective_py.filter.parse_compound` and evaluated as Ruby evaluates the joined
  keywords: ``not`` binds tightest, ``and`` and ``or`` have *equal* precedence, left to right.
  Data plugin calls (``fstat("/etc/x").size>0``) use the ``data_plugin`` callback.

Kept from Ruby on purpose, so one policy file means the same thing on Ruby and Python nodes:

* **4-field rules**: without the classes column, the facts column is evaluated as a compound
  expression, so ``*`` there never matches (it is looked up as a class named ``*``).  Write
  5 fields.  :attr:`Policy.problems` flags every 4-field rule.
* In a fact token the *last* ``<``, ``>`` or ``=`` splits name and value, so ``mem>=1024``
  compares the fact ``mem>`` with ``1024`` and ``<=``/``>=`` never work as meant.
  Comparisons are of strings (``"10" < "9"``).
* A field with trailing spaces or a CR (Windows line ends) is not ``*`` any more.
  :attr:`Policy.problems` flags them too.

Where we differ from Ruby (see ``docs/security.md``):

* **Callers match exactly.**  Ruby tests whether the caller is a *substring* of the callers
  field, so ``allow<TAB>uid=10 uid=11<TAB>...`` also lets ``uid=1`` (and ``d=1``) in.  Here a
  caller must equal one of the field's words, or be a member of a group named there.
* Nothing is ever ``eval``-ed.  A rule Ruby cannot evaluate (a compound that does not parse,
  a bad class regex outside a compound) makes Ruby's agent fail the request with statuscode 5;
  here it denies the request (statuscode 1), naming the file and line in the reason.  Fact
  values holding quotes are compared literally (Ruby's ``eval`` would mangle or fail on them).
* The agent name must be a plain name (``[A-Za-z0-9_.-]``, not starting with ``.``) before it
  is used in a file name.

:func:`authorize` is pure (parsed policies in, :class:`Decision` out); :class:`PolicyDir`
reads the files, re-reading a file when it changes, as Ruby reads them on every request.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import UsageError
from ..filter import (
    CompoundToken,
    DataPlugin,
    Filter,
    check,
    eval_compound,
    normalize_facts,
    parse_compound,
)
from ..ruby.inspect import inspect as ruby_inspect

log = logging.getLogger(__name__)

__all__ = [
    "DENIED_MESSAGE",
    "Decision",
    "Policy",
    "PolicyDir",
    "PolicySettings",
    "Rule",
    "authorize",
    "parse_groups",
    "parse_policy",
]

#: The statusmsg of a denied request (statuscode 1), exactly as Ruby's actionpolicy sends it.
DENIED_MESSAGE = "You are not authorized to call this agent or action."

_SKIP = re.compile(r"^(?:#.*|[ \t\n\v\f\r]*)$")
_DEFAULT = re.compile(r"^policy[ \t\n\v\f\r]+default[ \t\n\v\f\r]+([A-Za-z0-9_]+)")
# Fields are separated by TAB runs; the last repetition of the optional tail is the classes.
_RULE = re.compile(r"^(allow|deny)\t+(.+?)\t+(.+?)\t+(.+?)(?:\t+(.+?))*$")
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_AGENT = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")
_FACT = re.compile(r"(.+)(<|>|=|<=|>=)(.+)")
_COMPOUND_WORD = re.compile(r"^!|^not$|^or$|^and$|\(.+\)")
_ON = re.compile(r"^1|y", re.IGNORECASE)


def _lines(text: str) -> list[tuple[int, str]]:
    """Numbered lines as Ruby's ``each_line`` cuts them: at ``\\n`` only (a CR stays)."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return list(enumerate(parts, 1))


def _words(text: str) -> list[str]:
    """Ruby ``String#split`` with no argument: runs of ASCII whitespace separate words."""
    return [w for w in re.split(r"[ \t\n\v\f\r]+", text) if w]


# =========================================================================================
# Parsed files
# =========================================================================================


@dataclass(frozen=True)
class PolicySettings:
    """The ``plugin.actionpolicy.*`` settings."""

    allow_unconfigured: bool = False
    enable_default: bool = False
    default_name: str = "default"

    @classmethod
    def from_plugin_conf(cls, conf: Mapping[str, str]) -> PolicySettings:
        """From ``Config.plugin("actionpolicy")``, switches read as Ruby reads them (see the
        module docstring: ``1``/``y``/``yes`` are on, ``true`` is off)."""
        return cls(
            allow_unconfigured=bool(_ON.search(conf.get("allow_unconfigured", "n"))),
            enable_default=bool(_ON.search(conf.get("enable_default", "n"))),
            default_name=conf.get("default_name", "default").strip() or "default",
        )


@dataclass(frozen=True)
class Rule:
    """One ``allow``/``deny`` line; ``classes`` is None for a 4-field rule."""

    allow: bool
    callers: str
    actions: str
    facts: str
    classes: str | None
    line: int


@dataclass(frozen=True)
class Policy:
    """One policy file: its rules in order, the last ``policy default`` (None: no such line)
    and one message per line that will not work as it looks (skipped or suspicious)."""

    name: str
    rules: tuple[Rule, ...] = ()
    default: bool | None = None
    problems: tuple[str, ...] = ()


def parse_policy(text: str, name: str = "policy") -> Policy:
    """Parse a policy file's text.  Never raises: lines that are not understood are listed in
    :attr:`Policy.problems` and skipped, as Ruby skips them."""
    rules: list[Rule] = []
    problems: list[str] = []
    default: bool | None = None
    for number, line in _lines(text):
        if _SKIP.match(line):
            continue
        m = _DEFAULT.match(line)
        if m:
            default = m[1] == "allow"
            continue
        m = _RULE.match(line)
        if m is None:
            problems.append(f"{name} line {number}: not a rule, skipped: {line.rstrip()!r}")
            continue
        rule = Rule(m[1] == "allow", m[2], m[3], m[4], m[5], number)
        rules.append(rule)
        fields = [
            f for f in (rule.callers, rule.actions, rule.facts, rule.classes) if f is not None
        ]
        if any(f != f.strip(" \t\r") for f in fields):
            problems.append(
                f"{name} line {number}: a field starts or ends with a space or CR, so it is not what it looks like"
            )
        if rule.classes is None:
            problems.append(
                f"{name} line {number}: 4-field rule: its facts column is evaluated as a compound "
                "expression (a '*' there never matches); add a 5th column, e.g. '*'"
            )
    return Policy(name, tuple(rules), default, tuple(problems))


def parse_groups(text: str) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """Parse a ``groups`` file into ``{group: callerids}`` and problems.  A later line for the
    same group replaces the earlier one; a group without members is ignored."""
    groups: dict[str, tuple[str, ...]] = {}
    problems: list[str] = []
    for number, line in _lines(text):
        if _SKIP.match(line):
            continue
        parts = _words(line)
        if not _NAME.fullmatch(parts[0]):
            problems.append(f"groups line {number}: expected 'group callerid callerid...', skipped")
            continue
        if len(parts) > 1:
            groups[parts[0]] = tuple(parts[1:])
    return groups, tuple(problems)


# =========================================================================================
# Decisions
# =========================================================================================


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`authorize`.  ``reason`` is for the log and the audit trail; a
    denied caller is sent only ``statuscode`` 1 and :data:`DENIED_MESSAGE`."""

    allowed: bool
    reason: str
    policy: str | None = None
    line: int | None = None

    @property
    def statuscode(self) -> int:
        return 0 if self.allowed else 1

    @property
    def statusmsg(self) -> str:
        return "OK" if self.allowed else DENIED_MESSAGE


class _Unevaluable(Exception):
    """Ruby would raise evaluating this rule (the request then fails)."""


@dataclass(frozen=True)
class _Node:
    caller: str
    action: str
    facts: Mapping[str, Any]  # normalized
    classes: tuple[str, ...]
    groups: Mapping[str, Sequence[str]]
    data_plugin: DataPlugin | None

    # ------------------------------------------------------------ columns
    def caller_matches(self, field: str) -> bool:
        if field == "*":
            return True
        words = _words(field)
        if self.caller in words:  # exact; Ruby: ``field.include?(caller)``, a substring test
            return True
        return any(_NAME.fullmatch(w) and self.caller in self.groups.get(w, ()) for w in words)

    def action_matches(self, field: str) -> bool:
        return field == "*" or self.action in _words(field)

    def facts_match(self, field: str) -> bool:
        if field == "*":
            return True
        if _is_compound(field):
            return self.compound(field)
        return all(self.fact(token) for token in _words(field))

    def classes_match(self, field: str) -> bool:
        if field == "*":
            return True
        if _is_compound(field):
            return self.compound(field)
        return all(not _FACT.search(token) and self.klass(token) for token in _words(field))

    # ------------------------------------------------------------ tokens
    def fact(self, token: str) -> bool:
        m = _FACT.search(token)
        if m is None:
            return False  # a class where a fact was expected
        value = self.facts.get(m[1])
        text = "" if value is None else value if isinstance(value, str) else ruby_inspect(value)
        if m[2] == "<":
            return text < m[3]
        if m[2] == ">":
            return text > m[3]
        return text == m[3]

    def klass(self, name: str) -> bool:
        verdict = check(
            Filter(cf_class=(name,)), identity="", facts={}, classes=self.classes, agents=()
        )
        if verdict.error:
            raise _Unevaluable(f"class {name!r}: {verdict.error}")
        return verdict.matched

    def statement(self, token: str) -> bool:
        return self.fact(token) if _FACT.search(token) else self.klass(token)

    def compound(self, text: str) -> bool:
        try:
            stack = parse_compound(text)
        except UsageError as exc:
            raise _Unevaluable(f"compound expression {text!r} does not parse: {exc}") from None
        words: list[str] = []
        try:
            for token in stack:
                words.append(self.compound_word(token))
        except _Unevaluable:
            return False  # Ruby: an error while looking up statements makes the compound false
        return _RubyKeywords(words, text).value()

    def compound_word(self, token: CompoundToken) -> str:
        if token.kind == "statement" and isinstance(token.value, str):
            return "true" if self.statement(token.value) else "false"
        if token.kind == "fstatement":
            ok = eval_compound(
                (token,), facts=self.facts, classes=self.classes, data_plugin=self.data_plugin
            )
            return "true" if ok else "false"
        return token.kind  # and, or, not, (, )

    # ------------------------------------------------------------ rules
    def matches(self, rule: Rule) -> bool:
        if not (self.caller_matches(rule.callers) and self.action_matches(rule.actions)):
            return False
        if rule.classes is not None:
            return self.facts_match(rule.facts) and self.classes_match(rule.classes)
        return self.compound(rule.facts)  # Ruby's 4-field behaviour, kept on purpose


def _is_compound(field: str) -> bool:
    return any(_COMPOUND_WORD.search(w) for w in _words(field))


class _RubyKeywords:
    """Evaluates ``true``/``false`` joined by Ruby's ``and``/``or``/``not`` and parentheses:
    ``not`` binds tightest, ``and``/``or`` share one level, left to right; ``()`` is nil.
    Anything else is a syntax error (:class:`_Unevaluable`)."""

    def __init__(self, words: Sequence[str], text: str) -> None:
        self.words, self.text, self.pos = words, text, 0

    def value(self) -> bool:
        if not self.words:
            return False  # eval("") is nil
        try:
            result = self.expression()
        except RecursionError:
            raise _Unevaluable(f"compound expression {self.text!r} is nested too deeply") from None
        if self.pos != len(self.words):
            self.fail()
        return bool(result)

    def fail(self) -> None:
        raise _Unevaluable(f"compound expression {self.text!r} is not a valid expression")

    def peek(self) -> str | None:
        return self.words[self.pos] if self.pos < len(self.words) else None

    def expression(self) -> bool | None:
        left = self.negation()
        while self.peek() in ("and", "or"):
            op = self.words[self.pos]
            self.pos += 1
            right = self.negation()
            left = (right if left else left) if op == "and" else (left if left else right)
        return left

    def negation(self) -> bool | None:
        word = self.peek()
        self.pos += 1
        if word == "not":
            return not self.negation()
        if word in ("true", "false"):
            return word == "true"
        if word == "(":
            if self.peek() == ")":
                self.pos += 1
                return None
            inner = self.expression()
            if self.peek() != ")":
                self.fail()
            self.pos += 1
            return inner
        self.fail()
        return None  # unreachable


def authorize(
    *,
    caller: str,
    agent: str,
    action: str,
    facts: Mapping[str, Any],
    classes: Sequence[str],
    settings: PolicySettings,
    policies: Mapping[str, Policy],
    groups: Mapping[str, Sequence[str]] | None = None,
    data_plugin: DataPlugin | None = None,
) -> Decision:
    """Decide whether ``caller`` may run ``agent#action`` on a node with these facts and
    classes.  ``policies`` maps a file stem (``rpcutil``, ``default``) to its parsed file;
    ``groups`` is the parsed ``groups`` file.  Pure; never raises.
    """
    if not _AGENT.fullmatch(agent):
        return Decision(False, f"agent name {agent!r} cannot name a policy file")
    policy = policies.get(agent)
    if policy is None and settings.enable_default:
        policy = policies.get(settings.default_name)
    if policy is None:
        switch = "on" if settings.allow_unconfigured else "off"
        return Decision(
            settings.allow_unconfigured,
            f"no policy file for agent {agent} and plugin.actionpolicy.allow_unconfigured is {switch}",
        )
    node = _Node(
        caller, action, normalize_facts(dict(facts)), tuple(classes), groups or {}, data_plugin
    )
    for rule in policy.rules:
        try:
            matched = node.matches(rule)
        except _Unevaluable as exc:
            return Decision(
                False,
                f"{policy.name} line {rule.line} cannot be evaluated: {exc}",
                policy.name,
                rule.line,
            )
        if matched:
            verb = "allowed" if rule.allow else "denied"
            return Decision(
                rule.allow, f"{verb} by {policy.name} line {rule.line}", policy.name, rule.line
            )
    allowed = settings.allow_unconfigured if policy.default is None else policy.default
    source = (
        "policy default"
        if policy.default is not None
        else "allow_unconfigured (no 'policy default' line)"
    )
    return Decision(
        allowed,
        f"{'allowed' if allowed else 'denied'} by the {source} of {policy.name}",
        policy.name,
    )


# =========================================================================================
# Files on disk
# =========================================================================================


class PolicyDir:
    """``<configdir>/policies``: reads ``<agent>.policy``, the default policy and ``groups``
    for each request, re-parsing a file only when its mtime or size changed.  Problems in a
    file are logged once per version of the file.  Thread-safe."""

    def __init__(
        self, directory: str | os.PathLike[str], settings: PolicySettings = PolicySettings()
    ) -> None:
        self.directory = Path(directory)
        self.settings = settings
        self._cache: dict[Path, tuple[tuple[int, int], Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Config) -> PolicyDir:
        """The node's ``policies`` directory next to its config file, and its settings."""
        base = Path(cfg.configdir or "/etc/mcollective")
        return cls(base / "policies", PolicySettings.from_plugin_conf(cfg.plugin("actionpolicy")))

    def __repr__(self) -> str:
        return f"PolicyDir({str(self.directory)!r}, {self.settings!r})"

    def _read(self, path: Path, parse: Any) -> Any:
        """The parsed file, None if it does not exist; an unreadable file raises OSError."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        parsed = parse(path.read_bytes().decode("utf-8", "replace"))  # keep CRs, as Ruby does
        problems = parsed.problems if isinstance(parsed, Policy) else parsed[1]
        for problem in problems:
            log.warning("%s: %s", self.directory, problem)
        with self._lock:
            self._cache[path] = (stamp, parsed)
        return parsed

    def authorize(
        self,
        *,
        caller: str,
        agent: str,
        action: str,
        facts: Mapping[str, Any],
        classes: Sequence[str],
        data_plugin: DataPlugin | None = None,
    ) -> Decision:
        """:func:`authorize` with this directory's files.  Never raises: an unreadable file
        denies the request."""
        if not _AGENT.fullmatch(agent):
            return Decision(False, f"agent name {agent!r} cannot name a policy file")
        policies: dict[str, Policy] = {}
        names = [agent] + ([self.settings.default_name] if self.settings.enable_default else [])
        try:
            for stem in names:
                if not _AGENT.fullmatch(stem):
                    continue
                found = self._read(
                    self.directory / f"{stem}.policy",
                    lambda t, s=stem: parse_policy(t, f"{s}.policy"),
                )
                if found is not None:
                    policies[stem] = found
                    break
            groups: dict[str, tuple[str, ...]] = {}
            if policies:
                parsed_groups = self._read(self.directory / "groups", parse_groups)
                groups = parsed_groups[0] if parsed_groups else {}
        except OSError as exc:
            return Decision(
                False, f"cannot read the policy files in {self.directory}: {exc.strerror or exc}"
            )
        return authorize(
            caller=caller,
            agent=agent,
            action=action,
            facts=facts,
            classes=classes,
            settings=self.settings,
            policies=policies,
            groups=groups,
            data_plugin=data_plugin,
        )
