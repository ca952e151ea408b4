"""Subscribers on a deploy run's events, each on by configuration.

=============  ======================================================  ==================
subscriber     what it writes                                          module
=============  ======================================================  ==================
JSON lines     one line per event, run id as ``correlation_id``        :mod:`.jsonlog`
Graphite       carbon plaintext metrics and start/end annotations      :mod:`.graphite`
Nagios         downtime per node while out of the pool                 :mod:`.nagios`
JUnit          one test case per node per step, for Jenkins            :mod:`.junit`
run report     one self-contained HTML page with a timeline            :mod:`.report`
=============  ======================================================  ==================

Configuration: ``plugin.deploy_events.<key>`` in the client config (``Config.plugin
("deploy_events")`` gives the mapping :meth:`SubscriberSettings.from_plugin` reads).  A
subscriber is on when its main key is set.  ``{run_id}`` in a path is replaced by the run id.

=================================  =======================================  ==============
key                                meaning                                  default
=================================  =======================================  ==============
``jsonlog.path``                   JSON lines file (appended)               off
``graphite.address``               carbon plaintext receiver ``HOST:PORT``  off
``graphite.prefix``                first metric path components             ``deploys``
``nagios.command_file``            Nagios' external command FIFO            off
``nagios.service``                 Nagios service name to put in downtime   none (hosts only)
``nagios.downtime``                seconds of each fixed downtime           ``1800``
``nagios.author``                  downtime author                          ``mco-py``
``junit.path``                     JUnit XML file (written at the end)      off
``report.path``                    HTML run report (written at the end)     off
``report.load_samples``            ``time,requests,errors`` CSV to draw     none
=================================  =======================================  ==============

See docs/reports.md for examples.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from ..events import DeployHooks
from .graphite import GraphiteSubscriber
from .jsonlog import JsonLogSubscriber
from .junit import JUnitSubscriber, render_junit
from .nagios import NagiosSubscriber
from .records import JournalEvents, events_from_journal
from .report import LoadSample, ReportSubscriber, read_load_samples, render_report

__all__ = [
    "GraphiteSubscriber",
    "JournalEvents",
    "JsonLogSubscriber",
    "JUnitSubscriber",
    "LoadSample",
    "NagiosSubscriber",
    "ReportSubscriber",
    "SubscriberSettings",
    "build_subscribers",
    "events_from_journal",
    "read_load_samples",
    "render_junit",
    "render_report",
]

KEYS = (
    "jsonlog.path",
    "graphite.address",
    "graphite.prefix",
    "nagios.command_file",
    "nagios.service",
    "nagios.downtime",
    "nagios.author",
    "junit.path",
    "report.path",
    "report.load_samples",
)
_PREFIX = re.compile(r"\A[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z")


@dataclass(frozen=True)
class SubscriberSettings:
    """Which subscribers are on, and their settings (None: off)."""

    jsonlog_path: str | None = None
    graphite_address: tuple[str, int] | None = None
    graphite_prefix: str = "deploys"
    nagios_command_file: str | None = None
    nagios_service: str | None = None
    nagios_downtime: int = 1800
    nagios_author: str = "mco-py"
    junit_path: str | None = None
    report_path: str | None = None
    report_load_samples: str | None = None

    @classmethod
    def from_plugin(cls, values: Mapping[str, str]) -> SubscriberSettings:
        """From ``plugin.deploy_events.*`` (keys without the prefix). ConfigError names
        every bad key at once."""
        problems: list[str] = []
        unknown = sorted(k for k in values if k not in KEYS)
        for k in unknown:
            problems.append(f"plugin.deploy_events.{k}: unknown key; known keys: {', '.join(KEYS)}")

        def text(key: str) -> str | None:
            v = values.get(key, "").strip()
            return v or None

        kw: dict[str, object] = {
            "jsonlog_path": text("jsonlog.path"),
            "nagios_command_file": text("nagios.command_file"),
            "nagios_service": text("nagios.service"),
            "junit_path": text("junit.path"),
            "report_path": text("report.path"),
            "report_load_samples": text("report.load_samples"),
        }
        address = text("graphite.address")
        if address is not None:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                problems.append(
                    f"plugin.deploy_events.graphite.address = {address!r}: use HOST:PORT, "
                    "e.g. 127.0.0.1:2003"
                )
            else:
                kw["graphite_address"] = (host.strip("[]"), int(port))
        prefix = text("graphite.prefix")
        if prefix is not None:
            if not _PREFIX.match(prefix):
                problems.append(
                    f"plugin.deploy_events.graphite.prefix = {prefix!r}: use dot-separated "
                    "letters, digits, _ and -, e.g. deploys or ops.deploys"
                )
            else:
                kw["graphite_prefix"] = prefix
        downtime = text("nagios.downtime")
        if downtime is not None:
            if not downtime.isdigit() or not 60 <= int(downtime) <= 7 * 86400:
                problems.append(
                    f"plugin.deploy_events.nagios.downtime = {downtime!r}: use whole seconds "
                    "from 60 to 604800"
                )
            else:
                kw["nagios_downtime"] = int(downtime)
        author = text("nagios.author")
        if author is not None:
            kw["nagios_author"] = author
        for key, name in (("nagios.service", "nagios_service"), ("nagios.author", "nagios_author")):
            v = kw.get(name)
            if isinstance(v, str) and (";" in v or any(ord(c) < 32 for c in v)):
                problems.append(f"plugin.deploy_events.{key} = {v!r}: no ';' or control characters")
        if problems:
            raise ConfigError("bad deploy event settings:\n  " + "\n  ".join(problems))
        return cls(**kw)  # type: ignore[arg-type]


def _path(template: str, run_id: str | None) -> Path:
    return Path(template if run_id is None else template.replace("{run_id}", run_id))


def build_subscribers(
    settings: SubscriberSettings, *, run_id: str | None = None
) -> list[DeployHooks]:
    """The subscribers ``settings`` turns on, in a fixed order (JSON lines, Graphite,
    Nagios, JUnit, report); ``{run_id}`` in paths becomes ``run_id`` when given.  Wrap them
    in a ``HookFanout``."""
    out: list[DeployHooks] = []
    if settings.jsonlog_path:
        out.append(JsonLogSubscriber(_path(settings.jsonlog_path, run_id)))
    if settings.graphite_address:
        host, port = settings.graphite_address
        out.append(GraphiteSubscriber(host, port, prefix=settings.graphite_prefix))
    if settings.nagios_command_file:
        out.append(
            NagiosSubscriber(
                settings.nagios_command_file,
                service=settings.nagios_service,
                downtime=settings.nagios_downtime,
                author=settings.nagios_author,
            )
        )
    if settings.junit_path:
        out.append(JUnitSubscriber(_path(settings.junit_path, run_id)))
    if settings.report_path:
        samples = (
            _path(settings.report_load_samples, run_id) if settings.report_load_samples else None
        )
        out.append(ReportSubscriber(_path(settings.report_path, run_id), samples))
    return out
