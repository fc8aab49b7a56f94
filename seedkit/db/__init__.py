"""Database adapters: one room per database, registered by URL scheme.

``connect(url)`` gives the ``Database`` of the URL's dialect. Everything that differs by dialect lives
in its room (``db/postgres/``, ``db/sqlite/``) behind the interface in ``db/base.py``; the seed engine,
the migration runner, reset and the pytest plugin ask ``adapter(url)`` and never name a dialect.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from ..urls import DatabaseURL, parse_url
from .base import Database
from .catalog import Catalog, Column, ForeignKey, Table, TableName, UniqueKey

# dialect (the URL scheme, as ``parse_url`` names it) → "module:class" of its adapter
_ADAPTERS: dict[str, str] = {
    "postgresql": "seedkit.db.postgres:PostgresDatabase",
    "sqlite": "seedkit.db.sqlite:SQLiteDatabase",
}


def register(dialect: str, target: str) -> None:
    """Register an adapter, ``"package.module:Class"``, for URLs of ``dialect``."""
    _ADAPTERS[dialect] = target


def adapter(what: DatabaseURL | str) -> type[Database]:
    """The adapter class for a URL (or a dialect name); imported on first use."""
    dialect = what.dialect if isinstance(what, DatabaseURL) else what
    try:
        module, _, name = _ADAPTERS[dialect].partition(":")
    except KeyError:
        raise ConfigError(f"no database adapter for {dialect!r}",
                          hint=f"seedkit knows {', '.join(sorted(_ADAPTERS))}") from None
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def connect(url: DatabaseURL | str, *, wait: float = 10.0, **options: object) -> Database:
    """Open a connection. Options an adapter has no use for are ignored: ``wait`` (seconds to retry
    while a server starts), ``busy_timeout`` (seconds to wait for a file lock), ``create`` (False:
    never create a missing file), ``application_name``, ``autocommit``."""
    if isinstance(url, str):
        url = parse_url(url)
    return adapter(url).connect(url, wait=wait, **options)  # type: ignore[attr-defined,no-any-return]


__all__ = ["Catalog", "Column", "Database", "ForeignKey", "Table", "TableName", "UniqueKey", "adapter",
           "connect", "register"]
