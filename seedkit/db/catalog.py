"""What the database says about its tables: small frozen dataclasses shared by both dialects.

The adapters fill these in (``Database.catalog()``); the seed planner and the migration linter read them.
"""

from __future__ import annotations

from dataclasses import field

from .._record import dataclass
from ..errors import Location, UnknownObject

# Portable type families the value converter understands.
KINDS = ("int", "float", "numeric", "bool", "text", "date", "timestamp", "timestamptz", "time",
         "interval", "json", "uuid", "bytes", "enum", "array", "other")


@dataclass(frozen=True, order=True)
class TableName:
    schema: str | None
    name: str

    def __str__(self) -> str:
        if self.schema in (None, "public", "main"):
            return self.name
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as the database spells it, e.g. "numeric(10,2)", "text[]", "INTEGER"
    kind: str  # one of KINDS
    nullable: bool = True
    default: str | None = None
    identity: str | None = None  # "always" | "by default" (PostgreSQL identity columns)
    generated: bool = False  # GENERATED ALWAYS AS (…) STORED: never written
    # the sequence feeding this column (PostgreSQL): serial, identity, or any ``DEFAULT nextval(…)``,
    # owned by the column or not; spelled as ``pg_get_serial_sequence`` spells it (``schema.name``)
    sequence: str | None = None
    autoincrement: bool = False  # serial, identity, any nextval default, or SQLite INTEGER PRIMARY KEY
    element_kind: str | None = None  # for arrays
    enum_values: tuple[str, ...] = ()
    type_oid: int | None = None

    @property
    def has_default(self) -> bool:
        """The database fills the column when an insert leaves it out (schema-aware fixtures ask)."""
        return self.default is not None or self.autoincrement or self.identity is not None


@dataclass(frozen=True)
class UniqueKey:
    name: str
    columns: tuple[str, ...]
    primary: bool = False
    partial: bool = False  # a partial unique index cannot back ON CONFLICT by itself
    constraint: bool = True  # False: a unique index that is not a constraint
    immediate: bool = True  # False: DEFERRABLE (a deferred check runs at commit, not at the write)


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: TableName
    columns: tuple[str, ...]
    ref_table: TableName
    ref_columns: tuple[str, ...]
    deferrable: bool = False
    initially_deferred: bool = False


@dataclass(frozen=True)
class Table:
    name: TableName
    columns: dict[str, Column]
    primary_key: tuple[str, ...] = ()
    unique_keys: tuple[UniqueKey, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    partitioned: bool = False  # rows live in its partitions (PostgreSQL declarative partitioning)
    instead_rules: tuple[str, ...] = ()  # DO INSTEAD rules on INSERT: inserted rows go elsewhere

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)

    def unique_for(self, columns: tuple[str, ...] | list[str]) -> UniqueKey | None:
        """A full (non-partial) unique key on exactly these columns, in any order."""
        wanted = set(columns)
        for key in self.unique_keys:
            if not key.partial and set(key.columns) == wanted:
                return key
        return None


@dataclass
class Catalog:
    dialect: str
    tables: dict[TableName, Table] = field(default_factory=dict)
    search_path: tuple[str | None, ...] = ("public",)
    # every column each sequence feeds, over all tables (one sequence may feed several: shared
    # sequences, inheritance children); a partition's columns are counted in its partitioned table
    sequence_feeds: dict[str, tuple[tuple[TableName, str], ...]] = field(default_factory=dict)
    # partition → the partitioned table at the top of its tree (fixtures name that one)
    partitions: dict[TableName, TableName] = field(default_factory=dict)

    def find(self, name: str) -> Table | None:
        """Resolve ``users`` or ``schema.users`` like the database would (search path, then case)."""
        schema, _, bare = name.rpartition(".")
        candidates = [TableName(schema or None, bare)] if schema else [
            TableName(s, bare) for s in self.search_path]
        for cand in candidates:
            if cand in self.tables:
                return self.tables[cand]
        lowered = [TableName(c.schema, c.name.lower()) for c in candidates]
        for cand in lowered:
            if cand in self.tables:
                return self.tables[cand]
        return None

    def get(self, name: str, *, location: Location | None = None) -> Table:
        table = self.find(name)
        if table is None:
            root = self._partition_root(name)
            if root is not None:
                err = UnknownObject("table", name, [str(root)], location=location)
                err.message = f"table {name!r} is a partition of {root}"
                err.hint = f"name the partitioned table {root} instead: rows are routed to their partitions"
                raise err
            raise UnknownObject("table", name, [str(t) for t in self.tables], location=location)
        return table

    def _partition_root(self, name: str) -> TableName | None:
        schema, _, bare = name.rpartition(".")
        for cand in ([TableName(schema or None, bare)] if schema else [TableName(s, bare) for s in self.search_path]):
            if cand in self.partitions:
                return self.partitions[cand]
        return None


def did_you_mean(name: str, choices: list[str] | tuple[str, ...], n: int = 3) -> list[str]:
    import difflib

    return difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
