"""PostgreSQL adapter (psycopg 3)."""

from __future__ import annotations

import logging
import re
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from itertools import repeat
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.adapt import Transformer
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from ... import jsontext
from ...errors import ConfigError, DatabaseError, LockTimeout
from ...urls import DatabaseURL, mask
from ..base import Database, MigrationSession, TableShape
from ..catalog import Catalog, Column, Table, TableName
from . import fingerprints as pg_fingerprints
from .catalog import introspect

if TYPE_CHECKING:  # (migrations' own modules: imported by the methods that run them, not by every seed run)
    from ..migration import InvalidIndex
    from ..statements import Statement

try:  # the C formatter behind copy.write_row (psycopg >= 3.2; 3.1 kept it in psycopg.copy)
    from psycopg._copy_base import format_row_text as _format_row_text
except ImportError:  # pragma: no cover - depends on the installed psycopg
    try:
        from psycopg.copy import format_row_text as _format_row_text  # type: ignore[attr-defined,no-redef]
    except ImportError:
        _format_row_text = None  # type: ignore[assignment]

# Connection problems worth waiting for (server starting, not yet listening); others fail at once.
_TRANSIENT = ("connection refused", "the database system is starting up", "could not connect",
              "no such file or directory", "timeout expired", "server closed the connection")


# SQLSTATE of a connection that went away (class 08, or the server shutting the session down)
CONNECTION_LOST = "08006"
_LOST_STATES = ("57P01", "57P02", "57P03")


def _lost(exc: psycopg.Error) -> bool:
    """The connection is gone: psycopg says so without a server error (sqlstate None), or the server
    ended the session (terminated, shutting down)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _LOST_STATES


class _IgnoredRollbacks(logging.Filter):
    """psycopg logs, and otherwise ignores, the error of a rollback that failed after the block's own error
    (which it raises): a session terminated meanwhile says why only there. Kept per connection as its last
    word (``last_word``), never printed: a user sees the run's error, not the driver's log."""

    said: weakref.WeakKeyDictionary[Any, BaseException] = weakref.WeakKeyDictionary()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("error ignored in rollback"):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 2 and isinstance(args[1], BaseException):
            owner = getattr(args[0], "connection", args[0])  # a transaction's connection, or the connection
            with suppress(TypeError):  # (not weakly referable: nothing to keep)
                self.said[owner] = args[1]
        return False


_ROLLBACKS = _IgnoredRollbacks()
for _name in ("psycopg", "psycopg.transaction"):  # (a filter sees only its own logger's records)
    logging.getLogger(_name).addFilter(_ROLLBACKS)


def last_word(conn: Any, err: DatabaseError) -> DatabaseError:
    """``err``, raised out of a transaction block on ``conn``; or, when the session ended meanwhile (its
    rollback failed: terminated, the server gone), the lost connection with the server's reason."""
    later = _ROLLBACKS.said.pop(conn, None)
    if err.sqlstate == CONNECTION_LOST:
        return err
    if isinstance(later, psycopg.Error) and _lost(later):
        return translate(later)
    if conn.closed:
        return translate(psycopg.OperationalError("the server closed the connection"))
    return err


def _connect_hint(message: str) -> str:
    text = message.lower()
    if "password authentication failed" in text or "no password supplied" in text:
        return ("check the password: in the URL (percent-encoded), PGPASSWORD, the password file "
                "(PGPASSFILE, ~/.pgpass) or the service file")
    if 'database "' in text and "does not exist" in text:
        return "is the URL right? (`seedkit reset ENV` creates a missing database)"
    if "service" in text and ("not found" in text or "definition" in text):
        return "check the service name and the service file (PGSERVICEFILE, ~/.pg_service.conf)"
    return "is the database running and the URL right?"


_ROLE = "<this role>"  # in hints: replaced by the session's user where it is known


def translate(exc: psycopg.Error) -> DatabaseError:
    if _lost(exc):
        text = (exc.diag.message_primary if exc.sqlstate and exc.diag.message_primary else str(exc)).strip()
        err = DatabaseError(mask(f"connection lost: {text.splitlines()[0] if text else 'no reason given'}"),
                            sqlstate=CONNECTION_LOST,
                            hint="the server rolled back the open transaction; check the server, then run again")
        err.position = err.copy_line = err.copy_column = None  # type: ignore[attr-defined]
        return err
    diag = getattr(exc, "diag", None)
    if exc.sqlstate == "25006" and diag is not None and not diag.message_hint:  # read_only_sql_transaction
        err = DatabaseError(mask((diag.message_primary or str(exc)).strip()), sqlstate=exc.sqlstate,
                            hint="the database is read-only (a hot standby, or default_transaction_read_only "
                                 "for it or for this role): seed the primary; --check and --dry-run work here")
        err.position = err.copy_line = err.copy_column = err.context = None  # type: ignore[attr-defined]
        return err
    message = (diag.message_primary if diag and diag.message_primary else str(exc)).strip()
    detail = diag.message_detail if diag else None
    hint = diag.message_hint if diag else None
    if exc.sqlstate == "42501" and not hint:  # "permission denied …": say which privilege is missing
        from ..provision import privilege_hint

        hint = privilege_hint(message, role=_ROLE)
    err = DatabaseError(mask(message + (f" ({detail})" if detail else "")), sqlstate=exc.sqlstate,
                        hint=mask(hint) if hint else None)
    err.position = int(diag.statement_position) if diag and diag.statement_position else None  # type: ignore[attr-defined]
    err.context = diag.context if diag else None  # type: ignore[attr-defined]
    m = _COPY_CONTEXT.search(diag.context or "") if diag else None
    err.copy_line = int(m[1]) if m else None  # type: ignore[attr-defined]
    err.copy_column = m[2] if m and m[2] else None  # type: ignore[attr-defined]
    err.column_name = diag.column_name if diag else None  # type: ignore[attr-defined]
    err.constraint_name = diag.constraint_name if diag else None  # type: ignore[attr-defined]
    return err


_COPY_CONTEXT = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([^:]+))?")


class PostgresDatabase(Database):
    dialect = "postgresql"
    placeholder = "%s"
    connect_while_reading = True
    history_types = ("timestamptz", "bigint", "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")

    @classmethod
    def connect(cls, url: DatabaseURL, *, wait: float = 10.0, autocommit: bool = True,
                application_name: str = "seedkit", lock_timeout: float | None = None,
                busy_timeout: float | None = None, create: bool = True) -> PostgresDatabase:
        """``lock_timeout``: PostgreSQL takes it per transaction, in lock_for_seeding and lock_tables;
        ``busy_timeout`` and ``create`` are SQLite's: a server waits for locks, and never creates."""
        deadline = time.monotonic() + wait
        delay = 0.1
        while True:
            try:
                conn = psycopg.connect(url.raw, autocommit=autocommit, application_name=application_name,
                                       connect_timeout=max(2, int(wait) or 2))
                return cls(url, conn)
            except psycopg.OperationalError as exc:
                text = str(exc).lower()
                if time.monotonic() >= deadline or not any(t in text for t in _TRANSIENT):
                    message = mask(str(exc).strip().removeprefix("connection is bad: "))
                    raise DatabaseError(f"cannot connect to {url}: {message}", sqlstate=exc.sqlstate,
                                        hint=_connect_hint(message)) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except psycopg.Error as exc:  # options libpq or psycopg refuse before connecting
                raise ConfigError(f"cannot connect to {url}: {mask(str(exc).strip())}",
                                  hint="check the connection options in the URL") from None

    # Stages kept in memory instead of temporary tables (a hot standby cannot create any): a statement
    # that names one gets a WITH clause of that name holding its rows (see begin_read_only_run).
    _virtual: dict[str, _VirtualStage] | None = None

    def _expand(self, statement: str | sql.Composable) -> str | sql.Composable:
        if not self._virtual:
            return statement
        text = statement if isinstance(statement, str) else statement.as_string(self.conn)
        ctes = [stage.cte(token, self.conn) for token, stage in self._virtual.items() if token in text]
        if not ctes:
            return text
        # the stage's name now names a common table expression holding its rows
        m = re.match(r"\s*WITH(\s+RECURSIVE)?\s", text, re.IGNORECASE)
        if m:
            return text[:m.end()] + ", ".join(ctes) + ", " + text[m.end():]
        return "WITH " + ", ".join(ctes) + " " + text

    def _translate(self, exc: psycopg.Error) -> DatabaseError:
        err = translate(exc)
        if err.hint and _ROLE in err.hint:
            err.hint = err.hint.replace(_ROLE, self.quote(self.conn.info.user))
        return err

    def execute(self, statement: str | sql.Composable, params: Sequence[Any] | None = None) -> Any:
        try:
            return self.conn.execute(self._expand(statement), params)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise self._translate(exc) from exc

    def fetchall_binary(self, statement: str, params: Sequence[Any] | None = None) -> list[tuple]:
        try:
            with self.conn.cursor(binary=True) as cur:
                return list(cur.execute(self._expand(statement), params).fetchall())  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise self._translate(exc) from exc

    def executemany(self, statement: str | sql.Composable, rows: Sequence[Sequence[Any]]) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.executemany(self._expand(statement), rows)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise translate(exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        outermost = not self.in_transaction
        body_done = False
        try:
            with self.conn.transaction():
                yield
                body_done = True
        except psycopg.Error as exc:
            err = last_word(self.conn, translate(exc))
            if outermost and body_done and err.sqlstate == CONNECTION_LOST:
                err.hint = ("the connection was lost while committing: the run may or may not have been "
                            "written; run it again (a rerun changes only what differs)")
            raise err from exc
        except DatabaseError as exc:  # (a statement's error, translated; its rollback may have found the session gone)
            err = last_word(self.conn, exc)
            if err is exc:
                raise
            raise err from exc

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def cancel(self) -> None:
        with suppress(psycopg.Error):  # (the connection may be gone already)
            if hasattr(self.conn, "cancel_safe"):  # psycopg >= 3.2: a cancel that never blocks for long
                self.conn.cancel_safe(timeout=5.0)
            else:
                self.conn.cancel()

    def quote(self, identifier: str) -> str:
        return sql.Identifier(identifier).as_string(self.conn)

    @property
    def server_version(self) -> str:
        v = self.conn.info.server_version
        return f"{v // 10000}.{v % 10000}"

    def typed_placeholder(self, column: Column) -> str:
        return f"CAST(%s AS {column.type})"

    # -- catalog ------------------------------------------------------------------------------
    def _introspect(self) -> Catalog:
        return introspect(self)

    # -- seeding support ----------------------------------------------------------------------
    SEED_LOCK_KEY = 0x5EED_0001

    def adapt_value(self, column: Column, value: Any) -> Any:
        if value is None:
            return None
        if column.kind == "json":
            return Jsonb(value, dumps=jsontext.dumps)  # numbers exact, JSON null apart from SQL NULL
        return value

    def create_stage(self, name: str, columns: Sequence[tuple[str, str]], *, ordinal: str | None = None) -> str:
        if self._virtual is not None:
            token = self.quote(name)
            self._virtual[token] = _VirtualStage(list(columns), ordinal)
            return token
        parts = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns]
        if ordinal:  # numbered by the server in COPY order: 1, 2, 3, …
            parts.insert(0, sql.SQL("{} bigint GENERATED ALWAYS AS IDENTITY (CACHE 10000)").format(
                sql.Identifier(ordinal)))
        try:
            self.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
                sql.Identifier(name), sql.SQL(", ").join(parts)))
        except DatabaseError as exc:
            if exc.sqlstate == "42501":  # insufficient privilege: TEMP on the database
                exc.hint = ("seedkit stages fixture rows in temporary tables: GRANT TEMPORARY ON DATABASE "
                            f"{self.quote(self.conn.info.dbname)} TO {self.quote(self.conn.info.user)}")
            raise
        return self.quote(name)

    def row_formatter(self) -> Callable[[Sequence[Sequence[Any]]], bytearray] | None:
        """Rows → COPY text, exactly as ``copy.write_row`` sends them (see seed/skip_tracker.py).
        None when this psycopg does not expose its formatter (or stages are kept in memory)."""
        if _format_row_text is None or self._virtual is not None:
            return None
        tx = Transformer(self.conn)

        def fmt(rows: Sequence[Sequence[Any]]) -> bytearray:
            buf = bytearray()
            try:
                any(map(_format_row_text, rows, repeat(tx), repeat(buf)))  # returns None: formats every row, in C
            except (TypeError, ValueError, OverflowError, psycopg.DataError, psycopg.ProgrammingError) as exc:
                raise DatabaseError(f"cannot send value: {exc}") from exc
            return buf

        return fmt

    def load_buffers(self, table_sql: str, columns: Sequence[str], buffers: Iterable[bytes | bytearray]) -> None:
        """COPY data already in COPY text form (see ``row_formatter``)."""
        with self._copy_in(table_sql, columns) as copy:
            write = copy.write
            for data in buffers:
                write(data)

    @contextmanager
    def _copy_in(self, table_sql: str, columns: Sequence[str]) -> Iterator[psycopg.Copy]:
        """``COPY … FROM STDIN``; driver errors become ``DatabaseError``."""
        stmt = f"COPY {table_sql} ({self.columns_list(columns)}) FROM STDIN"
        try:
            with self.conn.cursor() as cur, cur.copy(stmt) as copy:  # type: ignore[arg-type]
                yield copy
        except psycopg.Error as exc:
            raise translate(exc) from exc
        except (TypeError, ValueError, OverflowError) as exc:  # a value psycopg cannot send
            raise DatabaseError(f"cannot send value: {exc}") from exc

    def create_temporary(self, name: str, definition: str) -> None:
        self.execute(f"CREATE TEMP TABLE {name} ({definition}) ON COMMIT DROP")

    # -- skipping unchanged rows (the SQL lives in db/postgres/fingerprints.py) ------------------------------
    row_versions = True

    def snapshot_sql(self) -> str:
        return "txid_current_snapshot()::text"

    def fingerprints(self, tables: Sequence[TableName], *, snapshot: bool = False
                     ) -> tuple[str | None, list[list[Any]]]:
        return pg_fingerprints.fingerprints(self, [self.qualified(t) for t in tables], snapshot=snapshot)

    def table_writes(self, relids: list[int]) -> int:
        return pg_fingerprints.table_writes(self, relids)

    def table_shape(self, table: TableName) -> TableShape:
        return pg_fingerprints.table_shape(self, self.qualified(table))

    def table_constraints(self, tables: Sequence[TableName]) -> list[Any]:
        row = self.fetchone(
            "SELECT (SELECT json_agg(json_build_array(c.conrelid, c.conname, c.contype, pg_get_constraintdef(c.oid), "
            "c.convalidated, c.condeferrable, c.condeferred) ORDER BY c.conrelid, c.conname) FROM pg_constraint c "
            "WHERE c.conrelid = ANY(%(t)s::regclass[]))::text, "
            "(SELECT json_agg(json_build_array(i.indrelid, pg_get_indexdef(i.indexrelid), i.indisvalid, "
            "i.indisready) ORDER BY i.indrelid, i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%(t)s::regclass[]))::text", {"t": [self.qualified(t) for t in tables]})
        return list(row or ())

    def check_constraint(self, table: TableName, name: str) -> tuple[str, list[str]] | None:
        # (on the table itself: a partition inherits its parent's under the same name)
        row = self.fetchone(
            "SELECT pg_get_expr(c.conbin, c.conrelid), (SELECT array_agg(a.attname::text ORDER BY a.attnum) "
            "FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)) "
            "FROM pg_constraint c WHERE c.conrelid = %s::regclass AND c.conname = %s AND c.contype = 'c' "
            "AND c.convalidated",  # (NOT VALID: rows the table holds may break it, and the run keeps them)
            [self.qualified(table), name])
        return (row[0], list(row[1] or [])) if row is not None and row[0] else None

    def table_shapes(self, tables: Sequence[TableName]) -> list[TableShape]:
        return pg_fingerprints.table_shapes(self, [self.qualified(t) for t in tables])

    @property
    def driver_version(self) -> str:
        return psycopg.__version__

    def database_identity(self) -> list[Any]:
        return pg_fingerprints.database_identity(self)

    def others_committed(self, since: str, until: str, limit: int = 20000) -> bool | None:
        return pg_fingerprints.others_committed(self, since, until, limit)

    def text_settings(self) -> list[Any]:
        row = self.fetchone("SELECT current_setting('TimeZone'), current_setting('DateStyle'), "
                            "current_setting('IntervalStyle'), current_setting('server_encoding'), "
                            "current_setting('server_version_num'), current_setting('client_encoding'), "
                            # the zone an abbreviation such as EST names; how money and XML text read
                            "current_setting('timezone_abbreviations'), current_setting('lc_monetary'), "
                            "current_setting('xmloption')")
        return list(row or ())

    def background_statements(self) -> bool:
        return self._virtual is None  # (stages kept in memory: a dry run, which runs on one thread anyway)

    def writes_elsewhere(self, tables: Sequence[TableName]) -> list[TableName]:
        # a trigger or a rule; partitioned, a partition or another table's child (its rows are read through
        # its parent too); or referenced by a foreign key whose ON UPDATE / ON DELETE action writes the
        # referencing table (the triggers doing that are internal ones)
        return self._tables_where(
            tables, "c.relhasrules OR c.relkind <> 'r' OR c.relispartition "
            "OR EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal) "
            "OR EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid) "
            "OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.confrelid = c.oid AND k.contype = 'f' "
            "AND (k.confupdtype NOT IN ('a', 'r') OR k.confdeltype NOT IN ('a', 'r')))")

    def rewrites_inserted_rows(self, tables: Sequence[TableName]) -> list[TableName]:
        # a rule, or a row trigger fired before an insert (tgtype: ROW 1, BEFORE 2, INSERT 4), on the
        # table or any partition below it (pg_partition_tree lists none for a table outside a tree)
        return self._tables_where(
            tables, "EXISTS (SELECT 1 FROM pg_class r WHERE r.oid IN (SELECT c.oid UNION ALL "
            "SELECT p.relid FROM pg_partition_tree(c.oid) p) AND (r.relhasrules OR EXISTS (SELECT 1 "
            "FROM pg_trigger g WHERE g.tgrelid = r.oid AND NOT g.tgisinternal AND g.tgtype::int & 7 = 7)))")

    def reads_elsewhere(self, tables: Sequence[TableName]) -> list[TableName]:
        # a policy's expression may read any table (and applies to this role unless it bypasses them)
        return self._tables_where(tables, "c.relrowsecurity")

    def _tables_where(self, tables: Sequence[TableName], where: str) -> list[TableName]:
        """Those of ``tables`` whose ``pg_class`` row ``c`` meets ``where``, in one query."""
        rows = self.fetchall("SELECT x.i FROM unnest(%s::text[]) WITH ORDINALITY x(rel, i) "
                             "JOIN pg_class c ON c.oid = to_regclass(x.rel) WHERE " + where,
                             [[self.qualified(t) for t in tables]])
        return [tables[int(i) - 1] for (i,) in rows]

    @contextmanager
    def few_rows_join(self) -> Iterator[None]:
        # the planner would hash the whole large table for a few thousand staged rows; and the cost it then
        # estimates for the index lookups is high enough to compile the query (JIT), which takes longer
        # than the lookups themselves
        row = self.fetchone("SELECT current_setting('jit'), set_config('enable_hashjoin', 'off', true), "
                            "set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)")
        yield  # on an error the transaction (or savepoint) rolls back, and these settings with it
        self.execute("SELECT set_config('enable_hashjoin', 'on', true), set_config('enable_mergejoin', 'on', true), "
                     "set_config('jit', %s, true)", [row[0] if row else "on"])

    @contextmanager
    def no_lock_waits(self) -> Iterator[None]:
        row = self.fetchone("SELECT current_setting('lock_timeout'), set_config('lock_timeout', '10ms', true)")
        yield
        self.execute("SELECT set_config('lock_timeout', %s, true)", [row[0] if row else "0"])

    def row_identity(self, alias: str) -> str | None:
        return f"{alias}.ctid"  # (a partition's rows may share one with another's: a false alarm, never a miss)

    def row_version_hash(self, alias: str = "") -> str | None:
        return f"hashint8extended({alias + '.' if alias else ''}xmin::text::bigint, 0)"

    def load_rows(self, table_sql: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        if self._virtual is not None and table_sql in self._virtual:
            return self._virtual[table_sql].add(columns, rows)
        n = 0
        with self._copy_in(table_sql, columns) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
                n += 1
        return n

    def passthrough(self, column: Column) -> bool:
        # psycopg dumps Python's own types for these; the server parses and checks them
        return column.kind not in ("json", "array", "other", "interval")

    def distinct(self, a: str, b: str, column: Column) -> str:
        if column.kind == "json" and column.type == "json":
            return f"{a}::jsonb IS DISTINCT FROM {b}::jsonb"
        if column.kind == "other" and column.type in ("xml", "point", "line", "box", "polygon", "circle", "path"):
            return f"{a}::text IS DISTINCT FROM {b}::text"
        return f"{a} IS DISTINCT FROM {b}"

    def json_key(self, exprs: Sequence[str]) -> str:
        return f"json_build_array({', '.join(exprs)})::text"

    def lock_for_seeding(self, timeout: float, contended: Callable[[], None] | None = None) -> None:
        # all as SET LOCAL would, in one statement: staging tables are temporary, so give them memory
        # before their first use in this session, and the merge joins room to hash
        settings = [("temp_buffers", "256MB"), ("work_mem", "256MB")]
        if self.conn.info.server_version >= 140000:
            # a killed client's session stops at the next check instead of finishing its statement
            # while still holding the seed lock
            settings.append(("client_connection_check_interval", "1s"))
        # for the whole run: the seed lock, and every table lock another session holds (lock_tables
        # names the table and the holder; a wait on a row another session locked ends the same way)
        settings.append(("lock_timeout", f"{int(timeout * 1000)}ms"))
        self.execute("SELECT " + ", ".join(f"set_config('{name}', '{value}', true)" for name, value in settings))
        if contended is not None:
            got = self.fetchone("SELECT pg_try_advisory_xact_lock(%s)", [self.SEED_LOCK_KEY])
            if got is not None and got[0]:
                return
            contended()
        try:
            self.execute("SELECT pg_advisory_xact_lock(%s)", [self.SEED_LOCK_KEY])
        except DatabaseError as exc:
            if exc.sqlstate != "55P03":
                raise
            raise LockTimeout(f"another seedkit run holds the seed lock on {self.url}{self._lock_holder()}",
                              hint="wait for it to finish, or raise seeds.lock_timeout") from None

    def begin_read_only_run(self) -> None:
        """A database (or role) whose transactions default to read-only still lets a run that writes
        nothing stage its rows in temporary tables: this transaction alone is made read-write, and
        is rolled back at the end. A hot standby cannot have temporary tables at all."""
        if self.fetchone("SHOW transaction_read_only") != ("on",):
            return
        if self.conn.info.parameter_status("in_hot_standby") == "on":  # reported by PostgreSQL 14+
            # no temporary tables at all: the stages are kept here (and the ledger of a prune
            # fixture that never ran is an empty one)
            self._virtual = {}
            return
        self.execute("SET TRANSACTION READ WRITE")

    def missing_ledger(self, name: str, columns: Sequence[str]) -> bool:
        """Stand in an empty in-memory table for seedkit's own table ``name`` when a read-only run
        cannot create even a temporary one; False when it can."""
        if self._virtual is None:
            return False
        self._virtual[self.quote(name)] = _VirtualStage([(c, "text") for c in columns], None)
        return True

    def lock_tables(self, tables: Sequence[TableName], timeout: float, *, write: bool) -> None:
        mode = "ROW EXCLUSIVE" if write else "ACCESS SHARE"
        for table in tables:
            try:
                self.execute(f"LOCK TABLE {self.qualified(table)} IN {mode} MODE")
            except DatabaseError as exc:
                if exc.sqlstate != "55P03":
                    raise
                raise LockTimeout(f"waited {timeout:g} s for a lock on table {table}: "
                                  f"{self.table_lock_holders(table) or 'another session holds it'}",
                                  hint="wait for that session to finish (or end it), or raise "
                                       "[seeds] lock_timeout") from None

    def table_lock_holders(self, table: TableName | str | None = None, *, write: bool = True) -> str:
        """Who holds a lock on ``table`` (None: the table locks that block reading, or writing, any
        table), asked on a second connection: this one may be in a failed transaction. Only client
        sessions holding a mode that can be in the way are named: not a reader (ACCESS SHARE) nor a
        vacuum or analyze (SHARE UPDATE EXCLUSIVE, autovacuum's own), which hold no row locks and do
        not conflict with the ROW EXCLUSIVE or ACCESS SHARE a run takes."""
        try:
            other = psycopg.connect(self.url.raw, autocommit=True, connect_timeout=5)
        except psycopg.Error:
            return ""
        modes = ["AccessExclusiveLock"] + (["ShareLock", "ShareRowExclusiveLock", "ExclusiveLock"] if write else [])
        name = self.qualified(table) if isinstance(table, TableName) else table
        with other:
            rows = other.execute(
                """SELECT l.relation::regclass::text, l.pid, a.application_name, l.mode, a.usename,
                          a.client_addr::text, a.state, a.xact_start
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                   WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
                     AND l.pid <> %s
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND a.backend_type = 'client backend'
                     AND CASE WHEN %s::text IS NULL THEN l.mode = ANY(%s)
                              ELSE l.relation = to_regclass(%s)
                                   AND l.mode NOT IN ('AccessShareLock', 'ShareUpdateExclusiveLock') END
                   ORDER BY a.xact_start NULLS LAST, l.pid LIMIT 3""",
                [self.conn.info.backend_pid, name, modes, name]).fetchall()
        return "; ".join(
            ("" if name else f"table {rel} is ") + f"locked by pid {pid} (application {app or '?'}, user {user}, "
            f"from {addr or 'local'}, {mode}" + (f", {state}" if state else "")
            + (f", since {since:%Y-%m-%d %H:%M:%S}" if since else "") + ")"
            for rel, pid, app, mode, user, addr, state, since in rows)

    def table_exists(self, name: str) -> bool:
        row = self.fetchone("SELECT to_regclass(%s) IS NOT NULL", [self.quote(name)])
        return bool(row and row[0])

    def _lock_holder(self) -> str:
        try:
            other = psycopg.connect(self.url.raw, autocommit=True, connect_timeout=5)
        except psycopg.Error:
            return ""
        with other:
            row = other.execute(
                """SELECT a.pid, a.application_name, a.client_addr::text, a.xact_start
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                   WHERE l.locktype = 'advisory' AND l.granted
                     AND l.objid = (%s::bigint & 4294967295)::oid LIMIT 1""", [self.SEED_LOCK_KEY]).fetchone()
        if not row:
            return ""
        pid, app, addr, since = row
        # an idle session holding the lock at session level has no transaction, so no start time
        return (f" (pid {pid}, application {app or '?'}, from {addr or 'local'}"
                + (f", since {since:%Y-%m-%d %H:%M:%S}" if since else "") + ")")

    def defer_constraints(self) -> None:
        self.execute("SET CONSTRAINTS ALL DEFERRED")

    def sync_sequence(self, sequence: str, feeds: Sequence[tuple[TableName, str]]) -> None:
        """Move ``sequence`` past the largest value in every column it feeds, never backwards: its next
        value is compared, so a sequence never used yet (or starting high) is left where it is when
        no stored value reaches it. Descending sequences move down the same way."""
        if not feeds:
            return

        def each(agg: str) -> sql.Composable:
            return sql.SQL(", ").join(
                sql.SQL("(SELECT {}({}) FROM {})").format(sql.SQL(agg), sql.Identifier(col),
                                                          sql.SQL(self.qualified(table)))
                for table, col in feeds)

        row = self.fetchone("SELECT seqincrement > 0 FROM pg_sequence WHERE seqrelid = %s::regclass", [sequence])
        if row is None:
            return
        up = bool(row[0])
        self.execute(sql.SQL("""
            SELECT setval(s.seqrelid, {clamp}(m.v, {bound}))
            FROM pg_sequence s,
                 (SELECT COALESCE(pg_sequence_last_value(%s::regclass) + s2.seqincrement, s2.seqstart) AS next
                  FROM pg_sequence s2 WHERE s2.seqrelid = %s::regclass) n,
                 (SELECT {best}({values}) AS v) m
            WHERE s.seqrelid = %s::regclass AND m.v {cmp} n.next""").format(
            clamp=sql.SQL("LEAST" if up else "GREATEST"), bound=sql.SQL("s.seqmax" if up else "s.seqmin"),
            best=sql.SQL("GREATEST" if up else "LEAST"), values=each("max" if up else "min"),
            cmp=sql.SQL(">=" if up else "<=")), [sequence, sequence, sequence])

    def insert_override(self, table: Table, columns: Sequence[str]) -> str:
        if any(table.columns[c].identity == "always" for c in columns):
            return " OVERRIDING SYSTEM VALUE"
        return ""

    # -- migrations -------------------------------------------------------------------------------
    keeps_splits = True  # pglast's import is a good part of a short run

    @classmethod
    def split(cls, text: str, line_offset: int = 1) -> list[Statement]:
        from . import statements

        return statements.split_postgres(text, line_offset)

    @classmethod
    def split_for_run(cls, text: str, line_offset: int = 1, *, names: tuple[str, ...] = (),
                      server_version: int | None = None) -> list[Statement]:
        from . import statements

        return statements.split_postgres_quick(text, line_offset, names=names, server_version=server_version)

    @classmethod
    def needs_no_transaction(cls, stmt: Statement, server_version: int | None = None) -> str | None:
        from . import statements

        return statements.needs_no_transaction(stmt, server_version)

    @classmethod
    def copies_with_client(cls, stmt: Statement) -> str | None:
        from . import statements

        return statements.copies_with_client(stmt)

    def touches_history(self, stmt: Statement, history: TableName, log: TableName) -> str | None:
        from .migration import touches_history

        return touches_history(stmt, history, log)

    def migration_session(self, history: TableName, lock_timeout: float) -> MigrationSession:
        from .migration import PostgresSession

        return PostgresSession(self, history, lock_timeout)

    def default_schema(self) -> str | None:
        row = self.fetchone("SELECT current_schema()")
        if not (row and row[0]):
            raise DatabaseError("no schema to create the history table in (search_path is empty)",
                                hint="set [migrations] table = \"schema.table\" in seedkit.toml")
        return str(row[0])

    def relation_exists(self, table: TableName) -> bool:
        row = self.fetchone("SELECT to_regclass(%s)", [self.qualified(table)])
        return bool(row and row[0])

    def invalid_indexes(self, statements: list[Statement]) -> list[InvalidIndex]:
        from .migration import find_invalid_indexes

        return find_invalid_indexes(self, statements)

    def error_in_code_block(self, exc: Exception, stmt: Statement, sql: str,
                            line_offset: int) -> tuple[int, int] | None:
        from . import statements

        return statements.inline_code_line(exc, stmt, sql, line_offset)  # type: ignore[arg-type]

    def connection_lost(self, exc: BaseException) -> bool:
        from ..migration import connection_lost

        return connection_lost(exc) or bool(self.conn.closed)

    # -- whole databases --------------------------------------------------------------------------
    @classmethod
    def database_exists(cls, url: DatabaseURL) -> bool:
        from . import admin  # (whole databases: not every run's business)

        return admin.database_exists(url)

    @classmethod
    def create_database(cls, url: DatabaseURL, *, template: DatabaseURL | None = None) -> None:
        from . import admin  # (whole databases: not every run's business)

        admin.create_database(url, template=template)

    @classmethod
    def drop_database(cls, url: DatabaseURL, *, missing_ok: bool = True, force: bool = True) -> None:
        from . import admin  # (whole databases: not every run's business)

        admin.drop_database(url, missing_ok=missing_ok, force=force)

    @classmethod
    def check_resettable(cls, url: DatabaseURL, *, force: bool) -> None:
        from . import admin  # (whole databases: not every run's business)

        admin.check_resettable(url, force=force)

    # -- the pytest plugin ------------------------------------------------------------------------
    @classmethod
    def rolled_back_connection(cls, url: DatabaseURL) -> Any:
        from .testing import rolled_back_connection

        return rolled_back_connection(url)

    @classmethod
    def test_transaction(cls, conn: Any) -> Generator[Any, None, bool]:
        from .testing import test_transaction

        return test_transaction(conn)

    @classmethod
    def connection_closed(cls, conn: Any) -> bool:
        from .testing import connection_closed

        return connection_closed(conn)


class _VirtualStage:
    """A staging table's rows held in memory, given to each statement that uses it as a WITH clause."""

    def __init__(self, columns: list[tuple[str, str]], ordinal: str | None):
        self.columns = columns
        self.ordinal = ordinal
        self.rows: list[tuple[Any, ...]] = []
        self._sql: str | None = None

    def add(self, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        order = [c for c, _ in self.columns]
        at = [list(columns).index(c) if c in columns else None for c in order]
        before = len(self.rows)
        for row in rows:
            self.rows.append(tuple(None if i is None else row[i] for i in at))
        self._sql = None
        return len(self.rows) - before

    def cte(self, token: str, conn: psycopg.Connection[Any]) -> str:
        """``"name"(columns) AS (VALUES …)``: the rows, as a common table expression of that name."""
        if self._sql is None:
            names = [c for c, _ in self.columns]
            types = [t for _, t in self.columns]
            if self.ordinal:
                names.insert(0, self.ordinal)
                types.insert(0, "bigint")
            ident = ", ".join(sql.Identifier(c).as_string(conn) for c in names)
            if not self.rows:
                body = "SELECT " + ", ".join(f"NULL::{t}" for t in types) + " WHERE false"
            else:
                lines = []
                for n, row in enumerate(self.rows, start=1):
                    values = (n, *row) if self.ordinal else row
                    lines.append("(" + ", ".join(
                        f"{sql.Literal(v).as_string(conn)}::{t}" for v, t in zip(values, types)) + ")")
                body = "VALUES " + ", ".join(lines)
            self._sql = f"({ident}) AS ({body})"
        return token + self._sql
