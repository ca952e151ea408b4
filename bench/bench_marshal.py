"""Benchmark: our Marshal codec against Ruby's own ``Marshal.load`` / ``Marshal.dump``.

Run ``.venv/bin/python bench/bench_marshal.py [--seconds S]`` from the repository root.

What it measures
    One realistic MCollective psk request of about 1.3 KB: the outer envelope (Hash with
    symbol keys, a filter with three fact filters, classes, identities, an identity Regexp
    and a compound filter, Bignum msgtime, US-ASCII hash and requestid) whose ``:body`` is
    the Marshal of an rpcutil RPC body with a data hash.  The bytes are made by our encoder
    and checked to be exactly what Ruby writes for the same value, so both sides work on the
    same bytes and the same structure.

    * decode: ``loads(bytes)`` vs ``Marshal.load(bytes)`` (outer layer only, like Ruby's),
      with the compiled fast path (``mcollective_py._cmarshal``) when it is built
    * decode-pure: the same ``loads`` on the pure-Python decoder alone (the fast path off, as
      with ``MCO_PY_PURE_MARSHAL=1``); the same figure as decode when it is not built
    * encode: ``dumps(value)`` vs ``Marshal.dump(value)`` of the decoded value

    ``bench/fleet.py`` reads the ``decode`` and ``encode`` lines (ours, Ruby, ratio).

    Each side is timed in ``--rounds`` alternating rounds (default 3) of 3 runs of about
    ``--seconds`` each (default 0.3), and each rate is the best run, so that load from other
    processes hits both sides alike.  Ruby times itself in a ``ruby -e`` loop, so process
    start-up is not counted.  The table shows operations per second and ours/Ruby ratios
    (> 1 means we are faster).  Nothing is asserted: this reports, it does not gate.

Needs ``ruby`` on PATH (Ruby 3.1 on Debian 12); without it only our numbers are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcollective_py import marshal  # noqa: E402
from mcollective_py.rubytypes import AsciiString, Regexp, Symbol  # noqa: E402

S = Symbol

RUBY_TIMER = r"""
data = File.binread(ARGV[0])
secs = Float(ARGV[1])
def rate(secs)
  best = 0.0
  3.times do
    n = 0
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    t = t0
    while t - t0 < secs
      200.times { yield }
      n += 200
      t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
    r = n / (t - t0)
    best = r if r > best
  end
  best
end
obj = Marshal.load(data)
same = Marshal.dump(obj) == data
dec = rate(secs) { Marshal.load(data) }
enc = rate(secs) { Marshal.dump(obj) }
puts "{\"decode\": #{dec}, \"encode\": #{enc}, \"same_bytes\": #{same}, \"ruby\": \"#{RUBY_VERSION}\"}"
"""


def build_request() -> Any:
    """A psk rpcutil request as a Ruby 2.12.5 client would send it (about 1.3 KB)."""
    agent = "rpcutil"
    body = {
        S("agent"): agent,
        S("action"): "get_fact",
        S("caller"): "uid=1000",
        S("data"): {
            S("fact"): "os.distro.codename",
            S("facts"): ["osfamily", "kernelrelease", "memorysize_mb", "processorcount"],
            S("labels"): {"team": "web", "tier": "frontend", "dc": "ams1", "owner": "ops"},
            S("timeout"): 30,
            S("threshold"): 0.75,
            S("verbose"): False,
            S("process_results"): True,
        },
    }
    return {
        S("body"): marshal.dumps(body),
        S("senderid"): "client1.example.com",
        S("requestid"): AsciiString("3d1ba8b744f559bf89b4bf8b02141ebe"),
        S("filter"): {
            "fact": [
                {S("fact"): "osfamily", S("value"): "Debian", S("operator"): "=="},
                {S("fact"): "memorysize_mb", S("value"): "2048", S("operator"): ">="},
                {S("fact"): "role", S("value"): "/web|app/", S("operator"): "=~"},
            ],
            "cf_class": ["apache", "mysql::server", "profile::base", "role::webserver"],
            "agent": [agent],
            "identity": [
                "web01.example.com",
                "web02.example.com",
                "db01.example.com",
                "db02.example.com",
                "cache01.example.com",
                "cache02.example.com",
                Regexp("^app\\d+\\.example\\.com$"),
            ],
            "compound": [
                [
                    {"statement": "osfamily=Debian"},
                    {"and": "and"},
                    {"statement": "/web/"},
                    {"or": "or"},
                    {"fstatement": {"name": "fstat", "params": "/etc/motd", "value": "size"}},
                ]
            ],
        },
        S("collective"): "mcollective",
        S("agent"): agent,
        S("callerid"): "uid=1000",
        S("ttl"): 60,
        S("msgtime"): 1795691252,
        S("hash"): AsciiString("fee6c6c6c1bab03770de4ff709e398a4"),
    }


def rate(func: Any, arg: Any, seconds: float) -> float:
    """Best of 3 runs of ``func(arg)`` in batches, in operations per second."""
    best = 0.0
    for _ in range(3):
        n = 0
        t0 = t = time.perf_counter()
        while t - t0 < seconds:
            for _ in range(200):
                func(arg)
            n += 200
            t = time.perf_counter()
        best = max(best, n / (t - t0))
    return best


def ruby_rates(data: bytes, seconds: float) -> dict[str, Any] | None:
    ruby = shutil.which("ruby")
    if ruby is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(
            [ruby, "-e", RUBY_TIMER, f.name, str(seconds)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one timed run")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two sides")
    args = parser.parse_args()

    data = marshal.dumps(build_request())
    value = marshal.loads(data)
    assert marshal.dumps(value) == data  # noqa: S101 - sanity, not a benchmark assert

    # Alternate the two languages and keep each one's best, so that load from other
    # processes on the machine hits both sides alike.
    ours = {"decode": 0.0, "decode-pure": 0.0, "encode": 0.0}
    ruby: dict[str, Any] | None = None
    fast = marshal._FAST
    for _ in range(args.rounds):
        ours["decode"] = max(ours["decode"], rate(marshal.loads, data, args.seconds))
        marshal._FAST = None  # the pure decoder alone
        try:
            ours["decode-pure"] = max(ours["decode-pure"], rate(marshal.loads, data, args.seconds))
        finally:
            marshal._FAST = fast
        ours["encode"] = max(ours["encode"], rate(marshal.dumps, value, args.seconds))
        theirs = ruby_rates(data, args.seconds)
        if theirs is not None:
            if ruby is None:
                ruby = theirs
            else:
                ruby["decode"] = max(ruby["decode"], theirs["decode"])
                ruby["encode"] = max(ruby["encode"], theirs["encode"])

    print(f"message: {len(data)} bytes (outer Marshal, :body {len(value[S('body')])} bytes)")
    print(f"python {sys.version.split()[0]}", end="")
    if ruby:
        print(f", ruby {ruby['ruby']}; Ruby re-dump byte-identical: {ruby['same_bytes']}")
    else:
        print("; ruby not found, Ruby columns skipped")
    if marshal.ACCELERATED:
        print("decode: compiled fast path (mcollective_py._cmarshal); decode-pure: pure Python")
    else:
        print("decode: pure Python (the compiled fast path is not built or MCO_PY_PURE_MARSHAL=1)")
    print()
    print(f"{'operation':<11} {'ours ops/s':>12} {'ruby ops/s':>12} {'ours/ruby':>10}")
    for op in ("decode", "decode-pure", "encode"):
        theirs = ruby["encode" if op == "encode" else "decode"] if ruby else None
        if theirs:
            print(f"{op:<11} {ours[op]:>12,.0f} {theirs:>12,.0f} {ours[op] / theirs:>9.2f}x")
        else:
            print(f"{op:<11} {ours[op]:>12,.0f} {'-':>12} {'-':>10}")


if __name__ == "__main__":
    main()
