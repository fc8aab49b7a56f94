"""The memory bounds docs/seeds.md states, measured on real ``seedkit run`` processes.

- CSV streams from the file: peak memory does not grow with the file (``CSV_EXTRA_MB`` above the
  process's own baseline for a file several times that size);
- JSON and YAML documents are read whole: peak memory above the baseline stays under a stated
  multiple of the file size (``JSON_RATIO``, ``YAML_RATIO``).

Peak RSS is the child's own, read with ``os.wait4`` through a small launcher process: Linux carries a
process's high-water mark across ``exec``, so a child forked straight from the (large) pytest process
would report pytest's memory as its own. The last test shows the measurement can fail: a fixture that
holds a large list in memory breaks the bound.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import process_env

CSV_EXTRA_MB = 40  # a CSV of any size (here 3x this) adds at most this much to the baseline
JSON_RATIO = 12  # peak memory above the baseline, per MB of JSON file
YAML_RATIO = 25  # peak memory above the baseline, per MB of YAML file

LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(proc.pid, 0)
sys.stdout.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
sys.stderr.write(proc.stderr.read().decode())
"""
SCHEMA = ("CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT, qty INTEGER, "
          "price NUMERIC, note TEXT)")


def item(n: int) -> dict:
    return {"id": n, "sku": f"sku-{n:08d}", "name": f"Item number {n}", "qty": n % 1000,
            "price": f"{n % 100000 / 100:.2f}", "note": f"note for item {n}"}


def make_project(root: Path, fmt: str, mb: float) -> float:
    """A project whose one fixture is ``mb`` megabytes of items in ``fmt``; its real size in MB."""
    (root / "seeds" / "dev").mkdir(parents=True)
    (root / "seedkit.toml").write_text('[database]\nurl = "sqlite:///app.db"\n\n[envs.dev]\ninclude = ["dev"]\n')
    with sqlite3.connect(root / "app.db") as c:
        c.execute(SCHEMA)
    target, size, n, lines = mb * 1024 * 1024, 0, 0, []
    while size < target:
        n += 1
        row = item(n)
        if fmt == "csv":
            line = ",".join(str(v) for v in row.values())
        elif fmt == "json":
            line = json.dumps(row)
        else:
            line = "  - {" + ", ".join(f"{k}: {v}" for k, v in row.items()) + "}"
        lines.append(line)
        size += len(line) + 2
    path = root / "seeds" / "dev" / f"items.{fmt}"
    if fmt == "csv":
        path.write_text(",".join(item(0)) + "\n" + "\n".join(lines) + "\n")
    elif fmt == "json":
        path.write_text('{"rows": [\n' + ",\n".join(lines) + "\n]}\n")
    else:
        path.write_text("rows:\n" + "\n".join(lines) + "\n")
    return path.stat().st_size / 1024 / 1024


def peak_rss_mb(root: Path) -> float:
    done = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "seedkit", "run", "dev"],
                          cwd=root, env=process_env(), capture_output=True, text=True, timeout=600)
    maxrss, code = done.stdout.split()
    assert code == "0", done.stderr
    return int(maxrss) / 1024


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> float:
    """Peak memory of the same run with a file of a few rows: the interpreter, seedkit, the driver."""
    return peak_rss_mb(_project(tmp_path_factory.mktemp("base"), "csv", 0.001)[0])


def _project(root: Path, fmt: str, mb: float) -> tuple[Path, float]:
    size = make_project(root, fmt, mb)
    return root, size


def test_csv_memory_does_not_grow_with_the_file(tmp_path: Path, baseline: float) -> None:
    root, size = _project(tmp_path, "csv", 3 * CSV_EXTRA_MB)
    peak = peak_rss_mb(root)
    print(f"csv: {size:.0f} MB file, peak {peak:.0f} MB, baseline {baseline:.0f} MB")
    with sqlite3.connect(root / "app.db") as c:
        assert c.execute("SELECT count(*) FROM items").fetchone()[0] > 1_500_000
    assert peak - baseline <= CSV_EXTRA_MB, f"a {size:.0f} MB CSV peaked at {peak:.0f} MB (baseline {baseline:.0f} MB)"


@pytest.mark.parametrize("fmt,mb,ratio", [("json", 6, JSON_RATIO), ("yaml", 3, YAML_RATIO)])
def test_json_and_yaml_memory_stays_under_the_stated_multiple_of_the_file(tmp_path: Path, baseline: float, fmt: str,
                                                                          mb: float, ratio: int) -> None:
    root, size = _project(tmp_path, fmt, mb)
    peak = peak_rss_mb(root)
    print(f"{fmt}: {size:.1f} MB file, peak {peak:.0f} MB, baseline {baseline:.0f} MB, "
          f"{(peak - baseline) / size:.1f}x the file")
    assert (peak - baseline) <= ratio * size, \
        f"a {size:.1f} MB {fmt} file peaked at {peak:.0f} MB: {(peak - baseline) / size:.0f}x the file above " \
        f"the baseline of {baseline:.0f} MB, the docs say at most {ratio}x"


def test_the_measurement_sees_memory_a_run_holds(tmp_path: Path, baseline: float) -> None:
    """A fixture that keeps 200 MB alive must read as more than the CSV bound: the bound can fail."""
    root, _ = _project(tmp_path, "csv", 0.001)
    (root / "seeds" / "dev" / "hog.py").write_text(
        "from seedkit import fixture\n\nHELD = [b'x' * (1024 * 1024) for _ in range(200)]\n\n\n"
        "@fixture('items', key='id', count=1)\ndef hog(fake, n):\n    return {'id': 10**6, 'sku': 'hog'}\n")
    peak = peak_rss_mb(root)
    assert peak - baseline > CSV_EXTRA_MB
    assert peak - baseline > 190
