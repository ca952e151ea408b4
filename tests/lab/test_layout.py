"""The lab's decisions and files, pure: the plan of an estate and the text of its files.

Golden files: ``tests/golden/lab/<case>.txt``, one file per rendered artifact of a fixed
two-node estate; ``REGEN=1`` rewrites them (review the diff).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mcollective_py.errors import ConfigError, UsageError
from mcollective_py.lab import layout
from mcollective_py.lab.estate import Estate, LabSpec, Ports, load_estate, plan
from mcollective_py.release.catalog import parse_catalog

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "lab"
SUMS = {"1.0.0": "a" * 64, "2.0.0": "b" * 64, "3.0.0": "c" * 64}


def estate(ruby_nodes: int = 0) -> Estate:
    spec = LabSpec(
        root=Path("/tmp/golden-lab"), vhost="/golden-lab", nodes=2, ruby_nodes=ruby_nodes
    )
    return plan(spec, Ports(frontend=8080, artifacts=8000, apps=(9001, 9002)))


CASES: dict[str, Callable[[Estate], str]] = {
    "catalog.yaml": lambda e: layout.catalog_text(e, SUMS),
    "client.cfg": layout.client_cfg,
    "server-web1.cfg": lambda e: layout.server_cfg(e, e.node("web1.lab"), "/venv/bin/python"),
    "server-lb1.cfg": lambda e: layout.server_cfg(e, e.node("lb1.lab"), "/venv/bin/python"),
    "hiera-lb1.yaml": layout.lb_hiera,
    "facts-web2.yaml": lambda e: layout.facts_yaml(e.node("web2.lab")),
    "classes-lb1.txt": lambda e: layout.classes_txt(e.node("lb1.lab")),
    "lab.json": lambda e: json.dumps(e.to_json(), indent=2, sort_keys=True) + "\n",
}
RUBY_CASES: dict[str, Callable[[Estate], str]] = {
    "ruby-server-web2.cfg": lambda e: layout.server_cfg(e, e.node("web2.lab"), "/venv/bin/python"),
}


@pytest.mark.parametrize("case", sorted(CASES) + sorted(RUBY_CASES))
def test_golden(case: str) -> None:
    got = CASES[case](estate()) if case in CASES else RUBY_CASES[case](estate(ruby_nodes=1))
    path = GOLDEN / case
    if os.environ.get("REGEN"):
        path.write_text(got)
    assert got == path.read_text()


def test_plan_addresses_identities_and_processes() -> None:
    e = estate()
    assert [(n.identity, n.role, n.address, n.app_port) for n in e.nodes] == [
        ("lb1.lab", "lb", "127.0.14.4", 0),
        ("web1.lab", "web", "127.0.14.11", 9001),
        ("web2.lab", "web", "127.0.14.12", 9002),
    ]
    assert [(p.role, p.identity, p.address, p.port) for p in e.processes] == [
        ("haproxy", "lb1.lab", "127.0.14.2", 8080),
        ("artifacts", "lab", "127.0.14.3", 8000),
        ("server", "lb1.lab", "127.0.14.4", 0),
        ("server", "web1.lab", "127.0.14.11", 0),
        ("app", "web1.lab", "127.0.14.11", 9001),
        ("server", "web2.lab", "127.0.14.12", 0),
        ("app", "web2.lab", "127.0.14.12", 9002),
    ]
    assert e.frontend_url == "http://127.0.14.2:8080"


def test_ruby_nodes_are_the_last_web_nodes() -> None:
    e = plan(LabSpec(root=Path("/tmp/x"), nodes=3, ruby_nodes=2), Ports(1, 2, (3, 4, 5)))
    assert [(n.identity, n.daemon) for n in e.web_nodes] == [
        ("web1.lab", "mco-py"),
        ("web2.lab", "mcollectived"),
        ("web3.lab", "mcollectived"),
    ]
    assert [(p.role, p.identity) for p in e.processes if p.role != "app"][2:] == [
        ("server", "lb1.lab"),
        ("server", "web1.lab"),
        ("mcollectived", "web2.lab"),
        ("mcollectived", "web3.lab"),
    ]
    assert e.shims_dir == "/tmp/x/shims"
    assert "libdir = /usr/share/mcollective/plugins:/tmp/x/shims\n" in layout.server_cfg(
        e, e.node("web2.lab"), "py"
    )


def test_the_catalog_is_a_valid_catalog_of_the_lab() -> None:
    e = estate()
    catalog = parse_catalog(layout.catalog_text(e, SUMS), source="lab")
    shop = catalog.service("shop")
    assert [(r.version, r.sha256) for r in shop.releases] == sorted(SUMS.items())
    placement = shop.placement("lab")
    assert placement.frontend == ("127.0.14.2", 8080)
    assert [(n.identity, n.address, n.port) for n in placement.nodes] == [
        ("web1.lab", "127.0.14.11", 9001),
        ("web2.lab", "127.0.14.12", 9002),
    ]
    assert catalog.environment("lab") == ("lb1.lab",)


def test_state_file_round_trip(tmp_path: Path) -> None:
    spec = LabSpec(root=tmp_path, vhost="/x", nodes=3)
    e = plan(spec, Ports(1, 2, (3, 4, 5)))
    e.save()
    assert load_estate(tmp_path) == e
    assert load_estate(tmp_path / "nothing-here") is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", r"\A.*lab\.json is not JSON"),
        ("[1]", r"\A.*lab\.json is not a lab state file"),
        ('{"format": 99}', r"\A.*lab\.json is not a lab state file this version understands"),
    ],
)
def test_a_bad_state_file_is_a_config_error(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "lab.json").write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_estate(tmp_path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"prefix": "10.0.0."}, r"\Alab address prefix '10\.0\.0\.' is not a loopback /24"),
        ({"prefix": "127.0.300."}, r"\Alab address prefix '127\.0\.300\.' is not a loopback /24"),
        ({"vhost": "no-slash"}, r"\Alab vhost 'no-slash' must be '/' followed by"),
        ({"nodes": 0}, r"\A--nodes 0: the lab runs 1 to 40 app nodes"),
        ({"nodes": 41}, r"\A--nodes 41: the lab runs 1 to 40 app nodes"),
        ({"ruby_nodes": 5}, r"\A--ruby-nodes 5: must be between 0 and --nodes \(4\)"),
        ({"ruby_nodes": -1}, r"\A--ruby-nodes -1: must be between 0 and --nodes \(4\)"),
        ({"root": Path("relative")}, r"\Alab state directory 'relative' must be an absolute path"),
    ],
)
def test_bad_specs_are_refused(change: dict[str, object], match: str) -> None:
    spec = LabSpec(**{"root": Path("/tmp/x"), **change})  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=match):
        spec.check()


def test_lb_hiera_points_haproxy_pools_into_the_lab() -> None:
    data = yaml.safe_load(layout.lb_hiera(estate()))
    assert data["haproxy_pools::socket_path"] == "/tmp/golden-lab/haproxy/admin.sock"
    assert data["haproxy_pools::config_dir"] == "/tmp/golden-lab/haproxy"
    assert data["haproxy_pools::manage_service"] is False
