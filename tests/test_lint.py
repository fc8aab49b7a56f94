"""``seedkit migrate lint``: every rule fires on its unsafe form (rule, line, column) and stays quiet on
the safe form; suppressions, DO blocks, positions, layouts, SQLite, ``--json`` and the CLI.

The corpus of realistic migrations and the comparison with squawk live in test_lint_corpus.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from seedkit.cli import app
from seedkit.config import load_config
from seedkit.lint import (
    JSON_SCHEMA,
    RULES,
    Finding,
    SchemaState,
    file_dialect,
    lint_paths,
    lint_section,
    lint_sql,
)
from tests.support import offline_postgres_folder

REPO = Path(__file__).resolve().parent.parent


def lint(sql: str, *, transactional: bool = True, schema: SchemaState | None = None,
         line_offset: int = 0) -> list[Finding]:
    return lint_sql(textwrap.dedent(sql).lstrip("\n"), path="m.sql", transactional=transactional,
                    line_offset=line_offset, schema=schema)


def found(findings: list[Finding]) -> list[tuple[str, int, int]]:
    return [(f.rule, f.line, f.column) for f in findings]


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


# -- each rule: the unsafe form (rule id, line, column) ------------------------------------------------

UNSAFE = [
    ("index-not-concurrent", "SELECT 1;\nCREATE INDEX users_email_idx ON users (email);", (2, 1)),
    ("index-not-concurrent", "CREATE UNIQUE INDEX IF NOT EXISTS u ON app.users (lower(email));", (1, 1)),
    ("index-not-concurrent", "REINDEX TABLE users;", (1, 1)),
    ("concurrently-in-transaction", "CREATE INDEX CONCURRENTLY i ON users (email);", (1, 1)),
    ("concurrently-in-transaction", "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY i ON t (a);", (2, 1)),
    ("concurrently-in-transaction", "DROP INDEX CONCURRENTLY users_email_idx;", (1, 1)),
    ("concurrently-in-transaction", "REINDEX INDEX CONCURRENTLY users_email_idx;", (1, 1)),
    ("concurrently-in-transaction", "ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;", (1, 20)),
    ("non-transactional-statement", "VACUUM ANALYZE users;", (1, 1)),
    ("non-transactional-statement", "CREATE DATABASE reports;", (1, 1)),
    ("non-transactional-statement", "ALTER SYSTEM SET work_mem = '64MB';", (1, 1)),
    ("transaction-control", "BEGIN;\nALTER TABLE users ADD COLUMN a int;\nCOMMIT;", (1, 1)),
    ("constraint-not-valid",
     "ALTER TABLE orders ADD CONSTRAINT o_user_fk FOREIGN KEY (user_id) REFERENCES users (id);", (1, 20)),
    ("constraint-not-valid", "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0);", (1, 20)),
    ("constraint-not-valid", "ALTER TABLE orders ADD COLUMN user_id bigint REFERENCES users (id);", (1, 20)),
    ("constraint-not-valid", "ALTER TABLE orders ADD COLUMN qty int CHECK (qty > 0);", (1, 20)),
    ("validate-same-migration",
     "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n"
     "ALTER TABLE orders VALIDATE CONSTRAINT fk;", (2, 20)),
    ("set-not-null", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;", (1, 19)),
    ("column-type-change", "ALTER TABLE users ALTER COLUMN id TYPE bigint;", (1, 19)),
    ("column-type-change", "ALTER TABLE users ALTER COLUMN email TYPE text USING email::text;", (1, 19)),
    ("volatile-default", "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", (1, 19)),
    ("volatile-default", "ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT clock_timestamp();", (1, 19)),
    ("volatile-default", "ALTER TABLE users ADD COLUMN n int DEFAULT (random() * 10)::int;", (1, 19)),
    ("volatile-default", "ALTER TABLE users ADD COLUMN code text DEFAULT make_code();", (1, 19)),
    ("volatile-default", "ALTER TABLE users ADD COLUMN seq bigserial;", (1, 19)),
    ("volatile-default", "ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;", (1, 19)),
    ("volatile-default", "ALTER TABLE users ADD COLUMN l int GENERATED ALWAYS AS (a + 1) STORED;", (1, 19)),
    ("add-required-column", "ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;", (1, 19)),
    ("add-unique-without-index", "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);", (1, 19)),
    ("add-unique-without-index", "ALTER TABLE users ADD PRIMARY KEY (id);", (1, 19)),
    ("add-unique-without-index", "ALTER TABLE users ADD COLUMN handle text UNIQUE;", (1, 19)),
    ("backfill-in-migration", "UPDATE users SET active = true;", (1, 1)),
    ("backfill-in-migration", "DELETE FROM sessions WHERE expires_at < now();", (1, 1)),
    ("backfill-in-migration", "INSERT INTO user_emails (user_id, email) SELECT id, email FROM users;",
     (1, 1)),
    ("backfill-in-migration",
     "MERGE INTO totals t USING orders o ON t.id = o.id WHEN MATCHED THEN UPDATE SET n = t.n + 1;", (1, 1)),
    ("seed-data-in-migration", "INSERT INTO plans (name) VALUES ('free'), ('pro');", (1, 1)),
    ("seed-data-in-migration", "INSERT INTO plans (name) SELECT 'free' UNION ALL SELECT 'pro';", (1, 1)),
    ("seed-data-in-migration", "INSERT INTO counters DEFAULT VALUES;", (1, 1)),
    ("drop-table", "DROP TABLE IF EXISTS legacy_sessions;", (1, 1)),
    ("drop-column", "ALTER TABLE users DROP COLUMN legacy;", (1, 19)),
    ("rename-table", "ALTER TABLE users RENAME TO accounts;", (1, 1)),
    ("rename-column", "ALTER TABLE users RENAME COLUMN name TO full_name;", (1, 1)),
    ("drop-index-not-concurrent", "DROP INDEX users_email_idx;", (1, 1)),
]


@pytest.mark.parametrize(("rule", "sql", "where"), UNSAFE, ids=[f"{u[0]}-{i}" for i, u in enumerate(UNSAFE)])
def test_unsafe_form_is_reported_at_its_position(rule: str, sql: str, where: tuple[int, int]) -> None:
    findings = lint(sql)
    assert (rule, *where) in found(findings), found(findings)
    finding = next(f for f in findings if f.rule == rule)
    assert finding.level == RULES[rule].level
    assert finding.hint  # a one-line fix
    assert "\n" not in finding.message and "\n" not in finding.hint


def test_every_statement_rule_has_an_unsafe_case() -> None:
    meta = {"syntax-error", "nolint-missing-reason", "nolint-unknown-rule", "nolint-unused"}
    down = {"down-syntax-error"}  # down sections are only parsed: test_lint_down.py
    assert {u[0] for u in UNSAFE} == set(RULES) - meta - down


# -- each rule: the safe form is not reported ---------------------------------------------------------

SAFE = [
    # CONCURRENTLY in a migration that runs outside a transaction
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON users (email);", False),
    ("DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;", False),
    ("REINDEX INDEX CONCURRENTLY users_email_idx;", False),
    ("ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;", False),
    ("VACUUM ANALYZE users;", False),
    ("BEGIN;\nALTER TABLE users ADD COLUMN a int;\nCOMMIT;", False),  # managing its own transaction
    ("ANALYZE users;", True),
    # a table created in the same migration is new and empty: nothing can lock anyone out
    ("CREATE TABLE t (id bigint PRIMARY KEY, user_id bigint, n int, s text);\n"
     "CREATE INDEX t_user_idx ON t (user_id);\n"
     "ALTER TABLE t ADD CONSTRAINT t_user_fk FOREIGN KEY (user_id) REFERENCES users (id);\n"
     "ALTER TABLE t ADD CONSTRAINT t_n CHECK (n > 0);\n"
     "ALTER TABLE t ALTER COLUMN s SET NOT NULL;\n"
     "ALTER TABLE t ALTER COLUMN n TYPE bigint;\n"
     "ALTER TABLE t ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();\n"
     "ALTER TABLE t ADD CONSTRAINT t_s_key UNIQUE (s);\n"
     "UPDATE t SET n = 1;\n"
     "ALTER TABLE t DROP COLUMN n;\n"
     "ALTER TABLE t RENAME COLUMN s TO label;\n"
     "DROP INDEX t_user_idx;", True),
    ("CREATE TABLE public.t (a int);\nCREATE INDEX ON t (a);", True),  # schema-qualified once, not twice
    ("CREATE TABLE t_new (a int);\nALTER TABLE t_new RENAME TO t;\nCREATE INDEX ON t (a);", True),
    ("CREATE TABLE t AS SELECT id FROM users;\nCREATE INDEX ON t (id);", True),
    ("SELECT id INTO t FROM users;\nCREATE INDEX ON t (id);", True),
    ("CREATE MATERIALIZED VIEW mv AS SELECT id FROM users;\nCREATE UNIQUE INDEX ON mv (id);", True),
    ("CREATE TEMP TABLE ids (id bigint);\nINSERT INTO ids SELECT id FROM users;\nUPDATE ids SET id = 1;",
     True),
    ("CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');\n"
     "CREATE INDEX ON events_2025 (user_id);", True),
    # ON ONLY a parent creates an invalid index and touches no partition
    ("CREATE INDEX events_user_idx ON ONLY events (user_id);", True),
    # NOT VALID, then VALIDATE in a later migration (this file)
    ("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;", True),
    ("ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0) NOT VALID;", True),
    ("ALTER TABLE orders VALIDATE CONSTRAINT fk;", True),
    # each statement commits on its own outside a transaction: the add's lock is gone before VALIDATE
    ("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n"
     "ALTER TABLE orders VALIDATE CONSTRAINT fk;", False),
    # constant or stable defaults are catalog-only since PostgreSQL 11
    ("ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;", True),
    ("ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();", True),
    ("ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT CURRENT_TIMESTAMP;", True),
    ("ALTER TABLE users ADD COLUMN prefs jsonb NOT NULL DEFAULT '{}'::jsonb;", True),
    ("ALTER TABLE users ADD COLUMN tags text[] NOT NULL DEFAULT ARRAY[]::text[];", True),
    ("ALTER TABLE users ADD COLUMN note text;", True),
    ("ALTER TABLE users ALTER COLUMN status SET DEFAULT 'active';", True),
    ("ALTER TABLE users ALTER COLUMN email DROP NOT NULL;", True),
    # UNIQUE from an index built concurrently earlier
    ("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;", True),
    ("ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX users_id_idx;", True),
    # plain DDL that takes brief locks only
    ("CREATE EXTENSION IF NOT EXISTS pgcrypto;\nCREATE TYPE mood AS ENUM ('ok', 'sad');\n"
     "ALTER TYPE mood ADD VALUE 'happy';\nCREATE VIEW v AS SELECT 1 AS one;\n"
     "COMMENT ON TABLE users IS 'people';\nCREATE SCHEMA s;\nGRANT SELECT ON users TO PUBLIC;", True),
    # function bodies run later, not at migration time
    ("CREATE FUNCTION purge() RETURNS void LANGUAGE sql AS $$ DELETE FROM sessions $$;", True),
    ("CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  UPDATE counters SET n = n + 1;\n"
     "  RETURN NEW;\nEND $$;", True),
    ("SELECT count(*) FROM users;", True),
]


@pytest.mark.parametrize(("sql", "transactional"), SAFE, ids=[str(i) for i in range(len(SAFE))])
def test_safe_form_is_not_reported(sql: str, transactional: bool) -> None:
    assert found(lint(sql, transactional=transactional)) == []


# -- what the linter learns along the way ------------------------------------------------------------

def test_validate_in_the_next_migration_is_fine_but_in_the_same_one_is_not() -> None:
    add = "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;"
    validate = "ALTER TABLE orders VALIDATE CONSTRAINT fk;"
    schema = SchemaState()
    assert lint(add, schema=schema) == []
    assert lint(validate, schema=schema) == []
    same = lint(add + "\n-- then, in the same transaction:\n" + validate)
    assert found(same) == [("validate-same-migration", 3, 20)]
    assert "line 1" in same[0].message


def test_set_not_null_after_a_validated_check_is_fine() -> None:
    """The documented safe pattern: CHECK (col IS NOT NULL) NOT VALID; VALIDATE later; then SET NOT NULL
    (PostgreSQL 12+ proves NOT NULL from the validated check and skips the scan)."""
    schema = SchemaState()
    assert lint("ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;",
                schema=schema) == []
    # not validated yet: still a full scan
    assert rules(lint("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", schema=SchemaState())) == [
        "set-not-null"]
    probe = SchemaState(notnull_checks=dict(schema.notnull_checks))
    assert rules(lint("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", schema=probe)) == ["set-not-null"]
    assert lint("ALTER TABLE users VALIDATE CONSTRAINT email_nn;", schema=schema) == []
    assert lint("ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"
                "ALTER TABLE users DROP CONSTRAINT email_nn;", schema=schema) == []
    # another column is not covered by that check
    assert rules(lint("ALTER TABLE users ALTER COLUMN name SET NOT NULL;", schema=schema)) == ["set-not-null"]


@pytest.mark.parametrize(("old", "new", "rewrites"), [
    ("varchar(100)", "varchar(200)", False),
    ("varchar(100)", "text", False),
    ("varchar(100)", "varchar", False),
    ("text", "varchar", False),
    ("numeric(10,2)", "numeric(14,2)", False),
    ("numeric(10,2)", "numeric", False),
    ("cidr", "inet", False),
    ("varchar(200)", "varchar(100)", True),  # shrinking checks every row
    ("numeric(10,2)", "numeric(12,4)", True),  # a new scale rewrites
    ("integer", "bigint", True),
    ("text", "varchar(50)", True),
    ("text[]", "text", True),
])
def test_type_changes_that_do_not_rewrite_are_known(old: str, new: str, rewrites: bool) -> None:
    schema = SchemaState()
    assert lint(f"CREATE TABLE t (c {old});", schema=schema) == []
    findings = lint(f"ALTER TABLE t ALTER COLUMN c TYPE {new};", schema=schema)
    assert rules(findings) == (["column-type-change"] if rewrites else [])


def test_known_column_types_follow_renames_and_drops() -> None:
    schema = SchemaState()
    lint("CREATE TABLE t (c varchar(10));", schema=schema)
    lint("-- seedkit:nolint rename-table t is unused yet\nALTER TABLE t RENAME TO u;\n"
         "-- seedkit:nolint rename-column u is unused yet\nALTER TABLE u RENAME COLUMN c TO d;",
         schema=schema)
    assert lint("ALTER TABLE u ALTER COLUMN d TYPE varchar(20);", schema=schema) == []
    gone = lint("ALTER TABLE t ALTER COLUMN c TYPE varchar(20);", schema=schema)
    assert rules(gone) == ["column-type-change"]
    lint("-- seedkit:nolint drop-table replaced\nDROP TABLE u;\nCREATE TABLE u (d integer);", schema=schema)
    recreated = lint("ALTER TABLE u ALTER COLUMN d TYPE varchar(30);", schema=schema)
    assert rules(recreated) == ["column-type-change"]


def test_type_change_of_an_unknown_column_is_reported() -> None:
    assert rules(lint("ALTER TABLE users ALTER COLUMN email TYPE text;")) == ["column-type-change"]


def test_immutable_function_defaults_are_not_volatile() -> None:
    schema = SchemaState()
    sql = ("CREATE FUNCTION default_locale() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'en' $$;\n"
           "CREATE FUNCTION new_code() RETURNS text LANGUAGE sql AS $$ SELECT md5(random()::text) $$;\n"
           "ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT default_locale();\n"
           "ALTER TABLE users ADD COLUMN code text DEFAULT new_code();")
    findings = lint(sql, schema=schema)
    assert found(findings) == [("volatile-default", 4, 19)]
    assert "new_code()" in findings[0].message


def test_required_column_with_identity_is_a_rewrite_not_a_failure() -> None:
    findings = lint("ALTER TABLE users ADD COLUMN n bigint NOT NULL GENERATED ALWAYS AS IDENTITY;")
    assert rules(findings) == ["volatile-default"]
    assert rules(lint("ALTER TABLE users ADD COLUMN n int NOT NULL DEFAULT NULL;")) == ["add-required-column"]


def test_tables_created_in_an_earlier_migration_are_existing() -> None:
    schema = SchemaState()
    assert lint("CREATE TABLE t (a int);\nCREATE INDEX ON t (a);", schema=schema) == []
    assert rules(lint("CREATE INDEX ON t (a);", schema=schema)) == ["index-not-concurrent"]


def test_partitioned_parent_gets_the_partition_recipe() -> None:
    schema = SchemaState()
    lint("CREATE TABLE events (at timestamptz, user_id bigint) PARTITION BY RANGE (at);", schema=schema)
    findings = lint("CREATE INDEX events_user_idx ON events (user_id);", schema=schema)
    assert found(findings) == [("index-not-concurrent", 1, 1)]
    assert "partitioned" in findings[0].message and "ON ONLY" in findings[0].hint
    assert lint("CREATE INDEX events_user_idx ON ONLY events (user_id);", schema=schema) == []


def test_on_only_a_known_plain_table_still_builds_the_index() -> None:
    schema = SchemaState()
    lint("CREATE TABLE plain (a int);", schema=schema)
    assert rules(lint("CREATE INDEX ON ONLY plain (a);", schema=schema)) == ["index-not-concurrent"]


def test_reindex_of_a_new_table_is_fine() -> None:
    assert lint("CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nREINDEX TABLE t;") == []


def test_dropping_an_index_made_in_the_same_migration_is_fine() -> None:
    assert lint("CREATE INDEX CONCURRENTLY i ON users (a);\nDROP INDEX i;", transactional=False) == []


# -- positions ---------------------------------------------------------------------------------------

def test_multi_command_alter_table_points_at_each_command() -> None:
    sql = """
    ALTER TABLE users
        ADD COLUMN nickname text,
        ALTER COLUMN email SET NOT NULL,   -- two findings, two places
        ADD CONSTRAINT users_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
        DROP COLUMN legacy;
    """
    assert found(lint(sql)) == [("set-not-null", 3, 5), ("constraint-not-valid", 4, 5), ("drop-column", 5, 5)]


def test_columns_count_characters_and_lines_count_from_the_file() -> None:
    sql = "COMMENT ON TABLE users IS 'naïve café ☕'; CREATE INDEX i ON users (email);\n"
    assert found(lint(sql, line_offset=7)) == [("index-not-concurrent", 8, 43)]


def test_leading_comments_are_not_the_statement() -> None:
    sql = "SELECT 1;\n\n/* a block\n   comment */\n-- and a line comment\n   UPDATE users SET a = 1;"
    assert found(lint(sql)) == [("backfill-in-migration", 6, 4)]


def test_syntax_error_is_a_located_finding() -> None:
    findings = lint("CREATE TABLE ok (a int);\nALTER TABLE users ADD COLUMN;\n", line_offset=1)
    assert found(findings) == [("syntax-error", 3, 29)]
    assert "syntax error" in findings[0].message


def test_unterminated_string_is_a_syntax_error_not_a_crash() -> None:
    assert rules(lint("SELECT 'oops;\n")) == ["syntax-error"]


# -- DO blocks ----------------------------------------------------------------------------------------

def test_statements_inside_do_blocks_are_linted_where_they_are() -> None:
    sql = """
    DO $body$
    DECLARE r record;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'orders_user_fk') THEN
            ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
        END IF;
        FOR r IN SELECT id FROM users LOOP
            UPDATE orders SET owner = r.id WHERE user_id = r.id;
        END LOOP;
        EXECUTE 'DROP TABLE legacy';
        EXECUTE format('DROP TABLE %I', 'unknowable');
    END
    $body$;
    """
    assert found(lint(sql)) == [("constraint-not-valid", 5, 28), ("backfill-in-migration", 8, 9),
                                ("drop-table", 10, 14)]


def test_do_block_sees_tables_created_before_it() -> None:
    sql = ("CREATE TABLE t (a int);\n"
           "DO $$ BEGIN CREATE INDEX t_a ON t (a); UPDATE t SET a = 1; END $$;\n"
           "DO $$ BEGIN CREATE INDEX users_a ON users (a); END $$;")
    assert found(lint(sql)) == [("index-not-concurrent", 3, 13)]


def test_do_blocks_in_other_languages_are_left_alone() -> None:
    assert lint("DO LANGUAGE plpython3u $$ plpy.execute('UPDATE users SET a = 1') $$;") == []


# -- suppressions ------------------------------------------------------------------------------------

def test_nolint_directly_above_suppresses_that_rule_only() -> None:
    sql = """
    -- seedkit:nolint drop-column the app stopped reading it in v2.3
    ALTER TABLE users DROP COLUMN legacy, ALTER COLUMN email SET NOT NULL;
    """
    findings, suppressed = lint_section(textwrap.dedent(sql).lstrip(), path="m.sql", transactional=True)
    assert rules(findings) == ["set-not-null"]
    assert [(s.finding.rule, s.reason, s.line) for s in suppressed] == [
        ("drop-column", "the app stopped reading it in v2.3", 1)]


def test_nolint_on_the_statement_line_and_several_rules() -> None:
    sql = ("ALTER TABLE users DROP COLUMN a; -- seedkit:nolint drop-column unused since 2023\n"
           "-- seedkit:nolint drop-column,set-not-null: both agreed with the DBA (ticket OPS-12)\n"
           "ALTER TABLE users DROP COLUMN b, ALTER COLUMN c SET NOT NULL;")
    findings, suppressed = lint_section(sql, path="m.sql", transactional=True)
    assert findings == []
    assert [s.reason for s in suppressed] == ["unused since 2023", "both agreed with the DBA (ticket OPS-12)",
                                              "both agreed with the DBA (ticket OPS-12)"]


def test_nolint_in_a_comment_block_above_but_not_across_a_blank_line() -> None:
    sql = ("-- seedkit:nolint drop-table replaced by accounts in 2024-03\n"
           "-- (see the runbook)\n"
           "DROP TABLE users;\n"
           "-- seedkit:nolint drop-table too far away\n"
           "\n"
           "DROP TABLE sessions;\n")
    assert found(lint(sql)) == [("nolint-unused", 4, 1), ("drop-table", 6, 1)]


def test_nolint_without_a_reason_still_suppresses_but_is_an_error() -> None:
    findings = lint("-- seedkit:nolint drop-table\nDROP TABLE users;")
    assert found(findings) == [("nolint-missing-reason", 1, 1)]
    assert findings[0].level == "error"


def test_nolint_with_an_unknown_rule_is_an_error() -> None:
    findings = lint("-- seedkit:nolint drop-tables typo in the id\nDROP TABLE users;")
    assert rules(findings) == ["nolint-unknown-rule", "drop-table"]
    assert "drop-tables" in findings[0].message
    assert rules(lint("-- seedkit:nolint\nSELECT 1;")) == ["nolint-missing-reason", "nolint-unknown-rule"]


def test_nolint_for_another_rule_does_not_suppress() -> None:
    findings = lint("-- seedkit:nolint drop-column wrong rule named\nDROP TABLE users;")
    assert rules(findings) == ["nolint-unused", "drop-table"]


def test_nolint_inside_a_do_block() -> None:
    sql = ("DO $$\nBEGIN\n"
           "  -- seedkit:nolint backfill-in-migration the table has 12 rows\n"
           "  UPDATE plans SET active = true;\n"
           "END $$;")
    findings, suppressed = lint_section(sql, path="m.sql", transactional=True)
    assert findings == [] and [s.finding.rule for s in suppressed] == ["backfill-in-migration"]


def test_nolint_inside_a_string_is_not_a_directive() -> None:
    assert rules(lint("UPDATE users SET bio = '-- seedkit:nolint backfill-in-migration no';")) == [
        "backfill-in-migration"]


# -- files, layouts, dialects ------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (working directory) with a PostgreSQL configuration and three layouts."""
    offline_postgres_folder(tmp_path, monkeypatch)
    mig = tmp_path / "migrations"
    write(mig / "20240101000001_users.sql", """
        -- migrate:up
        CREATE TABLE users (id bigint PRIMARY KEY, email text);

        -- migrate:down
        DROP TABLE users;
    """)
    write(mig / "20240101000002_email_idx.up.sql", """
        -- seedkit: transaction=false
        CREATE INDEX CONCURRENTLY users_email_idx ON users (email);
        UPDATE users SET email = lower(email);
    """)
    write(mig / "20240101000002_email_idx.down.sql", "DROP INDEX users_email_idx;\n")
    write(mig / "2024-01-01-000003_name" / "up.sql", """
        ALTER TABLE users ADD COLUMN name text;
        CREATE INDEX users_name_idx ON users (name);
    """)
    return tmp_path


def test_lint_paths_reads_all_three_layouts_with_file_lines(project_dir: Path) -> None:
    report = lint_paths(config=load_config())
    assert [(r.path, r.version, r.transactional) for r in report.files] == [
        ("migrations/20240101000001_users.sql", "20240101000001", True),
        ("migrations/20240101000002_email_idx.up.sql", "20240101000002", False),
        ("migrations/2024-01-01-000003_name/up.sql", "20240101000003", True)]
    assert [(f.path, f.line, f.column, f.rule) for f in report.findings] == [
        ("migrations/20240101000002_email_idx.up.sql", 3, 1, "backfill-in-migration"),
        ("migrations/2024-01-01-000003_name/up.sql", 2, 1, "index-not-concurrent")]
    assert report.exit_code == 3 and report.errors == 2 and report.warnings == 0
    assert report.summary() == "3 migrations checked: 2 errors, 0 warnings"


def test_lint_paths_with_explicit_files(project_dir: Path) -> None:
    report = lint_paths([project_dir / "migrations" / "2024-01-01-000003_name"], config=load_config())
    assert [r.version for r in report.files] == ["20240101000003"]
    # linted alone, nothing says users exists... it is not created here, so it does exist
    assert [f.rule for f in report.findings] == ["index-not-concurrent"]


def test_sqlite_database_skips_every_file_with_a_note(project_dir: Path) -> None:
    (project_dir / "seedkit.toml").write_text('[database]\nurl = "sqlite:///app.db"\n')
    report = lint_paths(config=load_config())
    assert {r.status for r in report.files} == {"skipped"}
    assert all("SQLite" in (r.note or "") for r in report.files)
    assert report.findings == [] and report.exit_code == 0
    assert report.summary() == "3 migrations checked (3 skipped): 0 errors, 0 warnings"
    # an explicit dialect wins over the configuration
    assert lint_paths(config=load_config(), dialect="postgresql").errors == 2


def test_file_dialect_hint(project_dir: Path) -> None:
    write(project_dir / "migrations" / "20240101000004_cache.sql", """
        -- migrate:up
        -- seedkit: dialect=sqlite
        CREATE TABLE cache (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
        CREATE INDEX cache_v ON cache (v);
    """)
    report = lint_paths(config=load_config())
    assert report.files[-1].status == "skipped"
    assert not any(f.rule == "syntax-error" for f in report.findings)
    assert file_dialect("-- hello\n-- seedkit: dialect=postgresql\nSELECT 1;") == "postgresql"
    assert file_dialect("SELECT 1;\n-- seedkit: dialect=sqlite\n") is None  # only the opening comments


def test_no_database_configured_means_postgresql(project_dir: Path) -> None:
    (project_dir / "seedkit.toml").write_text('[database]\nurl = "${NOT_SET_ANYWHERE_42}"\n')
    assert lint_paths(config=load_config()).errors == 2


def test_report_json_validates_against_the_documented_schema(project_dir: Path) -> None:
    write(project_dir / "migrations" / "20240101000005_drop.sql", """
        -- migrate:up
        -- seedkit:nolint drop-column replaced by full_name
        ALTER TABLE users DROP COLUMN name;
    """)
    data = json.loads(lint_paths(config=load_config()).to_json())
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)
    jsonschema.validate(data, JSON_SCHEMA)
    assert data["summary"] == {"files": 4, "linted": 4, "skipped": 0, "errors": 2, "warnings": 0,
                               "suppressed": 1, "exit_code": 3}
    assert data["suppressed"][0]["reason"] == "replaced by full_name"
    assert data["suppressed"][0]["nolint_line"] == 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "findings": [{"rule": "no-such-rule"}]}, JSON_SCHEMA)


def test_json_schema_in_the_docs_is_the_one_in_the_code() -> None:
    text = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(?P<schema>\{\n  \"\$schema\".*?)\n```", text, re.S)
    assert block, "docs/lint.md shows the JSON schema"
    assert json.loads(block["schema"]) == JSON_SCHEMA


def test_docs_list_every_rule_with_its_level_doc_and_fix() -> None:
    text = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    for rule in RULES.values():
        section = re.search(rf"^### `{re.escape(rule.id)}`\n(?P<body>.*?)(?=^### |\Z)", text, re.S | re.M)
        assert section, f"docs/lint.md has no section for {rule.id}"
        body = section["body"]
        assert f"Level: **{rule.level}**" in body, rule.id
        assert rule.doc in body, rule.id
        assert rule.hint in body, rule.id


# -- the command line ---------------------------------------------------------------------------------

LINE = re.compile(r"^(?P<path>\S+):(?P<line>\d+):(?P<col>\d+) (?P<rule>[a-z-]+) (?P<level>error|warning) .+$")


def test_cli_prints_findings_hints_and_summary_and_exits_3(project_dir: Path) -> None:
    result = CliRunner().invoke(app, ["migrate", "lint"])
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "migrations/20240101000002_email_idx.up.sql:3:1 backfill-in-migration error ")
    assert LINE.match(lines[0]) and lines[1].startswith("    hint: ")
    assert lines[2].startswith("migrations/2024-01-01-000003_name/up.sql:2:1 index-not-concurrent error ")
    assert lines[-1] == "3 migrations checked: 2 errors, 0 warnings"
    assert "secret" not in result.output


def test_cli_exits_0_when_only_warnings_remain(project_dir: Path) -> None:
    write(project_dir / "migrations" / "20240101000005_drop.sql", """
        -- migrate:up
        ALTER TABLE users DROP COLUMN name;
    """)
    result = CliRunner().invoke(app, ["migrate", "lint", "migrations/20240101000005_drop.sql"])
    assert result.exit_code == 0, result.output
    assert " drop-column warning " in result.output
    assert result.output.splitlines()[-1] == "1 migration checked: 0 errors, 1 warning"
    strict = CliRunner().invoke(app, ["migrate", "lint", "--warnings-as-errors",
                                      "migrations/20240101000005_drop.sql"])
    assert strict.exit_code == 3, strict.output
    assert " drop-column error " in strict.output


def test_cli_json(project_dir: Path) -> None:
    result = CliRunner().invoke(app, ["migrate", "lint", "--json"])
    assert result.exit_code == 3
    data = json.loads(result.output)
    jsonschema.validate(data, JSON_SCHEMA)
    assert [f["rule"] for f in data["findings"]] == ["backfill-in-migration", "index-not-concurrent"]


def test_cli_notes_skipped_sqlite_files(project_dir: Path) -> None:
    result = CliRunner().invoke(app, ["migrate", "lint", "--dialect", "sqlite"])
    assert result.exit_code == 0
    assert "migrations/20240101000001_users.sql: note: SQLite migration: skipped" in result.output
    bad = CliRunner().invoke(app, ["migrate", "lint", "--dialect", "oracle"])
    assert bad.exit_code == 2


def test_cli_lists_rules(project_dir: Path) -> None:
    result = CliRunner().invoke(app, ["migrate", "lint", "--rules"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["RULE", "LEVEL", "DEFAULT", "WHAT", "IT", "FINDS"]
    listed = [line.split()[0] for line in lines[1:]]
    assert listed == list(RULES)


def test_cli_broken_migration_file_is_a_usage_error(project_dir: Path) -> None:
    write(project_dir / "migrations" / "20240101000009_bad.sql", "CREATE TABLE x (a int);\n")
    result = CliRunner().invoke(app, ["migrate", "lint"])
    assert result.exit_code == 2
    assert "migrate:up" in result.output


def test_cli_in_a_real_process(project_dir: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "seedkit", "migrate", "lint", "--json"], capture_output=True,
                          text=True, cwd=project_dir, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout)["summary"]["errors"] == 2


def _pending_project(project_dir: Path, url: str) -> None:
    (project_dir / "seedkit.toml").write_text(f'[database]\nurl = "{url}"\n')
    for p in (project_dir / "migrations").iterdir():
        if p.is_dir():
            for f in p.iterdir():
                f.unlink()
            p.rmdir()
        else:
            p.unlink()
    # SQL that runs on both databases
    write(project_dir / "migrations" / "20240101000001_users.sql", """
        -- migrate:up
        CREATE TABLE users (id integer PRIMARY KEY, email text);
        CREATE INDEX users_email_idx ON users (email);
    """)
    write(project_dir / "migrations" / "20240101000002_name.sql", """
        -- migrate:up
        ALTER TABLE users ADD COLUMN name text;
        CREATE INDEX users_name_idx ON users (name);
    """)


def test_cli_pending_reports_only_unapplied_migrations_sqlite(project_dir: Path) -> None:
    from seedkit import migrate

    _pending_project(project_dir, "sqlite:///app.db")
    migrate.up(load_config(), to="20240101000001")
    result = CliRunner().invoke(app, ["migrate", "lint", "--pending", "--dialect", "postgresql"])
    # users was created by an applied migration: it exists, so its new index needs CONCURRENTLY
    assert result.exit_code == 3, result.output
    assert result.output.splitlines()[0].startswith(
        "migrations/20240101000002_name.sql:3:1 index-not-concurrent error")
    assert result.output.splitlines()[-1] == "1 migration checked: 1 error, 0 warnings"
    everything = CliRunner().invoke(app, ["migrate", "lint", "--dialect", "postgresql"])
    assert everything.output.splitlines()[-1] == "2 migrations checked: 1 error, 0 warnings"


@pytest.mark.postgres
def test_cli_pending_reports_only_unapplied_migrations_postgresql(project_dir: Path, pg_url: str) -> None:
    from seedkit import migrate

    _pending_project(project_dir, pg_url)
    result = CliRunner().invoke(app, ["migrate", "lint", "--pending", "--json"])
    assert [f["path"] for f in json.loads(result.output)["files"]] == [
        "migrations/20240101000001_users.sql", "migrations/20240101000002_name.sql"]
    migrate.up(load_config(), to="20240101000001")
    result = CliRunner().invoke(app, ["migrate", "lint", "--pending", "--json"])
    data = json.loads(result.output)
    assert [f["path"] for f in data["files"]] == ["migrations/20240101000002_name.sql"]
    assert [(f["line"], f["rule"]) for f in data["findings"]] == [(3, "index-not-concurrent")]
    migrate.up(load_config())
    result = CliRunner().invoke(app, ["migrate", "lint", "--pending"])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "0 migrations checked: 0 errors, 0 warnings"


def test_lint_comments_on_the_first_line_of_a_pair_file(project_dir: Path) -> None:
    """The runner's first-line directive (transaction=false) and the linter's comments share a line."""
    write(project_dir / "migrations" / "20240101000004_drop.up.sql", """
        -- seedkit:nolint drop-table replaced by accounts in v2
        DROP TABLE legacy;
    """)
    write(project_dir / "migrations" / "20240101000005_cache.up.sql", """
        -- seedkit: dialect=sqlite
        CREATE TABLE cache (k TEXT PRIMARY KEY) WITHOUT ROWID;
    """)
    report = lint_paths(config=load_config())
    assert [s.finding.rule for s in report.suppressed] == ["drop-table"]
    assert report.files[-1].status == "skipped"
