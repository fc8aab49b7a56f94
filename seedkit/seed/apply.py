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
from collections.abc import Iterator, Sequence
from itertools import chain, islice, repeat
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

from ..db.base import Database
from ..db.catalog import Catalog, Table, TableName
from ..errors import DatabaseError, FixtureError
from . import overlap
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
from .skip_basics import Restage
from .staging import Loader
from .write import Writer

if TYPE_CHECKING:  # pragma: no cover
    from .skip_tracker import Record, Tracker

LOOK_AHEAD = 4  # groups looked at for one to build ahead (see Applier._look_ahead)


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
        self.overlap = overlap.enabled(d, dry_run or diff)
        self.background = overlap.Background(d)
        self.unsafe: frozenset | None = None  # tables whose writes may write other tables (triggers, rules)
        self.rewritten: frozenset | None = None  # tables where a row may not go in as sent (see _refuses_repeats)
        self.policed: frozenset = frozenset()  # tables whose reads may read other tables (row-level security)
        self.built: dict[int, tuple[tuple, tuple[list, list | None]]] = {}  # by group: its first batch built ahead
        self.failed_ahead: dict[int, tuple[tuple, DatabaseError]] = {}  # by group: its lookups' error ahead of its turn

    @property
    def trackers(self) -> list[tuple[Tracker, Record | None]]:
        return self.fingerprints.trackers

    # -- entry --------------------------------------------------------------------------------
    def run(self) -> None:
        if self.plan.defer_all or any(tp.deferred for tp in self.plan.tables):
            self.d.defer_constraints()
        failure: BaseException | None = None
        try:
            self._merge_all()
        except BaseException as exc:  # noqa: BLE001 - raised below, once the connection is free
            failure = exc
        if failure is not None:
            if self.background.busy:
                if not isinstance(failure, Exception):  # Ctrl-C: the statement running is cancelled
                    self.background.stop()
                else:  # the statement running came first: its error is the run's
                    self.background.drain()
            raise failure
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

    def _merge_all(self) -> None:
        """Every fixture's groups in plan order. With the overlap on (seed/overlap.py), the insert that ends
        a group may run on in the background while the next group's first batch is built: the groups of
        fixtures held in memory are then worked out a fixture ahead (an error doing so leaves it to its turn)."""
        work = [(tp, fp) for tp in self.plan.tables for fp in tp.fixtures]
        ahead: dict[int, list | None] = {}
        bg = self.background
        for i, (tp, fp) in enumerate(work):
            tr = self.report.table(str(tp.table.name))
            start, waited = time.perf_counter(), bg.waited
            if fp.fixture.rows is None:
                bg.drain()  # (a Python fixture's code runs while its rows are read)
            mine = ahead.pop(i) if i in ahead else self._groups_ahead(fp)
            if mine is None:
                for group in self._groups(fp):
                    self._merge(tp, fp, group, tr)
            else:
                for j, group in enumerate(mine):
                    self._merge(tp, fp, group, tr, self._upcoming(work, i, mine[j + 1:], ahead))
            tr.seconds += time.perf_counter() - start - (bg.waited - waited)  # (its inserts: see Background)
        bg.drain()

    def _groups_ahead(self, fp: FixturePlan) -> list | None:
        """A fixture's groups at once, when its rows are in memory and the overlap is on (else None)."""
        if not self.overlap or fp.fixture.rows is None:
            return None
        try:
            return list(self._groups(fp))
        except Exception:  # noqa: BLE001 - worked out again at its turn, which says what is wrong
            return None

    def _upcoming(self, work: list, i: int, rest: list, ahead: dict[int, list | None]) -> Iterator[tuple]:
        """The groups after the current one (of fixture ``i``, ``rest`` its own): (table plan, fixture plan,
        group), the group None for a fixture whose rows are not in memory (or whose groups raised)."""
        tp, fp = work[i]
        for group in rest:
            yield tp, fp, group
        for k in range(i + 1, len(work)):
            if k not in ahead:
                ahead[k] = self._groups_ahead(work[k][1])
            found = ahead[k]
            if found is None:
                yield (*work[k], None)
            else:
                for group in found:
                    yield (*work[k], group)

    def _save_digests(self) -> None:
        self.fingerprints.save()

    # -- grouping rows by the columns they list -----------------------------------------------------
    def _groups(self, fp: FixturePlan) -> Iterator[tuple[list[str], dict[str, RefShape | None], Iterator]]:
        fx = fp.fixture
        if fx.rows is not None:
            one = one_group(fx.rows)
            if one is not None:
                yield list(one[0]), self._first_refs(fp, one[1]), one[1]
                return
            groups: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
            for n, values in fx.numbered():
                sig = (tuple(values), tuple((c, self._shape_sig(v)) for c, v in values.items()
                                            if isinstance(v, Ref)))
                groups.setdefault(sig, []).append((n, values))
            for (cols, _), rows in groups.items():
                yield list(cols), self._first_refs(fp, rows), rows
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
        # fewer rows than a batch: the generator has ended, and its rows are handed on as the list they are
        # (``_merge`` then knows the fixture is small before staging it)
        yield cols, shapes, head if len(head) < self.batch_size else chain(head, it)

    @staticmethod
    def _few(fp: FixturePlan, rows: Any) -> bool:
        """A Python fixture of less than a batch of rows, all generated already (see ``_groups``)."""
        return fp.fixture.rows is None and isinstance(rows, list)

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
    def _merge(self, tp: TablePlan, fp: FixturePlan, group: tuple, tr: TableReport,
               upcoming: Iterator[tuple] | None = None) -> None:
        cols, shapes, rows = group
        few = self._few(fp, rows)
        kept = self.built.pop(id(group), None)  # its first batch, built ahead (see _look_ahead)
        first = kept[1] if kept is not None and kept[0] is group else None
        rows = islice(iter(rows), len(first[0]), None) if first is not None else iter(rows)
        d, table = self.d, tp.table
        refs = self._refs(shapes)
        fx = fp.fixture
        deferred_here = [c for c in cols if c in tp.deferred]
        self.background.drain()
        empty = self._is_empty(table)
        tracker = self.fingerprints.tracker(tp, fp, cols, refs, few=few)
        if tracker is not None and empty:
            tracker.old = None  # nothing to skip in an empty table
            self.fingerprints.start_empty(table.name)
        # a Python fixture may generate a key twice: into an empty table, the insert says so when the table
        # refuses a repeated key at once; else the staged rows are checked first (as into a table with rows)
        unchecked = fx.rows is None and (not empty or not self._refuses_repeats(table, fp.key))
        direct = (empty and not refs and not deferred_here and not self.dry_run and len(tp.fixtures) == 1
                  and not fx.header.prune and not unchecked)
        if tracker is not None:
            tracker.chunked = direct or tracker.old is not None
        if direct and self.writer.direct(tp, fp, cols, rows, tr, tracker):
            return
        if direct:  # the direct load failed on a row it cannot name (a repeated key, …): stage again to say where
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
        if unchecked:
            # A Python fixture may generate a key twice: one GROUP BY over the staged rows says so
            # (memory stays bounded). Into an empty table the table's own unique index says so, when it can.
            self.suspects.add(table.name)
        if len(tp.fixtures) > 1 and any(f.fixture.rows is None for f in tp.fixtures):
            self.suspects.add(table.name)  # a key may repeat across this table's fixtures
        loaded_cols = [c for c, _ in stage_cols if c != "_state"]
        failed = self.failed_ahead.pop(id(group), None)
        if failed is not None and failed[0] is group:  # its lookups failed ahead of their turn (see _look_ahead)
            self.nested.prefetch(fp, refs, group[2][:self.batch_size])  # the plain run's first statement: its error
            raise failed[1]
        if tracker is None:
            stage.count = self.loader.load(stage.sql, loaded_cols, fp, cols, refs, rows, first=first)
        while tracker is not None:
            restage = False
            try:  # a savepoint: restaging also undoes the rows updated while the rest streamed (seed/early.py)
                with self.d.transaction():
                    stage.count = self._load_tracked(tp, stage, loaded_cols, rows,
                                                     inserting=empty and table.name not in self.suspects)
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
        if empty and not self.dry_run and not stage.state and tracker is None and self.overlap:
            def insert() -> None:
                if table.name in self.suspects:
                    self.checks.check_duplicates(tp, stage)
                self.writer.insert_all(tp, stage, tr)

            target = self._look_ahead(table.name, upcoming)
            self.background.submit(insert, tr)
            if target is not None:  # built while the server inserts
                afp, agroup, arefs = target
                self.built[id(agroup)] = (agroup, self.loader.build_ahead(afp, agroup[0], arefs, iter(agroup[2])))
            return
        with self.fingerprints.joins_for(tracker, stage.count):
            if empty and not self.dry_run and not stage.state:
                if table.name in self.suspects:
                    self.checks.check_duplicates(tp, stage)
                self.writer.insert_all(tp, stage, tr)
            else:  # (checks the staged keys too: see its docstring)
                self.writer.classify_and_write(tp, stage, tr, deferred_here, dups=table.name in self.suspects)

    @staticmethod
    def _refs(shapes: dict[str, RefShape | None]) -> dict[str, RefShape]:
        refs: dict[str, RefShape] = {}
        for i, (c, shape) in enumerate(shapes.items()):
            assert shape is not None
            refs[c] = RefShape(shape.target, tuple(f"_r{i}_{j}" for j in range(len(shape.target.match))), f"r{i}")
        return refs

    def _look_ahead(self, writing: TableName, upcoming: Iterator[tuple] | None
                    ) -> tuple[FixturePlan, tuple, dict[str, RefShape]] | None:
        """The next group to build ahead while the insert into ``writing`` runs in the background: the first
        of the next few held in memory that references other rows (so it is staged whatever its table holds),
        with the references nested in its first batch looked up now. Groups passed over on the way to it are
        staged before it, as always; looking up ahead of them and of that insert is a read moved earlier,
        made only where they cannot change what it reads: it does not read their tables nor a table whose
        row-level security may read them, and a write to their tables writes nothing else (no trigger, no
        rule, no inheritance, no foreign key action: one query for the run says which tables have any).
        An error among the lookups (under a savepoint) ends the run at their turn
        (a lost connection at once). None: nothing to build ahead."""
        if upcoming is None:
            return None
        passed = {writing}
        for seen, (tp, fp, group) in enumerate(upcoming):
            if seen >= LOOK_AHEAD:
                return None
            refs = self._refs(group[1]) if group is not None else {}
            if not refs:  # staged (or not) at its turn: passed over
                passed.add(tp.table.name)
                continue
            if id(group) in self.built:
                return None  # (built ahead already)
            chunk = group[2][:self.batch_size]
            if any(v.__class__ is Ref for _, values in chunk for r in values.values() if r.__class__ is Ref
                   for _, v in r.match):
                if self.unsafe is None:
                    self.unsafe = frozenset(self.d.writes_elsewhere([t.table.name for t in self.plan.tables]))
                    self.policed = frozenset(self.d.reads_elsewhere(list(self.catalog.tables)))
                if passed & self.unsafe:
                    return None
                self.nested.avoid = frozenset(passed) | self.policed
                try:
                    with self.d.transaction():
                        self.nested.prefetch(fp, refs, chunk)
                except DatabaseError as exc:
                    if self.d.connection_lost(exc):
                        raise  # (nothing follows on this connection: the plain run ends on this error too)
                    # a statement the server refused is never passed over, even one a second try would pass
                    # (cancelled by another session, a deadlock's victim, a timeout): its group's turn ends the
                    # run with it, where the plain run sends these lookups (see _merge)
                    self.failed_ahead[id(group)] = (group, exc)
                    return None
                finally:
                    self.nested.avoid = frozenset()
            return fp, group, refs
        return None

    def _keys_kept(self, tp: TablePlan, stage: Stage, tracker: Tracker) -> bool:
        """Whether the duplicate check over the staged rows cannot find anything: the fixture generated the
        very keys of the last run, batch by batch (every key digest is the recorded one), which that run
        proved distinct; the table has no other staging table, and no key column is resolved by reference
        (an unresolved one reads as NULL)."""
        old = tracker.old
        return (old is not None and tracker.rows == old.rows and bytes(tracker.keys) == old.keys
                and len(self.ctx.stages.get(tp.table.name, ())) == 1
                and not any(k in stage.refs for k in stage.fixture.key))

    def _load_tracked(self, tp: TablePlan, stage: Stage, columns: list[str], rows: Iterator, *,
                      inserting: bool = False) -> int:
        """Stream a Python fixture into its staging table past the rows that cannot have changed
        (seed/skip_tracker.py). Keys the digests cannot vouch for stage the whole fixture again.
        ``inserting``: the table was empty, and ``Writer.insert_all`` inserts the staged rows: those staged
        so far may go in while the rest stream (``Writer.early_inserts``)."""
        tracker, fp = stage.tracker, stage.fixture
        assert tracker is not None
        while True:
            early = self.writer.early_updates(tp, stage)
            eager = early is None and inserting
            if eager:
                early = self.writer.early_inserts(tp, stage)
            try:
                with self.d.transaction():  # a savepoint: starting over drops a half-sent COPY
                    self.loader.load_formatted(stage.sql, columns, fp, stage.columns, stage.refs, rows, tracker,
                                               self.fingerprints.formatter, early, eager)
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
                stage.inserted_through, stage.inserted_early = 0, (0, 0)
                rows = (item for _, _, it in self._groups(fp) for item in it)

    def _refuses_repeats(self, table: Table, key: Sequence[str]) -> bool:
        """Whether inserting rows into ``table`` fails, within the statement, on a row whose key repeats one
        sent before it: an immediate unique key on exactly the fixture's key columns (a deferrable one
        checks at commit, where nothing says which rows), and no trigger or rule on the way that may change
        or drop a row (``Database.rewrites_inserted_rows``: a repeated key could then go in, or vanish)."""
        unique = table.unique_for(key)
        if unique is None or not unique.immediate or table.instead_rules:
            return False
        if self.rewritten is None:
            self.rewritten = frozenset(self.d.rewrites_inserted_rows([t.table.name for t in self.plan.tables]))
        return table.name not in self.rewritten

    def _is_empty(self, table: Table) -> bool:
        return self.d.fetchone(f"SELECT 1 FROM {self.d.qualified(table.name)} LIMIT 1") is None


_values_of, _match_of, _ref_sig, _first = attrgetter("values"), attrgetter("match"), attrgetter("table", "column"), \
    itemgetter(0)


def one_group(rows: list) -> tuple[tuple[str, ...], list[tuple[int, dict[str, Any]]]] | None:
    """``Applier._groups`` of rows held in memory when they make one group, found a column at a time in C
    rather than a row at a time: every row lists the same columns in the same order, and each column
    holds references (of class ``Ref``) of one shape in every row, or none in any. Then: (the columns,
    [(row number, values), …]) as the row-by-row grouping gives them. None: the rows may make several
    groups (a column mixing references and other values, references of two shapes, a subclass of
    ``Ref``, a value that cannot be hashed …), and the row-by-row grouping decides (and raises what it
    raises)."""
    vals = list(map(_values_of, rows))
    if not vals:
        return None
    cols = tuple(vals[0])
    try:
        if len(set(map(tuple, vals))) != 1:
            return None
        for c in cols:
            column = list(map(itemgetter(c), vals))
            types = set(map(type, column))
            if Ref in types:
                # (the shape ``_shape_sig`` tells: table, column, and the names of the match columns)
                if (len(types) != 1 or len(set(map(_ref_sig, column))) != 1
                        or len(set(map(tuple, map(map, repeat(_first), map(_match_of, column))))) != 1):
                    return None
            elif any(issubclass(t, Ref) for t in types):
                return None
    except TypeError:
        return None
    return cols, list(enumerate(vals, 1))


__all__ = ["LEDGER", "Applier", "Progress", "ensure_ledger", "one_group"]
