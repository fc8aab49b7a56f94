"""Fixtures + the live catalog → a plan: tables in foreign-key order, keys checked against unique
constraints, references and values validated, cycles broken. Nothing is written here.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import field
from functools import partial
from itertools import islice
from operator import is_, itemgetter
from typing import Any

from .._record import dataclass
from ..db.base import Database
from ..db.catalog import Catalog, ForeignKey, Table, TableName, UnknownObject, did_you_mean
from ..errors import FixtureError, Location
from .convert import ConversionError, convert, int_bound
from .model import Fixture, Ref

MAX_PROBLEMS = 50
PEEK_ROWS = 10_000  # rows of a Python fixture looked at to learn which tables it references


@dataclass(frozen=True)
class RefTarget:
    """How a ``Ref`` in a column resolves: the referenced table, its matching columns, the value column."""

    column: str  # column of the referencing table
    table: Table  # referenced table
    match: tuple[str, ...]  # referenced columns to match on (sorted as in the Ref)
    target: str  # referenced column whose value is stored


@dataclass
class FixturePlan:
    fixture: Fixture
    table: Table
    key: tuple[str, ...]
    update_columns_excluded: frozenset[str]  # create_only


@dataclass
class TablePlan:
    table: Table
    fixtures: list[FixturePlan] = field(default_factory=list)
    deferred: frozenset[str] = frozenset()  # FK columns set after every table is written (cycles, self-refs)
    # NOT NULL columns of a DEFERRABLE foreign key that closes a cycle: written in the first pass and
    # checked at commit, so they may point at rows a later table of the run inserts
    late: frozenset[str] = frozenset()


@dataclass
class Plan:
    tables: list[TablePlan]  # in dependency order
    natural_keys: dict[TableName, tuple[str, ...]]  # for scalar !ref: the key each table is referred by
    defer_all: bool = False  # every foreign key checked at commit (the database defers them all, or a cycle)
    # the table names (as spelled) the references of the rows held in memory name, nested ones too
    ref_names: frozenset[str] = frozenset()


class Problems:
    """Collects located problems so one run reports all of them at once."""

    def __init__(self) -> None:
        self.items: list[FixtureError] = []
        self.total = 0  # every problem found, listed or not: the count the message gives

    def add(self, message: str, location: Location | None, hint: str | None = None) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(FixtureError(message, location=location, hint=hint))

    def raise_if_any(self) -> None:
        if self.total == 1:
            raise self.items[0]
        if self.items:
            more = f" (the first {len(self.items)} listed)" if self.total > len(self.items) else ""
            raise FixtureError(f"{self.total} problems in the fixtures{more}:", problems=self.items)


def build_plan(fixtures: list[Fixture], catalog: Catalog, database: Database, early: Early | None = None) -> Plan:
    """The plan of ``fixtures``, or one ``FixtureError`` with every problem. ``early``: what was learned
    from fixtures as they were read (see ``Early``), used once: it is let go here (it holds a key per row)."""
    try:
        return _build_plan(fixtures, catalog, database, early)
    finally:
        if early is not None:
            early.facts.clear()


def _build_plan(fixtures: list[Fixture], catalog: Catalog, database: Database, early: Early | None) -> Plan:
    problems = Problems()
    by_table: dict[TableName, TablePlan] = {}
    for fx in fixtures:
        try:
            table = catalog.get(fx.table, location=fx.location)
        except UnknownObject as exc:
            problems.add(exc.message, fx.location, exc.hint or "create it in a migration first")
            continue
        if table.instead_rules:
            problems.add(f"table {table.name} has DO INSTEAD rules on INSERT ({', '.join(table.instead_rules)}): rows "
                         "written to it are rewritten (a COPY would bypass them), so what is stored would not "
                         "be what the fixture says", fx.location,
                         "seed the tables the rules write to, or replace the rules (a partitioned table "
                         "routes rows without them)")
            continue
        key = tuple(fx.header.key or table.primary_key)
        if not key:
            problems.add(f"table {table.name} has no primary key; say which columns identify a row", fx.location,
                         "add `key: [column, …]` backed by a unique constraint")
            continue
        bad = [c for c in (*key, *fx.header.create_only) if c not in table.columns]
        for c in bad:
            close = did_you_mean(c, list(table.columns))
            problems.add(f"unknown column {c!r} in key/create_only of {table.name}", fx.location,
                         f"did you mean {', '.join(map(repr, close))}?" if close else None)
        if bad:
            continue
        if table.unique_for(key) is None:
            cols = ", ".join(key)
            problems.add(f"key ({cols}) of {table.name} is not backed by a primary key or unique constraint",
                         fx.location, f"add one in a migration: CREATE UNIQUE INDEX ON {table.name} ({cols}); "
                         "or use a key that has one")
            continue
        tp = by_table.setdefault(table.name, TablePlan(table))
        tp.fixtures.append(FixturePlan(fx, table, key, frozenset(fx.header.create_only)))
    problems.raise_if_any()

    natural_keys: dict[TableName, tuple[str, ...]] = {}
    for tn, tp in by_table.items():
        declared = [fp.fixture.header.key for fp in tp.fixtures if fp.fixture.header.key]
        if declared:
            natural_keys[tn] = tuple(declared[0])
    named: set[str] = set()
    order, deferred, defer_all = _order(by_table, database, problems, _ref_edges(by_table, catalog, named, early))
    for tn, cols in deferred.items():
        late = {c for c in cols if c.startswith(_LATE)}
        by_table[tn].deferred = frozenset(cols - late)
        by_table[tn].late = frozenset(c[len(_LATE):] for c in late)
        defer_all = defer_all or bool(late)
    problems.raise_if_any()
    plan = Plan([by_table[tn] for tn in order], natural_keys, defer_all, frozenset(named))
    if early is None or not _validate_early(plan, early, catalog, problems, database):
        _validate_rows(plan, catalog, problems, database)
    problems.raise_if_any()
    return plan


def natural_key(table: Table, plan_keys: dict[TableName, tuple[str, ...]]) -> tuple[str, ...] | None:
    """The key a scalar ``!ref table/value`` matches: the key a fixture of this run declares, else the
    single one-column unique key besides the primary key, else the primary key."""
    if table.name in plan_keys:
        return plan_keys[table.name]
    singles = [u.columns for u in table.unique_keys if not u.primary and not u.partial and len(u.columns) == 1]
    if len(singles) == 1:
        return singles[0]
    return table.primary_key or None


def ref_target(ref: Ref, table: Table, column: str, catalog: Catalog,
               plan_keys: dict[TableName, tuple[str, ...]], location: Location | None) -> RefTarget:
    """Decide how ``ref`` (written in ``table.column``) resolves, or raise a located error."""
    target_table = catalog.get(ref.table, location=location)
    fk = _fk_for(table, column)
    if ref.column is not None:
        target = ref.column
    elif fk is not None:
        if fk.ref_table != target_table.name:
            raise FixtureError(f"{column!r} references {fk.ref_table}, but the !ref points at {target_table.name}",
                               location=location)
        target = fk.ref_columns[fk.columns.index(column)]
    else:
        raise FixtureError(f"column {column!r} has no foreign key, so the !ref must say which column to use",
                           location=location, hint=f"write !ref {{table: {ref.table}, …, column: id}}")
    if target not in target_table.columns:
        raise UnknownObject("column", target, list(target_table.columns), location=location)
    if ref.scalar:
        key = natural_key(target_table, plan_keys)
        if not key or len(key) != 1:
            raise FixtureError(f"!ref {ref.table}/… needs a single-column key, and {target_table.name} is keyed "
                               f"by ({', '.join(key or ())})", location=location,
                               hint=f"write !ref {{table: {ref.table}, col: value, …}}")
        match = key
    else:
        match = tuple(k for k, _ in ref.match)  # type: ignore[misc]
        for m in match:
            if m not in target_table.columns:
                raise UnknownObject("column", m, list(target_table.columns), location=location)
    return RefTarget(column=column, table=target_table, match=match, target=target)


def _fk_for(table: Table, column: str) -> ForeignKey | None:
    single = [fk for fk in table.foreign_keys if fk.columns == (column,)]
    if single:
        return single[0]
    multi = [fk for fk in table.foreign_keys if column in fk.columns]
    return multi[0] if multi else None


def _walk(value: Ref, spelled: set[str], walked: set[Ref]) -> None:
    """Add the table names ``value`` and the references nested in it spell (those in ``walked`` are
    not walked again)."""
    spelled.add(value.table)
    for _, v in value.match:
        if v.__class__ is Ref:
            try:
                if v in walked:
                    continue
                walked.add(v)
            except TypeError:  # a match value that cannot be hashed: walked each time
                pass
            _walk(v, spelled, walked)


def _ref_edges(by_table: dict[TableName, TablePlan], catalog: Catalog,
               named: set[str] | None = None, early: Early | None = None) -> dict[TableName, set[TableName]]:
    """Tables each table's references point at (also nested ones, and ones without a foreign key).

    A table's references are gathered as the spellings of the tables they name (nested references
    too, each distinct one walked once), and each spelling is looked up once. ``named`` receives the
    spellings the rows held in memory (YAML, JSON) name, at any depth. A fixture ``early`` holds the
    facts of gives its spellings from there."""
    edges: dict[TableName, set[TableName]] = {}
    found: dict[str, Table | None] = {}  # by the spelling of the table name
    walk = _walk
    for tn, tp in by_table.items():
        spelled: set[str] = set()  # every table name this table's references spell
        walked: set[Ref] = set()  # nested references already walked (rows repeat them)
        for fp in tp.fixtures:
            in_memory = fp.fixture.rows is not None
            facts = early.get(fp.fixture) if early is not None and in_memory else None
            if facts is not None:
                spelled |= facts.spelled
                if named is not None:
                    named |= facts.spelled
                continue
            if in_memory:
                values = [row.values for row in fp.fixture.rows]
            else:  # a Python fixture: its first rows show what it references (rows are deterministic)
                values = [v for _, v in islice(fp.fixture.numbered(), PEEK_ROWS)]
            here: set[str] = set()
            # (a peek's nested references count only for the order, not in ``named``: walked apart)
            seen = walked if in_memory else set()
            for row in values:
                for v in row.values():
                    if v.__class__ is Ref:
                        here.add(v.table)
                        for _, x in v.match:
                            if x.__class__ is Ref:  # nested: the inner tables count too
                                walk(v, here, seen)
                                break
            spelled |= here
            if in_memory and named is not None:
                named |= here
        for spelling in spelled:
            if spelling not in found:
                found[spelling] = catalog.find(spelling)
            target = found[spelling]
            if target is not None and target.name != tn:
                edges.setdefault(tn, set()).add(target.name)
    return edges


def _order(by_table: dict[TableName, TablePlan], database: Database, problems: Problems,
           ref_edges: dict[TableName, set[TableName]]) -> tuple[list[TableName], dict[TableName, set[str]], bool]:
    """Topological order by foreign keys; self-references and breakable cycles become deferred columns."""
    names = sorted(by_table)
    edges: dict[TableName, list[ForeignKey]] = {n: [] for n in names}
    deferred: dict[TableName, set[str]] = {}
    for n in names:
        for fk in by_table[n].table.foreign_keys:
            if fk.ref_table == n:
                deferred.setdefault(n, set()).update(
                    c for c in fk.columns if by_table[n].table.columns[c].nullable)
            elif fk.ref_table in by_table:
                edges[n].append(fk)
    defer_all = database.defers_every_foreign_key
    for scc in _sccs(names, {n: [fk.ref_table for fk in edges[n]] for n in names}):
        if len(scc) < 2:
            continue
        members = set(scc)
        for n in scc:
            keep = []
            for fk in edges[n]:
                in_cycle = fk.ref_table in members
                if in_cycle and all(by_table[n].table.columns[c].nullable for c in fk.columns):
                    deferred.setdefault(n, set()).update(fk.columns)  # set in a second pass
                elif in_cycle and fk.deferrable:
                    deferred.setdefault(n, set()).update(_LATE + c for c in fk.columns)  # checked at commit
                else:
                    keep.append(fk)
            edges[n] = keep
    graph = {n: sorted({fk.ref_table for fk in edges[n]} | {
        t for t in ref_edges.get(n, ()) if t in by_table and not any(
            fk.ref_table == t for fk in by_table[n].table.foreign_keys)}) for n in names}
    for scc in _sccs(names, graph):
        if len(scc) > 1:
            fks = "; ".join(f"{fk.table}({', '.join(fk.columns)}) → {fk.ref_table}"
                            for n in scc for fk in edges[n] if fk.ref_table in scc)
            first = by_table[scc[0]].fixtures[0].fixture
            problems.add(f"foreign-key cycle that cannot be broken: {fks}", first.location,
                         "make one of these columns nullable (seedkit then sets it after inserting both tables)"
                         " or the constraint DEFERRABLE")
            return names, deferred, defer_all
    order: list[TableName] = []
    seen: set[TableName] = set()

    def visit(n: TableName) -> None:
        if n in seen:
            return
        seen.add(n)
        for dep in sorted(graph[n]):
            visit(dep)
        order.append(n)

    for n in names:
        visit(n)
    return order, deferred, defer_all


_LATE = "\0late:"  # marks a late column (see TablePlan.late) among the deferred ones while ordering


def _sccs(nodes: list[TableName], graph: dict[TableName, list[TableName]]) -> list[list[TableName]]:
    """Tarjan's strongly connected components (iterative enough for a schema's worth of tables)."""
    index: dict[TableName, int] = {}
    low: dict[TableName, int] = {}
    stack: list[TableName] = []
    on_stack: set[TableName] = set()
    out: list[list[TableName]] = []
    counter = [0]

    def strong(v: TableName) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for n in nodes:
        if n not in index:
            strong(n)
    return out


# -- rows -----------------------------------------------------------------------------------------
def _validate_rows(plan: Plan, catalog: Catalog, problems: Problems, database: Database) -> None:
    """Check every in-memory row: columns, value types, key presence, duplicate keys, references.

    Linear in the number of values: what can be decided once per column or once per reference
    shape is decided once, and a location is built only for a problem."""
    # by table, then key (a one-column key as itself unless a tuple, else a tuple): where it was first,
    # as one integer (the row's number plus its fixture's place in ``marked``, shifted): a large fixture
    # holds one entry per row, small ones keep memory down
    seen_keys: dict[TableName, dict[Any, int]] = {}
    marked: list[Fixture] = []
    fixture_rows: dict[TableName, list[dict[str, Any]]] = {}
    for tp in plan.tables:
        for fp in tp.fixtures:
            if fp.fixture.rows is not None:
                fixture_rows.setdefault(tp.table.name, []).extend(r.values for r in fp.fixture.rows)
    pending_refs: list[tuple[Ref, RefTarget, Fixture, int, str]] = []
    for tp in plan.tables:
        table = tp.table
        for fp in tp.fixtures:
            fx = fp.fixture
            if fx.rows is None:
                continue
            text = fx.text_values
            writable = {c.name: c for c in table.columns.values() if not c.generated}
            # values already of the type a column stores need no conversion to be known good: any str
            # for a text column, an int within an integer column's range
            texts = {c.name for c in writable.values() if c.kind == "text"}
            ints = {c.name: int_bound(c) for c in writable.values() if c.kind == "int"}
            targets: dict[tuple, RefTarget] = {}  # by column and reference shape
            # values (with their type) the column's conversion took: an equal value of the same type
            # converts the same way (prices, dates and flags repeat from row to row)
            good: dict[str, set[tuple[type, Any]]] = {c: set() for c in writable}
            key = fp.key
            single = len(key) == 1
            base = len(marked) << _SHIFT
            marked.append(fx)
            seen = seen_keys.setdefault(table.name, {})  # the table's name hashed once, not per row
            for n, values in fx.numbered():
                for col, value in values.items():
                    column = writable.get(col)
                    if column is None:  # unknown or generated: the full check says which, and where
                        try:
                            check_value(table, col, value, text, catalog, plan.natural_keys, fx.row_location(n, col))
                        except FixtureError as exc:
                            problems.add(exc.message, exc.location or fx.row_location(n, col), exc.hint)
                    elif value.__class__ is Ref:
                        shape = (col, value.table, value.column, value.scalar,  # the names: C-level map
                                 None if value.scalar else tuple(map(_first, value.match)))
                        target = targets.get(shape)
                        if target is None:
                            try:
                                target = ref_target(value, table, col, catalog, plan.natural_keys,
                                                    value.location or fx.row_location(n, col))
                            except FixtureError as exc:
                                problems.add(exc.message, exc.location or fx.row_location(n, col), exc.hint)
                                continue
                            targets[shape] = target
                        pending_refs.append((value, target, fx, n, col))
                    elif value is not None and not (value.__class__ is str and col in texts) and not (
                            value.__class__ is int and -ints.get(col, 0) <= value < ints.get(col, 0)):
                        try:
                            fine = (value.__class__, value) in good[col]
                        except TypeError:  # a mapping or a list: converted each time
                            fine = False
                        if not fine:
                            try:
                                convert(value, column, text=text)
                            except ConversionError as exc:
                                problems.add(str(exc), fx.row_location(n, col))
                            else:
                                known = good[col]
                                if len(known) < _GOOD_VALUES:  # (values that never repeat would only take memory)
                                    with suppress(TypeError):  # a mapping or a list is not remembered
                                        known.add((value.__class__, value))
                key_vals = tuple(map(values.get, key))
                if any(map(_is_none, key_vals)):  # (``None in``: would ask every reference's __eq__)
                    k = next(k for k in key if values.get(k) is None)
                    problems.add(f"key column {k!r} is missing or null", fx.row_location(n, k),
                                 f"every row needs its key: {', '.join(key)}")
                    continue
                seen_key = _row_key(key_vals, single)
                mark = n + base
                first = seen.setdefault(seen_key, mark)
                if first != mark:
                    key_vals = tuple(map(_hashable, key_vals))
                    shown = ", ".join(f"{k}={v!r}" for k, v in zip(key, key_vals))
                    problems.add(f"the same key ({shown}) appears twice for {table.name}; first at "
                                 f"{marked[first >> _SHIFT].row_location(first & _ROW)}", fx.row_location(n),
                                 "each row's key must be unique across all fixtures of a run")
    if problems.items:
        return
    _check_refs_exist(pending_refs, fixture_rows, plan, problems, database)


_first = itemgetter(0)
_SHIFT = 40  # a row's number stays below 2**40
_GOOD_VALUES = 4096  # converted values remembered per column
_ROW = (1 << _SHIFT) - 1
_second = itemgetter(1)
_TEXT_OR_INT = frozenset({str, int})
_is_none = partial(is_, None)


def _row_key(key_vals: tuple[Any, ...], single: bool) -> Any:
    """A row's key as the checks for repeated keys compare it (``_hashable`` values). A key of one
    column is not in a one-tuple unless it is a tuple: what is not a tuple equals exactly what its
    one-tuple equals (and never a tuple of another length)."""
    if single:
        v = key_vals[0]
        h = v if v.__class__ is str or v.__class__ is int else _hashable(v)
        return (h,) if h.__class__ is tuple else h
    return tuple(map(_hashable, key_vals))


# -- rows checked as they are read --------------------------------------------------------------------
@dataclass
class Facts:
    """What checking one in-memory fixture's rows found, when it found no problem: what ``_ref_edges`` and
    ``_validate_rows`` would learn from it, for a plan built later."""

    fixture: Fixture
    table: Table
    key: tuple[str, ...]
    spelled: set[str]  # the table names its references spell, nested ones too
    keys: set[Any]  # its rows' keys, as ``_validate_rows`` compares them
    shapes: dict[tuple, Ref]  # each reference shape (as ``_validate_rows`` tells them) and its first reference
    refs: list[tuple[Ref, tuple, int, str]]  # its references without a nested one: (reference, shape, row, column)


class Early:
    """The rows of fixtures checked as they are read (seed/__init__.py checks those read while a worker
    still reads, so the plan built once every file is read walks no row of theirs again).

    Only a fixture whose rows raise no problem is kept (its ``Facts``): a fixture with one, or any
    doubt (its table unknown, a key another fixture of its table also has, a reference shape that does
    not resolve), has ``build_plan`` check every row the plain way, which says every problem in its
    order. What the facts hold is what the plain check computes from the fixture alone; what depends on
    the other fixtures (keys shared across fixtures, the natural key a scalar reference matches) is
    decided by ``build_plan``."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.facts: dict[int, Facts] = {}  # by id(): the fixture is kept in its facts, so its id stays its own

    def add(self, fixtures: list[Fixture]) -> None:
        for fx in fixtures:
            if fx.rows is not None:
                try:
                    facts = _facts(fx, self.catalog)
                except Exception:  # noqa: BLE001 - anything unexpected: the plain check decides
                    facts = None
                if facts is not None:
                    self.facts[id(fx)] = facts

    def get(self, fx: Fixture) -> Facts | None:
        facts = self.facts.get(id(fx))
        return facts if facts is not None and facts.fixture is fx else None


def _facts(fx: Fixture, catalog: Catalog) -> Facts | None:
    """``_validate_rows``'s checks of one fixture's rows alone (and ``_ref_edges``'s spellings); None at
    the first problem."""
    table = catalog.find(fx.table)
    if table is None or fx.rows is None:
        return None
    key = tuple(fx.header.key or table.primary_key)
    if not key or any(c not in table.columns for c in key):
        return None
    text = fx.text_values
    writable = {c.name: c for c in table.columns.values() if not c.generated}
    texts = {c.name for c in writable.values() if c.kind == "text"}
    ints = {c.name: int_bound(c) for c in writable.values() if c.kind == "int"}
    good: dict[str, set[tuple[type, Any]]] = {c: set() for c in writable}
    single = len(key) == 1
    seen: set[Any] = set()
    shapes: dict[tuple, Ref] = {}
    refs: list[tuple[Ref, tuple, int, str]] = []
    spelled: set[str] = set()
    spell = _spell
    for n, row in enumerate(fx.rows, start=1):
        values = row.values
        for col, value in values.items():
            column = writable.get(col)
            if column is None:
                return None
            if value.__class__ is Ref:
                shape = (col, value.table, value.column, value.scalar,
                         None if value.scalar else tuple(map(_first, value.match)))
                if shape not in shapes:
                    shapes[shape] = value
                spelled.add(value.table)
                for _, x in value.match:
                    if x.__class__ is Ref:  # nested: resolved (and checked) in SQL while applying
                        spell(value, spelled)
                        break
                else:
                    refs.append((value, shape, n, col))
            elif value is not None and not (value.__class__ is str and col in texts) and not (
                    value.__class__ is int and -ints.get(col, 0) <= value < ints.get(col, 0)):
                try:
                    fine = (value.__class__, value) in good[col]
                except TypeError:
                    fine = False
                if not fine:
                    try:
                        convert(value, column, text=text)
                    except ConversionError:
                        return None
                    known = good[col]
                    if len(known) < _GOOD_VALUES:
                        with suppress(TypeError):
                            known.add((value.__class__, value))
        key_vals = tuple(map(values.get, key))
        if any(map(_is_none, key_vals)):
            return None
        seen_key = _row_key(key_vals, single)
        if seen_key in seen:
            return None
        seen.add(seen_key)
    return Facts(fx, table, key, spelled, seen, shapes, refs)


def _spell(value: Ref, spelled: set[str]) -> None:
    """Add the table names ``value`` and the references nested in it spell. (Every nested reference is
    walked: a reference's few levels cost less to walk again than to look up in a set of the ones
    walked, which hashes and compares them, nested ones too.)"""
    spelled.add(value.table)
    for _, v in value.match:
        if v.__class__ is Ref:
            _spell(v, spelled)


def _validate_early(plan: Plan, early: Early, catalog: Catalog, problems: Problems, database: Database) -> bool:
    """``_validate_rows`` from the facts of every in-memory fixture (the references still looked for, as
    there); False, having added no problem, when a fixture has none or the facts cannot vouch for the
    plan (``_validate_rows`` then checks every row)."""
    found: list[tuple[FixturePlan, Facts]] = []
    for tp in plan.tables:
        for fp in tp.fixtures:
            if fp.fixture.rows is None:
                continue
            facts = early.get(fp.fixture)
            if facts is None or facts.table is not tp.table or facts.key != fp.key:
                return False
            found.append((fp, facts))
    by_table: dict[TableName, set[Any]] = {}
    for fp, facts in found:  # a key two fixtures of a table share: said by the plain check
        keys = by_table.get(fp.table.name)
        if keys is None:
            by_table[fp.table.name] = facts.keys
            continue
        if not keys.isdisjoint(facts.keys):
            return False
        by_table[fp.table.name] = keys | facts.keys
    pending_refs: list[tuple[Ref, RefTarget, Fixture, int, str]] = []
    for fp, facts in found:
        fx = fp.fixture
        targets = {}
        for shape, ref in facts.shapes.items():
            try:
                targets[shape] = ref_target(ref, fp.table, shape[0], catalog, plan.natural_keys, None)
            except Exception:  # noqa: BLE001 - said (located, or raised as it is) by the plain check
                return False
        pending_refs += [(ref, targets[shape], fx, n, col) for ref, shape, n, col in facts.refs]
    fixture_rows: dict[TableName, list[dict[str, Any]]] = {}
    for fp, _ in found:
        fixture_rows.setdefault(fp.table.name, []).extend(r.values for r in fp.fixture.rows)  # type: ignore[union-attr]
    _check_refs_exist(pending_refs, fixture_rows, plan, problems, database)
    return True


def _hashable(value: Any) -> Any:
    if isinstance(value, Ref):
        return (value.table, value.match)
    if isinstance(value, (list, dict)):
        return repr(value)
    return str(value) if not isinstance(value, (int, str)) else value


def check_value(table: Table, col: str, value: Any, text: bool, catalog: Catalog,
                plan_keys: dict[TableName, tuple[str, ...]], loc: Location) -> Any:
    """Validate one value for ``table.col``: returns the converted value, or ``(RefTarget,)`` for a ref."""
    column = table.columns.get(col)
    if column is None:
        raise UnknownObject("column", col, list(table.columns), location=loc)
    if column.generated:
        raise FixtureError(f"column {col!r} is generated by the database and cannot be written", location=loc)
    if isinstance(value, Ref):
        return (ref_target(value, table, col, catalog, plan_keys, value.location or loc),)
    try:
        return convert(value, column, text=text)
    except ConversionError as exc:
        raise FixtureError(str(exc), location=loc) from None


def _check_refs_exist(pending: list[tuple[Ref, RefTarget, Fixture, int, str]],
                      fixture_rows: dict[TableName, list[dict[str, Any]]], plan: Plan, problems: Problems,
                      d: Database) -> None:
    """Every reference finds its row in a fixture of this run or in the database, checked set-based:
    one pass over each referenced fixture builds a set of its keys, and the references no fixture
    provides are looked up in the database a batch at a time."""
    streamed = {tp.table.name for tp in plan.tables if any(fp.fixture.rows is None for fp in tp.fixtures)}
    provided: dict[tuple[TableName, tuple[str, ...]], set[tuple[Any, ...]]] = {}
    missing: dict[tuple[TableName, tuple[str, ...]], list[tuple[Ref, RefTarget, Fixture, int, str, tuple]]] = {}
    # converted match values by group, then match: references repeat. Only text and integers are
    # remembered: an equal value of another kind may convert differently (1.0 and 1.00, two time zones)
    converted_of: dict[tuple, dict[Any, tuple[Any, ...]]] = {}
    # a reference's target, by its id (targets are shared by a fixture's references of one shape, and
    # kept alive by ``pending``): its group and the group's conversions, without hashing table names
    by_target: dict[int, tuple[tuple, dict[Any, tuple[Any, ...]], set[tuple[Any, ...]], bool]] = {}
    for ref, target, fx, n, col in pending:
        kinds = set(map(type, map(_second, ref.match)))
        if Ref in kinds:
            continue  # a nested reference: resolved (and checked) in SQL while applying
        same = by_target.get(id(target))
        if same is None:
            group = (target.table.name, target.match)
            keys = provided.get(group)
            if keys is None:
                keys = provided[group] = _fixture_keys(fixture_rows.get(target.table.name, []), target)
            same = by_target[id(target)] = (group, converted_of.setdefault(group, {}), keys,
                                            target.table.name in streamed)
        group, known, keys, may_stream = same
        plain = kinds <= _TEXT_OR_INT
        converted = known.get(ref.match) if plain else None
        if converted is None:
            values = [v for _, v in ref.match]
            columns = [target.table.columns[m] for m in target.match]
            try:
                converted = tuple(convert(v, c, text=True) for c, v in zip(columns, values))
            except ConversionError as exc:
                problems.add(f"{ref}: {exc}", fx.row_location(n, col))
                continue
            if plain:
                known[ref.match] = converted
        if converted in keys or may_stream:
            continue  # a streamed Python fixture may provide it: checked in SQL while applying
        missing.setdefault(group, []).append((ref, target, fx, n, col, converted))
    for refs in missing.values():
        target = refs[0][1]
        distinct = list(dict.fromkeys(r[5] for r in refs))
        found = _existing(d, target, distinct)
        for ref, target, fx, n, col, converted in refs:
            if converted not in found:
                values = [v for _, v in ref.match]
                listed = len(problems.items) < MAX_PROBLEMS  # past that, counted only: no hint to look up
                problems.add(f"unresolved {ref}: no {target.table.name} row with "
                             + ", ".join(f"{m} = {v!r}" for m, v in zip(target.match, values)),
                             fx.row_location(n, col),
                             closest_keys_hint(d, target, values, fixture_rows) if listed else None)


def _fixture_keys(rows: list[dict[str, Any]], target: RefTarget) -> set[tuple[Any, ...]]:
    """The ``target.match`` values of every fixture row of the referenced table, converted as a
    reference's values are (rows holding a reference in a match column resolve only in SQL)."""
    columns = [(m, target.table.columns[m]) for m in target.match]
    keys = set()
    for row in rows:
        try:
            key = tuple(convert(row.get(m), c, text=True) for m, c in columns)
        except ConversionError:
            continue
        if None not in key and not any(isinstance(row.get(m), Ref) for m, _ in columns):
            keys.add(key)
    return keys


def _existing(d: Database, target: RefTarget, keys: list[tuple[Any, ...]], batch: int = 500) -> set[tuple[Any, ...]]:
    """Which of ``keys`` (converted ``target.match`` values) the database holds, a batch at a time."""
    columns = [target.table.columns[m] for m in target.match]
    on = " AND ".join(f"t.{d.quote(m)} = v.column{i + 2}" for i, m in enumerate(target.match))
    row_sql = f"({d.placeholder}, " + ", ".join(d.typed_placeholder(c) for c in columns) + ")"
    found: set[tuple[Any, ...]] = set()
    for start in range(0, len(keys), batch):
        chunk = keys[start:start + batch]
        params = [x for i, key in enumerate(chunk) for x in (i, *(d.adapt_value(c, v) for c, v in zip(columns, key)))]
        hits = d.fetchall(f"SELECT v.column1 FROM (VALUES {', '.join([row_sql] * len(chunk))}) v "
                          f"WHERE EXISTS (SELECT 1 FROM {d.qualified(target.table.name)} t WHERE {on})", params)
        found.update(chunk[i] for (i,) in hits)
    return found


def closest_keys_hint(d: Database, target: RefTarget, values: list[Any] | tuple[Any, ...],
                      fixture_rows: dict[TableName, list[dict[str, Any]]] | None = None) -> str:
    """A hint naming the existing keys closest to the unresolved value (or a few, when none is close)."""
    if len(target.match) != 1:
        return f"add the row to a {target.table.name} fixture or check the values"
    m = target.match[0]
    candidates = {str(r[m]) for r in (fixture_rows or {}).get(target.table.name, [])
                  if r.get(m) is not None and not isinstance(r.get(m), Ref)}
    candidates |= {str(r[0]) for r in d.fetchall(
        f"SELECT {d.quote(m)} FROM {d.qualified(target.table.name)} LIMIT 5000")}
    close = did_you_mean(str(values[0]), sorted(candidates))
    if close:
        return f"closest existing keys: {', '.join(map(repr, close))}"
    if candidates:
        some = sorted(candidates)[:5]
        return f"no key is close; existing {m} values include {', '.join(map(repr, some))}"
    return f"{target.table.name} has no rows yet: add them to a fixture of this environment"
