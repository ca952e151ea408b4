"""Node-side matching: Ruby's ``Security::Base#validate_filter?`` for one node.

:func:`check` gives the verdict with Ruby's pass/fail counts and, where Ruby would raise, the
reason; :func:`matches` only the verdict.  Neither ever raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import RegexTimeout, SerializationError
from ..rubytypes import Symbol
from .compound import _eval_stack
from .model import DataPlugin, Filter
from .node import _Abort, _node

# =========================================================================================
# Node-side matching (Security::Base#validate_filter? and the Util.has_* helpers)
# =========================================================================================


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`check`.

    ``passed``/``failed`` count the tests as Ruby does (identity is one test; each class,
    agent, fact and compound stack is one test; an empty filter starts at passed=1).
    ``error`` is set when Ruby would have raised (the request is then dropped: no match).
    """

    matched: bool
    passed: int = 0
    failed: int = 0
    error: str | None = None


def _is_ruby_empty_hash(data: Mapping[Any, Any]) -> bool:
    """Ruby ``Util.empty_filter?``: ``== {}`` or ``==`` the five-key empty filter exactly."""
    if not data:
        return True
    keys = {"fact", "cf_class", "agent", "identity", "compound"}
    return (
        len(data) == len(keys)
        and all(isinstance(k, str) and not isinstance(k, Symbol) and k in keys for k in data)
        and all(isinstance(v, (list, tuple)) and not v for v in data.values())
    )


def check(
    filter: Filter | Mapping[str, Any],
    *,
    identity: str,
    facts: Mapping[str, Any],
    classes: Sequence[str],
    agents: Sequence[str],
    data_plugin: DataPlugin | None = None,
) -> Verdict:
    """Ruby's ``validate_filter?`` for one node, with the counts and any Ruby error.

    ``filter`` is a :class:`Filter` or a raw wire hash; for a raw hash Ruby's emptiness rule
    is applied to the hash itself (a hash with only some of the five keys, all empty, is
    *not* empty, so it matches nothing), and a malformed hash gives ``error``.
    ``facts`` are the node's facts as a fact source returns them (normalized here: scalars
    to strings, containers keep their shape); ``classes`` are the lines of ``classes.txt``;
    ``agents`` the loaded agent names; ``data_plugin`` serves compound fstatements.
    Never raises.
    """
    if isinstance(filter, Filter):
        flt = filter
        passed = 1 if flt.empty() else 0
    else:
        passed = 1 if isinstance(filter, Mapping) and _is_ruby_empty_hash(filter) else 0
        try:
            flt = Filter.from_wire(filter)
        except SerializationError as exc:
            return Verdict(False, error=str(exc))
    node = _node(identity, facts, classes, agents, data_plugin)
    failed = 0
    try:
        for klass in flt.cf_class:
            ok = node.has_cf_class(klass)
            passed, failed = passed + ok, failed + (not ok)
        for stack in flt.compound:
            ok = _eval_stack(node, stack)
            passed, failed = passed + ok, failed + (not ok)
        for agent in flt.agent:
            ok = node.has_agent(agent) or agent == "mcollective"
            passed, failed = passed + ok, failed + (not ok)
        for fact in flt.fact:
            ok = node.has_fact(fact.fact, fact.value, fact.operator)
            passed, failed = passed + ok, failed + (not ok)
        if flt.identity:
            hits = [node.has_identity(entry) for entry in flt.identity]
            ok = hits.count(True) == 1
            passed, failed = passed + ok, failed + (not ok)
    except (_Abort, RegexTimeout) as exc:
        return Verdict(False, passed, failed, error=str(exc))
    return Verdict(failed == 0 and passed > 0, passed, failed)


def matches(
    filter: Filter | Mapping[str, Any],
    *,
    identity: str,
    facts: Mapping[str, Any],
    classes: Sequence[str],
    agents: Sequence[str],
    data_plugin: DataPlugin | None = None,
) -> bool:
    """True if a node with this identity, facts, classes and agents accepts the request.

    Exactly Ruby's ``Security::Base#validate_filter?``: every class, agent, fact and compound
    entry is one test, identity is one test passed only when exactly one entry matches,
    agent ``mcollective`` always passes, ``/re/`` entries lose every ``/`` and are unanchored
    regexes.  See :func:`check` for the arguments and the counts.  Never raises.
    """
    return check(
        filter,
        identity=identity,
        facts=facts,
        classes=classes,
        agents=agents,
        data_plugin=data_plugin,
    ).matched
