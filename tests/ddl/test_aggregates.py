"""Aggregate summaries: the text mco prints, compared with Ruby's Aggregate + RPC::Stats."""

from __future__ import annotations

from typing import Any

import pytest

from mcollective_py.ddl import AgentDDL, format_summaries, parse_ddl, summarize
from mcollective_py.ddl.aggregates import CORE_FUNCTIONS, Summary
from mcollective_py.rubytypes import Symbol
from tests.ddl.conftest import ruby_integration, run_ruby
from tests.ddl.rubyshape import tag

META = (
    'metadata :name => "t", :description => "d", :author => "a", :license => "l",\n'
    '         :version => "1", :url => "u", :timeout => 1\n'
)


def agent(summarize_block: str, outputs: tuple[str, ...] = ("x", "y", "n")) -> str:
    outs = "".join(
        f'  output :{o}, :description => "{o}", :display_as => "{o.upper()} Label"\n'
        for o in outputs
    )
    return (
        META
        + f'action "act", :description => "d" do\n{outs}  summarize do\n{summarize_block}\n  end\nend\n'
    )


def replies(key: str, *values: Any) -> list[dict[Any, Any]]:
    return [{Symbol(key): v} for v in values]


def mixed(*rows: dict[str, Any]) -> list[dict[Any, Any]]:
    return [{Symbol(k): v for k, v in row.items()} for row in rows]


# (id, ddl, replies, functions without boolean_summary?)  -- Debian's Ruby has no
# boolean_summary plugin, so cases using it are compared with it disabled on our side.
CASES: list[tuple[str, str, list[dict[Any, Any]]]] = [
    ("summary-strings", agent("aggregate summary(:x)"), replies("x", "b", "a", "b", "c", "a", "b")),
    (
        "summary-ties-keep-reverse-arrival-order",
        agent("aggregate summary(:x)"),
        replies("x", "a", "b", "c", "d", "c"),
    ),
    (
        "summary-arrays-count-elements",
        agent("aggregate summary(:x)"),
        replies("x", ["m", "uk"], ["m"], "m"),
    ),
    ("summary-skips-nil", agent("aggregate summary(:x)"), replies("x", None, "a", None)),
    ("summary-nil-inside-array", agent("aggregate summary(:x)"), replies("x", ["a", None])),
    ("summary-all-nil", agent("aggregate summary(:x)"), replies("x", None, None)),
    ("summary-no-replies", agent("aggregate summary(:x)"), []),
    (
        "summary-numbers-and-bools",
        agent("aggregate summary(:x)"),
        replies("x", 1, 1.0, True, 1, False, "1"),
    ),
    ("summary-hash-values", agent("aggregate summary(:x)"), replies("x", {"a": 1}, {"a": 1}, {})),
    (
        "summary-custom-format",
        agent('aggregate summary(:x, :format => "%-6s|%3d")'),
        replies("x", "ab", "ab", "c"),
    ),
    (
        "summary-merged-format-is-ignored",
        agent('aggregate summary(:x), :format => "%s!!"'),
        replies("x", "a"),
    ),
    (
        "summary-long-keys",
        agent("aggregate summary(:x)"),
        replies("x", "short", "a much longer value", "short"),
    ),
    ("average-integers-floor", agent("aggregate average(:x)"), replies("x", 1, 2, 2)),
    ("average-negative-floor", agent("aggregate average(:x)"), replies("x", -7, 2)),
    (
        "average-floats",
        agent('aggregate average(:x, :format => "Avg: %.3f")'),
        replies("x", 1.5, 2.25),
    ),
    ("average-mixed", agent('aggregate average(:x, :format => "%s")'), replies("x", 1, 2.5)),
    ("average-no-replies", agent("aggregate average(:x)"), []),
    ("average-nil-fails", agent("aggregate average(:x)"), replies("x", 1, None, 3)),
    ("average-string-fails", agent("aggregate average(:x)"), replies("x", "1")),
    ("sum-integers", agent("aggregate sum(:x)"), replies("x", 1, 2, 3)),
    ("sum-format-d", agent('aggregate sum(:x, :format => "Total: %d")'), replies("x", 1.9, 2)),
    ("sum-bool-fails", agent("aggregate sum(:x)"), replies("x", True)),
    ("unknown-output", agent("aggregate summary(:nope)"), replies("x", "a")),
    ("unknown-function", agent("aggregate median(:x)"), replies("x", 1)),
    (
        "boolean-summary-not-installed",
        agent('aggregate boolean_summary(:x, {:true => "on", :false => "off"})'),
        replies("x", True),
    ),
    (
        "several-sorted-by-output",
        agent(
            'aggregate summary(:y)\n    aggregate sum(:x)\n    aggregate average(:n, :format => "%d")'
        ),
        mixed({"x": 1, "y": "a", "n": 4}, {"x": 2, "y": "b", "n": 6}),
    ),
    (
        "failure-skips-next-function-for-that-reply",
        agent("aggregate average(:x)\n    aggregate summary(:y)\n    aggregate summary(:n)"),
        mixed(
            {"x": 1, "y": "a", "n": "p"},
            {"x": None, "y": "b", "n": "q"},
            {"x": 3, "y": "c", "n": "r"},
        ),
    ),
    (
        "reply-without-the-output",
        agent("aggregate summary(:x)"),
        [{Symbol("y"): 1}, {Symbol("x"): "a"}],
    ),
    (
        "format-with-newline",
        agent('aggregate summary(:x, :format => "%s\\n= %d")'),
        replies("x", "a"),
    ),
]

WITHOUT_BOOLEAN = {k: v for k, v in CORE_FUNCTIONS.items() if k != "boolean_summary"}


def _ours(ddl_text: str, data: list[dict[Any, Any]], *, color: bool) -> str:
    ddl = parse_ddl(ddl_text, name="t", filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    return format_summaries(
        summarize(ddl.actions["act"], data, functions=WITHOUT_BOOLEAN), color=color
    )


@ruby_integration
def test_aggregate_text_matches_ruby() -> None:
    payload = [
        {
            "mode": "aggregate",
            "ddl": ddl,
            "action": "act",
            "replies": [tag(r) for r in data],
            "color": color,
        }
        for _, ddl, data in CASES
        for color in (True, False)
    ]
    outcomes = iter(run_ruby("ruby_oracle.rb", payload))
    mismatches = []
    for cid, ddl, data in CASES:
        for color in (True, False):
            ruby = next(outcomes)
            assert ruby["ok"], (cid, ruby)
            ours = _ours(ddl, data, color=color)
            if ours != ruby["result"]:
                mismatches.append((cid, color, ruby["result"], ours))
    assert mismatches == []


def test_summary_output_example() -> None:
    text = _ours(
        agent("aggregate summary(:x)"),
        replies("x", "mcollective", "uk", "mcollective"),
        color=False,
    )
    assert text == "Summary of X Label:\n\n   mcollective = 2\n            uk = 1\n\n"


def test_colored_no_summary_and_failure() -> None:
    text = _ours(
        agent("aggregate summary(:x)\n    aggregate average(:y)"), replies("x", None), color=True
    )
    assert text == (
        "\x1b[1mSummary of X Label:\x1b[0m\n\n\x1b[33m     No aggregate summary could be computed\x1b[0m\n\n"
        "\x1b[1mSummary of y:\x1b[0m\n\n\x1b[33m     Could not compute summary - exception raised while "
        "processing result data\x1b[0m\n\n"
    )


@pytest.mark.parametrize(
    ("args", "values", "expected"),
    [
        ("", [True, False, True], [" True = 2", "False = 1"]),
        (
            ', {:true => "enabled", :false => "disabled"}',
            [True, False, False],
            ["disabled = 2", "enabled = 1"],
        ),
        (', {:true => "up", :format => "%s: %d"}', [True, True], ["up: 2"]),
        (', {:format => "%s"}', [True], []),  # labels Hash left empty: every key is nil
    ],
)
def test_boolean_summary(args: str, values: list[Any], expected: list[str]) -> None:
    ddl = parse_ddl(agent(f"aggregate boolean_summary(:x{args})"), filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    (summary,) = summarize(ddl.actions["act"], replies("x", *values))
    assert summary.failure is None
    assert (summary.text.split("\n") if summary.text else []) == expected


def test_summaries_are_structured() -> None:
    ddl = parse_ddl(
        agent('aggregate sum(:x, :format => "%d total")\n    aggregate summary(:nope)'),
        filename="case.ddl",
    )
    assert isinstance(ddl, AgentDDL)
    assert summarize(ddl.actions["act"], replies("x", 2, 3)) == (
        Summary(output="x", display_as="X Label", function="sum", text="5 total"),
        Summary(
            output="nope",
            display_as="nope",
            function="summary",
            failure="unspecified output 'nope' for the action",
        ),
    )


def test_action_without_aggregates() -> None:
    ddl = parse_ddl(META + 'action "act", :description => "d" do\nend\n', filename="case.ddl")
    assert isinstance(ddl, AgentDDL)
    assert summarize(ddl.actions["act"], replies("x", 1)) == ()
    assert format_summaries(()) == ""
