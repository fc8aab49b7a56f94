"""``seedkit migrate …`` end to end: CliRunner for exit codes and messages, real subprocesses for
concurrency and locking."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from seedkit.cli import app
from tests.support import Project

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Project:
    return Project.with_migrations(tmp_path, db_url, url_variable="APP_DATABASE_URL")


@pytest.fixture
def pg_project(tmp_path: Path, pg_url: str) -> Project:
    return Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def test_new_up_status_down(project: Project) -> None:
    created = project.migrate("new", "create users")
    assert created.returncode == 0 and created.stdout.startswith("created ")
    [path] = list(project.migrations_dir.glob("*_create_users.sql"))
    assert len(path.name.split("_", 1)[0]) == 14
    text = path.read_text()
    assert "-- migrate:up" in text and "-- migrate:down" in text
    path.write_text("-- migrate:up\nCREATE TABLE users (id integer PRIMARY KEY);\n\n"
                    "-- migrate:down\nDROP TABLE users;\n", encoding="utf-8")
    project.single("99990101000000", "posts", "CREATE TABLE posts (id integer);", "DROP TABLE posts;")

    dry = project.migrate("up", "--dry-run")
    assert dry.returncode == 0 and "would apply" in dry.stdout
    assert project.rows("SELECT count(*) FROM information_schema.tables WHERE table_name = 'users'"
                         if project.url.startswith("postgresql") else
                         "SELECT count(*) FROM sqlite_master WHERE name = 'users'") == [(0,)]

    status = project.migrate("status", "--exit-code")
    assert status.returncode == 3 and "pending" in status.stdout

    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert "applied" in up.stdout and "create_users" in up.stdout and "version 99990101000000" in up.stdout

    status = project.migrate("status", "--exit-code")
    assert status.returncode == 0 and "2 applied" in status.stdout
    as_json = json.loads(project.migrate("status", "--json").stdout)
    assert as_json["ok"] and as_json["current_version"] == "99990101000000"
    assert [m["state"] for m in as_json["migrations"]] == ["applied", "applied"]
    assert all(m["applied_at"] for m in as_json["migrations"])

    verify = project.migrate("verify")
    assert verify.returncode == 0 and verify.stdout.startswith("ok: 2 migrations")

    down = project.migrate("down")
    assert down.returncode == 0 and "rolled back 99990101000000_posts" in down.stdout
    assert project.migrate("up", "--to", "99990101000000").returncode == 0
    assert "nothing to apply" in project.migrate("up").stdout


def test_edited_deleted_and_out_of_order_migrations_exit_3(project: Project) -> None:
    first = project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")
    project.single("3", "c", "CREATE TABLE c (x integer);", "DROP TABLE c;")
    assert project.migrate("up").returncode == 0

    first.write_text(first.read_text().replace("integer", "bigint"), encoding="utf-8")
    for args in (["up"], ["status", "--exit-code"], ["verify"], ["down"]):
        result = project.migrate(*args)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert "1_a.sql" in result.stdout + result.stderr
    assert_clean_error(project.migrate("up"), 3, "1_a.sql", "changed after it was applied", "new migration")
    changed = json.loads(project.migrate("verify", "--json").stdout)
    assert changed["problems"][0]["kind"] == "changed" and changed["problems"][0]["file"].endswith("1_a.sql")
    assert project.migrate("verify", "--json").returncode == 3

    first.unlink()
    assert_clean_error(project.migrate("up"), 3, "migration 1_a was applied but its file is gone")
    assert project.migrate("status", "--exit-code").returncode == 3
    assert "missing" in project.migrate("status").stdout
    assert project.migrate("verify").returncode == 3
    project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")  # restored
    assert project.migrate("verify").returncode == 0

    late = project.single("2", "b", "CREATE TABLE b (x integer);", "DROP TABLE b;")
    assert_clean_error(project.migrate("up"), 3, late.name, "--allow-out-of-order")
    assert project.migrate("status", "--exit-code").returncode == 3
    assert project.migrate("verify").returncode == 3
    assert project.migrate("verify", "--allow-out-of-order").returncode == 0
    applied = project.migrate("up", "--allow-out-of-order")
    assert applied.returncode == 0 and "applied 2_b" in applied.stdout
    assert project.migrate("status", "--exit-code").returncode == 0
    assert project.migrate("verify").returncode == 0


def test_failing_statement_exit_1_with_location(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);\n\nINSERT INTO nope VALUES (1);")
    result = project.migrate("up")
    assert_clean_error(result, 1, "1_a.sql:4:13: ", "nope", "SQLSTATE", "rolled back")
    assert "hint:" in result.stderr


def test_failed_non_transactional_migration_and_resolve(project: Project) -> None:
    project.single("1", "half", "CREATE TABLE x (a integer);\nINSERT INTO nope VALUES (1);",
                   transactional=False)
    assert_clean_error(project.migrate("up"), 1, "1_half.sql:3:13", "resolve 1")
    assert_clean_error(project.migrate("up"), 3, "failed after 1 statement", "seedkit migrate resolve")
    assert "failed" in project.migrate("status").stdout
    assert_clean_error(project.migrate("resolve", "1"), 2, "exactly one of --applied or --rolled-back")
    assert_clean_error(project.migrate("resolve", "7", "--applied"), 2, "not in the history")
    done = project.migrate("resolve", "1", "--applied")
    assert done.returncode == 0 and "recorded 1_half as applied" in done.stdout
    assert project.migrate("status", "--exit-code").returncode == 0
    assert project.rows("SELECT action FROM schema_migrations_log ORDER BY id") == [
        ("failed",), ("resolved applied",)]


def test_down_refused_on_protected_environment(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")
    assert project.migrate("up", "--env", "production").returncode == 0
    assert_clean_error(project.migrate("down", "--env", "production"), 4, "protected environment 'production'")
    assert "1 applied" in project.migrate("status", "--env", "production").stdout


def test_transactional_concurrently_refused_names_the_flag(pg_project: Project) -> None:
    pg_project.single("1", "idx", "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY t_a ON t (a);")
    result = pg_project.migrate("up")
    assert_clean_error(result, 2, "1_idx.sql:3:1", "CREATE INDEX CONCURRENTLY",
                       "-- migrate:up transaction:false")
    assert pg_project.rows("SELECT to_regclass('t')") == [(None,)]


def test_password_never_printed(pg_project: Project) -> None:
    # the test server trusts local connections, so any password is accepted and must stay hidden
    url = pg_project.url.replace("postgresql://postgres@", "postgresql://postgres:sup3rs3cret@")
    assert "sup3rs3cret" in url
    (pg_project.root / ".env").write_text(f"APP_DATABASE_URL={url}\n", encoding="utf-8")
    pg_project.single("1", "a", "CREATE TABLE a (x integer);\nSELECT * FROM nope;")
    outputs = [pg_project.migrate(*args) for args in (["up"], ["status"], ["status", "--json"], ["verify"])]
    text = "".join(r.stdout + r.stderr for r in outputs)
    assert "***" in text and "sup3rs3cret" not in text


def test_cli_help_comes_from_the_api_docstrings() -> None:
    from seedkit import migrate

    result = CliRunner().invoke(app, ["migrate", "up", "--help"])
    assert result.exit_code == 0
    first_words = " ".join((migrate.up.__doc__ or "").split()[:6])
    assert first_words in " ".join(result.stdout.split())


# -- real processes --------------------------------------------------------------------------------

def test_subprocess_up_on_sqlite(tmp_path: Path, sqlite_url: str) -> None:
    project = Project.with_migrations(tmp_path, sqlite_url, url_variable="APP_DATABASE_URL")
    project.single("1", "a", "CREATE TABLE a (x integer);")
    done = subprocess.run(project.command("migrate", "up"), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "applied 1_a" in done.stdout
    bad = subprocess.run(project.command("migrate", "up", "--to", "x"), cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "bad version" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.postgres
def test_two_concurrent_runs_with_create_index_concurrently(pg_project: Project) -> None:
    pg_project.single("001", "t", "CREATE TABLE t (a int, b text);\n"
                                  "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g;")
    pg_project.single("002", "idx", "CREATE INDEX CONCURRENTLY t_b ON t (b);", "DROP INDEX CONCURRENTLY t_b;",
                      transactional=False)
    pg_project.single("003", "more", "ALTER TABLE t ADD COLUMN c int;\nSELECT pg_sleep(0.3);")
    pg_project.single("004", "idx2", "CREATE INDEX CONCURRENTLY t_c ON t (c);", transactional=False)
    runs = [pg_project.spawn("migrate", "up", "--lock-timeout", "60") for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in runs]
    for code, out, err in results:
        assert code == 0, (out, err)
        assert "Traceback" not in err
    assert pg_project.rows("SELECT version, status FROM schema_migrations ORDER BY 1") == [
        ("001", "applied"), ("002", "applied"), ("003", "applied"), ("004", "applied")]
    # each migration ran exactly once: one "up" entry each, and one runner reported them
    assert pg_project.rows("SELECT version, count(*) FROM schema_migrations_log WHERE action = 'up' "
                            "GROUP BY 1 ORDER BY 1") == [("001", 1), ("002", 1), ("003", 1), ("004", 1)]
    applied_lines = sum(out.count("applied ") for _, out, _ in results)
    assert applied_lines == 4
    assert pg_project.rows("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c "
                            "ON c.oid = i.indexrelid WHERE c.relname IN ('t_b', 't_c') ORDER BY 1") == [
        ("t_b", True), ("t_c", True)]


@pytest.mark.postgres
def test_third_runner_times_out_and_names_the_holder(pg_project: Project) -> None:
    pg_project.single("1", "slow", "SELECT pg_sleep(6);")
    slow = pg_project.spawn("migrate", "up")
    try:
        deadline = time.monotonic() + 30
        holder_pid = None
        with psycopg.connect(pg_project.url, autocommit=True) as watch:
            while holder_pid is None and time.monotonic() < deadline:
                row = watch.execute("SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                                    "WHERE l.locktype = 'advisory' AND l.granted "
                                    "AND a.application_name LIKE 'seedkit migrate run%'").fetchone()
                holder_pid = row[0] if row else None
                time.sleep(0.05)
        assert holder_pid is not None, "the first runner never took the lock"
        started = time.monotonic()
        third = subprocess.run(pg_project.command("migrate", "up", "--lock-timeout", "1"), cwd=pg_project.root,
                               capture_output=True, text=True, timeout=60)
        waited = time.monotonic() - started
        assert third.returncode == 4, third.stderr
        # first the live wait (who holds the lock), then the error once the timeout is reached
        assert third.stderr.startswith(f"waiting for the migration lock (held by pid {holder_pid}")
        assert "\nerror: another migration run holds the lock" in third.stderr
        assert f"held by pid {holder_pid}" in third.stderr
        assert "application 'seedkit migrate run" in third.stderr and "since " in third.stderr
        assert "Traceback" not in third.stderr
        assert waited >= 1
    finally:
        code = slow.wait(timeout=60)
        out, err = slow.communicate()
    assert code == 0, err
    assert "applied 1_slow" in out


def test_docs_show_real_commands_and_options() -> None:
    """docs/migrations.md stays in step with the CLI: each command and option it shows exists."""
    import re

    text = (REPO / "docs" / "migrations.md").read_text(encoding="utf-8")
    shown = re.findall(r"seedkit migrate (\w+)((?: [^\n`]*)?)", text)
    assert {c for c, _ in shown} >= {"new", "up", "down", "status", "verify", "resolve"}
    for command, rest in shown:
        help_text = CliRunner().invoke(app, ["migrate", command, "--help"])
        assert help_text.exit_code == 0, command
        for option in re.findall(r"--[a-z-]+", rest):
            assert option in help_text.stdout, (command, option)
