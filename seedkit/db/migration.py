"""What the migration runner asks of a database: the run lock and the transaction boundaries.

Each adapter gives its own ``MigrationSession`` (``Database.migration_session``): PostgreSQL holds an
advisory lock on the applying connection, SQLite holds the write lock (``BEGIN IMMEDIATE``) for the
whole run. The runner (``migrate/runner.py``) only calls the methods below.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import DatabaseError, LockLost
from .base import Database
from .catalog import TableName


def iso(value: Any) -> str | None:
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


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


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
TICK = 1.0  # seconds between reports of one wait


class MigrationSession(abc.ABC):
    """A connection to migrate, with the run lock and the transaction boundaries of its dialect."""

    def __init__(self, db: Database, history: TableName, lock_timeout: float):
        self.db = db
        self.lock_timeout = lock_timeout
        self.history = history  # the history table: one run lock per history table

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


def lock_lost(label: str, exc: DatabaseError) -> LockLost:
    return LockLost(
        f"lost the connection to the database while applying {label} ({exc.message}); the migration lock "
        "ended with it, and the migration's open transaction was rolled back",
        sqlstate=exc.sqlstate,
        hint="another run may have taken over: check with 'seedkit migrate status', then run "
             "'seedkit migrate up' again (applied migrations are never applied twice)")


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
