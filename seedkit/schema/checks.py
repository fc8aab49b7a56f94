"""Simple CHECK constraints, read from the database and turned into per-column rules.

Only what maps onto a single column is kept: ranges (``qty >= 1 AND qty <= 100``, ``BETWEEN``),
``IN`` lists (and PostgreSQL's ``= ANY (ARRAY[…])`` spelling of them), text length
(``length(code) <= 20``, ``char_length``), an ``IN`` list under ``upper(col)`` / ``lower(col)`` whose
values are already in that case, and any of these ``OR col IS NULL``. Anything else (``OR`` of
different shapes, several columns, other function calls) is left to the database, which still enforces
it. The expression text is parsed with pglast (PostgreSQL's own parser), for SQLite too: a CHECK
expression is ordinary SQL.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from .._record import dataclass
from ..db.catalog import Catalog, TableName


@dataclass(frozen=True)
class Rule:
    """What the simple CHECK constraints on one column allow."""

    minimum: Decimal | None = None
    maximum: Decimal | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    values: tuple[Any, ...] | None = None  # IN list
    # False when the check accepts more than ``values`` (``upper(c) IN ('S')`` also takes 's'): the list is
    # safe to generate from, but must not be used to refuse a value (the fixtures' JSON Schema)
    values_exact: bool = True
    min_length: int | None = None
    max_length: int | None = None

    def merge(self, other: Rule) -> Rule:
        """Both rules at once (``AND``): the tighter bound of each."""
        out = self
        if other.minimum is not None and (out.minimum is None or other.minimum > out.minimum or (
                other.minimum == out.minimum and other.exclusive_minimum)):
            out = replace(out, minimum=other.minimum, exclusive_minimum=other.exclusive_minimum)
        if other.maximum is not None and (out.maximum is None or other.maximum < out.maximum or (
                other.maximum == out.maximum and other.exclusive_maximum)):
            out = replace(out, maximum=other.maximum, exclusive_maximum=other.exclusive_maximum)
        if other.values is not None:
            values = other.values if out.values is None else tuple(v for v in out.values if v in other.values)
            exact = other.values_exact and (out.values is None or out.values_exact)
            out = replace(out, values=values, values_exact=exact)
        if other.min_length is not None and (out.min_length is None or other.min_length > out.min_length):
            out = replace(out, min_length=other.min_length)
        if other.max_length is not None and (out.max_length is None or other.max_length < out.max_length):
            out = replace(out, max_length=other.max_length)
        return out


class Rules(dict[TableName, dict[str, Rule]]):
    """Per table, per column: what its simple CHECK constraints allow. ``triggered``: the tables with a
    BEFORE INSERT row trigger, which may fill any column (a NOT NULL column is not required there)."""

    triggered: frozenset[TableName] = frozenset()


def read_rules(d: Any, catalog: Catalog) -> Rules:
    """The per-column rules of every table's simple CHECK constraints."""
    out = Rules()
    if d.dialect == "postgresql":
        out.triggered = frozenset(TableName(schema, table) for schema, table in d.fetchall("""
            SELECT DISTINCT n.nspname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'
              AND t.tgtype & 1 = 1 AND t.tgtype & 2 = 2 AND t.tgtype & 4 = 4"""))
    for name, expr in _check_texts(d, catalog):
        table = catalog.tables.get(name)
        if table is None:
            continue
        for column, rule in parse_check(expr).items():
            if column in table.columns:
                cols = out.setdefault(name, {})
                cols[column] = cols[column].merge(rule) if column in cols else rule
    return out


def _check_texts(d: Any, catalog: Catalog) -> list[tuple[TableName, str]]:
    if d.dialect == "postgresql":
        found = [(TableName(schema, table), expr) for schema, table, expr in d.fetchall("""
            SELECT n.nspname, c.relname, pg_get_constraintdef(co.oid)
            FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE co.contype = 'c' AND co.convalidated""")]
        # a domain's CHECK (VALUE >= 1901 AND VALUE <= 2155) holds for every column of that domain
        domains: dict[int, list[str]] = {}
        for oid, expr in d.fetchall("""
            SELECT co.contypid::int8, pg_get_constraintdef(co.oid) FROM pg_constraint co
            WHERE co.contype = 'c' AND co.contypid <> 0 AND co.convalidated"""):
            domains.setdefault(int(oid), []).append(expr)
        if domains:
            for name, table in catalog.tables.items():
                for col in table.columns.values():
                    for expr in domains.get(col.type_oid or -1, ()):
                        found.append((name, _for_column(expr, col.name)))
        return found
    found = []
    for name, sql in d.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"):
        for expr in sqlite_checks(sql):
            found.append((TableName(None, name), f"CHECK ({expr})"))
    return found


def _for_column(expr: str, column: str) -> str:
    """A domain constraint's expression with ``VALUE`` standing for ``column``."""
    import re

    quoted = '"' + column.replace('"', '""') + '"'
    return re.sub(r"\bVALUE\b", lambda _: quoted, expr)


def sqlite_checks(sql: str) -> list[str]:
    """The expressions of the CHECK clauses in a CREATE TABLE statement (quotes and comments skipped)."""
    return [expr for _, expr in sqlite_check_clauses(sql)]


def sqlite_check_clauses(sql: str) -> list[tuple[str | None, str]]:
    """(name of ``CONSTRAINT name`` before it or None, expression) of every CHECK clause of a CREATE TABLE."""
    out: list[tuple[str | None, str]] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`[":
            i = _skip_quoted(sql, i)
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if sql[i:i + 5].upper() == "CHECK" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            j = i + 5
            while j < n and sql[j].isspace():
                j += 1
            if j < n and sql[j] == "(":
                end = _matching(sql, j)
                if end is not None:
                    out.append((_constraint_name(sql[:i]), sql[j + 1:end]))
                    i = end + 1
                    continue
        i += 1
    return out


def _constraint_name(before: str) -> str | None:
    """The name of ``CONSTRAINT name`` just before a CHECK clause (``before``: the statement up to it)."""
    import re

    m = re.search(r"\bCONSTRAINT\s+(\"(?:[^\"]|\"\")+\"|`[^`]+`|\[[^\]]+\]|[\w$]+)\s*$", before, re.IGNORECASE)
    if m is None:
        return None
    name = m[1]
    if name[0] in "\"`[":
        name = name[1:-1].replace('""', '"') if name[0] == '"' else name[1:-1]
    return name


def _skip_quoted(sql: str, i: int) -> int:
    close = "]" if sql[i] == "[" else sql[i]
    j = i + 1
    while j < len(sql):
        if sql[j] == close:
            if close != "]" and j + 1 < len(sql) and sql[j + 1] == close:
                j += 2
                continue
            return j + 1
        j += 1
    return len(sql)


def _matching(sql: str, start: int) -> int | None:
    depth = 0
    i = start
    while i < len(sql):
        ch = sql[i]
        if ch in "'\"`[":
            i = _skip_quoted(sql, i)
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


# -- parsing --------------------------------------------------------------------------------------
def parse_check(text: str) -> dict[str, Rule]:
    """``CHECK (…)`` (or the bare expression) → the rules it implies per column; {} when none."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    expr = text.strip()
    if expr[:5].upper() == "CHECK":
        expr = expr[5:].strip()
    if expr.upper().endswith("NOT VALID"):
        expr = expr[:-9].strip()
    try:
        stmt = parse_sql(f"SELECT 1 WHERE {expr}")[0].stmt
    except (ParseError, IndexError):
        return {}
    rules: dict[str, Rule] = {}
    for column, rule in _conjuncts(stmt.whereClause):
        rules[column] = rules[column].merge(rule) if column in rules else rule
    return rules


def _is(node: Any, name: str) -> bool:
    """The node's class by name: pglast's classes are compared by name, not identity (a second import of
    pglast, as a test runner that restores its modules makes, has other classes than the parser's)."""
    return type(node).__name__ == name


def _enum(value: Any) -> str:
    return getattr(value, "name", str(value))


def _conjuncts(node: Any) -> list[tuple[str, Rule]]:
    if _is(node, "BoolExpr"):
        if _enum(node.boolop) == "AND_EXPR":
            return [pair for arg in node.args for pair in _conjuncts(arg)]
        if _enum(node.boolop) == "OR_EXPR":
            return _disjuncts(node.args)
        return []
    one = _simple(node)
    return [one] if one else []


def _disjuncts(args: list[Any]) -> list[tuple[str, Rule]]:
    """``a = 'x' OR a = 'y'``: an IN list; ``a IS NULL OR <rule on a>``: that rule.

    A rule is what generated values are drawn from, so it may be narrower than the check but never wider:
    ``a IS NULL`` branches are dropped only when every other branch is wholly understood and is about
    ``a`` alone (a non-NULL value then has to satisfy one of them), and several branches only join as
    one IN list.
    """
    null_of = [_null_column(arg) for arg in args]
    rest = [arg for arg, col in zip(args, null_of) if col is None]
    parts = [_whole(arg) for arg in rest]
    if not rest or any(p is None for p in parts):
        return []
    columns = {column for p in parts for column, _ in p or ()} | {c for c in null_of if c is not None}
    if len(columns) != 1:
        return []
    column = columns.pop()
    if len(parts) == 1:
        rule = Rule()
        for _, one in parts[0] or ():
            rule = rule.merge(one)
        return [(column, rule)]
    if all(p is not None and len(p) == 1 and p[0][1].values is not None for p in parts):
        return [(column, Rule(values=tuple(v for p in parts for v in p[0][1].values or ()),  # type: ignore[index]
                              values_exact=all(p[0][1].values_exact for p in parts)))]  # type: ignore[index]
    return []


def _whole(node: Any) -> list[tuple[str, Rule]] | None:
    """The rules of ``node`` when every part of it is understood (an OR branch may not drop a part, as
    an AND may: the database still checks the dropped part of an AND, but a rule made from half a branch
    could allow a value the whole branch refuses); None otherwise."""
    if _is(node, "BoolExpr") and _enum(node.boolop) == "AND_EXPR":
        parts = [_whole(arg) for arg in node.args]
        return None if any(p is None for p in parts) else [pair for p in parts for pair in p or ()]
    found = _conjuncts(node)
    return found or None


def _null_column(node: Any) -> str | None:
    """``col IS NULL`` → col (``IS NOT NULL`` is another shape: None)."""
    if _is(node, "NullTest") and _enum(node.nulltesttype) == "IS_NULL":
        return _column(node.arg)
    return None


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def _simple(node: Any) -> tuple[str, Rule] | None:
    if not _is(node, "A_Expr"):
        return None
    op = node.name[-1].sval if node.name else None
    if _enum(node.kind) == "AEXPR_OP" and op in _FLIP:
        left, right = node.lexpr, node.rexpr
        if _const(left) is not _NONE and _const(right) is _NONE:
            left, right, op = right, left, _FLIP[op]
        value = _const(right)
        if value is _NONE:
            return None
        length_of = _length_column(left)
        if length_of is not None:
            if not isinstance(value, int) or isinstance(value, bool):
                return None
            rule = {"<": Rule(max_length=value - 1), "<=": Rule(max_length=value), ">": Rule(min_length=value + 1),
                    ">=": Rule(min_length=value), "=": Rule(min_length=value, max_length=value)}[op]
            return length_of, rule
        cased = _cased_column(left, [value]) if op == "=" else None
        if cased is not None:
            return cased
        column = _column(left)
        if column is None:
            return None
        if op == "=":
            return column, Rule(values=(value,))
        number = _number(value)
        if number is None:
            return None
        return column, {"<": Rule(maximum=number, exclusive_maximum=True), "<=": Rule(maximum=number),
                        ">": Rule(minimum=number, exclusive_minimum=True), ">=": Rule(minimum=number)}[op]
    if _enum(node.kind) == "AEXPR_BETWEEN":
        column = _column(node.lexpr)
        bounds = [_number(_const(v)) for v in node.rexpr or ()]
        if column is None or len(bounds) != 2 or None in bounds:
            return None
        return column, Rule(minimum=bounds[0], maximum=bounds[1])
    if _enum(node.kind) == "AEXPR_IN" and op == "=":
        items = node.rexpr
    elif _enum(node.kind) == "AEXPR_OP_ANY" and op == "=":
        array = _uncast(node.rexpr)
        if not _is(array, "A_ArrayExpr"):
            return None
        items = array.elements
    else:
        return None
    values = [_const(v) for v in items or ()]
    if not values or any(v is _NONE for v in values):
        return None
    cased = _cased_column(node.lexpr, values)
    if cased is not None:
        return cased
    column = _column(node.lexpr)
    if column is None:
        return None
    return column, Rule(values=tuple(values))


_NONE = object()


def _uncast(node: Any) -> Any:
    while _is(node, "TypeCast"):
        node = node.arg
    return node


def _column(node: Any) -> str | None:
    node = _uncast(node)
    if _is(node, "ColumnRef") and node.fields and _is(node.fields[-1], "String"):
        return node.fields[-1].sval
    return None


_CASES = {"upper": str.upper, "lower": str.lower}


def _cased_column(node: Any, values: list[Any]) -> tuple[str, Rule] | None:
    """``upper(col)`` (or ``lower``) compared with ``values``: those values, when each is text already in
    that case (``upper('SC') = 'SC'``, so writing them satisfies the check; a lower-case value in an
    ``upper(…)`` list can never match, and its upper-case form is a guess: left to the database). The
    check also takes other cases of them (``sc``), so the list is not exact."""
    node = _uncast(node)
    if not (_is(node, "FuncCall") and len(node.args or ()) == 1):
        return None
    names = [n.sval.lower() for n in node.funcname]
    case = _CASES.get(names[-1]) if names[:-1] in ([], ["pg_catalog"]) else None
    column = _column(node.args[0])
    if case is None or column is None:
        return None
    if not all(isinstance(v, str) and case(v) == v for v in values):
        return None
    return column, Rule(values=tuple(values), values_exact=False)


def _length_column(node: Any) -> str | None:
    node = _uncast(node)
    if _is(node, "FuncCall") and len(node.args or ()) == 1:
        name = node.funcname[-1].sval.lower()
        if name in ("length", "char_length", "character_length"):
            return _column(node.args[0])
    return None


def _const(node: Any) -> Any:
    """A literal's value (numbers as int or Decimal, text as str), or ``_NONE``."""
    node = _uncast(node)
    negative = False
    if _is(node, "A_Expr") and node.lexpr is None and node.name and node.name[-1].sval == "-":
        negative, node = True, _uncast(node.rexpr)
    if not _is(node, "A_Const") or node.isnull:
        return _NONE
    val = node.val
    if _is(val, "Integer"):
        out: Any = val.ival
    elif _is(val, "Float"):
        out = Decimal(val.fval)
    elif _is(val, "String"):
        out = val.sval
    elif _is(val, "Boolean"):
        out = bool(val.boolval)
    else:
        return _NONE
    if negative:
        if isinstance(out, (int, Decimal)) and not isinstance(out, bool):
            return -out
        return _NONE
    return out


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is _NONE:
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str):  # PostgreSQL writes negative constants as '-5'::integer
        try:
            out = Decimal(value.strip())
        except InvalidOperation:
            return None
        return out if out.is_finite() else None
    return None
