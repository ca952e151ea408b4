"""``mco-py lab ...``: the local lab (``lab sim``: a simulated fleet)."""

from __future__ import annotations

from typing import Any

from . import lab_sim


def register(sub: Any) -> None:
    p = sub.add_parser("lab", help="local lab: simulated fleets", description=__doc__)
    lab_sub = p.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    lab_sim.register(lab_sub)
