"""``seedkit reset ENV`` on the project the template renders, on PostgreSQL and SQLite:
a reset ends in exactly the state of migrate + seed on a new database, and protected environments
(or databases they seeded) are refused with exit 4 and left untouched."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seedkit import db, migrate, reset
from seedkit.cli import app
from seedkit.config import Config, load_config
from seedkit.errors import RefusedError, UsageError
from seedkit.seed import run as seed_run
from seedkit.urls import parse_url
from tests.support.template import render

HISTORY_KEPT = {"version", "name", "checksum", "status", "action"}  # the rest is timing and who ran it


@pytest.fixture
def project_dir(template_repo: Path, tmp_path: Path, db_url: str) -> Path:
    """The template's example project for the database of ``db_url``."""
    return render(template_repo, tmp_path / "myapp", {"database": parse_url(db_url).dialect})


def config_of(project_dir: Path, **environ: str) -> Config:
    return load_config(project_dir / "seedkit.toml", environ=environ)


def snapshot(url: str) -> dict[str, Any]:
    """Every table's columns and rows, without what legitimately differs between two runs: timings
    and timestamps in the migration history, and columns that default to the current time."""
    state: dict[str, Any] = {}
    with db.connect(url) as conn:
        for name, table in sorted(conn.catalog(refresh=True).tables.items()):
            columns = [c for c in table.columns.values()
                       if not (name.name.startswith("schema_migrations") and c.name not in HISTORY_KEPT)
                       and not (c.default and ("now()" in c.default.lower()
                                               or "current_timestamp" in c.default.lower()))]
            select = ", ".join(conn.quote(c.name) for c in columns)
            rows = conn.fetchall(f"SELECT {select} FROM {conn.qualified(name)}")
            state[str(name)] = {"columns": [(c.name, c.type, c.nullable) for c in columns],
                                "rows": sorted(map(repr, rows))}
    return state


def next_ids(url: str) -> tuple[int, int]:
    """Ids the database hands out next (sequences must have moved past the seeded ids)."""
    with db.connect(url) as conn, conn.transaction():
        role = conn.fetchone("INSERT INTO roles (name, description) VALUES ('probe', 'probe') RETURNING id")
        post_author = conn.fetchone("SELECT id FROM users ORDER BY id LIMIT 1")
        post = conn.fetchone("INSERT INTO posts (slug, author_id, title, body) "
                             f"VALUES ('probe', {post_author[0]}, 't', 'b') RETURNING id")
        ids = (role[0], post[0])
        conn.execute("DELETE FROM posts WHERE slug = 'probe'")
        conn.execute("DELETE FROM roles WHERE name = 'probe'")
    return ids


def fresh_url_like(url: str, tmp_path: Path) -> str:
    parsed = parse_url(url)
    if parsed.dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh' / 'fresh.db'}"
    return parsed.with_database(f"fresh_{uuid.uuid4().hex[:10]}").raw


def migrate_and_seed(config: Config, url: str) -> None:
    migrate.up(config, env="dev", database_url=url)
    seed_run("dev", config=config, database_url=url)


def test_reset_dev_equals_migrate_and_seed_on_a_new_database(project_dir: Path, db_url: str,
                                                              tmp_path: Path) -> None:
    config = config_of(project_dir)
    migrate_and_seed(config, db_url)
    # Drift the way a development database does: hand edits, extra rows, a stray table.
    with db.connect(db_url) as conn, conn.transaction():
        conn.execute("UPDATE roles SET description = 'edited by hand' WHERE name = 'admin'")
        conn.execute("INSERT INTO users (email, name, role_id) SELECT 'stray@example.com', 'Stray', id "
                     "FROM roles WHERE name = 'reader'")
        conn.execute("CREATE TABLE scratch (id integer PRIMARY KEY)")
    assert snapshot(db_url)["scratch"]

    report = reset("dev", config=config, database_url=db_url)

    assert report.env == "dev"
    assert [m.version for m in report.migrations.migrations] == ["00000000000001"]
    assert report.seeds.inserted == 30 and report.seeds.updated == 0 and report.seeds.unchanged == 0

    reference = fresh_url_like(db_url, tmp_path)
    from seedkit.db.admin import create_database, drop_database

    parsed = parse_url(reference)
    if parsed.path is not None:
        parsed.path.parent.mkdir(parents=True)
    create_database(parsed)
    try:
        migrate_and_seed(config, reference)
        assert snapshot(db_url) == snapshot(reference)
        assert next_ids(db_url) == next_ids(reference)
    finally:
        drop_database(parsed)


def test_reset_creates_a_missing_database(project_dir: Path, db_url: str, tmp_path: Path) -> None:
    target = fresh_url_like(db_url, tmp_path)  # does not exist yet (SQLite: nor does its folder)
    from seedkit.db.admin import database_exists, drop_database

    assert not database_exists(parse_url(target))
    try:
        report = reset("dev", config=config_of(project_dir), database_url=target)
        assert report.seeds.inserted == 30
        assert snapshot(target)["posts"]["rows"]
    finally:
        drop_database(parse_url(target))


def test_reset_production_exits_4_and_changes_nothing(project_dir: Path, db_url: str) -> None:
    config = config_of(project_dir)
    migrate.up(config, env="dev", database_url=db_url)
    seed_run("production", config=config, database_url=db_url, yes=True)
    before = snapshot(db_url)

    result = CliRunner().invoke(app, ["--config", str(project_dir / "seedkit.toml"), "reset", "production"],
                                env={"PRODUCTION_DATABASE_URL": db_url})

    assert result.exit_code == 4, result.output
    assert "protected environment 'production'" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert snapshot(db_url) == before
    with pytest.raises(RefusedError):
        reset("production", config=config_of(project_dir, PRODUCTION_DATABASE_URL=db_url))
    assert snapshot(db_url) == before


def test_reset_refuses_a_database_seeded_by_a_protected_environment(project_dir: Path, db_url: str) -> None:
    config = config_of(project_dir)
    migrate.up(config, env="dev", database_url=db_url)
    seed_run("production", config=config, database_url=db_url, yes=True)
    before = snapshot(db_url)

    # `dev` pointed (by mistake) at the production database: there is no --yes for reset.
    result = CliRunner().invoke(app, ["--config", str(project_dir / "seedkit.toml"), "reset", "dev",
                                      "--database", db_url])

    assert result.exit_code == 4, result.output
    assert "seeded by the protected environment 'production'" in result.stderr
    assert snapshot(db_url) == before


def test_reset_cli_prints_both_reports(project_dir: Path, db_url: str) -> None:
    migrate_and_seed(config_of(project_dir), db_url)
    result = CliRunner().invoke(app, ["--config", str(project_dir / "seedkit.toml"), "reset", "dev",
                                      "--database", db_url])
    assert result.exit_code == 0, result.output + result.stderr
    assert "applied 00000000000001_initial" in result.stdout
    assert "migrated to version 00000000000001" in result.stdout
    for table in ("roles", "users", "posts"):
        assert table in result.stdout


@pytest.mark.postgres
def test_reset_never_drops_the_server_database(template_repo: Path, tmp_path: Path, pg_server: str) -> None:
    project_dir = render(template_repo, tmp_path / "p", {"database": "postgresql"})
    maintenance = parse_url(pg_server).with_database("postgres").raw
    with pytest.raises(RefusedError, match="the server needs it"):
        reset("dev", config=config_of(project_dir), database_url=maintenance)


def test_reset_refuses_in_memory_sqlite(template_repo: Path, tmp_path: Path) -> None:
    project_dir = render(template_repo, tmp_path / "p", {"database": "sqlite"})
    with pytest.raises(UsageError, match="in-memory"):
        reset("dev", config=config_of(project_dir), database_url="sqlite:///:memory:")
