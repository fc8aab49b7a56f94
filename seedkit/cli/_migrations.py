"""What ``seedkit migrate up`` and ``seedkit migrate status`` do and print, without the command-line
framework: the Typer commands (``migrate.py``) and the fast path (``_fast.py``) both call these."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from typing import Any, TextIO

from .. import migrate as api
from ..config import Config
from ..db.migration import Wait
from ..migrate.reports import MigrationRun
from ..urls import mask
from ._output import out


def up(config: Config, *, to: str | None, dry_run: bool, allow_out_of_order: bool, env: str | None,
       database: str | None, lock_timeout: float | None, as_json: bool, reapply_repeatables: bool) -> int:
    """``seedkit migrate up``; the exit code."""
    def progress(run: MigrationRun) -> None:
        out(_describe(run, dry_run=dry_run))

    report = api.up(config, env=env, database_url=database, to=to, dry_run=dry_run,
                    allow_out_of_order=allow_out_of_order, lock_timeout=lock_timeout,
                    progress=None if as_json else progress, watch=WaitDisplay(),
                    reapply_repeatables=reapply_repeatables)
    if as_json:
        _emit_json(report.to_dict())
        return 0
    _summary(report, dry_run=dry_run, nothing="nothing to apply")
    return 0


def status(config: Config, *, exit_code: bool, as_json: bool, allow_out_of_order: bool, env: str | None,
           database: str | None) -> int:
    """``seedkit migrate status``; the exit code."""
    report = api.status(config, env=env, database_url=database,
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
    return 3 if exit_code and not report.ok else 0


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


def _summary(report: Any, *, dry_run: bool, nothing: str) -> None:
    """The last line of ``up`` and ``down``: where the database is (or would be) now."""
    if not report.migrations:
        out(f"{nothing}; database at version {_version(report.version_after)}")
    else:
        would = "would be" if dry_run else "is"
        out(f"database {report.database} {would} at version {_version(report.version_after)}")
