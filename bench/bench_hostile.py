"""Benchmark: what the hostile inputs of issue 10 cost a node now.

Run ``.venv/bin/python bench/bench_hostile.py`` from the repository root.

What it measures (best of ``--runs`` runs, default 5; nothing is asserted, this reports):

* ``dag``: a psk request whose data holds ``x = [x, x]`` twenty levels deep (about 500 bytes):
  the time ``PskSecurity.decode_request`` takes to refuse it, next to the time it takes just to
  walk the same value once in Python (what audit rendering or validation did with it before).
* ``yaml``: a 4 MB YAML request to an ssl node with ``ssl_serializer = yaml``: the time to
  refuse it (size cap, nothing parsed), next to parsing a 128 KiB one (the cap's worst case).
* ``bomb``: a 0.3 MB tar.gz holding 300 MB of zeros: the time to refuse it, and the bytes it
  wrote before it was refused.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcollective_py.agents import extraction  # noqa: E402
from mcollective_py.errors import MCollectiveError  # noqa: E402
from mcollective_py.security.psk import PskSecurity  # noqa: E402
from mcollective_py.serializers import YAML  # noqa: E402
from tests.hostile.corpus import bomb_tar  # noqa: E402
from tests.hostile.test_decode_limits import dag, dag_request  # noqa: E402


def best(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        try:
            fn()
        except (MCollectiveError, ValueError):
            pass
        times.append(time.perf_counter() - t)
    return min(times)


def walk(value: Any) -> int:
    stack, n = [value], 0
    while stack:
        v = stack.pop()
        n += 1
        if isinstance(v, list):
            stack.extend(v)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    psk = PskSecurity("bench-psk", callerid="uid=0")
    payload = dag_request()
    value = dag(20)
    print(f"dag   payload {len(payload)} bytes")
    print(
        f"      refused at decode in {best(lambda: psk.decode_request(payload), args.runs) * 1e3:.3f} ms"
    )
    t = best(lambda: walk(value), 1)
    print(f"      one walk of the value would take {t * 1e3:.0f} ms ({walk(value):,} items)")

    class Node(PskSecurity):
        pass

    node = Node("bench-psk")
    node.serializer = YAML
    big = b"---\n" + b"- x\n" * (1024 * 1024)
    print(
        f"yaml  {len(big)} bytes refused in {best(lambda: node.decode_request(big), args.runs) * 1e3:.3f} ms"
    )
    cap = b"---\n" + b"- x\n" * (128 * 1024 // 4 - 1)
    print(
        f"      parsing {len(cap)} bytes (the cap) takes {best(lambda: YAML.loads(cap), 1) * 1e3:.0f} ms"
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    try:
        archive = tmp / "bomb.tar.gz"
        archive.write_bytes(bomb_tar())
        dest = tmp / "rel"

        def unpack() -> None:
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            extraction.extract(archive, dest)

        t = best(unpack, args.runs)
        written = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
        print(
            f"bomb  {archive.stat().st_size} bytes refused in {t * 1e3:.3f} ms, {written} bytes written"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
