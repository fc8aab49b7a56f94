"""Nested references resolved set-based, against the plain path, on random fixtures (issue 17, point 1).

The shortcuts: ``NestedRefs.prefetch`` resolves the distinct references nested inside a batch's
references a level at a time (innermost first, one query per table and shape), so the per-row
``resolve`` finds them cached; ``_ref_edges`` walks each nested reference once per table; a
reference's hash is computed once; the planner converts a value it has seen convert once per column.
The plain path resolves every nested reference row by row (``prefetch`` does nothing), walks every
reference, hashes every time. Both run the same random fixtures — nested references up to three deep
in key and non-key columns, composite keys, scalar and mapping forms, NULLs, references to rows of
the same fixture (a self-reference: a deferred column), to rows only in the database, to rows that
exist nowhere, values of the wrong type, repeated keys — on a real PostgreSQL and a real SQLite
file: the same database contents, the same report, the same error (message, file:line, row) and
so the same exit code, for a dry run, a run and a rerun.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import seedkit
from seedkit.db.catalog import Column
from seedkit.errors import SeedkitError
from seedkit.seed import plan as plan_module
from seedkit.seed.convert import ConversionError, convert
from seedkit.seed.model import Ref
from seedkit.seed.rows import NestedRefs
from tests.support import Project, create_pg_database, drop_pg_database
from tests.support.checksums import checksums

PG = """
CREATE TABLE a (id serial PRIMARY KEY, code text NOT NULL UNIQUE, grp int);
CREATE TABLE b (id serial PRIMARY KEY, a_id int NOT NULL REFERENCES a (id), name text NOT NULL, UNIQUE (name, a_id));
CREATE TABLE c (id serial PRIMARY KEY, b_id int NOT NULL REFERENCES b (id), tag text NOT NULL,
    parent_id int REFERENCES c (id), UNIQUE (tag, b_id));
CREATE TABLE d (id serial PRIMARY KEY, note text NOT NULL UNIQUE, c_id int REFERENCES c (id),
    b_id int REFERENCES b (id), a_code text REFERENCES a (code));
"""
SQLITE = PG.replace("id serial PRIMARY KEY", "id INTEGER PRIMARY KEY")
TABLES = ["a", "b", "c", "d"]
IN_DB = """
INSERT INTO a (id, code, grp) VALUES (1001, 'A0', 1), (1002, 'A1', NULL);
INSERT INTO b (id, a_id, name) VALUES (2001, 1001, 'N0'), (2002, 1002, 'N0'), (2003, 1002, 'N1');
INSERT INTO c (id, b_id, tag) VALUES (3001, 2003, 'T0')
"""


class Fixtures:
    """Random fixture files over the schema above (the same seed, the same files)."""

    def __init__(self, seed: int):
        self.rnd = rnd = random.Random(seed)
        self.broken = rnd.random() < 0.5  # this project holds a reference to a row that exists nowhere
        self.codes = ["A0", "A1"] + [f"A{i}" for i in range(2, 2 + rnd.randint(1, 5))]  # A0, A1: in the database
        self.bs = [("N0", "A0"), ("N0", "A1"), ("N1", "A1")]  # in the database
        self.cs = [("T0", ("N1", "A1"))]

    def a_ref(self, code: str) -> str:
        form = self.rnd.randrange(3)
        if form == 0:
            return f"!ref a/{code}"
        if form == 1:
            return f"!ref {{table: a, code: {code}}}"
        return f"!ref {{table: a, code: {code}, column: id}}"

    def miss(self) -> bool:
        return self.broken and self.rnd.random() < 0.04

    def b_ref(self, b: tuple[str, str]) -> str:
        name, code = b
        if self.miss():
            name = name + "x"
        if self.miss():
            code = code + "x"
        return f"!ref {{table: b, name: {name}, a_id: {self.a_ref(code)}}}"

    def c_ref(self, c: tuple[str, tuple[str, str]]) -> str:
        tag, b = c
        if self.miss():
            tag = tag + "x"
        if self.broken and self.rnd.random() < 0.01:
            return f"!ref {{table: c, tag: {tag}, b_id: not-a-number}}"  # a type error inside a reference
        return f"!ref {{table: c, tag: {tag}, b_id: {self.b_ref(b)}}}"

    def files(self) -> dict[str, str]:
        rnd = self.rnd
        out = {"dev/a.yaml": "key: [code]\nrows:\n" + "".join(
            f"  - {{code: {code}, grp: {rnd.choice(['null', '1', '2', '7'])}}}\n" for code in self.codes[2:])}
        names = [f"N{i}" for i in range(rnd.randint(2, 6))]
        for name in names:
            for code in rnd.sample(self.codes, rnd.randint(1, len(self.codes))):
                if (name, code) not in self.bs:
                    self.bs.append((name, code))
        rows = [b for b in self.bs[3:]]
        if self.broken and rnd.random() < 0.2:
            rows.append(rnd.choice(rows))  # the same key twice
        out["dev/b.yaml"] = "key: [name, a_id]\nrows:\n" + "".join(
            f"  - {{name: {name}, a_id: {self.a_ref(code)}}}\n" for name, code in rows)
        cs = []
        for i in range(rnd.randint(5, 40)):
            c = (f"T{i % 7}", rnd.choice(self.bs))
            if c not in self.cs and c not in cs:
                cs.append(c)
        lines = []
        for n, c in enumerate(cs):
            parent = "null"
            if rnd.random() < 0.5:
                # a parent among the rows of this fixture (a self-reference: written in a second pass), or
                # the one in the database
                parent = self.c_ref(rnd.choice(cs[:n + 1] + self.cs))
            lines.append(f"  - {{tag: {c[0]}, b_id: {self.b_ref(c[1])}, parent_id: {parent}}}\n")
        self.cs += cs
        out["dev/c.yaml"] = "key: [tag, b_id]\nrows:\n" + "".join(lines)
        lines = []
        for i in range(rnd.randint(10, 80)):
            c_id = self.c_ref(rnd.choice(self.cs)) if rnd.random() < 0.7 else "null"
            b_id = self.b_ref(rnd.choice(self.bs)) if rnd.random() < 0.5 else "null"
            a_code = f"!ref a/{rnd.choice(self.codes)}" if rnd.random() < 0.5 else "null"
            lines.append(f"  - {{note: n{i}, c_id: {c_id}, b_id: {b_id}, a_code: {a_code}}}\n")
        out["dev/d.yaml"] = "key: [note]\nrows:\n" + "".join(lines)
        return out


def _plain_ref_edges(by_table: dict, catalog: Any, named: set[str] | None = None, early: Any = None) -> dict:
    """The reference walk without its memo: every nested reference of every row (and every name they
    spell, for the rerun record); what was learned as the files were read (``early``) is not used."""
    edges: dict = {}

    def walk(value: Ref, owner: Any) -> None:
        if named is not None:
            named.add(value.table)
        target = catalog.find(value.table)
        if target is not None and target.name != owner:
            edges.setdefault(owner, set()).add(target.name)
        for _, v in value.match:
            if isinstance(v, Ref):
                walk(v, owner)

    for tn, tp in by_table.items():
        for fp in tp.fixtures:
            for row in fp.fixture.rows or []:
                for v in row.values.values():
                    if isinstance(v, Ref):
                        walk(v, tn)
    return edges


def _outcome(p: Project, **options: Any) -> tuple:
    try:
        report = seedkit.run("dev", config=p.config(), **options)
    except SeedkitError as exc:
        result: tuple = ("error", type(exc).__name__, str(exc), exc.exit_code)
    else:
        result = ("ok", [(t.table, t.inserted, t.updated, t.unchanged, t.deleted) for t in report.tables])
    return result, checksums(p.url, TABLES)


def _run_all(root: Path, url: str, files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    p = Project(root, url)
    monkeypatch.chdir(root)  # messages name files relative to here: the same in both projects
    p.sql(PG, SQLITE)
    p.sql(IN_DB)
    for rel, text in files.items():
        p.write(rel, text)
    return [_outcome(p, dry_run=True), _outcome(p), _outcome(p)]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_nested_references_resolve_as_the_plain_path_does(dialect: str, request: pytest.FixtureRequest,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = request.getfixturevalue("pg_server") if dialect == "postgresql" else None
    seen = {"ok": 0, "error": 0}
    for seed in range(12):
        files = Fixtures(seed).files()
        outcomes = []
        for plain in (False, True):
            url = create_pg_database(server) if server else f"sqlite:///{tmp_path / f'{seed}-{plain}.db'}"
            try:
                with monkeypatch.context() as m:
                    if plain:
                        m.setattr(NestedRefs, "prefetch", lambda self, fp, refs, chunk: None)
                        m.setattr(plan_module, "_ref_edges", _plain_ref_edges)
                        m.setattr(Ref, "__hash__", lambda self: hash((self.table, self.match, self.column)))
                    outcomes.append(_run_all(tmp_path / f"{seed}-{plain}", url, files, m))
            finally:
                if server:
                    drop_pg_database(server, url)
        fast, plain_path = outcomes
        assert fast == plain_path, f"seed {seed}"
        seen[fast[1][0][0]] += 1
        if fast[1][0][0] == "ok":  # the rerun changed nothing
            assert all(t[1] == t[2] == 0 for t in fast[2][0][1]), f"seed {seed}"
            assert fast[1][1] == fast[2][1]
    assert seen["ok"] >= 3 and seen["error"] >= 3  # both kinds of outcome were compared


def test_a_nested_reference_resolves_in_one_query_a_level_however_deep(pg_url: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Three levels (d → c → b → a, every c distinct): no nested reference is looked up on its own,
    and the queries sent while loading do not grow with the rows."""
    p = Project(tmp_path, pg_url)
    p.sql(PG)
    p.sql(IN_DB)
    lines = "".join(f"  - {{tag: T{i}, b_id: !ref {{table: b, name: N1, a_id: !ref a/A1}}}}\n"
                    for i in range(1, 300))
    p.write("dev/c.yaml", "key: [tag, b_id]\nrows:\n" + lines)
    p.write("dev/d.yaml", "key: [note]\nrows:\n" + "".join(
        f"  - {{note: n{i}, c_id: !ref {{table: c, tag: T{i % 299 + 1}, b_id: !ref {{table: b, name: N1, "
        f"a_id: !ref {{table: a, code: A1}}}}}}}}\n" for i in range(900)))
    one_by_one = [0]
    real = NestedRefs.resolve

    def resolve(self: NestedRefs, value: Any, table: Any, column: str, loc: Any) -> Any:
        if isinstance(value, Ref) and (value, table.name, column) not in self.cache:
            one_by_one[0] += 1
        return real(self, value, table, column, loc)

    monkeypatch.setattr(NestedRefs, "resolve", resolve)
    report = seedkit.run("dev", config=p.config())
    assert report.table("d").inserted == 900 and one_by_one[0] == 0
    assert p.scalar("SELECT count(*) FROM d JOIN c ON c.id = d.c_id JOIN b ON b.id = c.b_id "
                    "WHERE b.name = 'N1' AND c.tag = 'T' || (substr(d.note, 2)::int % 299 + 1)") == 900


_KINDS = [("int", "integer", 23), ("int", "smallint", 21), ("numeric", "numeric", 1700),
          ("float", "double precision", 701), ("text", "text", 25), ("bool", "boolean", 16), ("date", "date", 1082),
          ("timestamp", "timestamp without time zone", 1114), ("timestamptz", "timestamp with time zone", 1184),
          ("json", "jsonb", 3802), ("uuid", "uuid", 2950)]


def _values(rnd: random.Random) -> list[Any]:
    pool: list[Any] = [None, 0, 1, -1, 7, 2**40, True, False, 0.0, -0.0, 1.0, 0.99, 1.5, float("inf"), float("nan"),
                       Decimal("0.99"), Decimal("1"), Decimal("1.0"), Decimal("1E+2"), Decimal("NaN"), "", "1", " 7 ",
                       "0.99", "x", "true", "2024-01-02", "2024-01-02T03:04:05", "2024-01-02 03:04:05+02",
                       "12345678-1234-5678-1234-567812345678", dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4),
                       dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.timezone.utc),
                       dt.datetime(2024, 1, 2, 5, 4, tzinfo=dt.timezone(dt.timedelta(hours=2))), 40000, -40000]
    return [rnd.choice(pool) for _ in range(200)]


def test_a_value_converts_as_every_equal_value_of_its_type_does() -> None:
    """The planner converts a value once per column and takes an equal value of the same type as
    converted too: conversion depends on the type and the value alone (e.g. 1 and True, 1 and 1.0,
    equal Decimals of different exponents, the same instant in two time zones)."""
    rnd = random.Random(17)
    for kind, type_name, oid in _KINDS:
        column = Column(name="c", type=type_name, nullable=True, kind=kind, type_oid=oid)
        for text in (False, True):
            verdict: dict[tuple[type, Any], bool] = {}
            for value in _values(rnd):
                try:
                    convert(value, column, text=text)
                    ok = True
                except ConversionError:
                    ok = False
                try:
                    key = (value.__class__, value)
                    if key in verdict:
                        assert verdict[key] == ok, (kind, text, value)
                    verdict[key] = ok
                except TypeError:
                    pass
