"""``seedkit migrate …``: a thin layer over ``seedkit.migrate`` (each command calls one function)."""

from __future__ import annotations

import inspect
from typing import Any

import typer

from .. import migrate as api
from ..errors import UsageError
from ..migrate.reports import MigrationRun
from ..migrate.validation import drift_error
from ._app import DATABASE_OPTION, ENV_OPTION, app, out, state
from ._migrations import WaitDisplay, _describe, _emit_json, _summary, status, up

__all__ = ["WaitDisplay", "_describe", "migrate_app"]

migrate_app = typer.Typer(
    name="migrate",
    help="Versioned raw-SQL migrations: create, apply, roll back, check.",
    no_args_is_help=True,
)
app.add_typer(migrate_app, name="migrate")

_ENV = ENV_OPTION
_DATABASE = DATABASE_OPTION
_LOCK_TIMEOUT = typer.Option(None, "--lock-timeout", min=0.0,
                             help="Seconds to wait for another migration run to finish "
                                  "(default: migrations.lock_timeout in seedkit.toml, 60).")
_OUT_OF_ORDER = typer.Option(False, "--allow-out-of-order",
                             help="Accept pending migrations older than the newest applied one.")
_JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _doc(fn: Any) -> str:
    """A library docstring as help text: paragraphs kept, lines within a paragraph joined."""
    from rich.markup import escape  # help is rendered as rich markup: "[lint]" must stay visible

    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    return "\n\n".join(escape(" ".join(p.split())) for p in paragraphs)


@migrate_app.command("new", help=_doc(api.new))
def new_cmd(ctx: typer.Context,
            name: str = typer.Argument(..., help="What the migration does, e.g. add_posts."),
            repeatable: bool = typer.Option(False, "--repeatable", help="Create a repeatable migration "
                                            "(re-applied whenever it changes) instead of a versioned one.")) -> None:
    path = api.new(state(ctx).config(), name, repeatable=repeatable)
    down = path.with_name(path.name[: -len(".up.sql")] + ".down.sql") if path.name.endswith(".up.sql") else None
    also = f" and {api.files.display_path(down)}" if down is not None and down.is_file() else ""
    out(f"created {api.files.display_path(path)}{also}")


@migrate_app.command("up", help=_doc(api.up))
def up_cmd(
    ctx: typer.Context,
    to: str | None = typer.Option(None, "--to", help="Stop after this version."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run; change nothing."),
    allow_out_of_order: bool = _OUT_OF_ORDER,
    env: str | None = _ENV,
    database: str | None = _DATABASE,
    lock_timeout: float | None = _LOCK_TIMEOUT,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON: each migration with its "
                                 "timing and statements (waits still go to stderr)."),
    reapply_repeatables: bool = typer.Option(False, "--reapply-repeatables",
                                             help="Apply every repeatable migration again, changed or not."),
) -> None:
    up(state(ctx).config(), to=to, dry_run=dry_run, allow_out_of_order=allow_out_of_order, env=env,
       database=database, lock_timeout=lock_timeout, as_json=as_json, reapply_repeatables=reapply_repeatables)


@migrate_app.command("down", help=_doc(api.down))
def down_cmd(
    ctx: typer.Context,
    steps: int | None = typer.Option(None, "--steps", min=1, help="How many migrations to roll back "
                                     "(default 1)."),
    to: str | None = typer.Option(None, "--to", help="Roll back every migration newer than this version "
                                  "(0: all of them)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run; change nothing."),
    env: str | None = _ENV,
    database: str | None = _DATABASE,
    lock_timeout: float | None = _LOCK_TIMEOUT,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON: each migration with its "
                                 "timing and statements (waits still go to stderr)."),
) -> None:
    def progress(run: MigrationRun) -> None:
        out(_describe(run, dry_run=dry_run))

    report = api.down(state(ctx).config(), env=env, database_url=database, steps=steps, to=to,
                      dry_run=dry_run, lock_timeout=lock_timeout, progress=None if as_json else progress,
                      watch=WaitDisplay())
    if as_json:
        _emit_json(report.to_dict())
        return
    _summary(report, dry_run=dry_run, nothing="nothing to roll back")


@migrate_app.command("status", help=_doc(api.status))
def status_cmd(
    ctx: typer.Context,
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 3 when anything is pending or drifted."),
    as_json: bool = _JSON,
    allow_out_of_order: bool = _OUT_OF_ORDER,
    env: str | None = _ENV,
    database: str | None = _DATABASE,
) -> None:
    code = status(state(ctx).config(), exit_code=exit_code, as_json=as_json,
                  allow_out_of_order=allow_out_of_order, env=env, database=database)
    if code:
        raise typer.Exit(code)


@migrate_app.command("verify", help=_doc(api.verify))
def verify_cmd(
    ctx: typer.Context,
    as_json: bool = _JSON,
    allow_out_of_order: bool = _OUT_OF_ORDER,
    env: str | None = _ENV,
    database: str | None = _DATABASE,
) -> None:
    report = api.verify(state(ctx).config(), env=env, database_url=database,
                        allow_out_of_order=allow_out_of_order)
    if as_json:
        _emit_json(report.to_dict())
        if not report.ok:
            raise typer.Exit(3)
        return
    if not report.ok:
        raise drift_error(report.problems, action="verification failed")
    out(f"ok: {report.checked} migration{'s' if report.checked != 1 else ''} match {report.database}")


@migrate_app.command("resolve", help=_doc(api.resolve))
def resolve_cmd(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="Version of the failed migration."),
    applied: bool = typer.Option(False, "--applied", help="It is now fully applied (finished by hand)."),
    rolled_back: bool = typer.Option(False, "--rolled-back",
                                     help="It was undone by hand; 'up' will run it again from the start."),
    env: str | None = _ENV,
    database: str | None = _DATABASE,
    lock_timeout: float | None = _LOCK_TIMEOUT,
) -> None:
    if applied == rolled_back:
        raise UsageError("say what happened: give exactly one of --applied or --rolled-back")
    report = api.resolve(state(ctx).config(), version, applied=applied, env=env, database_url=database,
                         lock_timeout=lock_timeout)
    label = f"{report.version}_{report.name}" if report.name else report.version
    out(f"recorded {label} as {report.decision} (it was {report.previous_status} after "
        f"{report.statements_done} statement(s))")


def _adopted(report: api.AdoptReport, as_json: bool) -> None:
    if as_json:
        _emit_json(report.to_dict())
        return
    verb = "would record" if report.dry_run else "recorded"
    for r in report.recorded:
        out(f"{verb} {r.version}_{r.name} as applied" if r.name else f"{verb} {r.version} as applied")
    source = f" from {report.source}" if report.source else ""
    replaced = f", replacing {report.replaced} earlier row(s)" if report.replaced else ""
    out(f"{verb} {len(report.recorded)} migration(s){source} without running them{replaced}; "
        f"{len(report.pending)} pending for 'seedkit migrate up'")


@migrate_app.command("baseline", help=_doc(api.baseline))
def baseline_cmd(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="The newest migration the database already has."),
    force: bool = typer.Option(False, "--force", help="Replace the rows of an existing seedkit history up to "
                               "VERSION."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be recorded; change nothing."),
    env: str | None = _ENV,
    database: str | None = _DATABASE,
    lock_timeout: float | None = _LOCK_TIMEOUT,
    as_json: bool = _JSON,
) -> None:
    report = api.baseline(state(ctx).config(), version, force=force, dry_run=dry_run, env=env,
                          database_url=database, lock_timeout=lock_timeout)
    _adopted(report, as_json)


@migrate_app.command("import", help=_doc(api.import_history))
def import_cmd(
    ctx: typer.Context,
    tool: str = typer.Option(..., "--from", help="The tool whose history to read: dbmate, golang-migrate, diesel "
                             "or flyway."),
    table: str | None = typer.Option(None, "--table", help="That tool's history table, when not its default "
                                     "(schema_migrations, __diesel_schema_migrations, flyway_schema_history)."),
    force: bool = typer.Option(False, "--force", help="Replace the rows of an existing seedkit history."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be recorded; change nothing."),
    env: str | None = _ENV,
    database: str | None = _DATABASE,
    lock_timeout: float | None = _LOCK_TIMEOUT,
    as_json: bool = _JSON,
) -> None:
    report = api.import_history(state(ctx).config(), tool, table=table, force=force, dry_run=dry_run, env=env,
                                database_url=database, lock_timeout=lock_timeout)
    _adopted(report, as_json)
