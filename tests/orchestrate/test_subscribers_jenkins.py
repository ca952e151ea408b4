"""examples/jenkins/Jenkinsfile, compiled and run by a real Groovy against stub pipeline
steps (examples/jenkins/test/stub_steps.groovy): the stages come in the promised order, the
approver reaches ``deploy resume``, every deploy publishes JUnit and archives its report; a
syntax error fails the check."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mcollective_py.cli.deploy import normalize_argv
from mcollective_py.cli.main import build_parser
from mcollective_py.orchestrate.journal import check_run_id

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
JENKINSFILE = REPO / "examples" / "jenkins" / "Jenkinsfile"
STUBS = REPO / "examples" / "jenkins" / "test" / "stub_steps.groovy"


def groovy(jenkinsfile: Path, approver: str = "carol") -> subprocess.CompletedProcess[str]:
    exe = shutil.which("groovy")
    assert exe, "groovy is not installed (Debian groovy; scripts/setup)"
    env = dict(os.environ)
    if not Path("/usr/lib/jvm/default-java/bin/java").exists() and shutil.which("java"):
        java = Path(shutil.which("java") or "").resolve()
        env["JAVA_HOME"] = str(java.parent.parent)
    return subprocess.run(
        [exe, str(STUBS), str(jenkinsfile), approver],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def calls() -> list[dict[str, Any]]:
    result = groovy(JENKINSFILE)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _shell(calls: list[dict[str, Any]]) -> list[str]:
    out = []
    for c in calls:
        if c["step"] == "sh":
            arg = c["args"][0]
            out.append(arg["script"] if isinstance(arg, dict) else arg)
    return out


def test_the_stages_come_in_order(calls: list[dict[str, Any]]) -> None:
    assert [c["args"][0] for c in calls if c["step"] == "stage"] == [
        "Build",
        "Release data",
        "Plan",
        "Staging",
        "Production canary",
        "Approval",
        "Production",
    ]
    commands = [" ".join(shlex.split(s)[:3]) for s in _shell(calls)]
    wanted = [
        "./build.sh shop 1.5.0",
        "mco-py release render",
        "mco-py deploy plan",
        "mco-py deploy run",  # staging
        "mco-py deploy run",  # production, pausing after the canary
        "mco-py deploy resume",
    ]
    positions = [
        commands.index(w, commands.index(wanted[i - 1]) + 1 if i else 0)
        for i, w in enumerate(wanted)
    ]
    assert positions == sorted(positions)
    assert all("--check" in s for s in _shell(calls) if "release render" in s)


def test_the_approver_goes_to_resume(calls: list[dict[str, Any]]) -> None:
    inputs = [c for c in calls if c["step"] == "input"]
    assert len(inputs) == 1 and inputs[0]["args"][0]["submitterParameter"] == "APPROVER"
    resume = [s for s in _shell(calls) if " deploy resume " in s]
    assert resume == ["mco-py deploy resume shop-1.5.0-production-42 --approver 'carol'"]
    index = {id(c): i for i, c in enumerate(calls)}
    first_input = index[id(inputs[0])]
    production = next(
        i
        for i, c in enumerate(calls)
        if c["step"] == "sh" and "--pause-after-canary" in json.dumps(c)
    )
    assert production < first_input  # the canary runs before anyone is asked


def test_junit_is_published_and_reports_are_archived(calls: list[dict[str, Any]]) -> None:
    published = [c["args"][0]["testResults"] for c in calls if c["step"] == "junit"]
    assert published == ["reports/shop-1.5.0-staging-42.xml", "reports/*.xml"]
    archived = [c["args"][0]["artifacts"] for c in calls if c["step"] == "archiveArtifacts"]
    assert "reports/shop-1.5.0-staging-42.html" in archived and "reports/*.html" in archived
    reports = [s for s in _shell(calls) if "deploy report" in s]
    assert len(reports) == 2
    for line in reports:
        words = shlex.split(line.split("&&")[1].split("||")[0])
        args = build_parser().parse_args(words[1:])  # `mco-py deploy report` takes the line
        assert args.junit and args.junit.endswith(".xml") and args.output.endswith(".html")


def test_every_deploy_line_uses_flags_the_driver_has(calls: list[dict[str, Any]]) -> None:
    """Each ``mco-py deploy`` line goes through the real argument parser (an unknown flag
    exits 2 there), and each run names its run with an id ``--run-id`` accepts."""
    lines = [s for s in _shell(calls) if s.startswith("mco-py deploy")]
    assert [shlex.split(s)[2] for s in lines] == ["plan", "plan", "run", "run", "resume"]
    for line in lines:
        args = build_parser().parse_args(normalize_argv(shlex.split(line)[1:]))
        if args.deploy_command == "run":
            assert check_run_id(args.run_id, chosen=True) == args.run_id
    runs = [build_parser().parse_args(shlex.split(s)[1:]) for s in lines if " run " in s]
    assert [(a.run_id, a.pause_after_canary) for a in runs] == [
        ("shop-1.5.0-staging-42", False),
        ("shop-1.5.0-production-42", True),
    ]


def test_the_release_render_lines_are_valid_mco_py_commands(calls: list[dict[str, Any]]) -> None:
    for line in _shell(calls):
        if line.startswith("mco-py release render"):
            args = build_parser().parse_args(shlex.split(line)[1:])
            assert args.check and args.env in ("staging", "production")


def test_a_syntax_error_fails_the_check(tmp_path: Path) -> None:
    broken = tmp_path / "Jenkinsfile"
    text = JENKINSFILE.read_text()
    broken.write_text(text.replace("stage('Plan') {", "stage('Plan') {{", 1) + "\n")
    result = groovy(broken)
    assert result.returncode == 1
    assert result.stderr.startswith("startup failed:\nJenkinsfile: 46: ")
    assert "1 error" in result.stderr
    unbalanced = tmp_path / "Unbalanced"
    unbalanced.write_text(text.rstrip().rstrip("}"))
    assert groovy(unbalanced).returncode == 1
