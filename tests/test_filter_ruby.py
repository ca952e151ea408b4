"""The golden filter table, checked against the REAL Ruby MCollective 2.12.5 code.

One ``ruby`` process runs every case (``RUBY_HARNESS`` below):

* parse cases call ``Util.parse_fact_string``, ``Matcher.create_compound_callstack`` and the
  real ``Optionparser`` (``--with-fact=...`` etc.), and return Ruby's values in a tagged
  JSON form that keeps Hash key order and Symbol/String/Regexp types;
* match cases call the real ``Security::Base#validate_filter?``.  Only the node is stubbed:
  ``Config.instance`` identity and classesfile (a temp file), ``Agents`` agent list, a facts
  plugin (a ``Facts::Base`` subclass returning the case's facts, so Ruby normalizes them) and
  data plugins returning ``Data::Result`` objects.  An exception out of ``validate_filter?``
  (the daemon drops the request) is reported as an error with no match.

Our side must give the same parse values (byte-for-byte in structure) and the same verdicts.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from typing import Any

import pytest

from mcollective_py.errors import UsageError
from mcollective_py.filter import Filter, check, compile_ruby_regex, parse_compound, parse_fact
from mcollective_py.rubytypes import Regexp, Symbol
from tests.test_filter import (
    MATCH_CASES,
    PARSE_CASES,
    filter_from_case,
    flag_pairs,
    golden_data_plugin,
)

RUBY = shutil.which("ruby") or "/usr/bin/ruby"

RUBY_HARNESS = r"""
require 'json'
require 'tempfile'
require 'mcollective'
include MCollective

# ---- how values travel back to Python: Hash order and Symbol/Regexp types are kept
def tag(v)
  case v
  when Hash then {"$hash" => v.map { |k, x| [tag(k), tag(x)] }}
  when Array then v.map { |x| tag(x) }
  when Symbol then {"$sym" => v.to_s}
  when Regexp then {"$regexp" => v.source, "options" => v.options}
  else v
  end
end

# ---- the readable golden wire form -> a real Ruby filter hash
def untag_wire(w)
  out = {}
  w.each do |k, v|
    out[k] = case k
             when "fact" then v.map { |f| f.map { |fk, fv| [fk.to_sym, fv] }.to_h }
             when "compound" then v.map { |stack| stack.map { |e| e.map { |ek, ev| [ek, ev.is_a?(Hash) ? untag_fstatement(ev) : ev] }.to_h } }
             else v.map { |e| e.is_a?(Hash) && e.key?("$regexp") ? Regexp.new(e["$regexp"], e["options"]) : e }
             end
  end
  out
end

def untag_fstatement(h)
  h.map { |k, v| [k, v.is_a?(Hash) && v.key?("$regexp") ? Regexp.new(v["$regexp"], v["options"]) : v] }.to_h
end

LONG = {"-W" => "--with", "-S" => "--select", "-F" => "--with-fact", "-C" => "--with-class",
        "-A" => "--with-agent", "-I" => "--with-identity"}

def parse_flags(pairs)
  ARGV.replace(pairs.map { |flag, value| "#{LONG.fetch(flag, flag)}=#{value}" })
  Optionparser.new({}, "filter").parse[:filter]
end

# ---- the stubbed node
class ::MCollective::Facts::Golden_facts < ::MCollective::Facts::Base
  def load_facts_from_source; $golden_facts; end
  def force_reload?; true; end
end

class GoldenData
  def initialize(table); @table = table; end
  def lookup(params)
    result = Data::Result.new({})
    (@table[params.nil? ? "null" : params] || {}).each { |k, v| result[k] = v }
    result
  end
end

PluginManager << {:type => "global_stats", :class => RunnerStats.new}
SECURITY = Security::Base.new
CLASSES = Tempfile.new("classes")
$data_plugins = []

def set_node(node)
  Config.instance.instance_variable_set(:@identity, node["identity"])
  File.write(CLASSES.path, node["classes"].map { |k| "#{k}\n" }.join)
  Config.instance.instance_variable_set(:@classesfile, CLASSES.path)
  Agents.class_variable_set(:@@agents, node["agents"].map { |a| [a, {}] }.to_h)
  $golden_facts = node["facts"]
  PluginManager["facts_plugin"].instance_variable_set(:@last_good_facts, {})
  $data_plugins.each { |p| PluginManager.delete(p) }
  $data_plugins = (node["data"] || {}).map do |name, table|
    PluginManager << {:type => "#{name}_data", :class => GoldenData.new(table)}
    "#{name}_data"
  end
end

def attempt
  {"ok" => tag(yield)}
rescue Exception => e
  {"error" => "#{e.class}: #{e.message}"}
end

cases = JSON.parse(STDIN.read)
results = {"parse" => {}, "match" => {}}
cases["parse"].each do |name, c|
  results["parse"][name] = attempt do
    case c["kind"]
    when "fact" then Util.parse_fact_string(c["input"])
    when "compound" then Matcher.create_compound_callstack(c["input"])
    when "flags" then parse_flags(c["flags"])
    end
  end
end
cases["match"].each do |name, c|
  results["match"][name] = attempt do
    filter = c["flags"] ? parse_flags(c["flags"]) : untag_wire(c["wire"])
    set_node(c["node"])
    SECURITY.validate_filter?(filter)
  end
end
results["regex"] = (cases["regex"] || []).map do |src, opts, texts|
  begin
    r = Regexp.new(src, opts)
    texts.map { |t| !!(t =~ r) }
  rescue RegexpError => e
    "error"
  end
end
puts JSON.generate(results)
"""


def tag(value: Any) -> Any:
    """Our wire values in the harness's tagged form (Symbol vs String is kept)."""
    if isinstance(value, dict):
        return {"$hash": [[tag(k), tag(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [tag(v) for v in value]
    if isinstance(value, Symbol):
        return {"$sym": str.__str__(value)}
    if isinstance(value, Regexp):
        return {"$regexp": value.source, "options": value.options}
    if isinstance(value, str):
        return str.__str__(value)
    return value


def run_ruby(payload: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("MCOLLECTIVE_EXTRA_OPTS", "RUBYOPT")}
    proc = subprocess.run(
        [RUBY, "-e", RUBY_HARNESS],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, (
        f"ruby harness failed (rc {proc.returncode}): {proc.stderr[-3000:]}"
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


# ---------------------------------------------------------------- seeded differential fuzz
# Beyond the golden table: random -F/-W/-S strings, random filters against random nodes and
# random regexes, all answered by the same Ruby process.  Seeds are fixed, so failures repeat.
# fmt: off
PIECES = [*"ab/=<>!() '\"\\.,_~\n\t1x", "and ", "or ", "not ", "fstat(", "')", "f('x')", ".size",
          "=/", "/ ", "é"]
FUZZ_VALUES = ["10", "010", "08", "9", "1.5", "1x5", "10.5", "abc", "", "1_000", "0x1", "12\n34", "é",
               "/x/"]
FUZZ_REGEXES = ["/^1/", "/a|b/", "/[0-9]+/", "/\\d/", "/(/", "/\\Aabc\\z/", "/b$/", "/^$/",
                "/[[:alpha:]]/", "/\\w+é/", "/x{,2}/", "/(?<n>a)\\k<n>/", "/a(?i)B|c/"]
FUZZ_FACTS = [*FUZZ_VALUES, ["10", "abc"], {"k": "v", "10": "x"}, 5, 2.5, True, None, ["a", ["b"]]]
OPERATORS = ["=", "==", "!=", "<", ">", "<=", ">=", "=~", "=>", "=<"]
CLASSES = ["base", "web::server", "x"]
# fmt: on


def fuzz_parse_cases(rng: random.Random, count: int) -> list[dict[str, Any]]:
    cases = []
    for i in range(count):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        cases.append({"name": f"fuzz_compound_{i}", "kind": "compound", "input": text})
        cases.append({"name": f"fuzz_fact_{i}", "kind": "fact", "input": text})
        cases.append({"name": f"fuzz_with_{i}", "kind": "flags", "flags": [["-W", text]]})
    return cases


def fuzz_match_cases(rng: random.Random, count: int) -> list[dict[str, Any]]:
    names = ["f1", "f2", "f3", "nope"]

    def fact_flag() -> str:
        op = rng.choice(OPERATORS)
        value = (
            rng.choice(FUZZ_REGEXES)
            if op == "=~" or rng.random() < 0.2
            else rng.choice(FUZZ_VALUES)
        )
        return rng.choice(names) + op + value

    def statement() -> str:
        r = rng.random()
        if r < 0.3:
            return rng.choice([*CLASSES, "/web/", "/^b/", "/(/"])
        if r < 0.8:
            value = rng.choice(FUZZ_VALUES + FUZZ_REGEXES)
            value = "abc" if not value or " " in value or "\n" in value else value
            return rng.choice(names) + rng.choice(["=", "<", ">", ">=", "<="]) + value
        call = rng.choice(
            ["fstat('/tmp').size", "fstat('/tmp').type", "fstat('/no').size", "nope('x').y"]
        )
        return (
            call
            + rng.choice(["=", ">", "<", "!=", ">="])
            + rng.choice(["0", "4096", "abc", "/dir/", "1.5", "true"])
        )

    def compound() -> str:
        words: list[str] = []
        for i in range(rng.randint(1, 4)):
            if i:
                words.append(rng.choice(["and", "or"]))
            if rng.random() < 0.3:
                words.append("not")
            words.append(statement())
        return " ".join(words)

    makers = {
        "-F": fact_flag,
        "-S": compound,
        "-C": lambda: rng.choice([*CLASSES, "/web/", "/^b/", "/(/"]),
        "-A": lambda: rng.choice(["rpcutil", "mcollective", "x", "/rpc/", "/[/"]),
        "-I": lambda: rng.choice(["n1", "n2", "/n/", "/^n1$/", "/\\d/"]),
        "-W": lambda: fact_flag() + " " + rng.choice(CLASSES),
    }
    cases = []
    for i in range(count):
        flags = []
        for _ in range(rng.randint(0, 3)):
            flag = rng.choice(["-F", "-F", "-S", "-S", "-C", "-A", "-I", "-W"])
            flags.append([flag, makers[flag]()])
        node = {
            "identity": rng.choice(["n1", "n2", "web1"]),
            "facts": {n: rng.choice(FUZZ_FACTS) for n in names[:3] if rng.random() < 0.9},
            "classes": rng.sample(CLASSES, rng.randint(0, 3)),
            "agents": ["rpcutil", "package"],
            "data": {
                "fstat": {
                    "/tmp": {
                        "size": rng.choice([0, 4096, 1.5]),
                        "type": rng.choice(["dir", "file"]),
                    }
                }
            },
        }
        cases.append({"name": f"fuzz_match_{i}", "flags": flags, "node": node})
    return cases


# fmt: off
REGEX_ATOMS = ["a", "b", "é", "É", ".", "\\w", "\\W", "\\d", "\\D", "\\s", "\\S", "\\h", "\\H",
               "[ab]", "[^a]", "[a-z]", "[[:alpha:]]", "[[:digit:]]", "[^[:space:]]", "[[:punct:]]",
               "\\n", "\n", "\\.", "\\/", "[|]", "[\\d_]", "[-a]", "\\x41", "\\u00e9", "_", "1",
               "[\\w.]", "[^\\s]", "\\e", "[[:^alpha:]]", "\\u{e9}"]
REGEX_ANCHORS = ["^", "$", "\\A", "\\z", "\\Z", "\\b", "\\B", "(?i)", "(?-i)", "(?m)"]
REGEX_QUANTIFIERS = ["", "", "", "*", "+", "?", "{1,2}", "{,2}", "*?", "+?", "++"]
REGEX_TEXTS = ["", "a", "ab", "a\n", "\na", "a\nb", "é", "É", "A", "a1_", " ", "\t", "1", "٣", "aa",
               "ba", "\x1b", "a.b", "a/b", "ab\n", "A é", "|", "-", "\u00a0"]
# fmt: on


def fuzz_regex_cases(rng: random.Random, count: int) -> list[list[Any]]:
    def pattern(depth: int) -> str:
        parts = []
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            if r < 0.15:
                parts.append(rng.choice(REGEX_ANCHORS))
            elif r < 0.3 and depth < 2:
                opener = rng.choice(["(", "(?:", "(?<n>", "(?=", "(?!", "(?i:", "(?m:"])
                parts.append(opener + pattern(depth + 1) + ")" + rng.choice(REGEX_QUANTIFIERS))
            elif r < 0.38:
                parts.append("|")
            else:
                parts.append(rng.choice(REGEX_ATOMS) + rng.choice(REGEX_QUANTIFIERS))
        return "".join(parts)

    return [
        [pattern(0), rng.choice([0, 0, 1, 2, 4]), rng.sample(REGEX_TEXTS, 8)] for _ in range(count)
    ]


FUZZ_PARSE = fuzz_parse_cases(random.Random(20261126), 600)
FUZZ_MATCH = fuzz_match_cases(random.Random(20261127), 600)
FUZZ_REGEX = fuzz_regex_cases(random.Random(20261128), 1500)
# Ruby accepts these; Python's re refuses them, and so do we (the test then fails): stacked
# quantifiers (a**), quantified anchors (\A+) and repeated group names.
REFUSED_BY_PYTHON = ("multiple repeat", "nothing to repeat", "redefinition of group name")


@pytest.fixture(scope="module")
def ruby_results() -> dict[str, Any]:
    if not os.path.exists(RUBY):
        pytest.fail("ruby is not installed: the Ruby interop tests need /usr/bin/ruby")
    payload = {
        "parse": {c["name"]: c for c in PARSE_CASES + FUZZ_PARSE},
        "match": {c["name"]: c for c in MATCH_CASES + FUZZ_MATCH},
        "regex": FUZZ_REGEX,
    }
    return run_ruby(payload)


def ours_parse(case: dict[str, Any]) -> dict[str, Any]:
    try:
        if case["kind"] == "fact":
            f = parse_fact(case["input"])
            value: Any = f.to_wire()
        elif case["kind"] == "compound":
            value = [t.to_wire() for t in parse_compound(case["input"])]
        else:
            value = Filter.from_flags(flag_pairs(case["flags"])).to_wire()
    except UsageError as exc:
        return {"error": str(exc)}
    return {"ok": tag(value)}


pytestmark = pytest.mark.integration


@pytest.mark.parametrize("case", PARSE_CASES, ids=[c["name"] for c in PARSE_CASES])
def test_parse_matches_ruby(case: dict[str, Any], ruby_results: dict[str, Any]) -> None:
    theirs = ruby_results["parse"][case["name"]]
    ours = ours_parse(case)
    if "error" in theirs:
        assert "error" in ours, f"Ruby refused it ({theirs['error']}), we accepted {ours}"
    else:
        assert ours == theirs


@pytest.mark.parametrize("case", MATCH_CASES, ids=[c["name"] for c in MATCH_CASES])
def test_match_matches_ruby(case: dict[str, Any], ruby_results: dict[str, Any]) -> None:
    theirs = ruby_results["match"][case["name"]]
    node = case["node"]
    verdict = check(
        filter_from_case(case),
        identity=node["identity"],
        facts=node["facts"],
        classes=node["classes"],
        agents=node["agents"],
        data_plugin=golden_data_plugin(node.get("data")),
    )
    if "error" in theirs:
        assert (verdict.matched, verdict.error is not None) == (False, True), theirs["error"]
    else:
        assert (verdict.matched, verdict.error) == (theirs["ok"], None)


def test_fuzz_parse_matches_ruby(ruby_results: dict[str, Any]) -> None:
    wrong = []
    for case in FUZZ_PARSE:
        theirs = ruby_results["parse"][case["name"]]
        ours = ours_parse(case)
        if ("error" in theirs) != ("error" in ours) or ("ok" in theirs and ours != theirs):
            wrong.append((case, theirs, ours))
    assert not wrong, wrong[:5]


def test_fuzz_match_matches_ruby(ruby_results: dict[str, Any]) -> None:
    wrong = []
    for case in FUZZ_MATCH:
        theirs = ruby_results["match"][case["name"]]
        try:
            flt = Filter.from_flags(flag_pairs(case["flags"]))
        except UsageError as exc:  # mco refuses the flags: Ruby must have raised as well
            if "error" not in theirs:
                wrong.append((case, theirs, str(exc)))
            continue
        node = case["node"]
        verdict = check(
            flt,
            identity=node["identity"],
            facts=node["facts"],
            classes=node["classes"],
            agents=node["agents"],
            data_plugin=golden_data_plugin(node["data"]),
        )
        expected = (False, True) if "error" in theirs else (theirs["ok"], False)
        if (verdict.matched, verdict.error is not None) != expected:
            wrong.append((case, theirs, verdict))
    assert not wrong, wrong[:5]


def test_fuzz_regex_matches_ruby(ruby_results: dict[str, Any]) -> None:
    wrong = []
    for (source, options, texts), theirs in zip(FUZZ_REGEX, ruby_results["regex"], strict=True):
        try:
            rx = compile_ruby_regex(source, options)
        except re.error as exc:
            if theirs != "error" and not str(exc).startswith(REFUSED_BY_PYTHON):
                wrong.append((source, options, theirs, f"refused: {exc}"))
            continue
        ours = [rx.search(t) is not None for t in texts]
        if ours != theirs:
            wrong.append((source, options, texts, theirs, ours))
    assert not wrong, wrong[:5]
