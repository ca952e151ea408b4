"""Plugins found by entry point: connectors and security providers, chosen by name in config.

Each plugin is a factory ``(Config) -> Connector`` or ``(Config) -> SecurityProvider``
registered in the package metadata, the way agents are (``mcollective_py.agents``)::

    [options.entry_points]
    mcollective_py.connectors =
        rabbitmq = mcollective_py.connectors.rabbitmq:RabbitMQConnector.from_config
    mcollective_py.security =
        psk = mcollective_py.security:psk_from_config

``connector = NAME`` and ``securityprovider = NAME`` in client.cfg/server.cfg pick one, so
a new connector (NATS, say) is one module plus one line of packaging.  A name nobody
registered, or a factory that cannot be imported, is a ConfigError naming the setting, its
origin and the names that are installed.

Start-up: our own plugins are also listed in :data:`BUILTIN` (the same ``module:attr`` as
their entry points, checked by a test), and a name found there is imported directly; only
another name scans the installed packages' entry points (``importlib.metadata``, ~10 ms of
every command's start).  So a third-party plugin cannot take a built-in name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import Config
from .errors import ConfigError

if TYPE_CHECKING:
    from .connectors.base import Connector
    from .security.base import SecurityProvider

CONNECTORS = "mcollective_py.connectors"
SECURITY = "mcollective_py.security"
#: our own plugins: group -> name -> "module:attr" (what setup.cfg registers; a test keeps
#: the two equal), imported without scanning the installed packages' metadata
BUILTIN: dict[str, dict[str, str]] = {
    CONNECTORS: {"rabbitmq": "mcollective_py.connectors.rabbitmq:RabbitMQConnector.from_config"},
    SECURITY: {
        "psk": "mcollective_py.security:psk_from_config",
        "ssl": "mcollective_py.security.ssl:SslSecurity.from_config",
    },
}


def entry_points(*, group: str) -> Any:
    """The installed entry points of ``group`` (``importlib.metadata``, imported on use)."""
    from importlib.metadata import entry_points as scan

    return scan(group=group)


def installed(group: str) -> tuple[str, ...]:
    """The names registered in entry point ``group``, sorted."""
    return tuple(
        sorted({ep.name for ep in entry_points(group=group)} | set(BUILTIN.get(group, {})))
    )


def _load(value: str) -> Any:
    """``module:attr.attr`` → the object, as ``EntryPoint.load`` resolves it."""
    module, _, attrs = value.partition(":")
    obj: Any = importlib.import_module(module)
    for attr in attrs.split(".") if attrs else ():
        obj = getattr(obj, attr)
    return obj


def factory(group: str, name: str, setting: str, cfg: Config) -> Callable[[Config], Any]:
    """The factory registered as ``name`` in ``group``; ConfigError when there is none."""
    builtin = BUILTIN.get(group, {}).get(name)
    if builtin is not None:
        made = _load(builtin)
        if not callable(made):  # pragma: no cover - our own table
            raise ConfigError(f"{setting} {name!r} is registered as {builtin}, not a factory")
        return made
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    names = ", ".join(installed(group)) or "none (is the package installed? pip install -e .)"
    if not found:
        raise ConfigError(
            f"{setting} {name!r} (from {cfg.origin(setting)}) is not installed; installed: {names}"
        )
    try:
        made = found[0].load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"{setting} {name!r} is registered as {found[0].value} but cannot be loaded: {exc}"
        ) from None
    if not callable(made):
        raise ConfigError(f"{setting} {name!r} is registered as {found[0].value}, not a factory")
    return made


def connector_from_config(cfg: Config) -> Connector:
    """The connector named by ``connector`` (default rabbitmq), built from ``cfg``."""
    from .connectors.base import Connector

    made = factory(CONNECTORS, cfg.connector, "connector", cfg)(cfg)
    if not isinstance(made, Connector):
        raise ConfigError(f"connector {cfg.connector!r} did not build a Connector")
    return made


def security_from_config(cfg: Config) -> SecurityProvider:
    """The provider named by ``securityprovider``, built from ``cfg``."""
    from .security import apply_size_caps
    from .security.base import SecurityProvider

    made = factory(SECURITY, cfg.securityprovider, "securityprovider", cfg)(cfg)
    if not isinstance(made, SecurityProvider):
        raise ConfigError(
            f"securityprovider {cfg.securityprovider!r} did not build a SecurityProvider"
        )
    return apply_size_caps(made, cfg)


__all__ = ["CONNECTORS", "SECURITY", "connector_from_config", "installed", "security_from_config"]
