"""The one rule for what is secret, and how it is hidden, wherever text leaves the process.

Used by ``config show`` and ``rpcutil get_config_item`` (:meth:`Config.redacted`), the audit
log (:func:`redact`), the log lines and tracebacks of the node and of the ``mco-py`` client
(:class:`LogFilter`) and agent replies that quote settings or URLs (:func:`mask_text`).

* A **key** is secret when its name contains ``password``, ``passwd``, ``passphrase``,
  ``passcode``, ``token``, ``secret``, ``psk``, ``key`` or ``private`` (any case, anywhere in
  a dotted name: ``plugin.rabbitmq.pool.1.password``, ``plugin.app.api_token``,
  ``plugin.ssl_client_private``).  Its value is shown as :data:`MASK`.
* In any **text**, the user-info of a URL (``http://user:pass@host/`` ->
  ``http://********@host/``) and the value of ``<secret key>=<value>`` / ``<secret key>:
  <value>`` pairs are masked.

Over-masking is preferred: ``plugin.psk.callertype`` is hidden too.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from .lazy import lazy_re

__all__ = [
    "MASK",
    "REDACTED",
    "LogFilter",
    "is_secret_key",
    "mask_text",
    "mask_url",
    "mask_value",
    "redact",
]

MASK = "********"
REDACTED = "[REDACTED]"
#: How deep :func:`redact` walks (the Marshal decoder allows 64 levels).
MAX_DEPTH = 200
_WORDS = "password|passwd|passphrase|passcode|token|secret|psk|key|private"
SECRET_KEY = lazy_re(rf"({_WORDS})", re.IGNORECASE)
#: scheme://userinfo@ : userinfo is everything up to the last '@' before the host part
_USERINFO = lazy_re(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/?#\s@]+)@")
_PAIR = lazy_re(
    rf"(?P<key>\b[\w.-]*(?:{_WORDS})[\w.-]*)(?P<sep>\s*[=:]\s*)"
    r"""(?:(?P<q>['"])(?P<quoted>[^'"\n]*)(?P=q)|(?P<value>[^\s,;&'"]+))""",
    re.IGNORECASE,
)


def is_secret_key(name: str) -> bool:
    """Whether a setting or data key of this name holds a secret."""
    return bool(SECRET_KEY.search(str(name)))


def mask_url(text: str) -> str:
    """``text`` with the user-info of every URL in it replaced by :data:`MASK`."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def mask_text(text: str) -> str:
    """``text`` with URL user-info and ``secret_key=value`` values masked."""
    text = mask_url(text)

    def hide(m: re.Match[str]) -> str:
        quote = m["q"] or ""
        return f"{m['key']}{m['sep']}{quote}{MASK}{quote}"

    return _PAIR.sub(hide, text)


def mask_value(key: str, value: str) -> str:
    """A setting's value as safe to show: :data:`MASK` for a secret key (when set), else the
    value with URL user-info masked."""
    if is_secret_key(key):
        return MASK if value else value
    return mask_url(value)


def redact(
    value: Any, extra: Iterable[str] = (), *, max_nodes: int | None = None, cut: Any = None
) -> Any:
    """``value`` with the values of secret keys (and of keys named in ``extra``, exactly, any
    case) replaced by ``[REDACTED]`` at any depth, and URL user-info masked in strings.

    The walk visits each container once: one reached again (a shared reference, as Marshal
    links make: ``x = [x, x]`` twenty deep) is redacted once and its copy is shared the same
    way, and a cycle stays a cycle.  So the cost is linear in the distinct values, never in
    the expanded size; what renders the copy (``ruby.inspect``) stops at its own budget.
    With ``max_nodes``, at most that many values are visited; each value past it, and each
    value nested deeper than :data:`MAX_DEPTH`, is replaced by ``cut`` (so a caller can mark
    the cut)."""
    names = frozenset(k.strip().lower() for k in extra if k.strip())
    copies: dict[int, Any] = {}
    visited = 0

    def walk(v: Any, depth: int) -> Any:
        nonlocal visited
        if isinstance(v, (Mapping, list, tuple)) and id(v) in copies:
            return copies[id(v)]
        visited += 1
        if depth > MAX_DEPTH or (max_nodes is not None and visited > max_nodes):
            return cut
        if isinstance(v, Mapping):
            mapping: dict[Any, Any] = {}
            copies[id(v)] = mapping
            for k, x in v.items():
                hidden = is_secret_key(str(k)) or str(k).lower() in names
                mapping[k] = REDACTED if hidden else walk(x, depth + 1)
            return mapping
        if isinstance(v, (list, tuple)):
            items: list[Any] = []
            copies[id(v)] = items
            items.extend(walk(x, depth + 1) for x in v)
            return items
        if isinstance(v, str) and "@" in v:
            masked = mask_url(v)
            return v if masked == v else masked
        return v

    return walk(value, 0)


class LogFilter(logging.Filter):
    """Masks secrets in a record's message and traceback before any handler formats it.
    Attach it to handlers (``handler.addFilter(LogFilter())``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True
