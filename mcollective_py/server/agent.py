"""The agent framework: a Python class per agent, bound to its DDL; one method per action.

Writing an agent::

    class Haproxy(Agent):
        name = "haproxy"                      # its DDL is found as haproxy.ddl

        @action
        def disable(self, req: ActionRequest, reply: Reply) -> None:
            reply["state"] = ...              # outputs; pre-filled with DDL defaults
            if trouble:
                raise Aborted("why")          # statuscode 1, statusmsg "why"

Inputs: ``req.data`` holds *every* input the DDL declares for the action, validated, with
the DDL default filled in where the caller sent none (None when the DDL has no default;
Ruby's client sends the defaults of required inputs only, so the node fills the rest).
Actions read ``req.data["name"]`` and never re-resolve defaults.

Settings: ``self.settings`` (:class:`AgentSettings`) is the one reader of the agent's
``plugin.<agent>.*`` config keys, with one precedence for every agent::

    plugin.<agent>.<service>.<key>   (when the caller names a service)
    plugin.<agent>.<key>
    the agent class's ``defaults[key]``
    the call's own ``default``

An empty value counts as unset.  ``settings.seconds()`` reads a positive duration and
raises :class:`Aborted` naming the key and value otherwise.

Contract (what :meth:`Agent.handle` guarantees, on every host — our daemon or a Ruby node
through a shim):

* Every DDL action must have a method, and every ``@action`` method a DDL action: otherwise
  the agent refuses to load (:class:`AgentLoadError`).
* Inputs are validated against the DDL again on the node; a failure is statuscode 4 with
  Ruby's message.  An action not in the DDL is 4 as well ("... not declared in the DDL").
* Reply data starts as every DDL output's default; a method's returned mapping is merged in.
* Exceptions map to status codes: Aborted 1, UnknownAction 2, MissingData 3, InvalidData 4,
  anything else 5 (``statusmsg`` is the exception text; the traceback goes to the log only).
* The action runs with the DDL's timeout; past it the reply is statuscode 5 "... timed out"
  (Ruby sends no reply at all; an operator is better served by an answer).  The action's
  thread cannot be killed and is left to finish in the background.
* ``handle`` never raises.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..config import Config
from ..ddl import AgentDDL
from ..ddl.request import reply_defaults, request_problems
from ..errors import MCollectiveError
from ..rpc import RPCReply, StatusCode
from .policy import DENIED_MESSAGE

if TYPE_CHECKING:
    from ..ddl.model import Action
    from .facts import NodeState

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class ActionError(Exception):
    """Base of the exceptions an action raises on purpose; ``code`` is the statuscode."""

    code = StatusCode.UNKNOWN_ERROR


class Aborted(ActionError):
    """The action failed (Ruby's RPCAborted): statuscode 1."""

    code = StatusCode.ABORTED


class UnknownAction(ActionError):
    code = StatusCode.UNKNOWN_ACTION


class MissingData(ActionError):
    code = StatusCode.MISSING_DATA


class InvalidData(ActionError):
    code = StatusCode.INVALID_DATA


class AgentLoadError(MCollectiveError):
    """An agent cannot be loaded: DDL missing or out of step with the code."""

    exit_code = 3


def action(fn: F) -> F:
    """Mark a method as the implementation of the DDL action of the same name."""
    fn.__mco_action__ = True  # type: ignore[attr-defined]
    return fn


@dataclass(frozen=True)
class ActionRequest:
    """One call as the action sees it. ``data`` keys are plain strings (no process_results)."""

    agent: str
    action: str
    data: Mapping[str, Any]
    caller: str = ""
    sender: str = ""
    requestid: str = ""
    collective: str = ""
    ttl: int = 60
    msgtime: int = 0


@dataclass
class Reply:
    """The reply being built: outputs plus status. ``fail`` records a failure and carries on
    (Ruby's ``reply.fail``); raising Aborted stops the action."""

    data: dict[str, Any] = field(default_factory=dict)
    statuscode: int = 0
    statusmsg: str = "OK"

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def fail(self, msg: str, code: int = 1) -> None:
        self.statuscode, self.statusmsg = int(code), msg

    def to_rpc(self) -> RPCReply:
        return RPCReply(self.statuscode, self.statusmsg, dict(self.data))


@dataclass(frozen=True)
class AgentContext:
    """What the node tells its agents: who it is, its settings and facts (live callables)."""

    identity: str = "localhost"
    settings: Mapping[str, str] = field(default_factory=dict)
    facts: Callable[[], Mapping[str, Any]] = dict
    classes: Callable[[], list[str]] = list

    @classmethod
    def from_config(
        cls, cfg: Config, state: NodeState, *, identity: str | None = None
    ) -> AgentContext:
        """The context every agent of a node gets: its identity (``identity`` overrides the
        config's, e.g. the start-up one on SIGHUP), every config setting, live facts and
        classes from ``state``.  The one place an AgentContext is made from config."""
        return cls(
            identity=identity or cfg.identity,
            settings={k: s.value for k, s in cfg.settings.items()},
            facts=state.facts,
            classes=state.classes,
        )


class AgentSettings(Mapping[str, str]):
    """One agent's ``plugin.<agent>.*`` settings (keys without the prefix), read with the
    precedence in the module docstring.  As a Mapping it holds the configured values only."""

    def __init__(
        self, agent: str, settings: Mapping[str, str], defaults: Mapping[str, str] | None = None
    ) -> None:
        prefix = f"plugin.{agent}."
        self.agent = agent
        self.defaults = dict(defaults or {})
        self._own = {k[len(prefix) :]: v for k, v in settings.items() if k.startswith(prefix)}

    def __getitem__(self, key: str) -> str:
        return self._own[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._own)

    def __len__(self) -> int:
        return len(self._own)

    def configured(self, key: str, service: str | None = None) -> str | None:
        """The configured value only: ``<service>.<key>``, else ``<key>``, else None."""
        if service and self._own.get(f"{service}.{key}"):
            return self._own[f"{service}.{key}"]
        return self._own.get(key) or None

    def value(self, key: str, service: str | None = None, default: str | None = None) -> str | None:
        """The configured value, else the class default, else ``default``."""
        return self.configured(key, service) or self.defaults.get(key) or default

    def text(self, key: str, service: str | None = None) -> str:
        """:meth:`value`, or ``""`` when nothing is configured and there is no default."""
        return self.value(key, service) or ""

    def seconds(self, key: str, service: str | None = None, default: float | None = None) -> float:
        """A positive number of seconds; Aborted naming ``plugin.<agent>.<key>`` otherwise
        (also when nothing is configured and there is no default)."""
        raw = self.value(key, service)
        if raw is None and default is not None:
            return default
        try:
            value = float(raw) if raw is not None else -1.0
        except ValueError:
            value = -1.0
        if not value > 0:
            raise Aborted(
                f"plugin.{self.agent}.{key} = {raw!r} is not a positive number of seconds"
            )
        return value


def complete_inputs(act: Action, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every input of ``act``: the DDL default (a fresh copy) wherever the
    caller sent none or None; inputs the DDL does not declare are kept as sent."""
    out = {str(k): v for k, v in data.items()}
    for name, item in act.inputs.items():
        if out.get(name) is None:
            out[name] = copy.deepcopy(item.default)
    return out


class Agent:
    """Base of every Python agent. Subclasses set ``name`` and define ``@action`` methods."""

    name: ClassVar[str] = ""
    #: fallbacks for :class:`AgentSettings` (``plugin.<name>.<key>`` not configured)
    defaults: ClassVar[Mapping[str, str]] = {}

    def __init__(self, ddl: AgentDDL, context: AgentContext | None = None) -> None:
        self.ddl = ddl
        self.context = context or AgentContext()
        self.settings = AgentSettings(self.name, self.context.settings, self.defaults)
        methods = self.action_methods()
        missing = [a for a in ddl.actions if a not in methods]
        extra = [m for m in methods if m not in ddl.actions]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"DDL actions without a method: {', '.join(missing)}")
            if extra:
                parts.append(f"@action methods not in the DDL: {', '.join(extra)}")
            raise AgentLoadError(
                f"agent {self.name!r} does not match its DDL {ddl.path or ''}: " + "; ".join(parts)
            )

    @classmethod
    def action_methods(cls) -> dict[str, Callable[..., Any]]:
        """``{action name: method}`` for every ``@action`` method of this class."""
        out = {}
        for attr in dir(cls):
            fn = getattr(cls, attr, None)
            if callable(fn) and getattr(fn, "__mco_action__", False):
                out[attr] = fn
        return out

    #: set by hosts that must answer before an outer deadline (the shim runner)
    timeout_override: float | None = None

    @property
    def timeout(self) -> float:
        if self.timeout_override is not None:
            return self.timeout_override
        return float(self.ddl.timeout or 10)

    def denied_reply(self, action: str) -> RPCReply:
        """What a caller refused by policy gets: statuscode 1, Ruby's message, and the DDL's
        output defaults as data (as Ruby sends them)."""
        act = self.ddl.actions.get(action)
        data = {str(k): v for k, v in reply_defaults(act).items()} if act is not None else {}
        return RPCReply(StatusCode.ABORTED, DENIED_MESSAGE, data)

    def handle(self, req: ActionRequest) -> RPCReply:
        """Validate, dispatch and answer one request. Never raises."""
        try:
            act = self.ddl.actions.get(req.action)
            if act is None:
                return RPCReply(
                    StatusCode.INVALID_DATA,
                    f"Attempted to call action {req.action} for {self.name} but it's not declared in the DDL",
                    {},
                )
            problems = request_problems(self.ddl, req.action, dict(req.data))
            if problems:
                return RPCReply(StatusCode.INVALID_DATA, problems[0].ruby_message, {})
            reply = Reply({str(k): v for k, v in reply_defaults(act).items()})
            req = replace(req, data=complete_inputs(act, req.data))
            method = getattr(self, req.action)
            return self._run_with_timeout(method, req, reply)
        except Exception as exc:  # noqa: BLE001 - handle never raises
            log.exception("%s#%s failed before running", self.name, req.action)
            return RPCReply(StatusCode.UNKNOWN_ERROR, f"{type(exc).__name__}: {exc}", {})

    def _run_with_timeout(
        self, method: Callable[..., Any], req: ActionRequest, reply: Reply
    ) -> RPCReply:
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = method(req, reply)
            except BaseException as exc:  # noqa: BLE001 - reported below
                box["error"] = exc

        t = threading.Thread(target=target, name=f"{self.name}#{req.action}", daemon=True)
        t.start()
        t.join(self.timeout)
        if t.is_alive():
            log.error("%s#%s timed out after %s s", self.name, req.action, self.timeout)
            return RPCReply(
                StatusCode.UNKNOWN_ERROR,
                f"{self.name}#{req.action} timed out after {self.timeout:g} seconds",
                dict(reply.data),
            )
        err = box.get("error")
        if err is not None:
            if isinstance(err, ActionError):
                reply.fail(str(err), int(err.code))
            else:
                log.error(
                    "%s#%s failed: %s: %s",
                    self.name,
                    req.action,
                    type(err).__name__,
                    err,
                    exc_info=err,
                )
                reply.fail(
                    f"{type(err).__name__}: {err}" if not str(err) else str(err),
                    StatusCode.UNKNOWN_ERROR,
                )
            return reply.to_rpc()
        result = box.get("result")
        if isinstance(result, Mapping):
            reply.data.update({str(k): v for k, v in result.items()})
        return reply.to_rpc()
