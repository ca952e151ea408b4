"""The acceptance test of the README's first command (``scripts/demo`` runs ``mco-py lab
demo``): the demo end to end with the real ``mco-py deploy``, on a lab of its own (4 nodes, the
demo's defaults) in the loopback block of ``test_lab.PREFIX``.  In a file of its own, so the
parallel workers can run it beside ``test_lab.py``'s module lab.  About 40 s on an idle
2-core machine; its budget is 240 s.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from mcollective_py.lab import child_env
from mcollective_py.lab.broker import vhosts
from tests.conftest import lab_dir, ns_vhost, run_mco_py
from tests.lab.test_lab import PREFIX

pytestmark = pytest.mark.integration


def test_the_demo_with_the_deploy_driver() -> None:
    """The acceptance test: ``mco-py lab demo`` (what the README's first command runs) with
    the real driver: 2.0.0 rolled with no failed request and its ``pre`` migration run once
    through the agents, the broken 3.0.0 rolled back at its canary, an HTML run report per
    run, and nothing of the lab left afterwards."""
    env = child_env()
    root = lab_dir("lab-demo")
    reports = lab_dir("lab-demo-reports")
    vhost = ns_vhost("mco-py-lab-demo")
    # fmt: off
    r = run_mco_py(
        env, "lab", "demo", "--state-dir", str(root), "--vhost", vhost,
        "--report-dir", str(reports), "--prefix", PREFIX, timeout=240,
    )
    # fmt: on
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    out = r.stdout
    assert "failed requests: 0\n" in out
    assert re.search(r"^  2\.0\.0 +\d+ requests, 0 failed", out, re.M), out[-2000:]
    assert re.search(r"^deploy 2\.0\.0: done in ", out, re.M)
    assert re.search(r"^deploy 3\.0\.0: failed and rolled back \(web1\.lab\) in ", out, re.M)
    assert "result: as expected" in out
    assert re.findall(r"^  web\d\.lab +(\S+)$", out, re.M) == ["2.0.0"] * 4
    html = sorted(reports.glob("*.html"))
    assert len(html) == 2, out[-2000:]
    for page in html:
        assert f"HTML run report: {page}" in out
        assert "<svg" in page.read_text()
    journals = sorted(reports.glob("*-journal.jsonl"))
    assert len(journals) == 2
    migrations = [
        (rec["version"], rec["outcome"], (rec.get("detail") or {}).get("phase"))
        for j in journals
        for rec in map(json.loads, j.read_text().splitlines())
        if rec.get("kind") == "migration"
    ]
    assert sorted(migrations) == sorted(
        [(v, o, "pre") for v in ("2.0.0", "3.0.0") for o in ("started", "ok")]
    ), migrations
    assert not root.exists()
    assert vhost not in vhosts()
    shutil.rmtree(reports)  # the demo keeps them on purpose; the test does not
