"""Security providers (psk now; ssl in security/ssl.py) and the factory that picks one from
config."""

from __future__ import annotations

from ..config import Config
from ..errors import ConfigError
from .base import SecurityProvider
from .psk import PskSecurity, make_callerid


def from_config(cfg: Config) -> SecurityProvider:
    """Build the provider named by ``securityprovider``; ConfigError if unknown or incomplete."""
    name = cfg.securityprovider
    if name == "psk":
        psk = cfg.get("plugin.psk")
        if not psk:
            raise ConfigError(
                "securityprovider psk needs plugin.psk; set it in the config or export MCOLLECTIVE_PSK"
            )
        callertype = (cfg.get("plugin.psk.callertype") or "uid").strip()
        return PskSecurity(psk, callerid=make_callerid(callertype, cfg.identity))
    raise ConfigError(
        f"securityprovider {name!r} (from {cfg.origin('securityprovider')}) is not supported yet; "
        "use psk"
    )


__all__ = ["SecurityProvider", "PskSecurity", "from_config"]
