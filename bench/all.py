"""Every speed target of the project in one run, on one PostgreSQL server, as same-run ratios.

Runs, one after the other against the same throwaway server (or ``--database``):

- ``seed_bench.py``: the bulk path at ``--rows`` (default 1,000,000) against raw COPY — fresh,
  half-full, no-op rerun (dead tuples, WAL), 1 % changed, references by natural key, peak RSS,
  executemany — the small project, and the template's own project (``seedkit run dev`` rerun);
- ``realdb_bench.py``: Chinook (~15k rows) and Pagila (~46k rows) as YAML+CSV fixtures against psql;
- ``migrate_bench.py``: generated migrations against raw statements, and crates.io's history
  against dbmate.

Before each, the server ends any checkpoint it is spreading out and the machine goes quiet (``settle``:
a million-row bench's writes can otherwise still be going to disk under the next bench's small cases). Each prints
its own table as it goes; at the end this prints every target, what was measured, the
load average before and after, and three probes before and after: a pure-Python loop, making a
million rows like the bulk cases' and a bare interpreter start (the machine may be shared, or a
virtual machine whose speed drifts: compare the ratios, not the seconds, and compare runs only at
like probes).

    python bench/all.py [--rows 1000000] [--repeat 3] [--database URL] [--dbmate PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # a script: the repository root, for tests.support
from tests.support.pgcluster import server  # noqa: E402

PROBES = {  # what one core gives this run: a pure loop, the same rows the bulk cases make, a process start
    "loop": "sum(range(30_000_000))",
    "rows": "[(f'user{n}@example.com', f'User Number {n}', 18 + n % 70) for n in range(1_000_000)]",
    "start": None,
}


def cpu_probe() -> str:
    """Seconds each probe takes in a bare interpreter, the fastest of three. On a virtual machine whose
    speed drifts, the loop alone can look fast while making rows (memory) and starting a process do
    not: the client-side cases follow the last two (the server-side work moves less with them)."""
    out = []
    for name, code in PROBES.items():
        runs = []
        for _ in range(3):
            if code is None:
                t = time.perf_counter()
                subprocess.run([sys.executable, "-c", "pass"], check=True)  # (with site, as every case starts)
                runs.append(time.perf_counter() - t)
            else:
                timed = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
                runs.append(float(subprocess.run([sys.executable, "-S", "-c", timed], capture_output=True,
                                                 text=True, check=True).stdout))
        out.append(f"{name} {min(runs):.3f}")
    return ", ".join(out) + " s"


def cpu_busy(seconds: float = 0.5) -> float:
    """The share of all CPUs busy over ``seconds`` (from /proc/stat; 0.0 where it cannot be read)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def settle(url: str, *, limit: float = 90.0) -> str:
    """Before each bench: the server ends any checkpoint it is spreading over minutes (a million-row
    bench's writes can otherwise still be going to disk under the next bench's small cases), no
    autovacuum worker is left running, and the machine's CPUs are quiet (≤ 10 % busy), or ``limit``
    seconds pass. Both sides of every ratio are measured after it; it says how long it waited. A role
    that may not run ``CHECKPOINT`` (``--database``) only waits."""
    import psycopg

    started = time.perf_counter()
    workers, busy, note = 0, 0.0, ""
    with psycopg.connect(url, autocommit=True) as c:
        try:
            c.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            note = "; no CHECKPOINT: the role may not run it"
        while True:
            workers = c.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
                                ).fetchone()[0]  # type: ignore[index]
            busy = cpu_busy()
            if not workers and busy <= 0.10:
                return f"settled in {time.perf_counter() - started:.1f} s{note}"
            if time.perf_counter() - started >= limit:
                return (f"not settled after {limit:.0f} s ({workers} autovacuum worker(s), CPUs {busy:.0%} busy"
                        f"{note}): the machine is shared; compare this run's ratios with care")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", help="server URL to create throwaway databases on")
    parser.add_argument("--dbmate", help="the dbmate binary (default: dbmate on PATH)")
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()
    probe_before = cpu_probe()
    with tempfile.TemporaryDirectory() as tmp, server(args.database) as url:
        summary = Path(tmp) / "summary.jsonl"
        common = ["--database", url, "--repeat", str(args.repeat), "--summary", str(summary)]
        runs = [
            [str(BENCH / "seed_bench.py"), "--rows", str(args.rows), *common],
            [str(BENCH / "realdb_bench.py"), *common],
            [str(BENCH / "migrate_bench.py"), *common, *(["--dbmate", args.dbmate] if args.dbmate else [])],
        ]
        for cmd in runs:
            print(f"\n=== {Path(cmd[0]).name} ({settle(url)})", flush=True)
            done = subprocess.run([sys.executable, *cmd], check=False)
            if done.returncode != 0:
                print(f"{Path(cmd[0]).name} exited {done.returncode}", flush=True)
        items = [json.loads(line) for line in summary.read_text(encoding="utf-8").splitlines()] \
            if summary.exists() else []
    load_after = os.getloadavg()
    probe_after = cpu_probe()
    print(f"\n=== every target, one run ({time.perf_counter() - started:.0f} s; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after, {os.cpu_count()} CPUs; "
          f"CPU probes before: {probe_before}; after: {probe_after})\n")
    width = max((len(f"{i['bench']}: {i['case']}") for i in items), default=10)
    for i in items:
        mark = "✓" if i["ok"] else "✗"
        print(f"{mark} {i['bench'] + ': ' + i['case']:<{width}}  {i['measured']}")
    missed = sum(1 for i in items if not i["ok"])
    print(f"\n{missed} of {len(items)} target(s) missed")


if __name__ == "__main__":
    main()
