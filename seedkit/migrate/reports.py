"""What a run reports: each migration and statement it ran, status, verify and resolve reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any

from .._record import dataclass
from .validation import Problem


@dataclass
class MigrationRun:
    """One migration applied or rolled back (or that would be, in a dry run)."""

    version: str
    name: str
    file: str
    direction: str  # up | down
    statements: int
    transactional: bool
    execution_ms: float = 0.0
    statements_run: list[StatementRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "statements_run": [s.to_dict() for s in self.statements_run]}


@dataclass
class StatementRun:
    """One statement of a migration as it ran: where it is, its first line, how long it took."""

    line: int
    column: int
    first_line: str
    execution_ms: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RunReport:
    """What ``up`` or ``down`` did."""

    database: str
    direction: str
    migrations: list[MigrationRun] = field(default_factory=list)
    version_before: str | None = None
    version_after: str | None = None
    dry_run: bool = False
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "migrations"},
                "migrations": [m.to_dict() for m in self.migrations]}


Progress = Callable[[MigrationRun], None]


@dataclass
class StatusEntry:
    """One migration as ``status`` sees it."""

    version: str
    name: str
    state: str  # applied | pending | changed | missing | failed
    file: str | None
    applied_at: str | None = None
    execution_ms: int | None = None
    note: str | None = None
    invalid_indexes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StatusReport:
    database: str
    current_version: str | None
    entries: list[StatusEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def pending(self) -> list[StatusEntry]:
        return [e for e in self.entries if e.state == "pending"]

    @property
    def ok(self) -> bool:
        """Nothing pending and nothing drifted."""
        return not self.problems and not self.pending

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "current_version": self.current_version, "ok": self.ok,
                "pending": len(self.pending), "migrations": [e.to_dict() for e in self.entries],
                "problems": [p.to_dict() for p in self.problems]}


@dataclass
class VerifyReport:
    database: str
    checked: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "checked": self.checked, "ok": self.ok,
                "problems": [p.to_dict() for p in self.problems]}


@dataclass
class ResolveReport:
    database: str
    version: str
    name: str
    decision: str  # applied | rolled-back
    previous_status: str
    statements_done: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


