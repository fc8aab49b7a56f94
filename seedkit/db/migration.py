"""What the migration runner and the adapters' migration sessions share: what a run waits for
(``Wait``), invalid indexes, lost connections, and how times read from a history table are shown.

Each adapter gives its own ``MigrationSession`` (``Database.migration_session``, both in base.py):
PostgreSQL holds an advisory lock on the applying connection, SQLite holds the write lock
(``BEGIN IMMEDIATE``) for the whole run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .._record import dataclass
from ..errors import DatabaseError, LockLost


def iso(value: Any) -> str | None:
    """A timestamp from a history table (a datetime, or SQLite's text) as UTC ISO text."""
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
    """``75`` → ``1 min 15 s``."""
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


@dataclass(frozen=True)
class RecordApplied:
    """The history rows a transactional migration writes with its last statement (one query: see
    ``MigrationSession.applied_in_one_query``)."""

    table: str  # the history table, quoted and qualified
    log_table: str  # its audit log
    version: str
    name: str
    checksum: str
    by_whom: str
    sent_at: datetime  # the runner's clock when the query is sent (UTC)
