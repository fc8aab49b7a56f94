"""Checks on staged rows that say where a fixture is wrong: unresolved references, repeated keys, NULLs."""

from __future__ import annotations

from ..errors import DatabaseError, FixtureError, Location
from .context import Context, Stage
from .merge_sql import MergeSql
from .plan import FixturePlan, TablePlan
from .rows import NestedRefs

CHECK_VIOLATIONS = ("23514", "SQLITE_CONSTRAINT_CHECK")  # a row broke a CHECK constraint
NULL_VIOLATIONS = ("23502", "SQLITE_CONSTRAINT_NOTNULL")  # a row left a NOT NULL column empty


def name_fixture(exc: DatabaseError, fp: FixturePlan) -> DatabaseError:
    """A database error about a fixture whose row cannot be named: the table, and the fixture's place."""
    exc.message = f"{fp.table.name}: {exc.message}"
    exc.location = exc.location or Location(file=fp.fixture.source, line=fp.fixture.location.line,
                                            document=fp.fixture.location.document)
    return exc


class Checks:

    def __init__(self, ctx: Context, sql: MergeSql, nested: NestedRefs):
        self.ctx = ctx
        self.sql = sql
        self.nested = nested

    def raise_unresolved(self, stage: Stage, src: str, deferred: bool = False) -> None:
        d, q = self.ctx.d, self.ctx.d.quote
        fx = stage.fixture.fixture
        (failed,) = d.fetchone(f"SELECT count(*) FROM ({src}) src WHERE src._unres = 1") or (0,)
        bad = d.fetchall(f"SELECT src._n FROM ({src}) src WHERE src._unres = 1 ORDER BY src._n LIMIT 10")
        problems = []
        for (n,) in bad:
            cols = ", ".join(q(sc) for shape in stage.refs.values() for sc in shape.stage_cols)
            vals = d.fetchone(f"SELECT {cols} FROM {stage.sql} WHERE _n = {d.placeholder}", [n]) or ()
            i = 0
            skip = set() if deferred else self.ctx.deferred_of(stage)
            for c, shape in stage.refs.items():
                mv = vals[i:i + len(shape.stage_cols)]
                i += len(shape.stage_cols)
                if mv and mv[0] is not None and c not in skip:
                    t = shape.target
                    found = d.fetchone(
                        f"SELECT 1 FROM {d.qualified(t.table.name)} WHERE "
                        + " AND ".join(f"{q(m)} = {d.placeholder}" for m in t.match), list(mv))
                    if found is None:
                        want = ", ".join(f"{m} = {v!r}" for m, v in zip(t.match, mv))
                        hint = self.nested.closest_hint(t, mv)
                        if c in self.ctx.late_of(stage):
                            hint = (f"{c} closes a foreign-key cycle, so its {t.table.name} row may be written "
                                    f"later in the run: refer to it by the column it stores "
                                    f"(!ref {{table: {t.table.name}, {t.target}: …}}) or make {c} nullable")
                        problems.append(FixtureError(f"unresolved reference: no {t.table.name} row with {want}",
                                                     location=fx.row_location(stage.row_number(n), c), hint=hint))
        if len(problems) == 1 and failed == 1:
            raise problems[0]
        shown = "" if len(bad) >= failed else f" (the first {len(bad)} listed)"
        raise FixtureError(f"{failed} rows with unresolved references{shown}:", problems=problems)

    def check_duplicates(self, tp: TablePlan, stage: Stage) -> None:
        """A streamed fixture may generate the same key twice (also across stages of the table)."""
        d, q = self.ctx.d, self.ctx.d.quote
        key = stage.fixture.key
        parts = []
        for i, st in enumerate(self.ctx.stages[tp.table.name]):
            if all(k in st.columns for k in key):
                parts.append(f"SELECT {i} AS _s, src._n, {', '.join('src.' + q(k) for k in key)} "
                             f"FROM ({self.sql.src(st)}) src")
        if not parts:
            return
        keys = ", ".join(q(k) for k in key)
        dup = d.fetchone(f"SELECT {keys}, COUNT(*) FROM ({' UNION ALL '.join(parts)}) u "
                         f"GROUP BY {keys} HAVING COUNT(*) > 1 LIMIT 1")
        if dup is None:
            return
        cond = " AND ".join(f"u.{q(k)} = {d.placeholder}" for k in key)
        places = d.fetchall(f"SELECT _s, _n FROM ({' UNION ALL '.join(parts)}) u WHERE {cond} ORDER BY _s, _n "
                            "LIMIT 2", list(dup[:len(key)]))
        stages = self.ctx.stages[tp.table.name]
        locs = [stages[s].fixture.fixture.row_location(stages[s].row_number(n)) for s, n in places]
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(key, dup))
        if not any(stages[s].fixture.fixture.rows is None and not stages[s].fixture.fixture.text_values
                   for s, _ in places):  # no Python fixture among them: the rows were written, not generated
            raise FixtureError(f"the same key ({shown}) appears twice for {tp.table.name}; first at {locs[0]}",
                               location=locs[-1], hint="each row needs a key of its own: remove or change one")
        raise FixtureError(f"the same key ({shown}) is generated twice for {tp.table.name}; first at {locs[0]}",
                           location=locs[-1],
                           hint="build keys from the row number (e.g. f'user{n}@example.com'), not from Faker")

    def locate_row_violation(self, stage: Stage, src: str, exc: DatabaseError) -> None:
        """An INSERT or UPDATE from the staged rows broke NOT NULL or a CHECK constraint: say which fixture
        row left the column empty, or holds the values the check refuses. When no row can be named, the
        error names the fixture."""
        if exc.sqlstate not in CHECK_VIOLATIONS + NULL_VIOLATIONS:
            return
        if exc.sqlstate in CHECK_VIOLATIONS:
            self.locate_check_violation(stage, src, exc)
        column = getattr(exc, "column_name", None)
        if exc.sqlstate in NULL_VIOLATIONS and column in stage.columns:
            q = self.ctx.d.quote
            d = self.ctx.d
            row = d.fetchone(f"SELECT src._n FROM ({src}) src WHERE src.{q(column)} IS NULL ORDER BY src._n LIMIT 1")
            if row is not None:
                raise FixtureError(f"{column!r} is null, and {stage.fixture.table.name}.{column} is NOT NULL",
                                   location=stage.fixture.fixture.row_location(stage.row_number(row[0]), column),
                                   hint="give the column a value (an empty CSV cell is NULL)") from None
        if exc.location is None:
            name_fixture(exc, stage.fixture)

    def locate_check_violation(self, stage: Stage, src: str, exc: DatabaseError) -> None:
        """The first staged row the table's CHECK constraint refuses (its expression is false there: NULL
        passes, as in the table), when every column it reads is one the fixture gives. Else, or when the
        expression cannot be evaluated over the staged rows, the database's error stands as it is."""
        d, table = self.ctx.d, stage.fixture.table.name
        name = getattr(exc, "constraint_name", None)
        check = d.check_constraint(table, name) if name else None
        if check is None or not check[1] or not set(check[1]) <= set(stage.columns):
            return
        expression, columns = check
        try:
            with d.transaction():  # a savepoint: the expression may fail on some row (it says nothing then)
                row = d.fetchone(f"SELECT src._n FROM ({src}) src WHERE NOT ({expression}) ORDER BY src._n LIMIT 1")
        except DatabaseError:
            return
        if row is not None:
            what = "a check constraint" if name == expression else f"check constraint {name!r}"  # (SQLite: unnamed)
            raise FixtureError(f"{table}: the row breaks {what}: CHECK ({expression})",
                               location=stage.fixture.fixture.row_location(
                                   stage.row_number(row[0]), columns[0] if len(columns) == 1 else None),
                               hint="give the row values the check accepts") from None

    def fresh_clash(self, tp: TablePlan, stage: Stage, fresh_from: int) -> bool:
        """Rows past the end of the last run whose key the table already holds (perhaps from a row
        that was not staged): only the full duplicate check can tell."""
        d = self.ctx.d
        row = d.fetchone(f"SELECT 1 FROM ({self.sql.src(stage)}) src JOIN {d.qualified(tp.table.name)} t ON "
                         f"{self.sql.key_join(stage.fixture.key)} WHERE src._n >= {int(fresh_from)} LIMIT 1")
        return row is not None


__all__ = ["Checks"]
