"""Where things are: a section's text and its file positions, the statements to check, raw findings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._record import dataclass

if TYPE_CHECKING:  # pragma: no cover
    from pglast import ast


class _Source:
    """The SQL of one section and how to turn character offsets into file lines and columns."""

    def __init__(self, sql: str, path: str, line_offset: int):
        self.sql = sql
        self.path = path
        self.line_offset = line_offset  # file line of the section's first line is line_offset + 1
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", sql)]
        self.lines = sql.split("\n")

    def position(self, offset: int) -> tuple[int, int]:
        """Section offset -> (file line, 1-based column)."""
        offset = max(0, min(offset, len(self.sql)))
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1 + self.line_offset, offset - self.line_starts[lo] + 1

    def section_line(self, file_line: int) -> str:
        i = file_line - self.line_offset - 1
        return self.lines[i] if 0 <= i < len(self.lines) else ""


@dataclass
class _Stmt:
    """One statement to check: its node and where its text sits in the section."""

    node: ast.Node
    start: int  # section offset of the first token
    end: int  # section offset just after the last token
    loc_base: int | None  # add to a node's ``location`` to get a section offset (None: unknown)
    span: tuple[int, int]  # first and last file line, for seedkit:nolint


@dataclass
class _Raw:
    offset: int
    rule: str
    message: str
    span: tuple[int, int]
    hint: str | None = None


def subcommand_starts(toks: Sequence[Any], count: int) -> list[int] | None:
    """Where each ALTER TABLE sub-command starts, from the statement's tokens (comments dropped) that
    begin at its table name: after the name (``schema . name``, an inheritance ``*``), split at commas
    outside parentheses. None when that does not give ``count`` starts."""
    i = 1  # the first token is the (first part of the) table name
    while i + 1 < len(toks) and toks[i].name == "ASCII_46":  # schema . name
        i += 2
    if i < len(toks) and toks[i].name == "ASCII_42":  # t *
        i += 1
    if i >= len(toks):
        return None
    starts = [toks[i].start]
    depth = 0
    for j in range(i, len(toks)):
        name = toks[j].name
        if name == "ASCII_40":
            depth += 1
        elif name == "ASCII_41":
            depth -= 1
        elif name == "ASCII_44" and depth == 0 and j + 1 < len(toks):
            starts.append(toks[j + 1].start)
    return starts if len(starts) == count else None
