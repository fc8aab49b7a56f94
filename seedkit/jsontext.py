"""JSON values kept exact on their way into a json/jsonb column.

- A number keeps the digits it was written with: ``1.10`` stays ``1.10`` (a Python float would
  make it ``1.1``, and ``0.1000000000000000000001`` would lose digits). Numbers a float holds
  exactly stay floats, so the common case is serialised by ``json.dumps`` at C speed.
- ``JSON_NULL`` is the JSON value ``null``, which is not SQL NULL: fixtures write it ``!json null``
  (``null`` alone is SQL NULL), and a CSV cell ``null`` in a json column is JSON null (an empty
  cell is SQL NULL).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


class JsonNull:
    """The JSON value null (as opposed to SQL NULL, which is None)."""

    _instance: JsonNull | None = None

    def __new__(cls) -> JsonNull:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "JSON_NULL"

    def __reduce__(self) -> str:
        return "JSON_NULL"


JSON_NULL = JsonNull()


def number(value: Decimal) -> Any:
    """A JSON number read as Decimal → int, or float when the float prints the same digits, else the
    Decimal itself (written by ``dumps`` with its digits)."""
    text = str(value)
    if "." not in text and "E" not in text:
        return int(value)
    as_float = float(value)
    return as_float if repr(as_float) == text else value


def loads(text: str) -> Any:
    """JSON text → value, numbers exact (see ``number``), a top-level null as JSON_NULL."""
    value = json.loads(text, parse_float=Decimal)
    return JSON_NULL if value is None else value


def dumps(value: Any, *, sort_keys: bool = False, compact: bool = False) -> str:
    """JSON text of ``value``; a Decimal is written with its own digits, JSON_NULL as null."""
    separators = (",", ":") if compact else (", ", ": ")
    try:
        return json.dumps(value, sort_keys=sort_keys, separators=separators)
    except TypeError:
        pass  # a Decimal or JSON_NULL inside: the exact writer below
    item_sep, key_sep = separators

    def write(v: Any) -> str:
        if isinstance(v, Decimal):
            if not v.is_finite():
                raise ValueError("JSON has no NaN or Infinity")
            return str(v)
        if v is JSON_NULL:
            return "null"
        if isinstance(v, dict):
            items = sorted(v.items()) if sort_keys else v.items()
            return "{" + item_sep.join(json.dumps(str(k)) + key_sep + write(x)
                                       for k, x in items) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + item_sep.join(write(x) for x in v) + "]"
        return json.dumps(v)

    return write(value)


__all__ = ["JSON_NULL", "JsonNull", "dumps", "loads", "number"]
