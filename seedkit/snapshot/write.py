"""One table → one fixture file, streamed: a single ordered query per table.

PostgreSQL: ``COPY (SELECT …) TO STDOUT``. A YAML row is built in SQL as one line of text (JSON
values in YAML flow style) unless a masked value must pass through Python; a CSV file is PostgreSQL's
own CSV output. SQLite: a cursor over the same query, rendered in Python (render.py) to the same text.
Memory stays bounded by one row, except for a table whose key is masked (sorted by the masked key).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import IO, Any

from ..db.base import Database
from ..db.catalog import Column
from ..errors import DatabaseError
from ..jsontext import JSON_NULL
from . import render
from .plan import Item, Lit, RefItem, TableSpec
from .render import JSON_NULL_YAML

Progress = Callable[[str, int, "int | None"], None]
_TEXTUAL = ("text", "enum", "other")


class Query:
    """The FROM/JOIN/WHERE/ORDER BY of one table's rows, in the connection's dialect."""

    def __init__(self, d: Database, spec: TableSpec, where: str | None):
        self.d, self.spec, self.where = d, spec, where
        self.pg = d.dialect == "postgresql"

    def col(self, lit: Lit) -> str:
        return f"{lit.alias}.{self.d.quote(lit.column.name)}"

    def source(self) -> str:
        q = self.d.quote
        out = f"{self.spec.relation or self.d.qualified(self.spec.table.name)} AS t"
        for j in self.spec.joins:
            on = " AND ".join(f"{j.alias}.{q(pc)} = {ca}.{q(cc)}" for pc, ca, cc in j.on)
            out += f" LEFT JOIN {self.d.qualified(j.table)} AS {j.alias} ON {on}"
        if self.where:
            out += f" WHERE {self.where}"
        return out

    def order(self) -> str:
        parts = []
        for lit in self.spec.sort_parts():
            expr = self.col(lit)
            if self.pg and (lit.table, lit.column.name) in self.spec.collate_c:
                expr += ' COLLATE "C"'  # byte order: the same in every database, whatever its collation
            parts.append(expr)
        return ", ".join(parts)

    def select(self, exprs: list[str]) -> str:
        return f"SELECT {', '.join(exprs)} FROM {self.source()} ORDER BY {self.order()}"

    # -- PostgreSQL value expressions ---------------------------------------------------------------
    def pg_json(self, lit: Lit, *, guard: bool = True) -> str:
        """SQL text of the value as JSON (NULL → null). ``guard=False``: the column is known NOT NULL
        where it is read, so the (measurably slow) coalesce is left out."""
        c, col = self.col(lit), lit.column
        if col.kind == "json":  # the JSON value null is written !json null (null alone is SQL NULL)
            expr = f"CASE WHEN ({c})::jsonb = 'null'::jsonb THEN '{JSON_NULL_YAML}' ELSE ({c})::jsonb::text END"
        elif col.kind == "array":
            expr = f"to_jsonb({c})::text"  # jsonb spacing: the same text Python gives (render.dump)
        elif col.type == "money":
            expr = f"({c})::numeric::text"
        elif col.kind in ("int", "numeric", "float"):
            expr = f"({c})::text"  # a JSON number as it is; NaN and Infinity read back as text
        elif col.kind == "text" and not _blank_padded(col):
            expr = json_text(c if col.type == "text" else f"({c})::text")
        elif col.kind in ("other", "enum"):
            expr = json_text(f"({c})::text")
        elif col.kind in ("date", "timestamp", "timestamptz", "time"):
            expr = "'\"' || " + self.pg_time(lit) + " || '\"'"  # ISO text has no quote or backslash
        elif col.kind in ("uuid", "interval"):
            expr = f"""'"' || ({c})::text || '"'"""  # nothing to escape
        elif col.kind == "bytes":
            expr = f"""'"\\' || ({c})::text || '"'"""  # \x… hex (bytea_output), the backslash escaped
        elif col.kind == "bool":
            expr = f"CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"
        else:
            expr = f"to_json({c})::text"
        if guard or col.nullable:
            return f"coalesce({expr}, 'null')"
        return expr

    def pg_csv(self, lit: Lit) -> str:
        """SQL of the value as a CSV cell: the column itself wherever its text form loads back as it is."""
        c, col = self.col(lit), lit.column
        if col.kind == "json":
            return f"({c})::jsonb" if col.type == "json" else c
        if col.kind == "array":
            return f"to_jsonb({c})::text"
        if col.type == "money":
            return f"({c})::numeric"
        return c  # dates and times too: COPY prints them as pg_time does

    def pg_time(self, lit: Lit) -> str:
        """A date or time as PostgreSQL prints it (ISO, UTC: an offset is +00), straight from the type's
        output function: no ``to_json`` or concatenation per value."""
        return f"({self.col(lit)})::text"

    def pg_plain(self, lit: Lit) -> str:
        """SQL text of the value as a CSV cell or inside a scalar !ref (NULL stays NULL)."""
        c, col = self.col(lit), lit.column
        if col.kind == "json":
            return f"({c})::jsonb::text"
        if col.kind == "array":
            return f"to_jsonb({c})::text"
        if col.type == "money":
            return f"({c})::numeric::text"
        if _blank_padded(col):
            return f"(to_json({c})#>>'{{}}')"  # keeps the padding a cast to text would strip
        if col.kind in ("other", "interval", "text", "enum", "uuid", "int", "numeric", "bool", "float"):
            return f"({c})::text" if col.kind != "bool" else f"(to_json({c})#>>'{{}}')"
        return f"(to_json({c})#>>'{{}}')"


def _blank_padded(col: Column) -> bool:
    """char(n): a cast to text would strip the padding; to_json keeps it."""
    return col.type.startswith("character(") or col.type == "bpchar"


def json_text(expr: str) -> str:
    """SQL quoting a text value as a JSON string, cheaply: backslash and double quote are escaped by
    ``replace`` (a regular expression or ``to_json`` per value costs about twice as much), and the
    control characters are left to ``COPY``, whose text format writes \n \t \r \b \f as JSON and YAML
    do. Vertical tab is spelled ``\u000b`` as JSON spells it; the rarer control characters COPY passes
    through raw are escaped by the client (``render.fix_bytes``)."""
    return ("""'"' || replace(replace(replace(""" + expr
            + r""", '\', '\\'), '"', '\"'), chr(11), '\u000b') || '"'""")


def literal(d: Database, text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class RowPlan:
    """A SELECT list and how its fields become one output line."""

    def __init__(self) -> None:
        self.exprs: list[str] = []
        self.kinds: list[str] = []  # "seg" (finished text) | "json" (decode) | "raw" (SQLite value)
        self.columns: list[Column | None] = []
        self.ops: list[Callable[[list[Any]], str]] = []
        self.sort: list[Callable[[list[Any]], Any]] = []

    def field(self, expr: str, kind: str, column: Column | None = None) -> int:
        self.exprs.append(expr)
        self.kinds.append(kind)
        self.columns.append(column)
        return len(self.exprs) - 1

    def decode(self, fields: list[Any]) -> list[Any]:
        out = []
        for value, kind, column in zip(fields, self.kinds, self.columns):
            if kind == "json":  # strict=False: raw control characters (see render.fix_bytes)
                out.append(JSON_NULL if value == JSON_NULL_YAML else json.loads(value, parse_float=Decimal,
                                                                                strict=False))
            elif kind == "raw":
                out.append(render.from_sqlite(value, column) if value is not None else None)  # type: ignore[arg-type]
            else:
                out.append(value)
        return out

    def line(self, values: list[Any]) -> str:
        return "".join(op(values) for op in self.ops) + "\n"  # COPY ends each row with its own newline


def _masked_value(lit: Lit, value: Any) -> Any:
    if lit.mask is None or value is None:
        return value
    return render.conform(lit.mask.apply(render.plain_text(value)), lit.column)


class YamlRows:
    """Builds the RowPlan of a YAML row: ``- {col: value, …}``."""

    def __init__(self, q: Query):
        self.q = q
        self.plan = RowPlan()
        self._sql: list[str] = []  # pending SQL text pieces (PostgreSQL)

    # pieces
    def const(self, text: str) -> None:
        if self.q.pg:
            self._sql.append(literal(self.q.d, text))
        else:
            self.plan.ops.append(lambda _v, t=text: t)

    def sql(self, expr: str) -> None:
        self._sql.append(expr)

    def flush(self) -> None:
        if self._sql:
            idx = self.plan.field(" || ".join(self._sql), "seg")
            self.plan.ops.append(lambda v, i=idx: v[i])
            self._sql = []

    def py(self, item: Item) -> None:
        self.flush()
        fn = self._py(item)
        self.plan.ops.append(fn)

    def getter(self, lit: Lit) -> Callable[[list[Any]], Any]:
        if self.q.pg:
            idx = self.plan.field(self.q.pg_json(lit), "json")
        else:
            idx = self.plan.field(self.q.col(lit), "raw", lit.column)
        return lambda v: v[idx]

    def _py(self, item: Item) -> Callable[[list[Any]], str]:
        if isinstance(item, Lit):
            get = self.getter(item)
            return lambda v: render.dump(_masked_value(item, get(v)))
        null = self._null_getter(item)
        table = str(item.parent.name)
        if item.scalar:
            part = item.parts[0][1]
            assert isinstance(part, Lit)
            get = self.getter(part)

            def scalar(v: list[Any]) -> str:
                if null(v) is None:
                    return "null"
                text = render.plain_text(_masked_value(part, get(v)))
                return "!ref " + render.fix_text(json.dumps(f"{table}/{text}", ensure_ascii=False))

            return scalar
        parts = [(render.name(k), self._py(p)) for k, p in item.parts]
        head = "!ref {table: " + render.name(table)
        tail = (", column: " + render.name(item.column) if item.column else "") + "}"

        def mapping(v: list[Any]) -> str:
            if null(v) is None:
                return "null"
            return head + "".join(f", {k}: {fn(v)}" for k, fn in parts) + tail

        return mapping

    def _null_getter(self, item: RefItem) -> Callable[[list[Any]], Any]:
        expr = f"{item.null_alias}.{self.q.d.quote(item.null_column)}"
        if self.q.pg:
            idx = self.plan.field(f"CASE WHEN {expr} IS NULL THEN 'null' ELSE '1' END", "json")
        else:
            idx = self.plan.field(expr, "raw", None)
        return lambda v: v[idx]

    def pg_item(self, item: Item, top: bool = False) -> str:
        """SQL text of an item that needs no Python (PostgreSQL)."""
        if isinstance(item, Lit):
            return self.q.pg_json(item, guard=not top)  # inside a reference the parent row may be missing
        d = self.q.d
        null = f"{item.null_alias}.{d.quote(item.null_column)}"
        table = str(item.parent.name)
        if item.scalar:
            part = item.parts[0][1]
            assert isinstance(part, Lit)
            body = "'!ref ' || " + json_text(f"{literal(d, table + '/')} || {self.q.pg_plain(part)}")
        else:
            pieces = [literal(d, "!ref {table: " + render.name(table))]
            for k, p in item.parts:
                pieces.append(literal(d, f", {render.name(k)}: "))
                pieces.append(self.pg_item(p))
            pieces.append(literal(d, (", column: " + render.name(item.column) if item.column else "") + "}"))
            body = " || ".join(pieces)
        # a parent row that is missing (a NOT VALID foreign key) gives null, not a broken line
        return f"CASE WHEN {null} IS NULL THEN 'null' ELSE coalesce({body}, 'null') END"

    def build(self) -> RowPlan:
        spec = self.q.spec
        self.const("- {")
        for n, (colname, item) in enumerate(spec.items):
            self.const(("" if n == 0 else ", ") + render.name(colname) + ": ")
            masked = item.mask is not None if isinstance(item, Lit) else item.masked
            if self.q.pg and not masked:
                self.sql(self.pg_item(item, top=True))
            else:
                self.py(item)
        self.const("}")
        self.flush()
        _sort_fields(self, spec)
        return self.plan


def _sort_fields(rows: YamlRows | CsvRows, spec: TableSpec) -> None:
    """A masked key: the rows are sorted by the masked values (in Python) instead of in SQL."""
    parts = spec.sort_parts()
    if not any(p.mask is not None for p in parts):
        return
    for lit in parts:
        get = rows.getter(lit)
        rows.plan.sort.append(lambda v, g=get, lit=lit: _masked_value(lit, g(v)))


class CsvRows:
    """Builds the RowPlan of a CSV record when it passes through Python (masks, SQLite)."""

    def __init__(self, q: Query):
        self.q = q
        self.plan = RowPlan()

    def getter(self, lit: Lit) -> Callable[[list[Any]], Any]:
        if self.q.pg:
            idx = self.plan.field(self.q.pg_json(lit), "json")
        else:
            idx = self.plan.field(self.q.col(lit), "raw", lit.column)
        return lambda v: v[idx]

    def build(self) -> RowPlan:
        getters = []
        for _, item in self.q.spec.items:
            assert isinstance(item, Lit)
            getters.append((item, self.getter(item)))

        def line(v: list[Any]) -> str:
            return render.csv_line([render.csv_cell(_masked_value(lit, g(v))) for lit, g in getters])[:-1]

        self.plan.ops.append(line)
        _sort_fields(self, self.q.spec)
        return self.plan


# -- YAML rows with COPY's own quoting (PostgreSQL) -----------------------------------------------
# With DELIMITER '"', COPY's text format writes `"` between columns, and escapes inside a value exactly
# as a YAML (and JSON) double-quoted string does: \" \\ \n \t \r \b \f (\v too, respelled below).
# A row is then columns that alternate: YAML syntax and unquoted values (numbers, true/false, null),
# then a value written raw by its type's output function, between quotes — no SQL work per string.
_QUOTED_KINDS = ("text", "enum", "other", "uuid", "interval", "date", "timestamp", "timestamptz", "time", "bytes")
_BARE_KINDS = ("int", "numeric", "float", "bool")
_NULL_CELL = b'"\\N"'  # a NULL between quotes: written null
_VT = re.compile(rb"\\\\|\\v")  # \v as JSON spells it (\u000b), read token by token


def quoted_columns(q: Query) -> list[str] | None:
    """The SELECT list of a YAML row for ``COPY … (DELIMITER '"')``, or None when the table holds a value
    that must be built as JSON in SQL (json, arrays, a reference by several columns) or in Python (masks)."""
    columns: list[str] = []
    bare: list[str] = []  # SQL pieces of the current unquoted stretch

    def quoted(expr: str) -> None:
        columns.append(" || ".join(bare))
        bare.clear()
        columns.append(expr)

    for n, (name, item) in enumerate(q.spec.items):
        key = render.name(name)
        if any(ch in key for ch in '"\\') or not key.isprintable():
            return None  # a quoted column name: COPY would escape its quotes
        prefix = ("- {" if n == 0 else ", ") + key + ": "
        if isinstance(item, Lit):
            if item.mask is not None:
                return None
            kind = item.column.kind
            if kind in _QUOTED_KINDS:
                bare.append(literal(q.d, prefix))
                quoted(q.col(item))
            elif kind in _BARE_KINDS:
                bare.append(literal(q.d, prefix))
                bare.append(q.pg_json(item, guard=False))
            else:
                return None
        else:
            part = item.parts[0][1] if item.parts else None
            if not item.scalar or item.masked or not isinstance(part, Lit):
                return None
            value = q.col(part)  # NULL when there is no reference (or the parent row is missing): null
            bare.append(f"CASE WHEN {value} IS NULL THEN {literal(q.d, prefix)} "
                        f"ELSE {literal(q.d, prefix + '!ref ')} END")
            quoted(f"{literal(q.d, str(item.parent.name) + '/')} || {q.pg_plain(part)}")
    bare.append(literal(q.d, "}"))
    columns.append(" || ".join(bare))
    return columns if q.spec.items else None


def _pg_quoted_rows(q: Query, columns: list[str], out: IO[bytes], total: int, progress: Progress | None) -> int:
    name = q.spec.name

    def flush(buf: bytearray, n: int) -> None:
        data: bytes | bytearray = buf  # written before copy_chunks reuses it
        if b"\\" in data:
            if _NULL_CELL in data:  # a value's own backslash is doubled, so "\N" is only ever NULL
                data = data.replace(_NULL_CELL, b"null")
            if b"\\v" in data:
                data = _VT.sub(lambda m: m.group() if m.group() == b"\\\\" else b"\\u000b", data)
        out.write(render.fix_bytes(data))
        if progress is not None:
            progress(name, n, total)

    return copy_chunks(q.d, f"COPY ({q.select(columns)}) TO STDOUT (DELIMITER '\"')", flush)


def csv_header(spec: TableSpec) -> str:
    return render.csv_line([c for c, _ in spec.items])


def yaml_header(spec: TableSpec, rows: int) -> str:
    key = ", ".join(render.name(k) for k in spec.key)
    return f"table: {render.name(spec.name)}\nkey: [{key}]\n" + ("rows:\n" if rows else "rows: []\n")


def write_table(d: Database, spec: TableSpec, where: str | None, fmt: str, out: IO[bytes], total: int,
                progress: Progress | None = None) -> int:
    """Stream ``spec``'s rows into ``out``; returns the number of rows written."""
    q = Query(d, spec, where)
    if fmt == "yaml":
        out.write(yaml_header(spec, total).encode())
        if q.pg:
            columns = quoted_columns(q)
            if columns is not None:
                return _pg_quoted_rows(q, columns, out, total, progress)
        plan = YamlRows(q).build()
    else:
        out.write(csv_header(spec).encode())
        masked = any(isinstance(it, Lit) and it.mask is not None for _, it in spec.items)
        if q.pg and not masked:
            return _pg_copy_csv(q, out, total, progress)
        plan = CsvRows(q).build()
    if q.pg:
        return _pg_rows(q, plan, out, total, progress, fix=fmt == "yaml")
    return _sqlite_rows(q, plan, out, total, progress, fix=fmt == "yaml")


def _start_copy(d: Database, stmt: str) -> Any:
    from psycopg import pq

    pgconn = d.conn.pgconn
    pgconn.send_query(stmt.encode())
    result = pgconn.get_result()
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        error = _result_error(result)
        while pgconn.get_result() is not None:
            pass
        raise error
    return pgconn


def _end_copy(pgconn: Any, done: bool) -> None:
    """Read what is left (a copy stopped early) and raise the error the server ended it with, if any."""
    from psycopg import pq

    while not done:  # the rest must be read before the connection takes a new query
        nbytes, _ = pgconn.get_copy_data(0)
        done = nbytes < 0
    failure = None
    while (result := pgconn.get_result()) is not None:
        if result.status == pq.ExecStatus.FATAL_ERROR and failure is None:
            failure = _result_error(result)
    if failure is not None:
        raise failure


def copy_rows(d: Database, stmt: str) -> Iterator[bytes]:
    """The rows of ``COPY … TO STDOUT``, read straight from libpq: psycopg's own ``Copy`` iterator costs
    a few microseconds per row, more than PostgreSQL takes to produce it."""
    pgconn = _start_copy(d, stmt)
    get = pgconn.get_copy_data
    done = False
    try:
        while True:
            nbytes, data = get(0)
            if nbytes < 0:
                done = True
                break
            yield data
    finally:
        _end_copy(pgconn, done)


def copy_chunks(d: Database, stmt: str, flush: Callable[[bytearray, int], None]) -> int:
    """The rows of ``COPY … TO STDOUT`` handed to ``flush(buffer, rows so far)`` a megabyte at a time
    (and once more at the end, maybe empty); the loop per row does nothing else, which keeps the
    client at the pace of ``pg_dump``. Returns the number of rows."""
    pgconn = _start_copy(d, stmt)
    get = pgconn.get_copy_data
    buf = bytearray()
    n = size = 0
    done = False
    try:
        while True:
            nbytes, data = get(0)
            if nbytes < 0:
                done = True
                break
            buf += data
            n += 1
            size += nbytes
            if size > 1 << 20:
                flush(buf, n)
                buf.clear()
                size = 0
        flush(buf, n)
    finally:
        _end_copy(pgconn, done)
    return n


def _result_error(result: Any) -> DatabaseError:
    if result is None:
        return DatabaseError("the database ended the query without a result")
    from psycopg import pq

    message = (result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or result.error_message or b"").decode(
        "utf-8", "replace").strip()
    code = result.error_field(pq.DiagnosticField.SQLSTATE)
    hint = result.error_field(pq.DiagnosticField.MESSAGE_HINT)
    from ..urls import mask

    return DatabaseError(mask(message), sqlstate=code.decode() if code else None,
                         hint=mask(hint.decode("utf-8", "replace")) if hint else None)


class EmptyText(Exception):
    """A text cell holds the empty string, which a CSV file cannot tell from NULL: write YAML instead."""


# An empty string in PostgreSQL's CSV output: "" as a whole cell. The same bytes can occur inside a
# quoted multi-line value (rare); such a table is checked exactly once its rows are written.
_EMPTY_CELL = re.compile(rb'(?:^|,)""(?:,|$)', re.MULTILINE)


def _pg_copy_csv(q: Query, out: IO[bytes], total: int, progress: Progress | None) -> int:
    """PostgreSQL's own CSV output. An empty string (which a CSV file cannot tell from NULL) is looked
    for in the bytes a megabyte at a time, not per row in Python."""
    exprs = [q.pg_csv(it) for _, it in q.spec.items]  # type: ignore[arg-type]
    textual = [q.col(it) for _, it in q.spec.items  # type: ignore[union-attr]
               if it.column.kind in _TEXTUAL]  # type: ignore[union-attr]
    name = q.spec.name
    suspect = [False]

    def flush(buf: bytearray, n: int) -> None:
        if textual and not suspect[0] and b'""' in buf:
            suspect[0] = _EMPTY_CELL.search(buf) is not None
        out.write(buf)
        if progress is not None:
            progress(name, n, total)

    n = copy_chunks(q.d, f"COPY ({q.select(exprs)}) TO STDOUT (FORMAT csv)", flush)
    if suspect[0]:  # "" as a cell, or inside a quoted multi-line value: ask the table
        empty = " OR ".join(f"({c})::text = ''" for c in textual)
        row = q.d.fetchone(f"SELECT EXISTS (SELECT 1 FROM {q.source()} {'AND' if q.where else 'WHERE'} ({empty}))")
        if row is not None and row[0]:
            raise EmptyText
    return n


def _pg_rows(q: Query, plan: RowPlan, out: IO[bytes], total: int, progress: Progress | None, *, fix: bool) -> int:
    stmt = f"COPY ({q.select(plan.exprs)}) TO STDOUT"
    name = q.spec.name
    if len(plan.exprs) == 1 and plan.kinds == ["seg"] and not plan.sort:  # every row built in SQL
        def flush(buf: bytearray, n: int) -> None:
            data = bytes(buf)
            if b"\\\\" in data:  # COPY doubles every backslash; its own escapes (\n, \t …) are JSON's
                data = data.replace(b"\\\\", b"\\")
            out.write(render.fix_bytes(data) if fix else data)
            if progress is not None:
                progress(name, n, total)

        return copy_chunks(q.d, stmt, flush)
    n = 0
    buf = bytearray()
    held: list[tuple[tuple[Any, ...], str]] = []

    def write() -> None:
        data = bytes(buf)
        out.write(render.fix_bytes(data) if fix else data)
        buf.clear()
        if progress is not None:
            progress(name, n, total)

    for data in copy_rows(q.d, stmt):
        n += 1
        fields = bytes(data)[:-1].split(b"\t")
        values = plan.decode([f.replace(b"\\\\", b"\\").decode() for f in fields])
        line = plan.line(values)
        if plan.sort:
            held.append((tuple(s(values) for s in plan.sort), line))
            continue
        buf += line.encode()
        if len(buf) > 1 << 20:
            write()
    if held:
        held.sort(key=lambda h: h[0])
        for _, line in held:
            buf += line.encode()
    write()
    return n


def _sqlite_rows(q: Query, plan: RowPlan, out: IO[bytes], total: int, progress: Progress | None, *,
                 fix: bool) -> int:
    n = 0
    name = q.spec.name
    held: list[tuple[tuple[Any, ...], str]] = []
    for row in q.d.execute(q.select(plan.exprs)):
        n += 1
        values = plan.decode(list(row))
        line = plan.line(values)
        if plan.sort:
            held.append((tuple(s(values) for s in plan.sort), line))
        else:
            out.write((render.fix_text(line) if fix else line).encode())
        if progress is not None and n % 10000 == 0:
            progress(name, n, total)
    held.sort(key=lambda h: h[0])
    for _, line in held:
        out.write((render.fix_text(line) if fix else line).encode())
    return n


__all__ = ["Query", "copy_rows", "csv", "write_table"]
