"""Where ``mco-py`` spends its start-up: wall time and ``python -X importtime`` of one command.

Usage (from the repository root; MCOLLECTIVE_CONFIG must point at a working client.cfg)::

    .venv/bin/python bench/startup.py [--runs 7] [--top 12] -- rpc rpcutil ping -I sim-00001

Runs the command ``--runs`` times with bytecode writing allowed, as many times with
``PYTHONDONTWRITEBYTECODE=1`` and as many with mco-py's start-up caches off (the DDL cache
and the dataclass code cache: what they save), and prints the minimum wall time of each (the minimum is the
least disturbed by other load), then the ``--top`` modules by their own import time (minimum
over the runs) and the totals of a few groups: pika and asyncio, the editable-install finder,
``dataclasses`` creation and ``re`` compilation are not visible as modules, so they show up
inside the modules that do them.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def one(cmd: list[str], env: dict[str, str]) -> tuple[float, dict[str, int], dict[str, int]]:
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mcollective_py", *cmd],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t
    own: dict[str, int] = {}
    cum: dict[str, int] = {}
    for line in r.stderr.splitlines():
        m = LINE.match(line)
        if m:
            own[m.group(4)] = int(m.group(1))
            cum[m.group(4)] = int(m.group(2))
    return took, own, cum


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("cmd", nargs="+")
    args = ap.parse_args()
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for label, env in (
        ("bytecode", base),
        ("PYTHONDONTWRITEBYTECODE=1", dict(base, PYTHONDONTWRITEBYTECODE="1")),
        (
            "caches off (MCO_PY_CODE_CACHE=off MCO_PY_DDL_CACHE=off)",
            dict(base, MCO_PY_CODE_CACHE="off", MCO_PY_DDL_CACHE="off"),
        ),
    ):
        walls = []
        best_own: dict[str, int] = defaultdict(lambda: 10**12)
        best_cum: dict[str, int] = defaultdict(lambda: 10**12)
        for _ in range(args.runs):
            took, own, cum = one(args.cmd, env)
            walls.append(took)
            for k, v in own.items():
                best_own[k] = min(best_own[k], v)
            for k, v in cum.items():
                best_cum[k] = min(best_cum[k], v)
        print(
            f"{label}: wall min {min(walls) * 1000:.0f} ms, median {sorted(walls)[len(walls) // 2] * 1000:.0f} ms"
        )
        groups = {
            "all imports": sum(best_own.values()),
            "mcollective_py.*": sum(
                v for k, v in best_own.items() if k.startswith("mcollective_py")
            ),
            "pika.*": sum(v for k, v in best_own.items() if k.startswith("pika")),
            "asyncio (pulled in by pika.adapters)": sum(
                v for k, v in best_own.items() if k.startswith(("asyncio", "_asyncio"))
            ),
            "editable finder": sum(v for k, v in best_own.items() if k.startswith("__editable__")),
        }
        for k, v in groups.items():
            print(f"  {k:40} {v / 1000:7.1f} ms (own time)")
        print(f"  top {args.top} modules by own import time:")
        for k, v in sorted(best_own.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"    {k:44} {v / 1000:7.1f} ms  (cumulative {best_cum[k] / 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
