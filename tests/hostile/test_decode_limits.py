"""Item 5: exponential work from shared references.

Marshal links let 528 bytes describe ``x = [x, x]`` twenty levels deep (three million items
when walked); the decoder counts every use of a link as the items it expands to and refuses
it, so audit, policy and validation never see it.  (YAML: ``test_yaml_size.py``.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mcollective_py import marshal
from mcollective_py.errors import MarshalError
from mcollective_py.security.psk import PskSecurity
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


# ---------------------------------------------------------------- against real daemons
@pytest.fixture(scope="module")
def psk_node() -> Iterator[PythonFleet]:
    fleet = PythonFleet(lab_dir("declim"), ns_vhost("mco-py-declim"), ["dl1"])
    with fleet:
        yield fleet


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
