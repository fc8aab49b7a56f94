"""The one small interface both database adapters implement.

Dialect differences live here and in the two adapters, not in ``if dialect == …`` branches spread
through the seed engine and the migration runner.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from .._record import dataclass
from ..urls import DatabaseURL
from .catalog import Catalog, Column, Table, TableName

if TYPE_CHECKING:  # pragma: no cover
    from ..errors import DatabaseError
    from .migration import InvalidIndex, RecordApplied, Watcher
    from .statements import Statement


# what a test's connection says when asked to commit or roll back by itself
NOT_COMMITTABLE = ("seedkit_conn is rolled back after every test, so it cannot {what}; use "
                   "seedkit_fresh_db_url for a test that must commit, or a savepoint for a partial rollback")


@dataclass
class TableShape:
    """What a skip record covers of a table besides its rows (its layout, types, triggers, …)."""

    digest: str
    relids: list[int]  # the relations holding its rows (itself, or its partitions and children)
    unsafe: str | None  # why its unchanged rows may not be skipped (it has triggers, …), or None
    # partitioned, or with inheritance children: a write cannot return the row versions' xmin
    tree: bool = False
    # a column's type (at any depth: domains, arrays, composites, ranges) reads a name as the oid the catalog
    # gives it now (``regclass`` and the like): the same text stores another value once the object is made again
    oids: bool = False


class Database(abc.ABC):
    dialect: ClassVar[str]
    placeholder: ClassVar[str]  # "%s" or "?"
    # defer_constraints() defers every foreign key, not only the DEFERRABLE ones (SQLite's pragma)
    defers_every_foreign_key: ClassVar[bool] = False
    file_based: ClassVar[bool] = False  # a database is a file (its URL's path), not a name on a server

    def __init__(self, url: DatabaseURL, conn: Any):
        self.url = url
        self.conn = conn  # the driver's connection (psycopg.Connection or sqlite3.Connection)
        self._catalog: Catalog | None = None

    # -- statements ---------------------------------------------------------------------------
    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """Run one statement; return the driver cursor. Driver errors become ``DatabaseError``."""

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return list(self.execute(sql, params).fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple | None:
        return self.execute(sql, params).fetchone()

    def fetchall_binary(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """``fetchall``, the values sent in the driver's binary format where it has one (a large ``bytea``
        then travels as its bytes, not as hex text twice their size)."""
        return self.fetchall(sql, params)

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Begin (or, nested, a savepoint); commit on success, roll back on any exception."""

    @property
    @abc.abstractmethod
    def in_transaction(self) -> bool: ...

    # -- names --------------------------------------------------------------------------------
    @abc.abstractmethod
    def quote(self, identifier: str) -> str:
        """Quote one identifier with the driver's own quoting."""

    def qualified(self, table: TableName) -> str:
        if table.schema is None:
            return self.quote(table.name)
        return f"{self.quote(table.schema)}.{self.quote(table.name)}"

    def typed_placeholder(self, column: Column) -> str:
        """A parameter the database reads as a value of ``column``'s type (in a VALUES list, say)."""
        return self.placeholder

    def columns_list(self, columns: Sequence[str]) -> str:
        return ", ".join(self.quote(c) for c in columns)

    # -- catalog ------------------------------------------------------------------------------
    def catalog(self, refresh: bool = False) -> Catalog:
        if self._catalog is None or refresh:
            self._catalog = self._introspect()
        return self._catalog

    @abc.abstractmethod
    def _introspect(self) -> Catalog: ...

    # -- seeding support: what the seed engine needs that differs by dialect -----------------------
    @abc.abstractmethod
    def adapt_value(self, column: Column, value: Any) -> Any:
        """A converted fixture value → what this driver sends for ``column``."""

    @abc.abstractmethod
    def create_stage(self, name: str, columns: Sequence[tuple[str, str]], *, ordinal: str | None = None) -> str:
        """Create a temporary staging table (dropped at commit/rollback); return its quoted name.

        ``ordinal``: also a first column of that name the database numbers 1, 2, 3… in load order.
        """

    def row_formatter(self) -> Callable[[Sequence[Sequence[Any]]], bytearray] | None:
        """A function formatting rows the way ``load_rows`` sends them, or None (see seed/skip_tracker.py)."""
        return None

    def load_buffers(self, table_sql: str, columns: Sequence[str], buffers: Iterable[bytes | bytearray]) -> None:
        raise NotImplementedError

    def create_temporary(self, name: str, definition: str) -> None:
        """Create temporary table ``name`` (quoted) holding ``definition``, gone when the run ends."""
        self.execute(f"CREATE TEMP TABLE {name} ({definition})")

    # -- skipping unchanged rows (seed/skip_tracker.py): only where row_formatter() is not None --------
    # (and deciding reruns from digests, seed/rerun.py: only where rows carry the id of the transaction
    # that wrote them, which fingerprints and snapshots need)
    row_versions = False
    # a server worth connecting to while a run's files are still read (seed/parallel.py): connecting, the
    # seed lock and the catalog take their own time there; an embedded file opens at once
    connect_while_reading = False

    def snapshot_sql(self) -> str:
        """SQL for the current statement's snapshot as text (compared by ``others_committed``)."""
        raise NotImplementedError

    def fingerprints(self, tables: Sequence[TableName], *, snapshot: bool = False
                     ) -> tuple[str | None, list[list[Any]]]:
        """In one statement: its snapshot (when asked) and each table's fingerprint [rows, "hash sum"]."""
        raise NotImplementedError

    def table_writes(self, relids: list[int]) -> int:
        """Rows this transaction has written to these relations so far (cascades and triggers included)."""
        raise NotImplementedError

    def table_shape(self, table: TableName) -> TableShape:
        raise NotImplementedError

    def table_constraints(self, tables: Sequence[TableName]) -> list[Any]:
        """Every constraint and index of these tables, as the database defines them (seed/rerun.py)."""
        raise NotImplementedError

    def check_constraint(self, table: TableName, name: str) -> tuple[str, list[str]] | None:
        """The CHECK constraint ``name`` of ``table``: its expression, as SQL over the table's columns
        unqualified, and the columns it reads; None when there is none by that name (or the adapter cannot
        say)."""
        return None

    def table_shapes(self, tables: Sequence[TableName]) -> list[TableShape]:
        """``table_shape`` of each table (an adapter may ask for them all at once)."""
        return [self.table_shape(t) for t in tables]

    @property
    def driver_version(self) -> str:
        """The driver's version: a skip record made by another one is not trusted."""
        return "?"

    def database_identity(self) -> list[Any]:
        """What tells this database apart from a restored copy elsewhere (cluster, database, search path)."""
        raise NotImplementedError

    def others_committed(self, since: str, until: str, limit: int = 20000) -> bool | None:
        """Did another transaction commit between two snapshots of this one? None: too many to ask cheaply."""
        raise NotImplementedError

    def text_settings(self) -> list[Any]:
        """Session settings that change how the same text is read into values."""
        return []

    def row_version_hash(self, alias: str = "") -> str | None:
        """SQL hashing the id of the transaction that wrote a row version (summed by ``fingerprint``)."""
        return None

    def row_identity(self, alias: str) -> str | None:
        """SQL for where a row of ``alias`` is stored (two rows of a join naming the same place are one row
        of the table), or None where there is no such thing to read."""
        return None

    def background_statements(self) -> bool:
        """Whether another thread may run this connection's statements while this one waits (seed/overlap.py)."""
        return False

    def writes_elsewhere(self, tables: Sequence[TableName]) -> list[TableName]:
        """Those of ``tables`` whose writes may change what reads of other tables see (a trigger, a rule,
        partitions or inheritance, a foreign key's ON UPDATE / ON DELETE action)."""
        return list(tables)

    def rewrites_inserted_rows(self, tables: Sequence[TableName]) -> list[TableName]:
        """Those of ``tables`` where a row may not go in as it was sent: a trigger run before the insert of
        each row may change it or drop it, or a rule may send it elsewhere (on the table, or on a partition
        its rows go to). There a unique key may not refuse two rows that were sent with the same key."""
        return list(tables)

    def reads_elsewhere(self, tables: Sequence[TableName]) -> list[TableName]:
        """Those of ``tables`` whose reads may read other tables too (row-level security policies)."""
        return list(tables)

    def cancel(self) -> None:  # noqa: B027 - SQLite runs every statement on the caller's thread
        """Ask the server to cancel the statement running on this connection (called from another thread)."""

    def few_rows_join(self) -> AbstractContextManager[None]:
        """While inside: joins of a few rows against large tables use index lookups."""
        return contextlib.nullcontext()

    def no_lock_waits(self) -> AbstractContextManager[None]:
        """While inside: a statement meeting a row (or table) another session locked fails at once instead
        of waiting for it (on an error the savepoint it runs under restores the setting)."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def load_rows(self, table_sql: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Stream rows into a table (COPY on PostgreSQL, batched executemany on SQLite); return the count."""

    @abc.abstractmethod
    def passthrough(self, column: Column) -> bool:
        """True when the driver can take a native Python value for ``column`` as it is."""

    @abc.abstractmethod
    def distinct(self, a: str, b: str, column: Column) -> str:
        """SQL that is true when ``a`` and ``b`` differ, NULL-aware (``IS DISTINCT FROM``)."""

    @abc.abstractmethod
    def json_key(self, exprs: Sequence[str]) -> str:
        """SQL building a canonical text form of a key (for the prune ledger)."""

    @abc.abstractmethod
    def lock_for_seeding(self, timeout: float, contended: Callable[[], None] | None = None) -> None:
        """Take the per-database seed lock for the current transaction (LockTimeout after ``timeout``).
        ``contended``: called once, before waiting, when another session holds the lock."""

    @abc.abstractmethod
    def defer_constraints(self) -> None:
        """Defer foreign-key checks to commit where the database allows it."""

    @abc.abstractmethod
    def sync_sequence(self, sequence: str, feeds: Sequence[tuple[TableName, str]]) -> None:
        """Move ``sequence`` to at least the largest value over every column it feeds, never backwards."""

    def insert_override(self, table: Table, columns: Sequence[str]) -> str:
        """Extra clause needed to insert explicit values into ``columns`` (identity ALWAYS)."""
        return ""

    def table_exists(self, name: str) -> bool:
        """Whether ``name`` (unqualified, as seedkit's own tables are) resolves to a table now."""
        return name in {t.name for t in self.catalog(refresh=True).tables}

    def begin_read_only_run(self) -> None:  # noqa: B027 - only PostgreSQL has anything to do
        """First statement of a run that writes nothing (``--check``, ``--dry-run``)."""

    def missing_ledger(self, name: str, columns: Sequence[str]) -> bool:
        """A read-only run that cannot create even a temporary table: stand in an empty ``name``."""
        return False

    def lock_tables(self, tables: Sequence[TableName], timeout: float, *,  # noqa: B027 - SQLite: one lock
                    write: bool) -> None:
        """Wait at most ``timeout`` seconds for each table's lock (LockTimeout naming the table and
        who holds it), in the order given."""

    def table_lock_holders(self, table: TableName | str | None = None, *, write: bool = True) -> str:
        """Who else holds a lock on ``table`` (None: any lock in the way), for a lock-timeout message
        ("" when unknown)."""
        return ""

    # -- migrations: what the runner needs that differs by dialect --------------------------------
    # column types of the history tables: (timestamp, big integer, generated integer primary key)
    history_types: ClassVar[tuple[str, str, str]]
    # whether cutting a section costs enough (a parser to load) that the runner keeps the cuts it made
    # (``migrate/split_cache.py``); a dialect saying so answers ``Judged`` nodes in ``needs_no_transaction``
    # and ``touches_history``, and parses their text again for anything else
    keeps_splits: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def split(cls, text: str, line_offset: int = 1) -> list[Statement]:
        """The statements of a migration section, in order; ``line_offset``: the file line it starts on."""

    @classmethod
    def split_for_run(cls, text: str, line_offset: int = 1, *, names: tuple[str, ...] = (),
                      server_version: int | None = None) -> list[Statement]:
        """``split`` for the runner, which asks each statement only ``needs_no_transaction`` and
        ``touches_history`` (of the tables ``names``): a dialect may answer those more cheaply."""
        return cls.split(text, line_offset)

    @classmethod
    @abc.abstractmethod
    def needs_no_transaction(cls, stmt: Statement, server_version: int | None = None) -> str | None:
        """Why ``stmt`` cannot run inside a transaction (e.g. ``"CREATE INDEX CONCURRENTLY"``), or ``None``.

        Transaction control (``BEGIN``, ``COMMIT``…) is reported too: inside a transactional migration it
        would end the runner's transaction and break the all-or-nothing promise.
        ``server_version``: ``server_version_num`` where the database has one (PostgreSQL 150004)."""

    @classmethod
    def copies_with_client(cls, stmt: Statement) -> str | None:
        """``"COPY … FROM STDIN"`` (or ``TO STDOUT``) when ``stmt`` exchanges rows with the client, as
        psql does with the lines after it: a migration's text cannot carry them. Else None."""
        return None

    @abc.abstractmethod
    def touches_history(self, stmt: Statement, history: TableName, log: TableName) -> str | None:
        """What ``stmt`` would do to the runner's own history tables (drop, truncate, rename), or None."""

    @abc.abstractmethod
    def migration_session(self, history: TableName, lock_timeout: float) -> MigrationSession:
        """This connection, holding the run lock of the history table ``history`` while it migrates."""

    def default_schema(self) -> str | None:
        """The schema an unqualified history table goes to (None: the database has no schemas)."""
        return None

    def history_timestamp(self, now: datetime) -> Any:
        """``now`` as this driver stores it in a history table."""
        return now

    @abc.abstractmethod
    def relation_exists(self, table: TableName) -> bool:
        """Whether ``table`` (qualified as given) exists now."""

    def invalid_indexes(self, statements: list[Statement]) -> list[InvalidIndex]:
        """Invalid indexes that failed concurrent builds among ``statements`` left behind."""
        return []

    def error_offset(self, exc: Exception, stmt: Statement) -> int | None:
        """Offset in ``stmt.sql`` of what a failed statement's error points at, when it can be told."""
        position = getattr(exc, "position", None)
        return int(position) - 1 if position else None

    def error_in_code_block(self, exc: Exception, stmt: Statement, sql: str,
                            line_offset: int) -> tuple[int, int] | None:
        """File line and column of an error inside a code block (``DO``) of ``stmt``, or None."""
        return None

    def connection_lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` means this connection is gone (and the run lock it held with it)."""
        return False

    # -- whole databases (reset, the pytest plugin): class methods, the database may not exist ---------
    @classmethod
    @abc.abstractmethod
    def database_exists(cls, url: DatabaseURL) -> bool: ...

    @classmethod
    @abc.abstractmethod
    def create_database(cls, url: DatabaseURL, *, template: DatabaseURL | None = None) -> None:
        """Create the database ``url`` names, empty or as a copy of ``template``."""

    @classmethod
    @abc.abstractmethod
    def drop_database(cls, url: DatabaseURL, *, missing_ok: bool = True, force: bool = True) -> None:
        """Drop the database; ``force`` ends other sessions first where there are any."""

    @classmethod  # noqa: B027 - a file: nothing to ask
    def check_resettable(cls, url: DatabaseURL, *, force: bool) -> None:
        """Refuse (``RefusedError``) before anything is dropped when a drop-and-create could not finish."""

    # -- the pytest plugin --------------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def rolled_back_connection(cls, url: DatabaseURL) -> Any:
        """A DB-API connection of this driver whose ``commit()`` and ``rollback()`` refuse (a test's
        work is always rolled back)."""

    @classmethod
    @abc.abstractmethod
    def test_transaction(cls, conn: Any) -> Generator[Any, None, bool]:
        """Yield ``conn`` (from ``rolled_back_connection``) inside a transaction that is always rolled
        back; return whether the test itself ended that transaction."""

    @classmethod
    @abc.abstractmethod
    def connection_closed(cls, conn: Any) -> bool:
        """Whether the test closed (or broke) ``conn``: the next test gets a new one."""

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def server_version(self) -> str: ...

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection
            self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


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

    def applied_in_one_query(self, text: str, statements: list[Statement],
                             record: RecordApplied) -> Iterator[DatabaseError | None] | None:
        """Apply a transactional migration's whole ``text`` with its history rows as one query: yield
        each result as it arrives (the ``BEGIN``, each statement, the history rows, the ``COMMIT``; an
        error ends them; the dialect may add results of its own between them, said where it is defined), or
        return ``None`` when the dialect runs migrations statement by statement."""
        return None

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
