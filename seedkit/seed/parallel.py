"""Reading a first run's YAML and JSON fixture files on two cores.

A first run (nothing in the fixture cache) spends most of its time before the database sees a row
parsing YAML. When the command line reads enough bytes of files the cache does not hold, it forks one
worker process as soon as it knows the files, before it imports the database driver or connects to any
database (a rerun that reads its files after asking the database forks it connected; the worker never
uses the connection): the worker parses some of the files, largest first (the split balances the two
processes' work by size), keeps them in the fixture cache as usual and hands their rows back in the
cache's own format, saying through a pipe where each file's record ends; this process parses the
others meanwhile — on PostgreSQL it also connects, takes the seed lock, reads the catalog and checks
its own rows (``meanwhile``, seedkit/seed/__init__.py) — and decodes the worker's rows file by file as
they come, as it would decode a cache entry.

What is read does not change, only where:

- The worker reads nothing that decides a message: a file it finds anything wrong with (or any
  problem at all) is read again here, by the plain path, which says what and where; so the errors, their
  order, their locations and the exit code are the plain run's.
- Rows come back through the fixture cache's encoding, which gives what reading gives (RELIABILITY.md §15);
  a file that read a variable (``!env``) is handed back through the same encoding without being kept.
- Anything the worker did not hand back complete (it died, was killed, a value the encoding cannot hold)
  is read here; the worker never touches the database connection, the terminal or the report.

It is used only by a one-shot process (the command line) that has a single thread and two or more
usable cores, where ``os.fork`` exists, and when the files to parse reach ``MIN_BYTES``.
``SEEDKIT_PARALLEL_READ=0`` in the environment turns it off; ``SEEDKIT_CONNECT_WHILE_READING=0`` keeps
the worker but has the run connect only once every file is read.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .._record import dataclass
from . import cache as cache_mod
from . import load, yaml_events

if TYPE_CHECKING:
    from .cache import FixtureCache
    from .model import Fixture

ENV = "SEEDKIT_PARALLEL_READ"
MEANWHILE_ENV = "SEEDKIT_CONNECT_WHILE_READING"
MIN_BYTES = 256 * 1024  # below this a second process does not pay for itself
# the relative cost of a byte of YAML: parsing it, encoding its rows (for the cache or to hand them
# back), decoding them, checking its rows against their table's schema (measured on the Chinook sample
# database's fixtures; the snapshot's rows are read a line at a time, seedkit.seed.yaml_lines, about
# twice as fast as from libyaml's events: encoding, decoding and checking weigh twice as much against it)
PARSE, ENCODE, DECODE, CHECK = 1.0, 0.95, 0.75, 0.3
# what this process does meanwhile when it connects while the worker reads (seed/__init__.py): importing
# the database driver, connecting, the seed lock and the catalog, in bytes' worth of parsing
MEANWHILE = 1_200_000


def enabled() -> bool:
    return _on(ENV)


def meanwhile_enabled() -> bool:
    """Does a run whose worker reads connect meanwhile (``SEEDKIT_CONNECT_WHILE_READING``, on by default)?"""
    return _on(MEANWHILE_ENV)


def _on(name: str) -> bool:
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "no", "off")


def possible() -> bool:
    """A one-shot process with one thread, two usable cores and ``os.fork``, not turned off."""
    if not (yaml_events.ONE_SHOT and enabled() and hasattr(os, "fork")):
        return False
    if threading.active_count() != 1:  # a fork copies locks other threads may hold
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return cores >= 2


@dataclass
class Job:
    index: int
    path: Path
    shown: str
    raw: bytes


def split(jobs: list[Job], cached: bool, meanwhile: bool = False) -> list[Job]:
    """The jobs the worker takes: largest first, each to the process that would finish sooner with it
    (this process decodes what the worker hands back; with ``meanwhile``, it also connects and checks
    the rows it read itself while the worker reads)."""
    own = PARSE + (ENCODE if cached else 0.0) + (CHECK if meanwhile else 0.0)
    here, there = (float(MEANWHILE) if meanwhile else 0.0), 0.0
    taken = []
    for job in sorted(jobs, key=lambda j: (-len(j.raw), j.index)):
        size = len(job.raw)
        if max(here + size * DECODE, there + size * (PARSE + ENCODE)) < max(here + size * own, there):
            here += size * DECODE
            there += size * (PARSE + ENCODE)
            taken.append(job)
        else:
            here += size * own
    return sorted(taken, key=lambda j: j.index)


class Worker:
    """A forked process reading ``jobs``; ``collect`` waits for it and gives what it read. It reads the
    largest first and says (through a pipe) where each job's record ends, so ``collect`` decodes what
    is done while it reads the rest."""

    def __init__(self, jobs: list[Job], variables: Mapping[str, str], cache: FixtureCache | None):
        self.jobs = {job.index: job for job in jobs}
        self.cache = cache
        self.pid: int | None = None
        self.each: Callable[[int, tuple[list[Fixture], bool]], None] | None = None
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 - unlinked: gone with both processes, whatever happens
        parent = os.getpid()
        try:
            self.done, done = os.pipe()  # (this process reads where each record ends; the worker writes it)
        except OSError:
            self.out.close()
            raise
        try:
            pid = os.fork()
        except OSError:
            self.out.close()
            os.close(self.done)
            os.close(done)
            raise
        if pid == 0:  # the worker: never returns
            code = 1
            try:
                # Ctrl-C, or this process stopping it, ends it as Ctrl-C ends a run: a cache entry half
                # written is removed on the way out
                signal.signal(signal.SIGINT, _interrupted)
                signal.signal(signal.SIGTERM, _interrupted)
                os.close(self.done)
                _detach(parent, (self.out.fileno(), done))
                if cache is not None:  # its entries being written: known by name, should it be killed
                    cache.tmp_prefix = _tmp_prefix(os.getpid())
                _work(sorted(jobs, key=lambda j: -len(j.raw)), variables, cache, self.out, parent, done)
                code = 0
            except BaseException:  # noqa: BLE001 - whatever it is, this process reads the files
                if cache is not None:  # the entry it was writing, wherever the interrupt came (even mid-mkstemp)
                    _remove_unfinished(cache, os.getpid())
            finally:
                os._exit(code)  # no atexit handlers, no buffers of the parent's flushed twice
        os.close(done)
        self.pid = pid

    @property
    def indexes(self) -> set[int]:
        return set(self.jobs)

    def collect(self) -> dict[int, tuple[list[Fixture], bool]]:
        """What the worker read: index → (documents, whether reading them read a variable). A job
        missing here is read by this process; all of them when the worker did not end well. ``each``,
        when set, is given every job as it comes (before the worker's end is known)."""
        assert self.pid is not None
        each = self.each
        pid, self.pid = self.pid, None
        got: dict[int, tuple[list[Fixture], bool]] = {}
        try:
            at = 0
            for end in _ends(self.done):  # each record as soon as the worker is done with it
                if end > at:
                    got.update(_each(self._decode(_read(self.out.fileno(), at, end)), each))
                    at = end
            _, status = os.waitpid(pid, 0)
        except BaseException:
            _stop(pid)
            self._close()
            if self.cache is not None:
                _remove_unfinished(self.cache, pid)
            raise
        try:
            if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                if self.cache is not None:  # killed (kill -9, out of memory): it could not remove it
                    _remove_unfinished(self.cache, pid)
                return {}
            rest = _read(self.out.fileno(), at, os.fstat(self.out.fileno()).st_size)
        except OSError:
            return {}
        finally:
            self._close()
        if rest:
            got.update(_each(self._decode(rest), each))
        return got

    def _close(self) -> None:
        self.out.close()
        if self.done >= 0:
            os.close(self.done)
            self.done = -1

    def _decode(self, data: bytes) -> dict[int, tuple[list[Fixture], bool]]:
        got: dict[int, tuple[list[Fixture], bool]] = {}
        collecting = gc.isenabled()
        gc.disable()  # many small containers, none in a cycle (see seedkit.seed.cache)
        try:
            records = cache_mod._Records(data)
            while not records.done():
                index, how, read_variable = records.next()
                job = self.jobs[index]
                if how == "kept" and self.cache is not None:  # in the fixture cache: read from there
                    fixtures = self.cache.get(job.shown, job.path.name, job.raw)
                    if fixtures is not None:
                        got[index] = (fixtures, False)
                elif how == "rows":
                    if records.next() != b"":
                        raise ValueError("not a record of rows")
                    got[index] = (cache_mod.read_documents(records), bool(read_variable))
        except Exception:  # noqa: BLE001, S110 - the rest is read by this process
            pass
        finally:
            yaml_events.resume_collections(collecting)
        return got

    def stop(self) -> None:
        """End the worker without waiting for what it reads (this process stops reading)."""
        if self.pid is not None:
            _stop(self.pid)
            if self.cache is not None:  # (it removes it itself, unless stopped before it could)
                _remove_unfinished(self.cache, self.pid)
            self.pid = None
        self._close()


def _each(got: dict[int, tuple[list[Fixture], bool]], each: Callable[[int, tuple[list[Fixture], bool]], None] | None
          ) -> dict[int, tuple[list[Fixture], bool]]:
    if each is not None:
        for index, read in got.items():
            each(index, read)
    return got


def _tmp_prefix(pid: int) -> str:
    return f".tmp-w{pid}-"


def _remove_unfinished(cache: FixtureCache, pid: int) -> None:
    """The cache entry the worker ``pid`` was writing when it was stopped or killed, if any."""
    with contextlib.suppress(OSError):
        for tmp in cache.folder.glob(_tmp_prefix(pid) + "*"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _interrupted(signum: int, frame: object) -> None:
    """(In the worker) the first of Ctrl-C and this process's SIGTERM ends it; the other (Ctrl-C reaches
    both processes, then this process stops the worker) must not break off the removal of the entry it
    was writing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _detach(parent: int, keep: tuple[int, ...]) -> None:
    """(In the worker) end as this process's parent ends, even killed (``kill -9``): on Linux the kernel
    sends SIGTERM then (a plain run would be gone; the worker must not read on alone); elsewhere the
    worker looks between files. And hold none of the parent's terminal or pipes: a reader of the run's
    output sees its end when the run ends."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # ended before that was asked
        raise KeyboardInterrupt
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # (a run started with them closed may have its own files there: ``keep``)
        if fd != null and fd not in keep:
            os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _stop(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)


def _read(fd: int, start: int, end: int) -> bytes:
    parts, at = [], start
    while at < end:
        part = os.pread(fd, end - at, at)
        if not part:
            break
        parts.append(part)
        at += len(part)
    return b"".join(parts)


_END = struct.Struct("<Q")


def _ends(fd: int) -> Iterator[int]:
    """Where the worker's records end, as it says so (until it closes the pipe: it ended)."""
    pending = b""
    while chunk := os.read(fd, 4096):
        pending += chunk
        whole = len(pending) - len(pending) % _END.size
        if whole:
            yield _END.unpack_from(pending, whole - _END.size)[0]  # the last one said: all before it are done
            pending = pending[whole:]


def _work(jobs: list[Job], variables: Mapping[str, str], cache: FixtureCache | None, out: IO[bytes],
          parent: int | None = None, done: int | None = None) -> None:
    """The worker: each job's rows kept in the cache (this process reads them from there) or handed
    back in the cache's encoding; a job it cannot read is left to this process. After each job, where
    its record ends is written to ``done``."""
    for job in jobs:
        _one(job, variables, cache, out, parent)
        if done is not None:
            out.flush()
            os.write(done, _END.pack(out.tell()))
    out.flush()


def _one(job: Job, variables: Mapping[str, str], cache: FixtureCache | None, out: IO[bytes],
         parent: int | None) -> None:
    if parent is not None and os.getppid() != parent:  # the run is gone
        raise KeyboardInterrupt
    watched = load._Watched(variables)
    try:
        fixtures = load._parse(job.raw, job.path.suffix.lower(), job.path, job.shown, watched)
    except Exception:  # noqa: BLE001 - read again by the plain path, which says what and where
        cache_mod._write(out, (job.index, "again", False))
        return
    if cache is not None and not watched.read and cache.put(job.shown, job.path.name, job.raw, fixtures):
        cache_mod._write(out, (job.index, "kept", False))
        return
    start = out.tell()
    cache_mod._write(out, (job.index, "rows", watched.read))
    if not cache_mod.dump(out, b"", fixtures):
        out.seek(start)
        out.truncate()
        cache_mod._write(out, (job.index, "again", False))


def start(paths: list[tuple[Path, str]], variables: Mapping[str, str], cache: FixtureCache | None,
          meanwhile: bool = False) -> tuple[Worker, dict[int, Job]] | None:
    """A worker for part of the files ``paths`` (path, shown), and its jobs by index; None when it
    would not pay (or cannot be had). ``meanwhile``: this process will connect while the worker reads
    (see ``split``)."""
    if not possible():
        return None
    jobs = plan(paths, cache)
    if sum(len(j.raw) for j in jobs) < MIN_BYTES or len(jobs) < 2:
        return None
    taken = split(jobs, cache is not None, meanwhile)
    if not taken:
        return None
    import ctypes  # noqa: F401 - what the worker may import, imported before the fork
    import pickle  # noqa: F401

    try:
        return Worker(taken, variables, cache), {j.index: j for j in taken}
    except OSError:  # no temporary file, no fork: read them all here
        return None


def plan(paths: list[tuple[Path, str]], cache: FixtureCache | None) -> list[Job]:
    """The YAML and JSON files among ``paths`` (path, shown) that the cache does not hold and no Python
    fixture comes before (unreadable ones are left to the plain path)."""
    jobs = []
    # a Python fixture runs when its turn comes, and may write the files after it (a generator): those
    # are read at their turn, here, as the plain path reads them
    before = next((i for i, (path, _) in enumerate(paths) if path.suffix.lower() == ".py"), len(paths))
    readable = [(i, path, shown) for i, (path, shown) in enumerate(paths[:before])
                if path.suffix.lower() in (".yaml", ".yml", ".json")]
    with contextlib.suppress(OSError):  # small projects: not even read
        if sum(path.stat().st_size for _, path, _ in readable) < MIN_BYTES:
            return []
    for index, path, shown in readable:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if cache is not None and cache.has(shown, path.name, raw):
            continue
        jobs.append(Job(index, path, shown, raw))
    return jobs


def read_here(fixtures_read: tuple[list[Fixture], bool], job: Job, ident: str,
              digests: dict[str, str | None] | None) -> list[Fixture]:
    """What the worker read, named and noted as ``load.load_file`` names and notes it."""
    fixtures, read_variable = fixtures_read
    return load.finish(fixtures, job.raw, job.path, job.shown, ident, read_variable, digests)
