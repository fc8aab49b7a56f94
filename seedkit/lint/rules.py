"""The lint rules: each one's id, default level, what is wrong and what to do; in one registry."""

from __future__ import annotations

from .._record import dataclass

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


_DEFAULTS = [
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
    Rule("down-syntax-error", ERROR,
         "A down section does not parse as PostgreSQL; rolling the migration back will fail.",
         "fix the down section's SQL now, not during a rollback (or, for a SQLite migration, mark it "
         "'-- seedkit: dialect=sqlite')"),
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
RULES: dict[str, Rule] = {}  # the registry: rule id -> Rule, in the order they were registered


def register(rule: Rule) -> Rule:
    """Add a rule to the registry (its id is what ``[lint]``, output and ``seedkit:nolint`` use)."""
    if rule.id in RULES:
        raise ValueError(f"lint rule {rule.id!r} is registered twice")
    RULES[rule.id] = rule
    return rule


for _rule in _DEFAULTS:
    register(_rule)
META_RULES = frozenset({"syntax-error", "nolint-missing-reason", "nolint-unknown-rule", "nolint-unused"})
