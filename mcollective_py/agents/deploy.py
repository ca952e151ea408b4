"""The ``deploy`` agent: the node pulls a release, verifies it, and activates it atomically.

Actions (``ddl/deploy.ddl``; layout in :mod:`.releases`; ``docs/agents.md``):

* ``fetch`` -- find the artifact URL (the node's release data for that version, else the
  ``artifact_url`` template) and its SHA-256 (request, release data, or ``checksum_url``);
  stream it to ``downloads/<version>.part`` (resuming an interrupted download); verify the
  SHA-256 of the whole file; unpack it into a staging directory; rename that to
  ``releases/<version>``.  Nothing is activated.  A bad checksum deletes the download and
  leaves everything else as it was; a kill at any point leaves at most a ``.part`` file (the
  next fetch resumes it) or a staging directory (removed by the next fetch).
* ``activate`` -- run the ``pre_activate`` hook, switch ``current`` atomically, restart
  through the service manager, run ``post_activate``; if the restart or the post hook fails,
  ``current`` is switched back and the old release restarted.  Already current: nothing.
* ``rollback`` -- the same switch to ``previous`` (or a given fetched release).
* ``status`` / ``cleanup`` (keeps current, previous and the newest ``keep`` others).
* ``migrate`` -- the fetched release's own database migration for one phase (``pre`` or
  ``post``), once per database under its lock, recorded in ``mco_migrations``
  (:mod:`.migrations`).
* ``puppet_apply`` -- ``puppet apply`` with the release's facts (``app``, ``app_version``),
  reporting changed/failed resources from this run's ``last_run_summary.yaml``.

No value from a request reaches a shell: commands are argument lists; ``service`` and
``version`` are checked by the DDL and again by the layout.

Settings: ``plugin.deploy.<key>``; ``plugin.deploy.<service>.<key>`` overrides it for one
service.  See docs/agents.md for the list.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..ddl import AgentDDL
from ..masking import mask_text, mask_url
from ..server.agent import Aborted, ActionRequest, Agent, AgentContext, InvalidData, Reply, action
from . import artifacts, extraction, migrations, process, puppet_run
from . import service_managers as sm
from .releases import Busy, LayoutError, ReleaseLayout, plan_cleanup

log = logging.getLogger(__name__)

DEFAULTS = {
    "root": "/opt/releases",
    "config_dir": "/etc/mcollective-py",
    "service_manager": "none",
    "unit": "{service}",
    "init_dir": "/etc/init.d",
    "systemctl": "systemctl",
    "sc": sm.DEFAULT_SC,
    "appcmd": sm.DEFAULT_APPCMD,
    "download_timeout": "30",
    "hook_timeout": "120",
    "restart_timeout": "120",
    "puppet": "puppet",
    "puppet_manifest": "/etc/puppet/code/environments/production/manifests/site.pp",
    "puppet_args": "",
    "puppet_timeout": "540",
    "unpack_max_members": str(extraction.Limits.max_members),
    "unpack_max_bytes": str(extraction.Limits.max_bytes),
    "unpack_max_ratio": str(extraction.Limits.max_ratio),
    "unpack_max_name": str(extraction.Limits.max_name),
    "unpack_max_depth": str(extraction.Limits.max_depth),
    "migrate_timeout": "600",
    "migrate_lock_timeout": "300",
}


class Deploy(Agent):
    """Release delivery on a node; see the module docstring for the contract."""

    name = "deploy"
    defaults = DEFAULTS

    def __init__(self, ddl: AgentDDL, context: AgentContext | None = None) -> None:
        super().__init__(ddl, context)
        #: injectable for tests: runs one argument list with a timeout
        self.run: Callable[..., process.CommandResult] = process.run
        self.clock: Callable[[], float] = time.monotonic

    # ------------------------------------------------------------------ settings

    def limits(self, service: str) -> extraction.Limits:
        """The unpacking caps (``plugin.deploy.unpack_*``); Aborted for a bad value."""
        values = {}
        for key in ("max_members", "max_bytes", "max_ratio", "max_name", "max_depth"):
            raw = self.settings.text(f"unpack_{key}", service)
            try:
                values[key] = int(raw)
            except ValueError:
                values[key] = 0
            if values[key] <= 0:
                raise Aborted(
                    f"plugin.deploy.unpack_{key} = {raw!r} is not a positive whole number"
                )
        return extraction.Limits(**values)

    def layout(self, service: str) -> ReleaseLayout:
        try:
            return ReleaseLayout(self.settings.text("root"), service)
        except LayoutError as exc:
            raise InvalidData(str(exc)) from None

    def release_data(self, service: str) -> dict[str, Any]:
        """The node's release descriptor (``<config_dir>/releases/<service>.yaml``, written
        by the app_release Puppet class from Hiera); {} when absent or unreadable."""
        path = Path(self.settings.text("config_dir")) / "releases" / f"{service}.yaml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, yaml.YAMLError) as exc:
            log.warning("ignoring unreadable release data %s: %s", path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    # ------------------------------------------------------------------ fetch

    def _source(self, service: str, version: str, given_sha: str | None) -> tuple[str, str]:
        """(artifact URL, expected SHA-256) for a release; Aborted naming what to set."""
        data = self.release_data(service)
        same = str(data.get("version", "")) == version
        url = str(data["artifact_url"]) if same and data.get("artifact_url") else ""
        if not url:
            template = self.settings.text("artifact_url", service)
            if not template:
                raise Aborted(
                    f"no artifact URL for {service} {version}: set plugin.deploy.artifact_url "
                    "(e.g. http://repo.example/{service}/{service}-{version}.tar.gz), or render "
                    "the release data for this version"
                )
            try:
                url = artifacts.artifact_url(template, service, version)
            except ValueError as exc:
                raise Aborted(f"plugin.deploy.artifact_url: {exc}") from None
        known = str(data["sha256"]) if same and data.get("sha256") else None
        if given_sha and known and given_sha != known:
            raise Aborted(
                f"sha256 {given_sha} differs from the release data of {service} {version} ({known}); "
                "refusing to guess which is right"
            )
        expected = given_sha or known
        checksum_template = self.settings.text("checksum_url", service)
        if not expected and checksum_template:
            checksum_url = checksum_template.replace("{url}", url)
            try:
                checksum_url = artifacts.artifact_url(checksum_url, service, version)
                expected = artifacts.parse_checksum(
                    artifacts.fetch_text(
                        checksum_url, timeout=self.settings.seconds("download_timeout", service)
                    )
                )
            except (ValueError, artifacts.ArtifactError) as exc:
                raise Aborted(f"cannot get the SHA-256 of {service} {version}: {exc}") from None
        if not expected:
            raise Aborted(
                f"no SHA-256 known for {service} {version}: pass sha256=<64 hex digits>, set "
                "plugin.deploy.checksum_url, or render the release data for this version; an "
                "artifact is never unpacked unverified"
            )
        return url, expected

    @action
    def fetch(self, req: ActionRequest, reply: Reply) -> None:
        """Download (resumable), verify, unpack into releases/<version>. Never activates."""
        start = self.clock()
        service, version = str(req.data["service"]), str(req.data["version"])
        layout = self.layout(service)
        try:
            with layout.lock(f"fetch-{version}"):
                self._fetch(layout, version, req.data["sha256"], reply)
        except (Busy, LayoutError) as exc:
            raise Aborted(str(exc)) from None
        except Aborted as exc:  # messages quote URLs: never their credentials
            raise Aborted(mask_text(str(exc))) from None
        finally:
            reply["duration"] = round(self.clock() - start, 3)
            if isinstance(reply.data.get("url"), str):
                reply["url"] = mask_url(reply.data["url"])

    def _fetch(
        self, layout: ReleaseLayout, version: str, given_sha: str | None, reply: Reply
    ) -> None:
        service = layout.service
        present = layout.info(version)
        if present is not None:
            data = self.release_data(service)
            known = data.get("sha256") if str(data.get("version", "")) == version else None
            wanted = given_sha or known
            if wanted and present.sha256 and present.sha256 != wanted:
                raise Aborted(
                    f"{service} {version} is already unpacked from an artifact with SHA-256 "
                    f"{present.sha256}, not {wanted}; remove {present.path} (deploy cleanup, if it "
                    "is not current) before fetching it again"
                )
            layout.part_file(version).unlink(missing_ok=True)  # a kill after the rename
            reply["url"] = present.url
            reply["path"] = str(present.path)
            reply["sha256"] = present.sha256
            reply["already_present"] = True
            return
        url, expected = self._source(service, version, given_sha)
        reply["url"] = url
        layout.ensure()
        layout.remove_staging(version)
        part = layout.part_file(version)
        try:
            got = artifacts.download(
                url, part, timeout=self.settings.seconds("download_timeout", service)
            )
        except artifacts.ArtifactError as exc:
            raise Aborted(str(exc)) from None
        reply["bytes"] = got.size
        reply["resumed_from"] = got.resumed_from
        actual = artifacts.sha256_file(part)
        reply["sha256"] = actual
        if actual != expected:
            part.unlink()
            raise Aborted(
                f"SHA-256 mismatch for {url}: expected {expected}, got {actual}; the download was "
                "deleted and nothing was unpacked or activated"
            )
        staging = layout.staging_dir(version)
        staging.mkdir()
        try:
            artifacts.unpack(part, staging, self.limits(service))
            layout.write_marker(
                staging,
                {
                    "service": service,
                    "version": version,
                    "sha256": actual,
                    "url": url,
                    "bytes": got.size,
                    "fetched_at": time.time(),
                },
            )
            os.rename(staging, layout.release_dir(version))
        except artifacts.ArtifactError as exc:
            layout.remove_staging(version)
            part.unlink(missing_ok=True)
            raise Aborted(
                f"{exc}; the download and the partial unpack were deleted; nothing was activated"
            ) from None
        except BaseException:
            layout.remove_staging(version)
            raise
        part.unlink()
        reply["path"] = str(layout.release_dir(version))

    # ------------------------------------------------------------------ switching

    def _hook(self, key: str, service: str, release: Path, values: Mapping[str, str]) -> str | None:
        """Run hook ``key`` (pre_activate / post_activate) if configured. Returns a problem
        or None.  A relative program is the release's own (it must stay inside it)."""
        line = self.settings.text(key, service)
        if not line:
            return None
        try:
            argv = list(sm.command_argv(line, values))
        except ValueError as exc:
            return f"plugin.deploy.{key} cannot be used: {exc}"
        if not argv[0].startswith("/"):
            program = (release / argv[0]).resolve()
            if not program.is_relative_to(release.resolve()):
                return f"{key} hook {argv[0]!r} leaves the release directory"
            argv[0] = str(program)
        env = {f"DEPLOY_{k.upper()}": v for k, v in values.items()}
        try:
            result = self.run(
                argv,
                timeout=self.settings.seconds("hook_timeout", service),
                cwd=str(release),
                env=env,
            )
        except process.CommandNotRunnable as exc:
            return f"{key} hook: {exc}"
        if not result.ok:
            return f"{key} hook {result.describe()}: {result.output.strip()[-300:]}"
        return None

    def _restart(self, service: str, values: Mapping[str, str]) -> tuple[str | None, bool]:
        """Restart through the configured service manager. Returns (problem or None,
        whether a command was run: kind ``none`` runs nothing)."""
        data = self.release_data(service)
        # the release's own data sits between the configured value and the default
        kind = self.settings.configured("service_manager", service) or str(
            data.get("service_manager") or DEFAULTS["service_manager"]
        )
        unit_template = self.settings.configured("unit", service) or str(data.get("unit") or "")
        unit = sm.fill(unit_template or DEFAULTS["unit"], values)
        try:
            plan = sm.restart_plan(
                kind,
                unit,
                values=values,
                command=self.settings.text("restart_command", service) or None,
                init_dir=self.settings.text("init_dir", service),
                systemctl=self.settings.text("systemctl", service),
                sc=self.settings.text("sc", service),
                appcmd=self.settings.text("appcmd", service),
            )
        except ValueError as exc:
            return f"cannot restart {service}: {exc}", False

        def runner(argv: Any, left: float) -> process.CommandResult:
            try:
                return self.run(list(argv), timeout=left)
            except process.CommandNotRunnable as exc:
                raise sm.RestartFailed(str(exc)) from None

        try:
            sm.execute(plan, runner, timeout=self.settings.seconds("restart_timeout", service))
        except sm.RestartFailed as exc:
            return f"restart ({kind}) failed: {exc}", True
        return None, bool(plan)

    def _switch(self, layout: ReleaseLayout, target: str, restart: bool, reply: Reply) -> None:
        """Activate ``target``: pre hook, switch, restart, post hook; undo on failure."""
        service = layout.service
        current = layout.current_version()
        reply["previous_version"] = current
        reply["current_version"] = current
        reply["restarted"] = False
        if target == current:
            reply["detail"] = f"{service} {target} is already current; nothing done"
            return
        if layout.info(target) is None:
            raise Aborted(f"{service} {target} is not fetched on this node; run deploy fetch first")
        release = layout.release_dir(target)
        values = {
            "service": service,
            "version": target,
            "release_dir": str(release),
            "previous_version": current or "",
        }
        done: list[str] = []
        problem = self._hook("pre_activate", service, release, values)
        if problem:
            raise Aborted(
                f"{problem}; nothing was switched ({current or 'no release'} stays current)"
            )
        if self.settings.text("pre_activate", service):
            done.append("pre_activate hook ok")
        layout.switch(layout.current_link, target)
        done.append(f"current -> {target}")
        try:
            problem, restarted = self._restart(service, values) if restart else (None, False)
            if problem is None and restarted:
                reply["restarted"] = True
                done.append("restarted")
            if problem is None:
                problem = self._hook("post_activate", service, release, values)
                if problem is None and self.settings.text("post_activate", service):
                    done.append("post_activate hook ok")
        except Exception as exc:  # noqa: BLE001 - anything after the switch must switch back
            problem = str(exc) if isinstance(exc, Aborted) else f"{type(exc).__name__}: {exc}"
        if problem:
            layout.switch(layout.current_link, current)
            undo = f"switched back to {current}" if current else "removed current again"
            if restart and current:
                back = {
                    **values,
                    "version": current,
                    "release_dir": str(layout.release_dir(current)),
                    "previous_version": target,
                }
                again, _ = self._restart(service, back)
                undo += (
                    f", and restarting {current} failed too: {again}"
                    if again
                    else f" and restarted {current}"
                )
            reply["current_version"] = current
            reply["detail"] = "; ".join([*done, problem, undo])
            raise Aborted(f"{problem}; {undo}")
        layout.switch(layout.previous_link, current)
        reply["current_version"] = target
        reply["changed"] = True
        reply["detail"] = "; ".join(done)

    def _locked_switch(
        self, req: ActionRequest, reply: Reply, target_of: Callable[[ReleaseLayout], str]
    ) -> None:
        start = self.clock()
        layout = self.layout(str(req.data["service"]))
        restart = bool(req.data["restart"])
        try:
            with layout.lock():
                self._switch(layout, target_of(layout), restart, reply)
        except (Busy, LayoutError) as exc:
            raise Aborted(str(exc)) from None
        finally:
            reply["duration"] = round(self.clock() - start, 3)

    @action
    def activate(self, req: ActionRequest, reply: Reply) -> None:
        """Make a fetched release current (hooks, atomic switch, restart; undone on failure)."""
        self._locked_switch(req, reply, lambda _: str(req.data["version"]))

    @action
    def rollback(self, req: ActionRequest, reply: Reply) -> None:
        """Switch to the previous release (or the given fetched one) the same way."""

        def target(layout: ReleaseLayout) -> str:
            wanted = req.data["version"] or layout.previous_version()
            if not wanted:
                raise Aborted(
                    f"{layout.service} has no previous release to roll back to; pass version="
                )
            return str(wanted)

        self._locked_switch(req, reply, target)

    # ------------------------------------------------------------------ reports

    @action
    def status(self, req: ActionRequest, reply: Reply) -> None:
        """Current, previous, available releases and interrupted downloads."""
        layout = self.layout(str(req.data["service"]))
        try:
            reply["current_version"] = layout.current_version()
            reply["previous_version"] = layout.previous_version()
        except LayoutError as exc:
            raise Aborted(str(exc)) from None
        reply["available_versions"] = [r.version for r in layout.available()]
        at = layout.activated_at()
        reply["activated_at"] = int(at) if at is not None else None
        reply["partial_downloads"] = layout.partial_downloads()

    @action
    def cleanup(self, req: ActionRequest, reply: Reply) -> None:
        """Remove old releases and stale unpack directories."""
        layout = self.layout(str(req.data["service"]))
        try:
            keep = int(req.data["keep"])
            with layout.lock():
                versions = [r.version for r in layout.available()]
                kept, removed = plan_cleanup(
                    versions, layout.current_version(), layout.previous_version(), keep
                )
                for version in removed:
                    layout.remove_release(version)
                layout.remove_staging()
        except ValueError as exc:
            raise InvalidData(str(exc)) from None
        except (Busy, LayoutError) as exc:
            raise Aborted(str(exc)) from None
        reply["kept"] = kept
        reply["removed"] = removed
        reply["removed_count"] = len(removed)

    # ------------------------------------------------------------------ migrate

    @action
    def migrate(self, req: ActionRequest, reply: Reply) -> None:
        """The release's own migration for one phase, once per database (agents/migrations.py)."""
        migrations.migrate_action(self, req, reply)

    # ------------------------------------------------------------------ puppet

    @action
    def puppet_apply(self, req: ActionRequest, reply: Reply) -> None:
        """puppet apply with the release's facts; report its last run summary."""
        start = self.clock()
        service, version = str(req.data["service"]), str(req.data["version"])
        layout = self.layout(service)
        summary_file = Path(
            self.settings.text("puppet_lastrunfile", service)
            or layout.base / "last_run_summary.yaml"
        )
        summary_file.parent.mkdir(parents=True, exist_ok=True)
        summary_file.unlink(missing_ok=True)  # never report an older run's summary
        argv = puppet_run.apply_argv(
            self.settings.text("puppet_manifest", service),
            lastrunfile=str(summary_file),
            puppet=self.settings.text("puppet", service),
            extra_args=self.settings.text("puppet_args", service),
            noop=bool(req.data["noop"]),
            tags=req.data["tags"],
        )
        timeout = min(self.settings.seconds("puppet_timeout", service), self.timeout - 5)
        try:
            result = self.run(argv, timeout=timeout, env=puppet_run.release_facts(service, version))
        except process.CommandNotRunnable as exc:
            raise Aborted(f"cannot run Puppet: {exc}; set plugin.deploy.puppet") from None
        finally:
            reply["duration"] = round(self.clock() - start, 3)
        reply["exit_code"] = result.exit_code
        reply["output"] = result.output
        summary = None
        if summary_file.exists():
            try:
                summary = puppet_run.parse_summary(summary_file.read_text(encoding="utf-8"))
            except (OSError, puppet_run.SummaryError) as exc:
                raise Aborted(
                    f"puppet apply {result.describe()}, and its summary {summary_file} is unreadable: {exc}"
                ) from None
            reply["summary"] = summary.as_reply()
            reply["changed"] = summary.changed
            reply["failed"] = summary.failed
        if result.timed_out or result.exit_code not in (0, 2) or summary is None or summary.failed:
            last = result.output.strip().splitlines()[-1] if result.output.strip() else "no output"
            if summary is not None and summary.failed:
                reply["failed"] = True
                counts = summary.resources
                raise Aborted(
                    f"puppet apply {result.describe()}: {counts.get('failed', 0)} failed and "
                    f"{counts.get('changed', 0)} changed of {counts.get('total', 0)} resources; {last}"
                )
            raise Aborted(f"puppet apply {result.describe()} without a run summary: {last}")
