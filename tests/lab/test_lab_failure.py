"""A lab whose nodes cannot start: ``up`` fails naming the node and its log, every process it
had started is recorded, and ``down`` removes them all (real broker, Puppet, HAProxy)."""

from __future__ import annotations

import pytest

from mcollective_py.errors import LabError
from mcollective_py.lab import LabSpec, down, layout, load_estate, up
from mcollective_py.lab.broker import vhosts
from mcollective_py.lab.processes import running
from tests.conftest import lab_dir, ns_vhost

pytestmark = pytest.mark.integration


def test_a_failed_up_is_recorded_and_down_removes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = layout.server_cfg
    # an unknown key: mco-py server refuses the config and exits 3 at start
    monkeypatch.setattr(layout, "server_cfg", lambda *a: real(*a) + "no_such_option = 1\n")
    root = lab_dir("lab-failure")
    vhost = ns_vhost("mco-py-lab-failure")
    try:
        with pytest.raises(
            LabError, match=r"\Athe server of (lb1|web1)\.lab exited; .*server\.stderr"
        ) as err:
            up(LabSpec(root=root, vhost=vhost, nodes=1))
        assert f"mco-py lab down --state-dir {root} removes it" in str(err.value)
        assert "no_such_option" in str(err.value)
        estate = load_estate(root)
        assert estate is not None
        started = {p.role: p.pid for p in estate.processes if p.role in ("haproxy", "artifacts")}
        assert all(pid > 0 and running(pid) for pid in started.values()), started
        assert vhost in vhosts()
    finally:
        result = down(root)
    assert {(role, pid) for role, _, pid in result.stopped} >= set(
        (role, pid) for role, pid in started.items()
    )
    assert not any(running(pid) for pid in started.values())
    assert vhost not in vhosts()
    assert not root.exists()


def test_up_replaces_a_lab_whose_app_died() -> None:
    """A started app that is gone (killed) makes the lab incomplete: the next ``up`` takes it
    down and stands it up again, rather than reporting a lab that does not serve."""
    import os
    import signal

    from mcollective_py.lab import INITIAL_VERSION, child_env, install
    from mcollective_py.lab.processes import read_pid, wait_for

    root = lab_dir("lab-app-died")
    spec = LabSpec(root=root, vhost=ns_vhost("mco-py-lab-app-died"), nodes=1)
    try:
        first = up(spec).estate
        install(first, INITIAL_VERSION, child_env())
        app = next(p for p in first.processes if p.role == "app")
        pid = read_pid(app.pidfile)
        assert running(pid)
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: not running(pid), 10)
        again = up(spec)
        assert again.reused is False
        assert not running(first.processes[0].pid)  # the old HAProxy was stopped
        assert running(again.estate.processes[0].pid)
    finally:
        down(root)
    assert not root.exists()
