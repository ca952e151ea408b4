"""The ``healthcheck`` agent: is this node healthy, and does it serve the right release?

Actions (``ddl/healthcheck.ddl``):

* ``http`` -- GET a URL (``requests``; redirects not followed), check the status code and
  optionally that the body contains a text, matches a regex, or has a JSON field (with a
  value); retries with exponential back-off;
* ``tcp`` -- connect to ``host:port``; retries likewise;
* ``command`` -- run a check program (argument list, no shell) that lives in one of the
  directories of ``plugin.healthcheck.command_path``; compare its exit code; the output tail
  is returned;
* ``smoke`` -- run the current release's smoke test (``plugin.healthcheck.smoke_command``,
  run in the release directory) and read the JUnit XML report it writes: tests, failures,
  errors, skipped, time;
* ``service`` -- GET the service's version endpoint and compare the version it answers with
  the expected one (default: the node's current release).

Contract: every action returns ``ok``, ``detail`` (what was checked and found) and
``duration``; a failed check is statuscode 1 with ``detail`` as the message (the outputs are
still filled in); bad inputs are statuscode 4; checks never run a shell.  Retries stop early
rather than run past the action's own timeout.

Settings (``plugin.healthcheck.*``; ``<service>.<key>`` overrides ``<key>`` for one service):
``command_path`` (``:``-separated directories of allowed check programs, default
``/usr/lib/nagios/plugins:/usr/lib/monitoring-plugins``), ``root`` (release root, default
``plugin.deploy.root``, else ``/opt/releases``), ``smoke_command`` (default
``bin/smoke-test {junit}``), ``version_url`` (e.g. ``http://127.0.0.1:8081/version``;
``{service}`` is replaced), ``http_allow`` (comma-separated URL prefixes the ``http`` and
``service`` actions may GET when the URL comes from a request; default: loopback addresses
and the node's own addresses, any port; see :func:`url_allowed`).

Limits: a request's ``timeout`` may not exceed the action's own timeout minus 2 s (so no
check outlives its action and piles up threads), and reading a body stops at ``MAX_BODY``
bytes or when the attempt's time is up.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..ddl import AgentDDL
from ..errors import RegexTimeout
from ..masking import mask_text, mask_url
from ..ruby.regex import RubyRegexError, compile_ruby_regex
from ..server.agent import (
    Aborted,
    ActionRequest,
    Agent,
    AgentContext,
    AgentSettings,
    InvalidData,
    Reply,
    action,
)
from . import process
from .releases import LayoutError, ReleaseLayout
from .testresults import TestResultsError, parse_test_results

DEFAULT_COMMAND_PATH = "/usr/lib/nagios/plugins:/usr/lib/monitoring-plugins"
DEFAULT_ROOT = "/opt/releases"
DEFAULT_SMOKE_COMMAND = "bin/smoke-test {junit}"
#: Longest pause between two attempts, and most retries a request may ask for.
MAX_DELAY = 30.0
MAX_RETRIES = 20
#: Most of a response body read for a check.
MAX_BODY = 1024 * 1024
USER_AGENT = "mcollective-py healthcheck"


@dataclass(frozen=True)
class Outcome:
    """One attempt of a check: passed or not, what was found, extra outputs."""

    ok: bool
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- pure parts


def backoff_delays(retries: int, first: float, cap: float = MAX_DELAY) -> list[float]:
    """The pauses before each retry: ``first``, doubling, at most ``cap`` seconds."""
    return [min(cap, first * 2**i) for i in range(max(0, retries))]


def json_path(document: Any, path: str) -> Any:
    """The value at dotted ``path`` (list items by index). KeyError names the missing part."""
    value = document
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(f"no field {'.'.join(walked)} in the JSON body")
    return value


def json_text(value: Any) -> str:
    """A JSON value as text to compare with an input: ``true``, ``42``, ``ok``, ``null``."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def resolve_program(program: str, allowed: list[str]) -> Path:
    """The check program, which must be a file inside one of the ``allowed`` directories
    (after resolving links and ``..``).  A bare name is looked up in them in order.
    ValueError says why not."""
    dirs = [Path(d).resolve() for d in allowed if d]
    if "/" not in program:
        candidates = [d / program for d in dirs]
    elif program.startswith("/"):
        candidates = [Path(program)]
    else:
        raise ValueError(f"program {program!r} must be a bare name or an absolute path")
    for candidate in candidates:
        real = candidate.resolve()
        if real.is_file() and any(real.is_relative_to(d) for d in dirs):
            return real
    raise ValueError(
        f"program {program!r} is not in an allowed directory ({', '.join(map(str, dirs)) or 'none'}); "
        "add its directory to plugin.healthcheck.command_path"
    )


def _prefix_match(url: str, prefix: str) -> bool:
    """``url`` starts with ``prefix`` at a boundary (``http://a:80`` does not cover
    ``http://a:8000`` nor ``http://a:80@evil``)."""
    if not url.startswith(prefix):
        return False
    rest = url[len(prefix) :]
    return prefix.endswith("/") or not rest or rest[0] in "/?#"


def url_allowed(
    url: str,
    allow: list[str],
    own: frozenset[str],
    resolve: Callable[[str], list[str]],
) -> str | None:
    """None if a caller may make the node GET ``url``, else why not.

    ``allow``: URL prefixes (``plugin.healthcheck.http_allow``); when empty, the URL's host
    must be a loopback address or one of ``own`` (the node's addresses), and every address
    ``resolve(host)`` gives must be too.  Only http and https, never with user-info."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return f"{url!r} is not an http(s) URL"
    if parts.username is not None or "@" in parts.netloc:
        return f"{mask_url(url)!r} has user-info; credentials cannot be passed in a check URL"
    if allow:
        if any(_prefix_match(url, p) for p in allow):
            return None
        return f"{url!r} is not under plugin.healthcheck.http_allow ({', '.join(allow)})"
    try:
        addresses = [host] if _is_ip(host) else resolve(host)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    for address in addresses or [host]:
        if not _is_ip(address):
            return f"{host} does not resolve to an address"
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_loopback and address not in own:
            return (
                f"{url!r} is not on this node (only loopback and the node's own addresses by "
                "default; set plugin.healthcheck.http_allow to allow more)"
            )
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return True


def node_addresses() -> frozenset[str]:
    """The addresses of this host's names (``gethostname``, ``getfqdn``) as the resolver
    sees them: what "the node's own addresses" means for ``http_allow``'s default."""
    out: set[str] = set()
    for name in {socket.gethostname(), socket.getfqdn()}:
        try:
            out.update(str(ai[4][0]) for ai in socket.getaddrinfo(name, None))
        except OSError:
            continue
    return frozenset(out)


def _resolve(host: str) -> list[str]:
    return sorted({str(ai[4][0]) for ai in socket.getaddrinfo(host, None)})


def expand(argument: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` placeholders of ``values`` in one argument; other braces stay."""
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), argument)


# --------------------------------------------------------------------------- the agent


class Healthcheck(Agent):
    """Health checks; see the module docstring for the contract."""

    name = "healthcheck"
    defaults = {"command_path": DEFAULT_COMMAND_PATH, "smoke_command": DEFAULT_SMOKE_COMMAND}

    def __init__(self, ddl: AgentDDL, context: AgentContext | None = None) -> None:
        super().__init__(ddl, context)
        #: injectable for tests
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], None] = time.sleep

    # ------------------------------------------------------------------ settings

    def release_root(self) -> str:
        """``plugin.healthcheck.root``, else ``plugin.deploy.root`` (the deploy agent's own
        setting, so both agents see one layout), else ``/opt/releases``."""
        return (
            self.settings.configured("root")
            or AgentSettings("deploy", self.context.settings).configured("root")
            or DEFAULT_ROOT
        )

    # ------------------------------------------------------------------ attempts

    def _attempts(
        self, req: ActionRequest, reply: Reply, once: Callable[[float], Outcome]
    ) -> Outcome:
        """Run ``once`` until it passes or the retries are used up; fill the common outputs."""
        timeout = float(req.data["timeout"])
        retries = int(req.data["retries"])
        first = float(req.data["retry_delay"])
        if timeout <= 0:
            raise InvalidData(f"timeout must be more than 0 seconds, got {timeout:g}")
        self._check_timeout(timeout)
        if not 0 <= retries <= MAX_RETRIES:
            raise InvalidData(f"retries must be between 0 and {MAX_RETRIES}, got {retries}")
        if first < 0:
            raise InvalidData(f"retry_delay must not be negative, got {first:g}")
        start = self.clock()
        deadline = start + max(1.0, self.timeout - 2)
        outcome = once(timeout)
        attempts = 1
        for delay in backoff_delays(retries, first):
            if outcome.ok or self.clock() + delay + timeout > deadline:
                break
            self.sleep(delay)
            outcome = once(timeout)
            attempts += 1
        reply["attempts"] = attempts
        self._finish(reply, outcome, start)
        return outcome

    def _check_timeout(self, timeout: float) -> None:
        """InvalidData when a check could outlive its action (the thread would linger)."""
        most = max(1.0, self.timeout - 2)
        if timeout > most:
            raise InvalidData(
                f"timeout must be at most {most:g} seconds (the action's own timeout minus 2), "
                f"got {timeout:g}"
            )

    def _check_url(self, url: str, service: str | None = None) -> None:
        """Aborted unless a request may make this node GET ``url`` (see :func:`url_allowed`)."""
        allow = [p.strip() for p in self.settings.text("http_allow", service).split(",")]
        problem = url_allowed(url, [p for p in allow if p], node_addresses(), _resolve)
        if problem is not None:
            raise Aborted(f"refusing to fetch {problem}")

    def _finish(self, reply: Reply, outcome: Outcome, start: float) -> None:
        reply.data.update(outcome.data)
        reply["ok"] = outcome.ok
        reply["detail"] = outcome.detail
        reply["duration"] = round(self.clock() - start, 3)
        if not outcome.ok:
            raise Aborted(outcome.detail)

    # ------------------------------------------------------------------ http

    @staticmethod
    def _get(url: str, timeout: float) -> tuple[requests.Response | None, str, str]:
        """GET ``url`` (no redirects): (response, body text, problem). ``problem`` is "" when
        answered.  The whole attempt, body included, ends after about ``timeout`` s."""
        deadline = time.monotonic() + timeout
        shown = mask_url(url)
        try:
            with requests.get(
                url,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
                headers={"User-Agent": USER_AGENT},
            ) as resp:
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_content(64 * 1024):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= MAX_BODY:
                        break
                    if time.monotonic() > deadline:
                        return None, "", f"{shown} did not send its body within {timeout:g} s"
                raw = b"".join(chunks)[:MAX_BODY]
                body = raw.decode(resp.encoding or "utf-8", errors="replace")
                return resp, body, ""
        except requests.Timeout:
            return None, "", f"no answer from {shown} within {timeout:g} s"
        except requests.ConnectionError as exc:
            return None, "", f"cannot connect to {shown}: {mask_text(_reason(exc))}"
        except requests.RequestException as exc:
            return None, "", f"GET {shown} failed: {mask_text(_reason(exc))}"

    @action
    def http(self, req: ActionRequest, reply: Reply) -> None:
        """GET the URL; status, then body text / regex / JSON field as asked."""
        url = str(req.data["url"])
        self._check_url(url)
        expect = int(req.data["expect_status"])
        contains = req.data["contains"]
        pattern = req.data["body_regex"]
        field_path = req.data["json_field"]
        wanted = req.data["json_value"]
        try:  # a Ruby regex, matched with a time budget: a sender's pattern cannot stall us
            regex = compile_ruby_regex(pattern) if pattern else None
        except RubyRegexError as exc:
            raise InvalidData(
                f"body_regex {pattern!r} is not a valid regular expression: {exc}"
            ) from None
        if wanted is not None and not field_path:
            raise InvalidData("json_value needs json_field: which field should have that value?")

        def once(timeout: float) -> Outcome:
            t0 = time.monotonic()
            resp, body, problem = self._get(url, timeout)
            if resp is None:
                return Outcome(False, problem, {"status_code": None})
            took = f"in {(time.monotonic() - t0) * 1000:.0f} ms"
            data = {"status_code": resp.status_code}
            if resp.status_code != expect:
                return Outcome(
                    False, f"HTTP {resp.status_code} from {url}, expected {expect}", data
                )
            found = [f"HTTP {resp.status_code} from {url} {took}"]
            if contains is not None:
                if contains not in body:
                    return Outcome(
                        False, f"{found[0]}, but the body does not contain {contains!r}", data
                    )
                found.append(f"body contains {contains!r}")
            if regex is not None:
                try:
                    matched = regex.search(body)
                except RegexTimeout as exc:
                    return Outcome(False, f"{found[0]}, but body_regex failed: {exc}", data)
                if not matched:
                    return Outcome(
                        False, f"{found[0]}, but the body does not match /{pattern}/", data
                    )
                found.append(f"body matches /{pattern}/")
            if field_path:
                try:
                    value = json_path(json.loads(body), field_path)
                except ValueError:
                    return Outcome(False, f"{found[0]}, but the body is not JSON", data)
                except KeyError as exc:
                    return Outcome(False, f"{found[0]}, but there is {exc.args[0]}", data)
                text = json_text(value)
                if wanted is not None and text != wanted:
                    return Outcome(
                        False,
                        f"{found[0]}, but {field_path} is {text!r}, expected {wanted!r}",
                        data,
                    )
                if wanted is None and value in (False, None):
                    return Outcome(False, f"{found[0]}, but {field_path} is {text}", data)
                found.append(f"{field_path} is {text!r}")
            return Outcome(True, ", ".join(found), data)

        self._attempts(req, reply, once)

    # ------------------------------------------------------------------ tcp

    @action
    def tcp(self, req: ActionRequest, reply: Reply) -> None:
        """Connect to host:port (and close again)."""
        host, port = str(req.data["host"]), int(req.data["port"])
        if not 1 <= port <= 65535:
            raise InvalidData(f"port must be between 1 and 65535, got {port}")

        def once(timeout: float) -> Outcome:
            t0 = time.monotonic()
            try:
                with socket.create_connection((host, port), timeout=timeout):
                    pass
            except TimeoutError:
                return Outcome(False, f"no connection to {host}:{port} within {timeout:g} s")
            except ConnectionRefusedError:
                return Outcome(False, f"{host}:{port} refused the connection")
            except socket.gaierror as exc:
                return Outcome(False, f"cannot resolve {host}: {exc.strerror}")
            except OSError as exc:
                return Outcome(False, f"cannot connect to {host}:{port}: {exc.strerror or exc}")
            return Outcome(
                True, f"connected to {host}:{port} in {(time.monotonic() - t0) * 1000:.0f} ms"
            )

        self._attempts(req, reply, once)

    # ------------------------------------------------------------------ command

    @action
    def command(self, req: ActionRequest, reply: Reply) -> None:
        """Run an allowed program with its arguments (no shell); compare the exit code."""
        text = str(req.data["command"])
        expect = int(req.data["expect_exit"])
        timeout = float(req.data["timeout"])
        self._check_timeout(timeout)
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise InvalidData(f"command {text!r} cannot be split into arguments: {exc}") from None
        if not argv:
            raise InvalidData("command is empty")
        allowed = self.settings.text("command_path").split(":")
        try:
            program = resolve_program(argv[0], allowed)
        except ValueError as exc:
            raise Aborted(str(exc)) from None
        start = self.clock()
        try:
            result = process.run([str(program), *argv[1:]], timeout=min(timeout, self.timeout - 2))
        except process.CommandNotRunnable as exc:
            raise Aborted(str(exc)) from None
        reply["exit_code"] = result.exit_code
        reply["output"] = result.output
        ok = result.exit_code == expect and not result.timed_out
        detail = f"{result.describe()} (expected {expect})"
        if result.output:
            detail += f": {result.output.splitlines()[-1]}"
        self._finish(reply, Outcome(ok, detail), start)

    # ------------------------------------------------------------------ smoke

    def _current(self, service: str) -> tuple[ReleaseLayout, str]:
        try:
            layout = ReleaseLayout(self.release_root(), service)
            current = layout.current_version()
        except LayoutError as exc:
            raise Aborted(str(exc)) from None
        if current is None:
            raise Aborted(
                f"{service} has no current release on this node (no {layout.current_link})"
            )
        return layout, current

    @action
    def smoke(self, req: ActionRequest, reply: Reply) -> None:
        """Run the smoke test in the current release directory; read its JUnit report."""
        service = str(req.data["service"])
        timeout = float(req.data["timeout"])
        layout, current = self._current(service)
        reply["version"] = current
        wanted = req.data["version"]
        if wanted is not None and wanted != current:
            raise Aborted(f"the current release of {service} is {current}, not {wanted}")
        release = layout.release_dir(current).resolve()
        template = self.settings.text("smoke_command", service)
        start = self.clock()
        with tempfile.TemporaryDirectory(prefix="smoke-") as scratch:
            junit = Path(scratch) / "junit.xml"
            values = {
                "junit": str(junit),
                "service": service,
                "version": current,
                "release_dir": str(release),
            }
            argv = [expand(a, values) for a in shlex.split(template)]
            if argv[0].startswith("/"):  # the node's own configuration: any program
                program = Path(argv[0])
            else:  # a program of the release itself
                program = release / argv[0]
                if not program.resolve().is_relative_to(release):
                    raise Aborted(
                        f"smoke command {argv[0]!r} leaves the release directory {release}"
                    )
            env = {
                "SMOKE_JUNIT_XML": str(junit),
                "DEPLOY_SERVICE": service,
                "DEPLOY_VERSION": current,
                "DEPLOY_RELEASE_DIR": str(release),
            }
            try:
                result = process.run(
                    [str(program), *argv[1:]],
                    timeout=min(timeout, self.timeout - 2),
                    cwd=str(release),
                    env=env,
                )
            except process.CommandNotRunnable as exc:
                raise Aborted(f"smoke test of {service} {current}: {exc}") from None
            reply["exit_code"] = result.exit_code
            reply["output"] = result.output
            try:
                summary = parse_test_results(junit.read_bytes())  # JUnit, NUnit 3 or NUnit 2
            except FileNotFoundError:
                self._finish(
                    reply,
                    Outcome(
                        False,
                        f"{result.describe()} and wrote no JUnit report (it gets the path as the "
                        "{junit} argument of plugin.healthcheck.smoke_command and in $SMOKE_JUNIT_XML)",
                    ),
                    start,
                )
                return
            except TestResultsError as exc:
                self._finish(
                    reply,
                    Outcome(False, f"{result.describe()}; its JUnit report is unreadable: {exc}"),
                    start,
                )
                return
        reply.data.update(summary.as_reply())
        counts = (
            f"{summary.tests} tests, {summary.failures} failures, {summary.errors} errors, "
            f"{summary.skipped} skipped in {summary.time:.1f} s ({service} {current})"
        )
        ok = summary.passed and result.exit_code == 0
        detail = counts if ok else f"{result.describe()}: {counts}"
        if summary.failed:
            detail += f"; failed: {', '.join(summary.failed)}"
        self._finish(reply, Outcome(ok, detail), start)

    # ------------------------------------------------------------------ service

    @action
    def service(self, req: ActionRequest, reply: Reply) -> None:
        """GET the version endpoint until it answers the expected version (or retries end)."""
        service = str(req.data["service"])
        expected = req.data["version"]
        if expected is None:
            expected = self._current(service)[1]
        reply["expected_version"] = expected
        url = req.data["url"]
        if url:
            self._check_url(str(url), service)
        url = url or self.settings.configured("version_url", service)
        if not url:
            raise Aborted(
                f"no version URL for {service}: pass url=..., or set plugin.healthcheck.version_url "
                f"(or plugin.healthcheck.{service}.version_url) in the node's server.cfg"
            )
        url = expand(url, {"service": service})
        shown = mask_url(url)
        field_path = str(req.data["json_field"])

        def once(timeout: float) -> Outcome:
            resp, body, problem = self._get(url, timeout)
            if resp is None:
                return Outcome(False, problem)
            if resp.status_code != 200:
                return Outcome(False, f"HTTP {resp.status_code} from {shown}", {"version": None})
            answered = body.strip()
            try:
                document = json.loads(body)
            except ValueError:
                document = None
            if isinstance(document, dict):
                try:
                    answered = json_text(json_path(document, field_path))
                except KeyError as exc:
                    return Outcome(
                        False, f"{shown} answered JSON without the version: {exc.args[0]}"
                    )
            if answered != expected:
                return Outcome(
                    False,
                    f"{shown} answered {answered[:80]!r}, expected {expected}",
                    {"version": answered[:80]},
                )
            return Outcome(True, f"{shown} answered {answered}", {"version": answered})

        self._attempts(req, reply, once)


def _reason(exc: BaseException) -> str:
    """The useful part of a requests exception: ``Connection refused`` rather than the
    whole urllib3 retry story."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return m.group(1) if m else text[:200]
