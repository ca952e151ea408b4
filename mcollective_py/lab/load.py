"""The demo's load generator: steady HTTP requests through the HAProxy frontend.

``workers`` threads each keep one HTTP/1.1 connection to the frontend and send ``GET /``,
together at most ``rate`` requests per second.  A request fails when it gets no answer (the
connection broke, timed out or was refused) or an answer other than 200; a failed connection is
opened again for the next request.  Every request is counted in the second it started, so
:meth:`LoadGenerator.snapshot` gives totals and a per-second series, and :meth:`mark` names
phases (``v2``, ``v3``) so the report can say how many requests each phase sent and lost.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Second:
    """Requests started in one second of the run, and how many of them failed."""

    second: int
    requests: int
    failures: int


@dataclass(frozen=True)
class Phase:
    name: str
    requests: int
    failures: int
    seconds: float


@dataclass(frozen=True)
class LoadReport:
    requests: int
    failures: int
    seconds: float
    per_second: tuple[Second, ...]
    phases: tuple[Phase, ...]
    answers: dict[str, int]
    errors: tuple[str, ...]  # the first few failures, as text
    started_at: float = 0.0  # wall-clock time (epoch seconds) of second 0

    def samples_csv(self) -> str:
        """``time,requests,errors`` CSV, one row per second (``mco-py deploy report
        --load-samples``)."""
        rows = [
            f"{self.started_at + s.second:.1f},{s.requests},{s.failures}" for s in self.per_second
        ]
        return "time,requests,errors\n" + "".join(f"{r}\n" for r in rows)


class LoadGenerator:
    """Start with :meth:`start`, stop with :meth:`stop` (returns the report)."""

    MAX_ERRORS = 10

    def __init__(
        self,
        host: str,
        port: int,
        *,
        rate: float = 40.0,
        workers: int = 2,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port = host, port
        self.rate, self.workers, self.timeout = rate, workers, timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0
        self._wall_t0 = 0.0
        self._seconds: dict[int, list[int]] = {}
        self._answers: dict[str, int] = {}
        self._errors: list[str] = []
        self._marks: list[tuple[str, float, int, int]] = []
        self._requests = 0
        self._failures = 0

    def start(self) -> LoadGenerator:
        self._t0 = self.clock()
        self._wall_t0 = time.time()
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"load-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _work(self) -> None:
        interval = self.workers / self.rate if self.rate > 0 else 0.0
        conn: http.client.HTTPConnection | None = None
        next_at = self.clock()
        while not self._stop.is_set():
            started = self.clock()
            problem = None
            body = ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read(4096).decode(errors="replace").strip()
                if resp.status != 200:
                    problem = f"HTTP {resp.status}: {body[:80]}"
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                if conn is not None:
                    conn.close()
                conn = None
            self._count(started, problem, body)
            next_at = max(next_at + interval, self.clock() - 1.0)
            delay = next_at - self.clock()
            if delay > 0:
                self._stop.wait(delay)
        if conn is not None:
            conn.close()

    def _count(self, started: float, problem: str | None, body: str) -> None:
        second = int(started - self._t0)
        with self._lock:
            row = self._seconds.setdefault(second, [0, 0])
            row[0] += 1
            self._requests += 1
            if problem:
                row[1] += 1
                self._failures += 1
                if len(self._errors) < self.MAX_ERRORS:
                    self._errors.append(f"{started - self._t0:.1f} s: {problem}")
            else:
                version = body.split(" on ")[0] if " on " in body else body[:40]
                self._answers[version] = self._answers.get(version, 0) + 1

    def mark(self, name: str) -> None:
        """A phase called ``name`` starts now (the previous one ends)."""
        with self._lock:
            self._marks.append((name, self.clock(), self._requests, self._failures))

    def snapshot(self) -> LoadReport:
        with self._lock:
            now = self.clock()
            marks = [*self._marks, ("", now, self._requests, self._failures)]
            phases = tuple(
                Phase(a[0], b[2] - a[2], b[3] - a[3], b[1] - a[1])
                for a, b in zip(marks, marks[1:], strict=False)
            )
            return LoadReport(
                requests=self._requests,
                failures=self._failures,
                seconds=now - self._t0,
                per_second=tuple(Second(s, r[0], r[1]) for s, r in sorted(self._seconds.items())),
                phases=phases,
                answers=dict(self._answers),
                errors=tuple(self._errors),
                started_at=self._wall_t0,
            )

    def stop(self) -> LoadReport:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 1)
        return self.snapshot()
