"""Database migrations on a node: the release's own command, once per database, under a lock.

The deploy agent's ``migrate`` action (inputs ``service``, ``version``, ``phase`` pre|post)
runs here.  The pull model holds: the node runs the migration command *of the fetched
release* (``releases/<version>``, like the activate hooks), never a command from the request.

What makes it safe to call twice (a resumed run, a second driver, two services sharing one
database):

1. Connect to the service's database (``plugin.deploy.<service>.migrate_dsn``).
2. Take the database-wide migration lock and wait for it at most ``migrate_lock_timeout``
   seconds.  The lock belongs to the connection (PostgreSQL: a session advisory lock;
   SQLite: ``flock`` on ``<database>.mco-migrate.lock``), so a killed node or daemon releases
   it with its connection: no lock row outlives its process.
3. Under the lock, read the migrations table ``mco_migrations``: a phase recorded ``ok`` is
   not run again ("already applied"; a second caller that waited for the lock gets this).
4. Record the phase as ``running``, run the command, record ``ok`` or ``failed``.  A row
   still ``running`` when the lock is free again was interrupted (its node died); it is run
   again and the reply says so.  A ``failed`` phase is run again when asked again.

The table (created if missing, under the lock)::

    mco_migrations(service, version, phase, checksum, started, finished, node, outcome, detail)
    primary key (service, version, phase)

``checksum`` is the SHA-256 of the release's files the command names (its migration program).  SQL Server (the
Windows estate) takes the same steps with ``sp_getapplock @LockOwner='Session'`` (see
docs/agents.md); this module implements PostgreSQL and SQLite.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from ..server.agent import Aborted, ActionRequest, Reply
from . import process
from . import service_managers as sm
from .releases import Busy, LayoutError

if TYPE_CHECKING:
    from .deploy import Deploy

if sys.platform != "win32":
    import fcntl

TABLE = "mco_migrations"
#: The PostgreSQL advisory lock (two-key form): "MCOM" and 1 -- one lock per database.
PG_LOCK_KEYS = (0x4D434F4D, 1)
DEFAULT_COMMAND = "bin/migrate {phase}"
PHASES = ("pre", "post")
#: How often a waiting caller tries the lock again.
LOCK_POLL = 0.2


class MigrationError(Exception):
    """The database is unreachable or misconfigured, or the lock did not come in time."""


@dataclass(frozen=True)
class MigrationRecord:
    """One row of the migrations table."""

    service: str
    version: str
    phase: str
    checksum: str
    started: float
    finished: float | None
    node: str
    outcome: str  # running | ok | failed
    detail: str = ""


class Ledger(Protocol):
    """A database holding the migrations table and the migration lock."""

    def locked(self, timeout: float) -> contextlib.AbstractContextManager[float]:
        """Hold the lock for the ``with`` block (yields the seconds waited); MigrationError
        after ``timeout`` seconds."""
        ...

    def get(self, service: str, version: str, phase: str) -> MigrationRecord | None: ...

    def put(self, record: MigrationRecord) -> None:
        """Insert or replace the row of (service, version, phase)."""
        ...

    def close(self) -> None: ...


def _row(values: Any) -> MigrationRecord:
    service, version, phase, checksum, started, finished, node, outcome, detail = values
    return MigrationRecord(
        str(service),
        str(version),
        str(phase),
        str(checksum),
        float(started),
        None if finished is None else float(finished),
        str(node),
        str(outcome),
        str(detail or ""),
    )


class PostgresLedger:
    """PostgreSQL through psycopg 3: a session advisory lock, autocommitted rows."""

    def __init__(self, dsn: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        try:
            import psycopg
        except ImportError:
            raise MigrationError(
                "a postgresql:// migrate_dsn needs psycopg 3 on the node: "
                "pip install 'mcollective-py[migrations]'"
            ) from None
        self._errors = psycopg.Error
        self.sleep = sleep
        try:
            self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise MigrationError(f"cannot connect to {_redact(dsn)}: {_first_line(exc)}") from None

    @contextlib.contextmanager
    def locked(self, timeout: float) -> Iterator[float]:
        start = time.monotonic()
        try:
            while True:
                got = self.conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", PG_LOCK_KEYS
                ).fetchone()
                if got and got[0]:
                    break
                if time.monotonic() - start >= timeout:
                    raise MigrationError(
                        f"the migration lock of this database is still held by another caller "
                        f"after {timeout:g} s (pg_locks: locktype advisory, classid "
                        f"{PG_LOCK_KEYS[0]}, objid {PG_LOCK_KEYS[1]}); try again later, or raise "
                        "plugin.deploy.migrate_lock_timeout"
                    )
                self.sleep(LOCK_POLL)
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (service text NOT NULL, version text NOT NULL,"
                " phase text NOT NULL, checksum text NOT NULL, started timestamptz NOT NULL,"
                " finished timestamptz, node text NOT NULL, outcome text NOT NULL,"
                " detail text NOT NULL DEFAULT '', PRIMARY KEY (service, version, phase))"
            )
        except self._errors as exc:
            raise MigrationError(f"migration lock: {_first_line(exc)}") from None
        try:
            yield time.monotonic() - start
        finally:
            with contextlib.suppress(self._errors):
                self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", PG_LOCK_KEYS)

    def get(self, service: str, version: str, phase: str) -> MigrationRecord | None:
        try:
            row = self.conn.execute(
                "SELECT service, version, phase, checksum, extract(epoch FROM started),"
                f" extract(epoch FROM finished), node, outcome, detail FROM {TABLE}"
                " WHERE service = %s AND version = %s AND phase = %s",
                (service, version, phase),
            ).fetchone()
        except self._errors as exc:
            raise MigrationError(f"reading {TABLE}: {_first_line(exc)}") from None
        return None if row is None else _row(row)

    def put(self, r: MigrationRecord) -> None:
        try:
            self.conn.execute(
                f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s, to_timestamp(%s), to_timestamp(%s),"
                " %s, %s, %s) ON CONFLICT (service, version, phase) DO UPDATE SET"
                " checksum = EXCLUDED.checksum, started = EXCLUDED.started,"
                " finished = EXCLUDED.finished, node = EXCLUDED.node,"
                " outcome = EXCLUDED.outcome, detail = EXCLUDED.detail",
                astuple(r),  # the table's columns, in the record's field order
            )
        except self._errors as exc:
            raise MigrationError(f"recording in {TABLE}: {_first_line(exc)}") from None

    def close(self) -> None:
        self.conn.close()


class SqliteLedger:
    """SQLite: ``flock`` on a side file is the lock (released with the process); rows are
    written in ``BEGIN IMMEDIATE`` transactions, so readers never see half a row."""

    def __init__(self, path: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(path)
        self.sleep = sleep
        if not self.path.parent.is_dir():
            raise MigrationError(f"SQLite database directory {self.path.parent} does not exist")
        try:
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise MigrationError(f"cannot open SQLite database {self.path}: {exc}") from None

    @contextlib.contextmanager
    def locked(self, timeout: float) -> Iterator[float]:
        if sys.platform == "win32":  # pragma: no cover - not run on the CI
            raise MigrationError("SQLite migrations need flock (Linux nodes)")
        start = time.monotonic()
        lock_path = self.path.with_name(self.path.name + ".mco-migrate.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() - start >= timeout:
                        raise MigrationError(
                            f"the migration lock {lock_path} is still held by another caller "
                            f"after {timeout:g} s; try again later, or raise "
                            "plugin.deploy.migrate_lock_timeout"
                        ) from None
                    self.sleep(LOCK_POLL)
            self._write(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (service TEXT NOT NULL, version TEXT NOT NULL,"
                " phase TEXT NOT NULL, checksum TEXT NOT NULL, started REAL NOT NULL,"
                " finished REAL, node TEXT NOT NULL, outcome TEXT NOT NULL,"
                " detail TEXT NOT NULL DEFAULT '', PRIMARY KEY (service, version, phase))",
                (),
            )
            yield time.monotonic() - start
        finally:
            os.close(fd)  # releases the flock

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.execute(sql, params)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise MigrationError(f"SQLite {self.path}: {exc}") from None

    def get(self, service: str, version: str, phase: str) -> MigrationRecord | None:
        try:
            row = self.conn.execute(
                "SELECT service, version, phase, checksum, started, finished, node, outcome,"
                f" detail FROM {TABLE} WHERE service = ? AND version = ? AND phase = ?",
                (service, version, phase),
            ).fetchone()
        except sqlite3.Error as exc:
            raise MigrationError(f"SQLite {self.path}: {exc}") from None
        return None if row is None else _row(row)

    def put(self, r: MigrationRecord) -> None:
        self._write(
            f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            astuple(r),  # the table's columns, in the record's field order
        )

    def close(self) -> None:
        self.conn.close()


def open_ledger(dsn: str) -> Ledger:
    """The ledger for a ``migrate_dsn``: ``postgresql://...`` (libpq URL) or
    ``sqlite:////absolute/path.db``.  MigrationError for anything else."""
    scheme = dsn.split(":", 1)[0].lower() if ":" in dsn else ""
    if scheme in ("postgresql", "postgres"):
        return PostgresLedger(dsn)
    if scheme == "sqlite":
        # SQLAlchemy's form: sqlite:/// then the path, absolute when it starts with "/"
        path = unquote(dsn[len("sqlite:///") :]) if dsn.lower().startswith("sqlite:///") else ""
        if not path.startswith("/") or path.rstrip("/") == "":
            raise MigrationError(
                f"migrate_dsn {dsn!r}: a SQLite DSN names an absolute file, "
                "e.g. sqlite:////var/lib/shop/shop.db"
            )
        return SqliteLedger(path)
    if scheme in ("mssql", "sqlserver"):
        raise MigrationError(
            f"migrate_dsn {_redact(dsn)!r}: SQL Server is not driven by this agent; run the "
            "release's migration tool with sp_getapplock (docs/agents.md, Migrations)"
        )
    raise MigrationError(f"migrate_dsn {_redact(dsn)!r} is not a postgresql:// or sqlite:/// URL")


@dataclass(frozen=True)
class Applied:
    """What :func:`apply` did: ``ran`` (the command ran now) and the record as it stands."""

    ran: bool
    record: MigrationRecord
    waited: float
    note: str
    result: process.CommandResult | None = None


def apply(
    ledger: Ledger,
    *,
    service: str,
    version: str,
    phase: str,
    node: str,
    checksum: str,
    command: Callable[[], process.CommandResult],
    lock_timeout: float,
    now: Callable[[], float] = time.time,
) -> Applied:
    """Run ``command`` for (service, version, phase) unless the table says it ran: the
    contract of the module docstring.  MigrationError for database trouble."""
    with ledger.locked(lock_timeout) as waited:
        before = ledger.get(service, version, phase)
        if before is not None and before.outcome == "ok":
            note = f"already applied on {before.node}"
            if before.checksum != checksum:
                note += f" (from a migration program with SHA-256 {before.checksum[:12]}...)"
            return Applied(False, before, waited, note)
        note = ""
        if before is not None and before.outcome == "running":
            note = f"an earlier attempt on {before.node} was interrupted; ran again"
        elif before is not None:
            note = f"the earlier attempt on {before.node} failed; ran again"
        started = now()
        ledger.put(
            MigrationRecord(service, version, phase, checksum, started, None, node, "running")
        )
        try:
            result = command()
        except process.CommandNotRunnable as exc:
            failed = MigrationRecord(
                service, version, phase, checksum, started, now(), node, "failed", str(exc)
            )
            ledger.put(failed)
            return Applied(True, failed, waited, note or str(exc))
        outcome = "ok" if result.ok else "failed"
        detail = "" if result.ok else f"{result.describe()}: {result.output.strip()[-500:]}"
        record = MigrationRecord(
            service, version, phase, checksum, started, now(), node, outcome, detail
        )
        ledger.put(record)
        return Applied(True, record, waited, note, result)


def migration_checksum(argv: list[str], release: Path) -> str:
    """SHA-256 over the release's own files the command names (the program, or e.g. the
    script of ``/usr/bin/python3 migrate.py``), each as its path in the release and its
    bytes; Aborted when none is readable."""
    digest = hashlib.sha256()
    found = 0
    for i, arg in enumerate(argv):
        candidate = Path(arg) if i == 0 or arg.startswith("/") else release / arg
        try:
            resolved = candidate.resolve()
            if not resolved.is_relative_to(release) or not resolved.is_file():
                continue
            data = resolved.read_bytes()
        except (OSError, ValueError):
            continue
        digest.update(str(resolved.relative_to(release)).encode() + b"\0" + data)
        found += 1
    if not found:
        raise Aborted(
            f"the migration command {' '.join(argv)[:200]!r} names no readable file of the release "
            f"{release}; set plugin.deploy.migrate_command to the release's migration program"
        )
    return digest.hexdigest()


def migrate_action(agent: Deploy, req: ActionRequest, reply: Reply) -> None:
    """The deploy agent's ``migrate`` action (see the module docstring)."""
    start = agent.clock()
    service, version, phase = (str(req.data[k]) for k in ("service", "version", "phase"))
    reply["phase"] = phase
    reply["node"] = agent.context.identity
    try:
        _migrate(agent, service, version, phase, reply)
    finally:
        reply["duration"] = round(agent.clock() - start, 3)


def _migrate(agent: Deploy, service: str, version: str, phase: str, reply: Reply) -> None:
    dsn = agent.settings.text("migrate_dsn", service)
    if not dsn:
        raise Aborted(
            f"no database for the migrations of {service}: set plugin.deploy.{service}.migrate_dsn "
            "(postgresql://... or sqlite:////path.db) in the node's server.cfg"
        )
    layout = agent.layout(service)
    try:
        info = layout.info(version)
    except (Busy, LayoutError) as exc:
        raise Aborted(str(exc)) from None
    if info is None:
        raise Aborted(
            f"{service} {version} is not fetched on this node; run deploy fetch first (the "
            "migration command is the release's own)"
        )
    release = layout.release_dir(version).resolve()
    values = {"service": service, "version": version, "phase": phase, "release_dir": str(release)}
    line = agent.settings.text("migrate_command", service) or DEFAULT_COMMAND
    try:
        argv = list(sm.command_argv(line, values))
    except ValueError as exc:
        raise Aborted(f"plugin.deploy.migrate_command cannot be used: {exc}") from None
    if not argv[0].startswith("/"):
        program = (release / argv[0]).resolve()
        if not program.is_relative_to(release):
            raise Aborted(f"migration command {argv[0]!r} leaves the release directory")
        argv[0] = str(program)
    checksum = migration_checksum(argv, release)
    reply["checksum"] = checksum
    run_timeout = agent.settings.seconds("migrate_timeout", service)
    lock_timeout = agent.settings.seconds("migrate_lock_timeout", service)
    env = {f"DEPLOY_{k.upper()}": v for k, v in values.items()}
    env["DEPLOY_MIGRATE_DSN"] = dsn
    begun = agent.clock()

    def command() -> process.CommandResult:
        left = agent.timeout - 5 - (agent.clock() - begun)
        return agent.run(argv, timeout=max(1.0, min(run_timeout, left)), cwd=str(release), env=env)

    try:
        ledger = open_ledger(dsn)
    except MigrationError as exc:
        raise Aborted(f"{service} {phase} migration: {exc}") from None
    try:
        done = apply(
            ledger,
            service=service,
            version=version,
            phase=phase,
            node=agent.context.identity,
            checksum=checksum,
            command=command,
            lock_timeout=min(lock_timeout, max(1.0, agent.timeout - 10)),
        )
    except MigrationError as exc:
        raise Aborted(f"{service} {phase} migration: {exc}") from None
    finally:
        ledger.close()
    record = done.record
    reply["applied"] = done.ran and record.outcome == "ok"
    reply["already_applied"] = not done.ran
    reply["outcome"] = record.outcome
    reply["lock_wait"] = round(done.waited, 3)
    reply["started"] = record.started
    reply["finished"] = record.finished
    reply["applied_by"] = record.node
    if done.result is not None:
        reply["output"] = done.result.output
    if not done.ran:
        reply["detail"] = f"{service} {version} {phase} migration {done.note}"
        return
    if record.outcome != "ok":
        reply["detail"] = record.detail
        raise Aborted(f"{service} {version} {phase} migration failed: {record.detail}")
    reply["detail"] = "; ".join(
        x for x in (f"{service} {version} {phase} migration applied", done.note) if x
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparsable DSN>"
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return dsn
