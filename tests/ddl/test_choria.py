"""Choria JSON DDL export, validated (jsonschema library) against our schema of the format."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mcollective_py.ddl import AgentDDL, parse_ddl, to_choria_json
from tests.ddl.conftest import GOLDEN, PROJECT_DDLS, VALID_FIXTURES, debian_ddls, kind_of

SCHEMA: dict[str, Any] = json.loads((GOLDEN / "choria" / "agent-ddl.schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
# Choria lists hold only strings; this fixture deliberately has [1, "two", :three].
NOT_CHORIA_COMPATIBLE = {"syntax_zoo"}
AGENTS = [p for p in debian_ddls() + PROJECT_DDLS + VALID_FIXTURES if kind_of(p) == "agent"]


def _export(path: Path) -> dict[str, Any]:
    ddl = parse_ddl(path.read_text(encoding="utf-8"), filename=path.name)
    assert isinstance(ddl, AgentDDL)
    return to_choria_json(ddl)


def problems(document: Any) -> list[str]:
    """Every schema violation as ``<json path>: <message>`` (empty: the document is valid)."""
    return [f"{e.json_path}: {e.message}" for e in VALIDATOR.iter_errors(document)]


def test_the_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    "path", [p for p in AGENTS if p.stem not in NOT_CHORIA_COMPATIBLE], ids=lambda p: p.stem
)
def test_export_validates_against_choria_schema(path: Path) -> None:
    document = json.loads(json.dumps(_export(path)))  # must be plain JSON
    assert problems(document) == []


def test_incompatible_list_is_reported_by_the_schema() -> None:
    path = next(p for p in VALID_FIXTURES if p.stem == "syntax_zoo")
    found = problems(_export(path))
    assert any(".input.choice" in p for p in found), found


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["actions"][0].update(display="flatten"), "$.actions[0].display: 'flatten'"),
        (lambda d: d["actions"][0].pop("description"), "'description' is a required property"),
        (lambda d: d["metadata"].update(timeout=1), "1 is less than the minimum of 2"),
        (lambda d: d["metadata"].update(name="Bad Name"), "'Bad Name' does not match"),
        (lambda d: d["actions"][0]["input"].update(Bad={}), "'Bad' does not match"),
        (
            lambda d: d["actions"][0]["input"]["server"].pop("validation"),
            "is not valid under any of the given schemas",
        ),
        (lambda d: d["actions"][0]["input"]["server"].pop("prompt"), "'prompt' is a required"),
        (lambda d: d["actions"][0]["output"]["state"].pop("display_as"), "'display_as' is a"),
    ],
)
def test_the_schema_catches_violations(mutate: Any, expected: str) -> None:
    document = copy.deepcopy(_export(next(p for p in PROJECT_DDLS if p.stem == "haproxy")))
    assert problems(document) == []
    mutate(document)
    found = problems(document)
    assert any(expected in p for p in found), found


def test_rpcutil_export_content() -> None:
    document = _export(Path("/usr/lib/ruby/vendor_ruby/mcollective/agent/rpcutil.ddl"))
    assert document["$schema"] == "https://choria.io/schemas/mcorpc/ddl/v1/agent.json"
    assert document["metadata"] == {
        "name": "rpcutil",
        "description": "General helpful actions that expose stats and internals to SimpleRPC clients",
        "author": "R.I.Pienaar <rip@devco.net>",
        "license": "Apache License, Version 2.0",
        "version": "1.0",
        "url": "https://docs.puppetlabs.com/mcollective/",
        "timeout": 10,
    }
    get_fact = next(a for a in document["actions"] if a["action"] == "get_fact")
    assert get_fact == {
        "action": "get_fact",
        "input": {
            "fact": {
                "prompt": "The name of the fact",
                "description": "The fact to retrieve",
                "type": "string",
                "default": None,
                "optional": False,
                "validation": "^[\\w\\-\\.]+$",
                "maxlength": 40,
            }
        },
        "output": {
            "fact": {
                "description": "The name of the fact being returned",
                "display_as": "Fact",
                "default": None,
            },
            "value": {
                "description": "The value of the fact",
                "display_as": "Value",
                "default": None,
            },
        },
        "display": "always",
        "description": "Retrieve a single fact from the fact store",
        "aggregate": [{"function": "summary", "args": ["value"]}],
    }


def test_export_converts_ruby_values() -> None:
    puppet = _export(next(p for p in VALID_FIXTURES if p.stem == "puppet_like"))
    disable = puppet["actions"][0]
    assert disable["aggregate"] == [
        {
            "function": "boolean_summary",
            "args": ["enabled", {"true": "enabled", "false": "disabled"}],
        }
    ]
    assert disable["input"]["message"]["validation"] == "shellsafe"
    summary = puppet["actions"][1]
    assert summary["output"]["tags"]["default"] == ["a", "b", 1, 2.0, None, True, {"k": [1]}]
    assert summary["aggregate"][0] == {
        "function": "average",
        "args": ["config_retrieval_time", {"format": "Average: %0.2f"}],
    }
    zoo = _export(next(p for p in VALID_FIXTURES if p.stem == "syntax_zoo"))
    alpha = zoo["actions"][0]
    assert alpha["input"]["legacy"]["validation"] == "\\A[a-z]+\\z"
    assert alpha["aggregate"][0] == {
        "function": "summary",
        "args": ["result", {"format": "%s merged"}],
    }
    assert alpha["display"] == "ok"
