"""The composition root outside ``cli/``: plugins by entry point, ``Client.from_config``,
``server.assembly.build_daemon`` — and the CLI built on them (``ping -v``,
``--discovery-quiet``), on the in-memory broker.  The real broker: tests/integration/
test_exchange_broker.py."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from mcollective_py import config, plugins
from mcollective_py.cli import main as cli_main
from mcollective_py.client import CallOptions, Client
from mcollective_py.connectors.memory import MemoryBroker, MemoryConnector
from mcollective_py.connectors.rabbitmq import RabbitMQConnector
from mcollective_py.errors import ConfigError
from mcollective_py.filter import Filter
from mcollective_py.security.psk import PskSecurity
from mcollective_py.server.assembly import build_daemon
from mcollective_py.server.daemon import Daemon
from tests.fakes import FakeNode

REPO = Path(__file__).resolve().parent.parent
BASE = (
    "identity = client1\nconnector = rabbitmq\nsecurityprovider = psk\nplugin.psk = secret\n"
    "plugin.rabbitmq.pool.size = 1\nplugin.rabbitmq.pool.1.host = 127.0.0.1\n"
)


def _cfg(tmp_path: Path, text: str, role: str = "client") -> config.Config:
    p = tmp_path / f"{role}.cfg"
    p.write_text(text)
    return config.load(str(p), role=role, env={}, home=str(tmp_path), system_dirs=())


def test_our_plugins_are_registered_by_entry_point() -> None:
    assert "rabbitmq" in plugins.installed(plugins.CONNECTORS)
    assert {"psk", "ssl"} <= set(plugins.installed(plugins.SECURITY))


def test_builtin_table_is_what_the_package_registers() -> None:
    """plugins.BUILTIN (the fast path, no metadata scan) lists exactly our entry points."""
    from importlib.metadata import entry_points

    for group, table in plugins.BUILTIN.items():
        registered = {ep.name: ep.value for ep in entry_points(group=group)}
        assert {k: registered.get(k) for k in table} == table
        for value in table.values():
            assert callable(plugins._load(value))


def test_client_from_config_wires_the_named_plugins(tmp_path: Path) -> None:
    c = Client.from_config(
        _cfg(tmp_path, BASE + "discovery_quiet = 250\ndirect_addressing_threshold = 3\n")
    )
    assert isinstance(c.connector, RabbitMQConnector) and isinstance(c.security, PskSecurity)
    assert c.identity == "client1" and c.direct_addressing_threshold == 3
    assert c.config_discovery_quiet == 0.25
    assert Client.from_config(_cfg(tmp_path, BASE)).config_discovery_quiet is None


def test_negative_discovery_quiet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^discovery_quiet must be a number of milliseconds"):
        Client.from_config(_cfg(tmp_path, BASE + "discovery_quiet = -5\n"))


def test_unknown_connector_names_what_is_installed(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, BASE.replace("connector = rabbitmq", "connector = nats"))
    with pytest.raises(
        ConfigError,
        match=r"^connector 'nats' \(from .*client.cfg:2\) is not installed; installed: .*rabbitmq",
    ):
        Client.from_config(cfg)


def test_unknown_security_provider_names_what_is_installed(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, BASE.replace("securityprovider = psk", "securityprovider = aes"))
    with pytest.raises(ConfigError, match=r"^securityprovider 'aes' .* installed: psk, ssl"):
        Client.from_config(cfg)


def test_psk_without_a_key_is_still_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^securityprovider psk needs plugin.psk"):
        Client.from_config(_cfg(tmp_path, BASE.replace("plugin.psk = secret\n", "")))


# ---------------------------------------------------------------- a new connector = one entry point
BROKER = MemoryBroker()


def memory_connector(cfg: config.Config) -> MemoryConnector:
    """What a third-party connector module provides: a factory from config."""
    return MemoryConnector(BROKER, identity=cfg.identity)


@pytest.fixture
def memory_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryBroker]:
    """``memory = tests.test_composition:memory_connector`` as if a package registered it."""
    real = plugins.entry_points
    extra = EntryPoint("memory", f"{__name__}:memory_connector", plugins.CONNECTORS)

    def fake(*, group: str) -> list[EntryPoint]:
        return [*real(group=group), *([extra] if group == plugins.CONNECTORS else [])]

    monkeypatch.setattr(plugins, "entry_points", fake)
    BROKER.__init__()  # type: ignore[misc]  # a fresh broker per test
    yield BROKER


MEMORY = BASE.replace("connector = rabbitmq", "connector = memory")


def test_a_connector_registered_by_entry_point_is_used(
    tmp_path: Path, memory_plugin: MemoryBroker
) -> None:
    c = Client.from_config(_cfg(tmp_path, MEMORY))
    assert isinstance(c.connector, MemoryConnector) and c.connector.broker is memory_plugin


@pytest.fixture
def node(tmp_path: Path, memory_plugin: MemoryBroker) -> Iterator[Daemon]:
    """A daemon built by the composition root from a server.cfg, serving on the memory broker."""
    (tmp_path / "facts.yaml").write_text("role: web\n")
    d = build_daemon(
        _cfg(
            tmp_path,
            MEMORY.replace("identity = client1", "identity = node1")
            + f"libdir = {REPO / 'tests' / 'agents'}\n"
            + "plugin.mcollective_py.agents = tests.agents.pyecho:PyEcho\n"
            + f"plugin.yaml = {tmp_path / 'facts.yaml'}\n",
            role="server",
        )
    )
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not memory_plugin.bindings and time.monotonic() < deadline:
        time.sleep(0.01)
    yield d
    d.stop()
    t.join(timeout=5)


def test_build_daemon_serves_what_the_config_names(tmp_path: Path, node: Daemon) -> None:
    assert {"rpcutil", "pyecho", "haproxy", "deploy", "healthcheck"} <= set(node.agents)
    assert node.agents["pyecho"].context.identity == "node1"
    assert node.agents["pyecho"].context.facts() == {"role": "web"}
    c = Client.from_config(_cfg(tmp_path, MEMORY))
    res = c.rpc(
        "pyecho", "echo", {"msg": "hi"}, Filter.from_cli(fact=["role=web"]), CallOptions(timeout=5)
    )
    assert res.responders == ("node1",) and res.replies[0].data["message"] == "hi"


# ---------------------------------------------------------------- the CLI on top
def _mco(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    rc = cli_main.main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_ping_v_reports_rejected_replies(
    tmp_path: Path, memory_plugin: MemoryBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "client.cfg"
    cfg.write_text(MEMORY)
    ns = [FakeNode(memory_plugin, "good"), FakeNode(memory_plugin, "forger", reply_psk="wrong")]
    for n in ns:
        n.start()
    try:
        rc, out, err = _mco(
            ["ping", "-c", str(cfg), "-t", "30", "--discovery-quiet", "300", "-v"], monkeypatch
        )
        rc_quiet, _, err_quiet = _mco(["ping", "-c", str(cfg), "-t", "0.5"], monkeypatch)
    finally:
        for n in ns:
            n.stop()
    assert rc == 0 and out.startswith("good ") and "1 replies max:" in out
    assert err.startswith(
        "Rejected 1 reply (failed the security check or did not decode):\n  DigestMismatch: "
    )
    assert rc_quiet == 0 and err_quiet == ""  # without -v: mco's output, nothing more


def test_rpc_v_reports_rejected_replies(
    tmp_path: Path, memory_plugin: MemoryBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "client.cfg"
    cfg.write_text(MEMORY)
    ns = [FakeNode(memory_plugin, "good"), FakeNode(memory_plugin, "forger", reply_psk="wrong")]
    for n in ns:
        n.start()
    try:
        rc, out, err = _mco(
            [
                "rpc",
                "rpcutil",
                "ping",
                "-c",
                str(cfg),
                "-I",
                "good",
                "-I",
                "forger",
                "-t",
                "1",
                "-v",
            ],
            monkeypatch,
        )
    finally:
        for n in ns:
            n.stop()
    assert rc == 1 and "forger" in out  # no (authentic) response from it
    assert "Rejected 1 reply" in err and "DigestMismatch" in err


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5"])
def test_discovery_quiet_flag_is_validated(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exc:
        _mco(["ping", "--discovery-quiet", bad], monkeypatch)
    assert exc.value.code == 2
