"""``bench/run``: mco-py against Ruby ``mco`` on the same broker, the same simulated fleet, the
same run — one table, every figure a ratio.

Usage (as root, from the repository root, on a machine set up by ``scripts/setup``)::

    bench/run [--runs 3] [--sizes 3,100,1000] [--big 10000] [--write docs/performance.md]
    bench/run --sizes 1000 --only rpc,quiet,direct-all,absorb   # a few rows (minutes, not 7)

For each fleet size a fresh ``mco-py lab sim --nodes N`` serves ``sim-00001``… in its own
vhost (psk, Marshal); then each command pair is timed alternately ``--runs`` times (mco-py,
then Ruby ``mco``, same client.cfg) and the medians are compared.  A run only counts when the
command exited 0 and received every reply it should; otherwise the cell says so.

Ratio convention: mco-py's cost / Ruby's cost (wall time, or 1/rate), so **below 1.00 means
mco-py is faster**.  ``--only KEYS`` runs only the named rows (:data:`ROW_KEYS`); a
row measured in an earlier run is then not in the new table, so a partial table says which
rows it holds.  ``--write FILE`` replaces the block between the ``bench/run`` markers in
FILE with the table, the machine and the date.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.simfleet import Sim, sim_workspace  # noqa: E402

#: the command users run: the venv's console script (not ``python -m``)
MCO_PY = [str(Path(sys.executable).parent / "mco-py")]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MARK_BEGIN = "<!-- bench/run: begin -->"
MARK_END = "<!-- bench/run: end -->"
#: the row groups ``--only`` can name, in table order
ROW_KEYS = {
    "cli": "CLI start (--help)",
    "ping": "ping -t 2",
    "rpc": "rpc rpcutil ping, default mc discovery",
    "quiet": "rpc rpcutil ping --discovery-quiet 200 (Ruby: default discovery)",
    "direct-all": "rpc rpcutil ping -I (every node, direct)",
    "direct-one": "rpc rpcutil ping -I sim-00001, with and without PYTHONDONTWRITEBYTECODE",
    "processing": "replies/s during rpc (sizes >= 1000)",
    "big": "mco-py alone at --big nodes",
    "absorb": "replies/s absorbed",
    "marshal": "Marshal encode/decode",
    "daemon": "daemon requests/s",
}
QUIET_MS = 200


@dataclass
class Outcome:
    """One command's timed runs: wall seconds of the runs that got every reply."""

    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    replies: int | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    what: str
    nodes: str
    ours: str
    theirs: str
    ratio: str
    note: str = ""


def replies_seen(stdout: str) -> int | None:
    """How many replies a ping/rpc run reports (mco-py and Ruby print the same lines)."""
    text = ANSI.sub("", stdout)
    m = re.search(r"Finished processing (\d+) / (\d+) hosts", text)
    if m:
        return int(m.group(1))
    m = re.search(r"^(\d+) replies max:", text, re.M)
    if m:
        return int(m.group(1))
    if "No responses received" in text:
        return 0
    return None


def timed(cmd: Sequence[str], env: dict[str, str], want: int | None) -> tuple[float, str]:
    """(seconds, "") or (seconds, why it does not count)."""
    t = time.perf_counter()
    r = subprocess.run(list(cmd), env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t
    if r.returncode != 0:
        first = (ANSI.sub("", r.stderr).strip().splitlines() or [""])[-1][:120]
        return took, f"exit {r.returncode}: {first}"
    if want is not None:
        got = replies_seen(r.stdout)
        if got != want:
            return took, f"{got} of {want} replies"
    return took, ""


def compare(
    ours: Sequence[str],
    theirs: Sequence[str] | None,
    env: dict[str, str],
    runs: int,
    want: int | None,
    ours_env: dict[str, str] | None = None,
) -> tuple[Outcome, Outcome]:
    a, b = Outcome(), Outcome()
    for _ in range(runs):
        for out, cmd, e in ((a, ours, ours_env or env), (b, theirs, env)):
            if cmd is None:
                continue
            took, why = timed(cmd, e, want)
            (out.failures.append(why) if why else out.times.append(took))
    return a, b


def fmt_s(x: float | None) -> str:
    return "-" if x is None else (f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s")


def row(what: str, nodes: str, a: Outcome, b: Outcome | None, note: str = "") -> Row:
    def cell(o: Outcome) -> str:
        if o.median is None:
            return f"failed ({o.failures[0]})" if o.failures else "-"
        extra = (
            f" ({len(o.failures)} of {len(o.times) + len(o.failures)} failed)" if o.failures else ""
        )
        return fmt_s(o.median) + extra

    why = [
        f"{who}: {'; '.join(sorted(set(o.failures)))}"
        for who, o in (("mco-py", a), ("Ruby", b))
        if o and o.failures
    ]
    note = "; ".join([note, *why]) if note else "; ".join(why)
    if b is None:
        return Row(what, nodes, cell(a), "-", "-", note)
    ratio = "-" if a.median is None or b.median is None else f"{a.median / b.median:.2f}"
    return Row(what, nodes, cell(a), cell(b), ratio, note)


def start_sim(root: Path, nodes: int, env: dict[str, str], delay: str = "none") -> Sim:
    """``mco-py lab sim`` on ``root/server.cfg``, ready; its output in ``root/sim-N.out``."""
    try:
        return Sim(
            root / "server.cfg",
            nodes,
            env,
            "--delay",
            delay,
            out=root / f"sim-{nodes}.out",
            ready_timeout=300,
            settle=1,  # let the broker settle after the bindings
            mco_py=MCO_PY,
        )
    except RuntimeError as e:
        raise SystemExit(str(e)) from None


def has_quiet_flag(env: dict[str, str]) -> bool:
    r = subprocess.run(
        [*MCO_PY, "rpc", "--help"], env=env, cwd=REPO, capture_output=True, text=True
    )
    return "--discovery-quiet" in r.stdout


def fleet_rows(
    n: int,
    env: dict[str, str],
    cfg: str,
    runs: int,
    quiet: bool,
    only: frozenset[str] = frozenset(ROW_KEYS),
) -> list[Row]:
    mco = ["mco"]
    tail = ["-c", cfg]
    rows: list[Row] = []
    nodes = str(n)
    if "ping" in only:
        a, b = compare([*MCO_PY, "ping", "-t", "2"], [*mco, "ping", "-t", "2", *tail], env, runs, n)
        rows.append(row("ping -t 2", nodes, a, b))
    if "rpc" in only:
        a, b = compare(
            [*MCO_PY, "rpc", "rpcutil", "ping"],
            [*mco, "rpc", "rpcutil", "ping", *tail],
            env,
            runs,
            n,
        )
        rows.append(row("rpc rpcutil ping (mc discovery, 2 s)", nodes, a, b))
    if "quiet" in only and quiet:
        a, b = compare(
            [*MCO_PY, "rpc", "rpcutil", "ping", "--discovery-quiet", str(QUIET_MS)],
            [*mco, "rpc", "rpcutil", "ping", *tail],
            env,
            runs,
            n,
        )
        rows.append(
            row(f"rpc rpcutil ping --discovery-quiet {QUIET_MS} (Ruby: default)", nodes, a, b)
        )
    elif "quiet" in only:
        rows.append(
            Row(
                f"rpc rpcutil ping --discovery-quiet {QUIET_MS}",
                nodes,
                "n/a (flag not available)",
                "-",
                "-",
            )
        )
    if "direct-all" in only:
        ids = [x for i in range(1, n + 1) for x in ("-I", f"sim-{i:05d}")]
        a, b = compare(
            [*MCO_PY, "rpc", "rpcutil", "ping", *ids],
            [*mco, "rpc", "rpcutil", "ping", *ids, *tail],
            env,
            runs,
            n,
        )
        rows.append(row(f"rpc rpcutil ping -I (all {n}, direct)", nodes, a, b))
    if "direct-one" in only:
        one = ["rpc", "rpcutil", "ping", "-I", "sim-00001"]
        # one short call: cheap to repeat, and its median needs more samples than a
        # 2 s call to settle on this kind of shared VM
        short = max(15, 3 * runs)
        a, b = compare([*MCO_PY, *one], [*mco, *one, *tail], env, short, 1)
        rows.append(row("rpc rpcutil ping -I sim-00001", nodes, a, b))
        nobc = dict(env, PYTHONDONTWRITEBYTECODE="1")
        a, b = compare([*MCO_PY, *one], [*mco, *one, *tail], env, short, 1, ours_env=nobc)
        rows.append(row("  same, PYTHONDONTWRITEBYTECODE=1", nodes, a, b))
    return rows


def absorb_rows(cfg: str, n: int) -> list[Row]:
    from bench.absorb import measure
    from mcollective_py import config as config_mod

    r = measure(config_mod.load(cfg), n)
    ruby = 2750.0  # the middle of Ruby's published 2.5-3k replies/s ceiling (issue 15)
    return [
        Row(
            "replies/s absorbed (receive + psk + Marshal)",
            f"{n} queued",
            f"{r.full:,.0f}/s",
            "2,500-3,000/s (published)",
            f"{ruby / r.full:.2f}",
            f"{r.full_cpu:,.0f}/s of CPU; pika path alone {r.pika:,.0f}/s "
            f"({r.pika_cpu:,.0f}/s of CPU); verify+decode alone {r.decode:,.0f}/s",
        )
    ]


def processing_rows(env: dict[str, str], cfg: str, n: int, runs: int) -> list[Row]:
    """Replies/s as each client reports them on the same n-node rpc: n / "Finished ... in"."""

    def rate(cmd: list[str]) -> float | None:
        r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        m = re.search(
            r"Finished processing (\d+) / \d+ hosts in ([\d.]+) ms", ANSI.sub("", r.stdout)
        )
        return int(m.group(1)) / (float(m.group(2)) / 1000) if m and r.returncode == 0 else None

    ours, theirs = [], []
    for _ in range(runs):
        x = rate([*MCO_PY, "rpc", "rpcutil", "ping"])
        ours += [x] if x else []
        y = rate(["mco", "rpc", "rpcutil", "ping", "-c", cfg])
        theirs += [y] if y else []
    o = statistics.median(ours) if ours else None
    t = statistics.median(theirs) if theirs else None
    return [
        Row(
            "replies/s during rpc (n / 'Finished processing in')",
            str(n),
            f"{o:,.0f}/s" if o else "failed",
            f"{t:,.0f}/s" if t else "failed",
            f"{t / o:.2f}" if o and t else "-",
            "from publishing the request to the last reply; the simulator sends >20k/s",
        )
    ]


def cli_start_rows(env: dict[str, str], runs: int) -> list[Row]:
    a, b = compare([*MCO_PY, "--help"], ["mco", "--help"], env, max(15, 3 * runs), None)
    return [row("CLI start (--help)", "-", a, b)]


def marshal_rows() -> list[Row]:
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_marshal.py"), "--seconds", "0.3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    rows = []
    for op in ("decode", "encode"):
        m = re.search(rf"^{op}\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)x", r.stdout, re.M)
        if not m:
            rows.append(
                Row(f"Marshal {op} (1.3 KB request)", "-", "failed", "-", "-", r.stderr[-100:])
            )
            continue
        ours, theirs = (float(m.group(i).replace(",", "")) for i in (1, 2))
        rows.append(
            Row(
                f"Marshal {op} (1.3 KB request)",
                "-",
                f"{ours:,.0f}/s",
                f"{theirs:,.0f}/s",
                f"{theirs / ours:.2f}",
            )
        )
    return rows


def daemon_rows(seconds: float) -> list[Row]:
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_daemon.py"), "--seconds", str(seconds)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    ruby = re.search(r"^Ruby mcollectived 2.12.5\s+([\d.]+)", r.stdout, re.M)
    ours = re.search(r"^mco-py server\s+([\d.]+)", r.stdout, re.M)
    if not (ruby and ours):
        return [
            Row(
                "daemon requests/s (rpcutil ping, 1 node)",
                "1",
                "failed",
                "-",
                "-",
                (r.stdout + r.stderr)[-120:],
            )
        ]
    o, t = float(ours.group(1)), float(ruby.group(1))
    return [
        Row(
            "daemon requests/s (rpcutil ping, 1 node)",
            "1",
            f"{o:.0f}/s",
            f"{t:.0f}/s",
            f"{t / o:.2f}",
        )
    ]


def big_rows(n: int, env: dict[str, str], runs: int, quiet: bool) -> list[Row]:
    """mco-py alone on the big simulated fleet.  The discovery window and ping timeout are
    10 s: on 2 shared cores the simulator needs several seconds to send 10,000 replies, and
    nodes whose discovery reply comes after the window are not asked (as with Ruby)."""
    rows = []
    a, _ = compare([*MCO_PY, "rpc", "rpcutil", "ping", "--dt", "10"], None, env, runs, n)
    rows.append(row("rpc rpcutil ping --dt 10, mco-py alone", str(n), a, None))
    if quiet:
        a, _ = compare(
            [*MCO_PY, "rpc", "rpcutil", "ping", "--dt", "10", "--discovery-quiet", "500"],
            None,
            env,
            runs,
            n,
        )
        rows.append(
            row("rpc rpcutil ping --dt 10 --discovery-quiet 500, mco-py alone", str(n), a, None)
        )
    a, _ = compare([*MCO_PY, "ping", "-t", "10"], None, env, runs, n)
    rows.append(row("ping -t 10, mco-py alone", str(n), a, None))
    return rows


def machine() -> str:
    cpu = "?"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    ruby = subprocess.run(
        ["ruby", "-e", "print RUBY_VERSION"], capture_output=True, text=True
    ).stdout
    rabbit = subprocess.run(
        ["rabbitmqctl", "-q", "version"], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"Ruby {ruby} (mco 2.12.5), RabbitMQ {rabbit}; load average at the end {load}"
    )


def table(rows: Sequence[Row]) -> str:
    head = "| what | nodes | mco-py | Ruby mco | ratio | note |\n|---|---|---|---|---|---|\n"
    return head + "".join(
        f"| {r.what} | {r.nodes} | {r.ours} | {r.theirs} | {r.ratio} | {r.note} |\n" for r in rows
    )


def write(path: Path, text: str, partial: bool = False) -> None:
    """Replace the block between the markers (a partial ``--only`` table has its own
    markers, so it never overwrites the full table)."""
    begin, end = (MARK_BEGIN, MARK_END)
    if partial:
        begin, end = (m.replace("bench/run:", "bench/run --only:") for m in (begin, end))
    doc = path.read_text() if path.exists() else ""
    block = f"{begin}\n{text}{end}"
    if begin in doc and end in doc:
        pre, rest = doc.split(begin, 1)
        post = rest.split(end, 1)[1]
        doc = pre + block + post
    else:
        doc = doc + ("\n" if doc else "") + block + "\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(doc)
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="3,100,1000")
    ap.add_argument("--big", type=int, default=10_000, help="mco-py alone at this size (0: skip)")
    ap.add_argument(
        "--absorb", type=int, default=20_000, help="replies for the absorb rate (0: skip)"
    )
    ap.add_argument("--daemon-seconds", type=float, default=5.0, help="0: skip the daemon bench")
    ap.add_argument("--skip-marshal", action="store_true")
    ap.add_argument(
        "--only",
        metavar="KEYS",
        help="comma-separated row groups to run (default: all): " + ", ".join(ROW_KEYS),
    )
    ap.add_argument("--write", metavar="FILE", help="put the table into FILE between the markers")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    only = frozenset(ROW_KEYS)
    if args.only:
        only = frozenset(k.strip() for k in args.only.split(",") if k.strip())
        unknown = sorted(only - set(ROW_KEYS))
        if unknown:
            ap.error(
                f"--only: unknown row group(s) {', '.join(unknown)}; known: {', '.join(ROW_KEYS)}"
            )
    fleet_keys = {"ping", "rpc", "quiet", "direct-all", "direct-one", "processing"}

    root, env = sim_workspace("bench-run", "mco-py-benchrun", pythonpath=False)
    cfg = root / "client.cfg"
    # measure an installed package: its bytecode compiled, as pip (non-editable) and
    # scripts/setup leave it, so the PYTHONDONTWRITEBYTECODE rows compare like with like
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "mcollective_py")], check=True
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    quiet = has_quiet_flag(env)
    started = datetime.datetime.now(datetime.UTC)

    rows: list[Row] = []
    if "cli" in only:
        rows += cli_start_rows(env, args.runs)
    for n in sizes if only & fleet_keys else []:
        sim = start_sim(root, n, env)
        try:
            rows += fleet_rows(n, env, str(cfg), args.runs, quiet, only)
            if n >= 1000 and "processing" in only:
                rows += processing_rows(env, str(cfg), n, args.runs)
        finally:
            sim.stop()
        print(table(rows), flush=True)
    if args.big and "big" in only:
        sim = start_sim(root, args.big, env)
        try:
            rows += big_rows(args.big, env, max(1, args.runs - 1), quiet)
        finally:
            sim.stop()
    if args.absorb and "absorb" in only:
        rows += absorb_rows(str(cfg), args.absorb)
    if not args.skip_marshal and "marshal" in only:
        rows += marshal_rows()
    if args.daemon_seconds and "daemon" in only:
        rows += daemon_rows(args.daemon_seconds)

    took = datetime.datetime.now(datetime.UTC) - started
    command = f"bench/run --runs {args.runs}"
    if args.only:
        command += f" --sizes {args.sizes} --only {','.join(k for k in ROW_KEYS if k in only)}"
    text = (
        f"Measured {started:%Y-%m-%d %H:%M} UTC by `{command}` "
        f"({took.total_seconds() / 60:.1f} min), medians; ratio = mco-py / Ruby cost, **below 1.00 mco-py "
        f"is faster**.\n\nMachine: {machine()}\n\n{table(rows)}"
    )
    print(text)
    if args.write:
        write(Path(args.write), text, partial=bool(args.only))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
