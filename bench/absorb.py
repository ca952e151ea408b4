"""Replies per second the client side absorbs: pika's consumer path, psk check, Marshal decode.

Usage (from the repository root, a client.cfg naming a vhost with the MCollective exchanges)::

    .venv/bin/python bench/absorb.py -c client.cfg [--replies 20000] [--recv-bytes 4096,16384]

What it measures
    ``--replies`` rpcutil ping replies, encoded exactly as a node encodes them (psk + Marshal,
    the package's own :class:`PskSecurity`), are first published into a fresh reply queue of
    the client's own connector; only then the clock starts and the client takes them in the
    way ``Client`` does: ``connector.receive`` → ``security.decode_reply`` (digest check +
    two Marshal loads) → ``RPCReply.from_wire``.  Three rates are printed:

    * ``full``: receive + verify + decode (what bounds ``mco-py`` on a big fleet);
    * ``pika``: receive only (the consumer path: frames, properties, our Delivery);
    * ``decode``: verify + decode only, from memory (no broker).

    Each rate is given per second of wall time and per second of the process's CPU time
    (the second moves less when other work shares the machine).  ``--recv-bytes`` repeats
    the broker rates for each pika socket-read size given, alternately (``0``: what the
    connector sets, ``connectors.rabbitmq.RECV_BYTES``), for a before/after in one run.

Nothing is asserted: numbers are reported, not enforced.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcollective_py import config as config_mod  # noqa: E402
from mcollective_py.connectors import rabbitmq  # noqa: E402
from mcollective_py.connectors.base import Target  # noqa: E402
from mcollective_py.connectors.rabbitmq import RabbitMQConnector  # noqa: E402
from mcollective_py.message import Reply, new_requestid  # noqa: E402
from mcollective_py.rpc import RPCReply  # noqa: E402
from mcollective_py.security import from_config  # noqa: E402


@dataclass(frozen=True)
class AbsorbRates:
    """Replies per second for each stage, and how many replies were used."""

    replies: int
    full: float
    pika: float
    decode: float
    full_cpu: float = 0.0
    pika_cpu: float = 0.0


def payloads(cfg: config_mod.Config, n: int) -> list[bytes]:
    """``n`` rpcutil ping replies from ``sim-00001``… as a node sends them."""
    sec = from_config(cfg)
    rid = new_requestid()
    now = int(time.time())
    return [
        sec.encode_reply(
            Reply(
                senderid=f"sim-{i:05d}",
                requestid=rid,
                senderagent="rpcutil",
                msgtime=now,
                body=RPCReply(0, "OK", {"pong": now}).to_wire(),
            )
        )
        for i in range(1, n + 1)
    ]


def _fill(cfg: config_mod.Config, queue: str, data: list[bytes]) -> None:
    producer = RabbitMQConnector.from_config(cfg)
    producer.connect()
    try:
        for i, p in enumerate(data, 1):
            producer.publish(Target.reply(queue), p, sender=f"sim-{i:05d}")
    finally:
        producer.close()  # flushes every frame before closing


def _drain(
    conn: RabbitMQConnector, n: int, decode: bool, cfg: config_mod.Config
) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to take in ``n`` queued replies."""
    sec = from_config(cfg)
    got = 0
    t, c = time.perf_counter(), time.process_time()
    while got < n:
        d = conn.receive(5.0)
        if d is None:
            raise SystemExit(f"only {got} of {n} replies arrived")
        if decode:
            RPCReply.from_wire(sec.decode_reply(d.payload).body)
        got += 1
    return time.perf_counter() - t, time.process_time() - c


def measure(cfg: config_mod.Config, n: int, recv_bytes: int = 0) -> AbsorbRates:
    """The three rates; ``recv_bytes`` > 0 sets pika's socket-read size on the measured
    connection (0: whatever the connector sets)."""
    data = payloads(cfg, n)
    sec = from_config(cfg)
    t = time.perf_counter()
    for p in data:
        RPCReply.from_wire(sec.decode_reply(p).body)
    decode_rate = n / (time.perf_counter() - t)
    rates = []
    for decode in (True, False):
        conn = RabbitMQConnector.from_config(cfg)
        conn.connect()
        if recv_bytes:
            rabbitmq._tune_receive_buffer(conn._conn, recv_bytes)
        try:
            q = conn.reply_queue()
            _fill(cfg, q, data)
            rates.append(_drain(conn, n, decode, cfg))
        finally:
            conn.close()
    (fw, fc), (pw, pc) = rates
    return AbsorbRates(n, n / fw, n / pw, decode_rate, n / fc, n / pc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-c", "--config", required=True, help="client.cfg (psk, rabbitmq)")
    ap.add_argument("--replies", type=int, default=20_000)
    ap.add_argument(
        "--recv-bytes",
        default="0",
        help="comma-separated pika socket-read sizes to compare (0: the connector's own)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="repeat the comparison")
    args = ap.parse_args()
    cfg = config_mod.load(args.config)
    sizes = [int(x) for x in args.recv_bytes.split(",") if x.strip()]
    for _ in range(args.rounds):
        for size in sizes:
            r = measure(cfg, args.replies, size)
            shown = size or rabbitmq.RECV_BYTES
            print(
                f"{r.replies} replies, {shown} B reads: "
                f"full {r.full:,.0f}/s ({r.full_cpu:,.0f}/s of CPU)  "
                f"pika {r.pika:,.0f}/s ({r.pika_cpu:,.0f}/s of CPU)  decode {r.decode:,.0f}/s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
