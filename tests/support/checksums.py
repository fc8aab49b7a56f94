"""Table checksums taken without seedkit's own code.

A checksum reads a table with the driver directly (psycopg or sqlite3), so a bug in seedkit's catalog
or quoting cannot make two different states look equal.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import psycopg
from psycopg import sql

Checksums = dict[str, tuple[int, str] | None]  # table -> (row count, digest), None when it does not exist


def pg_checksums(url: str, tables: Iterable[str | tuple[str, str]]) -> Checksums:
    """(count, md5 of every row's text in row-text order) per table; ``(schema, name)`` for a schema."""
    out: Checksums = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for t in tables:
            schema, name = t if isinstance(t, tuple) else ("public", t)
            ident = sql.Identifier(schema, name)
            exists = conn.execute("SELECT to_regclass(%s)", [ident.as_string(conn)]).fetchone()
            if exists is None or exists[0] is None:
                out[_label(t)] = None
                continue
            row = conn.execute(sql.SQL("SELECT count(*), md5(coalesce(string_agg(r::text, E'\\n' ORDER BY "
                                       "r::text COLLATE \"C\"), '')) FROM {} AS r").format(ident)).fetchone()
            assert row is not None
            out[_label(t)] = (int(row[0]), str(row[1]))
    return out


def sqlite_checksums(path: Path, tables: Iterable[str]) -> Checksums:
    """The same for a SQLite file: sha256 of the sorted ``repr`` of every row (types included)."""
    out: Checksums = {}
    conn = sqlite3.connect(path)
    try:
        for t in tables:
            name = _label(t)
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() \
                    is None:
                out[name] = None
                continue
            rows = sorted(repr(r) for r in conn.execute('SELECT * FROM "' + name.replace('"', '""') + '"'))
            out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    finally:
        conn.close()
    return out


def checksums(url: str, tables: Iterable[str | tuple[str, str]]) -> Checksums:
    if url.startswith("sqlite"):
        return sqlite_checksums(sqlite_path(url), [_label(t) for t in tables])
    return pg_checksums(url, tables)


def sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///"):])


def _label(t: str | tuple[str, str]) -> str:
    return ".".join(t) if isinstance(t, tuple) else t


