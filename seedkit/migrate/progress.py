"""Watching statements while they run: a slow one is reported about once a second."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from ..db.migration import SLOW_STATEMENT, TICK, Wait, Watcher


def first_line(sql: str, width: int = 100) -> str:
    """The first non-blank line of a statement, shortened to ``width`` characters."""
    line = next((ln.strip() for ln in sql.splitlines() if ln.strip()), "").rstrip(";").rstrip()
    return line if len(line) <= width else line[: width - 1] + "…"


class _StatementWatch:
    """Reports statements that run longer than ``SLOW_STATEMENT`` seconds, about once a second.

    One background thread per run looks at the statement in flight (the main thread is inside the
    driver, waiting for the server); starting a thread per statement would cost more than a short
    statement itself."""

    _POLL = 0.1

    def __init__(self, watch: Watcher | None):
        self.watch = watch
        self._state = threading.Lock()  # guards _current
        self._emit = threading.Lock()  # one report at a time, in order
        self._current: list[Any] | None = None  # [token, started, label, where, text, last reported elapsed]
        self._token = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def statement(self, label: str, where: str, text: str) -> Iterator[None]:
        if self.watch is None:
            yield
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="seedkit-statement-watch", daemon=True)
            self._thread.start()
        with self._state:
            self._token += 1
            self._current = [self._token, time.monotonic(), label, where, text, None]
        try:
            yield
        finally:
            with self._emit:
                with self._state:
                    current, self._current = self._current, None
                if current is not None and current[5] is not None:
                    self._report(current, done=True)

    def _run(self) -> None:
        while not self._stop.wait(self._POLL):
            with self._emit:
                with self._state:
                    current = self._current
                    if current is None:
                        continue
                    elapsed = time.monotonic() - current[1]
                    last = current[5]
                    if elapsed < SLOW_STATEMENT or (last is not None and elapsed < last + TICK):
                        continue
                    current[5] = elapsed
                self._report(current, done=False)

    def _report(self, current: list[Any], *, done: bool) -> None:
        assert self.watch is not None
        _token, started, label, where, text, _last = current
        with suppress(Exception):  # a display problem must never break a migration
            self.watch(Wait("statement", time.monotonic() - started, text, label, where, done=done))

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._stop.clear()


