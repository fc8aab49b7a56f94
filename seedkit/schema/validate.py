"""Pre-flight: every YAML and JSON fixture row checked against its table's JSON Schema, before any write.

The schema is the one ``seedkit schema`` writes, built from the live catalog of the run, and it is
applied by the jsonschema library. Values are shown to it as a YAML editor sees them: a ``!ref`` as
``table/value`` text or as its mapping, a date as its ISO text, a number as a number. All problems of
all files are reported at once, each with its file, line, row and column.

CSV cells are all text and Python rows are generated: those are checked (and converted) by the seed
engine as they stream, value by value, with the same file and row in every message.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ..db.catalog import Catalog, Table, did_you_mean
from ..errors import FixtureError
from ..seed.model import Fixture, Ref, Row
from .build import FLOAT_TEXT, INT_TEXT, NUMBER_TEXT, REF, TIME, TIMESTAMP, key_columns, table_schema
from .checks import Rules

MAX_SHOWN = 100


def preflight(fixtures: Iterable[Fixture], catalog: Catalog, rules: Rules | None = None) -> None:
    """Raise one ``FixtureError`` listing every schema problem of every YAML/JSON row (exit 2)."""
    problems: list[FixtureError] = []
    checkers: dict[Any, RowChecker] = {}
    for fx in fixtures:
        if fx.rows is None:
            continue
        table = catalog.find(fx.table)
        if table is None:
            continue  # the unknown table is reported by the planner, with the migrations hint
        key = tuple(key_columns(table, fx.header.key))
        checker = checkers.get((table.name, key))
        if checker is None:
            checker = checkers[(table.name, key)] = RowChecker(table, catalog, rules, list(key))
        for row in fx.rows:
            problems += checker.problems(row)
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    shown = problems[:MAX_SHOWN]
    more = f" (the first {MAX_SHOWN} are shown)" if len(problems) > MAX_SHOWN else ""
    raise FixtureError(f"{len(problems)} fixture rows do not fit their tables' schemas{more}; nothing was written:",
                       problems=shown)


class RowChecker:
    """The row schema of one table (and document key), applied by jsonschema.

    A row is valid exactly when its set of columns fits the row schema's ``required`` and
    ``additionalProperties``, and each value fits its column's schema. jsonschema's verdict on a column
    value is remembered under a key that determines it: the value itself, or only its type (or its
    type and length) where the column's schema looks at nothing else. So a row costs one dictionary
    lookup per value once its kinds of values have been seen. A row that fails is validated again
    as a whole, for the messages.

    Every column's schema accepts a ``!ref`` (``anyOf`` the column's own schema, null, and the ref
    shape): a value that fits the ref shape fits the column, whatever else it is. That shape is decided
    here directly (``fits_ref``), so references, which differ from row to row, cost no jsonschema
    descent; a value that does not fit it goes the ordinary way.
    """

    def __init__(self, table: Table, catalog: Catalog, rules: Rules | None, key: list[str]):
        self.table = table
        schema = table_schema(table, catalog, rules)
        self.defs = defs = schema["$defs"]
        self.row_schema: dict[str, Any] = {"$schema": schema["$schema"], "$defs": defs, "$ref": "#/$defs/row"}
        if key:
            self.row_schema["required"] = list(key)
        props = self.props = defs["row"]["properties"]
        self.shape_schema = {"type": "object", "properties": dict.fromkeys(props, True),
                             "additionalProperties": False,
                             "required": sorted(set(defs["row"].get("required", [])) | set(key))}
        self.shapes: dict[tuple[str, ...], bool] = {}
        # jsonschema validators are built on first use (a verdict not remembered yet, a failed row): most
        # columns of a large file meet only a few kinds of values, and building a validator costs more
        # than the verdicts it gives; the validators built are the same ones, so the verdicts are too
        self._validator: Any = None
        self._shape: Any = None
        self.columns: dict[str, Any] = {}
        self.keys = {c: _key_function(spec["anyOf"][0]) for c, spec in props.items()}
        self.verdicts: dict[str, dict[Any, bool]] = {c: {} for c in props}
        self.natives: dict[str, Any] = {}  # by column: its schema decided in Python (None: by jsonschema)
        self.allowed = frozenset(props)
        self.required = frozenset(self.shape_schema["required"])

    @property
    def validator(self) -> Any:
        """The whole row's validator (for the messages of a row that fails)."""
        if self._validator is None:
            from jsonschema import Draft202012Validator

            self._validator = Draft202012Validator(self.row_schema,
                                                   format_checker=Draft202012Validator.FORMAT_CHECKER)
        return self._validator

    @property
    def shape(self) -> Any:
        """The validator of a row's set of columns (required, no unknown ones)."""
        if self._shape is None:
            from jsonschema import Draft202012Validator

            self._shape = Draft202012Validator(self.shape_schema)
        return self._shape

    def column(self, name: str) -> Any:
        """The validator of one column's value (``name`` is one of the row schema's columns)."""
        found = self.columns.get(name)
        if found is None:
            from jsonschema import Draft202012Validator

            found = self.columns[name] = Draft202012Validator(
                {"$defs": {"ref": self.defs["ref"]}, **self.props[name]},
                format_checker=Draft202012Validator.FORMAT_CHECKER)
        return found

    def is_valid(self, name: str, value: Any) -> bool:
        """``self.column(name).is_valid(value)``: decided in Python when the column's schema uses only
        keywords whose meaning is a comparison (``native_decider``), so a run whose rows all fit never
        imports jsonschema; otherwise by jsonschema."""
        native = self.natives.get(name, _UNKNOWN)
        if native is _UNKNOWN:
            native = self.natives[name] = native_decider(self.props[name])
        if native is not None:
            return native(value)
        return self.column(name).is_valid(value)

    def problems(self, row: Row) -> list[FixtureError]:
        try:
            if self._valid_values(row.values):
                return []
            view = {k: as_json(v) for k, v in row.values.items()}
        except RecursionError:  # a YAML alias that contains itself: the converter says so, located
            return []
        columns = [c for c, col in self.table.columns.items() if not col.generated]
        # `nmae: Ada` is one typo, not an unknown column and a missing one: the missing one is not repeated
        typos = {close[0] for extra in view if extra not in self.table.columns
                 for close in [did_you_mean(extra, columns, n=1)] if close}
        found = []
        for err in sorted(self.validator.iter_errors(view), key=_order):
            found += _explain(err, row, self.table, typos)
        return found

    def _valid_values(self, values: dict[str, Any]) -> bool:
        """``_valid`` of the row's view, each value shown as JSON only when it is checked that way (a
        reference is decided as it is, without building its view)."""
        if not self._shape_ok(values):
            return False
        keys, verdicts = self.keys, self.verdicts
        for column, value in values.items():  # ``_fits`` inlined: a large file runs this for every value
            t = type(value)
            if t is Ref:
                if ref_fits(value):
                    continue
                value = as_json(value)
            elif t not in _PLAIN:
                value = as_json(value)
            if fits_ref(value):
                continue
            k = keys[column](value)
            if k is None:
                verdict = self.is_valid(column, value)
            else:
                seen = verdicts[column]
                verdict = seen.get(k)
                if verdict is None:
                    verdict = seen[k] = self.is_valid(column, value)
            if not verdict:
                return False
        return True

    def _shape_ok(self, view: dict[str, Any]) -> bool:
        """The shape schema (``properties`` of ``true``, no others, ``required``) decided as jsonschema
        decides it: the names are among the properties, and the required ones are there."""
        names = tuple(view)
        ok = self.shapes.get(names)
        if ok is None:
            present = set(names)
            ok = self.shapes[names] = present <= self.allowed and self.required <= present
        return ok

    def _valid(self, view: dict[str, Any]) -> bool:
        """Whether jsonschema finds the row's view valid (the view is what ``as_json`` shows)."""
        if not self._shape_ok(view):
            return False
        return all(self._fits(column, value) for column, value in view.items())

    def _fits(self, column: str, value: Any) -> bool:
        """Whether a value (as JSON) fits its column's schema; ``column`` is one of the row schema's."""
        if fits_ref(value):
            return True
        k = self.keys[column](value)
        if k is None:
            return self.is_valid(column, value)
        seen = self.verdicts[column]
        verdict = seen.get(k)
        if verdict is None:
            verdict = seen[k] = self.is_valid(column, value)
        return verdict


_REF_TEXT, _REF_MAP = REF["anyOf"]
_ref_text = re.compile(_REF_TEXT["pattern"]).search  # jsonschema's `pattern` is a search too
_REF_ANY = (str, int, float, bool, dict)  # "string", "number", "boolean", "object" (a bool is no number,
#                                           but it is a boolean: the four together take exactly these)
assert _REF_MAP["additionalProperties"] == {"type": ["string", "number", "boolean", "object"]}
assert _REF_MAP["properties"] == {"table": {"type": "string", "minLength": 1}, "column": {"type": "string"}}


def fits_ref(value: Any) -> bool:
    """Whether a value (as ``as_json`` shows it) fits the ref shape of the schema, decided as jsonschema
    decides it: text ``table/value``, or a mapping with a non-empty text ``table``, a text ``column``
    if any, and other values that are text, numbers, booleans or mappings."""
    t = type(value)
    if t is str:
        return "/" in value and _ref_text(value) is not None
    if t is not dict:
        return False
    table = value.get("table")
    if type(table) is not str or not table:
        return False
    for k, v in value.items():
        if k == "column":
            if type(v) is not str:
                return False
        elif k != "table" and not isinstance(v, _REF_ANY):
            return False
    return True


_PLAIN = (str, int, float, bool, type(None))  # as_json shows these as they are


def ref_fits(ref: Ref) -> bool:
    """``fits_ref(as_json(ref))``, decided on the reference itself (its view is not built)."""
    if ref.scalar:
        return fits_ref(f"{ref.table}/{ref.match[0][1]}")
    # one pass over the match: as_json shows every value but null, lists and tuples as text, a number,
    # a boolean or a mapping (all fit); a name that is no text, or is `table`/`column`, would make its
    # view differ from what the reference says, so the view is built and decided
    fitting = True
    for k, v in ref.match:
        if type(k) is not str or k == "table" or k == "column":
            return fits_ref(as_json(ref))
        if v is None or isinstance(v, (list, tuple)):
            fitting = False
    table = ref.table
    if type(table) is not str or not table or (ref.column and type(ref.column) is not str):
        return False
    return fitting


_UNKNOWN = object()
# JSON Schema's types as jsonschema's Draft 2020-12 type checker decides them (a boolean is no integer
# and no number; a float with an integral value is an integer)
_JSON_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer())),
    "number": lambda v: not isinstance(v, bool) and isinstance(v, numbers.Number),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}
_NATIVE_WORDS = {"type", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
                 "exclusiveMaximum", "description", "format"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def _is_date(v: Any) -> bool:
    """jsonschema's ``date`` format: text of the form 2024-05-01 that is a date (other values fit)."""
    if not isinstance(v, str):
        return True
    try:
        return bool(_DATE.fullmatch(v) and dt.date.fromisoformat(v))
    except ValueError:
        return False


def _is_uuid(v: Any) -> bool:
    """jsonschema's ``uuid`` format: text ``UUID()`` reads, with hyphens where the usual form has them."""
    if not isinstance(v, str):
        return True
    from uuid import UUID  # (here: it imports platform, which fixtures without a UUID column do not need)

    try:
        UUID(v)
    except ValueError:
        return False
    return all(v[position] == "-" for position in (8, 13, 18, 23))


_FORMAT_CHECKS = {"date": _is_date, "uuid": _is_uuid}


def native_decider(spec: dict[str, Any]) -> Any:
    """A column's schema (``anyOf`` its own schema, perhaps null, and the ref shape) as a Python
    function value → valid, deciding as jsonschema does, keyword by keyword (``type``; ``pattern`` and
    the lengths on text alone, with ``re.search`` and ``len``; the bounds on numbers alone, with Python's
    comparisons; the ``date`` and ``uuid`` formats as jsonschema's format checker reads them). None when
    the schema uses anything else (other formats, enums, lists …): jsonschema decides."""
    if set(spec) - {"anyOf", "description"} or not isinstance(spec.get("anyOf"), list) or not spec["anyOf"]:
        return None
    own, *rest = spec["anyOf"]
    null = False
    for branch in rest:
        if branch == {"type": "null"}:
            null = True
        elif branch != {"$ref": "#/$defs/ref"}:
            return None
    if not isinstance(own, dict) or set(own) - _NATIVE_WORDS:
        return None
    types = own.get("type")
    names = [types] if isinstance(types, str) else types
    if names is not None and (not isinstance(names, list) or any(n not in _JSON_TYPES for n in names)):
        return None
    checks = [_JSON_TYPES[n] for n in names] if names is not None else None
    pattern = own.get("pattern")
    if pattern is not None and not isinstance(pattern, str):
        return None
    search = re.compile(pattern).search if pattern is not None else None
    lo, hi = own.get("minLength"), own.get("maxLength")
    bounds = [(own[w], op) for w, op in (("minimum", _lt), ("maximum", _gt), ("exclusiveMinimum", _le),
                                         ("exclusiveMaximum", _ge)) if w in own]
    if any(type(b) not in (int, float) for b, _ in bounds) or any(
            n is not None and type(n) is not int for n in (lo, hi)):
        return None
    fmt = _FORMAT_CHECKS.get(own["format"]) if "format" in own else None
    if "format" in own and fmt is None:
        return None
    is_number = _JSON_TYPES["number"]

    def fits_own(v: Any) -> bool:
        if checks is not None and not any(check(v) for check in checks):
            return False
        if fmt is not None and not fmt(v):
            return False
        if isinstance(v, str):
            if search is not None and search(v) is None:
                return False
            if (lo is not None and len(v) < lo) or (hi is not None and len(v) > hi):
                return False
        elif bounds and is_number(v):
            return not any(breaks(v, bound) for bound, breaks in bounds)
        return True

    def decide(v: Any) -> bool:
        return fits_own(v) or (null and v is None) or fits_ref(v)

    return decide


def _lt(v: Any, b: Any) -> bool:
    return v < b


def _gt(v: Any, b: Any) -> bool:
    return v > b


def _le(v: Any, b: Any) -> bool:
    return v <= b


def _ge(v: Any, b: Any) -> bool:
    return v >= b


# keywords that look at a string only; what a number, a boolean or null is checked against is its type
_STRING_ONLY = {"type", "pattern", "maxLength", "minLength", "format"}
_TYPES = {int: ("integer", "number"), bool: ("boolean",), str: ("string",)}
# keywords that look at a number only (never at a boolean: jsonschema's booleans are no numbers)
_BOUND_WORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _key_function(schema: dict[str, Any]) -> Any:
    """value → the part of it the column's own schema (``schema``) decides on; None: do not remember.

    Beyond the type: a number is known by which of the schema's bounds it breaks (jsonschema's own
    comparisons), text by whether the schema's pattern finds it (jsonschema's search) and its length;
    so values that differ in every row (sizes, times of day, timestamps) still meet a remembered verdict."""
    words = set(schema) - {"description"}
    types = schema.get("type", ())
    types = {types} if isinstance(types, str) else set(types)
    bounds = [schema.get(w) for w in _BOUND_WORDS]
    lo, hi, xlo, xhi = bounds
    numeric_ok = words <= _STRING_ONLY | set(_BOUND_WORDS) and all(
        b is None or type(b) in (int, float) for b in bounds)
    pattern = schema.get("pattern")
    search = re.compile(pattern).search if isinstance(pattern, str) else None
    text_ok = "string" in types and words <= {"type", "pattern", "maxLength", "minLength", *_BOUND_WORDS} and (
        pattern is None or search is not None)
    lengths = "maxLength" in words or "minLength" in words

    def breaks(v: Any) -> tuple[bool, bool, bool, bool]:
        return (lo is not None and v < lo, hi is not None and v > hi, xlo is not None and v <= xlo,
                xhi is not None and v >= xhi)

    def key(value: Any) -> Any:
        t = type(value)
        if t is str:
            if "/" in value:  # may be `!ref table/value` text, which fits any column: decided by the value
                return (str, value)
            if text_ok:  # the type fits; the pattern and the length decide (bounds look at numbers only)
                return (str, search is None or search(value) is not None, len(value) if lengths else None)
            return (str, value)
        if value is None:
            return (None,)
        if t in (int, bool) and words <= _STRING_ONLY and types & set(_TYPES[t]):
            return (t,)
        if t is int and numeric_ok:
            return (int, *breaks(value))
        if t is float and numeric_ok:  # a float with an integral value is an "integer" to jsonschema
            return (float, value.is_integer(), *breaks(value))
        if t in (int, bool, float):
            return (t, value)
        return None  # mappings and lists: validated each time

    return key


def _order(err: Any) -> tuple:
    return (str(err.path[0]) if err.path else "", err.validator)


def _explain(err: Any, row: Row, table: Table, typos: set[str] = frozenset()) -> list[FixtureError]:
    from jsonschema.exceptions import best_match

    columns = [c for c in table.columns if not table.columns[c].generated]
    if err.validator == "additionalProperties" and not err.path:
        out = []
        for extra in sorted(k for k in err.instance if k not in err.schema.get("properties", {})):
            close = did_you_mean(extra, columns)
            hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close else
                    f"the columns of {table.name}: {', '.join(columns)}")
            if extra in table.columns:
                hint = f"{extra!r} is a generated column: the database computes it"
            out.append(FixtureError(f"unknown column {extra!r}", location=row.where(extra),
                                    hint=hint))
        return out
    if err.validator == "required" and not err.path:
        missing = [c for c in err.validator_value if c not in err.instance and c not in typos]
        nullable = {c for c in missing if table.columns[c].nullable or table.columns[c].has_default}
        return [FixtureError(f"missing column {c!r}: " + (
            "it is the document's key" if c in nullable else "it is NOT NULL and has no default"),
            location=row.location, hint=f"give {c!r} a value in every row" + (
                " (or name other unique columns with `key:`)" if c in nullable else "")) for c in missing]
    column = str(err.path[0]) if err.path else None
    detail = err
    if err.validator == "anyOf" and err.context:
        own = [e for e in err.context if e.schema_path and e.schema_path[0] == 0]  # the column's type, not null/ref
        detail = best_match(own) or err
    where = f"column {column!r}" if column else "row"
    if column in table.columns and err.instance is None and not table.columns[column].nullable:
        return [FixtureError(f"{column!r} is null, and {table.name}.{column} is NOT NULL",
                             location=row.where(column), hint=f"give {column!r} a value, or leave the column out "
                             "of every row to use its default" if table.columns[column].has_default else None)]
    message = _message(detail)
    return [FixtureError(f"{message} ({table.columns[column].type if column in table.columns else where})",
                         location=row.where(column) if column else row.location)]


def _message(err: Any) -> str:
    value = err.instance
    shown = repr(value) if not isinstance(value, str) or len(value) <= 60 else repr(value[:57] + "...")
    v = err.validator
    if v == "enum":
        allowed = ", ".join(repr(x) for x in err.validator_value[:20])
        return f"{shown} is not one of {allowed}"
    if v == "maxLength":
        return f"{shown} is too long: {len(value)} characters, at most {err.validator_value}"
    if v == "minLength":
        return f"{shown} is too short: {len(value)} characters, at least {err.validator_value}"
    if v == "type":
        wanted = err.validator_value if isinstance(err.validator_value, str) else " or ".join(err.validator_value)
        return f"expected {wanted}, got {_kind(value)} {shown}"
    if v in _BOUNDS:
        return f"{shown} is out of range: it must be {_BOUNDS[v]} {err.validator_value}"
    if v == "pattern":
        wanted = _PATTERNS.get(err.validator_value, "text in the expected form")
        return f"expected {wanted}, got text {shown}"
    if v == "format":
        return f"{shown} is not a valid {_FORMATS.get(err.validator_value, err.validator_value)}"
    return err.message


_PATTERNS = {INT_TEXT: "an integer", NUMBER_TEXT: "a number", FLOAT_TEXT: "a number",
             TIMESTAMP: "a timestamp (YYYY-MM-DD[ HH:MM[:SS]][zone])",
             TIME: "a time (HH:MM[:SS])"}
_FORMATS = {"uuid": "UUID", "date": "date (YYYY-MM-DD)"}
_BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "greater than",
           "exclusiveMaximum": "less than"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "text", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__)


def as_json(value: Any) -> Any:
    """A loaded fixture value as a YAML editor's validator sees it (tags dropped, dates as text)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Ref):
        if value.scalar:
            return f"{value.table}/{value.match[0][1]}"
        out: dict[str, Any] = {"table": value.table}
        if value.column:
            out["column"] = value.column
        out.update({str(k): as_json(v) for k, v in value.match})
        return out
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    return str(value)
