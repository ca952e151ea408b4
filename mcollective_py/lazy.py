"""Deferred work at import time: package names imported from their submodule on first use
(PEP 562), and regular expressions compiled on first use (:func:`lazy_re`).

A package ``__init__`` that re-exports its submodules' names imports all of them, and
every dataclass and regex they define, whenever any one is needed.  With::

    __getattr__, __dir__ = lazy_exports(__name__, {"Filter": "model", "check": "match"})

``from mcollective_py.filter import Filter`` imports ``filter.model`` only.  Each name is
looked up once, then kept in the package's namespace.  For type checkers the package
still imports the names under ``if TYPE_CHECKING:``.

Contract: an unknown name raises AttributeError as a plain module would; a name whose
submodule fails to import raises that ImportError at the first use.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, cast


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public ``name`` lives in the
    submodule ``where[name]``: relative to the package, or an absolute module name when
    it contains a dot."""

    def __getattr__(name: str) -> Any:
        sub = where.get(name)
        if sub is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = sub if "." in sub else f"{package}.{sub}"
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__


class _LazyPattern:
    """A regular expression compiled at its first use (see :func:`lazy_re`)."""

    _METHODS = (
        "match",
        "search",
        "fullmatch",
        "sub",
        "subn",
        "split",
        "findall",
        "finditer",
        "pattern",
        "flags",
        "groups",
        "groupindex",
    )

    def __init__(self, pattern: str, flags: int) -> None:
        self._lazy_args = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        # only reached while nothing is compiled (afterwards the attributes are set)
        compiled = re.compile(*self._lazy_args)
        for attr in self._METHODS:
            setattr(self, attr, getattr(compiled, attr))
        return getattr(compiled, name)


def lazy_re(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile(pattern, flags)`` deferred to the first use: a module's import does not
    pay for the patterns of a path the command never takes (start-up time).  After the first
    use its methods are the compiled pattern's own, bound once (no per-call indirection)."""
    return cast("re.Pattern[str]", _LazyPattern(pattern, flags))
