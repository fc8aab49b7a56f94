"""SQLite (the standard library sqlite3): the whole dialect contract in one room.

database.py: connection, catalog, seeding primitives; statements.py: statement splitting;
migration.py: the migration session; admin.py: create, copy, drop a database; testing.py: what the
pytest plugin needs.
"""

from __future__ import annotations

from .database import SQLiteDatabase, translate

__all__ = ["SQLiteDatabase", "translate"]
