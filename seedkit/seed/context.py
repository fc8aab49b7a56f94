"""What every part of one apply shares: the connection, the plan, the options, and the staged rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING

from .._record import dataclass
from ..db.base import Database
from ..db.catalog import Catalog, TableName
from .plan import FixturePlan, Plan, RefTarget, TablePlan

if TYPE_CHECKING:  # pragma: no cover
    from .skip_tracker import Tracker

# NOT NULL (a row of the fixture left the column empty) and CHECK (a row's values break the table's or a
# domain's check): COPY says which row
ROW_VIOLATIONS = ("23502", "23514")
UNIQUE_VIOLATIONS = ("23505", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")
Progress = Callable[[str, int, "int | None"], None]


@dataclass
class RefShape:
    target: RefTarget
    stage_cols: tuple[str, ...]  # staging columns holding the match values
    alias: str


@dataclass
class Stage:
    sql: str  # quoted staging table name
    fixture: FixturePlan
    columns: list[str]  # data columns, in order
    refs: dict[str, RefShape] = field(default_factory=dict)  # by data column
    count: int = 0
    state: bool = False  # has a _state column (tables with deferred columns)
    tracker: Tracker | None = None  # rows were streamed past unchanged ones; _n is the load order
    # rows inserted while the rest streamed (seed/early.py, into a table that was empty): the staging ordinals
    # inserted through, and (rows, hashes of their versions) as ``Fingerprints.write`` gives them
    inserted_through: int = 0
    inserted_early: tuple[int, int] = (0, 0)

    def row_number(self, n: int) -> int:
        """The fixture row number of the staged row whose ``_n`` is ``n``."""
        return self.tracker.row_number(n) if self.tracker is not None else n


@dataclass(eq=False)
class Context:
    d: Database
    plan: Plan
    catalog: Catalog
    dry_run: bool
    batch_size: int
    progress: Progress | None = None
    diff: bool = False
    diff_limit: int = 20
    stages: dict[TableName, list[Stage]] = field(default_factory=dict)  # by table, in the order staged

    def table_plan(self, name: TableName) -> TablePlan | None:
        return next((tp for tp in self.plan.tables if tp.table.name == name), None)

    def deferred_of(self, stage: Stage) -> frozenset[str]:
        """Columns of the stage's table written in the second pass (self-references, broken cycles)."""
        tp = self.table_plan(stage.fixture.table.name)
        return tp.deferred if tp is not None else frozenset()

    def late_of(self, stage: Stage) -> frozenset[str]:
        tp = self.table_plan(stage.fixture.table.name)
        return tp.late if tp is not None else frozenset()


__all__ = ["ROW_VIOLATIONS", "UNIQUE_VIOLATIONS", "Context", "Progress", "RefShape", "Stage"]
