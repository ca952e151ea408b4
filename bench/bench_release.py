"""Benchmark: rendering the release data of a large catalog.

Run ``.venv/bin/python bench/bench_release.py [--services N]`` from the repository root.

What it measures
    A synthetic catalog of N services (default 70) in 3 environments (lab, staging,
    production): each with 2 releases, 4 to 9 nodes per environment on loopback addresses,
    an HTTP or TCP health check, and a load balancer for 2 of every 3 services.

    * parse: ``parse_catalog`` of the whole YAML text (schema check included)
    * render: ``render_release`` of one release of every service in every environment
      (N x 3 releases, each 1 or 2 files)
    * write: writing all those files into an empty temporary Hiera tree (atomic writes,
      fsync included), then a second render compared byte for byte with the files on disk

It prints the times and whether the second render was byte-identical.  Nothing about time
is asserted: this reports, it does not gate (a byte difference exits 1).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcollective_py.release import plan_writes, render_release, write_files  # noqa: E402
from mcollective_py.release.catalog import parse_catalog  # noqa: E402

ENVIRONMENTS = ("lab", "staging", "production")


def synthetic_catalog(n: int) -> dict[str, Any]:
    services: dict[str, Any] = {}
    for i in range(n):
        name = f"svc{i:03d}"
        http = i % 2 == 0
        svc: dict[str, Any] = {
            "description": f"synthetic service {i}",
            "role": f"role{i % 7}",
            "deploy": "puppet" if i % 5 == 0 else "artifact",
            "artifact": "https://artifacts.example/{service}/{service}-{version}.tar.gz",
            "port": 8000 + i,
            "health": {"type": "http", "path": "/health"} if http else {"type": "tcp"},
            "releases": {
                f"1.{i}.0": {"sha256": f"{i:064x}"},
                f"1.{i}.1": {"sha256": f"{i + 1000:064x}"},
            },
            "environments": {},
        }
        if i % 3 != 2:
            svc["lb"] = {"mode": "http" if http else "tcp"}
        for e, env in enumerate(ENVIRONMENTS):
            place: dict[str, Any] = {
                "nodes": {
                    f"{name}-{k}.{env}": {"address": f"127.0.{e}.{(i * 10 + k) % 250 + 1}"}
                    for k in range(4 + i % 6)
                }
            }
            if "lb" in svc:
                place["frontend"] = f"127.0.{e + 10}.{i % 250 + 1}:{10000 + i}"
            svc["environments"][env] = place
        services[name] = svc
    return {
        "catalog": 1,
        "environments": {env: {"load_balancers": [f"lb1.{env}"]} for env in ENVIRONMENTS},
        "defaults": {"batch": {"size": "25%", "canary": 1}},
        "services": services,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=70, help="number of services (default 70)")
    args = ap.parse_args()
    text = yaml.safe_dump(synthetic_catalog(args.services), sort_keys=False)

    t0 = time.perf_counter()
    catalog = parse_catalog(text, source="synthetic.yaml")
    t1 = time.perf_counter()
    releases = [
        (s.name, s.releases[-1].version, env)
        for s in catalog.services.values()
        for env in ENVIRONMENTS
    ]
    rendered = [render_release(catalog, *r) for r in releases]
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        for files in rendered:
            write_files(plan_writes(root, files))
        t3 = time.perf_counter()
        again = [render_release(catalog, *r) for r in releases]
        stale = [
            c.path for files in again for c in plan_writes(root, files) if c.status != "unchanged"
        ]
    n_files = sum(len(f) for f in rendered)
    print(
        f"catalog: {args.services} services x {len(ENVIRONMENTS)} environments, {len(text) // 1024} KiB of YAML"
    )
    print(f"parse + check : {(t1 - t0) * 1000:8.1f} ms")
    print(
        f"render        : {(t2 - t1) * 1000:8.1f} ms  ({len(releases)} releases, {n_files} files)"
    )
    print(f"write         : {(t3 - t2) * 1000:8.1f} ms  (atomic, fsync)")
    print(f"total         : {(t3 - t0) * 1000:8.1f} ms")
    print(
        f"second render : {'byte-identical' if not stale and again == rendered else f'{len(stale)} files differ'}"
    )
    return 1 if stale or again != rendered else 0


if __name__ == "__main__":
    sys.exit(main())
