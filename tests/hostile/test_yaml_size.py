"""Item 6: YAML bodies (ssl with ``ssl_serializer = yaml``) are refused above
``max_yaml_bytes`` before the parser (and so the signature check) runs, and every serializer
refuses a payload above ``max_message_bytes`` undecoded.  Aliases are refused and nodes
capped, so no YAML value is larger than its text."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mcollective_py.errors import SerializationError
from mcollective_py.security.psk import PskSecurity
from mcollective_py.serializers import YAML
from tests import conftest
from tests.conftest import PSK, VECTORS, PythonFleet, lab_dir, ns_vhost, run_mco_py
from tests.hostile.wire import wait_for_log, wire

KEYS = VECTORS / "ssl-marshal" / "keys"


def test_yaml_aliases_and_too_many_nodes_are_refused() -> None:
    with pytest.raises(SerializationError, match=r"aliases are not allowed"):
        YAML.loads(b"---\na: &x [1, 2]\nb: *x\n")
    many = ("---\n" + "".join(f"- {i}\n" for i in range(50_001))).encode()
    with pytest.raises(SerializationError, match=r"more than 50000 nodes"):
        YAML.loads(many)


def test_every_serializer_is_capped_before_decoding() -> None:
    from mcollective_py.security.ssl import SslSecurity

    big = b"\x04\x08" + b"x" * (8 * 1024 * 1024)
    with pytest.raises(
        SerializationError,
        match=r"\Arequest of 8388610 bytes is over the 8388608-byte cap \(plugin\.mcollective_py\.max_message_bytes\); not decoded\Z",
    ):
        PskSecurity(PSK).decode_request(big)
    node = SslSecurity.node(
        KEYS / "server-private.pem", KEYS / "server-public.pem", KEYS / "clients", serializer=YAML
    )
    text = b"---\n" + b"- x\n" * (1024 * 1024)  # 4 MB of YAML: 26 s of parsing before the fix
    with pytest.raises(
        SerializationError,
        match=r"\Arequest of 4194308 bytes is over the 131072-byte cap \(plugin\.mcollective_py\.max_yaml_bytes\); not decoded\Z",
    ):
        node.decode_request(text)
    with pytest.raises(
        SerializationError, match=r"reply of 4194308 bytes is over the 131072-byte cap"
    ):
        node.decode_reply(text)


@pytest.fixture(scope="module")
def yaml_node() -> Iterator[PythonFleet]:
    root = lab_dir("declimyaml")
    keys = conftest.ssl_keys(root)
    ssl = conftest.ssl_node_cfg(keys, "yaml")
    fleet = PythonFleet(root, ns_vhost("mco-py-declimyaml"), ["dly1"], extra_cfg=ssl)
    fleet.client_cfg.write_text(conftest.ssl_client_cfg(fleet.client_cfg.read_text(), keys, "yaml"))
    with fleet:
        yield fleet


@pytest.mark.integration
def test_a_yaml_daemon_refuses_a_big_body_before_parsing(yaml_node: PythonFleet) -> None:
    text = b"---\n" + b"- x\n" * (1024 * 1024)
    with wire(yaml_node.vhost) as w:
        for _ in range(5):
            w.publish("dly1", text)
    log = wait_for_log(
        yaml_node.log("dly1"),
        "is over the 131072-byte cap (plugin.mcollective_py.max_yaml_bytes)",
        count=5,
    )
    assert "rejected an undecodable message (4194308 bytes)" in log
    r = run_mco_py(yaml_node.env, "rpc", "rpcutil", "ping", "-I", "dly1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["statuscode"] == 0
