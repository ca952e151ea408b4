"""Fixtures for the agent tests: agents bound to the project's DDLs, and real HAProxy."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mcollective_py.ddl import AgentDDL, load_ddl_file
from mcollective_py.rpc import RPCReply
from mcollective_py.server.agent import ActionRequest, Agent, AgentContext
from tests.agents_py.lab import HAProxyLab

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "agents"

A = TypeVar("A", bound=Agent)


def ddl(name: str) -> AgentDDL:
    loaded = load_ddl_file(REPO / "ddl" / f"{name}.ddl")
    assert isinstance(loaded, AgentDDL)
    return loaded


def make_agent(cls: type[A], settings: Mapping[str, str] | None = None, **context: Any) -> A:
    """An agent bound to ``ddl/<name>.ddl`` with ``plugin.*`` settings, as a node loads it."""
    return cls(ddl(cls.name), AgentContext(settings=dict(settings or {}), **context))


def call(agent: Agent, action: str, **data: Any) -> RPCReply:
    """What a host does with one request: ``agent.handle(ActionRequest(...))``."""
    return agent.handle(
        ActionRequest(agent=agent.name, action=action, data=data, caller="cert=test")
    )


def golden_cases(kind: str) -> list[Path]:
    """The JSON case files of ``tests/golden/agents/<kind>/``, sorted."""
    return sorted((GOLDEN / kind).glob("*.json"))


def load_case(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture
def hap_lab() -> Iterator[HAProxyLab]:
    """A fresh HAProxy with backend ``app`` (web1..web3, all UP) and ``other``."""
    lab = HAProxyLab()
    try:
        yield lab
    finally:
        lab.stop()
