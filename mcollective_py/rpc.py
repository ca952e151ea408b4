"""SimpleRPC bodies (the inner message of every RPC request/reply) and status codes.

Wire shapes (Symbol keys, in this order, as Ruby writes them):

* request: ``{:agent, :action, :caller, :data => {inputs..., :process_results => bool}}``
* reply:   ``{:statuscode => Int, :statusmsg => String, :data => Hash}``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from .errors import SerializationError
from .rubytypes import AsciiString, Symbol


class StatusCode(IntEnum):
    """SimpleRPC status codes and the label ``mco`` prints for each."""

    OK = 0
    ABORTED = 1
    UNKNOWN_ACTION = 2
    MISSING_DATA = 3
    INVALID_DATA = 4
    UNKNOWN_ERROR = 5

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    StatusCode.OK: "",
    StatusCode.ABORTED: "Request Aborted",
    StatusCode.UNKNOWN_ACTION: "Unknown Action",
    StatusCode.MISSING_DATA: "Missing Request Data",
    StatusCode.INVALID_DATA: "Invalid Request Data",
    StatusCode.UNKNOWN_ERROR: "Unknown Request Status",
}


def status_label(code: int) -> str:
    """``mco``'s label for a status code; codes outside 0..5 have none (empty string)."""
    try:
        return StatusCode(code).label
    except ValueError:
        return ""


def _get(body: Mapping[Any, Any], key: str, default: Any = None) -> Any:
    """Symbol key first, then String key — the server's own fallback."""
    for k in body:
        if k == key:
            return body[k]
    return default


@dataclass(frozen=True)
class RPCRequest:
    """An RPC call: which agent and action, who calls, and the inputs (``data``)."""

    agent: str
    action: str
    caller: str
    data: Mapping[str, Any] = field(default_factory=dict)
    process_results: bool = True

    def to_wire(self) -> dict[Symbol, Any]:
        data: dict[Any, Any] = {
            Symbol(k) if isinstance(k, str) else k: v for k, v in self.data.items()
        }
        data[Symbol("process_results")] = self.process_results
        # Ruby's action name comes from Symbol#to_s, hence US-ASCII.
        return {
            Symbol("agent"): self.agent,
            Symbol("action"): AsciiString(self.action) if self.action.isascii() else self.action,
            Symbol("caller"): self.caller,
            Symbol("data"): data,
        }

    @classmethod
    def from_wire(cls, body: Any) -> RPCRequest:
        """Parse a decoded inner body; raises SerializationError if it is not an RPC body."""
        if not isinstance(body, dict):
            raise SerializationError(f"RPC request body is a {type(body).__name__}, not a Hash")
        agent, action = _get(body, "agent"), _get(body, "action")
        data = _get(body, "data", {})
        if not isinstance(agent, str) or not isinstance(action, str):
            raise SerializationError("RPC request body lacks a String :agent or :action")
        if not isinstance(data, dict):
            raise SerializationError(f"RPC request :data is a {type(data).__name__}, not a Hash")
        pr = _get(data, "process_results", True)
        inputs = {str(k): v for k, v in data.items() if k != "process_results"}
        caller = _get(body, "caller", "")
        return cls(
            str(agent), str(action), str(caller or ""), inputs, pr is not False and pr is not None
        )


@dataclass(frozen=True)
class RPCReply:
    """A node's answer to one RPC call."""

    statuscode: int
    statusmsg: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[Symbol, Any]:
        return {
            Symbol("statuscode"): int(self.statuscode),
            Symbol("statusmsg"): self.statusmsg,
            Symbol("data"): {
                Symbol(k) if isinstance(k, str) else k: v for k, v in self.data.items()
            },
        }

    @classmethod
    def from_wire(cls, body: Any) -> RPCReply:
        """Parse a decoded reply body; raises SerializationError if it is not an RPC reply."""
        if not isinstance(body, dict):
            raise SerializationError(f"RPC reply body is a {type(body).__name__}, not a Hash")
        code = _get(body, "statuscode")
        if not isinstance(code, int) or isinstance(code, bool):
            raise SerializationError("RPC reply body lacks an Integer :statuscode")
        data = _get(body, "data", {})
        if not isinstance(data, dict):
            data = {}
        return cls(
            code, str(_get(body, "statusmsg", "") or ""), {str(k): v for k, v in data.items()}
        )
