"""The lab's part of RabbitMQ: one vhost of its own on the running broker.

The lab never starts, stops or reconfigures the broker (``scripts/setup`` starts it when it is
not running); it creates its vhost, gives the broker account permissions on it and declares
MCollective's two exchanges there, all with one ``rabbitmqctl import_definitions``, and on
``down`` deletes that vhost (which removes the permissions and exchanges with it).
"""

from __future__ import annotations

import json
import shutil
import subprocess

from ..errors import LabError

EXCHANGES = (("mcollective_broadcast", "topic"), ("mcollective_directed", "direct"))


def definitions(vhost: str, user: str) -> dict[str, object]:
    """The definitions document of the lab's vhost (pure)."""
    return {
        "vhosts": [{"name": vhost}],
        "permissions": [
            {"user": user, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
        ],
        "exchanges": [
            {
                "name": name,
                "vhost": vhost,
                "type": kind,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name, kind in EXCHANGES
        ],
    }


def _ctl(*args: str, stdin: str | None = None, timeout: float = 60) -> str:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        raise LabError("rabbitmqctl is not installed: run scripts/setup (Debian rabbitmq-server)")
    try:
        r = subprocess.run(
            [exe, "-q", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"rabbitmqctl {' '.join(args)} took more than {timeout:g} s") from None
    if r.returncode != 0:
        raise LabError(
            f"rabbitmqctl {' '.join(args)} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}; "
            "is RabbitMQ running? (scripts/setup starts it)"
        )
    return r.stdout


def vhosts() -> list[str]:
    return [line.strip() for line in _ctl("list_vhosts", "name").splitlines() if line.strip()]


def exchanges(vhost: str) -> list[str]:
    return [
        line.split()[0]
        for line in _ctl("list_exchanges", "-p", vhost, "name").splitlines()
        if line.strip()
    ]


def create(vhost: str, user: str) -> None:
    """The vhost with permissions for ``user`` and MCollective's exchanges (idempotent)."""
    _ctl("import_definitions", "--format", "json", stdin=json.dumps(definitions(vhost, user)))
    from .processes import wait_for

    wanted = {name for name, _ in EXCHANGES}
    if not wait_for(lambda: wanted <= set(exchanges(vhost)), 30, poll=0.25):
        raise LabError(f"RabbitMQ did not create the exchanges of vhost {vhost} within 30 s")


def delete(vhost: str) -> bool:
    """Delete the vhost if it exists; returns whether it did."""
    if vhost not in vhosts():
        return False
    _ctl("delete_vhost", vhost)
    return True
