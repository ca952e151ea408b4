"""Security providers (``psk``, ``ssl``) and the factory that picks one from config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError
from .base import SecurityProvider
from .psk import PskSecurity, make_callerid

if TYPE_CHECKING:
    from .ssl import SslSecurity


def from_config(cfg: Config) -> SecurityProvider:
    """Build the provider named by ``securityprovider``; ConfigError if unknown or incomplete.
    ``plugin.mcollective_py.max_message_bytes`` / ``max_yaml_bytes`` set its size caps."""
    provider = _provider(cfg)
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


def _provider(cfg: Config) -> SecurityProvider:
    name = cfg.securityprovider
    if name == "psk":
        psk = cfg.get("plugin.psk")
        if not psk:
            raise ConfigError(
                "securityprovider psk needs plugin.psk; set it in the config or export MCOLLECTIVE_PSK"
            )
        callertype = (cfg.get("plugin.psk.callertype") or "uid").strip()
        return PskSecurity(psk, callerid=make_callerid(callertype, cfg.identity))
    if name == "ssl":
        from .ssl import SslSecurity  # imports cryptography: only when ssl is configured

        return SslSecurity.from_config(cfg)
    raise ConfigError(
        f"securityprovider {name!r} (from {cfg.origin('securityprovider')}) is not supported yet; "
        "use psk or ssl"
    )


def __getattr__(name: str) -> Any:
    if name == "SslSecurity":
        from .ssl import SslSecurity

        return SslSecurity
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SecurityProvider", "PskSecurity", "SslSecurity", "from_config"]
