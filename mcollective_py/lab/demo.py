"""``mco-py lab demo``: a release rolled through the lab under live traffic, then a bad one.

Recipe of :func:`run` (the lab is up and serving the first release when it is called):

1. start the load generator on the HAProxy frontend;
2. ``mco-py deploy run shop 2.0.0`` -- the driver runs the release's ``pre`` migration once
   (``deploy migrate`` into the lab's SQLite database), then rolls node by node -- expected:
   exit 0, every node on 2.0.0, no failed request in this phase;
3. ``mco-py deploy run shop 3.0.0`` -- 3.0.0 is built broken (``/health`` answers 503), so its
   canary fails the health gate and the driver rolls it back -- expected: exit 1, outcome
   ``failed`` with the canary ``rolled_back``, every node still on 2.0.0;
4. stop the load; read every node's current release (``mco-py rpc deploy status``).

What each run did is read with ``mco-py deploy status --json`` (never from its text).  After
each run ``mco-py deploy report`` writes its HTML run report, with the load generator's
requests and errors per second on the timeline, into ``report_dir``, next to a copy of the
run's journal: outside the lab's state directory, so they outlive ``lab down``.

The outcome (:class:`DemoOutcome`) says whether each expectation held; the CLI prints it.
"""

from __future__ import annotations

import codecs
import fcntl
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import LabError
from .estate import Estate
from .lifecycle import LabEvents
from .load import LoadGenerator, LoadReport
from .operator import MCO_PY, OperatorEvents, deploy_command, rpc

GOOD, BAD = "2.0.0", "3.0.0"


class DemoEvents(LabEvents, OperatorEvents):
    """Hooks of the demo (no-ops by default)."""

    def output(self, line: str) -> None:
        """A line ``mco-py deploy`` printed (when the demo's output is not a terminal)."""

    def raw(self, text: str) -> None:
        """Output of ``mco-py deploy`` as it came from its terminal (its live progress view)."""

    def terminal_size(self) -> tuple[int, int] | None:
        """(rows, columns) when the demo's output is a terminal: ``mco-py deploy`` then runs
        on a pseudo-terminal of that size, so it draws its live view; None: on a pipe."""
        return None


@dataclass(frozen=True)
class DeployRun:
    version: str
    exit_code: int
    expected_exit: int
    run_id: str
    journal: str
    report: str
    seconds: float
    outcome: str = ""  # the driver's run outcome (done, failed, ...); "" when unknown
    nodes: dict[str, str] = field(default_factory=dict)  # node -> its last state in the run

    @property
    def rolled_back(self) -> tuple[str, ...]:
        return tuple(n for n, st in self.nodes.items() if st == "rolled_back")

    @property
    def verdict(self) -> str:
        """How the run ended, in words: ``done``, ``failed and rolled back (NODES)``..."""
        if self.outcome == "done" or (not self.outcome and self.exit_code == 0):
            return "done"
        if self.outcome in ("failed", "") and self.exit_code == 1:
            back = self.rolled_back
            stuck = [n for n, st in self.nodes.items() if st == "failed"]
            if self.outcome and (stuck or not back):
                return f"failed ({', '.join(stuck) or 'no node rolled back'})"
            return "failed and rolled back" + (f" ({', '.join(back)})" if back else "")
        return f"{self.outcome or 'exit'} (exit {self.exit_code})"


@dataclass(frozen=True)
class DemoOutcome:
    versions: dict[str, str]
    load: LoadReport
    deploys: tuple[DeployRun, ...]
    seconds: float
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def deploy_available(env: dict[str, str]) -> bool:
    """Whether this mco-py has the ``deploy`` command (the rolling deploy driver)."""
    r = subprocess.run(
        [*MCO_PY, "deploy", "--help"], capture_output=True, text=True, env=env, check=False
    )
    return r.returncode == 0


def runs(estate: Estate, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every run in the lab's deploy state dir, by run id: the summaries of
    ``mco-py deploy status --json`` (outcome, version, each node's last state)."""
    r = subprocess.run(
        [*MCO_PY, "deploy", "status", "--json", "--state-dir", estate.deploy_state_dir],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if r.returncode != 0:
        raise LabError(
            f"mco-py deploy status --json --state-dir {estate.deploy_state_dir} failed "
            f"(exit {r.returncode}): {r.stderr.strip()[-400:]}"
        )
    try:
        docs = json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        raise LabError(f"mco-py deploy status --json printed no JSON: {exc}") from None
    return {
        str(d["run_id"]): d
        for d in (docs if isinstance(docs, list) else [])
        if isinstance(d, dict) and d.get("run_id")
    }


def journal_path(estate: Estate, run_id: str) -> str:
    """Where the driver keeps the journal of ``run_id`` (``STATE_DIR/runs/RUN.jsonl``,
    docs/deploy.md)."""
    return str(Path(estate.deploy_state_dir) / "runs" / f"{run_id}.jsonl")


_RUN_LINE = re.compile(r"^Run (\S+)$")


def deploy(
    estate: Estate,
    version: str,
    expected_exit: int,
    env: dict[str, str],
    ev: DemoEvents,
    report_dir: Path,
) -> DeployRun:
    """Run ``mco-py deploy run``, passing its output on as it comes; then read what the run
    did with ``mco-py deploy status --json`` (the run this command started: the one that was
    not in the state dir before) and keep a copy of its journal in ``report_dir``."""
    argv = deploy_command(estate, version)
    before = set(runs(estate, env))
    ev.command(" ".join(("mco-py", *argv)))
    started = time.monotonic()
    size = ev.terminal_size()
    if size is None:
        code, output = run_piped([*MCO_PY, *argv], env, ev.output)
    else:
        code, output = run_on_terminal([*MCO_PY, *argv], env, ev.raw, size)
    seconds = time.monotonic() - started
    new = {k: v for k, v in runs(estate, env).items() if k not in before}
    if len(new) != 1:  # nothing journaled (refused before it started), or a stranger's run
        lines = [ANSI.sub("", line).strip() for line in output.splitlines()]
        named = [m.group(1) for line in lines if (m := _RUN_LINE.match(line))]
        new = {k: v for k, v in new.items() if k in named}
    if len(new) != 1:
        return DeployRun(version, code, expected_exit, "", "", "", seconds)
    (run_id, summary), *_ = new.items()
    journal = keep(journal_path(estate, run_id), report_dir, f"{run_id}-journal")
    nodes = {str(k): str(v) for k, v in (summary.get("nodes") or {}).items()}
    return DeployRun(
        version,
        code,
        expected_exit,
        run_id,
        journal,
        "",
        seconds,
        outcome=str(summary.get("outcome") or ""),
        nodes=nodes,
    )


#: Terminal control sequences (colours, cursor moves) of a live progress view.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_piped(
    argv: list[str], env: dict[str, str], on_line: Callable[[str], None]
) -> tuple[int, str]:
    """Run ``argv`` with its output on a pipe, handing each line on; (exit code, output)."""
    lines: list[str] = []
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            on_line(line.rstrip("\n"))
        code = proc.wait()
    return code, "\n".join(lines)


def run_on_terminal(
    argv: list[str], env: dict[str, str], on_data: Callable[[str], None], size: tuple[int, int]
) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal of ``size`` (rows, columns), so a program that draws
    a live view on terminals draws it; every byte is handed on as it comes.  (exit code,
    output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, close_fds=True
        )
    finally:
        os.close(slave)
    chunks: list[str] = []
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            text = decoder.decode(data)
            chunks.append(text)
            on_data(text)
    finally:
        os.close(master)
    return proc.wait(), "".join(chunks)


def keep(path: str, report_dir: Path, name: str) -> str:
    """A copy of the file ``path`` in ``report_dir`` (named ``name`` + its suffix); the path
    itself when it is not a file."""
    src = Path(path)
    if not path or not src.is_file():
        return path
    report_dir.mkdir(parents=True, exist_ok=True)
    dest = report_dir / f"{name}{src.suffix}"
    shutil.copyfile(src, dest)
    return str(dest)


def html_report(
    estate: Estate, run: DeployRun, env: dict[str, str], report_dir: Path, load: LoadReport
) -> str:
    """``report_dir/RUN.html``, written by ``mco-py deploy report JOURNAL`` (the run's
    journal file in the lab's deploy state dir) with the load generator's per-second requests and errors on its timeline; "" when the
    run left no journal or the command wrote nothing (LabError with its message)."""
    if not run.run_id:
        return ""
    report_dir.mkdir(parents=True, exist_ok=True)
    page = report_dir / f"{run.run_id}.html"
    samples = report_dir / f"{run.run_id}-load.csv"
    samples.write_text(load.samples_csv())
    argv = [
        "deploy",
        "report",
        journal_path(estate, run.run_id),
        "-o",
        str(page),
        "--load-samples",
        str(samples),
    ]
    r = subprocess.run([*MCO_PY, *argv], capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0 or not page.is_file():
        raise LabError(
            f"mco-py {' '.join(argv)} failed (exit {r.returncode}): "
            f"{(r.stderr or r.stdout).strip()[-400:]}"
        )
    return str(page)


def versions(estate: Estate, env: dict[str, str], ev: DemoEvents) -> dict[str, str]:
    """Each app node's current release, from the deploy agent."""
    webs = [n.identity for n in estate.web_nodes]
    cmd = rpc(estate, "deploy", "status", {"service": estate.service}, webs, env, ev)
    return {
        str(r.get("sender")): str((r.get("data") or {}).get("current_version")) for r in cmd.replies
    }


def run(
    estate: Estate,
    env: dict[str, str],
    ev: DemoEvents,
    *,
    report_dir: Path,
    deployer: Callable[[Estate, str, int, dict[str, str], DemoEvents, Path], DeployRun] = deploy,
    rate: float = 40.0,
) -> DemoOutcome:
    """The demo's release phases on a lab that is up and serving; see the module docstring."""
    started = time.monotonic()
    load = LoadGenerator(estate.frontend[0], estate.frontend[1], rate=rate).start()
    problems: list[str] = []
    done_runs: list[DeployRun] = []
    try:
        time.sleep(1.0)  # a second of traffic before anything changes
        for version, expected in ((GOOD, 0), (BAD, 1)):
            ev.step(f"rolling {estate.service} {version} through the lab under live traffic")
            load.mark(version)
            done = deployer(estate, version, expected, env, ev, report_dir)
            if done.run_id:
                page = html_report(estate, done, env, report_dir, load.snapshot())
                done = replace(done, report=page)
            done_runs.append(done)
        load.mark("after")
        time.sleep(1.0)
    finally:
        report = load.stop()
    current = versions(estate, env, ev)
    for r in done_runs:
        if r.exit_code != r.expected_exit:
            problems.append(
                f"mco-py deploy run {estate.service} {r.version} exited {r.exit_code}, "
                f"expected {r.expected_exit}"
            )
        elif r.version == BAD and r.outcome and not r.verdict.startswith("failed and rolled"):
            problems.append(f"{BAD} was not rolled back: {r.verdict}; nodes {r.nodes}")
    wrong = {n: v for n, v in current.items() if v != GOOD}
    if wrong or len(current) != len(estate.web_nodes):
        problems.append(f"not every node serves {GOOD}: {current}")
    good = next((p for p in report.phases if p.name == GOOD), None)
    if good is None or good.failures:
        problems.append(f"{good.failures if good else '?'} failed requests while rolling {GOOD}")
    if report.requests == 0:
        raise LabError(f"the load generator sent no request to {estate.frontend_url}")
    return DemoOutcome(
        current, report, tuple(done_runs), time.monotonic() - started, tuple(problems)
    )
