"""What the CLI needs from an agent's DDL for one action: typed inputs, display, labels,
timeout and aggregate summaries.

Until the DDL subsystem is wired in, an agent without a loadable DDL falls back to sending
its inputs as Strings and showing every reply with raw key names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..results import Results


@dataclass(frozen=True)
class ActionInfo:
    agent: str
    action: str
    timeout: float = 10.0
    display: str = "always"
    labels: Mapping[str, str] = field(default_factory=dict)

    def prepare(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Typed, validated inputs (with the DDL's defaults); ValidationError lists problems."""
        return dict(raw)

    def summarize(self, results: Results) -> list[tuple[str, str]]:
        """``(display_as, report)`` per aggregate the DDL declares for this action."""
        return []


def load_action(agent: str, action: str, cfg: Config) -> ActionInfo:
    return ActionInfo(agent, action)
