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

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedkit.seed.fingerprints import Fingerprints
from seedkit.seed.write import Writer
from tests.support import Project, pg_projects
from tests.test_reliability_fold_duplicates import DROP_KEY, KEYS, OWNERS, SCHEMA, Fixture, Step

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
        for _ in range(rng.choice([0, 0, 0, 0, 0, 1, 2])):
            a, b = rng.sample(picks, 2) if rng.random() < 0.5 or len(added) < 2 else rng.sample(added, 2)
            new.dups.append((max(a, b), min(a, b)))
            what.append(f"row {max(a, b)} repeats row {min(a, b)}'s key")
        if rng.random() < 0.05:
            new.nulls = rng.sample(picks, rng.choice([1, 2]))
            what.append(f"NULL keys at {new.nulls}")
        if rng.random() < 0.05:
            new.upper = rng.sample(picks, 3)
            what.append(f"upper-case keys {new.upper}")
        if rng.random() < 0.1:
            new.no_label = rng.choice(added)
            what.append(f"row {new.no_label} without a label")
        if rng.random() < 0.08:
            new.nobody = rng.choice(added)
            what.append(f"row {new.nobody} owned by nobody")
        return Step(f"fixture rows {new.start}..{new.start + new.rows - 1}: " + ", ".join(what), fixture=new,
                    args=["--dry-run"] if rng.random() < 0.08 else [])
    if roll < 0.85:
        n = rng.randint(1, 300)
        choices = [
            (f"DELETE rows from {n}", f"DELETE FROM items WHERE id % 3 = {n % 3} AND code >= 'c{n:05}'"),
            (f"DELETE the last rows from {n}", f"DELETE FROM items WHERE code >= 'c{n:05}'"),
            (f"UPDATE labels from {n}", f"UPDATE items SET label = label || '*' WHERE code >= 'c{n:05}'"),
            (f"insert c{n:05}", f"INSERT INTO items (code, label) SELECT 'c{n:05}', 'outside' "
                                f"WHERE NOT EXISTS (SELECT 1 FROM items WHERE code = 'c{n:05}')"),
            ("truncate", "TRUNCATE items"),
        ]
        text, sql = rng.choice(choices)
        return Step(text, sql=sql)
    if roll < 0.95:
        new_key = rng.choice(["unique"] * 6 + list(KEYS))
        return Step(f"the key becomes: {new_key}", sql=f"{DROP_KEY}; {KEYS[new_key]}")
    on = rng.random() < 0.3
    create = "; CREATE TRIGGER fold BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION fold_code()"
    return Step(f"trigger folding keys {'on' if on else 'off'}",
                sql="DROP TRIGGER IF EXISTS fold ON items" + (create if on else ""))


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


FINGERPRINT = ("SELECT json_build_array(coalesce(sum(g.c), 0), coalesce(sum(g.c::numeric * "
               "hashint8extended(g.x::text::bigint, 0)), 0)::text)::text FROM "
               "(SELECT xmin AS x, count(*) AS c FROM {} GROUP BY xmin) g")


def contents(p: Project) -> tuple:
    """The rows (ids aside), and for each record of a run whether it kept each table's fingerprint, and
    whether the one kept is the table's fingerprint now."""
    with psycopg.connect(p.url) as c:
        rows = tuple(c.execute(q).fetchall() for q in (
            "SELECT code, label, qty, owner_id FROM items ORDER BY code, label", "SELECT name FROM owners ORDER BY 1"))
        kept = ()
        if c.execute("SELECT to_regclass('seedkit_digests') IS NOT NULL").fetchone() == (True,):
            def state(text: str) -> tuple:
                return tuple(sorted((k, v is None, v == json.loads(c.execute(  # type: ignore[index]
                    FINGERPRINT.format(k)).fetchone()[0])) for k, v in json.loads(text).items()))
            kept = tuple((f, t, state(s), n) for f, t, s, n in
                         c.execute("SELECT fixture, table_name, state, rows FROM seedkit_digests ORDER BY 1, 2"))
    return rows, kept


def records(p: Project) -> list[tuple]:
    """The records of what runs left, as stored."""
    with psycopg.connect(p.url) as c:
        if c.execute("SELECT to_regclass('seedkit_digests') IS NOT NULL").fetchone() != (True,):
            return []
        return c.execute("SELECT fixture, table_name, state, rows FROM seedkit_digests ORDER BY 1, 2").fetchall()


def _files(p: Project) -> None:
    p.write("dev/owners.yaml", OWNERS)
    p.write("dev/items.py", Fixture().source())


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=BATCH, files=_files) as make:
        yield make("ranged"), make("plain")


def run_steps(two_projects: tuple[Project, Project], steps: list[Step], history: list[str], i: int,
              recorded: list[list[tuple]] | None = None) -> None:
    recorded = recorded if recorded is not None else [records(two_projects[0])]
    for step in steps:
        history.append(f"{i}: {step.text}")
        outcomes = []
        for p, ranged in zip(two_projects, (True, False)):
            if step.fixture is not None:
                p.write("dev/items.py", step.fixture.source())
            if step.sql is not None:
                p.sql(step.sql)
            code, report = seed(p, step, ranged)
            outcomes.append((code, report, contents(p)))
        where = f"seed {SEED}, step {i} ({step.text}); the steps so far:\n  " + "\n  ".join(history[-20:])
        assert outcomes[0][0] == outcomes[1][0], f"exit codes differ at {where}\n{outcomes[0][1]}\n{outcomes[1][1]}"
        assert outcomes[0][1] == outcomes[1][1], f"reports differ at {where}\n{outcomes[0][1]}\n{outcomes[1][1]}"
        assert outcomes[0][2][0] == outcomes[1][2][0], f"table contents differ at {where}"
        assert outcomes[0][2][1] == outcomes[1][2][1], \
            f"records differ at {where}\n{outcomes[0][2][1]}\n{outcomes[1][2][1]}"
        # what this run recorded (a record it did not write may be stale: the table changed behind its back, or
        # the run compared every row and kept none): each fingerprint kept is the table's own
        now = records(two_projects[0])
        if now != recorded[0]:
            for record in outcomes[0][2][1]:
                assert all(lost or same for _, lost, same in record[2]), \
                    f"a kept fingerprint is not the table's at {where}"
        recorded[0] = now


def test_inserting_by_range_and_the_plain_insert_agree_step_by_step(two_projects) -> None:
    RANGED.clear()
    rng = random.Random(SEED)
    history: list[str] = []
    recorded: list[list[tuple]] = [[]]
    fx = Fixture()
    for i in range(STEPS):
        step = Step("first run") if i == 0 else random_step(rng, fx)
        if step.fixture is not None:
            fx = step.fixture
        run_steps(two_projects, [step], history, i, recorded)
    # the walk inserted by range, and met errors there (a key repeated among the missing rows, a NOT NULL break)
    assert RANGED.count("inserted") >= STEPS // 16, RANGED
    assert RANGED.count("raised") >= 1, RANGED


def test_a_row_committed_meanwhile_undoes_the_insert_by_range(two_projects) -> None:
    """Another session commits a row with one of the missing keys after the classifying join: the table's
    unique key refuses the insert by range, which is undone, and the plain insert leaves that row out, as it
    does when the same commit comes just before it; the fingerprint is followed through the undone insert."""
    RANGED.clear()
    history: list[str] = []
    run_steps(two_projects, [Step("first run", fixture=Fixture(start=1, rows=80))], history, 0)
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
    run_steps(two_projects, [Step("again")], history, 2)
    assert RANGED == ["undone"]
