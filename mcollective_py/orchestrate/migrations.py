"""Which database migrations a rollout runs, and when rolling back is still allowed. Pure.

The driver asks :func:`migration_plan` for a release's phases and calls the deploy agent's
``migrate`` action (inputs ``service``, ``version``, ``phase``) on one designated node:

* ``pre`` (expand, backward compatible): exactly once, before the first node is touched.
  A failed ``pre`` touches no node.
* ``post`` (contract): after the last node is online, and after ``soak`` seconds.

The node records each phase in the database's migrations table under a database lock, so a
resumed run or a second driver gets "already applied" instead of a second run.

:func:`rollback_allowed` answers the rollback question: before ``pre`` ran, the schema is
the old one and rolling back is always possible; after it ran, only to a release the catalog
declares compatible (``migrations.rollback_compatible``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..release.catalog import Service

Phase = Literal["pre", "post"]


@dataclass(frozen=True)
class MigrationStep:
    """One ``deploy migrate`` call of a rollout.

    ``before_nodes``: runs before the first node is touched (``pre``); otherwise after the
    last node is online, ``soak`` seconds later (``post``).  ``timeout`` is the catalog's
    limit for the command (the node enforces its own as well).
    """

    service: str
    version: str
    phase: Phase
    command: str
    timeout: int
    soak: float = 0.0

    @property
    def before_nodes(self) -> bool:
        return self.phase == "pre"

    def rpc_data(self) -> dict[str, str]:
        """The inputs of the deploy agent's ``migrate`` action."""
        return {"service": self.service, "version": self.version, "phase": self.phase}


def migration_plan(service: Service, version: str) -> tuple[MigrationStep, ...]:
    """The migration steps of deploying ``version`` of ``service``: (), (pre,), (post,) or
    (pre, post), in that order.  ``version`` is not checked here (the plan checks it)."""
    if service.migrations is None:
        return ()
    return tuple(
        MigrationStep(
            service=service.name,
            version=version,
            phase=p.phase,
            command=p.command,
            timeout=p.timeout,
            soak=p.soak,
        )
        for p in service.migrations.phases()
    )


def rollback_allowed(
    service: Service, version: str, previous: str | None, *, pre_ran: bool
) -> tuple[bool, str]:
    """May a run of ``version`` roll its nodes back to ``previous``?  (allowed, why).

    ``pre_ran``: the ``pre`` phase of ``version`` completed (or may have: a failed or
    interrupted ``pre`` can have changed the schema half-way, so pass True then too).
    """
    steps = migration_plan(service, version)
    compatible = (
        service.migrations.rollback_compatible.get(version, ()) if service.migrations else ()
    )
    return rollback_verdict(
        service.name,
        version,
        previous,
        has_pre=any(s.phase == "pre" for s in steps),
        pre_ran=pre_ran,
        compatible=compatible,
    )


def rollback_verdict(
    service: str,
    version: str,
    previous: str | None,
    *,
    has_pre: bool,
    pre_ran: bool,
    compatible: Sequence[str],
) -> tuple[bool, str]:
    """The rule of :func:`rollback_allowed` on plain values (the executor holds a plan, not
    the catalog): ``compatible`` is the catalog's ``rollback_compatible[version]``."""
    if previous is None:
        return False, f"no previous release of {service} to roll back to"
    if not has_pre or not pre_ran:
        return True, f"the schema is still the one {previous} runs on"
    if previous in compatible:
        return True, (
            f"the catalog declares {previous} compatible with the schema of {version} "
            f"(services.{service}.migrations.rollback_compatible)"
        )
    return False, (
        f"the pre migration of {service} {version} ran and the catalog does not declare "
        f"{previous} compatible with its schema; roll forward, or add "
        f'services.{service}.migrations.rollback_compatible: {{"{version}": ["{previous}"]}} '
        "once that is known to be true"
    )
