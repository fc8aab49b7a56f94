"""Migration lint: the operational rules that keep a migration from locking or breaking production.

Most schema changes are instant on a small table and take a long lock on a big one; teams keep
rediscovering this in production. ``lint_sql`` parses the up section of a PostgreSQL migration with
pglast (the PostgreSQL parser itself) and reports findings located at ``line:col`` in the file.

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
import json
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError, Location
from .files import Migration, discover, display_path, load_paths

if TYPE_CHECKING:
    from pglast import ast, parse_sql
    from pglast.enums import AlterTableType, ConstrType, NullTestType, ObjectType, TransactionStmtKind
    from pglast.parser import ParseError, parse_plpgsql_json, scan


def _load_pglast() -> None:
    """Import pglast on first use: it takes a tenth of a second, and ``seedkit run`` never needs it."""
    if "parse_sql" in globals():
        return
    from pglast import ast, parse_sql
    from pglast.enums import AlterTableType, ConstrType, NullTestType, ObjectType, TransactionStmtKind
    from pglast.parser import ParseError, parse_plpgsql_json, scan

    globals().update(ast=ast, parse_sql=parse_sql, AlterTableType=AlterTableType, ConstrType=ConstrType,
                     NullTestType=NullTestType, ObjectType=ObjectType, TransactionStmtKind=TransactionStmtKind,
                     ParseError=ParseError, parse_plpgsql_json=parse_plpgsql_json, scan=scan)


# -------------------------------------------------------------------------------------------------
# Rules
# -------------------------------------------------------------------------------------------------

ERROR = "error"
WARNING = "warning"
OFF = "off"
LEVELS = (ERROR, WARNING, OFF)
FINDINGS_EXIT = 3  # the exit code of every check that found something (README: exit codes)


@dataclass(frozen=True)
class Rule:
    """One check: a stable id (used in output and in ``seedkit:nolint``), its level and its fix."""

    id: str
    level: str
    doc: str  # one line: what is wrong
    hint: str  # one line: what to do instead


_RULES = [
    Rule("index-not-concurrent", ERROR,
         "CREATE INDEX (or REINDEX) without CONCURRENTLY on an existing table blocks writes while it builds.",
         "use CREATE INDEX CONCURRENTLY in its own migration marked transaction:false"),
    Rule("concurrently-in-transaction", ERROR,
         "CONCURRENTLY cannot run inside a transaction block; the migration fails at run time.",
         "mark the migration '-- migrate:up transaction:false' (or '-- seedkit: transaction=false' "
         "on the first line of an up.sql) and keep only this statement in it"),
    Rule("non-transactional-statement", ERROR,
         "VACUUM, CREATE/DROP DATABASE, ALTER SYSTEM and the like cannot run inside a transaction block.",
         "move the statement to a migration marked transaction:false, or out of migrations"),
    Rule("transaction-control", ERROR,
         "BEGIN/COMMIT/ROLLBACK inside a transactional migration breaks its all-or-nothing guarantee.",
         "remove it: the runner wraps the migration in one transaction (use transaction:false to manage "
         "transactions yourself)"),
    Rule("constraint-not-valid", ERROR,
         "Adding a FOREIGN KEY or CHECK to an existing table scans it under a lock that blocks writes.",
         "ADD CONSTRAINT … NOT VALID here, then ALTER TABLE … VALIDATE CONSTRAINT in a later migration"),
    Rule("validate-same-migration", ERROR,
         "VALIDATE CONSTRAINT in the same transaction as its NOT VALID add holds that lock while scanning.",
         "move VALIDATE CONSTRAINT to the next migration"),
    Rule("set-not-null", ERROR,
         "SET NOT NULL on an existing table scans it under an ACCESS EXCLUSIVE lock (reads and writes wait).",
         "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT NULL "
         "(PostgreSQL 12+ skips the scan) and drop the check"),
    Rule("column-type-change", ERROR,
         "ALTER COLUMN … TYPE rewrites the table under an ACCESS EXCLUSIVE lock and breaks running clients.",
         "add a new column, backfill it in batches outside the migration, switch the app, drop the old one"),
    Rule("volatile-default", ERROR,
         "ADD COLUMN with a volatile default, serial, identity or stored generated column: a table rewrite.",
         "add the column without a default (or with a constant), SET DEFAULT for new rows, then backfill "
         "in batches"),
    Rule("add-required-column", ERROR,
         "ADD COLUMN … NOT NULL without a default fails on a table that has rows.",
         "add it nullable (or with a constant DEFAULT), backfill, then enforce NOT NULL safely"),
    Rule("add-unique-without-index", ERROR,
         "ADD UNIQUE/PRIMARY KEY on an existing table builds its index under an ACCESS EXCLUSIVE lock.",
         "CREATE UNIQUE INDEX CONCURRENTLY (transaction:false), then ADD CONSTRAINT … UNIQUE USING INDEX"),
    Rule("backfill-in-migration", ERROR,
         "UPDATE/DELETE/INSERT … SELECT/MERGE on an existing table: a long write in the migration's lock.",
         "run backfills in batches outside migrations (a script or job), after the schema change ships"),
    Rule("seed-data-in-migration", ERROR,
         "INSERT … VALUES in a migration: seed data belongs in seeds, not in schema history.",
         "move the rows to a fixture under seeds/ (seedkit run) so they load idempotently"),
    Rule("drop-table", WARNING,
         "DROP TABLE breaks any running code that still reads or writes the table.",
         "stop using the table in the app first, deploy, then drop it in a later migration"),
    Rule("drop-column", WARNING,
         "DROP COLUMN breaks any running code that still reads or writes the column.",
         "stop using the column in the app first, deploy, then drop it in a later migration"),
    Rule("rename-table", ERROR,
         "Renaming a table breaks the running app the moment the migration commits.",
         "roll forward in steps: create the new table (or a view), dual-write, switch reads, drop the old"),
    Rule("rename-column", ERROR,
         "Renaming a column breaks the running app the moment the migration commits.",
         "roll forward in steps: add the new column, dual-write, backfill, switch reads, drop the old"),
    Rule("drop-index-not-concurrent", WARNING,
         "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table.",
         "use DROP INDEX CONCURRENTLY in a migration marked transaction:false"),
    Rule("syntax-error", ERROR,
         "The migration does not parse as PostgreSQL; nothing after the error was checked.",
         "fix the SQL (or, for a SQLite migration, mark it '-- seedkit: dialect=sqlite')"),
    Rule("nolint-missing-reason", ERROR,
         "A seedkit:nolint comment must say why the finding is acceptable.",
         "write '-- seedkit:nolint RULE reason', e.g. "
         "'-- seedkit:nolint drop-column the app stopped using it in v2'"),
    Rule("nolint-unknown-rule", ERROR,
         "A seedkit:nolint comment names a rule that does not exist.",
         "use a rule id from 'seedkit migrate lint --rules' (docs/lint.md)"),
    Rule("nolint-unused", WARNING,
         "A seedkit:nolint comment that suppresses nothing.",
         "remove it, or move it onto (or directly above) the statement it is meant for"),
]
RULES: dict[str, Rule] = {r.id: r for r in _RULES}
META_RULES = frozenset({"syntax-error", "nolint-missing-reason", "nolint-unknown-rule", "nolint-unused"})


# -------------------------------------------------------------------------------------------------
# Findings and reports
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    path: str
    line: int  # 1-based, in the file
    column: int  # 1-based, in characters
    rule: str
    level: str
    message: str
    hint: str

    def format(self) -> str:
        """``file:line:col RULE level message`` (the hint goes on the next line)."""
        return f"{self.path}:{self.line}:{self.column} {self.rule} {self.level} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Suppressed:
    finding: Finding
    reason: str | None
    line: int  # where the seedkit:nolint comment is

    def to_dict(self) -> dict[str, Any]:
        return {**self.finding.to_dict(), "reason": self.reason, "nolint_line": self.line}


@dataclass
class FileResult:
    """What linting one migration produced."""

    path: str
    version: str | None = None
    transactional: bool = True
    status: str = "linted"  # "linted" | "skipped"
    note: str | None = None
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)


@dataclass
class LintReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.files for f in r.findings]

    @property
    def suppressed(self) -> list[Suppressed]:
        return [s for r in self.files for s in r.suppressed]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.level == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level == WARNING)

    @property
    def exit_code(self) -> int:
        """3 when an error-level finding remains (a check found a problem, as ``status --exit-code``,
        ``verify`` and ``run --check`` say it), else 0."""
        return FINDINGS_EXIT if self.errors else 0

    def summary(self) -> str:
        linted = sum(1 for r in self.files if r.status == "linted")
        skipped = len(self.files) - linted
        files = f"{len(self.files)} migration{'s' if len(self.files) != 1 else ''} checked"
        if skipped:
            files += f" ({skipped} skipped)"
        counts = f"{_plural(self.errors, 'error')}, {_plural(self.warnings, 'warning')}"
        if self.suppressed:
            counts += f", {len(self.suppressed)} suppressed"
        return f"{files}: {counts}"

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document; its shape is ``JSON_SCHEMA`` (and docs/lint.md)."""
        return {
            "version": 1,
            "summary": {
                "files": len(self.files),
                "linted": sum(1 for r in self.files if r.status == "linted"),
                "skipped": sum(1 for r in self.files if r.status == "skipped"),
                "errors": self.errors,
                "warnings": self.warnings,
                "suppressed": len(self.suppressed),
                "exit_code": self.exit_code,
            },
            "files": [{"path": r.path, "version": r.version, "transactional": r.transactional,
                       "status": r.status, "note": r.note,
                       "errors": sum(1 for f in r.findings if f.level == ERROR),
                       "warnings": sum(1 for f in r.findings if f.level == WARNING)} for r in self.files],
            "findings": [f.to_dict() for f in self.findings],
            "suppressed": [s.to_dict() for s in self.suppressed],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


_FINDING_PROPS = {
    "path": {"type": "string"},
    "line": {"type": "integer", "minimum": 1},
    "column": {"type": "integer", "minimum": 1},
    "rule": {"type": "string", "enum": sorted(RULES)},
    "level": {"type": "string", "enum": [ERROR, WARNING]},
    "message": {"type": "string"},
    "hint": {"type": "string"},
}
_COUNT = {"type": "integer", "minimum": 0}
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "seedkit migrate lint --json",
    "type": "object",
    "required": ["version", "summary", "files", "findings", "suppressed"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "summary": {
            "type": "object", "additionalProperties": False,
            "required": ["files", "linted", "skipped", "errors", "warnings", "suppressed", "exit_code"],
            "properties": {"files": _COUNT, "linted": _COUNT, "skipped": _COUNT, "errors": _COUNT,
                           "warnings": _COUNT, "suppressed": _COUNT, "exit_code": {"enum": [0, FINDINGS_EXIT]}},
        },
        "files": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["path", "version", "transactional", "status", "note", "errors", "warnings"],
            "properties": {"path": {"type": "string"}, "version": {"type": ["string", "null"]},
                           "transactional": {"type": "boolean"},
                           "status": {"enum": ["linted", "skipped"]}, "note": {"type": ["string", "null"]},
                           "errors": _COUNT, "warnings": _COUNT},
        }},
        "findings": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": sorted(_FINDING_PROPS),
            "properties": _FINDING_PROPS,
        }},
        "suppressed": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": [*sorted(_FINDING_PROPS), "reason", "nolint_line"],
            "properties": {**_FINDING_PROPS, "reason": {"type": ["string", "null"]},
                           "nolint_line": {"type": "integer", "minimum": 1}},
        }},
    },
}


# -------------------------------------------------------------------------------------------------
# What earlier statements and migrations told us
# -------------------------------------------------------------------------------------------------

Key = tuple[str | None, str]  # (schema or None, name), as PostgreSQL folds them


def _key(rv: ast.RangeVar) -> Key:
    return (rv.schemaname, rv.relname)


def _show(key: Key) -> str:
    return f"{key[0]}.{key[1]}" if key[0] else key[1]


def _same(a: Key, b: Key) -> bool:
    """Names match when the relation names do and the schemas agree where both are given."""
    return a[1] == b[1] and (a[0] is None or b[0] is None or a[0] == b[0])


class _Tables:
    """A set of relation keys with schema-tolerant lookup (``t`` matches ``public.t``)."""

    def __init__(self) -> None:
        self._by_name: dict[str, list[Key]] = {}

    def add(self, key: Key) -> None:
        keys = self._by_name.setdefault(key[1], [])
        if key not in keys:
            keys.append(key)

    def find(self, key: Key) -> Key | None:
        return next((k for k in self._by_name.get(key[1], ()) if _same(k, key)), None)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and self.find(key) is not None  # type: ignore[arg-type]

    def discard(self, key: Key) -> None:
        found = self.find(key)
        if found is not None:
            self._by_name[found[1]].remove(found)

    def rename(self, key: Key, new: str) -> None:
        found = self.find(key)
        if found is not None:
            self.discard(found)
            self.add((found[0], new))


@dataclass
class SchemaState:
    """Facts learned from the migrations linted so far in one run (in version order).

    Only used to avoid false alarms on the safe multi-step patterns; an empty state is always safe.
    """

    tables: _Tables = field(default_factory=_Tables)  # every table seen created
    columns: dict[Key, dict[str, ast.TypeName]] = field(default_factory=dict)
    partitioned: _Tables = field(default_factory=_Tables)
    functions: dict[str, str] = field(default_factory=dict)  # name -> "immutable" | "stable" | "volatile"
    # CHECK (col IS NOT NULL) constraints: (table, name) -> (column, validated)
    notnull_checks: dict[tuple[Key, str], tuple[str, bool]] = field(default_factory=dict)

    def create_table(self, key: Key) -> None:
        self.drop_table(key)
        self.tables.add(key)
        self.columns[key] = {}

    def drop_table(self, key: Key) -> None:
        found = self.tables.find(key)
        if found is not None:
            self.tables.discard(found)
            self.columns.pop(found, None)

    def rename_table(self, key: Key, new: str) -> None:
        found = self.tables.find(key)
        if found is not None:
            cols = self.columns.pop(found, {})
            self.tables.rename(found, new)
            self.columns[(found[0], new)] = cols

    def column_type(self, table: Key, column: str) -> ast.TypeName | None:
        found = self.tables.find(table)
        return self.columns.get(found, {}).get(column) if found is not None else None

    def set_column(self, table: Key, column: str, type_name: ast.TypeName | None) -> None:
        found = self.tables.find(table)
        if found is None:
            self.create_table(table)
            found = table
        if type_name is None:
            self.columns[found].pop(column, None)
        else:
            self.columns[found][column] = type_name

    def has_validated_notnull(self, table: Key, column: str) -> bool:
        return any(_same(t, table) and col == column and valid
                   for (t, _), (col, valid) in self.notnull_checks.items())


@dataclass
class _MigrationState:
    """Facts about the migration being linted."""

    transactional: bool
    created: _Tables = field(default_factory=_Tables)
    created_indexes: set[str] = field(default_factory=set)
    not_valid: dict[tuple[Key, str], int] = field(default_factory=dict)  # (table, constraint) -> line


# -------------------------------------------------------------------------------------------------
# Source positions
# -------------------------------------------------------------------------------------------------


class _Source:
    """The SQL of one section and how to turn character offsets into file lines and columns."""

    def __init__(self, sql: str, path: str, line_offset: int):
        self.sql = sql
        self.path = path
        self.line_offset = line_offset  # file line of the section's first line is line_offset + 1
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", sql)]
        self.lines = sql.split("\n")

    def position(self, offset: int) -> tuple[int, int]:
        """Section offset -> (file line, 1-based column)."""
        offset = max(0, min(offset, len(self.sql)))
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1 + self.line_offset, offset - self.line_starts[lo] + 1

    def section_line(self, file_line: int) -> str:
        i = file_line - self.line_offset - 1
        return self.lines[i] if 0 <= i < len(self.lines) else ""


@dataclass
class _Stmt:
    """One statement to check: its node and where its text sits in the section."""

    node: ast.Node
    start: int  # section offset of the first token
    end: int  # section offset just after the last token
    loc_base: int | None  # add to a node's ``location`` to get a section offset (None: unknown)
    span: tuple[int, int]  # first and last file line, for seedkit:nolint


@dataclass
class _Raw:
    offset: int
    rule: str
    message: str
    span: tuple[int, int]
    hint: str | None = None


class _Checker:
    def __init__(self, src: _Source, state: _MigrationState, schema: SchemaState):
        self.src = src
        self.state = state
        self.schema = schema
        self.raw: list[_Raw] = []
        self.tokens = _safe_scan(src.sql)
        self.do_blocks: list[tuple[_Stmt, ast.DoStmt]] = []

    # -- reporting ---------------------------------------------------------------------------------
    def add(self, stmt: _Stmt, offset: int | None, rule: str, message: str, hint: str | None = None) -> None:
        self.raw.append(_Raw(stmt.start if offset is None else offset, rule, message, stmt.span, hint))

    def at(self, stmt: _Stmt, node: Any) -> int | None:
        """Section offset of a node, when the parser recorded one."""
        loc = getattr(node, "location", None)
        if stmt.loc_base is None or not isinstance(loc, int) or loc < 0:
            return None
        return stmt.loc_base + loc

    def existing(self, key: Key) -> bool:
        return key not in self.state.created

    # -- statements --------------------------------------------------------------------------------
    def check(self, stmt: _Stmt) -> None:
        node = stmt.node
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is not None:
            handler(stmt, node)

    def _CreateStmt(self, stmt: _Stmt, node: ast.CreateStmt) -> None:
        key = _key(node.relation)
        self.state.created.add(key)
        self.schema.create_table(key)
        if node.partspec is not None:
            self.schema.partitioned.add(key)
        for elt in node.tableElts or ():
            if isinstance(elt, ast.ColumnDef) and elt.colname and elt.typeName is not None:
                self.schema.set_column(key, elt.colname, elt.typeName)
            if isinstance(elt, ast.Constraint):
                self._remember_notnull_check(key, elt, validated=True)

    def _CreateTableAsStmt(self, stmt: _Stmt, node: ast.CreateTableAsStmt) -> None:
        self.state.created.add(_key(node.into.rel))

    def _SelectStmt(self, stmt: _Stmt, node: ast.SelectStmt) -> None:
        if node.intoClause is not None:  # SELECT … INTO new_table
            self.state.created.add(_key(node.intoClause.rel))

    def _CreateFunctionStmt(self, stmt: _Stmt, node: ast.CreateFunctionStmt) -> None:
        volatility = "volatile"
        for opt in node.options or ():
            if opt.defname == "volatility" and isinstance(opt.arg, ast.String):
                volatility = opt.arg.sval
        self.schema.functions[_strings(node.funcname)[-1]] = volatility

    def _IndexStmt(self, stmt: _Stmt, node: ast.IndexStmt) -> None:
        key = _key(node.relation)
        if node.idxname:
            self.state.created_indexes.add(node.idxname)
        what = "CREATE UNIQUE INDEX" if node.unique else "CREATE INDEX"
        if node.concurrent:
            if self.state.transactional:
                self.add(stmt, None, "concurrently-in-transaction",
                         f"{what} CONCURRENTLY cannot run inside a transaction block")
            return
        if not self.existing(key):  # a table created in this migration is empty
            return
        if not node.relation.inh and (key in self.schema.partitioned or key not in self.schema.tables):
            # ON ONLY a partitioned parent creates an invalid index and builds nothing (a table not
            # known to be a plain one is taken to be partitioned: ONLY means nothing anywhere else)
            return
        if key in self.schema.partitioned:
            self.add(stmt, None, "index-not-concurrent",
                     f"{what} on partitioned table {_show(key)} locks every partition against writes",
                     "CREATE INDEX … ON ONLY the parent, CREATE INDEX CONCURRENTLY on each partition, "
                     "then ALTER INDEX … ATTACH PARTITION")
            return
        self.add(stmt, None, "index-not-concurrent",
                 f"{what} on existing table {_show(key)} without CONCURRENTLY blocks writes while it builds")

    def _ReindexStmt(self, stmt: _Stmt, node: ast.ReindexStmt) -> None:
        concurrent = any(p.defname == "concurrently" for p in node.params or ())
        if concurrent:
            if self.state.transactional:
                self.add(stmt, None, "concurrently-in-transaction",
                         "REINDEX CONCURRENTLY cannot run inside a transaction block")
            return
        if node.relation is not None and not self.existing(_key(node.relation)):
            return
        target = _show(_key(node.relation)) if node.relation is not None else (node.name or "database")
        self.add(stmt, None, "index-not-concurrent",
                 f"REINDEX {target} without CONCURRENTLY blocks writes while it rebuilds",
                 "use REINDEX … CONCURRENTLY in a migration marked transaction:false")

    def _DropStmt(self, stmt: _Stmt, node: ast.DropStmt) -> None:
        kind = node.removeType
        if kind == ObjectType.OBJECT_TABLE:
            for obj in node.objects or ():
                names = _strings(obj)
                key: Key = (names[-2] if len(names) > 1 else None, names[-1])
                if self.existing(key):
                    self.add(stmt, None, "drop-table", f"dropping table {_show(key)} breaks running code "
                             "that still uses it")
                self.state.created.discard(key)
                self.schema.drop_table(key)
        elif kind == ObjectType.OBJECT_INDEX:
            if node.concurrent:
                if self.state.transactional:
                    self.add(stmt, None, "concurrently-in-transaction",
                             "DROP INDEX CONCURRENTLY cannot run inside a transaction block")
                return
            names = [_strings(obj)[-1] for obj in node.objects or ()]
            if any(n not in self.state.created_indexes for n in names):
                self.add(stmt, None, "drop-index-not-concurrent",
                         f"DROP INDEX {', '.join(names)} without CONCURRENTLY takes an ACCESS EXCLUSIVE "
                         "lock on its table")

    def _DropdbStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "DROP DATABASE")

    def _CreatedbStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "CREATE DATABASE")

    def _VacuumStmt(self, stmt: _Stmt, node: ast.VacuumStmt) -> None:
        if node.is_vacuumcmd:
            self._no_transaction(stmt, "VACUUM")

    def _AlterSystemStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "ALTER SYSTEM")

    def _CreateTableSpaceStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "CREATE TABLESPACE")

    def _DropTableSpaceStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "DROP TABLESPACE")

    def _no_transaction(self, stmt: _Stmt, what: str) -> None:
        if self.state.transactional:
            self.add(stmt, None, "non-transactional-statement",
                     f"{what} cannot run inside a transaction block")

    def _TransactionStmt(self, stmt: _Stmt, node: ast.TransactionStmt) -> None:
        if not self.state.transactional:
            return
        word = {TransactionStmtKind.TRANS_STMT_BEGIN: "BEGIN", TransactionStmtKind.TRANS_STMT_START: "START "
                "TRANSACTION", TransactionStmtKind.TRANS_STMT_COMMIT: "COMMIT",
                TransactionStmtKind.TRANS_STMT_ROLLBACK: "ROLLBACK"}.get(node.kind)
        if word:
            self.add(stmt, None, "transaction-control",
                     f"{word} inside a transactional migration: the runner already manages the transaction")

    def _RenameStmt(self, stmt: _Stmt, node: ast.RenameStmt) -> None:
        if node.relation is None:
            return
        key = _key(node.relation)
        if node.renameType == ObjectType.OBJECT_TABLE:
            if self.existing(key):
                self.add(stmt, None, "rename-table",
                         f"renaming table {_show(key)} to {node.newname} breaks running code that uses the "
                         "old name")
            self.state.created.rename(key, node.newname)
            self.schema.rename_table(key, node.newname)
        elif node.renameType == ObjectType.OBJECT_COLUMN and node.relationType == ObjectType.OBJECT_TABLE:
            if self.existing(key):
                self.add(stmt, None, "rename-column",
                         f"renaming column {_show(key)}.{node.subname} to {node.newname} breaks running code "
                         "that uses the old name")
            old = self.schema.column_type(key, node.subname)
            self.schema.set_column(key, node.subname, None)
            self.schema.set_column(key, node.newname, old)

    # -- DML -----------------------------------------------------------------------------------
    def _UpdateStmt(self, stmt: _Stmt, node: ast.UpdateStmt) -> None:
        self._backfill(stmt, node.relation, "UPDATE")

    def _DeleteStmt(self, stmt: _Stmt, node: ast.DeleteStmt) -> None:
        self._backfill(stmt, node.relation, "DELETE")

    def _MergeStmt(self, stmt: _Stmt, node: ast.MergeStmt) -> None:
        self._backfill(stmt, node.relation, "MERGE")

    def _InsertStmt(self, stmt: _Stmt, node: ast.InsertStmt) -> None:
        key = _key(node.relation)
        select = node.selectStmt
        if select is None or not any(isinstance(n, ast.RangeVar) for n in _walk(select)):
            self.add(stmt, None, "seed-data-in-migration",
                     f"INSERT of literal rows into {_show(key)}: seed data belongs in seeds, not migrations")
        else:
            self._backfill(stmt, node.relation, "INSERT … SELECT")

    def _backfill(self, stmt: _Stmt, relation: ast.RangeVar, what: str) -> None:
        key = _key(relation)
        if self.existing(key) and relation.relpersistence != "t":
            self.add(stmt, None, "backfill-in-migration",
                     f"{what} on existing table {_show(key)}: a backfill holds row locks for the whole "
                     "migration")

    # -- DO blocks ---------------------------------------------------------------------------------
    def _DoStmt(self, stmt: _Stmt, node: ast.DoStmt) -> None:
        self.do_blocks.append((stmt, node))

    # -- ALTER TABLE -------------------------------------------------------------------------------
    def _AlterTableStmt(self, stmt: _Stmt, node: ast.AlterTableStmt) -> None:
        if node.objtype != ObjectType.OBJECT_TABLE:
            return
        key = _key(node.relation)
        existing = self.existing(key)
        starts = self._cmd_starts(stmt, node)
        for cmd, start in zip(node.cmds, starts, strict=True):
            self._alter_cmd(stmt, key, existing, cmd, start)

    def _alter_cmd(self, stmt: _Stmt, key: Key, existing: bool, cmd: ast.AlterTableCmd, at: int) -> None:
        sub = cmd.subtype
        table = _show(key)
        if sub == AlterTableType.AT_AddColumn:
            self._add_column(stmt, key, existing, cmd.def_, at)
        elif sub == AlterTableType.AT_AddConstraint:
            self._add_constraint(stmt, key, existing, cmd.def_, at)
        elif sub == AlterTableType.AT_ValidateConstraint:
            added = self.state.not_valid.get((key, cmd.name))
            if added is None:
                added = next((line for (k, n), line in self.state.not_valid.items()
                              if n == cmd.name and _same(k, key)), None)
            if added is not None and self.state.transactional:
                self.add(stmt, at, "validate-same-migration",
                         f"VALIDATE CONSTRAINT {cmd.name} in the same transaction as its NOT VALID add "
                         f"(line {added}) keeps that lock while {table} is scanned")
            for (t, name), (col, _) in list(self.schema.notnull_checks.items()):
                if name == cmd.name and _same(t, key):
                    self.schema.notnull_checks[(t, name)] = (col, True)
        elif sub == AlterTableType.AT_SetNotNull:
            if existing and not self.schema.has_validated_notnull(key, cmd.name):
                self.add(stmt, at, "set-not-null",
                         f"SET NOT NULL on {table}.{cmd.name} scans the table under an ACCESS EXCLUSIVE lock")
        elif sub == AlterTableType.AT_AlterColumnType:
            new = cmd.def_.typeName
            old = self.schema.column_type(key, cmd.name)
            if existing and not (cmd.def_.raw_default is None and _binary_coercible(old, new)):
                self.add(stmt, at, "column-type-change",
                         f"changing the type of {table}.{cmd.name} to {_type_name(new)} rewrites the table "
                         "under an ACCESS EXCLUSIVE lock")
            self.schema.set_column(key, cmd.name, new)
        elif sub == AlterTableType.AT_DropColumn:
            if existing:
                self.add(stmt, at, "drop-column",
                         f"dropping column {table}.{cmd.name} breaks running code that still uses it")
            self.schema.set_column(key, cmd.name, None)
        elif (sub == AlterTableType.AT_DetachPartition and getattr(cmd.def_, "concurrent", False)
              and self.state.transactional):
                self.add(stmt, at, "concurrently-in-transaction",
                         "DETACH PARTITION … CONCURRENTLY cannot run inside a transaction block")

    def _add_column(self, stmt: _Stmt, key: Key, existing: bool, col: ast.ColumnDef, at: int) -> None:
        if col.typeName is not None and col.colname:
            self.schema.set_column(key, col.colname, col.typeName)
        if not existing:
            return
        table, name = _show(key), f"{_show(key)}.{col.colname}"
        constraints = list(col.constraints or ())
        default = next((c.raw_expr for c in constraints if c.contype == ConstrType.CONSTR_DEFAULT), None)
        type_name = _type_name(col.typeName) if col.typeName is not None else ""
        fills = False  # the column gets a value for every existing row
        if type_name in _SERIALS:
            self.add(stmt, at, "volatile-default",
                     f"adding {type_name} column {name} fills every row from a sequence: a table rewrite "
                     "under an ACCESS EXCLUSIVE lock")
            fills = True
        for c in constraints:
            if c.contype == ConstrType.CONSTR_IDENTITY:
                self.add(stmt, at, "volatile-default",
                         f"adding identity column {name} rewrites the table under an ACCESS EXCLUSIVE lock")
                fills = True
            elif c.contype == ConstrType.CONSTR_GENERATED:
                self.add(stmt, at, "volatile-default",
                         f"adding stored generated column {name} rewrites the table under an ACCESS "
                         "EXCLUSIVE lock")
                fills = True
            elif c.contype == ConstrType.CONSTR_FOREIGN:
                self.add(stmt, at, "constraint-not-valid",
                         f"column {name} REFERENCES {_show(_key(c.pktable))}: the foreign key is validated "
                         f"while {table} and {_show(_key(c.pktable))} are locked against writes",
                         "add the column without REFERENCES, then ADD CONSTRAINT … FOREIGN KEY … NOT VALID "
                         "and VALIDATE it in a later migration")
            elif c.contype == ConstrType.CONSTR_CHECK:
                self.add(stmt, at, "constraint-not-valid",
                         f"column {name} has an inline CHECK: {table} is scanned under an ACCESS EXCLUSIVE "
                         "lock to validate it",
                         "add the column, then ADD CONSTRAINT … CHECK … NOT VALID and VALIDATE it in a "
                         "later migration")
            elif c.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                kind = "PRIMARY KEY" if c.contype == ConstrType.CONSTR_PRIMARY else "UNIQUE"
                self.add(stmt, at, "add-unique-without-index",
                         f"column {name} {kind} builds its index under an ACCESS EXCLUSIVE lock")
        if default is not None:
            volatile = self._volatile(default)
            if volatile:
                self.add(stmt, at, "volatile-default",
                         f"adding {name} with volatile default {volatile} rewrites the table under an "
                         "ACCESS EXCLUSIVE lock")
            if not (isinstance(default, ast.A_Const) and default.isnull):
                fills = True
        if not fills and any(c.contype == ConstrType.CONSTR_NOTNULL for c in constraints):
            self.add(stmt, at, "add-required-column",
                     f"adding NOT NULL column {name} without a default fails when {table} has rows")

    def _add_constraint(self, stmt: _Stmt, key: Key, existing: bool, con: ast.Constraint, at: int) -> None:
        table = _show(key)
        label = f"constraint {con.conname}" if con.conname else "a constraint"
        self._remember_notnull_check(key, con, validated=not con.skip_validation)
        if con.contype in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK):
            kind = "FOREIGN KEY" if con.contype == ConstrType.CONSTR_FOREIGN else "CHECK"
            if con.skip_validation:
                if existing and con.conname:
                    line = self.src.position(at)[0]
                    self.state.not_valid[(key, con.conname)] = line
                return
            if existing:
                lock = ("locks both tables against writes" if kind == "FOREIGN KEY"
                        else "holds an ACCESS EXCLUSIVE lock")
                self.add(stmt, at, "constraint-not-valid",
                         f"adding {kind} {label} to existing table {table} validates every row and {lock} "
                         "while it does")
        elif con.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE) and existing \
                and not con.indexname:
            kind = "PRIMARY KEY" if con.contype == ConstrType.CONSTR_PRIMARY else "UNIQUE"
            self.add(stmt, at, "add-unique-without-index",
                     f"adding {kind} {label} to existing table {table} builds its index under an ACCESS "
                     "EXCLUSIVE lock")

    def _remember_notnull_check(self, key: Key, con: ast.Constraint, *, validated: bool) -> None:
        expr = con.raw_expr
        if (con.contype == ConstrType.CONSTR_CHECK and isinstance(expr, ast.NullTest)
                and expr.nulltesttype == NullTestType.IS_NOT_NULL and isinstance(expr.arg, ast.ColumnRef)):
            column = _strings(expr.arg.fields)[-1]
            self.schema.notnull_checks[(key, con.conname or f"<{column}>")] = (column, validated)

    def _volatile(self, expr: ast.Node) -> str | None:
        """The first function call in ``expr`` that is (or may be) volatile, as text; else None."""
        for node in _walk(expr):
            if isinstance(node, ast.FuncCall):
                name = _strings(node.funcname)[-1]
                known = self.schema.functions.get(name)
                if known in ("immutable", "stable"):
                    continue
                if known is None and name in _NON_VOLATILE:
                    continue
                return f"{name}()"
        return None

    def _cmd_starts(self, stmt: _Stmt, node: ast.AlterTableStmt) -> list[int]:
        """Section offsets of each ALTER TABLE sub-command (after the table name, split at top-level
        commas); the statement start when the text cannot be matched."""
        cmds = list(node.cmds or ())
        fallback = [stmt.start] * len(cmds)
        rel_at = self.at(stmt, node.relation)
        if rel_at is None:
            return fallback
        # Scan the statement's own text: inside a DO block the section's tokens are one string.
        text = self.src.sql[stmt.start:stmt.end]
        toks = [_Tok(t.start + stmt.start, t.end + stmt.start, t.name) for t in _safe_scan(text)]
        toks = [t for t in toks if rel_at <= t.start and not _is_comment(t)]
        if not toks:
            return fallback
        i = 1  # the first token is the (first part of the) table name
        while i + 1 < len(toks) and toks[i].name == "ASCII_46":  # schema . name
            i += 2
        if i < len(toks) and toks[i].name == "ASCII_42":  # ONLY-less inheritance star: t *
            i += 1
        if i >= len(toks):
            return fallback
        starts = [toks[i].start]
        depth = 0
        for j in range(i, len(toks)):
            name = toks[j].name
            if name == "ASCII_40":
                depth += 1
            elif name == "ASCII_41":
                depth -= 1
            elif name == "ASCII_44" and depth == 0 and j + 1 < len(toks):
                starts.append(toks[j + 1].start)
        return starts if len(starts) == len(cmds) else fallback


def _words(text: str) -> list[str]:
    return text.split()


# Built-in functions that are immutable or stable and show up in column defaults. Anything else is
# treated as volatile (PostgreSQL's own default for CREATE FUNCTION) unless an earlier migration in the
# run created it IMMUTABLE or STABLE.
_NON_VOLATILE = frozenset(_words("""
now transaction_timestamp statement_timestamp current_date current_time current_timestamp localtime
localtimestamp timezone date_trunc date_part extract make_date make_time make_timestamp make_timestamptz
make_interval to_timestamp to_date to_char to_number age lower upper initcap trim btrim ltrim rtrim
substring substr replace left right length concat concat_ws format md5 sha224 sha256 sha384 sha512 encode
decode abs round floor ceil ceiling trunc greatest least coalesce nullif jsonb_build_object
jsonb_build_array json_build_object json_build_array to_json to_jsonb array_to_json row_to_json
jsonb_object json_object array_fill cardinality string_to_array array_length split_part int4range
int8range numrange tsrange tstzrange daterange current_setting current_user session_user current_schema
current_database inet cidr uuid_nil uuid_ns_dns uuid_ns_url uuid_ns_oid uuid_ns_x500 point box
"""))

_SERIALS = ("serial", "serial4", "bigserial", "serial8", "smallserial", "serial2")


def _type_name(t: ast.TypeName | None) -> str:
    if t is None:
        return "?"
    names = [n for n in _strings(t.names) if n != "pg_catalog"]
    base = {"int4": "integer", "int8": "bigint", "int2": "smallint", "float8": "double precision",
            "bool": "boolean", "varchar": "varchar", "bpchar": "char"}.get(names[-1], names[-1])
    mods = [str(m.val.ival) for m in t.typmods or () if isinstance(m, ast.A_Const)
            and isinstance(m.val, ast.Integer)]
    text = base + (f"({','.join(mods)})" if mods else "")
    return text + "[]" * len(t.arrayBounds or ())


def _type_parts(t: ast.TypeName) -> tuple[str, list[int], int]:
    names = [n for n in _strings(t.names) if n != "pg_catalog"]
    mods = [m.val.ival for m in t.typmods or ()
            if isinstance(m, ast.A_Const) and isinstance(m.val, ast.Integer)]
    return names[-1], mods, len(t.arrayBounds or ())


def _binary_coercible(old: ast.TypeName | None, new: ast.TypeName) -> bool:
    """A type change PostgreSQL does without rewriting the table (widening varchar/numeric, to text)."""
    if old is None:
        return False
    o_name, o_mods, o_arr = _type_parts(old)
    n_name, n_mods, n_arr = _type_parts(new)
    if o_arr != n_arr:
        return False
    texts = ("varchar", "text")
    if o_name in texts and n_name == "text":
        return True
    if o_name in texts and n_name == "varchar":
        return not n_mods or (o_name == "varchar" and bool(o_mods) and n_mods[0] >= o_mods[0])
    if o_name == "numeric" and n_name == "numeric":
        if not n_mods:
            return True
        if not o_mods:
            return False
        o_scale = o_mods[1] if len(o_mods) > 1 else 0
        n_scale = n_mods[1] if len(n_mods) > 1 else 0
        return n_scale == o_scale and n_mods[0] >= o_mods[0]
    if o_name == "varbit" and n_name == "varbit":
        return not n_mods or (bool(o_mods) and n_mods[0] >= o_mods[0])
    return o_name == "cidr" and n_name == "inet"


def _strings(items: Iterable[Any] | None) -> list[str]:
    return [i.sval for i in items or () if isinstance(i, ast.String)]


def _walk(node: Any) -> Iterator[ast.Node]:
    """Every AST node under ``node`` (itself included)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            stack.extend(getattr(item, name) for name in item)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


@dataclass(frozen=True)
class _Tok:
    start: int
    end: int
    name: str


def _is_comment(tok: Any) -> bool:
    return tok.name in ("SQL_COMMENT", "C_COMMENT")


def _safe_scan(sql: str) -> list[Any]:
    try:
        return list(scan(sql))
    except Exception:  # an unterminated string: parse_sql reports it as a syntax error
        return []


# -------------------------------------------------------------------------------------------------
# Suppression comments
# -------------------------------------------------------------------------------------------------

_NOLINT = re.compile(r"--\s*seedkit:\s*nolint\b(?P<rest>.*)$", re.IGNORECASE)


@dataclass
class _Directive:
    line: int  # file line
    offset: int  # section offset of the comment
    rules: list[str]
    reason: str | None
    used: bool = False


def _parse_directive(text: str, line: int, offset: int) -> _Directive | None:
    m = _NOLINT.search(text)
    if m is None:
        return None
    rest = m["rest"].strip()
    words = rest.split(None, 1)
    rules = [r.strip().rstrip(":") for r in words[0].split(",") if r.strip()] if words else []
    reason = words[1].strip().lstrip("-—:").strip() if len(words) > 1 else ""
    return _Directive(line=line, offset=offset, rules=rules,
                      reason=reason if re.search(r"\w", reason) else None)


def _directives(src: _Source, tokens: Sequence[Any],
                do_bodies: Sequence[tuple[int, int]]) -> list[_Directive]:
    """``seedkit:nolint`` comments: real comment tokens, and ``--`` comments inside DO block bodies."""
    found: list[_Directive] = []
    for tok in tokens:
        if tok.name == "SQL_COMMENT":
            d = _parse_directive(src.sql[tok.start:tok.end + 1], src.position(tok.start)[0], tok.start)
            if d:
                found.append(d)
    for begin, end in do_bodies:
        body = src.sql[begin:end]
        for m in re.finditer(r"--[^\n]*", body):
            d = _parse_directive(m.group(0), src.position(begin + m.start())[0], begin + m.start())
            if d:
                found.append(d)
    return found


def _comment_block_above(src: _Source, line: int) -> set[int]:
    """File lines of the comment-only lines directly above ``line`` (no blank line in between)."""
    lines: set[int] = set()
    n = line - 1
    while n > src.line_offset and src.section_line(n).strip().startswith("--"):
        lines.add(n)
        n -= 1
    return lines


# -------------------------------------------------------------------------------------------------
# Entry points
# -------------------------------------------------------------------------------------------------


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
    _load_pglast()
    src = _Source(sql, path, line_offset)
    schema = SchemaState() if schema is None else schema
    try:
        parsed = parse_sql(sql)
    except ParseError as exc:
        offset = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
        line, col = src.position(offset)
        message = str(exc.args[0]) if exc.args else str(exc)
        return [Finding(path, line, col, "syntax-error", ERROR, message, RULES["syntax-error"].hint)], []

    checker = _Checker(src, _MigrationState(transactional=transactional), schema)
    tokens = checker.tokens
    statements: list[_Stmt] = []
    token_starts = [t.start for t in tokens]
    for raw in parsed:
        begin = raw.stmt_location
        end = begin + raw.stmt_len if raw.stmt_len else len(sql)
        i, j = bisect_left(token_starts, begin), bisect_left(token_starts, end)
        own = [t for t in tokens[i:j] if not _is_comment(t) and t.name != "ASCII_59"]
        start = own[0].start if own else begin
        stop = own[-1].end + 1 if own else end
        span = (src.position(start)[0], src.position(max(start, stop - 1))[0])
        statements.append(_Stmt(raw.stmt, start, stop, 0, span))

    do_bodies: list[tuple[int, int]] = []
    for stmt in statements:
        checker.check(stmt)
        while checker.do_blocks:
            block, node = checker.do_blocks.pop(0)
            body = _do_body(src, block, node)
            if body is not None:
                do_bodies.append(body)
                for inner in _do_statements(src, block, node, body):
                    checker.check(inner)

    return _apply_suppressions(src, checker.raw, _directives(src, tokens, do_bodies))


def _do_body(src: _Source, stmt: _Stmt, node: ast.DoStmt) -> tuple[int, int] | None:
    """Section offsets of a DO block's dollar-quoted body (without the quotes)."""
    for arg in node.args or ():
        if (arg.defname == "language" and isinstance(arg.arg, ast.String)
                and arg.arg.sval.lower() != "plpgsql"):
            return None
    as_arg = next((a for a in node.args or () if a.defname == "as"), None)
    if as_arg is None or as_arg.arg_location is None:
        return None
    if stmt.loc_base is None:
        return None
    quote_at = stmt.loc_base + as_arg.arg_location
    m = re.compile(r"\$[A-Za-z_0-9]*\$").match(src.sql, quote_at)
    if m is None:
        return None
    close = src.sql.find(m.group(0), m.end())
    return (m.end(), close if close >= 0 else stmt.end)


def _do_statements(src: _Source, stmt: _Stmt, node: ast.DoStmt, body: tuple[int, int]) -> list[_Stmt]:
    """The SQL statements a DO block runs, parsed and placed in the file where possible."""
    begin, end = body
    text = src.sql[stmt.start:stmt.end]
    try:
        tree = json.loads(parse_plpgsql_json(text))
    except (ParseError, ValueError):
        return []
    body_line = src.position(begin)[0]
    found: list[_Stmt] = []
    cursor = begin
    for lineno, query in _plpgsql_queries(tree):
        try:
            parsed = parse_sql(query)
        except ParseError:
            continue
        line = body_line + max(lineno, 1) - 1
        at = src.sql.find(query, cursor, end)
        if at >= 0:
            cursor = at + len(query)
            loc_base: int | None = at
            last_line = src.position(at + len(query) - 1)[0]
        else:  # the plpgsql parser rewrote the text (e.g. SELECT … INTO): point at its line
            line_text = src.section_line(line)
            at = src.line_starts[min(line - src.line_offset - 1, len(src.line_starts) - 1)]
            at += len(line_text) - len(line_text.lstrip())
            loc_base = None
            last_line = line
        for raw in parsed:
            start = at + (raw.stmt_location if loc_base is not None else 0)
            span = (src.position(start)[0], last_line)
            found.append(_Stmt(raw.stmt, start, at + len(query), loc_base, span))
    return found


def _plpgsql_queries(tree: Any) -> Iterator[tuple[int, str]]:
    """(line in body, SQL) of every statement a PL/pgSQL block executes, in order: static SQL and
    ``EXECUTE 'constant'``."""
    if isinstance(tree, list):
        for item in tree:
            yield from _plpgsql_queries(item)
    elif isinstance(tree, dict):
        for key, value in tree.items():
            if key == "PLpgSQL_stmt_execsql":
                yield value.get("lineno", 1), value["sqlstmt"]["PLpgSQL_expr"]["query"]
            elif key == "PLpgSQL_stmt_dynexecute":
                query = value["query"]["PLpgSQL_expr"]["query"].strip()
                inner = query[1:-1]
                if len(query) >= 2 and query[0] == query[-1] == "'" and "'" not in inner.replace("''", ""):
                    yield value.get("lineno", 1), query[1:-1].replace("''", "'")
            else:
                yield from _plpgsql_queries(value)


def _apply_suppressions(src: _Source, raw: list[_Raw],
                        directives: list[_Directive]) -> tuple[list[Finding], list[Suppressed]]:
    findings: list[Finding] = []
    suppressed: list[Suppressed] = []
    above_cache: dict[int, set[int]] = {}
    for r in sorted(raw, key=lambda r: r.offset):
        line, col = src.position(r.offset)
        rule = RULES[r.rule]
        finding = Finding(src.path, line, col, r.rule, rule.level, r.message, r.hint or rule.hint)
        first, last = r.span
        if first not in above_cache:
            above_cache[first] = _comment_block_above(src, first)
        match = next((d for d in directives if r.rule in d.rules
                      and (first <= d.line <= last or d.line in above_cache[first])), None)
        if match is None:
            findings.append(finding)
        else:
            match.used = True
            suppressed.append(Suppressed(finding, match.reason, match.line))
    for d in directives:
        line, col = src.position(d.offset)
        unknown = [r for r in d.rules if r not in RULES or r in META_RULES]
        if not d.rules or unknown:
            what = f"unknown rule {', '.join(unknown)}" if unknown else "no rule named"
            findings.append(Finding(src.path, line, col, "nolint-unknown-rule", ERROR,
                                    f"seedkit:nolint with {what}", RULES["nolint-unknown-rule"].hint))
        if d.reason is None:
            findings.append(Finding(src.path, line, col, "nolint-missing-reason", ERROR,
                                    "seedkit:nolint without a reason", RULES["nolint-missing-reason"].hint))
        if not d.used and d.rules and not unknown:
            findings.append(Finding(src.path, line, col, "nolint-unused", WARNING,
                                    f"seedkit:nolint {','.join(d.rules)} suppresses nothing here",
                                    RULES["nolint-unused"].hint))
    findings.sort(key=lambda f: (f.line, f.column, f.rule))
    return findings, suppressed


# -------------------------------------------------------------------------------------------------
# Levels: the defaults above, the project's [lint] table, --warnings-as-errors
# -------------------------------------------------------------------------------------------------


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
                    report_versions: set[str] | None = None) -> LintReport:
    """Lint migrations in version order; facts from earlier ones inform later ones.

    ``dialect`` is the database the migrations are for (a file's own ``dialect=`` hint wins);
    SQLite migrations are skipped with a note. With ``report_versions``, only those migrations are
    reported; the others are still read so that what they created is known.
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
        if shown:
            report.files.append(result)
    return report


def lint_paths(paths: Sequence[Path | str] | None = None, *, config: Config | None = None,
               env: str | None = None, database_url: str | None = None, dialect: str | None = None,
               pending: bool = False, warnings_as_errors: bool = False) -> LintReport:
    """Check PostgreSQL migrations for operations that lock or break production.

    Lints the files or folders given, else the configured migrations folder. Each finding is
    FILE:LINE:COL RULE LEVEL MESSAGE with a hint; the exit code is 3 when an error-level finding
    remains (as for every check). Each rule's level comes from the [lint] table of seedkit.toml
    (rule = "error", "warning" or "off"); --warnings-as-errors turns warnings into errors. Silence
    one finding with '-- seedkit:nolint RULE reason' on or directly above the statement. SQLite
    migrations (the configured database, or a '-- seedkit: dialect=sqlite' comment) are skipped
    with a note. With pending, only migrations the database has not applied are reported.
    """
    if config is None:
        from ..config import load_config

        config = load_config()
    levels = effective_levels(config, warnings_as_errors=warnings_as_errors)
    migrations = load_paths(paths) if paths else discover(config.migrations_dir)
    if dialect is None:
        dialect = config_dialect(config, env, database_url)
    if not pending:
        return apply_levels(lint_migrations(migrations, dialect=dialect), levels)
    versions = pending_versions(config, env=env, database_url=database_url) & {m.version for m in migrations}
    if paths:
        # Earlier migrations of the folder still tell us what exists (tables created long ago).
        known = {m.number for m in migrations}
        migrations = [*migrations, *(m for m in discover(config.migrations_dir) if m.number not in known)]
    return apply_levels(lint_migrations(migrations, dialect=dialect, report_versions=versions), levels)


def pending_versions(config: Config, *, env: str | None = None, database_url: str | None = None) -> set[str]:
    """Versions on disk that the database has not (fully) applied, from the runner's status."""
    from . import status

    report = status(config, env=env, database_url=database_url)
    return {e.version for e in report.entries if e.state in ("pending", "failed")}
