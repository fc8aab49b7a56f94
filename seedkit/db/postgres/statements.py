"""Cutting PostgreSQL migration sections into statements, and what those statements mean to the runner.

pglast (the server's own parser, via libpg_query) splits: dollar quotes, strings, nested comments,
``BEGIN ATOMIC`` bodies and ``DO`` blocks come out right because the real grammar decides. When the
parser rejects the text (a syntax error, or syntax newer than the bundled parser) the server's own
lexer rules still split it (pglast's scanner), so the server reports the error itself, with its position.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ...errors import DatabaseError
from ..statements import Judged, Statement, line_col, make_statement

_TX_CONTROL = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "ABORT"}


def _pg_parser() -> Any:
    """pglast's parser, imported on first use (SQLite projects never pay for it)."""
    from pglast import parser

    return parser


def split_postgres(text: str, line_offset: int = 1) -> list[Statement]:
    try:
        raw = _pg_parser().parse_sql(text)
    except _pg_parser().ParseError:
        return _split_postgres_scanner(text, line_offset)
    out: list[Statement] = []
    for r in raw:
        start = r.stmt_location or 0
        end = start + r.stmt_len if r.stmt_len else len(text)
        stmt = make_statement(text, start, end, line_offset, nested=True, node=r.stmt, strip_semicolon=True)
        if stmt is not None:
            out.append(stmt)
    return out


class Unremarkable:
    """The parse node of a statement the quick split found nothing in that matters to the runner: it can
    run inside a transaction and it leaves the history tables alone (see ``split_postgres_quick``)."""


_UNREMARKABLE = Unremarkable()
# First words of statements that control the transaction, or cannot run inside one.
_REMARKABLE_HEADS = _TX_CONTROL | {"PREPARE", "VACUUM", "REINDEX", "CLUSTER"}
# Words without which no statement is refused inside a transaction (see ``needs_no_transaction``).
_REMARKABLE_WORDS = ("concurrently", "database", "tablespace", "system", "subscription", "vacuum", "cluster")


def split_postgres_quick(text: str, line_offset: int = 1, *, names: tuple[str, ...] = (),
                         server_version: int | None = None) -> list[Statement]:
    """``split_postgres`` for the runner: the same statements, cut by the same parser, without the
    parse trees that cost most of the time. A statement that may matter to the runner (its first word
    controls the transaction, or it holds a word that a statement refused inside a transaction must
    hold, or one of ``names``, the history tables) is parsed alone and gets its tree; every other one
    gets ``Unremarkable`` as its node. Text the parser rejects is split by ``split_postgres``."""
    parser = _pg_parser()
    try:
        slices = parser.split(text, with_parser=True, only_slices=True)
    except parser.ParseError:
        return split_postgres(text, line_offset)
    lowered = [n.lower() for n in names]
    exact = any('"' in n for n in names)  # written with doubled quotes in SQL: always ask the parser
    out: list[Statement] = []
    for piece in slices:
        stmt = make_statement(text, piece.start, piece.stop, line_offset, nested=True, node=_UNREMARKABLE,
                              strip_semicolon=True)
        if stmt is None:
            continue
        if exact or _remarkable(stmt, lowered, server_version):
            try:
                [raw] = parser.parse_sql(stmt.sql)
            except (parser.ParseError, ValueError):
                stmt = dataclasses.replace(stmt, node=None)  # judged by its tokens, as split_postgres does
            else:
                stmt = dataclasses.replace(stmt, node=raw.stmt)
        out.append(stmt)
    return out


def _remarkable(stmt: Statement, names: list[str], server_version: int | None) -> bool:
    if stmt.keyword() in _REMARKABLE_HEADS:
        return True
    lowered = stmt.sql.lower()
    if any(word in lowered for word in _REMARKABLE_WORDS) or "u&" in lowered:  # U&"…" escapes a name
        return True
    if server_version is not None and server_version < 120000 and "value" in lowered:
        return True  # ALTER TYPE … ADD VALUE
    if stmt.keyword() == "DROP" and "schema" in lowered:
        return True  # DROP SCHEMA … CASCADE would take the history table with it
    return any(name in lowered for name in names)


def _split_postgres_scanner(text: str, line_offset: int) -> list[Statement]:
    """Split on top-level semicolons using PostgreSQL's lexer (strings, dollar quotes, comments).

    ``BEGIN ATOMIC … END`` bodies are followed by keyword, counting ``CASE … END`` inside them.
    """
    try:
        tokens = _pg_parser().scan(text)
    except _pg_parser().ParseError:
        stmt = make_statement(text, 0, len(text), line_offset, nested=True, strip_semicolon=True)
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
            stmt = make_statement(text, start, tok.start, line_offset, nested=True, strip_semicolon=True)
            if stmt:
                out.append(stmt)
            start = tok.end + 1
        if name not in ("SQL_COMMENT", "C_COMMENT"):
            prev = name
    stmt = make_statement(text, start, len(text), line_offset, nested=True, strip_semicolon=True)
    if stmt:
        out.append(stmt)
    return out


def needs_no_transaction(stmt: Statement, server_version: int | None = None) -> str | None:
    """Why ``stmt`` cannot run inside a transaction, or ``None`` (see ``Database.needs_no_transaction``)."""
    keyword = stmt.keyword()
    node = stmt.node
    if node is None:
        return _postgres_by_tokens(stmt)
    if isinstance(node, Judged):
        return node.no_transaction
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


def copies_with_client(stmt: Statement) -> str | None:
    """``COPY … FROM STDIN`` / ``COPY … TO STDOUT`` (see ``Database.copies_with_client``), by its tokens."""
    if stmt.keyword() != "COPY" or "std" not in stmt.sql.lower():  # (the parser is loaded only then)
        return None
    try:
        names = [t.name for t in _pg_parser().scan(stmt.sql) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    except _pg_parser().ParseError:
        return None
    depth = 0
    for name, following in zip(names, names[1:]):
        depth += {"ASCII_40": 1, "ASCII_41": -1}.get(name, 0)  # a query's own FROM is inside ( )
        if not depth and (name, following) in (("FROM", "STDIN"), ("TO", "STDOUT")):
            return f"COPY … {name} {following}"
    return None


_INLINE = re.compile(r"PL/pgSQL function inline_code_block line (\d+)")


def inline_code_line(exc: DatabaseError, stmt: Statement, sql: str, line_offset: int) -> tuple[int, int] | None:
    """A run-time error inside a ``DO`` block names a line of the block: map it into the file."""
    cause = exc.__cause__
    context = getattr(getattr(cause, "diag", None), "context", None) or ""
    m = _INLINE.search(context)
    if not m or stmt.keyword() != "DO":
        return None
    try:
        from pglast import parser as pg_parser

        body = next(t for t in pg_parser.scan(stmt.sql) if t.name == "SCONST")
    except Exception:
        return None
    line, _ = line_col(sql, stmt.offset + body.start, line_offset)
    line += int(m[1]) - 1
    lines = sql.split("\n")
    index = line - line_offset
    text = lines[index] if 0 <= index < len(lines) else ""
    return line, len(text) - len(text.lstrip()) + 1
