"""Security providers (``psk``, ``ssl``); each is registered by entry point in the
``mcollective_py.security`` group (setup.cfg) and picked by ``securityprovider``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError
from .base import SecurityProvider
from .psk import PskSecurity, make_callerid

if TYPE_CHECKING:
    from .ssl import SslSecurity


def from_config(cfg: Config) -> SecurityProvider:
    """Build the provider named by ``securityprovider`` (found by entry point, see
    :mod:`mcollective_py.plugins`); ConfigError if unknown or incomplete."""
    from ..plugins import security_from_config

    return security_from_config(cfg)


def apply_size_caps(provider: SecurityProvider, cfg: Config) -> SecurityProvider:
    """``plugin.mcollective_py.max_message_bytes`` / ``max_yaml_bytes`` set ``provider``'s size
    caps (at least 1024 bytes each); ConfigError names a value that is too small."""
    for attr, key in (
        ("max_bytes", "plugin.mcollective_py.max_message_bytes"),
        ("max_yaml_bytes", "plugin.mcollective_py.max_yaml_bytes"),
    ):
        value = cfg.get_int(key)
        if value is not None:
            if value < 1024:
                raise ConfigError(
                    f"{key} = {value} (from {cfg.origin(key)}) is too small; give at least 1024 bytes"
                )
            setattr(provider, attr, value)
    return provider


def psk_from_config(cfg: Config) -> PskSecurity:
    """The ``psk`` provider: ``plugin.psk`` (or MCOLLECTIVE_PSK) and ``plugin.psk.callertype``."""
    psk = cfg.get("plugin.psk")
    if not psk:
        raise ConfigError(
            "securityprovider psk needs plugin.psk; set it in the config or export MCOLLECTIVE_PSK"
        )
    callertype = (cfg.get("plugin.psk.callertype") or "uid").strip()
    return PskSecurity(psk, callerid=make_callerid(callertype, cfg.identity))


def __getattr__(name: str) -> Any:
    if name == "SslSecurity":
        from .ssl import SslSecurity

        return SslSecurity
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SecurityProvider", "PskSecurity", "SslSecurity", "from_config", "psk_from_config"]
