"""The seed engine: ``run(env)`` loads an environment's fixtures and upserts them in one transaction.

files (load.py, python_fixtures.py) → fixtures (model.py) → plan (plan.py) → apply (apply.py and the parts it
runs) → report (report.py)
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _safety as safety
from .. import db
from .._safety import META, database_stamp
from ..config import Config, load_config
from ..errors import ConfigError, DatabaseError, FixtureError, LockTimeout, SeedkitError, UsageError
from . import parallel, rerun, yaml_events
from .cache import FixtureCache
from .cache import enabled as fixture_cache_enabled
from .load import discover, load_file
from .model import Fixture
from .python_fixtures import fixture, load_python, ref
from .report import Report, TableReport

if TYPE_CHECKING:  # (the planner and the applier are imported by the run that uses them: see ``run``)
    from ..urls import DatabaseURL
    from .apply import Progress


class _Rollback(Exception):
    pass


def load_fixtures(config: Config, include: list[str], *, digests: dict[str, str | None] | None = None
                  ) -> list[Fixture]:
    """Every fixture of the included folders; all file problems are reported together. ``digests``:
    see ``load_file``."""
    reading = _Reading(config, discover(config.seeds_dir, include), digests)
    try:
        reading.read_own()
        return reading.fixtures()
    finally:
        reading.stop()


_Arrived = Callable[[list[Fixture], dict[str, str | None]], None]


class _Reading:
    """The fixture files of a run, read in the files' order: a first run's large YAML partly by a second
    process meanwhile (seed/parallel.py), forked as soon as the files are known. ``read_own`` reads
    this process's share (all of them without a worker); ``fixtures`` waits for the worker and gives
    every fixture, or raises every file's problem together, as one process reading them all would."""

    def __init__(self, config: Config, paths: list[Path], digests: dict[str, str | None] | None, *,
                 meanwhile: bool = False):
        self.config = config
        self.cache = FixtureCache(config.root) if fixture_cache_enabled(config.settings.seeds.cache) else None
        self.digests = digests
        seeds = config.seeds_dir
        self.files: list[tuple[Path, str, str]] = []
        for path in paths:
            shown = os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else str(path)
            ident = Path(os.path.relpath(path, seeds)).as_posix()  # its identity: never the working directory
            self.files.append((path, shown, ident))
        self.results: list[list[Fixture] | FixtureError] = [[] for _ in self.files]
        self.noted: list[dict[str, str | None]] = [{} for _ in self.files]  # each file's digest, in the files' order
        self.worker = parallel.start([(path, shown) for path, shown, _ in self.files], config.variables, self.cache,
                                     meanwhile)
        self.theirs = set(self.worker[1]) if self.worker is not None else set()

    def _note(self, i: int) -> dict[str, str | None] | None:
        return self.noted[i] if self.digests is not None else None

    def read_own(self) -> None:
        """This process's share of the files (Python fixtures run here, at their turn)."""
        with _fewer_collections():  # rows are many small containers, none in a cycle
            for i, (path, shown, ident) in enumerate(self.files):
                if i not in self.theirs:
                    self.results[i] = _load_one(self.config, path, shown, ident, self.cache, self._note(i))

    def own(self) -> tuple[list[Fixture], dict[str, str | None]] | None:
        """The fixtures of this process's share and their digests; None when one of its files has a problem."""
        fixtures: list[Fixture] = []
        notes: dict[str, str | None] = {}
        for i, result in enumerate(self.results):
            if i in self.theirs:
                continue
            if isinstance(result, FixtureError):
                return None
            fixtures += result
            notes.update(self.noted[i])
        return fixtures, notes

    def finish(self, arrived: _Arrived | None = None) -> tuple[list[Fixture], list[FixtureError]]:
        """Every file's fixtures (in the files' order) and problems; ``digests`` filled. ``arrived`` is
        given each file the worker hands back (its fixtures and digest) as it comes: it may still be
        read again here, should the worker not end well."""
        with _fewer_collections():
            if self.worker is not None:
                jobs = self.worker[1]

                def handed_back(i: int, got: tuple[list[Fixture], bool]) -> None:
                    self.results[i] = parallel.read_here(got, jobs[i], self.files[i][2], self._note(i))
                    if arrived is not None:
                        arrived(self.results[i], self.noted[i])

                self.worker[0].each = handed_back
                read = self.worker[0].collect()
                self.worker = None
                for i, job in jobs.items():
                    if i not in read:  # not read there (a problem, or the worker's end): read here, the plain way
                        _, shown, ident = self.files[i]
                        self.results[i] = _load_one(self.config, job.path, shown, ident, self.cache, self._note(i))
        fixtures: list[Fixture] = []
        problems: list[FixtureError] = []
        for result, note in zip(self.results, self.noted):
            if isinstance(result, FixtureError):
                problems.append(result)
            else:
                fixtures += result
            if self.digests is not None:
                self.digests.update(note)
        return fixtures, problems

    def fixtures(self, only: list[str] | tuple[str, ...] = (), env: str = "", arrived: _Arrived | None = None
                 ) -> list[Fixture]:
        """Every fixture (those ``only`` names); all file problems are reported together."""
        fixtures, problems = self.finish(arrived)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise FixtureError(f"{len(problems)} fixture files have problems:", problems=problems)
        return _select(fixtures, only, env) if only else fixtures

    def stop(self) -> None:
        """Stopped early (an error, Ctrl-C): the worker's reading is of no use."""
        if self.worker is not None:
            self.worker[0].stop()
            self.worker = None


def _load_one(config: Config, path: Path, shown: str, ident: str, cache: FixtureCache | None,
              digests: dict[str, str | None] | None) -> list[Fixture] | FixtureError:
    try:
        if path.suffix.lower() == ".py":
            return load_python(path, shown=shown, faker_seed=config.settings.seeds.faker_seed,
                               faker_locale=config.settings.seeds.faker_locale, ident=ident,
                               project_root=config.root)
        return load_file(path, variables=config.variables, display=shown, ident=ident, cache=cache,
                         digests=digests)
    except FixtureError as exc:
        return exc


def run(env: str, *, config: Config | str | os.PathLike[str] | None = None, database_url: str | None = None,
        dry_run: bool = False, check: bool = False, diff: bool = False, only: list[str] | tuple[str, ...] = (),
        yes: bool = False, progress: Progress | None = None) -> Report:
    """Seed ``env``: load its fixtures and upsert them by natural key in one transaction.

    ``dry_run``/``check`` compute the report and write nothing. Returns the per-table report.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    env_settings = config.env(env)
    safety.refuse_protected_run(config, env, yes=yes)
    settings = config.settings.seeds
    try:
        files: list[Path] | FixtureError = discover(config.seeds_dir, env_settings.include)
    except FixtureError as exc:  # said after a problem of the database URL, as always
        files = exc
    memo = None  # deciding a rerun over unchanged files from digests (seed/rerun.py)
    # pre-flight verdicts kept across runs, for the files the loader reads without a variable
    verdicts = rerun.Verdicts(config.root) if fixture_cache_enabled(settings.cache) else None
    digests: dict[str, str | None] | None = {} if verdicts is not None else None
    reading: _Reading | None = None
    own: tuple[list[Fixture], dict[str, str | None]] | None = None
    if not isinstance(files, FixtureError):
        if not (dry_run or check or diff) and fixture_cache_enabled(settings.cache):  # (SQLite: see rerun.start)
            memo = rerun.prepare(config.root, config.seeds_dir, files, env=env, include=env_settings.include,
                                 only=only, settings=settings, protected=env_settings.protected)
        if memo is None or not memo.hinted:  # (files that changed are read before connecting, as always)
            # a worker that reads part of them starts now, before the database driver is even imported;
            # on PostgreSQL this process connects while it reads (see _run)
            meanwhile = parallel.meanwhile_enabled() and not _sqlite_url(config, env, database_url)
            reading = _Reading(config, files, memo.digests if memo is not None else digests, meanwhile=meanwhile)
    try:
        url = config.database_url(env, database_url)
        if isinstance(files, FixtureError):
            raise files
        fixtures: list[Fixture] | None = None
        if reading is not None:
            reading.read_own()
            own = reading.own() if reading.worker is not None and parallel.meanwhile_enabled() \
                and _connects_while_reading(url) else None
            if own is None:  # read them all, then connect: the plain order
                fixtures = reading.fixtures(only, env)
                reading = None
        return _run(config, env, url, memo, verdicts, digests, fixtures, reading, own,
                    dry_run=dry_run, check=check, diff=diff, only=only, yes=yes, progress=progress)
    finally:
        if reading is not None:
            reading.stop()


def _sqlite_url(config: Config, env: str, override: str | None) -> bool:
    """Does the URL ``config.database_url`` will give look like SQLite's (read before the URL is parsed,
    only to share the reading between the two processes well)?"""
    from ..config import interpolate

    for value in (override, config.env(env).database_url, config.settings.database.url,
                  config.variables.get("DATABASE_URL")):
        if value:
            try:
                value = interpolate(value, config.variables, where="")
            except SeedkitError:
                return False
            return value.strip().lower().startswith("sqlite:")
    return False


def _run(config: Config, env: str, url: DatabaseURL, memo: rerun.Rerun | None, verdicts: rerun.Verdicts | None,
         digests: dict[str, str | None] | None, fixtures: list[Fixture] | None, reading: _Reading | None,
         own: tuple[list[Fixture], dict[str, str | None]] | None, *, dry_run: bool, check: bool, diff: bool,
         only: list[str] | tuple[str, ...], yes: bool, progress: Progress | None) -> Report:
    """The run, connected. With ``reading`` (a worker still reads part of the files, ``own`` the
    fixtures this process read), the database work that needs no fixture row — connecting, the seed
    lock, the catalog, the pre-flight of this process's own fixtures — is done while it reads. The
    files' problems (and an unknown ``--only`` table) are still said first, as when reading ends before
    connecting: a connection that fails then is made again once every file is read (and its failure said
    then); a failure after connecting is held until every file is read; a pre-flight problem is said by
    the whole pre-flight, with all the others."""
    env_settings = config.env(env)
    settings = config.settings.seeds
    report = Report(env=env, database=str(url), dry_run=dry_run or check)
    started = time.perf_counter()
    missing: list[Fixture] = []  # fixtures whose table does not exist
    recorded = False
    try:
        d = _connect_early(url, config) if reading is not None else None
        if d is None and reading is not None:  # (not connected: every file read, then connect as always)
            fixtures = reading.fixtures(only, env)
            reading = None
        if d is None:
            # each adapter takes what applies to it: a server's start, a file's lock
            d = db.connect(url, wait=config.settings.database.connect_timeout, lock_timeout=settings.lock_timeout)
        with d:
            try:
                with d.transaction():
                    held: Exception | None = None  # (while reading: a failure is said once every file is read)

                    def contended() -> None:
                        """Another session holds the seed lock: every file is read before the wait (their
                        problems are said at once, as when reading ends before connecting)."""
                        nonlocal fixtures, reading
                        if reading is not None:
                            fixtures = reading.fixtures(only, env)
                            reading = None

                    try:
                        if report.dry_run:
                            d.begin_read_only_run()
                        d.lock_for_seeding(settings.lock_timeout, contended if reading is not None else None)
                        if memo is not None:
                            rerun.start(d, memo)
                        catalog = d.catalog(refresh=True)
                        names = {t.name for t in catalog.tables}
                        safety.refuse_other_environment(d, env, yes=yes, meta_exists=META in names)
                        same = rerun.lookup(d, memo, catalog, report) if memo is not None else None
                    except Exception as exc:
                        if reading is None:
                            raise
                        held = exc
                    checked: _Checked | None = None
                    if reading is not None:
                        from . import apply, plan  # noqa: F401 - what comes after reading, imported meanwhile
                        if held is None and own is not None and not only:
                            # the pre-flight of what this process read, then of each file the worker hands
                            # back, while the worker reads
                            checked = _Checked(d, catalog, verdicts, memo is not None or digests is not None)
                            checked.add(*own)
                        fixtures = reading.fixtures(only, env, checked.add if checked is not None else None)
                        reading = None  # (every file's problem said first)
                        if held is not None:
                            raise held
                    if same is not None:
                        # the database holds what the run that recorded these inputs left: nothing to write
                        d.lock_tables(same, settings.lock_timeout, write=True)
                        if META not in names:
                            safety.ensure_meta(d)
                        safety.stamp(d, env, protected=env_settings.protected)
                    else:
                        from .apply import LEDGER, Applier, ensure_ledger
                        from .plan import build_plan

                        if fixtures is None:
                            fixtures = _load_selected(config, env_settings.include, only, env, memo, digests)
                        missing = _missing_tables(fixtures, catalog)
                        if checked is not None and checked.failure is not None:
                            raise checked.failure
                        # every YAML/JSON row against its table's schema
                        with _fewer_collections():  # checking rows allocates many small objects, none in a cycle
                            _schema_checks(d, catalog, fixtures, verdicts,
                                           memo.digests if memo is not None else digests, checked)
                            plan = build_plan(fixtures, catalog, d, checked.early if checked is not None else None)
                        d.lock_tables([tp.table.name for tp in plan.tables], settings.lock_timeout,
                                      write=not report.dry_run)
                        prune = any(f.header.prune for f in fixtures)
                        if not report.dry_run:
                            if META not in names:  # created only when missing: a role without CREATE can seed
                                safety.ensure_meta(d)
                            if prune and LEDGER not in names:
                                ensure_ledger(d)
                        elif prune and LEDGER not in names and not d.missing_ledger(
                                LEDGER, ("fixture", "table_name", "row_key")):
                            ensure_ledger(d, temporary=True)  # a dry run writes nothing, not even seedkit's tables
                        with _fewer_collections():
                            Applier(d, plan, catalog, report, dry_run=report.dry_run, diff=diff, progress=progress,
                                    batch_size=settings.batch_size).run()
                        if not report.dry_run:
                            if memo is not None:
                                recorded = rerun.record(d, memo, fixtures, plan, catalog, report)
                            safety.stamp(d, env, protected=env_settings.protected)
                        else:
                            raise _Rollback
            except _Rollback:
                pass
            except DatabaseError as exc:
                if exc.sqlstate == "55P03":  # a row or table lock another session held past lock_timeout
                    raise _lock_timeout(d, exc, settings.lock_timeout, write=not report.dry_run) from None
                if exc.sqlstate == "08006" and "committing" not in (exc.hint or ""):  # the connection was lost
                    exc.hint = "nothing was written: the run's one transaction ended with the connection; run again"
                raise
    except FixtureError as exc:
        if missing:
            _explain_missing(exc, missing, config, env, url)
        raise
    finally:
        if reading is not None:  # stopped before every file was read
            reading.stop()
    if recorded and memo is not None:
        rerun.hint(memo)  # committed: the next run with these inputs asks the record first
    report.seconds = time.perf_counter() - started
    return report


def _connect_early(url: DatabaseURL, config: Config) -> db.Database | None:
    """A connection made while the worker reads, or None: one attempt, no waiting for a server that
    starts; whatever fails is tried again, and said, the plain way once every file is read."""
    try:
        return db.connect(url, wait=0, lock_timeout=config.settings.seeds.lock_timeout)
    except Exception:  # noqa: BLE001
        return None


def _load_selected(config: Config, include: list[str], only: list[str] | tuple[str, ...], env: str,
                   memo: rerun.Rerun | None, digests: dict[str, str | None] | None) -> list[Fixture]:
    fixtures = load_fixtures(config, include, digests=memo.digests if memo is not None else digests)
    return _select(fixtures, only, env) if only else fixtures


class _Checked:
    """The pre-flight of fixtures read while the worker still reads (this process's own, then each file
    the worker hands back), done in turn: the rules read once, and the fixtures found valid. A problem
    found here is not said here: the whole pre-flight checks those fixtures again, with all the others,
    and says every problem in the files' order. A failure other than a problem is held (``failure``) and
    said in the place the whole pre-flight would meet it."""

    def __init__(self, d: db.Database, catalog: db.Catalog, verdicts: rerun.Verdicts | None, with_digests: bool):
        self.d, self.catalog, self.verdicts, self.with_digests = d, catalog, verdicts, with_digests
        self.rules: object = None
        self.passed: dict[int, Fixture] = {}  # by id(): the fixtures found valid (kept: their ids stay theirs)
        self.keys: list[str] = []  # their verdict keys, kept once the whole pre-flight passes
        self.failure: Exception | None = None
        from .plan import Early

        self.early = Early(catalog)  # their rows checked for the plan too (see plan.Early)

    def add(self, fixtures: list[Fixture], digests: dict[str, str | None]) -> None:
        if self.failure is not None or not any(f.rows is not None for f in fixtures):
            return
        try:
            with _fewer_collections():
                self._check(fixtures, digests)
        except Exception as exc:  # noqa: BLE001 - the whole pre-flight's failure: said in turn
            self.failure = exc

    def _check(self, fixtures: list[Fixture], digests: dict[str, str | None]) -> None:
        if self.rules is None:
            from ..schema.checks import read_rules

            self.rules = read_rules(self.d, self.catalog)
        todo, keys = fixtures, []
        if self.verdicts is not None and self.with_digests:
            todo, keys = _unknown_verdicts(fixtures, self.catalog, self.rules, self.verdicts, digests)
        if any(f.rows is not None for f in todo):
            from ..schema.validate import preflight

            try:
                preflight(todo, self.catalog, self.rules)
            except FixtureError:
                return
        self.passed.update((id(f), f) for f in fixtures)
        self.keys += keys
        self.early.add(fixtures)

    def done(self, fx: Fixture) -> bool:
        return self.passed.get(id(fx)) is fx


def _connects_while_reading(url: DatabaseURL) -> bool:
    """Whether the URL's database is worth connecting to while files are read (an unknown dialect: no,
    its error comes where a plain run gives it)."""
    try:
        return db.adapter(url).connect_while_reading
    except ConfigError:
        return False


def _schema_checks(d: db.Database, catalog: db.Catalog, fixtures: list[Fixture],
                   verdicts: rerun.Verdicts | None = None, digests: dict[str, str | None] | None = None,
                   checked: _Checked | None = None) -> None:
    """Pre-flight (seedkit.schema): all schema problems of all files at once, before any write; ``auto``
    fixtures learn the table they fill. With ``verdicts``, a fixture found valid before (same bytes, same
    table schema) is not checked again (seed/rerun.py); ``checked``: those found valid already in this
    run, while the worker read."""
    from ..schema.checks import read_rules

    if not any(f.rows is not None or f.auto is not None for f in fixtures):
        return
    rules = checked.rules if checked is not None and checked.rules is not None else read_rules(d, catalog)
    todo, keys = fixtures, list(checked.keys) if checked is not None else []
    if checked is not None and checked.passed:
        todo = [f for f in fixtures if not checked.done(f)]
    if verdicts is not None and digests is not None:
        todo, more = _unknown_verdicts(todo, catalog, rules, verdicts, digests)
        keys += more
    if any(f.rows is not None for f in todo):
        from ..schema.validate import preflight

        preflight(todo, catalog, rules)
    if verdicts is not None:
        verdicts.remember(keys)
        pools = rerun.Pools(verdicts.folder.parent / "pools")
        for fx in fixtures:
            if fx.auto is not None:
                fx.auto.pools = pools
    if any(fx.auto is not None and not fx.auto.bound for fx in fixtures):  # (else bind_auto does nothing)
        from ..schema.auto import bind_auto

        bind_auto(fixtures, catalog, d, rules)


def _unknown_verdicts(fixtures: list[Fixture], catalog: db.Catalog, rules: object, verdicts: rerun.Verdicts,
                      digests: dict[str, str | None]) -> tuple[list[Fixture], list[str]]:
    """The fixtures to check, and the verdict keys to keep when they pass."""
    from ..schema.build import key_columns, table_schema

    todo, keys = [], []
    schemas: dict[object, object] = {}
    for fx in fixtures:
        table = catalog.find(fx.table) if fx.rows is not None else None
        if table is None:
            todo.append(fx)
            continue
        if table.name not in schemas:
            schemas[table.name] = table_schema(table, catalog, rules)  # type: ignore[arg-type]
        key = verdicts.key(fx, digests.get(fx.ident), schemas[table.name], key_columns(table, fx.header.key))
        if key is None or not verdicts.known(key):
            todo.append(fx)
            if key is not None:
                keys.append(key)
    return todo, keys


def _select(fixtures: list[Fixture], only: list[str] | tuple[str, ...], env: str) -> list[Fixture]:
    """The fixtures of the tables ``--only`` names (``table`` or ``schema.table``); an unknown name is a
    usage error with the closest table names."""

    def matches(f: Fixture, name: str) -> bool:
        short = f.table.rpartition(".")[2]
        return name in (f.table, short) or ("." not in f.table and name.rpartition(".")[2] == f.table)

    known = sorted({f.table for f in fixtures} | {f.table.rpartition(".")[2] for f in fixtures})
    for name in only:
        if not any(matches(f, name) for f in fixtures):
            from difflib import get_close_matches

            close = get_close_matches(name, known, n=3, cutoff=0.5)
            hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close else
                    f"the tables with fixtures in {env!r}: {', '.join(known) or 'none'}")
            raise UsageError(f"--only {name!r}: no fixture of environment {env!r} seeds that table", hint=hint)
    return [f for f in fixtures if any(matches(f, name) for name in only)]


def _missing_tables(fixtures: list[Fixture], catalog: db.Catalog) -> list[Fixture]:
    from ..db.catalog import UnknownObject

    missing = []
    for fx in fixtures:
        try:
            catalog.get(fx.table, location=fx.location)
        except UnknownObject:
            missing.append(fx)
    return missing


def _explain_missing(exc: FixtureError, missing: list[Fixture], config: Config, env: str,
                     url: DatabaseURL) -> None:
    """Tables missing while migrations are pending: say how many, and to migrate first."""
    from .. import migrate

    try:
        pending = len(migrate.status(config, env=env, database_url=url.raw).pending)
    except SeedkitError:
        return  # no migrations folder, no history: the unknown-table error stands
    if not pending:
        return
    tables = sorted({f.table for f in missing})
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    raise FixtureError(
        f"{len(tables)} table{'s' if len(tables) != 1 else ''} the fixtures seed {'do' if len(tables) != 1 else 'does'}"
        f" not exist ({shown}), and {pending} migration{'s are' if pending != 1 else ' is'} pending",
        location=missing[0].location,
        hint="run `seedkit migrate up` first (`seedkit migrate status` lists what is pending)") from None


def _lock_timeout(d: db.Database, exc: DatabaseError, timeout: float, *, write: bool) -> LockTimeout:
    """The server gave up waiting for a lock: say on which table (a row lock names it in the error's
    context; otherwise the table locks in the way) and who holds it."""
    import re

    m = re.search(r'relation "((?:[^"]|"")+)"', getattr(exc, "context", None) or "")
    table = m[1].replace('""', '"') if m else None
    holders = d.table_lock_holders(d.quote(table) if table else None, write=write)
    what = f"a lock on a row of table {table}" if table else "a table lock"
    return LockTimeout(f"waited {timeout:g} s for {what}: {holders or 'another session holds it'}",
                       hint="wait for that session to finish (or end it), or raise [seeds] lock_timeout")


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Streaming a million rows allocates millions of short-lived objects (none in cycles): let the
    cyclic garbage collector run less often meanwhile, instead of every 700 allocations."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 100_000), max(before[1], 50), max(before[2], 50))
    try:
        yield
    finally:
        if yaml_events.ONE_SHOT:
            gc.freeze()  # what is still alive lives until the process ends: later collections skip it
        gc.set_threshold(*before)


__all__ = ["Report", "SeedkitError", "TableReport", "database_stamp", "fixture", "load_fixtures", "ref", "run"]
