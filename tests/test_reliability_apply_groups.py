"""Grouping a fixture's rows by the columns they list and the shape of their references, a column at a time
(seedkit/seed/apply.py ``one_group``) against the row-by-row grouping (``Applier._groups``'s loop).

- ``test_one_group_is_the_row_by_row_grouping``: random rows as the YAML reader gives them — columns in
  several orders, references of several shapes (scalar, mapping, nested, to another table, through another
  column), a column mixing references with plain values or NULL, a subclass of ``Ref``, unhashable values
  and unhashable reference fields — grouped both ways: the same groups (columns, rows, row numbers, the same
  value objects, in the same order), or the same error; and the column-at-a-time grouping is taken for
  every set of rows that makes one group of plain references.
- ``test_runs_grouping_by_column_or_by_row_say_and_leave_the_same``: real runs on two new PostgreSQL
  databases walking the same random steps (fixtures whose references nest two levels, columns where some
  rows hold an id instead of a reference, rows the database rejects, references that do not resolve,
  outside changes), one with the shortcut and one without: the same exit code, report or error, and table
  contents after every step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from seedkit.seed import apply as apply_module
from seedkit.seed.apply import Applier, one_group
from seedkit.seed.model import Ref, Row
from tests.support import Project, pg_projects
from tests.test_reliability_overlap import SCHEMA, World, contents, outside

SEED = 20_261_202


class SubRef(Ref):
    __slots__ = ()


def _value(rng: random.Random, kind: str, shape: int) -> Any:
    if kind == "int":
        return rng.choice([rng.randint(-5, 5), None]) if rng.random() < 0.1 else rng.randint(0, 99)
    if kind == "text":
        odd = ["a", "b", "c", None, 3.5, [1, 2], {"x": 1}]
        return rng.choice(odd) if rng.random() < 0.1 else f"t{rng.randint(0, 9)}"
    # a reference of one of a few shapes (``shape`` the usual one of its column)
    at = ("f.yaml", rng.randint(1, 99), rng.randint(1, 9))
    if shape == 0:
        return Ref("artists", ((None, f"a{rng.randint(0, 5)}"),), None, at)
    if shape == 1:
        inner = Ref("artists", ((None, f"a{rng.randint(0, 5)}"),), None, at)
        return Ref("albums", (("artist_id", inner), ("title", f"al{rng.randint(0, 5)}")), None, at)
    if shape == 2:
        return Ref("albums", (("title", f"al{rng.randint(0, 5)}"),), "id", at)
    return Ref("tracks", (("album_id", rng.randint(0, 9)), ("name", f"n{rng.randint(0, 9)}")), None, at)


def _rows(rng: random.Random) -> tuple[list[Row], bool]:
    """Random rows, and whether they were made to be one group of plain references."""
    cols = rng.sample(["a", "b", "c", "d", "e"], rng.randint(1, 5))
    kinds = {c: rng.choice(["int", "text", "ref", "ref"]) for c in cols}
    shapes = {c: rng.randrange(4) for c in cols}
    uniform = rng.random() < 0.5
    rows = []
    for n in range(rng.randint(0, 40)):
        order = list(cols)
        values: dict[str, Any] = {}
        for c in order:
            if kinds[c] == "ref":
                values[c] = _value(rng, "ref", shapes[c])
            else:
                v = _value(rng, kinds[c], 0)
                values[c] = v if not uniform else (v if isinstance(v, (int, str)) or v is None else "x")
        if not uniform:
            flaw = rng.random()
            if flaw < 0.15:
                rng.shuffle(order)
                values = {c: values[c] for c in order}
            elif flaw < 0.25 and len(cols) > 1:
                values.pop(rng.choice(cols))
            elif flaw < 0.35:
                c = rng.choice(cols)
                values[c] = rng.choice([None, 7, "x", _value(rng, "ref", rng.randrange(4))])
            elif flaw < 0.4:
                c = rng.choice(cols)
                values[c] = SubRef("artists", ((None, "a1"),))
            elif flaw < 0.45:
                c = rng.choice(cols)
                values[c] = Ref(["unhashable"], ((None, "a1"),))  # type: ignore[arg-type]
            elif flaw < 0.5:
                values["f"] = n
        rows.append(Row(values, ("f.yaml", n + 4, None, n + 1)))
    return rows, uniform and any(kinds[c] == "ref" for c in cols) and bool(rows)


def _grouped(rows: list[Row], *, shortcut: bool) -> Any:
    """``Applier._groups`` of a fixture holding ``rows``: [(columns, rows)] or the error it raised."""
    fixture = SimpleNamespace(rows=rows, numbered=lambda: ((n, r.values) for n, r in enumerate(rows, start=1)))
    applier = Applier.__new__(Applier)
    applier._first_refs = lambda fp, rows: {}  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as m:
        if not shortcut:
            m.setattr(apply_module, "one_group", lambda rows: None)
        try:
            return [(cols, [(n, id(v), v) for n, v in group]) for cols, _, group in
                    applier._groups(SimpleNamespace(fixture=fixture))]  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - compared
            return (type(exc), str(exc))


def test_one_group_is_the_row_by_row_grouping() -> None:
    rng = random.Random(SEED)
    taken = made = 0
    for _ in range(3000):
        rows, plain_refs = _rows(rng)
        fast, plain = _grouped(rows, shortcut=True), _grouped(rows, shortcut=False)
        assert fast == plain, rows
        got = one_group(rows)
        if got is not None:
            taken += 1
            assert isinstance(plain, list) and len(plain) == 1, rows
            assert got[1] == [(n, r.values) for n, r in enumerate(rows, start=1)]
        if plain_refs:
            made += 1
            assert got is not None, rows
    assert taken >= 1000 and made >= 500, (taken, made)


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA) as make:
        yield make("by_column"), make("by_row")


def test_runs_grouping_by_column_or_by_row_say_and_leave_the_same(two_projects) -> None:
    fast, slow = two_projects
    rng = random.Random(SEED + 1)
    world = World(rng)
    used: list[bool] = []
    real = apply_module.one_group

    def noted(rows: list) -> Any:
        got = real(rows)
        used.append(got is not None)
        return got

    history: list[str] = []
    codes: set[int] = set()
    for i in range(24):
        what, sql = "first run", None
        mixed = rng.random() < 0.4  # rows of one file listing their columns in two orders
        if i:
            roll = rng.random()
            if roll < 0.5:
                world.fresh()
                what = "new fixtures, " + world.spoil()
                if rng.random() < 0.6:
                    sql = "TRUNCATE artists, albums, tracks, plays RESTART IDENTITY"
            elif roll < 0.6 and world.tracks:  # a column of references where one row holds an id
                rng.choice(world.tracks)["album"] = None
                what = "an id among references"
            elif roll < 0.7:
                what = "edit: " + world.edit()
            else:
                what, sql = world.outside()
        history.append(f"{i}: {what}" + (" (+ mixed column orders)" if mixed else ""))
        outcomes = []
        for p, shortcut in ((fast, True), (slow, False)):
            world.files(p)
            if mixed:
                p.write("dev/01b_artists.yaml", "table: artists\nkey: [name]\nrows:\n- {name: x1, country: c}\n"
                        "- {country: d, name: x2}\n- {name: x3}\n- {name: x4, country: null}\n")
            if sql:
                outside(p, sql)
            with pytest.MonkeyPatch.context() as m:
                m.setattr(apply_module, "one_group", noted if shortcut else lambda rows: None)
                code, report = p.seed_report("dev")
            outcomes.append((code, report, contents(p)))
        where = f"seed {SEED + 1}, step {i}:\n  " + "\n  ".join(history[-10:])
        assert outcomes[0] == outcomes[1], where
        codes.add(outcomes[0][0])
    assert used.count(True) >= 24 and used.count(False) >= 1, (used.count(True), used.count(False))
    assert {0, 1} <= codes, codes
