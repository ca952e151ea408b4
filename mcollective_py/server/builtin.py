"""Built-in agents of every mcollective-py node: ``rpcutil`` (SimpleRPC) and ``discovery``.

They answer exactly what Ruby's built-ins answer (same actions, inputs and output keys), so
Ruby ``mco ping``, ``mco find``, ``mco facts``, ``mco inventory`` and ``mco rpc rpcutil ...``
work against Python nodes.  Differences, on purpose: ``version`` is our own version
(``mcollective-py <x.y.z>``), ``threads`` lists Python threads, ``get_config_item``
masks secrets by the one rule of :mod:`..masking` (psk, passwords, tokens, passphrases, keys,
URL user-info), and ``daemon_stats`` adds our counters after Ruby's: why messages were
refused (``bad_messages``, ``wrong_collective``, ``unknown_agent``, ``replayed``,
``overloaded``) and ``regex_timeouts`` (Ruby regexes of this process that ran out of their
time budget, or were refused as known to: :func:`..ruby.regex.timeouts`).  Their names are no
longer than Ruby's longest label (``Security Validated``), so Ruby ``mco``, which shows an
output its DDL lacks by its name, keeps its alignment; ``ddl/rpcutil.ddl`` declares them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..config import Config
from ..ruby import regex as ruby_regex
from ..rubytypes import Symbol
from .agent import Aborted, ActionRequest, Agent, Reply, action

VERSION = f"mcollective-py {__version__}"


def discovery_reply(body: Any) -> str:
    """The non-RPC ``discovery`` agent: ``"ping"`` → ``"pong"``."""
    return "pong" if body == "ping" else f"Unknown Request: {body}"


@dataclass
class DaemonInfo:
    """What rpcutil reports about its daemon; filled in and kept current by the daemon."""

    config: Config
    configfile: str = ""
    starttime: int = field(default_factory=lambda: int(time.time()))
    stats: Callable[[], Mapping[str, int]] = dict
    agents: Callable[[], list[Agent]] = list


class Rpcutil(Agent):
    """Node introspection. Needs :attr:`info` set by the daemon before use."""

    name = "rpcutil"
    info: DaemonInfo

    def _agent_names(self) -> list[str]:
        return sorted(["discovery", *(a.name for a in self.info.agents())])

    @action
    def ping(self, req: ActionRequest, reply: Reply) -> None:
        reply["pong"] = int(time.time())

    @action
    def inventory(self, req: ActionRequest, reply: Reply) -> None:
        cfg = self.info.config
        reply["agents"] = self._agent_names()
        reply["facts"] = dict(self.context.facts())
        reply["classes"] = self.context.classes()
        reply["version"] = VERSION
        reply["main_collective"] = cfg.main_collective
        reply["collectives"] = list(cfg.collectives)
        reply["data_plugins"] = []

    @action
    def get_fact(self, req: ActionRequest, reply: Reply) -> None:
        name = str(req.data["fact"])
        reply["fact"] = name
        reply["value"] = self.context.facts().get(name)

    @action
    def get_facts(self, req: ActionRequest, reply: Reply) -> None:
        facts = self.context.facts()
        names = [f.strip() for f in str(req.data["facts"]).split(",") if f.strip()]
        reply["values"] = {n: facts.get(n) for n in names}

    @action
    def daemon_stats(self, req: ActionRequest, reply: Reply) -> None:
        t = os.times()
        stats = self.info.stats()
        reply["threads"] = [
            f"#<Thread:{th.name} {'run' if th.is_alive() else 'dead'}>"
            for th in threading.enumerate()
        ]
        reply["agents"] = self._agent_names()
        reply["pid"] = os.getpid()
        reply["times"] = {
            Symbol("utime"): t.user,
            Symbol("stime"): t.system,
            Symbol("cutime"): t.children_user,
            Symbol("cstime"): t.children_system,
        }
        for key in (
            "validated",
            "unvalidated",
            "passed",
            "filtered",
            "total",
            "replies",
            "ttlexpired",
        ):
            reply[key] = int(stats.get(key, 0))
        # ours, beyond Ruby's keys: why messages were refused
        for key in ("bad_messages", "wrong_collective", "unknown_agent", "replayed", "overloaded"):
            reply[key] = int(stats.get(key, 0))
        reply["regex_timeouts"] = ruby_regex.timeouts()
        reply["starttime"] = self.info.starttime
        reply["configfile"] = self.info.configfile
        reply["version"] = VERSION

    @action
    def agent_inventory(self, req: ActionRequest, reply: Reply) -> None:
        out = []
        for a in self.info.agents():
            m = a.ddl.metadata
            out.append(
                {
                    Symbol("agent"): a.name,
                    Symbol("license"): m.license,
                    Symbol("timeout"): m.timeout,
                    Symbol("description"): m.description,
                    Symbol("name"): m.name,
                    Symbol("url"): m.url,
                    Symbol("version"): m.version,
                    Symbol("author"): m.author,
                }
            )
        reply["agents"] = sorted(out, key=lambda h: str(h[Symbol("agent")]))

    @action
    def collective_info(self, req: ActionRequest, reply: Reply) -> None:
        reply["main_collective"] = self.info.config.main_collective
        reply["collectives"] = list(self.info.config.collectives)

    @action
    def get_config_item(self, req: ActionRequest, reply: Reply) -> None:
        item = str(req.data["item"])
        if self.info.config.get(item) is None:
            raise Aborted(f"Unknown config property {item}")
        reply["item"] = item
        reply["value"] = self.info.config.redacted(item)

    @action
    def get_data(self, req: ActionRequest, reply: Reply) -> None:
        raise Aborted(
            f"Cannot find data plugin: {req.data.get('source')} (mcollective-py nodes have no data plugins yet)"
        )
