"""MCollective-format configuration (``client.cfg`` / ``server.cfg``), layered, with origins.

The file format is MCollective's own, read unchanged: one ``key = value`` per line, ``#``
comments, ``plugin.<name>.<key>`` for plugin settings, and ``<configdir>/plugin.d/<name>.cfg``
files whose lines become ``plugin.<name>.<key>``.

Layers, lowest first (a later layer wins, key by key)::

    defaults
    < /etc/mcollective/<role>.cfg  (and /etc/puppetlabs/mcollective/<role>.cfg before it)
    < ~/.mcollective                (client only)
    < $MCOLLECTIVE_CONFIG / -c FILE (an explicit file must exist)
    < environment (MCOLLECTIVE_PSK, STOMP_USER, STOMP_PASSWORD, MCOLLECTIVE_SSL_PRIVATE/PUBLIC)
    < command-line flags

Unlike Ruby, which reads exactly one file, every existing layer is merged; ``mco-py config
show --origin`` tells which file (and line) or variable each value came from.

Contract: :func:`load` returns a frozen :class:`Config` or raises :class:`ConfigError` naming
the file, line, key and value at fault.  Unknown keys are refused, as Ruby refuses them,
with the closest known key suggested.  Typed accessors validate on access and raise
``ConfigError`` that names where the bad value came from.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .errors import ConfigError
from .masking import mask_value

# Every top-level key MCollective 2.12 accepts (config.rb); plugin.* is open-ended.
KNOWN_KEYS = frozenset(
    """registration registration_collective registerinterval registration_splay collectives
    main_collective logfile keeplogs max_log_size loglevel logfacility libdir identity
    direct_addressing direct_addressing_threshold color daemonize securityprovider factsource
    connector classesfile discovery_timeout discovery_quiet publish_timeout connection_timeout rpcaudit
    rpcauditprovider rpcauthorization rpcauthprovider rpclimitmethod logger_type
    fact_cache_time ssl_cipher threaded ttl default_discovery_options default_discovery_method
    soft_shutdown soft_shutdown_timeout activate_agents default_batch_size
    default_batch_sleep_time topicprefix topicsep queueprefix rpchelptemplate
    helptemplatedir""".split()
)

# Settings our own components add; harmless to Ruby only inside plugin.*, so they live there.
DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "connector": "activemq",
        "securityprovider": "psk",
        "factsource": "yaml",
        "collectives": "mcollective",
        "ttl": "60",
        "direct_addressing": "1",
        "direct_addressing_threshold": "10",
        "publish_timeout": "2",
        "fact_cache_time": "300",
        "color": "1",
        "registerinterval": "0",
        "loglevel": "info",
        "logger_type": "file",
        "classesfile": "/var/lib/puppet/state/classes.txt",
        "default_discovery_method": "mc",
        "rpclimitmethod": "first",
        "default_batch_size": "0",
        "default_batch_sleep_time": "1",
    }
)

SYSTEM_DIRS = ("/etc/puppetlabs/mcollective", "/etc/mcollective")
_LINE = re.compile(r"(.+?)\s*=\s*(.+)")
_IDENTITY = re.compile(r"^[\w.\-]+$")
_TRUE = re.compile(r"^(1|yes|true|y|t)$", re.IGNORECASE)
_FALSE = re.compile(r"^(0|no|false|n|f)$", re.IGNORECASE)

#: Environment variables that override config keys (Ruby prefers them over the files too).
ENV_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "MCOLLECTIVE_PSK": "plugin.psk",
        "MCOLLECTIVE_SSL_PRIVATE": "plugin.ssl_client_private",
        "MCOLLECTIVE_SSL_PUBLIC": "plugin.ssl_client_public",
    }
)


@dataclass(frozen=True)
class Setting:
    """One configured value and where it came from (``/path/file:12``, ``env MCOLLECTIVE_PSK``,
    ``--ttl``, or ``default``)."""

    value: str
    origin: str


def parse_file(path: Path, prefix: str = "") -> list[tuple[str, str, int]]:
    """Read one MCollective-format file into ``(key, value, lineno)`` triples.

    ``prefix`` is prepended to every key (used for ``plugin.d/<name>.cfg``). Lines that are
    neither comments, blank, nor ``key = value`` are ignored, as Ruby ignores them.
    Raises ConfigError if the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror or exc}; check the path and permissions"
        ) from None
    out: list[tuple[str, str, int]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m:
            out.append((prefix + m.group(1).strip(), m.group(2), lineno))
    return out


@dataclass(frozen=True)
class Config:
    """The merged configuration. Read values with the typed properties or :meth:`get`."""

    settings: Mapping[str, Setting] = field(default_factory=dict)
    role: str = "client"
    files: tuple[str, ...] = ()

    # ---------------------------------------------------------------- raw access
    def get(self, key: str, default: str | None = None) -> str | None:
        """The raw string value of ``key``, or ``default``."""
        s = self.settings.get(key)
        return s.value if s is not None else default

    def origin(self, key: str) -> str | None:
        """Where ``key``'s value came from, or None if unset."""
        s = self.settings.get(key)
        return s.origin if s is not None else None

    def plugin(self, name: str) -> dict[str, str]:
        """All ``plugin.<name>.*`` settings with the prefix stripped, e.g. ``pool.1.host``."""
        prefix = f"plugin.{name}."
        return {k[len(prefix) :]: s.value for k, s in self.settings.items() if k.startswith(prefix)}

    def _bad(self, key: str, value: str, expected: str) -> ConfigError:
        return ConfigError(
            f"config option '{key}' has invalid value {value!r} (from {self.origin(key)}); "
            f"expected {expected}"
        )

    def get_int(self, key: str, default: int | None = None) -> int | None:
        v = self.get(key)
        if v is None:
            return default
        try:
            return int(v.strip())
        except ValueError:
            raise self._bad(key, v, "a whole number") from None

    def get_float(self, key: str, default: float | None = None) -> float | None:
        v = self.get(key)
        if v is None:
            return default
        try:
            return float(v.strip())
        except ValueError:
            raise self._bad(key, v, "a number") from None

    def get_bool(self, key: str, default: bool = False) -> bool:
        v = self.get(key)
        if v is None:
            return default
        v = v.strip()
        if _TRUE.match(v):
            return True
        if _FALSE.match(v):
            return False
        raise self._bad(key, v, "one of 1/yes/true/y/t or 0/no/false/n/f")

    # ---------------------------------------------------------------- typed properties
    @property
    def identity(self) -> str:
        v = (self.get("identity") or socket.gethostname()).strip()
        if not _IDENTITY.match(v):
            raise self._bad("identity", v, "letters, digits, '_', '.', '-' only")
        return v

    @property
    def collectives(self) -> tuple[str, ...]:
        raw = self.get("collectives") or "mcollective"
        return tuple(c.strip() for c in raw.split(",") if c.strip())

    @property
    def main_collective(self) -> str:
        return (self.get("main_collective") or self.collectives[0]).strip()

    @property
    def ttl(self) -> int:
        return self.get_int("ttl", 60) or 60

    @property
    def direct_addressing(self) -> bool:
        return self.get_bool("direct_addressing", True)

    @property
    def direct_addressing_threshold(self) -> int:
        v = self.get_int("direct_addressing_threshold", 10)
        return 10 if v is None else v

    @property
    def discovery_timeout(self) -> int | None:
        return self.get_int("discovery_timeout")

    @property
    def publish_timeout(self) -> int:
        v = self.get_int("publish_timeout", 2)
        return 2 if v is None else v

    @property
    def connection_timeout(self) -> float | None:
        return self.get_float("connection_timeout")

    @property
    def securityprovider(self) -> str:
        return (self.get("securityprovider") or "psk").strip().lower()

    @property
    def connector(self) -> str:
        return (self.get("connector") or "activemq").strip().lower()

    @property
    def default_discovery_method(self) -> str:
        return (self.get("default_discovery_method") or "mc").strip()

    @property
    def libdir(self) -> tuple[str, ...]:
        raw = self.get("libdir") or ""
        return tuple(d for d in raw.split(os.pathsep) if d)

    @property
    def color(self) -> bool:
        return self.get_bool("color", True)

    @property
    def configdir(self) -> str | None:
        return os.path.dirname(self.files[-1]) if self.files else None

    # ---------------------------------------------------------------- presentation
    def redacted(self, key: str) -> str:
        """The value of ``key`` as safe to show (:func:`.masking.mask_value`): secret keys
        become ``********``, URL user-info in any value is masked."""
        return mask_value(key, self.get(key) or "")


def _check_key(key: str, where: str) -> None:
    if key.startswith("plugin.") or key in KNOWN_KEYS:
        return
    import difflib  # only for the error message

    close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else "; plugin settings start with 'plugin.'"
    raise ConfigError(f"unknown config option '{key}' at {where}{hint}")


def _add_file(settings: dict[str, Setting], path: Path, *, files: list[str]) -> None:
    for key, value, lineno in parse_file(path):
        where = f"{path}:{lineno}"
        _check_key(key, where)
        settings[key] = Setting(value, where)
    files.append(str(path))
    plugin_d = path.parent / "plugin.d"
    if plugin_d.is_dir():
        for f in sorted(plugin_d.iterdir()):
            m = re.match(r"^(\w+)\.cfg$", f.name)
            if m and f.is_file():
                for key, value, lineno in parse_file(f, prefix=f"plugin.{m.group(1)}."):
                    settings[key] = Setting(value, f"{f}:{lineno}")


def load(
    config_file: str | None = None,
    *,
    role: str = "client",
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, tuple[str, str]] | None = None,
    home: str | None = None,
    system_dirs: tuple[str, ...] = SYSTEM_DIRS,
) -> Config:
    """Merge every configuration layer into a :class:`Config`.

    ``config_file`` is ``-c FILE`` (it wins over ``$MCOLLECTIVE_CONFIG``); an explicit file
    that does not exist is a ConfigError.  ``overrides`` maps keys to ``(value, flag)`` from
    the command line.  ``env`` defaults to ``os.environ``; ``home`` to ``~``.
    """
    env = os.environ if env is None else env
    settings: dict[str, Setting] = {k: Setting(v, "default") for k, v in DEFAULTS.items()}
    files: list[str] = []

    for d in system_dirs:
        p = Path(d) / f"{role}.cfg"
        if p.is_file():
            _add_file(settings, p, files=files)
    if role == "client":
        p = Path(home or os.path.expanduser("~")) / ".mcollective"
        if p.is_file():
            _add_file(settings, p, files=files)

    explicit, how = (config_file, "-c/--config") if config_file else (None, "")
    if explicit is None and env.get("MCOLLECTIVE_CONFIG"):
        explicit, how = env["MCOLLECTIVE_CONFIG"], "$MCOLLECTIVE_CONFIG"
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(
                f"config file {explicit} (from {how}) does not exist; "
                "give the path of an MCollective client.cfg"
            )
        _add_file(settings, p, files=files)

    for var, key in ENV_KEYS.items():
        if env.get(var):
            settings[key] = Setting(env[var], f"env {var}")
    for var, suffix in (("STOMP_USER", "user"), ("STOMP_PASSWORD", "password")):
        if env.get(var):
            conn = settings.get("connector", Setting("activemq", "")).value.strip().lower()
            size = settings.get(f"plugin.{conn}.pool.size", Setting("1", "")).value.strip()
            for i in range(1, (int(size) if size.isdigit() else 1) + 1):
                settings[f"plugin.{conn}.pool.{i}.{suffix}"] = Setting(env[var], f"env {var}")

    for key, (value, flag) in (overrides or {}).items():
        settings[key] = Setting(value, flag)

    cfg = Config(settings=MappingProxyType(settings), role=role, files=tuple(files))
    cfg.identity  # noqa: B018 - validate early, like Ruby does at load
    return cfg
