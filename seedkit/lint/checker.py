"""The checks: one handler per statement kind (registered in ``HANDLERS``), raising the rules'
findings. pglast is imported here, and this module only when a migration is linted."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, NullTestType, ObjectType, TransactionStmtKind
from pglast.parser import scan

from .._record import dataclass
from .schema import Key, SchemaState, _key, _MigrationState, _same, _show
from .source import _Raw, _Source, _Stmt, subcommand_starts

# statement kind (pglast node class name) -> the check that handles it
HANDLERS: dict[str, Callable[[Any, Any, Any], None]] = {}


def on(kind: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a ``_Checker`` method as the check of statements of ``kind``."""
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        HANDLERS[kind] = fn
        return fn
    return register


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
        handler = HANDLERS.get(type(node).__name__)
        if handler is not None:
            handler(self, stmt, node)

    @on("CreateStmt")
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

    @on("CreateTableAsStmt")
    def _CreateTableAsStmt(self, stmt: _Stmt, node: ast.CreateTableAsStmt) -> None:
        self.state.created.add(_key(node.into.rel))

    @on("SelectStmt")
    def _SelectStmt(self, stmt: _Stmt, node: ast.SelectStmt) -> None:
        if node.intoClause is not None:  # SELECT … INTO new_table
            self.state.created.add(_key(node.intoClause.rel))

    @on("CreateFunctionStmt")
    def _CreateFunctionStmt(self, stmt: _Stmt, node: ast.CreateFunctionStmt) -> None:
        volatility = "volatile"
        for opt in node.options or ():
            if opt.defname == "volatility" and isinstance(opt.arg, ast.String):
                volatility = opt.arg.sval
        self.schema.functions[_strings(node.funcname)[-1]] = volatility

    @on("IndexStmt")
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

    @on("ReindexStmt")
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

    @on("DropStmt")
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

    @on("DropdbStmt")
    def _DropdbStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "DROP DATABASE")

    @on("CreatedbStmt")
    def _CreatedbStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "CREATE DATABASE")

    @on("VacuumStmt")
    def _VacuumStmt(self, stmt: _Stmt, node: ast.VacuumStmt) -> None:
        if node.is_vacuumcmd:
            self._no_transaction(stmt, "VACUUM")

    @on("AlterSystemStmt")
    def _AlterSystemStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "ALTER SYSTEM")

    @on("CreateTableSpaceStmt")
    def _CreateTableSpaceStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "CREATE TABLESPACE")

    @on("DropTableSpaceStmt")
    def _DropTableSpaceStmt(self, stmt: _Stmt, node: ast.Node) -> None:
        self._no_transaction(stmt, "DROP TABLESPACE")

    def _no_transaction(self, stmt: _Stmt, what: str) -> None:
        if self.state.transactional:
            self.add(stmt, None, "non-transactional-statement",
                     f"{what} cannot run inside a transaction block")

    @on("TransactionStmt")
    def _TransactionStmt(self, stmt: _Stmt, node: ast.TransactionStmt) -> None:
        if not self.state.transactional:
            return
        word = {TransactionStmtKind.TRANS_STMT_BEGIN: "BEGIN", TransactionStmtKind.TRANS_STMT_START: "START "
                "TRANSACTION", TransactionStmtKind.TRANS_STMT_COMMIT: "COMMIT",
                TransactionStmtKind.TRANS_STMT_ROLLBACK: "ROLLBACK"}.get(node.kind)
        if word:
            self.add(stmt, None, "transaction-control",
                     f"{word} inside a transactional migration: the runner already manages the transaction")

    @on("RenameStmt")
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
    @on("UpdateStmt")
    def _UpdateStmt(self, stmt: _Stmt, node: ast.UpdateStmt) -> None:
        self._backfill(stmt, node.relation, "UPDATE")

    @on("DeleteStmt")
    def _DeleteStmt(self, stmt: _Stmt, node: ast.DeleteStmt) -> None:
        self._backfill(stmt, node.relation, "DELETE")

    @on("MergeStmt")
    def _MergeStmt(self, stmt: _Stmt, node: ast.MergeStmt) -> None:
        self._backfill(stmt, node.relation, "MERGE")

    @on("InsertStmt")
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
    @on("DoStmt")
    def _DoStmt(self, stmt: _Stmt, node: ast.DoStmt) -> None:
        self.do_blocks.append((stmt, node))

    # -- ALTER TABLE -------------------------------------------------------------------------------
    @on("AlterTableStmt")
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
        starts = subcommand_starts(toks, len(cmds))
        return starts if starts is not None else fallback


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
