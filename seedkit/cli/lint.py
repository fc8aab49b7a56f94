"""``seedkit migrate lint``: print the linter's findings; exit 1 when an error-level finding remains."""

from __future__ import annotations

from pathlib import Path

import typer

from ..migrate import lint as lintmod
from ._app import out, state
from .migrate import _doc, migrate_app


@migrate_app.command("lint", help=_doc(lintmod.lint_paths))
def lint(
    ctx: typer.Context,
    paths: list[Path] | None = typer.Argument(None, help="Migration files or folders (default: the "
                                              "configured migrations folder).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (shape in docs/lint.md)."),
    pending: bool = typer.Option(False, "--pending", help="Only migrations the database has not applied "
                                 "(connects to the database)."),
    env: str | None = typer.Option(None, "--env", "-e", help="Environment whose database to use."),
    database: str | None = typer.Option(None, "--database", help="Database URL (overrides the config)."),
    dialect: str | None = typer.Option(None, "--dialect", help="postgresql or sqlite (default: the "
                                       "configured database's).", show_default=False),
    rules: bool = typer.Option(False, "--rules", help="List the rules and exit."),
) -> None:
    if rules:
        width = max(len(r) for r in lintmod.RULES)
        for rule in lintmod.RULES.values():
            out(f"{rule.id:<{width}}  {rule.level:<7}  {rule.doc}")
        return
    if dialect is not None and dialect.lower() not in ("postgresql", "postgres", "sqlite"):
        raise typer.BadParameter("expected postgresql or sqlite", param_hint="--dialect")
    report = lintmod.lint_paths(
        paths or None, config=state(ctx).config(), env=env, database_url=database, pending=pending,
        dialect=None if dialect is None else ("sqlite" if dialect.lower() == "sqlite" else "postgresql"))
    if as_json:
        out(report.to_json())
    else:
        for result in report.files:
            if result.status == "skipped":
                out(f"{result.path}: note: {result.note}")
            for f in result.findings:
                out(f.format())
                out(f"    hint: {f.hint}")
        out(report.summary())
    raise typer.Exit(report.exit_code)
