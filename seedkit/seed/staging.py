"""Staging and streaming: fixture rows go to the database in batches (COPY on PostgreSQL, batched
``executemany`` on SQLite), into a staging table or straight into an empty target.

Memory stays bounded by the batch size; a batch the database rejects is explained row by row, and a
streamed fixture's failing row is located by the COPY line the database names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseError, FixtureError
from .context import ROW_VIOLATIONS, UNIQUE_VIOLATIONS, Context, RefShape
from .early import stream as early_stream
from .plan import FixturePlan
from .rows import NestedRefs, RowBuilder
from .skip_basics import Restage

if TYPE_CHECKING:  # pragma: no cover
    from .skip_tracker import Tracker

# rows made at most while the fingerprint scan runs, and bytes of COPY text held for after it: memory stays bounded
AHEAD_ROWS, AHEAD_BYTES = 500_000, 16 << 20


class Loader:

    def __init__(self, ctx: Context, builder: RowBuilder, nested: NestedRefs):
        self.ctx = ctx
        self.builder = builder
        self.nested = nested

    def load(self, table_sql: str, columns: list[str], fp: FixturePlan, cols: list[str],
              refs: dict[str, RefShape], rows: Iterator[tuple[int, dict[str, Any]]], *, with_n: bool = True,
              first: tuple[list, list | None] | None = None) -> int:
        """Load in batches: memory stays bounded by the batch size, lookups made while building rows
        never run in the middle of a COPY, and a batch the database rejects is explained row by row.
        ``first``: the first batch (its rows, and the rows built from them), built ahead (seed/overlap.py)."""
        make_batch = self.builder.batch_maker(fp, cols, refs, with_n)
        fx = fp.fixture
        total = fx.count if fx.rows is None else len(fx.rows)
        label = str(fp.table.name)
        if fx.rows is None:
            return self.load_stream(table_sql, columns, fp, cols, make_batch, rows, label, total)
        n = 0
        while chunk := (first[0] if first is not None else list(islice(rows, self.ctx.batch_size))):
            built, first = (first[1] if first is not None else None), None
            if built is None:
                self.nested.prefetch(fp, refs, chunk)
            try:
                n += self.ctx.d.load_rows(table_sql, columns, make_batch(chunk) if built is None else built)
            except DatabaseError as exc:
                self.explain_batch(fp, cols, chunk, exc)
                raise
            if self.ctx.progress is not None:
                self.ctx.progress(label, n, total)
        return n

    def build_ahead(self, fp: FixturePlan, cols: list[str], refs: dict[str, RefShape],
                    rows: Iterator[tuple[int, dict[str, Any]]]) -> tuple[list, list | None]:
        """The first batch of a fixture whose rows are in memory, built without the database (its nested
        references were looked up ahead): (its rows, the rows built, or None where that needed anything
        else; the rows are then built at their turn, and any problem said then)."""
        chunk = list(islice(rows, self.ctx.batch_size))
        self.nested.offline = True  # (nothing else may use the connection now)
        try:
            return chunk, self.builder.batch_maker(fp, cols, refs, True)(chunk)
        except Exception:  # noqa: BLE001 - built again at its turn, which raises what is wrong
            return chunk, None
        finally:
            self.nested.offline = False

    def load_stream(self, table_sql: str, columns: list[str], fp: FixturePlan, cols: list[str],
                     make_batch: Callable, rows: Iterator, label: str, total: int | None) -> int:
        """A Python fixture streams through one COPY, so generating rows and storing them overlap;
        rows are built a batch at a time (memory stays bounded by the batch size)."""
        every = self.ctx.batch_size
        progress = self.ctx.progress
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

        self.nested.copying = True
        try:
            n = self.ctx.d.load_rows(table_sql, columns, chain.from_iterable(batches()))
        except DatabaseError as exc:
            self.nested.copying = False
            self.stream_failed(fp, cols, exc, current, lambda line: line)
            raise
        finally:
            self.nested.copying = False
        return n

    def stream_failed(self, fp: FixturePlan, cols: list[str], exc: DatabaseError,
                       current: list[tuple[int, dict[str, Any]]], row_number: Callable[[int], int]) -> None:
        """Say which row of a streamed fixture the database (or the driver) rejected."""
        if exc.sqlstate in UNIQUE_VIOLATIONS and not fp.fixture.text_values:
            # (a CSV file may be of any size: its rows are staged again and a GROUP BY says where)
            self.builder.locate_duplicate(fp)
        if exc.sqlstate is None:  # the driver could not send a value: it is in the batch being sent
            for i, values in current:
                self.builder.explain_row(fp, cols, i, values, final=False)
        if exc.sqlstate is None or exc.sqlstate.startswith("22") or exc.sqlstate in ROW_VIOLATIONS:
            line = getattr(exc, "copy_line", None)  # the COPY's line: row_number says which row it was
            where = fp.fixture.row_location(row_number(line) if line else (current[0][0] if current else 0),
                                            getattr(exc, "copy_column", None))
            raise FixtureError(exc.message, location=where, hint=exc.hint) from None

    def load_formatted(self, table_sql: str, columns: list[str], fp: FixturePlan, cols: list[str],
                        refs: dict[str, RefShape], rows: Iterator, tracker: Tracker,
                       fmt: Callable[[list], bytearray], early: Callable[[int, int], bool] | None = None,
                       eager: bool = False) -> int:
        """Rows built and formatted a batch at a time; the tracker says what of each batch to send.
        ``early``: update (``eager``: insert) the rows staged so far while the next ones are made
        (seed/early.py)."""
        make_batch = self.builder.batch_maker(fp, cols, refs, with_n=False)
        every, progress = self.ctx.batch_size, self.ctx.progress
        label, total = str(fp.table.name), fp.fixture.count
        current: list[tuple[int, dict[str, Any]]] = []
        ahead: list[tuple[int, bytes | bytearray | None, int]] = []
        staged = [0]  # rows staged through the batch last handed out

        def buffers() -> Iterator[bytes | bytearray]:
            nonlocal current
            done = 0
            for count, data, through in ahead:
                if data:
                    staged[0] = through
                    yield data
                done += count
            ahead.clear()
            while chunk := list(islice(rows, every)):
                current = chunk
                built = make_batch(chunk)
                data = tracker.feed(built, fmt)
                if data:
                    staged[0] = tracker.staged
                    yield data
                done += len(chunk)
                if progress is not None:
                    progress(label, done, total)

        self.nested.copying = True  # (from here on no lookup runs while rows are made: see NestedRefs)
        try:
            ahead = self.ahead(tracker, rows, make_batch, fmt, label, total, current)
            if early is None:
                self.ctx.d.load_buffers(table_sql, columns, buffers())
            else:  # (each batch with the rows staged and made through it, and whether any is past the last run's end)
                early_stream(self.ctx.d, table_sql, columns, ((data, staged[0], tracker.rows, tracker.fresh_from
                                                               is not None) for data in buffers()), early,
                             tracker.applied, tracker.old.rows if tracker.old is not None else 0, eager=eager)
        except DatabaseError as exc:
            self.nested.copying = False
            self.stream_failed(fp, cols, exc, current, tracker.row_number)
            raise
        finally:
            self.nested.copying = False
        return tracker.staged

    def ahead(self, tracker: Tracker, rows: Iterator, make_batch: Callable, fmt: Callable[[list], bytearray],
              label: str, total: int | None, current: list) -> list[tuple[int, bytes | bytearray | None, int]]:
        """Run the tracker's fingerprint scan (when it has not run yet) on this connection in another thread,
        while the first batches are made and digested here against the last run's record: the server
        scans while the client computes. The connection is not used here until the scan is over, and no COPY
        starts before it. When the scan says the record no longer describes the tables, the fixture is
        staged again from its first row with nothing skipped (``Restage``: only the rows made meanwhile are
        made twice). Return (rows, what to send, rows staged through it) per batch made; memory holds only what is
        to be sent. Without a record to skip rows by (``tracker.old`` None) the scan still runs here, to follow
        the fingerprints from it; it then finds nothing to stage again."""
        verify, tracker.verify = tracker.verify, None
        made: list[tuple[int, bytes | bytearray | None, int]] = []
        if verify is None:
            return made
        said: list[Any] = []

        def scan() -> None:
            try:
                said.append(verify())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
                said.append(exc)

        worker = threading.Thread(target=scan, name="seedkit-scan", daemon=True)
        worker.start()
        done, held, every = 0, 0, self.ctx.batch_size
        try:
            while worker.is_alive() and done < AHEAD_ROWS and held < AHEAD_BYTES:
                chunk = list(islice(rows, every))
                if not chunk:
                    break
                current[:] = chunk  # (the batch a value the driver cannot send is in)
                data = tracker.feed(make_batch(chunk), fmt)
                made.append((len(chunk), data, tracker.staged))
                done += len(chunk)
                held += len(data) if data else 0
                if self.ctx.progress is not None:
                    self.ctx.progress(label, done, total)
        finally:
            worker.join()
        if isinstance(said[0], BaseException):
            raise said[0]
        if not said[0] and tracker.old is not None:  # the tables are not what the last run left: nothing can be skipped
            raise Restage
        return made

    def explain_batch(self, fp: FixturePlan, cols: list[str], chunk: list[tuple[int, dict[str, Any]]],
                       exc: DatabaseError) -> None:
        """The database rejected a batch: find the row (and column) with the full checks, or say where
        the database said it was."""
        if exc.sqlstate is not None and not exc.sqlstate.startswith("22") and exc.sqlstate not in ROW_VIOLATIONS:
            return  # not about a value (None: the driver could not send one)
        for i, values in chunk:
            self.builder.explain_row(fp, cols, i, values, final=False)
        line = getattr(exc, "copy_line", None)
        if line is not None and 1 <= line <= len(chunk):
            i = chunk[line - 1][0]
            raise FixtureError(exc.message, location=fp.fixture.row_location(i, getattr(exc, "copy_column", None)),
                               hint=exc.hint) from None


__all__ = ["Loader"]
