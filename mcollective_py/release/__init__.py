"""Release data: the service catalog and the per-release Hiera data rendered from it.

``catalog`` loads and checks ``services.yaml`` into frozen dataclasses (the same model the
orchestrator plans with); ``hiera`` turns one release of one service in one environment into
Hiera data files for the ``app_release`` and ``haproxy_pools`` Puppet modules, and writes
them atomically.  Nothing here prints: ``cli/release.py`` does.
"""

from __future__ import annotations

from .catalog import Catalog, Service, load_catalog, parse_catalog
from .hiera import FileChange, data_dir, plan_writes, render_release, write_files

__all__ = [
    "Catalog",
    "FileChange",
    "Service",
    "data_dir",
    "load_catalog",
    "parse_catalog",
    "plan_writes",
    "render_release",
    "write_files",
]
