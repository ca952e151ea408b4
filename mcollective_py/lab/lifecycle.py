"""``up`` and ``down``: stand the lab up, read it back, take it away again.

Recipe of :func:`up` (each step named in :class:`LabEvents` as it runs):

1. the state directory; an existing lab there is reused when every process it started is
   still running (``up`` twice is harmless), else stopped and replaced;
2. free ports on the lab's loopback addresses; the plan (:func:`.estate.plan`);
3. the release tarballs of the demo service and their checksums; the lab's catalog;
4. the lab's RabbitMQ vhost (permissions, MCollective's exchanges);
5. the Hiera data of the first release, rendered from the catalog (as ``mco-py release
   render`` does), and HAProxy's configuration from ``puppet apply`` of ``haproxy_pools``;
6. HAProxy, the artifact server, and ``mco-py server`` on every node (Debian's
   ``mcollectived`` with the shims of deploy and healthcheck on the last ``ruby_nodes`` app
   nodes); wait until every node answers a ping.

Every pid is saved in ``lab.json`` as soon as the process exists, so :func:`down` can stop
what was started even after a failed ``up``.  :func:`down` stops exactly those pids (and the
apps whose pid files the deploy agent's restarts keep up to date), deletes the vhost and
removes the state directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import LabError, UsageError
from . import broker, layout, processes, releases
from .estate import RELEASES, Estate, LabProcess, LabSpec, Ports, load_estate, plan

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / "puppet_modules"
HIERA = REPO / "hiera"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

#: What identifies each role's process in /proc/PID/cmdline (see processes.running).
MARKERS = {
    "haproxy": "haproxy",
    "artifacts": "http.server",
    "server": "mcollective_py server",
    "mcollectived": "mcollectived",
    "app": "app.py",
}
#: The agents a Ruby web node hosts through shims.
SHIMMED_AGENTS = ("deploy", "healthcheck")
#: Preloaded into the Ruby nodes only: stock Debian 12 mcollectived cannot read YAML facts
#: under Ruby 3.1 without it (see the file).
RUBY_PRELOAD = Path(__file__).resolve().parent / "ruby" / "psych_positional.rb"


def pid_of(p: LabProcess) -> int:
    """The pid of a lab process as it is now: apps from their pid files (the deploy agent
    restarts them), every other process as the lab recorded it when it started it."""
    return processes.read_pid(p.pidfile) if p.role == "app" else p.pid


class LabEvents:
    """Hooks ``up``/``down`` call as they go; they do nothing by default (the CLI prints)."""

    def step(self, text: str) -> None:
        """A step starts."""

    def done(self, text: str, seconds: float) -> None:
        """A step finished."""


def free_port(host: str) -> int:
    """A TCP port free on ``host`` right now; LabError when ``host`` cannot be bound."""
    with socket.socket() as s:
        try:
            s.bind((host, 0))
        except OSError as exc:
            raise LabError(f"cannot bind {host}: {exc}; the lab needs loopback addresses") from None
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    """The environment of the lab's processes: ours, less MCollective/STOMP settings and
    secrets (each process gets its config file instead)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MCOLLECTIVE_", "STOMP_", "LAB_", "RUBY"))
    }
    env["PYTHONPATH"] = str(REPO)
    return env


def alive(estate: Estate) -> dict[tuple[str, str], bool]:
    """Whether each process of the lab runs, keyed by (role, identity).  Apps are read from
    their pid files (the deploy agent restarts them)."""
    return {
        (p.role, p.identity): processes.running(pid_of(p), MARKERS[p.role])
        for p in estate.processes
    }


def current_pids(estate: Estate) -> Estate:
    """The estate with each process's pid as it is now (pid files re-read)."""
    procs = []
    for p in estate.processes:
        pid = pid_of(p)
        procs.append(replace(p, pid=pid if processes.running(pid, MARKERS[p.role]) else 0))
    return estate.with_processes(tuple(procs))


@dataclass(frozen=True)
class UpResult:
    estate: Estate
    reused: bool
    seconds: float


def up(spec: LabSpec, events: LabEvents | None = None) -> UpResult:
    """Stand the lab up (or reuse the running one); see the module docstring."""
    ev = events or LabEvents()
    spec.check()
    started = time.monotonic()
    root = spec.root
    existing = load_estate(root)
    if existing is not None:
        ruby = sum(1 for n in existing.web_nodes if n.daemon == "mcollectived")
        if (existing.vhost, len(existing.web_nodes), ruby) != (
            spec.vhost,
            spec.nodes,
            spec.ruby_nodes,
        ):
            raise UsageError(
                f"a lab with vhost {existing.vhost}, {len(existing.web_nodes)} app nodes and "
                f"{ruby} Ruby nodes runs in {root}; run mco-py lab down first to stand up a "
                "different one"
            )
        # everything must run, except apps that were never started (no release installed)
        states = alive(existing)
        running_needed = {
            (p.role, p.identity)
            for p in existing.processes
            if p.role != "app" or Path(p.pidfile).exists()
        }
        if all(states[k] for k in running_needed):
            return UpResult(current_pids(existing), True, time.monotonic() - started)
        ev.step("an earlier lab in this directory is incomplete: taking it down first")
        down(root, ev)
    if spec.ruby_nodes and shutil.which("mcollectived") is None:
        raise LabError(
            "--ruby-nodes needs Ruby MCollective's mcollectived: run scripts/setup (Debian "
            "mcollective)"
        )
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    p = spec.prefix
    ports = Ports(
        frontend=free_port(f"{p}2"),
        artifacts=free_port(f"{p}3"),
        apps=tuple(free_port(f"{p}{10 + i}") for i in range(1, spec.nodes + 1)),
    )
    estate = plan(spec, ports)
    estate.save()
    try:
        # every pid is saved to lab.json as soon as its process exists (_set_pid)
        estate = _stand_up(estate, child_env(), ev)
    except LabError as exc:
        raise LabError(
            f"{exc}; what was started is recorded in {root / 'lab.json'}: "
            f"mco-py lab down --state-dir {root} removes it"
        ) from None
    return UpResult(estate, False, time.monotonic() - started)


def _timed(ev: LabEvents, text: str) -> Callable[[], None]:
    ev.step(text)
    t0 = time.monotonic()
    return lambda: ev.done(text, time.monotonic() - t0)


def _set_pid(estate: Estate, role: str, identity: str, pid: int) -> Estate:
    procs = tuple(
        replace(x, pid=pid) if (x.role, x.identity) == (role, identity) else x
        for x in estate.processes
    )
    new = estate.with_processes(procs)
    new.save()
    return new


def _stand_up(estate: Estate, env: dict[str, str], ev: LabEvents) -> Estate:
    root = Path(estate.root)
    # 3. releases, catalog, configs
    finish = _timed(ev, f"building releases {', '.join(RELEASES)} of {estate.service}")
    sums = releases.build(root / "artifacts", estate.service, RELEASES)
    Path(estate.catalog).write_text(layout.catalog_text(estate, sums))
    Path(estate.client_cfg).write_text(layout.client_cfg(estate))
    Path(estate.client_cfg).chmod(0o600)
    for node in estate.nodes:
        d = Path(node.dir)
        (d / "etc").mkdir(parents=True, exist_ok=True)
        Path(node.server_cfg).write_text(layout.server_cfg(estate, node, sys.executable))
        Path(node.server_cfg).chmod(0o600)
        (d / "facts.yaml").write_text(layout.facts_yaml(node))
        (d / "classes.txt").write_text(layout.classes_txt(node))
    Path(estate.deploy_state_dir).mkdir(parents=True, exist_ok=True)
    Path(estate.database).parent.mkdir(parents=True, exist_ok=True)
    finish()

    # 4. + 5. the broker's vhost, and Hiera + puppet apply of haproxy_pools, side by side
    # (both mostly wait for a JVM-less but slow start: rabbitmqctl's Erlang, Puppet's Ruby)
    finish = _timed(
        ev,
        f"RabbitMQ vhost {estate.vhost}; Hiera data and HAProxy config "
        "(puppet apply of haproxy_pools)",
    )

    def puppet() -> None:
        render_hiera(estate, next(iter(RELEASES)))
        apply_haproxy_pools(estate)

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(broker.create, estate.vhost, str(estate.broker["user"]))]
        jobs.append(pool.submit(puppet))
        for job in jobs:
            job.result()
    finish()

    # 6. processes
    finish = _timed(ev, "HAProxy, the artifact server and mco-py server on every node")
    hap = next(x for x in estate.processes if x.role == "haproxy")
    pid = processes.spawn([HAPROXY, "-db", "-f", estate.haproxy_cfg], Path(hap.log), env=env)
    estate = _set_pid(estate, "haproxy", hap.identity, pid)
    art = next(x for x in estate.processes if x.role == "artifacts")
    pid = processes.spawn(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            art.address,
            "--directory",
            str(root / "artifacts"),
            str(art.port),
        ],
        Path(art.log),
        env=env,
    )
    estate = _set_pid(estate, "artifacts", art.identity, pid)
    ruby = [n for n in estate.nodes if n.daemon == "mcollectived"]
    if ruby:
        build_shims(estate, ruby[0].server_cfg, env)
    for node in estate.nodes:
        srv = next(
            x
            for x in estate.processes
            if x.identity == node.identity and x.role in ("server", "mcollectived")
        )
        if node.daemon == "mcollectived":
            argv = [
                shutil.which("mcollectived") or "mcollectived",
                "--config",
                node.server_cfg,
                "--pidfile",
                srv.pidfile,
            ]
        else:
            argv = [
                sys.executable,
                "-m",
                "mcollective_py",
                "server",
                "-c",
                node.server_cfg,
                "--pidfile",
                srv.pidfile,
            ]
        node_env = {**env, "RUBYOPT": f"-r{RUBY_PRELOAD}"} if node.daemon == "mcollectived" else env
        pid = processes.spawn(argv, Path(node.dir) / "server.stderr", env=node_env, cwd=REPO)
        estate = _set_pid(estate, srv.role, node.identity, pid)
    _wait_listening(estate, hap, art)
    wait_for_nodes(estate, env)
    finish()
    return estate


def _wait_listening(estate: Estate, *procs: LabProcess) -> None:
    def listening(p: LabProcess) -> bool:
        try:
            with socket.create_connection((p.address, p.port), timeout=0.5):
                return True
        except OSError:
            return False

    for p in procs:
        pid = next(x.pid for x in estate.processes if (x.role, x.identity) == (p.role, p.identity))

        def ready(p: LabProcess = p, pid: int = pid) -> bool:
            return listening(p) or not processes.running(pid)

        ok = processes.wait_for(ready, 15)
        if not ok or not listening(p):
            tail = Path(p.log).read_text(errors="replace")[-600:] if Path(p.log).exists() else ""
            raise LabError(f"{p.role} did not listen on {p.address}:{p.port}; {p.log}: {tail}")


def wait_for_nodes(estate: Estate, env: dict[str, str], timeout: float = 40) -> None:
    """Until every node answers ``mco-py ping``; LabError naming the silent ones."""
    ids = [n.identity for n in estate.nodes]
    args = [sys.executable, "-m", "mcollective_py", "ping", "-c", estate.client_cfg, "-t", "2"]
    args += [a for i in ids for a in ("-I", i)]
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
        out = r.stdout + r.stderr
        if r.returncode == 0 and all(i in r.stdout for i in ids):
            return
        for node in estate.nodes:
            srv = next(
                x
                for x in estate.processes
                if x.identity == node.identity and x.role in ("server", "mcollectived")
            )
            if not processes.running(srv.pid, MARKERS[srv.role]):
                log = Path(node.dir) / "server.stderr"
                raise LabError(
                    f"the {srv.role} of {node.identity} exited; {log}: "
                    f"{log.read_text(errors='replace')[-800:] if log.exists() else ''}"
                )
        time.sleep(0.2)
    raise LabError(f"not every lab node answered a ping within {timeout:g} s: {out[-600:]}")


def build_shims(estate: Estate, server_cfg: str, env: dict[str, str]) -> None:
    """``mco-py shim build deploy healthcheck --out SHIMS_DIR``: the Ruby shims the lab's
    Ruby nodes load (their libdir); each shim runs ``mco-py agent run -c <its node's
    server.cfg>``, so one build serves every Ruby node."""
    argv = [
        sys.executable,
        "-m",
        "mcollective_py",
        "shim",
        "build",
        *SHIMMED_AGENTS,
        "--out",
        estate.shims_dir,
        "-c",
        server_cfg,
    ]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    if r.returncode != 0:
        raise LabError(
            f"mco-py shim build exited {r.returncode}: {(r.stderr or r.stdout).strip()[-600:]}"
        )


def render_hiera(estate: Estate, version: str) -> None:
    """The lab's Hiera: the repository's hiera.yaml and hand-written data, the release and
    pool data of ``version`` rendered from the lab's catalog, and the lb node's paths."""
    from ..release import data_dir, load_catalog, plan_writes, render_release, write_files

    dest = Path(estate.hiera_dir)
    if not dest.exists():
        shutil.copytree(HIERA, dest)
        for sub in ("releases", "pools"):
            shutil.rmtree(dest / "data" / sub, ignore_errors=True)
    catalog = load_catalog(estate.catalog)
    files = render_release(catalog, estate.service, version, estate.environment)
    write_files(plan_writes(data_dir(dest), files))
    lb = estate.lb_nodes[0]
    (dest / "data" / "nodes" / f"{lb.identity}.yaml").write_text(layout.lb_hiera(estate))


def apply_haproxy_pools(estate: Estate) -> None:
    """``puppet apply`` of the haproxy_pools module as the lab's load balancer; LabError with
    Puppet's errors when it fails."""
    puppet = shutil.which("puppet")
    if puppet is None:
        raise LabError("puppet is not installed: run scripts/setup (Debian puppet)")
    root = Path(estate.root)
    state = root / "puppet"
    manifest = state / "lb.pp"
    state.mkdir(parents=True, exist_ok=True)
    manifest.write_text(layout.LB_MANIFEST)
    lb = estate.lb_nodes[0]
    argv = [
        puppet,
        "apply",
        f"--modulepath={MODULES}",
        f"--hiera_config={Path(estate.hiera_dir) / 'hiera.yaml'}",
        "--color=false",
        *(f"--{d}dir={state / d}" for d in ("var", "conf", "code", "log", "run")),
        "--certname",
        lb.identity,
        "--detailed-exitcodes",
        str(manifest),
    ]
    env = {**child_env(), **{f"FACTER_{k}": v for k, v in lb.facts.items()}}
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    (state / "apply.log").write_text(r.stdout + r.stderr)
    errors = [
        line
        for line in (r.stdout + r.stderr).splitlines()
        if line.startswith("Error:") and not line.startswith("Error: Facter:")
    ]
    if r.returncode not in (0, 2) or errors or not Path(estate.haproxy_cfg).is_file():
        raise LabError(
            f"puppet apply of haproxy_pools exited {r.returncode}: "
            f"{'; '.join(errors) or (r.stdout + r.stderr).strip()[-600:]} (log: {state / 'apply.log'})"
        )


@dataclass(frozen=True)
class DownResult:
    stopped: tuple[tuple[str, str, int], ...]
    vhost_deleted: bool
    removed: bool


def down(root: Path, events: LabEvents | None = None) -> DownResult:
    """Stop every process the lab in ``root`` started (by pid), delete its vhost, remove
    ``root``.  Nothing there: nothing done."""
    ev = events or LabEvents()
    estate = load_estate(root)
    if estate is None:
        return DownResult((), False, False)
    stopped = []
    # the apps first (their nodes' agents could restart them), then servers, then the rest
    order = {"app": 0, "server": 1, "mcollectived": 1, "haproxy": 2, "artifacts": 3}
    for p in sorted(estate.processes, key=lambda x: order[x.role]):
        pids = {p.pid, processes.read_pid(p.pidfile) if p.pidfile else 0} - {0}
        for pid in sorted(pids):
            if processes.stop(pid, MARKERS[p.role]):
                stopped.append((p.role, p.identity, pid))
    ev.step(f"stopped {len(stopped)} processes")
    deleted = broker.delete(estate.vhost)
    if deleted:
        ev.step(f"deleted RabbitMQ vhost {estate.vhost}")
    shutil.rmtree(root, ignore_errors=True)
    return DownResult(tuple(stopped), deleted, True)
