"""Updating a rerun's changed rows while the rest stream is exact: a differential test (RELIABILITY.md §7).

A rerun that skips unchanged rows updates the rows staged so far, between COPYs, while the next
batches are made (seed/early.py). Three databases side by side get the same random steps (a change of
the fixture, rows changed, deleted or inserted behind seedkit's back, catalog changes, another session
committing while the run streams or after its last write), each followed by ``seedkit run dev --json``:

- ``early``: early updates after as few as ``MIN_ROWS`` staged rows (so a fixture of a few hundred rows
  takes several of them);
- ``late``: the same skipping with ``SEEDKIT_EARLY_UPDATES=0`` (every changed row updated at the end);
- ``plain``: no skipping at all (every row staged and compared).

A YAML table filled before the items (``a_notes``) is emptied behind seedkit's back every other step, so
the early side's next run inserts it on the overlap's thread (seed/overlap.py) in the same run that
updates items early; the other two sides run with both off (``SEEDKIT_OVERLAP=0``).

After every step all three have the same exit code, the same report and the same table contents. The
walk must have updated rows early many times, undone early updates when another session's commit made
the fixture stage again, finished runs whose rows past the end of the last run were classified
after early updates, and met the overlap's insert and early updates in one run a few times.
``SEEDKIT_EARLY_SEED`` / ``SEEDKIT_EARLY_STEPS`` replay another walk.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

import tests.test_reliability_skipping as skipping
from seedkit.db.postgres import PostgresDatabase
from seedkit.seed import early, overlap
from seedkit.seed.apply import Applier
from seedkit.seed.context import Stage
from seedkit.seed.skip_tracker import Restage
from seedkit.seed.write import Writer
from tests.support import Project, pg_projects, walks
from tests.test_reliability_skipping import ROWS as ITEMS
from tests.test_reliability_skipping import Sent, both_ways, items, report_of
from tests.test_reliability_skipping import Step as ItemsStep
from tests.test_reliability_skipping_differential import (
    ENUM_SWAP,
    OWNERS,
    SCHEMA,
    Fixture,
    Outside,
    contents,
    other_session,
    row_changes,
)

pytestmark = pytest.mark.postgres

STEPS = int(os.environ.get("SEEDKIT_EARLY_STEPS", "120"))
SEED = int(os.environ.get("SEEDKIT_EARLY_SEED", "20261201"))
BATCH = 40
ROWS = 400


@dataclass
class Step:
    text: str
    fixture: Fixture | None = None
    sql: str | None = None  # behind seedkit's back, before the run
    during: tuple[int, str] | None = None  # another session commits this once the run made that many rows
    at_end: str | None = None  # … or after the run's last write, before it commits
    args: list[str] = field(default_factory=list)
    notes_emptied: bool = False  # a_notes is emptied behind seedkit's back before the run


class World(Outside):
    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng
        self.fixture = Fixture(rows=ROWS, label_every=0)

    def step(self) -> Step:
        rng, f = self.rng, self.fixture
        roll = rng.random()
        row = f"c{rng.randint(1, f.rows):05}"
        if roll < 0.40:  # mostly: a few rows here and there change, the rest is skipped
            g = Fixture(**vars(f))
            what = rng.choice(["label", "label", "label", "qty", "owner", "price", "grow", "shrink", "dup"])
            g.dup = rng.choice([2, 150, g.rows]) if what == "dup" else 0
            if what == "label":
                g.label_every, g.label_tag = rng.choice([0, 3, 7, 50, 97]), rng.choice(["!", "?", "…"])
            elif what == "qty":
                g.qty_shift = rng.randint(0, 6)
            elif what == "owner":
                g.owner_shift = rng.randint(0, 2)
            elif what == "price":
                g.price_cents = rng.choice([5, 7, 55])
            elif what == "grow":  # rows past the end of the last run: classified, after the early updates
                g.rows += rng.choice([1, 45, 120])
                g.label_every, g.label_tag = rng.choice([7, 50]), rng.choice(["!", "?"])
            elif what == "shrink":
                g.rows = max(200, g.rows - rng.choice([1, 37]))
            g.price_as = rng.choice(["str", "decimal"])
            if rng.random() < 0.15:
                g.owned = not g.owned
                what += ", owners by reference" if g.owned else ", no owners"
            self.fixture = g
            return Step(f"fixture: {what}", fixture=g)
        if roll < 0.48:
            return Step("rerun")
        if roll < 0.58:
            sql = rng.choice(row_changes(row, f"= '{row}'"))
            return Step(f"outside: {sql}", sql=sql)
        if roll < 0.62:
            text, sql = self.insert()
            return Step(f"outside: {text}", sql=sql)
        if roll < 0.64:
            return Step("outside: truncate", sql="TRUNCATE items")
        if roll < 0.70:
            choice = rng.choice(["type", "column", "enum", "trigger"])
            if choice == "column":
                return Step("catalog: drop and re-add size with a default",
                            sql="ALTER TABLE items DROP COLUMN size; ALTER TABLE items ADD COLUMN size small DEFAULT 1")
            if choice == "enum":
                return Step("catalog: enum values swapped", sql=ENUM_SWAP)
            text, sql = self.toggle_qty() if choice == "type" else self.toggle_trigger()
            return Step(f"catalog: {text}", sql=sql)
        if roll < 0.90:
            # another session commits once three quarters of the rows were made (after early updates): a row
            # not made yet (never one this run already updated: that session would wait for this run's commit)
            at = f.rows * 3 // 4
            ahead = f"c{rng.randint(at + BATCH + 1, f.rows):05}"
            foreign = [  # rows no run writes
                "INSERT INTO items (code, label) VALUES ('zz-meanwhile', 'x') ON CONFLICT DO NOTHING",
                "DELETE FROM items WHERE code LIKE 'zz%'",
                "UPDATE owners SET name = name WHERE name = 'bob'",
            ]
            if rng.random() < 0.3:
                statement = rng.choice(foreign)
                return Step(f"another session at the end of the run: {statement}", at_end=statement)
            statement = rng.choice([*foreign, f"UPDATE items SET label = 'meanwhile' WHERE code = '{ahead}'",
                                    f"UPDATE items SET qty = qty WHERE code = '{ahead}'",
                                    f"DELETE FROM items WHERE code = '{ahead}'"])
            g = Fixture(**vars(f))
            if rng.random() < 0.7:  # rows change too: some are updated before that session commits
                g.label_every, g.label_tag = rng.choice([3, 7, 50]), rng.choice(["!", "?", "…"])
                self.fixture = g
            return Step(f"another session while the run streams: {statement}; fixture: label every "
                        f"{g.label_every} {g.label_tag}", fixture=g, during=(at, statement))
        return Step("rerun")


EARLY: list[str] = []  # what happened to early updates, on the early side
BACKGROUND: list[str] = []  # tables whose insert ran on the overlap's thread (seed/overlap.py), early side
# a table filled from YAML before the items: emptied behind seedkit's back every few steps, so the next run
# inserts it on the overlap's thread in the same run that updates items early (both off on the other sides)
NOTES_SCHEMA = "CREATE TABLE a_notes (id bigserial PRIMARY KEY, slug text NOT NULL UNIQUE, " \
               "owner_id bigint REFERENCES owners (id))"
NOTES = "key: [slug]\nrows:\n" + "".join(f"  - {{slug: n{i}, owner_id: !ref owners/{('ann', 'bob', 'cyd')[i % 3]}}}\n"
                                          for i in range(30))


@contextmanager
def watching(p: Project, step: Step, side: str) -> Iterator[None]:
    """Fire the step's other session; on the early side, note the early updates and what became of them."""
    fired: list[str] = []
    real_groups, real_save = Applier._groups, Applier._save_digests
    real_early, real_one, real_classify = Writer.early_updates, Writer.update_in_one, Writer.classify_and_write
    real_submit = overlap.Background.submit

    def groups(self: Applier, fp: Any) -> Iterator[tuple]:
        for cols, shapes, rows in real_groups(self, fp):
            yield cols, shapes, (watch(rows) if str(fp.table.name) == "items" and step.during else rows)

    def watch(rows: Iterator) -> Iterator:
        assert step.during is not None
        for i, row in enumerate(rows):
            if i == step.during[0] and not fired:
                fired.append("during")
                time.sleep(0.05)  # (the early updates due by now run meanwhile, in the other thread)
                other_session(p, step.during[1])
            yield row

    def save(self: Applier) -> None:
        if step.at_end and not fired:
            fired.append("at_end")
            other_session(p, step.at_end)
        real_save(self)

    def early_updates(self: Writer, tp: Any, stage: Stage) -> Any:
        update = real_early(self, tp, stage)
        if update is None:
            return None

        def noted(lo: int, hi: int) -> bool:
            done = update(lo, hi)
            EARLY.append("updated" if done else "refused")
            return done
        return noted

    def ended(real: Any, how: str) -> Any:
        def run(self: Writer, tp: Any, stage: Stage, *args: Any, **kw: Any) -> None:
            applied = stage.tracker.applied if stage.tracker is not None else 0
            try:
                real(self, tp, stage, *args, **kw)
            except Restage:
                if applied:
                    EARLY.append("undone")
                raise
            if applied and how == "classified":
                EARLY.append("classified after")
        return run

    def submit(self: Any, *a: Any, **k: Any) -> None:
        BACKGROUND.append("background")
        real_submit(self, *a, **k)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(Applier, "_groups", groups)
        m.setattr(Applier, "_save_digests", save)
        if side == "early":
            m.setattr(overlap.Background, "submit", submit)
            m.setattr(early, "MIN_ROWS", 4)
            m.setattr(Writer, "early_updates", early_updates)
            m.setattr(Writer, "update_in_one", ended(real_one, "one"))
            m.setattr(Writer, "classify_and_write", ended(real_classify, "classified"))
        else:
            m.setenv(early.ENV, "0")
            m.setenv(overlap.ENV, "0")
        if side == "plain":  # without a row formatter every row is staged and compared
            m.setattr(PostgresDatabase, "row_formatter", lambda self: None)
        yield


def _notes(p: Project) -> list:
    """a_notes by slug and owner name (ids come from the insert's plan: not compared)."""
    with psycopg.connect(p.url) as c:
        return c.execute("SELECT n.slug, o.name FROM a_notes n LEFT JOIN owners o ON o.id = n.owner_id "
                         "ORDER BY n.slug").fetchall()


@pytest.fixture
def three_projects(pg_server: str, tmp_path: Path) -> Iterator[dict[str, Project]]:
    files = {"dev/owners.yaml": OWNERS, "dev/a_notes.yaml": NOTES,
             "dev/items.py": Fixture(rows=ROWS, label_every=0).source()}
    sides = ("early", "late", "plain")
    with walks.projects(pg_server, tmp_path, sides, schema=SCHEMA + NOTES_SCHEMA + ";\n", batch_size=BATCH,
                        files=files) as made:
        yield dict(zip(sides, made))


def prepare(p: Project, step: Step) -> None:
    """As ``walks.prepare``, with a_notes emptied between the fixture and the SQL (every other step)."""
    if step.fixture is not None:
        p.write("dev/items.py", step.fixture.source())
    if step.notes_emptied:
        p.sql("TRUNCATE a_notes")
    if step.sql is not None:
        p.sql(step.sql)


def test_early_updates_agree_with_late_ones_and_with_comparing_every_row(three_projects) -> None:
    EARLY.clear()
    together = 0  # runs that inserted on the overlap's thread and updated early

    def run(p: Project, step: Step, side: str) -> tuple[int, Any]:
        nonlocal together
        early_before = EARLY.count("updated")
        BACKGROUND.clear()
        with watching(p, step, side):
            code, report = p.seed_report("dev", *step.args)
        together += side == "early" and bool(BACKGROUND) and EARLY.count("updated") > early_before
        return code, report

    world = World(random.Random(SEED))
    sides = walks.Walk(three_projects.values(), three_projects, SEED, run, lambda p: (contents(p), _notes(p)),
                       ("table contents", "a_notes"), tail=25, prepare=prepare)
    for i in range(STEPS):
        step = Step("first run") if i == 0 else world.step()
        step.notes_emptied = i % 2 == 1
        sides.step(i, step, note=" (a_notes emptied)" if step.notes_emptied else "")
    # the walk did update rows early, undo early updates on a restage, and classify after early updates
    seen = Counter(EARLY)
    print(f"early updates: {dict(seen)}")
    assert seen["updated"] >= STEPS // 4, seen
    assert seen["undone"] >= STEPS // 40, seen
    assert seen["classified after"] >= STEPS // 60, seen
    assert together >= STEPS // 30, together  # the overlap's insert and early updates met in one run


# -- targeted: fingerprints, a refused early update, a rejected value in a later COPY -------------------------
# (run both ways by tests/test_reliability_skipping.py's ``both_ways``, on its projects)
@pytest.fixture
def new_project(pg_server: str, tmp_path: Path) -> Iterator[Callable[[str], Project]]:
    with pg_projects(pg_server, tmp_path, schema=skipping.SCHEMA, batch_size=skipping.BATCH,
                     files=lambda p: p.write("dev/owners.yaml", skipping.OWNERS)) as make:
        yield make


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    return skipping.sent.__wrapped__(monkeypatch)


@pytest.fixture
def early_often(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Early updates after 4 staged rows; what became of each (as in ``watching``)."""
    done: list[str] = []
    real = Writer.early_updates

    def early_updates(self: Writer, tp: Any, stage: Stage) -> Any:
        update = real(self, tp, stage)

        def noted(lo: int, hi: int) -> bool:
            assert update is not None
            ok = update(lo, hi)
            done.append("updated" if ok else "refused")
            return ok
        return None if update is None else noted

    monkeypatch.setattr(early, "MIN_ROWS", 4)
    monkeypatch.setattr(Writer, "early_updates", early_updates)
    return done


def test_early_updates_leave_the_fingerprints_the_table_has(new_project, monkeypatch, sent, early_often) -> None:
    """Rows updated early move the recorded fingerprint as the final statement's do: the run after finds the
    table as recorded and stages nothing (``both_ways`` also checks every record against its table)."""
    label = "f'item {n}' + ('!' if n % 50 == 7 else '')"
    seen = both_ways(new_project, monkeypatch, sent, [ItemsStep(items()), ItemsStep(items(label=label)), ItemsStep()])
    assert report_of(seen[1])[1] == ("items", 0, ITEMS // 50, ITEMS - ITEMS // 50, 0)
    assert early_often.count("updated") >= 2  # (and once more on the plain side: no, it never skips)
    assert seen[2][1] == 0 and report_of(seen[2])[1] == ("items", 0, 0, ITEMS, 0)


def test_an_early_update_the_database_refuses_leaves_the_rows_to_the_final_statement(
        new_project, monkeypatch, sent, early_often) -> None:
    """An early update that fails is undone under its savepoint, no other is tried, and the statement at the
    end updates every changed row: the same rows, report and record as comparing every row."""
    real = Writer.one_update
    refused: list[str] = []

    def failing_once(self: Writer, tp: Any, stage: Stage, src: str, compare: list[str], version: str,
                     unresolved_in: str | None) -> str:
        if unresolved_in is None and not refused:  # an early update's statement
            refused.append(src)
            return "SELECT 1 / 0, 0, 0, 0"
        return real(self, tp, stage, src, compare, version, unresolved_in)

    monkeypatch.setattr(Writer, "one_update", failing_once)
    label = "f'item {n}' + ('?' if n % 20 == 3 else '')"
    seen = both_ways(new_project, monkeypatch, sent, [ItemsStep(items()), ItemsStep(items(label=label)), ItemsStep()])
    assert early_often == ["refused"]
    assert report_of(seen[1])[1] == ("items", 0, ITEMS // 20, ITEMS - ITEMS // 20, 0)
    assert seen[2][1] == 0


def test_a_value_rejected_in_a_later_copy_names_its_row(new_project, monkeypatch, sent, early_often) -> None:
    """After early updates the staged rows go in several COPYs: a value the database rejects is still located
    by its line counted from the first staged row."""
    label = "f'item {n}' + ('!' if n % 10 == 1 else '')"
    seen = both_ways(new_project, monkeypatch, sent, [
        ItemsStep(items()), ItemsStep(items(label=label, qty="'many' if n == 777 else n % 7"))])
    assert early_often.count("updated") >= 1  # (rows before 777 updated early, then undone with the run)
    error = report_of(seen[1])
    assert isinstance(error, str) and "row 777" in error and "qty" in error


def test_seedkit_early_updates_0_leaves_every_update_to_the_end(new_project, monkeypatch, sent, early_often) -> None:
    monkeypatch.setenv(early.ENV, "0")
    label = "f'item {n}' + ('!' if n % 50 == 7 else '')"
    seen = both_ways(new_project, monkeypatch, sent, [ItemsStep(items()), ItemsStep(items(label=label))])
    assert report_of(seen[1])[1] == ("items", 0, ITEMS // 50, ITEMS - ITEMS // 50, 0)
    assert early_often == []  # not one early update
