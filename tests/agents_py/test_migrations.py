"""deploy migrate: the release's own migration, once per database, under the database lock.

Against a real PostgreSQL (127.0.0.1:5432, databases ``i13_*``-style names from
MCO_TEST_NS, dropped afterwards) and real SQLite files.  The migration program of each test
release appends one line per run to a log and creates a table in the database, so "ran
once" is counted, not assumed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcollective_py.agents import migrations
from mcollective_py.agents.deploy import Deploy
from mcollective_py.agents.releases import ReleaseLayout
from mcollective_py.rpc import RPCReply
from tests.agents_py.conftest import call, make_agent

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

#: The migration program of the test releases (run by the agent with the DEPLOY_* variables).
MIGRATE = """#!{python}
import os, sqlite3, sys, time
here = os.path.dirname(os.path.abspath(__file__))
log = os.path.join(os.environ["DEPLOY_RELEASE_DIR"], "..", "..", "..", "..", "runs.log")
phase, service = os.environ["DEPLOY_PHASE"], os.environ["DEPLOY_SERVICE"]
start = time.time()
time.sleep(float(os.environ.get("MIGRATE_SLEEP", "0") or 0))
dsn = os.environ["DEPLOY_MIGRATE_DSN"]
table = service + "_" + phase + "_" + os.environ["DEPLOY_VERSION"].replace(".", "_")
if dsn.startswith("sqlite:"):
    db = sqlite3.connect(dsn[len("sqlite://"):])
    db.execute("CREATE TABLE " + table + " (id integer)")
    db.commit()
else:
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("CREATE TABLE " + table + " (id integer)")
with open(log, "a") as f:
    f.write(f"{{service}} {{phase}} {{os.environ['DEPLOY_VERSION']}} {{start}} {{time.time()}}\\n")
if os.path.exists(os.path.join(here, "..", "FAIL")):
    print("migration 7 of 9: column exists"); sys.exit(3)
print("migrated " + phase)
"""


def runs(root: Path) -> list[list[str]]:
    log = root / "runs.log"
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def fetched_release(root: Path, service: str, version: str) -> Path:
    """``<root>/<service>/releases/<version>`` as deploy fetch leaves it, with bin/migrate."""
    layout = ReleaseLayout(root / "releases", service)
    layout.ensure()
    release = layout.release_dir(version)
    (release / "bin").mkdir(parents=True)
    program = release / "bin" / "migrate"
    program.write_text(MIGRATE.format(python=sys.executable))
    program.chmod(0o755)
    layout.write_marker(release, {"service": service, "version": version, "sha256": "0" * 64})
    return release


def agent(root: Path, dsn: str, identity: str = "web1.lab", **more: str) -> Deploy:
    settings = {
        "plugin.deploy.root": str(root / "releases"),
        "plugin.deploy.migrate_dsn": dsn,
        "plugin.deploy.migrate_lock_timeout": "30",
        **{f"plugin.deploy.{k}": v for k, v in more.items()},
    }
    return make_agent(Deploy, settings, identity=identity)


def migrate(
    a: Deploy, service: str = "shop", version: str = "1.5.0", phase: str = "pre"
) -> RPCReply:
    return call(a, "migrate", service=service, version=version, phase=phase)


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh PostgreSQL database on the shared server, dropped afterwards."""
    import psycopg

    ns = os.environ.get("MCO_TEST_NS", "i13")
    name = f"{ns}_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["postgresql", "sqlite"])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return str(request.getfixturevalue("pg_dsn"))


def table_rows(dsn: str) -> list[dict[str, Any]]:
    ledger = migrations.open_ledger(dsn)
    try:
        with ledger.locked(5):
            pass
        if isinstance(ledger, migrations.SqliteLedger):
            cur = ledger.conn.execute(
                f"SELECT service, version, phase, node, outcome FROM {migrations.TABLE} ORDER BY 1, 2, 3"
            )
        else:
            cur = ledger.conn.execute(  # type: ignore[attr-defined]
                f"SELECT service, version, phase, node, outcome FROM {migrations.TABLE} ORDER BY 1, 2, 3"
            )
        return [
            dict(zip(("service", "version", "phase", "node", "outcome"), r, strict=True))
            for r in cur.fetchall()
        ]
    finally:
        ledger.close()


# ---------------------------------------------------------------------------- both databases


@pytest.mark.integration
def test_a_phase_runs_once_and_is_recorded(tmp_path: Path, dsn: str) -> None:
    fetched_release(tmp_path, "shop", "1.5.0")
    first = migrate(agent(tmp_path, dsn))
    assert first.statuscode == 0, first.statusmsg
    assert first.data["applied"] is True and first.data["already_applied"] is False
    assert first.data["outcome"] == "ok"
    assert first.data["output"].strip() == "migrated pre"
    assert len(first.data["checksum"]) == 64
    again = migrate(agent(tmp_path, dsn, identity="web2.lab"))
    assert again.statuscode == 0, again.statusmsg
    assert again.data["applied"] is False and again.data["already_applied"] is True
    assert again.data["applied_by"] == "web1.lab"
    assert again.data["detail"] == "shop 1.5.0 pre migration already applied on web1.lab"
    assert len(runs(tmp_path)) == 1
    assert table_rows(dsn) == [
        {"service": "shop", "version": "1.5.0", "phase": "pre", "node": "web1.lab", "outcome": "ok"}
    ]


@pytest.mark.integration
def test_a_failed_phase_is_recorded_failed_and_runs_again_when_asked(
    tmp_path: Path, dsn: str
) -> None:
    release = fetched_release(tmp_path, "shop", "1.5.0")
    (release / "FAIL").touch()
    failed = migrate(agent(tmp_path, dsn))
    assert failed.statuscode == 1
    assert failed.statusmsg == (
        "shop 1.5.0 pre migration failed: migrate exited 3: migration 7 of 9: column exists"
    )
    assert failed.data["outcome"] == "failed" and failed.data["applied"] is False
    assert table_rows(dsn)[0]["outcome"] == "failed"
    (release / "FAIL").unlink()
    # the failed attempt created its table; a real migration tool is idempotent, ours is not:
    # drop it, as an operator fixing the cause would
    _drop(dsn, "shop_pre_1_5_0")
    retried = migrate(agent(tmp_path, dsn))
    assert retried.statuscode == 0, retried.statusmsg
    assert retried.data["detail"] == (
        "shop 1.5.0 pre migration applied; the earlier attempt on web1.lab failed; ran again"
    )
    assert len(runs(tmp_path)) == 2


@pytest.mark.integration
def test_two_drivers_racing_run_the_migration_once(
    tmp_path: Path, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed driver (or a second one) calls migrate while the first call still runs:
    it waits for the lock, then finds the phase recorded."""
    monkeypatch.setenv("MIGRATE_SLEEP", "1.5")
    fetched_release(tmp_path, "shop", "1.5.0")
    replies: dict[str, RPCReply] = {}

    def caller(identity: str) -> None:
        replies[identity] = migrate(agent(tmp_path, dsn, identity=identity))

    threads = [threading.Thread(target=caller, args=(f"web{i}.lab",)) for i in (1, 2, 3)]
    for t in threads:
        t.start()
        time.sleep(0.2)
    for t in threads:
        t.join(timeout=60)
    assert all(r.statuscode == 0 for r in replies.values()), replies
    applied = [i for i, r in replies.items() if r.data["applied"]]
    assert applied == ["web1.lab"]
    assert sorted(i for i, r in replies.items() if r.data["already_applied"]) == [
        "web2.lab",
        "web3.lab",
    ]
    assert all(replies[i].data["lock_wait"] > 0.5 for i in ("web2.lab", "web3.lab"))
    assert len(runs(tmp_path)) == 1


@pytest.mark.integration
def test_services_sharing_a_database_take_turns(
    tmp_path: Path, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two services with one database: both migrate, one after the other, never overlapping."""
    monkeypatch.setenv("MIGRATE_SLEEP", "1")
    fetched_release(tmp_path, "shop", "1.5.0")
    fetched_release(tmp_path, "search", "2.1.0")
    replies: list[RPCReply] = []
    threads = [
        threading.Thread(target=lambda: replies.append(migrate(agent(tmp_path, dsn)))),
        threading.Thread(
            target=lambda: replies.append(migrate(agent(tmp_path, dsn), "search", "2.1.0"))
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [r.statuscode for r in replies] == [0, 0]
    assert all(r.data["applied"] for r in replies)
    done = sorted(runs(tmp_path), key=lambda r: float(r[3]))
    assert [r[0] for r in done] in (["shop", "search"], ["search", "shop"])
    first_end, second_start = float(done[0][4]), float(done[1][3])
    assert first_end <= second_start
    assert {(r["service"], r["outcome"]) for r in table_rows(dsn)} == {
        ("shop", "ok"),
        ("search", "ok"),
    }


@pytest.mark.integration
def test_a_node_killed_mid_migration_frees_the_lock(tmp_path: Path, dsn: str) -> None:
    """The process running the migration dies (kill -9): its database session or file lock
    goes with it, the row says running, and the next call runs the phase again, saying so."""
    fetched_release(tmp_path, "shop", "1.5.0")
    script = (
        "import sys; from pathlib import Path\n"
        "from tests.agents_py.test_migrations import agent, migrate\n"
        f"migrate(agent(Path({str(tmp_path)!r}), {dsn!r}, identity='web1.lab'))\n"
    )
    env = {**os.environ, "MIGRATE_SLEEP": "30"}
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not any(r["outcome"] == "running" for r in _rows_quietly(dsn)):
            assert time.monotonic() < deadline, "the first call never recorded itself running"
            assert child.poll() is None, "the first call ended early"
            time.sleep(0.2)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    again = migrate(agent(tmp_path, dsn, identity="web2.lab"))
    assert again.statuscode == 0, again.statusmsg
    assert again.data["applied"] is True
    assert again.data["detail"] == (
        "shop 1.5.0 pre migration applied; an earlier attempt on web1.lab was interrupted; "
        "ran again"
    )
    assert table_rows(dsn)[0]["node"] == "web2.lab"


def _rows_quietly(dsn: str) -> list[dict[str, Any]]:
    """The rows, without taking the lock (the lock is what the first caller holds)."""
    if dsn.startswith("sqlite:"):
        path = dsn[len("sqlite://") :]
        if not Path(path).exists():
            return []
        with sqlite3.connect(path) as db:
            try:
                rows = db.execute(f"SELECT outcome FROM {migrations.TABLE}").fetchall()
            except sqlite3.OperationalError:
                return []
        return [{"outcome": r[0]} for r in rows]
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        try:
            got = db.execute(f"SELECT outcome FROM {migrations.TABLE}").fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    return [{"outcome": r[0]} for r in got]


def _drop(dsn: str, table: str) -> None:
    if dsn.startswith("sqlite:"):
        with sqlite3.connect(dsn[len("sqlite://") :]) as db:
            db.execute(f"DROP TABLE {table}")
        return
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"DROP TABLE {table}")


@pytest.mark.integration
def test_the_lock_wait_is_bounded(tmp_path: Path, dsn: str) -> None:
    fetched_release(tmp_path, "shop", "1.5.0")
    holder = migrations.open_ledger(dsn)
    try:
        with holder.locked(5):
            reply = migrate(agent(tmp_path, dsn, migrate_lock_timeout="1"))
    finally:
        holder.close()
    assert reply.statuscode == 1
    assert "is still held by another caller after 1 s" in reply.statusmsg
    assert runs(tmp_path) == []


# ---------------------------------------------------------------------------- refusals


def test_without_a_dsn_the_action_says_what_to_set(tmp_path: Path) -> None:
    fetched_release(tmp_path, "shop", "1.5.0")
    reply = migrate(agent(tmp_path, ""))
    assert reply.statuscode == 1
    assert reply.statusmsg == (
        "no database for the migrations of shop: set plugin.deploy.shop.migrate_dsn "
        "(postgresql://... or sqlite:////path.db) in the node's server.cfg"
    )


def test_a_release_that_is_not_fetched_is_refused(tmp_path: Path) -> None:
    reply = migrate(agent(tmp_path, f"sqlite:///{tmp_path}/x.db"))
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith("shop 1.5.0 is not fetched on this node; run deploy fetch")
    assert not (tmp_path / "x.db").exists()


def test_the_command_must_stay_in_the_release(tmp_path: Path) -> None:
    fetched_release(tmp_path, "shop", "1.5.0")
    reply = migrate(
        agent(tmp_path, f"sqlite:///{tmp_path}/x.db", migrate_command="../../../bin/sh -c id")
    )
    assert reply.statuscode == 1
    assert reply.statusmsg == "migration command '../../../bin/sh' leaves the release directory"


def test_the_phase_is_checked_by_the_ddl(tmp_path: Path) -> None:
    reply = migrate(agent(tmp_path, "sqlite:////x.db"), phase="sideways")
    assert reply.statuscode == 4
    assert "phase" in reply.statusmsg


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        (
            "mysql://root@127.0.0.1/app",
            "migrate_dsn 'mysql://root@127.0.0.1/app' is not a postgresql:// or sqlite:/// URL",
        ),
        ("sqlite:///relative.db", "a SQLite DSN names an absolute file"),
        (
            "mssql://sa:secret@127.0.0.1/app",
            "migrate_dsn 'mssql://sa:***@127.0.0.1/app': SQL Server is not driven",
        ),
        (
            "postgresql://postgres@127.0.0.1:1/none",
            "cannot connect to postgresql://postgres@127.0.0.1:1/none",
        ),
    ],
)
def test_bad_databases_are_refused_clearly(dsn: str, message: str) -> None:
    with pytest.raises(migrations.MigrationError) as info:
        migrations.open_ledger(dsn)
    assert message in str(info.value)


def test_the_settings_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "agents.md").read_text()
    for key in ("migrate_dsn", "migrate_command", "migrate_timeout", "migrate_lock_timeout"):
        assert f"`{key}`" in doc, key


# ---------------------------------------------------------------------------- pull model, end to end

MIGRATE_PY = """import os, sys, psycopg
phase = sys.argv[1]
with psycopg.connect(os.environ["DEPLOY_MIGRATE_DSN"], autocommit=True) as db:
    if phase == "pre":
        db.execute("CREATE TABLE orders (id integer PRIMARY KEY, total numeric)")
        db.execute("ALTER TABLE orders ADD COLUMN currency text")  # expand
    else:
        db.execute("ALTER TABLE orders ALTER COLUMN currency SET NOT NULL")  # contract
print("schema " + phase + " of " + os.environ["DEPLOY_VERSION"])
"""


def _release_tarball(version: str) -> bytes:
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("VERSION", f"{version}\n"), ("db/migrate.py", MIGRATE_PY)):
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data.encode()))
    return gzip.compress(raw.getvalue(), mtime=0)


@pytest.mark.integration
def test_the_node_fetches_the_release_and_runs_its_own_migration(
    tmp_path: Path, pg_dsn: str
) -> None:
    """Pull model end to end: the artifact carries db/migrate.py; fetch unpacks and verifies
    it; migrate runs it for pre and post; the table records both; pre again is a no-op."""
    import hashlib

    import psycopg

    from tests.agents_py.lab import ArtifactServer

    server = ArtifactServer(host="127.0.13.40")
    try:
        data = _release_tarball("1.5.0")
        server.files["/artifacts/shop/shop-1.5.0.tar.gz"] = data
        node = agent(
            tmp_path,
            pg_dsn,
            artifact_url=f"{server.base}/artifacts/{{service}}/{{service}}-{{version}}.tar.gz",
            migrate_command=f"{sys.executable} db/migrate.py {{phase}}",
        )
        fetched = call(
            node, "fetch", service="shop", version="1.5.0", sha256=hashlib.sha256(data).hexdigest()
        )
        assert fetched.statuscode == 0, fetched.statusmsg
        pre = migrate(node)
        assert pre.statuscode == 0, pre.statusmsg
        assert pre.data["output"].strip() == "schema pre of 1.5.0"
        release = tmp_path / "releases" / "shop" / "releases" / "1.5.0"
        script = (release / "db" / "migrate.py").read_bytes()
        assert pre.data["checksum"] == hashlib.sha256(b"db/migrate.py\0" + script).hexdigest()
        assert migrate(node).data["already_applied"] is True
        post = migrate(node, phase="post")
        assert post.statuscode == 0 and post.data["applied"] is True, post.statusmsg
    finally:
        server.stop()
    with psycopg.connect(pg_dsn) as db:
        rows = db.execute(
            f"SELECT phase, outcome, node, finished >= started FROM {migrations.TABLE} ORDER BY started"
        ).fetchall()
        columns = db.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'orders' ORDER BY ordinal_position"
        ).fetchall()
    assert rows == [("pre", "ok", "web1.lab", True), ("post", "ok", "web1.lab", True)]
    assert columns == [("id", "NO"), ("total", "YES"), ("currency", "NO")]


def test_a_command_naming_no_release_file_is_refused(tmp_path: Path) -> None:
    fetched_release(tmp_path, "shop", "1.5.0")
    reply = migrate(agent(tmp_path, f"sqlite:///{tmp_path}/x.db", migrate_command="/bin/true"))
    assert reply.statuscode == 1
    assert reply.statusmsg.startswith("the migration command '/bin/true' names no readable file")


# ---------------------------------------------------------------------------- over the wire

SLOW_MIGRATE = """#!{python}
import os, time, psycopg
with psycopg.connect(os.environ["DEPLOY_MIGRATE_DSN"], autocommit=True) as db:
    db.execute("CREATE TABLE IF NOT EXISTS migration_runs (node text, phase text, at double precision)")
    time.sleep(3)
    db.execute("INSERT INTO migration_runs VALUES (%s, %s, %s)",
               (os.environ["DEPLOY_RELEASE_DIR"], os.environ["DEPLOY_PHASE"], time.time()))
print("migrated")
"""


@pytest.mark.integration
def test_drivers_over_the_broker_never_run_a_migration_twice(pg_dsn: str) -> None:
    """Two real ``mco-py server`` nodes share one PostgreSQL database.  Two drivers
    (``mco-py rpc deploy migrate`` processes) race on it through RabbitMQ; a third driver is
    killed while the migration runs and its resumed call gets "already applied": the
    migration program ran once."""
    import psycopg

    from tests.conftest import MCO_PY, PythonFleet, lab_dir, ns_vhost, run_mco_py

    root = lab_dir("migrate-wire")
    for node in ("db1", "db2"):
        release = fetched_release(root / node, "shop", "1.5.0")
        (release / "bin" / "migrate").write_text(SLOW_MIGRATE.format(python=sys.executable))
        release2 = fetched_release(root / node, "shop", "1.6.0")
        (release2 / "bin" / "migrate").write_text(SLOW_MIGRATE.format(python=sys.executable))
    fleet = PythonFleet(
        root / "fleet",
        ns_vhost("mco-py-migrate"),
        ["db1", "db2"],
        extra_cfg="plugin.deploy.migrate_dsn = " + pg_dsn + "\n",
    )
    for node in ("db1", "db2"):  # each node its own release root
        cfg = fleet.root / node / "server.cfg"
        cfg.write_text(cfg.read_text() + f"plugin.deploy.root = {root / node / 'releases'}\n")
    drivers: list[subprocess.Popen[str]] = []
    try:
        fleet.up()
        rpc = [*MCO_PY, "rpc", "deploy", "migrate"]

        def driver(node: str, version: str) -> subprocess.Popen[str]:
            drivers.append(
                p := subprocess.Popen(
                    [*rpc, "service=shop", f"version={version}", "phase=pre", "-I", node, "--json"],
                    env=fleet.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )
            return p

        racing = [driver("db1", "1.5.0"), driver("db2", "1.5.0")]
        replies = []
        for p in racing:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, out + err
            replies.append(json.loads(out)[0])
        assert sorted((r["data"]["applied"], r["data"]["already_applied"]) for r in replies) == [
            (False, True),
            (True, False),
        ]
        # a driver killed during pre, then resumed
        doomed = driver("db1", "1.6.0")
        deadline = time.monotonic() + 30
        while True:
            with psycopg.connect(pg_dsn, autocommit=True) as db:
                running = db.execute(
                    "SELECT count(*) FROM mco_migrations WHERE version = '1.6.0' AND outcome = 'running'"
                ).fetchone()
            if running and running[0]:
                break
            assert time.monotonic() < deadline, "the 1.6.0 migration never started"
            time.sleep(0.2)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
        resumed = run_mco_py(
            fleet.env,
            "rpc",
            "deploy",
            "migrate",
            "service=shop",
            "version=1.6.0",
            "phase=pre",
            "-I",
            "db2",
            "--json",
            timeout=120,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        data = json.loads(resumed.stdout)[0]["data"]
        assert (data["applied"], data["already_applied"], data["applied_by"]) == (
            False,
            True,
            "db1",
        )
        assert data["lock_wait"] > 0.5  # it waited for the killed driver's migration to end
    finally:
        for d in drivers:
            if d.poll() is None:
                os.killpg(d.pid, signal.SIGKILL)
            d.communicate()
        fleet.down()
        shutil.rmtree(root, ignore_errors=True)
    with psycopg.connect(pg_dsn) as db:
        runs_ = db.execute("SELECT phase, count(*) FROM migration_runs GROUP BY phase").fetchall()
        recorded = db.execute(
            "SELECT version, phase, outcome FROM mco_migrations ORDER BY version"
        ).fetchall()
    assert runs_ == [("pre", 2)]  # 1.5.0 once, 1.6.0 once
    assert recorded == [("1.5.0", "pre", "ok"), ("1.6.0", "pre", "ok")]


# ---------------------------------------------------------------------------- apply(), with a fake ledger


class _FakeLedger:
    """In-memory ledger: the lock is a flag, rows a dict."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], migrations.MigrationRecord] = {}
        self.held = False

    def locked(self, timeout: float) -> Any:
        import contextlib

        @contextlib.contextmanager
        def hold() -> Iterator[float]:
            assert not self.held
            self.held = True
            try:
                yield 0.0
            finally:
                self.held = False

        return hold()

    def get(self, service: str, version: str, phase: str) -> migrations.MigrationRecord | None:
        return self.rows.get((service, version, phase))

    def put(self, record: migrations.MigrationRecord) -> None:
        assert self.held, "rows are written under the lock"
        self.rows[(record.service, record.version, record.phase)] = record

    def close(self) -> None:
        pass


def _apply(ledger: _FakeLedger, command: Any, node: str = "web1.lab") -> migrations.Applied:
    return migrations.apply(
        ledger,
        service="shop",
        version="1.5.0",
        phase="pre",
        node=node,
        checksum="c" * 64,
        command=command,
        lock_timeout=1,
        now=lambda: 100.0,
    )


def test_apply_records_a_program_that_cannot_start_as_failed() -> None:
    from mcollective_py.agents.process import CommandNotRunnable

    def missing() -> Any:
        raise CommandNotRunnable("cannot run /r/bin/migrate: No such file or directory")

    ledger = _FakeLedger()
    done = _apply(ledger, missing)
    assert done.ran and done.record.outcome == "failed"
    assert done.record.detail == "cannot run /r/bin/migrate: No such file or directory"
    assert ledger.rows[("shop", "1.5.0", "pre")].outcome == "failed"


def test_apply_reruns_an_interrupted_phase_and_says_so() -> None:
    from mcollective_py.agents.process import CommandResult

    ledger = _FakeLedger()
    ledger.held = True
    ledger.put(
        migrations.MigrationRecord(
            "shop", "1.5.0", "pre", "c" * 64, 50.0, None, "web9.lab", "running"
        )
    )
    ledger.held = False
    ran: list[int] = []

    def ok() -> CommandResult:
        ran.append(1)
        return CommandResult(("migrate",), 0, "done", 0.1, False)

    done = _apply(ledger, ok, node="web2.lab")
    assert ran == [1] and done.record.outcome == "ok" and done.record.node == "web2.lab"
    assert done.note == "an earlier attempt on web9.lab was interrupted; ran again"
    again = _apply(ledger, ok)
    assert ran == [1] and not again.ran and again.note == "already applied on web2.lab"
