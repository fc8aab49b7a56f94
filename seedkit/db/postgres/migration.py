"""PostgreSQL's migration session: an advisory lock on the applying connection; and what the runner
asks of PostgreSQL statements (history changes, invalid indexes left by concurrent builds)."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import overload

import psycopg
from psycopg import errors, generators, sql
from psycopg.pq import ConnStatus, ExecStatus

from ...errors import DatabaseError, LockLost, LockTimeout, RefusedError
from ..base import Database, MigrationSession
from ..catalog import TableName
from ..migration import (
    TICK,
    InvalidIndex,
    RecordApplied,
    Wait,
    Watcher,
    connection_lost,
    duration,
    iso,
    lock_lost,
)
from ..statements import Judged, Statement
from .database import translate
from .statements import split_postgres

LOCK_CLASS = 0x5EED  # first half of the advisory lock key: "this is seedkit migrate"
# after each statement of a migration sent as one query: a notice makes the server send what it has
_FLUSH = "\n;DO $seedkit$BEGIN RAISE NOTICE 'seedkit: statement done'; END $seedkit$;"


class PoolerRefused(RefusedError):
    """The connection reaches the server through a pooler: no session lock can guard a run (exit 4)."""


class PostgresSession(MigrationSession):
    """The advisory lock lives on the connection that applies the migrations.

    A lock on a separate connection can vanish (``pg_terminate_backend``, ``idle_session_timeout``) while
    the run goes on, and a second run then applies the same migrations. Held here, the lock ends only
    with the applying connection, and then nothing of the migration in flight can commit either. It is
    also checked before each migration, and the history insert fails on a duplicate row.
    """

    def __init__(self, db: Database, history: TableName, lock_timeout: float):
        super().__init__(db, history, lock_timeout)
        name = history
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
        try:
            self._acquire(self.db, watch)
        except DatabaseError as exc:
            if not connection_lost(exc):
                raise
            raise DatabaseError(
                f"lost the connection to the database while waiting for the migration lock ({exc.message}); "
                "nothing was run", sqlstate=exc.sqlstate,
                hint="check the server (or who ended the session), then run it again") from exc
        try:
            yield
        finally:
            if not self.db.conn.closed and not self.db.in_transaction:
                with suppress(DatabaseError):  # a broken connection took the lock with it
                    self.db.execute("SELECT pg_advisory_unlock(%s, %s), pg_advisory_unlock(%s, %s)",
                                    [LOCK_CLASS, self.lock_key] * 2)  # (held twice: see _lock_held_sql)

    def busy_holder(self) -> str | None:
        # read pg_locks only: status and verify take no lock (they also run on read-only standbys)
        return self.holder(self.db, other_sessions_only=True)

    def check_lock(self, label: str) -> None:
        try:
            row = self.db.fetchone(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = %s::oid AND objid = %s::oid AND objsubid = 2)",
                [LOCK_CLASS, self.lock_key])
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

    def _lock_held_sql(self) -> str:
        """True when this session still holds the run lock, else false or NULL, without reading pg_locks
        (which copies every lock of the server, and a migration's transaction holds many: it was most of
        what the server did for a migration beside the migration itself).

        The lock is taken twice (``_acquire``), so releasing it once is a question only its holder gets
        ``true`` for, and taking it again at once gives the count back. A statement that released it
        (``pg_advisory_unlock_all()``, ``DISCARD ALL``) leaves nothing to release: NULL. Should one
        have released it once only, the lock was free for an instant and taking it back is a try, never
        a wait: another run that took it meanwhile makes this false."""
        key = f"{LOCK_CLASS}, {self.lock_key}"
        return (f"(CASE WHEN pg_catalog.pg_advisory_unlock({key}) "
                f"THEN pg_catalog.pg_try_advisory_lock({key}) END)")

    def applied_in_one_query(self, text: str, statements: list[Statement],
                             record: RecordApplied) -> Iterator[DatabaseError | None]:
        """``BEGIN``, the migration's text as written, its history row and audit-log row, ``COMMIT``:
        one simple-protocol query, one round trip, the server running the statements in order.

        The history row's version is NULL, which its primary key refuses, unless this connection still
        holds the run lock after the last statement: a migration that released the lock (or a lock that
        went away) fails there, and the ``COMMIT`` after it never runs. A row already there fails on the
        key the same way. Results are yielded one by one as the server sends them (``None``, or the
        error that ended the query and left the transaction to roll back); a lost connection raises.

        The server sends a query's results when it ends, unless something makes it flush its output:
        a notice does. After each of ``statements`` (where its text ends) a ``DO`` block raises one, so
        each statement's result arrives when it finished, and the runner can time it and say which
        one is running. Each statement is followed by the result of its ``DO``, which arrives with
        the next statement's (with ``client_min_messages`` above ``notice`` all arrive at the end)."""
        lit = self._literal
        elapsed = "(pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp())"
        at = f"{lit(record.sent_at)} + {elapsed}"
        ms = f"(extract(epoch FROM {elapsed}) * 1000)::bigint"
        parts, pos = [], 0
        for stmt in statements:
            end = stmt.offset + len(stmt.sql)  # after its last token (a comment may end the line)
            parts += [text[pos:end], _FLUSH]
            pos = end
        parts.append(text[pos:])
        query = (
            f"BEGIN;\n{''.join(parts)}\n;\n"
            f"INSERT INTO {record.table} (version, name, checksum, applied_at, execution_ms, status, "
            f"statements_done, error) SELECT CASE WHEN {self._lock_held_sql()} THEN {lit(record.version)} END, "
            f"{lit(record.name)}, {lit(record.checksum)}, {at}, {ms}, 'applied', 0, NULL;\n"
            f"INSERT INTO {record.log_table} (version, name, action, at, execution_ms, by_whom, detail) "
            f"VALUES ({lit(record.version)}, {lit(record.name)}, 'up', {at}, {ms}, {lit(record.by_whom)}, NULL);\n"
            "COMMIT")
        return _results(self.db, query)

    def _literal(self, value: object) -> str:
        return sql.Literal(value).as_string(self.db.conn)

    def _acquire(self, lock_db: Database, watch: Watcher | None = None) -> None:
        started = time.monotonic()
        deadline = started + self.lock_timeout
        delay = 0.02
        holder, next_report = "", started
        # A server-side idle_session_timeout would end this connection between two polls: poll faster.
        row = lock_db.fetchone("SELECT setting::int FROM pg_settings WHERE name = 'idle_session_timeout'")
        idle_ms = int(row[0]) if row and row[0] else 0
        longest = 0.5 if not idle_ms else max(0.01, min(0.5, idle_ms / 1000 / 4))
        # The server session this connection was given (libpq's backend key) must be the one that runs
        # the statements: a pooler in between (PgBouncer, Supavisor…) answers with a key of its own, and
        # in transaction mode it sends each statement to whichever server session is free. A session
        # lock taken there would stay with a pooled session, and the next statement could run in a
        # session that does not hold it (or holds another run's): never take it then.
        client_pid = lock_db.conn.info.backend_pid
        while True:
            # taken twice (see _lock_held_sql): the second time only when the first got it, at once
            row = lock_db.fetchone("SELECT CASE WHEN pg_catalog.pg_backend_pid() <> %s THEN NULL "
                                   "WHEN pg_try_advisory_lock(%s, %s) THEN pg_try_advisory_lock(%s, %s) "
                                   "ELSE false END, pg_catalog.pg_backend_pid()",
                                   [client_pid, *[LOCK_CLASS, self.lock_key] * 2])
            now = time.monotonic()
            if row and row[0] is None:
                raise PoolerRefused(
                    f"refusing to migrate {self.db.url} through a connection pooler: the connection was "
                    f"given server session {client_pid} but its statements run in server session {row[1]}, "
                    "and the migration lock must be held by one server session for the whole run (a pooler "
                    "in transaction mode sends each statement to whichever session is free, so two runs "
                    "could apply the same migrations); nothing was run",
                    hint="connect to the server directly for migrations (e.g. port 5432 instead of the "
                         "pooler's 6432 or 6543, or the provider's 'direct connection' URL)")
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
                next_report = now + TICK
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
                            [LOCK_CLASS, self.lock_key])
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
        when = f"since {iso(started or since)}"
        if age is not None:
            when += f" ({duration(age.total_seconds())} ago)"
        parts.append(when)
        return ", ".join(parts)


def _results(db: Database, query: str) -> Iterator[DatabaseError | None]:
    """Send ``query`` (simple protocol: it may hold many statements) and yield each result as it arrives.

    The wait for each result goes through psycopg's own (``Connection.wait``: Ctrl-C cancels the query);
    the connection is left idle or in its failed transaction, every result read, whatever the caller
    does with the generator."""
    conn = db.conn
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    with conn.lock:
        try:
            pgconn.send_query(query.encode(encoding))
            conn.wait(generators.send(pgconn))
            while True:
                result = conn.wait(generators.fetch(pgconn))
                if result is None:
                    return
                if result.status in (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH):
                    pgconn.put_copy_end(b"seedkit: COPY with STDIN or STDOUT cannot run in a migration")
                    conn.wait(generators.send(pgconn))
                    continue
                if result.status == ExecStatus.FATAL_ERROR:
                    error = translate(errors.error_from_result(result, encoding=encoding))
                    if connection_lost(error):
                        raise error
                    yield error
                else:
                    yield None
        except psycopg.Error as exc:
            raise translate(exc) from exc
        finally:
            with suppress(psycopg.Error):  # the rest of the results: the connection is ready again
                while pgconn.status == ConnStatus.OK and conn.wait(generators.fetch(pgconn)) is not None:
                    pass


def lock_key(table: str) -> int:
    """Second half of the advisory lock key: one lock per history table (per database)."""
    return zlib.crc32(f"seedkit migrate {table}".encode()) & 0x7FFFFFFF


def concurrent_index_targets(statements: list[Statement]) -> list[tuple[str | None, str, str | None]]:
    """``(schema, table, index name or None)`` of every concurrent index build among ``statements``."""
    targets: list[tuple[str | None, str, str | None]] = []
    for stmt in statements:
        node = stmt.node
        if isinstance(node, Judged):  # a cut kept from an earlier run: the tree is parsed now
            node = next((s.node for s in split_postgres(stmt.sql)), None)
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


def touches_history(stmt: Statement, history: TableName, log: TableName) -> str | None:
    """What ``stmt`` would do to the runner's own history tables (drop, truncate, rename), or ``None``.

    A project that moves from another runner often has a migration that drops that runner's table —
    often named ``schema_migrations`` too. Run as is, it would drop this runner's history mid-run."""
    ours = {history.name, log.name}

    def hit(schema: str | None, name: str) -> bool:
        return name in ours and (schema is None or history.schema is None or schema == history.schema)

    node = stmt.node
    if isinstance(node, Judged):
        return node.history
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


