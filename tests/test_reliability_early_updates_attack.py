"""Attacks on updating a rerun's changed rows while the rest stream (seed/early.py; RELIABILITY.md §7).

Each attack runs with early updates (the rows staged so far updated between COPYs), with every update
left to the end (``SEEDKIT_EARLY_UPDATES=0``) and, where it matters, with skipping off (every row staged
and compared): the database, the output, the exit code and the next run must be the same.
"""

from __future__ import annotations

import json
import re
import signal
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
from seedkit.seed import early
from seedkit.seed.apply import Applier
from seedkit.seed.write import Writer
from tests.support import Project, pg_projects
from tests.support.processes import no_traceback, wait_for
from tests.test_reliability_skipping import OWNERS, SCHEMA, other_session

pytestmark = pytest.mark.postgres

BATCH = 100
BIG = 10_000  # rows: enough for early updates at their shipped size (early.MIN_ROWS staged rows)


def fixture(rows: int = BIG, *, label: str = "f'item {n}'", qty: str = "n % 7", pause: str = "",
            owner: str = "('ann', 'bob', 'cyd')[n % 3]") -> str:
    """Items ``1..rows``; ``pause``: Python run once row ``n`` is reached (``n == …`` guarded by the caller)."""
    return textwrap.dedent(f"""\
        import inspect, os, sys, threading, time
        from pathlib import Path
        from seedkit import fixture, ref

        PAUSED = []


        def streamed():  # is the row made for the COPY (not ahead of it, while the tables' scan runs)?
            f = sys._getframe(1)
            while f is not None and not (f.f_code.co_name == "buffers" and f.f_code.co_filename.endswith("staging.py")):
                f = f.f_back
            return f is not None


        def scanned():  # wait for the run's scan of the tables, so that the rows from here on are made for the COPY
            for t in threading.enumerate():
                if t.name == "seedkit-scan":
                    t.join()
            return True


        @fixture("items", key=["code"])
        def items(fake):
            for n in range(1, {rows} + 1):
                {pause or "pass"}
                yield {{"code": f"c{{n:05}}", "label": {label}, "qty": {qty},
                        "owner_id": ref("owners", {owner}, column="id")}}
        """)


def streaming(n: int, code: str) -> str:
    """Python run when the fixture makes row ``n`` for the run's staging (not while the plan peeks at it)."""
    return f"if n == {n} and any(f.filename.endswith('staging.py') for f in inspect.stack(0)): {code}"


def copying(n: int, code: str) -> str:
    """Python run once, at the first row from ``n`` on made for the COPY. The rows made ahead while the tables'
    scan runs (as many as the scan takes: on a loaded machine it can be all of them) are sent first, with their
    early update: a pause there would stop the run before any update could start. So row ``n - 1`` waits for
    the scan to end, and the rows from it on are made for the COPY."""
    return (f"if n == {n - 1}: scanned()\n"
            f"                if n >= {n} and not PAUSED and streamed(): PAUSED.append(n); {code}")


@pytest.fixture
def new_project(pg_server: str, tmp_path: Path) -> Iterator[Callable[[str], Project]]:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=BATCH,
                     files=lambda p: p.write("dev/owners.yaml", OWNERS)) as make:
        yield make


def items_of(p: Project) -> list[tuple]:
    return p.rows("SELECT id, code, label, qty, owner_id, xmin::text FROM items ORDER BY id")


# -- Ctrl-C of a real run while an early update runs ------------------------------------------------------
NAP = ("CREATE FUNCTION nap(q int) RETURNS boolean LANGUAGE sql AS "
       "$$ SELECT pg_sleep(CASE WHEN q = 99 THEN 120 ELSE 0 END) IS NOT NULL $$")


def napping(p: Project) -> bool:
    return bool(p.rows("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND "
                       "wait_event = 'PgSleep' AND query LIKE '%UPDATE%'"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("how", ["early", "late"])
def test_ctrl_c_while_an_early_update_runs_exits_at_once(new_project, how: str, sig: int) -> None:
    """An early update takes long (a check constraint calling a slow function, for one changed row) while
    the fixture is still making rows. Ctrl-C then ends the run at once, as it does when every update is left
    to the end (the run is still making rows then): exit 130, "interrupted", no traceback, nothing written.
    (SIGTERM ends the process as it always did.)"""
    p = new_project(how)
    p.sql(NAP)
    p.sql("ALTER TABLE items ADD CONSTRAINT napping CHECK (nap(qty))")
    p.write("dev/items.py", fixture())
    assert p.run("run", "dev").returncode == 0
    before = items_of(p)
    marker = p.root / "reached"
    p.write("dev/items.py", fixture(label="f'item {n}' + ('!' if n <= 6000 else '')", qty="99 if n == 10 else n % 7",
                                    pause=copying(8000, f"Path({str(marker)!r}).touch(); time.sleep(120)")))
    proc = p.spawn("run", "dev", env={early.ENV: "1" if how == "early" else "0"})
    try:
        wait_for(marker.exists, 60, "the fixture to reach row 8000")
        if how == "early":
            wait_for(lambda: napping(p), 30, "the early update to run")
        time.sleep(0.3)
        proc.send_signal(sig)
        out, errs = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:  # (it did not end within 15 s of the signal)
            proc.kill()
            proc.communicate()
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGTERM), (proc.returncode, errs)
    assert ("interrupted" in errs) == (sig == signal.SIGINT) and no_traceback(out, errs), errs
    assert items_of(p) == before


# -- three ways: early updates, every update at the end, every row compared -----------------------------------
ROWS = 1000
SIDES = ("early", "late", "plain")


@dataclass
class Step:
    fixture: str | None = None  # new items.py source
    sql: str | None = None  # behind seedkit's back, before the run
    during: list[tuple[int, str]] = field(default_factory=list)  # another session commits once row n is made
    hold: str | None = None  # another session holds these rows' locks (FOR UPDATE) for the whole run
    args: tuple[str, ...] = ()
    settle: int | None = None  # early side: once row n is made, wait for an early update to have run


EARLY: list[str] = []


@contextmanager
def side_of(p: Project, step: Step, side: str) -> Iterator[None]:
    """Run ``step`` on one side: early updates after 4 staged rows (noted in ``EARLY``), none, or no skipping."""
    real_groups, real_early = Applier._groups, Writer.early_updates
    done: list[str] = []
    fired: set[int] = set()  # (once per run: a restage makes the rows again)

    def groups(self: Applier, fp: Any) -> Iterator[tuple]:
        for cols, shapes, rows in real_groups(self, fp):
            yield cols, shapes, (watch(rows) if str(fp.table.name) == "items" else rows)

    def watch(rows: Iterator) -> Iterator:
        for i, row in enumerate(rows):
            if i == 100:
                time.sleep(0.2)  # (the fingerprint scan is over by now: the rows made from here on stream)
            if i == step.settle and side == "early":
                deadline = time.monotonic() + 5
                while not done and time.monotonic() < deadline:
                    time.sleep(0.01)
            for at, statement in step.during:
                if i == at and at not in fired:
                    fired.add(at)
                    if side == "early":  # (the early update due by now runs in the other thread: let it)
                        deadline = time.monotonic() + 5
                        while not done and time.monotonic() < deadline:
                            time.sleep(0.01)
                    other_session(p, statement)
            yield row

    def early_updates(self: Writer, tp: Any, stage: Any) -> Any:
        update = real_early(self, tp, stage)
        if update is None:
            return None

        def noted(lo: int, hi: int) -> bool:
            ok = update(lo, hi)
            done.append("updated" if ok else "refused")
            EARLY.append(done[-1])
            return ok
        return noted

    with pytest.MonkeyPatch.context() as m:
        m.setattr(Applier, "_groups", groups)
        if side == "early":
            m.setattr(early, "MIN_ROWS", 4)
            m.setattr(Writer, "early_updates", early_updates)
        else:
            m.setenv(early.ENV, "0")
        if side == "plain":
            m.setattr(PostgresDatabase, "row_formatter", lambda self: None)
        yield


def masked(outcome: tuple) -> tuple:
    """(exit code, report or message) without what names another session (its pid, since when)."""
    code, said = outcome
    return code, re.sub(r"pid \d+|since [0-9: -]+", "…", said) if isinstance(said, str) else said


def recorded(p: Project) -> dict[str, str]:
    """Per table the record of the last run names: whether its fingerprint is recorded ("kept") or not, and
    that a kept one is the table's (another database's row versions differ: only that can be compared)."""
    if not p.rows("SELECT 1 FROM pg_tables WHERE tablename = 'seedkit_digests'"):
        return {}
    seen = {}
    for (state,) in p.rows("SELECT state FROM seedkit_digests"):
        for table, fingerprint in json.loads(state).items():
            actual = p.rows(f"SELECT count(*), coalesce(sum(hashint8extended(xmin::text::bigint, 0)), 0)::text "
                            f"FROM {table}")[0]
            seen[table] = "none" if fingerprint is None else "kept" if list(actual) == fingerprint else "wrong"
    return seen


def contents(p: Project) -> tuple:
    return p.rows("SELECT * FROM items ORDER BY id"), p.rows("SELECT * FROM owners ORDER BY id")


def three_ways(make: Any, steps: list[Step], *, rerun: bool = True) -> list[tuple]:
    """Run ``steps`` on three databases (``SIDES``); after each step (and a rerun after it, with nothing
    changed) the exit code, the report or message and the tables must agree, and the fingerprints recorded
    (with skipping) too. Returns the early side's (exit code, report) per step."""
    projects = {side: make(side) for side in SIDES}
    seen = []
    for i, step in enumerate(steps):
        outcomes: dict[str, list] = {}
        for side, p in projects.items():
            if step.fixture is not None:
                p.write("dev/items.py", step.fixture)
            if step.sql is not None:
                p.sql(step.sql)
            holder = None
            if step.hold:
                holder = psycopg.connect(p.url)
                holder.execute(f"SELECT * FROM items WHERE {step.hold} FOR UPDATE")
            try:
                with side_of(p, step, side):
                    got = [masked(p.seed_report("dev", *step.args)), contents(p), recorded(p)]
            finally:
                if holder is not None:
                    holder.close()
            if rerun:
                with side_of(p, Step(), side):
                    got += [p.seed_report("dev"), contents(p), recorded(p)]
            outcomes[side] = got
        for side in ("late", "plain"):
            for what, a, b in zip(("outcome", "tables", "fingerprints recorded", "rerun", "tables after the rerun",
                                   "fingerprints recorded by the rerun"), outcomes["early"], outcomes[side]):
                if side == "plain" and what.startswith("fingerprints"):
                    continue  # (a run that never skips records none)
                assert a == b, f"step {i}: {what} differs, early / {side}:\n{a}\n{b}"
        seen.append(outcomes["early"][0])
    return seen


@pytest.fixture
def small_project(pg_server: str, tmp_path: Path) -> Iterator[Callable[[str], Project]]:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=20,
                     files=lambda p: p.write("dev/owners.yaml", OWNERS)) as make:
        yield make


CHANGED = "f'item {n}' + ('!' if n % 9 == 1 else '')"  # rows changed all along the fixture
LATE = 900  # a row made after early updates ran


@pytest.mark.parametrize("case", [
    "raises", "key changes", "duplicate key", "check constraint", "rejected value",
])
def test_a_late_failure_after_early_updates_is_the_plain_runs(small_project, case: str) -> None:
    """After early updates ran, something late in the fixture goes wrong: the same message, exit code and
    database (nothing written), and the next run agrees too."""
    first = Step(fixture(ROWS), sql="ALTER TABLE items ADD CONSTRAINT small_qty CHECK (qty < 100)")
    late = {
        "raises": fixture(ROWS, label=CHANGED, pause=streaming(LATE, f"raise RuntimeError('boom at {LATE}')")),
        "key changes": fixture(ROWS, label=CHANGED).replace('f"c{n:05}"', f'f"c{{n:05}}" if n != {LATE} else "x"'),
        "duplicate key": fixture(ROWS, label=CHANGED).replace('f"c{n:05}"',
                                                              f'f"c{{n:05}}" if n != {LATE} else "c00005"'),
        "check constraint": fixture(ROWS, label=CHANGED, qty=f"1000 if n == {LATE} else n % 7"),
        "rejected value": fixture(ROWS, label=CHANGED, qty=f"'many' if n == {LATE} else n % 7"),
    }[case]
    EARLY.clear()
    seen = three_ways(small_project, [first, Step(late, settle=LATE - 30)])
    assert "updated" in EARLY, EARLY
    print(seen)


@pytest.mark.parametrize("statement", [
    "UPDATE owners SET name = 'cy2' WHERE name = 'cyd'",  # references no longer resolve
    "INSERT INTO owners (name) VALUES ('dan')",  # a reference staged early resolves from now on
    "UPDATE owners SET name = name",
    "DELETE FROM items WHERE code = 'c00002'",  # a skipped row, among those updated early
    "UPDATE items SET label = 'meanwhile' WHERE code = 'c00003'",
    "INSERT INTO items (code, label) VALUES ('c01001', 'meanwhile')",  # the row the fixture appends
    "INSERT INTO items (code, label) VALUES ('zz', 'meanwhile')",
])
def test_another_session_commits_between_two_copys_after_early_updates(small_project, statement: str) -> None:
    owner = "('ann', 'bob', 'cyd')[n % 3]"
    if "dan" in statement:
        owner = f"'dan' if n == 50 else {owner}"
    rows = ROWS + 1 if "c01001" in statement else ROWS
    EARLY.clear()
    three_ways(small_project, [Step(fixture(ROWS)),
                               Step(fixture(rows, label=CHANGED, owner=owner), settle=800, during=[(800, statement)])])
    assert "updated" in EARLY, EARLY


def test_a_lock_timeout_in_an_early_update_is_the_plain_runs(small_project) -> None:
    """Another session holds a changed row past the run's lock_timeout: the early update gives up (undone),
    and the statement at the end meets the same lock: the same error as updating at the end."""
    EARLY.clear()

    def make(side: str) -> Project:
        p = small_project(side)
        p.config_path.write_text(p.config_path.read_text().replace("[seeds]", "[seeds]\nlock_timeout = 0.5"))
        return p
    seen = three_ways(make, [Step(fixture(ROWS)),
                                      Step(fixture(ROWS, label=CHANGED), hold="code = 'c00010'", settle=800)])
    assert seen[1][0] == 4 and "waited 0.5 s for a lock on a row of table items" in seen[1][1], seen[1]
    assert "refused" in EARLY, EARLY


@pytest.mark.parametrize("args", [("--only", "items"), ("--diff",), ("--dry-run",), ("--check",)])
def test_only_diff_dry_run_and_check_agree_with_early_updates(small_project, args: tuple[str, ...]) -> None:
    three_ways(small_project, [Step(fixture(ROWS)), Step(fixture(ROWS, label=CHANGED), args=args)])


@pytest.mark.parametrize("batch", [4, 2000])
def test_tiny_and_huge_batches_agree(pg_server: str, tmp_path: Path, batch: int) -> None:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=batch,
                     files=lambda p: p.write("dev/owners.yaml", OWNERS)) as make:
        EARLY.clear()
        three_ways(make, [Step(fixture(ROWS)), Step(fixture(ROWS, label=CHANGED), settle=800),
                          Step(fixture(ROWS + 7, label="f'item {n}' + ('?' if n % 5 == 1 else '')"), settle=800),
                          Step(fixture(ROWS - 3, label=CHANGED), settle=800,
                               during=[(800, "UPDATE items SET qty = 5 WHERE code = 'c00004'")])])
        assert ("updated" in EARLY) == (batch < ROWS), EARLY


@pytest.mark.parametrize("how", ["early", "late"])
def test_the_connection_ended_while_an_update_waits(new_project, how: str) -> None:
    """The run's backend is terminated while an update waits for another session's lock (early: while the
    fixture is still making rows): the run fails as when its statement at the end is the one ended."""
    p = new_project(how)
    p.config_path.write_text(p.config_path.read_text().replace("[seeds]", "[seeds]\nlock_timeout = 60"))
    p.write("dev/items.py", fixture())
    assert p.run("run", "dev").returncode == 0
    before = items_of(p)
    p.write("dev/items.py", fixture(label="f'item {n}' + ('!' if n <= 6000 else '')",
                                    pause=copying(9000, "time.sleep(4)")))
    with psycopg.connect(p.url) as holder:
        holder.execute("SELECT * FROM items WHERE code = 'c00010' FOR UPDATE")
        proc = p.spawn("run", "dev", env={early.ENV: "1" if how == "early" else "0"})
        try:
            pid = wait_for(lambda: p.rows("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                          "AND wait_event_type = 'Lock'"), 60, "an update waiting")[0][0]
            p.rows("SELECT pg_terminate_backend(%s)", [pid])
            out, errs = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            holder.rollback()
    assert items_of(p) == before
    assert no_traceback(out, errs), errs
    # the server's reason, or libpq's when the socket closed before the reason was read (a loaded machine)
    assert proc.returncode == 1, errs
    assert errs in (f"error: connection lost: {reason}\nhint: nothing was written: the run's one transaction ended "
                    "with the connection; run again\n"
                    for reason in ("terminating connection due to administrator command",
                                   "consuming input failed: server closed the connection unexpectedly")), errs


def test_an_early_update_refused_after_updating_rows_leaves_the_fingerprints_exact(small_project, monkeypatch) -> None:
    """An early update that fails after it updated rows (undone under its savepoint, the statement at the end
    updating them) keeps the record as exact as updating at the end does: the database still counts those
    rolled-back rows as written, and the run follows them."""
    real = Writer.one_update
    refused: list[str] = []

    def failing_late(self: Writer, tp: Any, stage: Any, src: str, compare: list[str], version: str,
                     unresolved_in: str | None) -> str:
        statement = real(self, tp, stage, src, compare, version, unresolved_in)
        if unresolved_in is None and not refused:  # the first early update: it updates its rows, then fails
            refused.append(src)
            assert statement.endswith(", 0 FROM u")
            return statement[:-len("0 FROM u")] + "1 / (count(*) - count(*)) FROM u"
        return statement

    monkeypatch.setattr(Writer, "one_update", failing_late)
    EARLY.clear()
    three_ways(small_project, [Step(fixture(ROWS)), Step(fixture(ROWS, label=CHANGED), settle=800)])
    assert EARLY[0] == "refused", EARLY


SECOND = textwrap.dedent("""\
    from seedkit import fixture


    @fixture("items", key=["code"], name="more")
    def more(fake):
        for n in range(1, 301):
            yield {"code": f"m{n:05}", "label": f"more {n}" + ("!" if n % 4 == 0 else ""), "qty": n % 5}
    """)


@pytest.mark.parametrize("case", ["prune", "two fixtures", "create_only"])
def test_runs_that_never_skip_update_nothing_early(small_project, case: str) -> None:
    """Pruning, a second fixture of the table, create_only columns: the same outcome three ways (prune and a
    second fixture compare every row: nothing is updated early)."""
    def source(label: str) -> str:
        text = fixture(ROWS, label=label)
        if case == "prune":
            return text.replace('key=["code"]', 'key=["code"], prune=True')
        if case == "create_only":
            return text.replace('key=["code"]', 'key=["code"], create_only=["qty"]')
        return text

    def make(side: str) -> Project:
        p = small_project(side)
        if case == "two fixtures":
            p.write("dev/more.py", SECOND)
        return p
    EARLY.clear()
    three_ways(make, [Step(source("f'item {n}'"), sql="INSERT INTO items (code) VALUES ('zz')"),
                      Step(source(CHANGED), settle=800)])
    assert bool(EARLY) == (case == "create_only"), EARLY


def test_the_rows_held_while_an_early_update_runs_stay_bounded(small_project, monkeypatch) -> None:
    """While an early update runs (here: slowly), the rows made meanwhile wait as COPY text up to
    ``HELD_BYTES``; the making thread then waits too."""
    monkeypatch.setattr(early, "HELD_BYTES", 3000)
    held: list[int] = []
    real_put, real_early = early._Handoff.put, Writer.early_updates

    def put(self: Any, item: Any) -> bool:
        ok = real_put(self, item)
        held.append(self.held - len(item[0]))  # (held before this item: it is below the bound)
        return ok

    def slow(self: Writer, tp: Any, stage: Any) -> Any:
        update = real_early(self, tp, stage)
        return None if update is None else lambda lo, hi: time.sleep(0.5) or update(lo, hi)

    monkeypatch.setattr(early._Handoff, "put", put)
    monkeypatch.setattr(Writer, "early_updates", slow)
    everything = "f'item {n}' + ('!' * 40 if n % 2 else '')"  # about 70 bytes a row, every other row changed
    three_ways(small_project, [Step(fixture(ROWS)), Step(fixture(ROWS, label=everything))])
    assert held and max(held) < 3000, max(held)
    assert max(held) > 1500  # (it did fill up while an update ran)


def test_an_early_update_does_not_wait_for_a_locked_row(small_project) -> None:
    """A row another session holds is left to the statement at the end at once: the run waits for it once,
    [seeds] lock_timeout, as when every update waits for the end (not once early and once more at the end)."""
    took = {}
    for side in ("early", "late"):
        p = small_project(side)
        p.config_path.write_text(p.config_path.read_text().replace("[seeds]", "[seeds]\nlock_timeout = 2"))
        p.write("dev/items.py", fixture(ROWS))
        assert p.seed_report("dev")[0] == 0
        p.write("dev/items.py", fixture(ROWS, label=CHANGED))
        with psycopg.connect(p.url) as holder:
            holder.execute("SELECT * FROM items WHERE code = 'c00010' FOR UPDATE")
            with side_of(p, Step(settle=800), side):
                start = time.monotonic()
                code, said = p.seed_report("dev")
                took[side] = time.monotonic() - start
        assert code == 4 and "waited 2 s for a lock on a row of table items" in said, said
    assert took["early"] < took["late"] + 1.2, took  # (waiting twice would take 2 s more)


def test_sqlite_stays_plain(tmp_path: Path) -> None:
    """SQLite never skips rows, so never updates any early: the same outcome with early updates on and off."""
    seen = {}
    for side in ("early", "late"):
        p = Project(tmp_path / side, f"sqlite:///{tmp_path / side}.db", envs={"dev": {"include": ["dev"]}})
        p.sql(SCHEMA, SCHEMA.replace("bigserial", "INTEGER"))
        p.write("dev/owners.yaml", OWNERS)
        EARLY.clear()
        got = []
        for source in (fixture(ROWS), fixture(ROWS, label=CHANGED), fixture(ROWS, label=CHANGED)):
            p.write("dev/items.py", source)
            with side_of(p, Step(), side):
                got.append((p.seed_report("dev"), contents(p)))
        assert EARLY == []
        seen[side] = got
    assert seen["early"] == seen["late"]
    assert seen["early"][1][0][1]["totals"]["updated"] == ROWS // 9 + 1
