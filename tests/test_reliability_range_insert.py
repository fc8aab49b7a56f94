"""Inserting the missing rows by their place among the staged rows is the plain insert: a differential
test (RELIABILITY.md §7).

When the join that classifies the staged rows finds every row missing from the table numbered within one
run of the staging table (a fixture that grew, or a table holding the first part of it), and the table's own
immediate unique key is exactly the fixture's key, the rows of that run are inserted by their numbers
(seed/write.py, ``insert_range``) instead of comparing every staged row with the table once more (``NOT
EXISTS``). Anything not as the join said — another row count, an error, another session's row with one of
their keys committed meanwhile — undoes it under a savepoint, and the plain insert runs.

Two databases side by side get the same random steps — the fixture changes (it grows, shrinks, moves; keys
repeated among rows present or missing, NULL keys, a NOT NULL break, an unresolved reference), outside
changes (rows deleted here and there, changed, inserted ahead of the fixture, a truncate), and changes of
the table's key (deferrable, a plain index, none, a trigger rewriting keys) — then ``seedkit run dev --json``
(sometimes ``--dry-run``). One runs as shipped, the other always with the plain insert. Both must end with
the same exit code, the same report, the same table contents and the same record of what the run left.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import tests.test_reliability_fold_duplicates as fold
from seedkit.seed.fingerprints import Fingerprints
from seedkit.seed.write import Writer
from tests.support import Project, walks
from tests.test_reliability_fold_duplicates import FILES, KEYS, SCHEMA, Fixture, Step

pytestmark = pytest.mark.postgres

STEPS = int(os.environ.get("SEEDKIT_DIFF_STEPS", "80"))
SEED = int(os.environ.get("SEEDKIT_DIFF_SEED", "20261202"))
BATCH = 40

RANGED: list[str] = []  # how each insert by range ended: "inserted", "undone" or "raised"


def random_step(rng: random.Random, fx: Fixture) -> Step:
    roll = rng.random()
    if roll < 0.6:
        grow = rng.random() < 0.6  # the same first rows and more of them: the new ones are one run
        new = Fixture(start=fx.start if grow else rng.randint(1, 60),
                      rows=fx.rows + rng.randint(20, 120) if grow else rng.randint(40, 200),
                      tag=fx.tag if grow and rng.random() < 0.7 else rng.choice(["", "!", "?"]))
        picks = list(range(new.start, new.start + new.rows))
        added = [n for n in picks if n >= fx.start + fx.rows] or picks  # (rows the table may lack)
        what = ["grows" if grow else "moves"]
        fold.spoil(rng, new, what, dups=[0, 0, 0, 0, 0, 1, 2], among=added, nulls=0.05, upper=0.05, no_label=0.1,
              nobody=0.08)
        return Step(f"fixture rows {new.start}..{new.start + new.rows - 1}: " + ", ".join(what), fixture=new,
                    args=["--dry-run"] if rng.random() < 0.08 else [])
    if roll < 0.85:
        return fold.outside_change(rng, rng.randint(1, 300), last=True)
    if roll < 0.95:
        return fold.key_becomes(rng.choice(["unique"] * 6 + list(KEYS)))
    return fold.folding_trigger(rng.random() < 0.3)


def seed(p: Project, step: Step, ranged: bool) -> tuple[int, Any]:
    with pytest.MonkeyPatch.context() as m:
        real_range = Writer.insert_range

        def insert_range(self: Writer, *args: Any) -> Any:
            try:
                done = real_range(self, *args)
            except Exception:
                RANGED.append("raised")
                raise
            RANGED.append("inserted" if done is not None else "undone")
            return done
        m.setattr(Writer, "insert_range", insert_range)
        if not ranged:
            m.setattr(Writer, "inserts_by_range", lambda self, tp, stage: False)
        return p.seed_report("dev", *step.args)


def contents(p: Project) -> tuple:
    """The rows (ids aside), and for each record of a run whether it kept each table's fingerprint, and
    whether the one kept is the table's fingerprint now."""
    with psycopg.connect(p.url) as c:
        rows = tuple(c.execute(q).fetchall() for q in (
            "SELECT code, label, qty, owner_id FROM items ORDER BY code, label", "SELECT name FROM owners ORDER BY 1"))
        return rows, walks.kept(c)


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, ...]]:
    with walks.projects(pg_server, tmp_path, ("ranged", "plain"), schema=SCHEMA, batch_size=BATCH, files=FILES) as made:
        yield made


def walk(two_projects: tuple[Project, ...]) -> walks.Walk:
    """The two sides, inserting by range and not, compared after every step (records and fingerprints too)."""
    return walks.Walk(two_projects, (True, False), SEED, seed, contents, ("table contents", "records"),
                      show=("records",), fingerprints=True)


def test_inserting_by_range_and_the_plain_insert_agree_step_by_step(two_projects) -> None:
    RANGED.clear()
    rng = random.Random(SEED)
    sides = walk(two_projects)
    fx = Fixture()
    for i in range(STEPS):
        step = Step("first run") if i == 0 else random_step(rng, fx)
        if step.fixture is not None:
            fx = step.fixture
        sides.step(i, step)
    # the walk inserted by range, and met errors there (a key repeated among the missing rows, a NOT NULL break)
    assert RANGED.count("inserted") >= STEPS // 16, RANGED
    assert RANGED.count("raised") >= 1, RANGED


def test_a_row_committed_meanwhile_undoes_the_insert_by_range(two_projects) -> None:
    """Another session commits a row with one of the missing keys after the classifying join: the table's
    unique key refuses the insert by range, which is undone, and the plain insert leaves that row out, as it
    does when the same commit comes just before it; the fingerprint is followed through the undone insert."""
    RANGED.clear()
    sides = walk(two_projects)
    sides.step(0, Step("first run", fixture=Fixture(start=1, rows=80)))
    for p, ranged in zip(two_projects, (True, False)):
        p.write("dev/items.py", Fixture(start=1, rows=160).source())
        committed: list[bool] = []
        with pytest.MonkeyPatch.context() as m:
            for name in ("write", "insert_one_version"):  # (the plain insert, the insert by range)
                def hook(self: Fingerprints, statement: str, *args: Any, p: Project = p,
                         committed: list[bool] = committed, real: Any = getattr(Fingerprints, name)) -> Any:
                    if statement.startswith("INSERT") and not committed:
                        committed.append(True)
                        with psycopg.connect(p.url, autocommit=True) as c:
                            c.execute("INSERT INTO items (code, label) VALUES ('c00120', 'outside')")
                    return real(self, statement, *args)
                m.setattr(Fingerprints, name, hook)
            code, report = seed(p, Step("grown"), ranged)
        assert code == 0 and committed, report
        with psycopg.connect(p.url) as c:
            assert c.execute("SELECT label FROM items WHERE code = 'c00120'").fetchone() == ("outside",)
            assert c.execute("SELECT count(*) FROM items").fetchone() == (160,)
    assert RANGED == ["undone"]
    a, b = two_projects
    assert contents(a) == contents(b)
    # the next run finds the outside row changed, and nothing else: on both sides alike
    sides.recorded = walks.records(a)
    sides.step(2, Step("again"))
    assert RANGED == ["undone"]
