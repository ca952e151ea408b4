"""actionpolicy: the golden table (tests/golden/policy/, one case per file) and the parts
around it.  ``test_policy_ruby.py`` runs the same table through Ruby's own plugin."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from mcollective_py import config
from mcollective_py.message import Request
from mcollective_py.rubytypes import Symbol
from mcollective_py.server.audit import AuditEvent, AuditLog
from mcollective_py.server.policy import (
    DENIED_MESSAGE,
    Decision,
    PolicyDir,
    PolicySettings,
    authorize,
    parse_groups,
    parse_policy,
)

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "policy"
CASES = sorted(GOLDEN.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def write_policies(case: dict[str, Any], root: Path) -> Path:
    policies = root / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    for name, text in case["files"].items():
        (policies / name).write_bytes(text.encode())
    return policies


def fake_data_plugins(case: dict[str, Any]) -> Any:
    plugins = case.get("data_plugins")
    if plugins is None:
        return None
    return lambda name, params: plugins[name]


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 20
    kinds = {p.stem for p in CASES}
    for needed in (
        "exact_caller_not_substring",
        "four_field_star_never_matches",
        "group_member",
        "enable_default_uses_default_policy",
    ):
        assert needed in kinds


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_case(path: Path, tmp_path: Path) -> None:
    case = load(path)
    policies = PolicyDir(
        write_policies(case, tmp_path), PolicySettings.from_plugin_conf(case["settings"])
    )
    decision = policies.authorize(
        caller=case["caller"],
        agent=case["agent"],
        action=case["action"],
        facts=case["facts"],
        classes=case["classes"],
        data_plugin=fake_data_plugins(case),
    )
    assert (decision.allowed, decision.reason) == (
        case["expect"]["allowed"],
        case["expect"]["reason"],
    )
    assert decision.statuscode == (0 if decision.allowed else 1)
    if "problems" in case:
        [main] = [name for name in case["files"] if name.endswith(".policy")]
        assert list(parse_policy(case["files"][main], main).problems) == case["problems"]


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_case_through_the_pure_function(path: Path) -> None:
    """The same table through authorize() with parsed files (no disk)."""
    case = load(path)
    policies = {
        name.removesuffix(".policy"): parse_policy(text, name)
        for name, text in case["files"].items()
        if name.endswith(".policy")
    }
    groups = parse_groups(case["files"]["groups"])[0] if "groups" in case["files"] else {}
    decision = authorize(
        caller=case["caller"],
        agent=case["agent"],
        action=case["action"],
        facts=case["facts"],
        classes=case["classes"],
        settings=PolicySettings.from_plugin_conf(case["settings"]),
        policies=policies,
        groups=groups,
        data_plugin=fake_data_plugins(case),
    )
    assert (decision.allowed, decision.reason) == (
        case["expect"]["allowed"],
        case["expect"]["reason"],
    )


# ---------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("value", "on"),
    [
        ("1", True),
        ("y", True),
        ("Y", True),
        ("yes", True),
        ("10", True),
        ("only", True),
        ("0", False),
        ("n", False),
        ("no", False),
        ("true", False),
        ("on", False),
        ("", False),
    ],
)
def test_switches_are_read_as_ruby_reads_them(value: str, on: bool) -> None:
    s = PolicySettings.from_plugin_conf({"allow_unconfigured": value, "enable_default": value})
    assert (s.allow_unconfigured, s.enable_default) == (on, on)


def test_settings_from_a_server_config(tmp_path: Path) -> None:
    cfg_file = tmp_path / "server.cfg"
    cfg_file.write_text(
        "plugin.actionpolicy.allow_unconfigured = y\nplugin.actionpolicy.enable_default = 1\nplugin.actionpolicy.default_name = base\n"
    )
    cfg = config.load(str(cfg_file), role="server", env={}, home=str(tmp_path), system_dirs=())
    pd = PolicyDir.from_config(cfg)
    assert pd.directory == tmp_path / "policies"
    assert pd.settings == PolicySettings(
        allow_unconfigured=True, enable_default=True, default_name="base"
    )


# ---------------------------------------------------------------- parsing details
def test_parse_policy_reports_and_keeps_order() -> None:
    text = "# comment\n\n   \npolicy default deny\nallow\tuid=1\tping\trole=web\t*\ndeny\t*\t*\t*\t*\nbogus line\n"
    p = parse_policy(text, "x.policy")
    assert p.default is False
    assert [(r.allow, r.callers, r.actions, r.facts, r.classes, r.line) for r in p.rules] == [
        (True, "uid=1", "ping", "role=web", "*", 5),
        (False, "*", "*", "*", "*", 6),
    ]
    assert p.problems == ("x.policy line 7: not a rule, skipped: 'bogus line'",)


def test_groups_file() -> None:
    groups, problems = parse_groups(
        "# c\nadmins uid=0 uid=1\nempty\nbad/name uid=2\nadmins cert=x\n"
    )
    assert groups == {"admins": ("cert=x",)}
    assert problems == ("groups line 4: expected 'group callerid callerid...', skipped",)


@pytest.mark.parametrize(
    ("facts_column", "matches"),
    [
        ("role=web and datacenter=ams", True),
        ("not role=web or datacenter=ams", True),  # (not web) or ams
        ("not (role=web or datacenter=ams)", False),
        ("role=db and datacenter=ams or environment=lab", True),  # (db and ams) or lab
        ("environment=lab or role=db and datacenter=fra", False),  # (lab or db) and fra
        ("/roles::w/ and haproxy", True),
        (
            "/[/ or role=web",
            False,
        ),  # a lookup error makes the whole compound false (Ruby rescues it)
    ],
)
def test_compound_evaluation_follows_ruby_keyword_precedence(
    facts_column: str, matches: bool
) -> None:
    policy = parse_policy(f"policy default deny\nallow\t*\t*\t{facts_column}\t*\n", "p.policy")
    d = authorize(
        caller="uid=0",
        agent="p",
        action="a",
        facts={"role": "web", "datacenter": "ams", "environment": "lab"},
        classes=["roles::web", "haproxy"],
        settings=PolicySettings(),
        policies={"p": policy},
    )
    assert d.allowed is matches


@pytest.mark.parametrize(
    "facts_column", ["( ) or role=web", "role=web and", "not (role=web", "role=web or or role=db"]
)
def test_compounds_ruby_cannot_parse_deny(facts_column: str) -> None:
    policy = parse_policy(f"policy default allow\nallow\t*\t*\t{facts_column}\t*\n", "p.policy")
    d = authorize(
        caller="uid=0",
        agent="p",
        action="a",
        facts={"role": "web"},
        classes=[],
        settings=PolicySettings(),
        policies={"p": policy},
    )
    assert not d.allowed and d.reason.startswith(
        "p.policy line 2 cannot be evaluated: compound expression"
    )


def test_bad_class_regex_outside_a_compound_denies_with_the_line() -> None:
    policy = parse_policy("policy default allow\ndeny\t*\t*\t*\t/[/\n", "p.policy")
    d = authorize(
        caller="uid=0",
        agent="p",
        action="a",
        facts={},
        classes=["x"],
        settings=PolicySettings(),
        policies={"p": policy},
    )
    assert not d.allowed and d.reason.startswith(
        "p.policy line 2 cannot be evaluated: class '/[/': "
    )
    assert (d.policy, d.line, d.statuscode, d.statusmsg) == ("p.policy", 2, 1, DENIED_MESSAGE)


def test_fact_values_are_normalized_like_ruby_facts() -> None:
    policy = parse_policy(
        'policy default deny\nallow\t*\t*\tvirtual=true count=3 list=["a"]\t*\n', "p.policy"
    )
    d = authorize(
        caller="uid=0",
        agent="p",
        action="a",
        facts={"virtual": True, "count": 3, "list": ["a"]},
        classes=[],
        settings=PolicySettings(),
        policies={"p": policy},
    )
    assert d.allowed


@pytest.mark.parametrize("agent", ["../etc/x", ".hidden", "a/b", ""])
def test_agent_names_that_cannot_name_a_file_are_denied(agent: str, tmp_path: Path) -> None:
    d = PolicyDir(tmp_path, PolicySettings(allow_unconfigured=True)).authorize(
        caller="uid=0", agent=agent, action="a", facts={}, classes=[]
    )
    assert d == Decision(False, f"agent name {agent!r} cannot name a policy file")


# ---------------------------------------------------------------- the directory on disk
def test_policy_dir_rereads_a_changed_file_and_logs_problems_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    f = tmp_path / "rpcutil.policy"
    f.write_text("policy default deny\nallow * * * *\n")
    pd = PolicyDir(tmp_path)
    ask = {"caller": "uid=0", "agent": "rpcutil", "action": "ping", "facts": {}, "classes": []}
    assert not pd.authorize(**ask).allowed
    assert not pd.authorize(**ask).allowed
    assert caplog.text.count("not a rule, skipped") == 1
    f.write_text("policy default allow\n")
    os.utime(f, ns=(f.stat().st_mtime_ns + 10**9,) * 2)
    assert pd.authorize(**ask).allowed


def test_unreadable_policy_file_denies(tmp_path: Path) -> None:
    (tmp_path / "rpcutil.policy").mkdir()  # exists but cannot be read as a file
    d = PolicyDir(tmp_path, PolicySettings(allow_unconfigured=True)).authorize(
        caller="uid=0", agent="rpcutil", action="ping", facts={}, classes=[]
    )
    assert not d.allowed and d.reason.startswith(f"cannot read the policy files in {tmp_path}: ")


def test_policy_dir_is_thread_safe(tmp_path: Path) -> None:
    (tmp_path / "rpcutil.policy").write_text("policy default deny\nallow\tuid=1\t*\t*\t*\n")
    pd = PolicyDir(tmp_path)
    results: list[bool] = []

    def worker(i: int) -> None:
        for _ in range(50):
            results.append(
                pd.authorize(
                    caller=f"uid={i % 2}", agent="rpcutil", action="ping", facts={}, classes=[]
                ).allowed
            )

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == results.count(False) == 200


def test_every_decision_of_the_table_lands_in_the_audit_log(tmp_path: Path) -> None:
    """What the daemon does with a decision: a denied caller gets statuscode 1 and Ruby's
    message, and both audit formats record the request with the decision and its reason."""
    audit = AuditLog(
        tmp_path / "audit.log", jsonfile=tmp_path / "audit.jsonl", clock=lambda: 1795692174.0
    )
    decisions = []
    for i, path in enumerate(CASES):
        case = load(path)
        root = tmp_path / path.stem
        policies = PolicyDir(
            write_policies(case, root), PolicySettings.from_plugin_conf(case["settings"])
        )
        decision = policies.authorize(
            caller=case["caller"],
            agent=case["agent"],
            action=case["action"],
            facts=case["facts"],
            classes=case["classes"],
            data_plugin=fake_data_plugins(case),
        )
        decisions.append(decision)
        body = {
            Symbol("agent"): case["agent"],
            Symbol("action"): case["action"],
            Symbol("caller"): case["caller"],
            Symbol("data"): {Symbol("process_results"): True},
        }
        req = Request(
            case["agent"],
            "mcollective",
            body,
            "client1",
            f"{i:032x}",
            case["caller"],
            60,
            1795692170,
        )
        audit.record(
            AuditEvent.from_request(
                req,
                decision="allowed" if decision.allowed else "denied",
                statuscode=decision.statuscode,
                statusmsg=decision.statusmsg,
                reason=decision.reason,
            )
        )
    lines = (tmp_path / "audit.log").read_text().splitlines()
    records = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert len(lines) == len(records) == len(CASES)
    denied = [r for r in records if r["decision"] == "denied"]
    assert len(denied) == sum(not d.allowed for d in decisions) >= 10
    assert all(r["statuscode"] == 1 and r["statusmsg"] == DENIED_MESSAGE for r in denied)
    assert [r["reason"] for r in records] == [d.reason for d in decisions]
    exact = next(r for r in records if r["caller"] == "uid=1")
    assert (
        exact["decision"] == "denied"
        and exact["reason"] == "denied by the policy default of rpcutil.policy"
    )
    assert all(line.endswith("data={:process_results=>true}") for line in lines)


def test_a_catastrophic_class_regex_is_bounded_and_denies() -> None:
    # (a|aa)+X against 40 a's runs for minutes unbounded; the regex budget stops it.  With
    # its parentheses the column is a compound (as in Ruby), whose errors make it false.
    from mcollective_py.ruby.regex import timeouts

    before = timeouts()
    policy = parse_policy("policy default deny\nallow\t*\t*\t*\t/(a|aa)+X/\n", "p.policy")
    d = authorize(
        caller="uid=0",
        agent="p",
        action="a",
        facts={},
        classes=["a" * 40],
        settings=PolicySettings(),
        policies={"p": policy},
    )
    assert not d.allowed and d.reason == "denied by the policy default of p.policy"
    assert timeouts() == before + 1
