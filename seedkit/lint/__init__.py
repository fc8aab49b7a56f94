"""Migration lint: the operational rules that keep a migration from locking or breaking production.

Most schema changes are instant on a small table and take a long lock on a big one; teams keep
rediscovering this in production. ``lint_sql`` parses the up section of a PostgreSQL migration with
pglast (the PostgreSQL parser itself) and reports findings located at ``line:col`` in the file.
Down sections are parsed too, and only parsed (``check_down_section``): one that is not PostgreSQL
would otherwise fail only at ``migrate down``, in the middle of a rollback.

What the linter knows while it walks a migration:

- tables created in the migration being linted (rules about *existing* tables do not fire on them:
  an index on a table created three lines above needs no ``CONCURRENTLY``);
- constraints added ``NOT VALID`` in that migration (so ``VALIDATE`` in the same transaction is caught);
- across the migrations of one run (``SchemaState``): column types, partitioned tables, functions and
  their volatility, and ``CHECK (col IS NOT NULL)`` constraints that were validated, so the safe
  multi-step patterns are recognised rather than flagged.

Statements inside ``DO`` blocks run at migration time and are linted too (their positions point into
the block); function bodies do not run at migration time and are not.

A finding is suppressed by ``-- seedkit:nolint RULE reason`` on a line of the statement or in the
comment lines directly above it. Rules and their fixes are listed in ``RULES`` and docs/lint.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from ..config import Config
from ..errors import ConfigError, Location
from ..migrate import repeatable as _repeatable
from ..migrate.files import Migration, Section, discover, display_path, load_paths
from ..migrate.repeatable import Repeatable
from .report import JSON_SCHEMA, FileResult, Finding, LintReport, Suppressed
from .rules import ERROR, FINDINGS_EXIT, LEVELS, META_RULES, OFF, RULES, WARNING, Rule, register
from .schema import SchemaState


def lint_sql(sql: str, *, path: str, transactional: bool, line_offset: int = 0,
             schema: SchemaState | None = None) -> list[Finding]:
    """Lint the up section of one PostgreSQL migration.

    ``line_offset`` is the number of file lines before the section (the section's first line is file
    line ``line_offset + 1``). ``schema`` carries facts from earlier migrations of the same run.
    Returns the findings that are not suppressed, in file order; see ``lint_section`` for both.
    """
    return lint_section(sql, path=path, transactional=transactional, line_offset=line_offset,
                        schema=schema)[0]


def lint_section(sql: str, *, path: str, transactional: bool, line_offset: int = 0,
                 schema: SchemaState | None = None) -> tuple[list[Finding], list[Suppressed]]:
    """Like ``lint_sql``, and also return the findings that ``seedkit:nolint`` comments suppressed."""
    from .sections import lint_section as lint  # pglast is loaded here, on first use

    return lint(sql, path=path, transactional=transactional, line_offset=line_offset, schema=schema)


def check_down_section(sql: str, *, path: str, line_offset: int = 0) -> tuple[list[Finding], list[Suppressed]]:
    """Parse the down section of one PostgreSQL migration: a ``down-syntax-error`` finding where it does
    not parse (rolling back would fail there), with the suppressed ones. Nothing else is checked."""
    from .sections import check_down_section as check  # pglast is loaded here, on first use

    return check(sql, path=path, line_offset=line_offset)


def effective_levels(config: Config | None = None, *, warnings_as_errors: bool = False) -> dict[str, str]:
    """Each rule's level for this project: its default, then ``[lint]`` in seedkit.toml
    (``rule = "error" | "warning" | "off"``), then ``--warnings-as-errors`` (warnings become errors)."""
    levels = {rule.id: rule.level for rule in RULES.values()}
    table = dict(config.settings.lint) if config is not None else {}
    for rule_id, level in table.items():
        where = _lint_location(config, rule_id)
        if rule_id not in RULES:
            close = difflib.get_close_matches(rule_id, list(RULES), n=1)
            raise ConfigError(f"[lint] names an unknown rule {rule_id!r}"
                              + (f" (did you mean {close[0]!r}?)" if close else ""), location=where,
                              hint="'seedkit migrate lint --rules' lists the rules")
        if level not in LEVELS:
            raise ConfigError(f"[lint] {rule_id} = {level!r}: the level must be error, warning or off",
                              location=where)
        if rule_id == "syntax-error" and level != ERROR:
            raise ConfigError("[lint] syntax-error cannot be changed: nothing after a syntax error is checked",
                              location=where)
        levels[rule_id] = level
    if warnings_as_errors:
        levels = {k: ERROR if v == WARNING else v for k, v in levels.items()}
    return levels


def _lint_location(config: Config | None, key: str) -> Location | None:
    if config is None or config.path is None:
        return None
    from ..config import _line_of_key

    prefix = "tool.seedkit." if config.path.name == "pyproject.toml" else ""
    return Location(file=str(config.path), line=_line_of_key(config.path, ["lint", key], prefix))


def apply_levels(report: LintReport, levels: dict[str, str]) -> LintReport:
    """Set each finding's level from ``levels``; findings of rules that are off are dropped."""
    for result in report.files:
        result.findings = [dataclasses.replace(f, level=levels.get(f.rule, f.level)) for f in result.findings
                           if levels.get(f.rule, f.level) != OFF]
    return report


# -------------------------------------------------------------------------------------------------
# Migrations folders and files
# -------------------------------------------------------------------------------------------------

_DIALECT_HINT = re.compile(r"^--\s*seedkit:.*\bdialect\s*=\s*(?P<dialect>[A-Za-z]+)", re.IGNORECASE)
SQLITE_NOTE = "SQLite migration: skipped (the lint rules are about PostgreSQL locks and rewrites)"


def file_dialect(sql: str) -> str | None:
    """A ``-- seedkit: dialect=sqlite`` (or ``=postgresql``) hint in the comments that open a section."""
    for line in sql.split("\n"):
        text = line.strip()
        if not text:
            continue
        if not text.startswith("--"):
            return None
        m = _DIALECT_HINT.match(text)
        if m:
            value = m["dialect"].lower()
            return "postgresql" if value in ("postgres", "postgresql", "pg") else value
    return None


def config_dialect(config: Config, env: str | None = None, database_url: str | None = None) -> str | None:
    """The dialect of the configured database, or None when no URL can be worked out (not an error
    here: linting needs no database)."""
    try:
        return config.database_url(env, database_url).dialect
    except ConfigError:
        return None


def lint_migrations(migrations: Sequence[Migration], *, dialect: str | None = None,
                    report_versions: set[str] | None = None, repeatables: Sequence[Repeatable] = (),
                    report_repeatables: set[str] | None = None) -> LintReport:
    """Lint migrations in version order; facts from earlier ones inform later ones.

    ``dialect`` is the database the migrations are for (a file's own ``dialect=`` hint wins);
    SQLite migrations are skipped with a note. A PostgreSQL migration's down section is parsed
    (``check_down_section``), unless its own opening comments say it is SQLite. With
    ``report_versions``, only those migrations are reported; the others are still read so that what
    they created is known.
    """
    schema = SchemaState()
    report = LintReport()
    for m in sorted(migrations, key=lambda m: (m.order, m.number)):
        shown = report_versions is None or m.version in report_versions
        section = m.up
        path = display_path(section.path)
        result = FileResult(path=path, version=m.version, transactional=section.transactional)
        if (file_dialect(section.sql) or dialect or "postgresql") == "sqlite":
            result.status, result.note = "skipped", SQLITE_NOTE
        else:
            findings, suppressed = lint_section(section.sql, path=path, transactional=section.transactional,
                                                line_offset=section.line_offset - 1, schema=schema)
            result.findings, result.suppressed = findings, suppressed
            down = m.down
            # The down section is only parsed: it runs on rollback, and fails there if it is not PostgreSQL.
            if shown and down is not None and (file_dialect(down.sql) or "postgresql") != "sqlite":
                findings, suppressed = check_down_section(down.sql, path=display_path(down.path),
                                                          line_offset=down.line_offset - 1)
                result.findings += findings
                result.suppressed += suppressed
        if shown:
            report.files.append(result)
    # Repeatable migrations run after every versioned one, on tables that exist by then.
    for r in repeatables:
        if report_repeatables is None or r.name in report_repeatables:
            report.files.append(_lint_one(r.section, "repeatable", dialect, schema))
    return report


def _lint_one(section: Section, version: str | None, dialect: str | None, schema: SchemaState) -> FileResult:
    path = display_path(section.path)
    result = FileResult(path=path, version=version, transactional=section.transactional)
    if (file_dialect(section.sql) or dialect or "postgresql") == "sqlite":
        result.status, result.note = "skipped", SQLITE_NOTE
    else:
        result.findings, result.suppressed = lint_section(
            section.sql, path=path, transactional=section.transactional, line_offset=section.line_offset - 1,
            schema=schema)
    return result


def lint_paths(paths: Sequence[Path | str] | None = None, *, config: Config | None = None,
               env: str | None = None, database_url: str | None = None, dialect: str | None = None,
               pending: bool = False, warnings_as_errors: bool = False) -> LintReport:
    """Check PostgreSQL migrations for operations that lock or break production.

    Lints the files or folders given, else the configured migrations folder. Each finding is
    FILE:LINE:COL RULE LEVEL MESSAGE with a hint; the exit code is 3 when an error-level finding
    remains (as for every check). Each rule's level comes from the [lint] table of seedkit.toml
    (rule = "error", "warning" or "off"); --warnings-as-errors turns warnings into errors. Silence
    one finding with '-- seedkit:nolint RULE reason' on or directly above the statement. Down
    sections are only parsed: one that is not PostgreSQL is a down-syntax-error. SQLite
    migrations (the configured database, or a '-- seedkit: dialect=sqlite' comment) are skipped
    with a note. With pending, only migrations the database has not applied are reported.
    """
    if config is None:
        from ..config import load_config

        config = load_config()
    levels = effective_levels(config, warnings_as_errors=warnings_as_errors)
    paths, repeatables = _repeatable_paths(config, paths)
    migrations = load_paths(paths) if paths else [] if repeatables is not None else discover(config.migrations_dir)
    if repeatables is None:
        repeatables = [] if paths else _repeatable.discover(config.repeatable_dir)
    if dialect is None:
        dialect = config_dialect(config, env, database_url)
    if not pending:
        return apply_levels(lint_migrations(migrations, dialect=dialect, repeatables=repeatables), levels)
    versions, names = _pending(config, env=env, database_url=database_url)
    versions &= {m.version for m in migrations}
    if paths or not migrations:
        # Earlier migrations of the folder still tell us what exists (tables created long ago).
        known = {m.number for m in migrations}
        migrations = [*migrations, *(m for m in discover(config.migrations_dir) if m.number not in known)]
    return apply_levels(lint_migrations(migrations, dialect=dialect, report_versions=versions,
                                        repeatables=repeatables, report_repeatables=names), levels)


def _repeatable_paths(config: Config, paths: Sequence[Path | str] | None,
                      ) -> tuple[list[Path | str], list[Repeatable] | None]:
    """Split ``paths`` into versioned migrations and repeatable ones (``None``: no path named one)."""
    if not paths:
        return [], None
    folder = config.repeatable_dir
    versioned: list[Path | str] = []
    found: dict[Path, Repeatable] | None = None
    for raw in paths:
        path = Path(raw).resolve()
        if path == folder or folder in path.parents:
            found = {} if found is None else found
            for r in _repeatable.discover(path) if path.is_dir() else [_repeatable.load(path)]:
                found[r.path] = r
        else:
            versioned.append(raw)
    return versioned, None if found is None else sorted(found.values(), key=lambda r: r.path.name)


def pending_versions(config: Config, *, env: str | None = None, database_url: str | None = None) -> set[str]:
    """Versions on disk that the database has not (fully) applied, from the runner's status."""
    return _pending(config, env=env, database_url=database_url)[0]


def _pending(config: Config, *, env: str | None = None, database_url: str | None = None,
             ) -> tuple[set[str], set[str]]:
    """(versions, repeatable names) that ``up`` would apply, from the runner's status."""
    from ..migrate import status

    report = status(config, env=env, database_url=database_url)
    todo = [e for e in report.entries if e.state in ("pending", "failed")]
    return ({e.version for e in todo if e.version != _repeatable.KIND},
            {e.name for e in todo if e.version == _repeatable.KIND})

__all__ = ["ERROR", "FINDINGS_EXIT", "JSON_SCHEMA", "LEVELS", "META_RULES", "OFF", "RULES", "WARNING",
           "FileResult", "Finding", "LintReport", "Rule", "SchemaState", "Suppressed", "apply_levels",
           "check_down_section", "config_dialect", "effective_levels", "file_dialect", "lint_migrations",
           "lint_paths", "lint_section", "lint_sql", "pending_versions", "register"]
