"""One public face: the package's names, its errors, the CLI's shared options and its one output path."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import seedkit
from seedkit import errors

ROOT = Path(seedkit.__file__).parent


def test_every_public_error_is_exported_from_the_package() -> None:
    classes = {name for name, obj in vars(errors).items()
               if inspect.isclass(obj) and issubclass(obj, errors.SeedkitError)}
    assert classes <= set(seedkit.__all__), sorted(classes - set(seedkit.__all__))
    for name in classes:
        assert getattr(seedkit, name) is getattr(errors, name)
    assert {"UnknownObject", "SnapshotError", "LockLost", "AlreadyRecorded", "MigrationFileError"} <= classes


def test_everything_in_all_resolves() -> None:
    for name in seedkit.__all__:
        assert getattr(seedkit, name) is not None, name
    assert sorted(dir(seedkit)) == sorted(seedkit.__all__)


def test_the_old_import_paths_users_use_still_work() -> None:
    from seedkit import fixture, ref
    from seedkit.db.postgres import PostgresDatabase
    from seedkit.db.sqlite import SQLiteDatabase
    from seedkit.pytest_plugin import seedkit_conn, seedkit_db_url

    assert callable(fixture) and callable(ref) and seedkit_conn and seedkit_db_url
    assert PostgresDatabase.dialect == "postgresql" and SQLiteDatabase.dialect == "sqlite"


def test_migrate_does_not_import_seed() -> None:
    """The stamp is read through the safety module: the migration runner knows nothing of seeding."""
    for path in (ROOT / "migrate").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert not module.startswith(("..seed", "seedkit.seed")), f"{path.name} imports {module}"


def test_env_and_database_options_are_defined_once() -> None:
    """``--env``/``--database`` come from cli/_app.py: no command module spells them out again (the fast
    path's parser, cli/_fast.py, reads the same names; test_cli_fast.py checks it knows them exactly)."""
    for path in (ROOT / "cli").glob("*.py"):
        if path.name in ("_app.py", "_fast.py"):
            continue
        text = path.read_text()
        assert '"--database"' not in text, path.name
        assert '"--env", "-e", help=' not in text, path.name


def test_registering_commands_does_not_read_sys_argv() -> None:
    """Importing the CLI reads no command line: every command is there whatever sys.argv says, and the
    heavy modules of the commands not used are loaded only when used."""
    code = ("import sys; sys.argv = ['seedkit', 'snapshot']; import seedkit.cli as c; "
            "print('seedkit.cli.migrate' in sys.modules); "
            "from typer.main import get_command; g = get_command(c.app); "
            "print(','.join(g.list_commands(None))); print('seedkit.cli.migrate' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    before, commands, after = out.stdout.split()
    assert before == "False" and after == "True"
    assert commands.split(",") == ["info", "run", "db", "migrate", "reset", "schema", "snapshot"]
    assert "argv" not in (ROOT / "cli" / "__init__.py").read_text()


@pytest.mark.parametrize("first", ["seedkit.cli.migrate", "seedkit.cli.lint", "seedkit.cli.run"])
def test_every_subcommand_is_there_whichever_command_module_was_imported_first(first: str) -> None:
    """A command module imported on its own (as a test or a plugin might) before the CLI runs must not
    freeze its group without the commands other modules add to it (``migrate lint``)."""
    code = (f"import importlib; importlib.import_module({first!r}); "
            "from typer.testing import CliRunner; from seedkit.cli import app; "
            "r = CliRunner().invoke(app, ['migrate', 'lint', '--help']); print(r.exit_code); "
            "r = CliRunner().invoke(app, ['migrate', 'up', '--help']); print(r.exit_code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["0", "0"], out.stdout + out.stderr


def test_rich_output_goes_through_the_masking_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table cell with a URL holding a password is masked like every other printed line."""
    from rich.table import Table

    from seedkit.cli._app import show

    app = typer.Typer()

    @app.command()
    def go() -> None:
        table = Table()
        table.add_column("where")
        table.add_row("postgresql://app:hunter2@db/app")
        show(table, "done: postgresql://app:hunter2@db/app")

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert "postgresql://app:***@db/app" in result.output


def test_no_command_module_prints_around_the_masking_path() -> None:
    for path in (ROOT / "cli").glob("*.py"):
        if path.name in ("_app.py", "_output.py"):  # the output path itself
            continue
        text = path.read_text()
        assert "console.print(" not in text and "typer.echo(" not in text and "print(" not in text.replace(
            "print_report(", ""), path.name
