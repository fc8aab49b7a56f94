"""Helpers of the reliability suite (tests/test_reliability_*.py): real ``seedkit`` processes, table
checksums taken without seedkit's own code, and waiting for PostgreSQL backends to go away.

A checksum reads a table with the driver directly (psycopg or sqlite3), so a bug in seedkit's catalog
or quoting cannot make two different states look equal.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``seedkit`` subprocess: this interpreter's import path, no colour."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "NO_COLOR": "1",
           "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    env.pop("DATABASE_URL", None)
    env.update(extra or {})
    return env


def seedkit_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "seedkit", *args]


def spawn(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``seedkit ARGS`` in ``cwd`` (its stdout/stderr captured as text)."""
    return subprocess.Popen(seedkit_command(*args), cwd=cwd, env=process_env(env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def seedkit(cwd: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``seedkit ARGS`` to completion in a real process."""
    return subprocess.run(seedkit_command(*args), cwd=cwd, env=process_env(env), text=True,
                          capture_output=True, timeout=timeout)


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


# -- checksums ------------------------------------------------------------------------------------
Checksums = dict[str, tuple[int, str] | None]  # table -> (row count, digest), None when it does not exist


def pg_checksums(url: str, tables: Iterable[str | tuple[str, str]]) -> Checksums:
    """(count, md5 of every row's text in row-text order) per table; ``(schema, name)`` for a schema."""
    out: Checksums = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for t in tables:
            schema, name = t if isinstance(t, tuple) else ("public", t)
            ident = sql.Identifier(schema, name)
            exists = conn.execute("SELECT to_regclass(%s)", [ident.as_string(conn)]).fetchone()
            if exists is None or exists[0] is None:
                out[_label(t)] = None
                continue
            row = conn.execute(sql.SQL("SELECT count(*), md5(coalesce(string_agg(r::text, E'\\n' ORDER BY "
                                       "r::text COLLATE \"C\"), '')) FROM {} AS r").format(ident)).fetchone()
            assert row is not None
            out[_label(t)] = (int(row[0]), str(row[1]))
    return out


def sqlite_checksums(path: Path, tables: Iterable[str]) -> Checksums:
    """The same for a SQLite file: sha256 of the sorted ``repr`` of every row (types included)."""
    out: Checksums = {}
    conn = sqlite3.connect(path)
    try:
        for t in tables:
            name = _label(t)
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() \
                    is None:
                out[name] = None
                continue
            rows = sorted(repr(r) for r in conn.execute('SELECT * FROM "' + name.replace('"', '""') + '"'))
            out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    finally:
        conn.close()
    return out


def checksums(url: str, tables: Iterable[str | tuple[str, str]]) -> Checksums:
    if url.startswith("sqlite"):
        return sqlite_checksums(sqlite_path(url), [_label(t) for t in tables])
    return pg_checksums(url, tables)


def sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///"):])


def _label(t: str | tuple[str, str]) -> str:
    return ".".join(t) if isinstance(t, tuple) else t


# -- PostgreSQL session watching ---------------------------------------------------------------------
def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def pg_database(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def backends(url: str, application_like: str = "seedkit%") -> list[tuple]:
    """(pid, application_name, state, wait_event, query) of seedkit's sessions on the URL's database."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT pid, application_name, state, wait_event, query FROM pg_stat_activity "
            "WHERE datname = %s AND application_name LIKE %s AND pid <> pg_backend_pid()",
            [pg_database(url), application_like]).fetchall()]


def advisory_locks(url: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT l.pid, l.classid, l.objid, l.granted FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = %s", [pg_database(url)]).fetchall()]


def wait_backends_gone(url: str, timeout: float, application_like: str = "seedkit%") -> float:
    """Wait until no seedkit session is left on the database; return how long that took."""
    started = time.monotonic()
    wait_for(lambda: not backends(url, application_like), timeout,
             f"the killed run's sessions to end (still there: {backends(url, application_like)})", 0.05)
    return time.monotonic() - started


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL: no cleanup code of seedkit runs, the sockets just close."""
    proc.kill()
    proc.wait(timeout=30)
    proc.communicate()
    assert proc.returncode == -9, proc.returncode


def no_traceback(*texts: str) -> bool:
    return not any("Traceback" in t for t in texts)


def joined(results: Sequence[subprocess.CompletedProcess[str]]) -> str:
    return "\n".join(r.stdout + r.stderr for r in results)
