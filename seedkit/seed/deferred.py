"""The deferred pass: columns left out of the first pass (self-references, broken foreign-key cycles)
are set once every row of the run exists."""

from __future__ import annotations

from .context import Stage
from .plan import TablePlan
from .report import TableReport
from .write import Writer


def set_deferred(w: Writer, tp: TablePlan, stage: Stage, tr: TableReport) -> None:
    """Second pass for self-references and broken cycles: every row now exists."""
    d, q, table, fp = w.ctx.d, w.ctx.d.quote, tp.table, stage.fixture
    cols = [c for c in stage.columns if c in tp.deferred]
    if not cols or stage.count == 0:
        return
    cols_changed_only_new = fp.fixture.header.on_conflict == "ignore"
    target = d.qualified(table.name)
    src = w.sql.src(stage, deferred=True)
    differs = w.sql.differs(table, cols)
    scope = "src._state = 'new'" if cols_changed_only_new else "1=1"
    row = d.fetchone(f"SELECT SUM(CASE WHEN src._state IS NULL THEN 1 ELSE 0 END), COUNT(*), SUM(src._unres) "
                     f"FROM ({src}) src JOIN {target} t ON {w.sql.key_join(fp.key)} "
                     f"WHERE ({differs}) AND {scope}")
    assert row is not None
    old_changed, any_changed, unresolved = (int(x or 0) for x in row)
    if unresolved:
        w.checks.raise_unresolved(stage, src, deferred=True)
    if any_changed and not w.ctx.dry_run:
        w.fingerprints.wrote(table.name)
        sets = ", ".join(f"{q(c)} = src.{q(c)}" for c in cols)
        d.execute(f"UPDATE {target} AS t SET {sets} FROM ({src}) src "
                  f"WHERE {w.sql.key_join(fp.key)} AND ({differs}) AND {scope}")
    if old_changed and not cols_changed_only_new:
        # rows that existed before the run and changed only in a deferred column
        tr.updated += old_changed
        tr.unchanged -= old_changed
        if tr.unchanged < 0:
            tr.unchanged = 0


__all__ = ["set_deferred"]
