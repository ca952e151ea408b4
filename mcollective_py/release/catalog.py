"""The service catalog (``services.yaml``): what each service is, where it runs, how it is released.

The catalog is the one source the release data (``hiera.py``) and the orchestrator read, so both
act on the same versions, checksums, nodes, pools and health checks.  ``load_catalog`` checks
the whole document before returning and reports *every* problem at once, each with its YAML path
and what to try, e.g. ``services.shop.health.path: missing: an http check needs the path to GET,
e.g. path: /health``.

Format (``catalog: 1``)::

    catalog: 1
    environments:                      # every environment a release can go to
      lab: {load_balancers: [lb1.lab]} # identities of the nodes that run haproxy_pools
    defaults:                          # optional: os, deploy, service_manager, health, lb, batch
      batch: {size: 1}
    services:
      shop:
        description: The lab's web shop
        os: linux                      # linux | windows
        role: web                      # the nodes' ``role`` fact (discovery, Hiera roles level)
        deploy: artifact               # artifact (the deploy agent) | puppet (app_release)
        artifact: http://127.0.0.1:8000/shop/shop-{version}.tar.gz   # {service}, {version}
        service_manager: systemd       # systemd | windows | none (default from os)
        port: 8081                     # where the service listens on its nodes
        health: {type: http, path: /health, expect_status: 200}
        lb: {mode: http, balance: roundrobin}     # absent or null: no load balancer
        migrations: {command: bin/migrate, phase: pre, timeout: 600}   # or, phased:
        # migrations:
        #   pre:  {command: bin/migrate-pre, timeout: 600}    # expand, before the first node
        #   post: {command: bin/migrate-post, soak: 300}      # contract, after the last + soak
        #   rollback_compatible: {"1.5.0": ["1.4.2"]}        # after 1.5.0's pre, back to 1.4.2 only
        batch: {size: 25%, canary: 1, pause: 10, max_failures: 0}
        releases:                      # every version that may be rendered, quoted
          "1.4.2": {sha256: <64 hex>, environments: [lab, staging]}   # environments optional
        environments:
          lab:
            frontend: 127.0.0.1:8080   # HAProxy bind (required with lb)
            service_manager: none      # optional per-environment override
            nodes:                     # identity -> where the service listens
              web1.lab: {address: 127.0.0.11}
              web2.lab: {address: 127.0.0.12, port: 8082, pool: maintenance, weight: 50}

A version is 2 to 4 dot-separated numbers with SemVer's optional ``-prerelease`` and
``+build`` parts (``VERSION_RE``, at most 64 characters); it must be listed under the service's
``releases`` with its artifact's SHA-256 before it can be rendered.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import ConfigError, UsageError

FORMAT = 1

#: A release version: 2-4 numbers, optional ``-prerelease`` and ``+build`` (SemVer syntax).
#: A subset of what deploy.ddl accepts, so every rendered version passes the node's check.
VERSION_RE = re.compile(
    r"\A[0-9]+(?:\.[0-9]+){1,3}"
    r"(?:-[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)?"
    r"(?:\+[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)?\Z"
)
VERSION_MAX = 64
#: Service names: as deploy.ddl's ``service`` input (they become paths and HAProxy names).
SERVICE_RE = re.compile(r"\A[a-z][a-z0-9_-]{0,62}\Z")
#: Environment names become a fact value and a Hiera path component.
ENVIRONMENT_RE = re.compile(r"\A[a-z][a-z0-9_]{0,31}\Z")
#: Node identities: valid as MCollective identity, Puppet certname and HAProxy server name.
IDENTITY_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
ROLE_RE = re.compile(r"\A[a-z][a-z0-9_]{0,62}\Z")
HOSTNAME_RE = re.compile(
    r"\A(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)
SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")
URL_RE = re.compile(r"\Ahttps?://[^\s]+\Z")
ARTIFACT_FIELDS = ("service", "version")

OS = Literal["linux", "windows"]
DeployMethod = Literal["artifact", "puppet"]
ServiceManager = Literal["systemd", "windows", "none"]
Pool = Literal["online", "maintenance"]

SERVICE_KEYS = (
    "description",
    "os",
    "role",
    "deploy",
    "artifact",
    "service_manager",
    "port",
    "health",
    "lb",
    "migrations",
    "batch",
    "releases",
    "environments",
)
DEFAULTABLE = ("os", "deploy", "service_manager", "health", "lb", "batch")


@dataclass(frozen=True)
class HealthCheck:
    """How to tell that a node serves the release: ``http`` GET, ``tcp`` connect or ``command``.

    ``port`` is the service port unless given.  Times are seconds; ``rise``/``fall`` count
    consecutive checks (HAProxy's meaning).
    """

    type: Literal["http", "tcp", "command"] = "http"
    path: str | None = None
    expect_status: int = 200
    contains: str | None = None
    command: str | None = None
    port: int | None = None
    interval: float = 2.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 3

    def url(self, address: str, service_port: int) -> str | None:
        """The URL an http check GETs on a node listening on ``address``; None for other types."""
        if self.type != "http":
            return None
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{self.port or service_port}{self.path}"


@dataclass(frozen=True)
class LoadBalancing:
    """The service sits behind HAProxy: one backend named after the service."""

    mode: Literal["http", "tcp"] = "http"
    balance: Literal["roundrobin", "leastconn", "source", "first"] = "roundrobin"


@dataclass(frozen=True)
class MigrationPhase:
    """One migration phase of a release: ``pre`` (expand: backward compatible, before the
    first node is touched) or ``post`` (contract: after the last node is online and ``soak``
    seconds have passed)."""

    phase: Literal["pre", "post"]
    command: str
    timeout: int = 600
    soak: float = 0.0


@dataclass(frozen=True)
class Migrations:
    """A service's database migrations, in one of two catalog forms.

    * Single phase (the first form, still valid): ``{command, phase, timeout}``; the fields
      of the same names are set and ``pre``/``post`` stay None.
    * Phased: ``{pre: {command, timeout}, post: {command, timeout, soak}}``; ``command`` is
      None.

    ``rollback_compatible`` maps a release to the earlier releases declared to run on the
    schema its ``pre`` phase leaves (``{"1.5.0": ("1.4.2",)}``): once ``pre`` of 1.5.0 ran,
    rolling back is offered only to those.  Read both forms through :meth:`phases`.
    """

    command: str | None = None
    phase: Literal["pre", "post"] = "pre"
    timeout: int = 600
    pre: MigrationPhase | None = None
    post: MigrationPhase | None = None
    rollback_compatible: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def phases(self) -> tuple[MigrationPhase, ...]:
        """The phases in the order a rollout runs them (pre, then post)."""
        if self.command is not None:
            return (MigrationPhase(self.phase, self.command, self.timeout),)
        return tuple(p for p in (self.pre, self.post) if p is not None)

    def __hash__(self) -> int:  # the mapping field is not hashable; the phases identify it
        return hash((self.command, self.phase, self.timeout, self.pre, self.post))


@dataclass(frozen=True)
class BatchStrategy:
    """Rollout defaults: ``size`` nodes (or ``size`` percent when ``percent``) per batch,
    ``canary`` nodes first on their own, ``pause`` seconds between batches, stop after more than
    ``max_failures`` failed nodes."""

    size: int = 1
    percent: bool = False
    canary: int = 0
    pause: float = 0.0
    max_failures: int = 0


@dataclass(frozen=True)
class Release:
    """A built artifact: its version, SHA-256, and the environments it may go to (None: all)."""

    version: str
    sha256: str
    environments: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Node:
    """A node running the service: its identity (also the HAProxy server name), where the
    service listens, its initial pool and its HAProxy weight."""

    identity: str
    address: str
    port: int
    pool: Pool = "online"
    weight: int = 100


@dataclass(frozen=True)
class Placement:
    """Where a service runs in one environment."""

    environment: str
    nodes: tuple[Node, ...] = ()
    frontend: tuple[str, int] | None = None
    load_balancers: tuple[str, ...] = ()
    service_manager: ServiceManager | None = None


@dataclass(frozen=True)
class Service:
    """One service of the catalog, defaults already applied."""

    name: str
    artifact: str
    port: int
    description: str = ""
    os: OS = "linux"
    role: str | None = None
    deploy: DeployMethod = "artifact"
    service_manager: ServiceManager = "systemd"
    health: HealthCheck = field(default_factory=HealthCheck)
    lb: LoadBalancing | None = None
    migrations: Migrations | None = None
    batch: BatchStrategy = field(default_factory=BatchStrategy)
    releases: tuple[Release, ...] = ()
    placements: tuple[Placement, ...] = ()

    def placement(self, environment: str) -> Placement:
        """Where the service runs in ``environment``; UsageError if it is not deployed there."""
        for p in self.placements:
            if p.environment == environment:
                return p
        known = ", ".join(p.environment for p in self.placements) or "none"
        raise UsageError(
            f"service {self.name!r} has no environment {environment!r} in the catalog "
            f"(its environments: {known}); add services.{self.name}.environments.{environment}"
        )

    def release(self, version: str, environment: str) -> Release:
        """The catalog entry for ``version``, checked to be allowed in ``environment``.

        Raises UsageError for a malformed or unknown version, or one not allowed there."""
        check_version(version)
        self.placement(environment)
        for r in self.releases:
            if r.version == version:
                if r.environments is not None and environment not in r.environments:
                    raise UsageError(
                        f"release {version} of {self.name} is not allowed in {environment} "
                        f"(allowed: {', '.join(r.environments)}); add {environment} to "
                        f"services.{self.name}.releases.{version}.environments"
                    )
                return r
        known = ", ".join(r.version for r in self.releases) or "none"
        raise UsageError(
            f"unknown version {version!r} of {self.name} (known: {known}); add it with its "
            f"sha256 under services.{self.name}.releases in the catalog"
        )

    def artifact_url(self, version: str) -> str:
        """The artifact URL of ``version`` (the ``artifact`` template filled in)."""
        return self.artifact.format(service=self.name, version=version)

    def manager_in(self, environment: str) -> ServiceManager:
        """The service manager in ``environment`` (a placement override wins)."""
        return self.placement(environment).service_manager or self.service_manager


@dataclass(frozen=True)
class Catalog:
    """The whole catalog: environments (with their load balancers) and services by name."""

    source: str
    environments: Mapping[str, tuple[str, ...]]
    services: Mapping[str, Service]

    def service(self, name: str) -> Service:
        """The service called ``name``; UsageError naming the known ones otherwise."""
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services)) or "none"
            raise UsageError(
                f"unknown service {name!r} in {self.source} (known: {known})"
            ) from None

    def environment(self, name: str) -> tuple[str, ...]:
        """The load balancers of environment ``name``; UsageError if it is not declared."""
        if name not in self.environments:
            known = ", ".join(self.environments) or "none"
            raise UsageError(f"unknown environment {name!r} in {self.source} (known: {known})")
        return self.environments[name]


def check_version(version: str) -> str:
    """Return ``version`` if it is a valid release version, else raise UsageError."""
    if not isinstance(version, str) or len(version) > VERSION_MAX or not VERSION_RE.match(version):
        raise UsageError(
            f"invalid version {version!r}: use 2 to 4 dot-separated numbers with optional "
            "-prerelease and +build parts, e.g. 1.4.2, 2026.11.1 or 1.5.0-rc.1"
        )
    return version


# --------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same on libyaml (about 10x faster); errors are reported by ``_Loader``."""


def _mapping_no_duplicates(
    loader: _Loader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # construct_mapping reports unhashable keys itself
        if key in seen:
            first = seen[key].start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first})", key_node.start_mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)
_FastLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)


def load_catalog(path: str | Path) -> Catalog:
    """Read and check the catalog at ``path``.

    Raises ConfigError if the file is missing or unreadable, is not YAML, or breaks the schema;
    a schema error lists every problem, one per line, each as ``yaml.path: what is wrong``.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"service catalog {str(p)!r} not found; pass --catalog FILE or run from the "
            "directory holding services.yaml (see examples/services.yaml)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read service catalog {str(p)!r}: {exc}") from None
    return parse_catalog(text, source=str(p))


def parse_catalog(text: str, *, source: str = "services.yaml") -> Catalog:
    """Check catalog ``text`` and build the model; see ``load_catalog`` for the errors."""
    try:
        try:
            doc = yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a SafeLoader
        except yaml.YAMLError:
            # the pure-Python parser words errors the same everywhere (golden messages)
            doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f": line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    checker = _Checker()
    catalog = checker.catalog(doc, source)
    if checker.problems:
        n = len(checker.problems)
        lines = "\n".join(f"  {p}" for p in checker.problems)
        raise ConfigError(
            f"{source}: {n} problem{'s' if n > 1 else ''} in the service catalog:\n{lines}"
        )
    assert catalog is not None
    return catalog


# --------------------------------------------------------------------------- schema check

_MISSING = object()
_Src = tuple[Any, str]  # a value and the YAML path it came from


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _kind(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Checker:
    """Walks the parsed YAML, collecting ``path: problem`` lines instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def bad(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    # -- primitive readers: return the value, or None after recording a problem

    def mapping(self, value: Any, path: str, hint: str = "") -> dict[Any, Any] | None:
        if isinstance(value, dict):
            return value
        self.bad(path, f"must be a mapping, got {_kind(value)}{hint}")
        return None

    def known_keys(self, m: Mapping[Any, Any], path: str, keys: tuple[str, ...]) -> None:
        for k in m:
            if k not in keys:
                self.bad(_join(path, k), f"unknown key; known keys here: {', '.join(keys)}")

    def text(
        self, src: _Src, *, pattern: re.Pattern[str] | None = None, hint: str = ""
    ) -> str | None:
        value, path = src
        if not isinstance(value, str) or not value.strip():
            self.bad(path, f"must be non-empty text, got {_kind(value)}{hint}")
            return None
        if pattern is not None and not pattern.match(value):
            self.bad(path, f"invalid value {value!r}{hint}")
            return None
        return value

    def integer(self, src: _Src, lo: int, hi: int, hint: str = "") -> int | None:
        value, path = src
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.bad(path, f"must be a whole number from {lo} to {hi}{hint}, got {_kind(value)}")
            return None
        return value

    def number(self, src: _Src, lo: float, hi: float, hint: str = "") -> float | None:
        value, path = src
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            self.bad(
                path, f"must be a number from {lo:g} to {hi:g} (seconds){hint}, got {_kind(value)}"
            )
            return None
        return float(value)

    def choice(self, src: _Src, choices: tuple[str, ...]) -> str | None:
        value, path = src
        if value not in choices:
            self.bad(path, f"must be one of {', '.join(choices)}, got {_kind(value)}")
            return None
        return str(value)

    def address(self, src: _Src) -> str | None:
        value, path = src
        if isinstance(value, str):
            try:
                return str(ipaddress.ip_address(value))
            except ValueError:
                if HOSTNAME_RE.match(value) and not value.replace(".", "").isdigit():
                    return value
        self.bad(path, f"must be an IP address or a host name, got {_kind(value)}")
        return None

    def version_key(self, key: Any, path: str) -> str | None:
        if isinstance(key, int | float) and not isinstance(key, bool):
            self.bad(
                path,
                f"a version must be quoted text: YAML read it as the number {key!r}; "
                'write it in quotes, e.g. "1.10"',
            )
            return None
        if not isinstance(key, str) or len(key) > VERSION_MAX or not VERSION_RE.match(key):
            self.bad(
                path,
                f"invalid version {key!r}: use 2 to 4 dot-separated numbers with optional "
                "-prerelease and +build parts, e.g. 1.4.2 or 1.5.0-rc.1",
            )
            return None
        return key

    # -- sections

    def catalog(self, doc: Any, source: str) -> Catalog | None:
        if doc is None:
            self.bad("(top)", "the catalog is empty; start from examples/services.yaml")
            return None
        top = self.mapping(doc, "(top)", "; start from examples/services.yaml")
        if top is None:
            return None
        self.known_keys(top, "", ("catalog", "environments", "defaults", "services"))
        fmt = top.get("catalog", _MISSING)
        if fmt is _MISSING:
            self.bad("catalog", f"missing: the format version; add 'catalog: {FORMAT}' at the top")
        elif fmt != FORMAT:
            self.bad(
                "catalog", f"unsupported format {fmt!r}; this mco-py reads 'catalog: {FORMAT}'"
            )
        envs = self.environments(top.get("environments", _MISSING))
        defaults = self.defaults(top.get("defaults"))
        services: dict[str, Service] = {}
        raw = top.get("services", _MISSING)
        if raw is _MISSING:
            self.bad("services", "missing: list the services, e.g. services: {shop: {...}}")
        elif (m := self.mapping(raw, "services")) is not None:
            if not m:
                self.bad("services", "no services; add at least one")
            for name, body in m.items():
                svc = self.service(name, body, defaults, envs)
                if svc is not None:
                    services[svc.name] = svc
        self.across_services(services)
        self.problems = list(dict.fromkeys(self.problems))  # a bad default shows once
        return Catalog(source=source, environments=envs, services=services)

    def across_services(self, services: Mapping[str, Service]) -> None:
        """Per environment: one service per frontend address, one released service per node."""
        frontends: dict[tuple[str, tuple[str, int]], str] = {}
        runs: dict[tuple[str, str], str] = {}
        for svc in services.values():
            for p in svc.placements:
                path = f"services.{svc.name}.environments.{p.environment}"
                if p.frontend is not None:
                    other = frontends.setdefault((p.environment, p.frontend), svc.name)
                    if other != svc.name:
                        self.bad(
                            f"{path}.frontend",
                            f"{p.frontend[0]}:{p.frontend[1]} is already the frontend of {other} in "
                            f"{p.environment}; give each service its own address:port",
                        )
                for node in p.nodes:
                    other = runs.setdefault((p.environment, node.identity), svc.name)
                    if other != svc.name:
                        self.bad(
                            f"{path}.nodes.{node.identity}",
                            f"{node.identity} already runs {other} in {p.environment}; a node runs one "
                            "released service (its app fact)",
                        )

    def environments(self, raw: Any) -> dict[str, tuple[str, ...]]:
        envs: dict[str, tuple[str, ...]] = {}
        if raw is _MISSING:
            self.bad(
                "environments",
                "missing: declare them, e.g. environments: {lab: {load_balancers: [lb1.lab]}}",
            )
            return envs
        m = self.mapping(raw, "environments")
        if m is None:
            return envs
        if not m:
            self.bad("environments", "no environments; declare at least one, e.g. lab: {}")
        for name, body in m.items():
            path = _join("environments", name)
            if not isinstance(name, str) or not ENVIRONMENT_RE.match(name):
                self.bad(
                    path,
                    "invalid environment name: use lower case letters, digits and _, starting with a letter",
                )
                continue
            lbs: tuple[str, ...] = ()
            if body is not None and (b := self.mapping(body, path)) is not None:
                self.known_keys(b, path, ("load_balancers",))
                if "load_balancers" in b:
                    lbs = self.identities((b["load_balancers"], _join(path, "load_balancers")))
            envs[name] = lbs
        return envs

    def identities(self, src: _Src) -> tuple[str, ...]:
        value, path = src
        if not isinstance(value, list):
            self.bad(path, f"must be a list of node identities, got {_kind(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            ident = self.text(
                (item, f"{path}[{i}]"),
                pattern=IDENTITY_RE,
                hint=" (letters, digits, '.', '_', '-')",
            )
            if ident is not None:
                out.append(ident)
        return tuple(out)

    def defaults(self, raw: Any) -> dict[str, _Src]:
        if raw is None:
            return {}
        m = self.mapping(raw, "defaults")
        if m is None:
            return {}
        self.known_keys(m, "defaults", DEFAULTABLE)
        return {k: (v, _join("defaults", k)) for k, v in m.items() if k in DEFAULTABLE}

    def service(
        self, name: Any, body: Any, defaults: dict[str, _Src], envs: Mapping[str, tuple[str, ...]]
    ) -> Service | None:
        path = _join("services", name)
        ok = True
        if not isinstance(name, str) or not SERVICE_RE.match(name):
            self.bad(
                path,
                "invalid service name: use lower case letters, digits, '_' and '-', starting with a letter",
            )
            ok = False
        m = self.mapping(body, path)
        if m is None:
            return None
        self.known_keys(m, path, SERVICE_KEYS)
        fields: dict[str, _Src] = dict(defaults)
        for k, v in m.items():
            if (
                k in ("health", "lb", "batch")
                and k in defaults
                and isinstance(v, dict)
                and isinstance(defaults[k][0], dict)
            ):
                fields[k] = (_Overlay(defaults[k], (v, _join(path, k))), _join(path, k))
            else:
                fields[k] = (v, _join(path, k))

        def get(key: str) -> _Src:
            return fields.get(key, (_MISSING, _join(path, key)))

        n_before = len(self.problems)
        description = ""
        if (src := get("description"))[0] is not _MISSING:
            description = self.text(src) or ""
        os_ = "linux"
        if (src := get("os"))[0] is not _MISSING:
            os_ = self.choice(src, ("linux", "windows")) or "linux"
        role = None
        if (src := get("role"))[0] is not _MISSING:
            role = self.text(src, pattern=ROLE_RE, hint=" (lower case letters, digits and _)")
        deploy = "artifact"
        if (src := get("deploy"))[0] is not _MISSING:
            deploy = self.choice(src, ("artifact", "puppet")) or "artifact"
        manager = "windows" if os_ == "windows" else "systemd"
        if (src := get("service_manager"))[0] is not _MISSING:
            manager = self.manager(src, os_) or manager
        artifact = self.artifact(get("artifact"))
        port = None
        if (src := get("port"))[0] is _MISSING:
            self.bad(src[1], "missing: the TCP port the service listens on, e.g. port: 8081")
        else:
            port = self.integer(src, 1, 65535)
        health = self.health(get("health"))
        lb = self.lb(get("lb"))
        migrations = self.migrations(get("migrations"))
        batch = self.batch(get("batch"))
        releases = self.releases(get("releases"), envs)
        placements = self.placements(get("environments"), envs, lb is not None, port, os_)
        if not ok or len(self.problems) > n_before or artifact is None or port is None:
            return None
        return Service(
            name=name,
            description=description,
            os=os_,  # type: ignore[arg-type]
            role=role,
            deploy=deploy,  # type: ignore[arg-type]
            service_manager=manager,  # type: ignore[arg-type]
            artifact=artifact,
            port=port,
            health=health or HealthCheck(),
            lb=lb,
            migrations=migrations,
            batch=batch or BatchStrategy(),
            releases=releases,
            placements=placements,
        )

    def manager(self, src: _Src, os_: str) -> str | None:
        manager = self.choice(src, ("systemd", "windows", "none"))
        if (
            manager is not None
            and manager != "none"
            and (manager == "windows") != (os_ == "windows")
        ):
            self.bad(
                src[1],
                f"service manager {manager} does not run on {os_}; use {'windows' if os_ == 'windows' else 'systemd'} or none",
            )
            return None
        return manager

    def artifact(self, src: _Src) -> str | None:
        value, path = src
        if value is _MISSING:
            self.bad(
                path,
                "missing: the artifact URL template, e.g. https://artifacts.example/{service}/{service}-{version}.tar.gz",
            )
            return None
        url = self.text(src)
        if url is None:
            return None
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(url) if f is not None}
        except ValueError as exc:
            self.bad(path, f"bad template {url!r}: {exc}; write literal braces as {{{{ and }}}}")
            return None
        unknown = sorted(n for n in names if n not in ARTIFACT_FIELDS)
        if unknown:
            self.bad(
                path,
                f"unknown placeholder {{{unknown[0]}}} in {url!r}; use {{service}} and {{version}}",
            )
            return None
        if "version" not in names:
            self.bad(
                path,
                f"{url!r} has no {{version}} placeholder: every release would share one artifact",
            )
            return None
        if not URL_RE.match(url.format(service="s", version="1.0")):
            self.bad(path, f"{url!r} is not an http:// or https:// URL without spaces")
            return None
        return url

    def section(self, src: _Src, keys: tuple[str, ...]) -> dict[str, _Src] | None:
        """A nested mapping as key -> (value, path), defaults already overlaid."""
        value, path = src
        if isinstance(value, _Overlay):
            base = self.section(value.base, keys) or {}
            top = self.section(value.top, keys) or {}
            return {**base, **top}
        m = self.mapping(value, path)
        if m is None:
            return None
        self.known_keys(m, path, keys)
        return {k: (v, _join(path, k)) for k, v in m.items() if k in keys}

    def health(self, src: _Src) -> HealthCheck | None:
        if src[0] is _MISSING:
            self.bad(
                src[1], "missing: how to check a node, e.g. health: {type: http, path: /health}"
            )
            return None
        keys = (
            "type",
            "path",
            "expect_status",
            "contains",
            "command",
            "port",
            "interval",
            "timeout",
            "rise",
            "fall",
        )
        s = self.section(src, keys)
        if s is None:
            return None
        path = src[1]
        kind = "http"
        if "type" in s:
            kind = self.choice(s["type"], ("http", "tcp", "command")) or "http"
        kw: dict[str, Any] = {"type": kind}
        if kind == "http":
            if "path" not in s:
                self.bad(
                    _join(path, "path"),
                    "missing: an http check needs the path to GET, e.g. path: /health",
                )
            else:
                kw["path"] = self.text(
                    s["path"],
                    pattern=re.compile(r"\A/[^\s]*\Z"),
                    hint=" (an absolute path such as /health)",
                )
            if "expect_status" in s:
                kw["expect_status"] = self.integer(s["expect_status"], 100, 599)
            if "contains" in s:
                kw["contains"] = self.text(s["contains"])
        elif kind == "command":
            if "command" not in s:
                self.bad(
                    _join(path, "command"),
                    "missing: a command check needs the command to run, e.g. command: /usr/local/bin/check-shop",
                )
            else:
                kw["command"] = self.text(s["command"])
        for k in ("path", "expect_status", "contains", "command"):
            if k in s and k not in kw:
                self.bad(s[k][1], f"not used by a {kind} check; remove it or change type")
        if "port" in s:
            kw["port"] = self.integer(s["port"], 1, 65535)
        for k, hi in (("interval", 3600.0), ("timeout", 600.0)):
            if k in s:
                kw[k] = self.number(s[k], 0.1, hi)
        for k in ("rise", "fall"):
            if k in s:
                kw[k] = self.integer(s[k], 1, 100)
        if any(v is None for v in kw.values()):
            return None
        return HealthCheck(**kw)

    def lb(self, src: _Src) -> LoadBalancing | None:
        if src[0] is _MISSING or src[0] is None:
            return None
        s = self.section(src, ("mode", "balance"))
        if s is None:
            return None
        kw: dict[str, Any] = {}
        if "mode" in s:
            kw["mode"] = self.choice(s["mode"], ("http", "tcp"))
        if "balance" in s:
            kw["balance"] = self.choice(
                s["balance"], ("roundrobin", "leastconn", "source", "first")
            )
        if any(v is None for v in kw.values()):
            return None
        return LoadBalancing(**kw)

    def migrations(self, src: _Src) -> Migrations | None:
        if src[0] is _MISSING or src[0] is None:
            return None
        s = self.section(src, ("command", "phase", "timeout", "pre", "post", "rollback_compatible"))
        if s is None:
            return None
        path = src[1]
        n_before = len(self.problems)
        kw: dict[str, Any] = {}
        if "command" in s:
            for k in ("pre", "post"):
                if k in s:
                    self.bad(
                        s[k][1],
                        "not with command: write either {command, phase, timeout} or "
                        "{pre: {command, timeout}, post: {command, timeout, soak}}",
                    )
            kw["command"] = self.text(s["command"])
            if "phase" in s:
                kw["phase"] = self.choice(s["phase"], ("pre", "post"))
            if "timeout" in s:
                kw["timeout"] = self.integer(s["timeout"], 1, 86400)
        elif "pre" in s or "post" in s:
            for k in ("phase", "timeout"):
                if k in s:
                    self.bad(s[k][1], "only with command; put it under pre: or post:")
            for phase in ("pre", "post"):
                if phase in s:
                    kw[phase] = self.migration_phase(phase, s[phase])
        else:
            self.bad(
                _join(path, "command"),
                "missing: the migration command, e.g. command: /opt/shop/current/bin/migrate, "
                "or pre: {command: bin/migrate-pre} and post: {command: bin/migrate-post}",
            )
            return None
        if "rollback_compatible" in s:
            kw["rollback_compatible"] = self.rollback_compatible(s["rollback_compatible"])
        if len(self.problems) > n_before or any(v is None for v in kw.values()):
            return None
        return Migrations(**kw)

    def migration_phase(self, phase: str, src: _Src) -> MigrationPhase | None:
        keys = ("command", "timeout", "soak") if phase == "post" else ("command", "timeout")
        m = self.mapping(src[0], src[1], ", e.g. {command: bin/migrate-" + phase + "}")
        if m is None:
            return None
        self.known_keys(m, src[1], keys)
        if "command" not in m:
            self.bad(
                _join(src[1], "command"),
                f"missing: the {phase} migration command, e.g. command: bin/migrate-{phase}",
            )
            return None
        command = self.text((m["command"], _join(src[1], "command")))
        timeout = 600
        if "timeout" in m:
            timeout = self.integer((m["timeout"], _join(src[1], "timeout")), 1, 86400) or 0
        soak = 0.0
        if "soak" in m and phase == "post":
            soak = self.number((m["soak"], _join(src[1], "soak")), 0, 86400) or 0.0
        if command is None or not timeout:
            return None
        return MigrationPhase(phase, command, timeout, soak)  # type: ignore[arg-type]

    def rollback_compatible(self, src: _Src) -> dict[str, tuple[str, ...]] | None:
        m = self.mapping(src[0], src[1], ', e.g. {"1.5.0": ["1.4.2"]}')
        if m is None:
            return None
        out: dict[str, tuple[str, ...]] = {}
        for key, olds in m.items():
            kpath = _join(src[1], key)
            version = self.version_key(key, kpath)
            if not isinstance(olds, list):
                self.bad(
                    kpath, f'must be a list of earlier versions, e.g. ["1.4.2"], got {_kind(olds)}'
                )
                continue
            found = [self.version_key(v, _join(kpath, i)) for i, v in enumerate(olds)]
            if version is not None and all(v is not None for v in found):
                out[version] = tuple(str(v) for v in found)
        return out

    def batch(self, src: _Src) -> BatchStrategy | None:
        if src[0] is _MISSING or src[0] is None:
            return None
        s = self.section(src, ("size", "canary", "pause", "max_failures"))
        if s is None:
            return None
        kw: dict[str, Any] = {}
        if "size" in s:
            value, path = s["size"]
            if (
                isinstance(value, str)
                and re.fullmatch(r"[0-9]{1,3}%", value)
                and 1 <= int(value[:-1]) <= 100
            ):
                kw["size"], kw["percent"] = int(value[:-1]), True
            else:
                kw["size"] = self.integer(s["size"], 1, 10000, ' or a percentage such as "25%"')
        if "canary" in s:
            kw["canary"] = self.integer(s["canary"], 0, 10000)
        if "pause" in s:
            kw["pause"] = self.number(s["pause"], 0, 86400)
        if "max_failures" in s:
            kw["max_failures"] = self.integer(s["max_failures"], 0, 10000)
        if any(v is None for v in kw.values()):
            return None
        return BatchStrategy(**kw)

    def releases(self, src: _Src, envs: Mapping[str, tuple[str, ...]]) -> tuple[Release, ...]:
        value, path = src
        if value is _MISSING:
            self.bad(
                path,
                'missing: list the versions that may be released, e.g. releases: {"1.0.0": {sha256: ...}}',
            )
            return ()
        if value is None:
            return ()
        m = self.mapping(value, path)
        if m is None:
            return ()
        out = []
        for key, body in m.items():
            rpath = _join(path, key)
            version = self.version_key(key, rpath)
            b = self.mapping(body, rpath, ", e.g. {sha256: <64 hex digits>}")
            if b is None or version is None:
                continue
            self.known_keys(b, rpath, ("sha256", "environments"))
            sha = None
            if "sha256" not in b:
                self.bad(
                    _join(rpath, "sha256"),
                    "missing: the artifact's SHA-256 (sha256sum FILE), 64 hex digits",
                )
            else:
                sha = self.sha256((b["sha256"], _join(rpath, "sha256")))
            allowed: tuple[str, ...] | None = None
            if "environments" in b:
                allowed = self.env_names((b["environments"], _join(rpath, "environments")), envs)
            if sha is not None:
                out.append(Release(version=version, sha256=sha, environments=allowed))
        return tuple(out)

    def sha256(self, src: _Src) -> str | None:
        value, path = src
        if isinstance(value, int) and not isinstance(value, bool):
            self.bad(path, "YAML read the checksum as a number; put it in quotes")
            return None
        if not isinstance(value, str) or not SHA256_RE.match(value):
            self.bad(
                path, f"must be 64 lower case hex digits (sha256sum output), got {_kind(value)}"
            )
            return None
        return value

    def env_names(self, src: _Src, envs: Mapping[str, tuple[str, ...]]) -> tuple[str, ...] | None:
        value, path = src
        if not isinstance(value, list):
            self.bad(path, f"must be a list of environment names, got {_kind(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            if item not in envs:
                self.bad(
                    f"{path}[{i}]",
                    f"unknown environment {item!r}; declared: {', '.join(envs) or 'none'}",
                )
            else:
                out.append(item)
        return tuple(out)

    def placements(
        self,
        src: _Src,
        envs: Mapping[str, tuple[str, ...]],
        has_lb: bool,
        port: int | None,
        os_: str,
    ) -> tuple[Placement, ...]:
        value, path = src
        if value is _MISSING:
            self.bad(
                path,
                "missing: where the service runs per environment, e.g. environments: {lab: {nodes: {web1.lab: {address: 127.0.0.11}}}}",
            )
            return ()
        m = self.mapping(value, path)
        if m is None:
            return ()
        out = []
        for env, body in m.items():
            epath = _join(path, env)
            if env not in envs:
                self.bad(
                    epath,
                    f"unknown environment {env!r}; declare it under the top-level environments (declared: {', '.join(envs) or 'none'})",
                )
                continue
            b = {} if body is None else self.mapping(body, epath)
            if b is None:
                continue
            self.known_keys(b, epath, ("nodes", "frontend", "service_manager"))
            nodes = self.nodes((b.get("nodes", _MISSING), _join(epath, "nodes")), port)
            frontend = None
            if "frontend" in b:
                frontend = self.frontend((b["frontend"], _join(epath, "frontend")))
                if not has_lb:
                    self.bad(
                        _join(epath, "frontend"),
                        "the service has no lb section; add lb: {mode: http} or remove the frontend",
                    )
            elif has_lb:
                self.bad(
                    _join(epath, "frontend"),
                    "missing: the service is load balanced; give HAProxy's bind address, e.g. frontend: 127.0.0.1:8080",
                )
            if has_lb and not nodes and "nodes" not in b:
                self.bad(
                    _join(epath, "nodes"),
                    "missing: a load-balanced service needs its nodes and addresses for the HAProxy backend",
                )
            manager = None
            if "service_manager" in b:
                manager = self.manager((b["service_manager"], _join(epath, "service_manager")), os_)
            out.append(
                Placement(
                    environment=env,
                    nodes=nodes,
                    frontend=frontend,
                    load_balancers=envs[env],
                    service_manager=manager,  # type: ignore[arg-type]
                )
            )
        return tuple(out)

    def nodes(self, src: _Src, port: int | None) -> tuple[Node, ...]:
        value, path = src
        if value is _MISSING or value is None:
            return ()
        m = self.mapping(value, path, ", e.g. {web1.lab: {address: 127.0.0.11}}")
        if m is None:
            return ()
        out = []
        for ident, body in m.items():
            npath = _join(path, ident)
            if not isinstance(ident, str) or not IDENTITY_RE.match(ident):
                self.bad(
                    npath,
                    "invalid node identity: use letters, digits, '.', '_' and '-' (at most 63)",
                )
                continue
            b = self.mapping(body, npath, ", e.g. {address: 127.0.0.11}")
            if b is None:
                continue
            self.known_keys(b, npath, ("address", "port", "pool", "weight"))
            if "address" not in b:
                self.bad(
                    _join(npath, "address"),
                    "missing: the address HAProxy and health checks reach the node at",
                )
                continue
            address = self.address((b["address"], _join(npath, "address")))
            nport = (
                self.integer((b["port"], _join(npath, "port")), 1, 65535) if "port" in b else port
            )
            pool = (
                self.choice((b["pool"], _join(npath, "pool")), ("online", "maintenance"))
                if "pool" in b
                else "online"
            )
            weight = (
                self.integer((b["weight"], _join(npath, "weight")), 0, 256)
                if "weight" in b
                else 100
            )
            if address is None or nport is None or pool is None or weight is None:
                continue
            out.append(Node(identity=ident, address=address, port=nport, pool=pool, weight=weight))  # type: ignore[arg-type]
        return tuple(out)

    def frontend(self, src: _Src) -> tuple[str, int] | None:
        value, path = src
        if isinstance(value, str) and ":" in value:
            host, _, port = value.rpartition(":")
            host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
            try:
                addr = str(ipaddress.ip_address(host))
            except ValueError:
                addr = ""
            if addr and port.isdigit() and 1 <= int(port) <= 65535:
                return addr, int(port)
        self.bad(
            path,
            f"must be ADDRESS:PORT with an IP address, e.g. 127.0.0.1:8080, got {_kind(value)}",
        )
        return None


@dataclass(frozen=True)
class _Overlay:
    """A nested section given both in ``defaults`` and in a service: service keys win."""

    base: _Src
    top: _Src
