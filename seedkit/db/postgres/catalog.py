"""What PostgreSQL's system catalogs say about the tables (``Database.catalog()``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..base import Database
from ..catalog import Catalog, Column, ForeignKey, Table, TableName, UniqueKey

_KINDS = {
    "int2": "int", "int4": "int", "int8": "int", "oid": "int",
    "float4": "float", "float8": "float", "numeric": "numeric", "money": "numeric",
    "bool": "bool", "text": "text", "varchar": "text", "bpchar": "text", "name": "text", "citext": "text",
    "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz", "time": "time",
    "timetz": "time", "interval": "interval", "json": "json", "jsonb": "json", "uuid": "uuid",
    "bytea": "bytes",
}


def introspect(self: Database) -> Catalog:
    """The tables of the database: columns, keys, references, partitions, sequences."""
    search_path = tuple(r[0] for r in self.fetchall(
        "SELECT unnest(current_schemas(false))")) or ("public",)
    tables: dict[TableName, dict[str, Any]] = {}
    oids: dict[int, TableName] = {}
    partitioned: set[TableName] = set()
    for oid, schema, name, kind in self.fetchall("""
        SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
          AND n.nspname NOT LIKE 'pg_temp%%'
        ORDER BY n.nspname, c.relname"""):
        tn = TableName(schema, name)
        oids[oid] = tn
        if kind == "p":
            partitioned.add(tn)
        tables[tn] = {"columns": {}, "pk": (), "uniques": [], "fks": []}
    if not oids:
        return Catalog("postgresql", {}, search_path)
    # partitions are not tables of their own here: their rows, keys and references belong to the
    # partitioned table at the top of their tree
    roots = dict(oids)
    partitions: dict[TableName, TableName] = {}
    pending = self.fetchall("""
        SELECT i.inhrelid, i.inhparent, n.nspname, c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relispartition""")
    while pending:  # parents before their sub-partitions, however deep
        later = [r for r in pending if r[1] not in roots]
        for child, parent, schema, name in pending:
            if parent in roots:
                roots[child] = roots[parent]
                partitions[TableName(schema, name)] = roots[parent]
        if len(later) == len(pending):
            break
        pending = later
    oid_list = list(oids)
    for (relid, name, typ, notnull, default, identity, generated, typname, typtype, elemtyp, typoid,
         enum_values, seq) in self.fetchall("""
        SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
               COALESCE(bt.typname, t.typname), t.typtype, et.typname, a.atttypid,
               (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
                 WHERE e.enumtypid = t.oid),
               pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
        LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attrelid, a.attnum""", [oid_list]):
        if typtype == "e":
            kind = "enum"
        elif elemtyp is not None:
            kind = "array"
        else:
            kind = _KINDS.get(typname, "other")
        is_generated = generated == "s"
        ident = {"a": "always", "d": "by default"}.get(identity or "")
        serial = bool(default and default.startswith("nextval("))
        tables[oids[relid]]["columns"][name] = Column(
            name=name, type=typ, kind=kind, nullable=not notnull,
            default=None if is_generated else default, identity=ident, generated=is_generated,
            sequence=seq, autoincrement=bool(ident or serial),
            element_kind=_KINDS.get((elemtyp or "").lstrip("_"), "other") if elemtyp else None,
            enum_values=tuple(enum_values or ()), type_oid=typoid)
    for relid, iname, cols, primary, partial, is_constraint, immediate in self.fetchall("""
        SELECT i.indrelid, ic.relname,
               ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     ORDER BY k.ord),
               i.indisprimary, i.indpred IS NOT NULL,
               EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid
                       AND co.contype IN ('p', 'u')),
               i.indimmediate
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = ANY(%s) AND i.indisunique AND i.indisvalid
          AND i.indexprs IS NULL AND 0 <> ALL (i.indkey)
        ORDER BY i.indrelid, i.indisprimary DESC, ic.relname""", [oid_list]):
        info = tables[oids[relid]]
        key = UniqueKey(name=iname, columns=tuple(cols), primary=primary, partial=partial,
                        constraint=is_constraint, immediate=immediate)
        info["uniques"].append(key)
        if primary:
            info["pk"] = tuple(cols)
    for relid, cname, cols, refrel, refcols, deferrable, deferred in self.fetchall("""
        SELECT co.conrelid, co.conname,
               ARRAY(SELECT a.attname FROM unnest(co.conkey) WITH ORDINALITY k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum
                     ORDER BY k.ord),
               co.confrelid,
               ARRAY(SELECT a.attname FROM unnest(co.confkey) WITH ORDINALITY k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.attnum
                     ORDER BY k.ord),
               co.condeferrable, co.condeferred
        FROM pg_constraint co
        WHERE co.contype = 'f' AND co.conrelid = ANY(%s) AND co.conparentid = 0
        ORDER BY co.conrelid, co.conname""", [list(roots)]):
        # a key declared on a partition (not cloned from its parent's) orders the load like one
        # declared on the partitioned table; the same key on every partition counts once
        if refrel not in roots:
            continue
        owner, ref_table = roots[relid], roots[refrel]
        fk = ForeignKey(name=cname, table=owner, columns=tuple(cols), ref_table=ref_table,
                        ref_columns=tuple(refcols), deferrable=deferrable, initially_deferred=deferred)
        fks = tables[owner]["fks"]
        if not any((f.columns, f.ref_table, f.ref_columns) == (fk.columns, fk.ref_table, fk.ref_columns)
                   for f in fks):
            fks.append(fk)
    rules: dict[TableName, list[str]] = {}
    for relid, rule in self.fetchall("""
        SELECT ev_class, rulename FROM pg_rewrite
        WHERE ev_class = ANY(%s) AND is_instead AND ev_type = '3' ORDER BY 1, 2""", [oid_list]):
        rules.setdefault(oids[relid], []).append(rule)
    return Catalog("postgresql", {
        tn: Table(name=tn, columns=info["columns"], primary_key=info["pk"],
                  unique_keys=tuple(info["uniques"]), foreign_keys=tuple(info["fks"]),
                  partitioned=tn in partitioned, instead_rules=tuple(rules.get(tn, ())))
        for tn, info in tables.items()}, search_path, _sequence_feeds(self, roots, set(oids), tables), partitions)

def _sequence_feeds(self: Database, roots: dict[int, TableName], top: set[int],
                    tables: dict[TableName, dict[str, Any]]) -> dict[str, tuple[tuple[TableName, str], ...]]:
    """Every integer column each sequence feeds: identity columns, and every column whose default
    calls ``nextval`` on it (serial, or a sequence the column does not own, maybe shared)."""
    feeds: dict[str, list[tuple[TableName, str]]] = {}
    for seq, relid, column in self.fetchall("""
        SELECT format('%%I.%%I', sn.nspname, s.relname), d.adrelid, a.attname
        FROM pg_attrdef d
        JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid
             AND dep.refclassid = 'pg_class'::regclass
        JOIN pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
        JOIN pg_namespace sn ON sn.oid = s.relnamespace
        JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum AND NOT a.attisdropped
        WHERE d.adrelid = ANY(%s)
        UNION
        SELECT format('%%I.%%I', sn.nspname, s.relname), dep.refobjid, a.attname
        FROM pg_depend dep
        JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
        JOIN pg_namespace sn ON sn.oid = s.relnamespace
        JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
        WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
          AND dep.deptype = 'i' AND dep.refobjid = ANY(%s)
        ORDER BY 1, 2, 3""", [list(roots), list(roots)]):
        owner = roots[relid]
        column_info = tables[owner]["columns"].get(column)
        if column_info is None or column_info.kind != "int":
            continue
        if (owner, column) not in feeds.setdefault(seq, []):
            feeds[seq].append((owner, column))
        if column_info.sequence is None and relid in top:
            tables[owner]["columns"][column] = replace(column_info, sequence=seq, autoincrement=True)
    return {seq: tuple(sorted(cols)) for seq, cols in feeds.items()}
