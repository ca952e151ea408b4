"""Synthetic catalogs for the orchestrator tests: one load-balanced service on N nodes."""

from __future__ import annotations

from typing import Any

import yaml

from mcollective_py.release.catalog import Catalog, parse_catalog

SHA = {"1.0.0": "a" * 64, "1.1.0": "b" * 64, "1.2.0": "c" * 64}


def catalog_doc(
    nodes: int = 4,
    lbs: tuple[str, ...] = ("lb1",),
    *,
    service: str = "shop",
    batch: dict[str, Any] | None = None,
    migrations: dict[str, Any] | None = None,
    pools: dict[int, str] | None = None,
    health: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``nodes`` nodes web1..webN on 127.0.12.(10+i), behind ``lbs``."""
    svc: dict[str, Any] = {
        "artifact": "http://127.0.12.2:8000/{service}-{version}.tar.gz",
        "port": 8081,
        "health": health or {"type": "http", "path": "/health"},
        "lb": {"mode": "http"},
        "batch": batch or {"size": 1},
        "releases": {v: {"sha256": s} for v, s in SHA.items()},
        "environments": {
            "lab": {
                "frontend": "127.0.12.1:8080",
                "nodes": {
                    f"web{i}": {"address": f"127.0.12.{10 + i}"}
                    | ({"pool": (pools or {})[i]} if i in (pools or {}) else {})
                    for i in range(1, nodes + 1)
                },
            }
        },
    }
    if migrations:
        svc["migrations"] = migrations
    return {
        "catalog": 1,
        "environments": {"lab": {"load_balancers": list(lbs)}},
        "services": {service: svc},
    }


def catalog(*args: Any, **kw: Any) -> Catalog:
    return parse_catalog(
        yaml.safe_dump(catalog_doc(*args, **kw), sort_keys=False), source="test-catalog.yaml"
    )
