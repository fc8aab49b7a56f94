"""Attacks on updating a rerun's changed rows while the rest stream (seed/early.py; RELIABILITY.md §7).

Each attack runs with early updates (the rows staged so far updated between COPYs), with every update
left to the end (``SEEDKIT_EARLY_UPDATES=0``) and, where it matters, with skipping off (every row staged
and compared): the database, the output, the exit code and the next run must be the same.
"""

from __future__ import annotations

import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedkit.seed import early
from tests.support import Project, pg_projects
from tests.support.processes import no_traceback, wait_for
from tests.test_reliability_skipping import OWNERS, SCHEMA

pytestmark = pytest.mark.postgres

BATCH = 100
BIG = 10_000  # rows: enough for early updates at their shipped size (early.MIN_ROWS staged rows)


def fixture(rows: int = BIG, *, label: str = "f'item {n}'", qty: str = "n % 7", pause: str = "") -> str:
    """Items ``1..rows``; ``pause``: Python run once row ``n`` is reached (``n == …`` guarded by the caller)."""
    return textwrap.dedent(f"""\
        import inspect, os, time
        from pathlib import Path
        from seedkit import fixture, ref


        @fixture("items", key=["code"])
        def items(fake):
            for n in range(1, {rows} + 1):
                {pause or "pass"}
                yield {{"code": f"c{{n:05}}", "label": {label}, "qty": {qty},
                        "owner_id": ref("owners", ("ann", "bob", "cyd")[n % 3], column="id")}}
        """)


def streaming(n: int, code: str) -> str:
    """Python run when the fixture makes row ``n`` for the run's staging (not while the plan peeks at it)."""
    return f"if n == {n} and any(f.filename.endswith('staging.py') for f in inspect.stack(0)): {code}"


@pytest.fixture
def new_project(pg_server: str, tmp_path: Path) -> Iterator[Any]:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=BATCH,
                     files=lambda p: p.write("dev/owners.yaml", OWNERS)) as make:
        yield make


def items_of(p: Project) -> list[tuple]:
    return p.rows("SELECT id, code, label, qty, owner_id, xmin::text FROM items ORDER BY id")


def backend_waiting_for_a_lock(p: Project) -> bool:
    return bool(p.rows("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND "
                       "wait_event_type = 'Lock' AND query LIKE '%UPDATE%'"))


# -- Ctrl-C of a real run while an early update waits ------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("how", ["early", "late"])
def test_ctrl_c_while_an_early_update_waits_for_a_lock_exits_at_once(new_project, how: str, sig: int) -> None:
    """Another session holds a row the run changes; the run updates it early and waits for that session
    while its fixture is still making rows. Ctrl-C then ends the run at once, as it does when every update
    is left to the end (the run is still making rows then): exit 130, "interrupted", no traceback, nothing
    written. (SIGTERM ends the process as it always did.)"""
    p = new_project(how)
    p.write("dev/items.py", fixture())
    assert p.run("run", "dev").returncode == 0
    before = items_of(p)
    marker = p.root / "reached"
    p.write("dev/items.py", fixture(label="f'item {n}' + ('!' if n <= 6000 else '')",
                                    pause=streaming(8000, f"Path({str(marker)!r}).touch(); time.sleep(120)")))
    env = {early.ENV: "1" if how == "early" else "0"}
    with psycopg.connect(p.url) as holder:
        holder.execute("SELECT * FROM items WHERE code = 'c00010' FOR UPDATE")
        proc = p.spawn("run", "dev", env=env)
        try:
            wait_for(marker.exists, 60, "the fixture to reach row 8000")
            if how == "early":
                wait_for(lambda: backend_waiting_for_a_lock(p), 30, "the early update to wait for the row")
            time.sleep(0.3)
            proc.send_signal(sig)
            try:
                out, errs = proc.communicate(timeout=15)
            except Exception:
                proc.kill()
                proc.communicate()
                raise AssertionError("the run did not end within 15 s of Ctrl-C") from None
        finally:
            holder.rollback()
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGTERM), (proc.returncode, errs)
    assert ("interrupted" in errs) == (sig == signal.SIGINT) and no_traceback(out, errs), errs
    assert items_of(p) == before
