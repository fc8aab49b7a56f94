"""SQLite adapter (standard library ``sqlite3``), in explicit-transaction mode.

The connection runs with ``isolation_level=None`` so the driver never opens or commits a
transaction behind our back; ``transaction()`` issues ``BEGIN IMMEDIATE`` (the write lock) itself.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from ... import jsontext
from ...errors import DatabaseError
from ...urls import DatabaseURL
from ..base import Database, MigrationSession
from ..catalog import Catalog, Column, TableName
from ..statements import Statement
from . import admin, statements, testing
from .catalog import introspect


def translate(exc: sqlite3.Error) -> DatabaseError:
    code = getattr(exc, "sqlite_errorname", None)
    err = DatabaseError(str(exc), sqlstate=code)
    # which constraint a row broke, as PostgreSQL's error fields say it (seed/checks.py): "CHECK constraint failed:
    # NAME" (the expression as written when it has no name), "NOT NULL constraint failed: TABLE.COLUMN"
    text = str(exc)
    err.constraint_name = (text.partition("CHECK constraint failed: ")[2].strip() or None  # type: ignore[attr-defined]
                           if code == "SQLITE_CONSTRAINT_CHECK" else None)
    err.column_name = (text.partition("NOT NULL constraint failed: ")[2].rpartition(".")[2].strip() or None  # type: ignore[attr-defined]
                       if code == "SQLITE_CONSTRAINT_NOTNULL" else None)
    return err


class SQLiteDatabase(Database):
    dialect = "sqlite"
    placeholder = "?"
    defers_every_foreign_key = True  # PRAGMA defer_foreign_keys: every foreign key is checked at commit
    file_based = True
    history_types = ("text", "integer", "integer PRIMARY KEY")

    @classmethod
    def connect(cls, url: DatabaseURL, *, busy_timeout: float = 60.0, create: bool = True,
                lock_timeout: float | None = None, wait: float | None = None,
                application_name: str | None = None, autocommit: bool = True) -> SQLiteDatabase:
        """``lock_timeout``: how long a statement waits for the file's lock (``busy_timeout``);
        ``wait``, ``application_name`` and ``autocommit`` are a server's: a file is there or not."""
        if lock_timeout is not None:
            busy_timeout = lock_timeout
        target = ":memory:" if url.path is None else str(url.path)
        if url.path is not None:
            if not url.path.parent.is_dir():
                raise DatabaseError(f"cannot open {url}: folder {url.path.parent} does not exist")
            if not create and not url.path.exists():
                raise DatabaseError(f"cannot open {url}: the file does not exist")
        try:
            conn = sqlite3.connect(target, isolation_level=None, timeout=busy_timeout,
                                   check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open {url}: {exc}") from None
        return cls(url, conn)

    def execute(self, statement: str, params: Sequence[Any] | None = None) -> Any:
        try:
            return self.conn.execute(statement, params or ())
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.conn.executemany(statement, rows)
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        nested = self.conn.in_transaction
        name = f"sk_{id(self)}_{self._depth}"
        self.execute(f"SAVEPOINT {name}" if nested else "BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if nested:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                self.conn.execute(f"RELEASE SAVEPOINT {name}")
            elif self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self._depth -= 1
        self.execute(f"RELEASE SAVEPOINT {name}" if nested else "COMMIT")

    _depth = 0

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    @property
    def server_version(self) -> str:
        return sqlite3.sqlite_version

    # -- catalog ------------------------------------------------------------------------------
    def _introspect(self) -> Catalog:
        return introspect(self)

    # -- seeding support ----------------------------------------------------------------------
    def adapt_value(self, column: Column, value: Any) -> Any:
        if column.kind == "json" and (isinstance(value, (dict, list, Decimal)) or value is jsontext.JSON_NULL):
            return jsontext.dumps(value, sort_keys=True, compact=True)  # numbers exact, JSON null as 'null'
        if value is None or isinstance(value, (str, int, float, bytes)) and not isinstance(value, bool):
            if column.kind == "json" and isinstance(value, (str, int, float)):
                return json.dumps(value)
            return value
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, Decimal):
            return str(value) if column.kind in ("numeric", "text", "other") else float(value)
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ")
        if isinstance(value, (dt.date, dt.time)):
            return value.isoformat()
        if isinstance(value, (dict, list)):
            return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        return str(value)

    def table_exists(self, name: str) -> bool:
        return self.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? UNION ALL "
                             "SELECT 1 FROM sqlite_temp_master WHERE type = 'table' AND name = ?",
                             [name, name]) is not None

    def create_stage(self, name: str, columns: Sequence[tuple[str, str]], *, ordinal: str | None = None) -> str:
        parts = [f"{self.quote(c)} {t}" for c, t in columns]
        if ordinal:  # an alias of the rowid: numbered 1, 2, 3… in insert order
            parts.insert(0, f"{self.quote(ordinal)} INTEGER PRIMARY KEY")
        cols = ", ".join(parts)
        self.execute(f"DROP TABLE IF EXISTS temp.{self.quote(name)}")
        self.execute(f"CREATE TEMP TABLE {self.quote(name)} ({cols})")
        return f"temp.{self.quote(name)}"

    def load_rows(self, table_sql: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        stmt = (f"INSERT INTO {table_sql} ({self.columns_list(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})")
        n = 0
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 5000:
                self.executemany(stmt, batch)
                n += len(batch)
                batch = []
        if batch:
            self.executemany(stmt, batch)
            n += len(batch)
        return n

    def passthrough(self, column: Column) -> bool:
        return False  # SQLite stores whatever it is given: every value is checked in Python

    def distinct(self, a: str, b: str, column: Column) -> str:
        return f"{a} IS NOT {b}"

    def json_key(self, exprs: Sequence[str]) -> str:
        return f"json_array({', '.join(exprs)})"

    def lock_for_seeding(self, timeout: float, contended: Callable[[], None] | None = None) -> None:
        pass  # transaction() already began with BEGIN IMMEDIATE: the database-wide write lock

    def defer_constraints(self) -> None:
        self.execute("PRAGMA defer_foreign_keys = ON")

    def sync_sequence(self, sequence: str, feeds: Sequence[tuple[TableName, str]]) -> None:
        pass  # INTEGER PRIMARY KEY (and sqlite_sequence) always follow max(rowid)

    # -- migrations -------------------------------------------------------------------------------
    @classmethod
    def split(cls, text: str, line_offset: int = 1) -> list[Statement]:
        return statements.split_sqlite(text, line_offset)

    @classmethod
    def needs_no_transaction(cls, stmt: Statement, server_version: int | None = None) -> str | None:
        return statements.needs_no_transaction(stmt, server_version)

    def touches_history(self, stmt: Statement, history: TableName, log: TableName) -> str | None:
        from .migration import touches_history

        return touches_history(stmt, history, log)

    def migration_session(self, history: TableName, lock_timeout: float) -> MigrationSession:
        from .migration import SQLiteSession

        return SQLiteSession(self, history, lock_timeout)

    def history_timestamp(self, now: dt.datetime) -> Any:
        return now.isoformat(timespec="microseconds")

    def rewrites_inserted_rows(self, tables: Sequence[TableName]) -> list[TableName]:
        # any trigger on the table (one run before an insert may drop the row with RAISE(IGNORE))
        with_triggers = {name for (name,) in self.fetchall("SELECT DISTINCT tbl_name FROM sqlite_master "
                                                           "WHERE type = 'trigger'")}
        return [t for t in tables if t.name in with_triggers]

    def check_constraint(self, table: TableName, name: str) -> tuple[str, list[str]] | None:
        from ...schema.checks import sqlite_check_clauses

        row = self.fetchone("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table.name])
        if row is None or not row[0]:
            return None
        # SQLite names the expression as written when the constraint has no name of its own
        expression = next((expr for own, expr in sqlite_check_clauses(row[0]) if name in (own, expr)), None)
        if not expression:
            return None
        found = self.catalog().tables.get(table)
        columns = found.columns if found is not None else {}
        # (the columns the expression reads: the table's whose names it holds as a word, quoted or not)
        return expression, [c for c in columns if re.search(
            r"(?<![\w$])" + re.escape(c) + r"(?![\w$])", expression, re.IGNORECASE)]

    def relation_exists(self, table: TableName) -> bool:
        row = self.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table.name])
        return row is not None

    def error_offset(self, exc: Exception, stmt: Statement) -> int | None:
        # SQLite gives no error offset; its messages name the token or object, which is looked for
        return statements.named_in_message(str(getattr(exc, "message", exc)), stmt.sql)

    # -- whole databases --------------------------------------------------------------------------
    @classmethod
    def database_exists(cls, url: DatabaseURL) -> bool:
        return admin.database_exists(url)

    @classmethod
    def create_database(cls, url: DatabaseURL, *, template: DatabaseURL | None = None) -> None:
        admin.create_database(url, template=template)

    @classmethod
    def drop_database(cls, url: DatabaseURL, *, missing_ok: bool = True, force: bool = True) -> None:
        admin.drop_database(url, missing_ok=missing_ok, force=force)

    # -- the pytest plugin ------------------------------------------------------------------------
    @classmethod
    def rolled_back_connection(cls, url: DatabaseURL) -> Any:
        return testing.rolled_back_connection(url)

    @classmethod
    def test_transaction(cls, conn: Any) -> Generator[Any, None, bool]:
        return testing.test_transaction(conn)

    @classmethod
    def connection_closed(cls, conn: Any) -> bool:
        return testing.connection_closed(conn)
