"""Adopting a database seedkit did not build: ``baseline`` and ``import``.

``baseline VERSION`` records every migration up to VERSION as applied without running it, with the
checksums of the files as they are now: for a database built by hand (psql) or restored from a dump.

``import --from TOOL`` reads another runner's history table and records the matching seedkit
history. What each tool's table says, and how it is read:

=================  =============================  ===================================================
tool               table (default)                what it records
=================  =============================  ===================================================
dbmate             ``schema_migrations``          ``version`` (text): one row per applied migration
golang-migrate     ``schema_migrations``          ``version`` (bigint), ``dirty``: one row, the newest
                                                  applied version; every version up to it is applied;
                                                  ``dirty`` means it failed half-way
diesel             ``__diesel_schema_migrations`` ``version`` (digits), ``run_on``: one row per migration
flyway             ``flyway_schema_history``      one row per run: ``version``, ``script``, ``type``
                                                  (``SQL``, ``BASELINE``, …), ``success``,
                                                  ``installed_on``, ``execution_time`` (ms); a
                                                  ``BASELINE`` row stands for every version up to it;
                                                  repeatable rows (no version) are left to seedkit's
                                                  own repeatables
=================  =============================  ===================================================

Both refuse (exit 4) a database that already has a seedkit history, unless ``force``. ``import``
refuses (exit 3, nothing written) when the files and the tool's history disagree, listing every
difference: an applied version without a file, a file older than the newest applied version that
the tool never applied, a dirty or failed migration, a version seedkit cannot name. None of these
tools keeps a checksum seedkit can compare (Flyway's CRC32 covers its own file format), so the
checksums recorded are those of the files as they are now, as for ``baseline``.
"""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._record import dataclass
from ..db.catalog import TableName
from ..errors import DatabaseError, DriftError, Location, RefusedError, UsageError
from .files import Migration, display_path, version_order

if TYPE_CHECKING:
    from .history import HistoryRow
    from .runner import Runner

TOOLS = {"dbmate": "schema_migrations", "golang-migrate": "schema_migrations",
         "diesel": "__diesel_schema_migrations", "flyway": "flyway_schema_history"}


@dataclass
class Recorded:
    version: str
    name: str
    applied_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class AdoptReport:
    """What ``baseline`` or ``import`` recorded (or would, with ``dry_run``)."""

    database: str
    action: str  # baseline | import
    source: str | None  # "dbmate (schema_migrations)", or None for a baseline
    recorded: list[Recorded] = field(default_factory=list)
    replaced: int = 0  # rows of an earlier seedkit history replaced (force)
    pending: list[str] = field(default_factory=list)  # versions on disk that up will apply
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "recorded"},
                "recorded": [r.to_dict() for r in self.recorded]}


# -- baseline --------------------------------------------------------------------------------------

def baseline(runner: Runner, version: str | int, *, force: bool = False, dry_run: bool = False) -> AdoptReport:
    from .runner import parse_target

    target = runner._by_version(parse_target(version))
    chosen = [m for m in runner.migrations if m.order <= target.order]
    report = AdoptReport(database=str(runner.url), action="baseline", source=None, dry_run=dry_run)
    _record(runner, report, [(m, None, None) for m in chosen], force=force,
            action="baseline", detail=f"recorded as applied by 'baseline {target.version}' (not run)")
    return report


# -- import ----------------------------------------------------------------------------------------

@dataclass
class _Applied:
    """One migration the other tool says it applied."""

    version: str  # as the tool wrote it
    number: int | None  # as seedkit numbers versions; None when it cannot
    applied_at: Any = None
    execution_ms: int | None = None
    script: str | None = None


@dataclass
class _ToolHistory:
    applied: list[_Applied] = field(default_factory=list)
    up_to: int | None = None  # every version up to this one is applied (golang-migrate, flyway BASELINE)
    problems: list[str] = field(default_factory=list)


def _number(version: Any) -> int | None:
    text = str(version).strip().replace("-", "")
    return int(text) if text.isdigit() else None


def _read_tool(runner: Runner, tool: str, table: TableName) -> _ToolHistory:
    db = runner.db
    name = db.qualified(table)
    history = _ToolHistory()
    try:
        if tool == "dbmate":
            for (version,) in db.fetchall(f"SELECT version FROM {name}"):
                history.applied.append(_Applied(str(version), _number(version)))
        elif tool == "diesel":
            for version, run_on in db.fetchall(f"SELECT version, run_on FROM {name}"):
                history.applied.append(_Applied(str(version), _number(version), run_on))
        elif tool == "golang-migrate":
            rows = db.fetchall(f"SELECT version, dirty FROM {name}")
            if len(rows) > 1:
                history.problems.append(f"{len(rows)} rows in {table}: golang-migrate keeps exactly one")
            for version, dirty in rows:
                if int(version) < 0:  # -1: golang-migrate's "nothing applied" (after down to zero)
                    continue
                history.up_to = int(version)
                if dirty in (True, 1, "t", "true"):
                    history.problems.append(
                        f"golang-migrate marks version {version} dirty: it failed half-way; fix the database "
                        f"and run 'migrate force VERSION' with golang-migrate before importing")
        elif tool == "flyway":
            rows = db.fetchall(f"SELECT version, script, type, success, installed_on, execution_time "
                               f"FROM {name} ORDER BY installed_rank")
            for version, script, kind, success, installed_on, ms in rows:
                kind = str(kind or "").upper()
                if kind in ("SCHEMA", "DELETE") or kind.startswith("UNDO"):
                    continue  # schema creation marker; Flyway's own bookkeeping
                if version is None:
                    continue  # a repeatable: seedkit re-applies its own repeatables when they change
                if success not in (True, 1, "t", "true"):
                    history.problems.append(f"Flyway records version {version} ({script}) as failed: repair or "
                                            "finish it with Flyway before importing")
                    continue
                number = _number(version)
                if number is None:
                    history.problems.append(
                        f"Flyway version {version} ({script}) is not a whole number, and seedkit versions are: "
                        "rename the file with a whole-number version (order kept) and import again")
                    continue
                if kind == "BASELINE":
                    history.up_to = max(history.up_to or number, number)
                    continue
                history.applied.append(_Applied(str(version), number, installed_on, ms, script))
    except DatabaseError as exc:
        raise DatabaseError(f"cannot read {tool}'s history table {table}: {exc.message}", sqlstate=exc.sqlstate,
                            hint=f"pass --table if {tool} used another table name") from exc
    return history


def import_history(runner: Runner, tool: str, *, table: str | None = None, force: bool = False,
                   dry_run: bool = False) -> AdoptReport:
    if tool not in TOOLS:
        raise UsageError(f"unknown tool {tool!r}", hint=f"--from takes one of: {', '.join(TOOLS)}")
    source = _table(runner, table or TOOLS[tool])
    ours = runner.history.name
    if source.name == ours.name and (source.schema or ours.schema) in (ours.schema, None):
        raise UsageError(f"{tool}'s history table and seedkit's are both named {ours}",
                         location=None,
                         hint="give seedkit a table of its own, e.g. [migrations] table = \"seedkit_migrations\" in "
                              "seedkit.toml, then import again")
    if not _exists(runner, source):
        raise UsageError(f"no {tool} history table {source} in {runner.url}",
                         hint=f"pass --table NAME when {tool} was configured with another table")
    history = _read_tool(runner, tool, source)
    differences = list(history.problems)
    by_number = {m.number: m for m in runner.migrations}
    applied: dict[int, _Applied] = {}
    for a in history.applied:
        if a.number is None:
            differences.append(f"{tool} version {a.version!r} is not a number, and seedkit versions are")
        elif a.number not in by_number:
            what = f" ({a.script})" if a.script else ""
            differences.append(f"{tool} applied version {a.version}{what}, but no migration file has that version")
        else:
            applied[a.number] = a
    if history.up_to is not None:
        if history.up_to not in by_number and history.up_to not in applied:
            differences.append(f"{tool} is at version {history.up_to}, but no migration file has that version")
        for m in runner.migrations:
            if m.order <= version_order(history.up_to) and m.number not in applied:
                applied[m.number] = _Applied(m.version, m.number)
    newest = max((by_number[n].order for n in applied if n in by_number), default=None)
    for m in runner.migrations:
        if newest is not None and m.number not in applied and m.order < newest:
            differences.append(f"{display_path(m.entry)} (version {m.version}) is older than the newest "
                               f"migration {tool} applied, but {tool} never applied it")
    if differences:
        lines = "\n".join(f"  {d}" for d in differences)
        raise DriftError(f"{tool}'s history and the migration files disagree; nothing was imported:\n{lines}",
                         location=Location(file=display_path(runner.migrations[0].path.parent))
                         if runner.migrations else None,
                         hint="make the files match what was applied (restore or rename them), or record the "
                              "state by hand with 'seedkit migrate baseline VERSION'")
    chosen = [(by_number[n], a.applied_at, a.execution_ms) for n, a in applied.items()]
    chosen.sort(key=lambda c: c[0].order)
    report = AdoptReport(database=str(runner.url), action="import", source=f"{tool} ({source})", dry_run=dry_run)
    _record(runner, report, chosen, force=force, action=f"import from {tool}",
            detail=f"imported from {tool}'s history table {source} (not run)")
    return report


def _table(runner: Runner, text: str) -> TableName:
    """The tool's table; unqualified, in the schema seedkit's history is in (none on SQLite)."""
    schema, _, name = text.rpartition(".")
    return TableName(schema or runner.history.name.schema, name)


def _exists(runner: Runner, table: TableName) -> bool:
    return runner.db.relation_exists(table)


# -- recording -------------------------------------------------------------------------------------

def _record(runner: Runner, report: AdoptReport, chosen: list[tuple[Migration, Any, int | None]], *,
            force: bool, action: str, detail: str) -> None:
    """Write the history rows of ``chosen`` in one transaction, under the run lock."""
    from .history import APPLIED

    session, history = runner.session, runner.history
    with session.locked():
        rows = history.rows()
        if rows and not force:
            newest = max(rows.values(), key=lambda r: r.order)
            raise RefusedError(
                f"refusing to {report.action}: {runner.url} already has a seedkit history ({len(rows)} "
                f"migration{'s' if len(rows) != 1 else ''} recorded in {history.name}, newest {newest.version})",
                hint=f"{report.action} adopts a database seedkit has never migrated; to replace the recorded rows "
                     f"it would write, pass --force ('seedkit migrate status' shows what is recorded now)")
        by_number: dict[int | None, HistoryRow] = {r.number: r for r in rows.values()}
        chosen_numbers = {m.number for m, _, _ in chosen}
        report.replaced = sum(1 for n in chosen_numbers if n in by_number)
        report.recorded = [Recorded(m.version, m.name, _text(at)) for m, at, _ in chosen]
        report.pending = [m.version for m in runner.migrations
                          if m.number not in chosen_numbers and m.number not in by_number]
        if report.dry_run:
            return
        history.ensure()
        p = history.p
        with session.migration_transaction():
            for m, applied_at, ms in chosen:
                old = by_number.get(m.number)
                if old is not None:
                    history.delete(old.version)
                runner.db.execute(
                    f"INSERT INTO {history.table} (version, name, checksum, applied_at, execution_ms, status, "
                    f"statements_done, error) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, NULL)",
                    [m.version, m.name, m.checksum, _when(history, applied_at), int(ms or 0), APPLIED, 0])
                history.log(m.version, m.name, action,
                            detail=detail + (f"; replaced the row applied {old.applied_at}" if old else ""))


def _when(history: Any, value: Any) -> Any:
    """The tool's timestamp when it kept one (UTC assumed when it has no zone), else now."""
    if value is None:
        return history._now()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace(" ", "T"))
        except ValueError:
            return history._now()
    if isinstance(value, datetime):
        from datetime import timezone

        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return history.db.history_timestamp(value)
    return history._now()


def _text(value: Any) -> str | None:
    from ..db.migration import iso

    return iso(value) if value is not None else None


__all__ = ["TOOLS", "AdoptReport", "Recorded", "baseline", "import_history"]
