"""``seedkit snapshot`` speed on PostgreSQL against ``pg_dump --data-only`` of the same table.

One invocation, one server, one database holding three tables of N rows each (default 1,000,000):

- ``items``: a natural primary key (``sku text``), numeric, integer and timestamptz columns —
  ``--format auto`` writes it as CSV (PostgreSQL's own CSV output, in key order);
- ``items`` again with ``--format yaml`` (strings quoted by COPY itself, see seedkit/snapshot/write.py);
- ``members``: a ``bigserial`` id left out, a unique e-mail as the natural key, and a reference to
  ``orgs`` written as ``!ref orgs/<slug>`` (a join per row) — YAML.

Each case is a real subprocess (``python -m seedkit snapshot … --table T``, interpreter start
included) timed against ``pg_dump --data-only --table T`` to a file, in the same run, ``--repeat``
times: the ratio of the medians, and of the best runs (the least disturbed by other work on the machine).
The target is a ratio ≤ 2 (✓/✗ on the medians); a miss is printed, never turned into an exit status.

    python bench/snapshot_bench.py [--rows 1000000] [--repeat 3] [--database URL]

Without ``--database`` (or SEEDKIT_TEST_DATABASE_URL) a throwaway server is started from the local
PostgreSQL binaries, as the test suite does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # a script: the repository root, for tests.support

SCHEMA = """
CREATE TABLE items (sku text PRIMARY KEY, name text NOT NULL, price numeric(10,2), qty int, created timestamptz);
CREATE TABLE orgs (id serial PRIMARY KEY, slug text NOT NULL UNIQUE);
CREATE TABLE members (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, org_id int NOT NULL REFERENCES orgs(id),
                      name text, age int);
"""


def fill(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(SCHEMA)
        c.execute("""INSERT INTO items SELECT 'sku-' || lpad(g::text, 8, '0'), 'item ' || g, (g %% 10000) / 100.0,
                     g %% 97, timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, %s) g""",
                  [rows])
        c.execute("INSERT INTO orgs (slug) SELECT 'org-' || g FROM generate_series(1, 1000) g")
        c.execute("""INSERT INTO members (email, org_id, name, age) SELECT 'user' || g || '@example.com',
                     1 + g %% 1000, 'Name ' || g, 18 + g %% 60 FROM generate_series(1, %s) g""", [rows])
        c.execute("VACUUM ANALYZE")


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--database", help="server URL to create the bench database on")
    args = ap.parse_args()

    cluster = None
    server = args.database or os.environ.get("SEEDKIT_TEST_DATABASE_URL")
    if not server:
        from tests.support.pgcluster import start_cluster

        cluster = start_cluster()
        server = cluster.url
    pg_dump = shutil.which("pg_dump") or (str(cluster.bindir / "pg_dump") if cluster else "pg_dump")
    name = f"snapbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server.rsplit("/", 1)[0] + "/" + name
    work = Path(tempfile.mkdtemp(prefix="snapbench-"))
    # seedkit's bytecode, as an installed package has it (an editable checkout run with
    # PYTHONDONTWRITEBYTECODE would otherwise compile every module at every start)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "seedkit")], check=True)
    try:
        t = time.perf_counter()
        fill(url, args.rows)
        print(f"filled {args.rows:,} rows per table in {time.perf_counter() - t:.1f} s")
        cases = [("items, auto (CSV)", "items", ["--format", "auto"]),
                 ("items, YAML", "items", ["--format", "yaml"]),
                 ("members, YAML with !ref", "members", ["--format", "yaml"])]
        one, five, fifteen = os.getloadavg()
        print(f"load average (1, 5, 15 min): {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores")
        print(f"{'case':<28}{'pg_dump':>10}{'snapshot':>10}{'ratio':>8}{'best':>8}  size (snapshot / dump)")
        for label, table, extra in cases:
            dumps, snaps = [], []
            for i in range(args.repeat):
                dump_file = work / f"{table}.sql"
                dumps.append(timed([pg_dump, "--data-only", "--table", table, "--file", str(dump_file), url], work))
                out = work / f"out{i}"
                snaps.append(timed([sys.executable, "-m", "seedkit", "snapshot", "--database", url, "--out", str(out),
                                    "--table", table, *extra], work))
            d, s = statistics.median(dumps), statistics.median(snaps)
            written = sum(p.stat().st_size for p in (work / "out0").iterdir())
            mark = "✓" if s <= 2 * d else "✗"
            best = min(snaps) / min(dumps)  # the least disturbed run of each: closest to an idle machine
            print(f"{label:<28}{d:>9.2f}s{s:>9.2f}s{s / d:>7.2f}×{best:>7.2f}× {mark} "
                  f"{written / 1e6:.0f} MB / {dump_file.stat().st_size / 1e6:.0f} MB", flush=True)
            for i in range(args.repeat):
                shutil.rmtree(work / f"out{i}", ignore_errors=True)
        print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with psycopg.connect(server, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
