"""A small JSON Schema (draft-07) validator for the keywords Choria's DDL schema uses.

The project has no jsonschema dependency; this covers exactly: type, enum, required,
properties, patternProperties, additionalProperties (boolean), items, allOf, anyOf,
$ref (local "#/definitions/..."), minLength, pattern, minimum -- and refuses a schema
that uses any other validation keyword, so nothing is silently ignored.
"""

from __future__ import annotations

import re
from typing import Any

VALIDATION_KEYWORDS = {
    "type", "enum", "required", "properties", "patternProperties", "additionalProperties",
    "items", "allOf", "anyOf", "$ref", "minLength", "pattern", "minimum",
}  # fmt: skip
ANNOTATIONS = {"$schema", "id", "$id", "description", "examples", "definitions", "title", "default"}


def keywords_used(schema: Any, found: set[str] | None = None) -> set[str]:
    """Every keyword appearing in schema objects (not inside property-name maps)."""
    found = set() if found is None else found
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "patternProperties", "definitions"):
                for sub in value.values():
                    keywords_used(sub, found)
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                keywords_used(value, found)
            elif key in ("allOf", "anyOf"):
                for sub in value:
                    keywords_used(sub, found)
    return found


def _type_ok(value: Any, name: str) -> bool:
    return {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    }[name](value)


def errors(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> list[str]:
    """All validation errors of ``value`` against ``schema`` (empty list: valid)."""
    unknown = set(schema) - VALIDATION_KEYWORDS - ANNOTATIONS
    if unknown:
        raise ValueError(f"unsupported schema keywords {sorted(unknown)} at {path}")
    out: list[str] = []
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/definitions/"), ref
        out += errors(value, root["definitions"][ref.split("/")[-1]], root, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, t) for t in types):
            return out + [f"{path}: {value!r} is not of type {types}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(f"{path}: {value!r} is shorter than {schema['minLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if "minimum" in schema and _type_ok(value, "number") and value < schema["minimum"]:
        out.append(f"{path}: {value!r} is less than {schema['minimum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: {key!r} is required")
        for key, sub in value.items():
            matched = False
            if key in schema.get("properties", {}):
                matched = True
                out += errors(sub, schema["properties"][key], root, f"{path}.{key}")
            for pattern, subschema in schema.get("patternProperties", {}).items():
                if re.search(pattern, key):
                    matched = True
                    out += errors(sub, subschema, root, f"{path}.{key}")
            if not matched and schema.get("additionalProperties") is False:
                out.append(f"{path}: additional property {key!r} is not allowed")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += errors(item, schema["items"], root, f"{path}[{i}]")
    for sub in schema.get("allOf", []):
        out += errors(value, sub, root, path)
    if "anyOf" in schema:
        branches = [errors(value, sub, root, path) for sub in schema["anyOf"]]
        if all(branches):
            out.append(
                f"{path}: matches none of anyOf: " + " | ".join("; ".join(b) for b in branches)
            )
    return out
