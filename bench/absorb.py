"""Replies per second the client side absorbs: pika's consumer path, psk check, Marshal decode.

Usage (from the repository root, a client.cfg naming a vhost with the MCollective exchanges)::

    .venv/bin/python bench/absorb.py -c client.cfg [--replies 20000]

What it measures
    ``--replies`` rpcutil ping replies, encoded exactly as a node encodes them (psk + Marshal,
    the package's own :class:`PskSecurity`), are first published into a fresh reply queue of
    the client's own connector; only then the clock starts and the client takes them in the
    way ``Client`` does: ``connector.receive`` → ``security.decode_reply`` (digest check +
    two Marshal loads) → ``RPCReply.from_wire``.  Three rates are printed:

    * ``full``: receive + verify + decode (what bounds ``mco-py`` on a big fleet);
    * ``pika``: receive only (the consumer path: frames, properties, our Delivery);
    * ``decode``: verify + decode only, from memory (no broker).

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


def _drain(conn: RabbitMQConnector, n: int, decode: bool, cfg: config_mod.Config) -> float:
    sec = from_config(cfg)
    got = 0
    t = time.perf_counter()
    while got < n:
        d = conn.receive(5.0)
        if d is None:
            raise SystemExit(f"only {got} of {n} replies arrived")
        if decode:
            RPCReply.from_wire(sec.decode_reply(d.payload).body)
        got += 1
    return time.perf_counter() - t


def measure(cfg: config_mod.Config, n: int) -> AbsorbRates:
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
        try:
            q = conn.reply_queue()
            _fill(cfg, q, data)
            rates.append(n / _drain(conn, n, decode, cfg))
        finally:
            conn.close()
    return AbsorbRates(n, rates[0], rates[1], decode_rate)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-c", "--config", required=True, help="client.cfg (psk, rabbitmq)")
    ap.add_argument("--replies", type=int, default=20_000)
    args = ap.parse_args()
    cfg = config_mod.load(args.config)
    r = measure(cfg, args.replies)
    print(
        f"{r.replies} replies: full {r.full:,.0f}/s  pika {r.pika:,.0f}/s  decode {r.decode:,.0f}/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
