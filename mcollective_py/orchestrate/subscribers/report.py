"""The run report: one self-contained HTML page made from a run's events.

:func:`render_report` is pure: events (a journal read back, or the live stream) and optional
load samples in, one HTML document out.  The page fetches nothing: CSS is inline, the
timeline is an inline SVG, there are no scripts, images, fonts or links to other pages.
Every text from the journal is escaped.

The timeline, one time axis for all lanes:

* one lane per load balancer: servers of the service's backend online over time (from the
  ``capacity`` events), with the capacity floor dashed;
* a load lane when samples are given: requests and errors per second;
* one lane per node: its time in the run, out of the pool (drain to online) in amber, the
  final state as the bar colour (green done, red failed, grey rolled back);
* markers across all lanes: each step's start, migrations, the pause until approval, failed
  gates and rollbacks.

Load samples are CSV, ``time,requests,errors`` with a header line; ``time`` is Unix seconds,
the other two are counts per sample interval (:func:`read_load_samples`).
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ...errors import UsageError
from ..events import DeployEvent, DeployHooks
from .junit import write_atomically
from .runview import RunView, fold, step_name

#: A load-sample file with more rows than this is refused.
MAX_SAMPLES = 200_000

WIDTH = 1100
LEFT = 170
RIGHT = 30
TOP = 58
LB_LANE = 70
LOAD_LANE = 90
NODE_LANE = 22
GAP = 14

COLORS = {
    "done": "#2e7d32",
    "failed": "#c62828",
    "rolled_back": "#9e9e9e",
    "running": "#1565c0",
    "out": "#f9a825",
    "step": "#283593",
    "migration": "#6a1b9a",
    "pause": "#eceff1",
    "requests": "#1565c0",
    "errors": "#c62828",
    "capacity": "#00695c",
    "floor": "#c62828",
}


@dataclass(frozen=True)
class LoadSample:
    """Traffic in one sample interval ending at ``time``."""

    time: float
    requests: float
    errors: float


def read_load_samples(text: str) -> tuple[LoadSample, ...]:
    """Parse ``time,requests,errors`` CSV (header required). UsageError naming the line."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip() for h in header[:3]] != ["time", "requests", "errors"]:
        raise UsageError(
            f"load samples: the first line must be the header time,requests,errors, got "
            f"{','.join(header or [])[:80]!r}"
        )
    out: list[LoadSample] = []
    for number, row in enumerate(reader, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(out) >= MAX_SAMPLES:
            raise UsageError(f"load samples: more than {MAX_SAMPLES} rows; sample less often")
        try:
            t, req, err = (float(x) for x in row[:3])
        except ValueError:
            raise UsageError(
                f"load samples line {number}: {','.join(row)[:80]!r} is not three numbers "
                "time,requests,errors"
            ) from None
        if not all(math.isfinite(v) for v in (t, req, err)) or req < 0 or err < 0:
            raise UsageError(f"load samples line {number}: values must be finite and >= 0")
        out.append(LoadSample(t, req, err))
    return tuple(sorted(out, key=lambda s: s.time))


def _num(value: object, default: float = 0.0) -> float:
    """A number from a journal's ``detail`` (hostile: anything else is ``default``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clock(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _nice_step(span: float) -> float:
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if span / s <= 12:
            return float(s)
    return 3600.0 * math.ceil(span / 3600 / 12)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class _Timeline:
    def __init__(self, t0: float, t1: float) -> None:
        self.t0 = t0
        self.t1 = max(t1, t0 + 1.0)
        self.plot_w = WIDTH - LEFT - RIGHT
        self.parts: list[str] = []

    def x(self, t: float) -> float:
        return round(LEFT + (t - self.t0) / (self.t1 - self.t0) * self.plot_w, 1)

    def add(self, svg: str) -> None:
        self.parts.append(svg)


def _online_steps(
    view: RunView, lb: str, capacity: Sequence[DeployEvent], total: int
) -> list[tuple[float, float]]:
    """``(time, servers online)`` for one load balancer's lane: each capacity reading is
    the truth at its time (the driver reads it before a drain), and between readings a
    node's ``drain`` takes one server out and its ``online`` puts it back, so the lane dips
    while a node is out of the pool.  Node states for another load balancer are skipped;
    a state without one counts for every load balancer.  Clamped to 0..total."""
    marks: list[tuple[float, int, float]] = [
        (e.time, 0, _num(e.detail.get("online"))) for e in capacity
    ]  # (time, 0 = reading / 1 = change, value)
    for run in view.nodes.values():
        for t, state, state_lb in run.states:
            if state_lb not in (None, lb):
                continue
            if state == "drain":
                marks.append((t, 1, -1.0))
            elif state == "online":
                marks.append((t, 1, 1.0))
    marks.sort(key=lambda m: (m[0], m[1]))
    steps: list[tuple[float, float]] = []
    online: float | None = None
    for t, kind, value in marks:
        if kind == 0:
            online = value
        elif online is not None:  # changes before the first reading have no base
            online = min(float(total), max(0.0, online + value))
        else:
            continue
        steps.append((t, online))
    return steps


def _timeline(view: RunView, samples: Sequence[LoadSample]) -> str:
    times = [e.time for e in view.events] + [s.time for s in samples]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    tl = _Timeline(t0, t1)
    y = TOP
    lanes: list[tuple[str, float, float]] = []  # label, top, height

    # capacity per load balancer
    lbs = sorted({str(e.lb) for e in view.capacity if e.lb})
    for lb in lbs:
        pts = [e for e in view.capacity if e.lb == lb]
        total = int(max(_num(e.detail.get("total")) for e in pts)) or 1
        lanes.append((f"{lb} online", y, LB_LANE))

        def ypos(v: float, top: float = y, tot: int = total) -> float:
            return round(top + LB_LANE - 6 - (v / tot) * (LB_LANE - 12), 1)

        path = [f"M{tl.x(t0)},{ypos(total)}"]
        for t, online in _online_steps(view, lb, pts, total):
            path.append(f"H{tl.x(t)}V{ypos(online)}")
        path.append(f"H{tl.x(tl.t1)}")
        tl.add(
            f'<path class="capacity" d="{"".join(path)}" fill="none" '
            f'stroke="{COLORS["capacity"]}" stroke-width="2.5"/>'
        )
        floors = [_num(e.detail.get("floor"), -1) for e in pts]
        floors = [f for f in floors if f >= 0]
        if floors:
            fy = ypos(floors[-1])
            tl.add(
                f'<line x1="{LEFT}" x2="{tl.x(tl.t1)}" y1="{fy}" y2="{fy}" '
                f'stroke="{COLORS["floor"]}" stroke-dasharray="5,4" stroke-width="1"/>'
                f'<text x="{tl.x(tl.t1) - 4}" y="{fy - 3}" class="small" text-anchor="end">'
                f"floor {floors[-1]:g}</text>"
            )
        tl.add(
            f'<text x="{LEFT - 6}" y="{ypos(total) + 4}" class="small" text-anchor="end">'
            f"{total}</text>"
            f'<text x="{LEFT - 6}" y="{ypos(0) + 4}" class="small" text-anchor="end">0</text>'
        )
        y += LB_LANE + GAP

    # load
    if samples:
        lanes.append(("requests / errors", y, LOAD_LANE))
        peak = max(max(s.requests for s in samples), 1.0)

        def ly(v: float, top: float = y) -> float:
            return round(top + LOAD_LANE - 6 - v / peak * (LOAD_LANE - 12), 1)

        for key in ("requests", "errors"):
            points = " ".join(f"{tl.x(s.time)},{ly(getattr(s, key))}" for s in samples)
            tl.add(
                f'<polyline class="{key}" points="{points}" fill="none" '
                f'stroke="{COLORS[key]}" stroke-width="{2 if key == "requests" else 2.5}"/>'
            )
        tl.add(
            f'<text x="{LEFT - 6}" y="{ly(peak) + 4}" class="small" text-anchor="end">'
            f"{peak:g}</text>"
        )
        y += LOAD_LANE + GAP

    # nodes
    for (step, node), run in sorted(view.nodes.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        lanes.append((f"{node} ({step_name(step)})", y, NODE_LANE))
        start = run.started if run.started is not None else t0
        end = run.ended if run.ended is not None else start
        color = COLORS.get(run.final or "running", COLORS["running"])
        tl.add(
            f'<rect class="node {_e(run.final or "running")}" x="{tl.x(start)}" y="{y + 3}" '
            f'width="{max(2.0, tl.x(end) - tl.x(start))}" height="{NODE_LANE - 6}" '
            f'fill="{color}" rx="3"><title>{_e(node)}: {_e(run.final or "unfinished")}</title></rect>'
        )
        out_at: float | None = None
        for t, state, _lb in run.states:
            if state == "drain" and out_at is None:
                out_at = t
            elif state == "online" and out_at is not None:
                tl.add(
                    f'<rect x="{tl.x(out_at)}" y="{y + 7}" width="{max(1.5, tl.x(t) - tl.x(out_at))}" '
                    f'height="{NODE_LANE - 14}" fill="{COLORS["out"]}"/>'
                )
                out_at = None
        y += NODE_LANE
    bottom = y + 4

    # lane labels and separators
    for label, top, height in lanes:
        tl.add(
            f'<text x="{LEFT - 10}" y="{top + height / 2 + 4}" class="lane" '
            f'text-anchor="end">{_e(label)}</text>'
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{top + height}" y2="{top + height}" '
            'stroke="#e0e0e0"/>'
        )

    # pauses (shaded), behind the markers
    pause_at: float | None = None
    for e in view.pauses:
        if e.kind == "paused":
            pause_at = e.time
        elif pause_at is not None:
            who = f"approved by {e.approver}" if e.approver else "resumed"
            tl.parts.insert(
                0,
                f'<rect class="pause" x="{tl.x(pause_at)}" y="{TOP - 8}" '
                f'width="{tl.x(e.time) - tl.x(pause_at)}" height="{bottom - TOP + 8}" '
                f'fill="{COLORS["pause"]}" opacity="0.7"/>'
                f'<text x="{(tl.x(pause_at) + tl.x(e.time)) / 2}" y="{bottom + 14}" '
                f'class="small" text-anchor="middle">paused; {_e(who)}</text>',
            )
            pause_at = None

    # markers
    def marker(t: float, color: str, label: str, cls: str, row: int) -> None:
        tl.add(
            f'<line class="{cls}" x1="{tl.x(t)}" x2="{tl.x(t)}" y1="{TOP - 10}" y2="{bottom}" '
            f'stroke="{color}" stroke-width="1.5" stroke-dasharray="{"" if cls != "rollback" else "3,3"}"/>',
        )
        if not label:  # a repeat (a gate's retries): the line only, so labels never pile up
            return
        near_end = tl.x(t) > WIDTH - RIGHT - 160
        tx, anchor = (tl.x(t) - 3, "end") if near_end else (tl.x(t) + 3, "start")
        tl.add(
            f'<text x="{tx}" y="{TOP - 14 - 11 * row}" class="marker" fill="{color}" '
            f'text-anchor="{anchor}">{_e(label)}</text>'
        )

    for s in view.steps.values():
        marker(s.started, COLORS["step"], step_name(s.step), "step", 0)
    for m in view.migrations:
        phase = m.detail.get("phase", "?")
        ok = m.outcome == "ok"
        marker(
            m.time,
            COLORS["migration"] if ok else COLORS["failed"],
            f"{phase} migration{'' if ok else ' FAILED'}",
            "migration",
            1,
        )
    for (_, node), run in view.nodes.items():
        failed = [g for g in run.gates if g.outcome == "failed"]
        for i, g in enumerate(failed):
            label = f"✕ gate failed: {node}" + (f" (×{len(failed)})" if len(failed) > 1 else "")
            marker(g.time, COLORS["failed"], label if i == 0 else "", "failure", 2)
    for r in view.rollbacks:
        marker(r.time, COLORS["failed"], f"rollback {r.node or 'run'}", "rollback", 3)

    # time axis
    span = tl.t1 - tl.t0
    every = _nice_step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        x = tl.x(tl.t0 + tick)
        tl.add(
            f'<line x1="{x}" x2="{x}" y1="{bottom}" y2="{bottom + 5}" stroke="#616161"/>'
            f'<text x="{x}" y="{bottom + 28}" class="small" text-anchor="middle">'
            f"+{_duration(tick)}</text>"
        )
        tick += every
    tl.add(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#616161"/>')
    height = bottom + 40
    return (
        f'<svg class="timeline" role="img" aria-label="run timeline" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}">'
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>'
        + "".join(tl.parts)
        + "</svg>"
    )


CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #212121; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px 0; }
.outcome { display: inline-block; padding: 2px 10px; border-radius: 10px; color: #fff; }
.outcome.done { background: #2e7d32; } .outcome.failed, .outcome.aborted { background: #c62828; }
.outcome.rolled_back { background: #6d4c41; } .outcome.unfinished { background: #757575; }
table { border-collapse: collapse; margin: 8px 0 20px 0; background: #fff; }
th, td { border: 1px solid #e0e0e0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eeeeee; }
td.failed, td.rolled_back { color: #c62828; font-weight: 600; } td.done, td.ok { color: #2e7d32; }
code { font: 12px ui-monospace, monospace; }
svg.timeline { background: #fff; border: 1px solid #e0e0e0; }
svg .small { font: 11px sans-serif; fill: #424242; }
svg .lane { font: 12px sans-serif; fill: #212121; }
svg .marker { font: bold 11px sans-serif; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 14px; height: 10px; margin-right: 4px; }
"""


def render_report(
    events: Iterable[DeployEvent], load_samples: Sequence[LoadSample] | None = None
) -> str:
    """The report page of one run (the first run id in ``events``)."""
    view = fold(events)
    samples = tuple(load_samples or ())
    outcome = view.outcome or "unfinished"
    title = f"deploy {view.service} {view.version} to {view.environment}"
    length = (view.ended or 0) - (view.started or 0)
    touched = len({node for _, node in view.nodes})
    facts = [
        ("run", view.run_id),
        ("service", view.service),
        ("version", view.version),
        ("environment", view.environment),
        ("artifact SHA-256", view.artifact_sha256 or "-"),
        ("caller", view.caller or "-"),
        ("approver", view.approver or "-"),
        ("started", _clock(view.started)),
        ("ended", _clock(view.ended)),
        ("duration", _duration(length)),
        ("nodes touched", f"{touched} of {len(view.planned_nodes) or touched}"),
        ("outcome", outcome),
    ]
    rows = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in facts)
    node_rows = []
    for (step, node), run in sorted(view.nodes.items()):
        gate_text = "; ".join(
            f"{g.detail.get('check', '?')}: {g.outcome}: {g.detail.get('output', '')}"
            for g in run.gates
        )
        final = run.final or "unfinished"
        node_rows.append(
            f"<tr><td>{_e(step_name(step))}</td><td>{_e(node)}</td>"
            f'<td class="{_e(final)}">{_e(final)}</td>'
            f"<td>{_e(f'{run.duration:.1f} s' if run.duration is not None else '-')}</td>"
            f"<td>{_e(gate_text or run.reason or '')}</td></tr>"
        )
    for node in view.not_deployed:
        node_rows.append(
            f"<tr><td>-</td><td>{_e(node)}</td><td>not deployed</td><td>-</td><td></td></tr>"
        )
    mig_rows = "".join(
        f"<tr><td>{_e(m.detail.get('phase', '?'))}</td><td>{_e(m.node or '-')}</td>"
        f'<td class="{_e(m.outcome or "")}">{_e(m.outcome or "-")}</td>'
        f"<td>{_e(f'{m.duration:.1f} s' if m.duration is not None else '-')}</td>"
        f"<td><code>{_e(m.detail.get('output', ''))}</code></td></tr>"
        for m in view.migrations
    )
    legend = (
        '<p class="legend">'
        f'<span><i style="background:{COLORS["capacity"]}"></i>servers online</span>'
        f'<span><i style="background:{COLORS["out"]}"></i>node out of the pool</span>'
        f'<span><i style="background:{COLORS["done"]}"></i>done</span>'
        f'<span><i style="background:{COLORS["failed"]}"></i>failed</span>'
        f'<span><i style="background:{COLORS["rolled_back"]}"></i>rolled back</span>'
        + (
            f'<span><i style="background:{COLORS["requests"]}"></i>requests</span>'
            f'<span><i style="background:{COLORS["errors"]}"></i>errors</span>'
            if samples
            else ""
        )
        + "</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{_e(title)} <span class="outcome {_e(outcome)}">{_e(outcome)}</span></h1>'
        f"<h2>Timeline</h2>{legend}{_timeline(view, samples)}"
        f"<h2>Run</h2><table>{rows}</table>"
        + (
            "<h2>Migrations</h2><table><tr><th>phase</th><th>node</th><th>outcome</th>"
            f"<th>time</th><th>output</th></tr>{mig_rows}</table>"
            if mig_rows
            else ""
        )
        + "<h2>Nodes</h2><table><tr><th>step</th><th>node</th><th>result</th><th>time</th>"
        f"<th>gates</th></tr>{''.join(node_rows)}</table>"
        "</body></html>\n"
    )


class ReportSubscriber(DeployHooks):
    """Collects the run's events; writes the report page at ``close``."""

    def __init__(self, path: str | Path, load_samples: Path | None = None) -> None:
        self.path = Path(path)
        self.load_samples = load_samples
        self.events: list[DeployEvent] = []

    def on_event(self, event: DeployEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        if not self.events:
            return
        samples: tuple[LoadSample, ...] = ()
        if self.load_samples is not None and self.load_samples.exists():
            samples = read_load_samples(self.load_samples.read_text(encoding="utf-8"))
        write_atomically(self.path, render_report(self.events, samples))
