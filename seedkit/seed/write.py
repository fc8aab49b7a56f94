"""Classify and write: count the staged rows that are missing or changed, then insert and update only those.

One classification query counts missing and changed rows; an ``INSERT … SELECT`` and an ``UPDATE … FROM``
run only when there is something to write, and the update's ``WHERE`` keeps unchanged rows untouched
(no write, no trigger, no dead tuple). When the target table is empty and nothing needs resolving, rows
go straight in (``direct``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..db.catalog import Table
from ..errors import DatabaseError
from .checks import CHECK_VIOLATIONS, NULL_VIOLATIONS, Checks, name_fixture
from .context import UNIQUE_VIOLATIONS, Context, Stage
from .early import enabled as early_enabled
from .fingerprints import Fingerprints
from .merge_sql import MergeSql
from .plan import FixturePlan, TablePlan
from .report import TableReport
from .skip_basics import Restage
from .staging import Loader

if TYPE_CHECKING:  # pragma: no cover
    from .skip_tracker import Tracker


class Writer:

    def __init__(self, ctx: Context, sql: MergeSql, fingerprints: Fingerprints, checks: Checks, loader: Loader):
        self.ctx = ctx
        self.sql = sql
        self.fingerprints = fingerprints
        self.checks = checks
        self.loader = loader

    def direct(self, tp: TablePlan, fp: FixturePlan, cols: list[str], rows: Iterator, tr: TableReport,
                tracker: Tracker | None) -> bool:
        """Empty target, nothing to resolve: load straight into the table. False on a duplicate key."""
        d, table = self.ctx.d, tp.table
        target = d.qualified(table.name)
        try:
            with d.transaction():  # a savepoint: a duplicate key falls back to the staged path
                if tracker is None:
                    n = self.loader.load(target, cols, fp, cols, {}, rows, with_n=False)
                else:
                    n = self.loader.load_formatted(target, cols, fp, cols, {}, rows, tracker,
                                                   self.fingerprints.formatter)
        except DatabaseError as exc:
            # a repeated key, or a row a NOT NULL or CHECK refused where the load cannot say which (SQLite's
            # inserts): the staged rows say where
            if exc.sqlstate not in UNIQUE_VIOLATIONS and exc.sqlstate not in CHECK_VIOLATIONS + NULL_VIOLATIONS:
                raise self.locate(exc, fp) from None
            return False
        tr.inserted += n
        if n:  # (a partitioned table too: its rows' xmin can be selected, not returned)
            version = d.row_version_hash() if self.fingerprints.following(table.name) else None
            one = d.fetchone(f"SELECT {version}::text FROM {target} LIMIT 1") if version else None
            self.fingerprints.loaded(table.name, n, int(one[0]) if one else None)
        self.sync_sequences(table, cols)
        return True

    def locate(self, exc: DatabaseError, fp: FixturePlan) -> DatabaseError:
        return name_fixture(exc, fp)

    def insert_all(self, tp: TablePlan, stage: Stage, tr: TableReport) -> None:
        """The table is empty: every row is new, so skip classifying and insert what resolves. Rows inserted
        while the rest streamed (``early_inserts``) are left out, and counted."""
        d, q, table = self.ctx.d, self.ctx.d.quote, tp.table
        src = self.sql.src(stage)
        cols = [c for c in stage.columns if c not in tp.deferred]
        through = stage.inserted_through
        rest = self.sql.src(stage, where=f"s._n > {int(through)}") if through else src
        statement = (f"INSERT INTO {d.qualified(table.name)} ({', '.join(q(c) for c in cols)})"
                     f"{d.insert_override(table, cols)} SELECT {', '.join('src.' + q(c) for c in cols)}"
                     f" FROM ({rest}) src WHERE src._unres = 0")
        try:
            with d.transaction():  # a savepoint: a repeated key is then located in the staged rows
                if through:  # (rows of another xmin are in the table now: read one of this statement's by key)
                    n, hashes = self.fingerprints.insert_one_version(statement, table.name, self._one_by_key(
                        tp, stage, rest))
                else:
                    n, hashes = self.fingerprints.write_into_empty(statement, table.name, d.qualified(table.name))
        except DatabaseError as exc:
            if exc.sqlstate in UNIQUE_VIOLATIONS:
                self.checks.check_duplicates(tp, stage)
            self.checks.locate_row_violation(stage, src, exc)
            raise
        n, hashes = n + stage.inserted_early[0], hashes + stage.inserted_early[1]
        if n != stage.count:
            self.checks.raise_unresolved(stage, src)
        self.fingerprints.wrote(table.name, (n, hashes))
        self.sync_sequences(table, cols)
        tr.inserted += stage.count

    def _one_by_key(self, tp: TablePlan, stage: Stage, src: str) -> str:
        """SQL reading back, as text, the row version hash of a row the insert of ``src``'s resolved rows
        wrote: the first one's, by its key (the table's unique key on exactly the fixture's key: the one row
        with that key is that insert's; see ``inserts_by_range``)."""
        d, q, key = self.ctx.d, self.ctx.d.quote, stage.fixture.key
        return (f"SELECT (SELECT {d.row_version_hash('t')}::text FROM {d.qualified(tp.table.name)} t "
                f"WHERE {self.sql.key_join(key)}) FROM ({src}) src WHERE src._unres = 0 AND "
                + " AND ".join(f"src.{q(k)} IS NOT NULL" for k in key) + " LIMIT 1")

    def early_inserts(self, tp: TablePlan, stage: Stage) -> Callable[[int, int], bool] | None:
        """How to insert the rows staged so far while the rest stream (seed/early.py, ``eager``), into a table
        the run found empty (the caller says so; nothing to skip): not a dry run, no deferred column, the
        table's own immediate unique key on exactly the fixture's key and no trigger, rule or row-level
        security on it (``inserts_by_range``: statements split up act as the one would, and a row read back by
        its key is the insert's own). ``insert_all`` then inserts the rows not inserted yet."""
        tracker = stage.tracker
        if (tracker is None or tracker.old is not None or stage.state or self.ctx.dry_run or not early_enabled()
                or not self.inserts_by_range(tp, stage)):
            return None
        d, q, table = self.ctx.d, self.ctx.d.quote, tp.table
        cols = [c for c in stage.columns if c not in tp.deferred]
        target = d.qualified(table.name)
        fingerprints = self.fingerprints

        def insert(lo: int, hi: int) -> bool:
            """Insert the staged rows with ordinals in ``(lo, hi]``; False when that is not exactly what went in
            (undone: the statement at the end meets the same rows and says why, as the single insert would
            have). A lost connection is the run's error at once."""
            src = self.sql.src(stage, where=f"s._n > {int(lo)} AND s._n <= {int(hi)}")
            mark = fingerprints.mark(table.name)
            try:
                # (a row another session holds is left to the statement at the end, which waits for it)
                with d.transaction(), d.no_lock_waits():
                    n, hashes = fingerprints.insert_one_version(
                        f"INSERT INTO {target} ({', '.join(q(c) for c in cols)}){d.insert_override(table, cols)} "
                        f"SELECT {', '.join('src.' + q(c) for c in cols)} FROM ({src}) src WHERE src._unres = 0",
                        table.name, self._one_by_key(tp, stage, src))
                    if n != hi - lo:
                        raise _NotAsJoined
            except _NotAsJoined:
                pass
            except DatabaseError as exc:
                if d.connection_lost(exc):
                    raise
            else:
                stage.inserted_through = hi
                stage.inserted_early = (stage.inserted_early[0] + n, stage.inserted_early[1] + hashes)
                return True
            fingerprints.rolled_back(table.name, mark)
            return False

        return insert

    def classify_and_write(self, tp: TablePlan, stage: Stage, tr: TableReport, deferred_here: list[str],
                           dups: bool = False) -> None:
        """Classify the staged rows (missing, changed, unchanged) in one join, then insert and update.

        ``dups``: the staged rows may repeat a key, and must be checked (``Checks.check_duplicates``) before
        anything is decided from them. Where the table's own immediate unique key on exactly the fixture's
        key answers that (see ``folds_duplicates``), the check rides on the classifying join instead of a
        pass of its own: two staged rows meeting one row of the table repeat a key, and rows missing from
        the table that repeat one are refused by the table's unique index when inserted. Either alarm (or a
        staged key with a NULL in it, or any error on the way to the insert) runs the full check first, so
        the run ends as the separate check would have ended it."""
        d, q, table, fp = self.ctx.d, self.ctx.d.quote, tp.table, stage.fixture
        target = d.qualified(table.name)
        src = self.sql.src(stage)
        compare = self.sql.compare_cols(tp, stage) if fp.fixture.header.on_conflict == "update" else []
        key = fp.key
        k0 = q(key[0])
        differs = self.sql.differs(table, compare)
        version = self.fingerprints.counting(table.name) and self.ctx.d.row_version_hash("t")
        skipped = stage.tracker is not None and stage.tracker.old is not None
        if (skipped and stage.tracker is not None and stage.tracker.fresh_from is None and compare and version
                and not stage.state and not self.ctx.diff and not self.ctx.dry_run):
            if dups:
                self.checks.check_duplicates(tp, stage)
            self.update_in_one(tp, stage, tr, src, compare, version)  # nothing staged can be missing
            return
        # (less than a batch staged: the separate check is one statement, where folding it in reads the
        # table's shape and puts the comparison under a savepoint)
        fold = dups and not skipped and not self.few(stage) and self.folds_duplicates(tp, stage)
        if dups and not fold:
            self.checks.check_duplicates(tp, stage)
        ident = d.row_identity("t")
        ranged = not self.ctx.dry_run and not self.few(stage) and self.inserts_by_range(tp, stage)
        classify = (
            f"SELECT COUNT(*), SUM(CASE WHEN t.{k0} IS NULL THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN t.{k0} IS NOT NULL AND ({differs}) THEN 1 ELSE 0 END), SUM(src._unres), "
            + (f"SUM(CASE WHEN t.{k0} IS NOT NULL AND ({differs}) THEN {version} END)::text " if version else "0 ")
            + (f", {d.snapshot_sql()} " if skipped else "")
            + (f", SUM(CASE WHEN {' OR '.join(f'src.{q(k)} IS NULL' for k in key)} THEN 1 ELSE 0 END), "
               f"COUNT({ident}) - COUNT(DISTINCT {ident}) " if fold else "")
            + (f", MIN(CASE WHEN t.{k0} IS NULL THEN src._n END), MAX(CASE WHEN t.{k0} IS NULL THEN src._n END) "
               if ranged else "")
            + f"FROM ({src}) src LEFT JOIN {target} t ON {self.sql.key_join(key)}")
        if fold:
            try:
                with d.transaction():  # a savepoint: an error comparing values leaves the full check able to run
                    row = d.fetchone(classify)
            except DatabaseError:
                self.checks.check_duplicates(tp, stage)
                raise
        else:
            row = d.fetchone(classify)
        assert row is not None
        # rows updated while the rest streamed (seed/early.py; none of them past the end of the last run) read
        # as unchanged here: they are counted, and move the fingerprint, as the rows this run updates
        early = (stage.tracker.early_rows, stage.tracker.early_hashes) if stage.tracker is not None else (0, 0)
        if skipped and stage.tracker is not None and not self.fingerprints.unchanged_since_scan(
                stage.tracker, row[5], (0, early[1])):
            raise Restage  # the skipped rows are not what the last run left: nothing written yet
        total, missing, changed, unresolved, old_hashes = (int(x or 0) for x in row[:5])
        span = (int(row[-2]), int(row[-1])) if ranged and row[-1] is not None else None
        if ranged:
            row = row[:-2]
        if fold and (int(row[-2] or 0) or int(row[-1] or 0)):
            fold = False  # a NULL in a staged key, or two staged rows meeting one row: the full check decides
            self.checks.check_duplicates(tp, stage)
        if unresolved:
            if fold:
                self.checks.check_duplicates(tp, stage)
            self.checks.raise_unresolved(stage, src)
        if stage.state and missing:  # remember which rows this run inserts (see seed/deferred.py)
            d.execute(f"UPDATE {stage.sql} SET _state = 'new' WHERE _n IN (SELECT src._n FROM ({src}) src "
                      f"LEFT JOIN {target} t ON {self.sql.key_join(key)} WHERE t.{k0} IS NULL)")
        if self.ctx.diff and changed:
            self.collect_diff(table, stage, src, compare, tr)
        insert_cols = [c for c in stage.columns if c not in tp.deferred]
        delta = [0, early[1] - old_hashes]  # rows, hashes of row versions: how this run moves the fingerprint
        if early[0]:
            self.fingerprints.counted(table.name, early[0])
            self.sync_sequences(table, compare)  # an id may have changed too
        done = None
        if missing and span is not None and span[1] - span[0] + 1 == missing:
            done = self.insert_range(tp, stage, insert_cols, span, missing, fold)
        if done is not None:
            delta = [delta[0] + done[0], delta[1] + done[1]]
            self.sync_sequences(table, insert_cols)
        elif missing and not self.ctx.dry_run:
            cols_sql = ", ".join(q(c) for c in insert_cols)
            try:
                with d.transaction():  # a savepoint: a row breaking NOT NULL is then located
                    n, hashes = self.fingerprints.write(
                        f"INSERT INTO {target} ({cols_sql}){d.insert_override(table, insert_cols)} "
                        f"SELECT {', '.join('src.' + q(c) for c in insert_cols)} FROM ({src}) src "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {self.sql.key_join(key)})", table.name)
            except DatabaseError as exc:
                if fold:  # (the table's unique index refusing two missing rows with one key among them)
                    self.checks.check_duplicates(tp, stage)
                self.checks.locate_row_violation(stage, src, exc)
                raise
            delta = [delta[0] + n, delta[1] + hashes]
            self.sync_sequences(table, insert_cols)
        if changed and compare and not self.ctx.dry_run:
            sets = ", ".join(f"{q(c)} = src.{q(c)}" for c in compare)
            try:
                with d.transaction():  # a savepoint: a row breaking NOT NULL or a CHECK is then located
                    _, hashes = self.fingerprints.write(f"UPDATE {target} AS t SET {sets} FROM ({src}) src "
                                                        f"WHERE {self.sql.key_join(key)} AND ({differs})", table.name)
            except DatabaseError as exc:
                self.checks.locate_row_violation(stage, src, exc)
                raise
            delta[1] += hashes
            self.sync_sequences(table, compare)  # an id may have changed too
        if (missing or (changed and compare) or early[0]) and not self.ctx.dry_run:
            self.fingerprints.wrote(table.name, (delta[0], delta[1]) if version else None)
        tr.inserted += missing
        tr.updated += (changed if compare else 0) + early[0]
        tr.unchanged += total - missing - (changed if compare else 0) - early[0]

    def inserts_by_range(self, tp: TablePlan, stage: Stage) -> bool:
        """Whether the rows missing from the table may be inserted by their place among the staged rows
        (``insert_range``) when they lie in one run of it: the table has an immediate, full unique key on
        exactly the fixture's key, so that a row with one of their keys committed by another session since
        the classifying join is refused by the table (the plain insert would leave that staged row out) instead
        of taken in twice; and no trigger, rule or row-level security is on it (what they do may read what an
        insert undone and run again moves: the values a sequence hands out, say). Where the database cannot
        say that (``row_identity`` None: SQLite), the plain insert runs."""
        table = tp.table
        unique = table.unique_for(stage.fixture.key)
        if unique is None or not unique.immediate or table.instead_rules or self.ctx.d.row_identity("t") is None:
            return False
        return self.fingerprints.shape(table.name).unsafe is None

    def insert_range(self, tp: TablePlan, stage: Stage, cols: list[str], span: tuple[int, int],
                     missing: int, fold: bool) -> tuple[int, int] | None:
        """Insert the staged rows numbered ``span`` (``_n`` from .. to, inclusive): the classifying join found
        ``missing`` rows missing from the table, all of them numbered within ``span``, which holds no more
        numbers than that: they are the staged rows of ``span``, and no other. This takes them by their
        numbers, where the plain insert compares every staged row with the table again (``NOT EXISTS``).
        Returns (rows, hashes of their versions), as ``Fingerprints.write``; None when it is not as the join
        said: another row count, or a row with one of their keys that the table refuses while the staged keys
        are distinct (another session's, committed since the join) — undone under a savepoint, and the plain
        insert runs. Any other error is the plain insert's (the same rows, in the same order): it is
        explained as that one's is (``fold``: the duplicate check first)."""
        d, q, table = self.ctx.d, self.ctx.d.quote, tp.table
        target = d.qualified(table.name)
        src = self.sql.src(stage, where=f"s._n >= {int(span[0])} AND s._n <= {int(span[1])}")
        one = self._one_by_key(tp, stage, src)  # (every staged row of the span resolved: the join said so)
        mark = self.fingerprints.mark(table.name)
        try:
            with d.transaction():  # a savepoint: undone when anything is not as the join said
                n, hashes = self.fingerprints.insert_one_version(
                    f"INSERT INTO {target} ({', '.join(q(c) for c in cols)}){d.insert_override(table, cols)} "
                    f"SELECT {', '.join('src.' + q(c) for c in cols)} FROM ({src}) src", table.name, one)
                if n != missing:
                    raise _NotAsJoined
        except _NotAsJoined:
            pass
        except DatabaseError as exc:
            if d.connection_lost(exc):
                raise
            if fold:  # (a key repeated among the missing rows, refused by the unique index: say where)
                self.checks.check_duplicates(tp, stage)
            if exc.sqlstate not in UNIQUE_VIOLATIONS:
                self.checks.locate_row_violation(stage, self.sql.src(stage), exc)
                raise
        else:
            return n, hashes
        self.fingerprints.rolled_back(table.name, mark)
        return None

    def few(self, stage: Stage) -> bool:
        """Less than a batch of rows staged."""
        return stage.count < self.ctx.batch_size

    def folds_duplicates(self, tp: TablePlan, stage: Stage) -> bool:
        """Whether the classifying join can stand in for the duplicate check over the staged rows: the table
        has an immediate, full unique key on exactly the fixture's key columns, which the rows inserted must
        pass at the insert itself (no trigger or rule between: they could change or drop a row on its way
        in; no row-level security: a row hidden from the join reads as missing), the key is not resolved by
        reference, this is the table's only staging table (the check covers every one), and the run writes
        (a dry run inserts nothing for the unique key to refuse)."""
        table, key = tp.table, stage.fixture.key
        unique = table.unique_for(key)
        if (unique is None or not unique.immediate or self.ctx.dry_run or stage.state or table.instead_rules
                or len(self.ctx.stages.get(table.name, ())) != 1 or any(k in stage.refs for k in key)
                or self.ctx.d.row_identity("t") is None):
            return False
        return self.fingerprints.shape(table.name).unsafe is None

    def update_in_one(self, tp: TablePlan, stage: Stage, tr: TableReport, src: str, compare: list[str],
                      version: str) -> None:
        """A rerun that skipped rows staged a few changed ones, none of them missing from the table: update
        the changed ones in one statement, with no classifying pass before it.

        None is missing: every staged row lies in a batch whose keys are the last run's (any other change
        of keys stages the whole fixture again, and rows past the end of the last run go the usual way),
        that run left every one of its keys in the table, and the fingerprints say the tables hold what it
        left (checked at a snapshot taken just after the update: a commit by another session since the scan,
        including one the update waited for, undoes the update, under a savepoint, and stages the fixture
        again). The update's ``WHERE`` leaves unchanged rows untouched (and rows whose reference does not
        resolve, counted in the same statement: the run then stops with the usual error); its ``RETURNING``
        adds up the hashes of the new row versions and of the ones they replaced, which move the fingerprint.
        The replaced versions are read from the table joined once more by key at the statement's snapshot
        (``o``, at the same stored row as ``t``, found from it by address: one index lookup per staged row,
        where a subquery per changed row took a second). The comparison reads ``o`` too: the same version as
        ``t``, unless another session changed the row since the snapshot (the update then leaves it out, and
        the check after the statement sees that session's commit)."""
        d, table = self.ctx.d, tp.table
        tracker = stage.tracker
        assert tracker is not None
        # rows staged up to ``tracker.applied`` were updated while the rest streamed (seed/early.py), under
        # savepoints of this run's own that the check below covers too
        rest = self.sql.src(stage, where=f"s._n > {int(tracker.applied)}") if tracker.applied else src
        try:
            with d.transaction():  # a savepoint: undone when another session wrote the tables meanwhile
                row = d.fetchone(self.one_update(tp, stage, rest, compare, version, src))
                assert row is not None
                moved = int(row[1]) - int(row[2]) + tracker.early_hashes
                # (read after the update, not at its start: a row another session changed while the update waited
                # for it is then seen as a commit since the scan)
                now = d.fetchone(f"SELECT {d.snapshot_sql()}")
                assert now is not None
                if not self.fingerprints.unchanged_since_scan(tracker, now[0], (0, moved)):
                    raise Restage  # the skipped rows are not what the last run left (a scan now sees this update)
                if row[3]:  # a reference that does not resolve: the run stops here (nothing stays written)
                    self.checks.raise_unresolved(stage, src)
                changed = int(row[0]) + tracker.early_rows
                if changed:
                    self.fingerprints.counted(table.name, changed)
        except DatabaseError as exc:  # (a row breaking NOT NULL or a CHECK is located, as by the plain update)
            self.checks.locate_row_violation(stage, src, exc)
            raise
        if changed:
            self.fingerprints.wrote(table.name, (0, moved))
            self.sync_sequences(table, compare)  # an id may have changed too
        tr.updated += changed
        tr.unchanged += stage.count - changed

    def one_update(self, tp: TablePlan, stage: Stage, src: str, compare: list[str], version: str,
                   unresolved_in: str | None) -> str:
        """The statement of ``update_in_one``: (rows changed, hashes of their new versions, of the versions they
        replaced, rows of ``unresolved_in`` with a reference that does not resolve, or 0 without it)."""
        d, q, table, key = self.ctx.d, self.ctx.d.quote, tp.table, stage.fixture.key
        target = d.qualified(table.name)
        sets = ", ".join(f"{q(c)} = src.{q(c)}" for c in compare)
        return (f"WITH u AS (UPDATE {target} AS t SET {sets} FROM ({src}) src JOIN {target} o ON "
                f"{self.sql.key_join(key, 'o', 'src')} WHERE {d.row_identity('t')} = {d.row_identity('o')} "
                f"AND ({self.sql.differs(table, compare, 'o')}){' AND src._unres = 0' if stage.refs else ''} "
                f"RETURNING {version} AS h, {d.row_version_hash('o')} AS old) "
                f"SELECT count(*), coalesce(sum(h), 0)::text, coalesce(sum(old), 0)::text, "
                + (f"(SELECT count(*) FROM ({unresolved_in}) x WHERE x._unres = 1) " if stage.refs and unresolved_in
                   else "0 ") + "FROM u")

    def early_updates(self, tp: TablePlan, stage: Stage) -> Callable[[int, int], bool] | None:
        """How to update the rows staged so far while the rest stream (seed/early.py), when the run would
        update its staged rows with ``update_in_one``: a rerun that skipped rows, updating (not inserting)
        them, with its fingerprints kept, no deferred columns, no diff to collect, not a dry run. Rows past
        the end of the last run, which are classified first, are never handed to it (see ``stream``)."""
        tracker, fp = stage.tracker, stage.fixture
        compare = self.sql.compare_cols(tp, stage) if fp.fixture.header.on_conflict == "update" else []
        if (tracker is None or tracker.old is None or not compare or stage.state or self.ctx.diff
                or self.ctx.dry_run or not early_enabled()):
            return None

        def update(lo: int, hi: int) -> bool:
            """Update the changed rows among those staged with ordinals in ``(lo, hi]``; False when the database
            refused (undone: the statement at the end meets the same rows and says why, as it would have), or
            when the fingerprint is not kept (known once the scan ran, before any COPY). A lost connection is
            the run's error at once (the next COPY would only find the connection closed)."""
            assert tracker is not None
            d = self.ctx.d
            version = self.fingerprints.counting(tp.table.name) and d.row_version_hash("t")
            if tracker.old is None or not version:
                return False
            src = self.sql.src(stage, where=f"s._n > {int(lo)} AND s._n <= {int(hi)}")
            since = self.fingerprints.writes_so_far(tp.table.name)
            try:
                # (a row another session holds is left to the statement at the end, which waits for it: the
                # run waits once, [seeds] lock_timeout, as when every update waits for the end)
                with d.transaction(), self.fingerprints.joins_for(tracker, hi - lo), d.no_lock_waits():
                    row = d.fetchone(self.one_update(tp, stage, src, compare, version, None))
            except DatabaseError as exc:
                if d.connection_lost(exc):  # nothing to leave to the statement at the end: say why now
                    raise
                # (the rows it updated before it failed are rolled back, and still counted as written)
                self.fingerprints.undone(tp.table.name, since=since)
                return False
            assert row is not None
            tracker.early_rows += int(row[0])
            tracker.early_hashes += int(row[1]) - int(row[2])
            tracker.applied = hi
            return True

        return update

    def sync_sequences(self, table: Table, cols: list[str]) -> None:
        """Explicit values went into ``cols``: every sequence feeding one moves past the largest value
        over all the columns it feeds (a sequence may be shared by several tables), never backwards."""
        if self.ctx.dry_run:
            return
        feeds = self.ctx.catalog.sequence_feeds
        for seq in dict.fromkeys(table.columns[c].sequence for c in cols if table.columns[c].autoincrement):
            if seq is not None:
                self.ctx.d.sync_sequence(seq, feeds.get(seq) or ((table.name, next(
                    c for c in cols if table.columns[c].sequence == seq)),))

    def collect_diff(self, table: Table, stage: Stage, src: str, compare: list[str], tr: TableReport) -> None:
        d, q = self.ctx.d, self.ctx.d.quote
        key = stage.fixture.key
        sel = [f"src.{q(k)}" for k in key] + [x for c in compare for x in (f"t.{q(c)}", f"src.{q(c)}")]
        rows = d.fetchall(f"SELECT {', '.join(sel)} FROM ({src}) src JOIN {d.qualified(table.name)} t ON "
                          f"{self.sql.key_join(key)} WHERE ({self.sql.differs(table, compare)}) ORDER BY src._n "
                          f"LIMIT {self.ctx.diff_limit - len(tr.diffs)}")
        for r in rows:
            k = dict(zip(key, r[:len(key)]))
            rest = r[len(key):]
            for i, c in enumerate(compare):
                old, new = rest[2 * i], rest[2 * i + 1]
                if old != new:
                    tr.diffs.append({"key": {a: _plain(b) for a, b in k.items()}, "column": c,
                                     "old": _plain(old), "new": _plain(new)})


class _NotAsJoined(Exception):
    """The rows a range of staged rows inserted are not the rows the classifying join found missing."""


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


__all__ = ["Writer"]
