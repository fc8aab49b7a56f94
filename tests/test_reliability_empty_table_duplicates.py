"""A key generated twice is found into an empty table as into a table with rows (RELIABILITY.md §7).

Into an empty table, a Python fixture's rows are inserted without a separate duplicate check when the
table's own unique key refuses the second row of a repeated key within the insert (the run then stages
the rows again to say where). That holds only for an immediate unique key with nothing on the way that
may change or drop a row. Here the key cannot do that — a deferrable key checks at commit, a trigger
rewrites the key or drops the repeat, on the table or on a partition — and the run must still stop with
the located "generated twice" error, write nothing, and say exactly what it says when the table already
holds an unrelated row. Before, the first run either failed at commit with no location or went in
silently, and the next run (the table no longer empty) refused the same fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Project, create_pg_database, drop_pg_database

ROWS, REPEAT, FIRST = 300, 250, 7  # row REPEAT generates row FIRST's key again

FIXTURE = f'''\
from seedkit import fixture


@fixture("items", key=["code"])
def items(fake):
    for n in range(1, {ROWS} + 1):
        yield {{"code": f"c{{{FIRST} if n == {REPEAT} else n}}", "label": f"item {{n}}"}}
'''

DROP_REPEATS = ("CREATE FUNCTION drop_repeats() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF EXISTS (SELECT 1 FROM items WHERE code = NEW.code) THEN RETURN NULL; END IF; RETURN NEW; END $$;")
SETUPS = {
    "unique": "CREATE TABLE items (id bigserial PRIMARY KEY, code text UNIQUE, label text NOT NULL)",
    "deferrable": "CREATE TABLE items (id bigserial PRIMARY KEY, code text, label text NOT NULL, "
                  "CONSTRAINT items_code UNIQUE (code) DEFERRABLE INITIALLY DEFERRED)",
    "deferrable, immediate": "CREATE TABLE items (id bigserial PRIMARY KEY, code text, label text NOT NULL, "
                             "CONSTRAINT items_code UNIQUE (code) DEFERRABLE)",
    "trigger rewriting keys": (
        "CREATE TABLE items (id bigserial PRIMARY KEY, code text UNIQUE, label text NOT NULL);"
        "CREATE FUNCTION tag_code() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "NEW.code := NEW.code || '-' || NEW.id; RETURN NEW; END $$;"
        "CREATE TRIGGER tag BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION tag_code()"),
    "trigger dropping repeats": (
        "CREATE TABLE items (id bigserial PRIMARY KEY, code text UNIQUE, label text NOT NULL);" + DROP_REPEATS +
        "CREATE TRIGGER skip BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION drop_repeats()"),
    "trigger on the partitions": (
        "CREATE TABLE items (id bigserial, code text, label text NOT NULL, PRIMARY KEY (code)) "
        "PARTITION BY HASH (code);"
        "CREATE TABLE items_0 PARTITION OF items FOR VALUES WITH (MODULUS 2, REMAINDER 0);"
        "CREATE TABLE items_1 PARTITION OF items FOR VALUES WITH (MODULUS 2, REMAINDER 1);" + DROP_REPEATS +
        "CREATE TRIGGER skip BEFORE INSERT ON items_0 FOR EACH ROW EXECUTE FUNCTION drop_repeats();"
        "CREATE TRIGGER skip BEFORE INSERT ON items_1 FOR EACH ROW EXECUTE FUNCTION drop_repeats()"),
}


def _said(p: Project) -> tuple[int, str]:
    result = p.cli("run", "dev")
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def _expect_located(p: Project, code: int, said: str, present: int) -> None:
    assert code == 2, said
    assert (f"items.py:4, row {REPEAT}: the same key (code='c{FIRST}') is generated twice for items; "
            f"first at {p.root}/seeds/dev/items.py:4, row {FIRST}") in said, said
    assert p.scalar("SELECT count(*) FROM items") == present, said  # nothing written


@pytest.mark.postgres
@pytest.mark.parametrize("setup", list(SETUPS))
def test_a_key_generated_twice_into_an_empty_table_is_found_and_located(pg_server: str, tmp_path: Path,
                                                                          setup: str) -> None:
    urls = [create_pg_database(pg_server), create_pg_database(pg_server)]
    try:
        empty, holding = (Project(tmp_path / name, url, envs={"dev": {"include": ["dev"]}})
                          for name, url in zip(("empty", "holding"), urls))
        for p in (empty, holding):
            p.sql(SETUPS[setup])
            p.write("dev/items.py", FIXTURE)
        holding.sql("INSERT INTO items (code, label) VALUES ('other', 'not the fixture''s')")
        code, said = _said(empty)
        _expect_located(empty, code, said, 0)
        # the same as into a table with rows (where the staged keys are always checked)
        assert (code, said.replace(str(empty.root), "<p>")) == \
            tuple(x.replace(str(holding.root), "<p>") if isinstance(x, str) else x for x in _said(holding))
        assert holding.scalar("SELECT count(*) FROM items") == 1
    finally:
        for url in urls:
            drop_pg_database(pg_server, url)


def test_a_trigger_dropping_the_repeat_on_sqlite_does_not_hide_it(tmp_path: Path) -> None:
    """SQLite: a trigger that drops the row (``RAISE(IGNORE)``) would let a repeated key vanish."""
    p = Project(tmp_path / "lite", f"sqlite:///{tmp_path / 'lite.db'}", envs={"dev": {"include": ["dev"]}})
    p.sql("", "CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT UNIQUE, label TEXT NOT NULL);"
              "CREATE TRIGGER skip BEFORE INSERT ON items WHEN EXISTS (SELECT 1 FROM items WHERE code = NEW.code) "
              "BEGIN SELECT RAISE(IGNORE); END;")
    p.write("dev/items.py", FIXTURE)
    code, said = _said(p)
    _expect_located(p, code, said, 0)
