"""Requests per second one node serves for ``rpcutil ping``: our daemon vs Ruby mcollectived.

Usage::

    .venv/bin/python bench/bench_daemon.py [--seconds 5] [--clients 4]

Starts one Ruby node (``../shared/lab/ruby-fleet up 1``) and one ``mco-py server`` node, each
alone in its own vhost and both called ``node1``, then drives each in turn with the same
load: ``--clients`` threads, each with its own broker connection, sending directed
``rpcutil ping`` requests back to back (one outstanding request per thread) for
``--seconds``.  Prints completed requests/s and the ratio ours/theirs (above 1.0 means the
Python daemon serves more).  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mcollective_py import config  # noqa: E402
from mcollective_py.client import CallOptions, Client  # noqa: E402
from mcollective_py.filter import Filter  # noqa: E402
from tests.conftest import RUBY_FLEET, PythonFleet, fleet_up, lab_dir  # noqa: E402


def drive(cfg_file: str, seconds: float, clients: int) -> tuple[float, int]:
    done = [0] * clients
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        cfg = config.load(cfg_file, env={})
        c = Client.from_config(cfg)
        flt = Filter.from_cli(identity=["node1"])
        opts = CallOptions(timeout=5.0)
        try:
            while time.monotonic() < stop:
                res = c.rpc("rpcutil", "ping", {}, flt, opts)
                if res.all_ok:
                    done[i] += 1
                else:
                    errors[i] += 1
        finally:
            c.connector.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0), sum(errors)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    renv = fleet_up(lab_dir("bench-ruby-node"), 1, vhost="/mco-py-bench-ruby")
    py = PythonFleet(lab_dir("bench-py-node"), "/mco-py-bench-py", ["node1"])
    try:
        py.up()
        drive(renv["MCOLLECTIVE_CONFIG"], 1.0, 1)  # warm up both
        drive(str(py.client_cfg), 1.0, 1)
        ruby_rps, ruby_err = drive(renv["MCOLLECTIVE_CONFIG"], args.seconds, args.clients)
        py_rps, py_err = drive(str(py.client_cfg), args.seconds, args.clients)
    finally:
        py.down()
        subprocess.run([str(RUBY_FLEET), "down"], env=renv, capture_output=True)
    print(f"rpcutil ping, {args.clients} concurrent clients, {args.seconds:g} s each, one node")
    print(f"{'daemon':28} {'req/s':>8} {'failed':>7}")
    print(f"{'Ruby mcollectived 2.12.5':28} {ruby_rps:8.1f} {ruby_err:7d}")
    print(f"{'mco-py server':28} {py_rps:8.1f} {py_err:7d}")
    print(f"ratio mco-py / Ruby: {py_rps / ruby_rps:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
