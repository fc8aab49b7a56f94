"""Apply a plan in the run's transaction: stage rows, merge them set-based, touch nothing unchanged.

For every fixture (and every distinct column set within it) rows stream into a temporary staging
table (COPY on PostgreSQL, batched ``executemany`` on SQLite). References are resolved in SQL by
joining the referenced table on its natural key. One classification query counts missing and changed
rows; an ``INSERT … SELECT`` and an ``UPDATE … FROM`` run only when there is something to write, and
the update's ``WHERE`` keeps unchanged rows untouched (no write, no trigger, no dead tuple).
When the target table is empty and nothing needs resolving, rows go straight in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import attrgetter, itemgetter
from pathlib import PurePath, PurePosixPath
from typing import Any

from ..db.base import Database
from ..db.catalog import Catalog, Table, TableName
from ..errors import DatabaseError, FixtureError, Location, SeedkitError
from . import digests
from .convert import ConversionError, convert, fast_converter, int_bound
from .digests import CHUNK, DIGESTS, Record, Restage, Tracker, config_digest, load_records, save_record
from .fixtures import Fixture, Ref
from .plan import FixturePlan, Plan, RefTarget, TablePlan, check_value, closest_keys_hint, ref_target
from .report import Report, TableReport

LEDGER = "seedkit_rows"
ROW_VIOLATIONS = ("23502",)  # NOT NULL: a row of the fixture left the column empty, and COPY says which
UNIQUE_VIOLATIONS = ("23505", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")
Progress = Callable[[str, int, "int | None"], None]


@dataclass
class RefShape:
    target: RefTarget
    stage_cols: tuple[str, ...]  # staging columns holding the match values
    alias: str


@dataclass
class Stage:
    sql: str  # quoted staging table name
    fixture: FixturePlan
    columns: list[str]  # data columns, in order
    refs: dict[str, RefShape] = field(default_factory=dict)  # by data column
    count: int = 0
    state: bool = False  # has a _state column (tables with deferred columns)
    tracker: Tracker | None = None  # rows were streamed past unchanged ones; _n is the load order

    def row_number(self, n: int) -> int:
        """The fixture row number of the staged row whose ``_n`` is ``n``."""
        return self.tracker.row_number(n) if self.tracker is not None else n


class Applier:
    def __init__(self, d: Database, plan: Plan, catalog: Catalog, report: Report, *, dry_run: bool,
                 diff: bool, progress: Progress | None = None, diff_limit: int = 20, batch_size: int = 10000):
        self.d = d
        self.plan = plan
        self.catalog = catalog
        self.report = report
        self.dry_run = dry_run
        self.diff = diff
        self.diff_limit = diff_limit
        self.batch_size = batch_size
        self.progress = progress
        self.stages: dict[TableName, list[Stage]] = {}
        self._n_stages = 0
        self._nested_cache: dict[tuple, Any] = {}
        self._copying = False  # a COPY is open: no other statement may run on the connection
        self._suspects: set[TableName] = set()  # tables where a streamed key may repeat
        self._formatter: Any = False  # the database's row formatter (False: not asked yet)
        self._records: dict[tuple[str, str], Record] | None = None
        self._settings: list[Any] | None = None
        # fingerprints of tables as this run moves them (None: written in a way the run cannot follow),
        # the snapshot each was scanned in, and (relids, the transaction's writes then, writes followed)
        self._fingerprints: dict[TableName, list[Any] | None] = {}
        self._since: dict[TableName, str] = {}
        self._writes: dict[TableName, list[Any]] = {}
        self._identity: list[Any] | None = None
        self._shapes: dict[TableName, Any] = {}
        self.trackers: list[tuple[Tracker, Record | None]] = []

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
                for stage in self.stages.get(tp.table.name, []):
                    self._set_deferred(tp, stage, tr)
                tr.seconds += time.perf_counter() - start
        for tp in reversed(self.plan.tables):
            for fp in tp.fixtures:
                if fp.fixture.header.prune:
                    tr = self.report.table(str(tp.table.name))
                    start = time.perf_counter()
                    self._prune(tp, fp, tr)
                    tr.seconds += time.perf_counter() - start
        if not self.dry_run:
            self._save_digests()

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
        tracker = self._tracker(tp, fp, cols, refs)
        if tracker is not None and empty:
            tracker.old = None  # nothing to skip in an empty table
            if self._fingerprints.get(table.name) is None:
                self._fingerprints[table.name] = [0, "0"]  # followed from here as rows go in
                self._follow_writes(table.name)
        direct = (empty and not refs and not deferred_here and not self.dry_run and len(tp.fixtures) == 1
                  and not fx.header.prune)
        if tracker is not None:
            tracker.chunked = direct or tracker.old is not None
        if direct and self._direct(tp, fp, cols, rows, tr, tracker):
            return
        if direct:  # the direct load failed on a duplicate key: stage again to say where
            rows = (item for _, _, it in self._groups(fp) for item in it)
            if tracker is not None:
                tracker.reset()
        self._n_stages += 1
        name = f"_sk_stage_{self._n_stages}"
        stage_cols = [("_n", "bigint")] if tracker is None else []  # else the database numbers the rows
        stage_cols += [(c, table.columns[c].type or "TEXT") for c in cols]
        for shape in refs.values():
            stage_cols += [(sc, shape.target.table.columns[m].type or "TEXT")
                           for sc, m in zip(shape.stage_cols, shape.target.match)]
        if deferred_here:
            stage_cols.append(("_state", "text"))
        stage = Stage(d.create_stage(name, stage_cols, ordinal="_n" if tracker is not None else None), fp, cols,
                      refs, state=bool(deferred_here), tracker=tracker)
        self.stages.setdefault(table.name, []).append(stage)
        if fx.rows is None and not empty:
            # A Python fixture may generate a key twice: one GROUP BY over the staged rows says so
            # (memory stays bounded). Into an empty table the table's own unique index says so.
            self._suspects.add(table.name)
        if len(tp.fixtures) > 1 and any(f.fixture.rows is None for f in tp.fixtures):
            self._suspects.add(table.name)  # a key may repeat across this table's fixtures
        loaded_cols = [c for c, _ in stage_cols if c != "_state"]
        if tracker is None:
            stage.count = self._load(stage.sql, loaded_cols, fp, cols, refs, rows)
        while tracker is not None:
            stage.count = self._load_tracked(tp, stage, loaded_cols, rows)
            if stage.count == 0 or tracker.old is None:
                break
            restage = False
            with self._joins_for(tracker, stage.count):  # (left normally: it restores the join settings)
                try:  # rows were skipped: the comparison must see the tables the skipping trusted
                    if table.name in self._suspects:
                        self._check_duplicates(tp, stage)
                    self._classify_and_write(tp, stage, tr, deferred_here)
                except Restage:  # another session wrote them meanwhile: compare every row
                    restage = True
            if not restage:
                tr.unchanged += tracker.skipped
                return
            self.d.execute(f"TRUNCATE {stage.sql} RESTART IDENTITY")
            tracker.reset()
            rows = (item for _, _, it in self._groups(fp) for item in it)
        if tracker is not None:
            tr.unchanged += tracker.skipped
            if stage.count and tracker.rows > self.batch_size:
                self._scan(tracker.tables)  # to record, before comparing: never after (see _scan)
        if stage.count == 0:
            return
        with self._joins_for(tracker, stage.count):
            if table.name in self._suspects:
                self._check_duplicates(tp, stage)
            if empty and not self.dry_run and not stage.state:
                self._insert_all(tp, stage, tr)
            else:
                self._classify_and_write(tp, stage, tr, deferred_here)

    def _joins_for(self, tracker: Tracker | None, staged: int) -> AbstractContextManager[None]:
        """A few changed rows of a large table: join them by index lookups, not by scanning the table."""
        if tracker is None or tracker.old is None:
            return nullcontext()
        rows = tracker.old.state.get(str(tracker.table), [0])[0]
        return self.d.few_rows_join() if staged * 10 < rows else nullcontext()

    def _batch_maker(self, fp: FixturePlan, cols: list[str], refs: dict[str, RefShape],
                     with_n: bool) -> Callable[[list[tuple[int, dict[str, Any]]]], list]:
        """A function [(n, values), …] → driver-ready rows [n, values…, ref match values…].

        This is the hot loop of a load. Columns the driver can take as they are (``passthrough``)
        are picked with one C-level ``itemgetter``; the rest are converted in Python. A value the
        driver or the database then rejects is located afterwards (see ``_load``).
        """
        fx, table, d = fp.fixture, fp.table, self.d
        width = len(cols)
        getter = itemgetter(*cols) if width > 1 else (lambda v, _c=cols[0]: (v[_c],))
        off = 1 if with_n else 0
        converted = [(i + off, fast_converter(table.columns[c], text=fx.text_values, adapt=d.adapt_value,
                                              skip=(Ref,)))
                     for i, c in enumerate(cols) if c in refs or not d.passthrough(table.columns[c])]
        ref_specs = [(c, self._ref_maker(fp, c, shape)) for c, shape in refs.items()]
        explain = self._explain_row
        streamed = fx.rows is None
        kget = itemgetter(*fp.key)
        values_of = itemgetter(1)

        def make(n: int, values: dict[str, Any]) -> list:
            try:
                row = [n, *getter(values)] if with_n else [*getter(values)]
                for i, fn in converted:
                    row[i] = fn(row[i])
            except (ConversionError, KeyError):
                explain(fp, cols, n, values)
                raise
            if len(values) != width:
                explain(fp, cols, n, values)
            for c, ref_values in ref_specs:
                row += ref_values(n, values[c])
            return row

        simple = not converted and not ref_specs

        single_key = len(fp.key) == 1

        def make_batch(chunk: list[tuple[int, dict[str, Any]]]) -> list:
            if streamed:  # file fixtures were checked while planning
                try:
                    keys = list(map(kget, map(values_of, chunk)))
                except KeyError:
                    keys = [None]
                if None in keys if single_key else any(None in k for k in keys):
                    self._null_key(fp, chunk)
            if simple and set(map(len, map(values_of, chunk))) <= {width}:
                try:
                    if with_n:
                        return [[n, *getter(v)] for n, v in chunk]
                    return list(map(getter, map(values_of, chunk)))  # tuples, picked in C
                except KeyError:
                    pass
            if by_column is not None and (rows := by_column(chunk)) is not None:
                return rows
            return [make(n, v) for n, v in chunk]

        by_column = self._ref_columns_maker(fp, cols, refs, with_n) if not simple else None
        return make_batch

    def _ref_columns_maker(self, fp: FixturePlan, cols: list[str], refs: dict[str, RefShape],
                           with_n: bool) -> Callable[[list[tuple[int, dict[str, Any]]]], list | None] | None:
        """The usual Python-fixture batch with references, built a column at a time in C: every other
        column passes through, every reference is ``ref(table, value)`` to a text or integer key.
        None (for the maker, or for one batch) sends the rows through the row-by-row path, which
        converts, checks and explains."""
        d, table = self.d, fp.table
        if any(c not in refs and not d.passthrough(table.columns[c]) for c in cols):
            return None
        kinds = {}
        for c, shape in refs.items():
            target = shape.target
            if len(target.match) != 1:
                return None
            match_column = target.table.columns[target.match[0]]
            if match_column.kind == "text":
                kinds[c] = (str, None)
            elif match_column.kind == "int":
                kinds[c] = (int, int_bound(match_column))
            else:
                return None
        width = len(cols)
        pick = {c: itemgetter(c) for c in cols}
        values_of, match_of, first, value_of = itemgetter(1), attrgetter("match"), itemgetter(0), itemgetter(1)
        scalar_of, table_of = attrgetter("scalar"), attrgetter("table")
        spelled: dict[str, set[str]] = {c: set() for c in refs}  # table spellings already checked

        def by_column(chunk: list[tuple[int, dict[str, Any]]]) -> list | None:
            vals = list(map(values_of, chunk))
            if set(map(len, vals)) != {width}:
                return None
            try:
                columns = [list(map(first, chunk))] if with_n else []
                columns += [list(map(pick[c], vals)) if c not in refs else [None] * len(vals) for c in cols]
                for c in refs:
                    those = list(map(pick[c], vals))
                    if set(map(type, those)) != {Ref} or False in set(map(scalar_of, those)):
                        return None
                    tables = set(map(table_of, those)) - spelled[c]
                    for t in tables:  # each spelling once: does it name the referenced table?
                        if self.catalog.get(t).name != refs[c].target.table.name:
                            return None
                        spelled[c].add(t)
                    keys = list(map(value_of, map(first, map(match_of, those))))
                    want, bound = kinds[c]
                    if set(map(type, keys)) != {want} or (bound and not -bound <= min(keys) <= max(keys) < bound):
                        return None
                    columns.append(keys)
            except (KeyError, SeedkitError):  # the row-by-row path says what and where
                return None
            return list(zip(*columns))

        return by_column

    def _locate_duplicate(self, fp: FixturePlan) -> None:
        """A Python fixture generated a key twice: generate it again (it is deterministic) to say where."""
        fx, table = fp.fixture, fp.table
        columns = [table.columns[k] for k in fp.key]
        first: dict[tuple, int] = {}
        for n, values in fx.numbered():
            try:
                key = tuple(convert(values.get(k), c, text=fx.text_values) if not isinstance(values.get(k), Ref)
                            else values.get(k) for k, c in zip(fp.key, columns))
            except ConversionError:
                continue
            if key in first:
                shown = ", ".join(f"{k}={v!r}" for k, v in zip(fp.key, key))
                raise FixtureError(f"the same key ({shown}) is generated twice for {table.name}; first at "
                                   f"{fx.row_location(first[key])}", location=fx.row_location(n),
                                   hint="build keys from the row number (e.g. f'user{n}@example.com'), not from Faker")
            first[key] = n

    def _null_key(self, fp: FixturePlan, chunk: list[tuple[int, dict[str, Any]]]) -> None:
        for n, values in chunk:
            for k in fp.key:
                if values.get(k) is None:
                    raise FixtureError(f"key column {k!r} is missing or null", location=fp.fixture.row_location(n, k),
                                       hint=f"every row needs its key: {', '.join(fp.key)}")

    def _explain_row(self, fp: FixturePlan, cols: list[str], n: int, values: dict[str, Any], *,
                     final: bool = True) -> None:
        """Raise the located error for a row the fast loop could not convert."""
        fx = fp.fixture
        if set(values) != set(cols):
            raise FixtureError(f"row has columns {sorted(values)}, but the first row has {sorted(cols)}",
                               location=fx.row_location(n), hint="every row of a Python fixture lists the same columns")
        for c in cols:
            check_value(fp.table, c, values[c], fx.text_values, self.catalog, self.plan.natural_keys,
                        fx.row_location(n, c))
        refs = [c for c in cols if isinstance(values[c], Ref)]
        if refs:
            raise FixtureError(f"column {refs[0]!r} holds a reference unlike the first row's",
                               location=fx.row_location(n, refs[0]),
                               hint="rows of a Python fixture reference the same way in each column "
                                    "(the same table and key columns)")
        if final:
            raise FixtureError("row could not be converted", location=fx.row_location(n))  # pragma: no cover

    def _ref_maker(self, fp: FixturePlan, c: str, shape: RefShape) -> Callable[[int, Any], list]:
        """A function (n, value) → the staging values of one reference column (the match values)."""
        fx, d = fp.fixture, self.d
        target = shape.target
        mcols = [target.table.columns[m] for m in target.match]
        convs = [fast_converter(mc, text=True, adapt=d.adapt_value) for mc in mcols]
        nones = [None] * len(mcols)
        known: set[str] = set()  # table spellings already checked to name the target table

        def values(n: int, v: Any) -> list:
            if v.__class__ is not Ref:
                return nones
            loc = None
            if v.table not in known:
                loc = fx.row_location(n, c)
                if self.catalog.get(v.table, location=loc).name != target.table.name:
                    raise FixtureError(f"column {c!r} mixes references to different tables", location=loc)
                known.add(v.table)
            matched = [v.match[0][1]] if v.scalar else [dict(v.match).get(m) for m in target.match]
            try:
                return [conv(mv) if mv.__class__ is not Ref else
                        conv(self._nested(mv, target.table, m, loc or fx.row_location(n, c)))
                        for conv, mv, m in zip(convs, matched, target.match)]
            except ConversionError as exc:
                raise FixtureError(f"{v}: {exc}", location=fx.row_location(n, c)) from None

        return values

    def _load(self, table_sql: str, columns: list[str], fp: FixturePlan, cols: list[str],
              refs: dict[str, RefShape], rows: Iterator[tuple[int, dict[str, Any]]], *, with_n: bool = True) -> int:
        """Load in batches: memory stays bounded by the batch size, lookups made while building rows
        never run in the middle of a COPY, and a batch the database rejects is explained row by row."""
        make_batch = self._batch_maker(fp, cols, refs, with_n)
        fx = fp.fixture
        total = fx.count if fx.rows is None else len(fx.rows)
        label = str(fp.table.name)
        if fx.rows is None:
            return self._load_stream(table_sql, columns, fp, cols, make_batch, rows, label, total)
        n = 0
        while chunk := list(islice(rows, self.batch_size)):
            self._prefetch_nested(fp, refs, chunk)
            try:
                n += self.d.load_rows(table_sql, columns, make_batch(chunk))
            except DatabaseError as exc:
                self._explain_batch(fp, cols, chunk, exc)
                raise
            if self.progress is not None:
                self.progress(label, n, total)
        return n

    def _load_stream(self, table_sql: str, columns: list[str], fp: FixturePlan, cols: list[str],
                     make_batch: Callable, rows: Iterator, label: str, total: int | None) -> int:
        """A Python fixture streams through one COPY, so generating rows and storing them overlap;
        rows are built a batch at a time (memory stays bounded by the batch size)."""
        every = self.batch_size
        progress = self.progress
        current: list[tuple[int, dict[str, Any]]] = []

        def batches() -> Iterator[list[list]]:
            nonlocal current
            done = 0
            while chunk := list(islice(rows, every)):
                current = chunk
                yield make_batch(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(label, done, total)

        self._copying = True
        try:
            n = self.d.load_rows(table_sql, columns, chain.from_iterable(batches()))
        except DatabaseError as exc:
            self._copying = False
            self._stream_failed(fp, cols, exc, current, lambda line: line)
            raise
        finally:
            self._copying = False
        return n

    def _stream_failed(self, fp: FixturePlan, cols: list[str], exc: DatabaseError,
                       current: list[tuple[int, dict[str, Any]]], row_number: Callable[[int], int]) -> None:
        """Say which row of a streamed fixture the database (or the driver) rejected."""
        if exc.sqlstate in UNIQUE_VIOLATIONS and not fp.fixture.text_values:
            # (a CSV file may be of any size: its rows are staged again and a GROUP BY says where)
            self._locate_duplicate(fp)
        if exc.sqlstate is None:  # the driver could not send a value: it is in the batch being sent
            for i, values in current:
                self._explain_row(fp, cols, i, values, final=False)
        if exc.sqlstate is None or exc.sqlstate.startswith("22") or exc.sqlstate in ROW_VIOLATIONS:
            line = getattr(exc, "copy_line", None)  # the COPY's line: row_number says which row it was
            where = fp.fixture.row_location(row_number(line) if line else (current[0][0] if current else 0),
                                            getattr(exc, "copy_column", None))
            raise FixtureError(exc.message, location=where, hint=exc.hint) from None

    def _load_tracked(self, tp: TablePlan, stage: Stage, columns: list[str], rows: Iterator) -> int:
        """Stream a Python fixture into its staging table past the rows that cannot have changed
        (seed/digests.py). Keys the digests cannot vouch for stage the whole fixture again."""
        tracker, fp = stage.tracker, stage.fixture
        assert tracker is not None
        while True:
            try:
                with self.d.transaction():  # a savepoint: starting over drops a half-sent COPY
                    self._load_formatted(stage.sql, columns, fp, stage.columns, stage.refs, rows, tracker)
                    if tracker.fresh_from is not None:
                        with self._joins_for(tracker, tracker.staged):
                            if self._fresh_clash(tp, stage, tracker.fresh_from):
                                raise Restage
                    if tracker.old is not None and tracker.staged == 0:
                        # every row skipped: this is the moment a full comparison would look
                        now = self.d.fetchone("SELECT txid_current_snapshot()::text")
                        if now is None or not self._unchanged_since_scan(tracker, now[0]):
                            raise Restage
                return tracker.staged
            except Restage:
                self.d.execute(f"TRUNCATE {stage.sql} RESTART IDENTITY")
                tracker.reset()
                rows = (item for _, _, it in self._groups(fp) for item in it)

    def _load_formatted(self, table_sql: str, columns: list[str], fp: FixturePlan, cols: list[str],
                        refs: dict[str, RefShape], rows: Iterator, tracker: Tracker) -> int:
        """Rows built and formatted a batch at a time; the tracker says what of each batch to send."""
        make_batch = self._batch_maker(fp, cols, refs, with_n=False)
        fmt = self._formatter
        every, progress = self.batch_size, self.progress
        label, total = str(fp.table.name), fp.fixture.count
        current: list[tuple[int, dict[str, Any]]] = []

        def buffers() -> Iterator[bytes | bytearray]:
            nonlocal current
            done = 0
            while chunk := list(islice(rows, every)):
                current = chunk
                built = make_batch(chunk)
                data = tracker.feed(built, fmt(built))
                if data:
                    yield data
                done += len(chunk)
                if progress is not None:
                    progress(label, done, total)

        self._copying = True
        try:
            self.d.load_buffers(table_sql, columns, buffers())
        except DatabaseError as exc:
            self._copying = False
            self._stream_failed(fp, cols, exc, current, tracker.row_number)
            raise
        finally:
            self._copying = False
        return tracker.staged

    def _fresh_clash(self, tp: TablePlan, stage: Stage, fresh_from: int) -> bool:
        """Rows past the end of the last run whose key the table already holds (perhaps from a row
        that was not staged): only the full duplicate check can tell."""
        d = self.d
        row = d.fetchone(f"SELECT 1 FROM ({self._src(stage)}) src JOIN {d.qualified(tp.table.name)} t ON "
                         f"{self._key_join(stage.fixture.key)} WHERE src._n >= {int(fresh_from)} LIMIT 1")
        return row is not None

    # -- digests of Python fixtures (seed/digests.py) ------------------------------------------------
    def _tracker(self, tp: TablePlan, fp: FixturePlan, cols: list[str], refs: dict[str, RefShape]) -> Tracker | None:
        """A tracker for a streamed fixture whose unchanged rows can be skipped, with the last run's
        record when it still describes the database; None where skipping is not sound or not possible."""
        fx, table = fp.fixture, tp.table
        if (fx.rows is not None or fx.text_values or fx.header.prune or len(tp.fixtures) != 1 or tp.deferred
                or self.dry_run or self.batch_size % CHUNK or not all(k in cols for k in fp.key)):
            return None  # a dry run (and --check) compares every row: it is the authoritative drift check
        if self._formatter is False:
            self._formatter = self.d.row_formatter()
        if self._formatter is None:
            return None
        order = {t.table.name: i for i, t in enumerate(self.plan.tables)}
        here = order[table.name]
        if any(order.get(s.target.table.name, -1) >= here for s in refs.values()):
            return None  # resolved against a table written later in the run (or this one)
        at = len(cols)
        ref_at: dict[str, list[int]] = {}
        for c, shape in refs.items():
            ref_at[c] = list(range(at, at + len(shape.stage_cols)))
            at += len(shape.stage_cols)
        positions = [p for k in fp.key for p in (cols.index(k), *ref_at.get(k, ()))]
        tables = [table.name, *sorted({s.target.table.name for s in refs.values()}, key=str)]
        shapes = [self._shape(t) for t in tables]
        if shapes[0].unsafe:
            # what a trigger or rule writes is not what was sent: every row is compared, every run
            return None
        if self._identity is None:
            self._identity = digests.database_identity(self.d)
        config = config_digest([
            str(table.name), cols, list(fp.key), fx.header.on_conflict, sorted(fp.update_columns_excluded),
            [(c, str(s.target.table.name), s.target.match, s.target.target) for c, s in refs.items()],
            [(c.name, c.type, c.kind, c.nullable, c.identity, c.generated) for c in table.columns.values()],
            self.batch_size, self._session(), self._identity, [sh.digest for sh in shapes]])
        tracker = Tracker(fx.name, table.name, config, tables, positions, self.batch_size)
        old = self._record(fx.name, str(table.name))
        if old is not None and old.config == config and old.batch_size == self.batch_size:
            self._scan(tables)
            if all(old.state.get(str(t)) == self._fingerprints.get(t) for t in tables):
                tracker.old = old
        self.trackers.append((tracker, old))
        return tracker

    def _shape(self, table: TableName) -> Any:
        if table not in self._shapes:
            self._shapes[table] = digests.table_shape(self.d, self.d.qualified(table))
        return self._shapes[table]

    def _scan(self, tables: list[TableName]) -> None:
        """Fingerprint the tables not yet followed, in one statement (one snapshot), before this run
        compares or writes them; from then on the run's own writes move them (``_wrote``)."""
        todo = [t for t in tables if t not in self._fingerprints]
        if not todo:
            return
        d = self.d
        row = d.fetchone("SELECT txid_current_snapshot()::text, "
                         + ", ".join(digests.fingerprint_sql(d.qualified(t)) for t in todo))
        assert row is not None
        for t, text in zip(todo, row[1:]):
            self._fingerprints[t] = digests.parse_fingerprint(text)
            self._since[t] = row[0]
            self._follow_writes(t)

    def _follow_writes(self, table: TableName) -> None:
        """Note how many rows this transaction has written to ``table`` so far (the database counts them,
        cascades and triggers included): at the end, every write since must be one the run followed."""
        relids = self._shape(table).relids
        got = self.d.fetchone(digests.WRITES_SQL, [relids])
        self._writes[table] = [relids, int(got[0]) if got else 0, 0]

    def _followed_to_the_end(self, table: TableName) -> list[Any] | None:
        """The fingerprint this run leaves ``table`` with, or None when something wrote it that the run
        did not follow (it is never scanned again: that would take in other sessions' commits)."""
        known = self._fingerprints.get(table)
        if known is None or table not in self._writes:
            return None
        relids, before, followed = self._writes[table]
        got = self.d.fetchone(digests.WRITES_SQL, [relids])
        return known if got is not None and int(got[0]) - before == followed else None

    def _unchanged_since_scan(self, tracker: Tracker, now: str) -> bool:
        """Do the tables read now (snapshot ``now``) hold what they did at their scan, plus this run's own
        writes? Cheap when no other transaction committed meanwhile; otherwise a scan says."""
        tables = tracker.tables
        if any(self._fingerprints.get(t) is None or t not in self._since for t in tables):
            return False
        for since in {self._since[t] for t in tables}:
            if digests.others_committed(self.d, since, now) is not False:
                d = self.d
                row = d.fetchone("SELECT " + ", ".join(digests.fingerprint_sql(d.qualified(t)) for t in tables))
                assert row is not None
                return all(digests.parse_fingerprint(text) == self._fingerprints[t] for t, text in zip(tables, row))
        return True

    def _session(self) -> list[Any]:
        """Settings that change how the server reads the same text (a timestamp without offset, …)."""
        if self._settings is None:
            self._settings = self.d.text_settings()
        return self._settings

    def _record(self, fixture: str, table: str) -> Record | None:
        if self._records is None:
            self._records = load_records(self.d) if any(t.name == DIGESTS for t in self.catalog.tables) else {}
        return self._records.get((fixture, table))

    def _wrote(self, table: TableName, delta: tuple[int, int] | None = None) -> None:
        """This run wrote ``table``: move its fingerprint by ``delta`` (rows, hash sum); without one, the
        fingerprint is lost for this run (a table not scanned yet is scanned after the write)."""
        if table not in self._fingerprints:
            return
        known = self._fingerprints[table]
        if known is None or delta is None:
            self._fingerprints[table] = None
        else:
            self._fingerprints[table] = [known[0] + delta[0], str(int(known[1]) + delta[1])]

    def _counting(self, table: TableName) -> str | None:
        """The row-version hash to add up while writing ``table``, when its fingerprint is being kept
        (not through a partitioned table: PostgreSQL cannot return a system column from it, so a write
        loses the fingerprint for this run, and the next run compares every row)."""
        if self._fingerprints.get(table) is None or self._shape(table).tree:
            return None
        return self.d.row_version_hash()

    def _write(self, statement: str, table: TableName, params: list[Any] | None = None) -> tuple[int, int]:
        """Run an INSERT or UPDATE; return (rows, sum of the new row versions' hashes, or 0)."""
        version = self._counting(table)
        if version is None:
            return max(self.d.execute(statement, params).rowcount, 0), 0
        row = self.d.fetchone(f"WITH w AS ({statement} RETURNING {version} AS h) "
                              "SELECT count(*), coalesce(sum(h), 0)::text FROM w", params)
        assert row is not None
        self._writes[table][2] += int(row[0])
        return int(row[0]), int(row[1])

    def _save_digests(self) -> None:
        """Record what this run left (large fixtures only: for small ones skipping saves nothing)."""
        final: dict[TableName, list[Any] | None] = {}
        for tracker, old in self.trackers:
            if old is None and tracker.rows <= self.batch_size:
                continue
            record = tracker.record()
            for t in tracker.tables:
                if t not in final:
                    final[t] = self._followed_to_the_end(t)
            record.state = {str(t): final[t] for t in tracker.tables}
            if record != old:
                save_record(self.d, tracker.fixture, str(tracker.table), record)

    def _explain_batch(self, fp: FixturePlan, cols: list[str], chunk: list[tuple[int, dict[str, Any]]],
                       exc: DatabaseError) -> None:
        """The database rejected a batch: find the row (and column) with the full checks, or say where
        the database said it was."""
        if exc.sqlstate is not None and not exc.sqlstate.startswith("22") and exc.sqlstate not in ROW_VIOLATIONS:
            return  # not about a value (None: the driver could not send one)
        for i, values in chunk:
            self._explain_row(fp, cols, i, values, final=False)
        line = getattr(exc, "copy_line", None)
        if line is not None and 1 <= line <= len(chunk):
            i = chunk[line - 1][0]
            raise FixtureError(exc.message, location=fp.fixture.row_location(i, getattr(exc, "copy_column", None)),
                               hint=exc.hint) from None

    def _prefetch_nested(self, fp: FixturePlan, refs: dict[str, RefShape],
                         chunk: list[tuple[int, dict[str, Any]]]) -> None:
        """Resolve the references nested inside this batch's references set-based: one query per
        referenced table and shape, not one per row (``_nested`` then finds them cached). A nested
        reference that does not resolve is left to ``_nested``, which says where."""
        groups: dict[tuple, tuple[RefTarget, dict[Ref, None]]] = {}
        for n, values in chunk:
            for c, shape in refs.items():
                outer = values.get(c)
                if outer.__class__ is not Ref or outer.scalar:
                    continue
                for m, inner in outer.match:
                    if inner.__class__ is not Ref or any(v.__class__ is Ref for _, v in inner.match):
                        continue
                    table = shape.target.table
                    if (inner, table.name, m) in self._nested_cache:
                        continue
                    sig = (table.name, m, inner.table, inner.column, inner.scalar,
                           None if inner.scalar else tuple(k for k, _ in inner.match))
                    group = groups.get(sig)
                    if group is None:
                        try:
                            target = ref_target(inner, table, m, self.catalog, self.plan.natural_keys,
                                                inner.location or fp.fixture.row_location(n, c))
                        except SeedkitError:
                            continue  # said with its location by _nested
                        group = groups[sig] = (target, {})
                    try:
                        group[1][inner] = None
                    except TypeError:  # an unhashable match value: looked up on its own
                        continue
        d, q = self.d, self.d.quote
        for (outer_table, m, *_), (t, inners) in groups.items():
            columns = [t.table.columns[k] for k in t.match]
            todo = list(inners)
            row_sql = f"({d.placeholder}, " + ", ".join(d.typed_placeholder(c) for c in columns) + ")"
            on = " AND ".join(f"t.{q(k)} = v.column{i + 2}" for i, k in enumerate(t.match))
            for start in range(0, len(todo), 500):
                part = todo[start:start + 500]
                params: list[Any] = []
                for i, inner in enumerate(part):
                    vals = [inner.match[0][1]] if inner.scalar else [dict(inner.match).get(k) for k in t.match]
                    try:
                        params += [i, *(d.adapt_value(c, convert(v, c, text=True)) for c, v in zip(columns, vals))]
                    except ConversionError:
                        params += [i, *([None] * len(columns))]  # _nested says what is wrong with it
                for i, value in d.fetchall(
                        f"SELECT v.column1, t.{q(t.target)} FROM (VALUES {', '.join([row_sql] * len(part))}) v "
                        f"JOIN {d.qualified(t.table.name)} t ON {on}", params):
                    self._nested_cache[(part[i], outer_table, m)] = value

    def _nested(self, value: Any, table: Table, column: str, loc: Location) -> Any:
        """A reference used as a match value inside another reference: look it up now (cached)."""
        if not isinstance(value, Ref):
            return value
        if self._copying:
            raise FixtureError(f"{value} inside another reference is not supported in Python fixtures",
                               location=value.location or loc,
                               hint="reference the row by its own key, e.g. ref('projects', slug='rocket')")
        cache_key = (value, table.name, column)
        if cache_key in self._nested_cache:
            return self._nested_cache[cache_key]
        t = ref_target(value, table, column, self.catalog, self.plan.natural_keys, value.location or loc)
        d, q = self.d, self.d.quote
        vals = [value.match[0][1]] if value.scalar else [dict(value.match).get(m) for m in t.match]
        params = [d.adapt_value(t.table.columns[m], convert(self._nested(v, t.table, m, loc), t.table.columns[m],
                                                             text=True)) for m, v in zip(t.match, vals)]
        row = d.fetchone(f"SELECT {q(t.target)} FROM {d.qualified(t.table.name)} WHERE "
                         + " AND ".join(f"{q(m)} = {d.placeholder}" for m in t.match), params)
        if row is None and not self.dry_run:
            want = ", ".join(f"{m} = {v!r}" for m, v in zip(t.match, vals))
            raise FixtureError(f"unresolved {value}: no {t.table.name} row with {want}",
                               location=value.location or loc, hint=self._closest_hint(t, tuple(vals)))
        self._nested_cache[cache_key] = row[0] if row else None
        return self._nested_cache[cache_key]

    def _is_empty(self, table: Table) -> bool:
        return self.d.fetchone(f"SELECT 1 FROM {self.d.qualified(table.name)} LIMIT 1") is None

    def _direct(self, tp: TablePlan, fp: FixturePlan, cols: list[str], rows: Iterator, tr: TableReport,
                tracker: Tracker | None) -> bool:
        """Empty target, nothing to resolve: load straight into the table. False on a duplicate key."""
        d, table = self.d, tp.table
        target = d.qualified(table.name)
        try:
            with d.transaction():  # a savepoint: a duplicate key falls back to the staged path
                if tracker is None:
                    n = self._load(target, cols, fp, cols, {}, rows, with_n=False)
                else:
                    n = self._load_formatted(target, cols, fp, cols, {}, rows, tracker)
        except DatabaseError as exc:
            if exc.sqlstate not in UNIQUE_VIOLATIONS:
                raise self._locate(exc, fp) from None
            return False
        tr.inserted += n
        if n:  # (a partitioned table too: its rows' xmin can be selected, not returned)
            version = self.d.row_version_hash() if self._fingerprints.get(table.name) is not None else None
            one = d.fetchone(f"SELECT {version}::text FROM {target} LIMIT 1") if version else None
            # one COPY in one savepoint: every row version has the same xmin
            self._wrote(table.name, (n, n * int(one[0])) if one else None)
            if one:
                self._writes[table.name][2] += n
        self._sync_sequences(table, cols)
        return True

    def _locate(self, exc: DatabaseError, fp: FixturePlan) -> DatabaseError:
        exc.message = f"{fp.table.name}: {exc.message}"
        exc.location = exc.location or Location(file=fp.fixture.source, line=fp.fixture.location.line,
                                                document=fp.fixture.location.document)
        return exc

    # -- SQL building ---------------------------------------------------------------------------
    def _src(self, stage: Stage, deferred: bool = False) -> str:
        """SELECT over the staging table with references resolved: one row per fixture row.

        Deferred columns (self-references, broken cycles) are left out until ``deferred=True``.
        """
        q = self.d.quote
        exprs = ["s._n AS _n"]
        joins = []
        unres = []
        skip = set() if deferred else self._deferred_of(stage)
        late = self._late_of(stage)
        for c in stage.columns:
            if c in skip:
                continue
            shape = stage.refs.get(c)
            if shape is None:
                exprs.append(f"s.{q(c)} AS {q(c)}")
                continue
            a = shape.alias
            if c in late and shape.target.target in shape.target.match:
                # a reference by the very column it stores, across a deferrable foreign key that closes
                # a cycle: its row may come later in the run; the key's own check runs at commit
                own = shape.stage_cols[shape.target.match.index(shape.target.target)]
                exprs.append(f"CASE WHEN s.{q(shape.stage_cols[0])} IS NULL THEN s.{q(c)} ELSE s.{q(own)} END"
                             f" AS {q(c)}")
                continue
            first = shape.stage_cols[0]
            exprs.append(f"CASE WHEN s.{q(first)} IS NULL THEN s.{q(c)} ELSE {a}.{q(shape.target.target)} END"
                         f" AS {q(c)}")
            on = " AND ".join(f"{a}.{q(m)} = s.{q(sc)}" for m, sc in zip(shape.target.match, shape.stage_cols))
            joins.append(f"LEFT JOIN {self._ref_source(shape)} {a} ON {on}")
            unres.append(f"(s.{q(first)} IS NOT NULL AND {a}.{q(shape.target.match[0])} IS NULL)")
        if stage.state:
            exprs.append("s._state AS _state")
        exprs.append(f"CASE WHEN {' OR '.join(unres)} THEN 1 ELSE 0 END AS _unres" if unres else "0 AS _unres")
        return f"SELECT {', '.join(exprs)} FROM {stage.sql} s {' '.join(joins)}"

    def _deferred_of(self, stage: Stage) -> frozenset[str]:
        for tp in self.plan.tables:
            if tp.table.name == stage.fixture.table.name:
                return tp.deferred
        return frozenset()

    def _late_of(self, stage: Stage) -> frozenset[str]:
        for tp in self.plan.tables:
            if tp.table.name == stage.fixture.table.name:
                return tp.late
        return frozenset()

    def _ref_source(self, shape: RefShape) -> str:
        """The referenced table; in a dry run also rows its fixtures would insert (value unknown yet)."""
        d, q = self.d, self.d.quote
        t = shape.target
        real = d.qualified(t.table.name)
        if not self.dry_run:
            return real
        cols = [*t.match, t.target] if t.target not in t.match else list(t.match)
        parts = [f"SELECT {', '.join(q(c) for c in cols)} FROM {real}"]
        for st in self.stages.get(t.table.name, []):
            if all(m in st.columns and m not in st.refs for m in t.match):
                sel = [f"s.{q(c)}" if c in t.match else f"NULL AS {q(c)}" for c in cols]
                cond = " AND ".join(f"x.{q(m)} = s.{q(m)}" for m in t.match)
                parts.append(f"SELECT {', '.join(sel)} FROM {st.sql} s WHERE NOT EXISTS "
                             f"(SELECT 1 FROM {real} x WHERE {cond})")
        return "(" + " UNION ALL ".join(parts) + ")" if len(parts) > 1 else real

    def _key_join(self, key: tuple[str, ...], left: str = "t", right: str = "src") -> str:
        q = self.d.quote
        return " AND ".join(f"{left}.{q(k)} = {right}.{q(k)}" for k in key)

    def _compare_cols(self, tp: TablePlan, stage: Stage) -> list[str]:
        fp = stage.fixture
        return [c for c in stage.columns if c not in fp.key and c not in fp.update_columns_excluded
                and c not in tp.deferred]

    def _differs(self, table: Table, cols: list[str]) -> str:
        q = self.d.quote
        return " OR ".join(self.d.distinct(f"t.{q(c)}", f"src.{q(c)}", table.columns[c]) for c in cols) or "1=0"

    # -- classify and write ---------------------------------------------------------------------
    def _insert_all(self, tp: TablePlan, stage: Stage, tr: TableReport) -> None:
        """The table is empty: every row is new, so skip classifying and insert what resolves."""
        d, q, table = self.d, self.d.quote, tp.table
        src = self._src(stage)
        cols = [c for c in stage.columns if c not in tp.deferred]
        try:
            with d.transaction():  # a savepoint: a repeated key is then located in the staged rows
                n, hashes = self._write(
                    f"INSERT INTO {d.qualified(table.name)} ({', '.join(q(c) for c in cols)})"
                    f"{d.insert_override(table, cols)} SELECT {', '.join('src.' + q(c) for c in cols)}"
                    f" FROM ({src}) src WHERE src._unres = 0", table.name)
        except DatabaseError as exc:
            if exc.sqlstate in UNIQUE_VIOLATIONS:
                self._check_duplicates(tp, stage)
            self._locate_row_violation(stage, src, exc)
            raise
        if n != stage.count:
            self._raise_unresolved(stage, src)
        self._wrote(table.name, (n, hashes))
        self._sync_sequences(table, cols)
        tr.inserted += stage.count

    def _locate_row_violation(self, stage: Stage, src: str, exc: DatabaseError) -> None:
        """An INSERT from the staged rows broke NOT NULL: say which fixture row left the column empty."""
        column = getattr(exc, "column_name", None)
        if exc.sqlstate != "23502" or column not in stage.columns:
            return
        q = self.d.quote
        row = self.d.fetchone(f"SELECT src._n FROM ({src}) src WHERE src.{q(column)} IS NULL ORDER BY src._n LIMIT 1")
        if row is not None:
            raise FixtureError(f"{column!r} is null, and {stage.fixture.table.name}.{column} is NOT NULL",
                               location=stage.fixture.fixture.row_location(stage.row_number(row[0]), column),
                               hint="give the column a value (an empty CSV cell is NULL)") from None

    def _classify_and_write(self, tp: TablePlan, stage: Stage, tr: TableReport, deferred_here: list[str]) -> None:
        d, q, table, fp = self.d, self.d.quote, tp.table, stage.fixture
        target = d.qualified(table.name)
        src = self._src(stage)
        compare = self._compare_cols(tp, stage) if fp.fixture.header.on_conflict == "update" else []
        key = fp.key
        k0 = q(key[0])
        differs = self._differs(table, compare)
        version = self._counting(table.name) and self.d.row_version_hash("t")
        skipped = stage.tracker is not None and stage.tracker.old is not None
        row = d.fetchone(
            f"SELECT COUNT(*), SUM(CASE WHEN t.{k0} IS NULL THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN t.{k0} IS NOT NULL AND ({differs}) THEN 1 ELSE 0 END), SUM(src._unres), "
            + (f"SUM(CASE WHEN t.{k0} IS NOT NULL AND ({differs}) THEN {version} END)::text " if version else "0 ")
            + (", txid_current_snapshot()::text " if skipped else "")
            + f"FROM ({src}) src LEFT JOIN {target} t ON {self._key_join(key)}")
        assert row is not None
        if skipped and stage.tracker is not None and not self._unchanged_since_scan(stage.tracker, row[5]):
            raise Restage  # the skipped rows are not what the last run left: nothing written yet
        total, missing, changed, unresolved, old_hashes = (int(x or 0) for x in row[:5])
        if unresolved:
            self._raise_unresolved(stage, src)
        if stage.state and missing:  # remember which rows this run inserts (see _set_deferred)
            d.execute(f"UPDATE {stage.sql} SET _state = 'new' WHERE _n IN (SELECT src._n FROM ({src}) src "
                      f"LEFT JOIN {target} t ON {self._key_join(key)} WHERE t.{k0} IS NULL)")
        if self.diff and changed:
            self._collect_diff(table, stage, src, compare, tr)
        insert_cols = [c for c in stage.columns if c not in tp.deferred]
        delta = [0, -old_hashes]  # rows, hashes of row versions: how this run moves the fingerprint
        if missing and not self.dry_run:
            cols_sql = ", ".join(q(c) for c in insert_cols)
            try:
                with d.transaction():  # a savepoint: a row breaking NOT NULL is then located
                    n, hashes = self._write(
                        f"INSERT INTO {target} ({cols_sql}){d.insert_override(table, insert_cols)} "
                        f"SELECT {', '.join('src.' + q(c) for c in insert_cols)} FROM ({src}) src "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {self._key_join(key)})", table.name)
            except DatabaseError as exc:
                self._locate_row_violation(stage, src, exc)
                raise
            delta = [delta[0] + n, delta[1] + hashes]
            self._sync_sequences(table, insert_cols)
        if changed and compare and not self.dry_run:
            sets = ", ".join(f"{q(c)} = src.{q(c)}" for c in compare)
            _, hashes = self._write(f"UPDATE {target} AS t SET {sets} FROM ({src}) src "
                                    f"WHERE {self._key_join(key)} AND ({differs})", table.name)
            delta[1] += hashes
            self._sync_sequences(table, compare)  # an id may have changed too
        if (missing or (changed and compare)) and not self.dry_run:
            self._wrote(table.name, (delta[0], delta[1]) if version else None)
        tr.inserted += missing
        tr.updated += changed if compare else 0
        tr.unchanged += total - missing - (changed if compare else 0)

    def _set_deferred(self, tp: TablePlan, stage: Stage, tr: TableReport) -> None:
        """Second pass for self-references and broken cycles: every row now exists."""
        d, q, table, fp = self.d, self.d.quote, tp.table, stage.fixture
        cols = [c for c in stage.columns if c in tp.deferred]
        if not cols or stage.count == 0:
            return
        cols_changed_only_new = fp.fixture.header.on_conflict == "ignore"
        target = d.qualified(table.name)
        src = self._src(stage, deferred=True)
        differs = self._differs(table, cols)
        scope = "src._state = 'new'" if cols_changed_only_new else "1=1"
        row = d.fetchone(f"SELECT SUM(CASE WHEN src._state IS NULL THEN 1 ELSE 0 END), COUNT(*), SUM(src._unres) "
                         f"FROM ({src}) src JOIN {target} t ON {self._key_join(fp.key)} "
                         f"WHERE ({differs}) AND {scope}")
        assert row is not None
        old_changed, any_changed, unresolved = (int(x or 0) for x in row)
        if unresolved:
            self._raise_unresolved(stage, src, deferred=True)
        if any_changed and not self.dry_run:
            self._wrote(table.name)
            sets = ", ".join(f"{q(c)} = src.{q(c)}" for c in cols)
            d.execute(f"UPDATE {target} AS t SET {sets} FROM ({src}) src "
                      f"WHERE {self._key_join(fp.key)} AND ({differs}) AND {scope}")
        if old_changed and not cols_changed_only_new:
            # rows that existed before the run and changed only in a deferred column
            tr.updated += old_changed
            tr.unchanged -= old_changed
            if tr.unchanged < 0:
                tr.unchanged = 0

    def _sync_sequences(self, table: Table, cols: list[str]) -> None:
        """Explicit values went into ``cols``: every sequence feeding one moves past the largest value
        over all the columns it feeds (a sequence may be shared by several tables), never backwards."""
        if self.dry_run:
            return
        feeds = self.catalog.sequence_feeds
        for seq in dict.fromkeys(table.columns[c].sequence for c in cols if table.columns[c].autoincrement):
            if seq is not None:
                self.d.sync_sequence(seq, feeds.get(seq) or ((table.name, next(
                    c for c in cols if table.columns[c].sequence == seq)),))

    # -- checks ---------------------------------------------------------------------------------
    def _raise_unresolved(self, stage: Stage, src: str, deferred: bool = False) -> None:
        d, q = self.d, self.d.quote
        fx = stage.fixture.fixture
        (failed,) = d.fetchone(f"SELECT count(*) FROM ({src}) src WHERE src._unres = 1") or (0,)
        bad = d.fetchall(f"SELECT src._n FROM ({src}) src WHERE src._unres = 1 ORDER BY src._n LIMIT 10")
        problems = []
        for (n,) in bad:
            cols = ", ".join(q(sc) for shape in stage.refs.values() for sc in shape.stage_cols)
            vals = d.fetchone(f"SELECT {cols} FROM {stage.sql} WHERE _n = {d.placeholder}", [n]) or ()
            i = 0
            skip = set() if deferred else self._deferred_of(stage)
            for c, shape in stage.refs.items():
                mv = vals[i:i + len(shape.stage_cols)]
                i += len(shape.stage_cols)
                if mv and mv[0] is not None and c not in skip:
                    t = shape.target
                    found = d.fetchone(
                        f"SELECT 1 FROM {d.qualified(t.table.name)} WHERE "
                        + " AND ".join(f"{q(m)} = {d.placeholder}" for m in t.match), list(mv))
                    if found is None:
                        want = ", ".join(f"{m} = {v!r}" for m, v in zip(t.match, mv))
                        hint = self._closest_hint(t, mv)
                        if c in self._late_of(stage):
                            hint = (f"{c} closes a foreign-key cycle, so its {t.table.name} row may be written "
                                    f"later in the run: refer to it by the column it stores "
                                    f"(!ref {{table: {t.table.name}, {t.target}: …}}) or make {c} nullable")
                        problems.append(FixtureError(f"unresolved reference: no {t.table.name} row with {want}",
                                                     location=fx.row_location(stage.row_number(n), c), hint=hint))
        if len(problems) == 1 and failed == 1:
            raise problems[0]
        shown = "" if len(bad) >= failed else f" (the first {len(bad)} listed)"
        raise FixtureError(f"{failed} rows with unresolved references{shown}:", problems=problems)

    def _closest_hint(self, t: RefTarget, values: tuple) -> str:
        return closest_keys_hint(self.d, t, values)

    def _check_duplicates(self, tp: TablePlan, stage: Stage) -> None:
        """A streamed fixture may generate the same key twice (also across stages of the table)."""
        d, q = self.d, self.d.quote
        key = stage.fixture.key
        parts = []
        for i, st in enumerate(self.stages[tp.table.name]):
            if all(k in st.columns for k in key):
                parts.append(f"SELECT {i} AS _s, src._n, {', '.join('src.' + q(k) for k in key)} "
                             f"FROM ({self._src(st)}) src")
        if not parts:
            return
        keys = ", ".join(q(k) for k in key)
        dup = d.fetchone(f"SELECT {keys}, COUNT(*) FROM ({' UNION ALL '.join(parts)}) u "
                         f"GROUP BY {keys} HAVING COUNT(*) > 1 LIMIT 1")
        if dup is None:
            return
        cond = " AND ".join(f"u.{q(k)} = {d.placeholder}" for k in key)
        places = d.fetchall(f"SELECT _s, _n FROM ({' UNION ALL '.join(parts)}) u WHERE {cond} ORDER BY _s, _n "
                            "LIMIT 2", list(dup[:len(key)]))
        stages = self.stages[tp.table.name]
        locs = [stages[s].fixture.fixture.row_location(stages[s].row_number(n)) for s, n in places]
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(key, dup))
        if not any(stages[s].fixture.fixture.rows is None and not stages[s].fixture.fixture.text_values
                   for s, _ in places):  # no Python fixture among them: the rows were written, not generated
            raise FixtureError(f"the same key ({shown}) appears twice for {tp.table.name}; first at {locs[0]}",
                               location=locs[-1], hint="each row needs a key of its own: remove or change one")
        raise FixtureError(f"the same key ({shown}) is generated twice for {tp.table.name}; first at {locs[0]}",
                           location=locs[-1],
                           hint="build keys from the row number (e.g. f'user{n}@example.com'), not from Faker")

    def _collect_diff(self, table: Table, stage: Stage, src: str, compare: list[str], tr: TableReport) -> None:
        d, q = self.d, self.d.quote
        key = stage.fixture.key
        sel = [f"src.{q(k)}" for k in key] + [x for c in compare for x in (f"t.{q(c)}", f"src.{q(c)}")]
        rows = d.fetchall(f"SELECT {', '.join(sel)} FROM ({src}) src JOIN {d.qualified(table.name)} t ON "
                          f"{self._key_join(key)} WHERE ({self._differs(table, compare)}) ORDER BY src._n "
                          f"LIMIT {self.diff_limit - len(tr.diffs)}")
        for r in rows:
            k = dict(zip(key, r[:len(key)]))
            rest = r[len(key):]
            for i, c in enumerate(compare):
                old, new = rest[2 * i], rest[2 * i + 1]
                if old != new:
                    tr.diffs.append({"key": {a: _plain(b) for a, b in k.items()}, "column": c,
                                     "old": _plain(old), "new": _plain(new)})

    # -- prune ----------------------------------------------------------------------------------
    def _prune(self, tp: TablePlan, fp: FixturePlan, tr: TableReport) -> None:
        d, q, ph = self.d, self.d.quote, self.d.placeholder
        table = tp.table
        ledger = d.quote(LEDGER)
        names = [fp.fixture.name, *self._legacy_names(tp, fp)]  # the fixture's rows, also as older versions kept them
        if len(names) > 1 and not self.dry_run:
            self._adopt(names, str(table.name))
            names = names[:1]
        marks_names = ", ".join(ph for _ in names)
        ident = [fp.fixture.name, str(table.name)]
        stages = [st for st in self.stages.get(table.name, []) if st.fixture is fp]
        key_sql = d.json_key([f"src.{q(k)}" for k in fp.key])
        current = " UNION ALL ".join(f"SELECT {key_sql} AS k FROM ({self._src(st)}) src" for st in stages) \
            or "SELECT NULL AS k WHERE 1=0"
        gone = [r[0] for r in d.fetchall(
            f"SELECT DISTINCT l.row_key FROM {ledger} l WHERE l.fixture IN ({marks_names}) AND l.table_name = {ph} "
            f"AND l.row_key NOT IN (SELECT k FROM ({current}) c WHERE k IS NOT NULL)", [*names, str(table.name)])]
        t_key = d.json_key([f"{q(k)}" for k in fp.key])
        deleted = 0
        if gone:
            for i in range(0, len(gone), 500):
                chunk = gone[i:i + 500]
                marks = ", ".join(ph for _ in chunk)
                if self.dry_run:
                    got = d.fetchone(f"SELECT COUNT(*) FROM {d.qualified(table.name)} WHERE {t_key} IN ({marks})",
                                     chunk)
                    deleted += int(got[0]) if got else 0
                else:
                    cur = d.execute(f"DELETE FROM {d.qualified(table.name)} WHERE {t_key} IN ({marks})", chunk)
                    deleted += max(cur.rowcount, 0)
                    self._wrote(table.name)
                    d.execute(f"DELETE FROM {ledger} WHERE fixture = {ph} AND table_name = {ph} "
                              f"AND row_key IN ({marks})", [*ident, *chunk])
        tr.deleted += deleted
        if not self.dry_run and stages:
            d.execute(f"INSERT INTO {ledger} (fixture, table_name, row_key) "
                      f"SELECT DISTINCT {ph}, {ph}, c.k FROM ({current}) c WHERE c.k IS NOT NULL AND NOT EXISTS "
                      f"(SELECT 1 FROM {ledger} l WHERE l.fixture = {ph} AND l.table_name = {ph} AND l.row_key = c.k)",
                      [*ident, *ident])

    def _legacy_names(self, tp: TablePlan, fp: FixturePlan) -> list[str]:
        """Names earlier versions gave this fixture in the ledger: its path relative to the working
        directory of that run (absolute outside it), which a run from another folder did not find.

        A name is this fixture's when its path ends with the fixture's whole path in the seeds folder
        (absolute: with the seeds folder's name too, so a moved project still matches) and it fits no
        other fixture of the run; anything else is left alone.
        """
        d, ph = self.d, self.d.placeholder
        fx = fp.fixture
        if fx.path is None or not fx.ident:
            return []
        ours = {f.fixture.name for t in self.plan.tables for f in t.fixtures}
        found = [r[0] for r in d.fetchall(f"SELECT DISTINCT fixture FROM {d.quote(LEDGER)} WHERE table_name = {ph}",
                                          [str(tp.table.name)])]
        return [n for n in found if n not in ours and _legacy_of(n, fx)
                and not any(_legacy_of(n, other.fixture) for other in tp.fixtures if other is not fp)]

    def _adopt(self, names: list[str], table: str) -> None:
        """Move ledger rows kept under older names to the fixture's name (once, in this run's transaction)."""
        d, ph = self.d, self.d.placeholder
        ledger = d.quote(LEDGER)
        new, old = names[0], names[1:]
        marks = ", ".join(ph for _ in old)
        d.execute(f"INSERT INTO {ledger} (fixture, table_name, row_key) SELECT DISTINCT {ph}, o.table_name, o.row_key "
                  f"FROM {ledger} o WHERE o.fixture IN ({marks}) AND o.table_name = {ph} AND NOT EXISTS "
                  f"(SELECT 1 FROM {ledger} l WHERE l.fixture = {ph} AND l.table_name = o.table_name "
                  f"AND l.row_key = o.row_key)", [new, *old, table, new])
        d.execute(f"DELETE FROM {ledger} WHERE fixture IN ({marks}) AND table_name = {ph}", [*old, table])


def _legacy_of(name: str, fx: Fixture) -> bool:
    """Whether ``name`` is how an earlier version, run from some folder, recorded fixture ``fx``."""
    tail = fx.name[len(fx.ident):]
    if fx.path is None or not name.endswith(tail) or len(name) == len(tail):
        return False
    written = PurePath(name[:-len(tail)])
    rel = PurePosixPath(fx.ident).parts
    here = fx.path.parts
    if written.is_absolute():
        parts = written.parts
        n = min(len(rel) + 1, len(here))
        return written == fx.path or (len(parts) >= n and parts[-n:] == here[-n:])
    parts = tuple(p for p in written.parts if p != ".")
    while parts and parts[0] == "..":
        parts = parts[1:]
    return len(parts) >= len(rel) and here[-len(parts):] == parts


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def ensure_ledger(d: Database, *, temporary: bool = False) -> None:
    """Create the prune ledger (a dry run: an empty temporary one, which hides nothing)."""
    d.execute(f"CREATE {'TEMP TABLE' if temporary else 'TABLE IF NOT EXISTS'} {d.quote(LEDGER)} (fixture TEXT "
              "NOT NULL, table_name TEXT NOT NULL, row_key TEXT NOT NULL, PRIMARY KEY (fixture, table_name, row_key))"
              + (" ON COMMIT DROP" if temporary and d.dialect == "postgresql" else ""))


__all__ = ["Applier", "Progress", "ensure_ledger"]
