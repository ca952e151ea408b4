"""Choria JSON DDL export, validated against Choria's published agent schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mcollective_py.ddl import AgentDDL, parse_ddl, to_choria_json
from tests.ddl import jsonschema_subset
from tests.ddl.conftest import GOLDEN, PROJECT_DDLS, VALID_FIXTURES, debian_ddls, kind_of

SCHEMA: dict[str, Any] = json.loads((GOLDEN / "choria" / "agent.schema.json").read_text())
# Choria lists hold only strings; this fixture deliberately has [1, "two", :three].
NOT_CHORIA_COMPATIBLE = {"syntax_zoo"}
AGENTS = [p for p in debian_ddls() + PROJECT_DDLS + VALID_FIXTURES if kind_of(p) == "agent"]


def _export(path: Path) -> dict[str, Any]:
    ddl = parse_ddl(path.read_text(encoding="utf-8"), filename=path.name)
    assert isinstance(ddl, AgentDDL)
    return to_choria_json(ddl)


def test_the_validator_covers_every_keyword_of_the_schema() -> None:
    used = jsonschema_subset.keywords_used(SCHEMA)
    assert used <= jsonschema_subset.VALIDATION_KEYWORDS | jsonschema_subset.ANNOTATIONS


@pytest.mark.parametrize(
    "path", [p for p in AGENTS if p.stem not in NOT_CHORIA_COMPATIBLE], ids=lambda p: p.stem
)
def test_export_validates_against_choria_schema(path: Path) -> None:
    document = json.loads(json.dumps(_export(path)))  # must be plain JSON
    assert jsonschema_subset.errors(document, SCHEMA, SCHEMA) == []


def test_incompatible_list_is_reported_by_the_schema() -> None:
    path = next(p for p in VALID_FIXTURES if p.stem == "syntax_zoo")
    problems = jsonschema_subset.errors(_export(path), SCHEMA, SCHEMA)
    assert any(".input.choice" in p for p in problems)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["actions"][0].update(display="flatten"), "display"),
        (lambda d: d["actions"][0].pop("description"), "'description' is required"),
        (lambda d: d["metadata"].update(timeout=1), "less than 2"),
        (lambda d: d["metadata"].update(name="Bad Name"), "does not match"),
        (lambda d: d["actions"][0]["input"].update(Bad={}), "additional property"),
        (lambda d: d["actions"][0]["input"]["server"].pop("validation"), "anyOf"),
    ],
)
def test_the_validator_catches_violations(mutate: Any, expected: str) -> None:
    document = copy.deepcopy(_export(next(p for p in PROJECT_DDLS if p.stem == "haproxy")))
    mutate(document)
    assert any(expected in p for p in jsonschema_subset.errors(document, SCHEMA, SCHEMA))


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
