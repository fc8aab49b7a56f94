"""Per-test overhead of the pytest plugin's fixtures on PostgreSQL (and, for comparison, SQLite).

Runs pytest in-process on a generated suite against the ``examples/teams`` project:

- N plain tests (no fixture) — the baseline: what pytest itself costs per test;
- N tests using ``seedkit_conn`` (one connection, a transaction rolled back after each test);
- M tests using ``seedkit_fresh_db_url`` (a new copy of the seeded database per test).

pytest reports how long each test's setup and teardown took; a fixture's overhead per test is the
median (and 95th percentile) of setup + teardown minus the baseline's median. The first test of the
session also builds the template database (migrate + seed once): that is reported on its own line.
Targets: ``seedkit_conn`` ≤ 5 ms, ``seedkit_fresh_db_url`` ≤ 150 ms (PostgreSQL).

For reference the table also shows what opening a new psycopg connection per test would cost.

    python bench/plugin_bench.py [--tests 200] [--fresh 30] [--database-url postgresql://…] [--no-sqlite]

Without ``--database-url`` (or SEEDKIT_TEST_DATABASE_URL) a throwaway server is started from the local
PostgreSQL binaries, as the test suite does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parent.parent
TEAMS = REPO / "examples" / "teams"
sys.path.insert(0, str(REPO))  # a script: the repository root, for tests.support
from tests.support.pgcluster import server  # noqa: E402

TARGETS_MS = {"seedkit_conn": 5.0, "seedkit_fresh_db_url": 150.0}




def write_suite(folder: Path, tests: int, fresh: int) -> None:
    """Three files, run in this order: the baseline, the rollback fixture, the fresh-database fixture."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\naddopts =\n")
    plain = "\n\n".join(f"def test_{i}():\n    pass" for i in range(tests))
    conn = "\n\n".join(f"def test_{i}(seedkit_conn):\n    seedkit_conn.execute('SELECT 1')" for i in range(tests))
    copies = "\n\n".join(f"def test_{i}(seedkit_fresh_db_url):\n    pass" for i in range(fresh))
    (folder / "test_a_baseline.py").write_text(plain + "\n")
    (folder / "test_b_conn.py").write_text(conn + "\n")
    (folder / "test_c_fresh.py").write_text(copies + "\n")


@dataclass
class Timings:
    """Setup + teardown seconds of each test, by file."""

    by_file: dict[str, list[float]] = field(default_factory=dict)
    _current: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid} ({report.when}): {report.longreprtext[-500:]}")
        if report.when == "setup":
            self._current[report.nodeid] = report.duration
        elif report.when == "teardown":
            total = self._current.pop(report.nodeid, 0.0) + report.duration
            self.by_file.setdefault(report.nodeid.split("::")[0], []).append(total)


def run_suite(folder: Path, config: Path, database_url: str) -> Timings:
    timings = Timings()
    here = Path.cwd()
    os.chdir(folder)
    try:
        code = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--seedkit-config", str(config),
                            "--seedkit-database-url", database_url, str(folder)], plugins=[timings])
    finally:
        os.chdir(here)
    if code != 0 or timings.failed:
        raise SystemExit("the benchmark suite failed:\n" + "\n".join(timings.failed))
    return timings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def connect_per_test(url: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        conn = psycopg.connect(url)
        conn.execute("SELECT 1")
        conn.rollback()
        conn.close()
        samples.append(time.perf_counter() - started)
    return samples


def rows_for(label: str, timings: Timings) -> list[tuple[str, ...]]:
    base = statistics.median(timings.by_file["test_a_baseline.py"])
    conn = timings.by_file["test_b_conn.py"]
    fresh = timings.by_file["test_c_fresh.py"]
    session = conn[0] - base  # the first test that needs a database builds the template and the copy
    rows = [(f"{label}: session setup (migrate + seed + copy, once)", "1", f"{session * 1000:.1f}", "-", "-", "-")]
    for name, samples in (("seedkit_conn", conn[1:]), ("seedkit_fresh_db_url", fresh)):
        median = (statistics.median(samples) - base) * 1000
        p95 = (percentile(samples, 0.95) - base) * 1000
        target = TARGETS_MS[name] if label == "PostgreSQL" else None
        verdict = "-" if target is None else ("yes" if median <= target else "NO")
        rows.append((f"{label}: {name}", str(len(samples)), f"{median:.2f}", f"{p95:.2f}",
                     "-" if target is None else f"{target:.0f}", verdict))
    return rows


def print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    header = ("per-test overhead", "tests", "median ms", "p95 ms", "target ms", "ok")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(title)
    for i, row in enumerate([header, *rows]):
        print("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=200, help="tests in the baseline and seedkit_conn files")
    parser.add_argument("--fresh", type=int, default=30, help="tests using seedkit_fresh_db_url")
    parser.add_argument("--database-url", default=os.environ.get("SEEDKIT_TEST_DATABASE_URL"),
                        help="PostgreSQL server to create the test databases on")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite comparison")
    args = parser.parse_args()

    from seedkit.urls import parse_url

    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp, server(args.database_url) as server_url:
        with psycopg.connect(server_url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        suite = Path(tmp) / "suite"
        write_suite(suite, args.tests, args.fresh)
        base = parse_url(server_url).with_database("plugin_bench").raw
        rows += rows_for("PostgreSQL", run_suite(suite, TEAMS / "seedkit.toml", base))
        samples = connect_per_test(server_url, args.tests)
        rows.append(("reference: psycopg.connect + SELECT 1 + close per test", str(len(samples)),
                     f"{statistics.median(samples) * 1000:.2f}", f"{percentile(samples, 0.95) * 1000:.2f}",
                     "-", "-"))
        if not args.no_sqlite:
            shutil.rmtree(suite / "dbs", ignore_errors=True)
            rows += rows_for("SQLite", run_suite(suite, TEAMS / "seedkit.sqlite.toml",
                                                 f"sqlite:///{Path(tmp) / 'dbs'}/"))
    print()
    print_table(f"seedkit pytest plugin on PostgreSQL {version} (examples/teams, test environment)", rows)


if __name__ == "__main__":
    main()
