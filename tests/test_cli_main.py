"""cli.main registers only the command being run (start-up cost), all of them for help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mcollective_py.cli import main as cli_main
from tests.conftest import REPO

ALL = [
    "ping",
    "rpc",
    "find",
    "facts",
    "inventory",
    "plugin",
    "config_cmd",
    "release",
    "deploy",
    "server",
    "agent_cmd",
    "shim",
    "lab",
]


def names(argv: list[str]) -> list[str]:
    return [m.__name__.rsplit(".", 1)[-1] for m in cli_main.command_modules(argv)]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["rpc", "rpcutil", "ping", "-I", "node1"], ["rpc"]),
        (["--debug", "ping"], ["ping"]),
        (["config", "show"], ["config_cmd"]),
        (["agent", "run"], ["agent_cmd"]),
        (["lab", "sim", "--nodes", "3"], ["lab"]),
        (["deploy", "shop", "1.0.0", "--env", "lab"], ["deploy"]),
        ([], ALL),
        (["--help"], ALL),
        (["no-such-command"], ALL),
    ],
)
def test_command_modules(argv: list[str], expected: list[str]) -> None:
    assert names(argv) == expected


def test_a_module_object_in_commands_wins_over_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcollective_py.cli import release

    monkeypatch.setattr(cli_main, "COMMANDS", (*cli_main.COMMANDS, release))
    assert cli_main.command_modules(["release"]) == [release]
    assert names([]) == ALL


def test_rpc_does_not_import_other_commands() -> None:
    code = (
        "import sys; from mcollective_py.cli import main\n"
        "main.build_parser(['rpc', 'rpcutil', 'ping'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('mcollective_py.cli.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    loaded = eval(out)  # noqa: S307 - our own printed list
    assert "mcollective_py.cli.rpc" in loaded
    for other in ("release", "server", "shim", "agent_cmd", "lab", "plugin", "deploy"):
        assert f"mcollective_py.cli.{other}" not in loaded


def test_unknown_command_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["bogus"])
    assert exc.value.code == 2
    assert "invalid choice: 'bogus' (choose from 'ping', 'rpc', 'find'" in capsys.readouterr().err
