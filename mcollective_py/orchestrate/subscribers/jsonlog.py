"""JSON lines for Splunk (or any log shipper): one object per event, one line each.

Every line carries the run id as ``correlation_id`` (and ``run_id``), the service,
environment, version, artifact SHA-256, step, node, LB, outcome, duration, caller and approver.
A run learns some of these on the way (the approver when ``resume --approver`` approves a
pause; the artifact after preflight); from then on every line carries them, so a search on
any single line answers "who deployed what, approved by whom, with which artifact, when,
on which node".  ``@timestamp`` is ISO 8601 UTC with milliseconds (Splunk's default
``TIME_FORMAT`` guess reads it); ``time`` stays the Unix time.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..events import DeployEvent, DeployHooks

#: Fields that, once known in a run, are carried to every later line.
STICKY = ("caller", "approver", "artifact_sha256")


def log_record(event: DeployEvent, known: dict[str, Any]) -> dict[str, Any]:
    """The flat JSON object of one event; ``known`` holds the sticky fields seen so far in
    this run (updated in place)."""
    for key in STICKY:
        value = getattr(event, key)
        if value is not None:
            known[key] = value
    record: dict[str, Any] = {
        "@timestamp": datetime.fromtimestamp(event.time, UTC).isoformat(timespec="milliseconds"),
        "correlation_id": event.run_id,
    }
    record.update(event.to_dict())
    for key in STICKY:
        if record.get(key) is None:
            record[key] = known.get(key)
    return record


class JsonLogSubscriber(DeployHooks):
    """Appends one line per event to ``path`` (flushed per line) or to an open text stream."""

    def __init__(self, path: str | Path | None = None, *, stream: IO[str] | None = None) -> None:
        if (path is None) == (stream is None):
            raise ValueError("give a path or a stream")
        self.path = Path(path) if path is not None else None
        self._stream = stream
        self._owned: IO[str] | None = None
        self._known: dict[str, dict[str, Any]] = {}  # run id -> sticky fields

    def _out(self) -> IO[str]:
        if self._stream is not None:
            return self._stream
        if self._owned is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._owned = os.fdopen(fd, "a", encoding="utf-8")
        return self._owned

    def on_event(self, event: DeployEvent) -> None:
        known = self._known.setdefault(event.run_id, {})
        line = json.dumps(log_record(event, known), sort_keys=True, separators=(",", ":"))
        out = self._out()
        out.write(line + "\n")
        out.flush()

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None
