"""Overlapping the server's work with the client's: a table's ``INSERT … SELECT`` runs on a background
thread while the run builds the next fixture's staging rows (PostgreSQL; see RELIABILITY.md §20).

One connection carries the run's one transaction, so statements still run one at a time, in the order
the plain run sends them: the main thread never uses the connection while the background statement runs
(``Background.drain`` waits for it first, before anything that needs the connection or a result), and
psycopg lets go of the GIL while it waits on the socket. What the main thread does meanwhile needs no
database: building the first batch of the next group held in memory that references other rows, with the
references nested in its references looked up just before the insert (``Applier._look_ahead`` says when
that is allowed; ``NestedRefs.offline`` makes any other lookup give up building ahead).

Errors end the run as the plain run ends it: the background statement came first, so its error wins over
anything the main thread raised meanwhile. Ctrl-C cancels the statement running and waits for the thread
before the run rolls back. ``SEEDKIT_OVERLAP=0`` in the environment turns all of this off.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from ..db.base import Database

ENV = "SEEDKIT_OVERLAP"


def enabled(d: Database, one_thread: bool) -> bool:
    """Only on PostgreSQL; SQLite, dry runs (``--check``) and ``--diff`` (``one_thread``) run on one thread."""
    return os.environ.get(ENV, "1").strip() != "0" and not one_thread and d.background_statements()


class Offline(Exception):
    """Building rows ahead needed the database: they are built again at their turn."""


class Background:
    """At most one job (one table's statements) running on the connection in another thread."""

    def __init__(self, d: Database):
        self.d = d
        self.thread: threading.Thread | None = None
        self.failed: list[BaseException] = []
        self.waited = 0.0  # seconds the main thread waited for jobs (counted as theirs, not its own)
        self.report: Any = None  # the job's table report, and the seconds the job took
        self.took = [0.0]
        # set by the job's thread as its last step: waited on instead of ``Thread.join``, which Ctrl-C can
        # end (Python before 3.13) with the thread still running and ``is_alive()`` already False
        self.done = threading.Event()

    @property
    def busy(self) -> bool:
        return self.thread is not None

    def submit(self, job: Callable[[], None], report: Any) -> None:
        """Run ``job`` on another thread; its time is added to ``report.seconds`` (on this thread) when drained."""
        assert self.thread is None
        failed: list[BaseException] = []
        took = [0.0]

        done = threading.Event()

        def work() -> None:
            started = time.perf_counter()
            try:
                job()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread by drain
                failed.append(exc)
            finally:
                took[0] = time.perf_counter() - started
                done.set()

        self.failed, self.report, self.took, self.done = failed, report, took, done
        # Ctrl-C held back while the thread starts: once ``busy`` says there is a job, the job has started
        # (else ``stop`` would wait for a job that never runs); the thread keeps these signals blocked, so
        # they reach the main thread, the one Python handles them on
        held = _hold_signals()
        try:
            self.thread = threading.Thread(target=work, name="seedkit-writer", daemon=True)
            self.thread.start()
        finally:
            _release_signals(held)

    def drain(self) -> None:
        """Wait for the job; raise its error, if it had one."""
        thread = self.thread
        if thread is None:
            return
        started = time.perf_counter()
        try:
            self.done.wait()
        except BaseException:  # Ctrl-C while waiting: the statement is cancelled, the thread waited for
            self.stop()
            raise
        self.waited += time.perf_counter() - started
        self.thread = None
        self.report.seconds += self.took[0]
        if self.failed:
            error, self.failed = self.failed[0], []
            raise error

    def stop(self) -> None:
        """The run is ending (Ctrl-C): cancel the statement running and wait for the thread to let go of the
        connection; its error (the cancelled statement's) is the consequence, not the cause, and is dropped."""
        thread = self.thread
        if thread is None:
            return
        self.d.cancel()
        while not self.done.is_set():
            try:
                self.done.wait()
            except KeyboardInterrupt:  # (pressed again: the connection must still be let go of first)
                self.d.cancel()
        self.thread = None
        self.failed = []


_HELD = frozenset(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


def _hold_signals() -> set | None:
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        return None
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, _HELD))


def _release_signals(held: set | None) -> None:
    if held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


__all__ = ["ENV", "Background", "Offline", "enabled"]
