"""``seedkit migrate …``: a thin layer over ``seedkit.migrate`` (each command calls one function)."""

from __future__ import annotations

import inspect
import json
import shutil
import sys
import threading
from typing import Any, TextIO

import typer

from .. import migrate as api
from ..db.migration import Wait
from ..errors import UsageError
from ..migrate.reports import MigrationRun
from ..migrate.validation import drift_error
from ..urls import mask
from ._app import DATABASE_OPTION, ENV_OPTION, app, out, state

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


def _emit_json(data: dict[str, Any]) -> None:
    out(json.dumps(data, indent=2, default=str))


def _describe(run: MigrationRun, *, dry_run: bool) -> str:
    verb = {("up", False): "applied", ("up", True): "would apply",
            ("down", False): "rolled back", ("down", True): "would roll back"}[(run.direction, dry_run)]
    label = f"{run.version}_{run.name}" if run.name else run.version
    if run.version == "repeatable":
        label = f"repeatable {run.name}"
    parts = [f"{run.statements} statement{'s' if run.statements != 1 else ''}"]
    if not run.transactional:
        parts.append("no transaction")
    if not dry_run:
        parts.append(f"{run.execution_ms:.0f} ms")
    return f"{verb} {label} ({', '.join(parts)})"


class WaitDisplay:
    """Shows what a run waits for, on stderr: the migration lock (who holds it) and slow statements.

    On a terminal one line is redrawn about once a second with the elapsed time; when stderr is piped
    or captured, plain lines are written instead — when the wait is first seen, every
    ``PLAIN_EVERY`` seconds after that, and when it ends — so logs stay readable.
    """

    PLAIN_EVERY = 10.0

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self._lock = threading.Lock()
        self._next_plain: dict[tuple[str, str | None], float] = {}

    @staticmethod
    def text(wait: Wait) -> str:
        elapsed = _seconds(wait.elapsed)
        if wait.kind == "lock":
            if wait.done:
                return f"got the migration lock after waiting {elapsed}"
            return f"waiting for the migration lock ({wait.detail}): {elapsed}"
        where = f"{wait.location}: " if wait.location else ""
        if wait.done:
            return f"statement finished after {elapsed}: {where}{wait.detail}"
        return f"statement running for {elapsed}: {where}{wait.detail}"

    def __call__(self, wait: Wait) -> None:
        line = mask(self.text(wait))
        key = (wait.kind, wait.location)
        with self._lock:
            if self.tty:
                width = shutil.get_terminal_size((100, 20)).columns - 1
                shown = line if len(line) <= width else line[: width - 1] + "…"
                self.stream.write("\r\033[K" + shown + ("\n" if wait.done else ""))
            else:
                if not wait.done and wait.elapsed < self._next_plain.get(key, 0.0):
                    return
                self._next_plain[key] = wait.elapsed + self.PLAIN_EVERY
                if wait.done:
                    self._next_plain.pop(key, None)
                self.stream.write(line + "\n")
            self.stream.flush()


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes} min {seconds:02d} s"


def _version(v: str | None) -> str:
    return v if v is not None else "none (empty history)"


@migrate_app.command("new", help=_doc(api.new))
def new_cmd(ctx: typer.Context,
            name: str = typer.Argument(..., help="What the migration does, e.g. add_posts."),
            repeatable: bool = typer.Option(False, "--repeatable", help="Create a repeatable migration "
                                            "(re-applied whenever it changes) instead of a versioned one.")) -> None:
    path = api.new(state(ctx).config(), name, repeatable=repeatable)
    out(f"created {api.files.display_path(path)}")


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
    def progress(run: MigrationRun) -> None:
        out(_describe(run, dry_run=dry_run))

    report = api.up(state(ctx).config(), env=env, database_url=database, to=to, dry_run=dry_run,
                    allow_out_of_order=allow_out_of_order, lock_timeout=lock_timeout,
                    progress=None if as_json else progress, watch=WaitDisplay(),
                    reapply_repeatables=reapply_repeatables)
    if as_json:
        _emit_json(report.to_dict())
        return
    _summary(report, dry_run=dry_run, nothing="nothing to apply")


def _summary(report: Any, *, dry_run: bool, nothing: str) -> None:
    """The last line of ``up`` and ``down``: where the database is (or would be) now."""
    if not report.migrations:
        out(f"{nothing}; database at version {_version(report.version_after)}")
    else:
        would = "would be" if dry_run else "is"
        out(f"database {report.database} {would} at version {_version(report.version_after)}")


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
    report = api.status(state(ctx).config(), env=env, database_url=database,
                        allow_out_of_order=allow_out_of_order)
    if as_json:
        _emit_json(report.to_dict())
    else:
        out(f"database: {report.database}")
        out(f"version:  {_version(report.current_version)}")
        if report.entries:
            rows = [("VERSION", "NAME", "STATE", "APPLIED AT", "NOTE")] + [
                (e.version, e.name, e.state, e.applied_at or "-", e.note or "") for e in report.entries]
            widths = [max(len(r[i]) for r in rows) for i in range(4)]
            for r in rows:
                cells = "  ".join(r[i].ljust(widths[i]) for i in range(4))
                out(cells + ("  " + r[4] if r[4] else ""))
        else:
            out("no migrations")
        counts: dict[str, int] = {}
        for e in report.entries:
            counts[e.state] = counts.get(e.state, 0) + 1
        out(", ".join(f"{n} {s}" for s, n in counts.items()) or "nothing to do")
        if report.problems:
            out("problems (up refuses to run until they are fixed):")
            for problem in report.problems:
                out(f"  {problem}")
    if exit_code and not report.ok:
        raise typer.Exit(3)


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
