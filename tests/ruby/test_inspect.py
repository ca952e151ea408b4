"""inspect and pretty_inspect stop at their budget while they walk (no expansion first)."""

from __future__ import annotations

from typing import Any

import pytest

from mcollective_py import marshal
from mcollective_py.render import pretty_inspect
from mcollective_py.ruby import values as rv
from mcollective_py.ruby.inspect import CUT_MARK, Budget, inspect
from mcollective_py.rubytypes import Regexp, Symbol


class CountingList(list):  # type: ignore[type-arg]
    """A list that counts how often it is walked (shared by every visit)."""

    walks = 0

    def __iter__(self) -> Any:
        CountingList.walks += 1
        return super().__iter__()


def shared_tree(depth: int, leaf: Any = 1, kind: type = list) -> Any:
    """``x = [x, x]`` ``depth`` deep: 2**depth leaves from depth + 1 objects."""
    x = leaf
    for _ in range(depth):
        x = kind([x, x])
    return x


def test_small_values_are_exactly_rubys() -> None:
    value = {Symbol("a"): [1, 2.5, None, "x\n"], "b": Regexp("a/b", 1), True: b"\x00"}
    assert inspect(value) == '{:a=>[1, 2.5, nil, "x\\n"], "b"=>/a\\/b/i, true=>"\\x00"}'
    assert CUT_MARK not in pretty_inspect(value)


def test_shared_references_stop_at_the_char_budget() -> None:
    text = inspect(shared_tree(20), Budget(chars=1000, nodes=10**9))
    assert text.endswith(CUT_MARK)
    assert len(text) == 1000 + len(CUT_MARK)
    assert text.startswith("[[[[")


def test_walk_is_linear_in_the_node_budget() -> None:
    CountingList.walks = 0
    text = inspect(shared_tree(20, kind=CountingList), Budget(chars=10**9, nodes=500))
    assert text.endswith(CUT_MARK)
    # every list visited is walked once; never more lists than the node budget
    assert 0 < CountingList.walks <= 500


def test_pretty_inspect_is_cut_too() -> None:
    CountingList.walks = 0
    text = pretty_inspect(shared_tree(20, kind=CountingList), budget=Budget(chars=5000, nodes=800))
    assert text.endswith(CUT_MARK)
    assert len(text) <= 5000 + 80 * 2 + len(CUT_MARK)  # the text plus line-break indents
    assert CountingList.walks <= 800


def test_marshal_links_decoded_then_inspected_stay_bounded() -> None:
    # 20 nested arrays, each [link, link] to the one inside: a few hundred bytes on the wire
    inner = marshal.dumps(["leaf"])
    value = marshal.loads(inner)
    for _ in range(20):
        value = [value, value]
    wire = marshal.dumps(value)
    assert len(wire) < 1000
    # the wire decoder refuses this by default (max_expansion; tests/hostile/
    # test_decode_limits.py); here the renderer's own budget is under test
    decoded = marshal.loads(wire, max_expansion=1 << 30)
    assert decoded[0] is decoded[1]
    text = inspect(decoded)
    assert text.endswith(CUT_MARK)


def test_ddl_messages_use_the_budget() -> None:
    assert rv.inspect(shared_tree(25)).endswith(CUT_MARK)


@pytest.mark.parametrize("budget", [Budget(chars=0, nodes=10), Budget(chars=10, nodes=0)])
def test_zero_budgets_give_only_the_mark(budget: Budget) -> None:
    assert inspect([1, 2, 3], budget) == CUT_MARK


def test_validation_messages_of_shared_reference_values_stay_short() -> None:
    from mcollective_py.ddl import AgentDDL, parse_ddl
    from mcollective_py.ddl.request import request_problems

    ddl = parse_ddl(
        'metadata :name => "t", :description => "d", :author => "a", :license => "l",\n'
        '         :version => "1", :url => "u", :timeout => 1\n'
        'action "act", :description => "d" do\n'
        '  input :x, :prompt => "X", :description => "x", :type => :string,\n'
        "        :validation => '.', :maxlength => 0, :optional => false\n"
        "end\n",
        filename="t.ddl",
    )
    assert isinstance(ddl, AgentDDL)
    CountingList.walks = 0
    (problem,) = request_problems(ddl, "act", {Symbol("x"): shared_tree(20, kind=CountingList)})
    assert problem.message.startswith("input 'x': [[[[") and len(problem.message) < 200
    assert problem.ruby_message == "Cannot validate input x: value should be a string"
    assert CountingList.walks <= 200  # the message walked only what it shows


def test_a_long_string_is_cut_like_its_full_inspect() -> None:
    text = "é\n" * 5000
    full = inspect(text, Budget(chars=10**9, nodes=10))
    cut = inspect(text, Budget(chars=301, nodes=10))
    assert cut == full[:301] + CUT_MARK
    assert inspect(Symbol("a" * 50), Budget(chars=10, nodes=10)) == ":aaaaaaaaa" + CUT_MARK
