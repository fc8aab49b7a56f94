"""``seedkit reset ENV``: drop and recreate the database, migrate to head, seed ENV."""

from __future__ import annotations

import inspect
import json

import typer

from .._recreate import reset
from ..migrate.reports import MigrationRun
from ._app import DATABASE_OPTION, app, out, state


def _help() -> str:
    return " ".join(inspect.cleandoc(reset.__doc__ or "").split())


@app.command("reset", help=_help())
def reset_command(
    ctx: typer.Context,
    env: str = typer.Argument(..., metavar="ENV", help="Environment to start over, e.g. dev."),
    database: str | None = DATABASE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print both reports as one JSON document."),
    force: bool = typer.Option(False, "--force", help="End other sessions connected to the database "
                               "(they are listed, and reset refuses, without it)."),
) -> None:
    from .migrate import _describe
    from .run import print_report

    def progress(run: MigrationRun) -> None:
        out(_describe(run, dry_run=False))

    report = reset(env, config=state(ctx).config(), database_url=database, force=force,
                   migration_progress=None if as_json else progress)
    if as_json:
        out(json.dumps(report.to_dict(), indent=2, default=str))
        return
    version = report.migrations.version_after or "none (no migrations)"
    out(f"recreated {report.database}; migrated to version {version}")
    print_report(report.seeds)
