"""Splitting a migration section into statements, each with its place in the file.

PostgreSQL uses pglast (the server's own parser, via libpg_query): dollar quotes, strings, nested
comments, ``BEGIN ATOMIC`` bodies and ``DO`` blocks come out right because the real grammar decides.
When the parser rejects the text (a syntax error, or syntax newer than the bundled parser) the
server's own lexer rules still split it (pglast's scanner), so the server reports the error itself,
with its position. SQLite uses ``sqlite3.complete_statement``, SQLite's own test for "this is a whole
statement", which knows that a trigger body ``BEGIN … END;`` holds semicolons.

Every statement carries the character offset of its first token in the section and the line and
column of that token in the file, so errors from the database map back to ``file:line:column``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any


def _pg_parser() -> Any:
    """pglast's parser, imported on first use (SQLite projects never pay for it)."""
    from pglast import parser

    return parser

@dataclass(frozen=True)
class Statement:
    sql: str  # the text sent to the database: first token to end, no trailing semicolon for PostgreSQL
    offset: int  # character offset of ``sql[0]`` in the section text
    line: int  # line of the first token in the file (1-based)
    column: int  # column of the first token in the file (1-based)
    node: Any = None  # the pglast parse node (PostgreSQL, when the parser accepted the text)

    def keyword(self) -> str:
        """The first word, upper-cased (``CREATE``, ``VACUUM``…)."""
        word = ""
        for ch in self.sql:
            if ch.isalpha() or ch == "_":
                word += ch
            elif word:
                break
            else:
                break
        return word.upper()


def line_col(text: str, offset: int, line_offset: int = 1) -> tuple[int, int]:
    """Line and column in the file of character ``offset`` of a section starting on ``line_offset``."""
    offset = max(0, min(offset, len(text)))
    line = line_offset + text.count("\n", 0, offset)
    last_nl = text.rfind("\n", 0, offset)
    return line, offset - last_nl  # last_nl == -1 gives column offset + 1


def skip_blank(text: str, i: int, end: int | None = None, *, nested: bool = True) -> int:
    """Index of the first character at or after ``i`` that is not whitespace or a comment.

    PostgreSQL block comments nest; SQLite's do not (``nested=False``).
    """
    end = len(text) if end is None else end
    while i < end:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("--", i):
            nl = text.find("\n", i, end)
            i = end if nl == -1 else nl + 1
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < end and depth:
                if nested and text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            return i
    return end


def _make(text: str, start: int, end: int, line_offset: int, *, nested: bool, node: Any = None,
          strip_semicolon: bool) -> Statement | None:
    first = skip_blank(text, start, end, nested=nested)
    body = text[first:end].rstrip()
    if strip_semicolon:
        while body.endswith(";"):
            body = body[:-1].rstrip()
    if not body or body == ";":
        return None
    line, column = line_col(text, first, line_offset)
    return Statement(sql=body, offset=first, line=line, column=column, node=node)


def split_postgres(text: str, line_offset: int = 1) -> list[Statement]:
    try:
        raw = _pg_parser().parse_sql(text)
    except _pg_parser().ParseError:
        return _split_postgres_scanner(text, line_offset)
    out: list[Statement] = []
    for r in raw:
        start = r.stmt_location or 0
        end = start + r.stmt_len if r.stmt_len else len(text)
        stmt = _make(text, start, end, line_offset, nested=True, node=r.stmt, strip_semicolon=True)
        if stmt is not None:
            out.append(stmt)
    return out


def _split_postgres_scanner(text: str, line_offset: int) -> list[Statement]:
    """Split on top-level semicolons using PostgreSQL's lexer (strings, dollar quotes, comments).

    ``BEGIN ATOMIC … END`` bodies are followed by keyword, counting ``CASE … END`` inside them.
    """
    try:
        tokens = _pg_parser().scan(text)
    except _pg_parser().ParseError:
        stmt = _make(text, 0, len(text), line_offset, nested=True, strip_semicolon=True)
        return [stmt] if stmt else []
    out: list[Statement] = []
    start, depth, prev = 0, 0, ""
    for tok in tokens:
        name = tok.name
        if (name == "ATOMIC" and prev == "BEGIN_P") or (name == "CASE" and depth):
            depth += 1
        elif name == "END_P" and depth:
            depth -= 1
        elif name == "ASCII_59" and not depth:  # ";"
            stmt = _make(text, start, tok.start, line_offset, nested=True, strip_semicolon=True)
            if stmt:
                out.append(stmt)
            start = tok.end + 1
        if name not in ("SQL_COMMENT", "C_COMMENT"):
            prev = name
    stmt = _make(text, start, len(text), line_offset, nested=True, strip_semicolon=True)
    if stmt:
        out.append(stmt)
    return out


def split_sqlite(text: str, line_offset: int = 1) -> list[Statement]:
    out: list[Statement] = []
    start = 0
    i = text.find(";")
    while i != -1:
        if sqlite3.complete_statement(text[start:i + 1]):
            stmt = _make(text, start, i + 1, line_offset, nested=False, strip_semicolon=False)
            if stmt:
                out.append(stmt)
            start = i + 1
        i = text.find(";", i + 1)
    stmt = _make(text, start, len(text), line_offset, nested=False, strip_semicolon=False)
    if stmt:
        out.append(stmt)
    return out


def split(text: str, dialect: str, line_offset: int = 1) -> list[Statement]:
    """The statements of a section, in order. ``line_offset``: the file line the section starts on."""
    if dialect == "postgresql":
        return split_postgres(text, line_offset)
    if dialect == "sqlite":
        return split_sqlite(text, line_offset)
    raise ValueError(f"unknown dialect {dialect!r}")


# -- statements that cannot run inside a transaction ----------------------------------------------

_SQLITE_NO_TX = {
    "VACUUM": "VACUUM",
    "ATTACH": "ATTACH",
    "DETACH": "DETACH",
}
_SQLITE_NO_TX_PRAGMAS = ("foreign_keys", "journal_mode")
_TX_CONTROL = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "ABORT"}


def needs_no_transaction(stmt: Statement, dialect: str, server_version: int | None = None) -> str | None:
    """Why ``stmt`` cannot run inside a transaction (e.g. ``"CREATE INDEX CONCURRENTLY"``), or ``None``.

    Transaction control (``BEGIN``, ``COMMIT``…) is reported too: inside a transactional migration it
    would end the runner's transaction and break the all-or-nothing promise.
    ``server_version`` is PostgreSQL's ``server_version_num`` (e.g. 150004), when known.
    """
    keyword = stmt.keyword()
    if dialect == "sqlite":
        if keyword in _TX_CONTROL:
            return f"transaction control ({keyword})"
        if keyword in _SQLITE_NO_TX:
            return _SQLITE_NO_TX[keyword]
        if keyword == "PRAGMA":
            words = stmt.sql[len("PRAGMA"):].replace("=", " ").replace(";", " ").split()
            pragma = words[0].lower().split(".")[-1] if words else ""
            if pragma in _SQLITE_NO_TX_PRAGMAS and len(words) > 1:
                return f"PRAGMA {pragma}"
        return None
    node = stmt.node
    if node is None:
        return _postgres_by_tokens(stmt)
    kind = type(node).__name__
    if kind == "TransactionStmt":
        return f"transaction control ({keyword})"
    if kind == "IndexStmt" and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if kind == "DropStmt" and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if kind == "ReindexStmt":
        options = {getattr(p, "defname", None) for p in (node.params or ())}
        if "concurrently" in options:
            return "REINDEX CONCURRENTLY"
        if getattr(node.kind, "name", "") in ("REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_DATABASE"):
            return "REINDEX SYSTEM/DATABASE"
    if kind == "VacuumStmt" and node.is_vacuumcmd:
        return "VACUUM"
    if kind == "ClusterStmt" and node.relation is None:
        return "CLUSTER without a table"
    simple = {"CreatedbStmt": "CREATE DATABASE", "DropdbStmt": "DROP DATABASE",
              "CreateTableSpaceStmt": "CREATE TABLESPACE", "DropTableSpaceStmt": "DROP TABLESPACE",
              "AlterSystemStmt": "ALTER SYSTEM", "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
              "DropSubscriptionStmt": "DROP SUBSCRIPTION"}
    if kind in simple:
        return simple[kind]
    if kind == "AlterTableStmt":
        for cmd in node.cmds or ():
            part = getattr(cmd, "def_", None)
            if type(part).__name__ == "PartitionCmd" and getattr(part, "concurrent", False):
                return "ALTER TABLE … DETACH PARTITION … CONCURRENTLY"
    if kind == "AlterEnumStmt" and node.newVal and server_version is not None and server_version < 120000:
        return "ALTER TYPE … ADD VALUE (before PostgreSQL 12)"
    return None


def _postgres_by_tokens(stmt: Statement) -> str | None:
    """The same question without a parse tree: look at the keywords the lexer sees."""
    try:
        names = [t.name for t in _pg_parser().scan(stmt.sql) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    except _pg_parser().ParseError:
        return None
    if not names:
        return None
    head = names[0]
    if head in ("BEGIN_P", "COMMIT", "ROLLBACK", "START", "END_P", "SAVEPOINT", "RELEASE", "ABORT_P"):
        return f"transaction control ({stmt.keyword()})"
    if head == "VACUUM":
        return "VACUUM"
    if "CONCURRENTLY" in names:
        return f"{stmt.keyword()} … CONCURRENTLY"
    if head in ("CREATE", "DROP") and len(names) > 1 and names[1] in ("DATABASE", "TABLESPACE"):
        return f"{stmt.keyword()} {names[1]}"
    return None


__all__ = ["Statement", "line_col", "needs_no_transaction", "skip_blank", "split", "split_postgres",
           "split_sqlite"]
