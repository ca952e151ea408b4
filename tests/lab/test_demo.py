"""The demo's pure parts: the deploy command it runs, how it words a run's outcome (from
``mco-py deploy status --json``), the load samples it hands to ``mco-py deploy report``, and
the report the CLI prints (golden: tests/golden/lab/demo-report.txt)."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from mcollective_py.cli.common import Terminal
from mcollective_py.cli.lab import _print_outcome
from mcollective_py.lab.demo import DemoOutcome, DeployRun
from mcollective_py.lab.estate import LabSpec, Ports, plan
from mcollective_py.lab.load import LoadReport, Phase, Second
from mcollective_py.lab.operator import deploy_command

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "lab"
ESTATE = plan(LabSpec(root=Path("/tmp/demo-lab"), nodes=2), Ports(8080, 8000, (9001, 9002)))


def test_the_deploy_command_follows_the_drivers_contract() -> None:
    assert deploy_command(ESTATE, "2.0.0") == [
        "deploy",
        "run",
        "shop",
        "2.0.0",
        "--env",
        "lab",
        "--catalog",
        "/tmp/demo-lab/services.yaml",
        "-c",
        "/tmp/demo-lab/client.cfg",
        "--state-dir",
        "/tmp/demo-lab/deploy-state",
        "--canary",
        "1",
        "--gate-deadline",
        "8",
        "--yes",
    ]


@pytest.mark.parametrize(
    ("run", "verdict"),
    [
        (DeployRun("2.0.0", 0, 0, "r", "", "", 1.0, "done", {"web1.lab": "done"}), "done"),
        (
            DeployRun(
                "3.0.0",
                1,
                1,
                "r",
                "",
                "",
                1.0,
                "failed",
                {"web1.lab": "rolled_back", "w2": "pending"},
            ),
            "failed and rolled back (web1.lab)",
        ),
        (
            DeployRun("3.0.0", 1, 1, "r", "", "", 1.0, "failed", {"web1.lab": "failed"}),
            "failed (web1.lab)",
        ),
        (
            DeployRun("3.0.0", 1, 1, "r", "", "", 1.0, "failed", {"web1.lab": "pending"}),
            "failed (no node rolled back)",
        ),
        (DeployRun("2.0.0", 4, 0, "r", "", "", 1.0, "paused", {}), "paused (exit 4)"),
        (DeployRun("2.0.0", 2, 0, "", "", "", 1.0), "exit (exit 2)"),
        (DeployRun("2.0.0", 1, 1, "", "", "", 1.0), "failed and rolled back"),
    ],
)
def test_the_verdict_of_a_run(run: DeployRun, verdict: str) -> None:
    assert run.verdict == verdict


def test_load_samples_for_the_run_report() -> None:
    load = LoadReport(
        requests=81,
        failures=1,
        seconds=2.0,
        per_second=(Second(0, 40, 0), Second(1, 41, 1)),
        phases=(),
        answers={},
        errors=(),
        started_at=1796393096.25,
    )
    assert load.samples_csv() == ("time,requests,errors\n1796393096.2,40,0\n1796393097.2,41,1\n")


def test_the_report() -> None:
    load = LoadReport(
        requests=1234,
        failures=0,
        seconds=61.5,
        per_second=(Second(0, 40, 0),),
        phases=(
            Phase("2.0.0", 900, 0, 45.0),
            Phase("3.0.0", 300, 0, 15.0),
            Phase("after", 34, 0, 1.5),
        ),
        answers={"shop 2.0.0": 1234},
        errors=(),
    )
    outcome = DemoOutcome(
        versions={"web2.lab": "2.0.0", "web1.lab": "2.0.0"},
        load=load,
        deploys=(
            DeployRun("2.0.0", 0, 0, "r1", "/j/r1", "/tmp/demo-lab/reports/r1.html", 44.9, "done"),
            DeployRun(
                "3.0.0",
                1,
                1,
                "r2",
                "",
                "",
                14.2,
                "failed",
                {"web1.lab": "rolled_back", "web2.lab": "pending"},
            ),
        ),
        seconds=61.6,
        problems=(),
    )
    out = io.StringIO()
    _print_outcome(
        outcome, 80.25, Terminal(out, io.StringIO(), color=False), kept=False, estate=ESTATE
    )
    path = GOLDEN / "demo-report.txt"
    if os.environ.get("REGEN"):
        path.write_text(out.getvalue())
    assert out.getvalue() == path.read_text()
    assert outcome.ok
    bad = DemoOutcome(
        outcome.versions, load, outcome.deploys, 1.0, ("2 failed requests while rolling 2.0.0",)
    )
    out = io.StringIO()
    _print_outcome(bad, 1.0, Terminal(out, io.StringIO(), color=False), kept=True, estate=ESTATE)
    assert (
        "PROBLEM: 2 failed requests while rolling 2.0.0\nresult: NOT as expected\n"
        in out.getvalue()
    )
    assert out.getvalue().endswith(
        "the lab keeps running: mco-py lab status --state-dir /tmp/demo-lab\n"
    )


CHILD = (
    "import os, sys\n"
    "tty = os.isatty(1)\n"
    "size = os.get_terminal_size(1) if tty else None\n"
    "print('\\x1b[1mrun id: r-77\\x1b[0m')\n"
    "print(f'tty={tty} size={size.lines if size else 0}x{size.columns if size else 0}')\n"
    "sys.stdout.write('progress 1/2\\rprogress 2/2\\n')\n"
    "sys.exit(3)\n"
)


def test_run_on_terminal_gives_the_child_a_terminal_of_our_size() -> None:
    from mcollective_py.lab.demo import ANSI, run_on_terminal

    seen: list[str] = []
    code, out = run_on_terminal(
        [sys.executable, "-c", CHILD], dict(os.environ), seen.append, (30, 111)
    )
    assert code == 3
    assert "".join(seen) == out
    clean = ANSI.sub("", out).replace("\r\n", "\n")
    assert clean == "run id: r-77\ntty=True size=30x111\nprogress 1/2\rprogress 2/2\n"


def test_run_piped_hands_on_lines() -> None:
    from mcollective_py.lab.demo import run_piped

    seen: list[str] = []
    code, out = run_piped([sys.executable, "-c", CHILD], dict(os.environ), seen.append)
    assert code == 3
    assert seen == out.split("\n")
    assert seen[1] == "tty=False size=0x0"
