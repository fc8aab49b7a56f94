"""``seedkit db create``: the project's role and databases on a PostgreSQL you run yourself."""

from __future__ import annotations

import json

import typer

from ..errors import UsageError
from ._app import app, out, state

db_app = typer.Typer(help="Set up the project's databases on a PostgreSQL server you run yourself (no Docker).",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("create")
def create(
    ctx: typer.Context,
    superuser: str | None = typer.Option(
        None, "--superuser", metavar="URL", envvar="SEEDKIT_SUPERUSER_URL", show_envvar=True,
        help="A connection that may create roles and databases, e.g. "
             "postgresql://postgres@127.0.0.1:5432/postgres (a password is read from the URL, PGPASSWORD "
             "or ~/.pgpass)."),
    env: list[str] = typer.Option([], "--env", "-e", metavar="ENV",
                                  help="Only this environment's database (repeatable; default: every "
                                       "environment that is not protected)."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable report."),
) -> None:
    """Create the role and databases that DATABASE_URL and TEST_DATABASE_URL (from .env) name.

    The role gets LOGIN, CREATEDB (the test databases and `seedkit reset` need it) and the password from
    the URL; each database is owned by it. What already exists is kept as it is. Finally it connects with
    the project's own URLs, so `seedkit migrate up` works next.
    """
    from ..db.provision import create_role_and_databases

    if not superuser:
        raise UsageError("which server, and as whom? `seedkit db create` needs a superuser connection",
                         hint="pass --superuser postgresql://postgres@127.0.0.1:5432/postgres (or set "
                              "SEEDKIT_SUPERUSER_URL); any role with CREATEROLE and CREATEDB will do")
    report = create_role_and_databases(state(ctx).config(), superuser, env or None)
    if as_json:
        out(json.dumps(report.to_dict(), indent=2))
        return
    out(f"on {report.server}:")
    for role in report.created_roles:
        out(f"  created role {role} (LOGIN CREATEDB, password from the URL)")
    for role in report.existing_roles:
        out(f"  role {role} already exists: kept as it is")
    for grant in report.granted:
        out(f"  granted {grant.split(': ')[1]} to {grant.split(': ')[0]}")
    for name in report.created_databases:
        out(f"  created database {name}")
    for name in report.existing_databases:
        out(f"  database {name} already exists: kept as it is")
    for url in report.checked:
        out(f"  connected as the project does: {url}")
    out("next: `make migrate` (seedkit migrate up)")
