"""A client of HAProxy's runtime API on its admin socket (``stats socket ... level admin``).

One command per connection, as HAProxy's non-interactive mode works: connect, send the line,
read until HAProxy closes.  Every socket problem becomes a :class:`RuntimeUnavailable` whose
message names the socket path and the setting that holds it, and a command HAProxy refuses
becomes a :class:`CommandRefused` carrying HAProxy's own words (``No such server.``).
"""

from __future__ import annotations

import errno
import os
import socket
import stat

from .haproxy_state import RuntimeFormatError, ServerState, parse_servers

#: Largest answer read (``show stat`` of a very large configuration is well below this).
MAX_ANSWER = 32 * 1024 * 1024


class HAProxyRuntimeError(Exception):
    """Base of the runtime API errors."""


class RuntimeUnavailable(HAProxyRuntimeError):
    """The admin socket cannot be used: missing, not a socket, refused, no permission, silent."""


class CommandRefused(HAProxyRuntimeError):
    """HAProxy answered a change command with an error message."""

    def __init__(self, command: str, answer: str) -> None:
        self.command = command
        self.answer = answer.strip()
        super().__init__(f"HAProxy refused '{command}': {self.answer}")


class RuntimeAPI:
    """Commands to one HAProxy process through its admin socket.

    ``setting`` is only used in messages: it tells an operator where the path came from.
    """

    def __init__(
        self, path: str, *, timeout: float = 5.0, setting: str = "plugin.haproxy.socket"
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.setting = setting

    def _unavailable(self, what: str) -> RuntimeUnavailable:
        return RuntimeUnavailable(
            f"HAProxy admin socket {self.path} {what} (set by {self.setting} in the node's "
            "server.cfg); check that HAProxy runs with 'stats socket <path> level admin' "
            "and that the path is right"
        )

    def command(self, line: str) -> str:
        """Send one command line; return HAProxy's whole answer. Raises RuntimeUnavailable."""
        if "\n" in line or "\r" in line or ";" in line:
            raise ValueError(f"a runtime command is one command on one line, got {line!r}")
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            raise self._unavailable("does not exist") from None
        except OSError as exc:
            raise self._unavailable(f"cannot be checked: {exc.strerror}") from None
        if not stat.S_ISSOCK(mode):
            raise self._unavailable("is not a socket")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
            sock.sendall(line.encode("ascii") + b"\n")
            chunks, size = [], 0
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_ANSWER:
                    raise self._unavailable(f"answered more than {MAX_ANSWER} bytes to {line!r}")
            return b"".join(chunks).decode("utf-8", errors="replace")
        except TimeoutError:
            raise self._unavailable(f"did not answer {line!r} within {self.timeout:g} s") from None
        except ConnectionRefusedError:
            raise self._unavailable("refuses connections (HAProxy is not running?)") from None
        except PermissionError:
            raise self._unavailable("is not accessible to this user") from None
        except OSError as exc:
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
            raise self._unavailable(f"failed: {reason}") from None
        finally:
            sock.close()

    def execute(self, line: str) -> None:
        """Run a change command; HAProxy answers nothing (an empty line) when it succeeds.
        Raises CommandRefused with HAProxy's message otherwise."""
        answer = self.command(line)
        if answer.strip():
            raise CommandRefused(line, answer)

    def servers(self) -> tuple[ServerState, ...]:
        """Every server of every backend (``show stat -1 4 -1`` + ``show servers state``)."""
        stat_text = self.command("show stat -1 4 -1")
        state_text = self.command("show servers state")
        try:
            return parse_servers(stat_text, state_text)
        except RuntimeFormatError as exc:
            raise RuntimeUnavailable(
                f"HAProxy admin socket {self.path} gave an answer that cannot be read: {exc} "
                f"(is it a level admin socket? set by {self.setting})"
            ) from None
