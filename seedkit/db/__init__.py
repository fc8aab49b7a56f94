"""Database adapters: ``connect(url)`` gives a PostgreSQL or SQLite ``Database``."""

from __future__ import annotations

from ..urls import DatabaseURL, parse_url
from .base import Database
from .catalog import Catalog, Column, ForeignKey, Table, TableName, UniqueKey


def connect(url: DatabaseURL | str, *, wait: float = 10.0, **kwargs: object) -> Database:
    """Open a connection; PostgreSQL retries for up to ``wait`` seconds while the server starts."""
    if isinstance(url, str):
        url = parse_url(url)
    if url.dialect == "postgresql":
        from .postgres import PostgresDatabase

        return PostgresDatabase.connect(url, wait=wait, **kwargs)  # type: ignore[arg-type]
    from .sqlite import SQLiteDatabase

    return SQLiteDatabase.connect(url, **kwargs)  # type: ignore[arg-type]


__all__ = ["Catalog", "Column", "Database", "ForeignKey", "Table", "TableName", "UniqueKey", "connect"]
