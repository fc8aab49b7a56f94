"""``seedkit migrate lint --fix`` / ``--diff``: rewrite fixable findings in pending migrations.

Only migrations the database has not applied are ever touched (the runner's status says which; a
migration that failed half-way is not pending and is left alone). Each fix keeps the rest of the file
byte for byte; the statement it fixes is re-printed by pglast (PostgreSQL's own parser), so it may be
laid out differently. What each rule's fix does:

``index-not-concurrent`` / ``concurrently-in-transaction`` (CREATE INDEX)
    CREATE INDEX → CREATE INDEX CONCURRENTLY. When the migration holds nothing but index builds, it is
    marked to run outside a transaction (``-- migrate:up transaction:false``, or a first line
    ``-- seedkit: transaction=false``); otherwise the index moves to a new migration of its own,
    marked so, whose down section is ``DROP INDEX CONCURRENTLY IF EXISTS`` (a ``DROP INDEX`` of it in
    the original's down section moves there too). An unnamed index gets a name, so it can be dropped.
``constraint-not-valid`` (ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY / CHECK)
    → the same constraint ``NOT VALID``, and a new migration ``ALTER TABLE … VALIDATE CONSTRAINT``.
    An unnamed constraint gets the name PostgreSQL would give it.
``set-not-null`` (ALTER COLUMN … SET NOT NULL)
    → ``ADD CONSTRAINT <t>_<c>_not_null CHECK (c IS NOT NULL) NOT VALID`` here; a new migration
    VALIDATEs it, SETs NOT NULL (PostgreSQL 12+ trusts the valid check and skips the scan) and drops
    the check. Its down section drops NOT NULL and puts the NOT VALID check back; the original's
    down section drops the check first.
``volatile-default`` (ADD COLUMN … DEFAULT volatile())
    → ADD COLUMN without the default, then ``ALTER COLUMN … SET DEFAULT volatile()`` in the same
    migration: new rows get the default, existing rows stay NULL for a batched backfill. Not fixed
    when the column is NOT NULL (it needs that backfill first), serial, identity or generated.

New migrations take the next free versions right after the fixed one, in its layout; when no version
is free before the next migration (sequence numbers 0001, 0002 …), that finding is left unfixed with
the reason. After writing, the migrations are linted again.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._record import dataclass
from ..config import Config
from ..errors import UsageError
from ..migrate.files import Migration, Section, discover, display_path, load_paths, version_order
from .source import subcommand_starts

if TYPE_CHECKING:
    from . import Finding, LintReport

FIXABLE = ("index-not-concurrent", "concurrently-in-transaction", "constraint-not-valid", "set-not-null",
           "volatile-default")
_MAX_IDENT = 63  # NAMEDATALEN - 1


@dataclass
class FileChange:
    """One file the fix writes: ``before`` is ``None`` for a new file."""

    path: Path
    before: str | None
    after: str

    def diff(self) -> str:
        shown = display_path(self.path)
        a, b = (f"a/{shown}", f"b/{shown}") if not shown.startswith("/") else (shown, shown)
        lines = difflib.unified_diff((self.before or "").splitlines(keepends=True),
                                     self.after.splitlines(keepends=True),
                                     fromfile="/dev/null" if self.before is None else a, tofile=b)
        text = "".join(lines)
        return text if text.endswith("\n") or not text else text + "\n\\ No newline at end of file\n"


@dataclass
class Unfixed:
    finding: Finding
    reason: str


@dataclass
class FixReport:
    changes: list[FileChange] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    unfixed: list[Unfixed] = field(default_factory=list)
    skipped_applied: int = 0  # migrations with findings that are applied (never edited)
    relint: LintReport | None = None  # the lint after writing (--fix), or of the fixed text (--diff)

    def diff(self) -> str:
        return "".join(c.diff() for c in self.changes)

    def write(self) -> None:
        for change in self.changes:
            change.path.parent.mkdir(parents=True, exist_ok=True)
            change.path.write_text(change.after, encoding="utf-8")


# -- the entry point -------------------------------------------------------------------------------

def fix_paths(paths: list[Path | str] | None = None, *, config: Config, env: str | None = None,
              database_url: str | None = None, dialect: str | None = None, write: bool = True,
              warnings_as_errors: bool = False) -> FixReport:
    """Fix the fixable findings of the pending migrations (all, or those named by ``paths``)."""
    from ..migrate import status
    from . import apply_levels, config_dialect, effective_levels, lint_migrations, lint_paths

    levels = effective_levels(config, warnings_as_errors=warnings_as_errors)
    everything = discover(config.migrations_dir)
    named = load_paths(paths) if paths else everything
    report = status(config, env=env, database_url=database_url)
    pending = {e.version for e in report.entries if e.state == "pending" and e.version != "repeatable"}
    if dialect is None:
        dialect = config_dialect(config, env, database_url)
    known = {m.number for m in named}
    migrations = [*named, *(m for m in everything if m.number not in known)]
    # Named files are all looked at (an applied one is reported as not fixed); otherwise the pending ones.
    looked_at = {m.version for m in named} if paths else pending
    linted = apply_levels(lint_migrations(migrations, dialect=dialect, report_versions=looked_at), levels)
    result = FixReport()
    fixer = _Fixer(migrations)
    for file in linted.files:
        fixable = [f for f in file.findings if f.rule in FIXABLE]
        if not fixable:
            continue
        if file.version not in pending:
            result.skipped_applied += 1
            result.unfixed += [Unfixed(f, "the migration is applied (or failed half-way): applied migrations are "
                                          "never edited; fix it with a new migration") for f in fixable]
            continue
        m = next(m for m in migrations if m.version == file.version)
        fixer.fix(m, fixable, result)
    result.changes = fixer.changes()
    if write:
        result.write()
        result.relint = lint_paths(paths, config=config, env=env, database_url=database_url, dialect=dialect,
                                   pending=True, warnings_as_errors=warnings_as_errors)
    return result


# -- SQL helpers -----------------------------------------------------------------------------------

def _deparse(node: Any) -> str:
    from pglast.stream import RawStream

    return RawStream()(node)


def _parse_one(sql: str) -> Any:
    from pglast import parse_sql

    return parse_sql(sql)[0].stmt


def _truncate(name: str) -> str:
    return name.encode("utf-8")[:_MAX_IDENT].decode("utf-8", "ignore")


def _strings(items: Any) -> list[str]:
    return [getattr(i, "sval", "") for i in items or ()]


@dataclass
class _Span:
    """One top-level statement of a section: its node and where its text is."""

    node: Any
    start: int  # first token
    end: int  # just after the last token, semicolon included when there is one


def _statements(sql: str) -> list[_Span]:
    from pglast import parse_sql
    from pglast.parser import scan

    tokens = [t for t in scan(sql) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    spans = []
    for raw in parse_sql(sql):
        begin = raw.stmt_location
        stop = begin + raw.stmt_len if raw.stmt_len else len(sql)
        own = [t for t in tokens if begin <= t.start < stop]
        if not own:
            continue
        end = own[-1].end + 1
        after = next((t for t in tokens if t.start >= end), None)
        if after is not None and after.name == "ASCII_59":
            end = after.end + 1
        spans.append(_Span(raw.stmt, own[0].start, end))
    return spans


def _cmd_starts(sql: str, span: _Span) -> list[int]:
    """Section offsets of the sub-commands of an ALTER TABLE (split at top-level commas)."""
    from pglast.parser import scan

    node = span.node
    cmds = list(node.cmds or ())
    text = sql[span.start:span.end]
    toks = [t for t in scan(text) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    rel = node.relation.location  # parse_sql locations are offsets in the section
    toks = [t for t in toks if t.start + span.start >= rel]
    if not toks:
        return [span.start] * len(cmds)
    starts = subcommand_starts(toks, len(cmds))
    return [start + span.start for start in starts] if starts is not None else [span.start] * len(cmds)


def _offset(section: Section, line: int, column: int) -> int:
    lines = section.sql.split("\n")
    index = line - section.line_offset
    if index < 0 or index >= len(lines):
        return -1
    return sum(len(x) + 1 for x in lines[:index]) + column - 1


def _base(text: str, section: Section) -> int:
    """Where ``section.sql`` starts in its file's text (-1 when it cannot be found there)."""
    lines = text.split("\n")
    base = sum(len(x) + 1 for x in lines[: section.line_offset - 1])
    return base if text[base: base + len(section.sql)] == section.sql else -1


# -- names as PostgreSQL would choose them ---------------------------------------------------------

def _index_name(node: Any) -> str:
    table = node.relation.relname
    cols = []
    for p in node.indexParams or ():
        cols.append(p.name if p.name else "expr")
    return _truncate(f"{table}_{'_'.join(cols) or 'expr'}_{'key' if node.unique else 'idx'}")


def _constraint_name(table: str, con: Any) -> str:
    from pglast import ast
    from pglast.enums import ConstrType

    if con.contype == ConstrType.CONSTR_FOREIGN:
        return _truncate(f"{table}_{'_'.join(_strings(con.fk_attrs))}_fkey")
    column = next((_strings(n.fields)[-1] for n in _walk(con.raw_expr) if isinstance(n, ast.ColumnRef)), None)
    return _truncate(f"{table}_{column}_check" if column else f"{table}_check")


def _walk(node: Any) -> list[Any]:
    from pglast import ast

    out, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            out.append(item)
            stack.extend(getattr(item, name) for name in item)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return out


# -- fixing ----------------------------------------------------------------------------------------

@dataclass
class _Edit:
    start: int
    end: int
    text: str


@dataclass
class _Plan:
    """What fixing one migration changes."""

    up: list[_Edit] = field(default_factory=list)  # in the up section
    down_prepend: list[str] = field(default_factory=list)  # statements to run first in its down section
    down_remove: list[_Span] = field(default_factory=list)  # statements to take out of its down section
    mark_no_transaction: bool = False
    index_up: list[str] = field(default_factory=list)  # a new non-transactional migration
    index_down: list[str] = field(default_factory=list)
    after_up: list[str] = field(default_factory=list)  # a new migration run after this one
    after_down: list[str] = field(default_factory=list)


class _Fixer:
    def __init__(self, migrations: list[Migration]):
        self.migrations = migrations
        self.taken = {m.number for m in migrations}
        self.files: dict[Path, FileChange] = {}

    def changes(self) -> list[FileChange]:
        return [c for c in self.files.values() if c.before != c.after]

    def _text(self, path: Path) -> str:
        if path not in self.files:
            from ..migrate.files import _read

            text = _read(path)
            self.files[path] = FileChange(path, text, text)
        return self.files[path].after

    def fix(self, m: Migration, findings: list[Finding], result: FixReport) -> None:
        from pglast import ast

        sql = m.up.sql
        try:
            spans = _statements(sql)
        except Exception:  # a syntax error: lint reports it; nothing to fix
            return
        plan = _Plan()
        by_span: dict[int, list[tuple[Finding, int]]] = {}
        for f in findings:
            at = _offset(m.up, f.line, f.column)
            i = next((i for i, s in enumerate(spans) if s.start <= at < s.end), None)
            if i is None or isinstance(spans[i].node, ast.DoStmt):
                result.unfixed.append(Unfixed(f, "inside a DO block: fix it by hand"))
                continue
            by_span.setdefault(i, []).append((f, at))
        if not by_span:
            return
        index_spans = [i for i, fs in by_span.items() if isinstance(spans[i].node, ast.IndexStmt)]
        only_indexes = all(isinstance(s.node, ast.IndexStmt) for s in spans)
        fixed_here: list[Finding] = []
        for i, fs in sorted(by_span.items()):
            span = spans[i]
            node = span.node
            if isinstance(node, ast.IndexStmt):
                done = self._index(sql, span, fs, plan, move=not only_indexes, m=m, result=result)
            elif isinstance(node, ast.AlterTableStmt):
                done = self._alter(sql, span, fs, plan, result)
            else:
                result.unfixed += [Unfixed(f, "no automatic fix for this statement") for f, _ in fs]
                done = []
            fixed_here += done
        if only_indexes and index_spans and m.up.transactional:
            plan.mark_no_transaction = True
        needs_versions = (1 if plan.index_up else 0) + (1 if plan.after_up else 0)
        versions = self._versions(m, needs_versions) if needs_versions else []
        if needs_versions and versions is None:
            reason = (f"no free version between {m.version} and the next migration for the new migration this fix "
                      "needs: renumber, or fix by hand")
            result.unfixed += [Unfixed(f, reason) for f in fixed_here]
            return
        self._apply(m, plan, versions or [])
        result.fixed += fixed_here

    # -- one statement -------------------------------------------------------------------------------
    def _index(self, sql: str, span: _Span, fs: list[tuple[Finding, int]], plan: _Plan, *, move: bool,
               m: Migration, result: FixReport) -> list[Finding]:
        node = span.node
        finding = fs[0][0]
        if "partitioned table" in finding.message:
            result.unfixed += [Unfixed(f, "CONCURRENTLY cannot build an index on a partitioned table: build it on "
                                          "each partition, then attach") for f, _ in fs]
            return []
        if node.concurrent and m.up.transactional and not move:
            return [f for f, _ in fs]  # only the transaction mark is missing
        named = node.idxname or _index_name(node)
        node.concurrent = True
        node.idxname = named
        text = _deparse(node) + ";"
        if move:
            above = _comments_above(sql, span.start)
            plan.up.append(_Edit(above, _line_end(sql, span.end), ""))
            plan.index_up.append(sql[above:span.start] + text)
            plan.index_down.append(f"DROP INDEX CONCURRENTLY IF EXISTS {_qualified(node.relation.schemaname, named)};")
            if m.down is not None:
                plan.down_remove += [s for s in _safe_statements(m.down.sql) if _drops_index(s.node, named)]
        else:
            plan.up.append(_Edit(span.start, span.end, text))
        return [f for f, _ in fs]

    def _alter(self, sql: str, span: _Span, fs: list[tuple[Finding, int]], plan: _Plan,
               result: FixReport) -> list[Finding]:
        from pglast import ast
        from pglast.enums import AlterTableType, ConstrType

        node = span.node
        cmds = list(node.cmds)
        starts = _cmd_starts(sql, span)
        rel = node.relation
        table = _qualified(rel.schemaname, rel.relname)
        done: list[Finding] = []
        extra_here: list[str] = []  # statements right after this one, same migration
        new_cmds: list[Any] = []
        for k, cmd in enumerate(cmds):
            column_add = cmd if cmd.subtype == AlterTableType.AT_AddColumn else None
            end = starts[k + 1] if k + 1 < len(starts) else span.end
            mine = [f for f, at in fs if starts[k] <= at < end] if len(set(starts)) == len(starts) else \
                [f for f, _ in fs] if len(cmds) == 1 else []
            if not mine:
                new_cmds.append(cmd)
                continue
            for f in mine:
                if f.rule == "constraint-not-valid" and column_add is not None and cmd is not column_add:
                    done.append(f)  # a second inline constraint of the column: moved out with the first
                elif f.rule == "constraint-not-valid" and cmd.subtype == AlterTableType.AT_AddConstraint:
                    con = cmd.def_
                    con.conname = con.conname or _constraint_name(rel.relname, con)
                    con.skip_validation = True
                    con.initially_valid = False
                    plan.after_up.append(f"ALTER TABLE {table} VALIDATE CONSTRAINT {_ident(con.conname)};")
                    done.append(f)
                elif f.rule == "set-not-null" and cmd.subtype == AlterTableType.AT_SetNotNull:
                    name = _truncate(f"{rel.relname}_{cmd.name}_not_null")
                    column = _ident(cmd.name)
                    cmd = _parse_one(f"ALTER TABLE t ADD CONSTRAINT {_ident(name)} CHECK ({column} IS NOT NULL) "
                                     "NOT VALID").cmds[0]
                    plan.after_up += [f"ALTER TABLE {table} VALIDATE CONSTRAINT {_ident(name)};",
                                      f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;",
                                      f"ALTER TABLE {table} DROP CONSTRAINT {_ident(name)};"]
                    plan.after_down += [f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL;",
                                        f"ALTER TABLE {table} ADD CONSTRAINT {_ident(name)} CHECK ({column} IS NOT "
                                        "NULL) NOT VALID;"]
                    plan.down_prepend.append(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {_ident(name)};")
                    done.append(f)
                elif f.rule == "constraint-not-valid" and cmd.subtype == AlterTableType.AT_AddColumn:
                    col = cmd.def_
                    inline = [c for c in col.constraints or ()
                              if c.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_FOREIGN)]
                    if not inline:
                        result.unfixed.append(Unfixed(f, "no automatic fix for this form of the statement"))
                        continue
                    col.constraints = tuple(c for c in col.constraints if c not in inline) or None
                    for con in inline:
                        if con.contype == ConstrType.CONSTR_FOREIGN:
                            con.fk_attrs = (ast.String(sval=col.colname),)
                        suffix = "fkey" if con.contype == ConstrType.CONSTR_FOREIGN else "check"
                        con.conname = con.conname or _truncate(f"{rel.relname}_{col.colname}_{suffix}")
                        con.skip_validation = True
                        con.initially_valid = False
                        added = ast.AlterTableCmd(subtype=AlterTableType.AT_AddConstraint, def_=con,
                                                  behavior=cmd.behavior)
                        new_cmds.append(cmd)
                        cmd = added
                        plan.after_up.append(f"ALTER TABLE {table} VALIDATE CONSTRAINT {_ident(con.conname)};")
                    done.append(f)
                elif f.rule == "volatile-default" and cmd.subtype == AlterTableType.AT_AddColumn:
                    col = cmd.def_
                    constraints = list(col.constraints or ())
                    kinds = {c.contype for c in constraints}
                    default = next((c for c in constraints if c.contype == ConstrType.CONSTR_DEFAULT), None)
                    why = None
                    if default is None or "volatile default" not in f.message:
                        why = "a serial, identity or generated column fills every row: there is no safe rewrite"
                    elif ConstrType.CONSTR_NOTNULL in kinds or ConstrType.CONSTR_PRIMARY in kinds:
                        why = ("the column is NOT NULL: add it nullable with SET DEFAULT, backfill in batches, then "
                               "SET NOT NULL (which lint --fix can then split)")
                    if why:
                        result.unfixed.append(Unfixed(f, why))
                        continue
                    col.constraints = tuple(c for c in constraints if c is not default) or None
                    setter = _parse_one(f"ALTER TABLE t ALTER COLUMN {_ident(col.colname)} SET DEFAULT 0")
                    setter.relation = rel
                    setter.cmds[0].def_ = default.raw_expr
                    extra_here.append(_deparse(setter) + ";")
                    done.append(f)
                else:
                    result.unfixed.append(Unfixed(f, "no automatic fix for this form of the statement"))
            new_cmds.append(cmd)
        if not done:
            return []
        node.cmds = tuple(new_cmds)
        text = _deparse(node) + ";"
        if extra_here:
            text += "\n" + "\n".join(extra_here)
        plan.up.append(_Edit(span.start, span.end, text))
        return done

    # -- versions and files --------------------------------------------------------------------------
    def _versions(self, m: Migration, count: int) -> list[str] | None:
        following = [x.order for x in self.migrations if x.order > m.order]
        limit = min(following) if following else None
        found: list[str] = []
        digits = m.version
        for step in range(1, 10000):
            if len(digits) == 14:
                try:
                    candidate = (datetime.strptime(digits, "%Y%m%d%H%M%S") + timedelta(seconds=step)) \
                        .strftime("%Y%m%d%H%M%S")
                except ValueError:
                    candidate = str(int(digits) + step).zfill(len(digits))
            else:
                candidate = str(int(digits) + step).zfill(len(digits))
            if limit is not None and version_order(candidate) >= limit:
                return None
            if int(candidate) in self.taken:
                continue
            found.append(candidate)
            if len(found) == count:
                self.taken.update(int(v) for v in found)
                return found
        return None  # pragma: no cover

    def _apply(self, m: Migration, plan: _Plan, versions: list[str]) -> None:
        up_path = m.up.path
        text = self._text(up_path)
        base = _base(text, m.up)
        edits = [_Edit(base + e.start, base + e.end, e.text) for e in plan.up]
        if plan.mark_no_transaction:
            edits.append(_mark_edit(text, m.layout, m.up.line_offset, "up"))
        if m.down is not None and (plan.down_prepend or plan.down_remove):
            down_text = text if m.down.path == up_path else self._text(m.down.path)
            down_base = _base(down_text, m.down)
            down_edits = [_Edit(down_base + s.start, down_base + _line_end(m.down.sql, s.end), "")
                          for s in plan.down_remove]
            if plan.down_prepend:
                at = down_base + _first_statement(m.down.sql)
                down_edits.append(_Edit(at, at, "\n".join(plan.down_prepend) + "\n"))
            if m.down.path == up_path:
                edits += down_edits
            else:
                self.files[m.down.path].after = _splice(down_text, down_edits)
        self.files[up_path].after = _splice(text, edits)
        i = 0
        if plan.index_up:
            self._new(m, versions[i], f"{m.name or 'migration'}_index", plan.index_up, plan.index_down,
                      transactional=False)
            i += 1
        if plan.after_up:
            self._new(m, versions[i], f"{m.name or 'migration'}_validate", plan.after_up,
                      plan.after_down or ["-- nothing to undo: VALIDATE CONSTRAINT changes no definition"],
                      transactional=True)

    def _new(self, m: Migration, version: str, name: str, up: list[str], down: list[str], *,
             transactional: bool) -> None:
        folder = m.entry.parent
        number = int(version)
        version = _styled(version, m.entry.name)
        note = f"-- Written by 'seedkit migrate lint --fix' from {m.label}."
        flag = "" if transactional else " transaction:false"
        directive = "" if transactional else "-- seedkit: transaction=false\n"
        body_up, body_down = "\n".join(up) + "\n", "\n".join(down) + "\n"
        if m.layout == "file":
            path = folder / f"{version}_{name}.sql"
            self.files[path] = FileChange(path, None, f"-- migrate:up{flag}\n{note}\n{body_up}\n"
                                                      f"-- migrate:down{flag}\n{body_down}")
        elif m.layout == "pair":
            path = folder / f"{version}_{name}.up.sql"
            self.files[path] = FileChange(path, None, f"{directive}{note}\n{body_up}")
            down_path = folder / f"{version}_{name}.down.sql"
            self.files[down_path] = FileChange(down_path, None, f"{directive}{body_down}")
        else:
            path = folder / f"{version}_{name}" / "up.sql"
            self.files[path] = FileChange(path, None, f"{directive}{note}\n{body_up}")
            down_path = path.with_name("down.sql")
            self.files[down_path] = FileChange(down_path, None, f"{directive}{body_down}")
        self.taken.add(number)


def _styled(digits: str, entry: str) -> str:
    """``digits`` written like the version that starts ``entry`` (Diesel's ``2024-03-01-120000``)."""
    m = re.match(r"^(\d+(?:-\d+)*)", entry)
    if not m or "-" not in m[1] or len(m[1].replace("-", "")) != len(digits):
        return digits
    out, i = [], 0
    for group in m[1].split("-"):
        out.append(digits[i: i + len(group)])
        i += len(group)
    return "-".join(out)


def _safe_statements(sql: str) -> list[_Span]:
    try:
        return _statements(sql)
    except Exception:
        return []


def _drops_index(node: Any, name: str) -> bool:
    from pglast import ast
    from pglast.enums import ObjectType

    return (isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_INDEX
            and [_strings(o)[-1] for o in node.objects or ()] == [name])


def _first_statement(sql: str) -> int:
    """Offset of the first line of ``sql`` that is not blank (comments above a statement stay above it)."""
    spans = _safe_statements(sql)
    if not spans:
        stripped = len(sql) - len(sql.lstrip("\n"))
        return stripped
    start = spans[0].start
    return sql.rfind("\n", 0, start) + 1


def _comments_above(sql: str, start: int) -> int:
    """Start of the comment lines directly above a statement (they describe it, and move with it)."""
    line_start = sql.rfind("\n", 0, start) + 1
    if sql[line_start:start].strip():
        return start  # something else on the statement's line
    at = line_start
    while at > 0:
        prev = sql.rfind("\n", 0, at - 1) + 1
        if not sql[prev:at].strip().startswith("--"):
            break
        at = prev
    return at


def _line_end(sql: str, end: int) -> int:
    """Extend a removed statement over the rest of its line (spaces and the newline)."""
    i = end
    while i < len(sql) and sql[i] in " \t":
        i += 1
    if i < len(sql) and sql[i] == "\n":
        i += 1
    return i


def _mark_edit(text: str, layout: str, line_offset: int, direction: str) -> _Edit:
    """Mark a section to run outside a transaction."""
    if layout == "file":
        lines = text.split("\n")
        marker = line_offset - 2  # the marker is the line before the section
        at = sum(len(x) + 1 for x in lines[:marker]) + len(lines[marker].rstrip())
        return _Edit(at, at, " transaction:false")
    first = text.split("\n", 1)[0]
    if re.match(r"^--\s*seedkit:", first, re.IGNORECASE) and "nolint" not in first.lower():
        return _Edit(len(first.rstrip()), len(first.rstrip()), " transaction=false")
    return _Edit(0, 0, "-- seedkit: transaction=false\n")


def _splice(text: str, edits: list[_Edit]) -> str:
    for e in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        text = text[: e.start] + e.text + text[e.end:]
    return text


_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")


def _ident(name: str) -> str:
    from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

    if _PLAIN.match(name) and name not in RESERVED_KEYWORDS and name not in TYPE_FUNC_NAME_KEYWORDS \
            and name not in COL_NAME_KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _qualified(schema: str | None, name: str) -> str:
    return f"{_ident(schema)}.{_ident(name)}" if schema else _ident(name)


def check_usable(fix: bool, diff: bool, as_json: bool) -> None:
    """``--fix`` and ``--diff`` exclude each other and ``--json``."""
    if fix and diff:
        raise UsageError("give --fix or --diff, not both", hint="--diff shows what --fix would write")
    if as_json and (fix or diff):
        raise UsageError("--json does not combine with --fix or --diff")


__all__ = ["FIXABLE", "FileChange", "FixReport", "Unfixed", "fix_paths"]
