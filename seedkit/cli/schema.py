"""``seedkit schema``: JSON Schemas of fixture files, for editors and CI."""

from __future__ import annotations

import os

import typer

from .. import schema as api
from ._app import DATABASE_OPTION, ENV_OPTION, app, out, state


@app.command("schema")
def schema_command(
    ctx: typer.Context,
    env: str | None = ENV_OPTION,
    out_dir: str | None = typer.Option(None, "--out", "-o", metavar="DIR",
                                       help=f"Folder to write to (default: {api.DEFAULT_DIR} in the project)."),
    database: str | None = DATABASE_OPTION,
) -> None:
    """Write one JSON Schema per table (DIR/<table>.schema.json) from the migrated database.

    Editors validate and complete fixture files with them (the project template maps
    seeds/**/<table>.yaml to its schema); run it again after each migration (`make schema`).
    """
    report = api.write(state(ctx).config(), env=env, out=out_dir, database_url=database)
    where = os.path.relpath(report.out) if report.out.is_relative_to(os.getcwd()) else str(report.out)
    for name in report.written:
        out(f"wrote {where}/{name}")
    for name in report.removed:
        out(f"removed {where}/{name} (the table no longer exists)")
    if report.editor:
        out(report.editor)
    total = len(report.written) + len(report.unchanged)
    out(f"{total} table schema{'s' if total != 1 else ''} in {where}: {len(report.written)} written, "
        f"{len(report.unchanged)} unchanged" + (f", {len(report.removed)} removed" if report.removed else ""))
