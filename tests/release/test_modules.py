"""The Puppet modules' layout, metadata and puppet-strings documentation (no Puppet needed)."""

from __future__ import annotations

import configparser
import json
import re

import pytest
import yaml

from tests.release.conftest import MODULE_NAMES, MODULES, REPO

HEADER = re.compile(r"\A((?:#.*\n)+)(class|define) ([a-z_:]+) (?:\((.*?)\n\) )?\{", re.S)
PARAM = re.compile(r"^\s+(?:[A-Z][^$]*?)?\$([a-z_][a-z0-9_]*)(?:\s*=|,)", re.M)


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_standard_layout(module: str) -> None:
    root = MODULES / module
    for path in ("metadata.json", "hiera.yaml", "manifests/init.pp", "data/common.yaml"):
        assert (root / path).is_file(), f"{module}/{path} is missing"
    assert list((root / "templates").glob("*.epp")), f"{module} has no EPP templates"
    meta = json.loads((root / "metadata.json").read_text())
    assert meta["name"] == f"mcopy-{module}"
    assert meta["dependencies"] == []  # core Puppet 7 only: no stdlib
    assert meta["requirements"] == [{"name": "puppet", "version_requirement": ">= 7.0.0 < 8.0.0"}]
    hiera = yaml.safe_load((root / "hiera.yaml").read_text())
    assert hiera["version"] == 5


def _manifests() -> list[tuple[str, str]]:
    return [
        (str(p.relative_to(MODULES)), p.read_text())
        for m in MODULE_NAMES
        for p in sorted((MODULES / m / "manifests").glob("*.pp"))
    ]


@pytest.mark.parametrize(("path", "text"), _manifests(), ids=[p for p, _ in _manifests()])
def test_every_parameter_is_documented(path: str, text: str) -> None:
    """puppet-strings tags: @summary, and one @param per parameter, in order."""
    m = HEADER.match(text)
    assert m, f"{path}: expected a comment block followed by the class or define"
    doc, _, _, params_text = m.groups()
    assert "# @summary " in doc, f"{path}: no @summary"
    params = PARAM.findall(params_text or "")
    documented = re.findall(r"^# @param (\w+)$", doc, re.M)
    assert documented == params, f"{path}: @param tags {documented} != parameters {params}"
    for name in documented:
        block = doc.split(f"# @param {name}\n", 1)[1]
        assert block.startswith("#   "), f"{path}: @param {name} has no description"


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_module_data_defaults_every_required_parameter(module: str) -> None:
    """Parameters without a default in the class get one from the module's data/common.yaml
    (except the rendered release data and secrets)."""
    text = (MODULES / module / "manifests" / "init.pp").read_text()
    m = HEADER.match(text)
    assert m
    data = yaml.safe_load((MODULES / module / "data" / "common.yaml").read_text())
    site_data = {  # rendered release data, and secrets that must never have a default
        "app_release": {
            "service",
            "version",
            "deploy_env",
            "os",
            "deploy_method",
            "artifact_url",
            "sha256",
            "service_manager",
            "port",
        },
        "mcollective_py": {"psk", "middleware_password"},
    }
    for line in (m.group(4) or "").splitlines():
        pm = re.match(r"^\s+\S.*\$([a-z_0-9]+),$", line)
        if pm and "=" not in line:
            name = pm.group(1)
            assert f"{module}::{name}" in data or name in site_data.get(module, set()), (
                f"{module}::{name} has no default"
            )


def test_mcollective_py_has_no_shim_writer_or_ddl_copies() -> None:
    """The Ruby shims and their DDLs come from the product (`mco-py shim build`, run by
    mcollective_py::shims), the DDLs from the installed package: the module keeps no Ruby
    template and no copies of ddl/ that could drift."""
    root = MODULES / "mcollective_py"
    assert not (root / "files").exists()
    assert [p.name for p in root.rglob("*") if ".rb" in p.name or p.suffix == ".ddl"] == []


def test_mcollective_py_default_agents_have_packaged_ddls() -> None:
    """`mco-py shim build` copies each agent's DDL from the installed package, which holds
    ddl/*.ddl (setup.cfg data_files: VENV/share/mcollective-py/ddl)."""
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    patterns = setup["options.data_files"]["share/mcollective-py/ddl"].split()
    packaged = {p.stem for pattern in patterns for p in REPO.glob(pattern)}
    data = yaml.safe_load((MODULES / "mcollective_py" / "data" / "common.yaml").read_text())
    assert data["mcollective_py::agents"]
    assert set(data["mcollective_py::agents"]) <= packaged
