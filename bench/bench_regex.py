"""Benchmark: the engine under ``mcollective_py.ruby.regex`` -- PyPI ``regex`` against ``re``.

Run ``.venv/bin/python bench/bench_regex.py [--seconds S]`` from the repository root.

What it measures
    1. Typical patterns users write in filters and DDL validations (``^web\\d+``, a
       hostname validation, a fact regex, a POSIX class) searched in typical values: matches
       per second for our translated pattern on ``regex`` (with the time budget and
       ``concurrent=True``, as the package runs it) and for the same translation on ``re``
       where ``re`` can compile it.  The ratio shows what the budget and the engine cost.
    2. Catastrophic patterns (``(.|.|.|.)*X``, ``(a|aa)+X``, ``(a+)+$``) on 24-40 character
       values: wall time of one search with ``re`` (stopped after ``--cap`` seconds in a child
       process) and with ``regex`` under the package's budget.
    3. Whether other threads run while ``regex`` works on a catastrophic pattern: how many
       increments a counting thread makes during one budgeted search, with and without
       ``concurrent=True``.

Nothing is asserted: this reports, it does not gate.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import regex  # noqa: E402

from mcollective_py.ruby.regex import DEFAULT_TIMEOUT, compile_ruby_regex, translate  # noqa: E402

TYPICAL = [
    (r"^web\d+", "web12.example.org"),
    (r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}\z", "app-server_01.prod"),
    (r"^(Debian|Ubuntu)$", "Debian"),
    (r"[[:alpha:]]+", "café-42"),
    (r"^[a-z]+$", "ok\n; rm -rf /"),
]
CATASTROPHIC = [
    (r"(.|.|.|.)*X", "a" * 24),
    (r"(a|aa)+X", "a" * 40),
    (r"(a+)+$", "a" * 30 + "b"),
]


def rate(fn: object, seconds: float) -> float:
    assert callable(fn)
    best = 0.0
    for _ in range(3):
        n = 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            for _ in range(200):
                fn()
            n += 200
        best = max(best, n / elapsed)
    return best


def _re_search(pattern: str, text: str) -> None:
    re.compile(pattern, re.MULTILINE).search(text)


def re_wall_time(pattern: str, text: str, cap: float) -> str:
    proc = multiprocessing.Process(target=_re_search, args=(pattern, text))
    t0 = time.perf_counter()
    proc.start()
    proc.join(cap)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return f"> {cap:.0f} s (stopped)"
    return f"{time.perf_counter() - t0:.3f} s"


def counting_during(pattern: str, text: str, concurrent: bool) -> int:
    stop = threading.Event()
    count = 0

    def counter() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1

    compiled = regex.compile(translate(pattern), regex.MULTILINE)
    t = threading.Thread(target=counter)
    t.start()
    try:
        compiled.search(text, timeout=DEFAULT_TIMEOUT, concurrent=concurrent)
    except TimeoutError:
        pass
    stop.set()
    t.join()
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0.2)
    ap.add_argument("--cap", type=float, default=10.0)
    args = ap.parse_args()

    print("1. typical patterns: searches per second")
    print(f"   {'pattern':42} {'regex+budget':>13} {'re':>13} {'regex/re':>9}")
    for source, text in TYPICAL:
        ours = compile_ruby_regex(source)
        ours_rate = rate(lambda o=ours, t=text: o.search(t), args.seconds)
        try:
            plain = re.compile(translate(source), re.MULTILINE)
            re_rate = rate(lambda p=plain, t=text: p.search(t), args.seconds)
            ratio = f"{ours_rate / re_rate:9.2f}"
            re_text = f"{re_rate:13,.0f}"
        except re.error:
            re_text, ratio = f"{'(no re)':>13}", f"{'-':>9}"
        print(f"   {source!r:42} {ours_rate:13,.0f} {re_text} {ratio}")

    print(f"\n2. catastrophic patterns: one search (budget {DEFAULT_TIMEOUT} s)")
    print(f"   {'pattern':16} {'value':>10} {'re':>20} {'regex+budget':>22}")
    for source, text in CATASTROPHIC:
        engine = regex.compile(translate(source), regex.MULTILINE)  # not the refusal cache
        t0 = time.perf_counter()
        try:
            engine.search(text, timeout=DEFAULT_TIMEOUT, concurrent=True)
            outcome = "answered"
        except TimeoutError:
            outcome = "timed out"
        ours_time = f"{time.perf_counter() - t0:.3f} s {outcome}"
        print(
            f"   {source:16} {len(text):>6} chr {re_wall_time(source, text, args.cap):>20} "
            f"{ours_time:>22}"
        )

    print("\n3. a counting thread during one budgeted search of (a|aa)+X on 40 chars")
    for concurrent in (False, True):
        n = counting_during(r"(a|aa)+X", "a" * 40, concurrent)
        print(f"   concurrent={concurrent!s:5}  increments: {n:,}")


if __name__ == "__main__":
    main()
