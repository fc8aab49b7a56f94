"""``seedkit migrate …`` end to end: CliRunner for exit codes and messages, real subprocesses for
concurrency and locking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from seedkit.cli import app
from seedkit.db import connect

REPO = Path(__file__).resolve().parent.parent


class Project:
    def __init__(self, root: Path, url: str):
        self.root, self.url = root, url
        self.dir = root / "migrations"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = root / "seedkit.toml"
        self.config.write_text(
            '[database]\nurl = "${APP_DATABASE_URL}"\n\n[migrations]\ndir = "migrations"\n\n'
            '[envs.production]\nprotected = true\ndatabase_url = "${APP_DATABASE_URL}"\n', encoding="utf-8")
        (root / ".env").write_text(f"APP_DATABASE_URL={url}\n", encoding="utf-8")

    def single(self, version: str, name: str, up: str, down: str | None = None, *,
               transactional: bool = True) -> Path:
        flag = "" if transactional else " transaction:false"
        text = f"-- migrate:up{flag}\n{up}\n" + (f"\n-- migrate:down\n{down}\n" if down is not None else "")
        path = self.dir / f"{version}_{name}.sql"
        path.write_text(text, encoding="utf-8")
        return path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``seedkit --config … migrate ARGS`` in-process; returns exit code, stdout and stderr."""
        result = CliRunner().invoke(app, ["--config", str(self.config), "migrate", *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "seedkit", "--config", str(self.config), "migrate", *args]

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), cwd=self.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})

    def query(self, sql: str) -> list[tuple]:
        with connect(self.url) as db:
            return db.fetchall(sql)


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Project:
    return Project(tmp_path, db_url)


@pytest.fixture
def pg_project(tmp_path: Path, pg_url: str) -> Project:
    return Project(tmp_path, pg_url)


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def test_new_up_status_down(project: Project) -> None:
    created = project.cli("new", "create users")
    assert created.returncode == 0 and created.stdout.startswith("created ")
    [path] = list(project.dir.glob("*_create_users.sql"))
    assert len(path.name.split("_", 1)[0]) == 14
    text = path.read_text()
    assert "-- migrate:up" in text and "-- migrate:down" in text
    path.write_text("-- migrate:up\nCREATE TABLE users (id integer PRIMARY KEY);\n\n"
                    "-- migrate:down\nDROP TABLE users;\n", encoding="utf-8")
    project.single("99990101000000", "posts", "CREATE TABLE posts (id integer);", "DROP TABLE posts;")

    dry = project.cli("up", "--dry-run")
    assert dry.returncode == 0 and "would apply" in dry.stdout
    assert project.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'users'"
                         if project.url.startswith("postgresql") else
                         "SELECT count(*) FROM sqlite_master WHERE name = 'users'") == [(0,)]

    status = project.cli("status", "--exit-code")
    assert status.returncode == 3 and "pending" in status.stdout

    up = project.cli("up")
    assert up.returncode == 0, up.stderr
    assert "applied" in up.stdout and "create_users" in up.stdout and "version 99990101000000" in up.stdout

    status = project.cli("status", "--exit-code")
    assert status.returncode == 0 and "2 applied" in status.stdout
    as_json = json.loads(project.cli("status", "--json").stdout)
    assert as_json["ok"] and as_json["current_version"] == "99990101000000"
    assert [m["state"] for m in as_json["migrations"]] == ["applied", "applied"]
    assert all(m["applied_at"] for m in as_json["migrations"])

    verify = project.cli("verify")
    assert verify.returncode == 0 and verify.stdout.startswith("ok: 2 migrations")

    down = project.cli("down")
    assert down.returncode == 0 and "rolled back 99990101000000_posts" in down.stdout
    assert project.cli("up", "--to", "99990101000000").returncode == 0
    assert "nothing to apply" in project.cli("up").stdout


def test_edited_deleted_and_out_of_order_migrations_exit_3(project: Project) -> None:
    first = project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")
    project.single("3", "c", "CREATE TABLE c (x integer);", "DROP TABLE c;")
    assert project.cli("up").returncode == 0

    first.write_text(first.read_text().replace("integer", "bigint"), encoding="utf-8")
    for args in (["up"], ["status", "--exit-code"], ["verify"], ["down"]):
        result = project.cli(*args)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert "1_a.sql" in result.stdout + result.stderr
    assert_clean_error(project.cli("up"), 3, "1_a.sql", "changed after it was applied", "new migration")
    changed = json.loads(project.cli("verify", "--json").stdout)
    assert changed["problems"][0]["kind"] == "changed" and changed["problems"][0]["file"].endswith("1_a.sql")
    assert project.cli("verify", "--json").returncode == 3

    first.unlink()
    assert_clean_error(project.cli("up"), 3, "migration 1_a was applied but its file is gone")
    assert project.cli("status", "--exit-code").returncode == 3
    assert "missing" in project.cli("status").stdout
    assert project.cli("verify").returncode == 3
    project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")  # restored
    assert project.cli("verify").returncode == 0

    late = project.single("2", "b", "CREATE TABLE b (x integer);", "DROP TABLE b;")
    assert_clean_error(project.cli("up"), 3, late.name, "--allow-out-of-order")
    assert project.cli("status", "--exit-code").returncode == 3
    assert project.cli("verify").returncode == 3
    assert project.cli("verify", "--allow-out-of-order").returncode == 0
    applied = project.cli("up", "--allow-out-of-order")
    assert applied.returncode == 0 and "applied 2_b" in applied.stdout
    assert project.cli("status", "--exit-code").returncode == 0
    assert project.cli("verify").returncode == 0


def test_failing_statement_exit_1_with_location(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);\n\nINSERT INTO nope VALUES (1);")
    result = project.cli("up")
    assert_clean_error(result, 1, "1_a.sql:4:13: ", "nope", "SQLSTATE", "rolled back")
    assert "hint:" in result.stderr


def test_failed_non_transactional_migration_and_resolve(project: Project) -> None:
    project.single("1", "half", "CREATE TABLE x (a integer);\nINSERT INTO nope VALUES (1);",
                   transactional=False)
    assert_clean_error(project.cli("up"), 1, "1_half.sql:3:13", "resolve 1")
    assert_clean_error(project.cli("up"), 3, "failed after 1 statement", "seedkit migrate resolve")
    assert "failed" in project.cli("status").stdout
    assert_clean_error(project.cli("resolve", "1"), 2, "exactly one of --applied or --rolled-back")
    assert_clean_error(project.cli("resolve", "7", "--applied"), 2, "not in the history")
    done = project.cli("resolve", "1", "--applied")
    assert done.returncode == 0 and "recorded 1_half as applied" in done.stdout
    assert project.cli("status", "--exit-code").returncode == 0
    assert project.query("SELECT action FROM schema_migrations_log ORDER BY id") == [
        ("failed",), ("resolved applied",)]


def test_down_refused_on_protected_environment(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")
    assert project.cli("up", "--env", "production").returncode == 0
    assert_clean_error(project.cli("down", "--env", "production"), 4, "protected environment 'production'")
    assert "1 applied" in project.cli("status", "--env", "production").stdout


def test_transactional_concurrently_refused_names_the_flag(pg_project: Project) -> None:
    pg_project.single("1", "idx", "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY t_a ON t (a);")
    result = pg_project.cli("up")
    assert_clean_error(result, 2, "1_idx.sql:3:1", "CREATE INDEX CONCURRENTLY",
                       "-- migrate:up transaction:false")
    assert pg_project.query("SELECT to_regclass('t')") == [(None,)]


def test_password_never_printed(pg_project: Project) -> None:
    # the test server trusts local connections, so any password is accepted and must stay hidden
    url = pg_project.url.replace("postgresql://postgres@", "postgresql://postgres:sup3rs3cret@")
    assert "sup3rs3cret" in url
    (pg_project.root / ".env").write_text(f"APP_DATABASE_URL={url}\n", encoding="utf-8")
    pg_project.single("1", "a", "CREATE TABLE a (x integer);\nSELECT * FROM nope;")
    outputs = [pg_project.cli(*args) for args in (["up"], ["status"], ["status", "--json"], ["verify"])]
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
    project = Project(tmp_path, sqlite_url)
    project.single("1", "a", "CREATE TABLE a (x integer);")
    done = subprocess.run(project.command("up"), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "applied 1_a" in done.stdout
    bad = subprocess.run(project.command("up", "--to", "x"), cwd=tmp_path, capture_output=True, text=True,
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
    runs = [pg_project.spawn("up", "--lock-timeout", "60") for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in runs]
    for code, out, err in results:
        assert code == 0, (out, err)
        assert "Traceback" not in err
    assert pg_project.query("SELECT version, status FROM schema_migrations ORDER BY 1") == [
        ("001", "applied"), ("002", "applied"), ("003", "applied"), ("004", "applied")]
    # each migration ran exactly once: one "up" entry each, and one runner reported them
    assert pg_project.query("SELECT version, count(*) FROM schema_migrations_log WHERE action = 'up' "
                            "GROUP BY 1 ORDER BY 1") == [("001", 1), ("002", 1), ("003", 1), ("004", 1)]
    applied_lines = sum(out.count("applied ") for _, out, _ in results)
    assert applied_lines == 4
    assert pg_project.query("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c "
                            "ON c.oid = i.indexrelid WHERE c.relname IN ('t_b', 't_c') ORDER BY 1") == [
        ("t_b", True), ("t_c", True)]


@pytest.mark.postgres
def test_third_runner_times_out_and_names_the_holder(pg_project: Project) -> None:
    pg_project.single("1", "slow", "SELECT pg_sleep(6);")
    slow = pg_project.spawn("up")
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
        third = subprocess.run(pg_project.command("up", "--lock-timeout", "1"), cwd=pg_project.root,
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
