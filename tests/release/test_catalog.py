"""The service catalog: schema errors (golden, one case per file), the model, versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mcollective_py.errors import ConfigError, UsageError
from mcollective_py.release.catalog import (
    BatchStrategy,
    Catalog,
    HealthCheck,
    LoadBalancing,
    Migrations,
    Node,
    check_version,
    load_catalog,
    parse_catalog,
)
from tests.release.conftest import GOLDEN

CASES = sorted((GOLDEN / "catalog").glob("*.yaml"))


def test_there_are_schema_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_schema_errors(path: Path) -> None:
    """Each file holds a catalog and, in its '#> ' comment lines, the exact error it gives."""
    text = path.read_text(encoding="utf-8")
    expected = "\n".join(line[3:] for line in text.splitlines() if line.startswith("#> "))
    assert expected, f"{path.name} has no '#> ' expectation lines"
    with pytest.raises(ConfigError) as info:
        parse_catalog(text, source="services.yaml")
    assert str(info.value) == expected
    assert info.value.exit_code == 3


def test_every_problem_has_a_yaml_path_and_a_hint() -> None:
    text = (GOLDEN / "catalog" / "every_problem_at_once.yaml").read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        parse_catalog(text, source="services.yaml")
    problems = str(info.value).splitlines()[1:]
    assert len(problems) == 9
    for line in problems:
        assert re.match(r"\A  services\.shop\.[a-z0-9_.]+: \S", line), line


def test_example_catalog(example_catalog: Catalog) -> None:
    assert set(example_catalog.services) >= {"shop", "search", "reports"}
    assert dict(example_catalog.environments) == {
        "lab": ("lb1.lab",),
        "staging": ("lb1.staging",),
        "production": ("lb1.prod", "lb2.prod"),
    }
    shop = example_catalog.service("shop")
    assert shop.role == "web"
    assert shop.os == "linux" and shop.deploy == "artifact" and shop.service_manager == "systemd"
    # health: the service's keys over the defaults' keys
    assert shop.health == HealthCheck(
        type="http", path="/health", expect_status=200, interval=2.0, timeout=1.0
    )
    assert shop.lb == LoadBalancing(mode="http", balance="roundrobin")
    assert shop.migrations == Migrations(
        command="/opt/releases/shop/current/bin/migrate", phase="pre", timeout=300
    )
    assert shop.batch == BatchStrategy(size=1, canary=1, pause=5.0)
    lab = shop.placement("lab")
    assert lab.frontend == ("127.0.0.1", 8080)
    assert lab.load_balancers == ("lb1.lab",)
    assert lab.service_manager == "none"
    assert shop.manager_in("lab") == "none" and shop.manager_in("production") == "systemd"
    assert lab.nodes[2] == Node(
        identity="web3.lab", address="127.0.0.13", port=8081, pool="maintenance"
    )
    assert shop.artifact_url("1.4.2") == "http://127.0.0.1:8000/artifacts/shop/shop-1.4.2.tar.gz"
    search = example_catalog.service("search")
    assert search.batch == BatchStrategy(size=50, percent=True, canary=1, pause=5.0)
    assert search.health.url("127.0.0.21", 9200) is None
    reports = example_catalog.service("reports")
    assert (reports.os, reports.service_manager, reports.lb) == ("windows", "windows", None)
    assert reports.placement("lab").nodes == ()


def test_the_catalog_model_is_frozen(example_catalog: Catalog) -> None:
    with pytest.raises(AttributeError):
        example_catalog.service("shop").port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "version",
    [
        "1.4",
        "1.4.2",
        "2026.11.1",
        "1.2.3.4",
        "1.5.0-rc.1",
        "1.0.0+build.7",
        "1.0.0-beta+exp.sha.5114f85",
        "10.20.30",
    ],
)
def test_valid_versions(version: str) -> None:
    assert check_version(version) == version


@pytest.mark.parametrize(
    "version",
    [
        "1",
        "v1.2.3",
        "1.2.3.4.5",
        "1.2.",
        ".1.2",
        "1.2.3-",
        "1.2.3-rc_1",
        "1.2.3\n",
        "1..2",
        "latest",
        "1.2.3 ",
        "1" + ".1" * 40,
    ],
)
def test_invalid_versions(version: str) -> None:
    with pytest.raises(UsageError, match=r"\Ainvalid version .*: use 2 to 4 dot-separated numbers"):
        check_version(version)


def test_unknown_service_version_environment(example_catalog: Catalog) -> None:
    with pytest.raises(
        UsageError,
        match=r"\Aunknown service 'shoop' in .*services\.yaml \(known: reports, search, shop\)\Z",
    ):
        example_catalog.service("shoop")
    shop = example_catalog.service("shop")
    with pytest.raises(
        UsageError,
        match=r"\Aunknown version '9\.9\.9' of shop \(known: 1\.4\.1, 1\.4\.2, 1\.5\.0-rc\.1\); add it with its sha256 under services\.shop\.releases",
    ):
        shop.release("9.9.9", "lab")
    with pytest.raises(
        UsageError,
        match=r"\Arelease 1\.5\.0-rc\.1 of shop is not allowed in production \(allowed: lab, staging\); add production to services\.shop\.releases\.1\.5\.0-rc\.1\.environments\Z",
    ):
        shop.release("1.5.0-rc.1", "production")
    with pytest.raises(
        UsageError,
        match=r"\Aservice 'search' has no environment 'staging' in the catalog \(its environments: lab, production\)",
    ):
        example_catalog.service("search").release("2.1.0", "staging")
    with pytest.raises(
        UsageError, match=r"\Aunknown environment 'qa' in .* \(known: lab, staging, production\)\Z"
    ):
        example_catalog.environment("qa")
    assert shop.release("1.5.0-rc.1", "lab").sha256.startswith("859d1567")


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"\Aservice catalog '.*nope\.yaml' not found; pass --catalog FILE"
    ):
        load_catalog(tmp_path / "nope.yaml")


def test_unreadable_catalog(tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_bytes(b"catalog: 1\n\xff\xfe")
    with pytest.raises(ConfigError, match=r"\Acannot read service catalog"):
        load_catalog(tmp_path / "services.yaml")


def test_versions_and_services_pass_the_deploy_agents_checks() -> None:
    """Everything the catalog accepts also passes deploy.ddl's validation on the nodes."""
    from mcollective_py.release.catalog import SERVICE_RE, VERSION_RE

    ddl = (Path(__file__).resolve().parents[2] / "ddl" / "deploy.ddl").read_text(encoding="utf-8")

    def ddl_regex(name: str) -> re.Pattern[str]:
        m = re.search(rf"^{name} = '(.*)'$", ddl, re.M)
        assert m, f"{name} not found in deploy.ddl"
        return re.compile(m.group(1).replace(r"\z", r"\Z"))

    release_version, service_name = ddl_regex("release_version"), ddl_regex("service_name")
    for v in [
        "1.4",
        "1.4.2",
        "2026.11.1",
        "1.2.3.4",
        "1.5.0-rc.1",
        "1.0.0+build.7",
        "1.0.0-beta+exp.sha.5114f85",
        "9" * 30 + ".1",
    ]:
        if VERSION_RE.match(v) and len(v) <= 64:
            assert release_version.match(v), v
    assert SERVICE_RE.pattern == service_name.pattern
