"""``auto`` rows: every column a Python fixture leaves out gets a valid, deterministic value.

What a value depends on: the project's ``faker_seed`` and ``faker_locale``, the fixture's name, the
column and the row number -- nothing else (not the order of files, not the other rows), so a rerun
produces the same rows and writes nothing, and raising ``count`` only adds rows.

How each constraint is kept, without retries:

- type and length: values are built for the column's kind, text cut to ``varchar(n)`` / ``CHECK
  (length(…) <= n)``;
- simple CHECK constraints (ranges, IN lists) and enums: values are drawn from inside them;
- NOT NULL: every column is filled (columns with a default are left to the database, except the
  fixture's key, which a row must carry);
- unique keys, single or composite: one column of each key is made injective in the row number
  (``lo + n - 1`` for numbers, a ``-n`` suffix for text, ``+n`` days/seconds for dates and times, ``n`` in
  the low bits of a UUID), so distinct rows never collide at any count; a key made only of foreign
  keys walks the parent rows in mixed radix (every combination once) instead;
- foreign keys: picked among the parent rows -- the rows this run's fixtures write to the parent
  table (in their order), or, when none do, the rows already in it (ordered by the referenced
  columns). ``per={"user_id": 3}`` gives each parent row 3 consecutive rows.

Realistic text comes from Faker, chosen by the column's name (email, first_name, phone, url, city, …):
a pool of values is made once per column from the seed, and each row picks from it by a hash of its
number, so a million rows cost a million hash computations, not a million Faker calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import field
from decimal import Decimal
from typing import Any

from .._record import dataclass
from ..db.catalog import Catalog, Column, ForeignKey, Table, TableName
from ..errors import FixtureError
from ..seed.model import Fixture, make_ref
from .build import _INT_RANGES, _LENGTH, _NUMERIC
from .checks import Rule, Rules

_M = (1 << 64) - 1
POOL = 1024
EPOCH = dt.datetime(2020, 1, 1)
SPAN_SECONDS = 5 * 365 * 86400  # generated timestamps fall in 2020-2024


@dataclass
class AutoSpec:
    name: str  # the fixture's name (values derive from it, not from the file's path)
    faker_seed: int
    faker_locale: str
    per: dict[str, int] = field(default_factory=dict)
    generator: bool = False
    bound: bool = False
    pools: Any = None  # where the value pools are kept across runs (seedkit.seed.rerun.Pools), if anywhere


def _salt(*parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def multiplier(salt: int) -> int:
    """An odd 64-bit multiplier per column, the first step of ``_hash`` (a bijection of 64-bit ints)."""
    return (mix(salt) | 1) & _M


def mix(x: int) -> int:
    """splitmix64: a cheap, well-spread 64-bit hash of an int."""
    x = (x + 0x9E3779B97F4A7C15) & _M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M
    return x ^ (x >> 31)


# -- providers by column name -------------------------------------------------------------------
_PROVIDERS: list[tuple[str, str]] = [  # (regex on the column name, Faker method)
    (r"e_?mail", "email"), (r"^first_?name$|^given_?name$", "first_name"),
    (r"^last_?name$|^family_?name$|^surname$", "last_name"), (r"user_?name|login|handle|nick", "user_name"),
    (r"^(full_?)?name$|display_?name|author|contact", "name"), (r"phone|mobile|fax", "phone_number"),
    (r"(^|_)ip(v[46])?(_?addr(ess)?)?$", "ipv4"), (r"url|website|homepage|link", "url"),
    (r"street|address", "street_address"),
    (r"city|town", "city"), (r"country", "country"), (r"state|province|region", "state"),
    (r"zip|postal|postcode", "postcode"), (r"company|organi[sz]ation|employer", "company"),
    (r"job|occupation", "job"), (r"^title$|headline|subject", "sentence"), (r"slug", "slug"),
    (r"description|bio|body|content|text|comment|note|summary|message", "paragraph"),
    (r"color|colour", "color_name"), (r"currency", "currency_code"),
    (r"^(lang|language|locale)$", "language_code"), (r"user_?agent", "user_agent"), (r"password|hash", "sha256"),
]


# Per pattern above, words of which every match holds one: a name holding none is not searched, so a run
# compiles only the few patterns its column names could match (compiling all is a good part of a small rerun)
_NEEDS: list[tuple[str, ...]] = [
    ("mail",), ("name",), ("name",), ("name", "login", "handle", "nick"), ("name", "author", "contact"),
    ("phone", "mobile", "fax"), ("ip",), ("url", "website", "homepage", "link"), ("street", "address"),
    ("city", "town"), ("country",), ("state", "province", "region"), ("zip", "postal", "postcode"),
    ("company", "organi", "employer"), ("job", "occupation"), ("title", "headline", "subject"), ("slug",),
    ("description", "bio", "body", "content", "text", "comment", "note", "summary", "message"),
    ("color", "colour"), ("currency",), ("lang", "locale"), ("agent",), ("password", "hash"),
]


def provider_for(column: str) -> str | None:
    low = column.lower()
    for (pattern, method), needs in zip(_PROVIDERS, _NEEDS, strict=True):
        if any(word in low for word in needs) and re.search(pattern, low):
            return method
    return None


_FAKERS: dict[str, Any] = {}


def _pool(spec: AutoSpec, table: Table, column: str, method: str, max_length: int | None) -> list[str]:
    kept = spec.pools.get([spec.faker_locale, spec.faker_seed, spec.name, column, method, max_length, POOL]) \
        if spec.pools is not None else None
    if kept is not None:  # the same values Faker gave a run before (same Faker, locale, seed and column)
        return kept
    out = _make_pool(spec, column, method, max_length)
    if spec.pools is not None:
        spec.pools.put([spec.faker_locale, spec.faker_seed, spec.name, column, method, max_length, POOL], out)
    return out


def _make_pool(spec: AutoSpec, column: str, method: str, max_length: int | None) -> list[str]:
    from .._faker import import_faker  # faker without its locale census at import

    fake = _FAKERS.get(spec.faker_locale)
    if fake is None:
        fake = _FAKERS[spec.faker_locale] = import_faker()(spec.faker_locale, use_weighting=False)
    fake.seed_instance(_salt(spec.faker_seed, spec.name, column, "pool"))
    make = getattr(fake, method)
    out = []
    for _ in range(POOL):
        value = str(make())
        if max_length is not None:
            value = value[:max_length].rstrip() or value[:max_length]
        out.append(value)
    return out


# -- per-column rules ----------------------------------------------------------------------------
@dataclass
class Bounds:
    lo: Decimal | None = None
    hi: Decimal | None = None
    values: tuple[Any, ...] | None = None
    max_length: int | None = None
    min_length: int | None = None


def _bounds(col: Column, rule: Rule | None, dialect: str) -> Bounds:
    b = Bounds()
    if col.kind == "int":
        bits = _INT_RANGES.get(col.type.lower().strip(), 63) if dialect == "postgresql" else 63
        b.lo, b.hi = Decimal(-(2**bits)), Decimal(2**bits - 1)
    elif col.kind == "numeric":
        m = _NUMERIC.match(col.type or "")
        if m:
            scale = int(m[2] or 0)
            limit = Decimal(10) ** (int(m[1]) - scale) - Decimal(1).scaleb(-scale)
            b.lo, b.hi = -limit, limit
    elif col.kind == "text":
        m = _LENGTH.match(col.type or "")
        if m:
            b.max_length = int(m[1])
    if col.kind == "enum" and col.enum_values:
        b.values = tuple(col.enum_values)
    if rule is not None:
        step = Decimal(1) if col.kind == "int" else Decimal("0.01")
        if rule.minimum is not None:
            lo = rule.minimum + (step if rule.exclusive_minimum else 0)
            b.lo = lo if b.lo is None else max(b.lo, lo)
        if rule.maximum is not None:
            hi = rule.maximum - (step if rule.exclusive_maximum else 0)
            b.hi = hi if b.hi is None else min(b.hi, hi)
        if rule.values is not None:
            b.values = rule.values if b.values is None else tuple(v for v in b.values if v in rule.values)
        if rule.max_length is not None:
            b.max_length = rule.max_length if b.max_length is None else min(b.max_length, rule.max_length)
        if rule.min_length is not None:
            b.min_length = rule.min_length
    if col.kind == "int":
        if b.lo is not None:
            b.lo = b.lo.to_integral_value(rounding="ROUND_CEILING")
        if b.hi is not None:
            b.hi = b.hi.to_integral_value(rounding="ROUND_FLOOR")
    return b


def _scale(col: Column) -> int:
    m = _NUMERIC.match(col.type or "")
    return int(m[2] or 0) if m else 2


class CannotFill(FixtureError):
    pass


# -- generators: n (1-based row number) → value ----------------------------------------------------
@dataclass
class Expr:
    """A column's value as a Python expression in the row number ``n``; ``env`` holds the names it uses.

    The expressions of all the columns a fixture leaves out are compiled into one function per
    fixture, so a row costs one call, not one per column (``fill_function``)."""

    code: str
    env: dict[str, Any] = field(default_factory=dict)


Gen = Expr


def call(fn: Callable[[int], Any]) -> Expr:
    return Expr("{F}(n)", {"F": fn})


_SPREAD = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd: a multiplier known to spread well (Fibonacci hashing)


def _hash(salt: int) -> str:
    """An expression spreading consecutive ``n`` over 0…2**40, well for a few rows as for millions.

    ``(n ^ salt) * k`` alone (``k = multiplier(salt)``, random per column) is not enough: when ``k`` is
    small, or near a small rational multiple of 2**64, consecutive rows move its product by ``d * k``,
    which barely touches the bits a value is taken from -- about 2 % of the columns with two allowed
    values got the same one on all of rows 1…20 (a fair hash: 2e-6; tests/test_auto_spread.py).
    A xorshift, a multiplication by a fixed well-spread odd constant and a xorshift finish it (as
    murmur3's and splitmix64's finalizers do), so every bit of the result depends on every bit of
    the product: six integer operations more per value, inline (assignment expressions, no call).
    Every step is a bijection of 64-bit ints; the ``>> 24`` is not, and nothing needs it to be: a
    column that must be unique takes its uniqueness from the rank of ``n``, never from this hash.
    ``_x``/``_y`` are scratch names of the function ``fill_function`` compiles (or of a lambda)."""
    return (f"(((_y := ((_x := (n ^ {salt}) * {multiplier(salt)} & {_M}) ^ (_x >> 32)) * {_SPREAD} & {_M})"
            f" ^ (_y >> 32)) >> 24)")


def fill_function(columns: list[tuple[str, Expr]]) -> Callable[[int, dict[str, Any]], None]:
    """``fill(n, row)`` setting every column of ``columns`` in ``row``, compiled once."""
    env: dict[str, Any] = {}
    lines = ["def fill(n, row):"]
    for i, (col, expr) in enumerate(columns):
        names = {key: f"_{i}_{key}" for key in expr.env}
        env.update({names[key]: value for key, value in expr.env.items()})
        lines.append(f"    row[{col!r}] = {expr.code.format(**names)}")
    if not columns:
        lines.append("    pass")
    namespace: dict[str, Any] = dict(env)
    exec(compile("\n".join(lines), "<seedkit auto>", "exec"), namespace)  # noqa: S102 - our own expressions
    return namespace["fill"]


def _value_gen(col: Column, b: Bounds, spec: AutoSpec, table: Table, *, unique: str | None,
               dialect: str, count: int | None) -> Expr:
    """The value of one column. ``unique``: an expression of the 0-based rank it must be injective in."""
    salt = _salt(spec.faker_seed, spec.name, col.name)
    h = _hash(salt)
    kind = col.kind
    where = f"column {col.name!r} of {table.name} ({col.type})"
    if b.values is not None:
        values = list(b.values)
        if not values:
            raise CannotFill(f"auto: no value satisfies the CHECK constraints on {where}")
        if unique is not None:
            if count is not None and count > len(values):
                raise CannotFill(f"auto: {where} is part of a unique key but allows only {len(values)} values "
                                 f"for {count} rows", hint="set the column in the fixture, or lower count")
            return Expr(f"{{V}}[{unique} % {len(values)}]", {"V": values})
        return Expr(f"{{V}}[{h} % {len(values)}]", {"V": values})
    if kind in ("int", "numeric", "float"):
        lo = b.lo if b.lo is not None else None
        hi = b.hi if b.hi is not None else None
        if unique is not None:
            start = Decimal(1) if lo is None or lo <= 1 else lo
            if hi is not None and hi < start:  # only values below 1 are allowed
                start = lo if lo is not None else hi - Decimal(count or 0) + 1
            if count is not None and hi is not None and start + count - 1 > hi:
                raise CannotFill(f"auto: {where} is part of a unique key but its range holds fewer than {count} "
                                 "values", hint="set the column in the fixture, or lower count")
            base = int(start)
            if kind == "int":
                return Expr(f"{base} + {unique}")
            if kind == "float":
                return Expr(f"float({base} + {unique})")
            return Expr(f"{{D}}({base} + {unique})", {"D": Decimal})
        # a friendly window (1…1000) moved inside the allowed range
        lo_v, hi_v = Decimal(1), Decimal(1000)
        if lo is not None:
            lo_v = max(lo_v, lo)
        if hi is not None:
            hi_v = min(hi_v, hi)
        if lo_v > hi_v:
            if lo is not None and lo > 1000:
                lo_v, hi_v = lo, lo + 999 if hi is None else min(hi, lo + 999)
            elif hi is not None:
                hi_v = hi
                lo_v = hi - 999 if lo is None else max(lo, hi - 999)
        if hi_v < lo_v:
            raise CannotFill(f"auto: no value satisfies the CHECK constraints on {where}")
        if kind == "int":
            return Expr(f"{int(lo_v)} + {h} % {int(hi_v - lo_v) + 1}")
        scale = _scale(col) if kind == "numeric" else 2
        unit = 10**scale
        a_units, span_units = int(lo_v * unit), int((hi_v - lo_v) * unit) + 1
        if kind == "float":
            return Expr(f"({a_units} + {h} % {span_units}) / {unit}")
        return Expr(f"{{D}}({a_units} + {h} % {span_units}).scaleb({-scale})", {"D": Decimal})
    if kind == "bool":
        if unique is not None:
            raise CannotFill(f"auto: a boolean cannot keep a unique key unique ({where})")
        return Expr(f"({h} & 1) == 1")
    if kind == "uuid":
        import uuid  # (here: it imports platform, which a run without a UUID column to fill does not need)

        high = salt << 64
        return Expr(f"{{U}}(int={high} | {unique if unique is not None else h}, version=4)", {"U": uuid.UUID})
    if kind == "date":
        if unique is not None:
            return Expr(f"{{B}} + {{T}}({unique})", {"B": EPOCH.date(), "T": dt.timedelta})
        days = [EPOCH.date() + dt.timedelta(days=i) for i in range(1826)]
        return Expr(f"{{V}}[{h} % 1826]", {"V": days})
    if kind in ("timestamp", "timestamptz"):
        epoch = EPOCH.replace(tzinfo=dt.timezone.utc) if kind == "timestamptz" else EPOCH
        return Expr(f"{{B}} + {{T}}(0, {unique if unique is not None else f'{h} % {SPAN_SECONDS}'})",
                    {"B": epoch, "T": dt.timedelta})
    if kind == "time":
        if unique is not None:
            return call(lambda n, r=_rank_fn(unique): (dt.datetime.min + dt.timedelta(microseconds=r(n))).time())
        times = [(dt.datetime.min + dt.timedelta(minutes=i)).time() for i in range(1440)]
        return Expr(f"{{V}}[{h} % 1440]", {"V": times})
    if kind == "interval":
        return Expr(f"{{T}}(0, 60 * ({unique if unique is not None else f'{h} % 10080'}))", {"T": dt.timedelta})
    if kind == "json":
        return Expr("{{'n': n}}")
    if kind == "array":
        return Expr("[]")
    if kind == "bytes":
        return Expr(f"({unique if unique is not None else h}).to_bytes(8, 'big')")
    if kind == "text":
        return _text_gen(col, b, spec, table, unique=unique, salt=salt, count=count, where=where)
    if kind == "enum":
        raise CannotFill(f"auto: the enum type of {where} has no labels")
    if col.nullable and unique is None:
        return Expr("None")
    raise CannotFill(f"auto cannot make values of type {col.type} ({where})",
                     hint=f"set {col.name!r} in the fixture's rows")


def _rank_fn(rank: str) -> Callable[[int], int]:
    return eval(f"lambda n: {rank}")  # noqa: S307 - our own arithmetic on n


def _text_gen(col: Column, b: Bounds, spec: AutoSpec, table: Table, *, unique: str | None,
              salt: int, count: int | None, where: str) -> Expr:
    limit = b.max_length
    h = _hash(salt)
    method = provider_for(col.name) or "word"
    pool = _pool(spec, table, col.name, method, limit)
    min_len = b.min_length or 0
    if min_len:
        pool = [(p + "x" * min_len)[: max(min_len, len(p))] for p in pool]
    size = len(pool)
    if unique is None:
        return Expr(f"{{P}}[{h} % {size}]", {"P": pool})
    widest = len(str(count)) if count is not None else 7  # digits of the largest rank + 1
    if limit is not None and widest + 1 > limit:
        raise CannotFill(f"auto: {where} is part of a unique key, but {count} distinct values do not fit "
                         f"in {limit} characters", hint="set the column in the fixture")
    if method == "email":
        locals_, domains = [], []
        for value in pool:
            local, _, domain = value.partition("@")
            domain = "@" + domain
            if limit is not None and len(domain) + widest + 2 > limit:
                domain = "@x.io"
            room = len(local) if limit is None else limit - len(domain) - widest - 1
            locals_.append(local[:max(room, 0)] + "." if room > 0 else "")
            domains.append(domain)
        return Expr(f"{{L}}[{h} % {size}] + str({unique} + 1) + {{M}}[{h} % {size}]", {"L": locals_, "M": domains})
    heads = [p[: max(0, limit - widest - 1)] if limit is not None else p for p in pool]
    heads = [head + "-" if head else "" for head in heads]
    return Expr(f"{{P}}[{h} % {size}] + str({unique} + 1)", {"P": heads})


# -- binding fixtures to the catalog --------------------------------------------------------------
@dataclass
class Parents:
    """The rows a foreign key picks from: concrete referenced values, or references by key."""

    size: int
    get: Callable[[int], tuple[Any, ...]]
    start: int | None = None  # the parents' referenced column is start + index (an auto parent's id)


class Binder:
    def __init__(self, fixtures: list[Fixture], catalog: Catalog, d: Any, rules: Rules):
        self.fixtures = fixtures
        self.catalog = catalog
        self.d = d
        self.rules = rules
        self.plans: dict[int, Any] = {}
        self.parents: dict[tuple[TableName, tuple[str, ...]], Parents] = {}
        self.busy: set[TableName] = set()

    def by_table(self, name: TableName) -> list[Fixture]:
        out = []
        for fx in self.fixtures:
            t = self.catalog.find(fx.table)
            if t is not None and t.name == name:
                out.append(fx)
        return out

    def parent_values(self, fk: ForeignKey) -> Parents:
        cache_key = (fk.ref_table, fk.ref_columns)
        if cache_key in self.parents:
            return self.parents[cache_key]
        if fk.ref_table in self.busy:
            raise CannotFill(f"auto: the rows of {fk.ref_table} depend on themselves through foreign keys",
                             hint=f"set {', '.join(fk.columns)} in the fixture")
        self.busy.add(fk.ref_table)
        try:
            result = self._parent_values(fk)
        finally:
            self.busy.discard(fk.ref_table)
        self.parents[cache_key] = result
        return result

    def _parent_values(self, fk: ForeignKey) -> Parents:
        fixtures = self.by_table(fk.ref_table)
        cols = fk.ref_columns
        if not fixtures:
            d = self.d
            order = ", ".join(d.quote(c) for c in cols)
            rows = [tuple(r) for r in d.fetchall(
                f"SELECT {order} FROM {d.qualified(fk.ref_table)} WHERE "
                + " AND ".join(f"{d.quote(c)} IS NOT NULL" for c in cols) + f" ORDER BY {order}")]
            return Parents(len(rows), rows.__getitem__)
        # one auto parent whose referenced column is its injective integer: no list needed
        if len(fixtures) == 1 and fixtures[0].auto is not None and len(cols) == 1:
            plan = self.plan_for(fixtures[0])
            start = plan.range_start.get(cols[0]) if plan is not None else None
            if start is not None and fixtures[0].count is not None:
                return Parents(fixtures[0].count, lambda i, s=start: (s + i,), start=start)
        values: list[tuple[Any, ...]] = []
        table = self.catalog.tables[fk.ref_table]
        for fx in fixtures:
            key = fx.header.key or list(table.primary_key)
            for n, row in fx.numbered():
                if all(c in row and row[c] is not None and not hasattr(row[c], "match") for c in cols):
                    values.append(tuple(row[c] for c in cols))
                elif len(cols) == 1 and key and all(k in row for k in key):
                    values.append((make_ref(str(fk.ref_table), {k: row[k] for k in key}, column=cols[0]),))
                else:
                    raise CannotFill(f"auto: cannot tell which {', '.join(cols)} the rows of {fx.source} get in "
                                     f"{fk.ref_table} (row {n} sets neither them nor its key)",
                                     location=fx.location, hint=f"set {', '.join(fk.columns)} in the fixture")
        return Parents(len(values), values.__getitem__)

    def plan_for(self, fx: Fixture) -> RowPlan | None:
        plan = self.plans.get(id(fx))
        if isinstance(plan, FixtureError):
            raise plan
        if plan is None and fx.auto is not None:
            try:
                plan = self.plans[id(fx)] = RowPlan(self, fx)
            except FixtureError as exc:
                if exc.location is None:
                    exc.location = fx.location
                self.plans[id(fx)] = exc
                raise
        return plan


def bind_auto(fixtures: list[Fixture], catalog: Catalog, d: Any, rules: Rules) -> None:
    """Give every ``auto`` fixture its table: its stream fills the columns its rows leave out."""
    autos = [fx for fx in fixtures if fx.auto is not None and not fx.auto.bound]
    if not autos:
        return
    binder = Binder(fixtures, catalog, d, rules)
    problems: list[FixtureError] = []
    for fx in autos:
        try:
            binder.plan_for(fx)
        except FixtureError as exc:
            if exc not in problems:
                problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise FixtureError(f"{len(problems)} auto fixtures cannot be filled:", problems=problems)


class RowPlan:
    """How one auto fixture's rows are completed: one generator per column the rows leave out."""

    def __init__(self, binder: Binder, fx: Fixture):
        spec: AutoSpec = fx.auto
        self.fx = fx
        self.spec = spec
        self.table = table = binder.catalog.get(fx.table, location=fx.location)
        self.range_start: dict[str, int] = {}
        dialect = binder.catalog.dialect
        rules = binder.rules.get(table.name, {})
        inner = fx.stream
        assert inner is not None
        known = fx.count
        if known is None and not spec.generator:
            fx.count = 1  # count comes from per=: look at the first row meanwhile
        first = next(iter(inner()), None)
        fx.count = known
        given = set(first[1]) if first is not None else set()
        key = list(fx.header.key or table.primary_key)
        fill = [c for c in table.columns.values() if c.name not in given and not c.generated
                and (not c.has_default or c.name in key)]
        fill_names = {c.name for c in fill}
        fks = [fk for fk in table.foreign_keys if all(c in fill_names for c in fk.columns)
               and fk.ref_table != table.name]
        self_fks = [fk for fk in table.foreign_keys if fk.ref_table == table.name
                    and all(c in fill_names for c in fk.columns)]
        per = self._per(fks, spec)
        parents = {fk.name: binder.parent_values(fk) for fk in fks}
        for fk in fks:
            if parents[fk.name].size == 0 and not all(table.columns[c].nullable for c in fk.columns):
                raise CannotFill(f"auto: {table.name}.{', '.join(fk.columns)} needs a row of {fk.ref_table} to "
                                 f"point at, and there is none", location=fx.location,
                                 hint=f"seed {fk.ref_table} first (a fixture in this run, or rows in the database)")
        if fx.count is None and not spec.generator:
            fk, k = next(iter(per.values()))
            fx.count = parents[fk.name].size * k
        count = fx.count
        fk_of = {c: fk for fk in fks for c in fk.columns}
        # unique keys: one injective column each, or a mixed-radix walk over their foreign keys
        injective: dict[str, str] = {}  # column → expression of its 0-based rank
        spans: dict[str, int | None] = {}  # how many distinct values the injective column needs
        radix: dict[str, Callable[[int], int]] = {}  # fk name → parent index
        for ukey in table.unique_keys:
            cols = ukey.columns
            if any(c in injective for c in cols) or (all(c in fk_of for c in cols)
                                                     and all(fk_of[c].name in radix for c in cols)):
                continue
            if all(c in given for c in cols):
                continue  # the fixture builds this key itself
            if any(c not in given and c not in fill_names for c in cols):
                continue  # a column left to its default (a serial id): the database makes it unique
            group = next((per[fk_of[c].name][1] for c in cols if c in fk_of and fk_of[c].name in per), None)
            rank = f"((n - 1) % {group})" if group else "(n - 1)"

            choice = self._injective_column(cols, fill_names, fk_of, rules, dialect)
            if choice is not None:
                injective[choice] = rank
                spans[choice] = group or count
                continue
            key_fks = list(dict.fromkeys(fk_of[c] for c in cols if c in fk_of))
            if not key_fks or any(c not in fill_names for c in cols if c not in fk_of):
                raise CannotFill(f"auto: cannot keep the unique key ({', '.join(cols)}) of {table.name} unique",
                                 location=fx.location, hint="set one of its columns in the fixture from n")
            self._mixed_radix(key_fks, per, parents, radix, count, cols)
        self.gens: list[tuple[str, Gen]] = []
        done: set[str] = set()
        for fk in fks:
            values = parents[fk.name]
            if values.size == 0:
                for c in fk.columns:
                    self.gens.append((c, Expr("None")))
            elif len(fk.columns) == 1 and values.start is not None and fk.name in per and fk.name not in radix:
                z = max(values.size, 1)
                self.gens.append((fk.columns[0], Expr(f"{values.start} + ((n - 1) // {per[fk.name][1]}) % {z}")))
            elif len(fk.columns) == 1 and values.start is not None and fk.name not in radix:
                salt = _salt(self.spec.faker_seed, self.spec.name, fk.name)
                self.gens.append((fk.columns[0], Expr(f"{values.start} + {_hash(salt)} % {values.size}")))
            else:
                pick = radix.get(fk.name) or self._pick(fk, per, values)
                for i, c in enumerate(fk.columns):
                    self.gens.append((c, call(lambda n, g=values.get, p=pick, i=i: g(p(n))[i])))
            done.update(fk.columns)
        for fk in self_fks:
            for c in fk.columns:
                if not table.columns[c].nullable:
                    raise CannotFill(f"auto: {table.name}.{c} references its own table and is NOT NULL",
                                     location=fx.location, hint=f"set {c!r} in the fixture")
                self.gens.append((c, Expr("None")))
                done.add(c)
        for col in fill:
            if col.name in done:
                continue
            if col.name in fk_of:
                continue
            if table.name in binder.rules.triggered and col.kind == "other" and col.name not in injective:
                continue  # a BEFORE INSERT trigger may fill it (pagila's film.fulltext): left out of the rows
            b = _bounds(col, rules.get(col.name), dialect)
            gen = _value_gen(col, b, spec, table, unique=injective.get(col.name), dialect=dialect,
                             count=spans.get(col.name, count))
            if col.name in injective and col.kind == "int" and injective[col.name] == "(n - 1)":
                self.range_start[col.name] = _rank_fn(gen.code)(1)
            self.gens.append((col.name, gen))
        self._wrap(inner)
        spec.bound = True

    @staticmethod
    def _per(fks: list[ForeignKey], spec: AutoSpec) -> dict[str, tuple[ForeignKey, int]]:
        out: dict[str, tuple[ForeignKey, int]] = {}
        for target, k in spec.per.items():
            match = [fk for fk in fks if target in (fk.columns[0], str(fk.ref_table), fk.ref_table.name)]
            if not match:
                names = ", ".join(f"{fk.columns[0]} (→ {fk.ref_table})" for fk in fks) or "none"
                raise CannotFill(f"auto: per={{{target!r}: {k}}} names no foreign key that auto fills",
                                 hint=f"name a foreign key column or the table it points at: {names}")
            out[match[0].name] = (match[0], k)
        return out

    def _injective_column(self, cols: tuple[str, ...], fill: set[str], fk_of: dict[str, ForeignKey],
                          rules: dict[str, Rule], dialect: str) -> str | None:
        best = None
        for c in cols:
            if c not in fill or c in fk_of:
                continue
            col = self.table.columns[c]
            rule = rules.get(c)
            if col.kind in ("bool", "enum", "json", "array", "other") or (rule is not None and rule.values):
                continue
            rank = {"int": 0, "uuid": 1, "text": 2, "numeric": 3, "timestamp": 4, "timestamptz": 4, "date": 5}
            score = rank.get(col.kind, 9)
            if best is None or score < best[0]:
                best = (score, c)
        return best[1] if best else None

    def _mixed_radix(self, key_fks: list[ForeignKey], per: dict[str, tuple[ForeignKey, int]],
                     parents: dict[str, Parents], radix: dict[str, Callable[[int], int]], count: int | None,
                     cols: tuple[str, ...]) -> None:
        slow = next((fk for fk in key_fks if fk.name in per), None)
        fast = [fk for fk in key_fks if fk is not slow]
        capacity = 1
        for fk in fast:
            capacity *= max(parents[fk.name].size, 1)
        if slow is not None:
            k = per[slow.name][1]
            if fast and k > capacity:
                raise CannotFill(f"auto: per={k} rows per {slow.ref_table} row cannot keep ({', '.join(cols)}) "
                                 f"unique: there are only {capacity} combinations of the other parents")
            z = max(parents[slow.name].size, 1)
            radix[slow.name] = lambda n, k=k, z=z: ((n - 1) // k) % z
            group: int | None = k
        else:
            group = None
            if count is not None and count > capacity:
                raise CannotFill(f"auto: {count} rows cannot keep ({', '.join(cols)}) of {self.table.name} unique: "
                                 f"the parent rows make only {capacity} combinations",
                                 hint="lower count, or seed more parent rows")
        step = 1
        for fk in fast:
            size = max(parents[fk.name].size, 1)
            if group is not None:
                radix[fk.name] = lambda n, s=step, z=size, g=group: (((n - 1) % g) // s) % z
            else:
                radix[fk.name] = lambda n, s=step, z=size: ((n - 1) // s) % z
            step *= size

    def _pick(self, fk: ForeignKey, per: dict[str, tuple[ForeignKey, int]], parents: Parents) -> Callable[[int], int]:
        size = max(parents.size, 1)
        if fk.name in per:
            k = per[fk.name][1]
            return lambda n: ((n - 1) // k) % size
        salt = _salt(self.spec.faker_seed, self.spec.name, fk.name)
        return _rank_fn(f"{_hash(salt)} % {size}")  # the same hash as a compiled column's

    def _wrap(self, inner: Callable[[], Iterator[tuple[int, dict[str, Any]]]]) -> None:
        gens = self.gens

        def stream() -> Iterator[tuple[int, dict[str, Any]]]:
            fill = None
            for n, row in inner():
                if fill is None:  # every row sets the same columns (the engine checks it)
                    fill = fill_function([(col, gen) for col, gen in gens if col not in row])
                fill(n, row)
                yield n, row

        self.fx.stream = stream
