"""Repeatable migrations: SQL files re-applied whenever they change (views, functions, grants).

Files live in ``migrations/repeatable/`` (``[migrations] repeatable_dir``), one ``NAME.sql`` each,
the whole file being what runs. ``up`` applies them after every versioned migration, in file-name
order, but only those whose checksum differs from the one recorded when they were last applied (or
that were never applied). Each one runs in its own transaction with its history row: a failure
rolls back that file's re-apply alone — the objects keep their previous definition, and the
versioned migrations and repeatables applied before it stay applied.

Their history is a table of its own, ``<history table>_repeatable`` (name, checksum, applied_at,
execution_ms), so the versioned history keeps its shape and other runners reading it see nothing
new. ``down`` never touches them. A file whose name starts with ``.`` is ignored, as is anything
that is not a ``.sql`` file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from .._record import dataclass
from ..db.base import Database
from ..db.catalog import TableName
from ..errors import DatabaseError, Location, MigrationError, MigrationFileError
from .files import Migration, Section, _directive_section, _read, checksum, display_path, new_name

if TYPE_CHECKING:
    from .history import History
    from .reports import MigrationRun, Progress, StatusEntry
    from .runner import Planned, Runner
    from .validation import Problem

KIND = "repeatable"  # the ``version`` shown for a repeatable in reports, and its audit-log version


@dataclass(frozen=True)
class Repeatable:
    """One repeatable migration file."""

    name: str  # the file name without ``.sql``: its identity in the history
    path: Path
    section: Section
    checksum: str

    @property
    def label(self) -> str:
        return f"repeatable {self.name}"

    def as_migration(self) -> Migration:
        """The file in the shape the runner's statement machinery takes (version ``repeatable``)."""
        return Migration(version=KIND, number=-1, name=self.name, layout="pair", path=self.path, up=self.section,
                         down=None, checksum=self.checksum)


def load(path: Path) -> Repeatable:
    text = _read(path)
    section = _directive_section(path, text)
    if not section.transactional:
        directive = text.split("\n", 1)[0].strip()  # '-- seedkit: transaction=false' or morph's
        raise MigrationFileError("a repeatable migration always runs in a transaction",
                                 location=Location(file=display_path(path), line=1),
                                 hint=f"remove '{directive}': a failed re-apply must roll back to the "
                                      "previous definition; put statements that need no transaction in a "
                                      "versioned migration")
    return Repeatable(name=path.name[: -len(".sql")], path=path, section=section, checksum=checksum(text))


def discover(directory: Path | str | None) -> list[Repeatable]:
    """Every ``*.sql`` file of ``directory``, in name order (a missing folder holds none)."""
    if directory is None:
        return []
    directory = Path(directory)
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise MigrationFileError("the repeatable migrations path is not a folder",
                                 location=Location(file=display_path(directory)))
    files = sorted((p for p in directory.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(".sql")),
                   key=lambda p: p.name)
    return [load(p) for p in files]


TEMPLATE = """-- Repeatable migration: applied after the versioned migrations, and again whenever this file changes.
-- Write it so it can run again on a database that already has it: CREATE OR REPLACE VIEW / FUNCTION,
-- DROP … IF EXISTS then CREATE, GRANT.

"""


def write_new(directory: Path, name: str) -> Path:
    """Write ``directory/NAME.sql``; refuse to overwrite one."""
    cleaned = new_name(name)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cleaned}.sql"
    if path.exists():
        raise MigrationFileError(f"repeatable migration {display_path(path)} already exists",
                                 location=Location(file=display_path(path)),
                                 hint="edit it: 'seedkit migrate up' re-applies it when it changes")
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


# -- history -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    name: str
    checksum: str
    applied_at: str | None
    execution_ms: int


class RepeatableHistory:
    """``<history table>_repeatable``: one row per repeatable, with the checksum it was applied with."""

    def __init__(self, history: History):
        self.db: Database = history.db
        self.name = TableName(history.name.schema, f"{history.name.name}_{KIND}")
        self.table = self.db.qualified(self.name)
        self.history = history
        self.p = self.db.placeholder

    def exists(self) -> bool:
        return self.db.relation_exists(self.name)

    def ensure(self) -> None:
        ts, big, _ = self.db.history_types
        self.db.execute(f"""CREATE TABLE IF NOT EXISTS {self.table} (
            name text PRIMARY KEY,
            checksum text NOT NULL,
            applied_at {ts},
            execution_ms {big} NOT NULL DEFAULT 0)""")

    def rows(self) -> dict[str, Row]:
        from ..db.migration import iso

        if not self.exists():
            return {}
        return {r[0]: Row(r[0], r[1], iso(r[2]), int(r[3] or 0))
                for r in self.db.fetchall(f"SELECT name, checksum, applied_at, execution_ms FROM {self.table}")}

    def record(self, r: Repeatable, execution_ms: int) -> None:
        p = self.p
        self.db.execute(f"DELETE FROM {self.table} WHERE name = {p}", [r.name])
        self.db.execute(f"INSERT INTO {self.table} (name, checksum, applied_at, execution_ms) "
                        f"VALUES ({p}, {p}, {p}, {p})", [r.name, r.checksum, self.history._now(), execution_ms])


def pending(repeatables: list[Repeatable], rows: dict[str, Row]) -> list[Repeatable]:
    """The repeatables ``up`` would apply: never applied, or changed since."""
    return [r for r in repeatables if r.name not in rows or rows[r.name].checksum != r.checksum]


# -- the runner's hooks ------------------------------------------------------------------------------

@dataclass
class Prepared:
    """The repeatables one ``up`` will apply, split and checked before any migration runs."""

    rows: dict[str, Row]
    todo: list[tuple[Repeatable, Planned]]


def prepare(runner: Runner, *, everything: bool = False) -> Prepared:
    """Split and check every new or changed repeatable (``everything``: all of them): a file that
    cannot run stops the run before anything (versioned migrations included) runs."""
    rows = RepeatableHistory(runner.history).rows()
    chosen = runner.repeatables if everything else pending(runner.repeatables, rows)
    todo = [(r, plan(runner, r)) for r in chosen]
    runner._refuse_history_changes([planned for _, planned in todo])
    return Prepared(rows, todo)


def apply(runner: Runner, prepared: Prepared, *, dry_run: bool, progress: Progress | None) -> list[MigrationRun]:
    """After the versioned migrations: apply each new or changed repeatable in its own transaction."""
    from ..db.migration import lock_lost
    from .reports import MigrationRun

    history = RepeatableHistory(runner.history)
    if not dry_run:
        history.ensure()
    runs: list[MigrationRun] = []
    for r, planned in prepared.todo:
        run = MigrationRun(KIND, r.name, display_path(r.path), "up", len(planned.statements), True)
        if not dry_run:
            runner.session.check_lock(r.label)
            t0 = time.perf_counter()
            try:
                with runner._locating(planned), runner.session.migration_transaction():
                    current = history.rows().get(r.name)
                    before = prepared.rows.get(r.name)
                    if current is not None and current.checksum == r.checksum and \
                            (before is None or current.applied_at != before.applied_at):
                        continue  # another run applied this version of the file meanwhile
                    for stmt in planned.statements:
                        runner._execute(planned, stmt, done=None, run=run)
                    ms = int((time.perf_counter() - t0) * 1000)
                    history.record(r, ms)
                    runner.history.log(KIND, r.name, "re-applied" if r.name in prepared.rows else "applied",
                                       execution_ms=ms, detail=f"checksum {r.checksum[:12]}")
            except DatabaseError as exc:
                if runner.db.connection_lost(exc):
                    raise lock_lost(r.label, exc) from exc  # the lock ended with the connection
                if isinstance(exc, MigrationError):
                    raise _failed(exc, r, prepared.rows) from exc.__cause__
                raise
            run.execution_ms = (time.perf_counter() - t0) * 1000
        runs.append(run)
        if progress:
            progress(run)
    return runs


def plan(runner: Runner, r: Repeatable) -> Planned:
    """Split ``r`` into statements; a statement that cannot run in a transaction is a located error."""
    from .runner import plan_section

    try:
        return plan_section(r.as_migration(), r.section, runner.db.dialect, runner.session.server_version_num,
                            "up")
    except MigrationFileError as exc:
        exc.message = exc.message.replace(f"the up section of migration {r.as_migration().label}", r.label)
        if "cannot run inside a transaction" in exc.message:
            exc.hint = ("a repeatable migration always runs in a transaction: move this statement to a "
                        "versioned migration marked transaction:false (seedkit migrate new NAME)")
        raise


def _failed(exc: MigrationError, r: Repeatable, rows: dict[str, Row]) -> MigrationError:
    label = r.as_migration().label
    exc.message = exc.message.replace(f"migration {label} rolled back", f"{r.label} rolled back")
    before = ("its objects keep the definition applied before" if r.name in rows
              else "it was never applied")
    hint = (exc.hint or "").replace("the whole migration was rolled back; earlier migrations stay applied", "")
    exc.hint = (f"{hint.rstrip('; ')}; " if hint.strip("; ") else "") + \
        f"only this file's re-apply was rolled back ({before}); the versioned migrations and the " \
        "repeatables before it stay applied. Fix the file and run 'seedkit migrate up' again"
    return exc


def status_entries(runner: Runner) -> list[StatusEntry]:
    """Each repeatable as ``status`` lists it: applied, pending (new or changed), or removed."""
    from .reports import StatusEntry

    rows = RepeatableHistory(runner.history).rows()
    entries: list[StatusEntry] = []
    on_disk = set()
    for r in runner.repeatables:
        on_disk.add(r.name)
        row = rows.get(r.name)
        entry = StatusEntry(KIND, r.name, "pending", display_path(r.path))
        if row is not None:
            entry.applied_at, entry.execution_ms = row.applied_at, row.execution_ms
            if row.checksum == r.checksum:
                entry.state = "applied"
            else:
                entry.note = "changed since it was applied: up re-applies it"
        entries.append(entry)
    for name, row in sorted(rows.items()):
        if name not in on_disk:
            entries.append(StatusEntry(KIND, name, "removed", None, row.applied_at, row.execution_ms,
                                       "the file is gone; what it created stays in the database"))
    return entries


def verify_problems(runner: Runner) -> list[Problem]:
    """Every repeatable must split cleanly and hold nothing that cannot run in a transaction."""
    from .validation import Problem

    problems: list[Problem] = []
    for r in runner.repeatables:
        try:
            plan(runner, r)
        except MigrationFileError as exc:
            problems.append(Problem("invalid", KIND, r.name, exc.message,
                                    str(exc.location) if exc.location else display_path(r.path)))
    return problems


__all__ = ["KIND", "RepeatableHistory", "Repeatable", "apply", "discover", "load", "pending", "status_entries",
           "verify_problems", "write_new"]
