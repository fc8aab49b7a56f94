"""A large CSV fixture: peak memory and time of ``seedkit run`` against psql's ``\\copy`` of the same file.

One invocation generates a CSV file of ``--mb`` megabytes (default 200: about 2 million rows of
``items(id bigint primary key, sku text unique, name text, qty int, price numeric(12,2), note text)``)
and, on the same PostgreSQL server, each case on a fresh database:

- (a) ``psql -c "\\copy items FROM 'items.csv' CSV HEADER"`` into the empty table — the floor;
- (b) ``seedkit run`` into the empty table (rows go straight in with COPY);
- (c) ``seedkit run`` again with nothing changed (every row staged and compared, nothing written);
- (d) ``seedkit run`` into a table already holding every other row, with one row in ten changed
  (staged, merged: inserts and updates);
- (e) ``seedkit run`` of the same file into an empty SQLite database (batched ``executemany``).

Every case is a real subprocess; its peak RSS is its own, read with ``os.wait4`` through the launcher
of ``seed_bench.py``. The target: peak RSS ≤ 200 MB for every seedkit case, whatever the file size
(memory is bounded by the batch size, not by the row count). A missed target is printed (✗) and makes
the exit status 1.

    python bench/csv_bench.py [--mb 200] [--database URL] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_bench import fresh_database, run_child, server  # noqa: E402

DDL = ("CREATE TABLE items (id bigint PRIMARY KEY, sku text NOT NULL UNIQUE, name text, qty int, "
       "price numeric(12,2), note text)")
SQLITE_DDL = ("CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT, qty INTEGER, "
              "price NUMERIC, note TEXT)")
RSS_LIMIT_MB = 200.0
CONFIG = """\
[database]
url = "sqlite:///unused.db"

[envs.dev]
include = ["data"]
"""


def row(n: int, changed: bool = False) -> str:
    note = "" if n % 7 == 0 else f'"note for item {n}, with a comma"'  # an empty cell is NULL for both
    name = f"Item number {n}" + (" (changed)" if changed else "")
    return f"{n},sku-{n:08d},{name},{n % 1000},{n % 100000 / 100:.2f},{note}\n"


def write_csv(path: Path, mb: int, *, every: int = 1, change_every: int = 0, rows: int | None = None) -> int:
    """Write the items CSV (``every``: keep every n-th row); the number of rows of the full file."""
    target = mb * 1024 * 1024
    size = 0
    n = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("id,sku,name,qty,price,note\n")
        while (size < target) if rows is None else (n < rows):
            n += 1
            line = row(n, bool(change_every) and n % change_every == 0)
            size += len(line)
            if n % every == 0:
                f.write(line)
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--database", help="a PostgreSQL server URL (default: a throwaway cluster)")
    ap.add_argument("--keep", help="generate the files in this folder and keep them")
    args = ap.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="csv_bench_"))
    project = folder / "project"
    (project / "seeds" / "data").mkdir(parents=True, exist_ok=True)
    (project / "seedkit.toml").write_text(CONFIG)
    csv_path = project / "seeds" / "data" / "items.csv"
    started = time.perf_counter()
    rows = write_csv(csv_path, args.mb)
    size_mb = csv_path.stat().st_size / 1024 / 1024
    print(f"items.csv: {size_mb:.0f} MB, {rows:,} rows (written in {time.perf_counter() - started:.1f} s)",
          flush=True)
    failures: list[str] = []
    results: list[tuple[str, float, float, str]] = []

    def seedkit(url: str) -> tuple[float, float, str]:
        child = run_child([sys.executable, "-m", "seedkit", "run", "dev", "--database", url, "--json"], project)
        if child.returncode != 0:
            failures.append(f"seedkit exit {child.returncode}: {child.stderr.strip()[-500:]}")
        totals = child.totals()
        what = ", ".join(f"{k} {v:,}" for k, v in totals.items() if k in ("inserted", "updated", "unchanged") and v)
        return child.seconds, child.rss_mb, what

    try:
        with server(args.database) as server_url:
            with fresh_database(server_url, DDL) as url:
                psql = shutil.which("psql")
                if psql is None:
                    failures.append("psql is not installed: no floor to compare with")
                    floor = None
                else:
                    child = run_child([psql, "-X", "-q", url, "-c", f"\\copy items FROM '{csv_path}' CSV HEADER"],
                                      project)
                    if child.returncode != 0:
                        failures.append(f"psql: {child.stderr.strip()}")
                    floor = child.seconds
                    results.append(("(a) psql \\copy into the empty table", child.seconds, child.rss_mb,
                                    f"{rows:,} rows"))
            with fresh_database(server_url, DDL) as url:
                results.append(("(b) seedkit run into the empty table", *seedkit(url)))
                results.append(("(c) seedkit run again, nothing changed", *seedkit(url)))
            with fresh_database(server_url, DDL) as url:
                half = folder / "half.csv"
                write_csv(half, args.mb, every=2, change_every=10, rows=rows)
                with psycopg.connect(url) as c, c.cursor() as cur, half.open("rb") as f, \
                        cur.copy("COPY items FROM STDIN (FORMAT csv, HEADER true)") as copy:
                    while block := f.read(1 << 20):
                        copy.write(block)
                half.unlink()
                with psycopg.connect(url, autocommit=True) as c:
                    c.execute("VACUUM ANALYZE items")
                results.append(("(d) seedkit run, half the rows there, 1 in 10 changed", *seedkit(url)))
        db = folder / "items.db"
        db.unlink(missing_ok=True)
        with sqlite3.connect(db) as c:
            c.execute(SQLITE_DDL)
        results.append(("(e) seedkit run into an empty SQLite database", *seedkit(f"sqlite:///{db}")))
        db.unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    print(f"\n{'case':<58} {'seconds':>8} {'× psql':>7} {'peak RSS':>9}")
    for label, seconds, rss, what in results:
        ratio = f"{seconds / floor:.1f}×" if floor else "-"
        mark = "" if label.startswith("(a)") else (" ✓" if rss <= RSS_LIMIT_MB else " ✗")
        print(f"{label:<58} {seconds:>8.1f} {ratio:>7} {rss:>6.0f} MB{mark}  {what}")
        if not label.startswith("(a)") and rss > RSS_LIMIT_MB:
            failures.append(f"{label}: peak RSS {rss:.0f} MB > {RSS_LIMIT_MB:.0f} MB")
    print(f"\ntarget: every seedkit case peaks at ≤ {RSS_LIMIT_MB:.0f} MB for a {size_mb:.0f} MB file")
    for problem in failures:
        print(f"✗ {problem}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
