"""Catalog → what each table's file holds: its natural key, the columns written, the references
written as ``!ref`` by the parent's natural key (with the joins that find it), and the sort order.

Nothing is read from the tables here; the writers (write.py) turn a ``TableSpec`` into one query.
"""

from __future__ import annotations

import fnmatch
from dataclasses import field

from .._record import dataclass
from ..db.catalog import Catalog, Column, ForeignKey, Table, TableName, UnknownObject, did_you_mean
from ..errors import ConfigError, SnapshotError
from .mask import Mask

# Tables seedkit and common migration tools keep for themselves: never part of a snapshot.
OWN_TABLES = {"seedkit_meta", "seedkit_rows", "seedkit_digests", "seedkit_reruns"}
OTHER_HISTORY = {"alembic_version", "flyway_schema_history", "__diesel_schema_migrations", "django_migrations",
                 "goose_db_version", "knex_migrations", "knex_migrations_lock", "schema_migrations_log"}


@dataclass
class Lit:
    """A column's own value (masked like the column it comes from, if that one is masked)."""

    alias: str
    column: Column
    mask: Mask | None = None
    table: TableName | None = None


@dataclass
class RefItem:
    """``!ref`` to ``parent`` by its key; ``parts`` render the key's columns (nested refs allowed)."""

    parent: Table
    alias: str  # join alias of the parent row
    parts: list[tuple[str, Item]]
    null_alias: str  # the referencing column: NULL there means no reference
    null_column: str
    target: str  # the parent's column the referencing value equals
    column: str | None = None  # written as `column:` when the foreign key points at another table
    in_snapshot: bool = True  # the parent's file declares its key (a scalar !ref then uses that key)

    @property
    def scalar(self) -> bool:
        return (self.in_snapshot and len(self.parts) == 1 and isinstance(self.parts[0][1], Lit)
                and "/" not in str(self.parent.name) and self.column is None)

    @property
    def masked(self) -> bool:
        return any(p.mask is not None if isinstance(p, Lit) else p.masked for _, p in self.parts)


Item = Lit | RefItem


@dataclass
class Join:
    alias: str
    table: TableName
    on: list[tuple[str, str, str]]  # (parent column, child alias, child column)


@dataclass
class TableSpec:
    table: Table
    key: tuple[str, ...]
    ident: tuple[str, ...]  # columns identifying a row in subset bookkeeping
    items: list[tuple[str, Item]] = field(default_factory=list)
    joins: list[Join] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    surrogate_key: bool = False
    collate_c: frozenset[tuple[TableName | None, str]] = frozenset()  # text columns not already in byte order
    relation: str = ""  # how the FROM clause names the table (PostgreSQL: ONLY, so inheritance children
    #                     are not read twice; a partitioned table is read whole)

    @property
    def name(self) -> str:
        return str(self.table.name)

    @property
    def refs(self) -> list[str]:
        return [c for c, it in self.items if isinstance(it, RefItem)]

    @property
    def masked(self) -> dict[str, str]:
        return {c: it.mask.description for c, it in self.items if isinstance(it, Lit) and it.mask is not None}

    def sort_parts(self) -> list[Lit]:
        """The plain values the rows are ordered by: the key, with references replaced by the parent's key."""
        by_name = dict(self.items)
        out: list[Lit] = []

        def flat(item: Item) -> None:
            if isinstance(item, Lit):
                out.append(item)
            else:
                for _, part in item.parts:
                    flat(part)

        for k in self.key:
            flat(by_name[k])
        return out

    @property
    def csv_ok(self) -> bool:
        """CSV holds plain rows keyed by the primary key: no references, nothing dropped."""
        pk = set(self.table.primary_key)
        return (bool(pk) and set(self.key) == pk and not self.refs and not self.dropped
                and len(self.items) > 1 and all(c == c.strip() and c for c, _ in self.items))


def is_surrogate(column: Column) -> bool:
    """A value the database makes up: serial/identity/rowid, or a uuid filled by a default."""
    if column.autoincrement or column.identity:
        return True
    return column.kind == "uuid" and column.default is not None and "uuid" in column.default.lower()


@dataclass
class KeyChoice:
    columns: tuple[str, ...]
    surrogate: bool  # the only key is made up by the database


def choose_key(table: Table, override: list[str] | None = None) -> KeyChoice | None:
    """The natural key: an override, else a NOT NULL unique key without made-up columns (the primary
    key first, then the shortest), else a made-up primary key (surrogate), else None."""
    if override:
        missing = [c for c in override if c not in table.columns]
        for c in missing:
            close = did_you_mean(c, list(table.columns))
            raise ConfigError(f"[snapshot.keys] {table.name}: unknown column {c!r}",
                              hint=f"did you mean {', '.join(map(repr, close))}?" if close else None)
        if table.unique_for(override) is None:
            raise ConfigError(f"[snapshot.keys] {table.name}: ({', '.join(override)}) is not backed by a "
                              "primary key or unique constraint",
                              hint=f"CREATE UNIQUE INDEX ON {table.name} ({', '.join(override)})")
        return KeyChoice(tuple(override), any(is_surrogate(table.columns[c]) for c in override))
    candidates = [u for u in table.unique_keys if not u.partial and all(
        u.primary or not table.columns[c].nullable for c in u.columns)]
    natural = [u for u in candidates if not any(is_surrogate(table.columns[c]) for c in u.columns)]
    if natural:
        natural.sort(key=lambda u: (not u.primary, len(u.columns), u.name))
        return KeyChoice(tuple(natural[0].columns), False)
    pk = [u for u in candidates if u.primary] or candidates
    if pk:
        return KeyChoice(tuple(pk[0].columns), True)
    return None


def select_tables(catalog: Catalog, patterns: list[str], exclude: list[str],
                  history_table: str = "schema_migrations") -> tuple[list[Table], list[Table]]:
    """(chosen tables, every table a snapshot may touch) after --table/--exclude globs."""
    own = OWN_TABLES | OTHER_HISTORY | {history_table.rpartition(".")[2], history_table.rpartition(".")[2] + "_log"}
    usable = [t for t in catalog.tables.values() if t.name.name not in own]

    def matches(t: Table, pat: str) -> bool:
        return fnmatch.fnmatchcase(str(t.name), pat) or fnmatch.fnmatchcase(t.name.name, pat) or (
            t.name.schema is not None and fnmatch.fnmatchcase(f"{t.name.schema}.{t.name.name}", pat))

    def resolve(pat: str, option: str) -> list[Table]:
        hits = [t for t in usable if matches(t, pat)]
        if not hits and not any(ch in pat for ch in "*?["):
            found = catalog.find(pat)
            if found is not None and found in usable:
                hits = [found]
            elif found is not None:
                raise SnapshotError(f"{option} {pat}: {found.name} is seedkit's own or a migration history table, "
                                    "never part of a snapshot")
        if not hits:
            close = did_you_mean(pat, [str(t.name) for t in usable])
            raise UnknownObject("table", pat, [str(t.name) for t in usable]) if close else SnapshotError(
                f"{option} {pat!r} matches no table",
                hint="tables: " + ", ".join(sorted(str(t.name) for t in usable)[:20]))
        return hits

    allowed = list(usable)
    for pat in exclude:
        gone = {t.name for t in resolve(pat, "--exclude")}
        allowed = [t for t in allowed if t.name not in gone]
    if patterns:
        chosen: dict[TableName, Table] = {}
        for pat in patterns:
            for t in resolve(pat, "--table"):
                if t in allowed:
                    chosen[t.name] = t
        tables = sorted(chosen.values(), key=lambda t: t.name)
    else:
        tables = sorted(allowed, key=lambda t: t.name)
    return tables, sorted(allowed, key=lambda t: t.name)


class Planner:
    """Decides keys, dropped columns and references for every table a snapshot may write."""

    def __init__(self, catalog: Catalog, tables: list[Table], *, keep_ids: bool,
                 keys: dict[TableName, list[str]], masks: dict[tuple[TableName, str], Mask]):
        self.catalog = catalog
        self.keep_ids = keep_ids
        self.masks = masks
        self.output: set[TableName] = {t.name for t in tables}  # narrowed once the subset is known
        self.relations: dict[TableName, str] = {}  # TableName → FROM text, filled by the caller
        self.collate_c: frozenset[tuple[TableName | None, str]] = frozenset()  # filled by the caller
        self.keys: dict[TableName, KeyChoice | None] = {t.name: choose_key(t, keys.get(t.name)) for t in tables}
        self.dropped: dict[TableName, set[str]] = {}
        for t in tables:
            choice = self.keys[t.name]
            if keep_ids or choice is None or choice.surrogate:
                self.dropped[t.name] = set()
            else:
                keyed = {c for u in t.unique_keys for c in u.columns}  # ids, not data that has a default
                self.dropped[t.name] = {c.name for c in t.columns.values()
                                        if is_surrogate(c) and c.name in keyed and c.name not in choice.columns}

    def problems(self, tables: list[Table]) -> list[str]:
        out = []
        for t in tables:
            choice = self.keys.get(t.name)
            if choice is None:
                out.append(f"{t.name} has no primary key or NOT NULL unique key")
            elif choice.surrogate and not self.keep_ids:
                out.append(f"{t.name} has only the made-up key ({', '.join(choice.columns)})")
        return out

    def spec(self, table: Table) -> TableSpec:
        choice = self.keys[table.name]
        assert choice is not None
        ident = table.primary_key or choice.columns
        spec = TableSpec(table=table, key=choice.columns, ident=tuple(ident), surrogate_key=choice.surrogate,
                         dropped=sorted(self.dropped.get(table.name, ()), key=list(table.columns).index),
                         relation=self.relations.get(table.name, ""), collate_c=self.collate_c)
        counter = [0]
        for col in table.columns.values():
            if col.generated or col.name in spec.dropped:
                continue
            spec.items.append((col.name, self._item(table, col.name, "t", spec.joins, [], counter)))
        return spec

    def _fk(self, table: Table, column: str) -> ForeignKey | None:
        fks = [fk for fk in table.foreign_keys if column in fk.columns and fk.ref_table in self.keys]
        fks.sort(key=lambda fk: (len(fk.columns) != 1, fk.name))
        return fks[0] if fks else None

    def _item(self, table: Table, column: str, alias: str, joins: list[Join], chain: list[TableName],
              counter: list[int], followed: frozenset[tuple[TableName, str]] = frozenset()) -> Item:
        col = table.columns[column]
        own_mask = self.masks.get((table.name, column))
        fk = None if self.keep_ids else self._fk(table, column)
        if fk is None or (table.name, column) in followed:
            return Lit(alias, col, own_mask, table.name)
        parent = self.catalog.tables[fk.ref_table]
        target = fk.ref_columns[fk.columns.index(column)]
        if target in self.dropped.get(parent.name, ()):
            if parent.name in chain:
                path = " → ".join(str(t) for t in [*chain, parent.name])
                raise SnapshotError(f"the natural key of {chain[0]} refers to itself through {path}, so it cannot "
                                    "be written as !ref", hint="choose another key in [snapshot.keys], or pass "
                                    "--keep-ids to write ids")
            choice = self.keys[parent.name]
            assert choice is not None
            counter[0] += 1
            palias = f"j{counter[0]}"
            joins.append(Join(palias, parent.name, [(pc, alias, cc) for cc, pc in zip(fk.columns, fk.ref_columns)]))
            parts = [(k, self._item(parent, k, palias, joins, [*chain, parent.name], counter))
                     for k in choice.columns]
            return RefItem(parent, palias, parts, alias, column, target, in_snapshot=parent.name in self.output)
        # the parent's value is written as it is: follow it (masked like the parent, or a reference further up)
        counter[0] += 1
        palias = f"j{counter[0]}"
        mark = len(joins)
        joins.append(Join(palias, parent.name, [(pc, alias, cc) for cc, pc in zip(fk.columns, fk.ref_columns)]))
        inner = self._item(parent, target, palias, joins, chain, counter, followed | {(table.name, column)})
        if isinstance(inner, RefItem):
            inner.null_alias, inner.null_column = alias, column
            inner.column = inner.target  # the foreign key points at `parent`, the reference at its parent
            return inner
        del joins[mark:]  # a plain value needs no join
        return Lit(alias, col, inner.mask or own_mask, table.name)


def load_order(specs: list[TableSpec]) -> list[TableSpec]:
    """Parents before children (cycles in a stable order): the order `seedkit run` loads them in."""
    by_name = {s.table.name: s for s in specs}
    deps = {s.table.name: sorted({fk.ref_table for fk in s.table.foreign_keys
                                  if fk.ref_table in by_name and fk.ref_table != s.table.name}) for s in specs}
    order: list[TableName] = []
    state: dict[TableName, int] = {}

    def visit(n: TableName) -> None:
        if state.get(n):
            return
        state[n] = 1
        for d in deps[n]:
            visit(d)
        state[n] = 2
        order.append(n)

    for n in sorted(by_name):
        visit(n)
    return [by_name[n] for n in order]
