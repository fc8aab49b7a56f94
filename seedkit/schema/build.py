"""One JSON Schema (draft 2020-12) per table, from the migrated database's catalog.

The schema validates a whole fixture document for the table, in every shape ``seedkit run`` reads:
a list of rows, or a mapping with ``rows`` and the document settings (``table``, ``key``,
``on_conflict``, ``create_only``, ``prune``); an empty document is allowed. Each document of a
multi-document YAML file is checked on its own (as YAML editors do).

A ``!ref`` is a YAML tag; a validator that does not know seedkit sees the tagged value underneath:
``!ref roles/admin`` reads as the text ``roles/admin``, ``!ref {table: teams, slug: core}`` as the
mapping. Every column therefore also accepts those two shapes (``#/$defs/ref``): text of the form
``table/value``, or a mapping with a ``table`` key. ``seedkit run`` shows its own ``!ref`` values to the
schema in the same two shapes, so it reports exactly what an editor reports.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

from ..db.catalog import Catalog, Column, Table, TableName
from .checks import Rule, Rules

DRAFT = "https://json-schema.org/draft/2020-12/schema"

_INT_RANGES = {"smallint": 15, "int2": 15, "integer": 31, "int": 31, "int4": 31, "bigint": 63, "int8": 63}
_LENGTH = re.compile(r"^\s*(?:character varying|varchar|character|char|nchar|nvarchar|varying character|"
                     r"native character)\s*\(\s*(\d+)\s*\)", re.IGNORECASE)
_NUMERIC = re.compile(r"^\s*(?:numeric|decimal)\s*\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)", re.IGNORECASE)
# what PostgreSQL (and seedkit's converter) read as a timestamp: a date, then optionally a time
# after a space or T, then optionally a zone; RFC 3339's date-time format requires both the T and
# the zone, so it would refuse the `2024-05-01 09:30` fixtures are usually written with
TIMESTAMP = (r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"
             r" ?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?$")
TIME = r"^\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?$"
INT_TEXT = r"^\s*[-+]?[0-9][0-9_]*\s*$"
FLOAT_TEXT = (r"^\s*[-+]?(?:(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?|[Nn][Aa][Nn]|"
              r"[Ii][Nn][Ff](?:[Ii][Nn][Ii][Tt][Yy])?)\s*$")
NUMBER_TEXT = r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$"
BOOL_WORDS = [w for word in ("true", "false", "yes", "no", "on", "off", "t", "f", "y", "n")
              for w in dict.fromkeys((word, word.capitalize(), word.upper()))]
# the tag-free view of `!ref table/value` (text) and `!ref {table: t, col: value}` (a mapping)
REF = {
    "description": "!ref: a row of another table, as `!ref table/value` or `!ref {table: t, column: value}`",
    "anyOf": [
        {"type": "string", "pattern": r"^[^/\s][^/]*/.+$"},
        {"type": "object", "required": ["table"], "properties": {"table": {"type": "string", "minLength": 1},
                                                                  "column": {"type": "string"}},
         "additionalProperties": {"type": ["string", "number", "boolean", "object"]}},
    ],
}


def schema_filename(name: TableName) -> str:
    """``users.schema.json``, or ``audit.events.schema.json`` outside the default schema. A character
    that is not safe in a file name or a glob (``/``, ``*``, a leading dot, …) is written ``%XX``, so
    every schema stays inside the folder whatever the table is called."""
    text = re.sub(r"[^\w.\- ]", lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), str(name))
    if text.startswith("."):
        text = "%2E" + text[1:]
    return f"{text}.schema.json"


def writable_columns(table: Table) -> list[Column]:
    """The columns a fixture may set (generated columns are computed by the database)."""
    return [c for c in table.columns.values() if not c.generated]


def required_columns(table: Table, rules: Rules | None = None) -> list[str]:
    """NOT NULL columns without a default: a row that leaves one out cannot be inserted (unless a
    BEFORE INSERT trigger fills it, as pagila's film.fulltext is)."""
    if rules is not None and table.name in rules.triggered:
        return []
    return [c.name for c in writable_columns(table) if not c.nullable and not c.has_default]


def key_columns(table: Table, key: list[str] | None) -> list[str]:
    """The columns every row of a document must carry: its ``key``, or the primary key."""
    return [c for c in (key or table.primary_key) if c in table.columns and not table.columns[c].generated]


def table_schema(table: Table, catalog: Catalog, rules: Rules | None = None) -> dict[str, Any]:
    """The JSON Schema of a fixture document for ``table``."""
    col_rules = (rules or {}).get(table.name, {})
    columns = writable_columns(table)
    names = [c.name for c in columns]
    properties = {}
    for col in columns:
        props = column_schema(col, catalog.dialect, col_rules.get(col.name))
        props_any: list[dict[str, Any]] = [props, {"$ref": "#/$defs/ref"}]
        if col.nullable:
            props_any.insert(1, {"type": "null"})
        properties[col.name] = {"description": _describe(col), "anyOf": props_any}
    row: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    required = required_columns(table, rules)
    if required:
        row["required"] = required
    spelled = sorted({str(table.name), table.name.name} | (
        {f"{table.name.schema}.{table.name.name}"} if table.name.schema else set()))
    column_list = {"type": "array", "items": {"enum": names}, "uniqueItems": True}
    document = {
        "type": "object",
        "properties": {
            "table": {"description": "the table (default: the file name)", "type": "string"},
            "key": {"description": "the columns that identify a row (default: the primary key)",
                    "anyOf": [{"enum": names}, column_list]},
            "on_conflict": {"description": "update (default) or ignore existing rows", "enum": ["update", "ignore"]},
            "create_only": {"description": "columns set on insert, never updated",
                            "anyOf": [{"enum": names}, column_list]},
            "prune": {"description": "delete rows this fixture created earlier and no longer lists",
                      "type": "boolean"},
            "rows": {"$ref": "#/$defs/rows"},
        },
        "additionalProperties": False,
    }
    # a row must carry its document's key: the primary key, unless `key:` names other columns
    pk = [c for c in table.primary_key if c in names]
    keyed: list[dict[str, Any]] = []
    if pk:
        keyed.append({"if": {"not": {"required": ["key"]}},
                      "then": {"properties": {"rows": {"items": {"required": pk}}}}})
    for ukey in table.unique_keys:
        cols = [c for c in ukey.columns if c in names]
        if ukey.partial or len(cols) != len(ukey.columns):
            continue
        spellings: list[Any] = [cols] + ([cols[0]] if len(cols) == 1 else [])
        keyed.append({"if": {"required": ["key"], "properties": {"key": {"enum": spellings}}},
                      "then": {"properties": {"rows": {"items": {"required": cols}}}}})
    if keyed:
        document["allOf"] = keyed
    bare_rows: dict[str, Any] = {"$ref": "#/$defs/rows"}
    if pk:
        bare_rows = {"allOf": [bare_rows, {"items": {"required": pk}}]}
    return {
        "$schema": DRAFT,
        "$id": f"urn:seedkit:fixture:{table.name}",
        "title": f"seedkit fixture for table {table.name}",
        "description": f"Rows for {table.name}. Generated by `seedkit schema` from the migrated database: "
                       "run it again after a migration, do not edit.",
        "$comment": "a document that names another table (`table: …`) is that table's business",
        "if": {"type": "object", "required": ["table"], "properties": {"table": {"not": {"enum": spelled}}}},
        "then": True,
        "else": {"anyOf": [{"type": "null"}, bare_rows, {"$ref": "#/$defs/document"}]},
        "$defs": {"row": row, "rows": {"type": "array", "items": {"$ref": "#/$defs/row"}},
                  "document": document, "ref": REF},
    }


def all_schemas(catalog: Catalog, rules: Rules | None = None, *,
                skip: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """file name → schema, for every table (seedkit's own tables and partitions left out)."""
    out = {}
    for name, table in sorted(catalog.tables.items()):
        if name.name.startswith("seedkit_") or name in catalog.partitions or name.name in skip:
            continue
        out[schema_filename(name)] = table_schema(table, catalog, rules)
    return out


def _describe(col: Column) -> str:
    text = col.type or col.kind
    if not col.nullable:
        text += " not null"
    if col.has_default:
        text += " (has a default)"
    return text


def column_schema(col: Column, dialect: str, rule: Rule | None = None) -> dict[str, Any]:
    """The schema of one column's (non-null) value."""
    kind = col.kind
    if kind == "array":
        element = replace(col, type=re.sub(r"(\[\d*\])+$", "", col.type or ""), kind=col.element_kind or "other")
        return {"type": "array", "items": {"anyOf": [_scalar(element.kind, element, dialect, None),
                                                     {"type": "null"}, {"type": "array"}]}}
    return _scalar(kind, col, dialect, rule)


def _scalar(kind: str, col: Column, dialect: str, rule: Rule | None) -> dict[str, Any]:
    out: dict[str, Any]
    if kind == "int":
        bits = _INT_RANGES.get(col.type.lower().strip(), 63) if dialect == "postgresql" else 63
        # integer text converts, as a CSV cell does (`age: "42"`); the range applies to numbers
        out = {"type": ["integer", "string"], "pattern": INT_TEXT, "minimum": -(2**bits), "maximum": 2**bits - 1}
    elif kind == "float":
        # text a float reads (`1e-07`, `NaN`, `-Infinity`), as `seedkit snapshot` writes what YAML cannot
        out = {"type": ["number", "string"], "pattern": FLOAT_TEXT}
    elif kind == "numeric":
        out = {"type": ["number", "string"], "pattern": NUMBER_TEXT}
        m = _NUMERIC.match(col.type or "")
        if m and dialect == "postgresql":
            digits = int(m[1]) - int(m[2] or 0)
            out["exclusiveMaximum"] = 10**digits
            out["exclusiveMinimum"] = -(10**digits)
    elif kind == "bool":
        # YAML 1.1 (seedkit, PyYAML) reads yes/no/on/off as booleans, YAML 1.2 (editors) as text
        out = {"enum": [True, False, 0, 1, *BOOL_WORDS]}
    elif kind == "text":
        out = {"type": ["string", "number"]}  # `zip: 12345` is stored as the text 12345
        m = _LENGTH.match(col.type or "")
        if m and dialect == "postgresql":  # SQLite stores longer text in a varchar(n) column
            out["maxLength"] = int(m[1])
    elif kind == "date":
        out = {"type": "string", "format": "date"}
    elif kind in ("timestamp", "timestamptz"):
        out = {"type": "string", "pattern": TIMESTAMP}
    elif kind == "time":
        # YAML 1.1 (PyYAML) reads an unquoted 10:30 as the number 630 (minutes): seedkit reads it back
        out = {"type": ["string", "integer"], "pattern": TIME, "minimum": 0, "maximum": 86399}
    elif kind == "interval":
        out = {"type": ["string", "number"]}
    elif kind == "json":
        out = {}
    elif kind == "uuid":
        out = {"type": "string", "format": "uuid"}
    elif kind == "bytes":
        out = {"type": "string"}
    elif kind == "enum":
        out = {"type": "string", "enum": list(col.enum_values)} if col.enum_values else {"type": "string"}
    else:
        out = {"type": ["string", "number", "boolean"]}
    if rule is not None:
        _apply_rule(out, kind, rule)
    return out


def _apply_rule(out: dict[str, Any], kind: str, rule: Rule) -> None:
    # an inexact list (``upper(c) IN ('S')`` also takes 's') would refuse values the database accepts
    if rule.values is not None and rule.values_exact and kind in ("text", "enum", "int", "numeric", "float"):
        allowed = [_json_value(v) for v in rule.values]
        if "enum" in out:
            allowed = [v for v in out["enum"] if v in allowed]
        out["enum"] = allowed
    if kind in ("int", "numeric", "float"):
        for bound, exclusive, key, xkey, pick in (
                (rule.minimum, rule.exclusive_minimum, "minimum", "exclusiveMinimum", max),
                (rule.maximum, rule.exclusive_maximum, "maximum", "exclusiveMaximum", min)):
            if bound is None:
                continue
            value = _json_value(bound)
            target = xkey if exclusive else key
            out[target] = pick(out[target], value) if target in out else value
    if kind == "text":
        if rule.max_length is not None:
            out["maxLength"] = min(out.get("maxLength", rule.max_length), rule.max_length)
        if rule.min_length is not None:
            out["minLength"] = rule.min_length


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
