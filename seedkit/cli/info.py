"""``seedkit info``: where the configuration came from and whether the database answers."""

from __future__ import annotations

import json

import typer

from .. import db
from ._app import DATABASE_OPTION, ENV_OPTION, app, out, state


@app.command()
def info(
    ctx: typer.Context,
    env: str | None = ENV_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    no_connect: bool = typer.Option(False, "--no-connect", help="Do not try to connect."),
) -> None:
    """Show the configuration in use, its environments, and check the database connection."""
    config = state(ctx).config()
    url = config.database_url(env, database)
    result = {
        "config": config.source,
        "root": str(config.root),
        "migrations_dir": str(config.migrations_dir),
        "seeds_dir": str(config.seeds_dir),
        "environments": {name: {"include": e.include, "protected": e.protected}
                         for name, e in config.settings.envs.items()},
        "database": str(url),
    }
    if not no_connect:
        with db.connect(url, wait=config.settings.database.connect_timeout) as conn:
            result["server"] = f"{conn.dialect} {conn.server_version}"
            result["tables"] = len(conn.catalog().tables)
    if as_json:
        out(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        if key == "environments":
            out("environments:")
            for name, e in value.items():  # type: ignore[union-attr]
                flag = " (protected)" if e["protected"] else ""
                out(f"  {name}: {', '.join(e['include']) or '-'}{flag}")
        else:
            out(f"{key}: {value}")
