"""A migration section cut into statements: each statement with its place in the file.

How to cut is the dialect's business (``Database.split``, in ``db/postgres/statements.py`` and
``db/sqlite/statements.py``); what a statement is, and how an offset becomes ``line:column``, is shared.
"""

from __future__ import annotations

from typing import Any

from .._record import dataclass


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


@dataclass(frozen=True)
class Judged:
    """The parse node of a statement whose cut was kept from an earlier run (``migrate/split_cache.py``):
    not a tree, only what the runner asked the tree then. A dialect's ``needs_no_transaction`` and
    ``touches_history`` give these answers back; anything else needing the tree parses the text again."""

    no_transaction: str | None = None  # needs_no_transaction's answer, for the server version it was asked for
    history: str | None = None  # touches_history's answer, for the history tables it was asked about


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


def make_statement(text: str, start: int, end: int, line_offset: int, *, nested: bool, node: Any = None,
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
