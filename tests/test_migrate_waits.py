"""Waits are visible: who holds the lock and for how long, statements that run longer than 2 s (live on a
terminal, plain lines when piped), and ``up --json`` / ``down --json`` with each statement's timing."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time

import psycopg
import pytest

from seedkit.db.postgres.migration import LOCK_CLASS, lock_key
from tests.support import Project


@pytest.fixture
def pg_project(tmp_path, pg_url: str) -> Project:
    return Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")


@pytest.fixture
def project(tmp_path, db_url: str) -> Project:
    return Project.with_migrations(tmp_path, db_url, url_variable="APP_DATABASE_URL")


@pytest.mark.postgres
def test_piped_run_names_the_lock_holder_and_the_slow_statement_in_plain_lines(pg_project: Project) -> None:
    pg_project.single("1", "slow", "CREATE TABLE t (a int);\nSELECT pg_sleep(2.5);\nINSERT INTO t VALUES (1);",
                      "DROP TABLE t;")
    with psycopg.connect(pg_project.url, autocommit=True, application_name="nightly-deploy") as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_CLASS, lock_key("public.schema_migrations")])
        holder_pid = holder.info.backend_pid
        run = pg_project.spawn("migrate", "up", "--json")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not holder.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'seedkit migrate run%%'").fetchone():
            time.sleep(0.05)
        time.sleep(1.5)  # the run is polling for the lock now
        holder.execute("SELECT pg_advisory_unlock_all()")
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    lines = err.splitlines()
    waiting = [line for line in lines if line.startswith("waiting for the migration lock")]
    assert waiting, err
    # plain lines: the first sight of the wait, and its end (no redraws, no control characters)
    assert len(waiting) == 1 and "\r" not in err and "\x1b" not in err
    assert re.match(rf"waiting for the migration lock \(held by pid {holder_pid}, application 'nightly-deploy', "
                    r"user \w+, .*since \d{4}-\d\d-\d\dT[\d:]+\+00:00 \(\d+ s ago\)\): \d\.\d s$", waiting[0]), waiting
    assert re.search(r"^got the migration lock after waiting [12]\.\d s$", err, re.M), err
    running = [line for line in lines if line.startswith("statement running for")]
    assert len(running) == 1, err
    assert re.match(r"statement running for 2\.\d s: \S*1_slow\.sql:3: SELECT pg_sleep\(2\.5\)$", running[0])
    assert re.search(r"^statement finished after 2\.\d s: \S*1_slow\.sql:3: SELECT pg_sleep\(2\.5\)$", err, re.M)
    assert not any("INSERT" in line for line in lines), "a fast statement is not reported"

    report = json.loads(out)
    assert report["direction"] == "up" and report["version_after"] == "1"
    [migration] = report["migrations"]
    assert migration["version"] == "1" and migration["statements"] == 3
    steps = migration["statements_run"]
    assert [(s["line"], s["first_line"]) for s in steps] == [
        (2, "CREATE TABLE t (a int)"), (3, "SELECT pg_sleep(2.5)"), (4, "INSERT INTO t VALUES (1)")]
    assert steps[1]["execution_ms"] >= 2400
    assert migration["execution_ms"] >= sum(s["execution_ms"] for s in steps) - 1


@pytest.mark.postgres
def test_on_a_terminal_the_wait_is_one_live_line(pg_project: Project) -> None:
    pg_project.single("1", "slow", "SELECT pg_sleep(3.6);")
    master, slave = pty.openpty()
    try:
        run = subprocess.Popen(pg_project.command("migrate", "up"), cwd=pg_project.root, stdout=subprocess.PIPE,
                               stderr=slave, text=True, env={**os.environ, "COLUMNS": "200"})
        os.close(slave)
        chunks = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                chunks += data
            elif run.poll() is not None:
                break
        out = run.communicate(timeout=30)[0]
    finally:
        os.close(master)
    assert run.returncode == 0
    screen = chunks.decode()
    updates = re.findall(r"\r\x1b\[K(statement running for [\d.]+ s)", screen)
    assert len(updates) >= 2, screen  # redrawn about once a second: 2 s, 3 s
    assert updates[0].startswith("statement running for 2.")
    assert re.search(r"\r\x1b\[Kstatement finished after 3\.\d s: \S*1_slow\.sql:2: SELECT pg_sleep\(3\.6\)", screen)
    assert "applied 1_slow" in out


def test_down_json_reports_each_migration_with_its_statements(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x int);", "DROP TABLE a;")
    project.single("2", "b", "CREATE TABLE b (x int);\nCREATE TABLE c (x int);", "DROP TABLE c;\nDROP TABLE b;")
    up = project.migrate("up", "--json")
    assert up.returncode == 0, up.stderr
    data = json.loads(up.stdout)
    assert [m["version"] for m in data["migrations"]] == ["1", "2"]
    assert [s["first_line"] for s in data["migrations"][1]["statements_run"]] == [
        "CREATE TABLE b (x int)", "CREATE TABLE c (x int)"]
    down = project.migrate("down", "--steps", "2", "--json")
    assert down.returncode == 0, down.stderr
    data = json.loads(down.stdout)
    assert data["direction"] == "down" and data["version_before"] == "2" and data["version_after"] is None
    assert [(m["version"], [s["line"] for s in m["statements_run"]]) for m in data["migrations"]] == [
        ("2", [6, 7]), ("1", [5])]
    assert all(s["execution_ms"] >= 0 for m in data["migrations"] for s in m["statements_run"])
    nothing = project.migrate("down", "--json")
    assert json.loads(nothing.stdout)["migrations"] == []
