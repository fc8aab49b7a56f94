"""Crash safety: ``seedkit run`` and ``seedkit migrate up`` killed with SIGKILL lose nothing.

A real ``seedkit`` process seeds a large generator fixture and is killed at chosen points: while the
fixture module loads, while rows stream through COPY (straight into an empty table, and into a staging
table), inside the merge's INSERT and UPDATE, after the merge of one table while the next one loads, and
while PostgreSQL runs the COMMIT (a deferred constraint trigger holds it there). After each kill:

- every seeded table is byte-for-byte what it was before (a checksum of every row, read with the driver),
  except at COMMIT, where all of the run or none of it is the only acceptable outcome;
- the seed lock is released once the killed session's statement ends, and the next run succeeds and
  ends exactly like an uninterrupted run.

The fixture tells the test where it is by writing a signal file at row k and then sleeping, so the kill
lands where the test says, not where a timer guesses; the merge and commit points are held by triggers
that call ``pg_sleep``, and the test checks ``pg_stat_activity`` to be sure which statement it killed.
Killed while the fixture files import, the run must not even have connected yet. ``migrate up`` is
killed inside a chosen statement: on PostgreSQL found in ``pg_stat_activity`` (held there by
``pg_sleep``), on SQLite reported by sqlite3's trace hook as it starts running (a long recursive
INSERT), and the test checks no later statement had started.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support import (
    advisory_locks,
    backends,
    checksums,
    create_pg_database,
    drop_pg_database,
    kill,
    process_env,
    seedkit,
    spawn,
    wait_backends_gone,
    wait_for,
    write_files,
)

ROWS = 60_000  # items in version 1; version 2 changes them all and adds a fifth more
KILL_ROW = ROWS // 2
# rows of the last table; the kill "after a merge" lands at TAIL_KILL_ROW, in its COPY. The planner reads
# the first rows of a Python fixture ahead (up to 10 000, to learn what it references): stop past them.
TAIL = 15_000
TAIL_KILL_ROW = 14_000
SLEEP = 3  # seconds a trigger holds the server inside a statement
TABLES = ["kinds", "items", "events", "tail", "seedkit_meta"]

PG_SCHEMA = f"""
CREATE TABLE kinds (id serial PRIMARY KEY, name text NOT NULL UNIQUE, label text);
CREATE TABLE items (id bigint PRIMARY KEY, sku text NOT NULL UNIQUE, kind_id int NOT NULL REFERENCES kinds(id),
                    qty int NOT NULL, price numeric(12,2), note text);
CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, payload text);
CREATE TABLE tail (id int PRIMARY KEY, item_id bigint REFERENCES items(id), label text);
CREATE FUNCTION crash_sleep() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep({SLEEP}); RETURN NULL; END $$;
CREATE FUNCTION crash_sleep_first_row() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN IF NEW.id = 1 THEN PERFORM pg_sleep({SLEEP}); END IF; RETURN NULL; END $$;
"""

SQLITE_SCHEMA = """
CREATE TABLE kinds (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, label TEXT);
CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, kind_id INTEGER NOT NULL REFERENCES kinds(id),
                    qty INTEGER NOT NULL, price NUMERIC, note TEXT);
CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT);
CREATE TABLE tail (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES items(id), label TEXT);
CREATE INDEX tail_item_id ON tail (item_id);  -- SQLite checks child rows by scanning without it
"""

# Version 1 (SK_VERSION=1) is the state before the killed run; version 2 changes every items row, adds
# rows, fills the empty events table and relabels kinds. SK_CRASH_* say where to stop and signal.
SEEDS = {
    "seedkit.toml": """
        [database]
        url = "sqlite:///unused.db"

        [seeds]
        faker_seed = 1
        lock_timeout = 30

        [envs.dev]
        include = ["common", "dev"]
    """,
    "seeds/common/kinds.yaml": """
        key: [name]
        rows:
          - name: alpha
            label: !env SK_LABEL:-first
          - name: beta
            label: !env SK_LABEL:-first
          - name: gamma
            label: gamma
    """,
    "seeds/dev/generated.py": f'''
        import os
        import time
        from decimal import Decimal
        from pathlib import Path

        from seedkit import fixture, ref

        ROWS = {ROWS}
        TAIL = {TAIL}
        VERSION = int(os.environ.get("SK_VERSION", "1"))
        CRASH = os.environ.get("SK_CRASH_FIXTURE")
        CRASH_ROW = int(os.environ.get("SK_CRASH_ROW", "0"))
        KINDS = ["alpha", "beta", "gamma"]


        def stop_here(name, n):
            """Tell the test where we are, then wait for the SIGKILL."""
            if CRASH == name and n == CRASH_ROW:
                Path(os.environ["SK_CRASH_SIGNAL"]).write_text(str(os.getpid()))
                time.sleep(600)


        stop_here("import", 0)


        @fixture("items", key=["sku"])
        def items(fake):
            total = ROWS + (ROWS // 5 if VERSION > 1 else 0)
            for n in range(1, total + 1):
                stop_here("items", n)
                yield {{"id": n, "sku": f"sku-{{n:07d}}", "kind_id": ref("kinds", KINDS[n % 3]),
                       "qty": n * VERSION, "price": Decimal(n % 10000) / 100 + VERSION,
                       "note": None if n % 11 == 0 else f"v{{VERSION}} note {{n}}"}}


        @fixture("events", key=["id"])
        def events(fake):
            if VERSION < 2:
                return
            for n in range(1, ROWS + 1):
                stop_here("events", n)
                yield {{"id": n, "kind": KINDS[n % 3], "payload": "x" * (n % 40)}}


        @fixture("tail", key=["id"])
        def tail(fake):
            for n in range(1, TAIL + 1):
                stop_here("tail", n)
                yield {{"id": n, "item_id": ref("items", f"sku-{{n % ROWS + 1:07d}}"), "label": f"v{{VERSION}}"}}
    ''',
}

V1 = {"SK_VERSION": "1"}
V2 = {"SK_VERSION": "2", "SK_LABEL": "second"}


def run_ok(root: Path, url: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    done = seedkit(root, "run", "dev", "--database", url, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic() - started


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash")
    write_files(root, SEEDS)
    return root


# -- PostgreSQL -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_states(pg_server: str, project_dir: Path) -> Iterator[tuple[str, dict]]:
    """A template database in the "before" state (version 1 seeded) and the checksums of an
    uninterrupted version-2 run on a copy of it (the "after" state)."""
    template = create_pg_database(pg_server, "crash_tpl")
    with psycopg.connect(template, autocommit=True) as conn:
        conn.execute(PG_SCHEMA)
    run_ok(project_dir, template, V1)
    reference = _pg_copy(pg_server, template)
    run_ok(project_dir, reference, V2)
    after = checksums(reference, TABLES)
    drop_pg_database(pg_server, reference)
    yield template, after
    drop_pg_database(pg_server, template)


def _pg_copy(server: str, template: str) -> str:
    name = f"crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template.rsplit("/", 1)[1])))
    return template.rsplit("/", 1)[0] + "/" + name


# points where the kill may also land with the run's session idle in its transaction: the fixture stopped
# while the server still worked through what came before (a busy machine: the rows made meanwhile are held,
# seed/overlap.py), so the staging COPY waits for the fixture, and the session has nothing left to do
BETWEEN_STATEMENTS = {"after-a-merge-while-the-next-table-loads", "after-a-slow-merge-with-the-next-table-held"}


def idle_a_while(url: str, seconds: float = 0.5) -> list[tuple]:
    """The run's sessions idle in their transaction for ``seconds`` or more: done with every statement sent
    (statements sent one after another leave it idle for moments only)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'seedkit%%' AND pid <> pg_backend_pid() AND state = 'idle in transaction' "
            "AND now() - state_change >= make_interval(secs => %s)", [seconds]).fetchall()


# point -> (crash env, SQL run before the killed run, what pg_stat_activity must show at the kill)
PG_POINTS: dict[str, tuple[dict[str, str], str | None, str]] = {
    "while-importing-fixtures": ({"SK_CRASH_FIXTURE": "import"}, None, ""),
    "while-copying-into-an-empty-table": ({"SK_CRASH_FIXTURE": "events", "SK_CRASH_ROW": str(KILL_ROW)}, None,
                                          'COPY "public"."events"'),
    "while-copying-into-staging": ({"SK_CRASH_FIXTURE": "items", "SK_CRASH_ROW": str(KILL_ROW)}, None,
                                   'COPY "_sk_stage_'),
    "inside-the-merge-insert": ({}, "CREATE TRIGGER crash AFTER INSERT ON items FOR EACH STATEMENT "
                                    "EXECUTE FUNCTION crash_sleep()", 'INSERT INTO "public"."items"'),
    "inside-the-merge-update": ({}, "CREATE TRIGGER crash AFTER UPDATE ON items FOR EACH STATEMENT "
                                    "EXECUTE FUNCTION crash_sleep()", 'UPDATE "public"."items"'),
    "after-a-merge-while-the-next-table-loads": ({"SK_CRASH_FIXTURE": "tail", "SK_CRASH_ROW": str(TAIL_KILL_ROW)},
                                                 None, "COPY "),
    # the merge held up by a trigger (3 s) while the fixture goes on: the next table's rows made meanwhile are
    # held, and the kill lands with them unsent, the session idle in its transaction
    "after-a-slow-merge-with-the-next-table-held": (
        {"SK_CRASH_FIXTURE": "tail", "SK_CRASH_ROW": str(TAIL_KILL_ROW)},
        "CREATE TRIGGER crash AFTER INSERT ON items FOR EACH STATEMENT EXECUTE FUNCTION crash_sleep()", "COPY "),
    "during-commit": ({}, "CREATE CONSTRAINT TRIGGER crash AFTER UPDATE ON items DEFERRABLE INITIALLY DEFERRED "
                          "FOR EACH ROW EXECUTE FUNCTION crash_sleep_first_row()", "COMMIT"),
}


@pytest.mark.parametrize("point", list(PG_POINTS))
def test_sigkill_during_seed_run_leaves_postgresql_unchanged(point: str, pg_server: str, project_dir: Path,
                                                           pg_states: tuple[str, dict], tmp_path: Path) -> None:
    template, after = pg_states
    url = _pg_copy(pg_server, template)
    try:
        crash_env, setup_sql, expected_query = PG_POINTS[point]
        if setup_sql:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(setup_sql)
        before = checksums(url, TABLES)
        assert before != after  # the killed run would change every table
        signal = tmp_path / "signal"
        proc = spawn(project_dir, "run", "dev", "--database", url,
                     env={**V2, **crash_env, "SK_CRASH_SIGNAL": str(signal)})
        try:
            if crash_env:
                wait_for(lambda: signal.exists() or proc.poll() is not None, 60, "the fixture's signal")
                assert proc.poll() is None, proc.communicate()
            if point == "while-importing-fixtures":
                # fixture files run before seedkit connects: however long an import takes, the run
                # holds no session and no lock meanwhile, so it blocks no one and leaves nothing behind
                assert backends(url) == [] and advisory_locks(url) == []
            if expected_query:
                sleeping = "PgSleep" if setup_sql and point not in BETWEEN_STATEMENTS else None
                seen = wait_for(lambda: [b for b in backends(url, "seedkit") if expected_query in b[4]
                                         and b[2] == "active" and (sleeping is None or b[3] == sleeping)]
                                or (point in BETWEEN_STATEMENTS and idle_a_while(url))
                                or proc.poll() is not None, 30, f"the run to be in {expected_query!r}")
                assert proc.poll() is None, proc.communicate()
                assert seen, backends(url, "seedkit")
        finally:
            kill(proc)
        gone_after = wait_backends_gone(url, SLEEP + 15)
        assert gone_after < SLEEP + 5, "the killed run's session lingered after its statement ended"
        assert advisory_locks(url) == [], "the seed lock outlived the killed run"
        now = checksums(url, TABLES)
        if point == "during-commit":
            # COMMIT had been sent: PostgreSQL finishes it or not, but never half of it
            assert now in (before, after)
        else:
            assert now == before
        if setup_sql:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DROP TRIGGER crash ON items")
        took = run_ok(project_dir, url, V2)  # waits at most lock_timeout = 30 s: it must not have to
        assert took < 25
        assert checksums(url, TABLES) == after
    finally:
        drop_pg_database(pg_server, url)


def test_sigkill_during_a_long_statement_releases_the_lock_promptly(pg_server: str, project_dir: Path,
                                                                  pg_states: tuple[str, dict]) -> None:
    """A run killed while the server works through a long merge statement (a big table: minutes) must
    not keep the seed lock until that statement ends, or the retried deploy waits for a dead run and
    times out. PostgreSQL notices a vanished client only when it next talks to it, unless the session
    sets ``client_connection_check_interval`` (PostgreSQL 14+), which cancels the orphaned statement."""
    template, _ = pg_states
    url = _pg_copy(pg_server, template)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            if conn.info.server_version < 140000:
                pytest.skip("client_connection_check_interval needs PostgreSQL 14")
            conn.execute("CREATE OR REPLACE FUNCTION crash_sleep() RETURNS trigger LANGUAGE plpgsql AS "
                         "$$ BEGIN PERFORM pg_sleep(20); RETURN NULL; END $$")
            conn.execute("CREATE TRIGGER crash AFTER UPDATE ON items FOR EACH STATEMENT "
                         "EXECUTE FUNCTION crash_sleep()")
        proc = spawn(project_dir, "run", "dev", "--database", url, env=V2)
        try:
            wait_for(lambda: [b for b in backends(url, "seedkit") if b[3] == "PgSleep"] or proc.poll() is not None,
                     30, "the merge to be running")
            assert proc.poll() is None, proc.communicate()
        finally:
            kill(proc)
        lingered = wait_backends_gone(url, 30)
        assert lingered < 8, (f"the killed run's session kept running its statement (and the seed lock) for "
                              f"{lingered:.0f} s after the client was gone")
    finally:
        drop_pg_database(pg_server, url)


# -- PostgreSQL: migrate up ---------------------------------------------------------------------------
MIGRATIONS = {
    "migrations/001_accounts.sql": """
        -- migrate:up
        CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);
        INSERT INTO accounts VALUES (1, 'one'), (2, 'two');
        CREATE TABLE crash_control (seconds float NOT NULL, rows int NOT NULL DEFAULT 1);
    """,
    "migrations/002_slow.sql": """
        -- migrate:up
        CREATE TABLE audit (id serial PRIMARY KEY, what text);
        UPDATE accounts SET name = upper(name);
        INSERT INTO accounts SELECT g, 'n' || g FROM generate_series(3, 20000) g;
        SELECT pg_sleep(coalesce((SELECT max(seconds) FROM crash_control), 0));
        ALTER TABLE accounts ADD COLUMN email text;

        -- migrate:down
        ALTER TABLE accounts DROP COLUMN email;
        DROP TABLE audit;
    """,
    "migrations/003_after.sql": """
        -- migrate:up
        CREATE INDEX accounts_name ON accounts (name);
    """,
}
MIGRATE_CONFIG = {"seedkit.toml": """
    [database]
    url = "${APP_DB}"

    [migrations]
    lock_timeout = 30

    [envs.dev]
    include = []
"""}


def _pg_schema_state(url: str) -> tuple:
    """History, the tables' content and the columns of accounts: everything the migrations touch."""
    with psycopg.connect(url, autocommit=True) as conn:
        history = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        columns = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts' "
                               "ORDER BY ordinal_position").fetchall()
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1").fetchall()
    return history, columns, tables, indexes, checksums(url, ["accounts", "audit"])


@pytest.mark.postgres
def test_sigkill_during_a_transactional_migration_leaves_the_last_good_version(pg_url: str, tmp_path: Path) -> None:
    write_files(tmp_path, {**MIGRATE_CONFIG, **MIGRATIONS})
    env = {"APP_DB": pg_url}
    first = seedkit(tmp_path, "migrate", "up", "--to", "1", env=env)
    assert first.returncode == 0, first.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO crash_control VALUES ({SLEEP})")
    before = _pg_schema_state(pg_url)
    proc = spawn(tmp_path, "migrate", "up", env=env)
    try:
        seen = wait_for(lambda: [b for b in backends(pg_url) if b[3] == "PgSleep" and "pg_sleep" in b[4]]
                        or proc.poll() is not None, 60, "migration 002 to reach its pg_sleep")
        assert proc.poll() is None, proc.communicate()
        assert seen
    finally:
        kill(proc)
    wait_backends_gone(pg_url, SLEEP + 15)
    assert advisory_locks(pg_url) == [], "the migration lock outlived the killed run"
    assert _pg_schema_state(pg_url) == before  # 002's table, update and inserts are all gone
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM crash_control")
    started = time.monotonic()
    again = seedkit(tmp_path, "migrate", "up", env=env)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 25
    assert "applied 002_slow" in again.stdout and "applied 003_after" in again.stdout
    history, columns, _, indexes, sums = _pg_schema_state(pg_url)
    assert history == [("001",), ("002",), ("003",)]
    assert ("email",) in columns and ("accounts_name",) in indexes
    assert sums["accounts"] is not None and sums["accounts"][0] == 20000
    status = seedkit(tmp_path, "migrate", "status", "--exit-code", env=env)
    assert status.returncode == 0, status.stdout + status.stderr


# -- SQLite ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sqlite_states(project_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("crash_sqlite")
    template = folder / "template.db"
    conn = sqlite3.connect(template)
    conn.executescript(SQLITE_SCHEMA)
    conn.close()
    run_ok(project_dir, f"sqlite:///{template}", V1)
    reference = folder / "reference.db"
    shutil.copy(template, reference)
    run_ok(project_dir, f"sqlite:///{reference}", V2)
    return template, checksums(f"sqlite:///{reference}", TABLES)


SQLITE_POINTS = {
    "while-loading-staging-rows": {"SK_CRASH_FIXTURE": "items", "SK_CRASH_ROW": str(KILL_ROW)},
    "while-loading-an-empty-table": {"SK_CRASH_FIXTURE": "events", "SK_CRASH_ROW": str(KILL_ROW)},
    "after-a-merge-while-the-next-table-loads": {"SK_CRASH_FIXTURE": "tail", "SK_CRASH_ROW": str(TAIL_KILL_ROW)},
}


@pytest.mark.parametrize("point", list(SQLITE_POINTS))
def test_sigkill_during_seed_run_leaves_sqlite_unchanged(point: str, project_dir: Path,
                                                        sqlite_states: tuple[Path, dict], tmp_path: Path) -> None:
    template, after = sqlite_states
    path = tmp_path / "crash.db"
    shutil.copy(template, path)
    url = f"sqlite:///{path}"
    before = checksums(url, TABLES)
    signal = tmp_path / "signal"
    proc = spawn(project_dir, "run", "dev", "--database", url, env={**V2, **SQLITE_POINTS[point],
                                                                  "SK_CRASH_SIGNAL": str(signal)})
    try:
        wait_for(lambda: signal.exists() or proc.poll() is not None, 60, "the fixture's signal")
        assert proc.poll() is None, proc.communicate()
        # the run holds the write lock with rows written: a hot journal is there to undo them
        assert Path(f"{path}-journal").exists() or Path(f"{path}-wal").exists()
    finally:
        kill(proc)
    assert checksums(url, TABLES) == before  # reading rolls the hot journal back
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    took = run_ok(project_dir, url, V2)
    assert took < 25
    assert checksums(url, TABLES) == after


# ``python -m seedkit ARGS`` whose SQLite connections write each statement to a file as it starts running
# (sqlite3's trace hook), so the test knows which statement the process is in when it kills it.
TRACING_LAUNCHER = """
import runpy, sqlite3, sys
log = open(sys.argv[1], "a", buffering=1)
_connect = sqlite3.connect


def connect(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    conn.set_trace_callback(lambda statement: log.write(" ".join(statement.split()) + "\\n"))
    return conn


sqlite3.connect = connect
sys.argv = ["seedkit", *sys.argv[2:]]
runpy.run_module("seedkit", run_name="__main__", alter_sys=True)
"""


def test_sigkill_during_a_sqlite_migration_keeps_history_and_schema_consistent(tmp_path: Path) -> None:
    files = {**MIGRATE_CONFIG, **MIGRATIONS}
    # no pg_sleep in SQLite: a statement that takes a while instead
    files["migrations/002_slow.sql"] = """
        -- migrate:up
        CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
        UPDATE accounts SET name = upper(name);
        INSERT INTO accounts WITH RECURSIVE g(x) AS (SELECT 3 UNION ALL SELECT x + 1 FROM g WHERE x < 20000)
          SELECT x, 'n' || x FROM g;
        INSERT INTO audit (what) WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g
          WHERE x < (SELECT coalesce(max(rows), 1) FROM crash_control)) SELECT NULL FROM g WHERE x % 1000000 = 0;
        ALTER TABLE accounts ADD COLUMN email TEXT;
    """
    write_files(tmp_path, files)
    db = tmp_path / "app.db"
    env = {"APP_DB": f"sqlite:///{db}"}
    assert seedkit(tmp_path, "migrate", "up", "--to", "1", env=env).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO crash_control VALUES (0, 30000000)")  # a long statement in 002

    def state() -> tuple:
        conn = sqlite3.connect(db)
        try:
            history = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') "
                                  "AND name NOT LIKE 'sqlite_%' ORDER BY 1").fetchall()
            columns = [r[1] for r in conn.execute("PRAGMA table_info(accounts)")]
            ok = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
        return history, tables, columns, ok, checksums(f"sqlite:///{db}", ["accounts"])

    before = state()
    trace = tmp_path / "statements.log"
    proc = subprocess.Popen([sys.executable, "-c", TRACING_LAUNCHER, str(trace), "migrate", "up"], cwd=tmp_path,
                            env=process_env(env), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def running() -> str:
        lines = trace.read_text().splitlines() if trace.exists() else []
        return lines[-1] if lines else ""

    try:
        # the kill lands by the statement SQLite is running, as its trace hook reports it
        wait_for(lambda: "INSERT INTO audit" in running() or proc.poll() is not None, 60, "002's long INSERT")
        assert proc.poll() is None, proc.communicate()
        assert Path(f"{db}-journal").exists()  # 002 has written: its table, update and inserts
    finally:
        kill(proc)
    assert "INSERT INTO audit" in running(), running()  # killed inside it: no later statement had started
    assert state() == before
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM crash_control")
    again = seedkit(tmp_path, "migrate", "up", env=env)
    assert again.returncode == 0, again.stderr
    history, tables, columns, ok, sums = state()
    assert history == [("001",), ("002",), ("003",)] and "email" in columns and ok == [("ok",)]
    assert sums["accounts"] is not None and sums["accounts"][0] == 20000
