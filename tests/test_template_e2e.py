"""A rendered project works on day one, on PostgreSQL and on SQLite, through its own Makefile and the
seedkit CLI in real processes: migrate, seed dev twice (the second run changes nothing), lint clean,
reset, and its own pytest suite (which uses the seedkit pytest plugin) passes.

For PostgreSQL the project is rendered with the throwaway server's port and used with the credentials
its `.env` holds: the role and database are created the way the postgres image's entrypoint does
(POSTGRES_USER is a superuser owning POSTGRES_DB), so `.env`, seedkit.toml and the tests run unchanged.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from seedkit import db
from seedkit.config import load_config, read_dotenv
from tests.support.template import BIN, project_env, render

SEEDKIT = str(BIN / "seedkit")
PYTEST = f"{BIN / 'python'} -m pytest -p no:cacheprovider"


def run(project: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in project_env(project).items() if not k.startswith("PYTEST_")}
    result = subprocess.run(list(argv), cwd=project, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, (f"{' '.join(argv)} exited {result.returncode}:\n"
                                        f"{result.stdout}{result.stderr}")
    return result


def make(project: Path, target: str) -> subprocess.CompletedProcess[str]:
    return run(project, "make", target, f"SEEDKIT={SEEDKIT}", f"PYTEST={PYTEST}")


@pytest.fixture
def pg_project_dir(template_repo: Path, tmp_path: Path, pg_server: str, request: pytest.FixtureRequest
                     ) -> Iterator[Path]:
    example = request.param
    server = urlsplit(pg_server)
    suffix = uuid.uuid4().hex[:8]
    project = render(template_repo, tmp_path / "myapp", {
        "database": "postgresql", "example_schema": example, "db_port": server.port or 5432,
        "db_name": f"e2e_{suffix}", "db_user": f"e2e_user_{suffix}"})
    if server.hostname not in (None, "127.0.0.1", "localhost"):  # SEEDKIT_TEST_DATABASE_URL elsewhere
        dotenv = project / ".env"
        dotenv.write_text(dotenv.read_text().replace("@127.0.0.1:", f"@{server.hostname}:"))
    env = read_dotenv(project / ".env")
    user, password, name = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(password)))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                                     sql.Identifier(user)))
    try:
        yield project
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            owned = admin.execute("SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                                  "WHERE r.rolname = %s", [user]).fetchall()
            for (database,) in owned:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(database)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))


@pytest.fixture
def sqlite_project_dir(template_repo: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    return render(template_repo, tmp_path / "myapp", {"database": "sqlite", "example_schema": request.param})


def dev_counts(project: Path) -> dict[str, int]:
    url = load_config(project / "seedkit.toml", environ={}).database_url("dev")
    with db.connect(url) as conn:
        return {t: conn.fetchone(f"SELECT count(*) FROM {t}")[0] for t in ("roles", "users", "posts")}


def day_one(project: Path, *, example: bool, dialect: str) -> None:
    """The README's workflow and the CI workflow's steps, in order."""
    seeded_rows = 30 if example else 0

    migrated = make(project, "migrate")
    assert "applied 00000000000001_initial" in migrated.stdout
    status = run(project, SEEDKIT, "migrate", "status", "--exit-code")
    assert "00000000000001" in status.stdout

    # Lint clean: no finding of any level, nothing suppressed. SQLite migrations are skipped (the
    # rules are about PostgreSQL locks and rewrites).
    lint: dict[str, Any] = json.loads(run(project, SEEDKIT, "migrate", "lint", "--json").stdout)
    summary = lint["summary"]
    assert (summary["errors"], summary["warnings"], summary["suppressed"]) == (0, 0, 0), lint
    assert (summary["linted"], summary["skipped"]) == ((1, 0) if dialect == "postgresql" else (0, 1))
    run(project, SEEDKIT, "migrate", "lint")

    make(project, "seed")
    second = json.loads(run(project, SEEDKIT, "run", "dev", "--json").stdout)
    assert not second["changed"], second
    assert second["totals"] == {"inserted": 0, "updated": 0, "unchanged": seeded_rows, "deleted": 0}
    run(project, SEEDKIT, "run", "dev", "--check")
    if example:
        assert dev_counts(project) == {"roles": 3, "users": 2, "posts": 25}
        # Hand edits, then `make reset` brings the seeded state back.
        url = load_config(project / "seedkit.toml", environ={}).database_url("dev")
        with db.connect(url) as conn, conn.transaction():
            conn.execute("DELETE FROM posts WHERE slug = 'post-1'")
        assert run(project, SEEDKIT, "run", "dev", "--check", check=False).returncode == 3
    reset = make(project, "reset")
    assert "migrated to version 00000000000001" in reset.stdout
    run(project, SEEDKIT, "run", "dev", "--check")
    if example:
        assert dev_counts(project) == {"roles": 3, "users": 2, "posts": 25}

    tests = make(project, "test")
    expected = 4 if example else 1
    assert re.search(rf"\b{expected} passed\b", tests.stdout), tests.stdout
    assert " failed" not in tests.stdout and " error" not in tests.stdout

    # The README's other commands: a dry run, and the next migration.
    dry = json.loads(run(project, SEEDKIT, "run", "dev", "--dry-run", "--json").stdout)
    assert dry["dry_run"] and not dry["changed"]
    run(project, SEEDKIT, "migrate", "new", "add_comments")
    [new_file] = [p for p in (project / "migrations").iterdir() if p.name.endswith("_add_comments.sql")]
    assert re.fullmatch(r"\d{14}_add_comments\.sql", new_file.name)
    assert "applied" in make(project, "migrate").stdout
    run(project, SEEDKIT, "migrate", "status", "--exit-code")


@pytest.mark.postgres
@pytest.mark.parametrize("pg_project_dir", [True, False], ids=["example", "blank"], indirect=True)
def test_rendered_project_on_postgresql(pg_project_dir: Path, request: pytest.FixtureRequest) -> None:
    example = request.node.callspec.params["pg_project_dir"]
    day_one(pg_project_dir, example=example, dialect="postgresql")


@pytest.mark.parametrize("sqlite_project_dir", [True, False], ids=["example", "blank"], indirect=True)
def test_rendered_project_on_sqlite(sqlite_project_dir: Path, request: pytest.FixtureRequest) -> None:
    example = request.node.callspec.params["sqlite_project_dir"]
    day_one(sqlite_project_dir, example=example, dialect="sqlite")
    assert (sqlite_project_dir / "myapp.db").is_file()
