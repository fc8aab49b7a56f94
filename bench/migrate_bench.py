"""Runner overhead of ``seedkit migrate up`` on PostgreSQL.

Generates N small migrations (default 300, the three layouts mixed, every 30th one a
``transaction:false`` ``CREATE INDEX CONCURRENTLY``), then, each on a fresh database:

- raw: the same statements sent with psycopg, one transaction per migration (autocommit for the
  non-transactional ones) — the work the database has to do anyway;
- seedkit: ``seedkit.migrate.up()`` — discovery, checksums, splitting with pglast, the advisory lock,
  history rows, validation, per-statement execution.

The overhead per migration is (seedkit − raw) / N. Target: ≤ 5 ms.

    python bench/migrate_bench.py [--migrations 300] [--repeat 3] [--database postgresql://…]

Without ``--database`` (or SEEDKIT_TEST_DATABASE_URL) a throwaway server is started from the local
PostgreSQL binaries, as the test suite does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # a script: the repository root, for tests.support
from seedkit import load_config, migrate  # noqa: E402
from seedkit.migrate.files import discover  # noqa: E402
from seedkit.migrate.split import split  # noqa: E402
from seedkit.urls import parse_url  # noqa: E402
from tests.support.pgcluster import server  # noqa: E402


def generate(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        version = f"{20240101000000 + i}"
        name = f"step_{i}"
        if i % 30 == 0:
            up = f"CREATE INDEX CONCURRENTLY t_{i - 1}_name ON t_{i - 1} (name);"
            (folder / f"{version}_{name}.sql").write_text(
                f"-- migrate:up transaction:false\n{up}\n\n-- migrate:down transaction:false\n"
                f"DROP INDEX CONCURRENTLY t_{i - 1}_name;\n", encoding="utf-8")
            continue
        up = (f"-- table {i}; with a comment\n"
              f"CREATE TABLE t_{i} (id bigint PRIMARY KEY, name text NOT NULL DEFAULT 'a;b',\n"
              f"                    created_at timestamptz NOT NULL DEFAULT now());\n"
              f"COMMENT ON TABLE t_{i} IS 'generated table {i}';\n"
              f"INSERT INTO t_{i} (id, name) VALUES (1, 'one'), (2, 'two');\n")
        down = f"DROP TABLE t_{i};\n"
        layout = i % 3
        if layout == 0:
            (folder / f"{version}_{name}.sql").write_text(f"-- migrate:up\n{up}\n-- migrate:down\n{down}",
                                                          encoding="utf-8")
        elif layout == 1:
            (folder / f"{version}_{name}.up.sql").write_text(up, encoding="utf-8")
            (folder / f"{version}_{name}.down.sql").write_text(down, encoding="utf-8")
        else:
            sub = folder / f"{version}_{name}"
            sub.mkdir()
            (sub / "up.sql").write_text(up, encoding="utf-8")
            (sub / "down.sql").write_text(down, encoding="utf-8")




@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield parse_url(server_url).with_database(name).raw
    finally:
        with psycopg.connect(server_url, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_raw(url: str, plans: list[tuple[bool, list[str]]]) -> float:
    """The statements alone: what any runner must pay."""
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for transactional, statements in plans:
            if transactional:
                with conn.transaction():
                    for stmt in statements:
                        conn.execute(stmt)  # type: ignore[arg-type]
            else:
                for stmt in statements:
                    conn.execute(stmt)  # type: ignore[arg-type]
        return time.perf_counter() - started


def run_seedkit(url: str, root: Path) -> float:
    config = load_config(root / "seedkit.toml", environ={"DATABASE_URL": url})
    started = time.perf_counter()
    report = migrate.up(config)
    elapsed = time.perf_counter() - started
    assert len(report.migrations) == len(discover(config.migrations_dir))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--migrations", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", help="server URL to create throwaway databases on")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, server(args.database) as server_url:
        root = Path(tmp)
        (root / "seedkit.toml").write_text('[migrations]\ndir = "migrations"\n', encoding="utf-8")
        generate(root / "migrations", args.migrations)

        t0 = time.perf_counter()
        migrations = discover(root / "migrations")
        t_discover = time.perf_counter() - t0
        t0 = time.perf_counter()
        plans = [(m.transactional, [s.sql for s in split(m.up_sql, "postgresql", m.up_line_offset)])
                 for m in migrations]
        t_split = time.perf_counter() - t0
        n = len(migrations)
        statements = sum(len(s) for _, s in plans)

        raw_times, seedkit_times = [], []
        for _ in range(args.repeat):
            with fresh_database(server_url) as url:
                raw_times.append(run_raw(url, plans))
            with fresh_database(server_url) as url:
                seedkit_times.append(run_seedkit(url, root))

    raw, ours = statistics.median(raw_times), statistics.median(seedkit_times)
    overhead_ms = (ours - raw) / n * 1000
    rows = [
        ("migrations / statements", f"{n} / {statements}", ""),
        ("discover + checksums (all files)", f"{t_discover * 1000:.1f} ms",
         f"{t_discover / n * 1000:.3f} ms"),
        ("split with pglast (all files)", f"{t_split * 1000:.1f} ms", f"{t_split / n * 1000:.3f} ms"),
        ("raw psycopg, same statements", f"{raw * 1000:.0f} ms", f"{raw / n * 1000:.2f} ms"),
        ("seedkit migrate up", f"{ours * 1000:.0f} ms", f"{ours / n * 1000:.2f} ms"),
        ("runner overhead", f"{(ours - raw) * 1000:.0f} ms", f"{overhead_ms:.2f} ms"),
    ]
    print(f"\nseedkit migrate up: {n} migrations, median of {args.repeat} runs each on a fresh database")
    print(f"{'':34} {'total':>14} {'per migration':>14}")
    for label, total, per in rows:
        print(f"{label:34} {total:>14} {per:>14}")
    verdict = "OK" if overhead_ms <= 5 else "OVER TARGET"
    print(f"\nrunner overhead per migration: {overhead_ms:.2f} ms (target <= 5 ms: {verdict})")


if __name__ == "__main__":
    main()
