"""Values → the text of fixture files, the same way on both dialects.

PostgreSQL renders most of each YAML row in SQL (``to_json``) and streams it with ``COPY TO``; what
must pass through Python (masked values and references that contain them, SQLite rows) is rendered
here to exactly the same text: JSON scalars, mappings and lists in YAML flow style, so every string
is double-quoted (no YAML 1.1 surprises such as ``no`` → false) and every row is one line.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from decimal import Decimal
from typing import Any

from ..db.catalog import Column
from ..jsontext import JSON_NULL

JSON_NULL_YAML = "!json null"  # a json/jsonb column holding the JSON value null (null alone is SQL NULL)

# Characters a YAML reader rejects or reads as a line break when they appear raw inside a quoted
# string (DEL, C1 controls including NEL, U+2028/2029, BOM, U+FFFE/FFFF): written as \u escapes.
_BAD_TEXT = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
# …and, in bytes streamed from PostgreSQL, the C0 controls COPY's text format passes through raw
# (it writes \b \t \n \v \f \r itself, and the SQL spells vertical tab \u000b)
_C0 = bytes(range(1, 8)) + bytes(range(14, 32))
_BAD_BYTES = re.compile(rb"[\x01-\x07\x0e-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|\xef\xbb\xbf|\xef\xbf[\xbe\xbf]")
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}


def fix_text(text: str) -> str:
    return _BAD_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def fix_bytes(data: bytes | bytearray) -> bytes | bytearray:
    # the bytes every such character starts with: searched for first, at memchr speed (translate
    # deletes the C0 controls at about the same speed; a regular expression is ten times slower)
    if (b"\x7f" not in data and b"\xc2" not in data and b"\xe2\x80" not in data and b"\xef" not in data
            and len(data.translate(None, _C0)) == len(data)):
        return data
    if not _BAD_BYTES.search(data):
        return data
    return _BAD_BYTES.sub(lambda m: f"\\u{ord(m.group().decode()):04x}".encode(), data)


def name(text: str) -> str:
    """A table or column name in YAML: plain when that is unambiguous, else quoted."""
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def dump(value: Any) -> str:
    """A JSON-typed Python value as YAML flow text (spacing as PostgreSQL prints jsonb)."""
    if value is None:
        return "null"
    if value is JSON_NULL:
        return JSON_NULL_YAML
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else json.dumps("NaN" if value.is_nan() else (
            "Infinity" if value > 0 else "-Infinity"))
    if isinstance(value, float):
        if math.isnan(value):
            return '"NaN"'
        if math.isinf(value):
            return '"Infinity"' if value > 0 else '"-Infinity"'
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{dump(str(k))}: {dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dump(v) for v in value) + "]"
    if isinstance(value, dt.datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, (dt.date, dt.time)):
        return json.dumps(value.isoformat())
    if isinstance(value, bytes):
        return json.dumps("\\x" + value.hex())
    return json.dumps(str(value), ensure_ascii=False)


def plain_text(value: Any) -> str:
    """The text of a value inside a scalar ``!ref table/value`` or a CSV cell."""
    if isinstance(value, str):
        return value
    if value is JSON_NULL:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, (dict, list)):
        return dump(value)
    return str(value)


def from_sqlite(value: Any, column: Column | None) -> Any:
    """A value SQLite returned → the JSON-typed value PostgreSQL's ``to_json`` would give."""
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return value
        return Decimal(repr(value))
    if column is not None and column.kind == "json" and isinstance(value, str):
        try:
            # keys sorted, as `seedkit run` stores JSON on SQLite: a second snapshot reads the same text
            loaded = json.loads(value, parse_float=Decimal, object_pairs_hook=lambda kv: dict(sorted(kv)))
        except ValueError:
            return value
        return JSON_NULL if loaded is None else loaded
    return value


def csv_cell(value: Any) -> str | None:
    """A value as a CSV cell (None: NULL, written as an empty unquoted cell)."""
    if value is None:
        return None
    if value is JSON_NULL:
        return "null"
    if isinstance(value, bool):
        return "t" if value else "f"  # as PostgreSQL's CSV output writes a boolean
    if isinstance(value, (dict, list)):
        return dump(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return plain_text(value)


def csv_line(cells: list[str | None]) -> str:
    """One CSV record quoted exactly as PostgreSQL's ``COPY … (FORMAT csv)`` quotes it."""
    out = []
    for cell in cells:
        if cell is None:
            out.append("")
        elif cell == "" or any(ch in cell for ch in ',"\r\n') or cell == "\\.":
            out.append('"' + cell.replace('"', '""') + '"')
        else:
            out.append(cell)
    return ",".join(out) + "\n"


def conform(value: Any, column: Column) -> Any:
    """A masked value in the text PostgreSQL prints for the column's type (a date in a timestamp
    column is midnight), so a snapshot of the masked copy reads the same."""
    kind = column.kind
    if kind in ("timestamp", "timestamptz") and isinstance(value, dt.date):
        if not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if kind == "timestamptz":
            value = (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
        else:
            value = value.replace(tzinfo=None)
        text = value.isoformat(sep=" ")
        return text[:-3] if kind == "timestamptz" and text.endswith("+00:00") else text  # PostgreSQL prints +00
    if kind == "date" and isinstance(value, dt.datetime):
        return value.date().isoformat()
    return value
