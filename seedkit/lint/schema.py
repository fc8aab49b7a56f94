"""What earlier statements and migrations told the linter: tables, columns, partitions, functions."""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING

from .._record import dataclass

if TYPE_CHECKING:  # pragma: no cover
    from pglast import ast


Key = tuple[str | None, str]  # (schema or None, name), as PostgreSQL folds them


def _key(rv: ast.RangeVar) -> Key:
    return (rv.schemaname, rv.relname)


def _show(key: Key) -> str:
    return f"{key[0]}.{key[1]}" if key[0] else key[1]


def _same(a: Key, b: Key) -> bool:
    """Names match when the relation names do and the schemas agree where both are given."""
    return a[1] == b[1] and (a[0] is None or b[0] is None or a[0] == b[0])


class _Tables:
    """A set of relation keys with schema-tolerant lookup (``t`` matches ``public.t``)."""

    def __init__(self) -> None:
        self._by_name: dict[str, list[Key]] = {}

    def add(self, key: Key) -> None:
        keys = self._by_name.setdefault(key[1], [])
        if key not in keys:
            keys.append(key)

    def find(self, key: Key) -> Key | None:
        return next((k for k in self._by_name.get(key[1], ()) if _same(k, key)), None)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and self.find(key) is not None  # type: ignore[arg-type]

    def discard(self, key: Key) -> None:
        found = self.find(key)
        if found is not None:
            self._by_name[found[1]].remove(found)

    def rename(self, key: Key, new: str) -> None:
        found = self.find(key)
        if found is not None:
            self.discard(found)
            self.add((found[0], new))


@dataclass
class SchemaState:
    """Facts learned from the migrations linted so far in one run (in version order).

    Only used to avoid false alarms on the safe multi-step patterns; an empty state is always safe.
    """

    tables: _Tables = field(default_factory=_Tables)  # every table seen created
    columns: dict[Key, dict[str, ast.TypeName]] = field(default_factory=dict)
    partitioned: _Tables = field(default_factory=_Tables)
    functions: dict[str, str] = field(default_factory=dict)  # name -> "immutable" | "stable" | "volatile"
    # CHECK (col IS NOT NULL) constraints: (table, name) -> (column, validated)
    notnull_checks: dict[tuple[Key, str], tuple[str, bool]] = field(default_factory=dict)

    def create_table(self, key: Key) -> None:
        self.drop_table(key)
        self.tables.add(key)
        self.columns[key] = {}

    def drop_table(self, key: Key) -> None:
        found = self.tables.find(key)
        if found is not None:
            self.tables.discard(found)
            self.columns.pop(found, None)

    def rename_table(self, key: Key, new: str) -> None:
        found = self.tables.find(key)
        if found is not None:
            cols = self.columns.pop(found, {})
            self.tables.rename(found, new)
            self.columns[(found[0], new)] = cols

    def column_type(self, table: Key, column: str) -> ast.TypeName | None:
        found = self.tables.find(table)
        return self.columns.get(found, {}).get(column) if found is not None else None

    def set_column(self, table: Key, column: str, type_name: ast.TypeName | None) -> None:
        found = self.tables.find(table)
        if found is None:
            self.create_table(table)
            found = table
        if type_name is None:
            self.columns[found].pop(column, None)
        else:
            self.columns[found][column] = type_name

    def has_validated_notnull(self, table: Key, column: str) -> bool:
        return any(_same(t, table) and col == column and valid
                   for (t, _), (col, valid) in self.notnull_checks.items())


@dataclass
class _MigrationState:
    """Facts about the migration being linted."""

    transactional: bool
    created: _Tables = field(default_factory=_Tables)
    created_indexes: set[str] = field(default_factory=set)
    not_valid: dict[tuple[Key, str], int] = field(default_factory=dict)  # (table, constraint) -> line
