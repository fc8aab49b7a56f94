"""SQLite's migration session: the write lock (``BEGIN IMMEDIATE``) for the whole run; and what the
runner asks of SQLite statements (history changes)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from ...errors import DatabaseError, LockTimeout
from ..base import MigrationSession
from ..catalog import TableName
from ..migration import Watcher
from ..statements import Statement


class SQLiteSession(MigrationSession):
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


_SQLITE_HISTORY_DDL = re.compile(
    r"^\s*(?:DROP\s+TABLE(?:\s+IF\s+EXISTS)?|ALTER\s+TABLE|DELETE\s+FROM)\s+"
    r"(?:(?:main|\"main\")\.)?[\"`\[]?(?P<name>[\w$]+)[\"`\]]?", re.IGNORECASE)


def touches_history(stmt: Statement, history: TableName, log: TableName) -> str | None:
    """What ``stmt`` would do to the runner's own history tables, or ``None`` (a regular expression:
    SQLite has no parser to ask)."""
    m = _SQLITE_HISTORY_DDL.match(stmt.sql)
    return f"{stmt.keyword()} {m['name']}" if m and m["name"] in {history.name, log.name} else None
