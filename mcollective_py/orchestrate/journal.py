"""The run journal (append-only JSON lines, fsync per record) and the service lease.

Layout under the state dir::

    runs/<run-id>.jsonl              one journal per run
    leases/<service>.<env>.json      the lease of a service in an environment
    leases/<service>.<env>.lock      flock'ed while a lease is read-modified-written
    runs/<run-id>.abort              asks a live run to stop (``deploy abort``)

Journal records are ``DeployEvent.to_dict()`` (they carry a ``kind`` from ``EVENT_KINDS``)
plus one record type of its own: ``kind: "lease"`` (``detail``: action taken|takeover|
released|paused, token, owner, pid, host, expiry).  The first event, ``run_start``, holds the
whole plan in ``detail.plan``.  Every record is written, flushed and fsync'ed before the
executor acts on it (write-ahead), so after a crash the journal says what was *about* to
happen.  A torn last line (a kill during a write) is ignored on reading.

The lease (owner, pid, host, expiry, token) allows one run per service+environment.  It is
taken over only when it has expired, or when its holder is a process of *this* host that no
longer exists (a killed driver; pid reuse aside) — never from a live holder.  Each take-over
increments the fencing ``token`` and is journaled; every write checks the token is still ours
(``LeaseLost`` otherwise), so a driver that lost its lease cannot act on the fleet.  A paused
run keeps its lease with no expiry until ``resume`` or ``abort``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import JournalError, LeaseHeld, RunNotFound, UsageError

RUN_ID_RE = re.compile(r"\A[a-z][a-z0-9_-]{0,62}-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}\Z")
#: A journal line longer than this is refused on reading (hostile or corrupt file).
MAX_RECORD = 1 << 20
#: Default lease time-to-live; the executor renews it on every record.
LEASE_TTL = 120.0


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$MCO_PY_STATE_DIR``, else ``/var/lib/mco-py/deploy`` for root, else
    ``~/.local/state/mco-py/deploy``."""
    env = os.environ if env is None else env
    if env.get("MCO_PY_STATE_DIR"):
        return Path(env["MCO_PY_STATE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/mco-py/deploy")
    return Path.home() / ".local" / "state" / "mco-py" / "deploy"


def new_run_id(service: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{service}-{stamp}-{secrets.token_hex(3)}"


#: A run id the caller chose (``deploy run --run-id``, e.g. a CI build's name): a plain file name.
CHOSEN_RUN_ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


def check_run_id(run_id: str, *, chosen: bool = False) -> str:
    """``run_id`` if it is a generated run id or (always for lookups, and for a new run when
    ``chosen``) a caller-chosen one; RunNotFound (chosen: UsageError) otherwise."""
    if chosen and not (isinstance(run_id, str) and CHOSEN_RUN_ID_RE.match(run_id)):
        raise UsageError(
            f"--run-id {run_id!r}: use 1 to 128 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit, e.g. shop-1.5.0-production-42"
        )
    if not isinstance(run_id, str) or not (
        RUN_ID_RE.match(run_id) or CHOSEN_RUN_ID_RE.match(run_id)
    ):
        raise RunNotFound(
            f"invalid run id {run_id!r}: run ids look like shop-20261204T144000Z-1a2b3c "
            "(mco-py deploy status lists them)"
        )
    return run_id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purpose
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class Lease:
    """Who holds a service+environment: the run, its process, and until when."""

    service: str
    environment: str
    run_id: str
    owner: str
    pid: int
    host: str
    expiry: float | None  # None: held until resumed or aborted (a paused run)
    token: int

    def stale(self, now: float, host: str) -> bool:
        """Expired, or held by a process of this host that is gone; a parked lease (a paused
        run, ``expiry`` None) is never stale."""
        if self.expiry is None:
            return False
        if self.expiry < now:
            return True
        return self.host == host and not _pid_alive(self.pid)


class StateDir:
    """The state dir: journals and leases; ``clock`` is injectable."""

    def __init__(self, root: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.clock = clock
        self.host = socket.gethostname()

    # ---------------------------------------------------------------- paths
    def _ensure(self, sub: str) -> Path:
        d = self.root / sub
        try:
            d.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise JournalError(
                f"cannot create the deploy state dir {str(d)!r}: {exc.strerror}; pass "
                "--state-dir DIR or set MCO_PY_STATE_DIR"
            ) from None
        return d

    def journal_path(self, run_id: str) -> Path:
        return self.root / "runs" / f"{check_run_id(run_id)}.jsonl"

    def abort_path(self, run_id: str) -> Path:
        return self.root / "runs" / f"{check_run_id(run_id)}.abort"

    def lease_path(self, service: str, environment: str) -> Path:
        return self.root / "leases" / f"{service}.{environment}.json"

    def runs(self) -> list[str]:
        """Run ids with a journal, oldest first (by the time in the id)."""
        d = self.root / "runs"
        if not d.is_dir():
            return []
        ids = [p.stem for p in d.glob("*.jsonl") if RUN_ID_RE.match(p.stem)]
        return sorted(ids, key=lambda r: (r.rsplit("-", 2)[1], r))

    # ---------------------------------------------------------------- lease
    @contextlib.contextmanager
    def _locked(self, service: str, environment: str) -> Iterator[Path]:
        self._ensure("leases")
        path = self.lease_path(service, environment)
        with open(path.with_suffix(".lock"), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def read_lease(self, service: str, environment: str) -> Lease | None:
        path = self.lease_path(service, environment)
        try:
            d = json.loads(path.read_text())
            return Lease(**{k: d[k] for k in Lease.__dataclass_fields__})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise JournalError(f"lease file {str(path)!r} is unreadable: {exc}") from None

    def _write_lease(self, path: Path, lease: Lease) -> None:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        try:
            with open(tmp, "w") as fh:
                json.dump(asdict(lease), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise JournalError(f"cannot write the lease {str(path)!r}: {exc}") from None

    def acquire(
        self, service: str, environment: str, run_id: str, owner: str, ttl: float = LEASE_TTL
    ) -> tuple[Lease, Lease | None]:
        """Take the lease for ``run_id``; returns (new lease, the stale one taken over or
        None).  LeaseHeld when a live holder (another run, or this run in a live process)
        has it."""
        with self._locked(service, environment) as path:
            now = self.clock()
            old = self.read_lease(service, environment)
            if old is not None and not old.stale(now, self.host):
                ours = old.run_id == run_id and (old.pid == os.getpid() or old.expiry is None)
                if not ours:
                    raise _held(old)
            lease = Lease(
                service,
                environment,
                run_id,
                owner,
                os.getpid(),
                self.host,
                now + ttl,
                (old.token + 1) if old else 1,
            )
            self._write_lease(path, lease)
            return lease, old

    def refuse_if_held(self, service: str, environment: str) -> None:
        """LeaseHeld if a live (or paused) run holds ``service`` in ``environment``."""
        cur = self.read_lease(service, environment)
        if cur is not None and not cur.stale(self.clock(), self.host):
            raise _held(cur)

    def renew(self, lease: Lease, ttl: float = LEASE_TTL, *, paused: bool = False) -> Lease:
        """Extend our lease (or park it for a paused run); LeaseLost if the token changed."""
        with self._locked(lease.service, lease.environment) as path:
            cur = self.read_lease(lease.service, lease.environment)
            if cur is None or cur.token != lease.token:
                raise LeaseLost(
                    f"the lease of {lease.service} in {lease.environment} was taken over "
                    f"(token {cur.token if cur else 'none'}, ours {lease.token}); this run stops"
                )
            new = Lease(
                **{
                    **asdict(lease),
                    "expiry": None if paused else self.clock() + ttl,
                }
            )
            self._write_lease(path, new)
            return new

    def check(self, lease: Lease) -> None:
        """LeaseLost unless ``lease`` is still the current one (the fencing check)."""
        cur = self.read_lease(lease.service, lease.environment)
        if cur is None or cur.token != lease.token:
            raise LeaseLost(
                f"the lease of {lease.service} in {lease.environment} is no longer ours "
                f"(token {cur.token if cur else 'none'}, ours {lease.token}); this run stops"
            )

    def release(self, lease: Lease) -> None:
        with self._locked(lease.service, lease.environment) as path:
            cur = self.read_lease(lease.service, lease.environment)
            if cur is not None and cur.token == lease.token:
                path.unlink(missing_ok=True)


def _held(old: Lease) -> LeaseHeld:
    until = (
        "until it is resumed or aborted"
        if old.expiry is None
        else f"until {time.strftime('%H:%M:%S', time.gmtime(old.expiry))} UTC"
    )
    what = "is paused" if old.expiry is None else "is running"
    return LeaseHeld(
        f"{old.service} in {old.environment} is locked by run {old.run_id} "
        f"(owner {old.owner}, pid {old.pid} on {old.host}), which {what}; "
        f"the lease holds {until}: wait, or use "
        f"`mco-py deploy status|resume|abort {old.run_id}`"
    )


class LeaseLost(JournalError):
    """Our lease was taken over: stop before touching anything else."""


class Journal:
    """Append-only JSON lines; each ``append`` is on disk (fsync) before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            new = not path.exists()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            if new:  # the file's name must survive a crash too
                _fsync_dir(path.parent)
        except OSError as exc:
            raise JournalError(
                f"cannot open the run journal {str(path)!r}: {exc.strerror}; check --state-dir"
            ) from None
        self._torn_checked = False

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True, default=str) + "\n"
        data = line.encode()
        try:
            if not self._torn_checked:
                self._torn_checked = True
                size = os.fstat(self._fd).st_size
                if size:
                    with open(self.path, "rb") as fh:
                        fh.seek(size - 1)
                        if fh.read(1) != b"\n":  # a torn record from a killed writer
                            data = b"\n" + data
            os.write(self._fd, data)
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalError(f"cannot write the run journal {str(self.path)!r}: {exc}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a journal, in order; torn or foreign lines are skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RunNotFound(
            f"no journal at {str(path)!r}; `mco-py deploy status` lists the runs of this "
            "state dir (or pass --state-dir)"
        ) from None
    except OSError as exc:
        raise JournalError(f"cannot read the journal {str(path)!r}: {exc.strerror}") from None
    out = []
    for line in raw.split(b"\n"):
        if not line.strip() or len(line) > MAX_RECORD:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("kind"), str):
            out.append(rec)
    return out
