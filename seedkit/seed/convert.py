"""Fixture values → values of the live column's type, with a clear message when they do not fit.

``convert`` validates and normalises (e.g. ``"42"`` → 42 for an integer column, ``1.10`` → Decimal
for numeric, ISO text → date). The adapters then turn normalised values into what their driver sends.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from .. import jsontext
from ..db.catalog import Column
from ..jsontext import JSON_NULL

if TYPE_CHECKING:  # pragma: no cover
    import uuid

_INT_RANGES = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}
_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}


class ConversionError(ValueError):
    pass


def fast_converter(column: Column, *, text: bool, adapt: Callable[[Column, Any], Any],
                   skip: tuple[type, ...] = ()) -> Callable[[Any], Any]:
    """A per-column function value → driver value for the hot loop.

    Values already of the column's natural Python type (int for integers, str for text, float for
    floats) pass straight through; anything else takes the full ``convert`` + ``adapt`` path.
    ``skip`` types (references) become NULL: they are resolved in SQL.
    """

    def slow(v: Any) -> Any:
        if v is None or isinstance(v, skip):
            return None
        return adapt(column, convert(v, column, text=text))

    kind = column.kind
    if kind == "int":
        bound = int_bound(column)

        def to_int(v: Any) -> Any:
            if v.__class__ is int and -bound <= v < bound:
                return v
            return slow(v)

        return to_int
    if kind == "text":
        def to_text(v: Any) -> Any:
            return v if v.__class__ is str else slow(v)

        return to_text
    if kind == "float":
        def to_float(v: Any) -> Any:
            return v if v.__class__ is float else slow(v)

        return to_float
    return slow


def convert(value: Any, column: Column, *, text: bool = False) -> Any:
    """Normalise ``value`` for ``column``; ``text=True`` when it came from a CSV cell."""
    if value is None:
        return None
    if value is JSON_NULL and column.kind != "json":
        raise ConversionError(f"!json null is the JSON value null, for a json column; {column.type} takes null "
                              "(SQL NULL)")
    try:
        return _convert(value, column.kind, column, text, column.element_kind)
    except RecursionError:  # a YAML alias that contains itself
        raise ConversionError(f"the value for {column.type} contains itself (a recursive YAML alias?)") from None


def _convert(value: Any, kind: str, column: Column, text: bool, element_kind: str | None) -> Any:
    fn = _CONVERTERS.get(kind)
    if fn is None:
        if isinstance(value, (dict, list)):
            raise ConversionError(f"expected a plain value for {column.type}, got {_name(value)}")
        return value if isinstance(value, (str, int, Decimal, float, bytes)) else str(value)
    if kind == "array":
        return _array(value, column, text, element_kind or "other")
    return fn(value, column, text)


def _name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean"}.get(type(value), type(value).__name__)


def _int(value: Any, column: Column, text: bool) -> int:
    if isinstance(value, bool):
        raise ConversionError(f"expected an integer for {column.type}, got a boolean")
    if isinstance(value, int):
        out = value
    elif isinstance(value, (Decimal, float)):
        if not _finite(value) or value != int(value):
            raise ConversionError(f"expected an integer for {column.type}, got {value}")
        out = int(value)
    elif isinstance(value, str):
        s = value.strip().replace("_", "")
        try:
            out = int(s)
        except ValueError:
            raise ConversionError(f"expected an integer for {column.type}, got {value!r}") from None
    else:
        raise ConversionError(f"expected an integer for {column.type}, got {_name(value)}")
    bound = int_bound(column)
    if not -bound <= out < bound:
        raise ConversionError(f"{out} is out of range for {column.type}"
                              + ("" if column.type_oid is not None else " (a 64-bit integer)"))
    return out


def int_bound(column: Column) -> int:
    """PostgreSQL's smallint/integer/bigint ranges; SQLite integers are always 64-bit."""
    if column.type_oid is None:
        return 2**63
    return _INT_RANGES.get(column.type.lower(), 2**63)


def _finite(value: Any) -> bool:
    return not (isinstance(value, float) and (math.isnan(value) or math.isinf(value))) and not (
        isinstance(value, Decimal) and not value.is_finite())


def _float(value: Any, column: Column, text: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ConversionError(f"expected a number for {column.type}, got {_name(value)}")
    try:
        return float(value)
    except ValueError:
        raise ConversionError(f"expected a number for {column.type}, got {value!r}") from None


def _numeric(value: Any, column: Column, text: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ConversionError(f"expected a number for {column.type}, got {_name(value)}")
    try:
        out = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ConversionError(f"expected a number for {column.type}, got {value!r}") from None
    if not out.is_finite():
        raise ConversionError(f"{value} is not a finite number ({column.type})")
    return out


def _bool(value: Any, column: Column, text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ConversionError(f"expected true or false for {column.type}, got {value!r}")


def _text(value: Any, column: Column, text: bool) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, dict, list, bytes)):
        raise ConversionError(f"expected text for {column.type}, got {_name(value)}")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _date(value: Any, column: Column, text: bool) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ConversionError(f"expected a date for {column.type}, got a timestamp {value.isoformat()}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConversionError(f"expected a date (YYYY-MM-DD) for {column.type}, got {value!r}")


def _timestamp(value: Any, column: Column, text: bool) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            text = value.strip().replace("Z", "+00:00")
            if len(text) > 3 and text[-3] in "+-" and text[-2:].isdigit():
                text += ":00"  # PostgreSQL's +00 (Python 3.10 reads only +00:00)
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ConversionError(f"expected a timestamp (YYYY-MM-DD HH:MM:SS) for {column.type}, got {value!r}")


def _time(value: Any, column: Column, text: bool) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 86400:
        # YAML 1.1 reads 10:30 as sexagesimal 630 minutes; undo that
        return (dt.datetime.min + dt.timedelta(minutes=value)).time() if value < 1440 else \
            (dt.datetime.min + dt.timedelta(seconds=value)).time()
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConversionError(f"expected a time (HH:MM[:SS]) for {column.type}, got {value!r}")


def _interval(value: Any, column: Column, text: bool) -> Any:
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return dt.timedelta(seconds=float(value))
    if isinstance(value, str):
        return value
    raise ConversionError(f"expected an interval for {column.type}, got {_name(value)}")


def _json(value: Any, column: Column, text: bool) -> Any:
    if value is JSON_NULL:
        return value
    if text and isinstance(value, str):
        try:
            value = jsontext.loads(value)  # a CSV cell `null` is JSON null; an empty cell is SQL NULL
        except ValueError as exc:
            raise ConversionError(f"expected JSON text for {column.type}: {exc}") from None
        if value is JSON_NULL:
            return value
    return _plain_json(value, column)


def _plain_json(value: Any, column: Column) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain_json(v, column) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v, column) for v in value]
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConversionError("JSON has no NaN or Infinity")
        return jsontext.number(value)  # 1.10 keeps its digits (jsonb stores them)
    if isinstance(value, float) and not _finite(value):
        raise ConversionError("JSON has no NaN or Infinity")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ConversionError(f"{_name(value)} cannot be stored as JSON")


def _uuid(value: Any, column: Column, text: bool) -> uuid.UUID:
    import uuid  # (here: it imports platform, which a run without a UUID column does not need)

    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        raise ConversionError(f"expected a UUID for {column.type}, got {value!r}") from None


def _bytes(value: Any, column: Column, text: bool) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        if value.startswith("\\x"):
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                raise ConversionError(f"bad hex bytes {value!r}") from None
        return value.encode()
    raise ConversionError(f"expected bytes for {column.type}, got {_name(value)}")


def _enum(value: Any, column: Column, text: bool) -> str:
    if not isinstance(value, str) or (column.enum_values and value not in column.enum_values):
        allowed = ", ".join(column.enum_values)
        raise ConversionError(f"{value!r} is not one of the {column.type} values ({allowed})")
    return value


def _array(value: Any, column: Column, text: bool, element_kind: str) -> list[Any]:
    if text and isinstance(value, str):
        try:
            value = json.loads(value, parse_float=Decimal)
        except ValueError:
            raise ConversionError(f"expected a JSON list for {column.type}, got {value!r}") from None
    if not isinstance(value, (list, tuple)):
        raise ConversionError(f"expected a list for {column.type}, got {_name(value)}")
    out = []
    for item in value:
        if isinstance(item, (list, tuple)):
            out.append(_array(item, column, False, element_kind))
        elif item is None:
            out.append(None)
        else:
            out.append(_convert(item, element_kind, column, False, None))
    return out


_CONVERTERS = {
    "int": _int, "float": _float, "numeric": _numeric, "bool": _bool, "text": _text, "date": _date,
    "timestamp": _timestamp, "timestamptz": _timestamp, "time": _time, "interval": _interval, "json": _json,
    "uuid": _uuid, "bytes": _bytes, "enum": _enum, "array": _array,
}
