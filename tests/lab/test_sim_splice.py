"""The simulator's shortcuts give what the full path gives: spliced replies (byte for byte
what each identity's own dispatch encodes), the directed-copy memo, the once-parsed filter."""

from __future__ import annotations

import re
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcollective_py import config as config_mod
from mcollective_py import security as security_mod
from mcollective_py.connectors.base import Delivery
from mcollective_py.filter import Filter
from mcollective_py.filter import check as filter_check
from mcollective_py.lab import sim
from mcollective_py.message import Request
from mcollective_py.rpc import RPCReply, RPCRequest
from mcollective_py.security.base import SecurityProvider
from mcollective_py.security.psk import PskSecurity
from mcollective_py.server import builtin
from mcollective_py.server.daemon import Daemon
from tests.conftest import (
    PSK,
    client_cfg_text,
    run_mco_py,
    ssl_client_cfg,
    ssl_keys,
    ssl_node_cfg,
)
from tests.lab.test_sim import run_ruby_mco
from tests.simfleet import Sim, encoded_request, sim_workspace

#: the fixed clock of these tests: replies carry the second they were made in
NOW = 1_750_000_000


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """rpcutil ``ping`` answers ``int(time.time())``: the same second everywhere here."""
    monkeypatch.setattr(builtin, "time", types.SimpleNamespace(time=lambda: float(NOW)))


@pytest.fixture
def dispatches(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The identities whose Daemon.dispatch ran, in order."""
    seen: list[str] = []
    real = Daemon.dispatch

    def counting(self: Daemon, d: Delivery, req: Request) -> Any:
        seen.append(self.node.identity)
        return real(self, d, req)

    monkeypatch.setattr(Daemon, "dispatch", counting)
    yield seen


@pytest.fixture
def psk_pair(tmp_path: Path) -> tuple[config_mod.Config, SecurityProvider, SecurityProvider]:
    """(server config, node-side security, client-side security) for psk."""
    p = tmp_path / "server.cfg"
    p.write_text(client_cfg_text("/sim").replace("mco-lab-client", "sim-host"))
    cfg = config_mod.load(str(p), role="server", env={}, system_dirs=())
    return cfg, PskSecurity(PSK), PskSecurity(PSK)


@pytest.fixture
def ssl_pair(tmp_path: Path) -> tuple[config_mod.Config, SecurityProvider, SecurityProvider]:
    """(server config, node-side security, client-side security) for ssl with Marshal."""
    keys = ssl_keys(tmp_path)
    base = client_cfg_text("/sim")
    server = tmp_path / "server.cfg"
    server.write_text(
        base.replace("mco-lab-client", "sim-host")
        .replace("securityprovider = psk\n", "")
        .replace(f"plugin.psk = {PSK}\n", "")
        + ssl_node_cfg(keys)
    )
    client = tmp_path / "client.cfg"
    client.write_text(ssl_client_cfg(base, keys))
    scfg = config_mod.load(str(server), role="server", env={}, system_dirs=())
    ccfg = config_mod.load(str(client), env={}, home=str(tmp_path), system_dirs=())
    return scfg, security_mod.from_config(scfg), security_mod.from_config(ccfg)


def encode(
    client: SecurityProvider, agent: str, body: object, flt: Filter | dict[str, Any] | None = None
) -> bytes:
    wire = flt.to_wire() if isinstance(flt, Filter) else (flt if flt is not None else {})
    return encoded_request(client, agent, body, wire or Filter().to_wire())


def rpc(client: SecurityProvider, action: str, **data: Any) -> object:
    return RPCRequest("rpcutil", action, client.callerid, data).to_wire()


def shard_of(
    cfg: config_mod.Config, security: SecurityProvider, names: list[str], total: int = 0
) -> sim.Shard:
    return sim.Shard(
        cfg, names, total or len(names), security=security, clock=lambda: float(NOW) + 0.5
    )


NODE_INDEPENDENT: dict[str, Callable[[SecurityProvider], tuple[str, object]]] = {
    "discovery": lambda c: ("discovery", "ping"),
    "rpcutil-ping": lambda c: ("rpcutil", rpc(c, "ping")),
}


# ---------------------------------------------------------------- spliced replies
@pytest.mark.usefixtures("fixed_clock")
@pytest.mark.parametrize("provider", ["psk", "ssl"])
@pytest.mark.parametrize("case", sorted(NODE_INDEPENDENT))
def test_spliced_replies_are_what_each_identity_dispatch_sends(
    request: pytest.FixtureRequest, provider: str, case: str, dispatches: list[str]
) -> None:
    cfg, node_sec, client_sec = request.getfixturevalue(f"{provider}_pair")
    names = sim.identities(12)
    shard = shard_of(cfg, node_sec, names)
    agent, body = NODE_INDEPENDENT[case](client_sec)
    d = Delivery(
        encode(client_sec, agent, body), reply_to="q", destination=f"mcollective_broadcast/{agent}"
    )
    out = shard.answer(d, now=0.0)
    assert dispatches == ["sim-00001"]  # one full dispatch; the other eleven are spliced
    assert [o.identity for o in out] == names
    req = node_sec.decode_request(d.payload)
    for o in out:
        # byte for byte what the identity's own dispatch encodes
        full = shard.daemons[o.identity].dispatch(d, req)
        assert full is not None and (o.target, o.payload) == full
        # and the client's provider accepts it (digest/signature over the body) as that node's
        r = client_sec.decode_reply(o.payload)
        assert (r.senderid, r.requestid, r.senderagent, r.msgtime) == (
            o.identity,
            req.requestid,
            agent,
            NOW,
        )
        if agent == "discovery":
            assert r.body == "pong"
        else:
            reply = RPCReply.from_wire(r.body)
            assert (reply.statuscode, reply.statusmsg, dict(reply.data)) == (0, "OK", {"pong": NOW})
    s = shard.stats.snapshot()
    assert (s["total"], s["validated"], s["passed"], s["replies"]) == (1, 1, 12, 24)


@pytest.mark.parametrize("action", ["get_fact", "inventory", "daemon_stats", "get_facts"])
def test_per_node_actions_are_dispatched_for_every_identity(
    psk_pair: tuple[config_mod.Config, SecurityProvider, SecurityProvider],
    dispatches: list[str],
    action: str,
) -> None:
    cfg, node_sec, client_sec = psk_pair
    data = {
        "get_fact": {"fact": "node_index"},
        "get_facts": {"facts": "node_index, hostname"},
    }.get(action, {})
    shard = shard_of(cfg, node_sec, sim.identities(6))
    d = Delivery(
        encode(client_sec, "rpcutil", rpc(client_sec, action, **data)),
        reply_to="q",
        destination="mcollective_broadcast/rpcutil",
    )
    out = shard.answer(d, now=0.0)
    assert dispatches == sim.identities(6)
    replies = {o.identity: client_sec.decode_reply(o.payload) for o in out}
    assert {k: r.senderid for k, r in replies.items()} == {n: n for n in sim.identities(6)}
    bodies = {k: RPCReply.from_wire(r.body) for k, r in replies.items()}
    assert all(b.statuscode == 0 for b in bodies.values()), bodies
    if action == "get_fact":
        assert {k: b.data["value"] for k, b in bodies.items()} == {
            n: str(i) for i, n in enumerate(sim.identities(6), 1)
        }
    if action == "inventory":
        assert {k: b.data["facts"]["hostname"] for k, b in bodies.items()} == {
            n: n for n in sim.identities(6)
        }


@pytest.mark.usefixtures("fixed_clock")
def test_an_identity_of_another_length_gets_its_full_dispatch(
    psk_pair: tuple[config_mod.Config, SecurityProvider, SecurityProvider],
    dispatches: list[str],
) -> None:
    cfg, node_sec, client_sec = psk_pair
    names = ["sim-00001", "sim-2", "sim-00003"]
    shard = shard_of(cfg, node_sec, names, 3)
    d = Delivery(
        encode(client_sec, "discovery", "ping"),
        reply_to="q",
        destination="mcollective_broadcast/discovery",
    )
    out = shard.answer(d, now=0.0)
    assert dispatches == ["sim-00001", "sim-2"]
    assert [client_sec.decode_reply(o.payload).senderid for o in out] == names


@pytest.mark.usefixtures("fixed_clock")
def test_an_identity_that_is_also_in_the_body_gets_its_full_dispatch(
    psk_pair: tuple[config_mod.Config, SecurityProvider, SecurityProvider],
    dispatches: list[str],
) -> None:
    """discovery answers ``Unknown Request: <body>``: with ``sim-00002`` in the body, the
    spliced reply for sim-00002 would hold it twice; that identity is dispatched in full."""
    cfg, node_sec, client_sec = psk_pair
    shard = shard_of(cfg, node_sec, sim.identities(3))
    d = Delivery(
        encode(client_sec, "discovery", "sim-00002"),
        reply_to="q",
        destination="mcollective_broadcast/discovery",
    )
    out = shard.answer(d, now=0.0)
    assert dispatches == ["sim-00001", "sim-00002"]
    req = node_sec.decode_request(d.payload)
    for o in out:
        assert (o.target, o.payload) == shard.daemons[o.identity].dispatch(d, req)
        r = client_sec.decode_reply(o.payload)
        assert (r.senderid, r.body) == (o.identity, "Unknown Request: sim-00002")


@pytest.mark.parametrize(
    "names",
    [["sim-00001", "sim-00002"], ["sim-00001"]],
    ids=["two", "one"],
)
def test_splice_refuses_inexact_replacements(names: list[str]) -> None:
    payload = b"\x04\x08{:senderid" + names[0].encode() + b"tail"
    t = sim.Template.of(names[0], (None, payload), 0, "q")  # type: ignore[arg-type]
    assert t is not None
    assert sim.splice(t.payload, t.at, b"sim-00009") == payload.replace(b"sim-00001", b"sim-00009")
    assert sim.splice(t.payload, t.at, b"sim-9") is None  # another length
    twice = b"sim-00001 and sim-00001"
    assert sim.Template.of("sim-00001", (None, twice), 0, "q") is None  # type: ignore[arg-type]
    once = sim.Template.of("sim-00001", (None, b"x sim-00001 y sim-00007"), 0, "q")  # type: ignore[arg-type]
    assert once is not None and sim.splice(once.payload, once.at, b"sim-00007") is None


@pytest.mark.usefixtures("fixed_clock")
def test_a_new_second_makes_a_new_template(
    psk_pair: tuple[config_mod.Config, SecurityProvider, SecurityProvider],
    dispatches: list[str],
) -> None:
    """The copies of one directed request arriving in another second are stamped with it."""
    cfg, node_sec, client_sec = psk_pair
    clock = [float(NOW)]
    shard = sim.Shard(cfg, sim.identities(4), 4, security=node_sec, clock=lambda: clock[0])
    payload = encode(client_sec, "discovery", "ping")
    times = []
    for i, name in enumerate(sim.identities(4)):
        clock[0] = float(NOW + (i // 2))
        d = Delivery(payload, reply_to="q", destination=f"mcollective_directed/{name}")
        (o,) = shard.answer(d, 0.0)
        times.append(client_sec.decode_reply(o.payload).msgtime)
    assert times == [NOW, NOW, NOW + 1, NOW + 1]
    assert dispatches == ["sim-00001", "sim-00003"]


# ---------------------------------------------------------------- directed copies
def test_directed_copies_are_decoded_once_and_ttl_checked_each_time(
    psk_pair: tuple[config_mod.Config, SecurityProvider, SecurityProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg, _, client_sec = psk_pair
    clock = [time.time()]
    node_sec = PskSecurity(PSK, clock=lambda: clock[0])
    decoded: list[bytes] = []
    real = node_sec.decode_request
    monkeypatch.setattr(node_sec, "decode_request", lambda p: decoded.append(p) or real(p))
    names = sim.identities(5)
    shard = sim.Shard(cfg, names, 5, security=node_sec)
    flt = Filter.from_cli(identity=names[:4])
    payload = encode(client_sec, "rpcutil", rpc(client_sec, "ping"), flt)
    got = []
    for name in names:
        d = Delivery(payload, reply_to="q", destination=f"mcollective_directed/{name}")
        got += [client_sec.decode_reply(o.payload).senderid for o in shard.answer(d, 0.0)]
    assert got == names[:4]  # sim-00005 is not in the identity filter
    assert len(decoded) == 1
    s = shard.stats.snapshot()
    assert (s["total"], s["validated"], s["passed"], s["filtered"], s["replies"]) == (5, 5, 4, 1, 4)
    clock[0] += 3600  # the same copy, an hour later: expired, though remembered
    d = Delivery(payload, reply_to="q", destination="mcollective_directed/sim-00001")
    assert shard.answer(d, 0.0) == []
    assert shard.stats.snapshot()["ttlexpired"] == 1 and len(decoded) == 1
    forged = payload.replace(b"ping", b"pong")  # not the remembered bytes: checked, refused
    d = Delivery(forged, reply_to="q", destination="mcollective_directed/sim-00001")
    assert shard.answer(d, 0.0) == [] and len(decoded) == 2


# ---------------------------------------------------------------- filters
FILTERS: dict[str, Filter | dict[str, Any]] = {
    "empty": Filter(),
    "identity": Filter.from_cli(identity=["sim-00003", "sim-00017"]),
    "identity-twice": Filter.from_cli(identity=["sim-00003", "sim-00003", "sim-00004"]),
    "identity-regex": Filter.from_cli(identity=["/sim-0001[0-4]/"]),
    "class": Filter.from_cli(cf_class=["haproxy"]),
    "class-regex": Filter.from_cli(cf_class=["/^roles::d/"]),
    "fact": Filter.from_cli(fact=["role=db", "datacenter=fra"]),
    "fact-lt": Filter.from_cli(fact=["node_index<5"]),
    "agent": Filter.from_cli(agent=["rpcutil"]),
    "agent-missing": Filter.from_cli(agent=["puppet"]),
    "compound": Filter.from_cli(select=["role=web and not datacenter=ams"]),
    "mixed": Filter.from_cli(identity=["sim-00001", "sim-00002"], cf_class=["roles::db"]),
    "partial-empty-hash": {"identity": [], "agent": []},
    "malformed": {"identity": "sim-00001", "fact": [], "cf_class": [], "agent": []},
}


@pytest.mark.parametrize("route", ["broadcast", "directed"])
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_recipients_are_filter_check_per_identity(
    psk_pair: tuple[config_mod.Config, SecurityProvider, SecurityProvider],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    route: str,
) -> None:
    """Broadcast: one delivery for the shard; directed: the same payload once per identity
    (the filter is parsed once for all copies)."""
    cfg, node_sec, client_sec = psk_pair
    total = 20
    names = sim.identities(total)
    shard = shard_of(cfg, node_sec, names)
    flt = FILTERS[name]
    d = Delivery(
        encode(client_sec, "discovery", "ping", flt),
        reply_to="q",
        destination="mcollective_broadcast/discovery",
    )
    raw = node_sec.decode_request(d.payload).filter
    expected = [
        n
        for i, n in enumerate(names, 1)
        if filter_check(
            raw,
            identity=n,
            facts=sim.node_facts(i, total, n),
            classes=sim.node_classes(i),
            agents=list(sim.AGENTS),
        ).matched
    ]
    parsed: list[object] = []
    real = Filter.from_wire
    monkeypatch.setattr(sim.Filter, "from_wire", lambda w: parsed.append(w) or real(w))
    if route == "broadcast":
        got = [o.identity for o in shard.answer(d, 0.0)]
    else:
        got = [
            o.identity
            for n in names
            for o in shard.answer(
                Delivery(d.payload, reply_to="q", destination=f"mcollective_directed/{n}"), 0.0
            )
        ]
    assert got == expected
    # once per request, whatever the copies (a filter without tests: once more inside the
    # one filter.check call that decides for everybody)
    assert len(parsed) == (2 if name in ("empty", "malformed", "partial-empty-hash") else 1)
    assert shard.stats.snapshot()["filtered"] == total - len(expected)
    assert 0 < len(expected) < total or name in (
        "empty",
        "agent",
        "agent-missing",
        "partial-empty-hash",
        "malformed",
    )


# ---------------------------------------------------------------- both clients, real broker
E2E_NODES = 200
SENDER_LINE = re.compile(r"^(sim-\d{5})\s*$", re.M)
PING_LINE = re.compile(r"^(sim-\d{5}) ", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def fleet200() -> Iterator[dict[str, str]]:
    """``mco-py lab sim --nodes 200`` (psk, no delay) in its own vhost; the clients' env."""
    root, env = sim_workspace("sim-splice", "mco-py-sim-splice")
    fleet = Sim(root / "server.cfg", E2E_NODES, env, ready_timeout=60)
    try:
        yield env
    finally:
        fleet.stop_cleanly()


def clients(env: dict[str, str], *args: str) -> dict[str, str]:
    """The stdout (colours removed) of ``mco-py ARGS`` and Ruby ``mco ARGS``; both must exit 0."""
    out = {}
    for name, r in (("mco-py", run_mco_py(env, *args)), ("mco", run_ruby_mco(env, *args))):
        assert r.returncode == 0, f"{name} {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
        out[name] = ANSI.sub("", r.stdout)
    return out


@pytest.mark.integration
def test_both_clients_get_every_node_from_spliced_replies(fleet200: dict[str, str]) -> None:
    everyone = set(sim.identities(E2E_NODES))
    for name, text in clients(fleet200, "rpc", "rpcutil", "ping").items():
        senders = SENDER_LINE.findall(text)
        assert len(senders) == E2E_NODES and set(senders) == everyone, (name, text[-2000:])
        assert f"Finished processing {E2E_NODES} / {E2E_NODES} hosts" in text, (name, text)
    for name, text in clients(fleet200, "ping", "-t", "5").items():
        senders = PING_LINE.findall(text)
        assert len(senders) == E2E_NODES and set(senders) == everyone, (name, text[-2000:])


@pytest.mark.integration
def test_both_clients_get_per_node_facts_and_filtered_subsets(fleet200: dict[str, str]) -> None:
    # a non-ping action answers per node (no splice): each node its own node_index
    for name, text in clients(
        fleet200,
        "rpc",
        "rpcutil",
        "get_fact",
        "fact=node_index",
        "-I",
        "sim-00003",
        "-I",
        "sim-00150",
    ).items():
        values = re.findall(r"^(sim-\d{5})\s*\n\s*Fact: node_index\s*\n\s*Value: (\d+)", text, re.M)
        assert sorted(values) == [("sim-00003", "3"), ("sim-00150", "150")], (name, text)
    # role=db and datacenter=ams: the even nodes of the first half
    ams_db = {f"sim-{i:05d}" for i in range(2, E2E_NODES // 2 + 1, 2)}
    for name, text in clients(fleet200, "find", "-F", "role=db", "-F", "datacenter=ams").items():
        assert set(text.split()) == ams_db, (name, text)
    web_00x = {f"sim-{i:05d}" for i in range(1, 100, 2)}
    for name, text in clients(fleet200, "find", "-C", "roles::web", "-I", "/sim-000/").items():
        assert set(text.split()) == web_00x, (name, text)
    for name, text in clients(fleet200, "find", "-I", "sim-00007", "-I", "sim-00200").items():
        assert set(text.split()) == {"sim-00007", "sim-00200"}, (name, text)
