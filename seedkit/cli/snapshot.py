"""``seedkit snapshot``: write an existing database's rows as fixture files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import UsageError
from ._app import DATABASE_OPTION, ENV_OPTION, app, err, out, show, state


@app.command("snapshot")
def snapshot_command(
    ctx: typer.Context,
    out_dir: Path = typer.Option(None, "--out", "-o", help="Folder to write (new, empty, or an earlier snapshot; "
                                 "replaced as a whole).", file_okay=False),
    env: str | None = ENV_OPTION,
    database: str | None = DATABASE_OPTION,
    table: list[str] = typer.Option([], "--table", "-t", help="Table to include (repeatable, shell globs); "
                                    "default: every table."),
    exclude: list[str] = typer.Option([], "--exclude", help="Table to leave out (repeatable, shell globs)."),
    where: list[str] = typer.Option([], "--where", help='Only rows matching "TABLE: SQL condition" (repeatable).'),
    limit: list[str] = typer.Option([], "--limit", help="At most N rows of a table, first by key: TABLE=N."),
    with_children: bool = typer.Option(False, "--with-children", help="Also follow foreign keys down to the rows "
                                       "that refer to the chosen ones."),
    keep_ids: bool = typer.Option(False, "--keep-ids", help="Write made-up ids (serial, identity) too; "
                                  "references are then plain ids."),
    fmt: str = typer.Option("auto", "--format", "-f", help="yaml, csv, or auto (CSV for large tables that "
                            "CSV can hold)."),
    mask_default: bool = typer.Option(False, "--mask-default", help="Also mask columns by name (email, phone, "
                                      "names, address, ip …) and list them."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable report."),
) -> None:
    """Write the database's rows as fixture files `seedkit run` loads: natural keys, !ref references,
    subsets closed under foreign keys, deterministic masking, byte-stable output."""
    from ..snapshot import snapshot

    if out_dir is None:
        raise UsageError("where to? pass --out DIR", hint="e.g. seedkit snapshot --out seeds/snapshot")
    if env and database:
        raise UsageError("give --env or --database, not both")
    progress = _Bar() if sys.stderr.isatty() and not as_json else None
    try:
        report = snapshot(out_dir, config=state(ctx).config(), env=env, database_url=database, tables=table,
                          exclude=exclude, where=where, limit=limit, with_children=with_children,
                          keep_ids=keep_ids, format=fmt, mask_default=mask_default,
                          progress=progress.update if progress else None)
    finally:
        if progress:
            progress.close()
    for warning in report.warnings:
        err(f"warning: {warning}")
    if as_json:
        out(json.dumps(report.to_dict(), indent=2))
        return
    from rich.table import Table

    t = Table(title=f"snapshot {report.database} → {report.out}", title_justify="left")
    for col in ("table", "file", "rows", "key", "refs", "dropped", "masked", "time"):
        t.add_column(col, justify="right" if col in ("rows", "time") else "left")
    for r in report.tables:
        t.add_row(r.table, r.file, str(r.rows), ", ".join(r.key), ", ".join(r.refs), ", ".join(r.dropped),
                  ", ".join(f"{c} ({m})" for c, m in r.masked.items()), f"{r.seconds * 1000:.0f} ms")
    notes = [f"{r.table}: {r.note}" for r in report.tables if r.note]
    if report.masked_by_default:
        notes += ["masked by column name (--mask-default):", *(f"  {line}" for line in report.masked_by_default)]
    show(t, *notes, f"{report.rows} rows in {len(report.tables)} files", width=120)


class _Bar:
    """A rich progress bar per table, on stderr, only when it is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=Console(stderr=True), transient=True)
        self.tasks: dict[str, object] = {}
        self.p.start()

    def update(self, table: str, done: int, total: int | None) -> None:
        if table not in self.tasks:
            self.tasks[table] = self.p.add_task(table, total=total)
        self.p.update(self.tasks[table], completed=done, total=total)  # type: ignore[arg-type]

    def close(self) -> None:
        self.p.stop()
