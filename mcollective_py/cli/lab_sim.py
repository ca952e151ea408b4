"""``mco-py lab sim --nodes N -c SERVER_CFG``: a simulated fleet in the foreground.

Serves N identities (``sim-00001`` …) answering ``discovery`` and ``rpcutil`` on the broker,
collective and security that ``SERVER_CFG`` names, from a few processes, until SIGTERM or
Ctrl-C.  Prints one line when every identity is bound (scripts wait for it), and one when it
stops.  Exit 0 on a clean stop; 2 for bad arguments; 3 when the config or broker is unusable
or a simulator process died.
"""

from __future__ import annotations

import argparse
import signal
from typing import Any

from .common import Terminal


def register(lab_sub: Any) -> None:
    p = lab_sub.add_parser(
        "sim",
        help="simulate N nodes (rpcutil + discovery) for load tests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-c",
        "--config",
        metavar="SERVER_CFG",
        required=True,
        help="server.cfg naming the broker, collective(s) and security (psk/ssl)",
    )
    p.add_argument(
        "--nodes",
        "-n",
        type=int,
        default=100,
        metavar="N",
        help="how many identities to serve, 1 to 10000 (default 100)",
    )
    p.add_argument(
        "--processes",
        "-p",
        type=int,
        default=None,
        metavar="P",
        help="processes (one broker connection each; default one per 500 nodes, max 4)",
    )
    p.add_argument(
        "--delay",
        default="none",
        metavar="SPEC",
        help="per-reply delay in ms: none, fixed:MS, uniform:LO:HI, exp:MEAN[:MAX]",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the delay distribution")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, term: Terminal) -> int:
    from ..errors import TransportError
    from ..lab import sim

    p = sim.plan(args.config, args.nodes, args.processes, args.delay, args.seed)
    stop: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:  # only flips a flag
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(r: sim.Ready) -> None:
        term.out.write(
            f"lab sim: {r.nodes} nodes ready ({r.first} .. {r.last}) in {r.processes} "
            f"process(es) on {', '.join(r.brokers)}; delay {p.delay}; pids "
            f"{' '.join(str(x) for x in r.pids)}\n"
        )
        term.out.flush()

    died = sim.run(p, lambda: bool(stop), on_ready=ready)
    if died:
        raise TransportError(f"{died} simulator process(es) died; run with --debug to see why")
    term.out.write("lab sim: stopped\n")
    term.out.flush()
    return 0
