"""Creating, copying and dropping whole databases (reset, the pytest plugin).

PostgreSQL work happens on a maintenance connection to the server's ``postgres`` database
(or ``template1`` when that one does not exist); SQLite databases are files.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ..errors import DatabaseError
from ..urls import DatabaseURL
from . import connect
from .base import Database


def _maintenance(url: DatabaseURL, wait: float = 5.0) -> Database:
    """A connection to the server's ``postgres`` database, or ``template1`` where that one was dropped.

    Only a missing database falls through to ``template1``; an unreachable server is reported at once,
    naming the database the caller asked about.
    """
    try:
        return connect(url.with_database("postgres"), wait=wait)
    except DatabaseError as exc:
        if exc.sqlstate != "3D000" and "does not exist" not in exc.message:  # only a missing database
            exc.message = exc.message.replace(str(url.with_database("postgres")), str(url))
            raise
    return connect(url.with_database("template1"), wait=wait)


def database_exists(url: DatabaseURL) -> bool:
    if url.dialect == "sqlite":
        return url.path is not None and url.path.exists()
    with _maintenance(url) as conn:
        return conn.fetchone("SELECT 1 FROM pg_database WHERE datname = %s", [url.database]) is not None


def create_database(url: DatabaseURL, *, template: DatabaseURL | None = None) -> None:
    """Create the database ``url`` names, empty or as a copy of ``template``."""
    if url.dialect == "sqlite":
        assert url.path is not None
        if template is not None and template.path is not None:
            _sqlite_copy(template, url)
        else:
            sqlite3.connect(url.path).close()
        return
    from psycopg import sql

    with _maintenance(url) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database or ""))
        if template is not None:
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template.database or ""))
        conn.execute(stmt)


@dataclass(frozen=True)
class OtherSession:
    """Another session connected to a database about to be dropped."""

    pid: int
    user: str | None
    application: str | None
    client: str | None
    since: str | None
    state: str | None
    superuser: bool
    can_terminate: bool  # whether the current role may end it (pg_terminate_backend)

    def __str__(self) -> str:
        parts = [f"pid {self.pid}"]
        if self.user:
            parts.append(f"user {self.user}{' (superuser)' if self.superuser else ''}")
        if self.application:
            parts.append(f"application {self.application!r}")
        if self.client:
            parts.append(f"from {self.client}")
        if self.since:
            parts.append(f"since {self.since}")
        if self.state:
            parts.append(self.state)
        return ", ".join(parts)


@dataclass(frozen=True)
class DropCheck:
    """What the current role may do to a PostgreSQL database, checked before it is dropped."""

    role: str
    superuser: bool
    createdb: bool
    exists: bool
    owner: str | None
    can_drop: bool
    sessions: list[OtherSession]


def drop_check(url: DatabaseURL) -> DropCheck:
    """The privileges a drop-and-create needs, and the other sessions on the database (PostgreSQL)."""
    with _maintenance(url) as conn:
        role, superuser, createdb = conn.fetchone(  # type: ignore[misc]
            "SELECT rolname, rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user")
        row = conn.fetchone(
            "SELECT pg_get_userbyid(datdba), pg_has_role(current_user, datdba, 'USAGE') "
            "FROM pg_database WHERE datname = %s", [url.database])
        sessions: list[OtherSession] = []
        if row is not None:
            signal = conn.fetchone("SELECT pg_has_role(current_user, 'pg_signal_backend', 'USAGE')")
            may_signal = bool(signal and signal[0])
            for pid, user, app, client, since, state, is_super, own in conn.fetchall(
                    """SELECT a.pid, a.usename, a.application_name,
                              coalesce(a.client_hostname, host(a.client_addr), 'local socket'),
                              to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                              a.state, coalesce(r.rolsuper, false),
                              coalesce(pg_has_role(current_user, a.usesysid, 'USAGE'), false)
                       FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
                       WHERE a.datname = %s AND a.pid <> pg_backend_pid()
                         AND (a.backend_type = 'client backend'  -- NULL: another role's, details hidden
                              OR (a.backend_type IS NULL AND a.usesysid IS NOT NULL))
                       ORDER BY a.backend_start""", [url.database]):
                can = bool(superuser) or (not is_super and (bool(own) or may_signal))
                sessions.append(OtherSession(pid, user, app or None, client if since else None, since, state,
                                             bool(is_super), can))
    return DropCheck(role=role, superuser=bool(superuser), createdb=bool(createdb), exists=row is not None,
                     owner=row[0] if row else None, can_drop=bool(superuser) or bool(row and row[1]),
                     sessions=sessions)


def drop_database(url: DatabaseURL, *, missing_ok: bool = True, force: bool = True) -> None:
    """Drop the database or delete the SQLite file. PostgreSQL: ``force`` ends other sessions first;
    without it, a session still connected makes the drop fail (and nothing is dropped)."""
    if url.dialect == "sqlite":
        if url.path is None:
            return
        for suffix in ("", "-wal", "-shm", "-journal"):
            target = url.path.with_name(url.path.name + suffix)
            if target.exists():
                target.unlink()
            elif not missing_ok and suffix == "":
                raise DatabaseError(f"database file {url.path} does not exist")
        return
    from psycopg import sql

    with _maintenance(url) as conn:
        exists = "IF EXISTS " if missing_ok else ""
        major = int(conn.server_version.split(".")[0])
        name = sql.Identifier(url.database or "")
        if not force:
            conn.execute(sql.SQL("DROP DATABASE " + exists + "{}").format(name))
        elif major >= 13:
            conn.execute(sql.SQL("DROP DATABASE " + exists + "{} WITH (FORCE)").format(name))
        else:  # pragma: no cover - old servers
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", [url.database])
            conn.execute(sql.SQL("DROP DATABASE " + exists + "{}").format(name))


def _sqlite_copy(source: DatabaseURL, target: DatabaseURL) -> None:
    """A consistent copy through SQLite's backup API (safe even while the source is open)."""
    assert source.path is not None and target.path is not None
    if target.path.exists():
        raise DatabaseError(f"database file {target.path} already exists")
    src = sqlite3.connect(source.path)
    try:
        dst = sqlite3.connect(target.path)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


__all__ = ["DropCheck", "OtherSession", "create_database", "database_exists", "drop_check", "drop_database"]
