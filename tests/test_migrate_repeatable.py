"""Repeatable migrations (``migrations/repeatable/*.sql``): applied after the versioned ones, again
whenever they change, each in its own transaction; on PostgreSQL and SQLite through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seedkit.cli import app
from seedkit.db import connect
from tests.support.project import Project


class RepeatableProject(Project):
    """A migrations project with a ``migrations/repeatable/`` folder (``extra``: more [migrations] lines)."""

    def __init__(self, root: Path, url: str, extra: str = ""):
        super().__init__(root, url, _layout="bare")
        self.rdir = self.migrations_dir / "repeatable"
        self.rdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(f'[database]\nurl = "{url}"\n\n[migrations]\ndir = "migrations"\n{extra}',
                                    encoding="utf-8")

    def repeatable(self, name: str, sql: str) -> Path:
        path = self.rdir / f"{name}.sql"
        path.write_text(sql, encoding="utf-8")
        return path


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> RepeatableProject:
    p = RepeatableProject(tmp_path, db_url)
    p.single("20240101000000", "items", "CREATE TABLE items (id integer PRIMARY KEY, price integer NOT NULL);\n"
             "INSERT INTO items VALUES (1, 10), (2, 20);", "DROP TABLE items;")
    return p


def _view(p: RepeatableProject, body: str) -> str:
    return (f"DROP VIEW IF EXISTS cheap_items;\nCREATE VIEW cheap_items AS {body};\n")


def test_applied_after_versioned_then_only_when_changed(project: RepeatableProject) -> None:
    p = project
    p.repeatable("b_views", _view(p, "SELECT id FROM items WHERE price < 15"))
    p.repeatable("a_first", "CREATE TABLE IF NOT EXISTS order_probe (n integer);\n"
                            "INSERT INTO order_probe SELECT count(*) FROM items;")
    r = p.migrate("up")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("applied")]
    # versioned first, then the repeatables in name order
    assert [line.split(" (")[0] for line in lines] == ["applied 20240101000000_items", "applied repeatable a_first",
                                                       "applied repeatable b_views"]
    assert p.rows("SELECT id FROM cheap_items") == [(1,)]
    assert p.rows("SELECT n FROM order_probe") == [(2,)]  # ran after items existed

    # unchanged: nothing runs again
    r = p.migrate("up")
    assert r.returncode == 0 and "nothing to apply" in r.stdout, r.stdout
    assert p.rows("SELECT n FROM order_probe") == [(2,)]

    # edited: only that file is re-applied, and its new checksum recorded
    p.repeatable("b_views", _view(p, "SELECT id FROM items WHERE price < 25"))
    status = json.loads(p.migrate("status", "--json").stdout)
    rep = {e["name"]: e for e in status["migrations"] if e["version"] == "repeatable"}
    assert rep["b_views"]["state"] == "pending" and "changed" in rep["b_views"]["note"]
    assert rep["a_first"]["state"] == "applied"
    assert p.migrate("status", "--exit-code").returncode == 3
    r = p.migrate("up")
    assert r.returncode == 0, r.stderr
    assert [line.split(" (")[0] for line in r.stdout.splitlines() if line.startswith("applied")] == [
        "applied repeatable b_views"]
    assert p.rows("SELECT id FROM cheap_items ORDER BY id") == [(1,), (2,)]
    assert p.rows("SELECT n FROM order_probe") == [(2,)]
    rows = dict(p.rows("SELECT name, checksum FROM schema_migrations_repeatable"))
    from seedkit.migrate.files import checksum

    assert rows["b_views"] == checksum((p.rdir / "b_views.sql").read_text())
    log = p.rows("SELECT version, name, action FROM schema_migrations_log WHERE version = 'repeatable' "
                  "ORDER BY id")
    assert log == [("repeatable", "a_first", "applied"), ("repeatable", "b_views", "applied"),
                   ("repeatable", "b_views", "re-applied")]
    assert p.migrate("status", "--exit-code").returncode == 0
    assert p.migrate("verify").returncode == 0


def test_failed_reapply_rolls_back_only_that_file(project: RepeatableProject) -> None:
    p = project
    p.repeatable("a_views", _view(p, "SELECT id FROM items WHERE price < 15"))
    p.repeatable("b_fn", "CREATE TABLE IF NOT EXISTS marks (v text);\nDELETE FROM marks;\n"
                         "INSERT INTO marks VALUES ('v1');")
    assert p.migrate("up").returncode == 0
    # a new versioned migration, an edit of a_views that works, and an edit of b_fn that fails half-way
    p.single("20240102000000", "more", "INSERT INTO items VALUES (3, 5);", "DELETE FROM items WHERE id = 3;")
    p.repeatable("a_views", _view(p, "SELECT id FROM items WHERE price < 8"))
    p.repeatable("b_fn", "DELETE FROM marks;\nINSERT INTO marks VALUES ('v2');\nINSERT INTO no_such_table VALUES (1);")
    before = dict(p.rows("SELECT name, checksum FROM schema_migrations_repeatable"))
    r = p.migrate("up")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "b_fn.sql:3" in r.stderr and "repeatable b_fn rolled back" in r.stderr, r.stderr
    assert "only this file's re-apply was rolled back" in r.stderr
    # the versioned migration and the earlier repeatable stay applied ...
    assert p.rows("SELECT version FROM schema_migrations ORDER BY version") == [("20240101000000",),
                                                                                ("20240102000000",)]
    assert p.rows("SELECT id FROM cheap_items") == [(3,)]
    # ... the failed file's statements were undone and its old checksum kept
    assert p.rows("SELECT v FROM marks") == [("v1",)]
    after = dict(p.rows("SELECT name, checksum FROM schema_migrations_repeatable"))
    assert after["b_fn"] == before["b_fn"] and after["a_views"] != before["a_views"]
    status = json.loads(p.migrate("status", "--json").stdout)
    assert {e["name"]: e["state"] for e in status["migrations"] if e["version"] == "repeatable"} == {
        "a_views": "applied", "b_fn": "pending"}
    # fixed: up applies it
    p.repeatable("b_fn", "DELETE FROM marks;\nINSERT INTO marks VALUES ('v2');")
    assert p.migrate("up").returncode == 0
    assert p.rows("SELECT v FROM marks") == [("v2",)]


def test_down_leaves_repeatables_alone(project: RepeatableProject) -> None:
    p = project
    p.single("20240102000000", "audit", "CREATE TABLE audit (n integer);", "DROP TABLE audit;")
    p.repeatable("views", _view(p, "SELECT id FROM items"))
    assert p.migrate("up").returncode == 0
    r = p.migrate("down")
    assert r.returncode == 0, r.stderr
    assert "20240102000000_audit" in r.stdout and "back repeatable" not in r.stdout
    assert p.rows("SELECT count(*) FROM cheap_items") == [(2,)]
    assert len(p.rows("SELECT * FROM schema_migrations_repeatable")) == 1
    # going up again does not re-apply the unchanged repeatable
    r = p.migrate("up")
    assert "applied repeatable" not in r.stdout and "20240102000000_audit" in r.stdout


def test_new_repeatable_status_verify_and_dry_run(project: RepeatableProject) -> None:
    p = project
    r = p.migrate("new", "--repeatable", "reporting views")
    assert r.returncode == 0, r.stderr
    created = p.rdir / "reporting_views.sql"
    assert created.is_file() and "created" in r.stdout
    assert p.migrate("new", "--repeatable", "reporting_views").returncode == 2  # never overwritten
    created.write_text(created.read_text() + _view(p, "SELECT id FROM items"), encoding="utf-8")
    r = p.migrate("up", "--dry-run")
    assert "would apply repeatable reporting_views" in r.stdout
    assert "applied repeatable" not in p.migrate("up", "--to", "20240101000000").stdout  # --to stops before them
    assert p.migrate("up").returncode == 0
    created.unlink()
    status = json.loads(p.migrate("status", "--json").stdout)
    removed = [e for e in status["migrations"] if e["version"] == "repeatable"]
    assert removed[0]["state"] == "removed" and status["ok"]


def test_verify_and_up_refuse_a_repeatable_that_cannot_run_in_a_transaction(pg_url: str, tmp_path: Path) -> None:
    p = RepeatableProject(tmp_path, pg_url)
    p.single("20240101000000", "t", "CREATE TABLE t (id int);")
    p.repeatable("idx", "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);")
    r = p.migrate("verify")
    assert r.returncode == 3 and "idx.sql:1" in r.stderr, r.stderr
    r = p.migrate("up")
    assert r.returncode == 2 and "repeatable idx" in r.stderr and "versioned migration" in r.stderr, r.stderr
    assert p.rows("SELECT count(*) FROM schema_migrations") == [(0,)]  # refused before anything ran
    (p.rdir / "idx.sql").write_text("-- seedkit: transaction=false\nSELECT 1;\n")
    r = p.migrate("status")
    assert r.returncode == 2 and "always runs in a transaction" in r.stderr


def test_configurable_folder_and_lint(tmp_path: Path, pg_url: str) -> None:
    p = RepeatableProject(tmp_path, pg_url, extra='repeatable_dir = "db/repeatables"\n')
    p.single("20240101000000", "t", "CREATE TABLE t (id int);")
    other = tmp_path / "db" / "repeatables"
    other.mkdir(parents=True)
    (other / "grants.sql").write_text("CREATE INDEX t_id ON t (id);\n", encoding="utf-8")
    p.repeatable("ignored", "SELECT 1;")  # the default folder is not read when another is configured
    r = CliRunner().invoke(app, ["--config", str(p.config_path), "migrate", "lint", "--json"])
    report = json.loads(r.stdout)
    assert [(f["path"].endswith("grants.sql"), f["version"]) for f in report["files"]][-1] == (True, "repeatable")
    assert [f["rule"] for f in report["findings"]] == ["index-not-concurrent"]
    assert r.exit_code == 3
    # a path inside the repeatable folder is linted as a repeatable
    r = CliRunner().invoke(app, ["--config", str(p.config_path), "migrate", "lint", str(other / "grants.sql")])
    assert r.exit_code == 3 and "grants.sql:1:1 index-not-concurrent" in r.stdout, r.stdout
    assert p.migrate("up").returncode == 0
    assert p.rows("SELECT name FROM schema_migrations_repeatable") == [("grants",)]
    # --pending: an applied, unchanged repeatable is not reported
    r = CliRunner().invoke(app, ["--config", str(p.config_path), "migrate", "lint", "--pending", "--json"])
    assert json.loads(r.stdout)["findings"] == [] and r.exit_code == 0


def test_down_that_drops_what_a_repeatable_reads_then_reapply(pg_url: str, tmp_path: Path) -> None:
    p = RepeatableProject(tmp_path, pg_url)
    p.single("20240101000000", "extra", "CREATE TABLE extra (n int);", "DROP TABLE extra;")
    p.repeatable("extra_view", "CREATE OR REPLACE VIEW extra_view AS SELECT n FROM extra;\n")
    assert p.migrate("up").returncode == 0
    # PostgreSQL refuses to drop a table a repeatable's view reads: down says so and changes nothing
    r = p.migrate("down")
    assert r.returncode == 1 and "depend" in r.stderr, r.stderr
    assert p.rows("SELECT count(*) FROM schema_migrations") == [(1,)]
    # a down written with CASCADE drops the view too; up re-creates the table, and the unchanged
    # repeatable only with --reapply-repeatables
    (p.migrations_dir / "20240101000000_extra.sql").write_text(
        "-- migrate:up\nCREATE TABLE extra (n int);\n\n-- migrate:down\nDROP TABLE extra CASCADE;\n")
    with connect(p.url) as db:  # the edit is to the down section only: record it as applied with it
        from seedkit.migrate.files import load_entry

        db.execute("UPDATE schema_migrations SET checksum = %s",
                   [load_entry(p.migrations_dir / "20240101000000_extra.sql").checksum])
        db.conn.commit()
    assert p.migrate("down").returncode == 0
    r = p.migrate("up")
    assert "applied repeatable" not in r.stdout
    assert p.rows("SELECT to_regclass('extra_view')") == [(None,)]
    r = p.migrate("up", "--reapply-repeatables")
    assert r.returncode == 0 and "applied repeatable extra_view" in r.stdout, r.stdout
    assert p.rows("SELECT to_regclass('extra_view')::text") == [("extra_view",)]
    assert p.rows("SELECT action FROM schema_migrations_log WHERE version = 'repeatable' ORDER BY id") == [
        ("applied",), ("re-applied",)]
