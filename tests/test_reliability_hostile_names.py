"""Hostile names: tables, columns and schemas named with spaces, quotes, semicolons, mixed case,
Unicode and reserved words seed correctly, twice, with references between them, on PostgreSQL and SQLite.

The names are chosen so that any SQL text built from them without quoting is either a syntax error (the
run fails) or does something else: the table ``x"; DROP TABLE victim; --`` would drop ``victim``. So a
passing run that leaves ``victim`` intact and every hostile table with exactly its rows shows that every
statement seedkit built on the paths exercised here quoted every name: loading (COPY and executemany),
staging, the merge's INSERT/UPDATE, reference joins, self-references (second pass), the prune ledger,
``--check``/``--dry-run --diff``, ``--only``, and the migration runner's history table.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests.support import Project, checksums, seedkit, write_files

INJECT = 'x"; DROP TABLE victim; --'  # a table name
SCHEMA = "My Schema; --"  # a schema name (PostgreSQL)
ITEMS = "Order Items"  # spaces, mixed case
GREEK = "Ταυτότητα"  # Unicode table name

PG_SCHEMA = f"""
CREATE TABLE victim (id int PRIMARY KEY, note text);
INSERT INTO victim VALUES (1, 'still here');
CREATE SCHEMA "{SCHEMA}";
CREATE TABLE "{SCHEMA}"."{ITEMS}" ("Item ID" int PRIMARY KEY, "select" text NOT NULL UNIQUE, "Ünïcødé ✓" text,
    "semi;colon" int, "CamelCase" text, "it's" text);
CREATE TABLE "user" ("from" serial PRIMARY KEY, "where" text NOT NULL UNIQUE,
    "order" int REFERENCES "{SCHEMA}"."{ITEMS}" ("Item ID"), "x'quote" text, "group" boolean);
CREATE TABLE "{GREEK}" ("κλειδί" text PRIMARY KEY, "user ref" int REFERENCES "user" ("from"),
    "self ref" text REFERENCES "{GREEK}" ("κλειδί"), "📝 note" text);
CREATE TABLE "{INJECT.replace('"', '""')}" (id int PRIMARY KEY, "na""me" text, "--comment" text);
"""
SQLITE_SCHEMA = f"""
CREATE TABLE victim (id INTEGER PRIMARY KEY, note TEXT);
INSERT INTO victim VALUES (1, 'still here');
CREATE TABLE "{ITEMS}" ("Item ID" INTEGER PRIMARY KEY, "select" TEXT NOT NULL UNIQUE, "Ünïcødé ✓" TEXT,
    "semi;colon" INTEGER, "CamelCase" TEXT, "it's" TEXT);
CREATE TABLE "user" ("from" INTEGER PRIMARY KEY, "where" TEXT NOT NULL UNIQUE,
    "order" INTEGER REFERENCES "{ITEMS}" ("Item ID"), "x'quote" TEXT, "group" BOOLEAN);
CREATE TABLE "{GREEK}" ("κλειδί" TEXT PRIMARY KEY, "user ref" INTEGER REFERENCES "user" ("from"),
    "self ref" TEXT REFERENCES "{GREEK}" ("κλειδί"), "📝 note" TEXT);
CREATE TABLE "{INJECT.replace('"', '""')}" (id INTEGER PRIMARY KEY, "na""me" TEXT, "--comment" TEXT);
"""


def yaml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def files(pg: bool, url: str) -> dict[str, str]:
    items = f"{SCHEMA}.{ITEMS}" if pg else ITEMS
    return {
        "seedkit.toml": f"""
            [database]
            url = "{url}"

            [migrations]
            table = {yaml_str('Migrations"; DROP TABLE victim; --')}

            [envs.dev]
            include = ["dev"]
        """,
        "seeds/dev/items.yaml": f"""
            table: {yaml_str(items)}
            key: ["select"]
            rows:
              - {{"Item ID": 1, "select": "drop table victim;", "Ünïcødé ✓": "ok ✓", "semi;colon": 1,
                 "CamelCase": "Camel", "it's": "it's"}}
              - {{"Item ID": 2, "select": "'; --", "Ünïcødé ✓": null, "semi;colon": 2, "CamelCase": "x\\"y",
                 "it's": "$$ $tag$"}}
        """,
        "seeds/dev/user.yaml": f"""
            table: user
            key: ["where"]
            prune: true
            rows:
              - "where": "1=1; --"
                "order": !ref {{table: {yaml_str(items)}, "select": "drop table victim;"}}
                "x'quote": "Robert'); DROP TABLE victim;--"
                "group": true
              - "where": "O'Brien"
                "order": !ref {{table: {yaml_str(items)}, "select": "'; --"}}
                "group": false
        """,
        "seeds/dev/greek.yaml": f"""
            table: {yaml_str(GREEK)}
            rows:
              - {{"κλειδί": "α", "user ref": !ref user/1=1; --, "self ref": !ref {GREEK}/β, "📝 note": "πρώτο"}}
              - {{"κλειδί": "β", "user ref": !ref user/O'Brien, "self ref": !ref {GREEK}/α, "📝 note": "δεύτερο"}}
        """,
        "seeds/dev/inject.py": f'''
            from seedkit import fixture

            TABLE = {INJECT!r}


            @fixture(TABLE, key=["id"])
            def rows(fake):
                for n in range(1, 501):
                    yield {{"id": n, 'na"me': f'Robert"); DROP TABLE victim;-- {{n}}', "--comment": "/* */ ;"}}
        ''',
        "migrations/001_hostile.sql": f"""
            -- migrate:up
            CREATE TABLE "{INJECT.replace('"', '""')} 2" ("a;b" int);

            -- migrate:down
            DROP TABLE "{INJECT.replace('"', '""')} 2";
        """,
    }


def tables(pg: bool) -> list[str | tuple[str, str]]:
    items: str | tuple[str, str] = (SCHEMA, ITEMS) if pg else ITEMS
    return ["victim", items, "user", GREEK, INJECT]


def rows(url: str, query: str) -> list[tuple]:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///"):])
        try:
            return [tuple(r) for r in conn.execute(query)]
        finally:
            conn.close()
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(query)]  # type: ignore[arg-type]


@pytest.fixture
def project(db_url: str, tmp_path: Path) -> Project:
    pg = db_url.startswith("postgresql")
    if pg:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(PG_SCHEMA)
    else:
        conn = sqlite3.connect(db_url[len("sqlite:///"):])
        conn.executescript(SQLITE_SCHEMA)
        conn.close()
    root = tmp_path / "proj"
    write_files(root, {k: textwrap.dedent(v) for k, v in files(pg, db_url).items()})
    return Project.bare(root, db_url)


def report(done) -> dict:
    assert done.returncode in (0, 3), done.stdout + done.stderr
    return json.loads(done.stdout)


def test_hostile_names_seed_twice_with_references_and_victim_survives(project: Project) -> None:
    root, url, pg = project.root, project.url, project.pg
    q_items = f'"{SCHEMA}"."{ITEMS}"' if pg else f'"{ITEMS}"'
    q_inject = '"' + INJECT.replace('"', '""') + '"'

    first = report(seedkit(root, "run", "dev", "--json"))
    assert first["totals"]["inserted"] == 2 + 2 + 2 + 500, first
    assert rows(url, "SELECT id, note FROM victim") == [(1, "still here")]
    assert rows(url, f'SELECT "Item ID", "select", "Ünïcødé ✓", "semi;colon", "CamelCase", "it\'s" FROM {q_items} '
                     'ORDER BY 1') == [(1, "drop table victim;", "ok ✓", 1, "Camel", "it's"),
                                       (2, "'; --", None, 2, 'x"y', "$$ $tag$")]
    assert rows(url, f'SELECT u."where", i."select", u."x\'quote" FROM "user" u JOIN {q_items} i '
                     'ON i."Item ID" = u."order" ORDER BY 1') == [
        ("1=1; --", "drop table victim;", "Robert'); DROP TABLE victim;--"), ("O'Brien", "'; --", None)]
    assert rows(url, f'SELECT g."κλειδί", u."where", s."κλειδί", g."📝 note" FROM "{GREEK}" g '
                     f'JOIN "user" u ON u."from" = g."user ref" JOIN "{GREEK}" s ON s."κλειδί" = g."self ref" '
                     'ORDER BY 1') == [("α", "1=1; --", "β", "πρώτο"), ("β", "O'Brien", "α", "δεύτερο")]
    assert rows(url, f'SELECT count(*), min("na""me"), max("--comment") FROM {q_inject}') == [
        (500, 'Robert"); DROP TABLE victim;-- 1', "/* */ ;")]

    sums = checksums(url, tables(pg))
    second = report(seedkit(root, "run", "dev", "--json"))
    assert (second["totals"]["inserted"], second["totals"]["updated"], second["totals"]["deleted"]) == (0, 0, 0)
    assert checksums(url, tables(pg)) == sums

    # change one value in each hostile table: --check sees it, --dry-run --diff shows it, run writes it
    for rel, old, new in (("seeds/dev/items.yaml", '"ok ✓"', '"ok ✓✓"'),
                          ("seeds/dev/greek.yaml", '"πρώτο"', '"πρώτο!"')):
        path = root / rel
        path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    check = seedkit(root, "run", "dev", "--check")
    assert check.returncode == 3, check.stdout + check.stderr
    diff = seedkit(root, "run", "dev", "--dry-run", "--diff")
    assert diff.returncode == 0 and "ok ✓✓" in diff.stdout and "πρώτο!" in diff.stdout, diff.stdout + diff.stderr
    assert checksums(url, tables(pg)) == sums
    third = report(seedkit(root, "run", "dev", "--json"))
    assert third["totals"]["updated"] == 2 and third["totals"]["inserted"] == 0, third

    # prune with hostile keys: a row gone from user.yaml is deleted, the others stay
    path = root / "seeds" / "dev" / "greek.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("!ref user/O'Brien", "null"), encoding="utf-8")
    path = root / "seeds" / "dev" / "user.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[:text.index('  - "where": "O\'Brien"')], encoding="utf-8")
    fourth = report(seedkit(root, "run", "dev", "--json"))
    assert fourth["totals"]["deleted"] == 1, fourth
    assert rows(url, 'SELECT "where" FROM "user"') == [("1=1; --",)]

    # --only with a hostile table name
    only = report(seedkit(root, "run", "dev", "--only", INJECT, "--json"))
    assert [t["table"] for t in only["tables"]] == [INJECT], only
    assert rows(url, "SELECT id, note FROM victim") == [(1, "still here")]


def test_migration_history_table_with_a_hostile_name(project: Project) -> None:
    """The runner quotes its own history table and the names inside migrations reach the server as written."""
    root, url = project.root, project.url
    for args in (["migrate", "up"], ["migrate", "status", "--exit-code"], ["migrate", "verify"],
                 ["migrate", "down"], ["migrate", "up"]):
        done = seedkit(root, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    history = 'Migrations"; DROP TABLE victim; --'
    assert rows(url, 'SELECT version FROM "' + history.replace('"', '""') + '"') == [("001",)]
    assert rows(url, 'SELECT count(*) FROM "' + INJECT.replace('"', '""') + ' 2"') == [(0,)]
    assert rows(url, "SELECT id, note FROM victim") == [(1, "still here")]
