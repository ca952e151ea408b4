"""Reading a run journal back as events, for the report and the tests. Pure.

A journal is JSON lines, each a :meth:`DeployEvent.to_dict`; the driver may add records of
other kinds (a lease, a checkpoint).  :func:`events_from_journal` keeps the events and skips
everything else, counting what it skipped; it never raises for a bad line, because a report
of a crashed run is wanted most of all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..events import EVENT_KINDS, DeployEvent

#: A journal line longer than this is skipped (a run writes lines of a few hundred bytes).
MAX_LINE = 64 * 1024
#: At most this many events are read from one journal.
MAX_EVENTS = 200_000


@dataclass(frozen=True)
class JournalEvents:
    """The events of a journal, and how many lines were not events (other record kinds,
    unreadable or oversized lines)."""

    events: tuple[DeployEvent, ...]
    skipped: int = 0


def events_from_journal(lines: Iterable[str]) -> JournalEvents:
    """The :class:`DeployEvent` records of journal lines, in order."""
    events: list[DeployEvent] = []
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        if len(line) > MAX_LINE or len(events) >= MAX_EVENTS:
            skipped += 1
            continue
        try:
            data = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if not isinstance(data, dict) or data.get("kind") not in EVENT_KINDS:
            skipped += 1
            continue
        try:
            event = DeployEvent.from_dict(data)
        except TypeError:  # a required field missing
            skipped += 1
            continue
        if (
            isinstance(event.time, bool)
            or not isinstance(event.time, int | float)
            or not math.isfinite(event.time)
            or not isinstance(event.run_id, str)
        ):
            skipped += 1
            continue
        events.append(event)
    return JournalEvents(tuple(events), skipped)
