"""Cutting SQLite migration sections into statements, and what those statements mean to the runner.

``sqlite3.complete_statement`` is SQLite's own test for "this is a whole statement": it knows that a
trigger body ``BEGIN … END;`` holds semicolons.
"""

from __future__ import annotations

import re
import sqlite3

from ..statements import Statement, make_statement

_SQLITE_NO_TX = {
    "VACUUM": "VACUUM",
    "ATTACH": "ATTACH",
    "DETACH": "DETACH",
}
_SQLITE_NO_TX_PRAGMAS = ("foreign_keys", "journal_mode")
_TX_CONTROL = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "ABORT"}



def split_sqlite(text: str, line_offset: int = 1) -> list[Statement]:
    out: list[Statement] = []
    start = 0
    i = text.find(";")
    while i != -1:
        if sqlite3.complete_statement(text[start:i + 1]):
            stmt = make_statement(text, start, i + 1, line_offset, nested=False, strip_semicolon=False)
            if stmt:
                out.append(stmt)
            start = i + 1
        i = text.find(";", i + 1)
    stmt = make_statement(text, start, len(text), line_offset, nested=False, strip_semicolon=False)
    if stmt:
        out.append(stmt)
    return out


def needs_no_transaction(stmt: Statement, server_version: int | None = None) -> str | None:
    """Why ``stmt`` cannot run inside a transaction, or ``None`` (see ``Database.needs_no_transaction``)."""
    keyword = stmt.keyword()
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


# SQLite gives no error offset; its messages name the token or object, which we look for instead.
_SQLITE_NAMED = [re.compile(p) for p in (
    r'near "(?P<name>.+?)": syntax error', r"no such (?:table|column|function|index|view|trigger|module): "
    r"(?:\w+\.)?(?P<name>\S+)", r"has no column named (?P<name>\S+)",
    r"(?:table|index|view|trigger) \"?(?P<name>[^\s\"]+)\"? already exists")]


def named_in_message(message: str, sql: str) -> int | None:
    """Offset in ``sql`` of the token or object an error message names, or None."""
    for pattern in _SQLITE_NAMED:
        m = pattern.search(message)
        if m:
            name = m["name"]
            found = re.search(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", sql, re.IGNORECASE) \
                if name[:1].isalnum() or name[:1] == "_" else None
            if found:
                return found.start()
            index = sql.find(name)
            return index if index >= 0 else None
    return None
