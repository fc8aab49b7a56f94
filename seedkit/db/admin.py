"""Creating, copying and dropping whole databases (reset, the pytest plugin).

PostgreSQL work happens on a maintenance connection to the server's ``postgres`` database
(or ``template1`` when that one does not exist); SQLite databases are files.
"""

from __future__ import annotations

import sqlite3

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


def drop_database(url: DatabaseURL, *, missing_ok: bool = True) -> None:
    """Drop the database (PostgreSQL: terminating other sessions first) or delete the SQLite file."""
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
        if major >= 13:
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


__all__ = ["create_database", "database_exists", "drop_database"]
