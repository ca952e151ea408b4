"""What the CLI needs from an agent's DDL for one action: typed and validated inputs, the
display mode, output labels, the timeout and the aggregate summaries.

The DDL is required, as Ruby ``mco rpc`` requires it: it is what refuses bad input on the
operator's terminal instead of on the nodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..ddl import Action, AgentDDL, format_summaries, load_agent_ddl, prepare_request, summarize
from ..results import Results


@dataclass(frozen=True)
class ActionInfo:
    """One DDL action, ready for the CLI."""

    ddl: AgentDDL
    action: Action
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def timeout(self) -> float:
        return float(self.ddl.timeout or 10)

    @property
    def display(self) -> str:
        return self.action.display

    def prepare(self, arguments: Sequence[str]) -> dict[Any, Any]:
        """``key=value`` strings → typed inputs with the DDL's defaults; ValidationError
        lists every problem (exit 2, nothing sent)."""
        return prepare_request(self.ddl, self.action.name, list(arguments))

    def summary_text(self, results: Results, *, color: bool) -> str:
        """The aggregate block ``mco`` prints for this action, or ``""``."""
        if not self.action.aggregates:
            return ""
        return format_summaries(
            summarize(self.action, [dict(r.data) for r in results.replies]), color=color
        )


def load_action(agent: str, action: str, cfg: Config) -> ActionInfo:
    """The DDL action ``agent#action`` along libdir and the project's ``ddl/``.
    DDLError if no DDL is found, ValidationError if the action is not declared."""
    ddl = load_agent_ddl(agent, list(cfg.libdir))
    act = ddl.action(action)
    return ActionInfo(ddl, act, {str(k): o.display_as for k, o in act.outputs.items()})
