"""``auto`` values are spread over their choices for a few rows as for many (seedkit/schema/auto.py, ``_hash``).

Every value ``auto`` draws -- an item of a CHECK IN list or an enum, a number in a range, a date, a
parent row -- is ``hash(n) % choices`` with a per-column hash of the row number ``n``. The hash used
to be ``((n ^ salt) * k mod 2**64) >> 24`` with a random odd ``k`` per column: when ``k`` is small, or
near a small rational multiple of 2**64, consecutive rows barely move the bits a value is taken from,
and about 2 % of the columns with two allowed values got the same one on every row of a 20-row
fixture (AdventureWorks' humanresources.employee: ``maritalstatus`` 'S' on all 20). Valid rows, but not
the variety a developer seeding 20 rows expects.

The statistical tests run over fixed salts and multipliers, so they give the same answer on every run;
their bounds are ones a fair hash (independent uniform values) meets with overwhelming probability,
computed in each docstring. The end-to-end test loads columns whose names gave one value before."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import seedkit
from seedkit.db.catalog import Column, Table, TableName
from seedkit.schema import auto
from seedkit.schema.auto import _M, AutoSpec, Expr, _bounds, _hash, _salt, _value_gen, fill_function
from tests.support import Project

SALTS = [_salt("spread", i) for i in range(20000)]


def _columns_of(salt: int) -> list[tuple[str, Expr]]:
    h = _hash(salt)
    return [("two", Expr(f"{h} % 2")), ("five", Expr(f"{h} % 5")), ("wide", Expr(f"{h} % 1000"))]


def _lifted() -> Callable[[int, int, int], int]:
    """``_hash``'s expression with its two per-column constants (salt, multiplier) made arguments: one
    function for every salt (compiling 20,000 would be most of the test's time). It gives what each
    compiled column gives (checked on the first salts)."""
    salt = SALTS[0]
    code = _hash(salt).replace(str(salt), "S").replace(str(auto.multiplier(salt)), "K")
    assert code.count("S") == 1 and code.count("K") == 1, code
    lifted = eval(f"lambda n, S, K: {code}")  # noqa: S307 - the module's own arithmetic on n
    for salt in SALTS[:50]:
        fill = fill_function(_columns_of(salt))
        for n in (1, 2, 3, 1000, 10**9):
            row: dict[str, int] = {}
            fill(n, row)
            h = lifted(n, salt, auto.multiplier(salt))
            assert row == {"two": h % 2, "five": h % 5, "wide": h % 1000}
    return lifted


def test_few_rows_of_a_column_are_not_all_one_value() -> None:
    """Over 20,000 columns (salts):

    - 2 choices, rows 1…20, one value on all: a fair hash does that with p = 2 · 2**-20 = 1.9e-6 per
      column, λ = 20,000 p = 0.038 columns expected; P(4 or more) ≤ λ**4 / 4! = 8.8e-8. Bound: 3.
      (The old hash: 398, 2 %.)
    - 5 choices, rows 1…50, one value on all: p = 5 · 5**-50 = 5.6e-35. Bound: 0. (The old hash: 2.)
    - 1,000 choices (a range, a date, a parent among 1,000), rows 1…20, fewer than 12 distinct values:
      at least 9 rows repeat an earlier value, p ≤ C(20, 9) · (19/1000)**9 = 5.4e-11, λ = 1.1e-6.
      Bound: 0. (The old hash: 65.)"""
    h = _lifted()
    two = five = wide = 0
    for salt in SALTS:
        k = auto.multiplier(salt)
        values = [h(n, salt, k) for n in range(1, 51)]
        two += len({v % 2 for v in values[:20]}) == 1
        five += len({v % 5 for v in values}) == 1
        wide += len({v % 1000 for v in values[:20]}) < 12
    assert two <= 3 and five == 0 and wide == 0, (two, five, wide)


def _bad_multipliers() -> list[int]:
    """Odd multipliers at or near the worst places: tiny, near 2**64, near p/q · 2**64 for small q."""
    rng = random.Random(1)
    ks = [1, 3, 5, 7, _M, _M - 2, (1 << 63) + 1, (1 << 63) - 1, (1 << 32) + 1, 0x5555555555555555, 0xAAAAAAAAAAAAAAAB]
    for q in range(2, 13):
        for p in range(1, q):
            for _ in range(3):
                ks.append((p * (1 << 64) // q + rng.randint(-(1 << 20), 1 << 20)) & _M | 1)
    return ks


def test_the_spread_does_not_depend_on_a_good_multiplier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every column's multiplier replaced by a bad one (about 200 of them): each column still takes
    both of 2 choices over rows 1…40 (a fair hash fails that with p = 2 · 2**-40 = 1.8e-12 per column)
    and at least 3 of 5 choices over rows 1…50 (p ≤ C(5, 2) · (2/5)**50 = 1.3e-19)."""
    ks = _bad_multipliers()
    rng = random.Random(2)
    failing = []
    for k in ks:
        monkeypatch.setattr(auto, "multiplier", lambda salt, k=k: k)
        salt = rng.getrandbits(64)
        fill = fill_function(_columns_of(salt))
        rows: list[dict[str, int]] = [{} for _ in range(50)]
        for n, row in enumerate(rows, 1):
            fill(n, row)
        if len({r["two"] for r in rows[:40]}) < 2 or len({r["five"] for r in rows}) < 3:
            failing.append(hex(k))
    assert failing == []


# Column names whose values, in a fixture named "employees" with faker_seed = 7 (tests.support.Project),
# the old hash made one value on all of rows 1…20
FLAT_BEFORE = ("flag_65", "flag_202", "kind_43", "kind_69")

SCHEMA = """
CREATE TABLE departments (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE teams (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE employees (
    id int PRIMARY KEY,
    department_id int NOT NULL REFERENCES departments (id),
    team_id int NOT NULL REFERENCES teams (id),
""" + ",\n".join(f"    {c} varchar(1) NOT NULL CHECK ({c} IN ('S', 'M'))" for c in FLAT_BEFORE) + "\n);\n"

FIXTURES = '''
from seedkit import fixture


@fixture("teams", count=2, auto=True)
def teams(fake, n):
    pass


@fixture("employees", count=20, auto=True)
def employees(fake, n):
    pass
'''


def test_twenty_auto_rows_take_both_values_of_a_two_value_check(db_url: str, tmp_path: Path) -> None:
    """20 rows, four 2-value CHECK IN columns that came out constant before: each holds both values; the
    two foreign keys (a parent already in the database, picked by ``_pick``; an auto parent, picked by
    its known ids) point at both parents. A rerun writes nothing."""
    p = Project(tmp_path, db_url, envs={"dev": {"include": ["dev"]}})
    p.sql(SCHEMA)
    p.sql("INSERT INTO departments (id, name) VALUES (1, 'a'), (2, 'b')")
    p.write("dev/staff.py", FIXTURES)
    assert seedkit.run("dev", config=p.config()).table("employees").inserted == 20
    for c in FLAT_BEFORE:
        assert sorted(v for (v,) in p.rows(f"SELECT DISTINCT {c} FROM employees")) == ["M", "S"], c
    for c in ("department_id", "team_id"):
        assert sorted(v for (v,) in p.rows(f"SELECT DISTINCT {c} FROM employees")) == [1, 2], c
    assert not seedkit.run("dev", config=p.config()).changed


def _column(name: str, type_: str, kind: str) -> Column:
    return Column(name=name, type=type_, kind=kind, nullable=False)


def test_unique_columns_stay_unique_at_100k_rows() -> None:
    """A unique column takes its uniqueness from the rank of ``n``, never from the hash (which the
    ``>> 24`` makes many-to-one): text with a hashed head (with and without a length limit, an email
    with a hashed local part and domain), a UUID, a date, a number, among hashed columns sharing the
    compiled function's scratch names. 100,000 rows each, all distinct."""
    unique = {"code": ("varchar(12)", "text"), "email": ("varchar(40)", "text"), "slug": ("text", "text"),
              "ref": ("uuid", "uuid"), "day": ("date", "date"), "total": ("numeric(12,2)", "numeric")}
    plain = {"state": ("text", "text"), "qty": ("int", "int"), "note": ("varchar(8)", "text")}
    columns = {name: _column(name, t, k) for name, (t, k) in (unique | plain).items()}
    table = Table(name=TableName(None, "orders"), columns=columns)
    spec = AutoSpec(name="orders", faker_seed=7, faker_locale="en_US")
    count = 100_000
    gens = [(name, _value_gen(col, _bounds(col, None, "postgresql"), spec, table,
                              unique="(n - 1)" if name in unique else None, dialect="postgresql", count=count))
            for name, col in columns.items()]
    fill = fill_function(gens)
    seen: dict[str, set] = {name: set() for name in columns}
    for n in range(1, count + 1):
        row: dict = {}
        fill(n, row)
        for name, value in row.items():
            seen[name].add(value)
    assert {name: len(seen[name]) for name in unique} == dict.fromkeys(unique, count)
    assert all(len(v) <= 12 for v in seen["code"]) and all(len(v) <= 40 and "@" in v for v in seen["email"])
    assert all(isinstance(v, uuid.UUID) for v in seen["ref"]) and all(isinstance(v, Decimal) for v in seen["total"])
    assert all(len(seen[name]) > 1 for name in plain)
