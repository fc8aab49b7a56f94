"""The SQL a merge is built from: the staged rows with references resolved, key joins, change tests."""

from __future__ import annotations

from ..db.catalog import Table
from .context import Context, RefShape, Stage
from .plan import TablePlan


class MergeSql:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.q = ctx.d.quote

    def src(self, stage: Stage, deferred: bool = False, where: str = "") -> str:
        """SELECT over the staging table with references resolved: one row per fixture row.

        Deferred columns (self-references, broken cycles) are left out until ``deferred=True``; ``where``:
        a condition on the staged rows (``s``) to keep only some.
        """
        q = self.q
        exprs = ["s._n AS _n"]
        joins = []
        unres = []
        skip = set() if deferred else self.ctx.deferred_of(stage)
        late = self.ctx.late_of(stage)
        for c in stage.columns:
            if c in skip:
                continue
            shape = stage.refs.get(c)
            if shape is None:
                exprs.append(f"s.{q(c)} AS {q(c)}")
                continue
            a = shape.alias
            if c in late and shape.target.target in shape.target.match:
                # a reference by the very column it stores, across a deferrable foreign key that closes
                # a cycle: its row may come later in the run; the key's own check runs at commit
                own = shape.stage_cols[shape.target.match.index(shape.target.target)]
                exprs.append(f"CASE WHEN s.{q(shape.stage_cols[0])} IS NULL THEN s.{q(c)} ELSE s.{q(own)} END"
                             f" AS {q(c)}")
                continue
            first = shape.stage_cols[0]
            exprs.append(f"CASE WHEN s.{q(first)} IS NULL THEN s.{q(c)} ELSE {a}.{q(shape.target.target)} END"
                         f" AS {q(c)}")
            on = " AND ".join(f"{a}.{q(m)} = s.{q(sc)}" for m, sc in zip(shape.target.match, shape.stage_cols))
            joins.append(f"LEFT JOIN {self.ref_source(shape)} {a} ON {on}")
            unres.append(f"(s.{q(first)} IS NOT NULL AND {a}.{q(shape.target.match[0])} IS NULL)")
        if stage.state:
            exprs.append("s._state AS _state")
        exprs.append(f"CASE WHEN {' OR '.join(unres)} THEN 1 ELSE 0 END AS _unres" if unres else "0 AS _unres")
        return f"SELECT {', '.join(exprs)} FROM {stage.sql} s {' '.join(joins)}" + (f" WHERE {where}" if where else "")

    def ref_source(self, shape: RefShape) -> str:
        """The referenced table; in a dry run also rows its fixtures would insert (value unknown yet)."""
        d, q = self.ctx.d, self.q
        t = shape.target
        real = d.qualified(t.table.name)
        if not self.ctx.dry_run:
            return real
        cols = [*t.match, t.target] if t.target not in t.match else list(t.match)
        parts = [f"SELECT {', '.join(q(c) for c in cols)} FROM {real}"]
        for st in self.ctx.stages.get(t.table.name, []):
            if all(m in st.columns and m not in st.refs for m in t.match):
                sel = [f"s.{q(c)}" if c in t.match else f"NULL AS {q(c)}" for c in cols]
                cond = " AND ".join(f"x.{q(m)} = s.{q(m)}" for m in t.match)
                parts.append(f"SELECT {', '.join(sel)} FROM {st.sql} s WHERE NOT EXISTS "
                             f"(SELECT 1 FROM {real} x WHERE {cond})")
        return "(" + " UNION ALL ".join(parts) + ")" if len(parts) > 1 else real

    def key_join(self, key: tuple[str, ...], left: str = "t", right: str = "src") -> str:
        q = self.q
        return " AND ".join(f"{left}.{q(k)} = {right}.{q(k)}" for k in key)

    @staticmethod
    def compare_cols(tp: TablePlan, stage: Stage) -> list[str]:
        fp = stage.fixture
        return [c for c in stage.columns if c not in fp.key and c not in fp.update_columns_excluded
                and c not in tp.deferred]

    def differs(self, table: Table, cols: list[str], left: str = "t") -> str:
        q = self.q
        d = self.ctx.d
        return " OR ".join(d.distinct(f"{left}.{q(c)}", f"src.{q(c)}", table.columns[c]) for c in cols) or "1=0"


__all__ = ["MergeSql"]
