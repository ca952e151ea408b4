"""The subscribers against real peers: a carbon-cache (read back from its whisper files), a
running Nagios 4 (its status file shows the downtime), the JUnit schema, and headless
Chromium rendering the report (the screenshot's pixels show the timeline).

A golden journal is replayed as a live run: its events, moved to end now, go through a
``HookFanout`` of every subscriber ``build_subscribers`` makes from the settings.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import xmlschema

from mcollective_py.orchestrate.events import HookFanout
from mcollective_py.orchestrate.subscribers import (
    GraphiteSubscriber,
    NagiosSubscriber,
    SubscriberSettings,
    build_subscribers,
    read_load_samples,
    render_report,
)
from mcollective_py.orchestrate.subscribers.graphite import metric_lines
from tests.conftest import lab_dir
from tests.orchestrate.subscribers_fixtures import (
    GOLDEN,
    JOURNALS,
    Carbon,
    Nagios,
    chromium,
    count_pixels,
    journal,
    png_pixels,
    shifted,
)

pytestmark = pytest.mark.integration

NODES = [f"web{i}.staging" for i in range(1, 5)]
RUN = "20261204T140500Z-shop-7f3a"


@pytest.fixture
def carbon(tmp_path: Path) -> Iterator[Carbon]:
    c = Carbon(tmp_path / "carbon")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def nagios(request: pytest.FixtureRequest) -> Iterator[Nagios]:
    """Nagios drops root for the nagios user, who cannot enter pytest's private tmp dirs:
    its files go into a lab dir (0755), removed afterwards."""
    root = lab_dir(f"nagios-{request.node.name[:40]}")
    n = Nagios(root, NODES, "shop")
    try:
        yield n
    finally:
        n.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_carbon_receives_the_metrics(carbon: Carbon) -> None:
    now = time.time()
    events = shifted(journal("gate_fails_in_step2"), end=now)
    sub = GraphiteSubscriber(carbon.host, carbon.port, prefix="i13.deploys")
    for e in events:
        sub.on_event(e)
    sub.close()
    since = events[0].time
    base = "i13.deploys.shop.staging."
    start = carbon.wait_for(base + "events.deploy_start", since)
    assert start == [(int(events[0].time), 1.0)]
    assert carbon.wait_for(base + "events.deploy_end", since) == [(int(events[-1].time), 1.0)]
    done = carbon.wait_for(base + "nodes.done", since, count=3)
    assert [v for _, v in done] == [1.0, 2.0, 3.0]
    assert [v for _, v in carbon.wait_for(base + "nodes.failed", since)] == [1.0]
    step_end = next(e for e in events if e.kind == "step_end" and e.step == 1)
    assert carbon.wait_for(base + "step.step_1.duration", since) == [
        (int(step_end.time), pytest.approx(step_end.duration))
    ]
    drains = carbon.wait_for(base + "node.web1_staging.drain_seconds", since)
    assert {v for _, v in drains} == {2.5}
    assert carbon.wait_for(base + "run.outcome.failed", since)[0][1] == 1.0
    counts: dict[str, int] = {}
    expected = sum(len(metric_lines(e, "i13.deploys", counts)) for e in events)
    assert sub.sent == expected > 0
    assert sub.dropped == 0 and not sub.pending


def test_nagios_verifies_its_config_and_shows_the_downtime(nagios: Nagios) -> None:
    assert nagios.verify.returncode == 0, nagios.verify.stdout
    assert "Total Errors:   0" in nagios.verify.stdout
    events = shifted(journal("gate_fails_in_step2"), end=time.time())
    sub = NagiosSubscriber(nagios.command_file, service="shop", downtime=600)
    first_online = next(
        i
        for i, e in enumerate(events)
        if e.kind == "node_state" and e.node == "web1.staging" and e.state == "online"
    )
    for e in events[:first_online]:
        sub.on_event(e)
    comment = f"mco-py deploy {RUN}: web1.staging out of the pool"

    def web1_down() -> bool:
        return {
            (d["type"], d.get("service_description"))
            for d in nagios.downtimes()
            if d.get("comment") == comment
        } == {
            ("hostdowntime", None),
            ("servicedowntime", "shop"),
        }

    nagios.wait_for(web1_down, "web1's host and service downtime in status.dat")
    down = next(d for d in nagios.downtimes() if d["type"] == "hostdowntime")
    assert (down["host_name"], down["fixed"], down["duration"], down["author"]) == (
        "web1.staging",
        "1",
        "600",
        "mco-py",
    )
    for e in events[first_online:]:
        sub.on_event(e)
    sub.close()
    nagios.wait_for(lambda: nagios.downtimes() == [], "every downtime of the run removed")
    log = "\n".join(nagios.log_lines())
    for node in NODES:
        assert f"EXTERNAL COMMAND: SCHEDULE_HOST_DOWNTIME;{node};" in log
        assert f"EXTERNAL COMMAND: SCHEDULE_SVC_DOWNTIME;{node};shop;" in log
    assert log.count("EXTERNAL COMMAND: DEL_DOWNTIME_BY_START_TIME_COMMENT;") == 4


def test_a_deploy_run_produces_every_record(tmp_path: Path, carbon: Carbon, nagios: Nagios) -> None:
    """One replayed run through every subscriber the settings turn on."""
    settings = SubscriberSettings.from_plugin(
        {
            "jsonlog.path": str(tmp_path / "out" / "deploys.jsonl"),
            "graphite.address": f"{carbon.host}:{carbon.port}",
            "graphite.prefix": "i13",
            "nagios.command_file": str(nagios.command_file),
            "nagios.service": "shop",
            "junit.path": str(tmp_path / "out" / "junit-{run_id}.xml"),
            "report.path": str(tmp_path / "out" / "{run_id}.html"),
            "report.load_samples": str(JOURNALS / "gate_fails_in_step2.load.csv"),
        }
    )
    events = shifted(journal("gate_fails_in_step2"), end=time.time())
    fan = HookFanout(build_subscribers(settings, run_id=RUN))
    for e in events:
        fan.on_event(e)
    fan.close()
    assert fan.errors == []
    lines = (tmp_path / "out" / "deploys.jsonl").read_text().splitlines()
    assert len(lines) == len(events)
    assert all(json.loads(line)["correlation_id"] == RUN for line in lines)
    assert carbon.wait_for("i13.shop.staging.events.deploy_start", events[0].time)
    nagios.wait_for(
        lambda: "DEL_DOWNTIME_BY_START_TIME_COMMENT" in "\n".join(nagios.log_lines()),
        "Nagios to take the commands",
    )
    xmlschema.XMLSchema(GOLDEN / "junit.xsd").validate(str(tmp_path / "out" / f"junit-{RUN}.xml"))
    assert 'class="errors"' in (tmp_path / "out" / f"{RUN}.html").read_text()


def test_the_report_renders_in_chromium_with_a_visible_timeline(tmp_path: Path) -> None:
    samples = read_load_samples((JOURNALS / "gate_fails_in_step2.load.csv").read_text())
    page = tmp_path / "report.html"
    page.write_text(render_report(journal("gate_fails_in_step2"), samples))
    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<svg class="timeline"' in dom.stdout
    assert dom.stdout.count('class="capacity"') == 2
    shot = tmp_path / "report.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1200,1100", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1100)
    timeline = rows[150:700]  # the timeline sits under the title and the legend
    assert count_pixels(timeline, (0x00, 0x69, 0x5C)) > 500  # capacity lines (teal)
    assert count_pixels(timeline, (0xF9, 0xA8, 0x25)) > 200  # nodes out of the pool (amber)
    assert count_pixels(timeline, (0x2E, 0x7D, 0x32)) > 200  # nodes done (green)
    assert count_pixels(timeline, (0x15, 0x65, 0xC0)) > 200  # requests (blue)
    assert count_pixels(timeline, (0xC6, 0x28, 0x28)) > 100  # errors, failure marker (red)
