"""``seedkit migrate lint`` parses down sections too: one that is not PostgreSQL (MySQL left in a
postgres folder, a missing semicolon) fails only at ``migrate down``, when a team is already in trouble.

Each layout's down section is located in its own file (``down-syntax-error``, exit 3); a valid, empty or
missing down section gives nothing; ``seedkit:nolint`` and ``[lint]`` levels apply; SQLite down sections
are not read by the PostgreSQL parser; the down sections of the lint corpus all parse.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from seedkit.cli import app
from seedkit.lint import JSON_SCHEMA, RULES, file_dialect, lint_migrations
from seedkit.migrate.files import discover
from tests.support import offline_postgres_folder, write_files

CORPUS = Path(__file__).resolve().parent / "lint_corpus"

MYSQL_DOWN = "ALTER TABLE users MODIFY COLUMN name varchar(64);\n"  # MODIFY is MySQL's, at column 19


def write(path: Path, text: str) -> Path:
    write_files(path.parent, {path.name: text})
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PostgreSQL project folder (working directory) whose migrations' down sections all parse."""
    offline_postgres_folder(tmp_path, monkeypatch)
    mig = tmp_path / "migrations"
    write(mig / "20240101000001_users.sql", """
        -- migrate:up
        CREATE TABLE users (id bigint PRIMARY KEY, name text);

        -- migrate:down
        DROP TABLE users;
    """)
    write(mig / "20240101000002_email.up.sql", "ALTER TABLE users ADD COLUMN email text;\n")
    write(mig / "20240101000002_email.down.sql", "ALTER TABLE users DROP COLUMN email;\n")
    write(mig / "2024-01-01-000003_nick" / "up.sql", "ALTER TABLE users ADD COLUMN nick text;\n")
    write(mig / "2024-01-01-000003_nick" / "down.sql", "ALTER TABLE users DROP COLUMN nick;\n")
    return tmp_path


def lint(*args: str):
    return CliRunner().invoke(app, ["migrate", "lint", *args])


def lint_json(*args: str) -> dict:
    result = lint("--json", *args)
    data = json.loads(result.output)
    jsonschema.validate(data, JSON_SCHEMA)
    assert data["summary"]["exit_code"] == result.exit_code
    return data


def located(data: dict) -> list[tuple[str, int, int, str, str]]:
    return [(f["path"], f["line"], f["column"], f["rule"], f["level"]) for f in data["findings"]]


def assert_clean() -> None:
    """The valid down sections of every layout give nothing."""
    result = lint()
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "3 migrations checked: 0 errors, 0 warnings"


def test_mysql_down_in_a_single_file_is_an_error_located_in_the_down_section(folder: Path) -> None:
    assert_clean()
    write(folder / "migrations" / "20240101000001_users.sql", """
        -- migrate:up
        CREATE TABLE users (id bigint PRIMARY KEY, name text);

        -- migrate:down
        DROP INDEX IF EXISTS users_name_idx;
        ALTER TABLE users MODIFY COLUMN name varchar(64);
        DROP TABLE users;
    """)
    result = lint()
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    assert lines[0] == ("migrations/20240101000001_users.sql:6:19 down-syntax-error error "
                        "down section does not parse: syntax error at or near \"MODIFY\"")
    assert lines[1] == f"    hint: {RULES['down-syntax-error'].hint}"
    assert lines[-1] == "3 migrations checked: 1 error, 0 warnings"


def test_mysql_down_file_of_a_pair_is_located_in_the_down_file(folder: Path) -> None:
    assert_clean()
    write(folder / "migrations" / "20240101000002_email.down.sql", """
        -- golang-migrate keeps MySQL and PostgreSQL folders side by side; this one came from the other
        ALTER TABLE `users` DROP COLUMN `email`;
    """)
    data = lint_json()
    assert located(data) == [("migrations/20240101000002_email.down.sql", 2, 13, "down-syntax-error", "error")]
    assert data["summary"]["exit_code"] == 3
    # the finding counts for its migration, whose up file names it in "files"
    assert [(f["path"], f["errors"]) for f in data["files"]][1] == ("migrations/20240101000002_email.up.sql", 1)


def test_mysql_down_file_of_a_folder_is_located_in_down_sql(folder: Path) -> None:
    assert_clean()
    write(folder / "migrations" / "2024-01-01-000003_nick" / "down.sql", "SELECT 1;\n" + MYSQL_DOWN)
    data = lint_json()
    assert located(data) == [("migrations/2024-01-01-000003_nick/down.sql", 2, 19, "down-syntax-error", "error")]


def test_a_missing_semicolon_in_a_down_section_is_found(folder: Path) -> None:
    """Seen in a real Diesel history: two statements run together, which PostgreSQL refuses."""
    write(folder / "migrations" / "2024-01-01-000003_nick" / "down.sql", """
        ALTER TABLE users DROP CONSTRAINT users_nick_key
        ALTER TABLE users DROP COLUMN nick;
    """)
    data = lint_json()
    assert located(data) == [("migrations/2024-01-01-000003_nick/down.sql", 2, 1, "down-syntax-error", "error")]


def test_empty_comment_only_and_missing_down_sections_give_nothing(folder: Path) -> None:
    mig = folder / "migrations"
    write(mig / "20240101000001_users.sql", """
        -- migrate:up
        CREATE TABLE users (id bigint PRIMARY KEY, name text);

        -- migrate:down
    """)
    write(mig / "20240101000002_email.down.sql", "-- no way back: the column is kept\n")
    (mig / "2024-01-01-000003_nick" / "down.sql").unlink()
    write(mig / "20240101000004_tag.up.sql", "ALTER TABLE users ADD COLUMN tag text;\n")
    write(mig / "20240101000004_tag.down.sql", "")
    write(mig / "20240101000005_bio.up.sql", "ALTER TABLE users ADD COLUMN bio text;\n")
    write(mig / "20240101000005_bio.down.sql", "-- gone\n\n" + MYSQL_DOWN)
    data = lint_json()  # only the one down section that is there and is not PostgreSQL
    assert located(data) == [("migrations/20240101000005_bio.down.sql", 3, 19, "down-syntax-error", "error")]


def test_an_up_and_a_down_syntax_error_are_both_reported(folder: Path) -> None:
    write(folder / "migrations" / "20240101000001_users.sql", """
        -- migrate:up
        CREATE TABLE users (id bigint PRIMARY KEY, name text) ENGINE=InnoDB;

        -- migrate:down
        DROP TABLE `users`;
    """)
    data = lint_json()
    assert [(f["line"], f["rule"]) for f in data["findings"]] == [(2, "syntax-error"), (5, "down-syntax-error")]


def test_nolint_on_the_statement_suppresses_it_with_its_reason(folder: Path) -> None:
    write(folder / "migrations" / "2024-01-01-000003_nick" / "down.sql", """
        SELECT 1;
        -- seedkit:nolint down-syntax-error kept from the MySQL port; we never roll back past 2024
        ALTER TABLE users
          MODIFY COLUMN name varchar(64);
    """)
    data = lint_json()
    assert data["findings"] == [] and data["summary"]["exit_code"] == 0
    [suppressed] = data["suppressed"]
    assert (suppressed["path"], suppressed["line"], suppressed["rule"], suppressed["nolint_line"]) == (
        "migrations/2024-01-01-000003_nick/down.sql", 4, "down-syntax-error", 2)
    assert suppressed["reason"] == "kept from the MySQL port; we never roll back past 2024"


def test_nolint_elsewhere_does_not_suppress_and_its_own_mistakes_are_reported(folder: Path) -> None:
    write(folder / "migrations" / "2024-01-01-000003_nick" / "down.sql", """
        -- seedkit:nolint down-syntax-error the first statement is fine, this suppresses nothing
        SELECT 1;

        ALTER TABLE users MODIFY COLUMN name varchar(64);
    """)
    data = lint_json()
    assert [(f["line"], f["rule"]) for f in data["findings"]] == [(1, "nolint-unused"), (4, "down-syntax-error")]
    write(folder / "migrations" / "2024-01-01-000003_nick" / "down.sql", """
        -- seedkit:nolint down-syntax-error
        ALTER TABLE users MODIFY COLUMN name varchar(64);
    """)
    data = lint_json()
    assert [(f["line"], f["rule"]) for f in data["findings"]] == [(1, "nolint-missing-reason")]
    assert [s["rule"] for s in data["suppressed"]] == ["down-syntax-error"]


def test_nolint_of_other_rules_in_a_down_section_stays_silent(folder: Path) -> None:
    """Only down-syntax-error looks at a down section: a suppression there of another rule was never
    checked before and is not reported now."""
    write(folder / "migrations" / "20240101000002_email.down.sql", """
        -- seedkit:nolint drop-column the column was added by the up section
        ALTER TABLE users DROP COLUMN email;

        -- seedkit:nolint drop-column,drop-table neither rule looks here
        ALTER TABLE users MODIFY COLUMN name varchar(64);
    """)
    data = lint_json()
    assert located(data) == [("migrations/20240101000002_email.down.sql", 5, 19, "down-syntax-error", "error")]
    assert data["suppressed"] == []


@pytest.mark.parametrize(("level", "exit_code", "shown"), [("warning", 0, "warning"), ("off", 0, None),
                                                           ("error", 3, "error")])
def test_lint_levels_apply(folder: Path, level: str, exit_code: int, shown: str | None) -> None:
    write(folder / "migrations" / "20240101000002_email.down.sql", MYSQL_DOWN)
    with (folder / "seedkit.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[lint]\ndown-syntax-error = "{level}"\n')
    data = lint_json()
    assert data["summary"]["exit_code"] == exit_code
    assert [f["level"] for f in data["findings"]] == ([shown] if shown else [])
    strict = lint("--warnings-as-errors")
    assert strict.exit_code == (0 if level == "off" else 3), strict.output


def test_rules_list_names_the_down_check(folder: Path) -> None:
    result = lint("--rules")
    assert result.exit_code == 0
    row = next(line for line in result.output.splitlines() if line.startswith("down-syntax-error "))
    assert row.split()[1:3] == ["error", "error"]


SQLITE_DOWN = """
    PRAGMA foreign_keys = OFF;
    CREATE TABLE users_old (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
    REPLACE INTO users_old SELECT id, name FROM users;
    DROP TABLE users;
"""


def test_sqlite_project_down_sections_are_not_read_as_postgresql(folder: Path) -> None:
    write(folder / "migrations" / "20240101000002_email.down.sql", SQLITE_DOWN)
    write(folder / "migrations" / "2024-01-01-000003_nick" / "down.sql", SQLITE_DOWN)
    assert lint().exit_code == 3  # on PostgreSQL, this is not PostgreSQL
    (folder / "seedkit.toml").write_text('[database]\nurl = "sqlite:///app.db"\n', encoding="utf-8")
    result = lint()
    assert result.exit_code == 0, result.output
    assert "down-syntax-error" not in result.output
    assert lint("--dialect", "sqlite").exit_code == 0


def test_a_sqlite_hint_on_the_migration_or_its_down_file_skips_the_down_section(folder: Path) -> None:
    mig = folder / "migrations"

    def layouts(hint: str) -> None:
        write(mig / "20240101000001_users.sql", f"-- migrate:up\n{hint}"
              "CREATE TABLE users (id integer PRIMARY KEY, name text);\n\n-- migrate:down"
              + textwrap.dedent(SQLITE_DOWN))
        write(mig / "20240101000002_email.up.sql", f"{hint}ALTER TABLE users ADD COLUMN email text;\n")
        write(mig / "20240101000002_email.down.sql", SQLITE_DOWN)
        write(mig / "2024-01-01-000003_nick" / "down.sql", hint + textwrap.dedent(SQLITE_DOWN))

    layouts("")
    assert [f["rule"] for f in lint_json()["findings"]] == ["down-syntax-error"] * 3
    layouts("-- seedkit: dialect=sqlite\n")
    data = lint_json()
    assert data["findings"] == [], data["findings"]
    assert data["summary"]["skipped"] == 2


def test_check_down_section_places_findings_after_the_line_offset() -> None:
    from seedkit.lint import check_down_section

    findings, suppressed = check_down_section("SELECT 1;\n" + MYSQL_DOWN, path="m.sql", line_offset=10)
    assert [(f.path, f.line, f.column, f.rule) for f in findings] == [("m.sql", 12, 19, "down-syntax-error")]
    assert suppressed == []
    assert check_down_section("", path="m.sql") == ([], [])
    assert check_down_section("-- nothing\n", path="m.sql") == ([], [])


def test_every_down_section_of_the_corpus_parses_and_is_checked() -> None:
    migrations = discover(CORPUS)
    downs = [m for m in migrations if m.down is not None and m.down.sql.strip()]
    assert len(downs) >= 40
    assert {m.layout for m in downs} == {"file", "pair", "folder"}
    report = lint_migrations(migrations, dialect="postgresql")
    assert not [f for f in report.findings if f.rule == "down-syntax-error"]
    assert not [s for s in report.suppressed if s.finding.rule == "down-syntax-error"]
    # the same history with a MySQL line at the end of one down section of each layout
    broken = {next(m for m in downs if m.layout == layout and file_dialect(m.up.sql) != "sqlite").version
              for layout in ("file", "pair", "folder")}
    changed = [dataclasses.replace(m, down=dataclasses.replace(m.down, sql=m.down.sql + "\n" + MYSQL_DOWN))
               if m.version in broken and m.down is not None else m for m in migrations]
    report = lint_migrations(changed, dialect="postgresql")
    got = [(Path(f.path).resolve(), f.line, f.column) for f in report.findings if f.rule == "down-syntax-error"]
    # (the MySQL line is the section's last: its file line is the first line's plus the newlines before it)
    want = [(m.down.path.resolve(), m.down.line_offset + m.down.sql.rstrip("\n").count("\n"), 19)
            for m in changed if m.version in broken and m.down is not None]
    assert len(want) == 3
    assert got == want
