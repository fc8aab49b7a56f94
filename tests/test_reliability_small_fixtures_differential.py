"""Two shortcuts of the seed engine against the plain path, step by step (a differential test).

- A Python fixture of fewer rows than a batch, with no record of a last run to skip rows by, is compared
  as any fixture is, without a skip tracker (no table shapes, fingerprints or savepoints for it), and its
  few staged keys are checked for repeats by the separate duplicate check rather than folded into the
  classifying join (seed/apply.py ``_few``, seed/fingerprints.py ``tracker``, seed/write.py ``few``).
- A batch of a fixture whose columns all pass through is picked in one pass and checked on what was picked
  (seed/rows.py ``one_pass_maker``); any batch it does not vouch for takes the usual checks.

Two databases get the same random steps — a change of the fixture (row count around the batch size, a
repeated key, a NULL key, a missing or extra column, a reference that does not resolve, with or without a
reference column), or an outside change behind seedkit's back — each followed by ``seedkit run dev --json``
(sometimes ``--check``). One runs with the shortcut, the other with it switched off. After every step both
must have the same exit code, the same report (or the same error, located alike) and the same rows.
``SEEDKIT_DIFF_SEED`` / ``SEEDKIT_DIFF_STEPS`` pick another walk.
"""

from __future__ import annotations

import os
import random
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedkit.seed.apply import Applier
from seedkit.seed.fingerprints import Fingerprints
from seedkit.seed.rows import RowBuilder
from seedkit.seed.write import Writer
from tests.support import Project, pg_projects

pytestmark = pytest.mark.postgres

STEPS = int(os.environ.get("SEEDKIT_DIFF_STEPS", "70"))
SEED = int(os.environ.get("SEEDKIT_DIFF_SEED", "20261201"))
BATCH = 40

SCHEMA = """
CREATE TABLE owners (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE items (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text, qty int,
                    owner_id bigint REFERENCES owners (id));
"""
OWNERS = "key: [name]\nrows:\n  - {name: ann}\n  - {name: bob}\n"


@dataclass
class Fixture:
    rows: int = 20
    tag: str = ""
    every: int = 0
    shift: int = 0
    owned: bool = False
    flaw: str = ""  # dup, none_key, missing, extra, unresolved (at row ``at``)
    at: int = 0

    def source(self) -> str:
        owner = 'ref("owners", ("ann", "bob")[n % 2])' if self.owned else None
        return textwrap.dedent(f"""\
            from seedkit import fixture, ref


            @fixture("items", key=["code"])
            def items(fake):
                for n in range(1, {self.rows} + 1):
                    row = {{"code": f"c{{n:05}}", "label": f"item {{n}}" + ({self.tag!r} if {self.every} and
                           n % {self.every or 1} == 0 else ""), "qty": (n + {self.shift}) % 7}}
                    if {self.owned}:
                        row["owner_id"] = {owner or 'None'}
                    if n == {self.at}:
                        flaw = {self.flaw!r}
                        if flaw == "dup":
                            row["code"] = "c00001"
                        elif flaw == "none_key":
                            row["code"] = None
                        elif flaw == "missing":
                            del row["qty"]
                        elif flaw == "extra":
                            row["extra"] = 1
                        elif flaw == "unresolved" and {self.owned}:
                            row["owner_id"] = ref("owners", "nobody")
                    yield row
            """)


def step(rng: random.Random, fx: Fixture) -> tuple[str, Fixture | None, str | None, list[str]]:
    """(what, a new fixture or None, outside SQL or None, extra arguments)."""
    roll = rng.random()
    if roll < 0.5:
        f = Fixture(**vars(fx))
        f.rows = rng.choice([0, 1, 5, BATCH - 1, BATCH, BATCH + 1, 2 * BATCH - 1, 2 * BATCH, 3 * BATCH + 7])
        f.tag, f.every = rng.choice(["", "!", "?"]), rng.choice([0, 1, 3, 17])
        f.shift = rng.randint(0, 6)
        if rng.random() < 0.2:
            f.owned = not f.owned
        f.flaw, f.at = "", 0
        if rng.random() < 0.3 and f.rows:
            f.flaw = rng.choice(["dup", "none_key", "missing", "extra", "unresolved"])
            f.at = rng.randint(1, f.rows) if f.flaw != "dup" or f.rows < 2 else rng.randint(2, f.rows)
        return f"fixture: {f.rows} rows, {f.flaw or 'no flaw'} {f.at or ''}, owned {f.owned}", f, None, []
    if roll < 0.6:
        return "--check", None, None, ["--check"]
    if roll < 0.8:
        n = rng.randint(1, 2 * BATCH)
        sql = rng.choice([f"UPDATE items SET label = 'by hand' WHERE code = 'c{n:05}'",
                          f"DELETE FROM items WHERE code = 'c{n:05}'",
                          f"INSERT INTO items (code, label) VALUES ('zz{n}', 'x') ON CONFLICT DO NOTHING",
                          "TRUNCATE items"])
        return f"outside: {sql}", None, sql, []
    if roll < 0.9:  # no record of a last run to skip rows by (as in a database restored from before one)
        return "outside: no records", None, "DROP TABLE IF EXISTS seedkit_digests", []
    return "rerun", None, None, []


def contents(p: Project) -> tuple:
    with psycopg.connect(p.url) as c:
        return tuple(c.execute(q).fetchall() for q in (
            "SELECT i.id, i.code, i.label, i.qty, o.name FROM items i LEFT JOIN owners o ON o.id = i.owner_id "
            "ORDER BY i.code", "SELECT * FROM owners ORDER BY name"))


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    def files(p: Project) -> None:
        p.write("dev/owners.yaml", OWNERS)
        p.write("dev/items.py", Fixture().source())

    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=BATCH, files=files) as make:
        yield make("shortcut"), make("plain")


def plain_path(m: pytest.MonkeyPatch, shortcut: str) -> None:
    """Switch the shortcut off: the plain path every run took before it."""
    if shortcut == "few rows":
        m.setattr(Applier, "_few", staticmethod(lambda fp, rows: False))
        m.setattr(Writer, "few", lambda self, stage: False)
    else:
        m.setattr(RowBuilder, "one_pass_maker", lambda self, *args: None)


@pytest.mark.parametrize("shortcut", ["few rows", "one pass"])
def test_shortcut_and_plain_path_agree_step_by_step(two_projects: tuple[Project, Project], shortcut: str) -> None:
    fast, plain = two_projects
    rng = random.Random(f"{SEED}-{shortcut}")
    fx = Fixture()
    history: list[str] = []
    taken: list[Any] = []  # how often the shortcut was taken on the fast side

    real_tracker, real_maker = Fingerprints.tracker, RowBuilder.one_pass_maker

    def tracker(self: Fingerprints, *args: Any, few: bool = False, **kwargs: Any) -> Any:
        got = real_tracker(self, *args, few=few, **kwargs)
        if few and got is None:
            taken.append("untracked")
        return got

    def maker(self: RowBuilder, *args: Any) -> Any:
        picked = real_maker(self, *args)
        if picked is None:
            return None

        def counted(chunk: list) -> Any:
            rows = picked(chunk)
            taken.append(rows is not None)
            return rows
        return counted

    codes: set[int] = set()
    for i in range(STEPS):
        what, new, sql, args = ("first run", None, None, []) if i == 0 else step(rng, fx)
        history.append(f"{i}: {what}")
        if new is not None:
            fx = new
        outcomes = []
        for p, shortcut_on in ((fast, True), (plain, False)):
            if new is not None:
                p.write("dev/items.py", new.source())
            if sql is not None:
                p.sql(sql)
            with pytest.MonkeyPatch.context() as m:
                if shortcut_on:
                    m.setattr(Fingerprints, "tracker", tracker)
                    m.setattr(RowBuilder, "one_pass_maker", maker)
                else:
                    plain_path(m, shortcut)
                code, report = p.seed_report("dev", *args)
            outcomes.append((code, report, contents(p)))
        codes.add(outcomes[0][0])
        where = f"seed {SEED}, {shortcut}, step {i} ({what}); the steps so far:\n  " + "\n  ".join(history[-20:])
        assert outcomes[0][0] == outcomes[1][0], f"exit codes differ at {where}\n{outcomes[0][1]}\n{outcomes[1][1]}"
        assert outcomes[0][1] == outcomes[1][1], f"reports differ at {where}\n{outcomes[0][1]}\n{outcomes[1][1]}"
        assert outcomes[0][2] == outcomes[1][2], f"table contents differ at {where}"
    # the walk took the shortcut, passed batches on to the usual checks, and ended runs in failures
    if shortcut == "few rows":
        assert taken.count("untracked") >= STEPS // 10, taken
    else:
        assert taken.count(True) >= STEPS // 5 and taken.count(False) >= 3, taken
    assert {0, 2} <= codes or {0, 1} <= codes, codes
