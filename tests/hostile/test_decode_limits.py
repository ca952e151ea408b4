"""Items 5 and 6: work bounded before and while decoding.

* Marshal links let 528 bytes describe ``x = [x, x]`` twenty levels deep (three million items
  when walked); the decoder counts every use of a link as the items it expands to and refuses
  it, so audit, policy and validation never see it.
* YAML bodies (ssl with ``ssl_serializer = yaml``) are refused above ``max_yaml_bytes`` before
  the parser (and the signature check) runs; aliases are refused, so no YAML value is larger
  than its text.
* Every serializer: a payload above ``max_message_bytes`` is not decoded at all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from mcollective_py import marshal
from mcollective_py.errors import MarshalError, SerializationError
from mcollective_py.security.psk import PskSecurity
from mcollective_py.serializers import YAML
from tests.conftest import PSK, VECTORS, PythonFleet, lab_dir, ns_vhost, run_mco_py
from tests.hostile.wire import rpc_request, wait_for_log, wire

KEYS = VECTORS / "ssl-marshal" / "keys"


def dag(depth: int) -> list[object]:
    x: list[object] = []
    for _ in range(depth):
        x = [x, x]
    return x


def dag_request() -> bytes:
    sec = PskSecurity(PSK, callerid="uid=0")
    return sec.encode_request(rpc_request("rpcutil", "get_fact", {"fact": dag(20)}))


def test_the_dag_request_is_small_and_refused_at_decode() -> None:
    payload = dag_request()
    assert len(payload) < 1024  # the capture was 528 bytes; ours is this size
    with pytest.raises(
        MarshalError, match=r"object links expand the value by more than max_expansion=100000 items"
    ):
        PskSecurity(PSK).decode_request(payload)


@pytest.mark.parametrize("depth", [15, 16])
def test_the_expansion_cap_is_where_the_walk_would_pass_100000_items(depth: int) -> None:
    data = marshal.dumps(dag(depth))
    if depth == 15:  # 65,535 items when walked
        assert marshal.loads(data) == dag(15)
    else:  # 131,071
        with pytest.raises(MarshalError, match=r"max_expansion=100000"):
            marshal.loads(data)
    assert marshal.loads(data, max_expansion=10**6) == dag(depth)


def test_links_that_are_cheap_to_walk_are_fine() -> None:
    shared = "a" * 100
    assert marshal.loads(marshal.dumps({"agent": shared, "filter": {"agent": [shared] * 50}}))


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


# ---------------------------------------------------------------- against real daemons
@pytest.fixture(scope="module")
def psk_node() -> Iterator[PythonFleet]:
    fleet = PythonFleet(lab_dir("declim"), ns_vhost("mco-py-declim"), ["dl1"])
    try:
        fleet.up()
        yield fleet
    finally:
        fleet.down()


@pytest.fixture(scope="module")
def yaml_node() -> Iterator[PythonFleet]:
    root = lab_dir("declimyaml")
    keys = root / "keys"
    if keys.exists():
        shutil.rmtree(keys)
    shutil.copytree(KEYS, keys)
    ssl = (
        "securityprovider = ssl\nplugin.ssl_serializer = yaml\n"
        f"plugin.ssl_server_private = {keys}/server-private.pem\n"
        f"plugin.ssl_server_public = {keys}/server-public.pem\n"
        f"plugin.ssl_client_cert_dir = {keys}/clients\n"
    )
    fleet = PythonFleet(root, ns_vhost("mco-py-declimyaml"), ["dly1"], extra_cfg=ssl)
    fleet.client_cfg.write_text(
        fleet.client_cfg.read_text()
        .replace("securityprovider = psk\n", "")
        .replace(f"plugin.psk = {PSK}\n", "")
        + "securityprovider = ssl\nplugin.ssl_serializer = yaml\n"
        f"plugin.ssl_server_public = {keys}/server-public.pem\n"
        f"plugin.ssl_client_private = {keys}/lab-client-private.pem\n"
        f"plugin.ssl_client_public = {keys}/lab-client.pem\n"
    )
    try:
        fleet.up()
        yield fleet
    finally:
        fleet.down()


def _stats(fleet: PythonFleet, node: str) -> dict[str, int]:
    r = run_mco_py(fleet.env, "rpc", "rpcutil", "daemon_stats", "-I", node, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    data: dict[str, int] = json.loads(r.stdout)[0]["data"]
    return data


@pytest.mark.integration
def test_a_daemon_refuses_the_dag_at_decode_and_keeps_answering(psk_node: PythonFleet) -> None:
    before = _stats(psk_node, "dl1")
    payload = dag_request()
    sec = PskSecurity(PSK, callerid="uid=0")
    with wire(psk_node.vhost) as w:
        for _ in range(20):
            w.publish("dl1", payload)
        assert w.replies(sec.decode_reply, wait=1) == []
    wait_for_log(psk_node.log("dl1"), "max_expansion=100000", count=20)
    after = _stats(psk_node, "dl1")
    assert after["bad_messages"] - before["bad_messages"] == 20
    r = run_mco_py(psk_node.env, "rpc", "rpcutil", "ping", "-I", "dl1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["statuscode"] == 0


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
