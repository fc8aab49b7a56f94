"""PostgreSQL's part in skipping unchanged rows (seed/skip_tracker.py, RELIABILITY.md §7): table shapes,
fingerprints from the rows' ``xmin``, the transaction's own write counts, and snapshots.

The adapter's "skipping unchanged rows" methods call these; nothing outside the adapter uses them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..base import Database, TableShape

# What a fixture's record covers besides the rows: everything that changes how the stored rows of a table read
# back, or what a write stores: the relation itself and its partitions or inheritance children (oid and
# relfilenode: a TRUNCATE, a restore or a rewrite gives new ones), every column (position, dropped columns,
# type, typmod, collation, NOT NULL, default, identity, generated, the value a column added with a default
# reads as), every type those columns use, recursively (enum labels in order, domain base types, defaults and
# constraints, array elements, composite attributes, range subtypes, input and output functions), triggers,
# rules and row-level security. Last: does any of those types read a name as an oid (``regclass`` and the like,
# at any depth: a domain over one, an array or a composite holding one)?
SHAPE_SQL = """
WITH RECURSIVE rels(oid) AS (
    SELECT %(rel)s::regclass::oid
  UNION
    SELECT i.inhrelid FROM pg_inherits i JOIN rels r ON i.inhparent = r.oid
), r AS MATERIALIZED (SELECT array_agg(oid) AS ids FROM rels),
types(oid) AS (
    SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = ANY((SELECT ids FROM r)::oid[]) AND a.attnum > 0
  UNION
    SELECT n.x FROM types t JOIN pg_type y ON y.oid = t.oid
    CROSS JOIN LATERAL (SELECT y.typelem UNION ALL SELECT y.typbasetype
                        UNION ALL SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = y.typrelid AND a.attnum > 0
                        UNION ALL SELECT g.rngsubtype FROM pg_range g WHERE g.rngtypid = y.oid) n(x)
    WHERE n.x <> 0
)
SELECT
  (SELECT json_agg(json_build_array(c.oid, c.relfilenode, c.relkind, c.relpersistence, c.relrowsecurity,
          c.relforcerowsecurity, c.relhasrules, c.relnamespace::regnamespace::text, c.relname,
          (SELECT json_agg(json_build_array(a.attnum, a.attname, a.atttypid, a.atttypmod, a.attisdropped,
                  a.attnotnull, a.atthasmissing, a.attmissingval::text, a.attgenerated, a.attidentity,
                  a.attcollation, a.attndims, pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum)
           FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE a.attrelid = c.oid AND a.attnum > 0),
          (SELECT json_agg(json_build_array(g.tgname, g.tgtype, g.tgenabled, g.tgfoid) ORDER BY g.tgname)
           FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal),
          (SELECT json_agg(json_build_array(p.polname, p.polcmd, p.polpermissive, p.polroles::text,
                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)) ORDER BY p.polname)
           FROM pg_policy p WHERE p.polrelid = c.oid)) ORDER BY c.oid)
   FROM pg_class c WHERE c.oid = ANY((SELECT ids FROM r)::oid[]))::text,
  (SELECT json_agg(json_build_array(y.oid, y.typname, y.typtype, y.typbasetype, y.typtypmod, y.typnotnull,
          y.typdefault, y.typcollation, y.typinput, y.typoutput,
          (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = y.oid),
          (SELECT json_agg(json_build_array(k.conname, pg_get_constraintdef(k.oid), k.convalidated)
                           ORDER BY k.conname)
           FROM pg_constraint k WHERE k.contypid = y.oid)) ORDER BY y.oid)
   FROM pg_type y WHERE y.oid = ANY(ARRAY(SELECT oid FROM types)))::text,
  (SELECT array_agg(c.oid ORDER BY c.oid) FROM pg_class c
   WHERE c.oid = ANY((SELECT ids FROM r)::oid[]) AND c.relkind <> 'p'),
  (SELECT string_agg(DISTINCT w, ', ') FROM (
       SELECT 'trigger ' || quote_ident(g.tgname) AS w FROM pg_trigger g
       WHERE g.tgrelid = ANY((SELECT ids FROM r)::oid[]) AND NOT g.tgisinternal
     UNION ALL SELECT 'rules' FROM pg_class c WHERE c.oid = ANY((SELECT ids FROM r)::oid[]) AND c.relhasrules
     UNION ALL SELECT 'row-level security' FROM pg_class c
     WHERE c.oid = ANY((SELECT ids FROM r)::oid[]) AND c.relrowsecurity
   ) b),
  (SELECT count(*) > 1 FROM rels) OR (SELECT relkind = 'p' FROM pg_class WHERE oid = %(rel)s::regclass),
  EXISTS (SELECT 1 FROM types WHERE oid = ANY('{regclass,regcollation,regconfig,regdictionary,regnamespace,regoper,
          regoperator,regproc,regprocedure,regrole,regtype}'::regtype[]))
"""


def table_shape(d: Database, qualified: str) -> TableShape:
    # the planner's guess for the recursive parts is far too high: it would compile the query (JIT)
    jit = d.fetchone("SELECT current_setting('jit'), set_config('jit', 'off', true)")
    row = d.fetchone(SHAPE_SQL, {"rel": qualified})
    d.execute("SELECT set_config('jit', %s, true)", [jit[0] if jit else "on"])
    assert row is not None
    rels, types, relids, unsafe, tree, oids = row
    return TableShape(hashlib.sha256(f"{rels}\n{types}".encode()).hexdigest(), list(relids or []), unsafe, bool(tree),
                      bool(oids))


def table_shapes(d: Database, qualified: list[str]) -> list[TableShape]:
    """``table_shape`` of several tables in one statement (the same digests)."""
    if not qualified:
        return []
    jit = d.fetchone("SELECT current_setting('jit'), set_config('jit', 'off', true)")
    rows = d.fetchall(f"SELECT s.* FROM unnest(%(rels)s::text[]) WITH ORDINALITY x(rel, i) CROSS JOIN LATERAL "
                      f"({SHAPE_SQL.replace('%(rel)s', 'x.rel')}) s ORDER BY x.i", {"rels": qualified})
    d.execute("SELECT set_config('jit', %s, true)", [jit[0] if jit else "on"])
    return [TableShape(hashlib.sha256(f"{rels}\n{types}".encode()).hexdigest(), list(relids or []), unsafe, bool(tree),
                       bool(oids))
            for rels, types, relids, unsafe, tree, oids in rows]


def database_identity(d: Database) -> list[Any]:
    """The cluster (its system identifier, when this role may read it), the database and the search path:
    a restore into another cluster or database can repeat transaction ids, never all of these."""
    row = d.fetchone("SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), "
                     "current_schemas(false)::text, has_function_privilege('pg_control_system()', 'EXECUTE')")
    assert row is not None
    ident = [row[0], row[1]]
    if row[2]:
        got = d.fetchone("SELECT system_identifier FROM pg_control_system()")
        ident.append(str(got[0]) if got else None)
    else:  # the server's start: a restart compares every row once more, another cluster always does
        got = d.fetchone("SELECT pg_postmaster_start_time()::text")
        ident.append(got[0] if got else None)
    return ident


def fingerprint_sql(qualified: str) -> str:
    """SQL for one table's fingerprint as JSON text ``[rows, "sum of hashes"]`` (the same sum as adding
    ``row_version_hash`` over every row: hashed once per distinct ``xmin``)."""
    return (f"(SELECT json_build_array(coalesce(sum(g.c), 0), coalesce(sum(g.c::numeric * "
            f"hashint8extended(g.x::text::bigint, 0)), 0)::text) FROM (SELECT xmin AS x, count(*) AS c "
            f"FROM {qualified} GROUP BY xmin) g)::text")


def fingerprints(d: Database, tables: list[str], *, snapshot: bool) -> tuple[str | None, list[list[Any]]]:
    """In one statement (one snapshot): that snapshot's text when asked, and each table's fingerprint."""
    row = d.fetchone("SELECT " + ", ".join([*(["txid_current_snapshot()::text"] if snapshot else []),
                                            *(fingerprint_sql(t) for t in tables)]))
    assert row is not None
    texts = row[1:] if snapshot else row
    return (row[0] if snapshot else None), [parse_fingerprint(text) for text in texts]


def table_writes(d: Database, relids: list[int]) -> int:
    """Rows this transaction has inserted, updated or deleted in these relations so far."""
    got = d.fetchone(WRITES_SQL, [relids])
    return int(got[0]) if got else 0


def parse_fingerprint(text: str) -> list[Any]:
    count, total = json.loads(text)
    return [int(count), str(total)]


WRITES_SQL = ("SELECT coalesce(sum(pg_stat_get_xact_tuples_inserted(r)), 0) + "
              "coalesce(sum(pg_stat_get_xact_tuples_updated(r)), 0) + "
              "coalesce(sum(pg_stat_get_xact_tuples_deleted(r)), 0) FROM unnest(%s::oid[]) r")


def others_committed(d: Database, since: str, until: str, limit: int = 20000) -> bool | None:
    """Did a transaction other than this one commit between two snapshots (``txid_current_snapshot()``
    texts) of this transaction? None when too many transactions ran between them to ask cheaply.

    The candidates are the transactions ``since`` could not see and ``until`` can: this one (and its
    subtransactions) are "in progress", aborted ones are "aborted"; any other is a commit."""
    row = d.fetchone(
        "SELECT (txid_snapshot_xmax(%(u)s::txid_snapshot) - txid_snapshot_xmax(%(s)s::txid_snapshot)) "
        "+ (SELECT count(*) FROM txid_snapshot_xip(%(s)s::txid_snapshot))", {"s": since, "u": until})
    assert row is not None
    if int(row[0]) > limit:
        return None
    row = d.fetchone(
        "SELECT count(*) FROM (SELECT txid_snapshot_xip(%(s)s::txid_snapshot) AS x UNION "
        "SELECT generate_series(txid_snapshot_xmax(%(s)s::txid_snapshot), txid_snapshot_xmax(%(u)s::txid_snapshot) - 1)"
        ") c WHERE txid_visible_in_snapshot(c.x, %(u)s::txid_snapshot) AND txid_status(c.x) = 'committed'",
        {"s": since, "u": until})
    assert row is not None
    return int(row[0]) > 0


__all__ = ["SHAPE_SQL", "database_identity", "fingerprints", "others_committed", "table_shape", "table_shapes",
           "table_writes"]
