"""On PostgreSQL a transactional migration is applied as one query with its history rows (the fast
path); any failure rolls it back and runs it again statement by statement (the plain path), which
locates the error in the file. These tests hold the fast path to the plain one: the same database
(catalog, data, history, audit log), the same output and report, the same error text, location and exit
code, over random histories with random failures; and they pin the shapes real histories showed."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import psycopg
import pytest

from seedkit.db.base import MigrationSession
from seedkit.db.catalog import TableName
from seedkit.db.postgres.migration import PostgresSession, touches_history
from seedkit.db.postgres.statements import Unremarkable, needs_no_transaction, split_postgres, split_postgres_quick
from seedkit.errors import MigrationError
from seedkit.migrate.runner import Runner
from tests.support import Project
from tests.support.pg import create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgres

# -- random histories ---------------------------------------------------------------------------------

def _ok_statements(rng: random.Random, i: int) -> list[str]:
    """Statements that succeed in migration ``i`` (tables t_<i>_*), in the shapes real files have."""
    t = f"t_{i}"
    pool = [
        f"CREATE TABLE {t}_a (id bigint PRIMARY KEY, name text NOT NULL DEFAULT 'a;b', note text)",
        f"-- a comment; with a semicolon\nINSERT INTO {t}_a (id, name) VALUES (1, 'one'), (2, $$two;$$)",
        f"CREATE INDEX {t}_a_name ON {t}_a (name)",
        f"COMMENT ON TABLE {t}_a IS 'table {i}; a comment'",
        f"CREATE VIEW {t}_v AS SELECT id, upper(name) AS name FROM {t}_a /* block; comment */",
        f"CREATE FUNCTION {t}_f(x int) RETURNS int LANGUAGE plpgsql AS $body$\nBEGIN\n  IF x > 0 THEN\n"
        f"    RETURN x + 1;\n  END IF;\n  RETURN 0;\nEND;\n$body$",
        "DO $$\nBEGIN\n  PERFORM 1;\nEND\n$$",
        f"ALTER TABLE {t}_a ADD COLUMN extra int",
        f"UPDATE {t}_a SET note = 'x' WHERE id = 1",
        f"CREATE TYPE {t}_mood AS ENUM ('sad', 'ok')",
        "SET LOCAL statement_timeout = '30s'",
    ]
    first, rest = pool[0], pool[1:]
    chosen = [s for s in rest if rng.random() < 0.5]
    return [first, *chosen]


_FAILURES = {
    "missing table": "INSERT INTO no_such_table VALUES (1)",
    "missing column": "SELECT no_such_column FROM pg_class",
    "syntax": "SELEC 1",
    "division": "SELECT 1 / (SELECT count(*) - count(*) FROM pg_class)",
    "in a DO block": "DO $$\nDECLARE n int;\nBEGIN\n  n := 1 / 0;\nEND\n$$",
    "duplicate key": "CREATE TABLE dup (id int PRIMARY KEY);\nINSERT INTO dup VALUES (1), (1)",
    "releases the lock": "SELECT pg_advisory_unlock_all()",
    "records itself": "INSERT INTO schema_migrations (version, name, checksum, status) VALUES ('{version}', "
                      "'x', 'another run', 'applied')",
    "a deferred constraint at commit":
        "CREATE TABLE deferred_p (id int PRIMARY KEY);\n"
        "CREATE TABLE deferred_c (p int REFERENCES deferred_p DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO deferred_c VALUES (7)",
    "CONCURRENTLY in a transaction": "CREATE INDEX CONCURRENTLY ON pg_class_x (a)",
    # supabase/postgres's history on a plain server: a role and an extension it expects are missing
    "missing role": "ALTER DEFAULT PRIVILEGES FOR ROLE no_such_admin GRANT ALL ON TABLES TO postgres",
    "missing extension": 'CREATE EXTENSION IF NOT EXISTS "no_such_extension" WITH SCHEMA public',
    # stopped by the server from outside the statement (as pg_cancel_backend or a lock timeout would):
    # the one query is not tried again statement by statement, where it would be stopped a second time
    "statement timeout": "SET LOCAL statement_timeout = '50ms';\nSELECT pg_sleep(0.5)",
    # the bundled parser (PostgreSQL 17's) accepts it, a server before 17 does not
    "newer syntax": "SELECT * FROM JSON_TABLE('[1]'::jsonb, '$[*]' COLUMNS (a int PATH '$')) AS j",
}


_KINDS = [*sorted(_FAILURES), "nothing", "nothing"]


def _history(rng: random.Random, project: Project, kind: str) -> None:
    """Write a random history in ``project`` in which ``kind`` (a key of _FAILURES) fails somewhere."""
    count = rng.randint(3, 8)
    failing = rng.randrange(count) if kind != "nothing" else None
    for i in range(1, count + 1):
        version = f"{20240101000000 + i}"
        statements = _ok_statements(rng, i)
        transactional = True
        if i - 1 == failing:
            bad = _FAILURES[kind].format(version=version)
            statements.insert(rng.randint(0, len(statements)), bad)
        elif rng.random() < 0.2:  # a non-transactional migration: one concurrent index build
            statements = [f"CREATE TABLE t_{i}_a (id int)", f"CREATE INDEX CONCURRENTLY t_{i}_c ON t_{i}_a (id)"]
            transactional = False
        sep = rng.choice([";\n", ";\n\n", "; ", ";\n-- between\n"])
        up = sep.join(statements) + rng.choice([";", ";\n", "", ";\n-- the end"])
        writer = rng.choice([project.single, project.pair, project.folder])
        writer(version, f"step_{i}", up, transactional=transactional)


def _state(url: str) -> dict[str, object]:
    """What a run leaves behind: the catalog of public, every table's rows, history and log."""
    with psycopg.connect(url, autocommit=True) as c:
        q = lambda text: [tuple(map(str, r)) for r in c.execute(text).fetchall()]  # noqa: E731
        state: dict[str, object] = {
            "relations": q("SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), obj_description(c.oid), "
                           "(SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || "
                           "coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum) "
                           " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND "
                           " d.adnum = a.attnum WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) "
                           "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE n.nspname = 'public' ORDER BY 1"),
            "indexes": q("SELECT i.indexrelid::regclass::text, i.indisvalid, pg_get_indexdef(i.indexrelid) "
                         "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n "
                         "ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1"),
            "functions": q("SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                           "WHERE n.nspname = 'public' ORDER BY 1"),
            "types": q("SELECT t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                       "WHERE n.nspname = 'public' AND t.typtype = 'e' ORDER BY 1"),
            "views": q("SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1"),
        }
        tables = [r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                          "ORDER BY 1").fetchall()]
        for table in tables:
            if table == "schema_migrations":
                state[table] = q("SELECT version, name, checksum, status, statements_done, error, "
                                 "applied_at IS NOT NULL FROM schema_migrations ORDER BY 1")
            elif table == "schema_migrations_log":
                state[table] = q("SELECT version, name, action, detail, by_whom FROM schema_migrations_log "
                                 "ORDER BY id")
            else:
                state[table] = q(f'SELECT * FROM "{table}" ORDER BY 1')
        return state


_MS = re.compile(r"\b\d+(\.\d+)? ms\b")


def _run(project: Project, url: str, monkeypatch: pytest.MonkeyPatch, *, one_query: bool,
         json_report: bool = False, outcomes: list[bool | None] | None = None) -> tuple[int, str, str]:
    with monkeypatch.context() as m:
        if not one_query:  # the plain path: the session cannot apply a migration as one query
            m.setattr(PostgresSession, "applied_in_one_query", MigrationSession.applied_in_one_query)
        elif outcomes is not None:  # what each one-query attempt did: applied (True), fell back (False),
            attempt = Runner._in_one_query  # or raised the located error (None)

            def spy(self: Runner, planned: object, run: object) -> bool:
                try:
                    done = attempt(self, planned, run)  # type: ignore[arg-type]
                except MigrationError:
                    outcomes.append(None)
                    raise
                if self._one_query_possible(planned):  # type: ignore[arg-type]
                    outcomes.append(done)
                return done

            m.setattr(Runner, "_in_one_query", spy)
        result = project.migrate("up", "--database", url, *(["--json"] if json_report else []))
    name = url.rsplit("/", 1)[1]
    same = lambda text: _MS.sub("N ms", text).replace(name, "DATABASE")  # noqa: E731
    return result.returncode, same(result.stdout), same(result.stderr)


@pytest.mark.parametrize("seed", range(2 * len(_KINDS)))
def test_one_query_and_statement_by_statement_leave_the_same_database_and_say_the_same(
        seed: int, tmp_path: Path, pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    kind = _KINDS[seed % len(_KINDS)]
    project = Project.with_migrations(tmp_path / "project", "postgresql://unused/x")
    _history(rng, project, kind)
    fast_url, plain_url = create_pg_database(pg_server), create_pg_database(pg_server)
    try:
        outcomes: list[bool | None] = []
        fast = _run(project, fast_url, monkeypatch, one_query=True, outcomes=outcomes)
        plain = _run(project, plain_url, monkeypatch, one_query=False)
        assert fast == plain, kind
        # the fast path did the work, and fell back exactly where the failure is
        if kind == "nothing":
            assert outcomes and all(outcomes), outcomes
        elif kind == "syntax":  # text the parser rejects runs statement by statement from the start
            assert all(outcomes), outcomes
        elif kind == "statement timeout":  # stopped from outside: located where it stopped, not run again
            assert outcomes[-1] is None and all(outcomes[:-1]), outcomes
        elif kind != "CONCURRENTLY in a transaction":  # refused before anything runs
            assert outcomes[-1] is False, (kind, outcomes)
            assert all(outcomes[:-1]), outcomes
        assert _state(fast_url) == _state(plain_url), kind
        if kind == "nothing":
            assert fast[0] == 0, fast
        else:
            assert fast[0] != 0, (kind, fast)
            if kind not in ("releases the lock", "records itself", "a deferred constraint at commit"):
                assert re.search(r"\.sql:\d+:\d+", fast[2]), (kind, fast[2])  # located: file:line:col
    finally:
        drop_pg_database(pg_server, fast_url)
        drop_pg_database(pg_server, plain_url)


def test_the_json_report_has_each_statement_of_a_one_query_migration(
        tmp_path: Path, pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project.with_migrations(tmp_path, "postgresql://unused/x")
    project.single("1", "a", "CREATE TABLE a (x int); -- first\n\nINSERT INTO a VALUES (1);\n"
                             "SELECT pg_sleep(0.3);\nCOMMENT ON TABLE a IS 'x;y'")
    fast_url, plain_url = create_pg_database(pg_server), create_pg_database(pg_server)
    try:
        fast = json.loads(_run(project, fast_url, monkeypatch, one_query=True, json_report=True)[1])
        plain = json.loads(_run(project, plain_url, monkeypatch, one_query=False, json_report=True)[1])
    finally:
        drop_pg_database(pg_server, fast_url)
        drop_pg_database(pg_server, plain_url)
    steps = fast["migrations"][0]["statements_run"]
    assert [(s["line"], s["column"], s["first_line"]) for s in steps] == \
        [(s["line"], s["column"], s["first_line"]) for s in plain["migrations"][0]["statements_run"]] == [
        (2, 1, "CREATE TABLE a (x int)"), (4, 1, "INSERT INTO a VALUES (1)"), (5, 1, "SELECT pg_sleep(0.3)"),
        (6, 1, "COMMENT ON TABLE a IS 'x;y'")]
    # each statement's result arrives when it ends (a notice flushes it): the sleep is the slow one
    assert steps[2]["execution_ms"] >= 250 and all(s["execution_ms"] < 200 for i, s in enumerate(steps) if i != 2)


# -- the quick split answers the runner's questions as the full one does ------------------------------

_HISTORY = TableName("public", "schema_migrations")
_LOG = TableName("public", "schema_migrations_log")
_REMARKABLE = [
    "BEGIN", "start transaction", "COMMIT", "end", "ROLLBACK", "abort", "SAVEPOINT a", "RELEASE a",
    "PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'", "VACUUM t", "vacuum", "REINDEX SYSTEM x",
    "REINDEX TABLE CONCURRENTLY t", "reindex database x", "CLUSTER", "CREATE INDEX CONCURRENTLY i ON t (a)",
    "DROP INDEX CONCURRENTLY i", "CREATE DATABASE x", "DROP DATABASE x", "CREATE TABLESPACE x LOCATION '/x'",
    "DROP TABLESPACE x", "ALTER SYSTEM SET work_mem = '1MB'", "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
    "DROP SUBSCRIPTION s", "ALTER TABLE t DETACH PARTITION p CONCURRENTLY", "DROP TABLE schema_migrations",
    "DROP TABLE IF EXISTS public.schema_migrations, x", "TRUNCATE schema_migrations_log",
    "ALTER TABLE schema_migrations RENAME TO old", "DELETE FROM public.schema_migrations",
    "DROP SCHEMA public CASCADE", 'DROP TABLE U&"schema\\005fmigrations"', 'DROP TABLE "schema_migrations"',
    "ALTER TABLE ONLY schema_migrations ADD COLUMN x int",
]


@pytest.mark.parametrize("text", _REMARKABLE)
def test_the_quick_split_parses_every_statement_the_runner_refuses(text: str) -> None:
    [full] = split_postgres(text)
    [quick] = split_postgres_quick(text, names=("schema_migrations", "schema_migrations_log"))
    assert (quick.sql, quick.offset, quick.line, quick.column) == (full.sql, full.offset, full.line, full.column)
    assert not isinstance(quick.node, Unremarkable)
    assert needs_no_transaction(quick, 110000) == needs_no_transaction(full, 110000)
    assert touches_history(quick, _HISTORY, _LOG) == touches_history(full, _HISTORY, _LOG)
    assert needs_no_transaction(full, 110000) or touches_history(full, _HISTORY, _LOG)


def _corpus_texts() -> list[tuple[str, str]]:
    here = Path(__file__).parent
    texts = [(str(p.relative_to(here)), p.read_text(encoding="utf-8"))
             for p in sorted((here / "lint_corpus").rglob("*.sql"))]
    rng = random.Random(5)
    texts += [(f"random {i}", ";\n".join(_ok_statements(rng, i) + [rng.choice(list(_FAILURES.values()))]))
              for i in range(40)]
    return texts


def test_the_quick_split_cuts_as_the_full_one_and_misses_nothing_the_runner_asks() -> None:
    """Over every SQL file of the lint corpus and random migrations: the same statements at the same
    places, and a statement left without its parse tree is one the full split's tree says the runner
    neither refuses in a transaction nor sees touching the history (on a server older than 12 too)."""
    checked = 0
    for name, text in _corpus_texts():
        for server in (150000, 110000):
            full = split_postgres(text, 3)
            quick = split_postgres_quick(text, 3, names=("schema_migrations", "schema_migrations_log"),
                                         server_version=server)
            assert [(s.sql, s.offset, s.line, s.column) for s in quick] == \
                [(s.sql, s.offset, s.line, s.column) for s in full], name
            for q, f in zip(quick, full):
                checked += 1
                if isinstance(q.node, Unremarkable):
                    assert needs_no_transaction(f, server) is None, (name, f.sql)
                    assert touches_history(f, _HISTORY, _LOG) is None, (name, f.sql)
                else:
                    assert needs_no_transaction(q, server) == needs_no_transaction(f, server), (name, q.sql)
                    assert touches_history(q, _HISTORY, _LOG) == touches_history(f, _HISTORY, _LOG)
    assert checked > 200


def test_a_migration_that_empties_search_path_does_not_misplace_the_history(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A session-level ``SET search_path`` in a migration stays set for the next ones: the history rows,
    the lock check and the timestamps of a one-query migration name everything by schema."""
    project = Project.with_migrations(tmp_path, "postgresql://unused/x")
    project.single("1", "a", "CREATE TABLE a (x int);\nSET search_path = ''")
    project.single("2", "b", "CREATE TABLE public.b (x int);\nINSERT INTO public.b VALUES (1)")
    outcomes: list[bool] = []
    code, out, err = _run(project, pg_url, monkeypatch, one_query=True, outcomes=outcomes)
    assert code == 0, err
    assert outcomes == [True, True]
    with psycopg.connect(pg_url) as c:
        assert c.execute("SELECT version, status FROM public.schema_migrations ORDER BY 1").fetchall() == [
            ("1", "applied"), ("2", "applied")]
        assert c.execute("SELECT count(*) FROM public.schema_migrations_log WHERE action = 'up'").fetchone() == (2,)
        assert c.execute("SELECT x FROM public.b").fetchall() == [(1,)]
