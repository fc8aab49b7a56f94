"""What SQLite's PRAGMAs say about the tables (``Database.catalog()``)."""

from __future__ import annotations

from typing import Any

from ..base import Database
from ..catalog import Catalog, Column, ForeignKey, Table, TableName, UniqueKey


def sqlite_kind(declared: str) -> str:
    """Map a declared column type to a kind, after SQLite's own affinity rules plus common names."""
    t = declared.upper()
    base = t.split("(")[0].strip()
    if base.endswith("[]"):
        return "json"
    named = {"BOOLEAN": "bool", "BOOL": "bool", "DATE": "date", "DATETIME": "timestamp",
             "TIMESTAMP": "timestamp", "TIMESTAMPTZ": "timestamptz", "TIME": "time", "JSON": "json",
             "JSONB": "json", "UUID": "uuid", "DECIMAL": "numeric", "NUMERIC": "numeric"}
    if base in named:
        return named[base]
    if "INT" in t:
        return "int"
    if any(s in t for s in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in t:
        return "bytes"
    if any(s in t for s in ("REAL", "FLOA", "DOUB")):
        return "float"
    if not t:
        return "other"
    return "numeric"


def introspect(self: Database) -> Catalog:
    """The tables of the database file: columns, keys, references (from its PRAGMAs)."""
    tables: dict[TableName, Table] = {}
    raw_fks: dict[TableName, list[dict[str, Any]]] = {}
    names = [r[0] for r in self.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    for name in names:
        q = self.quote(name)
        info = self.fetchall(f"PRAGMA table_xinfo({q})")
        pk_cols = tuple(r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        rowid_alias = len(pk_cols) == 1 and any(
            r[1] == pk_cols[0] and (r[2] or "").upper() == "INTEGER" for r in info)
        columns: dict[str, Column] = {}
        for _cid, col, typ, notnull, default, pk, hidden in info:
            if hidden == 1:
                continue
            auto = bool(rowid_alias and pk)
            columns[col] = Column(name=col, type=typ or "", kind=sqlite_kind(typ or ""),
                                  nullable=not notnull and not auto, default=default,
                                  generated=hidden in (2, 3), autoincrement=auto)
        uniques: list[UniqueKey] = []
        if rowid_alias:
            uniques.append(UniqueKey(name=f"{name}_pkey", columns=pk_cols, primary=True))
        for _seq, iname, unique, origin, partial in self.fetchall(f"PRAGMA index_list({q})"):
            if not unique:
                continue
            cols = tuple(r[2] for r in self.fetchall(f"PRAGMA index_info({self.quote(iname)})"))
            if any(c is None for c in cols):
                continue  # expression index
            uniques.append(UniqueKey(name=iname, columns=cols, primary=origin == "pk",
                                     partial=bool(partial), constraint=origin in ("pk", "u")))
        uniques.sort(key=lambda u: not u.primary)
        tn = TableName(None, name)
        fks: dict[int, dict[str, Any]] = {}
        for fid, _seq, ref, frm, to, *_ in self.fetchall(f"PRAGMA foreign_key_list({q})"):
            fk = fks.setdefault(fid, {"ref": ref, "from": [], "to": []})
            fk["from"].append(frm)
            fk["to"].append(to)
        raw_fks[tn] = [{"id": fid, **fk} for fid, fk in sorted(fks.items())]
        tables[tn] = Table(name=tn, columns=columns, primary_key=pk_cols, unique_keys=tuple(uniques))
    # Resolve foreign keys once every table is known (a missing "to" means the parent's key).
    for tn, table in list(tables.items()):
        fks_out = []
        for fk in raw_fks[tn]:
            ref = next((t for t in tables if t.name.lower() == fk["ref"].lower()), TableName(None, fk["ref"]))
            to = fk["to"]
            if any(c is None for c in to):
                to = list(tables[ref].primary_key) if ref in tables else to
            fks_out.append(ForeignKey(name=f"{tn.name}_fk{fk['id']}", table=tn, columns=tuple(fk["from"]),
                                      ref_table=ref, ref_columns=tuple(to)))
        tables[tn] = Table(name=tn, columns=table.columns, primary_key=table.primary_key,
                           unique_keys=table.unique_keys, foreign_keys=tuple(fks_out))
    return Catalog("sqlite", tables, (None,))
