"""The request audit trail: one line per request a node accepts or denies (and per decision
the orchestrator takes), appended to files nobody rewrites.

Two formats, each optional:

* ``logfile``: Ruby's ``rpcaudit`` logfile plugin line, so existing log tooling keeps working::

      [2026-11-26 11:00:47 UTC] reqid=<id>: reqtime=<msgtime> caller=<callerid>@<senderid> agent=<agent> action=<action> data=<Ruby inspect of the request data>

  Ruby writes this line only for requests that passed authorization; we also write it for
  denied ones (the JSON line tells them apart).  Control characters in the id, caller and
  names are escaped (``\\x0A``, ``\\x85``, ``\\u2028``), so a request cannot forge extra
  lines, whatever the reader takes as a line break.
* ``jsonfile``: one JSON object per line with ``time``, ``requestid``, ``reqtime``,
  ``caller``, ``sender``, ``agent``, ``action``, ``data``, ``decision`` (``allowed`` /
  ``denied`` / anything the orchestrator records), ``statuscode``, ``statusmsg``,
  ``duration`` (seconds), ``reason``.

Every line is written with one ``write(2)`` on a descriptor opened with ``O_APPEND`` (opened
per line, as Ruby does, so log rotation needs no signal), files are created ``0640``.

Values of ``data`` keys that :func:`..masking.is_secret_key` calls secret (password, token,
passphrase, secret, psk, key...), and of keys named in ``redact`` (any depth,
case-insensitive), are replaced by ``[REDACTED]`` in both formats, and URL user-info in
strings is masked: the one masking rule of :mod:`..masking`.

A request's data may be tiny on the wire and huge when expanded (``x = [x, x]`` twenty deep,
accepted under a raised ``max_expansion``).  Nothing here expands it: redaction copies each
distinct value once and keeps shared references shared, the Ruby line is Ruby's ``inspect``
cut at the log's :class:`~..ruby.inspect.Budget` while it walks, and the JSON ``data`` is
converted within the same budget.  A cut value ends with (Ruby line) or is replaced by (JSON)
:data:`~..ruby.inspect.CUT_MARK`; cost is linear in the budget, whatever the value.

Settings (:meth:`AuditLog.from_config`): ``plugin.rpcaudit.logfile`` (Ruby's; default
``/var/log/puppetlabs/mcollective/mcollective-audit.log``) and our additions
``plugin.rpcaudit.jsonfile`` and ``plugin.rpcaudit.redact`` (comma-separated key names).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config
from ..masking import REDACTED, redact
from ..message import Request
from ..ruby.inspect import CUT_MARK, DEFAULT_BUDGET, Budget, is_hash
from ..ruby.inspect import inspect as ruby_inspect
from ..rubytypes import plain

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_LOGFILE", "DEFAULT_REDACT", "REDACTED", "AuditEvent", "AuditLog"]

DEFAULT_LOGFILE = "/var/log/puppetlabs/mcollective/mcollective-audit.log"
#: Extra key names always redacted, beyond :func:`..masking.is_secret_key` (which covers these).
DEFAULT_REDACT = ("password", "passwd", "passphrase", "secret", "token", "psk", "private_key")
#: Everything a reader may take as a line break or a control: C0, DEL, C1 (U+0085 NEL among
#: them), and the Unicode line/paragraph separators U+2028/U+2029 (``str.splitlines`` and
#: JavaScript split on those).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_JSON_BREAKS = re.compile("[\x85\u2028\u2029]")


def _clean(text: str) -> str:
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m[0]):02X}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04X}", text
    )


@dataclass(frozen=True)
class AuditEvent:
    """One audited request (or orchestrator decision).

    ``data`` is the request's ``:data`` Hash as it arrived (Symbol keys, with
    ``:process_results``), which is what Ruby's line shows.  ``statuscode``, ``statusmsg``,
    ``duration`` and ``reason`` are None when unknown (e.g. denied before running).
    """

    requestid: str
    reqtime: int
    caller: str
    sender: str
    agent: str
    action: str
    data: Mapping[Any, Any] = field(default_factory=dict)
    decision: str = "allowed"
    statuscode: int | None = None
    statusmsg: str | None = None
    duration: float | None = None
    reason: str | None = None

    @classmethod
    def from_request(cls, req: Request, **outcome: Any) -> AuditEvent:
        """An event for a decoded request; ``outcome`` sets ``decision``, ``statuscode``,
        ``statusmsg``, ``duration``, ``reason``.  A body that is not an RPC Hash gives an
        empty action and data."""
        body: Mapping[Any, Any] = req.body if isinstance(req.body, Mapping) else {}
        action: Any = next((v for k, v in body.items() if k == "action"), "")
        data: Any = next((v for k, v in body.items() if k == "data"), {})
        return cls(
            requestid=req.requestid,
            reqtime=req.msgtime,
            caller=req.callerid,
            sender=req.senderid,
            agent=req.agent,
            action=str(action),
            data=data if isinstance(data, Mapping) else {},
            **outcome,
        )


class _Spent(Exception):
    """The budget of :func:`json_data` ran out."""


#: How much of a Hash key that is itself an Array or Hash is shown in JSON.
_KEY_BUDGET = Budget(chars=1024, nodes=256)
#: How deep :func:`json_data` goes before it cuts (Marshal allows 64 levels).
JSON_MAX_DEPTH = 200


def json_data(value: Any, budget: Budget = DEFAULT_BUDGET) -> Any:
    """``value`` as plain JSON-able Python (as :func:`..rubytypes.plain` makes it), built
    within ``budget``: every value reached counts as a node and adds about what JSON writes
    for it to the characters (escapes aside), and a value reached again through a shared
    reference counts again (JSON writes it again).  Where the budget runs out the value is
    replaced by :data:`CUT_MARK` (a string is kept up to the budget, then marked) and
    nothing after it is converted, so the cost is linear in the budget, whatever the value."""
    nodes = 0
    chars = 0

    def walk(v: Any, put: Callable[[Any], None], depth: int, overhead: int) -> None:
        nonlocal nodes, chars
        # overhead: what the place costs (", " before an item, '"key": ' before a value)
        text = plain(v) if isinstance(v, (str, bytes)) else ""
        if isinstance(v, (str, bytes)):
            cost = overhead + 2 + len(text)
        elif is_hash(v) or isinstance(v, (list, tuple)):
            cost = overhead + 2
        else:
            cost = overhead + len(json.dumps(plain(v), default=str))
        if nodes >= budget.nodes or chars + cost > budget.chars or depth > JSON_MAX_DEPTH:
            room = budget.chars - chars - overhead - 2
            put(text[: max(room, 0)] + CUT_MARK)
            raise _Spent
        nodes += 1
        chars += cost
        if isinstance(v, (str, bytes)):
            put(text)
        elif is_hash(v):
            mapping: dict[Any, Any] = {}
            put(mapping)
            for i, (k, x) in enumerate(v.items()):
                if isinstance(k, (str, bytes, int, float)) or k is None:
                    key = plain(k)
                else:  # JSON keys are scalars: an Array or Hash key is written as Ruby shows it
                    key = ruby_inspect(k, _KEY_BUDGET)
                place = functools.partial(mapping.__setitem__, key)
                walk(x, place, depth + 1, (2 if i else 0) + 4 + len(str(key)))  # , "key":
        elif isinstance(v, (list, tuple)):
            items: list[Any] = []
            put(items)
            for i, x in enumerate(v):
                walk(x, items.append, depth + 1, 2 if i else 0)
        else:
            put(plain(v))

    root: list[Any] = []
    try:
        walk(value, root.append, 0, 0)
    except _Spent:
        pass
    return root[0]


class AuditLog:
    """Appends :class:`AuditEvent` lines to ``logfile`` (Ruby format) and/or ``jsonfile``."""

    def __init__(
        self,
        logfile: str | os.PathLike[str] | None = DEFAULT_LOGFILE,
        *,
        jsonfile: str | os.PathLike[str] | None = None,
        redact: Iterable[str] = DEFAULT_REDACT,
        clock: Callable[[], float] = time.time,
        budget: Budget = DEFAULT_BUDGET,
    ) -> None:
        self.budget = budget
        self.logfile = Path(logfile) if logfile is not None else None
        self.jsonfile = Path(jsonfile) if jsonfile is not None else None
        self.redact = frozenset(k.strip().lower() for k in redact if k.strip())
        self.clock = clock
        self._lock = threading.Lock()
        self._failed: set[Path] = set()

    @classmethod
    def from_config(cls, cfg: Config, *, clock: Callable[[], float] = time.time) -> AuditLog:
        conf = cfg.plugin("rpcaudit")
        extra = [k for k in (conf.get("redact") or "").split(",") if k.strip()]
        return cls(
            conf.get("logfile", DEFAULT_LOGFILE).strip() or DEFAULT_LOGFILE,
            jsonfile=(conf.get("jsonfile") or "").strip() or None,
            redact=(*DEFAULT_REDACT, *extra),
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"AuditLog(logfile={str(self.logfile)!r}, jsonfile={str(self.jsonfile)!r})"

    # ------------------------------------------------------------ formats
    def redacted(self, value: Any) -> Any:
        """``value`` with the values of secret and ``redact`` keys replaced, at any depth;
        shared references stay shared, and at most ``budget.nodes`` distinct values are
        copied (the rest become :data:`CUT_MARK`)."""
        return redact(value, self.redact, max_nodes=self.budget.nodes, cut=CUT_MARK)

    def ruby_line(self, event: AuditEvent, now: float, redacted: Any = None) -> str:
        """Ruby's rpcaudit logfile line (without the newline).  ``redacted``: the event's
        data as :meth:`redacted` made it, when the caller has it already."""
        if redacted is None:
            redacted = self.redacted(dict(event.data))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
        line = (
            f"[{stamp}] reqid={_clean(event.requestid)}: reqtime={event.reqtime} "
            f"caller={_clean(event.caller)}@{_clean(event.sender)} agent={_clean(event.agent)} "
            f"action={_clean(event.action)} data={ruby_inspect(redacted, self.budget)}"
        )
        return _JSON_BREAKS.sub(lambda m: f"\\u{ord(m[0]):04X}", line)

    def json_line(self, event: AuditEvent, now: float, redacted: Any = None) -> str:
        """One JSON object (one line); ``redacted`` as for :meth:`ruby_line`."""
        if redacted is None:
            redacted = self.redacted(dict(event.data))
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now * 1000) % 1000:03d}Z",
            "requestid": event.requestid,
            "reqtime": event.reqtime,
            "caller": event.caller,
            "sender": event.sender,
            "agent": event.agent,
            "action": event.action,
            "data": json_data(redacted, self.budget),
            "decision": event.decision,
            "statuscode": event.statuscode,
            "statusmsg": event.statusmsg,
            "duration": None if event.duration is None else round(event.duration, 6),
            "reason": event.reason,
        }
        line = json.dumps(record, ensure_ascii=False, sort_keys=False, default=str)
        return _JSON_BREAKS.sub(lambda m: f"\\u{ord(m[0]):04x}", line)

    # ------------------------------------------------------------ writing
    def record(self, event: AuditEvent) -> bool:
        """Append ``event`` to every configured file.  Returns False if a file could not be
        written (logged once per file until it works again); never raises."""
        now = self.clock()
        ok = True
        redacted = self.redacted(dict(event.data))  # once for both formats
        if self.logfile is not None:
            ok &= self._append(self.logfile, self.ruby_line(event, now, redacted))
        if self.jsonfile is not None:
            ok &= self._append(self.jsonfile, self.json_line(event, now, redacted))
        return ok

    def _append(self, path: Path, line: str) -> bool:
        data = (line + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
            except OSError as exc:
                if path not in self._failed:
                    self._failed.add(path)
                    log.error("cannot append to the audit log %s: %s", path, exc.strerror or exc)
                return False
            self._failed.discard(path)
        return True
