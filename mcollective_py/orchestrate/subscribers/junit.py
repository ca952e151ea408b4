"""JUnit XML of a run, for Jenkins' JUnit plugin: one test case per node per step.

* ``<testsuites>`` holds one ``<testsuite>`` per step (``canary``, ``step 1``, ...), one for
  the migrations when the run had any, and one ``not deployed`` for planned nodes no step
  reached.
* A test case is named after the node; its ``classname`` is
  ``deploy.<service>.<environment>.<step>`` (Jenkins shows ``deploy.<service>.<environment>``
  as the package).  ``time`` is the node's time in that step.
* A node that failed or was rolled back is a ``<failure>`` whose message is the failed gate
  and whose text is every gate's output; a node no step reached is ``<skipped>``.
* Suite ``timestamp`` is ISO 8601 without a zone (the schema's ``xs:dateTime``, UTC).

The format follows the schema in ``tests/golden/orchestrate/junit.xsd`` (the attributes and
elements Jenkins' JUnit plugin reads).
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ..events import DeployEvent, DeployHooks
from .runview import NodeRun, RunView, fold, step_name


def _ts(t: float | None) -> str:
    return datetime.fromtimestamp(t or 0, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _secs(x: float | None) -> str:
    return f"{max(0.0, x or 0.0):.3f}"


def _node_time(n: NodeRun) -> float:
    if n.duration is not None:
        return n.duration
    if n.started is not None and n.ended is not None:
        return n.ended - n.started
    return 0.0


def _suite(parent: ET.Element, name: str, view: RunView, started: float | None) -> ET.Element:
    return ET.SubElement(
        parent,
        "testsuite",
        {
            "name": f"deploy {view.service} {view.version} {view.environment}: {name}",
            "timestamp": _ts(started),
            "hostname": view.environment or "unknown",
        },
    )


def _close_suite(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("time", _secs(sum(float(c.get("time", "0")) for c in cases)))


def render_junit(events: Iterable[DeployEvent]) -> str:
    """The JUnit XML document (text, with an XML declaration) of a run's events."""
    view = fold(events)
    root = ET.Element("testsuites", {"name": f"deploy {view.run_id}"})
    props_of = {
        "run_id": view.run_id,
        "service": view.service,
        "environment": view.environment,
        "version": view.version,
        "artifact_sha256": view.artifact_sha256 or "",
        "caller": view.caller or "",
        "approver": view.approver or "",
        "outcome": view.outcome or "unfinished",
    }
    base = f"deploy.{view.service}.{view.environment}"
    if view.migrations:
        suite = _suite(root, "migrations", view, view.migrations[0].time)
        _properties(suite, props_of)
        for m in view.migrations:
            phase = str(m.detail.get("phase", "?"))
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "name": f"{phase} migration",
                    "classname": f"{base}.migrations",
                    "time": _secs(m.duration),
                },
            )
            output = str(m.detail.get("output", ""))
            if m.outcome not in ("ok", "skipped", "already_applied"):
                failure = ET.SubElement(
                    case,
                    "failure",
                    {"message": f"{phase} migration {m.outcome}", "type": "migration"},
                )
                failure.text = output
            elif output:
                ET.SubElement(case, "system-out").text = output
        _close_suite(suite)
    for number in sorted(view.steps):
        step = view.steps[number]
        suite = _suite(root, step_name(number), view, step.started)
        _properties(suite, props_of)
        names = list(step.nodes) + [
            n for (s, n) in view.nodes if s == number and n not in step.nodes
        ]
        for node in names:
            run = view.nodes.get((number, node))
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "name": node,
                    "classname": f"{base}.{step_name(number).replace(' ', '')}",
                    "time": _secs(_node_time(run) if run else 0.0),
                },
            )
            if run is None:
                ET.SubElement(case, "skipped", {"message": "no event for this node in the step"})
                continue
            lines = [
                f"{_ts(t)} {state}" + (f" ({lb})" if lb else "") for t, state, lb in run.states
            ]
            lines += [
                f"gate {g.detail.get('check', '?')}: {g.outcome}: {g.detail.get('output', '')}"
                for g in run.gates
            ]
            if run.failed:
                bad = [g for g in run.gates if g.outcome == "failed"]
                message = (
                    f"gate {bad[0].detail.get('check', '?')} failed on {node}"
                    if bad
                    else f"{node} ended {run.final}: {run.reason or 'see the run journal'}"
                )
                failure = ET.SubElement(case, "failure", {"message": message, "type": "gate"})
                failure.text = "\n".join(str(g.detail.get("output", "")) for g in bad) or (
                    run.reason or ""
                )
            elif run.final is None:
                ET.SubElement(
                    case, "skipped", {"message": f"unfinished: the run ended ({view.outcome})"}
                )
            ET.SubElement(case, "system-out").text = "\n".join(lines)
        _close_suite(suite)
    missing = view.not_deployed
    if missing:
        suite = _suite(root, "not deployed", view, view.ended)
        _properties(suite, props_of)
        for node in missing:
            case = ET.SubElement(
                suite,
                "testcase",
                {"name": node, "classname": f"{base}.not_deployed", "time": "0.000"},
            )
            ET.SubElement(
                case,
                "skipped",
                {"message": f"not deployed: the run ended {view.outcome or 'early'} first"},
            )
        _close_suite(suite)
    suites = root.findall("testsuite")
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    root.set("time", _secs(sum(float(s.get("time", "0")) for s in suites)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _properties(suite: ET.Element, props: dict[str, str]) -> None:
    element = ET.SubElement(suite, "properties")
    for k, v in props.items():
        ET.SubElement(element, "property", {"name": k, "value": v})


def write_atomically(path: Path, text: str) -> None:
    """``text`` to ``path`` through a temporary file and a rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JUnitSubscriber(DeployHooks):
    """Collects the run's events; writes the JUnit file at ``close``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.events: list[DeployEvent] = []

    def on_event(self, event: DeployEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        if self.events:
            write_atomically(self.path, render_junit(self.events))
