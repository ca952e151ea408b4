"""The node's facts (``factsource = yaml``, ``plugin.yaml``) and classes (``classesfile``).

Both are re-read when their files change (checked at most once a second) or on
:meth:`NodeState.reload`; a file that cannot be read or parsed leaves the last good values in
place and logs one warning, as a daemon must keep serving.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

log = logging.getLogger(__name__)


def load_yaml_facts(paths: Sequence[str]) -> dict[str, Any]:
    """Merge the YAML mappings in ``paths`` (later files win). Raises OSError/ValueError."""
    facts: dict[str, Any] = {}
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"{p} does not hold a YAML mapping of facts")
        facts.update({str(k): v for k, v in doc.items()})
    return facts


def load_classes(path: str) -> list[str]:
    """One class per line; blank lines skipped. Raises OSError."""
    with open(path, encoding="utf-8") as fh:
        return [ln.strip() for ln in fh if ln.strip()]


class NodeState:
    """Facts and classes, cached and refreshed when their files change. Thread-safe."""

    def __init__(
        self, fact_files: Sequence[str], classes_file: str | None, *, min_interval: float = 1.0
    ) -> None:
        self.fact_files = [f for f in fact_files if f]
        self.classes_file = classes_file
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._facts: dict[str, Any] = {}
        self._classes: list[str] = []
        self._stamp: tuple[Any, ...] | None = None
        self._checked = 0.0
        self.reload()

    def _mtimes(self) -> tuple[Any, ...]:
        out = []
        for p in [*self.fact_files, self.classes_file or ""]:
            try:
                out.append(os.stat(p).st_mtime_ns if p else None)
            except OSError:
                out.append(None)
        return tuple(out)

    def reload(self) -> None:
        """Re-read both files now (SIGHUP)."""
        with self._lock:
            self._load()

    def _load(self) -> None:
        stamp = self._mtimes()
        try:
            self._facts = load_yaml_facts(self.fact_files)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.warning(
                "Failed to load yaml facts from %s: %s; keeping %d known facts",
                ":".join(self.fact_files),
                exc,
                len(self._facts),
            )
        if self.classes_file:
            try:
                self._classes = load_classes(self.classes_file)
            except OSError as exc:
                log.warning(
                    "Cannot read classes file %s: %s", self.classes_file, exc.strerror or exc
                )
        self._stamp = stamp
        self._checked = time.monotonic()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.min_interval:
            return
        self._checked = now
        if self._mtimes() != self._stamp:
            self._load()

    def facts(self) -> Mapping[str, Any]:
        with self._lock:
            self._refresh()
            return dict(self._facts)

    def classes(self) -> list[str]:
        with self._lock:
            self._refresh()
            return list(self._classes)
