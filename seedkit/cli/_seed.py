"""``seedkit run``'s work and report, without the command-line framework: the Typer command
(``run.py``) and the fast path (``_fast.py``) both call ``seed_env``."""

from __future__ import annotations

import gc
import json
import os
import re
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
    from ..seed import yaml_events

    # and so do the rows it reads (see yaml_events.resume_collections); for this run only: a process that
    # runs the command line in-process (a test suite) may call seedkit as a library afterwards
    yaml_events.ONE_SHOT = True
    try:
        report = seed.run(name, config=config(), database_url=database, dry_run=dry_run, check=check,
                          diff=diff, only=only, yes=yes, progress=progress.update if progress else None)
    finally:
        yaml_events.ONE_SHOT = False
        if progress:
            progress.close()
    if as_json:
        out(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print_report(report, diff=diff, check=check)
    return 3 if check and report.changed else 0


_COLUMNS = ("table", "inserted", "updated", "unchanged", "deleted", "time")


def print_report(report: Report, *, diff: bool = False, check: bool = False) -> None:
    # The title on a line of its own that never wraps: a URL cut in two cannot be copied.
    title = f"seed {report.env} → {report.database}" + (" (dry run: nothing written)" if report.dry_run else "")
    rows = [(t.table, str(t.inserted), str(t.updated), str(t.unchanged), str(t.deleted), f"{t.seconds * 1000:.0f} ms")
            for t in report.tables]
    total = ("total", str(report.inserted), str(report.updated), str(report.unchanged), str(report.deleted),
             f"{report.seconds * 1000:.0f} ms")
    # masked as --json output is: a value may hold a URL with a password, or a known password
    diffs = [f"  {t.table} {d['key']}: {d['column']}: {d['old']!r} → {d['new']!r}"
             for t in report.tables for d in t.diffs] if diff else []
    last = summary(report, check=check)
    plain = _plain_table([*rows, total])
    if plain is not None and not _terminal() and all(_simple(text) for text in (title, *diffs, last)):
        out("\n".join([title, *plain, *diffs, last]))
        return
    from rich.table import Table

    table = Table()
    for col in _COLUMNS:
        table.add_column(col, justify="left" if col == "table" else "right")
    for row in rows:
        table.add_row(*row)
    table.add_row(*total, style="bold")
    show((title, "italic"), table, *diffs, last)


# -- the report without rich, when nothing in it needs rich -----------------------------------------
# Piped or captured output (a script, CI, a benchmark) has no styles; a table of short plain text then
# looks exactly as rich draws it (box.HEAVY_HEAD, one space of padding), and rich need not be
# imported. Anything else — a terminal, a name with other characters, a table wider than the narrowest
# console ``show`` uses — is drawn by rich. tests/test_cli_fast.py compares both on many reports.

_SIMPLE = re.compile(r"[ -~→]*")
_RICH_SYNTAX = re.compile(r":[\w+-]+:|\[")  # what rich could read as an emoji code or markup


def _simple(text: str) -> bool:
    return bool(_SIMPLE.fullmatch(text)) and not _RICH_SYNTAX.search(text)


def _terminal() -> bool:
    """Would rich draw styles: stdout is a terminal, or the environment tells rich to act as one."""
    if any(os.environ.get(name) for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")):
        return True
    try:
        return bool(sys.stdout.isatty())
    except Exception:  # noqa: BLE001
        return False


def _plain_table(rows: list[tuple[str, ...]], max_width: int = 100) -> list[str] | None:
    """The report table as rich draws it without styles, or None when rich must draw it."""
    cells = [_COLUMNS, *rows]
    if not all(_simple(c) and "→" not in c for row in cells for c in row):
        return None
    widths = [max(len(row[i]) for row in cells) for i in range(len(_COLUMNS))]
    if sum(widths) + 3 * len(widths) + 1 > max_width:
        return None

    def line(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def cells_line(row: tuple[str, ...], edge: str) -> str:
        texts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return edge + edge.join(f" {t} " for t in texts) + edge

    return [line("┏", "━", "┳", "┓"), cells_line(_COLUMNS, "┃"), line("┡", "━", "╇", "┩"),
            *(cells_line(row, "│") for row in rows), line("└", "─", "┴", "┘")]


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
    """A rich progress bar per table, on stderr, only when it is a terminal. It starts (with rich's
    refresh thread) at the first table's progress: reading the fixtures before that may fork a worker
    process, which a process with a second thread never does (seedkit.seed.parallel)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=Console(stderr=True), transient=True)
        self.tasks: dict[str, Any] = {}
        self.started = False

    def update(self, table: str, done: int, total: int | None) -> None:
        if not self.started:
            self.p.start()
            self.started = True
        if table not in self.tasks:
            self.tasks[table] = self.p.add_task(table, total=total)
        self.p.update(self.tasks[table], completed=done, total=total)

    def close(self) -> None:
        if self.started:
            self.p.stop()
