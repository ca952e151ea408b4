"""The Ruby subset DDL files are written in: what parses to what, and what is refused."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mcollective_py.ddl import AgentDDL, AggregateCall, DataDDL, DiscoveryDDL, PluginDDL, parse_ddl
from mcollective_py.errors import DDLError
from mcollective_py.ruby import values as rv
from mcollective_py.rubytypes import Regexp, Symbol

META = (
    'metadata :name => "t", :description => "d", :author => "a", :license => "l",\n'
    '         :version => "1", :url => "u", :timeout => 1\n'
)


def agent(body: str, prelude: str = "") -> AgentDDL:
    ddl = parse_ddl(META + prelude + body, filename="t.ddl")
    assert isinstance(ddl, AgentDDL)
    return ddl


def description(expr: str, prelude: str = "") -> Any:
    """The value ``expr`` evaluates to, seen through an action description."""
    ddl = agent(f'action "act", :description => ({expr}).to_s do\nend\n', prelude)
    return ddl.actions["act"].description


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('"tab\\tnl\\nq\\"bs\\\\"', 'tab\tnl\nq"bs\\'),
        ("'single \\n \\' \\\\'", "single \\n ' \\"),
        ('"\\u00e9\\u{1F600 41}\\x41\\101\\e\\s\\0"', "\u00e9\U0001f600A" + "AA\x1b \x00"),
        ('"\\#{not} #@ and #$ stay"', "#{not} #@ and #$ stay"),
        ('"a" "b" \'c\'', "abc"),
        ("%q(a (nested) b)", "a (nested) b"),
        ("%Q[x#{1 + 1}y]", "x2y"),
        ("%(plain #{2 * 3})", "plain 6"),
        ('"#{"inner #{"deep"}"}"', "inner deep"),
        ("%w[a b\\ c].join('|')", "a|b c"),
        ("%i[a b].first.inspect", ":a"),
        ("[1, [2, [3]]].join(',')", "1,2,3"),
        ('{"a" => 1, :b => [nil, true]}.inspect', '{"a"=>1, :b=>[nil, true]}'),
        ("{key: 1}.keys.first.inspect", ":key"),
        ('{"quoted": 1}.keys.first.inspect', ":quoted"),
        ("0x1f + 0b11 + 0o10 + 010 + 1_000", "1050"),
        ("7 / 2 * 2 + -7 / 2", "2"),
        ("7.0 / 2", "3.5"),
        ("10 % 3", "1"),
        ("1e20", "1.0e+20"),
        ("-1.5.abs", "1.5"),
        ('"%05.1f|%-4s|%d" % [3.14159, :ab, 42]', "003.1|ab  |42"),
        ('"ab" * 3', "ababab"),
        ('"Hello World".swapcase.sub(/O/, "0").gsub("L", "l")', "hEll0 wORlD"),
        ("'service'.sub(/(v)(i)/, '<\\\\2\\\\1>')", "ser<iv>ce"),
        ("'stop'.sub(/p$/, 'pp') + 'ing'", "stopping"),
        ("'a-b_c'.tr('-_', '  ').capitalize", "A b c"),
        ("'  x  '.strip.center(5, '*')", "**x**"),
        ("'a,b,,c'.split(',').length", "4"),
        (":sym.to_s.upcase", "SYM"),
        (":sym.capitalize.inspect", ":Sym"),
        ('"x".to_sym.inspect', ":x"),
        ("'12abc'.to_i + '1.5e1x'.to_f", "27.0"),
        ("[3, 1, 2].sort.reverse.map { |n| n * 2 }.join(' ')", "6 4 2"),
        ("{'a' => 1}.fetch('b', 'dflt')", "dflt"),
        ("nil.to_a.inspect + nil.inspect", "[]nil"),
        ("[1, 1.0, '1', :a, :a].uniq.inspect", '[1, 1.0, "1", :a]'),
    ],
)
def test_expressions(expr: str, expected: str) -> None:
    assert description(expr) == expected


def test_heredocs() -> None:
    ddl = agent(
        "usage <<-A + <<~B + <<'C' + <<\"D\"\n"
        "  dash: #{1}\n"
        "  A\n"
        "    squiggly #{2}\n"
        "      indented\n"
        "\n"
        "    B\n"
        "raw #{3}\n"
        "C\n"
        "quoted #{4}\n"
        "D\n"
    )
    assert ddl.usage == "  dash: 1\nsquiggly 2\n  indented\n\nraw #{3}\nquoted 4\n"


def test_comments_begin_end_and_end_marker() -> None:
    ddl = agent(
        "# comment with action inside\n=begin\naction 'x'\n=end\n"
        "action 'a', :description => 'd' do # trailing comment\nend\n__END__\naction (broken"
    )
    assert list(ddl.actions) == ["a"]


def test_loops_define_actions_with_interpolated_text() -> None:
    ddl = agent(
        '["start", "stop"].each do |act|\n'
        '  action act, :description => "#{act.capitalize} it" do\n'
        '    output :status, :description => "after #{act.sub(/p$/, \'pp\')}ing", :display_as => "S"\n'
        "  end\n"
        "end\n"
        "{'a' => 1}.each { |name, n| action name, :description => \"#{name}#{n}\" do\nend }\n"
        '%w[x y].each_with_index do |name, i|\n  action name, :description => "#{i}" do\n  end\nend\n'
    )
    assert [(a.name, a.description) for a in ddl.actions.values()] == [
        ("start", "Start it"),
        ("stop", "Stop it"),
        ("a", "a1"),
        ("x", "0"),
        ("y", "1"),
    ]
    assert ddl.actions["stop"].outputs["status"].description == "after stopping"


def test_local_variables_are_shared_with_blocks() -> None:
    ddl = agent(
        "pattern = '\\A[a-z]+\\z'\n"
        "props = {:prompt => 'P', :description => 'D', :type => :string, :validation => pattern,\n"
        "         :maxlength => 5, :optional => true}\n"
        "action 'a', :description => 'd' do\n  input :x, props\nend\n"
    )
    item = ddl.actions["a"].inputs["x"]
    assert item.validation == "\\A[a-z]+\\z" and item.maxlength == 5 and item.optional is True


def test_repeated_action_extends_and_repeated_input_replaces_in_place() -> None:
    ddl = agent(
        "action 'a', :description => 'first' do\n"
        "  input :x, :prompt => 'X1', :description => 'x', :type => :integer, :optional => true\n"
        "  input :y, :prompt => 'Y', :description => 'y', :type => :integer, :optional => true\n"
        "end\n"
        "action 'a', :description => 'second' do\n"
        "  input :x, :prompt => 'X2', :description => 'x', :type => :integer, :optional => false\n"
        "end\n"
    )
    action = ddl.actions["a"]
    assert action.description == "first"
    assert [(i.name, i.prompt) for i in action.inputs.values()] == [("x", "X2"), ("y", "Y")]


def test_model_fields() -> None:
    ddl = agent(
        "requires :mcollective => '2.2.1'\n"
        "action 'a', :description => 'd' do\n"
        "  display :always\n"
        "  input :l, :prompt => 'L', :description => 'l', :type => :list, :list => ['x', :y], :optional => true, :default => 'x'\n"
        "  input 's', :prompt => 'S', :description => 's', :type => :string, :validation => /a/mi, :maxlength => 3, :optional => false\n"
        "  output :o, :description => 'o', :display_as => 'O', :default => {:k => [1]}, :type => :string\n"
        "  summarize do\n"
        "    aggregate summary(:o)\n"
        "    aggregate average(:o, :format => '%d'), :format => 'ignored'\n"
        "    aggregate my_plugin(:o, 1, 'two')\n"
        "  end\n"
        "end\n"
    )
    assert ddl.requirements == {"mcollective": "2.2.1"}
    action = ddl.actions["a"]
    assert action.display == "always"
    lst = action.inputs["l"]
    assert (lst.type, lst.list, lst.default, lst.required) == (
        "list",
        ("x", Symbol("y")),
        "x",
        False,
    )
    string = action.inputs["s"]
    assert type(string.key) is str and type(lst.key) is Symbol
    assert string.validation == Regexp("a", 5) and string.required
    assert action.outputs["o"].default == {Symbol("k"): [1]}
    assert action.aggregates == (
        AggregateCall("summary", (Symbol("o"),)),
        AggregateCall("average", (Symbol("o"), {Symbol("format"): "%d"}), "ignored"),
        AggregateCall("my_plugin", (Symbol("o"), 1, "two")),
    )


def test_core_aggregate_names_work_outside_summarize_like_ruby() -> None:
    ddl = agent(
        "action 'a', :description => 'd' do\n  output :o, :description => 'o', :display_as => 'O'\n"
        "  aggregate sum(:o)\nend\n"
    )
    assert ddl.actions["a"].aggregates == (AggregateCall("sum", (Symbol("o"),)),)
    with pytest.raises(DDLError, match=r"^t\.ddl:4:13: undefined method 'my_plugin'"):
        agent("action 'a', :description => 'd' do\n  aggregate my_plugin(:o)\nend\n")


def test_other_kinds() -> None:
    data = parse_ddl(
        META + "dataquery :description => 'q' do\nend\n", kind="data", filename="d.ddl"
    )
    assert isinstance(data, DataDDL) and data.query is not None and data.query.description == "q"
    disc = parse_ddl(
        META + "discovery do\n  capabilities :facts, [:identity]\nend\n",
        kind="discovery",
        filename="d.ddl",
    )
    assert isinstance(disc, DiscoveryDDL) and disc.capabilities == ("facts", "identity")
    plain = parse_ddl(META + "usage 'u'\n", kind="connector", filename="c.ddl")
    assert isinstance(plain, PluginDDL) and plain.usage == "u" and plain.metadata.timeout == 1
    assert parse_ddl(META, kind="data", filename="d.ddl").query is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("while true\nend\n", r"unsupported Ruby construct: 'while' \(loops other than .each\)"),
        ("x = 1 if true and false\n", r"unsupported Ruby construct: 'and' \(boolean operators\)"),
        ("unless true then x = 1 elsif false then end\n", r"syntax error: 'unless' has no 'elsif'"),
        ("if true x = 1\nend\n", r"syntax error: expected 'then' or a newline after the condition"),
        ("def x\nend\n", r"unsupported Ruby construct: 'def' \(method definitions\)"),
        ("File.read('/etc/passwd')\n", r"unsupported Ruby construct: constant 'File'"),
        ("`id`\n", r"backtick command execution is not allowed"),
        ("@x = 1\n", r"unsupported Ruby construct: variable '@x'"),
        ("x = 1 < 2\n", r"unsupported Ruby construct: operator '<'"),
        ("x = 1 == 1 == 1\n", r"unsupported Ruby construct: operator '=='"),
        ("x = true ? 1 : 2\n", r"unsupported Ruby construct: operator '\?'"),
        ("x = [1].map(&:to_s)\n", r"unsupported Ruby construct: '&' argument splat"),
        ('x = "#@ivar"\n', r"unsupported Ruby construct: '#@' interpolation"),
        ("eval('1')\n", r"undefined method 'eval'"),
        ("system('ls')\n", r"undefined method 'system'"),
        ("x = 'a'.send(:upcase)\n", r"undefined method 'send' for \"a\":String"),
        ("x = 'a' + 1\n", r"no implicit conversion of Integer into String \(in '\+'\)"),
        ("x = 1 / 0\n", r"divided by 0"),
        ("x = 'a' * 2_000_000\n", r"string is too long"),
        ("x = [1].each\n", r"each needs a block"),
        ("x = /[/\n", r"invalid regex literal /\[/: "),
        ("x = /\\p{Alpha}/\n", None),
    ],
)
def test_refused_constructs(source: str, message: str | None) -> None:
    if message is None:  # valid Ruby that Python's re cannot run: loads, fails only when used
        agent(source)
        return
    with pytest.raises(DDLError) as info:
        agent(source)
    assert str(info.value).startswith("t.ddl:3:")
    assert re.search(message, str(info.value)), str(info.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("metadata 'x'\n", "metadata expects :name => .., :description => .. pairs"),
        (META.replace('"1"', "1.0"), "metadata :version must be a String, not 1.0; quote it"),
        (
            META
            + "action 'a', :description => 'd' do\n  input :x, :prompt => 'p', :description => 'd', :type => 'string', :optional => true\nend\n",
            'input :x: :type must be a Symbol such as :string, not "string"',
        ),
        (
            META
            + "action 'a', :description => 'd' do\n  input :x, :prompt => 'p', :description => 'd', :type => :integer, :optional => 'yes'\nend\n",
            'input :x: :optional must be true or false, not "yes"',
        ),
        (
            META
            + "action 'a', :description => 'd' do\n  input :x, :prompt => 'p', :description => 'd', :type => :string, :validation => 1, :maxlength => 1, :optional => true\nend\n",
            ":validation must be a regex String, a /regex/ or a validator Symbol, not 1",
        ),
        (
            META + "action :a, :description => 'd' do\nend\n",
            "action name must be a String, not :a; quote it",
        ),
        (META + "display :always\n", "display must be called inside an action block"),
        (
            META + "action 'a', :description => 'd' do\n  summarize\nend\n",
            "summarize needs a block",
        ),
        (
            META + "action 'a', :description => 'd', :x => 1, 2 do\nend\n",
            "positional arguments must come before key => value pairs",
        ),
        (
            META
            + "action 'a', :description => 'd' do\n  input :x, :prompt => 'p', :description => 'd', :type => :integer, :optional => true\n"
            "  input 'x', :prompt => 'p', :description => 'd', :type => :integer, :optional => true\nend\n",
            "'x' is declared both as :x and \"x\"",
        ),
        ("usage 'no metadata'\n", "no metadata; every DDL starts with metadata"),
    ],
)
def test_stricter_than_ruby_and_structural_errors(source: str, message: str) -> None:
    with pytest.raises(DDLError) as info:
        parse_ddl(source, filename="t.ddl")
    assert message in str(info.value)
    assert str(info.value).startswith("t.ddl:")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1 if true", 1),
        ("x = 1 unless true", None),
        ("x = if false then 1 elsif nil then 2 else 3 end", 3),
        ("x = (1 && nil) || 'b'", "b"),
        ("x = 1 && 2", 2),
        ("x = !nil && !!1", True),
        ("x = 1 == 1.0", True),
        ("x = :a != 'a'", True),
        ("x = 1 + 1 == 2 && 'a' * 2 == 'aa'", True),
        ("x = respond_to?(:summarize)", True),
        ("x = respond_to?('dataquery')", False),
        ("x = respond_to?(:inspect)", True),
    ],
)
def test_conditions_evaluate_like_ruby(source: str, expected: Any) -> None:
    ddl = agent(source + '\naction "a", :description => x.inspect do\nend\n')
    assert ddl.actions["a"].description == rv.inspect(expected)


def test_an_unclosed_if_names_its_opener() -> None:
    with pytest.raises(DDLError, match=r"expected 'end' to close 'if' opened at 3:1"):
        agent("if true\nx = 1\n")
