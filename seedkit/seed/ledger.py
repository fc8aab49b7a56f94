"""Prune: the ledger of the rows each ``prune: true`` fixture wrote, and deleting those it no longer lists."""

from __future__ import annotations

from pathlib import PurePath, PurePosixPath

from ..db.base import Database
from .context import Context
from .fingerprints import Fingerprints
from .merge_sql import MergeSql
from .model import Fixture
from .plan import FixturePlan, TablePlan
from .report import TableReport

LEDGER = "seedkit_rows"


class Ledger:

    def __init__(self, ctx: Context, sql: MergeSql, fingerprints: Fingerprints):
        self.ctx = ctx
        self.sql = sql
        self.fingerprints = fingerprints

    def prune(self, tp: TablePlan, fp: FixturePlan, tr: TableReport) -> None:
        d, q, ph = self.ctx.d, self.ctx.d.quote, self.ctx.d.placeholder
        table = tp.table
        ledger = d.quote(LEDGER)
        names = [fp.fixture.name, *self.legacy_names(tp, fp)]  # the fixture's rows, also as older versions kept them
        if len(names) > 1 and not self.ctx.dry_run:
            self.adopt(names, str(table.name))
            names = names[:1]
        marks_names = ", ".join(ph for _ in names)
        ident = [fp.fixture.name, str(table.name)]
        stages = [st for st in self.ctx.stages.get(table.name, []) if st.fixture is fp]
        key_sql = d.json_key([f"src.{q(k)}" for k in fp.key])
        current = " UNION ALL ".join(f"SELECT {key_sql} AS k FROM ({self.sql.src(st)}) src" for st in stages) \
            or "SELECT NULL AS k WHERE 1=0"
        gone = [r[0] for r in d.fetchall(
            f"SELECT DISTINCT l.row_key FROM {ledger} l WHERE l.fixture IN ({marks_names}) AND l.table_name = {ph} "
            f"AND l.row_key NOT IN (SELECT k FROM ({current}) c WHERE k IS NOT NULL)", [*names, str(table.name)])]
        t_key = d.json_key([f"{q(k)}" for k in fp.key])
        deleted = 0
        if gone:
            for i in range(0, len(gone), 500):
                chunk = gone[i:i + 500]
                marks = ", ".join(ph for _ in chunk)
                if self.ctx.dry_run:
                    got = d.fetchone(f"SELECT COUNT(*) FROM {d.qualified(table.name)} WHERE {t_key} IN ({marks})",
                                     chunk)
                    deleted += int(got[0]) if got else 0
                else:
                    cur = d.execute(f"DELETE FROM {d.qualified(table.name)} WHERE {t_key} IN ({marks})", chunk)
                    deleted += max(cur.rowcount, 0)
                    self.fingerprints.wrote(table.name)
                    d.execute(f"DELETE FROM {ledger} WHERE fixture = {ph} AND table_name = {ph} "
                              f"AND row_key IN ({marks})", [*ident, *chunk])
        tr.deleted += deleted
        if not self.ctx.dry_run and stages:
            d.execute(f"INSERT INTO {ledger} (fixture, table_name, row_key) "
                      f"SELECT DISTINCT {ph}, {ph}, c.k FROM ({current}) c WHERE c.k IS NOT NULL AND NOT EXISTS "
                      f"(SELECT 1 FROM {ledger} l WHERE l.fixture = {ph} AND l.table_name = {ph} AND l.row_key = c.k)",
                      [*ident, *ident])

    def legacy_names(self, tp: TablePlan, fp: FixturePlan) -> list[str]:
        """Names earlier versions gave this fixture in the ledger: its path relative to the working
        directory of that run (absolute outside it), which a run from another folder did not find.

        A name is this fixture's when its path ends with the fixture's whole path in the seeds folder
        (absolute: with the seeds folder's name too, so a moved project still matches) and it fits no
        other fixture of the run; anything else is left alone.
        """
        d, ph = self.ctx.d, self.ctx.d.placeholder
        fx = fp.fixture
        if fx.path is None or not fx.ident:
            return []
        ours = {f.fixture.name for t in self.ctx.plan.tables for f in t.fixtures}
        found = [r[0] for r in d.fetchall(f"SELECT DISTINCT fixture FROM {d.quote(LEDGER)} WHERE table_name = {ph}",
                                          [str(tp.table.name)])]
        return [n for n in found if n not in ours and _legacy_of(n, fx)
                and not any(_legacy_of(n, other.fixture) for other in tp.fixtures if other is not fp)]

    def adopt(self, names: list[str], table: str) -> None:
        """Move ledger rows kept under older names to the fixture's name (once, in this run's transaction)."""
        d, ph = self.ctx.d, self.ctx.d.placeholder
        ledger = d.quote(LEDGER)
        new, old = names[0], names[1:]
        marks = ", ".join(ph for _ in old)
        d.execute(f"INSERT INTO {ledger} (fixture, table_name, row_key) SELECT DISTINCT {ph}, o.table_name, o.row_key "
                  f"FROM {ledger} o WHERE o.fixture IN ({marks}) AND o.table_name = {ph} AND NOT EXISTS "
                  f"(SELECT 1 FROM {ledger} l WHERE l.fixture = {ph} AND l.table_name = o.table_name "
                  f"AND l.row_key = o.row_key)", [new, *old, table, new])
        d.execute(f"DELETE FROM {ledger} WHERE fixture IN ({marks}) AND table_name = {ph}", [*old, table])


def _legacy_of(name: str, fx: Fixture) -> bool:
    """Whether ``name`` is how an earlier version, run from some folder, recorded fixture ``fx``."""
    tail = fx.name[len(fx.ident):]
    if fx.path is None or not name.endswith(tail) or len(name) == len(tail):
        return False
    written = PurePath(name[:-len(tail)])
    rel = PurePosixPath(fx.ident).parts
    here = fx.path.parts
    if written.is_absolute():
        parts = written.parts
        n = min(len(rel) + 1, len(here))
        return written == fx.path or (len(parts) >= n and parts[-n:] == here[-n:])
    parts = tuple(p for p in written.parts if p != ".")
    while parts and parts[0] == "..":
        parts = parts[1:]
    return len(parts) >= len(rel) and here[-len(parts):] == parts


def ensure_ledger(d: Database, *, temporary: bool = False) -> None:
    """Create the prune ledger (a dry run: an empty temporary one, which hides nothing)."""
    definition = "fixture TEXT NOT NULL, table_name TEXT NOT NULL, row_key TEXT NOT NULL, " \
                 "PRIMARY KEY (fixture, table_name, row_key)"
    if temporary:
        d.create_temporary(d.quote(LEDGER), definition)
    else:
        d.execute(f"CREATE TABLE IF NOT EXISTS {d.quote(LEDGER)} ({definition})")


__all__ = ["LEDGER", "Ledger", "ensure_ledger"]
