"""Skipping unchanged rows is exact: a differential test (RELIABILITY.md §7).

Two databases side by side get the same steps: a change of the fixture, an outside change behind
seedkit's back, or a commit by another session while the run is under way, followed by
``seedkit run dev --json`` (sometimes ``--check`` or ``--dry-run``) through the command line. One
database runs seedkit as shipped (it skips rows whose digests say they are unchanged), the other with
skipping switched off (every row is staged and compared). After every step both must have the same
exit code, the same report and the same table contents.

The steps come from a seeded random generator (``SEEDKIT_DIFF_SEED`` picks another seed,
``SEEDKIT_DIFF_STEPS`` another length); a failure names the seed and the step, and the steps that led
to it, so it can be replayed.
"""

from __future__ import annotations

import os
import random
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedkit.db.postgres import PostgresDatabase
from seedkit.seed.apply import Applier
from seedkit.seed.skip_tracker import Restage
from seedkit.seed.write import Writer
from tests.support import Project, walks
from tests.support.pgcluster import find_bindir

pytestmark = pytest.mark.postgres

STEPS = int(os.environ.get("SEEDKIT_DIFF_STEPS", "200"))
SEED = int(os.environ.get("SEEDKIT_DIFF_SEED", "20261130"))
BATCH = 40  # rows per batch: a fixture of a few hundred rows spans several batches

SCHEMA = """
CREATE TYPE kind AS ENUM ('plain', 'fancy', 'rare');
CREATE DOMAIN small AS int;
CREATE TABLE owners (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE items (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text, qty int, price numeric(10,2),
                    kind kind, size small, owner_id bigint REFERENCES owners (id));
CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.label := upper(NEW.label); RETURN NEW; END $$;
"""
OWNERS = """
key: [name]
rows:
  - {name: ann}
  - {name: bob}
  - {name: cyd}
"""


@dataclass
class Fixture:
    """The parameters of the generated items fixture; a step may change any of them."""

    rows: int = 200
    label_every: int = 0  # every n-th row gets another label (0: none)
    label_tag: str = "!"
    qty_shift: int = 0
    kind_shift: int = 0
    owner_shift: int = 0
    price_cents: int = 5
    # a Decimal price makes every batch digested as COPY text; a str one (the same text) as marshal writes
    # the values: a step may switch between the two
    price_as: str = "str"
    dup: int = 0  # this row repeats the first row's key (0: none): the run fails, both ways alike
    # owners by reference, or none: a fixture without references updates its few changed rows in one
    # statement, with no classifying pass (seed/write.py, ``update_in_one``)
    owned: bool = True

    def source(self) -> str:
        every = self.label_every
        price = f"Decimal(n) + Decimal({self.price_cents}) / 100"
        price = f"str({price})" if self.price_as == "str" else price
        label = f"f'item {{n}}' + ({self.label_tag!r} if {every} and n % {every or 1} == 0 else '')"
        owner = (f'ref("owners", ("ann", "bob", "cyd")[(n + {self.owner_shift}) % 3], column="id")' if self.owned
                 else "None")
        return textwrap.dedent(f"""\
            from decimal import Decimal

            from seedkit import fixture, ref


            @fixture("items", key=["code"])
            def items(fake):
                for n in range(1, {self.rows} + 1):
                    yield {{"code": f"c{{(1 if n == {self.dup} else n):05}}", "label": {label},
                           "qty": (n + {self.qty_shift}) % 7, "price": {price},
                           "kind": ("plain", "fancy", "rare")[(n + {self.kind_shift}) % 3], "size": n % 5,
                           "owner_id": {owner}}}
            """)


@dataclass
class Step:
    text: str  # what it does, for the failure message
    fixture: Fixture | None = None
    sql: str | None = None  # behind seedkit's back, before the run
    shell: Callable[[Project], None] | None = None  # e.g. a restore from pg_dump
    during: str | None = None  # another session commits this while the run streams items
    at_end: str | None = None  # … or after the run's last write, before it commits
    args: list[str] = field(default_factory=list)  # --check / --dry-run


ENUM_SWAP = ("ALTER TYPE kind RENAME VALUE 'fancy' TO 'x'; ALTER TYPE kind RENAME VALUE 'rare' TO 'fancy'; "
             "ALTER TYPE kind RENAME VALUE 'x' TO 'rare'")
# what another session commits while a run is under way, on rows no run writes
FOREIGN = ["INSERT INTO items (code, label) VALUES ('zz-meanwhile', 'x') ON CONFLICT DO NOTHING",
           "UPDATE owners SET name = name WHERE name = 'bob'"]


def row_changes(row: str, deleted: str) -> list[str]:
    """Changes behind seedkit's back: a row's label, the row updated to itself, rows deleted (``deleted``: the
    condition on their code), every owner updated to itself."""
    return [f"UPDATE items SET label = 'by hand' WHERE code = '{row}'",
            f"UPDATE items SET qty = qty WHERE code = '{row}'",
            f"DELETE FROM items WHERE code {deleted}",
            "UPDATE owners SET name = name"]


class Outside:
    """The catalog and foreign rows a walk of this schema changes behind seedkit's back: each change gives the
    step's text and SQL (tests/test_reliability_early_updates.py walks it too)."""

    def __init__(self) -> None:
        self.trigger = False
        self.qty_type = "int"
        self.foreign = 0

    def insert(self) -> tuple[str, str]:
        self.foreign += 1
        return "insert", f"INSERT INTO items (code, label) VALUES ('zz{self.foreign}', 'x')"

    def toggle_trigger(self) -> tuple[str, str]:
        self.trigger = not self.trigger
        return (f"BEFORE trigger {'created' if self.trigger else 'dropped'}",
                "CREATE TRIGGER shout BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION shout()"
                if self.trigger else "DROP TRIGGER shout ON items")

    def toggle_qty(self) -> tuple[str, str]:
        self.qty_type = "bigint" if self.qty_type == "int" else "int"
        return f"qty becomes {self.qty_type}", f"ALTER TABLE items ALTER qty TYPE {self.qty_type}"


class World(Outside):
    """The state the random steps walk through (the same for both databases)."""

    def __init__(self, rng: random.Random, dumps: Path) -> None:
        super().__init__()
        self.rng = rng
        self.toggles = random.Random(SEED + 1)  # (its own: the main walk stays as it was)
        self.fixture = Fixture()
        self.price_type = "numeric(10,2)"
        self.dumped = False
        self.dumps = dumps

    def step(self) -> Step:
        rng = self.rng
        roll = rng.random()
        row = f"c{rng.randint(1, self.fixture.rows):05}"
        if roll < 0.22:  # a change of the fixture
            f = Fixture(**vars(self.fixture))
            what = rng.choice(["rows", "label", "qty", "kind", "owner", "price", "dup", "nothing"])
            f.dup = rng.choice([2, 41, f.rows]) if what == "dup" else 0  # the next change of the fixture mends it
            if what == "rows":
                f.rows = max(41, f.rows + rng.choice([-37, -1, 1, 3, 45]))
            elif what == "label":
                f.label_every, f.label_tag = rng.choice([0, 1, 7, 50, 97]), rng.choice(["!", "?"])
            elif what == "qty":
                f.qty_shift = rng.randint(0, 6)
            elif what == "kind":
                f.kind_shift = rng.randint(0, 2)
            elif what == "owner":
                f.owner_shift = rng.randint(0, 2)
            elif what == "price":
                f.price_cents = rng.choice([5, 7, 55])
            f.price_as = rng.choice(["str", "decimal"])  # the same COPY text, another kind of batch digest
            if self.toggles.random() < 0.2:
                f.owned = not f.owned
                what += ", owners by reference" if f.owned else ", no owners (no references)"
            self.fixture = f
            return Step(f"fixture: {what}, prices as {f.price_as}", fixture=f)
        if roll < 0.30:
            return Step("rerun")
        if roll < 0.36:
            return Step("--check", args=["--check"])
        if roll < 0.40:
            return Step("--dry-run", args=["--dry-run"])
        if roll < 0.48:
            sql = rng.choice(row_changes(row, f"IN ('{row}', 'c00003')"))
            return Step(f"outside: {sql}", sql=sql)
        if roll < 0.52:
            text, sql = self.insert()
            return Step(f"outside: {text}", sql=sql)
        if roll < 0.55:
            return Step("outside: truncate", sql="TRUNCATE items")
        if roll < 0.60:
            column, ddl = rng.choice([
                ("qty", f"ALTER TABLE items ADD COLUMN qty {self.qty_type} DEFAULT 3"),
                ("kind", "ALTER TABLE items ADD COLUMN kind kind DEFAULT 'fancy'"),
                ("size", "ALTER TABLE items ADD COLUMN size small DEFAULT 1"),
            ])
            return Step(f"outside: drop and re-add {column} with a default",
                        sql=f"ALTER TABLE items DROP COLUMN {column}; {ddl}")
        if roll < 0.65:
            return Step("outside: enum values renamed (swapped)", sql=ENUM_SWAP)
        if roll < 0.70:
            text, sql = self.toggle_trigger()
            return Step(f"outside: {text}", sql=sql)
        if roll < 0.75:
            if rng.random() < 0.5:
                text, sql = self.toggle_qty()
                return Step(f"outside: {text}", sql=sql)
            self.price_type = "numeric(10,1)" if self.price_type == "numeric(10,2)" else "numeric(10,2)"
            return Step(f"outside: price becomes {self.price_type}",
                        sql=f"ALTER TABLE items ALTER price TYPE {self.price_type}")
        if roll < 0.79:
            statement = rng.choice([
                f"UPDATE items SET label = 'meanwhile' WHERE code = '{row}'",
                f"DELETE FROM items WHERE code = '{row}'",
                *FOREIGN,
            ])
            if rng.random() < 0.5:
                return Step(f"another session during the run: {statement}", during=statement)
            return Step(f"another session at the end of the run: {statement}", at_end=statement)
        if roll < 0.82:
            return Step("outside: VACUUM FULL", sql="VACUUM FULL items")
        if roll < 0.86:
            if not self.dumped:
                self.dumped = True
                return Step("pg_dump", shell=lambda p: dump(p, self.dumps))
            self.dumped = False
            return Step("restore from pg_dump", shell=lambda p: restore(p, self.dumps, self))
        return Step("rerun")


def pg_tool(name: str) -> str:
    bindir = find_bindir()
    assert bindir is not None and (bindir / name).exists(), f"no {name} next to the server binaries"
    return str(bindir / name)


def dump(p: Project, folder: Path) -> None:
    subprocess.run([pg_tool("pg_dump"), "-Fc", "-d", p.url, "-f", str(folder / f"{p.root.name}.dump")], check=True,
                   capture_output=True, timeout=60)


def restore(p: Project, folder: Path, world: World) -> None:
    """Replace everything with the dump (a stale copy: new tables, new transaction ids, old rows)."""
    p.sql("DROP TABLE IF EXISTS items, owners, seedkit_digests, seedkit_meta CASCADE; DROP TYPE kind; "
          "DROP DOMAIN small; DROP FUNCTION shout")
    subprocess.run([pg_tool("pg_restore"), "--no-owner", "-d", p.url, str(folder / f"{p.root.name}.dump")],
                   check=True, capture_output=True, timeout=60)
    types = dict(p.rows("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                        "WHERE attrelid = 'items'::regclass AND attname IN ('qty', 'price')"))
    world.qty_type = "int" if types["qty"] == "integer" else types["qty"]
    world.price_type = types["price"]
    world.trigger = bool(p.rows("SELECT 1 FROM pg_trigger WHERE tgname = 'shout'"))


def other_session(p: Project, statement: str) -> None:
    with psycopg.connect(p.url, autocommit=True) as c:
        c.execute("SET lock_timeout = '2s'")
        c.execute(statement)


@contextmanager
def outside_commits(p: Project, step: Step, skipped: list[int]) -> Iterator[list[str]]:
    """Commit ``step.during`` once items rows are streaming, ``step.at_end`` after the last write."""
    fired: list[str] = []
    real_groups, real_save = Applier._groups, Applier._save_digests

    def groups(self: Applier, fp: Any) -> Iterator[tuple]:
        for cols, shapes, rows in real_groups(self, fp):
            yield cols, shapes, (watch(rows) if str(fp.table.name) == "items" and step.during else rows)

    def watch(rows: Iterator) -> Iterator:
        for i, row in enumerate(rows):
            if i == 100 and not fired:
                fired.append("during")
                other_session(p, step.during)  # type: ignore[arg-type]
            yield row

    def save(self: Applier) -> None:
        if step.at_end and not fired:
            fired.append("at_end")
            other_session(p, step.at_end)
        real_save(self)
        skipped.append(sum(t.skipped for t, _ in self.trackers))

    with pytest.MonkeyPatch.context() as m:
        m.setattr(Applier, "_groups", groups)
        m.setattr(Applier, "_save_digests", save)
        yield fired


ONE_PASS: list[str] = []  # runs whose changed rows were updated with no classifying pass, and how they ended


def seedkit_run(p: Project, step: Step, skipping: bool, skipped: list[int]) -> tuple[int, Any]:
    """A run of the step; with ``skipping``, the rows it skipped are noted in ``skipped`` (else nowhere)."""
    with pytest.MonkeyPatch.context() as m, outside_commits(p, step, skipped if skipping else []):
        real_one = Writer.update_in_one

        def one_pass(self: Writer, *args: Any) -> None:
            try:
                real_one(self, *args)
            except Restage:
                ONE_PASS.append("staged again")
                raise
            ONE_PASS.append("updated")
        m.setattr(Writer, "update_in_one", one_pass)
        if not skipping:  # without a row formatter every row is staged and compared
            m.setattr(PostgresDatabase, "row_formatter", lambda self: None)
        outcome = p.seed_report("dev", *step.args)
    return outcome


def contents(p: Project) -> tuple:
    """Every row of both tables, and the columns of items as they read back (one connection)."""
    with psycopg.connect(p.url) as c:
        return tuple(c.execute(q).fetchall() for q in (
            "SELECT * FROM items ORDER BY code", "SELECT * FROM owners ORDER BY name",
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"))


def prepare(p: Project, step: Step) -> None:
    """The step's fixture and SQL (``walks.prepare``), then its shell command (a dump, a restore)."""
    walks.prepare(p, step)
    if step.shell is not None:
        step.shell(p)


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, ...]]:
    with walks.projects(pg_server, tmp_path, ("skipping", "comparing"), schema=SCHEMA, batch_size=BATCH,
                        files={"dev/owners.yaml": OWNERS, "dev/items.py": Fixture().source()}) as made:
        yield made


def test_skipping_and_comparing_every_row_agree_step_by_step(two_projects, tmp_path: Path) -> None:
    ONE_PASS.clear()
    world = World(random.Random(SEED), tmp_path)
    skipped: list[int] = []  # rows the skipping side skipped, per run that wrote
    skipped_as: set[str] = set()  # how prices were written in runs that skipped rows
    # (the skipping side notes in ``skipped`` how many rows each of its runs skipped)
    sides = walks.Walk(two_projects, (True, False), SEED, seedkit_run, lambda p: (contents(p),), ("table contents",),
                       tail=25, prepare=prepare)
    for i in range(STEPS):
        step = Step("first run") if i == 0 else world.step()
        started = time.perf_counter()
        runs_before = len(skipped)
        sides.step(i, step, skipped)
        if len(skipped) > runs_before and skipped[-1] > 0:
            skipped_as.add(world.fixture.price_as)
        if os.environ.get("SEEDKIT_DIFF_TRACE"):
            print(f"{time.perf_counter() - started:.2f}s {sides.history[-1]}")
    # the walk did exercise skipping, and every kind of outside change
    assert sum(1 for n in skipped if n > 0) >= STEPS // 20, skipped
    assert skipped_as == {"str", "decimal"}  # batches digested as marshal writes them, and as COPY text
    assert ONE_PASS.count("updated") >= STEPS // 50, ONE_PASS  # changed rows updated in one statement
    wanted = ["drop and re-add", "enum values renamed", "BEFORE trigger", "becomes", "another session during",
              "another session at the end", "restore from pg_dump", "truncate", "insert", "DELETE", "UPDATE",
              "VACUUM FULL", "--check", "--dry-run"]
    seen_text = "\n".join(sides.history)
    assert [w for w in wanted if w not in seen_text] == []
