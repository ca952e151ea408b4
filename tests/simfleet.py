"""A simulated fleet (``mco-py lab sim``) in its own lab dir and vhost, for the tests and the
benchmarks alike: the configs, the clients' environment, the child process and its end."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mcollective_py.message import Request, new_requestid
from mcollective_py.security.base import SecurityProvider
from tests.conftest import (
    MCO_PY,
    REPO,
    client_cfg_text,
    client_env,
    ensure_vhost,
    lab_dir,
    ns_vhost,
)


def sim_workspace(
    name: str, vhost_name: str, pythonpath: bool = True
) -> tuple[Path, dict[str, str]]:
    """A fresh lab dir ``name`` with ``client.cfg`` (identity ``mco-lab-client``) and
    ``server.cfg`` (``sim-host``) on the psk vhost ``vhost_name`` of this test namespace
    (created with the MCollective exchanges); returns the dir and the clients' environment
    (:func:`tests.conftest.client_env`)."""
    root = lab_dir(name)
    vhost = ns_vhost(vhost_name)
    ensure_vhost(vhost)
    (root / "client.cfg").write_text(client_cfg_text(vhost))
    (root / "server.cfg").write_text(client_cfg_text(vhost).replace("mco-lab-client", "sim-host"))
    return root, client_env(root / "client.cfg", pythonpath)


class Sim:
    """``mco-py lab sim --nodes N -c server.cfg ARGS`` in the foreground of a child process,
    its output in ``out``.  The constructor returns once the simulator says ``ready`` (and
    ``settle`` seconds more, for the broker to take the bindings); if it exits or is not
    ready within ``ready_timeout`` s it is stopped and :class:`RuntimeError` carries its
    output.  ``mco_py`` is the command that runs mco-py (``python -m mcollective_py``
    unless said).  :meth:`stop` ends it with SIGTERM (SIGKILL after ``timeout``)."""

    def __init__(
        self,
        server_cfg: Path,
        nodes: int,
        env: dict[str, str],
        *args: str,
        out: Path | None = None,
        ready_timeout: float = 120,
        settle: float = 0,
        mco_py: Sequence[str] = tuple(MCO_PY),
    ) -> None:
        self.out = out or server_cfg.parent / "sim.out"
        cmd = [*mco_py, "lab", "sim", "--nodes", str(nodes), "-c", str(server_cfg), *args]
        with open(self.out, "w") as fh:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + ready_timeout
        while "ready" not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"lab sim --nodes {nodes} not ready within {ready_timeout:.0f} s:\n{self.output()}"
                )
            time.sleep(0.2)
        time.sleep(settle)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.out.read_text()

    def stop(self, timeout: float = 60) -> int:
        """The simulator's exit status (-9 when it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return self.proc.returncode

    def stop_cleanly(self, timeout: float = 30) -> None:
        """Stop it and assert it ended as an operator expects: exit 0, ``lab sim: stopped``."""
        rc = self.stop(timeout)
        text = self.output()
        assert rc == 0 and text.endswith("lab sim: stopped\n"), f"exit {rc}:\n{text}"


def encoded_request(
    sec: SecurityProvider,
    agent: str,
    body: object,
    filter_wire: dict[str, Any],
    *,
    senderid: str = "mco-lab-client",
    callerid: str | None = None,
    ttl: int = 60,
) -> bytes:
    """A request as a client puts it on the wire (collective ``mcollective``, a new request
    id, sent now), signed/encoded by ``sec``; ``callerid`` defaults to ``sec``'s own."""
    return sec.encode_request(
        Request(
            agent=agent,
            collective="mcollective",
            body=body,
            senderid=senderid,
            requestid=new_requestid(),
            callerid=sec.callerid if callerid is None else callerid,
            ttl=ttl,
            msgtime=int(time.time()),
            filter=filter_wire,
        )
    )
