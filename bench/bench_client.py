"""Wall time of ``mco-py`` vs Ruby ``mco`` on the same Ruby fleet, in the same run.

Usage (as root on a machine set up by ``scripts/setup``)::

    .venv/bin/python bench/bench_client.py [--runs 5]

Starts (or reuses) a 3-node Ruby fleet with ``../shared/lab/ruby-fleet`` in its own vhost,
then times each command pair alternately ``--runs`` times and prints the medians and the
ratio ours/theirs (below 1.0 means mco-py is faster).  Nothing is asserted: numbers are
reported, not enforced.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import MCO_PY, RUBY_FLEET, fleet_up, lab_dir  # noqa: E402

CASES = [
    ("ping -t 1 (3 nodes)", ["ping", "-t", "1"]),
    (
        "rpc rpcutil ping -I node1..3 (direct, no discovery)",
        ["rpc", "rpcutil", "ping", "-I", "node1", "-I", "node2", "-I", "node3"],
    ),
    ("rpc rpcutil ping (mc discovery 2 s)", ["rpc", "rpcutil", "ping"]),
    ("rpc rpcutil inventory -I node1", ["rpc", "rpcutil", "inventory", "-I", "node1"]),
]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = fleet_up(lab_dir("bench-fleet"), 3, vhost="/mco-py-bench")
    cfg = env["MCOLLECTIVE_CONFIG"]
    print(f"fleet: 3 Ruby nodes, {args.runs} runs per command, medians in seconds")
    print(f"{'command':58} {'mco-py':>8} {'mco':>8} {'ratio':>7}")
    try:
        for name, argv in CASES:
            ours, theirs = [], []
            for _ in range(args.runs):
                ours.append(timed(MCO_PY + argv, env))
                theirs.append(timed(["mco", *argv, "-c", cfg], env))
            o, t = statistics.median(ours), statistics.median(theirs)
            print(f"{name:58} {o:8.3f} {t:8.3f} {o / t:7.2f}")
    finally:
        subprocess.run([str(RUBY_FLEET), "down"], env=env, capture_output=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "0")
    raise SystemExit(main())
