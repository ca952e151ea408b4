"""``mco-py deploy``: zero-downtime rolling deploys of a service from the catalog.

    mco-py deploy run SERVICE VERSION --env ENV [strategy flags] [--yes]
    mco-py deploy SERVICE VERSION --env ENV          (the same as ``run``)
    mco-py deploy plan SERVICE VERSION --env ENV     (dry run: the plan and the Hiera diff)
    mco-py deploy status [RUN] [--json]
    mco-py deploy resume RUN [--approver NAME]
    mco-py deploy abort RUN
    mco-py deploy reconcile SERVICE --env ENV [--repair]

Exit codes: 0 done, 1 failed or rolled back (or aborted), 2 bad input or refused plan (a held
lease included), 3 infrastructure (broker, silent nodes at preflight, state dir), 4 paused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import LeaseHeld, MCollectiveError, RunNotFound, TransportError, UsageError
from .common import Terminal, add_config_option, load_config

if TYPE_CHECKING:
    from ..orchestrate.fleet import Fleet
    from ..orchestrate.journal import StateDir
    from ..orchestrate.plan import Plan, Strategy
    from ..orchestrate.run import RunResult
    from ..release.catalog import Service

SUBCOMMANDS = ("run", "plan", "status", "resume", "abort", "reconcile", "report")


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """``deploy SERVICE VERSION ...`` is ``deploy run SERVICE VERSION ...``."""
    out = list(argv)
    if len(out) >= 2 and out[0] == "deploy" and out[1] not in SUBCOMMANDS:
        if not out[1].startswith("-"):
            out.insert(1, "run")
    return out


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "deploy",
        help="zero-downtime rolling deploys: plan, run, status, resume, abort, reconcile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dsub = p.add_subparsers(dest="deploy_command", metavar="SUBCOMMAND", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        add_config_option(q)
        q.add_argument(
            "--state-dir",
            metavar="DIR",
            help="journals and leases (default: $MCO_PY_STATE_DIR, /var/lib/mco-py/deploy "
            "as root, else ~/.local/state/mco-py/deploy)",
        )

    def target(q: argparse.ArgumentParser, version: bool = True) -> None:
        q.add_argument("service", metavar="SERVICE", help="service name from the catalog")
        if version:
            q.add_argument("version", metavar="VERSION", help="a release listed in the catalog")
        q.add_argument("--env", "-e", required=True, metavar="ENV", help="environment")
        q.add_argument(
            "--catalog",
            default="services.yaml",
            metavar="FILE",
            help="service catalog (default: services.yaml)",
        )

    def strategy(q: argparse.ArgumentParser) -> None:
        g = q.add_argument_group("strategy (defaults: the catalog's batch section)")
        g.add_argument("--steps", metavar="LIST", help="batch sizes, e.g. 1,25%%,100%%")
        g.add_argument("--canary", metavar="N|N%", help="nodes in the canary step")
        g.add_argument(
            "--max-unavailable",
            default="1",
            metavar="N|N%",
            help="servers that may be out of the pool at once, counting those already "
            "DOWN/MAINT (default 1)",
        )
        g.add_argument(
            "--max-failures", metavar="N|N%", help="failed nodes tolerated over the whole run"
        )
        g.add_argument("--settle", type=float, metavar="SEC", help="seconds between steps")
        g.add_argument(
            "--pause-after-canary",
            action="store_true",
            help="stop after the canary (exit 4); `resume RUN --approver NAME` continues",
        )
        g.add_argument(
            "--rollback-on-failure",
            action="store_true",
            help="when the run stops, also roll back the nodes already done",
        )
        g.add_argument(
            "--drain-timeout",
            type=float,
            default=30.0,
            metavar="SEC",
            help="seconds a drain waits for sessions to end (default 30; then the server "
            "goes back online and counts as failed)",
        )
        g.add_argument(
            "--gate-deadline",
            type=float,
            default=30.0,
            metavar="SEC",
            help="seconds for a node's health gates, retries included (default 30)",
        )
        g.add_argument(
            "--min-healthy-time",
            type=float,
            default=0.0,
            metavar="SEC",
            help="the gates must pass again after this long (default 0)",
        )
        g.add_argument(
            "--smoke",
            action="store_true",
            help="also gate on the release's smoke test (healthcheck smoke)",
        )
        g.add_argument(
            "--capacity-wait",
            type=float,
            default=60.0,
            metavar="SEC",
            help="how long to wait for capacity before stopping (default 60)",
        )

    r = dsub.add_parser("run", help="deploy VERSION of SERVICE (the default subcommand)")
    target(r)
    strategy(r)
    common(r)
    r.add_argument("--yes", "-y", action="store_true", help="do not ask before starting")
    r.set_defaults(run=cmd_run)

    pl = dsub.add_parser("plan", help="dry run: the ordered plan and the Hiera diff")
    target(pl)
    strategy(pl)
    common(pl)
    pl.add_argument(
        "--hiera-dir", default="hiera", metavar="DIR", help="Hiera dir for the diff (default hiera)"
    )
    pl.add_argument(
        "--offline", action="store_true", help="do not read the live LB state and versions"
    )
    pl.set_defaults(run=cmd_plan)

    st = dsub.add_parser("status", help="runs in the state dir, or one run in detail")
    st.add_argument("run_id", nargs="?", metavar="RUN")
    st.add_argument("--json", action="store_true", help="the run's journal records as JSON")
    common(st)
    st.set_defaults(run=cmd_status)

    rs = dsub.add_parser("resume", help="finish a killed or paused run")
    rs.add_argument("run_id", metavar="RUN")
    rs.add_argument("--approver", metavar="NAME", help="who approves a paused run (audit)")
    common(rs)
    rs.set_defaults(run=cmd_resume)

    ab = dsub.add_parser("abort", help="stop a run: finish nodes in flight, start no more")
    ab.add_argument("run_id", metavar="RUN")
    common(ab)
    ab.set_defaults(run=cmd_abort)

    rc = dsub.add_parser("reconcile", help="the truth from every LB and node; --repair")
    target(rc, version=False)
    rc.add_argument(
        "--repair",
        action="store_true",
        help="put healthy nodes on the last run's target or previous release back online",
    )
    rc.add_argument("--json", action="store_true", help="JSON output")
    common(rc)
    rc.set_defaults(run=cmd_reconcile)

    from .deploy_report import register_report

    register_report(dsub)


# --------------------------------------------------------------------------- helpers


def _state(args: argparse.Namespace) -> StateDir:
    from ..orchestrate.journal import StateDir, default_state_dir

    return StateDir(args.state_dir or default_state_dir())


def _strategy(args: argparse.Namespace) -> Strategy:
    from ..orchestrate.plan import Size, Strategy, parse_steps

    for flag in ("settle", "drain_timeout", "gate_deadline", "min_healthy_time", "capacity_wait"):
        v = getattr(args, flag)
        if v is not None and (v < 0 or v != v or v > 86400):
            raise UsageError(f"--{flag.replace('_', '-')} must be 0 to 86400 seconds, got {v!r}")
    if not 1 <= args.drain_timeout <= 290:
        raise UsageError(
            f"--drain-timeout must be 1 to 290 seconds (the haproxy agent's longest wait), "
            f"got {args.drain_timeout:g}"
        )
    return Strategy(
        steps=parse_steps(args.steps) if args.steps else None,
        canary=Size.parse(args.canary, "--canary") if args.canary is not None else None,
        max_unavailable=Size.parse(args.max_unavailable, "--max-unavailable"),
        max_failures=Size.parse(args.max_failures, "--max-failures")
        if args.max_failures is not None
        else None,
        settle=args.settle,
        pause_after_canary=args.pause_after_canary,
        rollback_on_failure=args.rollback_on_failure,
        drain_timeout=args.drain_timeout,
        gate_deadline=args.gate_deadline,
        min_healthy_time=args.min_healthy_time,
        capacity_wait=args.capacity_wait,
        smoke=args.smoke,
    )


def _fleet(args: argparse.Namespace) -> tuple[Fleet, Any]:
    """The real fleet over a Client built from the config (the composition root)."""
    from ..client import CallOptions
    from ..orchestrate.fleet import ClientFleet
    from .common import make_client

    cfg = load_config(args)
    client = make_client(cfg)

    def options(timeout: float) -> CallOptions:
        return CallOptions(timeout=timeout, agent_timeout=timeout, discovery_method="mc")

    return ClientFleet(client, options, list(cfg.libdir)), client


def _live_state(
    fleet: Fleet, service: Service, env: str
) -> tuple[dict[str, dict[str, str]] | None, dict[str, str | None]]:
    """LB state and node versions as they are now (for the planner); what stays silent is
    left out (preflight fails on it later)."""
    from ..orchestrate.plan import lb_states_from_status

    placement = service.placement(env)
    lbs = list(placement.load_balancers) if service.lb is not None else []
    lb_state: dict[str, dict[str, str]] | None = None
    if lbs:
        res = fleet.call("haproxy", "status", {"backend": service.name}, lbs, timeout=15)
        answered = {r.sender: r for r in res.replies if r.ok}
        if set(answered) == set(lbs):
            lb_state = {
                lb: lb_states_from_status(list(r.data.get("backends") or []), service.name)
                for lb, r in answered.items()
            }
    st = fleet.call(
        "deploy",
        "status",
        {"service": service.name},
        [n.identity for n in placement.nodes],
        timeout=15,
    )
    versions = {r.sender: r.data.get("current_version") for r in st.replies if r.ok}
    return lb_state, versions


def _inputs(args: argparse.Namespace) -> tuple[Service, Strategy]:
    """Everything that can be refused without the network: catalog, service, environment,
    version, strategy, and the plan's safety rules on the catalog alone."""
    from ..orchestrate.plan import make_plan
    from ..release import load_catalog

    catalog = load_catalog(args.catalog)
    catalog.environment(args.env)
    service = catalog.service(args.service)
    strategy = _strategy(args)
    make_plan(service, args.env, args.version, strategy)  # raises UsageError / PlanRefused
    return service, strategy


def _make_plan(
    args: argparse.Namespace, service: Service, strategy: Strategy, fleet: Fleet | None
) -> Plan:
    """The plan on the live state (LB states, the nodes' versions) when ``fleet`` is given."""
    from ..orchestrate.plan import make_plan

    lb_state, versions = _live_state(fleet, service, args.env) if fleet else (None, {})
    return make_plan(
        service, args.env, args.version, strategy, lb_state=lb_state, current_versions=versions
    )


def _report(term: Terminal, result: RunResult, journal: str) -> int:
    out = term.out
    out.write(f"\nRun {result.run_id}: {result.outcome}")
    out.write(f" ({result.reason})\n" if result.reason else "\n")
    if result.done:
        out.write(f"  done            {', '.join(result.done)}\n")
    for n, why in result.failed.items():
        out.write(f"  failed          {n}: {why}\n")
    if result.in_maintenance:
        out.write(f"  IN MAINTENANCE  {', '.join(result.in_maintenance)}\n")
    out.write(
        f"  time            {result.wall:.1f} s wall, {result.waited:.1f} s in node calls "
        f"and waits (drains, activations, gates, reads, settles), {result.overhead:.2f} s driver overhead\n"
    )
    out.write(f"  journal         {journal}\n")
    if result.outcome == "paused":
        out.write(f"  continue with   mco-py deploy resume {result.run_id} --approver NAME\n")
    return result.exit_code


def _execute(
    args: argparse.Namespace,
    term: Terminal,
    plan: Plan,
    fleet: Fleet,
    state: StateDir,
    run_id: str,
    **kw: Any,
) -> int:
    from ..orchestrate.events import HookFanout
    from ..orchestrate.run import Executor
    from .deploy_view import ProgressView

    hooks = HookFanout([ProgressView(term.out, live=term.tty)])
    ex = Executor(plan, fleet, state, run_id, hooks, **kw)
    try:
        result = ex.run()
    finally:
        hooks.close()
    for who, err in hooks.errors:
        term.err.write(f"mco-py deploy: subscriber {who} failed: {err}\n")
    return _report(term, result, str(ex.journal_path))


# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace, term: Terminal) -> int:
    from ..orchestrate.journal import new_run_id
    from ..orchestrate.plan import describe
    from ..orchestrate.run import open_runs

    # 1. bad input fails before anything touches the network or the disk
    service, strategy = _inputs(args)
    state = _state(args)
    # 2. one run per service and environment: an unfinished one must be resumed or aborted
    state.refuse_if_held(args.service, args.env)
    stuck = open_runs(state, args.service, args.env)
    if stuck:
        raise LeaseHeld(
            f"run {stuck[-1]} of {args.service} in {args.env} did not finish (killed or "
            f"paused); `mco-py deploy resume {stuck[-1]}` or `mco-py deploy abort "
            f"{stuck[-1]}` first"
        )
    # 3. the plan on the live state, shown before anything moves
    fleet, client = _fleet(args)
    try:
        plan = _make_plan(args, service, strategy, fleet)
        for line in describe(plan):
            term.out.write(line + "\n")
        if not args.yes and sys.stdin.isatty():
            term.out.write("Start this deploy? [y/N] ")
            term.out.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                term.err.write("not started\n")
                return 2
        run_id = new_run_id(plan.service)
        term.out.write(f"Run {run_id}\nJournal {state.journal_path(run_id)}\n")
        term.out.flush()
        return _execute(args, term, plan, fleet, state, run_id)
    finally:
        client.connector.close()


def cmd_plan(args: argparse.Namespace, term: Terminal) -> int:
    from ..orchestrate.plan import describe
    from ..release import data_dir, load_catalog, plan_writes, render_release

    service, strategy = _inputs(args)
    fleet, client = (None, None)
    note = ""
    if not args.offline:
        try:
            fleet, client = _fleet(args)
        except MCollectiveError as exc:
            note = f"(live state not read: {exc})"
    try:
        try:
            plan = _make_plan(args, service, strategy, fleet)
        except TransportError as exc:
            note = f"(live state not read: {exc})"
            plan = _make_plan(args, service, strategy, None)
        for line in describe(plan):
            term.out.write(line + "\n")
        if note or args.offline:
            term.out.write(f"  note             {note or 'offline: live state not read'}\n")
        catalog = load_catalog(args.catalog)
        files = render_release(catalog, args.service, args.version, args.env)
        try:
            changes = plan_writes(data_dir(args.hiera_dir), files)
        except UsageError as exc:
            term.out.write(f"\nHiera diff: not shown ({exc})\n")
            return 0
        stale = [c for c in changes if c.status != "unchanged"]
        term.out.write(
            "\nHiera diff: "
            + (
                "none, the release data is up to date\n"
                if not stale
                else f"{len(stale)} file(s) (mco-py release render writes them)\n"
            )
        )
        for c in stale:
            term.out.write(c.diff())
        return 0
    finally:
        if client is not None:
            client.connector.close()


def _load_run(state: StateDir, run_id: str) -> tuple[list[dict[str, Any]], Plan]:
    from ..orchestrate.journal import check_run_id, read_journal
    from ..orchestrate.plan import Plan

    recs = read_journal(state.journal_path(check_run_id(run_id)))
    start = next((r for r in recs if r.get("kind") == "run_start"), None)
    if start is None or "plan" not in (start.get("detail") or {}):
        raise RunNotFound(f"the journal of {run_id} has no run_start record: nothing to resume")
    return recs, Plan.from_dict(start["detail"]["plan"])


def _summary(recs: list[dict[str, Any]]) -> dict[str, Any]:
    nodes: dict[str, str] = {}
    end = None
    start = recs[0] if recs else {}
    for r in recs:
        if r.get("kind") == "node_state":
            nodes[str(r.get("node"))] = str(r.get("state"))
        if r.get("kind") == "run_start":
            start = r
            for n in (r.get("detail") or {}).get("nodes", []):
                nodes.setdefault(n, "pending")
        if r.get("kind") == "run_end":
            end = r
    paused = any(r.get("kind") == "paused" for r in recs) and end is None
    return {
        "run_id": start.get("run_id"),
        "service": start.get("service"),
        "environment": start.get("environment"),
        "version": start.get("version"),
        "caller": start.get("caller"),
        "started": start.get("time"),
        "outcome": end.get("outcome") if end else ("paused" if paused else "unfinished"),
        "reason": (end.get("detail") or {}).get("reason") if end else None,
        "nodes": nodes,
    }


def cmd_status(args: argparse.Namespace, term: Terminal) -> int:
    state = _state(args)
    if args.run_id is None:
        runs = state.runs()
        if args.json:
            docs = []
            for r in runs:
                try:
                    docs.append(_summary(_load_run(state, r)[0]))
                except RunNotFound:
                    continue  # a journal killed before its first record
            term.out.write(json.dumps(docs) + "\n")
            return 0
        if not runs:
            term.out.write(f"No runs in {state.root}\n")
            return 0
        for r in runs:
            try:
                s = _summary(_load_run(state, r)[0])
            except RunNotFound:
                continue
            term.out.write(
                f"{r:<40} {s['service']} {s['version']} {s['environment']:<10} {s['outcome']}\n"
            )
        return 0
    recs, _ = _load_run(state, args.run_id)
    if args.json:
        term.out.write(json.dumps({"summary": _summary(recs), "records": recs}) + "\n")
        return 0
    s = _summary(recs)
    term.out.write(
        f"Run {s['run_id']}: {s['service']} {s['version']} in {s['environment']}, by "
        f"{s['caller']}, started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(s['started'] or 0))}\n"
        f"  outcome  {s['outcome']}" + (f" ({s['reason']})" if s["reason"] else "") + "\n"
    )
    for n, st in s["nodes"].items():
        term.out.write(f"  {n:<24} {st}\n")
    term.out.write(f"  journal  {state.journal_path(args.run_id)}\n")
    return 0


def cmd_resume(args: argparse.Namespace, term: Terminal) -> int:
    state = _state(args)
    recs, plan = _load_run(state, args.run_id)
    if any(r.get("kind") == "run_end" for r in recs):
        raise UsageError(
            f"run {args.run_id} has ended ({_summary(recs)['outcome']}); nothing to resume"
        )
    fleet, client = _fleet(args)
    approver = args.approver or os.environ.get("USER") or "unknown"
    term.out.write(f"Resuming {args.run_id}\nJournal {state.journal_path(args.run_id)}\n")
    try:
        return _execute(args, term, plan, fleet, state, args.run_id, approver=approver)
    finally:
        client.connector.close()


def cmd_abort(args: argparse.Namespace, term: Terminal) -> int:
    state = _state(args)
    recs, plan = _load_run(state, args.run_id)
    if any(r.get("kind") == "run_end" for r in recs):
        raise UsageError(
            f"run {args.run_id} has ended ({_summary(recs)['outcome']}); nothing to abort"
        )
    lease = state.read_lease(plan.service, plan.environment)
    if (
        lease is not None
        and lease.run_id == args.run_id
        and lease.expiry is not None
        and not lease.stale(time.time(), state.host)
    ):
        state.abort_path(args.run_id).write_text(f"{os.getpid()}\n")
        term.out.write(
            f"Asked run {args.run_id} (pid {lease.pid} on {lease.host}) to stop after the "
            "node in flight\n"
        )
        return 0
    fleet, client = _fleet(args)
    try:
        return _execute(args, term, plan, fleet, state, args.run_id, abort=True)
    finally:
        client.connector.close()


def cmd_reconcile(args: argparse.Namespace, term: Terminal) -> int:
    from ..orchestrate.run import open_runs, reconcile
    from ..release import load_catalog

    catalog = load_catalog(args.catalog)
    service = catalog.service(args.service)
    service.placement(args.env)
    state = _state(args)
    versions: list[str] = []
    for run_id in reversed(state.runs()):
        try:
            recs, plan = _load_run(state, run_id)
        except RunNotFound:
            continue
        if (plan.service, plan.environment) == (service.name, args.env):
            versions.append(plan.version)
            for r in recs:
                prev = (r.get("detail") or {}).get("previous_version")
                if prev and prev not in versions:
                    versions.append(prev)
            break
    if args.repair:
        lease = state.read_lease(service.name, args.env)
        if lease is not None and not lease.stale(time.time(), state.host):
            raise LeaseHeld(
                f"run {lease.run_id} holds {service.name} in {args.env}; --repair would race "
                "it: wait, or abort it first"
            )
    fleet, client = _fleet(args)
    try:
        rec = reconcile(service, args.env, fleet, repair=args.repair, repair_versions=versions)
    finally:
        client.connector.close()
    if args.json:
        term.out.write(json.dumps(rec.to_dict()) + "\n")
    else:
        term.out.write(f"{service.name} in {args.env}: {len(rec.nodes)} node(s)\n")
        for n in rec.nodes:
            lbs = " ".join(f"{lb}={s}" for lb, s in n.lb_states.items())
            ver = n.current_version if n.answered else "(no answer)"
            prev = f" (previous {n.previous_version})" if n.previous_version else ""
            note = f"  {n.note}" if n.note else ""
            term.out.write(f"  {n.identity:<20} {ver}{prev}  {lbs}{note}\n")
        if rec.silent:
            term.out.write(f"  no answer from   {', '.join(rec.silent)}\n")
        unfinished = open_runs(state, service.name, args.env)
        if unfinished:
            term.out.write(f"  unfinished runs  {', '.join(unfinished)}\n")
    out_of_pool = [n.identity for n in rec.nodes if n.out_of_pool]
    return 1 if (out_of_pool or rec.silent) else 0
