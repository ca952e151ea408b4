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

Settings (:meth:`AuditLog.from_config`): ``plugin.rpcaudit.logfile`` (Ruby's; default
``/var/log/puppetlabs/mcollective/mcollective-audit.log``) and our additions
``plugin.rpcaudit.jsonfile`` and ``plugin.rpcaudit.redact`` (comma-separated key names).
"""

from __future__ import annotations

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
from ..rubytypes import inspect as ruby_inspect
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


class AuditLog:
    """Appends :class:`AuditEvent` lines to ``logfile`` (Ruby format) and/or ``jsonfile``."""

    def __init__(
        self,
        logfile: str | os.PathLike[str] | None = DEFAULT_LOGFILE,
        *,
        jsonfile: str | os.PathLike[str] | None = None,
        redact: Iterable[str] = DEFAULT_REDACT,
        clock: Callable[[], float] = time.time,
    ) -> None:
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
        """``value`` with the values of secret and ``redact`` keys replaced, at any depth."""
        return redact(value, self.redact)

    def ruby_line(self, event: AuditEvent, now: float) -> str:
        """Ruby's rpcaudit logfile line (without the newline)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
        line = (
            f"[{stamp}] reqid={_clean(event.requestid)}: reqtime={event.reqtime} "
            f"caller={_clean(event.caller)}@{_clean(event.sender)} agent={_clean(event.agent)} "
            f"action={_clean(event.action)} data={ruby_inspect(self.redacted(dict(event.data)))}"
        )
        return _JSON_BREAKS.sub(lambda m: f"\\u{ord(m[0]):04X}", line)

    def json_line(self, event: AuditEvent, now: float) -> str:
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now * 1000) % 1000:03d}Z",
            "requestid": event.requestid,
            "reqtime": event.reqtime,
            "caller": event.caller,
            "sender": event.sender,
            "agent": event.agent,
            "action": event.action,
            "data": plain(self.redacted(dict(event.data))),
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
        if self.logfile is not None:
            ok &= self._append(self.logfile, self.ruby_line(event, now))
        if self.jsonfile is not None:
            ok &= self._append(self.jsonfile, self.json_line(event, now))
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
