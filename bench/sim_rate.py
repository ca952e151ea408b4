"""Replies per second the fleet simulator (``mco-py lab sim``) sends.

Usage (from the repository root, on a machine set up by ``scripts/setup``)::

    MCO_TEST_NS=me .venv/bin/python bench/sim_rate.py [--nodes 1000] [--processes P]
        [--rounds 3] [--no-client]

What it measures
    A fresh ``mco-py lab sim --nodes N`` (psk, Marshal, no delay) in its own vhost (named
    after ``MCO_TEST_NS``, as the tests name theirs).  Then, ``--rounds`` times each:

    * ``discovery``: one broadcast ``discovery``/``ping`` request,
    * ``rpcutil``: one broadcast ``rpcutil``/``ping`` request (empty filter), and
    * ``directed``: one ``rpcutil``/``ping`` request with every identity in its identity
      filter, published once per identity to the directed exchange (what ``-I`` with
      direct addressing sends; this rate includes the client's own N publishes),

    published by a raw pika client that only counts the deliveries on its reply queue (no
    decoding, no Delivery objects: the client is never the bound).  The rate is
    ``replies / (last reply - publish)``; the time to the first reply is shown too.

    The simulator processes' CPU time per round (``/proc``; 10 ms ticks) gives a second
    figure, replies per simulator CPU second, which moves less when other work shares the
    machine.

    * ``mco-py``: ``mco-py rpc rpcutil ping`` (default mc discovery) and the time in its own
      ``Finished processing N / N hosts in T ms`` line (skipped with ``--no-client``).

Nothing is asserted: numbers are reported, not enforced.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pika  # noqa: E402

from mcollective_py import config as config_mod  # noqa: E402
from mcollective_py.filter import Filter  # noqa: E402
from mcollective_py.rpc import RPCRequest  # noqa: E402
from mcollective_py.security import from_config  # noqa: E402
from tests.conftest import MCO_PY, ns_vhost  # noqa: E402
from tests.simfleet import Sim, encoded_request, sim_workspace  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def request(cfg: config_mod.Config, agent: str, identities: Sequence[str] = ()) -> bytes:
    sec = from_config(cfg)
    body: object = (
        "ping" if agent == "discovery" else RPCRequest("rpcutil", "ping", sec.callerid).to_wire()
    )
    return encoded_request(sec, agent, body, Filter.from_cli(identity=identities).to_wire())


def one_round(
    ch: Any,
    conn: Any,
    q: str,
    seen: list[float],
    payload: bytes,
    agent: str,
    expect: int,
    directed: Sequence[str] = (),
) -> tuple[int, float, float]:
    """(replies, seconds to the last reply, seconds to the first) for one broadcast, or
    for one copy of ``payload`` per identity in ``directed`` (direct addressing, as
    ``mco-py rpc … -I a -I b`` sends); ``seen`` is filled by the queue's consumer (a time
    per delivery)."""
    seen.clear()
    props = pika.BasicProperties(reply_to=q, headers={"mc_sender": "bench"})
    t0 = time.perf_counter()
    if directed:
        for name in directed:
            ch.basic_publish("mcollective_directed", name, payload, props)
    else:
        ch.basic_publish("mcollective_broadcast", agent, payload, props)
    deadline = t0 + 30
    idle_until = None
    while len(seen) < expect and time.perf_counter() < deadline:
        n = len(seen)
        conn.process_data_events(time_limit=0.05)
        if len(seen) == n:
            idle_until = idle_until or time.perf_counter() + 3
            if time.perf_counter() > idle_until:
                break
        else:
            idle_until = None
    if not seen:
        return 0, float("nan"), float("nan")
    return len(seen), seen[-1] - t0, seen[0] - t0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def mco_py_rpc(env: dict[str, str]) -> str:
    r = subprocess.run(
        [*MCO_PY, "rpc", "rpcutil", "ping"], env=env, cwd=REPO, capture_output=True, text=True
    )
    m = re.search(r"Finished processing (\d+) / (\d+) hosts in ([\d.]+) ms", ANSI.sub("", r.stdout))
    return f"{m.group(1)}/{m.group(2)} in {float(m.group(3)):.0f} ms" if m else "FAILED"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--processes", type=int, default=None, help="lab sim --processes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-client", action="store_true", help="skip the mco-py rpc rounds")
    args = ap.parse_args()

    root, env = sim_workspace("sim-rate", "mco-py-simrate")
    vhost = ns_vhost("mco-py-simrate")
    cfg = config_mod.load(str(root / "client.cfg"), env={}, home=str(root), system_dirs=())
    extra = ["--processes", str(args.processes)] if args.processes else []
    try:
        fleet = Sim(root / "server.cfg", args.nodes, env, *extra, ready_timeout=300, settle=1)
    except RuntimeError as e:
        raise SystemExit(str(e)) from None
    try:
        ready = fleet.output().strip()
        print(ready, flush=True)
        pids = [int(x) for x in ready.rsplit("pids ", 1)[1].split()]
        conn = pika.BlockingConnection(
            pika.ConnectionParameters(
                "127.0.0.1", 5672, vhost, pika.PlainCredentials("mcollective", "marionette")
            )
        )
        ch = conn.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        seen: list[float] = []
        ch.basic_consume(
            queue=q,
            on_message_callback=lambda *_: seen.append(time.perf_counter()),
            auto_ack=True,
        )
        names = [f"sim-{i:05d}" for i in range(1, args.nodes + 1)]
        for mode in ("discovery", "rpcutil", "directed"):
            agent = "rpcutil" if mode == "directed" else mode
            targets = names if mode == "directed" else []
            rates, cpu_rates = [], []
            for _ in range(args.rounds):
                payload = request(cfg, agent, targets)
                cpu = cpu_seconds(pids)
                got, last, first = one_round(ch, conn, q, seen, payload, agent, args.nodes, targets)
                time.sleep(0.3)  # the sim's CPU of this round: wait for its last tick
                cpu = cpu_seconds(pids) - cpu
                rate = got / last if got else 0.0
                rates.append(rate)
                cpu_rates.append(got / cpu if cpu else float("inf"))
                print(
                    f"{mode:9s} {got}/{args.nodes} replies, first after {first * 1000:.0f} ms, "
                    f"last after {last * 1000:.0f} ms: {rate:,.0f} replies/s; "
                    f"simulator CPU {cpu * 1000:.0f} ms",
                    flush=True,
                )
                time.sleep(0.2)
            print(
                f"{mode:9s} median {statistics.median(rates):,.0f} replies/s, "
                f"{statistics.median(cpu_rates):,.0f} replies per simulator CPU second",
                flush=True,
            )
        conn.close()
        if not args.no_client:
            for _ in range(args.rounds):
                print(f"mco-py rpc rpcutil ping: {mco_py_rpc(env)}", flush=True)
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
