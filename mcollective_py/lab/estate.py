"""What a lab is: the typed description of the estate ``mco-py lab up`` stands up.

:class:`LabSpec` is what the caller asks for; :class:`Estate` is what exists (addresses, ports,
files and the pids of the processes the lab started).  The estate is saved as ``lab.json`` in
the lab's state directory, which is how ``status`` and ``down`` find it again, and what tests
and scripts read (``mco-py lab status --json`` prints the same document).

:func:`plan` is pure: from a spec and the ports chosen at run time it decides every address,
identity, path and setting; :mod:`.layout` turns the plan into file contents.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError

#: The demo service the lab runs, its environment, and the releases the lab builds:
#: version -> healthy (3.0.0 is built broken on purpose: its canary fails the health gate).
SERVICE = "shop"
ENVIRONMENT = "lab"
RELEASES: dict[str, bool] = {"1.0.0": True, "2.0.0": True, "3.0.0": False}
INITIAL_VERSION = "1.0.0"
STATE_FILE = "lab.json"
FORMAT = 1
MAX_NODES = 40

_PREFIX_RE = re.compile(r"\A127\.(\d{1,3})\.(\d{1,3})\.\Z")
_VHOST_RE = re.compile(r"\A/[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


@dataclass(frozen=True)
class LabSpec:
    """What to stand up.

    ``root``: the state directory (everything the lab writes goes below it); ``vhost``: the
    RabbitMQ vhost the lab creates and removes; ``prefix``: the loopback /24 the lab's
    addresses come from (``127.X.Y.``); ``nodes``: app nodes (1..40); ``ruby_nodes``: how
    many of them (the last ones) run Ruby ``mcollectived`` hosting our agents through shims.
    """

    root: Path
    vhost: str = "/mco-py-lab"
    prefix: str = "127.0.14."
    nodes: int = 4
    ruby_nodes: int = 0
    broker_host: str = "127.0.0.1"
    stomp_port: int = 61613
    amqp_port: int = 5672
    broker_user: str = "guest"
    broker_password: str = "guest"  # noqa: S105 - RabbitMQ's loopback-only default account
    psk: str = "mco-py-lab-psk"

    def check(self) -> LabSpec:
        """The spec itself, or UsageError naming the bad value and what to use instead."""
        if not _PREFIX_RE.match(self.prefix) or not all(
            0 <= int(x) <= 255
            for x in _PREFIX_RE.match(self.prefix).groups()  # type: ignore[union-attr]
        ):
            raise UsageError(
                f"lab address prefix {self.prefix!r} is not a loopback /24 such as 127.0.14.; "
                "the lab binds loopback addresses only"
            )
        if not _VHOST_RE.match(self.vhost):
            raise UsageError(
                f"lab vhost {self.vhost!r} must be '/' followed by letters, digits, '.', '_' or "
                "'-' (at most 63), e.g. /mco-py-lab"
            )
        if not 1 <= self.nodes <= MAX_NODES:
            raise UsageError(f"--nodes {self.nodes}: the lab runs 1 to {MAX_NODES} app nodes")
        if not 0 <= self.ruby_nodes <= self.nodes:
            raise UsageError(
                f"--ruby-nodes {self.ruby_nodes}: must be between 0 and --nodes ({self.nodes})"
            )
        if not self.root.is_absolute():
            raise UsageError(f"lab state directory {str(self.root)!r} must be an absolute path")
        return self


@dataclass(frozen=True)
class LabProcess:
    """One process the lab started: its role (``haproxy``, ``artifacts``, ``server`` (mco-py
    server), ``mcollectived`` (a Ruby node), ``app``), the identity it belongs to, the address it serves, and its pid (0: not running
    yet, e.g. an app before its first release).  ``pidfile``: where a process that is
    restarted by someone else (the app, by the deploy agent) records its pid."""

    role: str
    identity: str
    address: str
    port: int
    pid: int = 0
    pidfile: str = ""
    log: str = ""


@dataclass(frozen=True)
class LabNode:
    """An MCollective node of the lab: ``web`` nodes run the app and the deploy and
    healthcheck agents, the ``lb`` node runs the haproxy agent.  ``daemon``: ``mco-py``
    (``mco-py server``) or ``mcollectived`` (Ruby, hosting the agents through shims)."""

    identity: str
    role: str
    address: str
    dir: str
    server_cfg: str
    facts: dict[str, str]
    classes: tuple[str, ...]
    app_port: int = 0
    release_root: str = ""
    daemon: str = "mco-py"

    @property
    def app_url(self) -> str:
        return f"http://{self.address}:{self.app_port}" if self.app_port else ""


@dataclass(frozen=True)
class Estate:
    """Everything about a running lab; saved as ``lab.json``."""

    root: str
    vhost: str
    service: str
    environment: str
    versions: tuple[str, ...]
    nodes: tuple[LabNode, ...]
    processes: tuple[LabProcess, ...]
    frontend: tuple[str, int]
    haproxy_socket: str
    haproxy_cfg: str
    artifact_base: str
    client_cfg: str
    catalog: str
    hiera_dir: str
    deploy_state_dir: str
    shims_dir: str = ""
    broker: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT

    @property
    def web_nodes(self) -> tuple[LabNode, ...]:
        return tuple(n for n in self.nodes if n.role == "web")

    @property
    def lb_nodes(self) -> tuple[LabNode, ...]:
        return tuple(n for n in self.nodes if n.role == "lb")

    @property
    def frontend_url(self) -> str:
        return f"http://{self.frontend[0]}:{self.frontend[1]}"

    @property
    def database(self) -> str:
        """The service's SQLite database, shared by every app node (as one database server
        is in a real estate): where ``deploy migrate`` records the schema migrations."""
        return str(Path(self.root) / "db" / f"{self.service}.db")

    def node(self, identity: str) -> LabNode:
        for n in self.nodes:
            if n.identity == identity:
                return n
        raise UsageError(
            f"no lab node {identity!r} (nodes: {', '.join(n.identity for n in self.nodes)})"
        )

    def with_processes(self, processes: tuple[LabProcess, ...]) -> Estate:
        return replace(self, processes=processes)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["frontend"] = f"{self.frontend[0]}:{self.frontend[1]}"
        doc["frontend_url"] = self.frontend_url
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any], source: str = STATE_FILE) -> Estate:
        """The estate of a ``lab.json`` document; ConfigError when it is not one."""
        try:
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
            host, _, port = str(doc["frontend"]).rpartition(":")
            return cls(
                root=str(doc["root"]),
                vhost=str(doc["vhost"]),
                service=str(doc["service"]),
                environment=str(doc["environment"]),
                versions=tuple(str(v) for v in doc["versions"]),
                nodes=tuple(LabNode(**{**n, "classes": tuple(n["classes"])}) for n in doc["nodes"]),
                processes=tuple(LabProcess(**p) for p in doc["processes"]),
                frontend=(host, int(port)),
                haproxy_socket=str(doc["haproxy_socket"]),
                haproxy_cfg=str(doc["haproxy_cfg"]),
                artifact_base=str(doc["artifact_base"]),
                client_cfg=str(doc["client_cfg"]),
                catalog=str(doc["catalog"]),
                hiera_dir=str(doc["hiera_dir"]),
                deploy_state_dir=str(doc["deploy_state_dir"]),
                shims_dir=str(doc.get("shims_dir") or ""),
                broker=dict(doc.get("broker") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{source} is not a lab state file this version understands ({exc}); stop "
                "what it started by hand and remove the directory, or run mco-py lab down"
            ) from None

    def save(self) -> Path:
        """Write ``lab.json`` atomically (temporary file, rename)."""
        path = Path(self.root) / STATE_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.touch(mode=0o600)  # it holds the lab's broker password and psk
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
        return path


def load_estate(root: Path) -> Estate | None:
    """The estate saved in ``root``, None when there is no lab there."""
    path = root / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON ({exc}); remove it or run mco-py lab down") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a lab state file; remove it or run mco-py lab down")
    return Estate.from_json(doc, str(path))


@dataclass(frozen=True)
class Ports:
    """The TCP ports chosen at run time (free when chosen)."""

    frontend: int
    artifacts: int
    apps: tuple[int, ...]


def plan(spec: LabSpec, ports: Ports) -> Estate:
    """Decide the estate for ``spec`` with ``ports``: pure, no I/O.

    Addresses in ``spec.prefix``: .2 the HAProxy frontend, .3 the artifact server, .4 the
    load balancer node ``lb1.lab``, .11 onwards the app nodes ``web1.lab``...  Processes are
    listed with pid 0 (not started)."""
    spec.check()
    if len(ports.apps) != spec.nodes:
        raise ValueError(f"{len(ports.apps)} app ports for {spec.nodes} nodes")
    root = spec.root
    p = spec.prefix
    nodes: list[LabNode] = []
    processes: list[LabProcess] = []
    lb_dir = root / "nodes" / "lb1.lab"
    nodes.append(
        LabNode(
            identity="lb1.lab",
            role="lb",
            address=f"{p}4",
            dir=str(lb_dir),
            server_cfg=str(lb_dir / "server.cfg"),
            facts={"role": "lb", "deploy_env": ENVIRONMENT, "node_index": "0"},
            classes=("roles::lb", "haproxy_pools", "mcollective_py"),
        )
    )
    for i in range(1, spec.nodes + 1):
        d = root / "nodes" / f"web{i}.lab"
        ruby = i > spec.nodes - spec.ruby_nodes
        nodes.append(
            LabNode(
                identity=f"web{i}.lab",
                role="web",
                address=f"{p}{10 + i}",
                dir=str(d),
                server_cfg=str(d / "server.cfg"),
                facts={
                    "role": "web",
                    "app": SERVICE,
                    "deploy_env": ENVIRONMENT,
                    "node_index": str(i),
                },
                classes=("roles::web", "app_release", "mcollective_py"),
                app_port=ports.apps[i - 1],
                release_root=str(d / "releases"),
                daemon="mcollectived" if ruby else "mco-py",
            )
        )
    processes.append(
        LabProcess(
            "haproxy",
            "lb1.lab",
            f"{p}2",
            ports.frontend,
            log=str(root / "haproxy" / "haproxy.log"),
        )
    )
    processes.append(
        LabProcess(
            "artifacts",
            "lab",
            f"{p}3",
            ports.artifacts,
            log=str(root / "artifacts.log"),
        )
    )
    for n in nodes:
        processes.append(
            LabProcess(
                "server" if n.daemon == "mco-py" else "mcollectived",
                n.identity,
                n.address,
                0,
                pidfile=str(Path(n.dir) / "server.pid"),
                log=str(Path(n.dir) / "server.log"),
            )
        )
        if n.role == "web":
            processes.append(
                LabProcess(
                    "app",
                    n.identity,
                    n.address,
                    n.app_port,
                    pidfile=str(Path(n.dir) / "app.pid"),
                    log=str(Path(n.dir) / "app.log"),
                )
            )
    return Estate(
        root=str(root),
        vhost=spec.vhost,
        service=SERVICE,
        environment=ENVIRONMENT,
        versions=tuple(RELEASES),
        nodes=tuple(nodes),
        processes=tuple(processes),
        frontend=(f"{p}2", ports.frontend),
        haproxy_socket=str(root / "haproxy" / "admin.sock"),
        haproxy_cfg=str(root / "haproxy" / "haproxy.cfg"),
        artifact_base=f"http://{p}3:{ports.artifacts}",
        client_cfg=str(root / "client.cfg"),
        catalog=str(root / "services.yaml"),
        hiera_dir=str(root / "hiera"),
        deploy_state_dir=str(root / "deploy-state"),
        shims_dir=str(root / "shims") if spec.ruby_nodes else "",
        broker={
            "host": spec.broker_host,
            "stomp_port": spec.stomp_port,
            "amqp_port": spec.amqp_port,
            "user": spec.broker_user,
            "password": spec.broker_password,
            "psk": spec.psk,
        },
    )
