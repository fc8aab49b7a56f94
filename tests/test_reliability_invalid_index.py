"""A failed ``CREATE INDEX CONCURRENTLY`` is recoverable from seedkit's messages alone.

PostgreSQL leaves an invalid index behind when a concurrent build fails or is killed. ``status`` and
``up`` name it and print the exact ``DROP INDEX CONCURRENTLY IF EXISTS …``; ``resolve`` is refused
while it is there. The tests follow the messages literally: they run the statement the message gives.
"""

from __future__ import annotations

import os
import re
import signal
import time

import psycopg
import pytest

from tests.support import Project

pytestmark = pytest.mark.postgres

DROP = re.compile(r"DROP INDEX CONCURRENTLY IF EXISTS [^;]+;")


@pytest.fixture
def pg_project(tmp_path, pg_url: str) -> Project:
    return Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")


def _run_the_fix(project: Project, message: str) -> str:
    """Execute the DROP statement a message gives, exactly as printed."""
    found = DROP.findall(message)
    assert found, message
    with psycopg.connect(project.url, autocommit=True) as c:
        for statement in dict.fromkeys(found):
            c.execute(statement)
    return found[0]


def _invalid(project: Project) -> list[tuple]:
    return project.rows("SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid ORDER BY 2")


def _assert_blocked_until_dropped(project: Project, version: str, index: str, drop: str) -> None:
    """status, up, verify and resolve all name the index and the fix while it is there."""
    status = project.migrate("status")
    assert status.returncode == 0, status.stderr
    assert index in status.stdout and drop in status.stdout, status.stdout
    assert project.migrate("status", "--exit-code").returncode == 3
    up = project.migrate("up")
    assert up.returncode == 3, up.stderr
    assert index in up.stderr and drop in up.stderr, up.stderr
    assert "resolve --applied is refused while the index is invalid" in up.stderr
    verify = project.migrate("verify")
    assert verify.returncode == 3 and drop in verify.stderr, verify.stderr
    for decision in ("--applied", "--rolled-back"):
        refused = project.migrate("resolve", version, decision)
        assert refused.returncode == 4, refused.stderr
        assert refused.stderr.startswith(f"error: refusing to record migration {version} as "), refused.stderr
        assert drop in refused.stderr
    assert project.rows(f"SELECT status FROM schema_migrations WHERE version = '{version}'")[0][0] in (
        "running", "failed")


def test_a_killed_concurrent_build_is_recoverable_from_the_messages(pg_project: Project) -> None:
    pg_project.single("1", "t", "CREATE TABLE t (a int, b text);\n"
                                "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g;")
    pg_project.single("2", "idx", "CREATE INDEX CONCURRENTLY t_b ON t (b);", transactional=False)
    assert pg_project.migrate("up", "--to", "1").returncode == 0
    # A writer keeps its transaction open: the build creates its (invalid) index, then waits for it.
    blocker = psycopg.connect(pg_project.url)
    blocker.execute("INSERT INTO t VALUES (0, 'x')")
    run = pg_project.spawn("migrate", "up")
    try:
        deadline = time.monotonic() + 60
        build = None
        with psycopg.connect(pg_project.url, autocommit=True) as c:
            while build is None and time.monotonic() < deadline:
                row = c.execute("SELECT a.pid FROM pg_stat_activity a WHERE a.datname = current_database() "
                                "AND a.query LIKE 'CREATE INDEX CONCURRENTLY%' AND a.wait_event_type = 'Lock'"
                                ).fetchone()
                build = row[0] if row else None
                time.sleep(0.05)
            assert build is not None, "the build never started"
            # Really kill it: the runner process dies, then the build's backend is ended.
            os.kill(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
            assert c.execute("SELECT pg_terminate_backend(%s)", [build]).fetchone()[0]
    finally:
        blocker.rollback()
        blocker.close()
        if run.poll() is None:
            run.kill()
            run.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pg_project.rows(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'")[0][0]:
        time.sleep(0.05)
    assert _invalid(pg_project) == [("public", "t_b")]
    assert pg_project.rows("SELECT status FROM schema_migrations WHERE version = '2'") == [("running",)]

    status = pg_project.migrate("status")
    drop = DROP.findall(status.stdout)[0]
    assert drop == 'DROP INDEX CONCURRENTLY IF EXISTS "public"."t_b";'
    _assert_blocked_until_dropped(pg_project, "2", "public.t_b", drop)

    _run_the_fix(pg_project, status.stdout)
    assert _invalid(pg_project) == []
    assert pg_project.migrate("resolve", "2", "--rolled-back").returncode == 0
    up = pg_project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert "applied 2_idx" in up.stdout
    assert pg_project.rows("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                            "WHERE c.relname = 't_b'") == [(True,)]


@pytest.mark.parametrize(("schema", "statement", "index"), [
    ("public", "CREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email);", "public.users_email"),
    ("public", "CREATE UNIQUE INDEX CONCURRENTLY ON users (email);", "public.users_email_idx"),
    ('my "app"', 'CREATE UNIQUE INDEX CONCURRENTLY "Email ""uniq""" ON "my ""app""".users (email);',
     'my "app".Email "uniq"'),
], ids=["named", "unnamed", "hostile-names"])
def test_a_unique_violation_during_a_concurrent_unique_build(pg_project: Project, schema: str, statement: str,
                                                             index: str) -> None:
    quoted = '"' + schema.replace('"', '""') + '"'
    pg_project.single("1", "users", f"CREATE SCHEMA IF NOT EXISTS {quoted};\n"
                                    f"CREATE TABLE {quoted}.users (id int PRIMARY KEY, email text);\n"
                                    f"INSERT INTO {quoted}.users VALUES (1, 'a@x'), (2, 'b@x'), (3, 'a@x');")
    pg_project.single("2", "unique_email", statement, transactional=False)
    up = pg_project.migrate("up")
    assert up.returncode == 1, up.stderr
    assert "could not create unique index" in up.stderr and "SQLSTATE 23505" in up.stderr
    assert "2_unique_email.sql:2:1" in up.stderr
    assert index in _names(_invalid(pg_project))
    drop = DROP.findall(up.stderr)[0]
    assert "resolve 2 --rolled-back" in up.stderr
    _assert_blocked_until_dropped(pg_project, "2", index, drop)

    _run_the_fix(pg_project, up.stderr)
    assert _invalid(pg_project) == []
    with psycopg.connect(pg_project.url, autocommit=True) as c:  # the data problem the error reported
        c.execute(f"DELETE FROM {quoted}.users WHERE id = 3")
    resolved = pg_project.migrate("resolve", "2", "--rolled-back")
    assert resolved.returncode == 0, resolved.stderr
    again = pg_project.migrate("up")
    assert again.returncode == 0, again.stderr
    assert pg_project.migrate("status", "--exit-code").returncode == 0


def _names(rows: list[tuple]) -> list[str]:
    return [f"{schema}.{name}" for schema, name in rows]


def test_status_while_the_build_runs_says_it_is_running_not_broken(pg_project: Project) -> None:
    """A half-built index of a run in progress is invalid too; status must not advise dropping it."""
    pg_project.single("1", "t", "CREATE TABLE t (a int);")
    pg_project.single("2", "idx", "CREATE INDEX CONCURRENTLY t_a ON t (a);", transactional=False)
    assert pg_project.migrate("up", "--to", "1").returncode == 0
    blocker = psycopg.connect(pg_project.url)
    blocker.execute("INSERT INTO t VALUES (1)")
    run = pg_project.spawn("migrate", "up")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pg_project.rows(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' "
                "AND wait_event_type = 'Lock'"):
            time.sleep(0.05)
        status = pg_project.migrate("status")
        assert "running" in status.stdout and "being applied right now" in status.stdout, status.stdout
        assert "DROP INDEX" not in status.stdout
    finally:
        blocker.rollback()
        blocker.close()
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert pg_project.migrate("status", "--exit-code").returncode == 0
