"""Statement splitting without a database: PostgreSQL (pglast) and SQLite (complete_statement)."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seedkit.migrate.split import line_col, needs_no_transaction, split

PG = """-- a comment; with a semicolon
CREATE TABLE t (a int, b text DEFAULT 'x;y');   /* block; /* nested; */ still comment */
INSERT INTO t VALUES (1, 'it''s; fine'), (2, E'esc\\'; aped');
DO $$
BEGIN
  PERFORM 1; -- inside the block
  RAISE NOTICE 'a;b';
END
$$;
CREATE FUNCTION f(x int) RETURNS int LANGUAGE plpgsql AS $body$
DECLARE y int;
BEGIN
  y := x + 1;
  RETURN y;
END;
$body$;
CREATE FUNCTION g() RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT 1;
  SELECT CASE WHEN true THEN 2 ELSE 3 END;
END;
SELECT 'trailing' -- no semicolon at the end
"""


def test_postgres_statements_and_positions() -> None:
    stmts = split(PG, "postgresql", line_offset=10)
    assert [s.keyword() for s in stmts] == ["CREATE", "INSERT", "DO", "CREATE", "CREATE", "SELECT"]
    assert [(s.line, s.column) for s in stmts] == [(11, 1), (12, 1), (13, 1), (19, 1), (26, 1), (31, 1)]
    assert stmts[0].sql == "CREATE TABLE t (a int, b text DEFAULT 'x;y')"
    assert stmts[2].sql.startswith("DO $$") and stmts[2].sql.endswith("$$")
    assert "RETURN y;\nEND;\n$body$" in stmts[3].sql
    assert stmts[4].sql.endswith("END")
    assert stmts[5].sql == "SELECT 'trailing' -- no semicolon at the end"
    assert all(s.node is not None for s in stmts)
    for s in stmts:  # the offset points at the statement's text in the section
        assert PG[s.offset:s.offset + len(s.sql)] == s.sql


def test_postgres_statements_on_one_line_get_their_own_columns() -> None:
    stmts = split("SELECT 1;  SELECT 'é;';\tSELECT 3", "postgresql")
    assert [(s.line, s.column) for s in stmts] == [(1, 1), (1, 12), (1, 25)]


def test_postgres_falls_back_to_the_lexer_on_syntax_the_parser_rejects() -> None:
    text = "CREATE TABLE t (a int);\nSELEC 'x;y' FROM t;\nCREATE FUNCTION g() RETURNS int LANGUAGE sql " \
           "BEGIN ATOMIC SELECT 1; SELECT 2; END;\nSELECT 4;"
    stmts = split(text, "postgresql")
    assert [s.sql.split()[0] for s in stmts] == ["CREATE", "SELEC", "CREATE", "SELECT"]
    assert stmts[1].line == 2 and stmts[1].node is None
    assert stmts[2].sql.endswith("SELECT 2; END")


def test_postgres_empty_and_comment_only_sections() -> None:
    assert split("", "postgresql") == []
    assert split("  -- nothing here\n/* or here */\n;;\n", "postgresql") == []


SQLITE = """-- comment; here
CREATE TABLE t (a TEXT, b INTEGER); /* x; y */ INSERT INTO t VALUES ('a;b', 1);
CREATE TRIGGER t_ai AFTER INSERT ON t
BEGIN
  UPDATE t SET b = b + 1 WHERE a = new.a;
  INSERT INTO t VALUES ('end;', 0);
END;
CREATE TRIGGER t2 AFTER DELETE ON t BEGIN SELECT CASE WHEN 1 THEN 'x' END; END;
SELECT 'last'
"""


def test_sqlite_statements_triggers_and_positions() -> None:
    stmts = split(SQLITE, "sqlite", line_offset=3)
    assert [(s.line, s.column) for s in stmts] == [(4, 1), (4, 48), (5, 1), (10, 1), (11, 1)]
    assert stmts[1].sql == "INSERT INTO t VALUES ('a;b', 1);"
    assert stmts[2].sql.startswith("CREATE TRIGGER t_ai") and stmts[2].sql.endswith("END;")
    assert stmts[3].sql.endswith("END; END;")
    assert all(sqlite3.complete_statement(s.sql) for s in stmts[:4])
    # and they really run, one at a time
    conn = sqlite3.connect(":memory:")
    for s in stmts:
        conn.execute(s.sql)


def test_line_col() -> None:
    text = "ab\ncd\n\nef"
    assert line_col(text, 0, 5) == (5, 1)
    assert line_col(text, 4, 5) == (6, 2)
    assert line_col(text, 7, 5) == (8, 1)


@pytest.mark.parametrize(("sql", "reason"), [
    ("CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY"),
    ("create unique index concurrently if not exists i on t (a)", "CREATE INDEX CONCURRENTLY"),
    ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
    ("REINDEX (VERBOSE) INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
    ("VACUUM ANALYZE t", "VACUUM"),
    ("CREATE DATABASE x", "CREATE DATABASE"),
    ("ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM"),
    ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", "DETACH PARTITION"),
    ("COMMIT", "transaction control"),
    ("BEGIN", "transaction control"),
    ("CREATE INDEX i ON t (a)", None),
    ("ANALYZE t", None),
    ("SELECT 'CONCURRENTLY'", None),
])
def test_postgres_statements_that_cannot_run_in_a_transaction(sql: str, reason: str | None) -> None:
    [stmt] = split(sql, "postgresql")
    got = needs_no_transaction(stmt, "postgresql", 150000)
    assert (got is None) if reason is None else (got is not None and reason in got)


def test_alter_type_add_value_only_refused_on_old_servers() -> None:
    [stmt] = split("ALTER TYPE mood ADD VALUE 'meh'", "postgresql")
    assert needs_no_transaction(stmt, "postgresql", 110000) is not None
    assert needs_no_transaction(stmt, "postgresql", 150000) is None


@pytest.mark.parametrize(("sql", "refused"), [
    ("VACUUM;", True), ("PRAGMA foreign_keys = OFF;", True), ("PRAGMA journal_mode=WAL;", True),
    ("ATTACH 'x.db' AS x;", True), ("BEGIN;", True), ("COMMIT;", True),
    ("PRAGMA foreign_keys;", False), ("PRAGMA user_version = 3;", False), ("CREATE TABLE t (a);", False),
])
def test_sqlite_statements_that_cannot_run_in_a_transaction(sql: str, refused: bool) -> None:
    [stmt] = split(sql, "sqlite")
    assert (needs_no_transaction(stmt, "sqlite") is not None) is refused


# A law: however statements full of semicolons in strings and comments are laid out, the splitter
# finds exactly them, at their own lines.
_literal = st.text(alphabet=st.sampled_from(list("ab;é '-/*$\n")), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_literal, st.booleans(), st.integers(0, 2)), min_size=1, max_size=6))
def test_split_finds_every_statement(parts: list[tuple[str, bool, int]]) -> None:
    pieces, expected = [], []
    line = 1
    for literal, comment, blank_lines in parts:
        quoted = "'" + literal.replace("'", "''") + "'"
        prefix = "\n" * blank_lines + ("-- c;o'm\n" if comment else "")
        line += prefix.count("\n")
        expected.append(line)
        stmt = f"SELECT {quoted} AS x;"
        pieces.append(prefix + stmt + "\n")
        line += stmt.count("\n") + 1
    text = "".join(pieces)
    for dialect in ("postgresql", "sqlite"):
        stmts = split(text, dialect)
        assert [s.line for s in stmts] == expected, dialect
        assert all(s.sql.startswith("SELECT '") for s in stmts)
