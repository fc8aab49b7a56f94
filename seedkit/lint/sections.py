"""Linting one migration section: parse it, check each statement (and those of DO blocks), apply nolint."""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError, parse_plpgsql_json

from ..migrate.files import template_hint
from .checker import _Checker, _is_comment, _safe_scan
from .nolint import _apply_suppressions, _directives
from .report import Finding, Suppressed
from .rules import ERROR, RULES
from .schema import SchemaState, _MigrationState
from .source import _Raw, _Source, _Stmt


def lint_section(sql: str, *, path: str, transactional: bool, line_offset: int = 0,
                 schema: SchemaState | None = None) -> tuple[list[Finding], list[Suppressed]]:
    """Like ``lint_sql``, and also return the findings that ``seedkit:nolint`` comments suppressed."""
    src = _Source(sql, path, line_offset)
    schema = SchemaState() if schema is None else schema
    try:
        parsed = parse_sql(sql)
    except ParseError as exc:
        offset, message = _error_at(exc)
        line, col = src.position(offset)
        hint = template_hint(sql, message) or RULES["syntax-error"].hint
        return [Finding(path, line, col, "syntax-error", ERROR, message, hint)], []

    checker = _Checker(src, _MigrationState(transactional=transactional), schema)
    tokens = checker.tokens
    statements: list[_Stmt] = []
    token_starts = [t.start for t in tokens]
    for raw in parsed:
        begin = raw.stmt_location
        end = begin + raw.stmt_len if raw.stmt_len else len(sql)
        i, j = bisect_left(token_starts, begin), bisect_left(token_starts, end)
        own = [t for t in tokens[i:j] if not _is_comment(t) and t.name != "ASCII_59"]
        start = own[0].start if own else begin
        stop = own[-1].end + 1 if own else end
        span = (src.position(start)[0], src.position(max(start, stop - 1))[0])
        statements.append(_Stmt(raw.stmt, start, stop, 0, span))

    do_bodies: list[tuple[int, int]] = []
    for stmt in statements:
        checker.check(stmt)
        while checker.do_blocks:
            block, node = checker.do_blocks.pop(0)
            body = _do_body(src, block, node)
            if body is not None:
                do_bodies.append(body)
                for inner in _do_statements(src, block, node, body):
                    checker.check(inner)

    return _apply_suppressions(src, checker.raw, _directives(src, tokens, do_bodies))


def check_down_section(sql: str, *, path: str, line_offset: int = 0) -> tuple[list[Finding], list[Suppressed]]:
    """Parse a down section, as ``lint_section`` parses an up section, and check nothing else: a
    ``down-syntax-error`` finding where it does not parse (located in the down section's own file), which
    ``-- seedkit:nolint down-syntax-error reason`` on or above that statement suppresses."""
    src = _Source(sql, path, line_offset)
    try:
        parse_sql(sql)
    except ParseError as exc:
        offset, message = _error_at(exc)
        tokens = _safe_scan(sql)
        raw = [_Raw(offset, "down-syntax-error", f"down section does not parse: {message}",
                    _statement_span(src, tokens, offset))]
    else:
        if "nolint" not in sql.lower():  # nothing to suppress, nothing to call unused
            return [], []
        raw, tokens = [], _safe_scan(sql)
    # Only the down section's own suppressions count: no other rule looks at a down section.
    directives = [d for d in _directives(src, tokens, ()) if "down-syntax-error" in d.rules]
    return _apply_suppressions(src, raw, directives)


def _error_at(exc: ParseError) -> tuple[int, str]:
    """The section offset the parser stopped at, and its message."""
    offset = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
    return offset, str(exc.args[0]) if exc.args else str(exc)


def _statement_span(src: _Source, tokens: list[Any], offset: int) -> tuple[int, int]:
    """First and last file line of the statement around ``offset`` (from the ``;`` before it to the one
    after), for ``seedkit:nolint``: the statement does not parse, so only the scanner can tell."""
    code = [t for t in tokens if not _is_comment(t)]
    start = stop = offset
    for tok in reversed(code):
        if tok.start < offset:
            if tok.name == "ASCII_59":
                break
            start = tok.start
    for tok in code:
        if tok.start >= offset:
            stop = tok.start
            if tok.name == "ASCII_59":
                break
    return src.position(start)[0], src.position(stop)[0]


def _do_body(src: _Source, stmt: _Stmt, node: ast.DoStmt) -> tuple[int, int] | None:
    """Section offsets of a DO block's dollar-quoted body (without the quotes)."""
    for arg in node.args or ():
        if (arg.defname == "language" and isinstance(arg.arg, ast.String)
                and arg.arg.sval.lower() != "plpgsql"):
            return None
    as_arg = next((a for a in node.args or () if a.defname == "as"), None)
    if as_arg is None or as_arg.arg_location is None:
        return None
    if stmt.loc_base is None:
        return None
    quote_at = stmt.loc_base + as_arg.arg_location
    m = re.compile(r"\$[A-Za-z_0-9]*\$").match(src.sql, quote_at)
    if m is None:
        return None
    close = src.sql.find(m.group(0), m.end())
    return (m.end(), close if close >= 0 else stmt.end)


def _do_statements(src: _Source, stmt: _Stmt, node: ast.DoStmt, body: tuple[int, int]) -> list[_Stmt]:
    """The SQL statements a DO block runs, parsed and placed in the file where possible."""
    begin, end = body
    text = src.sql[stmt.start:stmt.end]
    try:
        tree = json.loads(parse_plpgsql_json(text))
    except (ParseError, ValueError):
        return []
    body_line = src.position(begin)[0]
    found: list[_Stmt] = []
    cursor = begin
    for lineno, query in _plpgsql_queries(tree):
        try:
            parsed = parse_sql(query)
        except ParseError:
            continue
        line = body_line + max(lineno, 1) - 1
        at = src.sql.find(query, cursor, end)
        if at >= 0:
            cursor = at + len(query)
            loc_base: int | None = at
            last_line = src.position(at + len(query) - 1)[0]
        else:  # the plpgsql parser rewrote the text (e.g. SELECT … INTO): point at its line
            line_text = src.section_line(line)
            at = src.line_starts[min(line - src.line_offset - 1, len(src.line_starts) - 1)]
            at += len(line_text) - len(line_text.lstrip())
            loc_base = None
            last_line = line
        for raw in parsed:
            start = at + (raw.stmt_location if loc_base is not None else 0)
            span = (src.position(start)[0], last_line)
            found.append(_Stmt(raw.stmt, start, at + len(query), loc_base, span))
    return found


def _plpgsql_queries(tree: Any) -> Iterator[tuple[int, str]]:
    """(line in body, SQL) of every statement a PL/pgSQL block executes, in order: static SQL and
    ``EXECUTE 'constant'``."""
    if isinstance(tree, list):
        for item in tree:
            yield from _plpgsql_queries(item)
    elif isinstance(tree, dict):
        for key, value in tree.items():
            if key == "PLpgSQL_stmt_execsql":
                yield value.get("lineno", 1), value["sqlstmt"]["PLpgSQL_expr"]["query"]
            elif key == "PLpgSQL_stmt_dynexecute":
                query = value["query"]["PLpgSQL_expr"]["query"].strip()
                inner = query[1:-1]
                if len(query) >= 2 and query[0] == query[-1] == "'" and "'" not in inner.replace("''", ""):
                    yield value.get("lineno", 1), query[1:-1].replace("''", "'")
            else:
                yield from _plpgsql_queries(value)
