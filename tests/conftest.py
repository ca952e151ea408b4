"""Shared fixtures: where ../shared is, and a real Ruby MCollective fleet on a real RabbitMQ."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MCO_SHARED") or REPO.parent / "shared")
VECTORS = SHARED / "vectors"
RUBY_FLEET = SHARED / "lab" / "ruby-fleet"
MCO_PY = [sys.executable, "-m", "mcollective_py"]
# Test namespace: lets independent pytest processes (parallel CI groups, several checkouts on
# one machine) share one broker and /tmp without touching each other's vhosts and lab dirs.
# Each pytest-xdist worker (gw0, gw1, ...) gets a namespace of its own as well.
TEST_NS = "-".join(
    x for x in (os.environ.get("MCO_TEST_NS", ""), os.environ.get("PYTEST_XDIST_WORKER", "")) if x
)
TEST_ROOT = Path("/tmp/mco-py-tests" + (f"-{TEST_NS}" if TEST_NS else ""))


def ns_vhost(name: str) -> str:
    """The vhost ``/<name>`` of this test namespace."""
    return f"/{name}" + (f"-{TEST_NS}" if TEST_NS else "")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"shared material not found at {SHARED}; set MCO_SHARED"
    return SHARED


def _fleet_env(lab_dir: Path, vhost: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCOLLECTIVE_", "LAB_"))}
    env.pop("RUBYOPT", None)
    env.update({"LAB_DIR": str(lab_dir), "LAB_VHOST": vhost})
    env.update(extra or {})
    return env


def fleet_up(
    lab_dir: Path, n: int = 3, vhost: str = "", extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Start (or reuse) a Ruby fleet; returns the environment for clients (``ruby-fleet env``)."""
    env = _fleet_env(lab_dir, vhost or ns_vhost("mco-py-test"), extra)
    r = subprocess.run(
        [str(RUBY_FLEET), "up", str(n)], env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, f"ruby-fleet up failed:\n{r.stdout}\n{r.stderr}"
    out = subprocess.run(
        [str(RUBY_FLEET), "env"], env=env, check=True, capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("export "):
            k, v = line[len("export ") :].split("=", 1)
            env[k] = v.strip("'")
    env["PYTHONPATH"] = str(REPO)
    return env


def lab_dir(name: str) -> Path:
    """A fresh lab state dir the ``rabbitmq`` user can read: ruby-fleet hands a definitions
    file in it to ``rabbitmqctl import_definitions``, which the broker reads itself, and
    pytest's own tmp dirs are private (0700), so the import fails there."""
    d = TEST_ROOT / name
    # stop nodes a previous, interrupted run left behind, wherever in d their lab was
    # (by their pid files, before the pid files are deleted with the directory)
    for lab in (
        sorted({p.parent.parent for p in d.glob("**/nodes/*/mcollectived.pid")})
        if d.exists()
        else []
    ):
        subprocess.run(
            [str(RUBY_FLEET), "down"], env=_fleet_env(lab, "/"), capture_output=True, timeout=120
        )
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for p in (d.parent, d):
        p.chmod(0o755)
    return d


@pytest.fixture(scope="session")
def ruby_fleet() -> Iterator[dict[str, str]]:
    """Three real Ruby mcollectived nodes (node1 web/ams, node2 db/ams, node3 web/fra) in their
    own vhost, psk security, compat preload on. Yields the client environment."""
    assert shutil.which("rabbitmqctl"), "RabbitMQ is not installed: run scripts/setup"
    lab = lab_dir("psk-fleet")
    env = fleet_up(lab)
    yield env
    subprocess.run([str(RUBY_FLEET), "down"], env=env, capture_output=True, timeout=120)


def run_mco_py(
    env: dict[str, str], *args: str, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        MCO_PY + list(args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        cwd=REPO,
    )


def run_mco(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Real Ruby ``mco`` with the lab's client.cfg."""
    return subprocess.run(
        ["mco", *args, "-c", env["MCOLLECTIVE_CONFIG"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---------------------------------------------------------------- Python nodes
def ensure_vhost(vhost: str) -> None:
    """The vhost, the lab's ``mcollective`` user and the two MCollective exchanges."""

    def ctl(*a: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *a], capture_output=True, timeout=60)

    ctl("add_vhost", vhost)
    ctl("add_user", "mcollective", "marionette")
    ctl("set_permissions", "-p", vhost, "mcollective", ".*", ".*", ".*")
    import pika

    conn = pika.BlockingConnection(
        pika.ConnectionParameters(
            "127.0.0.1", 5672, vhost, pika.PlainCredentials("mcollective", "marionette")
        )
    )
    ch = conn.channel()
    ch.exchange_declare("mcollective_broadcast", "topic", durable=True)
    ch.exchange_declare("mcollective_directed", "direct", durable=True)
    conn.close()


PSK = "mco-lab-psk"


def client_env(client_cfg: Path, pythonpath: bool = True) -> dict[str, str]:
    """This process's environment for a client (or node) child on ``client_cfg``: no inherited
    ``MCOLLECTIVE_*``/``LAB_*``, no Ruby preload, ``PYTHONPATH`` the checkout (or none, to
    run the installed package as a user would)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCOLLECTIVE_", "LAB_"))}
    env.update({"MCOLLECTIVE_CONFIG": str(client_cfg), "RUBYOPT": ""})
    if pythonpath:
        env["PYTHONPATH"] = str(REPO)
    else:
        env.pop("PYTHONPATH", None)
    return env


def client_cfg_text(vhost: str, libdir: str = "") -> str:
    return (
        "main_collective = mcollective\ncollectives = mcollective\n"
        f"libdir = /usr/share/mcollective/plugins{':' + libdir if libdir else ''}\n"
        f"securityprovider = psk\nplugin.psk = {PSK}\nconnector = rabbitmq\n"
        f"plugin.rabbitmq.vhost = {vhost}\nplugin.rabbitmq.pool.size = 1\n"
        "plugin.rabbitmq.pool.1.host = 127.0.0.1\nplugin.rabbitmq.pool.1.port = 61613\n"
        "plugin.rabbitmq.pool.1.user = mcollective\nplugin.rabbitmq.pool.1.password = marionette\n"
        "identity = mco-lab-client\nlogger_type = console\nloglevel = warn\n"
    )


#: The lab's published throwaway ssl keys: server pair, lab client pair, ``clients/`` certs.
SSL_KEYS = VECTORS / "ssl-marshal" / "keys"


def ssl_keys(root: Path) -> Path:
    """A fresh copy of :data:`SSL_KEYS` in ``root/keys``."""
    keys = root / "keys"
    if keys.exists():
        shutil.rmtree(keys)
    shutil.copytree(SSL_KEYS, keys)
    return keys


def ssl_node_cfg(keys: Path, serializer: str = "marshal") -> str:
    """The server.cfg lines of an ssl node with the key pair and client certs in ``keys``."""
    return (
        f"securityprovider = ssl\nplugin.ssl_serializer = {serializer}\n"
        f"plugin.ssl_server_private = {keys}/server-private.pem\n"
        f"plugin.ssl_server_public = {keys}/server-public.pem\n"
        f"plugin.ssl_client_cert_dir = {keys}/clients\n"
    )


def ssl_client_cfg(psk_cfg: str, keys: Path, serializer: str = "marshal") -> str:
    """A psk client.cfg (as :func:`client_cfg_text` writes it) made an ssl client with the
    lab client's key pair in ``keys``."""
    return (
        psk_cfg.replace("securityprovider = psk\n", "").replace(f"plugin.psk = {PSK}\n", "")
        + f"securityprovider = ssl\nplugin.ssl_serializer = {serializer}\n"
        f"plugin.ssl_server_public = {keys}/server-public.pem\n"
        f"plugin.ssl_client_private = {keys}/lab-client-private.pem\n"
        f"plugin.ssl_client_public = {keys}/lab-client.pem\n"
    )


class PythonFleet:
    """``mco-py server`` processes named like ruby-fleet's nodes (same facts and classes)."""

    def __init__(
        self,
        root: Path,
        vhost: str,
        names: list[str],
        *,
        index_offset: int = 0,
        extra_cfg: str = "",
        libdir: str = "",
    ) -> None:
        self.root, self.vhost, self.names = root, vhost, names
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        ensure_vhost(vhost)
        root.mkdir(parents=True, exist_ok=True)
        n = len(names) + index_offset
        self.client_cfg = root / "client.cfg"
        self.client_cfg.write_text(client_cfg_text(vhost, libdir))
        for j, name in enumerate(names):
            i = j + 1 + index_offset
            d = root / name
            d.mkdir(parents=True, exist_ok=True)
            role = "web" if i % 2 == 1 else "db"
            dc = "ams" if i <= (n + 1) // 2 else "fra"
            (d / "facts.yaml").write_text(
                f'---\nrole: {role}\ndatacenter: {dc}\nnode_index: "{i}"\nenvironment: lab\n'
            )
            (d / "classes.txt").write_text(
                f"roles::{role}\n" + ("haproxy\n" if role == "web" else "") + "mcollective\n"
            )
            cfg = client_cfg_text(vhost, libdir).replace(
                "identity = mco-lab-client\nlogger_type = console\nloglevel = warn\n", ""
            )
            cfg += f"identity = {name}\nlogfile = {d}/daemon.log\nloglevel = info\nplugin.yaml = {d}/facts.yaml\nclassesfile = {d}/classes.txt\n{extra_cfg}"
            (d / "server.cfg").write_text(cfg)
        self.env = client_env(self.client_cfg)

    def log(self, name: str) -> Path:
        return self.root / name / "daemon.log"

    def start(self, name: str) -> None:
        d = self.root / name
        with open(d / "stderr.log", "ab") as err:
            self.procs[name] = subprocess.Popen(
                MCO_PY + ["server", "-c", str(d / "server.cfg"), "--pidfile", str(d / "pid")],
                env=self.env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def up(self) -> None:
        for name in self.names:
            self.start(name)
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        import time

        deadline = time.monotonic() + timeout
        args = ["ping", "-t", "2"] + [a for n in self.names for a in ("-I", n)]
        while time.monotonic() < deadline:
            r = run_mco_py(self.env, *args)
            if r.returncode == 0:
                return
            for name, p in self.procs.items():
                assert p.poll() is None, (
                    f"{name} died: {(self.root / name / 'stderr.log').read_text()}"
                )
        raise AssertionError(f"Python nodes not ready: {r.stdout} {r.stderr}")

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def __enter__(self) -> PythonFleet:
        """``with fleet:`` starts every node and waits until they answer; whatever happens
        (a node that does not come up included), they are stopped again at the end."""
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def down(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="session")
def python_fleet() -> Iterator[PythonFleet]:
    """Three ``mco-py server`` nodes node1..node3 with ruby-fleet's facts, in their own vhost."""
    fleet = PythonFleet(
        lab_dir("py-fleet"), ns_vhost("mco-py-pyfleet"), ["node1", "node2", "node3"]
    )
    with fleet:
        yield fleet


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that restart the broker run last: everything else keeps its connections."""
    items.sort(key=lambda it: 1 if it.get_closest_marker("broker_restart") else 0)
