"""The migration runner: history table, lock, validation, applying and rolling back.

One run, step by step:

1. take the lock (PostgreSQL: a session advisory lock polled with ``pg_try_advisory_lock`` on a
   dedicated autocommit connection — never a blocking ``pg_advisory_lock``, which deadlocks with
   ``CREATE INDEX CONCURRENTLY``; SQLite: ``BEGIN IMMEDIATE`` with a busy timeout);
2. create the history table on first use and read it;
3. validate the files against the history (changed, missing, out of order, failed) and refuse with
   exit 3 before anything runs; refuse statements that cannot run in a transaction inside a
   transactional migration, naming the flag to set;
4. apply each migration: transactional ones as one transaction with their history row;
   non-transactional ones statement by statement in autocommit, with progress recorded so a failure
   leaves a ``failed`` row that blocks later runs until a human records the outcome (``resolve``).

Every statement is sent on its own; errors are mapped back to the file, line and column.
"""

from __future__ import annotations

import abc
import dataclasses
import getpass
import os
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, overload

from .. import db as dbmod
from ..db.base import Database
from ..db.catalog import TableName
from ..errors import (
    AlreadyRecorded,
    DatabaseError,
    DriftError,
    Location,
    LockLost,
    LockTimeout,
    MigrationError,
    MigrationFileError,
    RefusedError,
    SeedkitError,
    UsageError,
)
from ..urls import DatabaseURL
from .files import Migration, Section, display_path, version_order
from .split import Statement, line_col, needs_no_transaction, split

APPLIED, FAILED, RUNNING = "applied", "failed", "running"
_LOCK_CLASS = 0x5EED  # first half of the advisory lock key: "this is seedkit migrate"


# -- history ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HistoryRow:
    version: str
    name: str
    checksum: str
    applied_at: str | None  # ISO 8601, UTC
    execution_ms: int
    status: str  # applied | failed | running
    statements_done: int = 0
    error: str | None = None

    @property
    def number(self) -> int | None:
        digits = self.version.replace("-", "")
        return int(digits) if digits.isdigit() else None

    @property
    def order(self) -> tuple[int, int]:
        """Where the row sorts (``version_order``); rows whose version is not a number sort first."""
        digits = self.version.replace("-", "")
        return version_order(digits) if digits.isdigit() else (-1, 0)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat(timespec="seconds")
    return str(value)


def _row(r: tuple) -> HistoryRow:
    return HistoryRow(version=str(r[0]), name=r[1] or "", checksum=r[2], applied_at=_iso(r[3]),
                      execution_ms=int(r[4] or 0), status=r[5], statements_done=int(r[6] or 0), error=r[7])


def who() -> str:
    """``user@host`` for the audit log."""
    try:
        user = getpass.getuser()
    except Exception:  # pragma: no cover - no user name in some containers
        user = "?"
    return f"{user}@{socket.gethostname()}"


class History:
    """The history table (one row per applied migration) and its audit log (``<table>_log``).

    The table is qualified with the schema it was found in at the start of the run, so a migration
    that changes ``search_path`` cannot make the runner write its history somewhere else.
    """

    COLUMNS = ("version", "name", "checksum", "applied_at", "execution_ms", "status", "statements_done",
               "error")

    def __init__(self, db: Database, table: str):
        self.db = db
        schema, _, name = table.rpartition(".")
        if db.dialect == "postgresql" and not schema:
            row = db.fetchone("SELECT current_schema()")
            schema = row[0] if row and row[0] else ""
            if not schema:
                raise DatabaseError("no schema to create the history table in (search_path is empty)",
                                    hint="set [migrations] table = \"schema.table\" in seedkit.toml")
        self.name = TableName(schema or None, name)
        self.log_name = TableName(schema or None, f"{name}_log")
        self.table = db.qualified(self.name)
        self.log_table = db.qualified(self.log_name)
        self.p = db.placeholder

    def __str__(self) -> str:
        return str(self.name)

    def _now(self) -> Any:
        now = datetime.now(timezone.utc)
        return now if self.db.dialect == "postgresql" else now.isoformat(timespec="microseconds")

    def exists(self) -> bool:
        if self.db.dialect == "postgresql":
            row = self.db.fetchone("SELECT to_regclass(%s)", [f"{self.table}"])
            return bool(row and row[0])
        row = self.db.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               [self.name.name])
        return row is not None

    def ensure(self) -> None:
        """Create the tables on first use; refuse a same-named table that is not ours."""
        if self.exists():
            cur = self.db.execute(f"SELECT * FROM {self.table} WHERE 1 = 0")
            have = {d[0] for d in cur.description}
            missing = [c for c in self.COLUMNS if c not in have]
            if missing:
                raise DatabaseError(
                    f"table {self.name} exists but is not a seedkit history table "
                    f"(missing columns: {', '.join(missing)})",
                    hint="set [migrations] table in seedkit.toml to another name")
        if self.db.dialect == "postgresql":
            ts, big, ident = "timestamptz", "bigint", "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        else:
            ts, big, ident = "text", "integer", "integer PRIMARY KEY"
        self.db.execute(f"""CREATE TABLE IF NOT EXISTS {self.table} (
            version text PRIMARY KEY,
            name text NOT NULL DEFAULT '',
            checksum text NOT NULL,
            applied_at {ts},
            execution_ms {big} NOT NULL DEFAULT 0,
            status text NOT NULL DEFAULT 'applied',
            statements_done integer NOT NULL DEFAULT 0,
            error text)""")
        self.db.execute(f"""CREATE TABLE IF NOT EXISTS {self.log_table} (
            id {ident},
            version text NOT NULL,
            name text NOT NULL DEFAULT '',
            action text NOT NULL,
            at {ts} NOT NULL,
            execution_ms {big},
            by_whom text,
            detail text)""")

    def rows(self) -> dict[str, HistoryRow]:
        if not self.exists():
            return {}
        rows = (_row(r) for r in self.db.fetchall(f"SELECT {', '.join(self.COLUMNS)} FROM {self.table}"))
        return {row.version: row for row in rows}

    def get(self, version: str) -> HistoryRow | None:
        r = self.db.fetchone(f"SELECT {', '.join(self.COLUMNS)} FROM {self.table} WHERE version = {self.p}",
                             [version])
        if r is None:
            return None
        return _row(r)

    def insert(self, m: Migration, *, status: str, execution_ms: int = 0, statements_done: int = 0,
               applied: bool = True) -> None:
        """Add the row of ``m``. A row already there is an error, never overwritten: it means another
        run recorded this migration, and the caller's transaction must not commit."""
        p = self.p
        try:
            self.db.execute(
                f"INSERT INTO {self.table} (version, name, checksum, applied_at, execution_ms, status, "
                f"statements_done, error) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, NULL)",
                [m.version, m.name, m.checksum, self._now() if applied else None, execution_ms, status,
                 statements_done])
        except DatabaseError as exc:
            if exc.sqlstate in ("23505", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT") \
                    or "UNIQUE constraint failed" in exc.message:
                raise AlreadyRecorded(
                    f"migration {m.label} is already in the history table {self.name}: another run "
                    "recorded it while this one was applying it; this run's changes were not committed",
                    sqlstate=exc.sqlstate,
                    hint="run 'seedkit migrate status' to see the state; do not apply it again") from exc
            raise

    def update(self, m: Migration, *, status: str, execution_ms: int = 0, statements_done: int = 0,
               error: str | None = None, applied: bool = True, expect: str) -> None:
        """Move the row of ``m`` from status ``expect`` to ``status``; a row in any other state (or none)
        is an error, so two runs can never both finish the same migration."""
        p = self.p
        cur = self.db.execute(
            f"UPDATE {self.table} SET name = {p}, checksum = {p}, applied_at = {p}, execution_ms = {p}, "
            f"status = {p}, statements_done = {p}, error = {p} WHERE version = {p} AND status = {p}",
            [m.name, m.checksum, self._now() if applied else None, execution_ms, status, statements_done,
             error, m.version, expect])
        if cur.rowcount != 1:
            raise AlreadyRecorded(
                f"the history row of migration {m.label} is no longer {expect!r}: another run changed it",
                hint="run 'seedkit migrate status' to see the state")

    def progress(self, version: str, statements_done: int) -> None:
        self.db.execute(f"UPDATE {self.table} SET statements_done = {self.p} WHERE version = {self.p}",
                        [statements_done, version])

    def delete(self, version: str) -> None:
        self.db.execute(f"DELETE FROM {self.table} WHERE version = {self.p}", [version])

    def log(self, version: str, name: str, action: str, *, execution_ms: int | None = None,
            detail: str | None = None) -> None:
        p = self.p
        self.db.execute(
            f"INSERT INTO {self.log_table} (version, name, action, at, execution_ms, by_whom, detail) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})",
            [version, name, action, self._now(), execution_ms, who(), detail])

    def log_entries(self, version: str | None = None) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        where = f" WHERE version = {self.p}" if version else ""
        rows = self.db.fetchall(f"SELECT version, name, action, at, execution_ms, by_whom, detail "
                                f"FROM {self.log_table}{where} ORDER BY id", [version] if version else None)
        return [{"version": r[0], "name": r[1], "action": r[2], "at": _iso(r[3]), "execution_ms": r[4],
                 "by": r[5], "detail": r[6]} for r in rows]


# -- sessions: the dialect-specific part of a run (lock and transaction boundaries) ----------------

@dataclass
class Wait:
    """Something a run is waiting for, reported about once a second while it lasts.

    ``kind`` is ``lock`` (another run holds the migration lock; ``detail`` says who) or ``statement``
    (a statement has run for more than ``SLOW_STATEMENT`` seconds; ``detail`` is its first line).
    The last report of a wait has ``done`` set.
    """

    kind: str
    elapsed: float  # seconds since the wait began
    detail: str
    migration: str | None = None  # label of the migration, for statements
    location: str | None = None  # file:line of the statement
    done: bool = False


Watcher = Callable[[Wait], None]
SLOW_STATEMENT = 2.0  # seconds before a running statement is reported
_TICK = 1.0  # seconds between reports of one wait


class Session(abc.ABC):
    """A connection to migrate, with the run lock and the transaction boundaries of its dialect."""

    def __init__(self, db: Database, table: str, lock_timeout: float):
        self.db = db
        self.lock_timeout = lock_timeout
        self.history = History(db, table)

    @abc.abstractmethod
    def locked(self, watch: Watcher | None = None) -> AbstractContextManager[None]:
        """Hold the run lock (waiting up to ``lock_timeout`` seconds for it)."""

    def busy_holder(self) -> str | None:
        """Who holds the run lock right now, when another session does (``None``: nobody, or unknown)."""
        return None

    def check_lock(self, label: str) -> None:  # noqa: B027 - SQLite's lock is the open transaction
        """Before each migration: make sure this connection still holds the run lock."""

    def migration_transaction(self) -> Any:
        """Around one transactional migration: its statements and its history row, all or nothing."""
        return self.db.transaction()

    @contextmanager
    def outside_transaction(self) -> Iterator[None]:
        """Around one non-transactional migration: autocommit, statement by statement."""
        yield

    @property
    def server_version_num(self) -> int | None:
        return None

    def close(self) -> None:
        self.db.close()


# SQLSTATEs (and driver messages) that mean the connection itself is gone, and the session lock with it.
_CONNECTION_LOST_STATES = ("57P01", "57P02", "57P03", "57P05", "08000", "08003", "08006", "08001", "08004")
_CONNECTION_LOST_TEXT = ("server closed the connection", "terminating connection", "connection is closed",
                         "the connection is lost", "consuming input failed", "connection already closed",
                         "sending query failed", "idle-session timeout", "no connection to the server")


def connection_lost(exc: BaseException) -> bool:
    state = getattr(exc, "sqlstate", None) or ""
    text = str(getattr(exc, "message", exc)).lower()
    return state in _CONNECTION_LOST_STATES or any(t in text for t in _CONNECTION_LOST_TEXT)


class PostgresSession(Session):
    """The advisory lock lives on the connection that applies the migrations.

    A lock on a separate connection can vanish (``pg_terminate_backend``, ``idle_session_timeout``) while
    the run goes on, and a second run then applies the same migrations. Held here, the lock ends only
    with the applying connection, and then nothing of the migration in flight can commit either. It is
    also checked before each migration, and the history insert fails on a duplicate row.
    """

    def __init__(self, db: Database, table: str, lock_timeout: float):
        super().__init__(db, table, lock_timeout)
        name = self.history.name
        self.lock_key = lock_key(f"{name.schema}.{name.name}")
        if self.server_version_num and self.server_version_num >= 140000:
            # The run's connection holds the lock: the server must not end it for being idle while
            # the runner reads files or plans between statements.
            db.execute("SET idle_session_timeout = 0")

    @property
    def server_version_num(self) -> int | None:
        return int(self.db.conn.info.server_version)

    @contextmanager
    def locked(self, watch: Watcher | None = None) -> Iterator[None]:
        self._acquire(self.db, watch)
        try:
            yield
        finally:
            if not self.db.conn.closed and not self.db.in_transaction:
                with suppress(DatabaseError):  # a broken connection took the lock with it
                    self.db.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_CLASS, self.lock_key])

    def busy_holder(self) -> str | None:
        # read pg_locks only: status and verify take no lock (they also run on read-only standbys)
        return self.holder(self.db, other_sessions_only=True)

    def check_lock(self, label: str) -> None:
        try:
            row = self.db.fetchone(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = %s::oid AND objid = %s::oid AND objsubid = 2)",
                [_LOCK_CLASS, self.lock_key])
        except DatabaseError as exc:
            if connection_lost(exc):
                raise lock_lost(label, exc) from exc
            raise
        if not (row and row[0]):  # only this session can release it: a statement did (unlock_all, DISCARD)
            in_tx = self.db.in_transaction
            raise LockLost(f"this run no longer holds the migration lock (a statement released it, e.g. "
                           f"pg_advisory_unlock_all() or DISCARD ALL); stopped at {label}, "
                           + ("whose transaction was rolled back" if in_tx else "which was not applied"),
                           hint="remove that statement from the migration: another run could have started "
                                "applying the same migrations; then run 'seedkit migrate up' again")

    def _acquire(self, lock_db: Database, watch: Watcher | None = None) -> None:
        started = time.monotonic()
        deadline = started + self.lock_timeout
        delay = 0.02
        holder, next_report = "", started
        # A server-side idle_session_timeout would end this connection between two polls: poll faster.
        row = lock_db.fetchone("SELECT setting::int FROM pg_settings WHERE name = 'idle_session_timeout'")
        idle_ms = int(row[0]) if row and row[0] else 0
        longest = 0.5 if not idle_ms else max(0.01, min(0.5, idle_ms / 1000 / 4))
        while True:
            row = lock_db.fetchone("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_CLASS, self.lock_key])
            now = time.monotonic()
            if row and row[0]:
                if watch and holder:
                    watch(Wait("lock", now - started, holder, done=True))
                return
            remaining = deadline - now
            if remaining <= 0:
                raise LockTimeout(
                    f"another migration run holds the lock on {self.db.url} "
                    f"(waited {self.lock_timeout:g} s): {self.holder(lock_db)}",
                    hint="wait for it to finish, or raise --lock-timeout; if that session is stuck, "
                         "end it with SELECT pg_terminate_backend(pid)")
            if watch and now >= next_report:
                holder = self.holder(lock_db)
                watch(Wait("lock", now - started, holder))
                next_report = now + _TICK
            time.sleep(min(delay, remaining, max(0.0, next_report - now) if watch else delay))
            delay = min(delay * 1.5, longest)

    @overload
    def holder(self, conn: Database) -> str: ...

    @overload
    def holder(self, conn: Database, *, other_sessions_only: bool) -> str | None: ...

    def holder(self, conn: Database, *, other_sessions_only: bool = False) -> str | None:
        row = conn.fetchone("""
            SELECT a.pid, a.application_name, a.usename, a.client_addr::text, a.client_hostname,
                   a.backend_start, a.state_change, a.state, now() - a.backend_start
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid AND l.objid = %s::oid
              AND l.objsubid = 2 AND l.pid <> pg_backend_pid()
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
                            [_LOCK_CLASS, self.lock_key])
        if row is None:
            return None if other_sessions_only else "the holder is not visible (it may have just finished)"
        pid, app, user, addr, host, started, since, _state, age = row
        parts = [f"held by pid {pid}"]
        if app:
            parts.append(f"application {app!r}")
        if user:
            parts.append(f"user {user}")
        if addr or host:
            parts.append(f"from {host or addr}")
        when = f"since {_iso(started or since)}"
        if age is not None:
            when += f" ({_duration(age.total_seconds())} ago)"
        parts.append(when)
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def lock_lost(label: str, exc: DatabaseError) -> LockLost:
    return LockLost(
        f"lost the connection to the database while applying {label} ({exc.message}); the migration lock "
        "ended with it, and the migration's open transaction was rolled back",
        sqlstate=exc.sqlstate,
        hint="another run may have taken over: check with 'seedkit migrate status', then run "
             "'seedkit migrate up' again (applied migrations are never applied twice)")


class SQLiteSession(Session):
    """SQLite: the whole run is one ``BEGIN IMMEDIATE`` (the write lock), each migration a savepoint.

    A non-transactional migration commits what came before, runs in autocommit, then takes the write
    lock again; whatever another process applied meanwhile is skipped (each migration is re-checked
    against the history just before it runs).
    """

    @contextmanager
    def locked(self, watch: Watcher | None = None) -> Iterator[None]:
        self._begin()
        try:
            yield
        finally:
            if self.db.in_transaction:
                self.db.conn.execute("COMMIT")

    def _begin(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except DatabaseError as exc:
            if exc.sqlstate in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in exc.message:
                raise LockTimeout(
                    f"another process holds the write lock on {self.db.url} "
                    f"(waited {self.lock_timeout:g} s)",
                    hint="wait for it to finish, or raise --lock-timeout") from None
            raise

    @contextmanager
    def outside_transaction(self) -> Iterator[None]:
        if self.db.in_transaction:
            self.db.conn.execute("COMMIT")
        try:
            yield
        finally:
            if not self.db.in_transaction:
                self._begin()


def lock_key(table: str) -> int:
    """Second half of the advisory lock key: one lock per history table (per database)."""
    return zlib.crc32(f"seedkit migrate {table}".encode()) & 0x7FFFFFFF


def application_name(role: str) -> str:
    return f"seedkit migrate {role} {socket.gethostname()}:{os.getpid()}"[:63]


def open_session(url: DatabaseURL, table: str, *, lock_timeout: float, connect_timeout: float = 10.0,
                 create: bool = True) -> Session:
    """Connect for a run; ``create=False`` (read-only commands) never creates a SQLite file."""
    if url.dialect == "postgresql":
        db = dbmod.connect(url, wait=connect_timeout, application_name=application_name("run"))
        return PostgresSession(db, table, lock_timeout)
    db = dbmod.connect(url, busy_timeout=lock_timeout, create=create)
    return SQLiteSession(db, table, lock_timeout)


# -- validation ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    kind: str  # changed | missing | out_of_order | failed
    version: str
    name: str
    message: str
    file: str | None = None
    invalid_indexes: tuple[InvalidIndex, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}: {self.message}" if self.file else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "name": self.name, "file": self.file,
                "message": self.message, "invalid_indexes": [i.to_dict() for i in self.invalid_indexes]}


_HINTS = {
    "changed": "never edit a migration after it ships: restore the file as it was applied "
               "(e.g. git checkout) and put the change in a new migration (seedkit migrate new NAME)",
    "missing": "restore the deleted migration file; a migration that ran stays in the history",
    "out_of_order": "give the new migration a version newer than the newest applied one, "
                    "or pass --allow-out-of-order if applying it late is safe",
    "failed": "check by hand what the migration did, then record the outcome with "
              "'seedkit migrate resolve VERSION --applied' or '--rolled-back'",
    "invalid_index": "a failed CREATE INDEX CONCURRENTLY leaves an invalid index behind: run the DROP INDEX "
                     "CONCURRENTLY shown above, then 'seedkit migrate resolve VERSION --rolled-back' and "
                     "'seedkit migrate up' (resolve --applied is refused while the index is invalid)",
    "running": "wait for the other run to finish; 'seedkit migrate status' shows when it has",
    "invalid": "fix the file; see the message for the line",
}


def find_problems(migrations: list[Migration], rows: dict[str, HistoryRow], *,
                  allow_out_of_order: bool = False) -> list[Problem]:
    by_number = {m.number: m for m in migrations}
    problems: list[Problem] = []
    applied_rows = [r for r in rows.values() if r.number is not None and r.status == APPLIED]
    newest_row = max(applied_rows, key=lambda r: r.order, default=None)
    matched: set[int] = set()
    for row in sorted(rows.values(), key=lambda r: (r.order, r.version)):
        m = by_number.get(row.number) if row.number is not None else None
        if m is None:
            problems.append(Problem("missing", row.version, row.name,
                                    f"migration {row.version}{'_' + row.name if row.name else ''} "
                                    f"was applied but its file is gone from the migrations folder"))
            continue
        matched.add(m.number)
        where = display_path(m.entry)
        if row.status != APPLIED:
            state = "was interrupted" if row.status == RUNNING else "failed"
            detail = f" after {row.statements_done} statement(s)" if row.statements_done is not None else ""
            err = f": {row.error}" if row.error else ""
            problems.append(Problem("failed", m.version, m.name,
                                    f"non-transactional migration {m.label} {state}{detail}{err}; "
                                    "the database may be half-way", where))
        elif row.checksum != m.checksum:
            problems.append(Problem("changed", m.version, m.name,
                                    f"migration {m.label} was changed after it was applied "
                                    f"(checksum {m.checksum[:12]}, applied {row.checksum[:12]})", where))
    if newest_row is not None and not allow_out_of_order:
        for m in migrations:
            if m.number not in matched and m.order < newest_row.order:
                problems.append(Problem("out_of_order", m.version, m.name,
                                        f"pending migration {m.label} is older than the newest applied one "
                                        f"({newest_row.version})", display_path(m.entry)))
    return problems


def drift_error(problems: list[Problem], action: str = "refusing to run") -> DriftError:
    kinds = sorted({p.kind for p in problems}, key=list(_HINTS).index)
    hint = "; ".join(_HINTS[k] for k in kinds)
    if len(problems) == 1:
        p = problems[0]
        return DriftError(f"{p.message}; {action}", location=Location(file=p.file) if p.file else None,
                          hint=hint.replace("VERSION", p.version))
    lines = "\n".join(f"  {p}" for p in problems)
    return DriftError(f"{len(problems)} problems with the migration history; {action}:\n{lines}", hint=hint)


# -- planning --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Planned:
    migration: Migration
    section: Section
    statements: list[Statement]

    @property
    def transactional(self) -> bool:
        return self.section.transactional


def plan_section(m: Migration, section: Section, dialect: str, server_version: int | None,
                 direction: str) -> Planned:
    statements = split(section.sql, dialect, section.line_offset)
    if section.transactional:
        for stmt in statements:
            reason = needs_no_transaction(stmt, dialect, server_version)
            if reason:
                raise MigrationFileError(
                    f"{reason} cannot run inside a transaction, and the {direction} section of migration "
                    f"{m.label} runs in one; nothing was run",
                    location=Location(file=display_path(section.path), line=stmt.line, column=stmt.column),
                    hint=_flag_hint(m, direction))
    return Planned(m, section, statements)


_SQLITE_HISTORY_DDL = re.compile(
    r"^\s*(?:DROP\s+TABLE(?:\s+IF\s+EXISTS)?|ALTER\s+TABLE|DELETE\s+FROM)\s+"
    r"(?:(?:main|\"main\")\.)?[\"`\[]?(?P<name>[\w$]+)[\"`\]]?", re.IGNORECASE)


def touches_history(stmt: Statement, dialect: str, history: TableName, log: TableName) -> str | None:
    """What ``stmt`` would do to the runner's own history tables (drop, truncate, rename), or ``None``.

    A project that moves from another runner often has a migration that drops that runner's table —
    often named ``schema_migrations`` too. Run as is, it would drop this runner's history mid-run."""
    ours = {history.name, log.name}

    def hit(schema: str | None, name: str) -> bool:
        return name in ours and (schema is None or history.schema is None or schema == history.schema)

    if dialect != "postgresql":
        m = _SQLITE_HISTORY_DDL.match(stmt.sql)
        return f"{stmt.keyword()} {m['name']}" if m and m["name"] in ours else None
    node = stmt.node
    kind = type(node).__name__
    if kind == "DropStmt" and getattr(node.removeType, "name", "") in ("OBJECT_TABLE", "OBJECT_VIEW"):
        for obj in node.objects or ():
            parts = [getattr(p, "sval", None) for p in obj]
            if parts and hit(parts[-2] if len(parts) > 1 else None, parts[-1] or ""):
                return f"DROP TABLE {'.'.join(p for p in parts if p)}"
    if kind == "DropStmt" and getattr(node.removeType, "name", "") == "OBJECT_SCHEMA" and history.schema \
            and getattr(node.behavior, "name", "") == "DROP_CASCADE" \
            and any(getattr(o, "sval", None) == history.schema for o in node.objects or ()):
        return f"DROP SCHEMA {history.schema} CASCADE"
    if kind == "TruncateStmt":
        for rv in node.relations or ():
            if hit(rv.schemaname, rv.relname):
                return f"TRUNCATE {rv.relname}"
    if kind in ("RenameStmt", "AlterTableStmt", "DeleteStmt"):
        rv = getattr(node, "relation", None)
        if rv is not None and hit(rv.schemaname, rv.relname):
            return f"{stmt.keyword()} {'TABLE ' if kind != 'DeleteStmt' else 'FROM '}{rv.relname}"
    return None


def _flag_hint(m: Migration, direction: str) -> str:
    advice = "(and keep such a migration to that one statement: a failure half-way cannot be rolled back)"
    if m.layout == "file":
        return (f"run this section outside a transaction: change its marker line to "
                f"'-- migrate:{direction} transaction:false' {advice}")
    return ("run this file outside a transaction: make its first line "
            f"'-- seedkit: transaction=false' {advice}")


def parse_target(value: str | int) -> int:
    text = str(value).strip().replace("-", "")
    if not text.isdigit():
        raise UsageError(f"bad version {value!r}: versions are numbers (dashes are ignored)")
    return int(text)


# -- invalid indexes left by a failed concurrent build ----------------------------------------------

@dataclass(frozen=True)
class InvalidIndex:
    """An index PostgreSQL marked invalid: what a failed ``CREATE INDEX CONCURRENTLY`` leaves behind."""

    schema: str
    name: str
    table: str
    qualified: str  # quoted, schema-qualified name

    @property
    def drop(self) -> str:
        return f"DROP INDEX CONCURRENTLY IF EXISTS {self.qualified};"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "name": self.name, "table": self.table, "drop": self.drop}


def concurrent_index_targets(statements: list[Statement]) -> list[tuple[str | None, str, str | None]]:
    """``(schema, table, index name or None)`` of every concurrent index build among ``statements``."""
    targets: list[tuple[str | None, str, str | None]] = []
    for stmt in statements:
        node = stmt.node
        kind = type(node).__name__
        if kind == "IndexStmt" and node.concurrent and node.relation is not None:
            targets.append((node.relation.schemaname, node.relation.relname, node.idxname))
        elif kind == "ReindexStmt" and node.relation is not None and \
                "concurrently" in {getattr(p, "defname", None) for p in (node.params or ())}:
            # REINDEX CONCURRENTLY leaves ``<index>_ccnew`` behind: any invalid index of the relation
            targets.append((node.relation.schemaname, node.relation.relname, None))
    return targets


def find_invalid_indexes(db: Database, statements: list[Statement]) -> list[InvalidIndex]:
    """Invalid indexes that the concurrent builds among ``statements`` may have left."""
    if db.dialect != "postgresql":
        return []
    found: dict[tuple[str, str], InvalidIndex] = {}
    for schema, table, index in concurrent_index_targets(statements):
        relation = f"{db.quote(schema)}.{db.quote(table)}" if schema else db.quote(table)
        rows = db.fetchall(
            """SELECT n.nspname, c.relname, t.relname, t.oid::regclass::text
               FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_class t ON t.oid = i.indrelid
               WHERE NOT i.indisvalid AND i.indrelid = to_regclass(%s)
                 AND (%s::text IS NULL OR c.relname = %s::text OR c.relname LIKE %s::text || '%%_ccnew%%')
               ORDER BY c.relname""", [relation, index, index, index])
        for nsp, name, tname, _ in rows:
            found[(nsp, name)] = InvalidIndex(nsp, name, tname, f"{db.quote(nsp)}.{db.quote(name)}")
    return list(found.values())


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


# -- reports ---------------------------------------------------------------------------------------

@dataclass
class MigrationRun:
    """One migration applied or rolled back (or that would be, in a dry run)."""

    version: str
    name: str
    file: str
    direction: str  # up | down
    statements: int
    transactional: bool
    execution_ms: float = 0.0
    statements_run: list[StatementRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "statements_run": [s.to_dict() for s in self.statements_run]}


@dataclass
class StatementRun:
    """One statement of a migration as it ran: where it is, its first line, how long it took."""

    line: int
    column: int
    first_line: str
    execution_ms: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def first_line(sql: str, width: int = 100) -> str:
    """The first non-blank line of a statement, shortened to ``width`` characters."""
    line = next((ln.strip() for ln in sql.splitlines() if ln.strip()), "").rstrip(";").rstrip()
    return line if len(line) <= width else line[: width - 1] + "…"


class _StatementWatch:
    """Reports statements that run longer than ``SLOW_STATEMENT`` seconds, about once a second.

    One background thread per run looks at the statement in flight (the main thread is inside the
    driver, waiting for the server); starting a thread per statement would cost more than a short
    statement itself."""

    _POLL = 0.1

    def __init__(self, watch: Watcher | None):
        self.watch = watch
        self._state = threading.Lock()  # guards _current
        self._emit = threading.Lock()  # one report at a time, in order
        self._current: list[Any] | None = None  # [token, started, label, where, text, last reported elapsed]
        self._token = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def statement(self, label: str, where: str, text: str) -> Iterator[None]:
        if self.watch is None:
            yield
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="seedkit-statement-watch", daemon=True)
            self._thread.start()
        with self._state:
            self._token += 1
            self._current = [self._token, time.monotonic(), label, where, text, None]
        try:
            yield
        finally:
            with self._emit:
                with self._state:
                    current, self._current = self._current, None
                if current is not None and current[5] is not None:
                    self._report(current, done=True)

    def _run(self) -> None:
        while not self._stop.wait(self._POLL):
            with self._emit:
                with self._state:
                    current = self._current
                    if current is None:
                        continue
                    elapsed = time.monotonic() - current[1]
                    last = current[5]
                    if elapsed < SLOW_STATEMENT or (last is not None and elapsed < last + _TICK):
                        continue
                    current[5] = elapsed
                self._report(current, done=False)

    def _report(self, current: list[Any], *, done: bool) -> None:
        assert self.watch is not None
        _token, started, label, where, text, _last = current
        with suppress(Exception):  # a display problem must never break a migration
            self.watch(Wait("statement", time.monotonic() - started, text, label, where, done=done))

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._stop.clear()


@dataclass
class RunReport:
    """What ``up`` or ``down`` did."""

    database: str
    direction: str
    migrations: list[MigrationRun] = field(default_factory=list)
    version_before: str | None = None
    version_after: str | None = None
    dry_run: bool = False
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "migrations"},
                "migrations": [m.to_dict() for m in self.migrations]}


Progress = Callable[[MigrationRun], None]


@dataclass
class StatusEntry:
    """One migration as ``status`` sees it."""

    version: str
    name: str
    state: str  # applied | pending | changed | missing | failed
    file: str | None
    applied_at: str | None = None
    execution_ms: int | None = None
    note: str | None = None
    invalid_indexes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StatusReport:
    database: str
    current_version: str | None
    entries: list[StatusEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def pending(self) -> list[StatusEntry]:
        return [e for e in self.entries if e.state == "pending"]

    @property
    def ok(self) -> bool:
        """Nothing pending and nothing drifted."""
        return not self.problems and not self.pending

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "current_version": self.current_version, "ok": self.ok,
                "pending": len(self.pending), "migrations": [e.to_dict() for e in self.entries],
                "problems": [p.to_dict() for p in self.problems]}


@dataclass
class VerifyReport:
    database: str
    checked: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "checked": self.checked, "ok": self.ok,
                "problems": [p.to_dict() for p in self.problems]}


@dataclass
class ResolveReport:
    database: str
    version: str
    name: str
    decision: str  # applied | rolled-back
    previous_status: str
    statements_done: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- the runner ------------------------------------------------------------------------------------

class Runner:
    """Applies and rolls back migrations on one database. Use as a context manager."""

    def __init__(self, migrations: list[Migration], url: DatabaseURL, *, table: str = "schema_migrations",
                 lock_timeout: float = 60.0, connect_timeout: float = 10.0, create: bool = True):
        self.migrations = migrations
        self.url = url
        self.table = table
        self.lock_timeout = lock_timeout
        self.session = open_session(url, table, lock_timeout=lock_timeout, connect_timeout=connect_timeout,
                                    create=create)
        self.db = self.session.db
        self.history = self.session.history
        self.watch: Watcher | None = None
        self._statements = _StatementWatch(None)

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
           progress: Progress | None = None, watch: Watcher | None = None) -> RunReport:
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
            plans = [plan_section(m, m.up, self.db.dialect, server, "up") for m in pending]
            self._refuse_history_changes(plans)
            for planned in plans:
                m = planned.migration
                run = MigrationRun(m.version, m.name, display_path(planned.section.path), "up",
                                   len(planned.statements), planned.transactional)
                if not dry_run and not self._guarded(planned, run, self._apply):
                    continue  # another runner applied it meanwhile
                report.migrations.append(run)
                if report.version_after is None or m.order > version_order(report.version_after):
                    report.version_after = m.version
                if progress:
                    progress(run)
        report.elapsed_ms = (time.perf_counter() - started) * 1000
        return report

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
                what = touches_history(stmt, self.db.dialect, self.history.name, self.history.log_name)
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

    def _guarded(self, planned: Planned, run: MigrationRun,
                 apply: Callable[[Planned, MigrationRun], bool]) -> bool:
        """Run ``apply`` after checking the lock; a lost connection becomes a clear ``LockLost``."""
        label = planned.migration.label
        self.session.check_lock(label)
        try:
            return apply(planned, run)
        except LockLost:
            raise
        except DatabaseError as exc:
            if self.db.dialect == "postgresql" and (connection_lost(exc) or self.db.conn.closed):
                lost = lock_lost(label, exc)
                lost.location = exc.location
                if not planned.transactional:
                    lost.message = lost.message.replace(
                        "the migration's open transaction was rolled back",
                        "the migration runs without a transaction, so what it had done stays done and its "
                        "history row says 'running'")
                    lost.hint = ("check what it did, then record the outcome with 'seedkit migrate resolve "
                                 f"{planned.migration.version} --applied' or '--rolled-back'")
                raise lost from exc
            raise

    def _apply(self, planned: Planned, run: MigrationRun) -> bool:
        """Apply one migration; ``False`` when another runner applied it meanwhile."""
        m = planned.migration
        t0 = time.perf_counter()
        if planned.transactional:
            with self.session.migration_transaction():
                if self.history.get(m.version) is not None:
                    return False
                for stmt in planned.statements:
                    self._execute(planned, stmt, done=None, run=run)
                self.session.check_lock(m.label)  # still ours at commit time (or nothing commits)
                ms = int((time.perf_counter() - t0) * 1000)
                self.history.insert(m, status=APPLIED, execution_ms=ms)
                self.history.log(m.version, m.name, "up", execution_ms=ms)
            run.execution_ms = (time.perf_counter() - t0) * 1000
            return True
        with self.session.outside_transaction():
            if self.history.get(m.version) is not None:
                return False
            self.history.insert(m, status=RUNNING, applied=False)
            for i, stmt in enumerate(planned.statements):
                self._execute(planned, stmt, done=i, run=run)
                self.history.progress(m.version, i + 1)
            ms = int((time.perf_counter() - t0) * 1000)
            self.history.update(m, status=APPLIED, execution_ms=ms, statements_done=len(planned.statements),
                                expect=RUNNING)
            self.history.log(m.version, m.name, "up", execution_ms=ms, detail="without a transaction")
        run.execution_ms = (time.perf_counter() - t0) * 1000
        return True

    def _execute(self, planned: Planned, stmt: Statement, *, done: int | None,
                 run: MigrationRun | None = None) -> None:
        """Run one statement; on failure raise a ``MigrationError`` located in the file.

        ``done`` is the number of statements of a non-transactional migration already run (``None``
        for a transactional one); a failure then leaves a ``failed`` row behind.
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
            if self.db.dialect == "postgresql" and (connection_lost(exc) or self.db.conn.closed):
                raise  # _guarded turns it into LockLost; there is no connection to record a failure on
            error = self._locate(planned, stmt, exc)
            if done is not None:
                m = planned.migration
                self._record_failure(planned, done, error)
                error.hint = (f"migration {m.label} runs without a transaction: {done} of "
                              f"{len(planned.statements)} statement(s) had run and stay done. Fix the "
                              f"database by hand, then run 'seedkit migrate resolve {m.version} --applied' "
                              f"or '--rolled-back'; 'up' refuses to run until then")
                invalid = self._invalid_indexes(planned)
                if invalid:
                    error.hint = invalid_index_hint(invalid, m.version)
            raise error from exc

    def _invalid_indexes(self, planned: Planned) -> list[InvalidIndex]:
        try:
            return find_invalid_indexes(self.db, planned.statements)
        except DatabaseError:  # pragma: no cover - the connection broke: the row still says failed
            return []

    def _failed_invalid_indexes(self, version: str) -> list[InvalidIndex]:
        """Invalid indexes left by the failed migration ``version`` (re-split from its file)."""
        m = next((m for m in self.migrations if m.version == version), None)
        if m is None or self.db.dialect != "postgresql":
            return []
        try:
            statements = split(m.up.sql, self.db.dialect, m.up.line_offset)
        except MigrationFileError:
            return []
        return find_invalid_indexes(self.db, statements)

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
        position = getattr(exc, "position", None)
        if position:
            offset = stmt.offset + int(position) - 1
        else:
            found = _named_in_message(exc.message, stmt.sql)
            if found is not None:
                offset = stmt.offset + found
        if offset is not None:
            line, column = line_col(section.sql, offset, section.line_offset)
        else:
            line, column = stmt.line, stmt.column
        inline = _inline_code_line(exc, stmt, section)
        if inline is not None:
            line, column = inline
        sqlstate = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        m = planned.migration
        transaction = "rolled back" if planned.transactional else "stopped"
        message = f"{exc.message}{sqlstate}; migration {m.label} {transaction}"
        hint = exc.hint
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
                                         hint="add a '-- migrate:down' section (or a down.sql), or roll "
                                              "forward with a new migration instead")
            plans = [plan_section(m, m.down, self.db.dialect, server, "down")  # type: ignore[arg-type]
                     for m in migrations]
            self._refuse_history_changes(plans)
            for planned in plans:
                run = MigrationRun(planned.migration.version, planned.migration.name,
                                   display_path(planned.section.path), "down", len(planned.statements),
                                   planned.transactional)
                if not dry_run and not self._guarded(planned, run, self._revert):
                    continue
                report.migrations.append(run)
                done = {r.version for r in report.migrations}
                rest = [r for r in applied if r.version not in done]
                report.version_after = rest[0].version if rest else None
                if progress:
                    progress(run)
        report.elapsed_ms = (time.perf_counter() - started) * 1000
        return report

    def _revert(self, planned: Planned, run: MigrationRun) -> bool:
        m = planned.migration
        t0 = time.perf_counter()
        if planned.transactional:
            with self.session.migration_transaction():
                row = self.history.get(m.version)
                if row is None or row.status != APPLIED:
                    return False
                for stmt in planned.statements:
                    self._execute(planned, stmt, done=None, run=run)
                self.history.delete(m.version)
                self.history.log(m.version, m.name, "down",
                                 execution_ms=int((time.perf_counter() - t0) * 1000))
        else:
            with self.session.outside_transaction():
                row = self.history.get(m.version)
                if row is None or row.status != APPLIED:
                    return False
                for i, stmt in enumerate(planned.statements):
                    t1 = time.perf_counter()
                    try:
                        with self._statements.statement(m.label, f"{display_path(planned.section.path)}:"
                                                        f"{stmt.line}", first_line(stmt.sql)):
                            self.db.execute(stmt.sql)
                        run.statements_run.append(StatementRun(stmt.line, stmt.column, first_line(stmt.sql),
                                                               (time.perf_counter() - t1) * 1000))
                    except DatabaseError as exc:
                        if connection_lost(exc) or self.db.conn.closed:
                            raise
                        error = self._locate(planned, stmt, exc)
                        self.history.log(m.version, m.name, "down failed",
                                         detail=f"{error.location}: {error.message} after {i} statement(s)")
                        done_text = ("none of its statements had run, so the database is as it was" if i == 0
                                     else f"{i} of {len(planned.statements)} statement(s) had run and stay "
                                          "done: finish or undo them by hand")
                        error.hint = (f"the down section of {m.label} runs without a transaction: {done_text}; "
                                      "the migration is still recorded as applied. A down section that "
                                      "cannot work is best replaced by a new migration that undoes the change "
                                      "(seedkit migrate new NAME)")
                        raise error from exc
                self.history.delete(m.version)
                ms = int((time.perf_counter() - t0) * 1000)
                self.history.log(m.version, m.name, "down", execution_ms=ms, detail="without a transaction")
        run.execution_ms = (time.perf_counter() - t0) * 1000
        return True

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
        return VerifyReport(database=str(self.url), checked=len(self.migrations), problems=problems)

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


# SQLite gives no error offset; its messages name the token or object, which we look for instead.
_SQLITE_NAMED = [re.compile(p) for p in (
    r'near "(?P<name>.+?)": syntax error', r"no such (?:table|column|function|index|view|trigger|module): "
    r"(?:\w+\.)?(?P<name>\S+)", r"has no column named (?P<name>\S+)",
    r"(?:table|index|view|trigger) \"?(?P<name>[^\s\"]+)\"? already exists")]


def _named_in_message(message: str, sql: str) -> int | None:
    for pattern in _SQLITE_NAMED:
        m = pattern.search(message)
        if m:
            name = m["name"]
            found = re.search(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", sql, re.IGNORECASE) \
                if name[:1].isalnum() or name[:1] == "_" else None
            if found:
                return found.start()
            index = sql.find(name)
            return index if index >= 0 else None
    return None


_INLINE = re.compile(r"PL/pgSQL function inline_code_block line (\d+)")


def _inline_code_line(exc: DatabaseError, stmt: Statement, section: Section) -> tuple[int, int] | None:
    """A run-time error inside a ``DO`` block names a line of the block: map it into the file."""
    cause = exc.__cause__
    context = getattr(getattr(cause, "diag", None), "context", None) or ""
    m = _INLINE.search(context)
    if not m or stmt.keyword() != "DO":
        return None
    try:
        from pglast import parser as pg_parser

        body = next(t for t in pg_parser.scan(stmt.sql) if t.name == "SCONST")
    except Exception:
        return None
    line, _ = line_col(section.sql, stmt.offset + body.start, section.line_offset)
    line += int(m[1]) - 1
    lines = section.sql.split("\n")
    index = line - section.line_offset
    text = lines[index] if 0 <= index < len(lines) else ""
    return line, len(text) - len(text.lstrip()) + 1
