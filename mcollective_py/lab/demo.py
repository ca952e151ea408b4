"""``mco-py lab demo``: a release rolled through the lab under live traffic, then a bad one.

Recipe of :func:`run` (the lab is up and serving the first release when it is called):

1. start the load generator on the HAProxy frontend;
2. ``mco-py deploy run shop 2.0.0`` -- expected: exit 0, every node on 2.0.0, no failed
   request in this phase;
3. ``mco-py deploy run shop 3.0.0`` -- 3.0.0 is built broken (``/health`` answers 503), so its
   canary fails the health gate and the driver rolls it back -- expected: exit 1, every node
   still on 2.0.0;
4. stop the load; read every node's current release (``mco-py rpc deploy status``).

After each run the HTML run report (``mco-py deploy report RUN``) and the run's journal are
copied to ``report_dir``, outside the lab's state directory, so they outlive ``lab down``.

The outcome (:class:`DemoOutcome`) says whether each expectation held; the CLI prints it.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    """Whether this mco-py has the ``deploy`` command (issue 12's driver)."""
    r = subprocess.run(
        [*MCO_PY, "deploy", "--help"], capture_output=True, text=True, env=env, check=False
    )
    return r.returncode == 0


_RUN_ID = re.compile(r"\brun(?:[ _-]?id)?\b[\s:=]+([A-Za-z0-9][A-Za-z0-9._:-]{3,})", re.I)
_JOURNAL = re.compile(r"journal\S*[\s:=]+(\S+)", re.I)


def parse_run(output: str) -> tuple[str, str]:
    """(run id, journal path) from ``mco-py deploy run`` output; "" where not found."""
    run_id = journal = ""
    for line in output.splitlines():
        if not run_id and (m := _RUN_ID.search(line)):
            run_id = m.group(1).rstrip(".,;")
        if not journal and (m := _JOURNAL.search(line)):
            journal = m.group(1).rstrip(".,;")
    return run_id, journal


def deploy(
    estate: Estate,
    version: str,
    expected_exit: int,
    env: dict[str, str],
    ev: DemoEvents,
    report_dir: Path,
) -> DeployRun:
    """Run ``mco-py deploy run``, passing its output on line by line; then keep its HTML
    report and journal in ``report_dir``."""
    argv = deploy_command(estate, version)
    ev.command(" ".join(("mco-py", *argv)))
    started = time.monotonic()
    size = ev.terminal_size()
    if size is None:
        code, output = run_piped([*MCO_PY, *argv], env, ev.output)
    else:
        code, output = run_on_terminal([*MCO_PY, *argv], env, ev.raw, size)
    lines = [ANSI.sub("", line).rstrip("\r") for line in output.splitlines()]
    seconds = time.monotonic() - started
    run_id, journal = parse_run("\n".join(lines))
    report = html_report(estate, run_id, env, report_dir) if run_id else ""
    journal = keep(journal, report_dir, f"{run_id or version}-journal")
    return DeployRun(version, code, expected_exit, run_id, journal, report, seconds)


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


def html_report(estate: Estate, run_id: str, env: dict[str, str], report_dir: Path) -> str:
    """The HTML report of ``run_id`` in ``report_dir``: ``mco-py deploy report``'s HTML
    output saved there, or a copy of the file it names; "" when there is none."""
    for extra in (["--state-dir", estate.deploy_state_dir], []):
        r = subprocess.run(
            [*MCO_PY, "deploy", "report", run_id, *extra],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if r.returncode != 2:  # 2: bad usage (no --state-dir option): try without
            break
    if r.returncode != 0:
        return ""
    text = r.stdout.strip()
    if text.lower().startswith(("<!doctype", "<html")):
        path = report_dir / f"{run_id}.html"
        report_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(r.stdout)
        return str(path)
    paths = [w for w in text.split() if w.endswith(".html")]
    return keep(paths[-1], report_dir, run_id) if paths else ""


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
    runs: list[DeployRun] = []
    try:
        time.sleep(1.0)  # a second of traffic before anything changes
        for version, expected in ((GOOD, 0), (BAD, 1)):
            ev.step(f"rolling {estate.service} {version} through the lab under live traffic")
            load.mark(version)
            runs.append(deployer(estate, version, expected, env, ev, report_dir))
        load.mark("after")
        time.sleep(1.0)
    finally:
        report = load.stop()
    current = versions(estate, env, ev)
    for r in runs:
        if r.exit_code != r.expected_exit:
            problems.append(
                f"mco-py deploy run {estate.service} {r.version} exited {r.exit_code}, "
                f"expected {r.expected_exit}"
            )
    wrong = {n: v for n, v in current.items() if v != GOOD}
    if wrong or len(current) != len(estate.web_nodes):
        problems.append(f"not every node serves {GOOD}: {current}")
    good = next((p for p in report.phases if p.name == GOOD), None)
    if good is None or good.failures:
        problems.append(f"{good.failures if good else '?'} failed requests while rolling {GOOD}")
    if report.requests == 0:
        raise LabError(f"the load generator sent no request to {estate.frontend_url}")
    return DemoOutcome(current, report, tuple(runs), time.monotonic() - started, tuple(problems))
