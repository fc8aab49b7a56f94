"""What the pytest plugin needs of SQLite: a connection whose work is always rolled back."""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from typing import Any

from ...urls import DatabaseURL
from ..base import NOT_COMMITTABLE


class RolledBackConnection(sqlite3.Connection):
    """A sqlite3 connection whose work is always rolled back: commit(), rollback() and a ``with``
    block that would commit say why not."""

    closed_by_test = False

    def commit(self) -> None:
        raise sqlite3.ProgrammingError(NOT_COMMITTABLE.format(what="commit"))

    def rollback(self) -> None:
        raise sqlite3.ProgrammingError(NOT_COMMITTABLE.format(what="roll back by itself"))

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        if exc_type is None:
            self.commit()
        return False

    def close(self) -> None:
        self.closed_by_test = True
        super().close()


def rolled_back_connection(url: DatabaseURL) -> Any:
    assert url.path is not None
    conn = RolledBackConnection(str(url.path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")  # as seedkit itself runs SQLite
    conn._seedkit_defaults = {"row_factory": conn.row_factory}  # type: ignore[attr-defined]
    return conn


def connection_closed(conn: Any) -> bool:
    return bool(conn.closed_by_test)


def test_transaction(conn: Any) -> Generator[Any, None, bool]:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.execute("BEGIN")
    yield conn
    if connection_closed(conn):
        return False  # the test closed the connection: the next test gets a new one
    ended = not conn.in_transaction
    if not ended:
        sqlite3.Connection.rollback(conn)
    conn.row_factory = conn._seedkit_defaults["row_factory"]
    conn.isolation_level = None
    return ended
