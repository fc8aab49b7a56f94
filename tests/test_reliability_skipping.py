"""Skipping unchanged rows of Python fixtures (seed/skip_tracker.py; RELIABILITY.md §7): a run that skips rows by
their digests must leave exactly the database, and give exactly the report, that a run comparing
every row would — whatever changed in the fixture or, behind seedkit's back, in the database.

Every scenario runs twice, on two databases: once as shipped and once with skipping switched off
(no row formatter, so every row is staged and compared in SQL). Both must agree step by step; the
rows actually sent to the staging table show that the skipping happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

import seedkit
from seedkit import db
from seedkit.db import TableName
from seedkit.db.postgres import PostgresDatabase
from seedkit.errors import SeedkitError
from seedkit.seed.apply import Applier
from seedkit.seed.checks import Checks
from seedkit.seed.fingerprints import Fingerprints
from seedkit.seed.skip_tracker import CHUNK, Restage, Tracker
from seedkit.seed.write import Writer
from tests.support import Project, pg_projects
from tests.support.pgcluster import Cluster, find_bindir

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE TABLE owners (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE items (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text, qty int, owner_id bigint);
"""
OWNERS = """
key: [name]
rows:
  - {name: ann}
  - {name: bob}
  - {name: cyd}
"""
BATCH = 100
ROWS = 1000


def items(rows: int = ROWS, *, label: str = "f'item {n}'", code: str = "f'c{n:05}'", qty: str = "n % 7",
          owner: str | None = "('ann', 'bob', 'cyd')[n % 3]") -> str:
    """A generator fixture of ``rows`` items; each part is a Python expression of ``n``."""
    owner_id = f', "owner_id": ref("owners", {owner}, column="id")' if owner else ""
    return textwrap.dedent(f"""\
        from seedkit import fixture, ref


        @fixture("items", key=["code"])
        def items(fake):
            for n in range(1, {rows} + 1):
                yield {{"code": {code}, "label": {label}, "qty": {qty}{owner_id}}}
        """)


@dataclass
class Step:
    fixture: str | None = None  # new items.py source
    sql: str | None = None  # run behind seedkit's back before the seed run
    dry_run: bool = False
    during: str | None = None  # committed by another session while the run streams items
    at_end: str | None = None  # committed by another session after the run's last write, before its commit


class Sent:
    """Rows COPYed per table (staging tables are named _sk_stage_N): by the skipping path (formatted
    buffers) and by the path that sends every row."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.items: set[str] = set()

    def staged(self) -> int:
        """Rows of items (the fixture with a "code" column) sent to a staging table."""
        return sum(n for t, n in self.rows.items() if t.startswith('"_sk_stage') and t in self.items)

    def clear(self) -> None:
        self.rows.clear()
        self.items.clear()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    spy = Sent()
    real = PostgresDatabase.load_buffers

    def counting(self, table_sql, columns, buffers):  # type: ignore[no-untyped-def]
        if "code" in columns:
            spy.items.add(table_sql)

        def each() -> Iterator[bytes]:
            for data in buffers:
                spy.rows[table_sql] = spy.rows.get(table_sql, 0) + bytes(data).count(b"\n")
                yield data
        return real(self, table_sql, columns, each())

    monkeypatch.setattr(PostgresDatabase, "load_buffers", counting)
    real_rows = PostgresDatabase.load_rows

    def counting_rows(self, table_sql, columns, rows):  # type: ignore[no-untyped-def]
        if "code" in columns:
            spy.items.add(table_sql)
        n = real_rows(self, table_sql, columns, rows)
        spy.rows[table_sql] = spy.rows.get(table_sql, 0) + n
        return n

    monkeypatch.setattr(PostgresDatabase, "load_rows", counting_rows)
    return spy


def other_session(p: Project, statement: str) -> None:
    """Commit ``statement`` from another connection (it never waits for the run's row locks)."""
    with psycopg.connect(p.url, autocommit=True) as c:
        c.execute("SET lock_timeout = '2s'")
        c.execute(statement)


@contextmanager
def plain_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Switch skipping off: without a row formatter every row is staged and compared."""
    with monkeypatch.context() as m:
        m.setattr(PostgresDatabase, "row_formatter", lambda self: None)
        yield


@pytest.fixture
def new_project(pg_server: str, tmp_path: Path) -> Iterator[Callable[[str], Project]]:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=BATCH,
                     files=lambda p: p.write("dev/owners.yaml", OWNERS)) as make:
        yield make


saved: list = []  # trackers whose records the last run saved


def outcome(p: Project, step: Step) -> tuple:
    if step.fixture is not None:
        p.write("dev/items.py", step.fixture)
    if step.sql is not None:
        p.sql(step.sql)
    fired = []
    saved.clear()

    def progress(label: str, done: int, total: int | None) -> None:
        if step.during and label == "items" and done >= 3 * BATCH and not fired:
            fired.append(label)
            other_session(p, step.during)

    real_save = Applier._save_digests

    def save(self: Applier) -> None:
        if step.at_end:
            other_session(p, step.at_end)
        real_save(self)
        saved.extend(t for t, _ in self.trackers)

    try:
        with pytest.MonkeyPatch.context() as m:
            m.setattr(Applier, "_save_digests", save)
            report = seedkit.run("dev", config=p.config(), dry_run=step.dry_run, progress=progress)
        result: object = [(t.table, t.inserted, t.updated, t.unchanged, t.deleted) for t in report.tables]
    except SeedkitError as exc:
        result = str(exc).replace(str(p.root), "<project>")
    assert bool(fired) == bool(step.during)
    return result, p.rows("SELECT * FROM items ORDER BY id"), p.rows("SELECT * FROM owners ORDER BY id")


def both_ways(new_project: Callable[[str], Project], monkeypatch: pytest.MonkeyPatch, sent: Sent,
              steps: list[Step]) -> list[tuple[tuple, int]]:
    """Run ``steps`` skipping and not skipping; assert they agree; return (outcome, rows staged) per step."""
    fast, plain = new_project("fast"), new_project("plain")
    seen = []
    for i, step in enumerate(steps):
        sent.clear()
        got = outcome(fast, step)
        staged = sent.staged()
        if saved and not (step.during or step.at_end):
            assert_state_is_true(fast)
        fast_rows, fast_items = dict(sent.rows), set(sent.items)
        with plain_path(monkeypatch):
            want = outcome(plain, step)
        sent.clear()
        sent.rows.update(fast_rows)
        sent.items.update(fast_items)
        assert got == want, f"step {i}: skipping and comparing every row disagree"
        seen.append((got, staged))
    return seen


def assert_state_is_true(p: Project) -> None:
    """The fingerprints a run records (followed while it writes) are those of the tables it leaves (when
    no other session wrote them meanwhile)."""
    if not p.rows("SELECT 1 FROM pg_tables WHERE tablename = 'seedkit_digests'"):
        return
    for (state,) in p.rows("SELECT state FROM seedkit_digests"):
        for table, fingerprint in json.loads(state).items():
            actual = p.rows(f"SELECT count(*), coalesce(sum(hashint8extended(xmin::text::bigint, 0)), 0)::text "
                            f"FROM {table}")[0]
            assert fingerprint is None or list(actual) == fingerprint, \
                f"{table}: recorded {fingerprint}, the table has {actual}"


def report_of(seen: tuple) -> object:
    return seen[0][0]


# -- the rerun that changes nothing, and small changes --------------------------------------------------
def test_a_rerun_with_nothing_changed_stages_no_row(new_project, monkeypatch, sent) -> None:
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(), Step()])
    assert report_of(seen[0]) == [("owners", 3, 0, 0, 0), ("items", ROWS, 0, 0, 0)]
    for out, staged in seen[1:]:
        assert report_of((out, staged)) == [("owners", 0, 0, 3, 0), ("items", 0, 0, ROWS, 0)]
        assert staged == 0


def test_the_second_process_skips_too_whatever_its_hash_seed(new_project, tmp_path: Path) -> None:
    """Digests must not depend on the process (Python randomises str hashes per process)."""
    p = new_project("cli")
    p.write("dev/items.py", items())

    def cli(seed: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "seedkit", "run", "dev", "--json"], cwd=p.root, text=True,
                              capture_output=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": seed})

    assert cli("1").returncode == 0
    assert cli("2").returncode == 0  # fills in the chunk digests a first staged load leaves out
    before = p.rows("SELECT xmin::text, rows FROM seedkit_digests")
    assert before and before[0][1] == ROWS
    again = cli("3")
    assert again.returncode == 0, again.stderr
    assert '"unchanged": 1000' in again.stdout
    assert p.rows("SELECT xmin::text, rows FROM seedkit_digests") == before  # same digests: not even rewritten


def test_one_changed_row_in_a_hundred_stages_a_few_percent(new_project, monkeypatch, sent) -> None:
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')")
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(changed), Step(), Step(items()),
                                                      Step(changed)])
    # the first load was staged (items reference owners): it left the chunk digests to the next run,
    # which can only tell batches apart (a batch is BATCH rows)
    assert report_of(seen[1]) == [("owners", 0, 0, 3, 0), ("items", 0, 10, ROWS - 10, 0)]
    assert seen[1][1] == ROWS
    assert seen[2][1] == 0  # the record now describes the changed rows
    for out, staged in seen[3:]:
        assert report_of((out, staged))[1] == ("items", 0, 10, ROWS - 10, 0)
        assert 10 <= staged <= 10 * CHUNK


def test_a_rerun_that_keeps_every_key_runs_no_duplicate_check(new_project, monkeypatch, sent) -> None:
    """Keys generated exactly as the last run did (every batch's key digest unchanged) were proved distinct
    then: the GROUP BY over the staged rows is skipped. A changed key brings it back (here riding on the
    classifying join: items has its own unique key on code)."""
    checked: list[int] = []
    real = Checks.check_duplicates

    def spy(self: Checks, tp: Any, stage: Any) -> None:
        if stage.tracker is not None:  # the skipping path only (the plain one has no tracker)
            checked.append(stage.count)
        real(self, tp, stage)

    real_fold = Writer.folds_duplicates

    def fold_spy(self: Writer, tp: Any, stage: Any) -> bool:  # the check riding on the classifying join
        folds = real_fold(self, tp, stage)
        if folds and stage.tracker is not None:
            checked.append(stage.count)
        return folds

    monkeypatch.setattr(Checks, "check_duplicates", spy)
    monkeypatch.setattr(Writer, "folds_duplicates", fold_spy)
    labels = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')")
    rekeyed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')", code="'x00500' if n == 500 else f'c{n:05}'")
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(), Step(labels), Step(rekeyed)])
    assert seen[1][1] == 0  # (the rerun fills in the chunk digests the first, staged load left out)
    assert report_of(seen[2])[1] == ("items", 0, 10, ROWS - 10, 0) and 10 <= seen[2][1] <= 10 * CHUNK
    assert report_of(seen[3])[1] == ("items", 1, 0, ROWS - 1, 0)
    # never over the few rows staged with every key kept; over every row once a key changed
    assert checked == [ROWS]


def test_after_a_load_straight_into_an_empty_table_the_next_change_stages_a_few_rows(new_project, monkeypatch,
                                                                                    sent) -> None:
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')", owner=None)
    seen = both_ways(new_project, monkeypatch, sent, [Step(items(owner=None)), Step(changed)])
    assert [n for t, n in sent.rows.items() if t in sent.items] == [seen[1][1]]  # one staging table, no direct load
    assert ("items", 0, 10, ROWS - 10, 0) in report_of(seen[1])
    assert 10 <= seen[1][1] <= 10 * CHUNK


class Statements:
    """What the skipping side ran on items: classifying passes, and one-statement updates (and how they ended)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sql: list[str] = []
        self.one_pass: list[str] = []
        real_fetchone = PostgresDatabase.fetchone
        real_one = Writer.update_in_one

        def fetchone(db: PostgresDatabase, sql: Any, params: Any = None) -> Any:
            self.sql.append(str(sql))
            return real_fetchone(db, sql, params)

        def one_pass(writer: Writer, *args: Any) -> None:
            try:
                real_one(writer, *args)
            except Restage:
                self.one_pass.append("staged again")
                raise
            except SeedkitError:
                self.one_pass.append("failed")
                raise
            self.one_pass.append("updated")

        monkeypatch.setattr(PostgresDatabase, "fetchone", fetchone)
        monkeypatch.setattr(Writer, "update_in_one", one_pass)

    def classified(self) -> int:
        return sum(1 for s in self.sql if s.startswith("SELECT COUNT(*), SUM(CASE") and '"items"' in s)


def test_a_few_changed_rows_without_references_are_updated_in_one_statement(new_project, monkeypatch,
                                                                             sent) -> None:
    """Every staged row lies in a batch whose keys are the last run's, which left them all in the table: none
    can be missing, so there is no classifying pass, only the update (the same rows, report and fingerprint
    as comparing every row)."""
    seen_sql = Statements(monkeypatch)
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')", owner=None)
    plain = items(owner=None)
    steps = [Step(plain), Step(), Step(changed), Step(plain), Step(changed)]
    fast = new_project("alone")
    for i, step in enumerate(steps):  # the skipping side alone first: what it ran
        seen_sql.sql.clear()
        outcome(fast, step)
        if i >= 2:
            assert seen_sql.classified() == 0 and seen_sql.one_pass[-1] == "updated", i
    assert seen_sql.one_pass == ["updated"] * 3
    assert_state_is_true(fast)
    seen = both_ways(new_project, monkeypatch, sent, steps)  # and the same as comparing every row
    for out, staged in seen[2:]:
        assert ("items", 0, 10, ROWS - 10, 0) in report_of((out, staged))
        assert 10 <= staged <= 10 * CHUNK


def test_a_commit_elsewhere_during_the_run_leaves_the_one_statement_update_standing(new_project, monkeypatch,
                                                                                   sent) -> None:
    """Another transaction committed since the scan (in a table the fixture does not touch): the fresh
    scan that then decides sees this run's own update too, and takes it into account."""
    seen_sql = Statements(monkeypatch)
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')", owner=None)
    elsewhere = "CREATE TABLE IF NOT EXISTS elsewhere (x int); INSERT INTO elsewhere VALUES (1)"
    seen = both_ways(new_project, monkeypatch, sent,
                     [Step(items(owner=None)), Step(), Step(changed, during=elsewhere), Step()])
    assert seen_sql.one_pass == ["updated"]  # not staged again
    assert 10 <= seen[2][1] <= 10 * CHUNK and seen[3][1] == 0


def test_rows_past_the_end_of_the_last_run_are_classified(new_project, monkeypatch, sent) -> None:
    """Rows past the end of the last run may be missing: that run classifies the staged rows first (the usual
    path); the next one updates in one statement again, references and all."""
    seen_sql = Statements(monkeypatch)
    changed = "f'item {n}' + ('!' if n % 100 == 7 else '')"
    steps = [Step(items(owner=None)), Step(), Step(items(ROWS + 3, label=changed, owner=None)),
             Step(items(ROWS + 3)), Step(), Step(items(ROWS + 3, label=changed))]
    seen = both_ways(new_project, monkeypatch, sent, steps)
    assert ("items", 3, 10, ROWS - 10, 0) in report_of(seen[2])
    assert ("items", 0, 10, ROWS - 7, 0) in report_of(seen[5])
    assert seen_sql.one_pass == ["updated"]  # the last step only
    assert seen_sql.classified() >= 3


def test_a_reference_that_no_longer_resolves_in_a_changed_row_is_the_usual_error(new_project, monkeypatch,
                                                                                 sent) -> None:
    """The one-statement update leaves such a row alone and counts it: the run stops, nothing written."""
    seen_sql = Statements(monkeypatch)
    gone = items(owner="('ann', 'bob', 'cyd')[n % 3] if n != 207 else 'nobody'")
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(), Step(gone), Step(items())])
    assert "nobody" in str(report_of(seen[2])) and "row 207" in str(report_of(seen[2]))
    assert seen_sql.one_pass == ["failed"]  # the one statement found it
    assert report_of(seen[3])[1] == ("items", 0, 0, ROWS, 0)


@pytest.mark.parametrize("sql", [
    "UPDATE items SET label = 'by another session' WHERE code = 'c00042'",
    "DELETE FROM items WHERE code = 'c00107'",  # a changed row: it must be inserted again, not left out
])
def test_a_commit_before_the_one_statement_update_undoes_it_and_compares_every_row(new_project, monkeypatch,
                                                                                  sent, sql: str) -> None:
    seen_sql = Statements(monkeypatch)
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')", owner=None)
    seen = both_ways(new_project, monkeypatch, sent,
                     [Step(items(owner=None)), Step(), Step(changed, during=sql), Step(), Step()])
    assert "staged again" in seen_sql.one_pass
    assert seen[-1][1] == 0


def test_a_row_changed_elsewhere_while_the_one_statement_update_waits_for_it_stages_again(new_project, monkeypatch,
                                                                                          sent) -> None:
    """Another session changed a row the fixture changes too and commits while the one-statement update waits
    for that row's lock (after the update's own snapshot was taken). The server then either leaves the row out
    (the check after the statement sees the commit: the update is undone and every row compared; PostgreSQL
    15 here) or writes it from its newest version (the update's own fingerprint delta then holds; PostgreSQL 16
    here, by another plan). Either way the row ends as the fixture says, the report counts it, and the
    fingerprints the next runs rely on are true."""
    seen_sql = Statements(monkeypatch)
    p = new_project("fast")
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')", owner=None)
    for step in (Step(items(owner=None)), Step()):
        outcome(p, step)
    holder = psycopg.connect(p.url)  # holds the row's lock: its change commits only once the run waits for it
    holder.execute("UPDATE items SET label = 'by another session', qty = 99 WHERE code = 'c00107'")
    waited = []

    def commit_once_the_run_waits() -> None:
        with psycopg.connect(p.url, autocommit=True) as watch:
            for _ in range(400):
                if watch.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND query LIKE 'WITH u AS (UPDATE%%'").fetchone():
                    waited.append(True)
                    break
                time.sleep(0.05)
        holder.commit()

    watcher = threading.Thread(target=commit_once_the_run_waits)
    watcher.start()
    try:
        sent.clear()
        got = outcome(p, Step(changed))
    finally:
        watcher.join()
        holder.close()
    assert waited and seen_sql.one_pass in (["staged again"], ["updated"]), seen_sql.one_pass
    assert ("items", 0, 10, ROWS - 10, 0) in got[0]
    assert [r[1:4] for r in got[1] if r[1] in ("c00107", "c00207")] == [("c00107", "item 107!", 107 % 7),
                                                                           ("c00207", "item 207!", 207 % 7)]
    again = outcome(p, Step())  # (this run scans again: the last one could not follow the other session's write)
    assert ("items", 0, 0, ROWS, 0) in again[0]
    assert_state_is_true(p)
    sent.clear()
    assert ("items", 0, 0, ROWS, 0) in outcome(p, Step())[0] and sent.staged() == 0


def test_appended_rows_are_inserted_without_staging_the_rest(new_project, monkeypatch, sent) -> None:
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(items(ROWS + 150)), Step(items(ROWS + 151))])
    assert report_of(seen[1])[1] == ("items", 150, 0, ROWS, 0)
    assert 150 <= seen[1][1] <= 150 + CHUNK
    assert report_of(seen[2])[1] == ("items", 1, 0, ROWS + 150, 0)
    assert seen[2][1] <= CHUNK + 1


@pytest.mark.parametrize("change", ["shrink", "insert in the middle", "re-key one row", "re-key all rows",
                                    "new column value everywhere", "new owner", "move owners"])
def test_other_changes_of_the_fixture_agree_with_comparing_every_row(new_project, monkeypatch, sent,
                                                                     change: str) -> None:
    source = {
        "shrink": items(ROWS - 130),
        "insert in the middle": items(ROWS + 1, code="f'c{n:05}' if n < 500 else ('c00499x' if n == 500 "
                                                     "else f'c{n - 1:05}')"),
        "re-key one row": items(code="'renamed' if n == 321 else f'c{n:05}'"),
        "re-key all rows": items(code="f'k{n:05}'"),
        "new column value everywhere": items(qty="n % 7 + 1"),
        "new owner": items(owner="'cyd' if n == 640 else ('ann', 'bob', 'cyd')[n % 3]"),
        "move owners": items(owner="('bob', 'cyd', 'ann')[n % 3]"),
    }[change]
    both_ways(new_project, monkeypatch, sent, [Step(items()), Step(source), Step(), Step(items())])


# -- the database changed behind seedkit's back -----------------------------------------------------------
@pytest.mark.parametrize("sql", [
    "UPDATE items SET label = 'edited by hand' WHERE code = 'c00042'",
    "UPDATE items SET qty = qty WHERE code = 'c00042'",  # same value, new row version
    "DELETE FROM items WHERE code IN ('c00042', 'c00900')",
    "INSERT INTO items (code, label) VALUES ('zzz', 'someone else''s')",
    "UPDATE owners SET id = id + 100",  # items point at owners by id, without a foreign key
    "DELETE FROM owners WHERE name = 'cyd'; INSERT INTO owners (name) VALUES ('cyd')",
    "TRUNCATE items",
], ids=["edit", "touch", "delete", "insert", "owner ids", "owner replaced", "truncate"])
def test_changes_made_behind_seedkits_back_are_found(new_project, monkeypatch, sent, sql: str) -> None:
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(), Step(sql=sql), Step()])
    assert seen[1][1] == 0
    assert seen[2][1] in (ROWS, 0)  # everything compared again (or loaded straight into an emptied table)
    assert seen[3][1] == 0


@pytest.mark.parametrize("sql", [None, "UPDATE items SET label = 'edited by hand' WHERE code = 'c00042'",
                                 "DELETE FROM owners WHERE name = 'cyd'; INSERT INTO owners (name) VALUES ('cyd')"],
                         ids=["nothing", "edit", "owner replaced"])
def test_the_fingerprint_scan_runs_while_the_first_batches_are_made(new_project, monkeypatch, sent,
                                                                    sql: str | None) -> None:
    """The scan runs on the run's connection in another thread while this one makes and digests batches
    against the last run's record (made slow here, so every batch is made before it ends); when it finds
    the tables changed behind seedkit's back, the fixture is made again from its first row and every row
    is staged and compared."""
    seen_scans: list[tuple[bool, int]] = []  # (in another thread, items rows made before the scan ended)
    made = [0]
    real_verify = Fingerprints.verify

    def slow_verify(self: Fingerprints, tracker: Any, old: Any) -> bool:
        time.sleep(0.3)
        ok = real_verify(self, tracker, old)
        seen_scans.append((threading.current_thread() is not threading.main_thread(), made[0]))
        return ok

    real_outcome = outcome

    def counting_outcome(p: Project, step: Step) -> tuple:
        made[0] = 0
        with pytest.MonkeyPatch.context() as m:
            real_feed = Tracker.feed

            def feed(tracker: Tracker, built: Any, fmt: Any) -> Any:
                made[0] += len(built)
                return real_feed(tracker, built, fmt)
            m.setattr(Tracker, "feed", feed)
            return real_outcome(p, step)

    monkeypatch.setattr(Fingerprints, "verify", slow_verify)
    monkeypatch.setitem(globals(), "outcome", counting_outcome)
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(), Step(sql=sql), Step()])
    assert seen_scans and all(thread and rows == ROWS for thread, rows in seen_scans), seen_scans
    assert seen[1][1] == 0 and seen[3][1] == 0
    assert seen[2][1] == (0 if sql is None else ROWS)  # every row staged and compared once it was found


def test_a_first_runs_scan_runs_while_its_first_batches_are_made(new_project, monkeypatch, sent) -> None:
    """With no record to skip by, the tables the run must follow (the referenced owners; items is empty, so
    followed from nothing) are still scanned before anything is compared or written, in another thread
    while the first batches are made, not after the last; the record it leaves is true."""
    scans: list[tuple[bool, list[str]]] = []  # (in another thread, tables scanned)
    real_scan = Fingerprints.scan

    def scan(self: Fingerprints, tables: list[Any]) -> None:
        todo = [str(t) for t in tables if t not in self.known]
        if todo:
            scans.append((threading.current_thread() is not threading.main_thread(), todo))
        real_scan(self, tables)

    monkeypatch.setattr(Fingerprints, "scan", scan)
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step()])
    assert scans[:1] == [(True, ["owners"])], scans
    assert seen[1][1] == 0  # the record it left lets the next run skip every row


def test_a_changed_configuration_compares_every_row(new_project, monkeypatch, sent) -> None:
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(sql="ALTER TABLE items ALTER qty TYPE "
                                                                              "bigint"), Step()])
    assert seen[1][1] == ROWS
    assert seen[2][1] == 0


# -- repeated keys are still found ----------------------------------------------------------------------------
@pytest.mark.parametrize("code", [
    "'c00003' if n == 555 else f'c{n:05}'",  # a changed row takes the key of an unchanged one
    "'c00003' if n == 1001 else f'c{n:05}'",  # an appended row does
    "'c00998' if n == 1001 else f'c{n:05}'",  # an appended row takes a key from the same batch
], ids=["changed row", "appended row", "appended row, same batch"])
def test_a_generated_key_repeating_an_unchanged_row_is_a_located_error(new_project, monkeypatch, sent,
                                                                       code: str) -> None:
    rows = 1001 if "1001" in code else ROWS
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(items(rows, code=code))])
    error = report_of(seen[1])
    assert isinstance(error, str) and "generated twice" in error and "items.py" in error
    assert seen[1][0][1] == seen[0][0][1]  # nothing written


def test_a_value_the_database_rejects_in_a_changed_row_names_that_row(new_project, monkeypatch, sent) -> None:
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(items(qty="'many' if n == 777 else n % 7"))])
    error = report_of(seen[1])
    assert isinstance(error, str) and "row 777" in error and "qty" in error


# -- dry runs -----------------------------------------------------------------------------------------------
def test_a_dry_run_never_skips_and_records_nothing(new_project, monkeypatch, sent) -> None:
    """A dry run (and --check, which is one) is the authoritative drift check: it compares every row."""
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')")
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(), Step(dry_run=True),
                                                      Step(changed, dry_run=True), Step()])
    assert seen[1][1] == 0  # a real rerun skips
    assert report_of(seen[2])[1] == ("items", 0, 0, ROWS, 0)
    assert seen[2][1] == ROWS  # a dry rerun of the same rows stages every one
    assert report_of(seen[3])[1] == ("items", 0, 10, ROWS - 10, 0)
    assert seen[3][1] == ROWS
    assert report_of(seen[4])[1] == ("items", 0, 10, ROWS - 10, 0)  # the dry run changed nothing


def test_check_compares_every_row_even_when_the_record_matches(new_project, tmp_path: Path) -> None:
    """`seedkit run --check` exits 3 on drift that a skipping run could not see: a row edited by hand in
    a way no fingerprint shows (the record is made to match the edited table)."""
    p = new_project("check")
    p.write("dev/items.py", items())
    seedkit.run("dev", config=p.config())
    seedkit.run("dev", config=p.config())
    p.sql("UPDATE items SET label = 'drifted' WHERE code = 'c00042'")
    fp = p.rows("SELECT count(*), coalesce(sum(hashint8extended(xmin::text::bigint, 0)), 0)::text FROM items")[0]
    p.sql("UPDATE seedkit_digests SET state = jsonb_set(state::jsonb, '{items}', "
          f"'[{fp[0]}, \"{fp[1]}\"]')::text")
    check = subprocess.run([sys.executable, "-m", "seedkit", "run", "dev", "--check"], cwd=p.root, text=True,
                           capture_output=True, timeout=120)
    assert check.returncode == 3, check.stdout + check.stderr


def test_a_changed_time_zone_is_a_changed_configuration(new_project, monkeypatch, sent) -> None:
    """The same text means another instant in another session time zone: compare every row again."""
    source = textwrap.dedent("""\
        import datetime
        from seedkit import fixture


        @fixture("events", key=["code"])
        def events(fake):
            for n in range(1, 1001):
                yield {"code": f"e{n}", "at": datetime.datetime(2026, 1, 1) + datetime.timedelta(hours=n)}
        """)
    outcomes = []
    for mode in ("fast", "plain"):
        p = new_project(mode)
        p.sql("CREATE TABLE events (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, at timestamptz)")
        p.write("dev/events.py", source)
        database = p.url.rsplit("/", 1)[1]
        seen = []
        for zone in ("UTC", "UTC", "Asia/Tokyo"):
            p.sql(f"ALTER DATABASE {database} SET TimeZone = '{zone}'")
            sent.clear()
            with plain_path(monkeypatch) if mode == "plain" else nullcontext():
                report = seedkit.run("dev", config=p.config())
            seen.append((report.table("events").updated, sent.staged() if mode == "fast" else None))
        outcomes.append(seen)
    fast, plain = outcomes
    assert [u for u, _ in fast] == [u for u, _ in plain] == [0, 0, 1000]
    assert [s for _, s in fast][1:] == [0, 1000]


def test_a_changed_client_encoding_is_a_changed_configuration(new_project, monkeypatch, sent) -> None:
    """Unchanged values are digested without being formatted (seed/skip_tracker.py): the encoding their
    text is sent in is part of the record, so a run in another one compares every row again."""
    outcomes = []
    for mode in ("fast", "plain"):
        p = new_project(mode)
        p.write("dev/items.py", items())
        database = p.url.rsplit("/", 1)[1]
        seen = []
        for encoding in ("UTF8", "UTF8", "LATIN1"):
            p.sql(f"ALTER DATABASE {database} SET client_encoding = '{encoding}'")
            sent.clear()
            with plain_path(monkeypatch) if mode == "plain" else nullcontext():
                report = seedkit.run("dev", config=p.config())
            seen.append((report.table("items").inserted, report.table("items").updated,
                         sent.staged() if mode == "fast" else None))
        outcomes.append(seen)
    fast, plain = outcomes
    assert [x[:2] for x in fast] == [x[:2] for x in plain] == [(ROWS, 0), (0, 0), (0, 0)]
    assert [x[2] for x in fast][1:] == [0, ROWS]


# -- what changes how stored rows read back, without writing a row ---------------------------------------------
KINDS = """
CREATE TYPE kind AS ENUM ('plain', 'fancy');
CREATE DOMAIN small AS int;
ALTER TABLE items ADD COLUMN kind kind, ADD COLUMN size small;
"""


def kinds(rows: int = ROWS) -> str:
    """Items with an enum column and a domain column too."""
    return items(rows).replace('"qty": n % 7', '"qty": n % 7, "kind": ("plain", "fancy")[n % 2], "size": n % 5')


@pytest.mark.parametrize("sql, then", [
    ("ALTER TABLE items DROP COLUMN qty; ALTER TABLE items ADD COLUMN qty int DEFAULT 3", 857),  # n % 7 != 3
    ("ALTER TABLE items DROP COLUMN kind; ALTER TABLE items ADD COLUMN kind kind DEFAULT 'fancy'", 500),
    ("ALTER TABLE items DROP COLUMN size; ALTER TABLE items ADD COLUMN size small DEFAULT 1", 800),  # the last one
    ("ALTER TYPE kind RENAME VALUE 'fancy' TO 'posh'", "error"),
    ("ALTER TYPE kind RENAME VALUE 'fancy' TO 'posh'; ALTER TYPE kind RENAME VALUE 'plain' TO 'fancy'; "
     "ALTER TYPE kind RENAME VALUE 'posh' TO 'plain'", ROWS),
    ("ALTER DOMAIN small ADD CONSTRAINT below_three CHECK (VALUE < 3) NOT VALID", "error"),
    ("ALTER TABLE items ALTER qty SET DEFAULT 5", "same"),
    ("ALTER TABLE items ALTER label TYPE varchar(200)", "same"),
    ("ALTER TABLE items ALTER label TYPE varchar(7) USING left(label, 7)", "error"),
    ("ALTER TABLE items ALTER label TYPE varchar(200) USING left(label, 5)", ROWS),
], ids=["drop and re-add a column with a default", "the same for an enum column", "the same, last column",
        "enum value renamed",
        "enum labels swapped", "domain constraint not validated", "default", "typmod", "too short a type",
        "type and values"])
def test_a_change_of_how_rows_read_back_compares_every_row(new_project, monkeypatch, sent, sql: str,
                                                           then: str | int) -> None:
    seen = both_ways(new_project, monkeypatch, sent, [Step(kinds(), sql=KINDS), Step(), Step(sql=sql), Step(),
                                                      Step(kinds())])
    assert seen[1][1] == 0
    assert seen[2][1] == ROWS  # not skipped: the record covers the table's shape, not only its rows
    if then == "error":  # the fixture's values do not fit any more
        assert isinstance(report_of(seen[2]), str)
    else:
        assert report_of(seen[2])[1][2] == (0 if then == "same" else then)  # rows repaired


def test_enum_labels_swapped_back_and_forth_never_skip_a_difference(new_project, monkeypatch, sent) -> None:
    swap = ("ALTER TYPE kind RENAME VALUE 'fancy' TO 'posh'; ALTER TYPE kind RENAME VALUE 'plain' TO 'fancy'; "
            "ALTER TYPE kind RENAME VALUE 'posh' TO 'plain'")
    seen = both_ways(new_project, monkeypatch, sent, [Step(kinds(), sql=KINDS), Step(), Step(sql=swap), Step(),
                                                      Step(sql=swap), Step()])
    assert report_of(seen[2])[1][2] == ROWS and report_of(seen[4])[1][2] == ROWS


# -- triggers and rules: what is stored is not what was sent ------------------------------------------------------
BEFORE = """
CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.label := upper(NEW.label); RETURN NEW; END $$;
CREATE TRIGGER shout BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION shout()
"""
AFTER = """
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE items SET qty = -1 WHERE id = NEW.id AND qty IS DISTINCT FROM -1; RETURN NULL; END $$;
CREATE TRIGGER stamp AFTER INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION stamp()
"""


@pytest.mark.parametrize("trigger", [BEFORE, AFTER], ids=["before", "after, writing the same table"])
@pytest.mark.parametrize("from_start", [True, False], ids=["from the start", "added later"])
def test_a_table_with_triggers_compares_every_row_every_run(new_project, monkeypatch, sent, trigger: str,
                                                            from_start: bool) -> None:
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')")
    steps = ([Step(items(), sql=trigger), Step(), Step(changed), Step()] if from_start else
             [Step(items()), Step(), Step(sql=trigger), Step(), Step(changed), Step(),
              Step(sql="DROP TRIGGER shout ON items" if trigger is BEFORE else "DROP TRIGGER stamp ON items"),
              Step(), Step()])
    seen = both_ways(new_project, monkeypatch, sent, steps)
    with_trigger = seen[1:4] if from_start else seen[2:6]
    for _, staged in with_trigger:
        assert staged == ROWS  # compared every row
    if from_start:  # the trigger rewrites what every run sends: every row differs, every run
        assert [report_of(x)[1][2] for x in with_trigger] == [ROWS] * 3
    else:  # the 10 rows written since it was added differ from then on
        assert [report_of(x)[1][2] for x in with_trigger] == [0, 0, 10, 10]
        assert seen[-1][1] == 0  # without it, reruns skip again


@pytest.mark.parametrize("sql", [
    "ALTER TABLE items ENABLE ROW LEVEL SECURITY; ALTER TABLE items FORCE ROW LEVEL SECURITY; "
    "CREATE POLICY all_rows ON items USING (true)",
    "CREATE RULE quiet AS ON UPDATE TO items WHERE NEW.label LIKE '%!' DO INSTEAD NOTHING",
], ids=["row-level security", "rule"])
def test_a_table_with_rules_or_row_level_security_never_skips(new_project, monkeypatch, sent, sql: str) -> None:
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')")
    seen = both_ways(new_project, monkeypatch, sent, [Step(items()), Step(), Step(sql=sql), Step(), Step(changed),
                                                      Step()])
    assert seen[1][1] == 0
    assert [staged for _, staged in seen[2:]] == [ROWS] * 4


def test_a_cascade_from_a_later_prune_is_not_taken_for_the_runs_own_write(new_project, monkeypatch, sent) -> None:
    """Removing an owner prunes it at the end of the run; ON DELETE SET NULL then rewrites items rows this
    very run wrote (the same transaction id: no fingerprint can see it). The next run must not skip."""
    cascade = ("ALTER TABLE items ADD FOREIGN KEY (owner_id) REFERENCES owners (id) ON DELETE SET NULL")
    pruned = OWNERS.replace("key: [name]", "key: [name]\nprune: true")
    fast, plain = new_project("fast"), new_project("plain")
    seen = []
    for p, plain_mode in ((fast, False), (plain, True)):
        p.sql(cascade)
        p.write("dev/owners.yaml", pruned)
        got = []
        with plain_path(monkeypatch) if plain_mode else nullcontext():
            got.append(outcome(p, Step(items())))
            got.append(outcome(p, Step()))
            p.write("dev/owners.yaml", pruned.replace("  - {name: cyd}\n", ""))
            got.append(outcome(p, Step(items(label="f'new {n}'"))))  # rewrites every item, then prunes cyd
            got.append(outcome(p, Step()))  # items still reference cyd: an error, skipping or not
        seen.append(got)
    assert seen[0] == seen[1]
    assert "unresolved" in str(seen[0][3][0])


# -- other sessions committing during a run ---------------------------------------------------------------------
@pytest.mark.parametrize("when", ["during", "at_end"])
@pytest.mark.parametrize("sql", [
    "UPDATE items SET label = 'edited meanwhile' WHERE code = 'c00042'",
    "DELETE FROM items WHERE code = 'c00042'",
    "INSERT INTO items (code, label) VALUES ('zz-other', 'another session')",
    "UPDATE owners SET id = id + 100 WHERE name = 'bob'",
], ids=["edit", "delete", "insert", "owner renumbered"])
def test_another_sessions_commit_during_a_run_is_never_taken_for_the_runs_own(new_project, monkeypatch, sent,
                                                                              when: str, sql: str) -> None:
    changed = items(label="f'item {n}' + ('!' if n % 100 == 7 else '')")
    steps = [Step(items()), Step(), Step(**{when: sql}), Step(), Step(changed, **{when: sql}), Step(), Step()]
    seen = both_ways(new_project, monkeypatch, sent, steps)
    assert seen[-1][1] == 0  # skipping resumes once the tables are what a run left


def test_a_commit_at_the_end_of_a_first_run_into_a_table_with_rows_is_not_recorded(new_project, monkeypatch,
                                                                                   sent) -> None:
    """The first run into a table that already has rows records its fingerprint: taken before it compares,
    followed through its writes, never scanned again after them (that would take in this commit)."""
    edit = "UPDATE items SET label = 'edited meanwhile' WHERE code = 'c00002'"  # a row the run leaves alone
    seen = both_ways(new_project, monkeypatch, sent, [
        Step(sql="INSERT INTO items (code, label, qty, owner_id) VALUES ('c00001', 'there before', 0, 1), "
                 "('c00002', 'item 2', 2, 3)"),
        Step(items(), at_end=edit), Step(), Step()])
    assert report_of(seen[1])[1] == ("items", ROWS - 2, 1, 1, 0)
    assert report_of(seen[2])[1] == ("items", 0, 1, ROWS - 1, 0)  # the edit is found and repaired
    assert seen[3][1] == 0


# -- a restore into another cluster ---------------------------------------------------------------------------
def test_a_restore_into_another_cluster_with_the_same_ids_compares_every_row(tmp_path: Path) -> None:
    """Two fresh clusters hand out the same oids and transaction ids: a dump restored into the other one
    (in one transaction whose id is the one that wrote the rows) has the recorded fingerprint and the same
    table, column and type oids. Only the cluster's system identifier tells them apart; without it, a row
    edited before the dump would be skipped."""
    bindir = find_bindir()
    assert bindir is not None
    tools = {name: str(bindir / name) for name in ("pg_dump", "pg_restore", "pg_resetwal")}
    clusters = [Cluster(bindir).start(), Cluster(bindir).start()]
    try:
        urls = []
        for c in clusters:
            with psycopg.connect(c.url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE seeds")
            urls.append(c.url.rsplit("/", 1)[0] + "/seeds")
        a, b = urls
        with psycopg.connect(a, autocommit=True) as conn:
            conn.execute("CREATE TABLE items (code text PRIMARY KEY, label text, qty int)")
            for _ in range(300):  # the other cluster must be able to reach the same transaction id
                conn.execute("SELECT txid_current()")
        root = tmp_path / "project"
        root.mkdir()
        p = Project(root, a, envs={"dev": {"include": ["dev"]}})
        toml = root / "seedkit.toml"
        toml.write_text(toml.read_text().replace("faker_seed = 7", f"faker_seed = 7\nbatch_size = {BATCH}"))
        p.write("dev/items.py", items(owner=None))
        assert seedkit.run("dev", config=p.config()).table("items").inserted == ROWS  # one COPY: one xmin
        (xmin,) = {r[0] for r in p.rows("SELECT xmin::text FROM items")}
        p.sql("UPDATE items SET label = 'edited by hand' WHERE code = 'c00042'")
        dump = tmp_path / "seeds.dump"
        subprocess.run([tools["pg_dump"], "-Fc", "-d", a, "-f", str(dump)], check=True, capture_output=True)
        subprocess.run([tools["pg_restore"], "--schema-only", "-d", b, str(dump)], check=True, capture_output=True)
        other = clusters[1]
        other._run("pg_ctl", "-D", str(other.datadir), "-m", "fast", "-w", "stop")
        other._run("pg_resetwal", "-x", xmin, "-D", str(other.datadir))
        other._run("pg_ctl", "-D", str(other.datadir), "-o", f"-p {other.port} -c listen_addresses=127.0.0.1 "
                   f"-k {other.tmp} -c autovacuum=off", "-l", str(other.tmp / "server.log"), "-w", "start")
        subprocess.run([tools["pg_restore"], "--data-only", "--single-transaction", "-d", b, str(dump)], check=True,
                       capture_output=True)
        shapes = []
        for url in urls:
            with db.connect(url) as d:
                shapes.append((d.table_shape(TableName(None, "items")).digest,
                               d.fetchone("SELECT xmin::text FROM items LIMIT 1"),
                               d.fetchone("SELECT oid FROM pg_database WHERE datname = 'seeds'")))
        assert shapes[0][0] == shapes[1][0] and shapes[1][1] == (xmin,), "the clusters did not line up"
        toml.write_text(toml.read_text().replace(a, b))
        report = seedkit.run("dev", config=p.config())
        assert report.table("items").updated == 1  # the edit is found, not skipped
        with psycopg.connect(b) as conn:
            assert conn.execute("SELECT label FROM items WHERE code = 'c00042'").fetchall() == [("item 42",)]
    finally:
        for c in clusters:
            c.stop()


# -- the check that no other session committed since a scan ------------------------------------------------------
def test_other_commits_between_two_snapshots_are_told_apart_from_the_runs_own(pg_url: str) -> None:
    """``others_committed``: this transaction's own writes (and its subtransactions', and a rolled-back
    other session's) are not commits by others; one committed transaction of another session is."""
    with db.connect(pg_url) as d, psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("CREATE TABLE t (n int)")
        with d.transaction():
            now = lambda: d.fetchone(f"SELECT {d.snapshot_sql()}")[0]  # noqa: E731
            s0 = now()
            d.execute("INSERT INTO t VALUES (1)")  # this transaction gets its id
            with d.transaction():  # a subtransaction that writes
                d.execute("INSERT INTO t VALUES (2)")
            other.execute("BEGIN")
            other.execute("INSERT INTO t VALUES (3)")
            other.execute("ROLLBACK")  # aborted: not a commit
            s1 = now()
            assert d.others_committed(s0, s1) is False
            other.execute("INSERT INTO t VALUES (4)")  # committed by another session
            s2 = now()
            assert d.others_committed(s0, s2) is True
            assert d.others_committed(s2, now()) is False
            other.execute("BEGIN")
            other.execute("INSERT INTO t VALUES (5)")  # in progress at s3, committed before s4
            s3 = now()
            other.execute("COMMIT")
            assert d.others_committed(s3, now()) is True
            assert d.others_committed(s3, now(), limit=0) is None  # too many to ask: a scan decides


# -- a partitioned table -----------------------------------------------------------------------------------------
EVENTS = """
from seedkit import fixture


@fixture("ev", key=["code", "region"])
def ev(fake):
    for n in range(1, 1001):
        yield {"code": f"e{n}", "region": ("eu", "us")[n % 2], "n": n + SHIFT}
"""


def test_a_partitioned_table_skips_exactly(new_project, monkeypatch, sent) -> None:
    """Rows route to partitions; a write through the partitioned table cannot return the row versions'
    xmin, so the run after a write compares every row and records again; a trigger on one partition, a
    default on one partition and a truncated partition are seen."""
    steps: list[tuple[str | None, int]] = [  # (SQL behind seedkit's back, the fixture's SHIFT)
        (None, 0), (None, 0), (None, 0), ("UPDATE ev_us SET n = -1 WHERE code = 'e1'", 0), (None, 0), (None, 0),
        ("ALTER TABLE ev_eu ALTER n SET DEFAULT 3", 0), (None, 0), (None, 1), (None, 1), (None, 1),
        ("CREATE FUNCTION neg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.n := -NEW.n; RETURN NEW; END $$; "
         "CREATE TRIGGER neg BEFORE INSERT OR UPDATE ON ev_eu FOR EACH ROW EXECUTE FUNCTION neg()", 1),
        (None, 2), (None, 2), ("DROP TRIGGER neg ON ev_eu", 2), (None, 2), (None, 2), ("TRUNCATE ev_us", 2),
        (None, 2), (None, 2)]
    outcomes, staged = [], []
    for mode in ("fast", "plain"):
        p = new_project(mode)
        p.sql("CREATE TABLE ev (code text NOT NULL, region text NOT NULL, n int, PRIMARY KEY (code, region)) "
              "PARTITION BY LIST (region); CREATE TABLE ev_eu PARTITION OF ev FOR VALUES IN ('eu'); "
              "CREATE TABLE ev_us PARTITION OF ev FOR VALUES IN ('us')")
        seen = []
        for sql, shift in steps:
            p.write("dev/ev.py", EVENTS.replace("SHIFT", str(shift)))
            if sql:
                p.sql(sql)
            sent.clear()
            with plain_path(monkeypatch) if mode == "plain" else nullcontext():
                report = seedkit.run("dev", config=p.config())
            seen.append((report.table("ev").inserted, report.table("ev").updated, report.table("ev").unchanged,
                         p.rows("SELECT * FROM ev ORDER BY code, region")))
            if mode == "fast":
                staged.append(sent.staged())
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    # nothing staged: the reruns after the first load (followed: it selects one xmin), then only the second
    # rerun after any write through the partitioned table, never with the trigger
    assert [i for i, n in enumerate(staged) if n == 0 and i > 0] == [1, 2, 5, 7, 10, 16, 19], staged
