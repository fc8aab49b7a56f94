"""The migration runner through its Python API, on real PostgreSQL and SQLite databases."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedkit import migrate
from seedkit.db import connect
from seedkit.db.postgres.migration import LOCK_CLASS, lock_key
from seedkit.errors import (
    DriftError,
    LockTimeout,
    MigrationError,
    MigrationFileError,
    RefusedError,
    UsageError,
)
from tests.support import Project

# -- a small project in a temporary folder ----------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Project:
    return Project.with_migrations(tmp_path, db_url)


@pytest.fixture
def pg_project(tmp_path: Path, pg_url: str) -> Project:
    return Project.with_migrations(tmp_path, pg_url)


@pytest.fixture
def sqlite_project(tmp_path: Path, sqlite_url: str) -> Project:
    return Project.with_migrations(tmp_path, sqlite_url)


def schema_snapshot(url: str) -> dict[str, Any]:
    """Everything a migration can create, minus seedkit's own history tables."""
    with connect(url) as db:
        catalog = db.catalog(refresh=True)
        tables = {k: v for k, v in catalog.tables.items() if not k.name.startswith("schema_migrations")}
        if db.dialect == "sqlite":
            objects = db.fetchall("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                  "WHERE name NOT LIKE 'sqlite_%' AND tbl_name NOT LIKE 'schema_migrations%' "
                                  "ORDER BY type, name")
            return {"tables": tables, "objects": objects}
        return {
            "tables": tables,
            "columns": db.fetchall("SELECT table_name, column_name, data_type, is_nullable, column_default "
                                   "FROM information_schema.columns WHERE table_schema = 'public' "
                                   "AND table_name NOT LIKE 'schema_migrations%' ORDER BY 1, 2"),
            "indexes": db.fetchall("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                                   "AND tablename NOT LIKE 'schema_migrations%' ORDER BY 1"),
            "views": db.fetchall("SELECT table_name, view_definition FROM information_schema.views "
                                 "WHERE table_schema = 'public' ORDER BY 1"),
            "constraints": db.fetchall("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                                       "WHERE connamespace = 'public'::regnamespace "
                                       "AND conrelid::regclass::text NOT LIKE 'schema_migrations%' "
                                       "ORDER BY 1"),
        }


# -- layouts ---------------------------------------------------------------------------------------

MIGRATIONS = [
    ("001", "authors", "CREATE TABLE authors (id integer PRIMARY KEY, name text NOT NULL UNIQUE);",
     "DROP TABLE authors;"),
    ("002", "books", "CREATE TABLE books (\n  id integer PRIMARY KEY,\n"
                     "  author_id integer NOT NULL REFERENCES authors (id),\n  title text\n);\n"
                     "CREATE INDEX books_author ON books (author_id);",
     "DROP INDEX books_author;\nDROP TABLE books;"),
    ("003", "titles", "ALTER TABLE authors ADD COLUMN bio text;\n"
                      "CREATE VIEW book_titles AS SELECT title FROM books;",
     "DROP VIEW book_titles;\nALTER TABLE authors DROP COLUMN bio;"),
]


@pytest.mark.parametrize("layout", ["single", "pair", "folder", "mixed"])
def test_layouts_apply_roll_back_and_reapply_to_the_same_schema(project: Project, layout: str) -> None:
    writers = {"single": project.single, "pair": project.pair, "folder": project.folder}
    order = ["single", "pair", "folder"] if layout == "mixed" else [layout] * 3
    for kind, (version, name, up, down) in zip(order, MIGRATIONS, strict=True):
        writers[kind](version, name, up, down)
    empty = schema_snapshot(project.url)

    report = migrate.up(project.config())
    assert [m.version for m in report.migrations] == ["001", "002", "003"]
    assert (report.version_before, report.version_after) == (None, "003")
    applied = schema_snapshot(project.url)
    assert {"authors", "books"} <= project.tables()
    assert applied != empty

    down = migrate.down(project.config(), to=0)
    assert [m.version for m in down.migrations] == ["003", "002", "001"]
    assert down.version_after is None
    assert schema_snapshot(project.url) == empty
    assert project.history() == []

    migrate.up(project.config())
    assert schema_snapshot(project.url) == applied
    assert project.applied() == ["001", "002", "003"]


def test_history_rows_and_log(project: Project) -> None:
    path = project.single("20240101120000", "authors", MIGRATIONS[0][2], MIGRATIONS[0][3])
    migrate.up(project.config())
    [(version, name, checksum, applied_at, ms, status)] = project.rows(
        "SELECT version, name, checksum, applied_at, execution_ms, status FROM schema_migrations")
    import hashlib

    assert (version, name, status) == ("20240101120000", "authors", "applied")
    assert checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    assert applied_at is not None and ms >= 0
    migrate.down(project.config())
    log = project.rows("SELECT version, action FROM schema_migrations_log ORDER BY id")
    assert log == [("20240101120000", "up"), ("20240101120000", "down")]


def test_nothing_pending_is_a_no_op(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")
    assert len(migrate.up(project.config()).migrations) == 1
    again = migrate.up(project.config())
    assert again.migrations == [] and again.version_after == "1"


def test_dry_run_changes_nothing(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);\nCREATE TABLE b (y integer);", "DROP TABLE a;")
    report = migrate.up(project.config(), dry_run=True)
    assert [(m.version, m.statements) for m in report.migrations] == [("1", 2)]
    assert report.version_after == "1" and report.dry_run
    assert project.tables() == set()
    migrate.up(project.config())
    assert migrate.down(project.config(), dry_run=True).version_after is None
    assert project.tables() == {"a", "b"}


# -- tricky SQL ------------------------------------------------------------------------------------

PG_TRICKY = r"""-- migrate:up
-- a comment; with semicolons; everywhere
CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);  /* trailing; /* nested; */ comment */
INSERT INTO notes (body) VALUES ('semi;colon'), ('it''s; quoted'), (E'escaped\'; quote'), ($q$dollar;$q$);
DO $$
DECLARE
  n int;
BEGIN
  SELECT count(*) INTO n FROM notes;  -- four rows; so far
  IF n <> 4 THEN
    RAISE EXCEPTION 'expected 4 rows; got %', n;
  END IF;
  INSERT INTO notes (body) VALUES ('from DO; block');
END
$$;
CREATE FUNCTION add_note(b text) RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
  new_id int;
BEGIN
  INSERT INTO notes (body) VALUES (b) RETURNING id INTO new_id;
  RETURN new_id;
END;
$fn$;
CREATE FUNCTION note_count() RETURNS bigint LANGUAGE sql
BEGIN ATOMIC
  SELECT count(*) FROM notes;
END;
SELECT add_note('via; function');
CREATE TABLE percent (v text);
INSERT INTO percent VALUES ('50%'), ('%s'), ('%%'), ('%(name)s'), ('?');

-- migrate:down
DROP TABLE percent;
DROP FUNCTION note_count();
DROP FUNCTION add_note(text);
DROP TABLE notes;
"""


@pytest.mark.postgres
def test_postgres_do_blocks_functions_strings_and_comments(pg_project: Project) -> None:
    (pg_project.migrations_dir / "1_tricky.sql").write_text(PG_TRICKY, encoding="utf-8")
    report = migrate.up(pg_project.config())
    assert report.migrations[0].statements == 8
    assert pg_project.rows("SELECT v FROM percent") == [("50%",), ("%s",), ("%%",), ("%(name)s",), ("?",)]
    bodies = [r[0] for r in pg_project.rows("SELECT body FROM notes ORDER BY id")]
    assert bodies == ["semi;colon", "it's; quoted", "escaped'; quote", "dollar;", "from DO; block",
                      "via; function"]
    assert pg_project.rows("SELECT note_count()") == [(6,)]
    migrate.down(pg_project.config())
    assert pg_project.tables() == set()


SQLITE_TRICKY = """-- migrate:up
-- comment; with semicolons
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, n INTEGER DEFAULT 0); /* x; y */
CREATE TABLE audit (note_id INTEGER, what TEXT);
CREATE TRIGGER notes_ai AFTER INSERT ON notes
BEGIN
  INSERT INTO audit VALUES (new.id, 'insert; one');
  UPDATE notes SET n = (SELECT count(*) FROM audit) WHERE id = new.id;
END;
INSERT INTO notes (body) VALUES ('semi;colon'), ('it''s; quoted');

-- migrate:down
DROP TRIGGER notes_ai;
DROP TABLE audit;
DROP TABLE notes;
"""


def test_sqlite_triggers_strings_and_comments(sqlite_project: Project) -> None:
    (sqlite_project.migrations_dir / "1_tricky.sql").write_text(SQLITE_TRICKY, encoding="utf-8")
    report = migrate.up(sqlite_project.config())
    assert report.migrations[0].statements == 4
    assert sqlite_project.rows("SELECT body, n FROM notes ORDER BY id") == [
        ("semi;colon", 1), ("it's; quoted", 2)]
    assert sqlite_project.rows("SELECT what FROM audit") == [("insert; one",), ("insert; one",)]
    migrate.down(sqlite_project.config())
    assert sqlite_project.tables() == set()


# -- failures --------------------------------------------------------------------------------------

FAILING = """-- migrate:up
CREATE TABLE first_stmt (a integer);
INSERT INTO first_stmt VALUES (1);

-- padding so the failing statement lands on line 17
--
--
--
--
--
--
--
--
--
--
--
    INSERT INTO missing_table (a) VALUES (1);
CREATE TABLE never_created (a integer);

-- migrate:down
DROP TABLE first_stmt;
"""


def test_failing_statement_is_located_and_rolled_back(project: Project) -> None:
    project.single("1", "ok", "CREATE TABLE kept (a integer);", "DROP TABLE kept;")
    failing = project.migrations_dir / "2_fails.sql"
    failing.write_text(FAILING, encoding="utf-8")
    assert FAILING.split("\n")[16].strip().startswith("INSERT INTO missing_table")
    with pytest.raises(MigrationError) as info:
        migrate.up(project.config())
    err = info.value
    assert err.location is not None
    assert err.location.file is not None and err.location.file.endswith("2_fails.sql")
    assert err.location.line == 17
    assert err.location.column == 17  # where "missing_table" starts on that line
    assert "missing_table" in err.message
    assert err.sqlstate == ("42P01" if project.dialect == "postgresql" else "SQLITE_ERROR")
    assert err.exit_code == 1
    assert str(err).startswith(f"{err.location.file}:17:17: ")
    # the failed migration left nothing; the earlier one stays
    assert project.tables() == {"kept"}
    assert project.applied() == ["1"]
    status = migrate.status(project.config())
    assert [(e.version, e.state) for e in status.entries] == [("1", "applied"), ("2", "pending")]
    assert status.current_version == "1" and not status.ok and status.problems == []


@pytest.mark.postgres
def test_syntax_error_column_points_at_the_bad_token(pg_project: Project) -> None:
    pg_project.pair("1", "typo", "CREATE TABLE t (a int);\nSELECT a\n  FORM t;")
    with pytest.raises(MigrationError) as info:
        migrate.up(pg_project.config())
    assert info.value.location is not None
    # "a FORM" reads as a column alias, so the server stops at "t"
    assert (info.value.location.line, info.value.location.column) == (3, 8)
    assert info.value.sqlstate == "42601"


def test_sqlite_syntax_error_column(sqlite_project: Project) -> None:
    sqlite_project.pair("1", "typo", "CREATE TABLE t (a int);\nSELECT a\n  FORM t;")
    with pytest.raises(MigrationError) as info:
        migrate.up(sqlite_project.config())
    assert info.value.location is not None
    assert (info.value.location.line, info.value.location.column) == (3, 8)  # near "t"


@pytest.mark.postgres
def test_error_raised_inside_a_do_block_names_the_file_line(pg_project: Project) -> None:
    pg_project.single("1", "do", "SELECT 1;\nDO $$\nBEGIN\n  PERFORM 1;\n  RAISE EXCEPTION 'boom';\nEND\n$$;")
    with pytest.raises(MigrationError) as info:
        migrate.up(pg_project.config())
    assert "boom" in info.value.message
    assert info.value.location is not None
    assert (info.value.location.line, info.value.location.column) == (6, 3)  # the RAISE line


def test_failing_down_keeps_the_migration_applied(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;\nDROP TABLE not_there;")
    migrate.up(project.config())
    with pytest.raises(MigrationError) as info:
        migrate.down(project.config())
    assert info.value.location is not None and info.value.location.line == 6
    assert project.applied() == ["1"] and project.tables() == {"a"}


# -- transactions ----------------------------------------------------------------------------------

@pytest.mark.postgres
def test_create_index_concurrently_without_transaction(pg_project: Project) -> None:
    pg_project.single("1", "t", "CREATE TABLE t (a int);\nINSERT INTO t SELECT generate_series(1, 1000);")
    pg_project.single("2", "idx", "CREATE INDEX CONCURRENTLY t_a ON t (a);", "DROP INDEX CONCURRENTLY t_a;",
                      transactional=False)
    pg_project.pair("3", "idx2", "CREATE UNIQUE INDEX CONCURRENTLY t_a2 ON t (a);", transactional=False)
    report = migrate.up(pg_project.config())
    assert [m.transactional for m in report.migrations] == [True, False, False]
    valid = pg_project.rows("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c "
                             "ON c.oid = i.indexrelid WHERE c.relname LIKE 't_a%' ORDER BY 1")
    assert valid == [("t_a", True), ("t_a2", True)]
    assert pg_project.rows("SELECT version, status, statements_done FROM schema_migrations "
                            "WHERE version = '2'") == [("2", "applied", 1)]


@pytest.mark.postgres
@pytest.mark.parametrize("layout", ["single", "pair"])
def test_concurrently_in_a_transactional_migration_is_refused_before_anything_runs(
        pg_project: Project, layout: str) -> None:
    pg_project.single("1", "t", "CREATE TABLE t (a int);")
    writer = pg_project.single if layout == "single" else pg_project.pair
    path = writer("2", "idx", "SELECT 1;\n\n  CREATE INDEX CONCURRENTLY t_a ON t (a);")
    with pytest.raises(MigrationFileError) as info:
        migrate.up(pg_project.config())
    err = info.value
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction" in err.message
    assert err.location is not None and err.location.file is not None
    assert err.location.file.endswith(path.name)
    assert (err.location.line, err.location.column) == ((4, 3) if layout == "single" else (3, 3))
    flag = "-- migrate:up transaction:false" if layout == "single" else "-- seedkit: transaction=false"
    assert err.hint is not None and flag in err.hint
    assert pg_project.tables() == set()  # not even migration 1 ran
    assert pg_project.history() == []


def test_sqlite_statements_that_need_no_transaction(sqlite_project: Project) -> None:
    sqlite_project.single("1", "t", "CREATE TABLE t (a integer);")
    sqlite_project.single("2", "vacuum", "VACUUM;")
    with pytest.raises(MigrationFileError, match="VACUUM cannot run inside a transaction"):
        migrate.up(sqlite_project.config())
    assert sqlite_project.tables() == set()
    sqlite_project.single("2", "vacuum", "VACUUM;", transactional=False)
    migrate.up(sqlite_project.config())
    assert sqlite_project.applied() == ["1", "2"]


def test_sqlite_foreign_keys_off_rebuild_pattern(sqlite_project: Project) -> None:
    """The 12-step table rebuild needs PRAGMA foreign_keys outside a transaction."""
    sqlite_project.single("1", "t", "CREATE TABLE p (id INTEGER PRIMARY KEY);\n"
                                    "CREATE TABLE c (id INTEGER PRIMARY KEY,\n"
                                    "                p_id INTEGER REFERENCES p (id));\n"
                                    "INSERT INTO p VALUES (1);\nINSERT INTO c VALUES (1, 1);")
    sqlite_project.single("2", "rebuild", "PRAGMA foreign_keys = OFF;\n"
                                          "CREATE TABLE p_new (id INTEGER PRIMARY KEY, label TEXT);\n"
                                          "INSERT INTO p_new (id) SELECT id FROM p;\n"
                                          "DROP TABLE p;\nALTER TABLE p_new RENAME TO p;\n"
                                          "PRAGMA foreign_keys = ON;", transactional=False)
    migrate.up(sqlite_project.config())
    assert sqlite_project.rows("SELECT id, p_id FROM c") == [(1, 1)]
    assert sqlite_project.applied() == ["1", "2"]


@pytest.mark.postgres
def test_search_path_changes_do_not_move_the_history(pg_project: Project) -> None:
    pg_project.single("1", "schema",
                      "CREATE SCHEMA other;\nSET search_path TO other;\nCREATE TABLE o (a int);")
    pg_project.single("2", "more", "CREATE TABLE public.p (a int);")
    migrate.up(pg_project.config())
    assert pg_project.rows("SELECT version FROM public.schema_migrations ORDER BY 1") == [("1",), ("2",)]
    assert pg_project.rows("SELECT to_regclass('other.schema_migrations')") == [(None,)]


# -- validation ------------------------------------------------------------------------------------

def test_edited_migration_is_drift(project: Project) -> None:
    path = project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")
    project.single("2", "b", "CREATE TABLE b (x integer);", "DROP TABLE b;")
    migrate.up(project.config(), to="1")
    path.write_text(path.read_text().replace("integer", "bigint"), encoding="utf-8")
    with pytest.raises(DriftError) as info:
        migrate.up(project.config())
    assert info.value.exit_code == 3
    assert info.value.location is not None and info.value.location.file is not None
    assert info.value.location.file.endswith("1_a.sql")
    assert "changed after it was applied" in info.value.message
    assert info.value.hint is not None and "new migration" in info.value.hint
    assert project.tables() == {"a"}  # migration 2 was not applied
    status = migrate.status(project.config())
    assert [(e.version, e.state) for e in status.entries] == [("1", "changed"), ("2", "pending")]
    assert [p.kind for p in migrate.verify(project.config()).problems] == ["changed"]
    with pytest.raises(DriftError):
        migrate.down(project.config())


def test_crlf_checkout_is_not_drift(project: Project) -> None:
    path = project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")
    migrate.up(project.config())
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert migrate.verify(project.config()).ok
    assert migrate.status(project.config()).ok


def test_deleted_migration_is_drift(project: Project) -> None:
    path = project.single("1", "a", "CREATE TABLE a (x integer);")
    project.single("2", "b", "CREATE TABLE b (x integer);")
    migrate.up(project.config())
    path.unlink()
    project.single("3", "c", "CREATE TABLE c (x integer);")
    with pytest.raises(DriftError, match="its file is gone"):
        migrate.up(project.config())
    status = migrate.status(project.config())
    assert [(e.version, e.state) for e in status.entries] == [
        ("1", "missing"), ("2", "applied"), ("3", "pending")]
    assert [p.kind for p in migrate.verify(project.config()).problems] == ["missing"]
    with pytest.raises(DriftError, match="its file is gone"):  # --allow-out-of-order does not excuse it
        migrate.up(project.config(), allow_out_of_order=True)


def test_out_of_order_migration_needs_the_flag(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);")
    project.single("3", "c", "CREATE TABLE c (x integer);")
    migrate.up(project.config())
    path = project.single("2", "b", "CREATE TABLE b (x integer);")
    with pytest.raises(DriftError, match="older than the newest applied") as info:
        migrate.up(project.config())
    assert info.value.location is not None and info.value.location.file.endswith(path.name)  # type: ignore[union-attr]
    assert "--allow-out-of-order" in (info.value.hint or "")
    assert [p.kind for p in migrate.verify(project.config()).problems] == ["out_of_order"]
    assert migrate.verify(project.config(), allow_out_of_order=True).ok
    report = migrate.up(project.config(), allow_out_of_order=True)
    assert [m.version for m in report.migrations] == ["2"] and report.version_after == "3"
    assert migrate.status(project.config()).ok


def test_several_problems_are_reported_together(project: Project) -> None:
    a = project.single("1", "a", "CREATE TABLE a (x integer);")
    b = project.single("2", "b", "CREATE TABLE b (x integer);")
    project.single("4", "d", "CREATE TABLE d (x integer);")
    migrate.up(project.config())
    a.write_text(a.read_text() + "-- edited\n", encoding="utf-8")
    b.unlink()
    project.single("3", "c", "CREATE TABLE c (x integer);")
    with pytest.raises(DriftError) as info:
        migrate.up(project.config())
    message = str(info.value)
    assert "3 problems" in message and "1_a.sql" in message and "3_c.sql" in message and "2_b" in message


# -- non-transactional failures and resolve ---------------------------------------------------------

NON_TX = "CREATE TABLE x (a integer);\nINSERT INTO x VALUES (1);\nINSERT INTO nope VALUES (1);\n" \
         "CREATE TABLE y (a integer);"


@pytest.mark.parametrize("decision", ["rolled-back", "applied"])
def test_failed_non_transactional_migration_blocks_until_resolved(project: Project, decision: str) -> None:
    project.single("1", "ok", "CREATE TABLE ok (a integer);")
    path = project.single("2", "half", NON_TX, transactional=False)
    project.single("3", "later", "CREATE TABLE later (a integer);")
    with pytest.raises(MigrationError) as info:
        migrate.up(project.config())
    err = info.value
    assert err.location is not None and (err.location.line, err.location.column) == (4, 13)
    assert err.hint is not None and "resolve 2" in err.hint and "2 of 4" in err.hint
    # the statements before the failure stay done, and the failure is recorded
    assert project.tables() == {"ok", "x"}
    assert project.rows("SELECT status, statements_done FROM schema_migrations WHERE version = '2'") == [
        ("failed", 2)]
    with pytest.raises(DriftError, match="failed after 2 statement") as blocked:
        migrate.up(project.config())
    assert "resolve" in (blocked.value.hint or "")
    assert [e.state for e in migrate.status(project.config()).entries] == ["applied", "failed", "pending"]
    assert not migrate.verify(project.config()).ok

    if decision == "rolled-back":
        with connect(project.url) as db:
            db.execute("DROP TABLE IF EXISTS x")
        path.write_text(path.read_text().replace("nope", "x"), encoding="utf-8")  # the fix
        report = migrate.resolve(project.config(), "2", applied=False)
        assert (report.decision, report.previous_status, report.statements_done) == (
            "rolled-back", "failed", 2)
        assert migrate.status(project.config()).entries[1].state == "pending"
        migrate.up(project.config())
        assert project.rows("SELECT count(*) FROM x") == [(2,)]
    else:
        with connect(project.url) as db:  # finish it by hand
            db.execute("CREATE TABLE y (a integer)")
        report = migrate.resolve(project.config(), "2", applied=True)
        assert report.decision == "applied"
        migrate.up(project.config())
    assert project.applied() == ["1", "2", "3"]
    assert {"x", "y", "later"} <= project.tables()
    actions = project.rows("SELECT version, action FROM schema_migrations_log "
                            "WHERE version = '2' ORDER BY id")
    assert actions[:2] == [("2", "failed"), ("2", f"resolved {decision}")]
    with pytest.raises(UsageError, match="no failed migration"):
        migrate.resolve(project.config(), "2", applied=True)


# -- landing on versions ---------------------------------------------------------------------------

def test_up_to_and_down_steps_land_exactly(project: Project) -> None:
    for n in range(1, 6):
        project.single(f"{n:03d}", f"t{n}", f"CREATE TABLE t{n} (a integer);", f"DROP TABLE t{n};")
    assert migrate.up(project.config(), to="003").version_after == "003"
    assert project.applied() == ["001", "002", "003"] and project.tables() == {"t1", "t2", "t3"}
    assert migrate.up(project.config(), to=3).migrations == []
    assert migrate.up(project.config()).version_after == "005"
    report = migrate.down(project.config(), steps=2)
    assert [m.version for m in report.migrations] == ["005", "004"] and report.version_after == "003"
    assert project.applied() == ["001", "002", "003"] and project.tables() == {"t1", "t2", "t3"}
    assert migrate.down(project.config()).version_after == "002"
    assert migrate.down(project.config(), to="001").version_after == "001"
    assert project.tables() == {"t1"}
    with pytest.raises(UsageError, match="no migration with version 9"):
        migrate.up(project.config(), to="9")
    with pytest.raises(UsageError, match="not applied"):
        migrate.down(project.config(), to="004")
    with pytest.raises(UsageError, match="either --steps or --to"):
        migrate.down(project.config(), steps=1, to="1")


def test_down_without_down_section_is_refused_before_anything_runs(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")
    project.pair("2", "b", "CREATE TABLE b (x integer);")
    migrate.up(project.config())
    with pytest.raises(MigrationFileError, match="no down section") as info:
        migrate.down(project.config(), steps=2)
    assert info.value.location is not None and info.value.location.file.endswith("2_b.up.sql")  # type: ignore[union-attr]
    assert project.applied() == ["1", "2"]


def test_down_is_refused_on_protected_environments(project: Project) -> None:
    project.single("1", "a", "CREATE TABLE a (x integer);", "DROP TABLE a;")
    migrate.up(project.config(), env="production")
    with pytest.raises(RefusedError, match="protected") as info:
        migrate.down(project.config(), env="production")
    assert info.value.exit_code == 4
    assert project.applied() == ["1"]


# -- locking ---------------------------------------------------------------------------------------

@pytest.mark.postgres
def test_postgres_lock_timeout_names_the_holder(pg_project: Project) -> None:
    pg_project.single("1", "a", "CREATE TABLE a (x integer);")
    holder = psycopg.connect(pg_project.url, autocommit=True, application_name="the-other-deploy")
    try:
        key = lock_key("public.schema_migrations")
        holder.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_CLASS, key])
        pid = holder.info.backend_pid
        started = time.monotonic()
        with pytest.raises(LockTimeout) as info:
            migrate.up(pg_project.config(), lock_timeout=0.5)
        assert 0.4 < time.monotonic() - started < 5
        assert f"pid {pid}" in info.value.message and "the-other-deploy" in info.value.message
        assert info.value.exit_code == 4
        assert pg_project.tables() == set()
        # released: the run goes through, even while someone waits
        threading.Timer(0.5, lambda: holder.execute("SELECT pg_advisory_unlock_all()")).start()
        assert [m.version for m in migrate.up(pg_project.config(), lock_timeout=10).migrations] == ["1"]
    finally:
        holder.close()


def test_sqlite_lock_timeout(sqlite_project: Project) -> None:
    sqlite_project.single("1", "a", "CREATE TABLE a (x integer);")
    assert sqlite_project.url.startswith("sqlite:///")
    other = sqlite3.connect(sqlite_project.url[len("sqlite:///"):], isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(LockTimeout, match="write lock"):
            migrate.up(sqlite_project.config(), lock_timeout=0.3)
        other.execute("COMMIT")
        assert len(migrate.up(sqlite_project.config(), lock_timeout=1).migrations) == 1
    finally:
        other.close()


def test_history_table_that_is_not_ours_is_refused(project: Project) -> None:
    with connect(project.url) as db:
        db.execute("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)")
    project.single("1", "a", "CREATE TABLE a (x integer);")
    with pytest.raises(Exception, match="not a seedkit history table"):
        migrate.up(project.config())


def test_read_only_commands_do_not_create_a_sqlite_file(sqlite_project: Project) -> None:
    sqlite_project.single("1", "a", "CREATE TABLE a (x integer);")
    path = Path(sqlite_project.url[len("sqlite:///"):])
    assert not path.exists()
    for check in (migrate.status, migrate.verify):
        with pytest.raises(Exception, match="does not exist"):
            check(sqlite_project.config())
    assert not path.exists()
    migrate.up(sqlite_project.config())
    assert path.exists() and migrate.status(sqlite_project.config()).ok


@pytest.mark.postgres
def test_syntax_error_inside_a_plpgsql_body_points_into_the_body(pg_project: Project) -> None:
    pg_project.single("1", "fn", "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n"
                                 "  RETURN 1 +;\nEND\n$$;")
    with pytest.raises(MigrationError) as info:
        migrate.up(pg_project.config())
    assert info.value.location is not None
    assert (info.value.location.line, info.value.location.column) == (4, 13)
