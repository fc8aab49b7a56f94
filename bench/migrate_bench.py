"""Runner overhead of ``seedkit migrate up`` on PostgreSQL.

Generates N small migrations (default 300, the three layouts mixed, every 30th one a
``transaction:false`` ``CREATE INDEX CONCURRENTLY``), then, each on a fresh database:

- raw: the same statements sent with psycopg, one transaction per migration (autocommit for the
  non-transactional ones) — the work the database has to do anyway;
- seedkit: ``seedkit.migrate.up()`` — discovery, checksums, splitting with pglast, the advisory lock,
  history rows, validation, per-statement execution.

The overhead per migration is (seedkit − raw) / N. Target: ≤ 2 ms.

Then a real history: crates.io's Diesel migrations (``rust-lang/crates.io``, ``migrations/``, read
from a git mirror under ``--corpus`` or a checkout given with ``--crates-io``), written as dbmate files
(``-- migrate:up`` / ``-- migrate:down``, ``transaction:false`` where Diesel's metadata.toml says so)
that both tools read, each on a fresh database, whole processes:

- dbmate 2.x (``npm install dbmate``; ``--dbmate PATH`` or ``dbmate`` on PATH): ``dbmate up``;
- ``python -m seedkit migrate up`` on the same files;
- raw psycopg again for the same statements, and for each migration's text sent as one query with a
  history row (the floor of any runner);
- both tools once more on the migrated database (nothing to apply): the fixed start-up cost;
- seedkit again with ``SEEDKIT_MIGRATION_CACHE=0``: every section cut by pglast, as on a project's
  first run (the first repeat fills ``.seedkit/cache/migrations``; the others find the cuts there).

seedkit runs from compiled bytecode, as an installed package does.

Targets (issue 17): seedkit ≤ 1.2× dbmate, and ≤ 2 ms per migration of runner overhead (seedkit less
its no-op run and less the one-query-per-migration floor; and, in process, the generated histories).

    python bench/migrate_bench.py [--migrations 300] [--repeat 3] [--database postgresql://…]
                                  [--crates-io DIR] [--corpus DIR] [--dbmate PATH] [--summary FILE]

Without ``--database`` (or SEEDKIT_TEST_DATABASE_URL) a throwaway server is started from the local
PostgreSQL binaries, as the test suite does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
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


def run_raw_whole(url: str, texts: list[tuple[bool, str]]) -> float:
    """Each migration's text sent as one query (what dbmate does), with one history row per migration
    in the same transaction: the floor of any runner that does not send statement by statement."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_history (version bigint PRIMARY KEY, applied_at timestamptz)")
        started = time.perf_counter()
        for i, (transactional, text) in enumerate(texts):
            record = f";\nINSERT INTO bench_history VALUES ({i}, now())"
            if transactional:
                conn.execute(f"BEGIN;\n{text}{record};\nCOMMIT")  # type: ignore[arg-type]
            else:
                conn.execute(text)  # type: ignore[arg-type]
                conn.execute(record.lstrip(";\n"))  # type: ignore[arg-type]
        return time.perf_counter() - started


def run_seedkit(url: str, root: Path) -> float:
    config = load_config(root / "seedkit.toml", environ={"DATABASE_URL": url})
    started = time.perf_counter()
    report = migrate.up(config)
    elapsed = time.perf_counter() - started
    assert len(report.migrations) == len(discover(config.migrations_dir))
    return elapsed


def crates_io_files(source: Path) -> dict[str, dict[str, str]]:
    """crates.io's migration folders (name -> {up.sql, down.sql, metadata.toml}), from a checkout
    or a bare git mirror."""
    folders: dict[str, dict[str, str]] = {}
    if (source / "migrations").is_dir():
        for f in sorted((source / "migrations").glob("*/*")):
            folders.setdefault(f.parent.name, {})[f.name] = f.read_text(encoding="utf-8")
        return folders
    git = ["git", "--git-dir", str(source)]
    names = subprocess.run([*git, "ls-tree", "-r", "--name-only", "HEAD", "migrations"], capture_output=True,
                           text=True, check=True).stdout.split()
    for name in names:
        parts = name.split("/")
        if len(parts) != 3:
            continue
        text = subprocess.run([*git, "show", f"HEAD:{name}"], capture_output=True, text=True, check=True).stdout
        folders.setdefault(parts[1], {})[parts[2]] = text
    return folders


def write_dbmate_history(folders: dict[str, dict[str, str]], out: Path) -> int:
    """Each Diesel folder as one dbmate file, versions as 14-digit timestamps in Diesel's order."""
    out.mkdir(parents=True)
    seen: set[int] = set()
    n = 0
    for name in sorted(folders):
        files = folders[name]
        if "up.sql" not in files:
            continue
        version = int((re.sub(r"\D", "", name.split("_")[0]) + "0" * 14)[:14])
        while version in seen:
            version += 1
        seen.add(version)
        slug = re.sub(r"[^a-z0-9_]", "_", name.split("_", 1)[1].lower() if "_" in name else "step")
        flag = " transaction:false" if "run_in_transaction = false" in files.get("metadata.toml", "") else ""
        (out / f"{version:014d}_{slug}.sql").write_text(
            f"-- migrate:up{flag}\n{files['up.sql']}\n\n-- migrate:down{flag}\n{files.get('down.sql', '')}\n",
            encoding="utf-8")
        n += 1
    return n


def timed_process(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    # an installed seedkit runs from compiled bytecode (pip compiles it): measure that, not a checkout
    # run with PYTHONDONTWRITEBYTECODE compiling every module it imports at every start
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False,
                          env={**environ, **(env or {})})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} … exited {done.returncode}: {(done.stderr or done.stdout)[-2000:]}")
    return elapsed


def real_history(server_url: str, source: Path, dbmate: str | None,
                 repeat: int) -> tuple[list[tuple[str, str, str]], list[dict[str, object]]]:
    """crates.io's history: dbmate vs seedkit migrate up vs raw statements, whole processes."""
    rows: list[tuple[str, str, str]] = []
    summary: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n = write_dbmate_history(crates_io_files(source), root / "db" / "migrations")
        # crates.io drops its old runner's schema_migrations: both tools keep their history elsewhere
        (root / "seedkit.toml").write_text('[migrations]\ndir = "db/migrations"\ntable = "seedkit_migrations"\n',
                                           encoding="utf-8")
        migrations = discover(root / "db" / "migrations")
        plans = [(m.transactional, [s.sql for s in split(m.up_sql, "postgresql", m.up_line_offset)])
                 for m in migrations]
        statements = sum(len(st) for _, st in plans)
        texts = [(m.transactional, m.up_sql) for m in migrations]
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "seedkit")], check=True,
                       stdout=subprocess.DEVNULL)
        seedkit_cmd = [sys.executable, "-m", "seedkit", "migrate", "up", "--database"]
        ours, theirs, raw, whole, version = [], [], [], [], []
        ours_noop, theirs_noop, ours_cold = [], [], []
        for i in range(repeat):
            print(f"… crates.io history: run {i + 1}/{repeat}", file=sys.stderr, flush=True)
            with fresh_database(server_url) as url:
                ours.append(timed_process([*seedkit_cmd, url], root, {"NO_COLOR": "1"}))
                # again, nothing left to apply: start-up, discovery, checksums, the lock, the history
                ours_noop.append(timed_process([*seedkit_cmd, url], root, {"NO_COLOR": "1"}))
            with fresh_database(server_url) as url:  # without the split cache: pglast loaded and run
                ours_cold.append(timed_process([*seedkit_cmd, url], root, {"NO_COLOR": "1",
                                                                          "SEEDKIT_MIGRATION_CACHE": "0"}))
            if dbmate:
                with fresh_database(server_url) as url:
                    dburl = url + ("&" if "?" in url else "?") + "sslmode=disable"
                    dbmate_up = [dbmate, "--url", dburl, "--migrations-dir", "db/migrations",
                                 "--migrations-table", "dbmate_migrations", "--no-dump-schema", "up"]
                    theirs.append(timed_process(dbmate_up, root))
                    theirs_noop.append(timed_process(dbmate_up, root))
            with fresh_database(server_url) as url:
                raw.append(run_raw(url, plans))
            with fresh_database(server_url) as url:
                whole.append(run_raw_whole(url, texts))
        if dbmate:
            version = subprocess.run([dbmate, "--version"], capture_output=True, text=True,
                                     check=False).stdout.split()[-1:]
    t_ours, t_raw = statistics.median(ours), statistics.median(raw)
    rows.append(("crates.io migrations / statements", f"{n} / {statements}", ""))
    rows.append(("raw psycopg, same statements (in process)", f"{t_raw * 1000:.0f} ms", f"{t_raw / n * 1000:.2f} ms"))
    t_whole = statistics.median(whole)
    rows.append(("raw psycopg, a query per migration (in process)", f"{t_whole * 1000:.0f} ms",
                 f"{t_whole / n * 1000:.2f} ms"))
    rows.append(("seedkit migrate up (whole process)", f"{t_ours * 1000:.0f} ms", f"{t_ours / n * 1000:.2f} ms"))
    t_cold = statistics.median(ours_cold)
    rows.append(("seedkit, split cache off (pglast every run)", f"{t_cold * 1000:.0f} ms",
                 f"{t_cold / n * 1000:.2f} ms"))
    t_noop = statistics.median(ours_noop)
    rows.append(("seedkit, nothing to apply (start-up floor)", f"{t_noop * 1000:.0f} ms", ""))
    per = (t_ours - t_raw) / n * 1000
    rows.append(("seedkit − raw (start-up included)", f"{(t_ours - t_raw) * 1000:.0f} ms", f"{per:.2f} ms"))
    # what applying costs beyond the server's work and the fixed start-up: the runner's own per migration
    runner_ms = (t_ours - t_noop - t_whole) / n * 1000
    rows.append(("seedkit − start-up floor − one query each", f"{(t_ours - t_noop - t_whole) * 1000:.0f} ms",
                 f"{runner_ms:.2f} ms"))
    summary.append({"bench": "migrate", "case": f"runner overhead per migration, crates.io ({n}), whole process "
                    "less its no-op run and the one-query-per-migration floor",
                    "measured": f"≤ 2 ms: {runner_ms:.2f} ms", "ok": runner_ms <= 2.0})
    if theirs:
        t_dbmate = statistics.median(theirs)
        rows.append((f"dbmate {' '.join(version)} up (whole process)", f"{t_dbmate * 1000:.0f} ms",
                     f"{t_dbmate / n * 1000:.2f} ms"))
        rows.append(("dbmate, nothing to apply", f"{statistics.median(theirs_noop) * 1000:.0f} ms", ""))
        ratio = t_ours / t_dbmate
        rows.append(("seedkit / dbmate", f"{ratio:.2f}×",
                     f"≤ 1.2×: {'OK' if ratio <= 1.2 else 'OVER TARGET'}"))
        rows.append(("seedkit, split cache off / dbmate", f"{t_cold / t_dbmate:.2f}×", ""))
        summary.append({"bench": "migrate", "case": f"seedkit migrate up / dbmate up, crates.io ({n} migrations)",
                        "measured": f"≤ 1.2× dbmate: {t_ours / t_dbmate:.2f}×", "ok": t_ours / t_dbmate <= 1.2})
        over = (t_ours - t_dbmate) / n * 1000
        summary.append({"bench": "migrate", "case": "seedkit − dbmate per migration, crates.io (start-up included)",
                        "measured": f"≤ 2 ms: {over:.2f} ms", "ok": over <= 2.0})
        rows.append(("seedkit − dbmate", f"{(t_ours - t_dbmate) * 1000:.0f} ms",
                     f"{(t_ours - t_dbmate) / n * 1000:.2f} ms"))
    else:
        rows.append(("dbmate", "not found", "npm install dbmate; --dbmate PATH"))
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--migrations", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", help="server URL to create throwaway databases on")
    parser.add_argument("--crates-io", type=Path, help="a crates.io checkout or bare git mirror (default: "
                        "CORPUS/rust-lang+crates.io/repo)")
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("SEEDKIT_BENCH_CORPUS", "/work/.mirror")))
    parser.add_argument("--dbmate", help="the dbmate binary (default: dbmate on PATH, then ./node_modules/.bin)")
    parser.add_argument("--skip-generated", action="store_true", help="only the real history")
    parser.add_argument("--summary", type=Path, help="also write the ratios as JSON lines to this file")
    args = parser.parse_args()
    local = Path.cwd() / "node_modules" / ".bin" / "dbmate"
    dbmate = args.dbmate or shutil.which("dbmate") or (str(local) if local.exists() else None)
    source = args.crates_io or args.corpus / "rust-lang+crates.io" / "repo"
    summary: list[dict[str, object]] = []

    with server(args.database) as server_url:
        if not args.skip_generated:
            overhead_ms = generated(server_url, args.migrations, args.repeat)
            summary.append({"bench": "migrate", "case": f"runner overhead per migration ({args.migrations} generated, "
                            "in process, vs raw)", "measured": f"≤ 2 ms: {overhead_ms:.2f} ms",
                            "ok": overhead_ms <= 2.0})
        if source.exists():
            real = real_history(server_url, source, dbmate, args.repeat)
            print(f"\na real history, whole processes, median of {args.repeat} runs each on a fresh database "
                  f"(same run: the ratios compare like with like); load average {os.getloadavg()[0]:.1f}")
            print(f"{'':46} {'total':>14} {'per migration':>20}")
            for label, total, per in real[0]:
                print(f"{label:46} {total:>14} {per:>20}")
            for item in real[1]:
                print(f"{'OK' if item['ok'] else 'OVER TARGET':12} {item['case']}: {item['measured']}")
            summary += real[1]
        else:
            print(f"\n(no crates.io history at {source}: pass --crates-io DIR)")
    if args.summary:
        with args.summary.open("a", encoding="utf-8") as f:
            for item in summary:
                f.write(json.dumps(item) + "\n")


def generated(server_url: str, count: int, repeat: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "seedkit.toml").write_text('[migrations]\ndir = "migrations"\n', encoding="utf-8")
        generate(root / "migrations", count)

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
        for _ in range(repeat):
            with fresh_database(server_url) as url:
                raw_times.append(run_raw(url, plans))
            with fresh_database(server_url) as url:
                seedkit_times.append(run_seedkit(url, root))

    raw, ours = statistics.median(raw_times), statistics.median(seedkit_times)
    # the overhead of each seedkit run over the raw run just before it, the median of those: on a machine whose
    # speed drifts between runs, a difference within a pair moves less than a difference of two medians
    pairs = [s - r for r, s in zip(raw_times, seedkit_times)]
    overhead_ms = statistics.median(pairs) / n * 1000
    rows = [
        ("migrations / statements", f"{n} / {statements}", ""),
        ("discover + checksums (all files)", f"{t_discover * 1000:.1f} ms",
         f"{t_discover / n * 1000:.3f} ms"),
        ("split with pglast (all files)", f"{t_split * 1000:.1f} ms", f"{t_split / n * 1000:.3f} ms"),
        ("raw psycopg, same statements", f"{raw * 1000:.0f} ms", f"{raw / n * 1000:.2f} ms"),
        ("seedkit migrate up (in process)", f"{ours * 1000:.0f} ms", f"{ours / n * 1000:.2f} ms"),
        ("runner overhead (median of pairs)", f"{statistics.median(pairs) * 1000:.0f} ms", f"{overhead_ms:.2f} ms"),
    ]
    print(f"\nseedkit migrate up: {n} generated migrations, median of {repeat} runs each on a fresh database")
    print(f"{'':34} {'total':>14} {'per migration':>14}")
    for label, total, per in rows:
        print(f"{label:34} {total:>14} {per:>14}")
    print("each pair, seedkit less the raw run just before it: "
          + ", ".join(f"{x / n * 1000:.2f}" for x in pairs) + " ms per migration")
    verdict = "OK" if overhead_ms <= 2 else "OVER TARGET"
    print(f"\nrunner overhead per migration: {overhead_ms:.2f} ms (target <= 2 ms: {verdict})")
    return overhead_ms


if __name__ == "__main__":
    main()
