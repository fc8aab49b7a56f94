"""Update a rerun's changed rows while the rest of its rows are still being made (PostgreSQL, Python
fixtures; RELIABILITY.md §7).

A rerun that skips unchanged rows (seed/skip_tracker.py) stages the few changed ones and updates them in
one statement once the fixture is done (``Writer.update_in_one``). Making the rows keeps the client's
core busy for most of the run while the server's waits, and that statement (tens of thousands of index
lookups for a million-row fixture changed here and there) then ran with the client waiting. Here the
staged rows go to the server in several COPYs instead of one, and between two of them the rows staged
so far are updated (``Writer.update_early``), by another thread on the run's connection, while this
thread makes the next batches. The statement at the end updates only the rows staged after the last
of these.

Nothing else changes: every early update is the final statement's own, restricted to the rows staged
so far and run under a savepoint; it moves no fingerprint until the end, where the usual check (did
another session commit since the scan?) covers every one of them; any restage (keys changed, a clash,
another session's commit) rolls them back with the staged rows (seed/apply.py). Rows past the end of
the last run are never updated early (they take the path that classifies first); an early update that
fails is undone and the rest waits for the final statement, which fails (or not) exactly as it would
have. ``SEEDKIT_EARLY_UPDATES=0`` in the environment turns it off.

The same way, a fixture streamed into a table that was empty inserts the rows staged so far between two
COPYs (``Writer.early_inserts``, ``eager``): each time at least as many rows are staged since the last
insert as were inserted before it (and at least ``MIN_ROWS``), so a few statements, each taking its rows
by their staging ordinals, keep the server inserting while the client makes the rest. Each runs under
a savepoint of its own; one that is not exactly its rows inserted (a reference that does not resolve, a
row the table refuses, another session's row holding a key) is undone, no more follow, and the statement
at the end inserts every row not inserted yet and fails (or not) exactly as the single insert would have.
The same switch turns it off.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence

from ..db.base import Database
from ..errors import DatabaseError

ENV = "SEEDKIT_EARLY_UPDATES"
MIN_ROWS = 2000  # staged rows worth ending a COPY and an update of their own
HELD_BYTES = 16 << 20  # COPY text made while the connection is busy: memory stays bounded

# one item: COPY text of one batch, the rows staged through it (staging ordinals), the rows made through it,
# whether rows past the end of the last run are among those staged (they are never updated early)
Item = tuple[bytes | bytearray, int, int, bool]


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class _Stopped(Exception):
    """The making thread failed: the worker ends its COPY (which fails it) and stops."""


class _Handoff:
    """Batches of COPY text from the thread that makes them to the one that sends them."""

    def __init__(self) -> None:
        self.cv = threading.Condition()
        self.items: deque[Item] = deque()
        self.held = 0
        self.done = self.stopped = False
        self.error: BaseException | None = None

    def put(self, item: Item) -> bool:
        """Hand over one item (waiting while too much is held); False once the worker failed."""
        with self.cv:
            while self.held >= HELD_BYTES and self.error is None:
                self.cv.wait()
            if self.error is not None:
                return False
            self.items.append(item)
            self.held += len(item[0])
            self.cv.notify_all()
            return True

    def get(self) -> Item | None:
        """The next item (None: there are no more)."""
        with self.cv:
            while not self.items and not self.done and not self.stopped:
                self.cv.wait()
            if self.stopped:
                raise _Stopped
            if not self.items:
                return None
            item = self.items.popleft()
            self.held -= len(item[0])
            self.cv.notify_all()
            return item

    def end(self, *, stopped: bool = False, error: BaseException | None = None) -> None:
        with self.cv:
            self.done = True
            self.stopped = self.stopped or stopped
            self.error = self.error or error
            self.cv.notify_all()


def stream(d: Database, table_sql: str, columns: Sequence[str], items: Iterable[Item],
           update: Callable[[int, int], bool], start: int = 0, expected: int = 0, *, eager: bool = False) -> None:
    """COPY ``items`` into the staging table ``table_sql``, updating the rows staged so far in between.

    Another thread owns the connection until this returns: it sends the items, and after one that brings
    at least ``MIN_ROWS`` staged rows since the last update (none of them past the end of the last run),
    made from at least as many rows as are still to come of the ``expected`` ones (so the updates halve
    what is left: a few statements, and a small one at the end), it ends the COPY and calls ``update(lo,
    hi)`` for the staging ordinals in ``(lo, hi]`` (False: it failed and was undone; no more early updates)
    before the next COPY. ``eager`` (inserts into a table that was empty): an update is due once at least
    ``MIN_ROWS`` rows, and as many as went in before, are staged since the last one (rows past the end of
    the last run and ``expected`` do not count). This thread only makes the items. A COPY error is the
    usual ``DatabaseError``, its ``copy_line`` counted from the first staged row."""
    hand = _Handoff()
    worker = threading.Thread(target=_Worker(d, table_sql, columns, hand, update, start, expected, eager).run,
                              name="seedkit-early", daemon=True)
    worker.start()
    try:
        for item in items:
            if not hand.put(item):
                break  # the worker failed: its error is raised below
        hand.end()
        worker.join()
    except BaseException:  # (Ctrl-C too: the run ends now, not once the worker's statement is done)
        hand.end(stopped=True)
        _stop(d, worker)
        raise
    if hand.error is not None:
        raise hand.error


def _stop(d: Database, worker: threading.Thread) -> None:
    """End the worker at once: it stops at its next step, and the statement it runs (an update waiting for
    another session's lock, say) is cancelled, as Ctrl-C cancels a statement of this thread's own."""
    worker.join(0.05)
    while worker.is_alive():
        d.cancel()
        worker.join(0.5)


class _Worker:
    """The thread that owns the connection while the rows stream: COPYs, and updates between them."""

    def __init__(self, d: Database, table_sql: str, columns: Sequence[str], hand: _Handoff,
                 update: Callable[[int, int], bool], start: int, expected: int, eager: bool = False):
        self.d, self.table_sql, self.columns, self.hand, self.update = d, table_sql, columns, hand, update
        self.copied = self.lo = self.start = start  # staging ordinals: sent, and updated early through
        self.eager = eager
        self.made_lo = 0  # rows made through the last early update
        self.expected = expected
        self.early = True
        self.due = False
        self.item: Item | None = None

    def run(self) -> None:
        try:
            self.item = self.hand.get()
            while self.item is not None:
                base, self.due = self.copied, False
                try:
                    self.d.load_buffers(self.table_sql, self.columns, self.segment())
                except DatabaseError as exc:
                    line = getattr(exc, "copy_line", None)
                    if line is not None:
                        exc.copy_line = line + base  # type: ignore[attr-defined]
                    raise
                if self.due:
                    self.early = self.update(self.lo, self.copied)
                    self.lo = self.copied if self.early else self.lo
                    self.item = self.hand.get()
        except BaseException as exc:  # noqa: BLE001 - raised in the making thread (see ``stream``)
            self.hand.end(error=exc)
            return
        self.hand.end()

    def segment(self) -> Iterator[bytes | bytearray]:
        """The items of one COPY: up to one after which an update is due, or to the last."""
        while self.item is not None:
            data, staged, made, fresh = self.item
            yield data
            self.copied = staged
            if self.early and (staged - self.lo >= max(MIN_ROWS, self.lo - self.start) if self.eager else
                               not fresh and staged - self.lo >= MIN_ROWS
                               and made - self.made_lo >= self.expected - made):
                self.due, self.made_lo = True, made
                return
            self.item = self.hand.get()


__all__ = ["ENV", "MIN_ROWS", "enabled", "stream"]
