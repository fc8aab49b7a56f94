"""``seedkit migrate lint --fix`` / ``--diff``: print what the fixer did (``seedkit.lint.fix``)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..config import Config
from ..lint import fix as fixmod
from ..migrate.files import display_path
from ._app import out
from ._output import write as write_out


def run_fix(config: Config, paths: list[Path] | None, *, env: str | None, database: str | None,
            dialect: str | None, write: bool, diff: bool, as_json: bool, warnings_as_errors: bool) -> None:
    fixmod.check_usable(write, diff, as_json)
    if dialect is not None:
        dialect = "sqlite" if dialect.lower() == "sqlite" else "postgresql"
    report = fixmod.fix_paths(list(paths) if paths else None, config=config, env=env, database_url=database,
                              dialect=dialect, write=write, warnings_as_errors=warnings_as_errors)
    if diff:
        text = report.diff()
        if text:
            write_out(sys.stdout, text)
    for u in report.unfixed:
        out(f"{u.finding.path}:{u.finding.line}:{u.finding.column} {u.finding.rule} not fixed: {u.reason}")
    verb = "would fix" if diff else "fixed"
    created = [c for c in report.changes if c.before is None]
    edited = [c for c in report.changes if c.before is not None]
    out(f"{verb} {len(report.fixed)} finding(s): {len(edited)} file(s) edited, {len(created)} created"
        + (f" ({', '.join(display_path(c.path) for c in created)})" if created else ""))
    if diff:
        raise typer.Exit(3 if report.changes else 0)
    relint = report.relint
    assert relint is not None
    for result in relint.files:
        for f in result.findings:
            out(f.format())
            out(f"    hint: {f.hint}")
    out("after fixing: " + relint.summary())
    raise typer.Exit(relint.exit_code)
