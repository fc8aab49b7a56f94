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
            f"@fixture('users', key='email', count={count})\ndef {name}(fake, n):\n    return {{'email': fake.email()}}\n")
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
    assert result.exit_code != 0 and "CHECK constraint failed" in result.stderr, result.stderr
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM users").fetchone() == (0,)
