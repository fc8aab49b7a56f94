"""Attacks on ``migrate up``'s lock guard and its messages, with real servers and real processes.

- A connection pooler in transaction mode (PgBouncer) between the runs and the server: a session lock
  taken through it stays with a pooled server session while the run's next statements go to others,
  so two runs went ahead at once (and the leaked lock made later runs wait for a session nobody owns).
- The run's connection ended (``pg_terminate_backend``) at precise moments: before a migration without
  a transaction started, and between its statements; the message must say what was done.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.support import Project
from tests.support.pgcluster import free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # (as the suite's conftest reads it)

pytestmark = pytest.mark.postgres


# -- a connection pooler in transaction mode -------------------------------------------------------

def _pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
                                              if os.path.exists(p)), None)


@pytest.fixture
def pooler(pg_server: str) -> Iterator[str]:
    """A PgBouncer in transaction mode in front of the test server; yields its URL (maintenance db)."""
    binary = _pgbouncer()
    if binary is None:
        if IN_CI:  # (.ci/run installs it)
            pytest.fail("CI=true and pgbouncer is not installed", pytrace=False)
        pytest.skip("pgbouncer is not installed")
    server = conninfo_to_dict(pg_server)
    user = server.get("user") or "postgres"
    folder = Path(tempfile.mkdtemp(prefix="seedkit-pgbouncer-"))  # (not under pytest's folder: its owner only)
    port = free_port()
    password = f" password={server['password']}" if server.get("password") else ""
    (folder / "users.txt").write_text(f'"{user}" ""\n', encoding="utf-8")
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n* = host={server.get('host') or '127.0.0.1'} port={server.get('port') or 5432} "
        f"user={user}{password}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = trust\n"
        f"auth_file = {folder / 'users.txt'}\npool_mode = transaction\ndefault_pool_size = 4\n"
        "max_client_conn = 50\nignore_startup_parameters = extra_float_digits\n", encoding="utf-8")
    as_user: dict[str, int] = {}
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: its own process as another user
        owner = pwd.getpwnam("postgres" if _user_exists("postgres") else "nobody")
        for f in (folder, *folder.iterdir()):
            os.chown(f, owner.pw_uid, owner.pw_gid)
        as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    process = subprocess.Popen([binary, str(folder / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, **as_user)  # type: ignore[call-overload]
    url = f"postgresql://{user}@127.0.0.1:{port}/{server.get('dbname') or 'postgres'}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=2) as c:
                    c.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    why = f"pgbouncer did not start: {process.stderr.read() if process.stderr else ''}"
                    if IN_CI:
                        pytest.fail(f"CI=true and {why}", pytrace=False)
                    pytest.skip(why)
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)  # (SIGINT waits for its clients to leave)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _via(url: str, database_url: str) -> str:
    """``url`` (the pooler) pointing at the database of ``database_url``."""
    return url.rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]


def test_a_pooler_in_transaction_mode_is_refused_before_the_lock_is_taken(
        tmp_path: Path, pg_url: str, pooler: str) -> None:
    """Three runs at once through PgBouncer (transaction mode), a slow data-changing migration: every
    run is refused (exit 4, naming the pooler) before it takes the lock or creates the history table;
    no advisory lock is left on any server session; a direct run then applies each migration once.

    (Before: the runs failed with 'a statement released it (pg_advisory_unlock_all() …)', 'prepared
    statement "_pg3_0" does not exist' or a duplicate key in pg_type, two could exit 0 side by side, and
    the lock stayed with a pooled session, so the next run waited its whole lock timeout.)"""
    project = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    project.single("1", "counter", "CREATE TABLE counter (n int);\nINSERT INTO counter VALUES (0)")
    project.single("2", "bump", "UPDATE counter SET n = n + 1;\nSELECT pg_sleep(1)", transactional=False)
    project.single("3", "more", "UPDATE counter SET n = n + 100")
    through = _via(pooler, pg_url)
    runs = [project.spawn("migrate", "up", "--database", through, "--lock-timeout", "5") for _ in range(3)]
    said = [r.communicate(timeout=60) for r in runs]
    results = [(r.returncode, out, err) for r, (out, err) in zip(runs, said)]
    for code, out, err in results:
        assert code == 4, (code, out, err)
        assert err.startswith("error: refusing to migrate ") and "through a connection pooler" in err, err
        assert "nothing was run" in err and "hint: connect to the server directly" in err, err
        assert "Traceback" not in err and out == "", (out, err)
    with psycopg.connect(pg_url, autocommit=True) as c:
        assert c.execute("SELECT to_regclass('schema_migrations'), to_regclass('counter')").fetchone() == (None, None)
        assert c.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() == (0,)
    direct = project.migrate("up", "--lock-timeout", "5")
    assert direct.returncode == 0, direct.stderr
    assert project.rows("SELECT n FROM counter") == [(101,)]
    # status reads only, and takes no lock: it works through the pooler
    status = project.migrate("status", "--database", through)
    assert status.returncode == 0, status.stderr


# -- the run's connection ended at precise moments -------------------------------------------------

def _terminate(db_conn: psycopg.Connection, admin_url: str) -> None:
    """End the server session of ``db_conn`` from another connection, and wait until it is gone."""
    with psycopg.connect(admin_url, autocommit=True) as c:
        assert c.execute("SELECT pg_terminate_backend(%s, 5000)", [db_conn.info.backend_pid]).fetchone()[0]


def _outside_project(tmp_path: Path, url: str) -> Project:
    project = Project.with_migrations(tmp_path, url, url_variable="APP_DATABASE_URL")
    project.single("1", "a", "CREATE TABLE a (x int)")
    (project.migrations_dir / "2_b.sql").write_text(
        "-- migrate:up transaction:false\nCREATE TABLE b (x int);\nINSERT INTO b VALUES (1);\n"
        "CREATE INDEX CONCURRENTLY b_x ON b (x);\n\n-- migrate:down transaction:false\n"
        "DROP INDEX CONCURRENTLY b_x;\nDROP TABLE b;\n", encoding="utf-8")
    project.single("3", "c", "CREATE TABLE c (x int)", "DROP TABLE c")
    return project


def test_a_connection_lost_before_a_migration_without_a_transaction_starts_says_nothing_of_it_ran(
        tmp_path: Path, pg_url: str, pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's session is ended just before migration 2 (no transaction) starts: exit 1, and the
    message says nothing of it ran (before: 'the migration's open transaction was rolled back', of a
    migration that has none); the next run applies it."""
    from seedkit.db.postgres.migration import PostgresSession

    project = _outside_project(tmp_path, pg_url)
    check = PostgresSession.check_lock

    def ended_first(self: PostgresSession, label: str) -> None:
        if label == "2_b":
            _terminate(self.db.conn, pg_server)
        check(self, label)

    monkeypatch.setattr(PostgresSession, "check_lock", ended_first)
    result = project.migrate("up")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(
        "error: lost the connection to the database while applying 2_b (connection lost: terminating connection "
        "due to administrator command); the migration lock ended with it, before the migration (which runs "
        "without a transaction) had started: nothing of it ran\n"), result.stderr
    assert "rolled back" not in result.stderr and "Traceback" not in result.stderr
    assert project.rows("SELECT version, status FROM schema_migrations ORDER BY 1") == [("1", "applied")]
    assert project.rows("SELECT to_regclass('b')") == [(None,)]
    monkeypatch.setattr(PostgresSession, "check_lock", check)
    again = project.migrate("up")
    assert again.returncode == 0, again.stderr
    assert project.rows("SELECT version, status FROM schema_migrations ORDER BY 1") == [
        ("1", "applied"), ("2", "applied"), ("3", "applied")]


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_connection_lost_between_statements_without_a_transaction_says_how_many_ran(
        direction: str, tmp_path: Path, pg_url: str, pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's session is ended after the first statement of migration 2 (no transaction): the message
    counts the statements that ran and says what the history holds: 'running' (up), still applied (down;
    before, it said the row was 'running', which a down never writes)."""
    from seedkit.migrate.runner import Runner

    project = _outside_project(tmp_path, pg_url)
    if direction == "down":
        assert project.migrate("up").returncode == 0
        assert project.migrate("down").returncode == 0  # 3; the run below rolls back 2
    execute = Runner._execute
    seen: list[int] = []

    def ended_after_first(self: Runner, planned, stmt, *, done, run=None):  # type: ignore[no-untyped-def]
        if planned.migration.version == "2" and done == 1:
            seen.append(done)
            _terminate(self.db.conn, pg_server)
        return execute(self, planned, stmt, done=done, run=run)

    monkeypatch.setattr(Runner, "_execute", ended_after_first)
    result = project.migrate(direction)
    assert seen == [1] and result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "rolled back" not in result.stderr, result.stderr
    head = ("error: lost the connection to the database while applying 2_b (connection lost: terminating "
            "connection due to administrator command); the migration lock ended with it; ")
    if direction == "up":
        assert result.stderr.startswith(head + "the migration runs without a transaction: 1 of 3 statement(s) had "
                                        "run and stay done (the one it was running, line 3, may have finished "
                                        "too), and its history row says 'running'\n"), result.stderr
        assert project.rows("SELECT version, status, statements_done FROM schema_migrations ORDER BY 1") == [
            ("1", "applied", 0), ("2", "running", 1)]
    else:
        assert result.stderr.startswith(head + "the down section runs without a transaction: 1 of 2 statement(s) "
                                        "had run and stay done (the one it was running, line 8, may have "
                                        "finished too), and the migration is still recorded as applied\n"), \
            result.stderr
        assert project.rows("SELECT version, status FROM schema_migrations ORDER BY 1") == [
            ("1", "applied"), ("2", "applied")]
        assert project.rows("SELECT to_regclass('b_x'), to_regclass('b') IS NOT NULL") == [(None, True)]


# -- a migration without a transaction that opens one itself ---------------------------------------

def _begin_project(tmp_path: Path, url: str, body: str) -> Project:
    project = Project.with_migrations(tmp_path, url, url_variable="APP_DATABASE_URL")
    project.single("1", "begins", "CREATE TABLE c (id int);\nBEGIN;\nINSERT INTO c VALUES (1);\n" + body,
                   transactional=False)
    return project


@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_a_begin_without_commit_in_a_migration_without_a_transaction_is_a_failure_not_applied(
        tmp_path: Path, db_url: str) -> None:
    """``BEGIN`` with no ``COMMIT`` in a ``transaction:false`` migration, the last one: the run used to
    report it applied and exit 0 while closing the connection rolled its INSERT back, leaving a
    'running' row. Now: exit 1 at the BEGIN's line, the row 'failed' after the one committed statement."""
    project = _begin_project(tmp_path, db_url, "SELECT 1")
    result = project.migrate("up")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "applied 1_begins" not in result.stdout
    assert result.stderr.startswith("error: ") and (
        "1_begins.sql:3:1: migration 1_begins runs without a transaction but its statement 'BEGIN' opened one, "
        "and no COMMIT ended it; it was rolled back with what ran in it\n") in result.stderr, result.stderr
    assert "hint: 1 of 4 statement(s) had run and stay done" in result.stderr
    assert project.rows("SELECT count(*) FROM c") == [(0,)]
    assert project.rows("SELECT status, statements_done FROM schema_migrations") == [("failed", 1)]
    again = project.migrate("up")
    assert again.returncode == 3 and "1_begins" in again.stderr, again.stderr


@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_a_failure_inside_the_transaction_a_migration_opened_counts_only_what_committed(
        tmp_path: Path, db_url: str) -> None:
    """``BEGIN; INSERT; <failure>; COMMIT`` in a ``transaction:false`` migration: the message used to say
    3 of 5 statements 'had run and stay done' and the row stayed 'running' (the failure could not be
    written inside the aborted transaction). Now: 1 of 5, the rollback said, the row 'failed'."""
    project = _begin_project(tmp_path, db_url, "INSERT INTO missing_table VALUES (1);\nCOMMIT")
    result = project.migrate("up")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ") and "1_begins.sql:5:" in result.stderr.splitlines()[0], \
        result.stderr
    assert ("1 of 5 statement(s) had run and stay done (the transaction its statement on line 3 opened was "
            "rolled back, and what ran in it)") in result.stderr, result.stderr
    assert project.rows("SELECT count(*) FROM c") == [(0,)]
    assert project.rows("SELECT status, statements_done FROM schema_migrations") == [("failed", 1)]


@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_a_transaction_a_migration_opens_and_commits_is_applied_with_its_progress(
        tmp_path: Path, db_url: str) -> None:
    project = _begin_project(tmp_path, db_url, "INSERT INTO c VALUES (2);\nCOMMIT;\nINSERT INTO c VALUES (3)")
    project.single("2", "after", "INSERT INTO c VALUES (4)")
    result = project.migrate("up")
    assert result.returncode == 0, result.stderr
    assert project.rows("SELECT id FROM c ORDER BY 1") == [(1,), (2,), (3,), (4,)]
    assert project.rows("SELECT version, status, statements_done FROM schema_migrations ORDER BY 1") == [
        ("1", "applied", 6), ("2", "applied", 0)]


# -- COPY … FROM STDIN: psql's data lines in a migration -------------------------------------------

@pytest.mark.parametrize("transactional", [True, False])
def test_copy_from_stdin_is_refused_before_anything_runs(tmp_path: Path, pg_url: str, transactional: bool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration holding ``COPY … FROM stdin`` and its data lines (pg_dump's output): refused before
    anything runs, located at the COPY, with the cache on and off. Before: psycopg's 'COPY cannot be
    used with this method; use copy() instead', after a psycopg 'error ignored in rollback … another
    command is already in progress' line, exit 1 (and without a transaction, the CREATE TABLE before it
    stayed done)."""
    from seedkit.migrate import split_cache

    project = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    project.single("1", "a", "CREATE TABLE a (x int)")
    project.single("2", "dump", "CREATE TABLE c (id int, s text);\nCOPY c (id, s) FROM stdin;\n1\ta;b\n2\tc\n\\.\n"
                   "SELECT 1", transactional=transactional)
    said = []
    for cache in ("0", "1", "1"):
        monkeypatch.setenv(split_cache.ENV, cache)
        result = project.migrate("up")
        said.append((result.returncode, result.stdout, result.stderr))
        assert result.returncode == 2, result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith("error: ") and first.endswith(
            "2_dump.sql:3:1: COPY … FROM STDIN exchanges rows with the client, as psql does with the lines after "
            "it, but seedkit sends the SQL alone, so the up section of migration 2_dump cannot run it; nothing "
            "was run"), result.stderr
        assert "error ignored" not in result.stderr and "Traceback" not in result.stderr
        assert project.rows("SELECT to_regclass('a'), to_regclass('c')") == [(None, None)]
    assert said[0] == said[1] == said[2]


def test_which_copies_exchange_rows_with_the_client() -> None:
    from seedkit.db.postgres.statements import copies_with_client
    from seedkit.db.statements import Statement

    def asked(sql: str) -> str | None:
        return copies_with_client(Statement(sql=sql, offset=0, line=1, column=1))

    assert asked("COPY c (id, s) FROM stdin") == "COPY … FROM STDIN"
    assert asked("copy c from STDIN with (format csv, header)") == "COPY … FROM STDIN"
    assert asked("COPY (SELECT * FROM c) TO STDOUT") == "COPY … TO STDOUT"
    assert asked("COPY /* FROM STDIN */ c FROM '/data/c.csv'") is None
    assert asked("COPY (SELECT 'FROM STDIN' FROM c) TO '/tmp/c.csv'") is None
    assert asked("SELECT 'COPY c FROM STDIN'") is None


# -- a failure located while its transaction was open ----------------------------------------------

@pytest.mark.parametrize("repeatable", [False, True])
def test_a_failure_is_located_after_its_transaction_is_rolled_back(
        tmp_path: Path, pg_url: str, pg_server: str, monkeypatch: pytest.MonkeyPatch, repeatable: bool) -> None:
    """Locating a failed statement may take time (on a run whose cuts came from the split cache it loads
    the parser: ~0.1 s). It used to happen inside the failed transaction, so with the database's
    ``idle_in_transaction_session_timeout`` shorter than that the server ended the session: the run with a
    warm cache said 'lost the connection … the migration lock ended with it' (after a psycopg 'error
    ignored in rollback' line) where the run with the cache off said the statement's error. Here the
    locating is made to take 0.5 s with a 100 ms timeout: the error is the statement's, located."""
    from seedkit.migrate.runner import Runner

    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'ALTER DATABASE "{database}" SET idle_in_transaction_session_timeout = \'100ms\'')
    project = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    body = "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1);\nDO $$\nBEGIN\n  RAISE EXCEPTION 'boom';\nEND $$;"
    if repeatable:
        (project.root / "migrations" / "repeatable").mkdir()
        (project.root / "migrations" / "repeatable" / "view.sql").write_text(body + "\n", encoding="utf-8")
    else:
        project.single("1", "a", body)
    locate = Runner._locate

    def slow(self: Runner, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.5)
        return locate(self, *args, **kwargs)

    monkeypatch.setattr(Runner, "_locate", slow)
    result = project.migrate("up")
    assert result.returncode == 1, result.stderr
    first = result.stderr.splitlines()[0]
    line = 5 if repeatable else 6  # (a single file starts with its '-- migrate:up' line)
    assert first.startswith("error: ") and f":{line}:3: boom (SQLSTATE P0001)" in first, result.stderr
    assert "lost the connection" not in result.stderr and "error ignored" not in result.stderr, result.stderr
    assert project.rows("SELECT to_regclass('t')") == [(None,)]


# -- a statement stopped from outside: not run again -----------------------------------------------

def _stop_when(url: str, query_like: str, action: str, timeout: float = 30) -> None:
    """In a thread: as soon as a migrating session runs a query like ``query_like``, ``action`` it
    (``pg_cancel_backend``)."""
    import threading

    def watch() -> None:
        deadline = time.monotonic() + timeout
        with psycopg.connect(url, autocommit=True) as c:
            while time.monotonic() < deadline:
                row = c.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = "
                                "'active' AND application_name LIKE 'seedkit migrate%%' AND wait_event = 'PgSleep' "
                                "AND query LIKE %s", [query_like]).fetchone()
                if row:
                    c.execute(f"SELECT {action}(%s)", [row[0]])
                    return
                time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread  # type: ignore[return-value]


@pytest.mark.parametrize("one_query", [True, False])
def test_a_cancelled_migration_is_not_run_again(tmp_path: Path, pg_url: str, one_query: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``pg_cancel_backend`` on a migration in its slow statement: exit 1, 'canceling statement due to
    user request' located at that statement, nothing applied, applied as one query or statement by
    statement alike. (Before: the one query's failure ran the migration again statement by statement,
    which slept again and was applied, exit 0: the operator's cancel was ignored.)"""
    from seedkit.migrate.runner import Runner

    if not one_query:
        monkeypatch.setattr(Runner, "_one_query_possible", lambda self, planned: False)
    project = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    project.single("1", "slow", "CREATE TABLE t (x int);\nSELECT pg_sleep(3);\nINSERT INTO t VALUES (1)")
    watcher = _stop_when(pg_url, "%pg_sleep(3)%", "pg_cancel_backend")
    started = time.monotonic()
    result = project.migrate("up")
    watcher.join(5)  # type: ignore[attr-defined]
    assert result.returncode == 1, (result.stdout, result.stderr)
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and first.endswith(
        "1_slow.sql:3:1: canceling statement due to user request (SQLSTATE 57014); migration 1_slow rolled back"), \
        result.stderr
    assert time.monotonic() - started < 3, "the cancelled statement ran again"
    assert project.rows("SELECT to_regclass('t')") == [(None,)]


@pytest.mark.parametrize("one_query", [True, False])
def test_a_lock_timeout_in_a_migration_is_not_tried_again(tmp_path: Path, pg_url: str, one_query: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration with ``SET lock_timeout = '1s'`` whose ALTER waits for a table another session holds
    for 2 s: exit 1 at the ALTER (55P03), nothing applied, as one query or statement by statement.
    (Before: the one query failed after 1 s, and the migration ran again statement by statement, got the
    lock when the other session let it go, and was applied, exit 0: the plain path fails.)"""
    import threading

    from seedkit.migrate.runner import Runner

    if not one_query:
        monkeypatch.setattr(Runner, "_one_query_possible", lambda self, planned: False)
    project = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    project.single("1", "held", "CREATE TABLE held (x int)")
    assert project.migrate("up").returncode == 0
    project.single("2", "alter", "SET lock_timeout = '1s';\nALTER TABLE held ADD COLUMN y int")
    holding = threading.Event()

    def hold() -> None:
        with psycopg.connect(pg_url) as c:
            c.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
            holding.set()
            time.sleep(2)
            c.rollback()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(10)
    result = project.migrate("up")
    holder.join(10)
    assert result.returncode == 1, (result.stdout, result.stderr)
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and first.endswith(
        "2_alter.sql:3:1: canceling statement due to lock timeout (SQLSTATE 55P03); migration 2_alter rolled back"), \
        result.stderr
    assert project.rows("SELECT count(*) FROM information_schema.columns WHERE table_name = 'held'") == [(1,)]
    assert project.rows("SELECT version FROM schema_migrations ORDER BY 1") == [("1",)]


def test_a_run_whose_session_ends_while_it_waits_for_the_lock_says_nothing_was_run(
        tmp_path: Path, pg_url: str) -> None:
    """Another session holds the migration lock; the waiting run's session is ended: exit 1, 'lost the
    connection … while waiting for the migration lock …; nothing was run' (before: 'connection lost: …',
    hinting at an open transaction rolled back, which it never had)."""
    from seedkit.db.postgres.migration import LOCK_CLASS, lock_key

    project = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    project.single("1", "a", "CREATE TABLE a (x int)")
    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_CLASS, lock_key("public.schema_migrations")])
        run = project.spawn("migrate", "up", "--lock-timeout", "60")
        try:
            deadline = time.monotonic() + 30
            while True:
                row = holder.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
                                     "application_name LIKE 'seedkit migrate run%%' AND query LIKE "
                                     "'%%pg_try_advisory_lock%%'").fetchone()
                if row:
                    break
                assert time.monotonic() < deadline, "the run never polled for the lock"
                time.sleep(0.05)
            assert holder.execute("SELECT pg_terminate_backend(%s, 5000)", [row[0]]).fetchone()[0]
            out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert run.returncode == 1, (out, err)
    error = err[err.index("error: "):]
    # the server's reason, or libpq's when the socket closed before the reason was read (a loaded machine)
    assert any(error.startswith("error: lost the connection to the database while waiting for the migration lock "
                                f"(connection lost: {reason}); nothing was run\n")
               for reason in ("terminating connection due to administrator command",
                              "consuming input failed: server closed the connection unexpectedly",
                              "server closed the connection unexpectedly")), err
    assert "rolled back" not in err and "Traceback" not in err
    assert project.rows("SELECT to_regclass('a')") == [(None,)]


# -- the connection lost as the migration commits --------------------------------------------------

class _DropAtCommit:
    """A TCP proxy to the server that, the first time the server answers a ``COMMIT`` (its
    CommandComplete), closes the client's connection instead of passing the answer on: the migration
    committed, and the run lost its connection before it could know."""

    def __init__(self, host: str, port: int):
        import socket
        import threading

        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dropped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source, sink, from_server: bool) -> None:  # type: ignore[no-untyped-def]
        buffer = b""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not from_server or self.dropped.is_set():
                    sink.sendall(data)
                    continue
                buffer += data  # framed messages: type, length (sslmode and gssencmode are off)
                out = b""
                while len(buffer) >= 5:
                    length = int.from_bytes(buffer[1:5], "big")
                    if len(buffer) < 1 + length:
                        break
                    message, buffer = buffer[: 1 + length], buffer[1 + length:]
                    if message[:1] == b"C" and message[5:].rstrip(b"\0") == b"COMMIT" and not self.dropped.is_set():
                        self.dropped.set()
                        sink.sendall(out)
                        raise ConnectionAbortedError
                    out += message
                sink.sendall(out)
        except OSError:
            pass
        finally:
            for s in (source, sink):  # (shutdown wakes the other direction's thread, blocked in recv)
                with contextlib.suppress(OSError):
                    s.shutdown(2)
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("one_query", [True, False])
def test_a_connection_lost_as_the_migration_commits_says_it_is_recorded(
        tmp_path: Path, pg_url: str, one_query: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server commits a migration and the connection is lost before the run hears it: exit 1, and
    the message says the migration is recorded as applied, asked on a new connection (before: 'the
    migration's open transaction was rolled back', which it was not). The next run applies nothing."""
    from seedkit.migrate.runner import Runner

    if not one_query:
        monkeypatch.setattr(Runner, "_one_query_possible", lambda self, planned: False)
    info = conninfo_to_dict(pg_url)
    proxy = _DropAtCommit(info.get("host") or "127.0.0.1", int(info.get("port") or 5432))
    through = f"postgresql://{info.get('user') or 'postgres'}@127.0.0.1:{proxy.port}/{info['dbname']}" \
              "?sslmode=disable&gssencmode=disable"
    project = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    project.single("1", "a", "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1)")
    try:
        result = project.migrate("up", "--database", through)
    finally:
        proxy.close()
    assert proxy.dropped.is_set()
    assert result.returncode == 1, (result.stdout, result.stderr)
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: lost the connection to the database while applying 1_a") and first.endswith(
        "; the migration lock ended with it, and the migration is recorded as applied: its transaction "
        "committed before the connection was lost (or another run applied it since)"), result.stderr
    assert "rolled back" not in result.stderr and "Traceback" not in result.stderr
    assert project.rows("SELECT x FROM a") == [(1,)]
    assert project.rows("SELECT version, status FROM schema_migrations") == [("1", "applied")]
    again = project.migrate("up")
    assert again.returncode == 0 and "nothing to apply" in again.stdout, again.stderr
