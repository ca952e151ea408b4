"""``puppet apply`` for a release, pure parts: the command line and the run summary.

:func:`apply_argv` builds the argument list (``--detailed-exitcodes``, the node's extra
arguments split like a shell would, our own ``--lastrunfile`` so the summary read is this
run's, ``--noop`` / ``--tags``); :func:`release_facts` the ``FACTER_*`` environment that
tells the manifests which release to apply (``app``, ``app_version``: ``app_release``
refuses Hiera data of any other version); :func:`parse_summary` reads
``last_run_summary.yaml``.

Exit codes of ``puppet apply --detailed-exitcodes``: 0 no changes, 2 changes, 4 failures,
6 changes and failures, 1 the run did not happen (e.g. the catalog did not compile; no
summary is written then).  With ``--noop`` pending changes still exit 0: they show as
``out_of_sync`` resources and ``noop`` events.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

EXIT_MEANING = {
    0: "no changes",
    2: "changes applied",
    4: "failures",
    6: "changes and failures",
    1: "run failed",
}


class SummaryError(ValueError):
    """The file is not a Puppet last run summary."""


@dataclass(frozen=True)
class PuppetSummary:
    """The counts of one run's ``last_run_summary.yaml``."""

    resources: Mapping[str, int]  # changed, failed, out_of_sync, total, ...
    events: Mapping[str, int]  # success, failure, noop, total
    changes: int
    time_total: float
    config_version: str | None
    puppet_version: str | None

    @property
    def changed(self) -> bool:
        return self.resources.get("changed", 0) > 0

    @property
    def failed(self) -> bool:
        return (
            self.resources.get("failed", 0) > 0
            or self.resources.get("failed_to_restart", 0) > 0
            or self.events.get("failure", 0) > 0
        )

    @property
    def pending(self) -> int:
        """Changes a noop run would have made (its ``noop`` events)."""
        return self.events.get("noop", 0)

    def as_reply(self) -> dict[str, Any]:
        return {
            "resources": dict(self.resources),
            "events": dict(self.events),
            "changes": self.changes,
            "pending": self.pending,
            "time": round(self.time_total, 3),
            "config_version": self.config_version,
            "puppet_version": self.puppet_version,
        }


def _counts(section: Any, where: str) -> dict[str, int]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise SummaryError(f"'{where}' is not a mapping")
    out = {}
    for key, value in section.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SummaryError(f"'{where}.{key}' is {value!r}, not a count")
        out[str(key)] = int(value)
    return out


def parse_summary(text: str) -> PuppetSummary:
    """Read ``last_run_summary.yaml``. Raises SummaryError for anything else."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SummaryError(f"not YAML: {exc}") from None
    if not isinstance(doc, dict) or "resources" not in doc:
        raise SummaryError("no 'resources' section: not a Puppet last run summary")
    time_section = doc.get("time") or {}
    version = doc.get("version") or {}
    total = time_section.get("total", 0.0) if isinstance(time_section, dict) else 0.0
    return PuppetSummary(
        resources=_counts(doc.get("resources"), "resources"),
        events=_counts(doc.get("events"), "events"),
        changes=int((doc.get("changes") or {}).get("total", 0)),
        time_total=float(total) if isinstance(total, (int, float)) else 0.0,
        config_version=str(version["config"])
        if isinstance(version, dict) and "config" in version
        else None,
        puppet_version=str(version["puppet"])
        if isinstance(version, dict) and "puppet" in version
        else None,
    )


def release_facts(
    service: str, version: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment that gives Puppet the release's facts (``FACTER_app`` ...)."""
    facts = {"app": service, "app_version": version, **(extra or {})}
    return {f"FACTER_{k}": str(v) for k, v in facts.items()}


def apply_argv(
    manifest: str,
    *,
    lastrunfile: str,
    puppet: str = "puppet",
    extra_args: str = "",
    noop: bool = False,
    tags: str | None = None,
) -> list[str]:
    """``puppet apply`` as an argument list. ``extra_args`` is the node's configuration
    (split like a shell would); request values (noop, tags) are single arguments."""
    argv = [puppet, "apply", "--detailed-exitcodes", "--color=false", *shlex.split(extra_args)]
    argv.append(f"--lastrunfile={lastrunfile}")
    if noop:
        argv.append("--noop")
    if tags:
        argv.append(f"--tags={tags}")
    argv.append(manifest)
    return argv
