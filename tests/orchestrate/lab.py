"""A real deploy lab on loopback (``BLOCK``.x: 127.0.<n>.x for ``MCO_TEST_NS=i<n>``, else
127.0.12.x) for the ``mco-py deploy`` integration tests.

* 4 app nodes: ``web1..web3``, each an ``mco-py server``, and ``node1``, a real Ruby
  ``mcollectived`` (ruby-fleet) hosting our deploy and healthcheck agents through shims (a
  mixed fleet).  Each deploy agent fetches from the artifact server and restarts the app with
  ``appctl.py``; the app listens on BLOCK.(10+i).
* 2 load balancers ``lb1``/``lb2``: each a real HAProxy (master-worker, server-state-file,
  backend ``shop`` = web1..web4, http check every 100 ms) and an ``mco-py server`` whose
  haproxy agent drives its admin socket.
* an artifact server on BLOCK.3 serving every release of the catalog written here.
* :class:`Load`: threads sending requests through both frontends and counting failures, and
  a sampler reading ``show stat`` on both sockets every 100 ms (fewest servers UP seen).

Every process is started here and stopped by its pid.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.agents_py.lab import HAPROXY, ArtifactServer, admin_command, free_port
from tests.agents_py.releases_fixture import APP, SMOKE
from tests.conftest import (
    MCO_PY,
    REPO,
    RUBY_FLEET,
    PythonFleet,
    fleet_up,
    lab_dir,
    ns_vhost,
    run_mco_py,
)
from tests.orchestrate.subscribers_fixtures import BLOCK

PY_NODES = ["web1", "web2", "web3"]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RUBY_NODE = "node1"  # ruby-fleet names its nodes node1..N
NODES = [*PY_NODES, RUBY_NODE]
LBS = ["lb1", "lb2"]
GOOD = ["1.0.0", "1.1.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0"]
BAD = "1.2.0"  # its app answers /health with 503
MIGRATION_GOOD = ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0"]
MIGRATION_BAD = "2.9.0"  # sick like BAD; for the runs with migrations (their own versions)

#: Every release's ``bin/migrate PHASE`` (the deploy agent's default migration command): it
#: logs each run to ``<ctl>/migrations.log`` ("service version phase node time"), sleeps
#: ``<ctl>/slow-PHASE`` seconds and fails when ``<ctl>/fail-PHASE`` exists.
MIGRATE = """#!/usr/bin/env python3
import os, socket, sys, time
from pathlib import Path

ctl = Path(@CTL@)
phase = sys.argv[1]
with open(ctl / "migrations.log", "a") as fh:
    fh.write(" ".join([os.environ["DEPLOY_SERVICE"], os.environ["DEPLOY_VERSION"], phase,
                       socket.gethostname(), f"{time.time():.3f}"]) + "\\n")
slow = ctl / f"slow-{phase}"
if slow.exists():
    time.sleep(float(slow.read_text() or "5"))
if (ctl / f"fail-{phase}").exists():
    print(f"{phase} migration refused by the lab (fail-{phase})")
    sys.exit(1)
print(f"migrated {phase}")
"""

SICK_APP = APP.replace(
    'body = json.dumps({"version": VERSION}).encode() if self.path == "/version" else b"ok"',
    'body = json.dumps({"version": VERSION}).encode() if self.path == "/version" else b"sick"',
).replace(
    "self.send_response(200)",
    'self.send_response(200 if self.path in ("/version", "/") else 503)',
)

HAPROXY_CFG = """\
global
    stats socket {socket} mode 600 level admin expose-fd listeners
    stats timeout 30s
    server-state-file {state_file}

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    load-server-state-from-file global

frontend shop
    bind {frontend}
    default_backend shop

backend shop
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 100ms fastinter 100ms downinter 100ms rise 2 fall 2
{servers}
"""


def _tar(version: str, app: str, migrate: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data, mode in (
            ("VERSION", f"{version}\n".encode(), 0o644),
            ("app.py", app.encode(), 0o644),
            ("bin/smoke-test", SMOKE.encode(), 0o755),
            ("bin/migrate", migrate.encode(), 0o755),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


class HAProxy:
    """One HAProxy in master-worker mode; ``reload`` saves the server states first."""

    def __init__(self, name: str, root: Path, frontend: str, servers: str) -> None:
        self.name, self.dir = name, root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = str(self.dir / "admin.sock")
        self.state_file = str(self.dir / "server-state")
        Path(self.state_file).write_text("")
        self.frontend = frontend
        (self.dir / "haproxy.cfg").write_text(
            HAPROXY_CFG.format(
                socket=self.socket, state_file=self.state_file, frontend=frontend, servers=servers
            )
        )
        with open(self.dir / "haproxy.log", "ab") as log:
            self.proc = subprocess.Popen(
                [HAPROXY, "-W", "-db", "-f", str(self.dir / "haproxy.cfg")],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        _wait(lambda: Path(self.socket).exists(), 10, f"{name} admin socket")

    def command(self, line: str) -> str:
        return admin_command(self.socket, line)

    def states(self) -> dict[str, str]:
        """server -> status column of ``show stat`` (UP, DOWN, MAINT, DRAIN, ``UP 1/2``...)."""
        text = self.command("show stat").lstrip("# ")
        return {
            r["svname"]: r["status"]
            for r in csv.DictReader(io.StringIO(text))
            if r["pxname"] == "shop" and r["svname"] not in ("FRONTEND", "BACKEND")
        }

    def up(self) -> int:
        return sum(1 for s in self.states().values() if s == "UP")

    def reload(self) -> None:
        """What haproxy_pools does on a changed config: save states, then reload (USR2)."""
        Path(self.state_file).write_text(self.command("show servers state"))
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"waited {timeout} s for {what}")


class Load:
    """Continuous requests through both frontends + a 100 ms ``show stat`` sampler."""

    def __init__(self, lab: DeployLab, threads: int = 2) -> None:
        self.lab = lab
        self.ok = 0
        self.failed = 0
        self.errors: list[str] = []
        self.samples = 0
        self.min_up: dict[str, int] = {lb: 99 for lb in LBS}
        self.maint_seen: dict[str, set[str]] = {lb: set() for lb in LBS}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(threads)
        ]
        self._threads.append(threading.Thread(target=self._sample, daemon=True))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _send(self, i: int) -> None:
        urls = [f"http://{hp.frontend}/" for hp in self.lab.haproxies.values()]
        k = i
        while not self._stop.is_set():
            url = urls[k % len(urls)]
            k += 1
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
                    resp.read()
                    good = resp.status == 200
            except OSError as exc:
                good = False
                with self._lock:
                    self.errors.append(f"{url}: {exc}")
            with self._lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
            time.sleep(0.005)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for lb, hp in self.lab.haproxies.items():
                try:
                    states = hp.states()
                except OSError:
                    continue  # the socket is briefly away during a reload
                up = sum(1 for s in states.values() if s == "UP")
                with self._lock:
                    self.min_up[lb] = min(self.min_up[lb], up)
                    self.maint_seen[lb] |= {s for s, st in states.items() if st.startswith("MAINT")}
            self.samples += 1
            time.sleep(0.1)


class DeployLab:
    """Everything above, up; ``deploy(*args)`` runs the real CLI against it."""

    def __init__(self) -> None:
        self.root = lab_dir("deploy-lab")
        self.ruby_env: dict[str, str] | None = None
        self.app_pidfiles: list[Path] = []
        self.haproxies: dict[str, HAProxy] = {}
        self._fleet: PythonFleet | None = None
        self.pg_db: str | None = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.artifacts = ArtifactServer(host=f"{BLOCK}.3")
        self.sha: dict[str, str] = {}
        self.ctl = self.root / "migrate-ctl"
        self.ctl.mkdir()
        self.ctl.chmod(0o777)
        migrate = MIGRATE.replace("@CTL@", repr(str(self.ctl)))
        self.pg_db = self._create_database()
        self.pg_dsn = f"postgresql://postgres@127.0.0.1:5432/{self.pg_db}"
        for v in [*GOOD, BAD, *MIGRATION_GOOD, MIGRATION_BAD]:
            sick = v in (BAD, MIGRATION_BAD)
            data = _tar(v, SICK_APP if sick else APP, migrate)
            self.artifacts.files[f"/artifacts/shop/shop-{v}.tar.gz"] = data
            self.sha[v] = hashlib.sha256(data).hexdigest()
        self.addr = {n: f"{BLOCK}.{10 + i}" for i, n in enumerate(NODES, 1)}
        self.port = {n: free_port(self.addr[n]) for n in NODES}
        servers = "".join(
            f"    server {n} {self.addr[n]}:{self.port[n]} check weight 100\n" for n in NODES
        )
        self.haproxies = {
            lb: HAProxy(lb, self.root, f"{BLOCK}.{4 + j}:{free_port(f'{BLOCK}.{4 + j}')}", servers)
            for j, lb in enumerate(LBS)
        }
        vhost = ns_vhost("deploy-lab")
        self._fleet = PythonFleet(self.root / "nodes", vhost, PY_NODES + LBS)
        appctl = REPO / "tests" / "agents_py" / "appctl.py"
        node_dirs = {n: self.root / "nodes" / n for n in PY_NODES}
        node_dirs[RUBY_NODE] = self.root / "ruby" / "nodes" / RUBY_NODE
        settings = {}
        for n in NODES:
            d = node_dirs[n]
            restart = (
                f"{sys.executable} {appctl} restart --pidfile {d / 'app.pid'} "
                f"--app {d / 'releases' / 'shop' / 'current' / 'app.py'} "
                f"--host {self.addr[n]} --port {self.port[n]}"
            )
            settings[n] = {
                "root": str(d / "releases"),
                "config_dir": str(d / "etc"),
                "artifact_url": f"{self.artifacts.base}/artifacts/{{service}}/{{service}}-{{version}}.tar.gz",
                "service_manager": "command",
                "restart_command": restart,
                "restart_timeout": "20",
                "migrate_dsn": self.pg_dsn,
                "migrate_lock_timeout": "120",
            }
        self.app_pidfiles = [node_dirs[n] / "app.pid" for n in NODES]
        for n in PY_NODES:
            with open(node_dirs[n] / "server.cfg", "a") as fh:
                fh.write("".join(f"plugin.deploy.{k} = {v}\n" for k, v in settings[n].items()))
        for lb, hp in self.haproxies.items():
            with open(self.root / "nodes" / lb / "server.cfg", "a") as fh:
                fh.write(
                    f"plugin.haproxy.socket = {hp.socket}\nplugin.haproxy.poll_interval = 0.05\n"
                )
        # the Ruby node: shims for our agents, its settings in plugin.d (read by the shim's
        # `mco-py agent run -c <its server.cfg>`)
        shims = self.root / "shims"
        (self.root / "shim-build.cfg").write_text("")
        r = subprocess.run(
            [
                *MCO_PY,
                "shim",
                "build",
                "deploy",
                "healthcheck",
                "--out",
                str(shims),
                "-c",
                str(self.root / "shim-build.cfg"),
            ],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert r.returncode == 0, r.stderr
        ruby_dir = self.root / "ruby"
        ruby_dir.mkdir()
        ruby_dir.chmod(0o755)
        self.ruby_env = fleet_up(
            ruby_dir,
            1,
            vhost=vhost,
            extra={"LAB_COMPAT": "0", "LAB_PLUGIN_DIRS": str(shims), "PYTHONPATH": str(REPO)},
        )
        plugin_d = node_dirs[RUBY_NODE] / "plugin.d"
        plugin_d.mkdir(exist_ok=True)
        (plugin_d / "deploy.cfg").write_text(
            "".join(f"{k} = {v}\n" for k, v in settings[RUBY_NODE].items())
        )
        self.fleet.up()
        self.env = dict(self.fleet.env, MCO_PY_STATE_DIR=str(self.root / "state"))
        self.catalog = self.root / "services.yaml"
        self.catalog.write_text(yaml.safe_dump(self.catalog_doc(), sort_keys=False))
        # every node starts on 1.0.0, online
        for action, extra in (("fetch", [f"sha256={self.sha['1.0.0']}"]), ("activate", [])):
            r = run_mco_py(
                self.env,
                "rpc",
                "deploy",
                action,
                "service=shop",
                "version=1.0.0",
                *extra,
                *[a for n in NODES for a in ("-I", n)],
                "-t",
                "60",
                timeout=120,
            )
            assert r.returncode == 0, f"{action} 1.0.0: {r.stdout} {r.stderr}"
        _wait(lambda: all(hp.up() == 4 for hp in self.haproxies.values()), 20, "4 servers UP")

    @staticmethod
    def _create_database() -> str:
        """A fresh PostgreSQL database ``<ns>_deploylab_<hex>`` on the shared server (dropped by
        :meth:`stop`), the migration database of every node."""
        import secrets

        import psycopg

        name = f"{os.environ.get('MCO_TEST_NS', 'i12')}_deploylab_{secrets.token_hex(3)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return name

    def migration_rows(self, version: str) -> list[tuple[str, str, str]]:
        """(phase, outcome, node) of ``mco_migrations`` for shop ``version``, by phase."""
        import psycopg

        with psycopg.connect(self.pg_dsn) as db:
            rows = db.execute(
                "select phase, outcome, node from mco_migrations where service = 'shop' "
                "and version = %s order by phase desc",
                (version,),
            ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def migration_runs(self, version: str) -> list[str]:
        """The phases ``bin/migrate`` of shop ``version`` really ran, in order (its log)."""
        log = self.ctl / "migrations.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [w[2] for w in (line.split() for line in lines) if w[:2] == ["shop", version]]

    def write_catalog(self, name: str, migrations: dict[str, Any] | None = None) -> Path:
        """Another catalog of the same lab (``migrations`` block added), beside the first."""
        doc = self.catalog_doc()
        if migrations is not None:
            doc["services"]["shop"]["migrations"] = migrations
        path = self.root / f"services-{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def client_cfg_with(self, name: str, lines: dict[str, str]) -> Path:
        """The lab's client config plus ``lines`` (e.g. ``plugin.deploy_events.*``)."""
        path = self.root / f"client-{name}.cfg"
        path.write_text(
            self.fleet.client_cfg.read_text().rstrip("\n")
            + "\n"
            + "".join(f"{k} = {v}\n" for k, v in lines.items())
        )
        return path

    def catalog_doc(self) -> dict[str, Any]:
        return {
            "catalog": 1,
            "environments": {"lab": {"load_balancers": LBS}},
            "services": {
                "shop": {
                    "artifact": f"{self.artifacts.base}/artifacts/{{service}}/{{service}}-{{version}}.tar.gz",
                    "port": 8081,
                    "health": {"type": "http", "path": "/health", "timeout": 2},
                    "lb": {"mode": "http"},
                    "batch": {"size": 1, "canary": 1, "pause": 0, "max_failures": 0},
                    "releases": {v: {"sha256": s} for v, s in self.sha.items()},
                    "environments": {
                        "lab": {
                            "frontend": self.haproxies["lb1"].frontend,
                            "service_manager": "none",
                            "nodes": {
                                n: {"address": self.addr[n], "port": self.port[n]} for n in NODES
                            },
                        }
                    },
                }
            },
        }

    @property
    def fleet(self) -> PythonFleet:
        assert self._fleet is not None
        return self._fleet

    def deploy_cmd(
        self, *args: str, catalog: Path | None = None, config: Path | None = None
    ) -> list[str]:
        """``mco-py deploy ARGS -c client.cfg`` (+ ``--catalog`` for the commands taking one)."""
        cmd = [*MCO_PY, "deploy", *args]
        if args and args[0] != "report":  # the report reads a journal, no config
            cmd += ["-c", str(config or self.fleet.client_cfg)]
        if args and args[0] not in ("status", "resume", "abort", "report"):
            cmd += ["--catalog", str(catalog or self.catalog)]
        return cmd

    def deploy(
        self,
        *args: str,
        timeout: float = 300,
        catalog: Path | None = None,
        config: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.deploy_cmd(*args, catalog=catalog, config=config),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )

    def versions(self) -> dict[str, str]:
        """What each app answers on /version right now (the truth, not the agent's view)."""
        out = {}
        for n in NODES:
            with urllib.request.urlopen(
                f"http://{self.addr[n]}:{self.port[n]}/version", timeout=5
            ) as r:  # noqa: S310
                out[n] = yaml.safe_load(r.read())["version"]
        return out

    def stop(self) -> None:
        """Stop everything started so far (each by its own pid); safe after a failed start."""
        if self._fleet is not None:
            self._fleet.down()
        if self.ruby_env is not None:
            subprocess.run(
                [str(RUBY_FLEET), "down"], env=self.ruby_env, capture_output=True, timeout=120
            )
        appctl = REPO / "tests" / "agents_py" / "appctl.py"
        for pidfile in self.app_pidfiles:
            subprocess.run(
                [sys.executable, str(appctl), "stop", "--pidfile", str(pidfile)],
                check=False,
                timeout=30,
            )
        for hp in self.haproxies.values():
            hp.stop()
        if hasattr(self, "artifacts"):
            self.artifacts.stop()
        if self.pg_db is not None:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)")
            self.pg_db = None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
