"""deploy#puppet_apply with the real Puppet 7 (isolated vardir/confdir in a temp dir)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mcollective_py.agents.deploy import Deploy
from tests.agents_py.conftest import call, make_agent

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("puppet") is None, reason="puppet is not installed"),
]

MANIFEST = """\
# What a release's Puppet run depends on: the facts the deploy agent passes.
$version = $facts['app_version']
if $version == 'broken' { fail("release data for ${facts['app']} ${version} is not rendered") }
$dir = $version ? { 'bad' => '/nonexistent/dir', default => '%(out)s' }
file { "${dir}/${facts['app']}-${version}.txt":
  ensure  => file,
  content => "${facts['app']} ${version}\\n",
}
"""


@pytest.fixture
def puppet_agent(tmp_path: Path) -> tuple[Deploy, Path]:
    out = tmp_path / "out"
    out.mkdir()
    manifest = tmp_path / "site.pp"
    manifest.write_text(MANIFEST % {"out": out})
    isolated = " ".join(f"--{d}dir={tmp_path / d}" for d in ("var", "conf", "code", "log", "run"))
    agent = make_agent(
        Deploy,
        {
            "plugin.deploy.root": str(tmp_path / "releases"),
            "plugin.deploy.puppet_manifest": str(manifest),
            "plugin.deploy.puppet_args": isolated,
        },
    )
    return agent, out


def test_puppet_apply_reports_changes_noop_and_failures(puppet_agent: tuple[Deploy, Path]) -> None:
    agent, out = puppet_agent
    applied = call(agent, "puppet_apply", service="shop", version="1.4.2")
    assert applied.statuscode == 0, applied.statusmsg
    assert (applied.data["exit_code"], applied.data["changed"], applied.data["failed"]) == (
        2,
        True,
        False,
    )
    assert applied.data["summary"]["resources"]["changed"] == 1
    assert (out / "shop-1.4.2.txt").read_text() == "shop 1.4.2\n"

    noop = call(agent, "puppet_apply", service="shop", version="1.4.3", noop=True, tags="file")
    assert noop.statuscode == 0, noop.statusmsg
    assert (noop.data["exit_code"], noop.data["changed"], noop.data["summary"]["pending"]) == (
        0,
        False,
        1,
    )
    assert not (out / "shop-1.4.3.txt").exists()

    failed = call(agent, "puppet_apply", service="shop", version="bad")
    assert failed.statuscode == 1
    assert failed.data["failed"] is True and failed.data["exit_code"] == 4
    assert failed.statusmsg.startswith("puppet apply puppet exited 4: 1 failed and 0 changed of ")

    broken = call(agent, "puppet_apply", service="shop", version="broken")
    assert broken.statuscode == 1 and broken.data["exit_code"] == 1
    assert broken.data["summary"] == {}  # the older run's summary is never reported
    assert broken.statusmsg.startswith("puppet apply puppet exited 1 without a run summary: ")
    assert "release data for shop broken is not rendered" in broken.data["output"]


def test_puppet_that_cannot_run(tmp_path: Path) -> None:
    agent = make_agent(
        Deploy,
        {"plugin.deploy.root": str(tmp_path), "plugin.deploy.puppet": str(tmp_path / "nopuppet")},
    )
    reply = call(agent, "puppet_apply", service="shop", version="1.0")
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith(
        f"cannot run Puppet: cannot run {tmp_path / 'nopuppet'}: No such file or directory"
    )
