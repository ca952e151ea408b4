"""Item 7: one masking rule everywhere (config show, get_config_item, logs, replies,
tracebacks): URL user-info, and keys matching password/passphrase/token/secret/psk/key."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcollective_py.masking import LogFilter, mask_text, mask_value
from mcollective_py.server.audit import AuditEvent, AuditLog
from tests.agents_py.lab import free_port
from tests.conftest import REPO, PythonFleet, lab_dir, ns_vhost, run_mco_py

GOLDEN = REPO / "tests" / "golden" / "masking"
SECRETS = ("s3cr3t-pw", "t0ken-value", "open-sesame", "psk-in-url")


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.json")), ids=lambda p: p.stem)
def test_the_rule(path: Path) -> None:
    case = json.loads(path.read_text())
    if case["kind"] == "key":
        assert mask_value(case["key"], case["input"]) == case["expected"]
    else:
        assert mask_text(case["input"]) == case["expected"]


def test_tracebacks_are_masked_by_the_log_filter() -> None:
    record = None
    try:
        raise RuntimeError(
            "GET http://deploy:s3cr3t-pw@repo.example/x failed, api_token=t0ken-value"
        )
    except RuntimeError:
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "failed: %s", ("boom",), sys.exc_info()
        )
    assert LogFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "Traceback" in text and "RuntimeError" in text
    assert "s3cr3t-pw" not in text and "t0ken-value" not in text


def test_the_audit_log_uses_the_same_rule(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.log", jsonfile=tmp_path / "a.jsonl", redact=())
    audit.record(
        AuditEvent(
            "a" * 32,
            1,
            "uid=0",
            "client",
            "deploy",
            "fetch",
            data={"api_token": "t0ken-value", "url": "http://u:s3cr3t-pw@repo/x", "ssh_key": "k"},
        )
    )
    text = (tmp_path / "a.log").read_text() + (tmp_path / "a.jsonl").read_text()
    assert "t0ken-value" not in text and "s3cr3t-pw" not in text and '"k"' not in text
    assert text.count("[REDACTED]") == 4 and "http://********@repo/x" in text


@pytest.fixture(scope="module")
def node() -> Iterator[PythonFleet]:
    port = free_port("127.0.10.41")  # nothing listens: every fetch fails and quotes the URL
    extra = (
        f"plugin.deploy.root = {lab_dir('secrets-rel')}\n"
        f"plugin.deploy.config_dir = {lab_dir('secrets-etc')}\n"
        f"plugin.deploy.artifact_url = http://deploy:s3cr3t-pw@127.0.10.41:{port}/{{service}}-{{version}}.tgz\n"
        "plugin.deploy.download_timeout = 2\n"
        "plugin.app.api_token = t0ken-value\n"
        "plugin.app.passphrase = open-sesame\n"
        f"plugin.app.upstream = https://user:psk-in-url@127.0.10.41:{port}/\n"
    )
    fleet = PythonFleet(lab_dir("secrets"), ns_vhost("mco-py-secrets"), ["sec1"], extra_cfg=extra)
    with fleet:
        yield fleet


@pytest.mark.integration
def test_config_show_masks_every_secret(node: PythonFleet) -> None:
    cfg = node.root / "sec1" / "server.cfg"
    r = subprocess.run(
        [sys.executable, "-m", "mcollective_py", "config", "show", "-c", str(cfg)],
        env=node.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert not [s for s in SECRETS if s in r.stdout], r.stdout
    pairs = [ln.split(" = ", 1) for ln in r.stdout.splitlines() if " = " in ln]
    lines = {k.strip(): v.strip() for k, v in pairs}
    assert lines["plugin.app.api_token"] == "********"
    assert lines["plugin.app.passphrase"] == "********"
    assert lines["plugin.app.upstream"].startswith("https://********@127.0.10.41:")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("item", "shown"),
    [
        ("plugin.app.api_token", "********"),
        ("plugin.app.passphrase", "********"),
        ("plugin.psk", "********"),
        ("plugin.app.upstream", "https://********@127.0.10.41:"),
        ("plugin.deploy.artifact_url", "http://********@127.0.10.41:"),
    ],
)
def test_get_config_item_masks(node: PythonFleet, item: str, shown: str) -> None:
    r = run_mco_py(
        node.env, "rpc", "rpcutil", "get_config_item", f"item={item}", "-I", "sec1", "--json"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    value = json.loads(r.stdout)[0]["data"]["value"]
    assert value.startswith(shown) and not [s for s in SECRETS if s in value]


@pytest.mark.integration
def test_deploy_error_replies_and_the_log_hold_no_secret(node: PythonFleet) -> None:
    r = run_mco_py(
        node.env,
        "rpc",
        "deploy",
        "fetch",
        "service=shop",
        "version=1.0.0",
        f"sha256={'a' * 64}",
        "-I",
        "sec1",
        "--json",
    )
    [reply] = json.loads(r.stdout)
    assert reply["statuscode"] == 1
    assert "http://********@127.0.10.41:" in reply["statusmsg"]
    assert "s3cr3t-pw" not in r.stdout
    log = node.log("sec1").read_text()
    assert not [s for s in SECRETS if s in log]


def test_an_agent_error_quoting_a_secret_is_masked_in_the_reply() -> None:
    """Any agent's status message goes through the rule on its way out of the daemon."""
    from mcollective_py.connectors.base import Delivery
    from mcollective_py.connectors.memory import MemoryBroker, MemoryConnector
    from mcollective_py.ddl import load_agent_ddl
    from mcollective_py.rubytypes import Symbol
    from mcollective_py.security.psk import PskSecurity
    from mcollective_py.server.agent import ActionRequest, AgentContext, Reply, action
    from mcollective_py.server.daemon import Daemon, NodeView
    from tests.agents.pyecho import PyEcho
    from tests.hostile.wire import rpc_request

    class Leaky(PyEcho):
        @action
        def echo(self, req: ActionRequest, reply: Reply) -> None:
            raise RuntimeError(
                f"GET http://deploy:{req.data['msg']}@repo/x failed, token={req.data['msg']}"
            )

    sec = PskSecurity("secret", callerid="uid=7")
    agent = Leaky(
        load_agent_ddl("pyecho", [str(REPO / "tests" / "agents")]), AgentContext(identity="n1")
    )
    daemon = Daemon(
        connector=MemoryConnector(MemoryBroker(), identity="n1"),
        security=sec,
        node=NodeView("n1", ["mcollective"], dict, list),
        agents={"pyecho": agent},
    )
    request = rpc_request("pyecho", "echo", {"msg": "s3cr3t-pw"}, caller="uid=7")
    request = type(request)(**{**request.__dict__, "filter": {}})
    out = daemon.handle(Delivery(sec.encode_request(request), reply_to="q"))
    assert out is not None
    body = sec.decode_reply(out[1]).body
    assert body[Symbol("statusmsg")] == "GET http://********@repo/x failed, token=********"
