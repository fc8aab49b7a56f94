"""No migration is ever applied twice, whatever happens to the connections of the runs.

The migration lock lives on the connection that applies the migrations, is checked before each
migration, and the history insert fails on a duplicate. Attacked here with real processes: the lock
holder's backend is terminated mid-migration, the server ends idle sessions (``idle_session_timeout``),
and four runners start at once.
"""

from __future__ import annotations

import subprocess
import time

import psycopg
import pytest
from psycopg import sql

from seedkit import migrate
from seedkit.db import connect
from seedkit.db.postgres.migration import LOCK_CLASS, lock_key
from seedkit.errors import AlreadyRecorded
from seedkit.migrate.history import History
from tests.support import Project

pytestmark = pytest.mark.postgres

SLOW = 2  # seconds the data-changing migration sleeps while holding the lock


@pytest.fixture
def pg_project(tmp_path, pg_url: str) -> Project:
    project = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    project.single("1", "counter", "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL);\n"
                                   "INSERT INTO counter VALUES (1, 0);")
    project.single("2", "bump", f"UPDATE counter SET n = n + 1;\nSELECT pg_sleep({SLOW});")
    project.single("3", "bump_more", "UPDATE counter SET n = n + 100;")
    return project


def _sleeping_holder(url: str, timeout: float = 60) -> int:
    """The pid of the run that is inside the slow migration; it must hold the lock itself.

    (The migration's statements may run one by one or as one query: the query holds the sleep.)"""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as c:
        while time.monotonic() < deadline:
            row = c.execute(
                "SELECT a.pid, EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory'"
                " AND l.granted AND l.classid = %s::oid AND l.objid = %s::oid) FROM pg_stat_activity a "
                "WHERE a.datname = current_database() AND a.state = 'active' AND a.query LIKE '%%SELECT pg_sleep%%' "
                "AND a.application_name LIKE 'seedkit migrate run%%'",
                [LOCK_CLASS, lock_key("public.schema_migrations")]).fetchone()
            if row:
                assert row[1], "the connection applying the migration does not hold the migration lock"
                return row[0]
            time.sleep(0.05)
    raise AssertionError("no run reached the slow migration")


def _waiting_runs(url: str, count: int, timeout: float = 60) -> None:
    """Wait until ``count`` other runs are connected (polling for the lock)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as c:
        while time.monotonic() < deadline:
            n = c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND application_name LIKE 'seedkit migrate run%%' "
                          "AND query NOT LIKE '%%SELECT pg_sleep%%'").fetchone()[0]
            if n >= count:
                return
            time.sleep(0.05)
    raise AssertionError(f"{count} waiting runs never showed up")


def _finish(runs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    results = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        results.append((run.returncode, out, err))
    return results


def _assert_applied_once(project: Project) -> None:
    assert project.rows("SELECT n FROM counter") == [(101,)], "a data-changing migration ran twice (or never)"
    assert project.rows("SELECT version, status FROM schema_migrations ORDER BY 1") == [
        ("1", "applied"), ("2", "applied"), ("3", "applied")]
    assert project.rows("SELECT version, count(*) FROM schema_migrations_log WHERE action = 'up' "
                         "GROUP BY 1 ORDER BY 1") == [("1", 1), ("2", 1), ("3", 1)]


@pytest.mark.parametrize("runners", [2, 4])
def test_terminating_the_lock_holder_never_applies_a_migration_twice(pg_project: Project, runners: int) -> None:
    runs = [pg_project.spawn("migrate", "up", "--lock-timeout", "120") for _ in range(runners)]
    killed = 0
    try:
        # End the holder in the middle of the slow migration, again and again, until one run is left.
        for _ in range(runners - 1):
            pid = _sleeping_holder(pg_project.url)
            _waiting_runs(pg_project.url, runners - killed - 1)
            with psycopg.connect(pg_project.url, autocommit=True) as c:
                assert c.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
            killed += 1
    finally:
        results = _finish(runs)
    failed = [r for r in results if r[0] != 0]
    assert len(failed) == runners - 1, results
    for code, _out, err in failed:
        assert code == 1, err
        # (a run that waited for the lock first shows that wait on the lines before)
        error = err[err.index("error: "):]
        assert error.startswith("error: lost the connection to the database while applying 2_bump"), err
        assert "the migration's open transaction was rolled back" in err
        assert "Traceback" not in err
    ok = [r for r in results if r[0] == 0]
    assert len(ok) == 1
    assert "applied 2_bump" in ok[0][1] and "applied 3_bump_more" in ok[0][1]
    _assert_applied_once(pg_project)


@pytest.mark.parametrize("runners", [2, 4])
def test_idle_session_timeout_cannot_free_the_lock_mid_migration(pg_project: Project, runners: int,
                                                                 pg_server: str) -> None:
    database = pg_project.url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server, autocommit=True) as c:  # shorter than the slow migration
        c.execute(sql.SQL("ALTER DATABASE {} SET idle_session_timeout = '500ms'").format(
            sql.Identifier(database)))
    runs = [pg_project.spawn("migrate", "up", "--lock-timeout", "120") for _ in range(runners)]
    results = _finish(runs)
    for code, out, err in results:
        assert code == 0, (out, err)
        assert "Traceback" not in err
    outputs = "".join(out for _, out, _ in results)
    assert outputs.count("applied 2_bump") == 1 and outputs.count("applied 3_bump_more") == 1
    _assert_applied_once(pg_project)


def test_the_history_insert_fails_on_a_duplicate_and_nothing_commits(pg_project: Project) -> None:
    """A row for the migration appearing while it runs (another run recorded it) aborts this run's
    transaction: the data change does not commit twice, and the first row is not overwritten."""
    migrate.up(pg_project_config(pg_project), to="1")
    # The migration records itself half-way, as a second run that finished first would have.
    pg_project.single("2", "bump", "UPDATE counter SET n = n + 1;\n"
                                   "INSERT INTO schema_migrations (version, name, checksum, status) "
                                   "VALUES ('2', 'bump', 'from another run', 'applied');")
    result = pg_project.migrate("up")
    assert result.returncode == 1, result.stderr
    assert "migration 2_bump is already in the history table schema_migrations" in result.stderr
    assert "this run's changes were not committed" in result.stderr
    assert pg_project.rows("SELECT n FROM counter") == [(0,)]
    assert pg_project.rows("SELECT version FROM schema_migrations ORDER BY 1") == [("1",)]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_history_insert_never_overwrites(dialect: str, pg_url: str, tmp_path) -> None:
    url = pg_url if dialect == "postgresql" else f"sqlite:///{tmp_path / 'h.db'}"
    project = Project.with_migrations(tmp_path / "p", url, url_variable="APP_DATABASE_URL")
    project.single("7", "x", "SELECT 1;")
    m = migrate.discover(project.migrations_dir)[0]
    with connect(url) as db:
        history = History(db, "schema_migrations")
        history.ensure()
        history.insert(m, status="applied", execution_ms=5)
        with pytest.raises(AlreadyRecorded, match="already in the history"):
            history.insert(m, status="applied", execution_ms=99)
        assert db.fetchall("SELECT version, execution_ms FROM schema_migrations") == [("7", 5)]


def pg_project_config(project: Project):
    from seedkit import load_config

    return load_config(project.config_path)


def test_a_migration_that_releases_the_lock_does_not_commit(tmp_path, pg_url: str) -> None:
    """Only the run's own session can release its lock: a statement of the migration (here
    pg_advisory_unlock_all()) is caught before the migration commits, and before the next one runs."""
    project = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    project.single("1", "unlocks", "CREATE TABLE a (x int);\nSELECT pg_advisory_unlock_all();")
    project.single("2", "b", "CREATE TABLE b (x int);")
    result = project.migrate("up")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: this run no longer holds the migration lock (a statement released "
                                    "it, e.g. pg_advisory_unlock_all() or DISCARD ALL); stopped at 1_unlocks, "
                                    "whose transaction was rolled back"), result.stderr
    assert project.rows("SELECT to_regclass('a'), to_regclass('b')") == [(None, None)]
    assert project.rows("SELECT count(*) FROM schema_migrations") == [(0,)]
