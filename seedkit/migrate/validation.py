"""Checking the files against the history before anything runs: changed, missing, out of order, failed."""

from __future__ import annotations

from typing import Any

from .._record import dataclass
from ..db.migration import InvalidIndex
from ..errors import DriftError, Location
from .files import Migration, display_path
from .history import APPLIED, RUNNING, HistoryRow


@dataclass(frozen=True)
class Problem:
    kind: str  # changed | missing | out_of_order | failed
    version: str
    name: str
    message: str
    file: str | None = None
    invalid_indexes: tuple[InvalidIndex, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}: {self.message}" if self.file else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "name": self.name, "file": self.file,
                "message": self.message, "invalid_indexes": [i.to_dict() for i in self.invalid_indexes]}


_HINTS = {
    "changed": "never edit a migration after it ships: restore the file as it was applied "
               "(e.g. git checkout) and put the change in a new migration (seedkit migrate new NAME)",
    "missing": "restore the deleted migration file; a migration that ran stays in the history",
    "out_of_order": "give the new migration a version newer than the newest applied one, "
                    "or pass --allow-out-of-order if applying it late is safe",
    "failed": "check by hand what the migration did, then record the outcome with "
              "'seedkit migrate resolve VERSION --applied' or '--rolled-back'",
    "invalid_index": "a failed CREATE INDEX CONCURRENTLY leaves an invalid index behind: run the DROP INDEX "
                     "CONCURRENTLY shown above, then 'seedkit migrate resolve VERSION --rolled-back' and "
                     "'seedkit migrate up' (resolve --applied is refused while the index is invalid)",
    "running": "wait for the other run to finish; 'seedkit migrate status' shows when it has",
    "invalid": "fix the file; see the message for the line",
}


def find_problems(migrations: list[Migration], rows: dict[str, HistoryRow], *,
                  allow_out_of_order: bool = False) -> list[Problem]:
    by_number = {m.number: m for m in migrations}
    problems: list[Problem] = []
    applied_rows = [r for r in rows.values() if r.number is not None and r.status == APPLIED]
    newest_row = max(applied_rows, key=lambda r: r.order, default=None)
    matched: set[int] = set()
    for row in sorted(rows.values(), key=lambda r: (r.order, r.version)):
        m = by_number.get(row.number) if row.number is not None else None
        if m is None:
            problems.append(Problem("missing", row.version, row.name,
                                    f"migration {row.version}{'_' + row.name if row.name else ''} "
                                    f"was applied but its file is gone from the migrations folder"))
            continue
        matched.add(m.number)
        if row.status != APPLIED:
            state = "was interrupted" if row.status == RUNNING else "failed"
            detail = f" after {row.statements_done} statement(s)" if row.statements_done is not None else ""
            err = f": {row.error}" if row.error else ""
            problems.append(Problem("failed", m.version, m.name,
                                    f"non-transactional migration {m.label} {state}{detail}{err}; "
                                    "the database may be half-way", display_path(m.entry)))
        elif row.checksum != m.checksum and row.checksum != m.checksum_before_down():
            problems.append(Problem("changed", m.version, m.name,
                                    f"migration {m.label} was changed after it was applied "
                                    f"(checksum {m.checksum[:12]}, applied {row.checksum[:12]})",
                                    display_path(m.entry)))
    if newest_row is not None and not allow_out_of_order:
        for m in migrations:
            if m.number not in matched and m.order < newest_row.order:
                problems.append(Problem("out_of_order", m.version, m.name,
                                        f"pending migration {m.label} is older than the newest applied one "
                                        f"({newest_row.version})", display_path(m.entry)))
    return problems


def drift_error(problems: list[Problem], action: str = "refusing to run") -> DriftError:
    kinds = sorted({p.kind for p in problems}, key=list(_HINTS).index)
    hint = "; ".join(_HINTS[k] for k in kinds)
    if len(problems) == 1:
        p = problems[0]
        return DriftError(f"{p.message}; {action}", location=Location(file=p.file) if p.file else None,
                          hint=hint.replace("VERSION", p.version))
    lines = "\n".join(f"  {p}" for p in problems)
    return DriftError(f"{len(problems)} problems with the migration history; {action}:\n{lines}", hint=hint)


