"""The migration runner: planning, applying and rolling back, on one path for both directions.

The history table is in history.py, the checks against it in validation.py, what a run reports in
reports.py, and everything that differs by database (the lock, splitting statements) in the adapter.

One run, step by step:

1. take the lock (the adapter's migration session: PostgreSQL polls a session advisory lock on the
   applying connection, SQLite takes ``BEGIN IMMEDIATE`` with a busy timeout);
2. create the history table on first use and read it;
3. validate the files against the history (changed, missing, out of order, failed) and refuse with
   exit 3 before anything runs; refuse statements that cannot run in a transaction inside a
   transactional migration, naming the flag to set;
4. apply each migration: transactional ones as one transaction with their history row;
   non-transactional ones statement by statement in autocommit, with progress recorded so a failure
   leaves a ``failed`` row that blocks later runs until a human records the outcome (``resolve``).

On PostgreSQL a transactional ``up`` section is sent as one query with its history rows (see
``_in_one_query``); a failure there runs it again statement by statement. Everything else is sent
statement by statement, and errors are mapped back to the file, line and column.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path

from .. import db as dbmod
from .._record import dataclass
from ..db.base import MigrationSession
from ..db.migration import (
    InvalidIndex,
    RecordApplied,
    Watcher,
    lock_lost,
)
from ..errors import (
    DatabaseError,
    Location,
    LockLost,
    MigrationError,
    MigrationFileError,
    RefusedError,
    SeedkitError,
    UsageError,
)
from ..urls import DatabaseURL
from . import repeatable, split_cache
from .files import Migration, Section, display_path, template_hint, version_order
from .history import APPLIED, FAILED, RUNNING, History, HistoryRow, who
from .progress import _StatementWatch, first_line
from .repeatable import Repeatable
from .reports import (
    MigrationRun,
    Progress,
    ResolveReport,
    RunReport,
    StatementRun,
    StatusEntry,
    StatusReport,
    VerifyReport,
)
from .split import Statement, copies_with_client, line_col, needs_no_transaction, split, split_for_run
from .validation import Problem, drift_error, find_problems

# Errors with which the server stopped a statement from outside it, or for the moment: a cancel
# (pg_cancel_backend, statement_timeout), a lock not granted in time, a deadlock, a serialization
# failure. Running the migration again after them (the fallback of a failed one-query migration) is
# not what the plain path does: a cancelled migration ran again, one that timed out on a lock could be
# applied on the second try. They are located where the one query stopped instead.
_STOPPED = frozenset({"57014", "55P03", "40P01", "40001"})


class _Unlocated(Exception):  # noqa: N818 - not an error of its own: the statement's, located by _locating
    """A statement of a transactional migration failed; raised through its transaction's rollback."""

    def __init__(self, stmt: Statement, cause: DatabaseError):
        super().__init__(cause.message)
        self.stmt, self.cause = stmt, cause


def application_name(role: str) -> str:
    return f"seedkit migrate {role} {socket.gethostname()}:{os.getpid()}"[:63]


def open_session(url: DatabaseURL, table: str, *, lock_timeout: float, connect_timeout: float = 10.0,
                 create: bool = True) -> tuple[MigrationSession, History]:
    """Connect for a run; ``create=False`` (read-only commands) never creates a SQLite file."""
    db = dbmod.connect(url, wait=connect_timeout, application_name=application_name("run"),
                       busy_timeout=lock_timeout, create=create)
    try:
        history = History(db, table)
    except BaseException:
        db.close()
        raise
    return db.migration_session(history.name, lock_timeout), history


# -- planning --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Planned:
    migration: Migration
    section: Section
    statements: list[Statement]
    direction: str = "up"  # "up" applies the migration, "down" rolls it back

    @property
    def transactional(self) -> bool:
        return self.section.transactional


def plan_section(m: Migration, section: Section, dialect: str, server_version: int | None,
                 direction: str, *, names: tuple[str, ...] | None = None) -> Planned:
    """Split and check a section. With ``names`` (the history tables) the statements of a transactional
    section only answer the runner's questions (``split_for_run``), which is all applying it needs."""
    if names is not None and section.transactional:
        statements = split_for_run(section.sql, dialect, section.line_offset, names=names,
                                   server_version=server_version)
    else:
        statements = split(section.sql, dialect, section.line_offset)
    return checked_plan(m, section, statements, dialect, server_version, direction)


def checked_plan(m: Migration, section: Section, statements: list[Statement], dialect: str,
                 server_version: int | None, direction: str) -> Planned:
    """``Planned`` from a section's statements, refusing one that cannot run in the section's transaction."""
    if section.transactional:
        for stmt in statements:
            reason = needs_no_transaction(stmt, dialect, server_version)
            if reason:
                raise MigrationFileError(
                    f"{reason} cannot run inside a transaction, and the {direction} section of migration "
                    f"{m.label} runs in one; nothing was run",
                    location=Location(file=display_path(section.path), line=stmt.line, column=stmt.column),
                    hint=_flag_hint(m, direction, reason))
    for stmt in statements:
        what = copies_with_client(stmt, dialect)
        if what:
            raise MigrationFileError(
                f"{what} exchanges rows with the client, as psql does with the lines after it, but seedkit "
                f"sends the SQL alone, so the {direction} section of migration {m.label} cannot run it; "
                "nothing was run",
                location=Location(file=display_path(section.path), line=stmt.line, column=stmt.column),
                hint="write the rows as INSERT … VALUES (pg_dump --inserts writes them so), COPY from a file "
                     "the server can read, or load them as seed data (seedkit run)")
    return Planned(m, section, statements, direction)


def _flag_hint(m: Migration, direction: str, reason: str = "") -> str:
    if reason.startswith("transaction control"):
        # golang-migrate style files often wrap themselves in BEGIN; … COMMIT;: that is what seedkit
        # already does, and one statement per migration would be the wrong advice
        marker = (f"change its marker line to '-- migrate:{direction} transaction:false'" if m.layout == "file"
                  else "make its first line '-- seedkit: transaction=false'")
        return ("remove the transaction control (BEGIN, COMMIT, …): seedkit already runs the section in one "
                f"transaction; to manage transactions yourself instead, {marker}")
    advice = "(and keep such a migration to that one statement: a failure half-way cannot be rolled back)"
    if m.layout == "file":
        return (f"run this section outside a transaction: change its marker line to "
                f"'-- migrate:{direction} transaction:false' {advice}")
    return ("run this file outside a transaction: make its first line "
            f"'-- seedkit: transaction=false' {advice}")


def _add_down_advice(m: Migration) -> str:
    """How to give ``m`` a down section, in its own layout."""
    if m.layout == "pair":
        return f"add {m.path.name[: -len('.up.sql')]}.down.sql next to {m.path.name}"
    if m.layout == "folder":
        return f"add down.sql to {m.path.parent.name}/"
    return "add a '-- migrate:down' section"


def parse_target(value: str | int) -> int:
    text = str(value).strip().replace("-", "")
    if not text.isdigit():
        raise UsageError(f"bad version {value!r}: versions are numbers (dashes are ignored)")
    return int(text)


# -- invalid indexes left by a failed concurrent build ----------------------------------------------

def invalid_index_text(indexes: list[InvalidIndex]) -> str:
    names = ", ".join(str(i) for i in indexes)
    noun = "index" if len(indexes) == 1 else "indexes"
    drops = " ".join(i.drop for i in indexes)
    return f"it left the invalid {noun} {names} (drop {'it' if len(indexes) == 1 else 'them'} with: {drops})"


def invalid_index_hint(indexes: list[InvalidIndex], version: str) -> str:
    drops = " ".join(i.drop for i in indexes)
    return (f"the concurrent index build failed and left an invalid index; run {drops} then "
            f"'seedkit migrate resolve {version} --rolled-back' and 'seedkit migrate up' "
            "(resolve --applied is refused while the index is invalid)")


# -- the runner ------------------------------------------------------------------------------------

class Runner:
    """Applies and rolls back migrations on one database. Use as a context manager."""

    def __init__(self, migrations: list[Migration], url: DatabaseURL, *, table: str = "schema_migrations",
                 lock_timeout: float = 60.0, connect_timeout: float = 10.0, create: bool = True,
                 repeatables: list[Repeatable] | None = None, cache_root: Path | None = None):
        self.migrations = migrations
        self.cache_root = cache_root  # the project root, whose .seedkit/cache keeps cuts (split_cache.py)
        self.repeatables = repeatables or []
        self.url = url
        self.table = table
        self.lock_timeout = lock_timeout
        self.session, self.history = open_session(url, table, lock_timeout=lock_timeout,
                                                   connect_timeout=connect_timeout, create=create)
        self.db = self.session.db
        # whether this database can apply a migration as one query (see _in_one_query)
        self._one_query = type(self.session).applied_in_one_query is not MigrationSession.applied_in_one_query
        self.watch: Watcher | None = None
        self._who: str | None = None  # user@host for the audit log, asked once per run
        self._statements = _StatementWatch(None)
        # a migration without a transaction under way: (statements done, the one running), else None
        self._outside: tuple[int, Statement | None] | None = None
        self._opened: Statement | None = None  # the statement that opened a transaction in such a migration

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    # -- reading ----------------------------------------------------------------------------------
    def current_version(self, rows: dict[str, HistoryRow]) -> str | None:
        applied = [r for r in rows.values() if r.status == APPLIED and r.number is not None]
        return max(applied, key=lambda r: r.order).version if applied else None

    def _by_version(self, target: int) -> Migration:
        for m in self.migrations:
            if m.number == target:
                return m
        raise UsageError(f"no migration with version {target} in the migrations folder")

    # -- up ---------------------------------------------------------------------------------------
    def up(self, *, to: str | int | None = None, dry_run: bool = False, allow_out_of_order: bool = False,
           progress: Progress | None = None, watch: Watcher | None = None,
           reapply_repeatables: bool = False) -> RunReport:
        started = time.perf_counter()
        target = parse_target(to) if to is not None else None
        if target is not None:
            self._by_version(target)
        report = RunReport(database=str(self.url), direction="up", dry_run=dry_run)
        server = self.session.server_version_num
        self.watch = watch
        self._statements = _StatementWatch(watch)
        with self._statements_closed(), self._maybe_locked(dry_run, watch):
            rows = self.history.rows()
            report.version_before = report.version_after = self.current_version(rows)
            problems = find_problems(self.migrations, rows, allow_out_of_order=allow_out_of_order)
            if problems:
                raise drift_error(self._with_invalid_indexes(problems))
            known = {r.number for r in rows.values()}
            pending = [m for m in self.migrations
                       if m.number not in known and (target is None or m.order <= version_order(target))]
            # Split and check everything first: a refused statement stops the run before anything runs.
            names = (self.history.name.name, self.history.log_name.name)
            cache = self._split_cache(server) if pending else None
            plans = [self._plan_up(m, server, names, cache) for m in pending]
            self._refuse_history_changes(plans)
            if cache is not None:
                cache.save()
            later = repeatable.prepare(self, everything=reapply_repeatables) if target is None else None
            for planned in plans:
                m = planned.migration
                run = MigrationRun(m.version, m.name, display_path(planned.section.path), "up",
                                   len(planned.statements), planned.transactional)
                if not dry_run and not self._guarded(planned, run):
                    continue  # another runner applied it meanwhile
                report.migrations.append(run)
                if report.version_after is None or m.order > version_order(report.version_after):
                    report.version_after = m.version
                if progress:
                    progress(run)
            if later is not None:
                report.migrations += repeatable.apply(self, later, dry_run=dry_run, progress=progress)
        report.elapsed_ms = (time.perf_counter() - started) * 1000
        return report

    def _split_cache(self, server: int | None) -> split_cache.SplitCache | None:
        if self.cache_root is None or not self.db.keeps_splits or not split_cache.enabled():
            return None
        tables = (str(self.history.name.schema), self.history.name.name, str(self.history.log_name.schema),
                  self.history.log_name.name)
        return split_cache.SplitCache(self.cache_root, server_version=server, tables=tables)

    def _plan_up(self, m: Migration, server: int | None, names: tuple[str, ...],
                 cache: split_cache.SplitCache | None) -> Planned:
        """``plan_section`` for an up section, through the split cache when there is one: a section cut
        before is not cut again, and the parser is not loaded for it."""
        if cache is not None:
            statements = cache.get(m.up)
            if statements is not None:
                return checked_plan(m, m.up, statements, self.db.dialect, server, "up")
        planned = plan_section(m, m.up, self.db.dialect, server, "up", names=names)
        if cache is not None:
            cache.put(m.up, planned.statements, [
                (needs_no_transaction(stmt, self.db.dialect, server),
                 self.db.touches_history(stmt, self.history.name, self.history.log_name))
                for stmt in planned.statements])
        return planned

    @contextmanager
    def _statements_closed(self) -> Iterator[None]:
        try:
            yield
        finally:
            self._statements.close()

    def _refuse_history_changes(self, plans: list[Planned]) -> None:
        """Refuse, before anything runs, a migration that would drop or change the history table."""
        for planned in plans:
            for stmt in planned.statements:
                what = self.db.touches_history(stmt, self.history.name, self.history.log_name)
                if what:
                    m = planned.migration
                    raise MigrationFileError(
                        f"migration {m.label} runs {what}, and {self.history.name} is where seedkit records "
                        "the migrations it applied; nothing was run",
                        location=Location(file=display_path(planned.section.path), line=stmt.line,
                                          column=stmt.column),
                        hint="this is usually another tool's table of the same name: give seedkit its own, "
                             "e.g. [migrations] table = \"seedkit_migrations\" in seedkit.toml")

    @contextmanager
    def _maybe_locked(self, dry_run: bool, watch: Watcher | None = None) -> Iterator[None]:
        if dry_run:
            yield
            return
        with self.session.locked(watch):
            self.history.ensure()
            yield

    def _guarded(self, planned: Planned, run: MigrationRun) -> bool:
        """Run ``apply`` after checking the lock; a lost connection becomes a clear ``LockLost``."""
        label = planned.migration.label
        self._outside, self._opened = None, None
        try:
            if not self._one_query_possible(planned):
                self.session.check_lock(label)  # (one query checks the lock with its history row)
            return self._run_one(planned, run)
        except LockLost as exc:
            cause = exc.__cause__
            if planned.transactional or not (isinstance(cause, DatabaseError) and self.db.connection_lost(cause)):
                raise
            raise self._lost_outside(planned, cause) from cause
        except DatabaseError as exc:
            if self.db.connection_lost(exc):
                if not planned.transactional:
                    raise self._lost_outside(planned, exc) from exc
                lost = lock_lost(label, exc)
                lost.location = exc.location
                if self._recorded_since(planned):  # the server committed it as the connection went
                    lost.message = lost.message.replace(
                        "the migration's open transaction was rolled back",
                        "the migration is recorded as " + ("applied" if planned.direction == "up" else
                                                          "rolled back") +
                        ": its transaction committed before the connection was lost (or another run "
                        f"{'applied' if planned.direction == 'up' else 'rolled back'} it since)")
                    lost.hint = "check with 'seedkit migrate status'; nothing is left to do for it"
                raise lost from exc
            raise

    def _recorded_since(self, planned: Planned) -> bool:
        """After the run's connection was lost applying a transactional migration: whether the history
        already says it is done, asked on a new connection (the loss may have come after the server
        committed it, as the answer to COMMIT was on its way). False when that cannot be asked."""
        try:
            db = dbmod.connect(self.url, wait=2.0, application_name=application_name("check"), create=False)
        except SeedkitError:
            return False
        try:
            row = db.fetchone(f"SELECT status FROM {self.history.table} WHERE version = {self.history.p}",
                              [planned.migration.version])
        except SeedkitError:
            return False
        finally:
            with suppress(Exception):
                db.close()
        if planned.direction == "up":
            return row is not None and row[0] == APPLIED
        return row is None

    def _lost_outside(self, planned: Planned, exc: DatabaseError) -> LockLost:
        """The connection of a migration that runs without a transaction was lost: say what had run."""
        m = planned.migration
        lost = lock_lost(m.label, exc)
        lost.location = exc.location
        head = lost.message.split("; the migration lock", 1)[0] + "; the migration lock ended with it"
        if self._outside is None:  # not started: the lock was checked, or the history read, first
            lost.message = f"{head}, before the migration (which runs without a transaction) had started: " \
                           "nothing of it ran"
            lost.hint = ("another run may have taken over: check with 'seedkit migrate status', then run "
                         f"'seedkit migrate {planned.direction}' again")
            return lost
        done, current = self._outside
        total = len(planned.statements)
        flight = "" if current is None else \
            f" (the one it was running, line {current.line}, may have finished too)"
        if planned.direction == "up":
            lost.message = (f"{head}; the migration runs without a transaction: {done} of {total} statement(s) had "
                            f"run and stay done{flight}, and its history row says 'running'")
            lost.hint = ("check what it did, then record the outcome with 'seedkit migrate resolve "
                         f"{m.version} --applied' or '--rolled-back'")
        else:
            lost.message = (f"{head}; the down section runs without a transaction: {done} of {total} statement(s) "
                            f"had run and stay done{flight}, and the migration is still recorded as applied")
            lost.hint = "finish or undo them by hand; 'seedkit migrate status' shows the history"
        return lost

    def _run_one(self, planned: Planned, run: MigrationRun) -> bool:
        """Apply (up) or roll back (down) one migration: the one path both directions take.

        A transactional migration runs as one transaction with its history change; a non-transactional
        one statement by statement, its progress in the history row (up). ``False`` when another run
        did it meanwhile (the history is read again just before)."""
        m = planned.migration
        up = planned.direction == "up"
        t0 = time.perf_counter()

        def still_to_do() -> bool:
            row = self.history.get(m.version)
            return row is None if up else (row is not None and row.status == APPLIED)

        if self._in_one_query(planned, run):
            return True
        t0 = time.perf_counter()
        if planned.transactional:
            with self._locating(planned), self.session.migration_transaction():
                if not still_to_do():
                    return False
                for stmt in planned.statements:
                    self._execute(planned, stmt, done=None, run=run)
                self.session.check_lock(m.label)  # still ours at commit time (or nothing commits)
                ms = int((time.perf_counter() - t0) * 1000)
                if up:
                    self.history.insert(m, status=APPLIED, execution_ms=ms)
                else:
                    self.history.delete(m.version)
                self.history.log(m.version, m.name, planned.direction, execution_ms=ms)
        else:
            with self.session.outside_transaction():
                if not still_to_do():
                    return False
                if up:
                    self.history.insert(m, status=RUNNING, applied=False)
                # ``done``: the statements whose work is committed. A statement may open a transaction
                # (BEGIN): what runs after it commits with its COMMIT, and is counted (and its progress
                # written, outside that transaction) then; ``_opened`` is that BEGIN until then.
                done, self._opened = 0, None
                self._outside = (0, None)  # started: (statements done, the one running), for _lost_outside
                for i, stmt in enumerate(planned.statements):
                    self._outside = (done, stmt)
                    self._execute(planned, stmt, done=done, run=run)
                    if self.db.in_transaction:
                        self._opened = self._opened or stmt
                    else:
                        done, self._opened = i + 1, None
                        if up:
                            self.history.progress(m.version, done)
                    self._outside = (done, None)
                if self._opened is not None:
                    self._left_open(planned, done)
                ms = int((time.perf_counter() - t0) * 1000)
                if up:
                    self.history.update(m, status=APPLIED, execution_ms=ms,
                                        statements_done=len(planned.statements), expect=RUNNING)
                else:
                    self.history.delete(m.version)
                self.history.log(m.version, m.name, planned.direction, execution_ms=ms,
                                 detail="without a transaction")
        run.execution_ms = (time.perf_counter() - t0) * 1000
        return True

    def _one_query_possible(self, planned: Planned) -> bool:
        """A transactional up section the parser accepted (else it will fail), without COPY … FROM
        STDIN, on a database that can apply it as one query."""
        return planned.transactional and planned.direction == "up" and self._one_query and \
            all(stmt.node is not None and stmt.keyword() != "COPY" for stmt in planned.statements)

    def _in_one_query(self, planned: Planned, run: MigrationRun) -> bool:
        """Apply a transactional migration as one query with its history rows (where the dialect can:
        ``MigrationSession.applied_in_one_query``); ``False`` when it was not applied that way.

        Any error rolls the whole query back and returns ``False``: the migration then runs again
        statement by statement, which locates the error in the file exactly as it always does (and
        refuses, records or skips exactly as it always does). A lost connection raises, as there."""
        if not self._one_query_possible(planned):
            return False
        m = planned.migration
        t0 = time.perf_counter()
        if self._who is None:
            self._who = who()
        results = self.session.applied_in_one_query(planned.section.sql, planned.statements, RecordApplied(
            self.history.table, self.history.log_table, m.version, m.name, m.checksum, self._who,
            datetime.now(timezone.utc)))
        if results is None:
            return False
        where = display_path(planned.section.path)
        steps: list[StatementRun] = []
        failed = False
        stopped: tuple[Statement, DatabaseError] | None = None  # a statement stopped from outside (_STOPPED)
        try:
            for stmt in planned.statements:
                text = first_line(stmt.sql)
                started = time.perf_counter()
                with self._statements.statement(m.label, f"{where}:{stmt.line}", text):
                    # the result ahead of its own (the BEGIN, or the previous statement's flush), then its own
                    for _ in range(2):
                        outcome = next(results, None)
                        failed = outcome is not None
                        if failed:
                            if outcome.sqlstate in _STOPPED and getattr(outcome, "position", None) is None:
                                stopped = (stmt, outcome)
                            break
                if failed:
                    break
                steps.append(StatementRun(stmt.line, stmt.column, text, (time.perf_counter() - started) * 1000))
            for outcome in results:  # the last flush, the history rows and the COMMIT
                failed = failed or outcome is not None
        finally:
            results.close()
        if failed or self.db.in_transaction:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            if stopped is not None:  # the plain path's error for it, not a second try
                raise self._locate(planned, *stopped) from stopped[1]
            return False
        run.statements_run.extend(steps)
        run.execution_ms = (time.perf_counter() - t0) * 1000
        return True

    def _execute(self, planned: Planned, stmt: Statement, *, done: int | None,
                 run: MigrationRun | None = None) -> None:
        """Run one statement; on failure raise a ``MigrationError`` located in the file.

        ``done`` is the number of statements of a non-transactional migration already run (``None``
        for a transactional one); a failure then leaves a ``failed`` row behind (up), or a ``down
        failed`` entry in the log with the migration still recorded as applied (down).
        """
        text = first_line(stmt.sql)
        where = f"{display_path(planned.section.path)}:{stmt.line}"
        t0 = time.perf_counter()
        try:
            with self._statements.statement(planned.migration.label, where, text):
                self.db.execute(stmt.sql)
            if run is not None:
                run.statements_run.append(StatementRun(stmt.line, stmt.column, text,
                                                       (time.perf_counter() - t0) * 1000))
        except DatabaseError as exc:
            if self.db.connection_lost(exc):
                raise  # _guarded turns it into LockLost; there is no connection to record a failure on
            if done is None:  # located once its transaction is rolled back (_locating)
                raise _Unlocated(stmt, exc) from exc
            if self._opened is not None:  # in the transaction a statement opened: end it first
                self._roll_back_opened()
            error = self._locate(planned, stmt, exc)
            if planned.direction == "down":
                self._down_failed(planned, done, error)
            else:
                m = planned.migration
                self._record_failure(planned, done, error)
                error.hint = (f"migration {m.label} runs without a transaction: {done} of "
                              f"{len(planned.statements)} statement(s) had run and stay done"
                              f"{self._rolled_back_text()}. Fix the "
                              f"database by hand, then run 'seedkit migrate resolve {m.version} --applied' "
                              f"or '--rolled-back'; 'up' refuses to run until then")
                invalid = self._invalid_indexes(planned)
                if invalid:
                    error.hint = invalid_index_hint(invalid, m.version)
            raise error from exc

    @contextmanager
    def _locating(self, planned: Planned) -> Iterator[None]:
        """Around a migration's transaction: a failed statement is located in the file (which may load
        the parser) after the transaction was rolled back, not while it holds the migration's locks,
        idle in an aborted transaction that ``idle_in_transaction_session_timeout`` would end."""
        try:
            yield
        except _Unlocated as failed:
            raise self._locate(planned, failed.stmt, failed.cause) from failed.cause

    def _roll_back_opened(self) -> None:
        """End the transaction a statement of a migration without one opened (BEGIN) and left open or
        failed in: what ran in it is undone, and the history is written outside it."""
        with suppress(DatabaseError):  # (a broken connection: the server rolls it back)
            self.db.execute("ROLLBACK")

    def _rolled_back_text(self) -> str:
        opened = self._opened
        return "" if opened is None else \
            f" (the transaction its statement on line {opened.line} opened was rolled back, and what ran in it)"

    def _left_open(self, planned: Planned, done: int) -> None:
        """A migration without a transaction ended inside one of its own (a BEGIN without its COMMIT):
        closing the connection would roll it back, after the run reported the migration applied."""
        m = planned.migration
        opened = self._opened
        assert opened is not None
        error = MigrationError(
            f"migration {m.label} runs without a transaction but its statement '{first_line(opened.sql)}' opened "
            "one, and no COMMIT ended it; it was rolled back with what ran in it",
            location=Location(file=display_path(planned.section.path), line=opened.line, column=opened.column))
        self._roll_back_opened()
        if planned.direction == "down":
            self._down_failed(planned, done, error)
        else:
            self._record_failure(planned, done, error)
            error.hint = (f"{done} of {len(planned.statements)} statement(s) had run and stay done. End the "
                          "transaction in the file (COMMIT), or drop the BEGIN and let seedkit run the migration "
                          "in one (remove transaction:false); fix the database by hand, then run "
                          f"'seedkit migrate resolve {m.version} --applied' or '--rolled-back'")
        self._opened = None
        raise error

    def _invalid_indexes(self, planned: Planned) -> list[InvalidIndex]:
        try:
            return self.db.invalid_indexes(planned.statements)
        except DatabaseError:  # pragma: no cover - the connection broke: the row still says failed
            return []

    def _failed_invalid_indexes(self, version: str) -> list[InvalidIndex]:
        """Invalid indexes left by the failed migration ``version`` (re-split from its file)."""
        m = next((m for m in self.migrations if m.version == version), None)
        if m is None:
            return []
        try:
            statements = split(m.up.sql, self.db.dialect, m.up.line_offset)
        except MigrationFileError:
            return []
        return self.db.invalid_indexes(statements)

    def _with_invalid_indexes(self, problems: list[Problem],
                              rows: dict[str, HistoryRow] | None = None) -> list[Problem]:
        """Failed migrations that left invalid indexes say which, and the exact statement to drop them.

        With ``rows`` (status and verify, which do not take the lock), a ``running`` migration is first
        checked against the lock: while another run holds it, the migration is in progress, not broken,
        and its half-built index must not be dropped."""
        out: list[Problem] = []
        holder = None
        if rows is not None and any(r.status == RUNNING for r in rows.values()):
            holder = self.session.busy_holder()
        for p in problems:
            row = rows.get(p.version) if rows is not None else None
            if p.kind == "failed" and holder and row is not None and row.status == RUNNING:
                out.append(dataclasses.replace(
                    p, kind="running", message=f"migration {p.version}{'_' + p.name if p.name else ''} is being "
                    f"applied right now without a transaction ({holder}); do not touch it until it ends"))
                continue
            if p.kind == "failed":
                invalid = self._failed_invalid_indexes(p.version)
                if invalid:
                    p = dataclasses.replace(p, kind="invalid_index",
                                            message=f"{p.message}; {invalid_index_text(invalid)}",
                                            invalid_indexes=tuple(invalid))
            out.append(p)
        return out

    def _record_failure(self, planned: Planned, done: int, error: MigrationError) -> None:
        m = planned.migration
        detail = f"{error.location}: {error.message}" if error.location else error.message
        try:
            self.history.update(m, status=FAILED, statements_done=done, error=detail, applied=False,
                                expect=RUNNING)
            self.history.log(m.version, m.name, "failed", detail=detail)
        except SeedkitError:  # pragma: no cover - the connection broke: the RUNNING row says enough
            pass

    def _locate(self, planned: Planned, stmt: Statement, exc: DatabaseError) -> MigrationError:
        section = planned.section
        offset = None
        found = self.db.error_offset(exc, stmt)
        if found is not None:
            offset = stmt.offset + found
        if offset is not None:
            line, column = line_col(section.sql, offset, section.line_offset)
        else:
            line, column = stmt.line, stmt.column
        inline = self.db.error_in_code_block(exc, stmt, section.sql, section.line_offset)
        if inline is not None:
            line, column = inline
        sqlstate = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        m = planned.migration
        transaction = "rolled back" if planned.transactional else "stopped"
        message = f"{exc.message}{sqlstate}; migration {m.label} {transaction}"
        hint = exc.hint
        placeholder = template_hint(section.sql, exc.message)
        if placeholder:
            hint = f"{hint}; {placeholder}" if hint else placeholder
        if planned.transactional:
            hint = (f"{hint}; " if hint else "") + \
                "the whole migration was rolled back; earlier migrations stay applied"
        return MigrationError(message, sqlstate=exc.sqlstate, hint=hint,
                              location=Location(file=display_path(section.path), line=line, column=column))

    # -- down -------------------------------------------------------------------------------------
    def down(self, *, steps: int | None = None, to: str | int | None = None, dry_run: bool = False,
             progress: Progress | None = None, watch: Watcher | None = None) -> RunReport:
        if steps is not None and to is not None:
            raise UsageError("give either --steps or --to, not both")
        if steps is not None and steps < 1:
            raise UsageError("--steps must be 1 or more")
        target = parse_target(to) if to is not None else None
        started = time.perf_counter()
        report = RunReport(database=str(self.url), direction="down", dry_run=dry_run)
        server = self.session.server_version_num
        self.watch = watch
        self._statements = _StatementWatch(watch)
        with self._statements_closed(), self._maybe_locked(dry_run, watch):
            rows = self.history.rows()
            report.version_before = report.version_after = self.current_version(rows)
            problems = find_problems(self.migrations, rows, allow_out_of_order=True)
            if problems:
                raise drift_error(self._with_invalid_indexes(problems))
            applied = sorted((r for r in rows.values() if r.status == APPLIED and r.number is not None),
                             key=lambda r: r.order, reverse=True)
            if target is not None:
                if target != 0 and not any(r.number == target for r in applied):
                    raise UsageError(f"version {to} is not applied, so the database cannot be rolled back "
                                     "to it",
                                     hint="seedkit migrate status lists the applied versions; --to 0 rolls "
                                          "everything back")
                chosen = [r for r in applied if target == 0 or r.order > version_order(target)]
            else:
                chosen = applied[: steps or 1]
            by_number = {m.number: m for m in self.migrations}
            migrations = [by_number[r.number] for r in chosen if r.number is not None]
            no_down = [m for m in migrations if m.down is None]
            if no_down:
                names = ", ".join(display_path(m.entry) for m in no_down[:5])
                if len(no_down) > 5:
                    names += f" and {len(no_down) - 5} more"
                raise MigrationFileError(f"cannot roll back: no down section in {names}; nothing was run",
                                         location=Location(file=display_path(no_down[0].entry)),
                                         hint=f"{_add_down_advice(no_down[0])}, or roll forward with a new "
                                              "migration instead")
            plans = [plan_section(m, m.down, self.db.dialect, server, "down")  # type: ignore[arg-type]
                     for m in migrations]
            self._refuse_history_changes(plans)
            for planned in plans:
                run = MigrationRun(planned.migration.version, planned.migration.name,
                                   display_path(planned.section.path), "down", len(planned.statements),
                                   planned.transactional)
                if not dry_run and not self._guarded(planned, run):
                    continue
                report.migrations.append(run)
                done = {r.version for r in report.migrations}
                rest = [r for r in applied if r.version not in done]
                report.version_after = rest[0].version if rest else None
                if progress:
                    progress(run)
        report.elapsed_ms = (time.perf_counter() - started) * 1000
        return report

    def _down_failed(self, planned: Planned, done: int, error: MigrationError) -> None:
        m = planned.migration
        self.history.log(m.version, m.name, "down failed",
                         detail=f"{error.location}: {error.message} after {done} statement(s)")
        done_text = ("none of its statements had run, so the database is as it was" if done == 0
                     else f"{done} of {len(planned.statements)} statement(s) had run and stay "
                          "done: finish or undo them by hand")
        done_text += self._rolled_back_text()
        error.hint = (f"the down section of {m.label} runs without a transaction: {done_text}; "
                      "the migration is still recorded as applied. A down section that "
                      "cannot work is best replaced by a new migration that undoes the change "
                      "(seedkit migrate new NAME)")

    # -- status and verify ------------------------------------------------------------------------
    def status(self, *, allow_out_of_order: bool = False) -> StatusReport:
        rows = self.history.rows()
        problems = self._with_invalid_indexes(
            find_problems(self.migrations, rows, allow_out_of_order=allow_out_of_order), rows)
        by_kind = {("failed" if p.kind in ("invalid_index", "running") else p.kind, p.version): p
                   for p in problems}
        by_number = {r.number: r for r in rows.values() if r.number is not None}
        report = StatusReport(database=str(self.url), current_version=self.current_version(rows),
                              problems=problems)
        on_disk = set()
        for m in self.migrations:
            on_disk.add(m.number)
            row = by_number.get(m.number)
            entry = StatusEntry(m.version, m.name, "pending", display_path(m.entry))
            if row is not None:
                entry.applied_at, entry.execution_ms = row.applied_at, row.execution_ms
                if row.status != APPLIED:
                    problem = by_kind[("failed", m.version)]
                    entry.state = "running" if problem.kind == "running" else "failed"
                    entry.note = problem.message
                    entry.invalid_indexes = [i.to_dict() for i in problem.invalid_indexes]
                elif ("changed", m.version) in by_kind:
                    entry.state, entry.note = "changed", "edited after it was applied"
                else:
                    entry.state = "applied"
            elif ("out_of_order", m.version) in by_kind:
                entry.note = "out of order: older than the newest applied migration"
            report.entries.append(entry)
        for row in rows.values():
            if row.number not in on_disk:
                report.entries.append(StatusEntry(row.version, row.name, "missing", None, row.applied_at,
                                                  row.execution_ms, "applied, but the file is gone"))
        report.entries.sort(key=lambda e: (version_order(e.version) if e.version.replace("-", "").isdigit()
                                           else (-1, 0), e.version))
        report.entries += repeatable.status_entries(self)
        return report

    def verify(self, *, allow_out_of_order: bool = False) -> VerifyReport:
        rows = self.history.rows()
        problems = self._with_invalid_indexes(
            find_problems(self.migrations, rows, allow_out_of_order=allow_out_of_order), rows)
        # Every file must also split cleanly and respect its transaction flag, before it ships.
        for m in self.migrations:
            for direction, section in (("up", m.up), ("down", m.down)):
                if section is None:
                    continue
                try:
                    plan_section(m, section, self.db.dialect, self.session.server_version_num, direction)
                except MigrationFileError as exc:
                    problems.append(Problem("invalid", m.version, m.name, exc.message,
                                            str(exc.location) if exc.location else display_path(m.entry)))
        problems += repeatable.verify_problems(self)
        return VerifyReport(database=str(self.url), checked=len(self.migrations) + len(self.repeatables),
                            problems=problems)

    # -- resolve ----------------------------------------------------------------------------------
    def resolve(self, version: str | int, *, applied: bool) -> ResolveReport:
        """Record a human's decision about a failed non-transactional migration."""
        number = parse_target(version)
        with self.session.locked():
            self.history.ensure()
            rows = self.history.rows()
            row = next((r for r in rows.values() if r.number == number), None)
            if row is None or row.status == APPLIED:
                state = "not in the history" if row is None else "applied"
                raise UsageError(f"migration {version} is {state}: there is no failed migration to resolve",
                                 hint="resolve records the outcome of a failed non-transactional migration; "
                                      "seedkit migrate status shows which one failed")
            detail = f"was {row.status} after {row.statements_done} statement(s)"
            if row.error:
                detail += f": {row.error}"
            invalid = self._failed_invalid_indexes(row.version)
            if invalid:
                decision = "applied" if applied else "rolled back"
                raise RefusedError(
                    f"refusing to record migration {row.version} as {decision}: {invalid_index_text(invalid)}",
                    hint=invalid_index_hint(invalid, row.version))
            if applied:
                m = next((m for m in self.migrations if m.number == number), None)
                if m is None:
                    raise MigrationFileError(f"migration {version} is not in the migrations folder, so it "
                                             "cannot be recorded as applied",
                                             hint="restore its file first, or use --rolled-back")
                with self.session.migration_transaction():
                    self.history.update(m, status=APPLIED, statements_done=row.statements_done,
                                        expect=row.status)
                    self.history.log(m.version, m.name, "resolved applied", detail=detail)
            else:
                with self.session.migration_transaction():
                    self.history.delete(row.version)
                    self.history.log(row.version, row.name, "resolved rolled-back", detail=detail)
            return ResolveReport(database=str(self.url), version=row.version, name=row.name,
                                 decision="applied" if applied else "rolled-back", previous_status=row.status,
                                 statements_done=row.statements_done)
