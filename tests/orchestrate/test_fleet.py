"""ClientFleet: DDL-checked, typed requests to static identities; the orchestrator's imports."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from mcollective_py.errors import ValidationError
from mcollective_py.filter import Filter
from mcollective_py.orchestrate.fleet import ClientFleet
from mcollective_py.results import Results
from mcollective_py.rubytypes import Symbol
from tests.conftest import REPO


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[Any, Any], Filter, Any]] = []

    def rpc(self, agent: str, action: str, data: dict[Any, Any], flt: Filter, opts: Any) -> Results:
        self.calls.append((agent, action, data, flt, opts))
        return Results(agent, action, "r", tuple(str(i) for i in flt.identity), ())


def test_typed_defaults_static_identities_and_options() -> None:
    client = RecordingClient()
    fleet = ClientFleet(client, lambda t: ("opts", t))
    res = fleet.call(
        "haproxy",
        "to_maintenance",
        {"server": "web1", "backend": "shop", "timeout": 30},
        ["lb1", "lb2"],
        timeout=60,
    )
    assert res.discovered == ("lb1", "lb2")
    agent, action, data, flt, opts = client.calls[0]
    assert (agent, action, opts) == ("haproxy", "to_maintenance", ("opts", 60))
    assert data == {Symbol("server"): "web1", Symbol("backend"): "shop", Symbol("timeout"): 30}
    assert all(isinstance(k, Symbol) for k in data)
    assert flt.is_identity_only() and [str(i) for i in flt.identity] == ["lb1", "lb2"]


def test_refused_inputs_are_never_sent() -> None:
    client = RecordingClient()
    fleet = ClientFleet(client, lambda t: None)
    with pytest.raises(ValidationError, match="server"):
        fleet.call("haproxy", "to_maintenance", {"server": "web1; rm -rf /"}, ["lb1"], timeout=5)
    with pytest.raises(ValidationError):
        fleet.call(
            "deploy", "activate", {"service": "shop", "version": "../../etc"}, ["web1"], timeout=5
        )
    assert client.calls == []


def test_the_orchestrator_imports_no_broker_connector_or_security() -> None:
    code = (
        "import sys\n"
        "import mcollective_py.orchestrate.plan, mcollective_py.orchestrate.run, "
        "mcollective_py.orchestrate.journal, mcollective_py.orchestrate.fleet, "
        "mcollective_py.orchestrate.events\n"
        "bad = [m for m in sys.modules if m == 'pika' or m.startswith(('mcollective_py.connectors', "
        "'mcollective_py.security', 'mcollective_py.client', 'mcollective_py.cli'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
