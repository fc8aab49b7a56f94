"""Lint levels: the defaults, the project's ``[lint]`` table, ``--warnings-as-errors``, and the one exit
code scheme that every check shares (``status --exit-code``, ``verify``, ``lint``, ``run --check``)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seedkit import load_config
from seedkit.cli import app
from seedkit.errors import ConfigError
from seedkit.lint import RULES, effective_levels, lint_sql

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def invoke(root: Path, *args: str):
    return CliRunner().invoke(app, ["--config", str(root / "seedkit.toml"), *args])


@pytest.fixture
def lint_project_dir(tmp_path: Path) -> Path:
    write(tmp_path / "seedkit.toml", '[database]\nurl = "postgresql://localhost/unused"\n')
    write(tmp_path / "migrations" / "1_users.sql", """
        -- migrate:up
        CREATE TABLE users (id int PRIMARY KEY, email text, legacy text);
    """)
    write(tmp_path / "migrations" / "2_backfill.sql", """
        -- migrate:up
        UPDATE users SET email = lower(email);
    """)
    write(tmp_path / "migrations" / "3_seed.sql", """
        -- migrate:up
        INSERT INTO users (id, email) VALUES (1, 'admin@example.com');
    """)
    write(tmp_path / "migrations" / "4_drop.sql", """
        -- migrate:up
        ALTER TABLE users DROP COLUMN legacy;
    """)
    return tmp_path


def _levels(result_output: str) -> dict[str, str]:
    found = re.findall(r"^\S+:\d+:\d+ (?P<rule>[a-z-]+) (?P<level>error|warning) ", result_output, re.M)
    return dict(found)


def test_backfills_and_seed_data_are_errors_and_drop_column_a_warning_by_default(lint_project_dir: Path) -> None:
    assert RULES["backfill-in-migration"].level == "error"
    assert RULES["seed-data-in-migration"].level == "error"
    assert RULES["drop-column"].level == "warning"
    result = invoke(lint_project_dir, "migrate", "lint")
    assert result.exit_code == 3, result.output
    assert _levels(result.output) == {"backfill-in-migration": "error", "seed-data-in-migration": "error",
                                      "drop-column": "warning"}
    for sql in ("DELETE FROM users WHERE id > 10;", "MERGE INTO users u USING other o ON u.id = o.id "
                "WHEN MATCHED THEN UPDATE SET email = o.email;", "INSERT INTO users SELECT * FROM other;"):
        findings = lint_sql(sql, path="m.sql", transactional=True)
        assert [(f.rule, f.level) for f in findings] == [("backfill-in-migration", "error")], sql


def test_the_lint_table_sets_each_rule_to_error_warning_or_off(lint_project_dir: Path) -> None:
    with (lint_project_dir / "seedkit.toml").open("a", encoding="utf-8") as f:
        f.write('\n[lint]\nbackfill-in-migration = "warning"\nseed-data-in-migration = "off"\n'
                'drop-column = "error"\n')
    result = invoke(lint_project_dir, "migrate", "lint")
    assert _levels(result.output) == {"backfill-in-migration": "warning", "drop-column": "error"}
    assert result.exit_code == 3
    assert result.output.splitlines()[-1] == "4 migrations checked: 1 error, 1 warning"

    text = (lint_project_dir / "seedkit.toml").read_text().replace('drop-column = "error"', 'drop-column = "off"')
    (lint_project_dir / "seedkit.toml").write_text(text)
    relaxed = invoke(lint_project_dir, "migrate", "lint")
    assert relaxed.exit_code == 0, relaxed.output
    assert _levels(relaxed.output) == {"backfill-in-migration": "warning"}
    strict = invoke(lint_project_dir, "migrate", "lint", "--warnings-as-errors", "--json")
    assert strict.exit_code == 3
    assert '"level": "error"' in strict.output and '"exit_code": 3' in strict.output


def test_rules_show_the_effective_level_next_to_the_default(lint_project_dir: Path) -> None:
    (lint_project_dir / "seedkit.toml").write_text('[lint]\nbackfill-in-migration = "off"\n')
    result = invoke(lint_project_dir, "migrate", "lint", "--rules")
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split()[1:3] for line in result.output.splitlines()[1:-1]}
    assert rows["backfill-in-migration"] == ["off", "error"]
    assert rows["drop-column"] == ["warning", "warning"]
    assert "changed from the default by [lint] in" in result.output.splitlines()[-1]
    strict = invoke(lint_project_dir, "migrate", "lint", "--rules", "--warnings-as-errors")
    rows = {line.split()[0]: line.split()[1:3] for line in strict.output.splitlines()[1:-1]}
    assert rows["drop-column"] == ["error", "warning"] and rows["backfill-in-migration"] == ["off", "error"]


@pytest.mark.parametrize(("table", "needles"), [
    ('backfill-in-migraton = "off"', ["unknown rule 'backfill-in-migraton'",
                                      "did you mean 'backfill-in-migration'"]),
    ('drop-column = "fatal"', ["lint.drop-column", "line 4"]),
    ('syntax-error = "off"', ["syntax-error cannot be changed"]),
    ("drop-column = 1", ["lint.drop-column"]),
])
def test_a_bad_lint_table_is_a_located_configuration_error(lint_project_dir: Path, table: str,
                                                           needles: list[str]) -> None:
    (lint_project_dir / "seedkit.toml").write_text(f'[database]\nurl = "sqlite:///x.db"\n[lint]\n{table}\n')
    result = invoke(lint_project_dir, "migrate", "lint")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    assert "seedkit.toml" in result.output


def test_docs_show_a_lint_table_that_loads_and_the_flag(tmp_path: Path) -> None:
    text = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(\[lint\]\n.*?)```", text, re.S)
    assert block, "docs/lint.md shows a [lint] table"
    (tmp_path / "seedkit.toml").write_text(block[1])
    levels = effective_levels(load_config(tmp_path / "seedkit.toml"))
    assert levels["backfill-in-migration"] == "warning"
    assert "--warnings-as-errors" in text
    help_text = CliRunner().invoke(app, ["migrate", "lint", "--help"], env={"COLUMNS": "300"}).output
    assert "--warnings-as-errors" in help_text and "[lint]" in help_text


def test_effective_levels_without_a_config_are_the_defaults() -> None:
    assert effective_levels(None) == {r.id: r.level for r in RULES.values()}
    with pytest.raises(ConfigError):
        effective_levels(_bad_config())


def _bad_config():
    from seedkit.config import Config, Settings

    return Config(settings=Settings.model_validate({"lint": {"no-such-rule": "off"}}), root=REPO)


# -- one exit code scheme for every check -----------------------------------------------------------


@pytest.fixture
def check_project_dir(tmp_path: Path) -> Path:
    write(tmp_path / "seedkit.toml", """
        [database]
        url = "sqlite:///app.db"

        [envs.dev]
        include = ["common"]
    """)
    write(tmp_path / "migrations" / "1_roles.sql", """
        -- migrate:up
        -- seedkit: dialect=postgresql
        CREATE TABLE roles (id integer PRIMARY KEY, name text NOT NULL);
    """)
    write(tmp_path / "seeds" / "common" / "roles.yaml", """
        rows:
          - {id: 1, name: admin}
    """)
    return tmp_path


def test_every_check_exits_0_when_clean_3_when_it_finds_something_and_2_on_bad_usage(
        check_project_dir: Path) -> None:
    """The pinned scheme (README: exit codes): status --exit-code, verify, lint and run --check."""
    checks = {
        "status --exit-code": ["migrate", "status", "--exit-code"],
        "verify": ["migrate", "verify"],
        "lint": ["migrate", "lint"],
        "run --check": ["run", "dev", "--check"],
    }

    def codes() -> dict[str, int]:
        return {name: invoke(check_project_dir, *args).exit_code for name, args in checks.items()}

    # something found by each check: pending migration, (verify needs drift), nothing seeded
    assert invoke(check_project_dir, "migrate", "up").exit_code == 0
    assert invoke(check_project_dir, "run", "dev").exit_code == 0
    assert codes() == {name: 0 for name in checks}

    write(check_project_dir / "migrations" / "2_idx.sql", """
        -- migrate:up
        -- seedkit: dialect=postgresql
        CREATE INDEX roles_name ON roles (name);
    """)
    (check_project_dir / "migrations" / "1_roles.sql").write_text(
        (check_project_dir / "migrations" / "1_roles.sql").read_text() + "-- edited after it shipped\n")
    write(check_project_dir / "seeds" / "common" / "roles.yaml", "rows:\n  - {id: 1, name: owner}\n")
    assert codes() == {name: 3 for name in checks}

    (check_project_dir / "seedkit.toml").write_text("[database]\nurl = 1\n")
    assert codes() == {name: 2 for name in checks}

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    row = re.search(r"^\| 3 \| (?P<meaning>[^|]+)\|", readme, re.M)
    assert row and "check" in row["meaning"], "README's exit-code table gives 3 to checks"
