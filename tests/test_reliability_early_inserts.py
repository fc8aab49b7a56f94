"""Inserting a streamed fixture's rows into a table that was empty while the rest stream is the single
insert at the end: a differential test (RELIABILITY.md §7).

A Python fixture streamed into an empty table inserts the rows staged so far between two COPYs, on the
run's connection in another thread, while the next batches are made (seed/early.py, ``eager``;
seed/write.py, ``early_inserts``): a few statements, each taking its rows by their staging ordinals, the
rest by the insert at the end. One that is not exactly its rows inserted (a reference that does not
resolve, a row the table refuses, another session's row holding a key) is undone under its savepoint and
leaves every row not inserted yet to the statement at the end.

Two databases side by side get the same random steps — the table emptied behind seedkit's back and a new
fixture (keys repeated, NULL keys, a NOT NULL break, an unresolved reference, upper-case keys, several
hundred rows so that several early inserts run), reruns, outside changes, changes of the table's key
(deferrable, a plain index, none) and a trigger rewriting keys, another session committing a row with one
of the fixture's keys while the run streams — then ``seedkit run dev --json`` (sometimes ``--dry-run``).
One runs as shipped (early inserts after as few as ``BATCH`` staged rows), the other with
``SEEDKIT_EARLY_UPDATES=0``. Both must end with the same exit code, the same report, the same table
contents and the same record of what the run left, and every fingerprint kept must be the table's.
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
from seedkit.seed import early
from seedkit.seed.fingerprints import Fingerprints
from seedkit.seed.write import Writer
from tests.support import Project, walks
from tests.test_reliability_fold_duplicates import FILES, KEYS, SCHEMA, Fixture, Step
from tests.test_reliability_range_insert import contents

pytestmark = pytest.mark.postgres

STEPS = int(os.environ.get("SEEDKIT_EARLY_INSERT_STEPS", "70"))
SEED = int(os.environ.get("SEEDKIT_EARLY_INSERT_SEED", "20261203"))
BATCH = 40

EARLY: list[str] = []  # how each early insert ended: "inserted" or "undone"
DURING: list[bool] = []  # another session committed while a run streamed (which side)


def random_step(rng: random.Random) -> tuple[Step, str | None]:
    """A step, and the SQL another session commits while the run streams (before its second INSERT on the
    side inserting early, before its only one on the other)."""
    roll = rng.random()
    if roll < 0.65:
        new = Fixture(start=rng.randint(1, 60), rows=rng.randint(60, 420), tag=rng.choice(["", "!", "?"]))
        what = ["empty table"]
        fold.spoil(rng, new, what, dups=[0, 0, 0, 0, 0, 1, 2], nulls=0.06, upper=0.08, no_label=0.1, nobody=0.1)
        during = None
        if not new.dups and not new.upper and rng.random() < 0.15:
            last = new.start + new.rows - 1  # (a key only the last row has, not inserted before the hook)
            during = f"INSERT INTO items (code, label) VALUES ('c{last:05}', 'outside')"
            what.append(f"another session commits c{last:05} meanwhile")
        step = Step(f"fixture rows {new.start}..{new.start + new.rows - 1}: " + ", ".join(what), fixture=new,
                    sql="TRUNCATE items", args=["--dry-run"] if rng.random() < 0.06 else [])
        return step, during
    if roll < 0.8:
        return Step("again"), None
    if roll < 0.9:
        return fold.key_becomes(rng.choice(["unique"] * 4 + list(KEYS))), None
    return fold.folding_trigger(rng.random() < 0.3), None


def seed(p: Project, step: Step, eager: bool, during: str | None) -> tuple[int, Any]:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(early, "MIN_ROWS", BATCH)
        if not eager:
            m.setenv(early.ENV, "0")
        real_early = Writer.early_inserts

        def early_inserts(self: Writer, *args: Any) -> Any:
            insert = real_early(self, *args)
            if insert is None:
                return None

            def counted(lo: int, hi: int) -> bool:
                done = insert(lo, hi)
                EARLY.append("inserted" if done else "undone")
                return done
            return counted
        m.setattr(Writer, "early_inserts", early_inserts)
        if during is not None:
            inserts: list[str] = []
            for name in ("write_into_empty", "insert_one_version"):  # (the insert at the end, an early one)
                def hook(self: Fingerprints, statement: str, *args: Any, real: Any = getattr(Fingerprints, name)
                         ) -> Any:
                    if statement.startswith("INSERT"):
                        inserts.append(statement)
                        if len(inserts) == (2 if eager else 1):
                            with psycopg.connect(p.url, autocommit=True) as c:
                                c.execute(during)  # type: ignore[arg-type]
                            DURING.append(eager)
                    return real(self, statement, *args)
                m.setattr(Fingerprints, name, hook)
        return p.seed_report("dev", *step.args)


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, ...]]:
    with walks.projects(pg_server, tmp_path, ("early", "late"), schema=SCHEMA, batch_size=BATCH, files=FILES) as made:
        yield made


def test_early_inserts_and_the_single_insert_agree_step_by_step(two_projects) -> None:
    EARLY.clear()
    DURING.clear()
    rng = random.Random(SEED)
    sides = walks.Walk(two_projects, (True, False), SEED, seed, contents, ("table contents", "records"),
                       show=("records",), fingerprints=True)
    for i in range(STEPS):
        step, during = (Step("first run"), None) if i == 0 else random_step(rng)
        sides.step(i, step, during)
    # the walk inserted early many times, and undid early inserts (an unresolved reference, a refused row)
    assert EARLY.count("inserted") >= STEPS, EARLY
    assert EARLY.count("undone") >= 2, EARLY
    assert DURING.count(True) >= 2 and DURING.count(False) >= 2, DURING


def test_seedkit_early_updates_0_inserts_nothing_early(two_projects) -> None:
    EARLY.clear()
    a, _ = two_projects
    a.write("dev/items.py", Fixture(rows=300).source())
    code, report = seed(a, Step("first"), False, None)
    assert code == 0 and report["totals"]["inserted"] == 302, report
    assert EARLY == []
    a.sql("TRUNCATE items")
    code, report = seed(a, Step("again"), True, None)
    assert code == 0 and report["totals"]["inserted"] == 300, report
    assert EARLY.count("inserted") >= 3, EARLY  # 40, 40, 80, 160 of 300 rows staged in batches of 40


@pytest.mark.parametrize("eager", [True, False], ids=["early", "late"])
def test_the_connection_ended_while_rows_go_in(two_projects, eager: bool) -> None:
    """The run's backend is terminated as its first insert starts (early: while the fixture is still making
    rows): the run fails as when its single insert at the end is the one ended, and writes nothing."""
    p = two_projects[0]
    p.write("dev/items.py", Fixture(rows=300).source())
    p.sql("TRUNCATE items")
    ended: list[int] = []
    with pytest.MonkeyPatch.context() as m:
        m.setattr(early, "MIN_ROWS", BATCH)
        m.setenv(early.ENV, "1" if eager else "0")
        for name in ("write_into_empty", "insert_one_version"):
            def hook(self: Fingerprints, statement: str, *args: Any, real: Any = getattr(Fingerprints, name)) -> Any:
                if statement.startswith("INSERT INTO") and not ended:
                    assert ("AND s._n <=" in statement) == eager  # (early: an insert of the rows staged so far)
                    with psycopg.connect(p.url, autocommit=True) as c:
                        ended.append(c.execute(  # type: ignore[union-attr]
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'").rowcount)
                return real(self, statement, *args)
            m.setattr(Fingerprints, name, hook)
        result = p.cli("run", "dev")
    assert ended == [1], ended
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: connection lost: "), result.stderr
    assert "nothing was written" in result.stderr, result.stderr
    with psycopg.connect(p.url) as c:
        assert c.execute("SELECT count(*) FROM items").fetchone() == (0,)
