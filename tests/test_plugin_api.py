"""The Python API the pytest plugin is built on mirrors the CLI one to one (docs/pytest.md): every command
has a library function, and the function returns the report the command prints with ``--json``."""

from __future__ import annotations

import importlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import seedkit
from seedkit import migrate
from seedkit.cli import app
from seedkit.config import load_config
from seedkit.urls import parse_url

TEAMS = Path(__file__).resolve().parent.parent / "examples" / "teams"

# CLI command → the library function it calls ("module:attribute").
API = {
    "run": "seedkit:run",
    "reset": "seedkit:reset",
    "migrate new": "seedkit.migrate:new",
    "migrate up": "seedkit.migrate:up",
    "migrate down": "seedkit.migrate:down",
    "migrate status": "seedkit.migrate:status",
    "migrate verify": "seedkit.migrate:verify",
    "migrate resolve": "seedkit.migrate:resolve",
    "migrate baseline": "seedkit.migrate:baseline",
    "migrate import": "seedkit.migrate:import_history",
    "migrate lint": "seedkit.lint:lint_paths",
    "db create": "seedkit.db.provision:create_role_and_databases",
    "snapshot": "seedkit.snapshot:snapshot",
    "schema": "seedkit.schema:write",
}
CLI_ONLY = {"info"}  # prints the configuration: seedkit.load_config() is its library side


def commands(group: Any, prefix: str = "") -> set[str]:
    """Every command, asked the way click asks a group (the CLI loads a command's module on demand)."""
    found: set[str] = set()
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        if hasattr(command, "commands"):
            found |= commands(command, f"{prefix}{name} ")
        else:
            found.add(prefix + name)
    return found


def resolve(target: str) -> Any:
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


def test_every_command_has_a_library_function() -> None:
    assert commands(get_command(app)) == set(API) | CLI_ONLY
    for target in API.values():
        function = resolve(target)
        assert callable(function) and function.__doc__, target
    assert {"run", "migrate", "load_config"} <= set(seedkit.__all__)


def without_timings(data: Any) -> Any:
    """A report with its timings and timestamps removed (they differ between any two runs)."""
    if isinstance(data, dict):
        return {k: without_timings(v) for k, v in data.items()
                if k not in ("seconds", "execution_ms", "applied_at", "applied_by")}
    if isinstance(data, list):
        return [without_timings(v) for v in data]
    return data


def cli_json(config: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["--config", str(config), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_api_returns_what_the_cli_prints(db_url: str) -> None:
    """On the teams example: status, up, run and run --check through both doors."""
    config_path = TEAMS / ("seedkit.sqlite.toml" if parse_url(db_url).dialect == "sqlite" else "seedkit.toml")
    config = load_config(config_path)
    if parse_url(db_url).dialect == "sqlite":
        sqlite3.connect(parse_url(db_url).path).close()  # status never creates a database

    before = migrate.status(config, database_url=db_url)
    assert before.pending and before.current_version is None
    assert without_timings(before.to_dict()) == without_timings(
        cli_json(config_path, "migrate", "status", "--database", db_url))

    applied = migrate.up(config, database_url=db_url)
    assert applied.version_after == before.pending[-1].version
    assert not migrate.status(config, database_url=db_url).pending

    first = seedkit.run("dev", config=config, database_url=db_url)
    assert isinstance(first, seedkit.Report) and first.inserted > 0 and first.changed
    again = seedkit.run("dev", config=config, database_url=db_url)
    assert not again.changed and again.unchanged == first.inserted
    assert without_timings(again.to_dict()) == without_timings(
        cli_json(config_path, "run", "dev", "--database", db_url))

    check = seedkit.run("dev", config=config, database_url=db_url, check=True)
    assert check.dry_run and not check.changed
    assert without_timings(check.to_dict()) == without_timings(
        cli_json(config_path, "run", "dev", "--check", "--database", db_url))


def test_api_errors_are_the_cli_exit_codes(sqlite_url: str) -> None:
    config = load_config(TEAMS / "seedkit.sqlite.toml")
    with pytest.raises(seedkit.RefusedError) as refused:
        seedkit.run("production", config=config, database_url=sqlite_url)
    with pytest.raises(seedkit.ConfigError) as unknown:
        seedkit.run("staging", config=config, database_url=sqlite_url)
    assert (refused.value.exit_code, unknown.value.exit_code) == (4, 2)
