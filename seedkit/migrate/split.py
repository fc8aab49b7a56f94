"""Splitting a migration section into statements, each with its place in the file.

How a dialect cuts its SQL lives in its adapter (``db/postgres/statements.py``: pglast, the server's
own parser; ``db/sqlite/statements.py``: ``sqlite3.complete_statement``). Every statement carries the
character offset of its first token in the section and the line and column of that token in the file,
so errors from the database map back to ``file:line:column``.
"""

from __future__ import annotations

from ..db import adapter
from ..db.statements import Statement, line_col, skip_blank


def split(text: str, dialect: str, line_offset: int = 1) -> list[Statement]:
    """The statements of a section, in order. ``line_offset``: the file line the section starts on."""
    return adapter(dialect).split(text, line_offset)


def split_for_run(text: str, dialect: str, line_offset: int = 1, *, names: tuple[str, ...] = (),
                  server_version: int | None = None) -> list[Statement]:
    """``split`` for applying a section: each statement answers ``needs_no_transaction`` and the
    dialect's ``touches_history`` (of the tables ``names``) as after ``split``, perhaps more cheaply."""
    return adapter(dialect).split_for_run(text, line_offset, names=names, server_version=server_version)


def needs_no_transaction(stmt: Statement, dialect: str, server_version: int | None = None) -> str | None:
    """Why ``stmt`` cannot run inside a transaction (e.g. ``"CREATE INDEX CONCURRENTLY"``), or ``None``.

    ``server_version`` is PostgreSQL's ``server_version_num`` (e.g. 150004), when known.
    """
    return adapter(dialect).needs_no_transaction(stmt, server_version)


def copies_with_client(stmt: Statement, dialect: str) -> str | None:
    """``"COPY … FROM STDIN"`` when ``stmt`` exchanges rows with the client (psql's data lines), else None."""
    return adapter(dialect).copies_with_client(stmt)


__all__ = ["Statement", "copies_with_client", "line_col", "needs_no_transaction", "skip_blank", "split",
           "split_for_run"]
