"""``seedkit migrate lint``: print the linter's findings; exit 3 when an error-level finding remains."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import lint as lintmod
from ._app import DATABASE_OPTION, ENV_OPTION, out, state
from .migrate import _doc, migrate_app


@migrate_app.command("lint", help=_doc(lintmod.lint_paths))
def lint(
    ctx: typer.Context,
    paths: list[Path] | None = typer.Argument(None, help="Migration files or folders (default: the "
                                              "configured migrations folder).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (shape in docs/lint.md)."),
    pending: bool = typer.Option(False, "--pending", help="Only migrations the database has not applied "
                                 "(connects to the database)."),
    env: str | None = ENV_OPTION,
    database: str | None = DATABASE_OPTION,
    dialect: str | None = typer.Option(None, "--dialect", help="postgresql or sqlite (default: the "
                                       "configured database's).", show_default=False),
    rules: bool = typer.Option(False, "--rules", help="List the rules with their level in this project "
                               "(the default, changed by \\[lint] in seedkit.toml and --warnings-as-errors) "
                               "and exit."),
    warnings_as_errors: bool = typer.Option(False, "--warnings-as-errors",
                                            help="Treat warning-level findings as errors (exit 3)."),
    fix: bool = typer.Option(False, "--fix", help="Rewrite the fixable findings of pending migrations (never "
                             "applied ones; connects to the database), then lint again."),
    diff: bool = typer.Option(False, "--diff", help="Show what --fix would change, as a diff; write nothing "
                              "(exit 3 when there is something to fix)."),
) -> None:
    if fix or diff:  # seedkit.lint.fix: the rewrites
        from .lint_fix import run_fix

        run_fix(state(ctx).config(), paths, env=env, database=database, dialect=dialect, write=fix,
                diff=diff, as_json=as_json, warnings_as_errors=warnings_as_errors)
    if rules:
        config = state(ctx).config()
        levels = lintmod.effective_levels(config, warnings_as_errors=warnings_as_errors)
        width = max(len(r) for r in lintmod.RULES)
        out(f"{'RULE':<{width}}  {'LEVEL':<7}  {'DEFAULT':<7}  WHAT IT FINDS")
        for rule in lintmod.RULES.values():
            out(f"{rule.id:<{width}}  {levels[rule.id]:<7}  {rule.level:<7}  {rule.doc}")
        changed = sorted(k for k, v in levels.items() if v != lintmod.RULES[k].level)
        if changed:
            source = "--warnings-as-errors" if warnings_as_errors and not config.settings.lint else \
                f"[lint] in {config.source}" + (" and --warnings-as-errors" if warnings_as_errors else "")
            out(f"changed from the default by {source}: {', '.join(changed)}")
        return
    if dialect is not None and dialect.lower() not in ("postgresql", "postgres", "sqlite"):
        raise typer.BadParameter("expected postgresql or sqlite", param_hint="--dialect")
    report = lintmod.lint_paths(
        paths or None, config=state(ctx).config(), env=env, database_url=database, pending=pending,
        warnings_as_errors=warnings_as_errors,
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
