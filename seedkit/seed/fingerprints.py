"""The run's fingerprints of the tables it skips rows of: scanned once, moved by the run's own writes,
and recorded with each tracked fixture at the end (see seed/skip_tracker.py and RELIABILITY.md §7)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from ..db.catalog import TableName
from .context import Context, RefShape
from .plan import FixturePlan, TablePlan
from .skip_basics import CHUNK, DIGESTS

if TYPE_CHECKING:  # pragma: no cover
    from .skip_tracker import Record, Tracker

# (skip_tracker itself is imported where a tracker is made or a record read: see skip_basics.py)


class Fingerprints:

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.formatter: Any = False  # the database's row formatter (False: not asked yet)
        self.records: dict[tuple[str, str], Record] | None = None
        self.settings: list[Any] | None = None
        # fingerprints of tables as this run moves them (None: written in a way the run cannot follow),
        # the snapshot each was scanned in, and (relids, the transaction's writes then, writes followed)
        self.known: dict[TableName, list[Any] | None] = {}
        self.since: dict[TableName, str] = {}
        self.writes: dict[TableName, list[Any]] = {}
        self.identity: list[Any] | None = None
        self.shapes: dict[TableName, Any] = {}
        self.trackers: list[tuple[Tracker, Record | None]] = []

    def following(self, table: TableName) -> bool:
        """Whether this run keeps ``table``'s fingerprint (it was scanned and every write since followed)."""
        return self.known.get(table) is not None

    def start_empty(self, table: TableName) -> None:
        """``table`` is empty: follow its fingerprint from here as rows go in."""
        if self.known.get(table) is None:
            self.known[table] = [0, "0"]
            self.follow_writes(table)

    def loaded(self, table: TableName, n: int, xmin_hash: int | None) -> None:
        """``n`` rows went into ``table`` by one COPY in one savepoint (every row version has the same xmin)."""
        self.wrote(table, (n, n * xmin_hash) if xmin_hash is not None else None)
        if xmin_hash is not None:
            self.writes[table][2] += n

    def joins_for(self, tracker: Tracker | None, staged: int) -> AbstractContextManager[None]:
        """A few changed rows of a large table: join them by index lookups, not by scanning the table."""
        if tracker is None or tracker.old is None:
            return nullcontext()
        rows = tracker.old.state.get(str(tracker.table), [0])[0]
        return self.ctx.d.few_rows_join() if staged * 10 < rows else nullcontext()

    def tracker(self, tp: TablePlan, fp: FixturePlan, cols: list[str], refs: dict[str, RefShape], *,
                few: bool = False) -> Tracker | None:
        """A tracker for a streamed fixture whose unchanged rows can be skipped, with the last run's
        record when it still describes the database; None where skipping is not sound or not possible,
        and for ``few`` rows (less than a batch, all generated already) that no record covers: such a
        fixture would skip nothing and leave no record (``save``), so its rows are compared as any
        fixture's are, without the tables' shapes and fingerprints a tracker reads."""
        fx, table = fp.fixture, tp.table
        if (fx.rows is not None or fx.text_values or fx.header.prune or len(tp.fixtures) != 1 or tp.deferred
                or self.ctx.dry_run or self.ctx.batch_size % CHUNK or not all(k in cols for k in fp.key)):
            return None  # a dry run (and --check) compares every row: it is the authoritative drift check
        if few and self.record(fx.name, str(table.name)) is None:
            return None
        if self.formatter is False:
            self.formatter = self.ctx.d.row_formatter()
        if self.formatter is None:
            return None
        order = {t.table.name: i for i, t in enumerate(self.ctx.plan.tables)}
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
        shapes = [self.shape(t) for t in tables]
        if shapes[0].unsafe:
            # what a trigger or rule writes is not what was sent: every row is compared, every run
            return None
        if self.identity is None:
            self.identity = self.ctx.d.database_identity()
        from .skip_tracker import Tracker, config_digest

        config = config_digest([
            str(table.name), cols, list(fp.key), fx.header.on_conflict, sorted(fp.update_columns_excluded),
            [(c, str(s.target.table.name), s.target.match, s.target.target) for c, s in refs.items()],
            [(c.name, c.type, c.kind, c.nullable, c.identity, c.generated) for c in table.columns.values()],
            self.ctx.batch_size, self.session(), self.identity, [sh.digest for sh in shapes]],
            self.ctx.d.driver_version)
        tracker = Tracker(fx.name, table.name, config, tables, positions, self.ctx.batch_size)
        old = self.record(fx.name, str(table.name))
        if old is not None and old.config == config and old.batch_size == self.ctx.batch_size:
            if all(t in self.known for t in tables):
                if self.verify(tracker, old):
                    tracker.old = old
            else:  # the scan runs while the first batches are made, before anything is compared or written
                tracker.old = old
                tracker.verify = lambda: self.verify(tracker, old)
        if tracker.verify is None and not all(t in self.known for t in tables):
            # nothing to skip: the scan (which the run needs before it compares or writes, to follow the
            # fingerprints from there) still runs while the first batches are made, not after the last
            tracker.verify = lambda: self.scan(tables) or True
        self.trackers.append((tracker, old))
        return tracker

    def verify(self, tracker: Tracker, old: Record) -> bool:
        """Scan the tables not followed yet: do they all hold what the last run left?"""
        self.scan(tracker.tables)
        return all(old.state.get(str(t)) == self.known.get(t) for t in tracker.tables)

    def shape(self, table: TableName) -> Any:
        if table not in self.shapes:
            self.shapes[table] = self.ctx.d.table_shape(table)
        return self.shapes[table]

    def scan(self, tables: list[TableName]) -> None:
        """Fingerprint the tables not yet followed, in one statement (one snapshot), before this run
        compares or writes them; from then on the run's own writes move them (``wrote``)."""
        todo = [t for t in tables if t not in self.known]
        if not todo:
            return
        snapshot, prints = self.ctx.d.fingerprints(todo, snapshot=True)
        assert snapshot is not None
        for t, fingerprint in zip(todo, prints):
            self.known[t] = fingerprint
            self.since[t] = snapshot
            self.follow_writes(t)

    def follow_writes(self, table: TableName) -> None:
        """Note how many rows this transaction has written to ``table`` so far (the database counts them,
        cascades and triggers included): at the end, every write since must be one the run followed."""
        relids = self.shape(table).relids
        self.writes[table] = [relids, self.ctx.d.table_writes(relids), 0]

    def followed_to_the_end(self, table: TableName) -> list[Any] | None:
        """The fingerprint this run leaves ``table`` with, or None when something wrote it that the run
        did not follow (it is never scanned again: that would take in other sessions' commits)."""
        known = self.known.get(table)
        if known is None or table not in self.writes:
            return None
        relids, before, followed = self.writes[table]
        return known if self.ctx.d.table_writes(relids) - before == followed else None

    def unchanged_since_scan(self, tracker: Tracker, now: str, moved: tuple[int, int] = (0, 0)) -> bool:
        """Do the tables read now (snapshot ``now``) hold what they did at their scan, plus this run's own
        writes? Cheap when no other transaction committed meanwhile; otherwise a scan says. ``moved``: how a
        write of the target table not followed yet (the statement that took ``now``) moved its fingerprint."""
        tables = tracker.tables
        if any(self.known.get(t) is None or t not in self.since for t in tables):
            return False
        for since in {self.since[t] for t in tables}:
            if self.ctx.d.others_committed(since, now) is not False:
                _, prints = self.ctx.d.fingerprints(tables)
                want = {t: self.known[t] for t in tables}
                count, total = want[tracker.table] or [0, "0"]
                want[tracker.table] = [count + moved[0], str(int(total) + moved[1])]
                return all(fingerprint == want[t] for t, fingerprint in zip(tables, prints))
        return True

    def session(self) -> list[Any]:
        """Settings that change how the server reads the same text (a timestamp without offset, …)."""
        if self.settings is None:
            self.settings = self.ctx.d.text_settings()
        return self.settings

    def record(self, fixture: str, table: str) -> Record | None:
        if self.records is None:
            if any(t.name == DIGESTS for t in self.ctx.catalog.tables):
                from .skip_tracker import load_records

                self.records = load_records(self.ctx.d)
            else:
                self.records = {}
        return self.records.get((fixture, table))

    def wrote(self, table: TableName, delta: tuple[int, int] | None = None) -> None:
        """This run wrote ``table``: move its fingerprint by ``delta`` (rows, hash sum); without one, the
        fingerprint is lost for this run (a table not scanned yet is scanned after the write)."""
        if table not in self.known:
            return
        known = self.known[table]
        if known is None or delta is None:
            self.known[table] = None
        else:
            self.known[table] = [known[0] + delta[0], str(int(known[1]) + delta[1])]

    def counting(self, table: TableName) -> str | None:
        """The row-version hash to add up while writing ``table``, when its fingerprint is being kept
        (not through a partitioned table: PostgreSQL cannot return a system column from it, so a write
        loses the fingerprint for this run, and the next run compares every row)."""
        if self.known.get(table) is None or self.shape(table).tree:
            return None
        return self.ctx.d.row_version_hash()

    def counted(self, table: TableName, n: int) -> None:
        """``n`` rows written to ``table`` by a statement that added up their versions' hashes itself."""
        self.writes[table][2] += n

    def writes_so_far(self, table: TableName) -> int:
        """The database's count of rows this transaction wrote to ``table`` (see ``undone``)."""
        return self.ctx.d.table_writes(self.writes[table][0])

    def undone(self, table: TableName, rows: int | None = None, *, since: int | None = None) -> None:
        """Writes of ``table`` rolled back under a savepoint (``rows`` of them, or as many as the database
        counted since ``since``): they left the table as it was, but the database still counts them, and
        every write counted must be one the run followed (see ``followed_to_the_end``)."""
        if table not in self.writes:
            return
        if since is not None:
            rows = self.writes_so_far(table) - since
        self.writes[table][2] += rows or 0

    def mark(self, table: TableName) -> tuple[int, int] | None:
        """Where ``table``'s write counts stand before a write that may be undone under a savepoint: the
        database's count and the run's (None: the table's writes are not followed)."""
        if table not in self.writes:
            return None
        return self.writes_so_far(table), self.writes[table][2]

    def rolled_back(self, table: TableName, mark: tuple[int, int] | None) -> None:
        """The write after ``mark`` was undone: whatever it counted as followed is dropped, and every row the
        database counted since is followed (``undone``)."""
        if mark is not None:
            self.writes[table][2] = mark[1]
            self.undone(table, since=mark[0])

    def write(self, statement: str, table: TableName, params: list[Any] | None = None) -> tuple[int, int]:
        """Run an INSERT or UPDATE; return (rows, sum of the new row versions' hashes, or 0)."""
        version = self.counting(table)
        if version is None:
            return max(self.ctx.d.execute(statement, params).rowcount, 0), 0
        row = self.ctx.d.fetchone(f"WITH w AS ({statement} RETURNING {version} AS h) "
                              "SELECT count(*), coalesce(sum(h), 0)::text FROM w", params)
        assert row is not None
        self.writes[table][2] += int(row[0])
        return int(row[0]), int(row[1])

    def write_into_empty(self, statement: str, table: TableName, target: str) -> tuple[int, int]:
        """``write`` for an INSERT into ``table`` (``target``: its SQL name), empty until now, in a savepoint
        of its own (the caller's): every row it inserts has the same ``xmin``, so the hashes add up to the
        row count times the hash of one of them, read back (as ``Writer.direct`` does after its COPY) instead
        of returned row by row. A row read back that is not this statement's (another session's commit
        since the table was found empty) leaves a fingerprint no table can match: the next run compares
        every row."""
        version = self.counting(table)
        return self.insert_one_version(statement, table, f"SELECT {version}::text FROM {target} LIMIT 1")

    def insert_one_version(self, statement: str, table: TableName, one: str) -> tuple[int, int]:
        """``write`` for an INSERT into ``table`` in a savepoint of its own (the caller's): every row it inserts
        has the same ``xmin``, so the hashes add up to the row count times the hash of one of them, which
        ``one`` reads back (SQL giving, as text, the row version hash of a row this statement inserted), instead
        of each being returned and added up. No row read back (hidden from this session, say): the fingerprint
        is not followed for this run, and the next run compares every row."""
        version = self.counting(table)
        n = max(self.ctx.d.execute(statement).rowcount, 0)
        if version is None or not n:
            return n, 0
        row = self.ctx.d.fetchone(one)
        if row is None or row[0] is None:
            self.known[table] = None
            return n, 0
        self.writes[table][2] += n
        return n, n * int(row[0])

    def save(self) -> None:
        """Record what this run left (large fixtures only: for small ones skipping saves nothing)."""
        final: dict[TableName, list[Any] | None] = {}
        for tracker, old in self.trackers:
            if old is None and tracker.rows <= self.ctx.batch_size:
                continue
            record = tracker.record()
            for t in tracker.tables:
                if t not in final:
                    final[t] = self.followed_to_the_end(t)
            record.state = {str(t): final[t] for t in tracker.tables}
            if record != old:
                from .skip_tracker import save_record

                save_record(self.ctx.d, tracker.fixture, str(tracker.table), record)


__all__ = ["Fingerprints"]
