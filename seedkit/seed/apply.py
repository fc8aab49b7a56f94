"""Apply a plan in the run's transaction: stage rows, merge them set-based, touch nothing unchanged.

For every fixture (and every distinct column set within it) rows stream into a temporary staging
table (seed/staging.py), built by the conversion loop (seed/rows.py). References are resolved in SQL by
joining the referenced table on its natural key (seed/merge_sql.py); classification and writes are in
seed/write.py, the second pass for deferred columns in seed/deferred.py, prune in seed/ledger.py, and
skipping unchanged rows of Python fixtures in seed/fingerprints.py and seed/skip_tracker.py.

This module groups rows by the columns they list and runs each group through those parts, in order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import chain, islice
from typing import Any

from ..db.base import Database
from ..db.catalog import Catalog, Table
from ..errors import FixtureError
from .checks import Checks
from .context import Context, Progress, RefShape, Stage
from .deferred import set_deferred
from .fingerprints import Fingerprints
from .ledger import LEDGER, Ledger, ensure_ledger
from .merge_sql import MergeSql
from .model import Ref
from .plan import FixturePlan, Plan, TablePlan, check_value, ref_target
from .report import Report, TableReport
from .rows import NestedRefs, RowBuilder
from .skip_tracker import Record, Restage, Tracker
from .staging import Loader
from .write import Writer


class Applier:
    def __init__(self, d: Database, plan: Plan, catalog: Catalog, report: Report, *, dry_run: bool,
                 diff: bool, progress: Progress | None = None, diff_limit: int = 20, batch_size: int = 10000):
        self.ctx = ctx = Context(d, plan, catalog, dry_run=dry_run, batch_size=batch_size, progress=progress,
                                 diff=diff, diff_limit=diff_limit)
        self.d, self.plan, self.catalog, self.report = d, plan, catalog, report
        self.dry_run, self.batch_size = dry_run, batch_size
        self.sql = MergeSql(ctx)
        self.nested = NestedRefs(ctx)
        self.builder = RowBuilder(ctx, self.nested)
        self.loader = Loader(ctx, self.builder, self.nested)
        self.fingerprints = Fingerprints(ctx)
        self.checks = Checks(ctx, self.sql, self.nested)
        self.writer = Writer(ctx, self.sql, self.fingerprints, self.checks, self.loader)
        self.ledger = Ledger(ctx, self.sql, self.fingerprints)
        self.n_stages = 0
        self.suspects: set = set()  # tables where a streamed key may repeat

    @property
    def trackers(self) -> list[tuple[Tracker, Record | None]]:
        return self.fingerprints.trackers

    # -- entry --------------------------------------------------------------------------------
    def run(self) -> None:
        if self.plan.defer_all or any(tp.deferred for tp in self.plan.tables):
            self.d.defer_constraints()
        for tp in self.plan.tables:
            tr = self.report.table(str(tp.table.name))
            start = time.perf_counter()
            for fp in tp.fixtures:
                for group in self._groups(fp):
                    self._merge(tp, fp, group, tr)
            tr.seconds += time.perf_counter() - start
        for tp in self.plan.tables:
            if tp.deferred:
                tr = self.report.table(str(tp.table.name))
                start = time.perf_counter()
                for stage in self.ctx.stages.get(tp.table.name, []):
                    set_deferred(self.writer, tp, stage, tr)
                tr.seconds += time.perf_counter() - start
        for tp in reversed(self.plan.tables):
            for fp in tp.fixtures:
                if fp.fixture.header.prune:
                    tr = self.report.table(str(tp.table.name))
                    start = time.perf_counter()
                    self.ledger.prune(tp, fp, tr)
                    tr.seconds += time.perf_counter() - start
        if not self.dry_run:
            self._save_digests()

    def _save_digests(self) -> None:
        self.fingerprints.save()

    # -- grouping rows by the columns they list -----------------------------------------------------
    def _groups(self, fp: FixturePlan) -> Iterator[tuple[list[str], dict[str, RefShape | None], Iterator]]:
        fx = fp.fixture
        if fx.rows is not None:
            groups: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
            for n, values in fx.numbered():
                sig = (tuple(values), tuple((c, self._shape_sig(v)) for c, v in values.items()
                                            if isinstance(v, Ref)))
                groups.setdefault(sig, []).append((n, values))
            for (cols, _), rows in groups.items():
                yield list(cols), self._first_refs(fp, rows), iter(rows)
            return
        it = fx.numbered()
        head = list(islice(it, self.batch_size))  # how the first batch references decides the staging columns
        if not head:
            return
        cols = list(head[0][1])
        for c in cols:
            check_value(fp.table, c, None, False, self.catalog, self.plan.natural_keys, fx.row_location(1, c))
        shapes: dict[str, RefShape | None] = {}
        for n, values in head:
            for c, v in values.items():
                if c not in shapes and isinstance(v, Ref):
                    shapes.update(self._first_refs(fp, [(n, {c: v})]))
        # later rows may reference where the first ones had NULL: be ready on every foreign-key column
        for c in cols:
            if c not in shapes and (default := self._default_shape(fp, c)) is not None:
                shapes[c] = default
        yield cols, shapes, chain(head, it)

    @staticmethod
    def _shape_sig(ref: Ref) -> tuple:
        return (ref.table, tuple(k for k, _ in ref.match), ref.column)

    def _first_refs(self, fp: FixturePlan, rows: list[tuple[int, dict[str, Any]]]) -> dict[str, RefShape | None]:
        shapes: dict[str, RefShape | None] = {}
        for n, values in rows[:1]:
            for c, v in values.items():
                if isinstance(v, Ref):
                    target = ref_target(v, fp.table, c, self.catalog, self.plan.natural_keys,
                                        v.location or fp.fixture.row_location(n, c))
                    shapes[c] = RefShape(target, (), "")
        return shapes

    def _default_shape(self, fp: FixturePlan, column: str) -> RefShape | None:
        """How a scalar ``ref(table, key)`` in a single-column foreign key would resolve, if it can."""
        fk = next((f for f in fp.table.foreign_keys if f.columns == (column,)), None)
        if fk is None:
            return None
        target = self.catalog.tables.get(fk.ref_table)
        if target is None:
            return None
        try:
            resolved = ref_target(Ref(str(target.name), ((None, None),)), fp.table, column, self.catalog,
                                  self.plan.natural_keys, fp.fixture.location)
        except FixtureError:
            return None
        return RefShape(resolved, (), "")

    # -- one group: stage, classify, write ----------------------------------------------------------
    def _merge(self, tp: TablePlan, fp: FixturePlan, group: tuple, tr: TableReport) -> None:
        cols, shapes, rows = group
        d, table = self.d, tp.table
        refs: dict[str, RefShape] = {}
        for i, (c, shape) in enumerate(shapes.items()):
            assert shape is not None
            refs[c] = RefShape(shape.target, tuple(f"_r{i}_{j}" for j in range(len(shape.target.match))), f"r{i}")
        fx = fp.fixture
        deferred_here = [c for c in cols if c in tp.deferred]
        empty = self._is_empty(table)
        tracker = self.fingerprints.tracker(tp, fp, cols, refs)
        if tracker is not None and empty:
            tracker.old = None  # nothing to skip in an empty table
            self.fingerprints.start_empty(table.name)
        direct = (empty and not refs and not deferred_here and not self.dry_run and len(tp.fixtures) == 1
                  and not fx.header.prune)
        if tracker is not None:
            tracker.chunked = direct or tracker.old is not None
        if direct and self.writer.direct(tp, fp, cols, rows, tr, tracker):
            return
        if direct:  # the direct load failed on a duplicate key: stage again to say where
            rows = (item for _, _, it in self._groups(fp) for item in it)
            if tracker is not None:
                tracker.reset()
        self.n_stages += 1
        name = f"_sk_stage_{self.n_stages}"
        stage_cols = [("_n", "bigint")] if tracker is None else []  # else the database numbers the rows
        stage_cols += [(c, table.columns[c].type or "TEXT") for c in cols]
        for shape in refs.values():
            stage_cols += [(sc, shape.target.table.columns[m].type or "TEXT")
                           for sc, m in zip(shape.stage_cols, shape.target.match)]
        if deferred_here:
            stage_cols.append(("_state", "text"))
        stage = Stage(d.create_stage(name, stage_cols, ordinal="_n" if tracker is not None else None), fp, cols,
                      refs, state=bool(deferred_here), tracker=tracker)
        self.ctx.stages.setdefault(table.name, []).append(stage)
        if fx.rows is None and not empty:
            # A Python fixture may generate a key twice: one GROUP BY over the staged rows says so
            # (memory stays bounded). Into an empty table the table's own unique index says so.
            self.suspects.add(table.name)
        if len(tp.fixtures) > 1 and any(f.fixture.rows is None for f in tp.fixtures):
            self.suspects.add(table.name)  # a key may repeat across this table's fixtures
        loaded_cols = [c for c, _ in stage_cols if c != "_state"]
        if tracker is None:
            stage.count = self.loader.load(stage.sql, loaded_cols, fp, cols, refs, rows)
        while tracker is not None:
            restage = False
            try:  # a savepoint: restaging also undoes the rows updated while the rest streamed (seed/early.py)
                with self.d.transaction():
                    stage.count = self._load_tracked(tp, stage, loaded_cols, rows)
                    if stage.count == 0 or tracker.old is None:
                        break
                    with self.fingerprints.joins_for(tracker, stage.count):
                        # rows were skipped: the comparison must see the tables the skipping trusted
                        self.writer.classify_and_write(tp, stage, tr, deferred_here, dups=table.name in self.suspects
                                                       and not self._keys_kept(tp, stage, tracker))
            except Restage:  # another session wrote them meanwhile: compare every row
                restage = True  # (the record is then not this run's to keep: rows updated early are not followed)
            if not restage:
                tr.unchanged += tracker.skipped
                return
            self.d.execute(f"TRUNCATE {stage.sql} RESTART IDENTITY")
            tracker.reset()
            rows = (item for _, _, it in self._groups(fp) for item in it)
        if tracker is not None:
            tr.unchanged += tracker.skipped
            if stage.count and tracker.rows > self.batch_size:
                self.fingerprints.scan(tracker.tables)  # before comparing, never after (see its docstring)
        if stage.count == 0:
            return
        with self.fingerprints.joins_for(tracker, stage.count):
            if empty and not self.dry_run and not stage.state:
                if table.name in self.suspects:
                    self.checks.check_duplicates(tp, stage)
                self.writer.insert_all(tp, stage, tr)
            else:  # (checks the staged keys too: see its docstring)
                self.writer.classify_and_write(tp, stage, tr, deferred_here, dups=table.name in self.suspects)

    def _keys_kept(self, tp: TablePlan, stage: Stage, tracker: Tracker) -> bool:
        """Whether the duplicate check over the staged rows cannot find anything: the fixture generated the
        very keys of the last run, batch by batch (every key digest is the recorded one), which that run
        proved distinct; the table has no other staging table, and no key column is resolved by reference
        (an unresolved one reads as NULL)."""
        old = tracker.old
        return (old is not None and tracker.rows == old.rows and bytes(tracker.keys) == old.keys
                and len(self.ctx.stages.get(tp.table.name, ())) == 1
                and not any(k in stage.refs for k in stage.fixture.key))

    def _load_tracked(self, tp: TablePlan, stage: Stage, columns: list[str], rows: Iterator) -> int:
        """Stream a Python fixture into its staging table past the rows that cannot have changed
        (seed/skip_tracker.py). Keys the digests cannot vouch for stage the whole fixture again."""
        tracker, fp = stage.tracker, stage.fixture
        assert tracker is not None
        while True:
            try:
                with self.d.transaction():  # a savepoint: starting over drops a half-sent COPY
                    self.loader.load_formatted(stage.sql, columns, fp, stage.columns, stage.refs, rows, tracker,
                                               self.fingerprints.formatter, self.writer.early_updates(tp, stage))
                    if tracker.fresh_from is not None:
                        with self.fingerprints.joins_for(tracker, tracker.staged):
                            if self.checks.fresh_clash(tp, stage, tracker.fresh_from):
                                raise Restage
                    if tracker.old is not None and tracker.staged == 0:
                        # every row skipped: this is the moment a full comparison would look
                        now = self.d.fetchone(f"SELECT {self.d.snapshot_sql()}")
                        if now is None or not self.fingerprints.unchanged_since_scan(tracker, now[0]):
                            raise Restage
                return tracker.staged
            except Restage:
                # rows updated early, rolled back: the database still counts them as written (keys changed: the
                # record stays exact, as when every update waits for the end)
                self.fingerprints.undone(tp.table.name, tracker.early_rows)
                self.d.execute(f"TRUNCATE {stage.sql} RESTART IDENTITY")
                tracker.reset()
                rows = (item for _, _, it in self._groups(fp) for item in it)

    def _is_empty(self, table: Table) -> bool:
        return self.d.fetchone(f"SELECT 1 FROM {self.d.qualified(table.name)} LIMIT 1") is None


__all__ = ["LEDGER", "Applier", "Progress", "ensure_ledger"]
