"""The duplicate check riding on the classifying join is exact: a differential test (RELIABILITY.md §7).

A Python fixture merged into a table that already has rows may generate a key twice; the run must stop
with the located "generated twice" error and write nothing. Where the table's own immediate unique key
covers the fixture's key, that check rides on the join that classifies the staged rows (two staged rows
meeting one row of the table) and on the insert (the unique index refuses two missing rows with one key)
instead of a GROUP BY over every staged row (seed/write.py, ``folds_duplicates``).

Two databases side by side get the same random steps — the fixture changes (repeated keys among rows
present or missing, NULL keys, a NOT NULL break, an unresolved reference, changed labels), outside
changes (rows deleted, changed, inserted; a truncate), and changes of the table's unique key (deferrable,
none at all, a trigger rewriting keys, a second fixture of the same table) — then ``seedkit run dev
--json`` (sometimes ``--dry-run``). One runs as shipped, the other with the fold switched off (the separate
GROUP BY always). Both must end with the same exit code, the same report and the same table contents.
"""

from __future__ import annotations

import os
import random
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedkit.db.postgres import PostgresDatabase
from seedkit.seed.checks import Checks
from seedkit.seed.write import Writer
from tests.support import Project, create_pg_database, drop_pg_database, walks

pytestmark = pytest.mark.postgres

STEPS = int(os.environ.get("SEEDKIT_DIFF_STEPS", "80"))
SEED = int(os.environ.get("SEEDKIT_DIFF_SEED", "20261201"))
BATCH = 40

SCHEMA = """
CREATE TABLE owners (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE items (id bigserial PRIMARY KEY, code text, label text NOT NULL, qty int,
                    owner_id bigint REFERENCES owners (id));
ALTER TABLE items ADD CONSTRAINT items_code UNIQUE (code);
CREATE FUNCTION fold_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN  -- an upper-case key is folded to lower case, and made one of its own (two alike no longer clash)
  IF NEW.code <> lower(NEW.code) THEN NEW.code := lower(NEW.code) || '-' || NEW.id; END IF;
  RETURN NEW;
END $$;
"""
OWNERS = """
key: [name]
rows:
  - {name: ann}
  - {name: bob}
"""
# how the table's key on code is held: each is reached from any other by the SQL given
KEYS = {
    "unique": "ALTER TABLE items ADD CONSTRAINT items_code UNIQUE (code)",
    "deferrable": "ALTER TABLE items ADD CONSTRAINT items_code UNIQUE (code) DEFERRABLE INITIALLY DEFERRED",
    "deferrable, immediate": "ALTER TABLE items ADD CONSTRAINT items_code UNIQUE (code) DEFERRABLE",
    "unique index": "CREATE UNIQUE INDEX items_code ON items (code)",
    "plain index": "CREATE INDEX items_code ON items (code)",
    "none": "SELECT 1",
}
DROP_KEY = ("ALTER TABLE items DROP CONSTRAINT IF EXISTS items_code; DROP INDEX IF EXISTS items_code; "
            "DELETE FROM items a USING items b WHERE a.code = b.code AND a.id > b.id")


@dataclass
class Fixture:
    start: int = 1
    rows: int = 120
    dups: list[tuple[int, int]] = field(default_factory=list)  # (row, row whose key it repeats)
    nulls: list[int] = field(default_factory=list)  # rows with a NULL key
    upper: list[int] = field(default_factory=list)  # keys written in upper case (a trigger may rewrite them)
    no_label: int = 0  # this row's label is NULL (NOT NULL): an error when it is inserted or updated
    nobody: int = 0  # this row's owner does not exist: an unresolved reference
    tag: str = ""  # every 7th label gets it

    def source(self) -> str:
        return textwrap.dedent(f"""\
            from seedkit import fixture, ref

            DUPS = dict({self.dups!r})


            @fixture("items", key=["code"])
            def items(fake):
                for n in range({self.start}, {self.start + self.rows}):
                    k = DUPS.get(n, n)
                    code = None if n in {self.nulls!r} else f"c{{k:05}}"
                    if code and k in {self.upper!r}:
                        code = code.upper()
                    label = None if n == {self.no_label} else f"item {{n}}" + ({self.tag!r} if n % 7 == 0 else "")
                    owner = "nobody" if n == {self.nobody} else ("ann", "bob")[n % 2]
                    yield {{"code": code, "label": label, "qty": n % 5, "owner_id": ref("owners", owner, column="id")}}
            """)


FILES = {"dev/owners.yaml": OWNERS, "dev/items.py": Fixture().source()}  # each side's seeds at first


@dataclass
class Step:
    text: str
    fixture: Fixture | None = None
    sql: str | None = None
    yaml: str | None = None  # a second fixture of items ("" removes it)
    args: list[str] = field(default_factory=list)


def spoil(rng: random.Random, new: Fixture, what: list[str], *, dups: list[int], nulls: float, upper: float,
          no_label: float, nobody: float, among: list[int] | None = None, upper_dups: bool = False) -> None:
    """Spoil a new fixture at random, each way told in ``what``: ``rng.choice(dups)`` rows repeating another's
    key (with ``among``, half of them among those rows), then with their chances NULL keys, upper-case keys (with
    ``upper_dups``, some repeated keys too), a row without a label, a row owned by nobody (of ``among`` if
    given). The random draws are the walks' own: their steps are the same for a seed."""
    picks = list(range(new.start, new.start + new.rows))
    for _ in range(rng.choice(dups)):
        a, b = rng.sample(picks, 2) if among is None or rng.random() < 0.5 or len(among) < 2 else rng.sample(among, 2)
        new.dups.append((max(a, b), min(a, b)))
        what.append(f"row {max(a, b)} repeats row {min(a, b)}'s key")
    if rng.random() < nulls:
        new.nulls = rng.sample(picks, rng.choice([1, 2]))
        what.append(f"NULL keys at {new.nulls}")
    if rng.random() < upper:
        new.upper = rng.sample(picks, 3) + ([b for _, b in new.dups if rng.random() < 0.5] if upper_dups else [])
        what.append(f"upper-case keys {new.upper}")
    if rng.random() < no_label:
        new.no_label = rng.choice(picks if among is None else among)
        what.append(f"row {new.no_label} without a label")
    if rng.random() < nobody:
        new.nobody = rng.choice(picks if among is None else among)
        what.append(f"row {new.nobody} owned by nobody")


def outside_change(rng: random.Random, n: int, *, last: bool = False) -> Step:
    """Rows changed behind seedkit's back from c{n} on (with ``last``, the last rows deleted is one more
    choice), a row inserted ahead of the fixture, or a truncate."""
    choices = [
        (f"DELETE rows from {n}", f"DELETE FROM items WHERE id % 3 = {n % 3} AND code >= 'c{n:05}'"),
        *([(f"DELETE the last rows from {n}", f"DELETE FROM items WHERE code >= 'c{n:05}'")] if last else []),
        (f"UPDATE labels from {n}", f"UPDATE items SET label = label || '*' WHERE code >= 'c{n:05}'"),
        (f"insert c{n:05}", f"INSERT INTO items (code, label) SELECT 'c{n:05}', 'outside' "
                            f"WHERE NOT EXISTS (SELECT 1 FROM items WHERE code = 'c{n:05}')"),
        ("truncate", "TRUNCATE items"),
    ]
    text, sql = rng.choice(choices)
    return Step(text, sql=sql)


def key_becomes(new_key: str) -> Step:
    return Step(f"the key becomes: {new_key}", sql=f"{DROP_KEY}; {KEYS[new_key]}")


def folding_trigger(on: bool) -> Step:
    create = "; CREATE TRIGGER fold BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION fold_code()"
    return Step(f"trigger folding keys {'on' if on else 'off'}",
                sql="DROP TRIGGER IF EXISTS fold ON items" + (create if on else ""))


def apart(key: str, trigger: bool) -> bool:
    """Whether the table has a unique key on code that the insert cannot refuse at once: a deferrable one, or
    an immediate one with the folding trigger on (which may make two keys alike different on the way in)."""
    return key.startswith("deferrable") or (trigger and key in ("unique", "unique index"))


def random_step(rng: random.Random, fx: Fixture, key: list[str], trigger: list[bool], present: set[str], *,
                hold: bool = False) -> Step:
    """A step drawn at random; ``key`` and ``trigger`` hold how the table's key is held and whether the folding
    trigger is on (a step changing them changes them), ``present`` the codes the table holds. While the insert
    cannot refuse a key at once (``apart``), a new fixture repeats a key more often, half of them among its rows
    the table lacks, and with the trigger on in upper case (the trigger rewrites those): the states only the
    separate check handles right are reached, not left to chance. With ``hold``, only a new fixture or an
    outside change is drawn (the key, the trigger and the second fixture stay as they are)."""
    roll = rng.random() * (0.8 if hold else 1)
    if roll < 0.6:
        new = Fixture(start=rng.randint(1, 60), rows=rng.randint(40, 160), tag=rng.choice(["", "!", "?"]))
        what: list[str] = []
        if apart(key[0], trigger[0]):
            missing = [n for n in range(new.start, new.start + new.rows) if f"c{n:05}" not in present]
            if len(missing) < 2:  # the table has every key of the range: half of it moves past the table's keys
                top = max((int(c[1:]) for c in present if re.fullmatch(r"c\d{5}", c)), default=0)
                new.start = max(new.start, top - new.rows // 2 + 1)
                missing = [n for n in range(new.start, new.start + new.rows) if f"c{n:05}" not in present]
            spoil(rng, new, what, dups=[0, 1, 1, 2], nulls=0.15, upper=0.2, upper_dups=True, no_label=0.1,
                  nobody=0.1, among=missing if len(missing) >= 2 else None)
            if trigger[0] and new.dups:  # the repeated keys in upper case: the trigger makes them differ
                new.upper = sorted({*new.upper, *(b for _, b in new.dups)})
                what.append(f"upper case: {new.upper}")
        else:
            spoil(rng, new, what, dups=[0, 0, 0, 0, 1, 1, 2], nulls=0.15, upper=0.2, upper_dups=True, no_label=0.1,
                  nobody=0.1)
        return Step(f"fixture rows {new.start}..{new.start + new.rows - 1}" + (": " + ", ".join(what) if what else ""),
                    fixture=new, args=["--dry-run"] if rng.random() < 0.08 else [])
    if roll < 0.8:
        return outside_change(rng, rng.randint(1, 200))
    if roll < 0.9:
        new_key = rng.choice(["unique", "unique index", *KEYS])
        key[0] = new_key
        return key_becomes(new_key)
    if roll < 0.95:
        trigger[0] = rng.random() < 0.5
        return folding_trigger(trigger[0])
    n = rng.randint(1, 200)
    yaml = "" if rng.random() < 0.4 else (
        f"table: items\nkey: [code]\nrows:\n  - {{code: c{n:05}, label: from yaml, owner_id: !ref owners/ann}}\n")
    return Step("second fixture " + (f"with c{n:05}" if yaml else "removed"), yaml=yaml)


def repeated_missing(fx: Fixture, present: set[str]) -> list[str]:
    """The keys ``fx`` gives two of its rows that the table (holding ``present``) lacks."""
    codes: dict[str, int] = {}
    for n in range(fx.start, fx.start + fx.rows):
        k = dict(fx.dups).get(n, n)
        code = None if n in fx.nulls else (f"c{k:05}".upper() if k in fx.upper else f"c{k:05}")
        if code is not None and code not in present:
            codes[code] = codes.get(code, 0) + 1
    return [code for code, count in codes.items() if count > 1]


FOLDED: list[str] = []  # how runs that folded the check ended
# the walk's steps where the key becomes one the insert cannot refuse at once (how it is held, the trigger on),
# held so for the next STEPS // 8 steps; then the key is unique again and the trigger off
HELD = {STEPS // 3: ("deferrable", False), 2 * STEPS // 3: ("unique", True)}


def seed(p: Project, step: Step, fold: bool) -> tuple[int, Any]:
    with pytest.MonkeyPatch.context() as m:
        real = Writer.folds_duplicates

        def spy(self: Writer, tp: Any, stage: Any) -> bool:
            folds = fold and real(self, tp, stage)
            if folds:
                FOLDED.append("pending")
            return folds
        m.setattr(Writer, "folds_duplicates", spy)
        code, report = p.seed_report("dev", *step.args)
    if fold and FOLDED and FOLDED[-1] == "pending":
        FOLDED[-1] = "generated twice" if "generated twice" in str(report) else f"exit {code}"
    return code, report


def contents(p: Project) -> tuple:
    with psycopg.connect(p.url) as c:
        return tuple(c.execute(q).fetchall() for q in (
            "SELECT code, label, qty, owner_id FROM items ORDER BY code, label", "SELECT name FROM owners ORDER BY 1"))


def prepare(p: Project, step: Step) -> None:
    """The ids of items to come start past the table's (an insert the unique index refused took ids the side
    checking apart never took; the trigger writes ids into keys, and outside changes pick rows by id), then the
    step's fixture and SQL (``walks.prepare``), then its second fixture of items written or removed."""
    p.sql("SELECT setval(pg_get_serial_sequence('items', 'id'), coalesce(max(id), 0) + 1, false) FROM items")
    walks.prepare(p, step)
    if step.yaml is not None:
        extra = p.root / "seeds" / "dev" / "items_extra.yaml"
        if step.yaml:
            p.write("dev/items_extra.yaml", step.yaml)
        elif extra.exists():
            extra.unlink()


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, ...]]:
    with walks.projects(pg_server, tmp_path, ("folding", "grouping"), schema=SCHEMA, batch_size=BATCH,
                        files=FILES) as made:
        yield made


def test_the_folded_duplicate_check_and_the_separate_one_agree_step_by_step(two_projects) -> None:
    FOLDED.clear()
    rng = random.Random(SEED)
    key, trigger = ["unique"], [False]
    sides = walks.Walk(two_projects, (True, False), SEED, seed, lambda p: (contents(p),), ("table contents",),
                       prepare=prepare)
    fx = Fixture()
    apart_runs: list[str] = []  # runs repeating a key among missing rows that the insert could not refuse at once
    for i in range(STEPS):
        present = {code for code, *_ in contents(two_projects[0])[0]}  # the same on both sides (the walk checks)
        held = next((start for start in HELD if start <= i <= start + STEPS // 8), None)
        if i == 0:
            step = Step("first run")
        elif i == held or (held is not None and i == held + STEPS // 8):
            key[0], trigger[0] = HELD[i] if i == held else ("unique", False)
            step = Step(f"the key becomes: {key[0]}, trigger folding keys {'on' if trigger[0] else 'off'}"
                        + (", second fixture removed" if i == held else ""),
                        sql=f"{key_becomes(key[0]).sql}; {folding_trigger(trigger[0]).sql}",
                        yaml="" if i == held else None)
        else:
            step = random_step(rng, fx, key, trigger, present, hold=held is not None)
        if step.fixture is not None:
            fx = step.fixture
        outcome = sides.step(i, step)[two_projects[0].root.name]
        repeated = repeated_missing(fx, present) if step.fixture is not None and not step.args else []
        if repeated and "generated twice" in str(outcome[1]):
            if key[0].startswith("deferrable"):
                apart_runs.append("deferrable")
            elif apart(key[0], trigger[0]) and any(c != c.lower() for c in repeated):
                apart_runs.append("trigger")  # (a key the trigger rewrites, where only it keeps the fold off)
    # the walk folded the check, and the folded check did find repeated keys
    assert FOLDED.count("exit 0") >= STEPS // 16, FOLDED
    assert FOLDED.count("generated twice") >= 3, FOLDED
    # and the walk reached, more than once, a key the insert cannot refuse at once repeated among missing rows
    assert apart_runs.count("deferrable") >= 3, apart_runs
    assert apart_runs.count("trigger") >= 3, apart_runs


def test_a_merge_into_a_table_with_rows_runs_no_separate_duplicate_pass(pg_server: str, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With items' own unique key on code, no GROUP BY over the staged rows runs (a batch of them or more:
    fewer take the GROUP BY, one statement, instead of reading the table's shape and comparing under a
    savepoint), and a key generated twice is still found — among rows the table has, and among rows it
    lacks — and located as before."""
    url = create_pg_database(pg_server)
    try:
        p = Project(tmp_path, url, envs={"dev": {"include": ["dev"]}})
        config = p.config_path.read_text()
        p.config_path.write_text(config.replace("faker_seed = 7", "faker_seed = 7\nbatch_size = 100"))
        p.sql(SCHEMA)
        p.sql("INSERT INTO owners (name) VALUES ('ann'), ('bob');"
              "INSERT INTO items (code, label) SELECT format('c%s', to_char(n, 'FM00000')), 'old' "
              "FROM generate_series(1, 50) n")
        passes: list[str] = []
        real = Checks.check_duplicates

        def spy(self: Checks, tp: Any, stage: Any) -> None:
            passes.append(str(tp.table.name))
            real(self, tp, stage)
        monkeypatch.setattr(Checks, "check_duplicates", spy)
        grouped: list[str] = []
        real_fetchone = PostgresDatabase.fetchone

        def fetchone(db: PostgresDatabase, sql: Any, params: Any = None) -> Any:
            if "HAVING COUNT(*) > 1" in str(sql):
                grouped.append(str(sql))
            return real_fetchone(db, sql, params)
        monkeypatch.setattr(PostgresDatabase, "fetchone", fetchone)

        p.write("dev/items.py", Fixture(start=1, rows=100).source())
        code, report = p.seed_report("dev")
        assert code == 0 and report["totals"]["inserted"] == 50 and report["totals"]["updated"] == 50
        assert passes == [] and grouped == []
        for dups, row in (([(30, 10)], 30), ([(90, 70)], 90)):  # present in the table; missing from it
            p.write("dev/items.py", Fixture(start=1, rows=100, dups=dups, tag="!").source())
            code, said = p.seed_report("dev")
            assert code == 2 and "generated twice" in said and f"row {row}" in said, said
            assert passes == ["items"] and len(grouped) == 1  # the full check, once the join or the index said so
            passes.clear()
            grouped.clear()
        with psycopg.connect(url) as c:  # nothing written by the failed runs
            assert c.execute("SELECT count(*) FROM items WHERE label LIKE '%!'").fetchone() == (0,)
        p.write("dev/items.py", Fixture(start=1, rows=99, tag="?").source())  # less than a batch
        code, report = p.seed_report("dev")
        assert code == 0 and report["totals"]["updated"] > 0, report
        assert passes == ["items"] and len(grouped) == 1
    finally:
        drop_pg_database(pg_server, url)


@pytest.mark.parametrize("setup", ["deferrable", "trigger"])
def test_a_key_the_insert_cannot_refuse_at_once_is_checked_apart(two_projects, setup: str) -> None:
    """A deferred unique key refuses only at commit, and a trigger may make two keys alike different on the
    way in: both ways the separate check runs, and both sides stop alike."""
    sql = {"deferrable": f"{DROP_KEY}; {KEYS['deferrable']}",
           "trigger": "CREATE TRIGGER fold BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION fold_code()"}[setup]
    FOLDED.clear()
    steps = [Step("first run", fixture=Fixture(start=1, rows=50)), Step(setup, sql=sql),
             Step("a key twice among missing rows", fixture=Fixture(start=3, rows=98, dups=[(90, 70)], upper=[70]))]
    outcomes = []
    for p, fold in zip(two_projects, (True, False)):
        for step in steps:
            walks.prepare(p, step)
            code, report = seed(p, step, fold)
        outcomes.append((code, report, contents(p)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 2 and "generated twice" in str(outcomes[0][1])
    assert FOLDED == []


def test_a_comparison_the_database_cannot_make_still_reports_the_repeated_key_first(pg_server: str,
                                                                                     tmp_path: Path) -> None:
    """The classifying join may fail itself (a json value the server cannot read as jsonb to compare it):
    the separate check, run before it, said "generated twice"; so does the check riding on it."""
    url = create_pg_database(pg_server)
    try:
        p = Project(tmp_path, url, envs={"dev": {"include": ["dev"]}})
        p.sql("CREATE TABLE docs (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, doc json);"
              """INSERT INTO docs (code, doc) VALUES ('d1', '{"a": "\\u0000"}')""")
        p.write("dev/docs.py", textwrap.dedent("""\
            from seedkit import fixture


            @fixture("docs", key=["code"])
            def docs(fake):
                for n in range(1, 31):
                    yield {"code": f"d{1 if n == 20 else n}", "doc": {"n": n}}
            """))
        outcomes = []
        for fold in (True, False):
            code, said = seed(p, Step("run"), fold)
            outcomes.append((code, said))
        assert outcomes[0] == outcomes[1]
        assert outcomes[0][0] == 2 and "generated twice" in str(outcomes[0][1]) and "row 20" in str(outcomes[0][1])
    finally:
        drop_pg_database(pg_server, url)
