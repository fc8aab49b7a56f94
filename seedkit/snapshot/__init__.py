"""``seedkit snapshot``: an existing database → fixture files that ``seedkit run`` loads.

catalog → tables and keys (plan.py) → rows chosen, closed under foreign keys (subset.py) → one file
per table, streamed in key order (write.py, render.py), masked on the way (mask.py) → the folder
replaced as a whole, so a failed snapshot leaves the previous one as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

from .. import db
from .._record import dataclass
from ..config import Config, interpolate, load_config
from ..db.catalog import Catalog, TableName, UnknownObject
from ..errors import ConfigError, UsageError
from . import render
from .mask import Mask, build_masks
from .plan import Planner, SnapshotError, TableSpec, load_order, select_tables
from .subset import Seed, Selection
from .write import EmptyText, Progress, write_table

MANIFEST = "_snapshot.yaml"
FORMATS = ("auto", "yaml", "csv")


@dataclass
class TableReport:
    table: str
    file: str
    format: str
    rows: int
    key: list[str]
    dropped: list[str] = field(default_factory=list)  # made-up ids left out
    refs: list[str] = field(default_factory=list)  # columns written as !ref
    masked: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "file": self.file, "format": self.format, "rows": self.rows, "key": self.key,
                "dropped": self.dropped, "refs": self.refs, "masked": self.masked,
                "seconds": round(self.seconds, 3), "note": self.note}


@dataclass
class SnapshotReport:
    database: str
    out: str
    tables: list[TableReport] = field(default_factory=list)
    masked_by_default: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "out": self.out, "rows": self.rows, "seconds": round(self.seconds, 3),
                "tables": [t.to_dict() for t in self.tables], "masked_by_default": self.masked_by_default,
                "warnings": self.warnings}


def parse_where(values: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for text in values:
        table, sep, cond = text.partition(":")
        if not sep or not table.strip() or not cond.strip():
            raise UsageError(f"--where {text!r}: expected \"TABLE: SQL condition\"",
                             hint='e.g. --where "orders: created_at > now() - interval \'30 days\'"')
        out.append((table.strip(), cond.strip()))
    return out


def parse_limit(values: Sequence[str]) -> list[tuple[str, int]]:
    out = []
    for text in values:
        table, sep, n = text.rpartition("=")
        try:
            count = int(n)
        except ValueError:
            count = -1
        if not sep or not table.strip() or count < 0:
            raise UsageError(f"--limit {text!r}: expected TABLE=N with N ≥ 0", hint="e.g. --limit orders=100")
        out.append((table.strip(), count))
    return out


def snapshot(out: str | os.PathLike[str], *, config: Config | str | os.PathLike[str] | None = None,
             env: str | None = None, database_url: str | None = None, tables: Sequence[str] = (),
             exclude: Sequence[str] = (), where: Sequence[str] = (), limit: Sequence[str] = (),
             with_children: bool = False, keep_ids: bool = False, format: str = "auto",
             mask_default: bool = False, progress: Progress | None = None) -> SnapshotReport:
    """Write the database's rows as fixture files into ``out`` (replaced as a whole) and report per table."""
    if not isinstance(config, Config):
        config = load_config(config)
    if format not in FORMATS:
        raise UsageError(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    if env is not None:
        config.env(env)  # an unknown environment is an error, even with --database
    url = config.database_url(env, database_url)
    wheres, limits = parse_where(where), parse_limit(limit)
    target = Path(out)
    if not target.is_absolute():
        target = Path.cwd() / target
    _check_target(target)
    started = time.perf_counter()
    report = SnapshotReport(database=str(url), out=str(out))
    settings = config.settings.snapshot
    if url.dialect == "sqlite":
        conn = db.connect(url, create=False)
    else:
        conn = db.connect(url, wait=config.settings.database.connect_timeout)
    tmp = target.parent / f".{target.name}.snapshot-{os.getpid()}"
    with conn as d, _reading(d):
        catalog = d.catalog(refresh=True)
        chosen, allowed = select_tables(catalog, list(tables), list(exclude), config.settings.migrations.table)
        seeds: dict[TableName, Seed] = {}
        for name, cond in wheres:
            t = _table(catalog, name, "--where", allowed)
            seeds.setdefault(t.name, Seed()).where.append(cond)
        for name, n in limits:
            t = _table(catalog, name, "--limit", allowed)
            seeds.setdefault(t.name, Seed()).limit = n
        for tn in seeds:
            if tn not in {t.name for t in chosen}:
                chosen.append(catalog.tables[tn])
        keys = {_table(catalog, name, "[snapshot.keys]", allowed, config=True).name: cols
                for name, cols in settings.keys.items()}
        masks = _masks(config, catalog, allowed if mask_default else None, report)
        planner = Planner(catalog, allowed, keep_ids=keep_ids, keys=keys, masks=masks)
        planner.relations = _relations(d, allowed)
        planner.collate_c = _not_bytewise(d)
        problems = planner.problems(chosen)
        if problems:
            _refuse(problems, keep_ids)
        selection = Selection(d, catalog, planner, allowed)
        selection.choose(chosen, seeds, with_children, planner.spec)
        output = [catalog.tables[tn] for tn in selection.tables]
        problems = planner.problems(output)
        if problems:
            _refuse(problems, keep_ids)
        planner.output = {t.name for t in output}
        specs = load_order([planner.spec(t) for t in output])
        chosen_names = {t.name for t in chosen}
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            for spec in specs:
                where_sql = selection.filter(spec.table.name)
                # the exact count only feeds a progress bar; otherwise counting stops where it decides
                total, has_empty = _count(d, spec, where_sql, None if progress else max(settings.csv_rows, 1))
                if total == 0 and spec.table.name not in chosen_names:
                    continue  # a parent table none of the chosen rows refers to
                fmt, note = _format(spec, format, total, has_empty, settings.csv_rows)
                filename = _file_name(spec, fmt)
                t0 = time.perf_counter()
                if progress is not None:
                    progress(spec.name, 0, total)
                try:
                    with open(tmp / filename, "wb") as fh:
                        rows = write_table(d, spec, where_sql, fmt, fh, total, progress)
                except EmptyText:  # found while streaming (PostgreSQL): the table goes to YAML after all
                    (tmp / filename).unlink()
                    fmt, note = "yaml", "written as YAML: the table holds empty strings (an empty CSV cell is NULL)" \
                        if format == "csv" else None
                    filename = _file_name(spec, fmt)
                    with open(tmp / filename, "wb") as fh:
                        rows = write_table(d, spec, where_sql, fmt, fh, total, progress)
                if progress is not None:
                    progress(spec.name, rows, total)
                report.tables.append(TableReport(
                    table=spec.name, file=filename, format=fmt, rows=rows, key=list(spec.key), dropped=spec.dropped,
                    refs=spec.refs, masked=spec.masked, seconds=time.perf_counter() - t0, note=note))
            (tmp / MANIFEST).write_text(_manifest(report), encoding="utf-8")
            _replace(target, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    report.seconds = time.perf_counter() - started
    return report


@contextlib.contextmanager
def _reading(d: db.Database) -> Iterator[None]:
    """One consistent read of every table; nothing is ever written to the source database."""
    if d.dialect == "postgresql":
        class _Done(Exception):
            pass

        try:
            with d.transaction():
                d.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                for setting, value in (("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"), ("IntervalStyle", "postgres"),
                                       ("bytea_output", "hex"), ("extra_float_digits", "1"),
                                       ("standard_conforming_strings", "on"), ("client_encoding", "UTF8"),
                                       ("work_mem", "64MB")):
                    d.execute("SELECT set_config(%s, %s, true)", [setting, value])
                yield
                raise _Done  # roll back: the temporary tables go with it
        except _Done:
            pass
    else:
        d.execute("BEGIN")
        try:
            yield
        finally:
            if d.in_transaction:
                d.conn.execute("ROLLBACK")


def _table(catalog: Catalog, name: str, option: str, allowed: list, *, config: bool = False) -> Any:
    try:
        table = catalog.get(name)
    except UnknownObject as exc:
        if config:
            raise ConfigError(f"{option}: {exc.message}", hint=exc.hint) from None
        raise UnknownObject("table", name, [str(t.name) for t in allowed]) from None
    if table not in allowed:
        raise SnapshotError(f"{option} {name}: {table.name} is not part of the snapshot (excluded, seedkit's own, "
                            "or a migration history table)")
    return table


def _masks(config: Config, catalog: Catalog, defaults_for: list | None, report: SnapshotReport
           ) -> dict[tuple[TableName, str], Mask]:
    settings = config.settings.snapshot
    if not settings.mask and defaults_for is None:
        return {}
    if settings.salt:
        salt = interpolate(settings.salt, config.variables, where="snapshot.salt")
    else:
        salt = f"seedkit:{config.settings.seeds.faker_seed}"
        report.warnings.append("masking without [snapshot] salt: anyone can recompute the masked values; "
                               'set salt = "${SNAPSHOT_SALT}" and keep the variable secret')
    masks = build_masks(settings.mask, catalog, salt=salt, locale=config.settings.seeds.faker_locale,
                        defaults_for=defaults_for)
    report.masked_by_default = sorted(f"{tn}.{c} → {m.provider}" for (tn, c), m in masks.items()
                                      if m.source == "default")
    return masks


def _refuse(problems: list[str], keep_ids: bool) -> None:
    hints = []
    if any("no primary key" in p for p in problems):
        hints.append("add a primary key or unique constraint to a table without one, or leave it out with --exclude")
    if any("made-up key" in p for p in problems):
        hints.append("name a natural key in [snapshot.keys] (backed by a unique constraint), or pass --keep-ids "
                     "to write the ids")
    raise SnapshotError("cannot write these tables with a natural key:\n  " + "\n  ".join(problems),
                        hint="; ".join(hints))


def _relations(d: db.Database, tables: list) -> dict[TableName, str]:
    """FROM text per table: PostgreSQL reads a table's own rows (ONLY), a partitioned table whole."""
    if d.dialect != "postgresql":
        return {t.name: d.qualified(t.name) for t in tables}
    partitioned = {TableName(s, n) for s, n in d.fetchall(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'p'")}
    return {t.name: d.qualified(t.name) if t.name in partitioned else "ONLY " + d.qualified(t.name) for t in tables}


def _not_bytewise(d: db.Database) -> frozenset[tuple[TableName | None, str]]:
    """PostgreSQL text columns whose collation is not byte order: sorted with COLLATE "C" so the files
    come out the same from databases with other collations (a column already in "C" keeps its index)."""
    if d.dialect != "postgresql":
        return frozenset()
    return frozenset((TableName(s, t), c) for s, t, c in d.fetchall("""
        SELECT n.nspname, cl.relname, a.attname FROM pg_attribute a
        JOIN pg_class cl ON cl.oid = a.attrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
        JOIN pg_collation co ON co.oid = a.attcollation
        WHERE a.attnum > 0 AND NOT a.attisdropped AND cl.relkind IN ('r', 'p')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND (CASE WHEN co.collname = 'default'
                    THEN (SELECT datcollate FROM pg_database WHERE datname = current_database())
                    ELSE co.collname END) NOT IN ('C', 'POSIX', 'ucs_basic')"""))


def _count(d: db.Database, spec: TableSpec, where: str | None, upto: int | None) -> tuple[int, bool]:
    """Rows to write (``upto``: at most that many are counted), and (SQLite) whether a text cell is the
    empty string (CSV reads an empty cell as NULL); PostgreSQL checks that while it streams the rows."""
    q = d.quote
    source = f"{spec.relation} AS t" + (f" WHERE {where}" if where else "")
    if d.dialect == "sqlite":
        textual = [c for c, it in spec.items if getattr(it, "column", None) is not None
                   and it.column.kind in ("text", "enum", "other")]  # type: ignore[union-attr]
        empty = " OR ".join(f"t.{q(c)} = ''" for c in textual) or "0"
        row = d.fetchone(f"SELECT count(*), coalesce(max({empty}), 0) FROM {source}")
    elif upto is None:
        row = d.fetchone(f"SELECT count(*), false FROM {source}")
    else:
        row = d.fetchone(f"SELECT count(*), false FROM (SELECT 1 FROM {source} LIMIT {int(upto)}) s")
    assert row is not None
    return int(row[0]), bool(row[1])


def _format(spec: TableSpec, wanted: str, rows: int, has_empty: bool, csv_rows: int) -> tuple[str, str | None]:
    if wanted == "yaml":
        return "yaml", None
    reason = None
    if not spec.csv_ok:
        reason = ("references other tables by key" if spec.refs else
                  "leaves out made-up ids" if spec.dropped else
                  "is not keyed by its primary key" if set(spec.key) != set(spec.table.primary_key) else
                  "has a column name CSV cannot hold")
    elif has_empty:
        reason = "holds empty strings (an empty CSV cell is NULL)"
    elif any(m.provider is None and m.constant == "" for m in (it.mask for _, it in spec.items
                                                                  if getattr(it, "mask", None))):
        reason = "is masked with an empty string"
    if wanted == "csv":
        return ("yaml", f"written as YAML: the table {reason}") if reason else ("csv", None)
    return ("csv", None) if reason is None and rows >= csv_rows else ("yaml", None)


def _file_name(spec: TableSpec, fmt: str) -> str:
    stem = spec.name
    if fmt == "csv":
        return stem + ".csv"  # csv_ok checked the name is usable
    if stem.startswith((".", "_")) or any(ch in stem for ch in "/\\\x00:") or not stem.strip():
        import hashlib

        stem = "table_" + "".join(ch if ch.isalnum() else "_" for ch in stem) + "_" + hashlib.sha1(
            stem.encode()).hexdigest()[:6]
    return stem + ".yaml"


def _manifest(report: SnapshotReport) -> str:
    lines = ["# Written by `seedkit snapshot`: the tables of this folder in the order `seedkit run` loads them.",
             "# Files whose names start with _ are not fixtures.", "tables:"]
    for t in report.tables:
        entry = (f"- {{table: {render.name(t.table)}, file: {render.name(t.file)}, rows: {t.rows}, "
                 f"key: [{', '.join(render.name(k) for k in t.key)}]")
        if t.masked:
            entry += f", masked: [{', '.join(render.name(c) for c in t.masked)}]"
        lines.append(entry + "}")
    return "\n".join(lines) + "\n"


def _check_target(target: Path) -> None:
    """The folder must be new, empty, or an earlier snapshot with nothing else in it."""
    if not target.exists():
        if target.parent.exists() and not target.parent.is_dir():
            raise UsageError(f"--out {target}: {target.parent} is a file, not a folder")
        return  # created with its parents
    if not target.is_dir():
        raise UsageError(f"--out {target} is a file, not a folder")
    present = {p.name for p in target.iterdir()}
    if not present:
        return
    manifest = target / MANIFEST
    if not manifest.is_file():
        raise UsageError(f"--out {target} is not empty and holds no earlier snapshot ({MANIFEST})",
                         hint="choose a new or empty folder; a snapshot replaces the whole folder")
    import yaml

    try:
        listed = {e["file"] for e in (yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}).get("tables", [])}
    except Exception:  # noqa: BLE001 - an unreadable manifest: treat the folder as foreign
        listed = set()
    foreign = sorted(present - listed - {MANIFEST})
    if foreign:
        raise UsageError(f"--out {target} holds files the earlier snapshot did not write: {', '.join(foreign[:5])}",
                         hint="move them elsewhere; a snapshot replaces the whole folder")


def _replace(target: Path, tmp: Path) -> None:
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["SnapshotReport", "TableReport", "snapshot"]
