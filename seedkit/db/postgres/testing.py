"""What the pytest plugin needs of PostgreSQL: a connection whose work is always rolled back."""

from __future__ import annotations

from collections.abc import Generator
from functools import cache
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from ...urls import DatabaseURL
from ..base import NOT_COMMITTABLE


@cache
def _connection_class() -> type:
    class RolledBackConnection(psycopg.Connection):  # type: ignore[type-arg]
        """A psycopg connection whose work is always rolled back: commit() and rollback() say why not."""

        __qualname__ = "RolledBackConnection"

        def commit(self) -> None:
            raise psycopg.ProgrammingError(NOT_COMMITTABLE.format(what="commit"))

        def rollback(self) -> None:
            raise psycopg.ProgrammingError(NOT_COMMITTABLE.format(what="roll back by itself"))

    return RolledBackConnection


def rolled_back_connection(url: DatabaseURL) -> Any:
    conn = _connection_class().connect(url.raw, autocommit=False, application_name="seedkit pytest")
    conn._seedkit_defaults = {"row_factory": conn.row_factory}
    return conn


def connection_closed(conn: Any) -> bool:
    return bool(conn.closed or conn.broken)


def test_transaction(conn: Any) -> Generator[Any, None, bool]:
    """Yield ``conn`` inside a transaction that is always rolled back; return whether the test itself
    ended that transaction."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        psycopg.Connection.rollback(conn)
    ended = False
    try:
        with conn.transaction(force_rollback=True):
            yield conn
            ended = conn.info.transaction_status == TransactionStatus.IDLE
    except psycopg.Error:
        if not connection_closed(conn):
            raise
        return False  # the test closed the connection: the next test gets a new one
    conn.row_factory = conn._seedkit_defaults["row_factory"]
    return ended
