"""CHECK shapes that wrap a column in ``upper()``/``lower()`` or allow NULL beside a rule
(docs/python-fixtures.md, "auto rows"; docs/schema.md), as real schemas write them:
``persontype IS NULL OR upper(persontype::text) = ANY (ARRAY['SC', 'VC'])``. ``auto`` rows draw from the
listed values; the fixtures' JSON Schema keeps refusing nothing the database accepts (``'sc'`` passes the
upper-case check). Whatever else such a check could say stays unsupported: no rule beats a wrong one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seedkit
from seedkit.schema.checks import parse_check
from tests.support import Project

PG_VALUES = "upper((persontype)::text) = ANY (ARRAY['SC'::text, 'VC'::text, 'IN'::text])"


@pytest.mark.parametrize(("check", "column", "values"), [
    # PostgreSQL's own spelling (pg_get_constraintdef), both orders of the NULL branch
    (f"CHECK (((persontype IS NULL) OR ({PG_VALUES})))", "persontype", ("SC", "VC", "IN")),
    ("CHECK (((upper((productline)::text) = ANY (ARRAY['S'::text, 'T'::text])) OR (productline IS NULL)))",
     "productline", ("S", "T")),
    ("CHECK ((upper((gender)::text) = ANY (ARRAY['M'::text, 'F'::text])))", "gender", ("M", "F")),
    ("upper(class) IN ('L', 'M', 'H')", "class", ("L", "M", "H")),
    ("upper(CAST(class AS TEXT)) IN ('L')", "class", ("L",)),
    ("pg_catalog.upper(class) IN ('L')", "class", ("L",)),
    ("upper(style) = 'W'", "style", ("W",)),
    ("'W' = upper(style)", "style", ("W",)),
    ("upper(style) = 'W' OR upper(style) = 'U' OR style IS NULL", "style", ("W", "U")),
    ("lower(size) IN ('xl', 's-1')", "size", ("xl", "s-1")),
    ("size IS NULL OR lower(size::text) = 'xl'::text", "size", ("xl",)),
    ("upper(code) IN ('1A', '-')", "code", ("1A", "-")),  # no letters to change is already upper case
    # the NULL branch beside rules the module already understood
    ("grade IS NULL OR grade IN (1, 2)", "grade", (1, 2)),
    ("s IS NULL OR s = 'a' OR s = 'b'", "s", ("a", "b")),
])
def test_case_and_null_shapes_give_the_listed_values(check: str, column: str, values: tuple) -> None:
    rules = parse_check(check)
    assert list(rules) == [column]
    assert rules[column].values == values


def test_a_case_folded_list_is_not_exact_and_a_null_branch_keeps_exactness() -> None:
    """``upper(c) IN ('S')`` also takes 's': the list is for generating, not for refusing."""
    assert not parse_check("upper(c) IN ('S')")["c"].values_exact
    assert not parse_check("c IS NULL OR upper(c) = 'S'")["c"].values_exact
    assert parse_check("c IS NULL OR c IN ('S')")["c"].values_exact
    merged = parse_check("upper(c) IN ('S', 'T') AND c IN ('S', 's')")["c"]
    assert (merged.values, merged.values_exact) == (("S",), False)


def test_a_null_branch_beside_a_range_or_a_length_keeps_it() -> None:
    r = parse_check("CHECK (((grade IS NULL) OR ((grade >= 1) AND (grade <= 3))))")["grade"]
    assert (r.minimum, r.maximum, r.values) == (1, 3, None)
    r = parse_check("code IS NULL OR length(code) <= 4")["code"]
    assert r.max_length == 4


@pytest.mark.parametrize(("near_miss", "understood"), [
    # lower-case items under upper(): nothing could match them as written
    ("upper(c) = ANY (ARRAY['a'::text])", "upper(c) = ANY (ARRAY['A'::text])"),
    ("upper(c) IN ('S', 'x')", "upper(c) IN ('S', 'X')"),  # one item in the wrong case spoils the list
    ("lower(c) IN ('XL')", "lower(c) IN ('xl')"),
    ("upper(c) IN ('ß')", "upper(c) IN ('SS')"),  # upper('ß') is 'SS', not 'ß'
    ("upper(c) IN (1, 2)", "upper(c) IN ('1', '2')"),  # not text
    ("upper(c) > 'M'", "upper(c) = 'M'"),  # a range under upper() is not a list
    ("upper(c) <> 'S'", "upper(c) = 'S'"),
    ("upper(c || d) IN ('S')", "upper(c) IN ('S')"),  # not one column
    ("upper(c, d) IN ('S')", "upper(c) IN ('S')"),
    ("initcap(c) IN ('S')", "upper(c) IN ('S')"),  # another function
    ("myschema.upper(c) IN ('S')", "pg_catalog.upper(c) IN ('S')"),  # maybe not the built-in
    ("upper(c) IN ('S', d)", "upper(c) IN ('S', 'D')"),  # not all constants
    ("c IS NULL OR c2 > 1", "c IS NULL OR c > 1"),  # the NULL branch is about another column
    ("c IS NULL OR upper(c2) IN ('S')", "c IS NULL OR upper(c) IN ('S')"),
    ("c IS NOT NULL OR c IN ('a')", "c IS NULL OR c IN ('a')"),  # IS NOT NULL is not the NULL branch
    ("c IS NULL OR c IS NULL", "c IS NULL OR c = 1"),
    ("c IS NULL OR (c > 1 AND c2 > 1)", "c IS NULL OR (c > 1 AND c < 9)"),  # a branch on another column too
    # half a branch understood: its rule could allow what f refuses
    ("c IS NULL OR (c > 1 AND f(c))", "c IS NULL OR (c > 1 AND length(c) < 9)"),
    ("c IS NULL OR c > 1 OR c < -1", "c IS NULL OR c = 1 OR c = -1"),  # two ranges are no one range
    ("c IS NULL OR NOT (c IN ('a'))", "c IS NULL OR (c IN ('a'))"),
    ("(c IS NULL AND d = 0) OR c > 1", "c IS NULL OR c > 1"),
    ("upper(c) IN ('S') OR c = 'x' AND d > 1", "upper(c) IN ('S') OR c = 'x'"),
])
def test_near_misses_stay_unsupported(near_miss: str, understood: str) -> None:
    """Each shape one step away from one that is understood gives no rule at all."""
    assert list(parse_check(understood)) == ["c"]
    assert parse_check(near_miss) == {}


def test_an_or_branch_is_used_only_when_wholly_understood() -> None:
    """``a = 'x' OR (a = 'y' AND f(b))``: writing 'y' does not satisfy the second branch."""
    assert parse_check("a = 'x' OR (a = 'y' AND f(b))") == {}


PG_GEAR = """
CREATE TABLE gear (
    id int PRIMARY KEY,
    line char(2) CHECK ((upper(line::text) = ANY (ARRAY['S'::text, 'T'::text, 'M'::text, 'R'::text]))
                        OR line IS NULL),
    kind char(2) NOT NULL CHECK (kind IS NULL OR upper(kind::text) = ANY (ARRAY['SC', 'VC', 'IN'])),
    size varchar(4) CHECK (lower(size) = 'xl' OR size IS NULL),
    grade int CHECK (grade IS NULL OR grade BETWEEN 1 AND 3),
    code text NOT NULL CHECK (upper(code) IN ('A', 'B') AND length(code) = 1)
);
"""

SQLITE_GEAR = """
CREATE TABLE gear (
    id INTEGER PRIMARY KEY,
    line CHAR(2) CHECK (upper(CAST(line AS TEXT)) IN ('S', 'T', 'M', 'R') OR line IS NULL),
    kind CHAR(2) NOT NULL CHECK (kind IS NULL OR upper(kind) IN ('SC', 'VC', 'IN')),
    size VARCHAR(4) CHECK (lower(size) = 'xl' OR size IS NULL),
    grade INTEGER CHECK (grade IS NULL OR grade BETWEEN 1 AND 3),
    code TEXT NOT NULL CHECK (upper(code) IN ('A', 'B') AND length(code) = 1)
);
"""

GEAR_FIXTURE = """from seedkit import fixture


@fixture("gear", count=40, auto=True)
def gear(fake, n):
    pass
"""


def test_auto_rows_keep_case_folded_and_nullable_checks(db_url: str, tmp_path: Path) -> None:
    """Every auto row passes the checks (the database enforces them: the run succeeding is the proof) with
    values from the lists; a YAML row in another case is still accepted, as the database accepts it."""
    p = Project(tmp_path, db_url, envs={"dev": {"include": ["dev"]}})
    p.sql(PG_GEAR if p.dialect == "postgresql" else SQLITE_GEAR)
    p.write("dev/gear.py", GEAR_FIXTURE)
    p.write("dev/gear.yaml", "- {id: 1000, line: s, kind: sc, size: XL, grade: 2, code: b}\n")
    report = seedkit.run("dev", config=p.config())
    assert report.table("gear").inserted == 41
    assert not seedkit.run("dev", config=p.config()).changed

    def column(name: str) -> set:
        return {r[0] for r in p.rows(f"SELECT DISTINCT trim({name}) FROM gear WHERE id < 1000")}

    assert column("line") <= {"S", "T", "M", "R"} and len(column("line")) > 1
    assert column("kind") <= {"SC", "VC", "IN"} and len(column("kind")) > 1
    assert column("size") == {"xl"}
    assert {r[0] for r in p.rows("SELECT DISTINCT grade FROM gear WHERE id < 1000")} <= {1, 2, 3}
    assert column("code") <= {"A", "B"}


def test_the_schema_lists_exact_values_only(pg_url: str, tmp_path: Path) -> None:
    """``grade IS NULL OR grade BETWEEN 1 AND 3`` is exact and carried over; ``upper(line) IN ('S', …)``
    is not (it takes 's' too), so the schema does not list it."""
    from seedkit import schema

    p = Project(tmp_path, pg_url, envs={"dev": {"include": ["dev"]}})
    p.sql(PG_GEAR + "ALTER TABLE gear ADD COLUMN tone text CHECK (tone IS NULL OR tone IN ('dark', 'light'));")
    out = schema.write(p.config()).out
    props = json.loads((out / "gear.schema.json").read_text())["$defs"]["row"]["properties"]
    assert (props["grade"]["anyOf"][0]["minimum"], props["grade"]["anyOf"][0]["maximum"]) == (1, 3)
    assert props["tone"]["anyOf"][0]["enum"] == ["dark", "light"]
    assert "enum" not in props["line"]["anyOf"][0] and "enum" not in props["kind"]["anyOf"][0]
