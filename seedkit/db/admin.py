"""Creating, copying and dropping whole databases (reset, the pytest plugin), whatever the dialect:
each call goes to the adapter the URL names (``db/postgres/admin.py``, ``db/sqlite/admin.py``)."""

from __future__ import annotations

from ..urls import DatabaseURL
from . import adapter


def database_exists(url: DatabaseURL) -> bool:
    return adapter(url).database_exists(url)


def create_database(url: DatabaseURL, *, template: DatabaseURL | None = None) -> None:
    """Create the database ``url`` names, empty or as a copy of ``template``."""
    adapter(url).create_database(url, template=template)


def drop_database(url: DatabaseURL, *, missing_ok: bool = True, force: bool = True) -> None:
    """Drop the database or delete the SQLite file. ``force`` ends other sessions first; without it,
    a session still connected makes the drop fail (and nothing is dropped)."""
    adapter(url).drop_database(url, missing_ok=missing_ok, force=force)


def check_resettable(url: DatabaseURL, *, force: bool) -> None:
    """Refuse (exit 4) before anything is dropped when a drop-and-create could not finish."""
    adapter(url).check_resettable(url, force=force)


__all__ = ["check_resettable", "create_database", "database_exists", "drop_database"]
