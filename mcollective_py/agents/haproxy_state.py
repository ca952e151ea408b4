"""HAProxy server states, pure: parse the runtime API's answers, pick servers, plan commands.

Nothing here does I/O.  :func:`parse_servers` joins what two runtime commands say about each
server into one frozen :class:`ServerState`:

* ``show stat -1 4 -1`` (CSV, server rows only): ``status`` text (``UP``, ``UP 1/3``,
  ``DOWN``, ``MAINT``, ``no check`` ...), current sessions (``scur``), ``check_status``;
* ``show servers state``: the admin state bits and operational state, user and initial
  weight.  The admin state must come from here: a server in DRAIN whose check fails shows
  ``DOWN`` in ``show stat`` (seen on HAProxy 2.6).

The state words the agent reports and waits for (:attr:`ServerState.state`):

==========  ==============================================================================
``MAINT``   admin maintenance (forced, inherited from a tracked server, or DNS resolution)
``DRAIN``   admin drain: no new load-balanced traffic, current sessions carry on
``UP``      ready, and the health check passes (or the server has no check)
``DOWN``    ready, and the health check fails
``NOLB``    ready, check passes, but the server asked not to get new traffic (404 check)
==========  ==============================================================================

``READY`` is not a state word but an admin state: ready = neither MAINT nor DRAIN.  A status
with a health counter (``UP 1/3``: just re-enabled or on its way down; ``DOWN 1/2``: on its
way up) is *unsettled*; :func:`reached` only counts ``UP`` once it is settled, so a server
is "online" only after fresh passing checks.

Commands are built only from names that match :data:`NAME_RE` (the DDL's pattern), so a
request can never add a second command (``;``) or a new line to what is sent.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: A backend or server name as the DDL (and the Puppet module's Haproxy_pools::Name) accepts it.
NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}\Z")

#: ``srv_admin_state`` bits (HAProxy ``enum srv_admin``): any maintenance / any drain.
#: 0x04 (CMAINT, "disabled" in the configuration) stays set after ``state ready`` and does
#: not by itself mean maintenance; 0x40 (HMAINT) is an FQDN flag.
ADMIN_MAINT_MASK = 0x01 | 0x02 | 0x20
ADMIN_DRAIN_MASK = 0x08 | 0x10

ADMIN_STATES = ("READY", "DRAIN", "MAINT")
WAIT_STATES = ("UP", "DOWN", "READY", "DRAIN", "MAINT")
OP_STATES = {"0": "stopped", "1": "starting", "2": "running", "3": "stopping"}

#: HAProxy's absolute weight range.
MAX_WEIGHT = 256

_COUNTER = re.compile(r"\s\d+/\d+\Z")


class RuntimeFormatError(ValueError):
    """An answer of the runtime API does not have the expected format."""


@dataclass(frozen=True)
class ServerState:
    """One server in one backend, as HAProxy sees it at one moment."""

    backend: str
    server: str
    admin: str  # READY | DRAIN | MAINT
    status: str  # show stat's status text, e.g. "UP", "UP 1/3", "DOWN", "MAINT", "no check"
    op_state: str  # stopped | starting | running | stopping
    weight: int  # current (user) weight
    initial_weight: int  # weight from the configuration
    sessions: int  # current sessions
    check_status: str  # last check, e.g. "L7OK", "L4CON"; "" without check
    address: str

    @property
    def state(self) -> str:
        """``MAINT`` / ``DRAIN`` (admin state) or ``UP`` / ``DOWN`` / ``NOLB`` (health)."""
        if self.admin != "READY":
            return self.admin
        word = self.status.split(" ", 1)[0].upper()
        if self.status.lower() == "no check":
            return "UP"
        if word.startswith("MAINT"):
            return "MAINT"
        return word or "UNKNOWN"

    @property
    def settled(self) -> bool:
        """False while the status carries a health counter (``UP 1/3``, ``DOWN 1/2``)."""
        return _COUNTER.search(self.status) is None

    @property
    def key(self) -> tuple[str, str]:
        return (self.backend, self.server)

    def as_reply(self) -> dict[str, Any]:
        """The row as the agent replies it (plain JSON/Marshal-friendly values)."""
        return {
            "backend": self.backend,
            "server": self.server,
            "state": self.state,
            "admin": self.admin,
            "status": self.status,
            "weight": self.weight,
            "initial_weight": self.initial_weight,
            "sessions": self.sessions,
            "check_status": self.check_status,
        }


# --------------------------------------------------------------------------- parsing


def _int(value: str, what: str) -> int:
    try:
        return int(value) if value not in ("", "-") else 0
    except ValueError:
        raise RuntimeFormatError(f"{what} is {value!r}, not a number") from None


def parse_show_stat(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``show stat`` CSV -> ``{(backend, server): row}`` for server rows only.

    FRONTEND/BACKEND pseudo rows are dropped.  Raises RuntimeFormatError when the text is
    not ``show stat`` CSV (e.g. an error message such as ``Permission denied``).
    """
    if not text.startswith("# pxname,svname,"):
        raise RuntimeFormatError(f"'show stat' answered {_preview(text)}, not CSV")
    reader = csv.DictReader(io.StringIO(text[2:]))
    for column in ("status", "scur", "check_status"):
        if column not in (reader.fieldnames or ()):
            raise RuntimeFormatError(f"'show stat' has no {column!r} column")
    out = {}
    for row in reader:
        if not row.get("svname") or row["svname"] in ("FRONTEND", "BACKEND"):
            continue
        out[(row["pxname"], row["svname"])] = {k: v or "" for k, v in row.items() if k}
    return out


def parse_servers_state(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``show servers state`` (format 1) -> ``{(backend, server): {column: value}}``."""
    lines = text.splitlines()
    if len(lines) < 2 or lines[0].strip() != "1" or not lines[1].startswith("# "):
        raise RuntimeFormatError(
            f"'show servers state' answered {_preview(text)}, not format 1 with a header"
        )
    columns = lines[1][2:].split()
    for column in ("be_name", "srv_name", "srv_op_state", "srv_admin_state", "srv_uweight"):
        if column not in columns:
            raise RuntimeFormatError(f"'show servers state' has no {column!r} column")
    out = {}
    for line in lines[2:]:
        if not line.strip() or line.startswith("#"):
            continue
        values = line.split()
        if len(values) < len(columns):
            raise RuntimeFormatError(f"'show servers state' line is short: {line!r}")
        row = dict(zip(columns, values, strict=False))
        out[(row["be_name"], row["srv_name"])] = row
    return out


def admin_word(bits: int) -> str:
    """The admin state of ``srv_admin_state`` bits: MAINT wins over DRAIN over READY."""
    if bits & ADMIN_MAINT_MASK:
        return "MAINT"
    if bits & ADMIN_DRAIN_MASK:
        return "DRAIN"
    return "READY"


def parse_servers(stat_text: str, servers_state_text: str) -> tuple[ServerState, ...]:
    """Join ``show stat -1 4 -1`` and ``show servers state`` into one state per server.

    Order is ``show servers state``'s (backend id, then server id).  A server present in only
    one answer (added or removed between the two commands) is left out.
    """
    stats = parse_show_stat(stat_text)
    found = []
    for key, srv in parse_servers_state(servers_state_text).items():
        stat = stats.get(key)
        if stat is None:
            continue
        weight = _int(srv["srv_uweight"], f"{key[0]}/{key[1]} srv_uweight")
        found.append(
            ServerState(
                backend=key[0],
                server=key[1],
                admin=admin_word(_int(srv["srv_admin_state"], "srv_admin_state")),
                status=stat["status"],
                op_state=OP_STATES.get(srv["srv_op_state"], srv["srv_op_state"]),
                weight=weight,
                initial_weight=_int(srv.get("srv_iweight", str(weight)), "srv_iweight"),
                sessions=_int(stat["scur"], f"{key[0]}/{key[1]} scur"),
                check_status=stat["check_status"].removeprefix("* "),
                address=stat.get("addr") or srv.get("srv_addr", ""),
            )
        )
    return tuple(found)


def _preview(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return repr(first[:120]) if first else "nothing"


# --------------------------------------------------------------------------- selection


def split_backends(value: str | None) -> tuple[str, ...] | None:
    """The ``backend`` input: None (or ``all``) means every backend; else the named ones.

    Accepts one name or a comma separated list; raises ValueError for an invalid name.
    """
    if value is None or value.strip() in ("", "all"):
        return None
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",")))
    for name in names:
        if not NAME_RE.match(name):
            raise ValueError(f"backend name {name!r} is not a valid HAProxy backend name")
    return names


@dataclass(frozen=True)
class Selection:
    """The servers a request is about, and what it named that does not exist."""

    rows: tuple[ServerState, ...]
    server: str | None = None  # None: every server
    unknown_backends: tuple[str, ...] = ()
    missing_in: tuple[str, ...] = ()  # named backends that exist but lack the server
    server_found: bool = True

    @property
    def complete(self) -> bool:
        """Everything named was found."""
        return self.server_found and not self.unknown_backends and not self.missing_in

    def absent(self) -> list[dict[str, str | None]]:
        """One reply entry per thing named that was not found (state ``absent``)."""
        entries: list[dict[str, str | None]] = [
            {"backend": b, "server": self.server, "state": "absent"}
            for b in (*self.unknown_backends, *self.missing_in)
        ]
        if not self.server_found:
            entries.append({"backend": None, "server": self.server, "state": "absent"})
        return entries

    def problem(self) -> str:
        """What was not found, as one sentence (empty when complete)."""
        parts = []
        if self.unknown_backends:
            parts.append(f"no backend named {', '.join(self.unknown_backends)}")
        if self.missing_in:
            parts.append(f"server {self.server} is not in backend {', '.join(self.missing_in)}")
        if not self.server_found:
            parts.append(f"server {self.server} is in no backend")
        return "; ".join(parts)


def select(
    rows: Iterable[ServerState], server: str | None, backends: Sequence[str] | None
) -> Selection:
    """The rows for ``server`` (every server when None) in ``backends`` (None: all)."""
    rows = tuple(rows)
    known = {r.backend for r in rows}
    wanted = [
        r
        for r in rows
        if (server is None or r.server == server) and (backends is None or r.backend in backends)
    ]
    unknown = tuple(b for b in backends or () if b not in known)
    missing: tuple[str, ...] = ()
    if server is not None and backends is not None:
        have = {r.backend for r in wanted}
        missing = tuple(b for b in backends if b in known and b not in have)
    # with named backends, a missing server is reported per backend (missing_in)
    found = server is None or backends is not None or bool(wanted)
    return Selection(tuple(wanted), server, unknown, missing, found)


# --------------------------------------------------------------------------- planning


def check_name(name: str) -> str:
    """``name`` if it is a valid HAProxy name; ValueError otherwise (never sent then)."""
    if not NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a valid HAProxy backend or server name")
    return name


def admin_command(row: ServerState, target: str) -> str | None:
    """The command that puts ``row`` in admin state ``target`` (READY, DRAIN, MAINT), or
    None when it already is there.  A server whose check is DOWN can go to MAINT or DRAIN
    like any other: admin state and health are independent."""
    if target not in ADMIN_STATES:
        raise ValueError(f"admin state must be one of {', '.join(ADMIN_STATES)}, not {target!r}")
    if row.admin == target:
        return None
    return f"set server {check_name(row.backend)}/{check_name(row.server)} state {target.lower()}"


def plan_admin(rows: Iterable[ServerState], target: str) -> tuple[str, ...]:
    """The commands that put every row in admin state ``target`` (none already there)."""
    return tuple(c for c in (admin_command(r, target) for r in rows) if c is not None)


def weight_target(row: ServerState, weight: int, percent: bool) -> int:
    """The absolute weight asked for: ``weight``, or ``weight`` % of the initial weight
    (rounded down, at most 256).  ValueError outside 0..256 / a negative percentage."""
    if weight < 0:
        raise ValueError(f"weight must not be negative, got {weight}")
    if percent:
        return min(MAX_WEIGHT, row.initial_weight * weight // 100)
    if weight > MAX_WEIGHT:
        raise ValueError(f"weight must be between 0 and {MAX_WEIGHT}, got {weight}")
    return weight


def weight_command(row: ServerState, weight: int) -> str | None:
    """The command that sets ``row``'s weight to ``weight``, or None when it already has it."""
    if row.weight == weight:
        return None
    return f"set server {check_name(row.backend)}/{check_name(row.server)} weight {int(weight)}"


def plan_weight(rows: Iterable[ServerState], weight: int, percent: bool) -> tuple[str, ...]:
    """The commands that give every row the asked weight (none for rows that have it)."""
    commands = (weight_command(r, weight_target(r, weight, percent)) for r in rows)
    return tuple(c for c in commands if c is not None)


def reached(row: ServerState, wanted: str) -> bool:
    """Whether ``row`` is in ``wanted`` (one of :data:`WAIT_STATES`).

    ``READY`` / ``DRAIN`` / ``MAINT`` compare the admin state; ``UP`` needs a ready server
    whose check passes and is settled (no ``1/3`` counter); ``DOWN`` a ready server whose
    check fails.
    """
    if wanted not in WAIT_STATES:
        raise ValueError(f"state must be one of {', '.join(WAIT_STATES)}, not {wanted!r}")
    if wanted in ADMIN_STATES:
        return row.admin == wanted
    if wanted == "UP":
        return row.state == "UP" and row.settled
    return row.state == "DOWN"


def all_reached(rows: Iterable[ServerState], wanted: str) -> bool:
    """:func:`reached` for every row (False for no rows)."""
    rows = tuple(rows)
    return bool(rows) and all(reached(r, wanted) for r in rows)


def summary(values: Iterable[str]) -> str:
    """One word for several rows: their common value, ``MIXED`` when they differ, or
    ``absent`` when there are none."""
    distinct = list(dict.fromkeys(values))
    if not distinct:
        return "absent"
    return distinct[0] if len(distinct) == 1 else "MIXED"


def sessions(rows: Iterable[ServerState]) -> int:
    """Current sessions over all rows."""
    return sum(r.sessions for r in rows)


def by_key(rows: Iterable[ServerState]) -> Mapping[tuple[str, str], ServerState]:
    return {r.key: r for r in rows}
