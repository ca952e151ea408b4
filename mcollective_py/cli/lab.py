"""``mco-py lab up|demo|status|down``: the local lab, a real estate on loopback addresses.

* ``up``     -- stand the lab up (or reuse the running one) and install the first release
  on every app node through the agents; prints the estate (``--json``: as ``status --json``).
* ``demo``   -- ``up``, then roll 2.0.0 through the lab with ``mco-py deploy`` under live
  traffic, then the broken 3.0.0 (its canary fails and it is rolled back); ends with a report.
* ``status`` -- every lab process (role, identity, address, pid, running), the HAProxy admin
  socket and frontend, the catalog, Hiera and client config; ``--json`` for scripts.
* ``down``   -- stop what ``up`` started (by pid), delete the vhost, remove the state dir.

Exit codes: 0 done; 1 the demo's outcome was not the expected one (failed requests, v2 not
everywhere, v3 not rolled back); 2 bad usage; 3 a part of the lab could not be started or
driven (the message names it and its log); 4 ``status``: no lab in the state directory.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import LabError
from .common import Terminal

DEFAULT_DIR = "/tmp/mco-py-lab"
DEFAULT_VHOST = "/mco-py-lab"
DEFAULT_REPORTS = "/tmp/mco-py-lab-reports"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lab",
        help="the local lab: a real estate on loopback (up, demo, status, down)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lsub = p.add_subparsers(dest="lab_command", metavar="SUBCOMMAND", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--state-dir",
            type=Path,
            default=Path(os.environ.get("MCO_PY_LAB_DIR") or DEFAULT_DIR),
            metavar="DIR",
            help=f"the lab's state directory (default: $MCO_PY_LAB_DIR or {DEFAULT_DIR})",
        )

    def sizing(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--vhost",
            default=os.environ.get("MCO_PY_LAB_VHOST") or DEFAULT_VHOST,
            help=f"RabbitMQ vhost the lab creates (default: $MCO_PY_LAB_VHOST or {DEFAULT_VHOST})",
        )
        q.add_argument("--nodes", type=int, default=4, metavar="N", help="app nodes (default 4)")
        q.add_argument(
            "--ruby-nodes",
            type=int,
            default=0,
            metavar="K",
            help="of them as Ruby mcollectived hosting the agents through mco-py shims (default 0)",
        )
        q.add_argument(
            "--prefix",
            default="127.0.14.",
            help="loopback /24 of the lab's addresses (default 127.0.14.)",
        )

    u = lsub.add_parser("up", help="stand the lab up (idempotent)", description=__doc__)
    common(u)
    sizing(u)
    u.add_argument(
        "--no-install", action="store_true", help="leave the app nodes without a release"
    )
    u.add_argument("--json", action="store_true", help="print the estate as JSON")
    u.set_defaults(run=run_up)

    d = lsub.add_parser("demo", help="a release under live traffic, then a bad one")
    common(d)
    sizing(d)
    d.add_argument(
        "--keep", action="store_true", help="leave the lab running afterwards (default: down)"
    )
    d.add_argument(
        "--report-dir",
        type=Path,
        default=Path(os.environ.get("MCO_PY_LAB_REPORTS") or DEFAULT_REPORTS),
        metavar="DIR",
        help="where the runs' HTML reports and journals are kept, outside the lab "
        f"(default: $MCO_PY_LAB_REPORTS or {DEFAULT_REPORTS})",
    )
    d.set_defaults(run=run_demo)

    s = lsub.add_parser("status", help="the lab's processes, addresses and files")
    common(s)
    s.add_argument("--json", action="store_true", help="machine-readable")
    s.set_defaults(run=run_status)

    dn = lsub.add_parser("down", help="stop what up started and remove the lab's state")
    common(dn)
    dn.set_defaults(run=run_down)

    a = lsub.add_parser("appctl", help=argparse.SUPPRESS)
    a.add_argument("action", choices=["restart", "stop"])
    a.add_argument("--pidfile", type=Path, required=True)
    a.add_argument("--log", type=Path)
    a.add_argument("--host")
    a.add_argument("--port", type=int)
    a.add_argument("--release-dir", type=Path)
    a.set_defaults(run=run_appctl)

    # The issue-15 developer's `mco-py lab sim` lives in cli/lab_sim.py, exposing
    # register(lab_subparsers); called when that module exists, so either branch works alone
    # (a lab_sim that exists but fails to import is an error, not silently skipped).
    if importlib.util.find_spec(f"{__package__}.lab_sim") is not None:
        lab_sim = importlib.import_module(f"{__package__}.lab_sim")
        lab_sim.register(lsub)


def _spec(args: argparse.Namespace) -> Any:
    from ..lab import LabSpec

    return LabSpec(
        root=args.state_dir.absolute(),
        vhost=args.vhost,
        nodes=args.nodes,
        ruby_nodes=args.ruby_nodes,
        prefix=args.prefix,
    )


class _Printer:
    """Prints the lab's steps and the operator commands it runs."""

    def __init__(self, term: Terminal) -> None:
        self.term = term

    def step(self, text: str) -> None:
        self.term.out.write(f"lab: {text}\n")
        self.term.out.flush()

    def done(self, text: str, seconds: float) -> None:
        self.term.out.write(f"lab:   done in {seconds:.1f} s\n")
        self.term.out.flush()

    def command(self, shown: str) -> None:
        self.term.out.write(f"$ {shown}\n")
        self.term.out.flush()

    def output(self, line: str) -> None:
        self.term.out.write(f"  | {line}\n")
        self.term.out.flush()

    def raw(self, text: str) -> None:
        self.term.out.write(text)
        self.term.out.flush()

    def terminal_size(self) -> tuple[int, int] | None:
        if not self.term.tty:
            return None
        size = shutil.get_terminal_size()
        return (size.lines, size.columns)

    def finished(self, cmd: Any) -> None:
        ok = sum(1 for r in cmd.replies if r.get("statuscode") == 0)
        self.term.out.write(f"  exit {cmd.exit_code}, {ok}/{len(cmd.replies)} nodes OK\n")
        self.term.out.flush()


def _events(term: Terminal) -> Any:
    from ..lab.demo import DemoEvents

    class Events(_Printer, DemoEvents):
        pass

    return Events(term)


def _stand_up(args: argparse.Namespace, term: Terminal, install: bool) -> Any:
    from ..lab import INITIAL_VERSION, child_env, current_pids, up
    from ..lab import install as install_release

    ev = _events(term)
    result = up(_spec(args), ev)
    estate = result.estate
    if result.reused:
        ev.step(f"the lab in {estate.root} is already up (reused)")
    else:
        ev.step(f"up in {result.seconds:.1f} s")
    if install and not _serving(estate):
        ev.step(f"installing {estate.service} {INITIAL_VERSION} on every app node")
        install_release(estate, INITIAL_VERSION, child_env(), ev)
    return current_pids(estate)


def _serving(estate: Any) -> bool:
    from ..lab import alive

    states = alive(estate)
    return all(states[("app", n.identity)] for n in estate.web_nodes)


def run_up(args: argparse.Namespace, term: Terminal) -> int:
    estate = _stand_up(
        args, term if not args.json else Terminal(sys.stderr, sys.stderr), not args.no_install
    )
    if args.json:
        term.out.write(json.dumps(_status_doc(estate), indent=2, sort_keys=True) + "\n")
    else:
        _print_status(estate, term)
    return 0


def _status_doc(estate: Any) -> dict[str, Any]:
    from ..lab import alive

    states = alive(estate)
    doc = estate.to_json()
    for p in doc["processes"]:
        p["running"] = states[(p["role"], p["identity"])]
    doc.pop("broker", None)
    doc["hiera_config"] = str(Path(estate.hiera_dir) / "hiera.yaml")
    return doc


def _print_status(estate: Any, term: Terminal) -> None:
    from ..lab import alive

    states = alive(estate)
    w = term.out.write
    w(
        f"lab {estate.root} (vhost {estate.vhost}, service {estate.service} in {estate.environment})\n"
    )
    w(f"  {'ROLE':<14}{'IDENTITY':<12}{'ADDRESS':<22}{'PID':>8}  STATE\n")
    for p in estate.processes:
        addr = f"{p.address}:{p.port}" if p.port else p.address
        state = "running" if states[(p.role, p.identity)] else "stopped"
        w(f"  {p.role:<14}{p.identity:<12}{addr:<22}{p.pid or '-':>8}  {state}\n")
    w(f"  frontend        {estate.frontend_url}\n")
    w(f"  haproxy socket  {estate.haproxy_socket}\n")
    w(f"  client config   {estate.client_cfg}\n")
    w(f"  catalog         {estate.catalog}\n")
    w(f"  hiera           {estate.hiera_dir}/hiera.yaml\n")
    w(f"  deploy state    {estate.deploy_state_dir}\n")
    w(f"try: mco-py ping -c {estate.client_cfg}\n")


def run_status(args: argparse.Namespace, term: Terminal) -> int:
    from ..lab import current_pids, load_estate

    estate = load_estate(args.state_dir.absolute())
    if estate is None:
        term.err.write(
            f"mco-py lab status: no lab in {args.state_dir}; start one with mco-py lab up\n"
        )
        return 4
    estate = current_pids(estate)
    if args.json:
        term.out.write(json.dumps(_status_doc(estate), indent=2, sort_keys=True) + "\n")
    else:
        _print_status(estate, term)
    return 0


def run_down(args: argparse.Namespace, term: Terminal) -> int:
    from ..lab import down

    result = down(args.state_dir.absolute(), _events(term))
    if not result.removed:
        term.out.write(f"no lab in {args.state_dir}; nothing to do\n")
        return 0
    for role, identity, pid in result.stopped:
        term.out.write(f"  stopped {role} of {identity} (pid {pid})\n")
    term.out.write(f"lab in {args.state_dir} is down\n")
    return 0


def run_appctl(args: argparse.Namespace, term: Terminal) -> int:
    from ..errors import UsageError
    from ..lab import appctl

    if args.action == "stop":
        was = appctl.stop(args.pidfile)
        term.out.write("stopped\n" if was else "not running\n")
        return 0
    if not (args.log and args.host and args.port and args.release_dir):
        raise UsageError("appctl restart needs --log, --host, --port and --release-dir")
    started = appctl.restart(args.pidfile, args.log, args.host, args.port, args.release_dir)
    term.out.write(f"started pid {started.pid}, serving {started.answer}\n")
    return 0


def run_demo(args: argparse.Namespace, term: Terminal) -> int:
    from ..lab import INITIAL_VERSION as INITIAL
    from ..lab import child_env, down
    from ..lab import demo as demo_mod
    from ..lab import install as install_release

    started = time.monotonic()
    ev = _events(term)
    env = child_env()
    if not demo_mod.deploy_available(env):
        raise LabError(
            "this mco-py has no deploy command (the rolling deploy driver), so the demo cannot "
            "roll a release; nothing was started (mco-py lab up stands the lab up by itself)"
        )
    estate = _stand_up(args, term, True)
    try:
        # a kept lab (--keep) serves 2.0.0 from the last demo: back to the first release, so
        # this demo rolls 2.0.0 again rather than finding nothing to do
        back = sorted(n for n, v in demo_mod.versions(estate, env, ev).items() if v != INITIAL)
        if back:
            ev.step(f"putting {estate.service} {INITIAL} back on {', '.join(back)}")
            install_release(estate, INITIAL, env, ev)
        outcome = demo_mod.run(estate, env, ev, report_dir=args.report_dir.absolute())
    finally:
        if not args.keep:
            down(Path(estate.root), ev)
    _print_outcome(outcome, time.monotonic() - started, term, kept=args.keep, estate=estate)
    return 0 if outcome.ok else 1


def _print_outcome(outcome: Any, total: float, term: Terminal, *, kept: bool, estate: Any) -> None:
    w = term.out.write
    load = outcome.load
    w("\n== demo report ==\n")
    w("nodes and versions:\n")
    for node, version in sorted(outcome.versions.items()):
        w(f"  {node:<12}{version}\n")
    w(f"requests sent:   {load.requests} in {load.seconds:.1f} s through {estate.frontend_url}\n")
    w(f"failed requests: {load.failures}\n")
    for phase in load.phases:
        w(
            f"  {phase.name:<8}{phase.requests:>6} requests, {phase.failures} failed, {phase.seconds:.1f} s\n"
        )
    for err in load.errors:
        w(f"  failure: {err}\n")
    for run in outcome.deploys:
        w(f"deploy {run.version}: {run.verdict} in {run.seconds:.1f} s (run {run.run_id or '?'})\n")
        w(f"  HTML run report: {run.report or 'none (the run left no journal)'}\n")
        if run.journal:
            w(f"  journal: {run.journal}\n")
    w(f"time: {total:.1f} s in all\n")
    for problem in outcome.problems:
        w(f"PROBLEM: {problem}\n")
    w("result: " + ("as expected\n" if outcome.ok else "NOT as expected\n"))
    if kept:
        w(f"the lab keeps running: mco-py lab status --state-dir {estate.root}\n")
