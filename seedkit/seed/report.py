"""Run reports: plain data, no formatting library."""

from __future__ import annotations

from dataclasses import asdict, field
from typing import Any

from .._record import dataclass


@dataclass
class TableReport:
    table: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    seconds: float = 0.0
    diffs: list[dict[str, Any]] = field(default_factory=list)  # --diff: {"key": …, "column": …, "old": …, "new": …}

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


@dataclass
class Report:
    env: str | None
    database: str  # masked URL
    dry_run: bool = False
    tables: list[TableReport] = field(default_factory=list)
    seconds: float = 0.0

    def table(self, name: str) -> TableReport:
        for t in self.tables:
            if t.table == name:
                return t
        t = TableReport(name)
        self.tables.append(t)
        return t

    def _sum(self, attr: str) -> int:
        return sum(getattr(t, attr) for t in self.tables)

    @property
    def inserted(self) -> int:
        return self._sum("inserted")

    @property
    def updated(self) -> int:
        return self._sum("updated")

    @property
    def unchanged(self) -> int:
        return self._sum("unchanged")

    @property
    def deleted(self) -> int:
        return self._sum("deleted")

    @property
    def changed(self) -> bool:
        return any(t.changed for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env, "database": self.database, "dry_run": self.dry_run,
            "changed": self.changed, "seconds": round(self.seconds, 4),
            "totals": {k: self._sum(k) for k in ("inserted", "updated", "unchanged", "deleted")},
            "tables": [{**asdict(t), "seconds": round(t.seconds, 4)} for t in self.tables],
        }
