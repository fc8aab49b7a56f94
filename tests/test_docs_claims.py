"""Figures and statements in docs/ that need a measurement of their own.

- the Faker repeat rates quoted in docs/python-fixtures.md are recomputed here from the text of the
  page (change the figure or Faker's behaviour, and this fails);
- what SQLite does with the three inputs it accepts where PostgreSQL refuses them (docs/seeds.md,
  "SQLite"): the stored values and their storage classes, read back with sqlite3.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seedkit import load_config
from seedkit.cli import app
from seedkit.seed import load_fixtures

REPO = Path(__file__).resolve().parent.parent


def doc(name: str) -> str:
    return " ".join((REPO / "docs" / name).read_text(encoding="utf-8").split())


# -- Faker repeat rates ---------------------------------------------------------------------------
def test_the_faker_repeat_rates_in_the_docs_are_measured() -> None:
    from faker import Faker

    text = doc("python-fixtures.md")
    found = re.search(r"Among ([\d,]+) `fake\.email\(\)` values of a fixture named `(\w+)` with `faker_seed = (\d+)` "
                      r"\(`(\w+)`.*?\), ([\d.]+) % repeat an earlier row's with seedkit's per-row seeding; Faker "
                      r"with its defaults, seeded once with (\d+), repeats ([\d.]+) %", text)
    assert found, "the figure moved: update this test with the page"
    count, name, seed, locale, per_row, once_seed, once = found.groups()
    count = int(count.replace(",", ""))
    root = Path(__file__).resolve().parent  # any folder: the project is written to a temporary one below
    assert root.is_dir()

    def rate(values: list[str], upto: int) -> float:
        seen: set[str] = set()
        repeats = 0
        for v in values[:upto]:
            repeats += v in seen
            seen.add(v)
        return 100 * repeats / upto

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "seeds" / "dev").mkdir(parents=True)
        (project / "seedkit.toml").write_text(f"[seeds]\nfaker_seed = {seed}\nfaker_locale = \"{locale}\"\n\n"
                                              "[envs.dev]\ninclude = [\"dev\"]\n")
        (project / "seeds" / "dev" / "emails.py").write_text(
            "from seedkit import fixture\n\n\n"
            f"@fixture('users', key='email', count={count})\ndef {name}(fake, n):\n"
            "    return {'email': fake.email()}\n")
        (fx,) = load_fixtures(load_config(project / "seedkit.toml"), ["dev"])
        emails = [row["email"] for _, row in fx.numbered()]
    assert len(emails) == count
    assert round(rate(emails, count), 1) == float(per_row)
    fake = Faker(locale)
    fake.seed_instance(int(once_seed))
    plain = [fake.email() for _ in range(count)]
    assert round(rate(plain, count), 1) == float(once)
    # "the share grows with the number of rows"
    assert rate(emails, count // 4) < rate(emails, count) and rate(plain, count // 4) < rate(plain, count)


# -- SQLite: the inputs it accepts where PostgreSQL refuses them -------------------------------------
SQLITE_SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, age INTEGER, score DECIMAL(8,2),
                    code VARCHAR(3));
"""


@pytest.mark.parametrize("column,written,stored,storage", [
    ("age", "2147483648", 2147483648, "integer"),  # beyond int4: SQLite INTEGER holds 64 bits
    ("score", "123456789.5", 123456789.5, "real"),  # beyond DECIMAL(8,2): stored whole, as a float
    ("score", "1.005", 1.005, "real"),  # more decimals than DECIMAL(8,2) allows: kept, not rounded to 2
    ("code", "ABCDEF", "ABCDEF", "text"),  # longer than VARCHAR(3): stored whole, not cut
])
def test_sqlite_stores_what_postgresql_would_refuse_as_the_docs_say(tmp_path: Path, column: str, written: str,
                                                                     stored: object, storage: str) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as c:
        c.executescript(SQLITE_SCHEMA)
    (tmp_path / "seeds" / "dev").mkdir(parents=True)
    (tmp_path / "seedkit.toml").write_text(f'[database]\nurl = "sqlite:///{db}"\n\n[envs.dev]\ninclude = ["dev"]\n')
    (tmp_path / "seeds" / "dev" / "users.yaml").write_text(
        f"key: [email]\nrows:\n  - {{email: a@x.io, {column}: {written}}}\n")
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "seedkit.toml"), "run", "dev"])
    assert result.exit_code == 0, result.stderr
    with sqlite3.connect(db) as c:
        assert c.execute(f"SELECT {column}, typeof({column}) FROM users").fetchall() == [(stored, storage)]
    again = CliRunner().invoke(app, ["--config", str(tmp_path / "seedkit.toml"), "run", "dev", "--check"])
    assert again.exit_code == 0, again.stdout  # and a rerun finds nothing to change
    # the docs say exactly this
    said = {"age": "| the integer `2147483648` (SQLite integers have 64 bits",
            "score": "| the REAL (64-bit float) `123456789.5`, `1.005`: no precision or scale applied |",
            "code": "| the text `ABCDEF`, whole |"}[column]
    assert said in doc("seeds.md")


def test_a_check_constraint_makes_sqlite_refuse_what_it_would_store(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as c:
        c.executescript(SQLITE_SCHEMA.replace("code VARCHAR(3)", "code VARCHAR(3) CHECK (length(code) <= 3)"))
    (tmp_path / "seeds" / "dev").mkdir(parents=True)
    (tmp_path / "seedkit.toml").write_text(f'[database]\nurl = "sqlite:///{db}"\n\n[envs.dev]\ninclude = ["dev"]\n')
    (tmp_path / "seeds" / "dev" / "users.yaml").write_text(
        "key: [email]\nrows:\n  - {email: a@x.io, code: ABC}\n  - {email: b@x.io, code: ABCDEF}\n")
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "seedkit.toml"), "run", "dev"])
    # a simple CHECK (length, range, IN list) is checked before any write, with the file and line
    assert result.exit_code == 2, result.stderr
    assert "users.yaml:4, document 1, row 2, column 'code': 'ABCDEF' is too long" in result.stderr
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM users").fetchone() == (0,)


# -- docs/seeds.md: statements no other test held -----------------------------------------------------
def _project(tmp_path: Path, schema: str, files: dict[str, str], include: tuple[str, ...] = ("dev",)) -> Path:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as c:
        c.executescript(schema)
    inc = ", ".join(f'"{i}"' for i in include)
    (tmp_path / "seedkit.toml").write_text(f'[database]\nurl = "sqlite:///{db}"\n\n[seeds]\nfaker_seed = 5\n\n'
                                           f"[envs.dev]\ninclude = [{inc}]\n")
    for rel, text in files.items():
        path = tmp_path / "seeds" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return db


def _run(tmp_path: Path, *args: str):
    return CliRunner().invoke(app, ["--config", str(tmp_path / "seedkit.toml"), "run", "dev", *args])


def _rows(db: Path, query: str) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(query).fetchall()


def test_files_load_in_folder_order_then_by_path_and_underscore_and_dot_names_are_ignored(tmp_path: Path) -> None:
    from seedkit.seed.load import discover

    files = {"dev/b.yaml": "", "dev/a/z.yaml": "", "dev/_helpers.py": "", "dev/.hidden.yaml": "",
             "dev/_drafts/x.yaml": "", "dev/.cache/y.yaml": "", "dev/notes.txt": "", "common/z.yaml": "",
             "common/a.csv": ""}
    for rel in files:
        (tmp_path / "seeds" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "seeds" / rel).write_text("")
    found = [p.relative_to(tmp_path / "seeds").as_posix() for p in discover(tmp_path / "seeds", ["dev", "common"])]
    assert found == ["dev/a/z.yaml", "dev/b.yaml", "common/a.csv", "common/z.yaml"]


REFS_SCHEMA = """
CREATE TABLE artists (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE badges (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, label TEXT NOT NULL UNIQUE);
CREATE TABLE albums (id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE, artist_id INTEGER REFERENCES artists(id),
                     boss_id INTEGER REFERENCES employees(id), badge_id INTEGER REFERENCES badges(id),
                     meta JSON, copies INTEGER);
"""


def test_reference_forms_and_csv_cells_behave_as_documented(tmp_path: Path) -> None:
    db = _project(tmp_path, REFS_SCHEMA, {
        # no key declared: artists' single one-column unique key (name) is the natural key
        "dev/artists.yaml": "rows:\n  - {id: 1, name: AC/DC}\n  - {id: 2, name: Queen}\n",
        # no unique key but the primary key: the value converts to the integer key
        "dev/employees.yaml": "rows:\n  - {id: 3, name: Bon}\n",
        # two one-column unique keys: the key a fixture declares decides
        "dev/badges.yaml": "key: [label]\nrows:\n  - {id: 9, code: g, label: gold}\n",
        "dev/albums.yaml": "key: [title]\nrows:\n"
                           "  - {title: Powerage, artist_id: !ref artists/AC/DC, boss_id: !ref employees/3,"
                           " badge_id: !ref badges/gold}\n",
        "dev/more.json": '{"table": "albums", "key": ["title"], "rows": [{"title": "Jazz", '
                         '"artist_id": {"$ref": {"table": "artists", "name": "Queen"}}}]}',
        "dev/albums.csv": 'id,title,meta,copies\n7,Live,"{""a"": [1, 2]}",42\n',
    })
    result = _run(tmp_path)
    assert result.exit_code == 0, result.stderr
    assert _rows(db, "SELECT title, artist_id, boss_id, badge_id FROM albums WHERE title != 'Live' ORDER BY 1") == [
        ("Jazz", 2, None, None), ("Powerage", 1, 3, 9)]
    # a CSV cell is converted to the column's type: JSON text for a json column, "42" -> 42
    assert _rows(db, "SELECT json_extract(meta, '$.a[1]'), copies, typeof(copies) FROM albums WHERE id = 7") == [
        (2, 42, "integer")]
    assert _run(tmp_path, "--check").exit_code == 0


def test_diff_shows_the_first_20_changed_values(tmp_path: Path) -> None:
    rows = "".join(f"  - {{id: {n}, name: name{n}}}\n" for n in range(1, 31))
    _project(tmp_path, REFS_SCHEMA, {"dev/employees.yaml": "rows:\n" + rows})
    assert _run(tmp_path).exit_code == 0
    (tmp_path / "seeds" / "dev" / "employees.yaml").write_text("rows:\n" + rows.replace("name: name", "name: new"))
    result = _run(tmp_path, "--dry-run", "--diff")
    assert result.exit_code == 0
    shown = [line for line in result.stdout.splitlines() if "employees {" in line]
    assert len(shown) == 20 and "'name1' → 'new1'" in result.stdout and "'name21'" not in result.stdout, result.stdout


def test_a_progress_bar_on_a_terminal_and_quiet_when_piped(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support import process_env, run_on_a_terminal

    rows = "".join(f"  - {{id: {n}, name: name{n}}}\n" for n in range(1, 2001))
    _project(tmp_path, REFS_SCHEMA, {"dev/employees.yaml": "rows:\n" + rows})
    command = [sys.executable, "-m", "seedkit", "--config", str(tmp_path / "seedkit.toml"), "run", "dev"]
    piped = subprocess.run(command, env=process_env({"TERM": "xterm"}), capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    proc, seen = run_on_a_terminal(command, {"TERM": "xterm"})
    assert proc.returncode == 0, proc.stdout
    assert b"employees" in seen and b"2000/2000" in seen, seen[-500:]


def test_faker_pin_in_the_docs_is_the_projects() -> None:
    import tomllib

    pins = [d for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
            if d.startswith("faker")]
    assert pins and f"`{pins[0]}`" in doc("python-fixtures.md")


def test_renaming_a_fixture_function_keeps_values_with_name_and_other_seeds_change_them(tmp_path: Path) -> None:
    def emails(function: str, extra: str = "", seed: int = 5, locale: str = "en_US") -> list[str]:
        project = tmp_path / f"p{function}{extra}{seed}{locale}".replace("=", "").replace('"', "").replace(",", "")
        (project / "seeds" / "dev").mkdir(parents=True)
        (project / "seedkit.toml").write_text(f'[seeds]\nfaker_seed = {seed}\nfaker_locale = "{locale}"\n\n'
                                              '[envs.dev]\ninclude = ["dev"]\n')
        (project / "seeds" / "dev" / "f.py").write_text(
            f"from seedkit import fixture\n\n\n@fixture('users', key='email', count=5{extra})\n"
            f"def {function}(fake, n):\n    return {{'email': f'u{{n}}', 'name': fake.name()}}\n")
        (fx,) = load_fixtures(load_config(project / "seedkit.toml"), ["dev"])
        return [row["name"] for _, row in fx.numbered()]

    original = emails("users")
    assert emails("people", ', name="users"') == original  # renamed, name kept: the same values
    assert emails("people") != original  # renamed without name=: other values
    assert emails("users", seed=6) != original
    assert emails("users", locale="de_DE") != original
