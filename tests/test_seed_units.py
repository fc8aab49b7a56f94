"""Unit tests of three parts of the seed engine on their own: value conversion (seed/convert.py), the
plan (seed/plan.py, on real SQLite files and a real PostgreSQL) and the skip tracker
(seed/skip_tracker.py, fed rows formatted one line each, as the COPY text is)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from seedkit import db
from seedkit.db import Column, TableName
from seedkit.errors import DatabaseError, FixtureError
from seedkit.seed.convert import ConversionError, convert, fast_converter, int_bound
from seedkit.seed.load import load_file
from seedkit.seed.model import Ref
from seedkit.seed.plan import build_plan
from seedkit.seed.skip_tracker import CHUNK, GROUP, Record, Restage, Tracker, load_records, save_record

# -- convert ---------------------------------------------------------------------------------------------------


def col(kind: str, type_: str | None = None, **kw: object) -> Column:
    return Column(name="c", type=type_ or kind, kind=kind, **kw)  # type: ignore[arg-type]


def test_convert_reads_text_cells_into_the_columns_type() -> None:
    assert convert("42", col("int", "integer", type_oid=23), text=True) == 42
    assert convert(" 1_000 ", col("int", "bigint", type_oid=20), text=True) == 1000
    assert convert("1.10", col("numeric", "numeric(10,2)")) == Decimal("1.10")
    assert convert("yes", col("bool", "boolean"), text=True) is True
    assert convert("off", col("bool", "boolean"), text=True) is False
    assert convert("2024-02-29", col("date")) == dt.date(2024, 2, 29)
    assert convert(None, col("int", "integer")) is None


def test_convert_refuses_what_does_not_fit_and_says_why() -> None:
    with pytest.raises(ConversionError, match="expected an integer for integer, got a boolean"):
        convert(True, col("int", "integer", type_oid=23))
    with pytest.raises(ConversionError, match="40000 is out of range for smallint"):
        convert(40000, col("int", "smallint", type_oid=21))
    with pytest.raises(ConversionError, match="expected an integer for integer, got 1.5"):
        convert(1.5, col("int", "integer", type_oid=23))
    with pytest.raises(ConversionError, match="'abc'"):
        convert("abc", col("int", "integer", type_oid=23), text=True)
    with pytest.raises(ConversionError):
        convert("2024-02-30", col("date"))
    with pytest.raises(ConversionError):
        convert({"a": 1}, col("other", "point"))  # a mapping for a plain type


def test_int_bound_is_the_types_range_on_postgresql_and_64_bit_on_sqlite() -> None:
    assert int_bound(col("int", "smallint", type_oid=21)) == 2**15
    assert int_bound(col("int", "integer", type_oid=23)) == 2**31
    assert int_bound(col("int", "INTEGER")) == 2**63  # SQLite: no type oid


def test_fast_converter_passes_native_values_through_and_checks_the_rest() -> None:
    adapted: list[object] = []

    def adapt(column: Column, value: object) -> object:
        adapted.append(value)
        return ("adapted", value)

    to_int = fast_converter(col("int", "smallint", type_oid=21), text=False, adapt=adapt, skip=(Ref,))
    assert to_int(7) == 7 and adapted == []  # the hot path: no conversion, no adapter call
    assert to_int("8") == ("adapted", 8)  # anything else goes through convert + adapt
    assert to_int(Ref("users", ((None, "a"),))) is None  # references are resolved in SQL
    with pytest.raises(ConversionError, match="out of range"):
        to_int(2**15)  # an int out of the column's range is not passed through
    to_text = fast_converter(col("text"), text=False, adapt=adapt)
    assert to_text("x") == "x"
    assert to_text(5) == ("adapted", "5")


# -- plan ------------------------------------------------------------------------------------------------------
SCHEMA = """
CREATE TABLE orgs (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE);
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, org_id INTEGER NOT NULL REFERENCES orgs(id),
                    manager_id INTEGER REFERENCES users(id), name TEXT);
CREATE TABLE a (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, b_id INTEGER);
CREATE TABLE b (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, a_id INTEGER NOT NULL REFERENCES a(id));
"""
CYCLE = "ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b(id)"  # PostgreSQL; SQLite declares it in the table

FIXTURES = """
table: users
key: [email]
rows:
  - {email: ada@x.test, org_id: !ref orgs/acme, name: Ada}
  - {email: bob@x.test, org_id: !ref orgs/acme, manager_id: !ref users/ada@x.test}
---
table: orgs
key: [slug]
rows:
  - {slug: acme}
"""


def _database(url: str, schema: str) -> db.Database:
    d = db.connect(url)
    for statement in filter(str.strip, schema.split(";")):
        d.execute(statement)
    return d


def _plan(tmp_path: Path, url: str, text: str, schema: str = SCHEMA):  # type: ignore[no-untyped-def]
    path = tmp_path / "f.yaml"
    path.write_text(text)
    fixtures = load_file(path, variables={})
    d = _database(url, schema)
    try:
        return build_plan(fixtures, d.catalog(refresh=True), d)
    finally:
        d.close()


def test_plan_orders_parents_first_and_defers_a_self_reference(tmp_path: Path, sqlite_url: str) -> None:
    plan = _plan(tmp_path, sqlite_url, FIXTURES)
    assert [str(tp.table.name) for tp in plan.tables] == ["orgs", "users"]
    users = plan.tables[1]
    assert users.deferred == frozenset({"manager_id"})  # set in a second pass, once every user exists
    assert [fp.key for fp in users.fixtures] == [("email",)]
    assert plan.natural_keys == {TableName(None, "users"): ("email",), TableName(None, "orgs"): ("slug",)}


@pytest.mark.postgres
def test_plan_defers_every_foreign_key_only_where_the_database_does(tmp_path: Path, sqlite_url: str,
                                                                    pg_url: str) -> None:
    pg_schema = SCHEMA.replace("INTEGER PRIMARY KEY", "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    assert _plan(tmp_path, sqlite_url, FIXTURES).defer_all is True  # SQLite's pragma defers them all
    assert _plan(tmp_path, pg_url, FIXTURES, pg_schema).defer_all is False


def test_plan_breaks_a_cycle_at_its_nullable_column(tmp_path: Path, sqlite_url: str) -> None:
    schema = SCHEMA.replace("b_id INTEGER)", "b_id INTEGER REFERENCES b(id))")
    plan = _plan(tmp_path, sqlite_url, "table: b\nkey: [code]\nrows:\n  - {code: b1, a_id: !ref a/a1}\n---\n"
                 "table: a\nkey: [code]\nrows:\n  - {code: a1, b_id: !ref b/b1}\n", schema)
    assert [str(tp.table.name) for tp in plan.tables] == ["a", "b"]  # a's reference to b waits
    assert plan.tables[0].deferred == frozenset({"b_id"}) and plan.tables[1].deferred == frozenset()


def test_plan_refuses_a_cycle_it_cannot_break_and_says_how_to_fix_it(tmp_path: Path, sqlite_url: str) -> None:
    schema = SCHEMA.replace("b_id INTEGER)", "b_id INTEGER NOT NULL REFERENCES b(id))")
    with pytest.raises(FixtureError, match="foreign-key cycle that cannot be broken") as info:
        _plan(tmp_path, sqlite_url, "table: b\nkey: [code]\nrows:\n  - {code: b1, a_id: 1}\n---\n"
              "table: a\nkey: [code]\nrows:\n  - {code: a1, b_id: 1}\n", schema)
    assert "make one of these columns nullable" in (info.value.hint or "")


def test_plan_refuses_a_key_without_a_unique_constraint_and_an_unknown_key_column(tmp_path: Path,
                                                                                  sqlite_url: str) -> None:
    with pytest.raises(FixtureError) as info:
        _plan(tmp_path, sqlite_url, "table: users\nkey: [name]\nrows:\n  - {name: x}\n---\n"
              "table: orgs\nkey: [slugg]\nrows:\n  - {slug: y}\n")
    text = str(info.value)
    assert "key (name) of users is not backed by a primary key or unique constraint" in text
    assert "unknown column 'slugg'" in text and "did you mean 'slug'" in text
    assert "f.yaml" in text  # located


def test_plan_says_where_a_value_does_not_fit(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(FixtureError, match="expected an integer") as info:
        _plan(tmp_path, sqlite_url, "table: orgs\nkey: [slug]\nrows:\n  - {slug: a}\n  - {slug: b, id: many}\n")
    loc = info.value.location
    assert loc is not None and loc.line == 5  # the second row's line


# -- the skip tracker ------------------------------------------------------------------------------------------
BATCH = 4 * CHUNK


def fmt(rows: list[tuple]) -> bytearray:
    """One line per row, as the COPY text is (what the tracker digests)."""
    return bytearray(b"".join(("\t".join(map(str, r)) + "\n").encode() for r in rows))


def rows_of(n: int, changed: dict[int, str] | None = None) -> list[tuple]:
    changed = changed or {}
    return [(f"k{i}", changed.get(i, f"v{i}")) for i in range(1, n + 1)]


def stream(tracker: Tracker, rows: list[tuple]) -> list[bytes]:
    """Feed rows batch by batch; what the tracker says to send, per batch (b"" for nothing)."""
    sent = []
    for start in range(0, len(rows), tracker.batch_size):
        built = rows[start:start + tracker.batch_size]
        sent.append(bytes(tracker.feed(built, fmt) or b""))
    return sent


def tracker(old: Record | None = None) -> Tracker:
    t = Tracker("f.py", TableName(None, "items"), "config", [TableName(None, "items")], [0], BATCH)
    t.old = old
    return t


def first_run(n: int) -> Record:
    t = tracker()
    assert stream(t, rows_of(n)) == [bytes(fmt(rows_of(n)[i:i + BATCH])) for i in range(0, n, BATCH)]
    assert (t.rows, t.skipped, t.staged) == (n, 0, n)
    return t.record()


def test_a_rerun_with_nothing_changed_sends_nothing() -> None:
    old = first_run(3 * BATCH)
    t = tracker(old)
    assert stream(t, rows_of(3 * BATCH)) == [b"", b"", b""]
    assert (t.skipped, t.staged) == (3 * BATCH, 0)
    assert t.record().batches == old.batches and t.record().chunks == old.chunks


def test_a_changed_row_sends_only_its_chunk_and_numbers_it_right() -> None:
    old = first_run(3 * BATCH)
    t = tracker(old)
    n = BATCH + CHUNK + 2  # in the second batch, second chunk
    sent = stream(t, rows_of(3 * BATCH, {n: "changed"}))
    chunk_rows = rows_of(3 * BATCH, {n: "changed"})[BATCH + CHUNK:BATCH + 2 * CHUNK]
    assert sent == [b"", bytes(fmt(chunk_rows)), b""]
    assert (t.staged, t.skipped) == (CHUNK, 3 * BATCH - CHUNK)
    assert [t.row_number(i) for i in range(1, CHUNK + 1)] == list(range(BATCH + CHUNK + 1, BATCH + 2 * CHUNK + 1))
    assert t.fresh_from is None


def test_changed_keys_mean_staging_everything_again() -> None:
    old = first_run(3 * BATCH)
    rows = rows_of(3 * BATCH)
    rows[BATCH + 1] = ("another-key", rows[BATCH + 1][1])  # a key moved in a middle batch
    t = tracker(old)
    with pytest.raises(Restage):
        stream(t, rows)
    t.reset()
    assert t.old is None and (t.rows, t.staged, t.skipped) == (0, 0, 0)
    assert b"another-key" in b"".join(stream(t, rows))  # with no record every row is sent


def test_rows_past_the_end_of_the_last_run_are_sent_and_marked_fresh() -> None:
    old = first_run(2 * BATCH)
    t = tracker(old)
    sent = stream(t, rows_of(3 * BATCH))
    assert sent[:2] == [b"", b""] and sent[2] == bytes(fmt(rows_of(3 * BATCH)[2 * BATCH:]))
    assert t.fresh_from == 1  # the first staged row is the first new one: checked against the table
    assert t.row_number(1) == 2 * BATCH + 1


class Counting:
    """A row formatter that counts the rows it formats."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, rows: list[tuple]) -> bytearray:
        self.rows += len(rows)
        return fmt(rows)


def wide_tracker(old: Record | None = None) -> Tracker:
    t = Tracker("f.py", TableName(None, "items"), "config", [TableName(None, "items")], [0], 4 * CHUNK * GROUP)
    t.old = old
    return t


def feed_all(tracker: Tracker, rows: list[tuple], formatter: Any = fmt) -> list[bytes]:
    return [bytes(tracker.feed(rows[i:i + tracker.batch_size], formatter) or b"")
            for i in range(0, len(rows), tracker.batch_size)]


def test_an_unchanged_batch_is_never_formatted_and_a_changed_row_formats_only_its_group() -> None:
    n = 3 * 4 * CHUNK * GROUP
    first = wide_tracker()
    feed_all(first, rows_of(n))
    counting = Counting()
    again = wide_tracker(first.record())
    assert feed_all(again, rows_of(n), counting) == [b"", b"", b""]
    assert counting.rows == 0 and again.record() == first.record()
    changed_row = 4 * CHUNK * GROUP + CHUNK * GROUP + 2  # second batch, second group
    counting = Counting()
    t = wide_tracker(first.record())
    sent = feed_all(t, rows_of(n, {changed_row: "changed"}), counting)
    assert counting.rows == CHUNK * GROUP  # the changed group only (the chunk sent is cut from its text)
    chunk = (changed_row - 1) // CHUNK * CHUNK
    assert sent == [b"", bytes(fmt(rows_of(n, {changed_row: "changed"})[chunk:chunk + CHUNK])), b""]
    assert (t.staged, t.skipped) == (CHUNK, n - CHUNK)
    # the record it leaves is the one a run from scratch would leave
    scratch = wide_tracker()
    feed_all(scratch, rows_of(n, {changed_row: "changed"}))
    assert t.record() == scratch.record()


def test_the_same_values_shared_differently_are_unchanged() -> None:
    n = 2 * 4 * CHUNK * GROUP
    shared = [(f"k{i}",) * 2 for i in range(1, n + 1)]  # one str object in both columns
    copies = [(f"k{i}", "".join(["k", str(i)])) for i in range(1, n + 1)]  # equal, distinct objects
    assert shared[0][0] is shared[0][1] and copies[0][0] is not copies[0][1]
    first = wide_tracker()
    feed_all(first, shared)
    counting = Counting()
    again = wide_tracker(first.record())
    assert feed_all(again, copies, counting) == [b"", b""] and counting.rows == 0


class Shown(str):
    """A str subclass: marshal refuses it, so its batch is digested as COPY text."""


def test_values_marshal_refuses_are_digested_as_their_copy_text() -> None:
    n = 2 * 4 * CHUNK * GROUP
    plain = rows_of(n)
    shown = [(Shown(k), Shown(v)) for k, v in plain]  # the same COPY text, another kind of digest
    first = wide_tracker()
    feed_all(first, shown)
    again = wide_tracker(first.record())
    assert feed_all(again, shown) == [b"", b""]  # text digests match text digests
    other = wide_tracker(first.record())
    # marshal digests never equal text ones: the batches are compared chunk by chunk, by their text,
    # which is the same: nothing is sent
    assert feed_all(other, plain) == [b"", b""] and other.record().batches != first.record().batches
    changed = wide_tracker(first.record())
    rows = list(shown)
    rows[5] = (rows[5][0], Shown("changed"))
    assert feed_all(changed, rows) == [bytes(fmt(rows[4:8])), b""]


def test_a_record_read_back_keeps_every_digest(tmp_path: Path) -> None:
    old = first_run(2 * BATCH + 3)
    assert old.n_batches == 3 and old.batch_rows(2) == 3 and old.has_chunks
    assert len(old.chunks_of(2)) == 8  # 3 rows: one chunk


def test_a_stored_record_reads_back_with_its_group_digests(db_url: str) -> None:
    t = wide_tracker()
    feed_all(t, rows_of(2 * 4 * CHUNK * GROUP + 5))
    record = t.record()
    assert record.has_chunks and len(record.groups) == 8 * (2 * 4 + 1)
    with db.connect(db_url) as d, d.transaction():
        save_record(d, "f.py", "items", record)
        (back,) = load_records(d).values()
    assert back == record and back.groups_of(2) == record.groups[-8:]
    again = wide_tracker(back)
    assert feed_all(again, rows_of(2 * 4 * CHUNK * GROUP + 5)) == [b"", b"", b""]


# -- what the seed engine asks of the adapters, instead of branching on the dialect ------------------------------
def test_a_temporary_table_is_gone_when_the_run_ends(db_url: str) -> None:
    with db.connect(db_url) as d:
        with d.transaction():
            d.create_temporary(d.quote("scratch"), "k TEXT PRIMARY KEY")
            d.execute(f"INSERT INTO {d.quote('scratch')} VALUES ({d.placeholder})", ["x"])
            assert d.fetchall(f"SELECT k FROM {d.quote('scratch')}") == [("x",)]
        if d.dialect == "postgresql":  # dropped at commit; SQLite's goes with the connection
            with pytest.raises(DatabaseError, match="scratch"):
                d.fetchall('SELECT k FROM "scratch"')
    with db.connect(db_url) as d, pytest.raises(DatabaseError, match="scratch"):
        d.fetchall(f"SELECT k FROM {d.quote('scratch')}")


@pytest.mark.postgres
def test_fingerprints_move_with_every_write_and_come_with_their_snapshot(pg_url: str) -> None:
    t = TableName(None, "items")
    with db.connect(pg_url) as d:
        d.execute("CREATE TABLE items (id int PRIMARY KEY, v text)")
        with d.transaction():
            snapshot, (empty,) = d.fingerprints([t], snapshot=True)
            assert snapshot and empty == [0, "0"]
            d.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b')")
            _, (two,) = d.fingerprints([t])
            assert two[0] == 2 and two != empty
            relids = d.table_shape(t).relids
            assert d.table_writes(relids) == 2
            d.execute("UPDATE items SET v = 'c' WHERE id = 1")
            assert d.table_writes(relids) == 3
            (now,) = d.fetchone(f"SELECT {d.snapshot_sql()}") or (None,)
            assert d.others_committed(snapshot, now) is False  # only this transaction wrote


def test_the_seed_engine_has_no_dialect_branches() -> None:
    """Dialect differences are the adapters' (seedkit/db): nothing in seed/ asks which database it is on."""
    seed = Path(__file__).parent.parent / "seedkit" / "seed"
    found = [f"{p.name}:{i}: {line.strip()}" for p in sorted(seed.glob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if any(w in line for w in (".dialect", '"postgresql"', '"sqlite"', "txid_", "pg_catalog", "pg_stat"))]
    assert found == []


def test_a_run_on_sqlite_waits_for_the_files_lock_as_long_as_lock_timeout_says(tmp_path: Path) -> None:
    """``[seeds] lock_timeout`` reaches the SQLite adapter (its busy timeout; the default is 60 s)."""
    import sqlite3
    import time

    import seedkit
    from seedkit.errors import SeedkitError

    path = tmp_path / "app.db"
    (tmp_path / "seedkit.toml").write_text(f'[database]\nurl = "sqlite:///{path}"\n\n[seeds]\nlock_timeout = 0.5\n\n'
                                           '[envs.dev]\ninclude = ["dev"]\n')
    (tmp_path / "seeds" / "dev").mkdir(parents=True)
    (tmp_path / "seeds" / "dev" / "orgs.yaml").write_text("table: orgs\nkey: [slug]\nrows:\n  - {slug: a}\n")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE orgs (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE)")
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the file
    try:
        started = time.monotonic()
        with pytest.raises(SeedkitError, match="locked"):
            seedkit.run("dev", config=tmp_path / "seedkit.toml")
        assert time.monotonic() - started < 15
    finally:
        holder.execute("ROLLBACK")
    assert seedkit.run("dev", config=tmp_path / "seedkit.toml").table("orgs").inserted == 1
    holder.close()


def test_a_reference_hashes_and_compares_by_table_match_and_column_nested_ones_too() -> None:
    """Run-wide duplicate-key checks hash keys that hold (nested) references: the hash is the one of
    the reference's identity, so equal references meet and differing ones stay apart."""
    from seedkit.seed.model import Ref

    def track(artist: str, column: str | None = None) -> Ref:
        album = Ref("album", (("artist_id", Ref("artist", ((None, artist),))), ("title", "Let There Be Rock")))
        return Ref("track", (("album_id", album), ("name", "Overdose")), column=column)

    a, b = track("AC/DC"), track("AC/DC")
    assert a is not b and a == b and hash(a) == hash(b) == hash(a._ident())
    assert len({a, b, track("Accept"), track("AC/DC", column="id")}) == 3
    assert track("AC/DC") != track("Accept") and track("AC/DC") != track("AC/DC", column="id")


def test_ref_builds_what_make_ref_builds_for_every_shape_of_value() -> None:
    """``ref()`` builds a one-value reference itself (one per row of a Python fixture); the plain path is
    ``make_ref``, which every other shape still goes through."""
    import random

    from seedkit.seed.model import make_ref
    from seedkit.seed.python_fixtures import ref

    rnd = random.Random(20261130)
    values = [None, "", "user1@example.com", "a/b", 0, 7, -1, 2.5, True, Decimal("1.10"), dt.date(2026, 1, 2),
              ("x", 1), {"email": "a@x.io"}, {"org": "acme", "slug": "core"}]
    for _ in range(500):
        value, column = rnd.choice(values), rnd.choice([None, "id", "code"])
        fast, plain = ref("users", value, column=column), make_ref("users", value, column=column)
        assert type(fast) is Ref
        assert (fast.table, fast.match, fast.column, fast.location, fast.scalar) == \
               (plain.table, plain.match, plain.column, plain.location, plain.scalar)
        assert fast == plain and hash(fast) == hash(plain)
    assert ref("teams", org="acme", slug="core") == make_ref("teams", {"org": "acme", "slug": "core"})
    with pytest.raises(TypeError, match="not both"):
        ref("teams", "x", org="acme")
    with pytest.raises(FixtureError, match="names no columns"):
        ref("teams", {})


def test_the_plan_gathers_every_table_name_the_rows_references_spell_as_a_plain_walk_does(
        tmp_path: Path, sqlite_url: str) -> None:
    """The rerun record follows every table a reference names, nested ones at any depth; the plan gathers
    those names while it orders the tables (walking each distinct nested reference once). Random nested
    references, repeated within and across fixtures, give the names a plain walk over every row gives."""
    import random

    from seedkit.seed.plan import FixturePlan, TablePlan, _ref_edges

    schema = ";".join(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, code TEXT UNIQUE, ref_id INTEGER)"
                      for i in range(5))
    d = _database(sqlite_url, schema)
    try:
        catalog = d.catalog(refresh=True)
        for seed in range(40):
            rnd = random.Random(seed)
            pool: list[str] = []

            def ref(depth: int, rnd: random.Random = rnd, pool: list[str] = pool) -> str:
                if pool and rnd.random() < 0.3:
                    return rnd.choice(pool)  # the same nested reference again
                table = rnd.choice(["t0", "t1", "t2", "t3", "t4", "T1", "main.t2"])
                if depth == 0 or rnd.random() < 0.3:
                    text = f"!ref {table}/c{rnd.randrange(9)}"
                else:
                    text = f"!ref {{table: {table}, code: c{rnd.randrange(9)}, ref_id: {ref(depth - 1)}}}"
                pool.append(text)
                return text

            docs = []
            for t in rnd.sample(range(5), rnd.randint(1, 5)):
                rows = "".join(f"  - {{code: r{n}, ref_id: {ref(rnd.randint(0, 3)) if rnd.random() < 0.8 else 'null'}}}"
                               "\n" for n in range(rnd.randint(0, 6)))
                head = f"table: t{t}\nkey: [code]\n"
                docs.append(f"{head}rows:\n{rows}" if rows else f"{head}rows: []\n")
            path = tmp_path / f"f{seed}.yaml"
            path.write_text("---\n".join(docs))
            fixtures = load_file(path, variables={})
            by_table: dict[TableName, TablePlan] = {}
            for fx in fixtures:
                table = catalog.get(fx.table)
                by_table.setdefault(table.name, TablePlan(table)).fixtures.append(
                    FixturePlan(fx, table, ("code",), frozenset()))
            named: set[str] = set()
            _ref_edges(by_table, catalog, named)
            plain: set[str] = set()
            todo = [v for fx in fixtures for row in fx.rows or () for v in row.values.values() if isinstance(v, Ref)]
            while todo:
                r = todo.pop()
                plain.add(r.table)
                todo.extend(v for _, v in r.match if isinstance(v, Ref))
            assert named == plain, seed
    finally:
        d.close()


def test_repeated_keys_are_found_and_located_as_a_plain_check_of_key_tuples_finds_them(
        tmp_path: Path, sqlite_url: str) -> None:
    """The duplicate-key check keeps a one-column key as itself (not in a one-tuple) and where it was
    first as one integer: random keys of mixed kinds (text, integers, booleans, numbers read as
    decimals, references, one and two columns, across documents of one table) give the problems a plain
    check of key tuples gives, in the same order and at the same places."""
    import random

    from seedkit.seed.plan import _hashable

    d = _database(sqlite_url, "CREATE TABLE k (a ANY, b ANY, n INTEGER PRIMARY KEY AUTOINCREMENT, "
                              "UNIQUE (a), UNIQUE (a, b))")
    d.close()
    values = ["1", "x", "'1'", "'1.5'", "1.5", "true", "'true'", "!ref k/x", "!ref k/1", "[1]", "'[1]'",
              "2", "'x'", "1.50", "0x1"]
    clashes = 0
    for seed in range(60):
        rnd = random.Random(seed)
        docs = []
        for _ in range(rnd.randint(1, 3)):
            key = rnd.choice(["[a]", "[a, b]"])
            rows = "".join(f"  - {{a: {rnd.choice(values)}, b: {rnd.choice(values[:4])}}}\n"
                           for _ in range(rnd.randint(1, 5)))
            docs.append(f"table: k\nkey: {key}\nrows:\n{rows}")
        path = tmp_path / f"k{seed}.yaml"
        path.write_text("---\n".join(docs))
        fixtures = load_file(path, variables={})
        expected = []
        first_at: dict = {}
        for fx in fixtures:
            key = tuple(fx.header.key)
            for n, row in enumerate(fx.rows, start=1):
                kv = tuple(_hashable(row.values[c]) for c in key)
                first = first_at.setdefault(kv, (fx, n))
                if first != (fx, n):
                    shown = ", ".join(f"{k}={v!r}" for k, v in zip(key, kv))
                    expected.append((f"the same key ({shown}) appears twice for k; first at "
                                     f"{first[0].row_location(first[1])}", str(fx.row_location(n))))
        d = db.connect(sqlite_url)
        try:
            build_plan(fixtures, d.catalog(refresh=True), d)
            got: list = []
        except FixtureError as exc:
            got = [(p.message, str(p.location)) for p in (exc.problems or [exc]) if "appears twice" in p.message]
        finally:
            d.close()
        assert got == expected, seed
        clashes += bool(expected)
    assert clashes >= 20  # most folders repeated a key somewhere
