"""``seedkit run``'s work and report, without the command-line framework: the Typer command
(``run.py``) and the fast path (``_fast.py``) both call ``seed_env``."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ._output import out, show

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Config
    from ..seed.report import Report


def seed_env(config: Callable[[], Config], *, env_arg: str | None, env: str | None, dry_run: bool, check: bool,
             diff: bool, database: str | None, only: list[str], as_json: bool, yes: bool) -> int:
    """Run ``seedkit run`` (``config`` loads the configuration when needed); the exit code."""
    if env_arg and env and env_arg != env:
        raise UsageError(f"two environments given: {env_arg!r} and --env {env!r}")
    name = env or env_arg
    if not name:
        raise UsageError("which environment? e.g. `seedkit run dev` or `seedkit run --env test`")
    from .. import seed  # the seed engine: loaded by the command that uses it, not by --help

    progress = _progress_bar() if sys.stderr.isatty() and not as_json else None
    gc.freeze()  # a one-shot process: what start-up made stays; collections need not scan it again and again
    try:
        report = seed.run(name, config=config(), database_url=database, dry_run=dry_run, check=check,
                          diff=diff, only=only, yes=yes, progress=progress.update if progress else None)
    finally:
        if progress:
            progress.close()
    if as_json:
        out(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print_report(report, diff=diff, check=check)
    return 3 if check and report.changed else 0


def print_report(report: Report, *, diff: bool = False, check: bool = False) -> None:
    from rich.table import Table

    # The title on a line of its own that never wraps: a URL cut in two cannot be copied.
    title = f"seed {report.env} → {report.database}" + (" (dry run: nothing written)" if report.dry_run else "")
    table = Table()
    for col in ("table", "inserted", "updated", "unchanged", "deleted", "time"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for t in report.tables:
        table.add_row(t.table, str(t.inserted), str(t.updated), str(t.unchanged), str(t.deleted),
                      f"{t.seconds * 1000:.0f} ms")
    table.add_row("total", str(report.inserted), str(report.updated), str(report.unchanged), str(report.deleted),
                  f"{report.seconds * 1000:.0f} ms", style="bold")
    # masked as --json output is: a value may hold a URL with a password, or a known password
    diffs = [f"  {t.table} {d['key']}: {d['column']}: {d['old']!r} → {d['new']!r}"
             for t in report.tables for d in t.diffs] if diff else []
    show((title, "italic"), table, *diffs, summary(report, check=check))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary(report: Report, *, check: bool = False) -> str:
    """The report's last line: what changed (or would), in one sentence."""
    if not report.changed:
        return "in sync: nothing would change" if report.dry_run else "nothing changed"
    changed = [t for t in report.tables if t.changed]
    counts = f"{report.inserted} inserted, {report.updated} updated, {report.deleted} deleted"
    where = _plural(len(changed), "table")
    if check:
        return (f"drift: {_plural(report.inserted + report.updated + report.deleted, 'row')} differ from the "
                f"fixtures in {where} ({counts}); `seedkit run {report.env}` applies them")
    if report.dry_run:
        return f"would change {where}: {counts} (dry run: nothing written)"
    return f"changed {where}: {counts}"


class _progress_bar:
    """A rich progress bar per table, on stderr, only when it is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=Console(stderr=True), transient=True)
        self.tasks: dict[str, Any] = {}
        self.p.start()

    def update(self, table: str, done: int, total: int | None) -> None:
        if table not in self.tasks:
            self.tasks[table] = self.p.add_task(table, total=total)
        self.p.update(self.tasks[table], completed=done, total=total)

    def close(self) -> None:
        self.p.stop()
