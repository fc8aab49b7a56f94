"""Creating, copying and dropping whole SQLite databases: files (and their -wal, -shm, -journal)."""

from __future__ import annotations

import sqlite3

from ...errors import DatabaseError
from ...urls import DatabaseURL


def database_exists(url: DatabaseURL) -> bool:
    return url.path is not None and url.path.exists()


def create_database(url: DatabaseURL, *, template: DatabaseURL | None = None) -> None:
    assert url.path is not None
    url.path.parent.mkdir(parents=True, exist_ok=True)
    if template is not None and template.path is not None:
        _copy(template, url)
    else:
        sqlite3.connect(url.path).close()


def drop_database(url: DatabaseURL, *, missing_ok: bool = True, force: bool = True) -> None:
    if url.path is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        target = url.path.with_name(url.path.name + suffix)
        if target.exists():
            target.unlink()
        elif not missing_ok and suffix == "":
            raise DatabaseError(f"database file {url.path} does not exist")


def _copy(source: DatabaseURL, target: DatabaseURL) -> None:
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
