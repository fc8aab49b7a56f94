"""Which rows go into the snapshot: all of a table, or a set kept in a temporary table of row
identities, closed under foreign keys (every parent row a chosen row references, recursively,
through self-references and cycles) and optionally extended down to child rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import field

from .._record import dataclass
from ..db.base import Database
from ..db.catalog import Catalog, Table, TableName, did_you_mean
from ..errors import DatabaseError, UsageError
from .plan import Planner, TableSpec


@dataclass
class Seed:
    where: list[str] = field(default_factory=list)
    limit: int | None = None


class Selection:
    """Rows of each table in the snapshot: ``full`` tables, or a temp table of identities."""

    def __init__(self, d: Database, catalog: Catalog, planner: Planner, allowed: list[Table]):
        self.d = d
        self.catalog = catalog
        self.planner = planner
        self.allowed = {t.name: t for t in allowed}
        self.full: set[TableName] = set()
        self.temp: dict[TableName, str] = {}
        self.ident: dict[TableName, tuple[str, ...]] = {}

    @property
    def tables(self) -> set[TableName]:
        return self.full | set(self.temp)

    def _ident(self, table: Table) -> tuple[str, ...]:
        if table.name not in self.ident:
            choice = self.planner.keys.get(table.name)
            cols = table.primary_key or (choice.columns if choice else ())
            if not cols:
                raise UsageError(f"{table.name} has no primary key or NOT NULL unique key, so its rows cannot be "
                                 "chosen for a subset", hint=f"add a primary key to {table.name}, or leave it "
                                 "out with --exclude")
            self.ident[table.name] = tuple(cols)
        return self.ident[table.name]

    def _temp(self, table: Table) -> str:
        if table.name in self.temp:
            return self.temp[table.name]
        d = self.d
        cols = self._ident(table)
        name = d.quote(f"seedkit_snapshot_{len(self.temp)}")
        d.execute(f"CREATE TEMP TABLE {name} AS SELECT {d.columns_list(cols)} "
                  f"FROM {d.qualified(table.name)} LIMIT 0")
        index = d.quote(f"seedkit_snapshot_{len(self.temp)}_key")
        where = "temp." if d.dialect == "sqlite" else ""
        d.execute(f"CREATE UNIQUE INDEX {where}{index} ON {name} ({d.columns_list(cols)})")
        self.temp[table.name] = name
        return name

    def _from(self, table: TableName) -> str:
        return self.planner.relations.get(table) or self.d.qualified(table)

    def _insert(self, target: str, select: str) -> int:
        if self.d.dialect == "sqlite":
            return self.d.execute(f"INSERT OR IGNORE INTO {target} {select}").rowcount
        return self.d.execute(f"INSERT INTO {target} {select} ON CONFLICT DO NOTHING").rowcount

    def filter(self, table: TableName, alias: str = "t") -> str | None:
        """SQL restricting ``alias`` to the chosen rows (None: every row)."""
        if table in self.full:
            return None
        q = self.d.quote
        cols = self.ident[table]
        match = " AND ".join(f"s.{q(c)} = {alias}.{q(c)}" for c in cols)
        return f"EXISTS (SELECT 1 FROM {self.temp[table]} s WHERE {match})"

    # -- building ----------------------------------------------------------------------------
    def choose(self, chosen: list[Table], seeds: dict[TableName, Seed], with_children: bool,
               spec_for: Callable[[Table], TableSpec]) -> None:
        every = {t.name for t in chosen} == set(self.allowed) and not seeds
        for t in chosen:
            seed = seeds.get(t.name)
            if seed is None:
                self.full.add(t.name)
                continue
            self._seed(t, seed, spec_for(t))
        if every:
            return  # the whole database: foreign keys already hold
        if with_children:
            self._close(down=True)
        self._close(down=False)

    def _seed(self, table: Table, seed: Seed, spec: TableSpec) -> None:
        from .write import Query

        d = self.d
        target = self._temp(table)
        cols = self._ident(table)
        inner = f"SELECT * FROM {self._from(table.name)}"
        if seed.where:
            inner += " WHERE " + " AND ".join(f"({w})" for w in seed.where)
        q = Query(d, spec, None)
        source = q.source().replace(f"{self._from(table.name)} AS t", f"({inner}) AS t", 1)
        select = f"SELECT {', '.join('t.' + d.quote(c) for c in cols)} FROM {source} ORDER BY {q.order()}"
        if seed.limit is not None:
            select += f" LIMIT {int(seed.limit)}"
        try:
            with d.transaction():  # a savepoint: a bad condition leaves the snapshot usable for the message
                self._insert(target, select)
        except DatabaseError as exc:
            raise _where_error(exc, table, seed) from None

    def _edges(self) -> list[tuple[Table, Table, tuple[str, ...], tuple[str, ...]]]:
        out = []
        for child in self.allowed.values():
            for fk in child.foreign_keys:
                parent = self.allowed.get(fk.ref_table)
                if parent is not None:
                    out.append((child, parent, fk.columns, fk.ref_columns))
        return out

    def _close(self, *, down: bool) -> None:
        """Add rows until nothing changes: parents of chosen rows (or, ``down``, their children)."""
        q = self.d.quote
        edges = self._edges()
        # an edge is followed again only when its source gained rows since it was last followed (a whole
        # table never does): a million-row child is read once per parent, not once more to find nothing new
        version: dict[TableName, int] = {}
        followed: dict[int, int] = {}
        changed = True
        while changed:
            changed = False
            for n, (child, parent, ccols, pcols) in enumerate(edges):
                src, dst = (parent, child) if down else (child, parent)
                if src.name not in self.tables or dst.name in self.full:
                    continue
                if followed.get(n) == version.get(src.name, 0):
                    continue
                followed[n] = version.get(src.name, 0)
                target = self._temp(dst)
                cols = self._ident(dst)
                join = " AND ".join(f"c.{q(cc)} = p.{q(pc)}" for cc, pc in zip(ccols, pcols))
                where = self.filter(src.name, "p" if down else "c")
                # the rows of dst that a row of src refers to (or, down, that refer to one): a semi-join,
                # which reads an index on the referencing columns where there is one
                alias, other = ("c", "p") if down else ("p", "c")
                select = (f"SELECT {', '.join(alias + '.' + q(c) for c in cols)} FROM {self._from(dst.name)} AS "
                          f"{alias} WHERE EXISTS (SELECT 1 FROM {self._from(src.name)} AS {other} WHERE {join}"
                          + (f" AND {where}" if where else "") + ")")
                if self._insert(target, select) > 0:
                    version[dst.name] = version.get(dst.name, 0) + 1
                    changed = True


_UNKNOWN_COLUMN = re.compile(r'column "?([^"\s]+)"? does not exist|no such column: (\S+)')


def _where_error(exc: DatabaseError, table: Table, seed: Seed) -> UsageError:
    shown = " AND ".join(seed.where) or "(limit)"
    m = _UNKNOWN_COLUMN.search(exc.message)
    hint = exc.hint
    if m:
        name = (m[1] or m[2]).rpartition(".")[2]
        close = did_you_mean(name, list(table.columns))
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else f"columns of {table.name}: " + ", ".join(
            table.columns)
    return UsageError(f"--where {table.name}: {shown}: {exc.message}", hint=hint)
