"""Import pika without its asyncio adapter (start-up time of every client command).

``import pika`` runs ``pika/adapters/__init__.py``, which imports every adapter pika ships,
among them ``asyncio_connection`` and with it the whole ``asyncio`` package: 10-15 ms of a
~200 ms ``mco-py rpc ... -I node`` on these machines (``bench/startup.py``), for an adapter
we never use (the connector runs on ``BlockingConnection``).

:func:`load` makes ``pika.adapters`` a package whose names are imported on first use
(PEP 562 module ``__getattr__``) instead of all at once, then imports pika:
``BlockingConnection``, ``SelectConnection`` and ``BaseConnection`` (what ``pika/__init__``
and we use) load exactly as before; ``AsyncioConnection`` and the other adapters still load,
from the same files, if anything asks for them.  Nothing in pika is changed or copied: the
package module is made from pika's own spec, with pika's own ``__path__``.

Contract: only for the pika versions it was read against (:data:`LEAN_PIKA`); on any other
version, when pika is already imported, or when anything in the lean path fails, pika is
imported the ordinary way (the fallback is always correct, only slower).  Returns the pika
module either way; never raises more than ``import pika`` would.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

#: pika versions whose ``pika/adapters/__init__.py`` was read: it only imports and
#: re-exports the adapter classes below (1.3.2, 1.4.4)
LEAN_PIKA = ("1.3.", "1.4.")
#: ``pika.adapters`` names → the submodule that defines each (pika 1.3/1.4)
ADAPTERS = {
    "BaseConnection": "base_connection",
    "BlockingConnection": "blocking_connection",
    "SelectConnection": "select_connection",
    "IOLoop": "select_connection",
    "AsyncioConnection": "asyncio_connection",
}


def _pika_dir() -> str:
    """Where the pika package lives (found, not imported); "" when it is not there."""
    spec = importlib.util.find_spec("pika")
    if spec is None or not spec.submodule_search_locations:
        return ""
    return str(list(spec.submodule_search_locations)[0])


def _version(pika_dir: str) -> str:
    """pika's ``__version__`` read from its ``__init__.py`` without importing pika;
    "" when it cannot be read."""
    try:
        with open(os.path.join(pika_dir, "__init__.py"), encoding="utf-8") as fh:
            text = fh.read(4096)
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.partition("=")[2].strip().strip("'\"")
    return ""


def _lazy_adapters(pika_dir: str) -> ModuleType | None:
    """The ``pika.adapters`` package module with lazy names, not yet in sys.modules.
    (``importlib.util.find_spec("pika.adapters")`` would import pika itself first.)"""
    spec = importlib.machinery.PathFinder.find_spec("pika.adapters", [pika_dir])
    if spec is None or spec.submodule_search_locations is None:
        return None
    module = ModuleType("pika.adapters", "pika connection adapters (imported on first use)")
    module.__spec__ = spec
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = "pika.adapters"
    module.__file__ = spec.origin
    module.__all__ = list(ADAPTERS)  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        sub = ADAPTERS.get(name)
        if sub is None:
            raise AttributeError(f"module 'pika.adapters' has no attribute {name!r}")
        value = getattr(importlib.import_module(f"pika.adapters.{sub}"), name)
        setattr(module, name, value)
        return value

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def load() -> ModuleType:
    """``pika``, imported without ``pika.adapters.asyncio_connection`` when possible."""
    if "pika" in sys.modules:
        return sys.modules["pika"]
    pika_dir = _pika_dir()
    if pika_dir and _version(pika_dir).startswith(LEAN_PIKA):
        adapters = _lazy_adapters(pika_dir)
        if adapters is not None:
            sys.modules["pika.adapters"] = adapters
            try:
                return importlib.import_module("pika")
            except Exception:  # noqa: BLE001 - fall back to the ordinary import below
                for name in [n for n in sys.modules if n == "pika" or n.startswith("pika.")]:
                    del sys.modules[name]
    return importlib.import_module("pika")
