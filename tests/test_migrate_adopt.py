"""Adopting a database seedkit did not build: ``migrate baseline`` and ``migrate import --from TOOL``.

The baseline database is built by the real ``psql`` (PostgreSQL) and by ``sqlite3.executescript``
(SQLite) from the same files. The other tools' history tables are built here with the DDL each tool
documents and creates (dbmate, golang-migrate, Diesel, Flyway 9); the suite must run where those
tools are not installed. dbmate's DDL below is what dbmate 2.36 really created (checked by hand)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from seedkit.migrate.files import checksum
from tests.support.project import Project

STEPS = [
    ("001", "users", "CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL);", "DROP TABLE users;"),
    ("002", "posts", "CREATE TABLE posts (id integer PRIMARY KEY, user_id integer REFERENCES users (id));",
     "DROP TABLE posts;"),
    ("003", "tags", "CREATE TABLE tags (id integer PRIMARY KEY, name text);", "DROP TABLE tags;"),
]


class AdoptProject(Project):
    """A migrations project whose history table is ``table`` (dbmate and golang-migrate keep
    ``schema_migrations``), with ``execute`` for SQL written the way another tool would."""

    def __init__(self, root: Path, url: str, table: str = "seedkit_migrations"):
        super().__init__(root, url, _layout="bare")
        self.migrations_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(f'[database]\nurl = "{url}"\n\n[migrations]\ndir = "migrations"\n'
                                    f'table = "{table}"\n', encoding="utf-8")

    def execute(self, sql: str) -> None:
        if self.pg:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as c:
                c.execute(sql)
        else:
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as c:
                c.executescript(sql)


def _project(tmp_path: Path, url: str, steps: list[tuple[str, str, str, str]] = STEPS, **kw: str) -> AdoptProject:
    p = AdoptProject(tmp_path, url, **kw)
    for version, name, up, down in steps:
        p.pair(version, name, up, down)
    return p


def _build_by_hand(p: AdoptProject, upto: int) -> None:
    """Build the schema without seedkit: psql -f on each up file (SQLite: executescript)."""
    for path in sorted(p.migrations_dir.glob("*.up.sql"))[:upto]:
        if p.pg:
            psql = shutil.which("psql")
            assert psql, "psql is needed for this test"
            subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", p.url, "-f", str(path)], check=True)
        else:
            with sqlite3.connect(p.url.removeprefix("sqlite:///")) as c:
                c.executescript(path.read_text())


def _tables(p: AdoptProject) -> set[str]:
    return {t for (t,) in p.rows("SELECT tablename FROM pg_tables" if p.pg else
                                  "SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_baseline_then_up_applies_only_newer(tmp_path: Path, db_url: str) -> None:
    p = _project(tmp_path, db_url)
    _build_by_hand(p, 2)
    r = p.migrate("baseline", "002", "--dry-run")
    assert r.returncode == 0 and "would record 002_posts as applied" in r.stdout, r.stdout
    assert "seedkit_migrations" not in _tables(p)  # a dry run writes nothing, not even the table
    r = p.migrate("baseline", "002")
    assert r.returncode == 0, r.stderr
    assert "recorded 2 migration(s) without running them; 1 pending" in r.stdout
    rows = p.rows("SELECT version, checksum, status FROM seedkit_migrations ORDER BY version")
    d = p.migrations_dir
    assert rows == [
        ("001", checksum((d / "001_users.up.sql").read_text(), (d / "001_users.down.sql").read_text()), "applied"),
        ("002", checksum((d / "002_posts.up.sql").read_text(), (d / "002_posts.down.sql").read_text()), "applied")]
    assert [a for (a,) in p.rows("SELECT action FROM seedkit_migrations_log ORDER BY id")] == ["baseline"] * 2
    r = p.migrate("up")
    assert r.returncode == 0, r.stderr
    applied = [line.split(" (")[0] for line in r.stdout.splitlines() if line.startswith("applied")]
    assert applied == ["applied 003_tags"]  # 001 and 002 were not run again (they would fail: tables exist)
    assert p.migrate("verify").returncode == 0
    assert p.migrate("status", "--exit-code").returncode == 0


def test_baseline_refuses_an_existing_history_unless_forced(tmp_path: Path, db_url: str) -> None:
    p = _project(tmp_path, db_url)
    assert p.migrate("up", "--to", "001").returncode == 0
    r = p.migrate("baseline", "002")
    assert r.returncode == 4 and "already has a seedkit history (1 migration recorded" in r.stderr, r.stderr
    assert p.rows("SELECT version FROM seedkit_migrations") == [("001",)]
    _build_by_hand(p, 0)
    p.execute(STEPS[1][2])  # 002 built by hand
    r = p.migrate("baseline", "002", "--force")
    assert r.returncode == 0 and "replacing 1 earlier row(s)" in r.stdout, r.stdout
    assert p.rows("SELECT version FROM seedkit_migrations ORDER BY version") == [("001",), ("002",)]
    assert p.migrate("baseline", "007").returncode == 2  # no such migration: nothing guessed


# -- import ----------------------------------------------------------------------------------------

DDL = {
    # dbmate 2.36 (npm package "dbmate"), as it created them
    ("dbmate", "postgresql"): "CREATE TABLE IF NOT EXISTS public.schema_migrations (version character varying "
                              "NOT NULL PRIMARY KEY)",
    ("dbmate", "sqlite"): "CREATE TABLE IF NOT EXISTS \"schema_migrations\" (version varchar(128) primary key)",
    # golang-migrate v4 database/postgres and database/sqlite3
    ("golang-migrate", "postgresql"): "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null "
                                      "primary key, dirty boolean not null)",
    ("golang-migrate", "sqlite"): "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool); "
                                  "CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version)",
    # Diesel's migrations_internals
    ("diesel", "postgresql"): "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY "
                              "NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    ("diesel", "sqlite"): "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY "
                          "NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    # Flyway 9 createMetaDataTable.sql (PostgreSQL; SQLite's differs in the installed_on default)
    ("flyway", "postgresql"): """CREATE TABLE "flyway_schema_history" ("installed_rank" INT NOT NULL,
        "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL, "type" VARCHAR(20) NOT NULL,
        "script" VARCHAR(1000) NOT NULL, "checksum" INT, "installed_by" VARCHAR(100) NOT NULL,
        "installed_on" TIMESTAMP NOT NULL DEFAULT now(), "execution_time" INT NOT NULL, "success" BOOLEAN NOT NULL,
        CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank"));
        CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success")""",
    ("flyway", "sqlite"): """CREATE TABLE "flyway_schema_history" ("installed_rank" INT NOT NULL PRIMARY KEY,
        "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL, "type" VARCHAR(20) NOT NULL,
        "script" VARCHAR(1000) NOT NULL, "checksum" INT, "installed_by" VARCHAR(100) NOT NULL,
        "installed_on" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')), "execution_time" INT NOT NULL,
        "success" BOOLEAN NOT NULL)""",
}


def _tool_history(p: AdoptProject, tool: str, versions: list[str], *, dirty: bool = False) -> None:
    """Write ``tool``'s history of ``versions`` the way the tool does after applying them."""
    dialect = "postgresql" if p.pg else "sqlite"
    p.execute(DDL[(tool, dialect)])
    true = "true" if p.pg else "1"
    if tool == "dbmate":
        for v in versions:
            p.execute(f"INSERT INTO schema_migrations (version) VALUES ('{v}')")
    elif tool == "golang-migrate":
        if versions:
            p.execute(f"INSERT INTO schema_migrations (version, dirty) VALUES ({int(versions[-1])}, "
                      f"{true if dirty else ('false' if p.pg else '0')})")
    elif tool == "diesel":
        for v in versions:
            p.execute(f"INSERT INTO __diesel_schema_migrations (version, run_on) VALUES ('{v}', "
                      f"'2024-05-01 10:00:0{len(v) % 10}')")
    elif tool == "flyway":
        for rank, v in enumerate(versions, start=1):
            p.execute(f"""INSERT INTO flyway_schema_history (installed_rank, version, description, type, script,
                checksum, installed_by, installed_on, execution_time, success) VALUES ({rank}, '{int(v)}', 'step',
                'SQL', 'V{int(v)}__step.sql', 12345, 'app', '2024-05-01 10:00:00', 42, {true})""")


TOOL_VERSIONS = {"dbmate": ["001", "002"], "golang-migrate": ["001", "002"], "diesel": ["001", "002"],
                 "flyway": ["001", "002"]}


@pytest.mark.parametrize("tool", ["dbmate", "golang-migrate", "diesel", "flyway"])
def test_import_records_what_the_tool_applied(tmp_path: Path, db_url: str, tool: str) -> None:
    p = _project(tmp_path, db_url)
    _build_by_hand(p, 2)
    _tool_history(p, tool, TOOL_VERSIONS[tool])
    r = p.migrate("import", "--from", tool, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [x["version"] for x in report["recorded"]] == ["001", "002"] and report["pending"] == ["003"]
    rows = p.rows("SELECT version, status, execution_ms FROM seedkit_migrations ORDER BY version")
    ms = 42 if tool == "flyway" else 0
    assert rows == [("001", "applied", ms), ("002", "applied", ms)]
    if tool in ("diesel", "flyway"):  # the tool's own timestamp is kept
        assert p.rows("SELECT applied_at FROM seedkit_migrations WHERE version = '001'")[0][0] is not None
        status = json.loads(p.migrate("status", "--json").stdout)
        assert status["migrations"][0]["applied_at"].startswith("2024-05-01T10:00:0")
    assert {a for (a,) in p.rows("SELECT action FROM seedkit_migrations_log")} == {f"import from {tool}"}
    r = p.migrate("up")
    assert [line.split(" (")[0] for line in r.stdout.splitlines() if line.startswith("applied")] == ["applied 003_tags"]
    assert p.migrate("verify").returncode == 0
    # the tool's table is left as it was
    own = {"flyway": "flyway_schema_history", "diesel": "__diesel_schema_migrations"}.get(tool, "schema_migrations")
    assert p.rows(f"SELECT count(*) FROM {own}")[0][0] >= 1
    # a second import is refused: the database has a seedkit history now
    r = p.migrate("import", "--from", tool)
    assert r.returncode == 4 and "already has a seedkit history" in r.stderr


@pytest.mark.parametrize("tool", ["dbmate", "diesel", "flyway"])
def test_import_refuses_and_lists_every_difference(tmp_path: Path, db_url: str, tool: str) -> None:
    p = _project(tmp_path, db_url)
    _tool_history(p, tool, ["001", "003", "009"])  # 002 skipped, 009 has no file
    r = p.migrate("import", "--from", tool)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "disagree; nothing was imported" in r.stderr
    assert "applied version 9" in r.stderr.replace("version 009", "version 9")
    assert "002_posts.up.sql (version 002) is older than the newest migration" in r.stderr
    assert "seedkit_migrations" not in _tables(p)


def test_import_golang_migrate_dirty_and_missing_version(tmp_path: Path, db_url: str) -> None:
    p = _project(tmp_path, db_url)
    _tool_history(p, "golang-migrate", ["002"], dirty=True)
    r = p.migrate("import", "--from", "golang-migrate")
    assert r.returncode == 3 and "version 2 dirty" in r.stderr, r.stderr
    p.execute("DELETE FROM schema_migrations")
    p.execute("INSERT INTO schema_migrations (version, dirty) VALUES (5, " + ("false" if p.pg else "0") + ")")
    r = p.migrate("import", "--from", "golang-migrate")
    assert r.returncode == 3 and "is at version 5, but no migration file has that version" in r.stderr, r.stderr


def test_import_flyway_baseline_repeatable_and_failed_rows(tmp_path: Path, pg_url: str) -> None:
    p = _project(tmp_path, pg_url)
    p.execute(DDL[("flyway", "postgresql")])
    p.execute("""INSERT INTO flyway_schema_history VALUES
        (0, NULL, '<< Flyway Schema Creation >>', 'SCHEMA', '"public"', NULL, 'app', now(), 0, true),
        (1, '2', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'app', now(), 0, true),
        (2, NULL, 'views', 'SQL', 'R__views.sql', 777, 'app', now(), 3, true),
        (3, '3', 'tags', 'SQL', 'V3__tags.sql', 888, 'app', now(), 5, true)""")
    r = p.migrate("import", "--from", "flyway", "--json")
    assert r.returncode == 0, r.stderr
    assert [x["version"] for x in json.loads(r.stdout)["recorded"]] == ["001", "002", "003"]
    p2 = _project(tmp_path / "two", pg_url, table="other_history")
    p2.execute("UPDATE flyway_schema_history SET success = false WHERE installed_rank = 3")
    p2.execute("""INSERT INTO flyway_schema_history VALUES
        (4, '3.1', 'dotted', 'SQL', 'V3.1__dotted.sql', 1, 'app', now(), 0, true)""")
    r = p2.migrate("import", "--from", "flyway")
    assert r.returncode == 3, r.stderr
    assert "records version 3 (V3__tags.sql) as failed" in r.stderr
    assert "version 3.1 (V3.1__dotted.sql) is not a whole number" in r.stderr


def test_import_refuses_a_shared_table_name_and_a_missing_table(tmp_path: Path, db_url: str) -> None:
    p = _project(tmp_path, db_url, table="schema_migrations")
    _tool_history(p, "dbmate", ["001"])
    r = p.migrate("import", "--from", "dbmate")
    assert r.returncode == 2 and 'table = "seedkit_migrations"' in r.stderr, r.stderr
    q = _project(tmp_path / "q", db_url)
    r = q.migrate("import", "--from", "diesel")
    assert r.returncode == 2 and "no diesel history table" in r.stderr and "--table" in r.stderr
    r = q.migrate("import", "--from", "liquibase")
    assert r.returncode == 2 and "dbmate, golang-migrate, diesel, flyway" in r.stderr
    # --table names a table of another name
    q.execute(DDL[("diesel", "postgresql" if q.pg else "sqlite")].replace("__diesel_schema_migrations", "old_diesel"))
    q.execute("INSERT INTO old_diesel (version) VALUES ('001')")
    r = q.migrate("import", "--from", "diesel", "--table", "old_diesel")
    assert r.returncode == 0, r.stderr
    assert q.rows("SELECT version FROM seedkit_migrations") == [("001",)]
