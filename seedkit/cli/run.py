"""``seedkit run ENV``: load an environment's fixtures into the database."""

from __future__ import annotations

import typer

from ._app import DATABASE_OPTION, ENV_OPTION, app, state
from ._seed import print_report, seed_env, summary

__all__ = ["print_report", "run_command", "summary"]


@app.command("run")
def run_command(
    ctx: typer.Context,
    env_arg: str | None = typer.Argument(None, metavar="[ENV]", help="Environment to seed (same as --env)."),
    env: str | None = ENV_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="Do everything, report, write nothing."),
    check: bool = typer.Option(False, "--check", help="Like --dry-run; exit 3 when the database differs."),
    diff: bool = typer.Option(False, "--diff", help="Show old → new values of updated rows (bounded)."),
    database: str | None = DATABASE_OPTION,
    only: list[str] = typer.Option([], "--only", help="Seed only this table (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable report."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm running on a protected environment or database."),
) -> None:
    """Seed ENV: upsert its fixtures by natural key in one transaction; unchanged rows are not touched."""
    code = seed_env(state(ctx).config, env_arg=env_arg, env=env, dry_run=dry_run, check=check, diff=diff,
                    database=database, only=only, as_json=as_json, yes=yes)
    if code:
        raise typer.Exit(code)
