"""Fixture rows → driver-ready rows: the hot conversion loop, references' match values, nested references.

``RowBuilder.batch_maker`` is the hot loop of a load; a row it cannot convert is explained with the full
checks of the plan (``explain_row``), located by file, row and column.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any

from ..db.catalog import Table
from ..errors import FixtureError, Location, SeedkitError
from .context import Context, RefShape
from .convert import ConversionError, convert, fast_converter, int_bound
from .model import Ref
from .overlap import Offline
from .plan import FixturePlan, RefTarget, check_value, closest_keys_hint, ref_target

_MISSING = object()


class NestedRefs:
    """References used as match values inside other references, resolved against the database (cached)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.cache: dict[tuple, Any] = {}  # (reference, table, column it is a value of) → resolved value
        self.targets: dict[tuple, RefTarget] = {}  # how each shape of nested reference resolves
        self.copying = False  # a COPY is open: no other statement may run on the connection
        # building rows ahead while another thread uses the connection (seed/overlap.py): a lookup not
        # cached raises Offline; and tables a lookup ahead of its turn must not read
        self.offline = False
        self.avoid: frozenset = frozenset()

    def prefetch(self, fp: FixturePlan, refs: dict[str, RefShape],
                 chunk: list[tuple[int, dict[str, Any]]]) -> None:
        """Resolve the references nested inside this batch's references set-based, however deep: the
        distinct ones are gathered, then resolved a level at a time from the innermost out, with one
        query per referenced table and shape, not one per row (``resolve`` then finds them cached). A
        nested reference that does not resolve is left to ``resolve``, which says where."""
        cache = self.cache
        levels: list[dict[tuple, tuple[RefTarget, dict[Ref, None]]]] = []  # by height: innermost first
        targets = self.targets
        seen: dict[tuple, int] = {}  # (reference, table, column) → its height; -1: cached; -2: not prefetched

        def visit(inner: Ref, table: Table, m: str, n: int, c: str) -> int:
            """Gather ``inner`` (a match value of ``table.m``) and what it nests; its height (see ``seen``)."""
            key = (inner, table.name, m)
            try:
                height = seen.get(key)
            except TypeError:  # an unhashable match value: looked up on its own
                return -2
            if height is not None:
                return height
            if key in cache:
                seen[key] = -1
                return -1
            sig = (table.name, m, inner.table, inner.column, inner.scalar,
                   None if inner.scalar else tuple(k for k, _ in inner.match))
            t = targets.get(sig)
            if t is None:
                try:
                    t = ref_target(inner, table, m, self.ctx.catalog, self.ctx.plan.natural_keys,
                                   inner.location or fp.fixture.row_location(n, c))
                except SeedkitError:
                    seen[key] = -2
                    return -2  # said with its location by resolve
                targets[sig] = t
            height = 0
            values = (inner.match[0][1],) if inner.scalar else [v for _, v in inner.match]
            for k, v in zip(t.match, values):
                if v.__class__ is Ref:
                    below = visit(v, t.table, k, n, c)
                    if below == -2:
                        seen[key] = -2
                        return -2
                    height = max(height, below + 1)
            while len(levels) <= height:
                levels.append({})
            group = levels[height].get(sig)
            if group is None:
                group = levels[height][sig] = (t, {})
            group[1][inner] = None
            seen[key] = height
            return height

        for c, shape in refs.items():
            table, first = shape.target.table, shape.target.match[0]
            for n, values in chunk:
                outer = values.get(c)
                if outer.__class__ is not Ref:
                    continue
                for m, inner in outer.match:
                    if inner.__class__ is Ref:  # (a scalar reference's value is for the natural key)
                        visit(inner, table, first if m is None else m, n, c)
        for level in levels:
            for (outer_table, m, *_), (t, inners) in level.items():
                self._fetch(outer_table, m, t, list(inners))

    def _fetch(self, outer_table: Any, m: str, t: RefTarget, todo: list[Ref]) -> None:
        """Look up ``todo`` (references of one shape, used as values of ``outer_table.m``) in one query
        a batch: those found are cached. A match value that is itself a reference takes its resolved
        value from the cache; one not there (it did not resolve) leaves the reference to ``resolve``."""
        d, q, cache = self.ctx.d, self.ctx.d.quote, self.cache
        if t.table.name in self.avoid:
            return  # (looked up at its turn)
        columns = [t.table.columns[k] for k in t.match]
        row_sql = f"({d.placeholder}, " + ", ".join(d.typed_placeholder(c) for c in columns) + ")"
        on = " AND ".join(f"t.{q(k)} = v.column{i + 2}" for i, k in enumerate(t.match))
        name = t.table.name
        for start in range(0, len(todo), 500):
            part = []
            params: list[Any] = []
            for inner in todo[start:start + 500]:
                vals = [inner.match[0][1]] if inner.scalar else [dict(inner.match).get(k) for k in t.match]
                if any(v.__class__ is Ref for v in vals):
                    nested = [(v, name, k) for v, k in zip(vals, t.match)]
                    if any(v.__class__ is Ref and key not in cache for v, key in zip(vals, nested)):
                        continue  # an inner reference did not resolve: resolve says where
                    vals = [cache[key] if v.__class__ is Ref else v for v, key in zip(vals, nested)]
                try:
                    converted = [d.adapt_value(c, convert(v, c, text=True)) for c, v in zip(columns, vals)]
                except ConversionError:
                    continue  # resolve says what is wrong with it
                params += [len(part), *converted]
                part.append(inner)
            if not part:
                continue
            for i, value in d.fetchall(
                    f"SELECT v.column1, t.{q(t.target)} FROM (VALUES {', '.join([row_sql] * len(part))}) v "
                    f"JOIN {d.qualified(name)} t ON {on}", params):
                cache[(part[i], outer_table, m)] = value

    def resolve(self, value: Any, table: Table, column: str, loc: Location) -> Any:
        """A reference used as a match value inside another reference: look it up now (cached)."""
        if not isinstance(value, Ref):
            return value
        if self.copying:
            raise FixtureError(f"{value} inside another reference is not supported in Python fixtures",
                               location=value.location or loc,
                               hint="reference the row by its own key, e.g. ref('projects', slug='rocket')")
        cache_key = (value, table.name, column)
        if cache_key in self.cache:
            return self.cache[cache_key]
        if self.offline:
            raise Offline
        t = ref_target(value, table, column, self.ctx.catalog, self.ctx.plan.natural_keys, value.location or loc)
        d, q = self.ctx.d, self.ctx.d.quote
        vals = [value.match[0][1]] if value.scalar else [dict(value.match).get(m) for m in t.match]
        params = [d.adapt_value(t.table.columns[m], convert(self.resolve(v, t.table, m, loc), t.table.columns[m],
                                                             text=True)) for m, v in zip(t.match, vals)]
        row = d.fetchone(f"SELECT {q(t.target)} FROM {d.qualified(t.table.name)} WHERE "
                         + " AND ".join(f"{q(m)} = {d.placeholder}" for m in t.match), params)
        if row is None and not self.ctx.dry_run:
            want = ", ".join(f"{m} = {v!r}" for m, v in zip(t.match, vals))
            raise FixtureError(f"unresolved {value}: no {t.table.name} row with {want}",
                               location=value.location or loc, hint=self.closest_hint(t, tuple(vals)))
        self.cache[cache_key] = row[0] if row else None
        return self.cache[cache_key]
    def closest_hint(self, t: RefTarget, values: tuple) -> str:
        return closest_keys_hint(self.ctx.d, t, values)


class RowBuilder:
    def __init__(self, ctx: Context, nested: NestedRefs):
        self.ctx = ctx
        self.nested = nested

    def batch_maker(self, fp: FixturePlan, cols: list[str], refs: dict[str, RefShape],
                     with_n: bool) -> Callable[[list[tuple[int, dict[str, Any]]]], list]:
        """A function [(n, values), …] → driver-ready rows [n, values…, ref match values…].

        This is the hot loop of a load. Columns the driver can take as they are (``passthrough``)
        are picked with one C-level ``itemgetter``; the rest are converted in Python. A value the
        driver or the database then rejects is located afterwards (see ``Loader.load``).
        """
        fx, table, d = fp.fixture, fp.table, self.ctx.d
        width = len(cols)
        getter = itemgetter(*cols) if width > 1 else (lambda v, _c=cols[0]: (v[_c],))
        off = 1 if with_n else 0
        converted = [(i + off, fast_converter(table.columns[c], text=fx.text_values, adapt=d.adapt_value,
                                              skip=(Ref,)))
                     for i, c in enumerate(cols) if c in refs or not d.passthrough(table.columns[c])]
        ref_specs = [(c, self.ref_maker(fp, c, shape)) for c, shape in refs.items()]
        explain = self.explain_row
        streamed = fx.rows is None
        kget = itemgetter(*fp.key)
        values_of = itemgetter(1)

        def make(n: int, values: dict[str, Any]) -> list:
            try:
                row = [n, *getter(values)] if with_n else [*getter(values)]
                for i, fn in converted:
                    row[i] = fn(row[i])
            except (ConversionError, KeyError):
                explain(fp, cols, n, values)
                raise
            if len(values) != width:
                explain(fp, cols, n, values)
            for c, ref_values in ref_specs:
                row += ref_values(n, values[c])
            return row

        simple = not converted and not ref_specs

        single_key = len(fp.key) == 1

        def make_batch(chunk: list[tuple[int, dict[str, Any]]]) -> list:
            if picked is not None and (rows := picked(chunk)) is not None:
                return rows
            if streamed:  # file fixtures were checked while planning
                try:
                    keys = list(map(kget, map(values_of, chunk)))
                except KeyError:
                    keys = [None]
                if None in keys if single_key else any(None in k for k in keys):
                    self.null_key(fp, chunk)
            if simple and set(map(len, map(values_of, chunk))) <= {width}:
                try:
                    if with_n:
                        return [[n, *getter(v)] for n, v in chunk]
                    return list(map(getter, map(values_of, chunk)))  # tuples, picked in C
                except KeyError:
                    pass
            if by_column is not None and (rows := by_column(chunk)) is not None:
                return rows
            return [make(n, v) for n, v in chunk]

        by_column = self.ref_columns_maker(fp, cols, refs, with_n) if not simple else None
        picked = self.one_pass_maker(fp, cols, getter, with_n) if simple else None
        return make_batch

    def one_pass_maker(self, fp: FixturePlan, cols: list[str], getter: Callable, with_n: bool
                       ) -> Callable[[list[tuple[int, dict[str, Any]]]], list | None] | None:
        """For a batch of a fixture whose columns all pass through (``simple`` in ``batch_maker``), and whose
        key columns are among them: the rows ``make_batch`` would return, picked in one pass and checked on
        what was picked — every row has exactly the first row's columns and (streamed) no key is None. None
        (for the maker, or for one batch) leaves the batch to the usual checks, which say what is wrong where."""
        if not all(k in cols for k in fp.key):
            return None
        width, streamed, off = len(cols), fp.fixture.rows is None, 1 if with_n else 0
        single_key = len(fp.key) == 1
        key_of = itemgetter(*[off + cols.index(k) for k in fp.key])
        values_of = itemgetter(1)

        def picked(chunk: list[tuple[int, dict[str, Any]]]) -> list | None:
            vals = list(map(values_of, chunk))
            try:
                built = [[n, *getter(v)] for n, v in chunk] if with_n else list(map(getter, vals))
            except KeyError:
                return None
            # (every row has the first row's columns, so none has fewer: the same total means none has more)
            if sum(map(len, vals)) != width * len(vals):
                return None
            if streamed and None in (map(key_of, built) if single_key else chain.from_iterable(map(key_of, built))):
                return None
            return built

        return picked
    def ref_columns_maker(self, fp: FixturePlan, cols: list[str], refs: dict[str, RefShape],
                           with_n: bool) -> Callable[[list[tuple[int, dict[str, Any]]]], list | None] | None:
        """The usual Python-fixture batch with references, built a column at a time in C: every other
        column passes through, every reference is ``ref(table, value)`` to a text or integer key.
        None (for the maker, or for one batch) sends the rows through the row-by-row path, which
        converts, checks and explains."""
        d, table = self.ctx.d, fp.table
        if any(c not in refs and not d.passthrough(table.columns[c]) for c in cols):
            return None
        kinds = {}
        for c, shape in refs.items():
            target = shape.target
            if len(target.match) != 1:
                return None
            match_column = target.table.columns[target.match[0]]
            if match_column.kind == "text":
                kinds[c] = (str, None)
            elif match_column.kind == "int":
                kinds[c] = (int, int_bound(match_column))
            else:
                return None
        width = len(cols)
        pick = {c: itemgetter(c) for c in cols}
        values_of, match_of, first, value_of = itemgetter(1), attrgetter("match"), itemgetter(0), itemgetter(1)
        scalar_of, table_of = attrgetter("scalar"), attrgetter("table")
        spelled: dict[str, set[str]] = {c: set() for c in refs}  # table spellings already checked

        def by_column(chunk: list[tuple[int, dict[str, Any]]]) -> list | None:
            vals = list(map(values_of, chunk))
            if set(map(len, vals)) != {width}:
                return None
            try:
                columns = [list(map(first, chunk))] if with_n else []
                columns += [list(map(pick[c], vals)) if c not in refs else [None] * len(vals) for c in cols]
                for c in refs:
                    those = list(map(pick[c], vals))
                    if set(map(type, those)) != {Ref} or False in set(map(scalar_of, those)):
                        return None
                    tables = set(map(table_of, those)) - spelled[c]
                    for t in tables:  # each spelling once: does it name the referenced table?
                        if self.ctx.catalog.get(t).name != refs[c].target.table.name:
                            return None
                        spelled[c].add(t)
                    keys = list(map(value_of, map(first, map(match_of, those))))
                    want, bound = kinds[c]
                    if set(map(type, keys)) != {want} or (bound and not -bound <= min(keys) <= max(keys) < bound):
                        return None
                    columns.append(keys)
            except (KeyError, SeedkitError):  # the row-by-row path says what and where
                return None
            return list(zip(*columns))

        return by_column
    def ref_maker(self, fp: FixturePlan, c: str, shape: RefShape) -> Callable[[int, Any], list]:
        """A function (n, value) → the staging values of one reference column (the match values)."""
        fx, d = fp.fixture, self.ctx.d
        target = shape.target
        mcols = [target.table.columns[m] for m in target.match]
        convs = [fast_converter(mc, text=True, adapt=d.adapt_value) for mc in mcols]
        nones = [None] * len(mcols)
        known: set[str] = set()  # table spellings already checked to name the target table
        cache, tname = self.nested.cache, target.table.name  # nested references resolved (``resolve``'s cache)

        def values(n: int, v: Any) -> list:
            if v.__class__ is not Ref:
                return nones
            loc = None
            if v.table not in known:
                loc = fx.row_location(n, c)
                if self.ctx.catalog.get(v.table, location=loc).name != target.table.name:
                    raise FixtureError(f"column {c!r} mixes references to different tables", location=loc)
                known.add(v.table)
            matched = [v.match[0][1]] if v.scalar else [dict(v.match).get(m) for m in target.match]
            try:
                return [conv(mv) if mv.__class__ is not Ref else
                        conv(got if (got := cache.get((mv, tname, m), _MISSING)) is not _MISSING
                             else self.nested.resolve(mv, target.table, m, loc or fx.row_location(n, c)))
                        for conv, mv, m in zip(convs, matched, target.match)]
            except ConversionError as exc:
                raise FixtureError(f"{v}: {exc}", location=fx.row_location(n, c)) from None

        return values
    def explain_row(self, fp: FixturePlan, cols: list[str], n: int, values: dict[str, Any], *,
                     final: bool = True) -> None:
        """Raise the located error for a row the fast loop could not convert."""
        fx = fp.fixture
        if set(values) != set(cols):
            raise FixtureError(f"row has columns {sorted(values)}, but the first row has {sorted(cols)}",
                               location=fx.row_location(n), hint="every row of a Python fixture lists the same columns")
        for c in cols:
            check_value(fp.table, c, values[c], fx.text_values, self.ctx.catalog, self.ctx.plan.natural_keys,
                        fx.row_location(n, c))
        refs = [c for c in cols if isinstance(values[c], Ref)]
        if refs:
            raise FixtureError(f"column {refs[0]!r} holds a reference unlike the first row's",
                               location=fx.row_location(n, refs[0]),
                               hint="rows of a Python fixture reference the same way in each column "
                                    "(the same table and key columns)")
        if final:
            raise FixtureError("row could not be converted", location=fx.row_location(n))  # pragma: no cover
    def null_key(self, fp: FixturePlan, chunk: list[tuple[int, dict[str, Any]]]) -> None:
        for n, values in chunk:
            for k in fp.key:
                if values.get(k) is None:
                    raise FixtureError(f"key column {k!r} is missing or null", location=fp.fixture.row_location(n, k),
                                       hint=f"every row needs its key: {', '.join(fp.key)}")
    def locate_duplicate(self, fp: FixturePlan) -> None:
        """A Python fixture generated a key twice: generate it again (it is deterministic) to say where."""
        fx, table = fp.fixture, fp.table
        columns = [table.columns[k] for k in fp.key]
        first: dict[tuple, int] = {}
        for n, values in fx.numbered():
            try:
                key = tuple(convert(values.get(k), c, text=fx.text_values) if not isinstance(values.get(k), Ref)
                            else values.get(k) for k, c in zip(fp.key, columns))
            except ConversionError:
                continue
            if key in first:
                shown = ", ".join(f"{k}={v!r}" for k, v in zip(fp.key, key))
                raise FixtureError(f"the same key ({shown}) is generated twice for {table.name}; first at "
                                   f"{fx.row_location(first[key])}", location=fx.row_location(n),
                                   hint="build keys from the row number (e.g. f'user{n}@example.com'), not from Faker")
            first[key] = n


__all__ = ["NestedRefs", "RowBuilder"]
