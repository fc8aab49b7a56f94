"""CSV fixtures stream from the file: any cell size, located errors deep in the file, nothing written.

A CSV file is read a batch of rows at a time each time its rows are needed (seed/load.py), never held
whole. These tests use a batch size of 50 so that every problem sits many batches into the stream,
after rows have already gone to the database in the same transaction.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seedkit.cli import app
from tests.support import Project, checksums

PG_SCHEMA = """
CREATE TABLE items (id bigint PRIMARY KEY, sku text NOT NULL UNIQUE, qty int, code varchar(5), body text);
"""
SQLITE_SCHEMA = """
CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, qty INTEGER, code VARCHAR(5), body TEXT);
"""
ROWS = 600


@pytest.fixture
def project(db_url: str, tmp_path: Path) -> Project:
    p = Project(tmp_path, db_url, {"dev": {"include": ["dev"]}})
    config = p.root / "seedkit.toml"
    config.write_text(config.read_text().replace("faker_seed = 7", "faker_seed = 7\nbatch_size = 50"))
    p.sql(PG_SCHEMA, SQLITE_SCHEMA)
    return p


def run(project: Project, *args: str):
    return CliRunner().invoke(app, ["--config", str(project.root / "seedkit.toml"), "run", "dev", *args])


def csv_text(rows: int = ROWS, *, bad: dict[int, str] | None = None, tall_row: int = 3) -> tuple[str, dict[int, int]]:
    """The items CSV and the line each row starts on (row ``tall_row`` holds a cell of three lines,
    so lines and row numbers part ways)."""
    lines = ["id,sku,qty,code,body"]
    starts: dict[int, int] = {}
    line = 2
    for n in range(1, rows + 1):
        starts[n] = line
        body = '"first\nsecond\nthird"' if n == tall_row else f"body {n}"
        text = (bad or {}).get(n, f"{n},sku-{n},{n % 50},c{n % 100},{body}")
        lines.append(text)
        line += text.count("\n") + 1
    return "\n".join(lines) + "\n", starts


def test_a_cell_larger_than_128_kib_loads(project: Project) -> None:
    big = "x" * (300 * 1024)
    tall = "line\n" * 50_000 + "end"  # 250 KB across 50 001 lines, quoted
    project.write("dev/items.csv", f'id,sku,body\n1,one,{big}\n2,two,"{tall}"\n3,three,small\n')
    result = run(project)
    assert result.exit_code == 0, result.stderr
    rows = project.rows("SELECT id, length(body) FROM items ORDER BY id")
    assert rows == [(1, len(big)), (2, len(tall)), (3, 5)]
    assert hashlib.sha256(project.scalar("SELECT body FROM items WHERE id = 2").encode()).hexdigest() == \
        hashlib.sha256(tall.encode()).hexdigest()
    assert not run(project).exit_code and "unchanged" in run(project, "--json").stdout


def test_a_large_csv_loads_in_batches_and_reruns_unchanged(project: Project) -> None:
    text, _ = csv_text()
    project.write("dev/items.csv", text)
    first = run(project, "--json")
    assert first.exit_code == 0, first.stderr
    assert '"inserted": 600' in first.stdout
    assert project.scalar("SELECT body FROM items WHERE id = 3") == "first\nsecond\nthird"
    assert project.scalar("SELECT count(*) FROM items WHERE code IS NOT NULL") == ROWS
    again = run(project, "--json")
    assert again.exit_code == 0 and '"unchanged": 600' in again.stdout, again.stdout
    changed, _ = csv_text(bad={400: "400,sku-400,7,new,body 400"})
    project.write("dev/items.csv", changed)
    third = run(project, "--json")
    assert '"updated": 1' in third.stdout and '"unchanged": 599' in third.stdout, third.stdout
    assert project.rows("SELECT qty, code FROM items WHERE id = 400") == [(7, "new")]


BAD = {
    # row -> (replacement line, fragments the error names besides the file and line)
    "text-for-an-integer": (450, "450,sku-450,many,c1,body", ["row 450", "'qty'"]),
    "ragged-row": (500, "500,sku-500,1", ["row 500", "expected 5 cells", "found 3"]),
    "empty-key": (520, ",sku-520,1,c1,body", ["row 520", "'id'"]),
    "key-repeated-deep-in-the-file": (580, "7,sku-580,1,c1,body", ["row 580", "(id=7) appears twice", "row 7"]),
    "unterminated-quote": (590, '590,sku-590,1,c1,"open', ["malformed CSV"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("into", ["empty", "seeded"])
def test_a_bad_row_deep_in_a_large_csv_is_located_and_nothing_is_written(project: Project, case: str,
                                                                        into: str) -> None:
    if into == "seeded":
        good, _ = csv_text()
        project.write("dev/items.csv", good.replace("body 1\n", "old body\n"))
        assert run(project).exit_code == 0
    before = checksums(project.url, ["items"])
    n, line_text, expect = BAD[case]
    text, starts = csv_text(bad={n: line_text})
    project.write("dev/items.csv", text)
    result = run(project)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    err = result.stderr
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert f"items.csv:{starts[n]}" in err, (starts[n], err)
    for fragment in expect:
        assert fragment in err, (fragment, err)
    assert checksums(project.url, ["items"]) == before


def test_a_value_the_database_rejects_names_its_row_and_line(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL finds varchar(5) too short only while the COPY runs: the COPY's line maps back to the
    row, and the row to its line in the file."""
    project = Project(tmp_path, pg_url, {"dev": {"include": ["dev"]}})
    project.sql(PG_SCHEMA)
    text, starts = csv_text(bad={470: "470,sku-470,1,toolong,body"})
    project.write("dev/items.csv", text)
    result = run(project)
    assert result.exit_code == 2, result.stderr
    assert f"items.csv:{starts[470]}" in result.stderr and "row 470" in result.stderr, result.stderr
    assert project.scalar("SELECT count(*) FROM items") == 0


def test_invalid_utf8_and_nul_bytes_deep_in_the_file_are_located(project: Project) -> None:
    text, starts = csv_text()
    data = text.encode()
    at = data.index(b"sku-300,")
    path = project.write("dev/items.csv", "")
    path.write_bytes(data[:at] + b"\xff" + data[at:])
    result = run(project)
    assert result.exit_code == 2 and f"items.csv:{starts[300]}" in result.stderr and "UTF-8" in result.stderr
    path.write_bytes(data[:at] + b"\x00" + data[at:])
    result = run(project)
    assert result.exit_code == 2 and f"items.csv:{starts[300]}" in result.stderr and "NUL" in result.stderr
    assert project.scalar("SELECT count(*) FROM items") == 0
