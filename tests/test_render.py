from __future__ import annotations

import json
import math
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcollective_py import render, rubytypes
from mcollective_py.results import NodeReply, Results, Stats
from mcollective_py.rubytypes import Symbol

HERE = Path(__file__).parent


# ---------------------------------------------------------------- golden layouts (from a real mco run)
INVENTORY_DATA = {
    "agents": ["echo", "discovery", "rpcutil"],
    "facts": {"role": "web", "datacenter": "ams", "node_index": "1", "environment": "lab"},
    "classes": ["roles::web", "haproxy", "mcollective"],
    "version": "2.12.5",
    "main_collective": "mcollective",
    "collectives": ["mcollective"],
    "data_plugins": ["agent_data", "collective_data", "fact_data", "fstat_data"],
}
INVENTORY_LABELS = {
    "agents": "Agents",
    "facts": "Facts",
    "classes": "Classes",
    "version": "Version",
    "main_collective": "Main Collective",
    "collectives": "All Collectives",
    "data_plugins": "Data Plugins",
}
# Exactly what `mco rpc rpcutil inventory -I node1` printed for node1 (shared/reference).
INVENTORY_BLOCK = """\
node1                                    
            Agents: ["echo", "discovery", "rpcutil"]
           Classes: ["roles::web", "haproxy", "mcollective"]
   All Collectives: ["mcollective"]
      Data Plugins: ["agent_data", "collective_data", "fact_data", "fstat_data"]
             Facts: {"role"=>"web", "datacenter"=>"ams", "node_index"=>"1", "environment"=>"lab"}
   Main Collective: mcollective
           Version: 2.12.5

"""


def test_text_for_result_matches_mco_inventory_block() -> None:
    r = NodeReply("node1", "rpcutil", "inventory", 0, "OK", INVENTORY_DATA)
    assert render.text_for_result(r, INVENTORY_LABELS, color=False) == INVENTORY_BLOCK


def test_failed_result_shows_label_and_message_in_colour() -> None:
    r = NodeReply(
        "node1",
        "echo",
        "echo",
        1,
        "Failed to run echo.py: echo.py asked to fail with 1\n",
        {"msg": "x"},
    )
    assert render.text_for_result(r, color=True) == (
        "node1                                    \x1b[31mRequest Aborted\x1b[0m\n"
        "   \x1b[33mFailed to run echo.py: echo.py asked to fail with 1\n\x1b[0m\n\n"
    )


def test_agent_inventory_wraps_like_ruby_pp() -> None:
    agents = [
        {
            Symbol("agent"): "rpcutil",
            Symbol("license"): "Apache License, Version 2.0",
            Symbol("timeout"): 10,
            Symbol(
                "description"
            ): "General helpful actions that expose stats and internals to SimpleRPC clients",
            Symbol("name"): "rpcutil",
        }
    ]
    r = NodeReply("node2", "rpcutil", "agent_inventory", 0, "OK", {"agents": agents})
    assert render.text_for_result(r, {"agents": "Agents"}, color=False) == (
        "node2                                    \n"
        '   Agents: [{:agent=>"rpcutil",\n'
        '             :license=>"Apache License, Version 2.0",\n'
        "             :timeout=>10,\n"
        "             :description=>\n"
        '              "General helpful actions that expose stats and internals to SimpleRPC clients",\n'
        '             :name=>"rpcutil"}]\n\n'
    )


def _results(discovered: tuple[str, ...], replies: tuple[NodeReply, ...]) -> Results:
    return Results("rpcutil", "ping", "0" * 32, discovered, replies, Stats(0, 2.0, 0.01458, 2.02))


def test_summary_and_no_response_table() -> None:
    ok = NodeReply("node1", "rpcutil", "ping", 0, "OK", {"pong": 1})
    text = render.rpc_stats_text(_results(("node1", "node2", "node3"), (ok,)), color=False)
    assert text == (
        "\nFinished processing 1 / 3 hosts in 14.58 ms\n\n\n"
        "No response from:\n\n"
        "   " + " node2".ljust(31) + " node3".ljust(31) + " " * 31 + "\n\n"
    )


def test_summary_when_all_answered_is_green() -> None:
    ok = NodeReply("node1", "rpcutil", "ping", 0, "OK", {"pong": 1})
    text = render.puts(render.rpc_stats_text(_results(("node1",), (ok,))))
    assert text == "\nFinished processing \x1b[32m1\x1b[0m / \x1b[32m1\x1b[0m hosts in 14.58 ms\n\n"


def test_ping_summary() -> None:
    from mcollective_py.results import PingReply

    reps = [PingReply("node2", 8.85), PingReply("node1", 10.01), PingReply("node3", 11.79)]
    assert (
        render.ping_summary(reps)
        == "\n\n---- ping statistics ----\n3 replies max: 11.79 min: 8.85 avg: 10.22 \n"
    )
    assert render.ping_summary([]) == "\n\n---- ping statistics ----\nNo responses received\n"


def test_facts_report() -> None:
    text = render.facts_text("role", {"web": ["node1", "node3"], "db": ["node2"]})
    assert text == (
        "Report for fact: role\n\n"
        "        db                                       found 1 times\n"
        "        web                                      found 2 times\n"
    )


@pytest.mark.parametrize(
    ("x", "want"),
    [
        (1.0, "1.0"),
        (1.5, "1.5"),
        (1e20, "1.0e+20"),
        (1e16, "1.0e+16"),
        (1e15, "1.0e+15"),
        (1.5e15, "1.5e+15"),  # point at the 16th place, no digits after it
        (2203266383269103.2, "2203266383269103.2"),  # ... with digits after it: fixed
        (1000000000000000.2, "1000000000000000.2"),
        (123456789012345.0, "123456789012345.0"),
        (0.0001, "0.0001"),
        (0.00001, "1.0e-05"),
        (-0.0, "-0.0"),
        (math.inf, "Infinity"),
        (math.nan, "NaN"),
        (123456.789, "123456.789"),
        (1.2345e-7, "1.2345e-07"),
    ],
)
def test_ruby_float(x: float, want: str) -> None:
    assert rubytypes.float_to_s(x) == want


# ---------------------------------------------------------------- against the real Ruby
def _tag(v: Any) -> Any:
    if v is None:
        return {"n": None}
    if isinstance(v, bool):
        return {"b": v}
    if isinstance(v, int):
        return {"i": str(v)}
    if isinstance(v, float):
        return {"f": repr(v) if math.isfinite(v) else ("Infinity" if v > 0 else "-Infinity")}
    if isinstance(v, Symbol):
        return {"y": str.__str__(v)}
    if isinstance(v, str):
        return {"s": v}
    if isinstance(v, list):
        return {"a": [_tag(x) for x in v]}
    return {"h": [[_tag(k), _tag(x)] for k, x in v.items()]}


# Characters Unicode 3.2 already had (Ruby 3.1 knows Unicode 13, Python 3.11 knows 14).
_char = st.characters(codec="utf-8", exclude_categories=("Cs", "Cn")).filter(
    lambda c: unicodedata.ucd_3_2_0.category(c) != "Cn"
)
_text = st.text(alphabet=_char, max_size=30)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=True),
    _text,
    st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True).map(Symbol),
    st.text(alphabet='abc "#{}\\\n\t', max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=6),
        st.dictionaries(
            st.one_of(_text, st.from_regex(r"[a-z]{1,10}", fullmatch=True).map(Symbol)),
            kids,
            max_size=6,
        ),
    ),
    max_leaves=25,
)


class _Ruby:
    def __init__(self) -> None:
        self.p = subprocess.Popen(
            ["ruby", str(HERE / "ruby_values.rb")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def ask(self, v: Any) -> dict[str, str]:
        assert self.p.stdin and self.p.stdout
        self.p.stdin.write(json.dumps(_tag(v)) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self) -> None:
        assert self.p.stdin and self.p.stdout
        self.p.stdin.close()
        self.p.wait(timeout=10)
        self.p.stdout.close()


@pytest.fixture(scope="module")
def ruby() -> Any:
    r = _Ruby()
    yield r
    r.close()


@pytest.mark.integration
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(v=_values)
def test_inspect_and_pretty_inspect_match_ruby(ruby: _Ruby, v: Any) -> None:
    want = ruby.ask(v)
    assert rubytypes.inspect(v) == want["inspect"]
    assert render.pretty_inspect(v) == want["pretty"]


def test_silent_and_unexpected_nodes_are_both_listed() -> None:
    ok = NodeReply("node1", "rpcutil", "ping", 0, "OK", {"pong": 1})
    odd = NodeReply("stray", "rpcutil", "ping", 0, "OK", {"pong": 1})
    text = render.rpc_stats_text(_results(("node1", "node2"), (ok, odd)), color=False)
    assert text == (
        "\nFinished processing 2 / 2 hosts in 14.58 ms\n\n\n"
        "No response from:\n\n"
        "   " + " node2".ljust(31) + " " * 62 + "\n\n\n"
        "Unexpected response from:\n\n"
        "   " + " stray".ljust(31) + " " * 62 + "\n\n"
    )
