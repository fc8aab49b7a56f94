"""The history table (one row per applied migration) and its audit log (``<table>_log``)."""

from __future__ import annotations

import getpass
import socket
from datetime import datetime, timezone
from typing import Any

from .._record import dataclass
from ..db.base import Database
from ..db.catalog import TableName
from ..db.migration import iso
from ..errors import AlreadyRecorded, DatabaseError
from .files import Migration, version_order

APPLIED, FAILED, RUNNING = "applied", "failed", "running"


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


def _row(r: tuple) -> HistoryRow:
    return HistoryRow(version=str(r[0]), name=r[1] or "", checksum=r[2], applied_at=iso(r[3]),
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
        if not schema:
            schema = db.default_schema() or ""
        self.name = TableName(schema or None, name)
        self.log_name = TableName(schema or None, f"{name}_log")
        self.table = db.qualified(self.name)
        self.log_table = db.qualified(self.log_name)
        self.p = db.placeholder

    def __str__(self) -> str:
        return str(self.name)

    def _now(self) -> Any:
        return self.db.history_timestamp(datetime.now(timezone.utc))

    def exists(self) -> bool:
        return self.db.relation_exists(self.name)

    def ensure(self) -> None:
        """Create the tables on first use; refuse a same-named table that is not ours."""
        if self.exists():
            foreign = self._not_ours()
            if foreign is not None:
                raise foreign
        ts, big, ident = self.db.history_types
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

    def _not_ours(self) -> DatabaseError | None:
        """The error for an existing same-named table that is not a seedkit history table (another
        runner's: pop's, golang-migrate's ``schema_migrations``), else None."""
        cur = self.db.execute(f"SELECT * FROM {self.table} WHERE 1 = 0")
        have = {d[0] for d in cur.description}
        missing = [c for c in self.COLUMNS if c not in have]
        if not missing:
            return None
        return DatabaseError(f"table {self.name} exists but is not a seedkit history table "
                             f"(missing columns: {', '.join(missing)})",
                             hint="set [migrations] table in seedkit.toml to another name")

    def rows(self) -> dict[str, HistoryRow]:
        if not self.exists():
            return {}
        try:
            fetched = self.db.fetchall(f"SELECT {', '.join(self.COLUMNS)} FROM {self.table}")
        except DatabaseError as exc:  # status, verify, baseline read it without ensure(): say whose it is
            try:
                foreign = self._not_ours()
            except DatabaseError:
                foreign = None
            if foreign is None:
                raise
            raise foreign from exc
        return {row.version: row for row in map(_row, fetched)}

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


