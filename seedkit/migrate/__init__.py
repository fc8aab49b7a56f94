"""Versioned raw-SQL migrations: the Python API behind ``seedkit migrate``.

Each function mirrors one command and returns a plain dataclass report::

    from seedkit import load_config, migrate

    config = load_config()
    migrate.up(config)                       # apply everything pending
    migrate.up(config, to="20240101120000")  # … or up to a version
    migrate.status(config).pending           # what is left
    migrate.down(config, steps=2)            # roll back the last two

Problems raise ``SeedkitError`` subclasses: ``DriftError`` (exit 3) when the history and the files
disagree, ``MigrationError`` (exit 1) located at the failing statement, ``LockTimeout`` /
``RefusedError`` (exit 4), ``MigrationFileError`` / ``UsageError`` (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, load_config
from ..db.migration import Wait, Watcher
from ..urls import DatabaseURL
from . import repeatable as _repeatable
from .files import Migration, Section, discover, load_paths, write_new
from .reports import (
    MigrationRun,
    Progress,
    ResolveReport,
    RunReport,
    StatusEntry,
    StatusReport,
    VerifyReport,
)
from .runner import Runner
from .validation import Problem

if TYPE_CHECKING:  # pragma: no cover
    from .adopt import AdoptReport


def _config(config: Config | None) -> Config:
    return config if config is not None else load_config()


def _url(config: Config, env: str | None, database_url: str | DatabaseURL | None) -> DatabaseURL:
    override = database_url.raw if isinstance(database_url, DatabaseURL) else database_url
    return config.database_url(env, override)


def runner(config: Config | None = None, *, env: str | None = None,
           database_url: str | DatabaseURL | None = None, lock_timeout: float | None = None,
           create: bool = True) -> Runner:
    """A ``Runner`` for the configured migrations folder and database (close it, or use ``with``).

    ``create=False`` refuses to create a missing SQLite file (for read-only commands)."""
    config = _config(config)
    url = _url(config, env, database_url)
    migrations = discover(config.migrations_dir)
    settings = config.settings.migrations
    return Runner(migrations, url, table=settings.table,
                  lock_timeout=settings.lock_timeout if lock_timeout is None else lock_timeout,
                  connect_timeout=config.settings.database.connect_timeout, create=create,
                  repeatables=_repeatable.discover(config.repeatable_dir), cache_root=config.root)


def new(config: Config | None, name: str, *, repeatable: bool = False) -> Path:
    """Create a migration file YYYYMMDDHHMMSS_NAME.sql (UTC time) with an up and a down section.
    The folder's newest migration is followed: after a sequential version (000150) comes the next
    number (000151), and after a pair (.up.sql/.down.sql) a pair. With --repeatable, a
    repeatable migration NAME.sql in migrations/repeatable/ instead (re-applied by up after the
    versioned migrations whenever it changes)."""
    config = _config(config)
    if repeatable:
        return _repeatable.write_new(config.repeatable_dir, name)
    return write_new(config.migrations_dir, name)


def up(config: Config | None = None, *, env: str | None = None, database_url: str | DatabaseURL | None = None,
       to: str | int | None = None, dry_run: bool = False, allow_out_of_order: bool = False,
       lock_timeout: float | None = None, progress: Progress | None = None,
       watch: Watcher | None = None, reapply_repeatables: bool = False) -> RunReport:
    """Apply pending migrations in version order, each in its own transaction unless marked
    transaction:false; with --to VERSION, stop after that version. Then (without --to) apply each
    repeatable migration that is new or changed since it was last applied, in name order, each in
    its own transaction (--reapply-repeatables: every one of them).

    Refuses (exit 3) before anything runs when an applied migration was edited or deleted, a pending
    one is older than the newest applied one, or a non-transactional migration failed earlier.

    While it waits for another run's lock (saying who holds it) or a statement runs longer than 2 s,
    it shows the elapsed time on stderr: one live line on a terminal, plain lines when piped."""
    with runner(config, env=env, database_url=database_url, lock_timeout=lock_timeout) as r:
        return r.up(to=to, dry_run=dry_run, allow_out_of_order=allow_out_of_order, progress=progress,
                    watch=watch, reapply_repeatables=reapply_repeatables)


def down(config: Config | None = None, *, env: str | None = None,
         database_url: str | DatabaseURL | None = None, steps: int | None = None,
         to: str | int | None = None, dry_run: bool = False,
         lock_timeout: float | None = None, progress: Progress | None = None,
         watch: Watcher | None = None) -> RunReport:
    """Roll back applied migrations with their down sections: the newest one, the newest --steps N,
    or every one newer than --to VERSION (0 for all).

    Refused on protected environments: roll forward there with a new migration."""
    from .. import _safety as safety

    config = _config(config)
    safety.refuse_protected_rollback(config, env)
    with runner(config, env=env, database_url=database_url, lock_timeout=lock_timeout) as r:
        safety.refuse_stamped_rollback(r.db)
        return r.down(steps=steps, to=to, dry_run=dry_run, progress=progress, watch=watch)


def status(config: Config | None = None, *, env: str | None = None,
           database_url: str | DatabaseURL | None = None, allow_out_of_order: bool = False) -> StatusReport:
    """List every migration as applied, pending, changed, missing or failed, with when it was
    applied; --exit-code exits 3 when anything is pending or drifted."""
    with runner(config, env=env, database_url=database_url, create=False) as r:
        return r.status(allow_out_of_order=allow_out_of_order)


def verify(config: Config | None = None, *, env: str | None = None,
           database_url: str | DatabaseURL | None = None, allow_out_of_order: bool = False) -> VerifyReport:
    """Check the database's history against the files: applied migrations unchanged and present,
    nothing pending out of order, no failed migration, every file valid. Pending migrations are fine;
    any problem exits 3."""
    with runner(config, env=env, database_url=database_url, create=False) as r:
        return r.verify(allow_out_of_order=allow_out_of_order)


def resolve(config: Config | None, version: str | int, *, applied: bool, env: str | None = None,
            database_url: str | DatabaseURL | None = None,
            lock_timeout: float | None = None) -> ResolveReport:
    """Record the outcome of a failed non-transactional migration once the database was fixed by
    hand: --applied (it is complete now) or --rolled-back (it was undone; up runs it again)."""
    with runner(config, env=env, database_url=database_url, lock_timeout=lock_timeout) as r:
        return r.resolve(version, applied=applied)


def baseline(config: Config | None, version: str | int, *, force: bool = False, dry_run: bool = False,
             env: str | None = None, database_url: str | DatabaseURL | None = None,
             lock_timeout: float | None = None) -> AdoptReport:
    """Adopt a database built without seedkit (by psql, a dump, another tool): record every migration
    up to VERSION as applied without running it, with the checksums of the files as they are now.
    Later migrations stay pending for up.

    Refused (exit 4) when the database already has a seedkit history, unless --force, which replaces
    the recorded rows up to VERSION."""
    with runner(config, env=env, database_url=database_url, lock_timeout=lock_timeout, create=False) as r:
        from . import adopt as _adopt

        return _adopt.baseline(r, version, force=force, dry_run=dry_run)


def import_history(config: Config | None, tool: str, *, table: str | None = None, force: bool = False,
                   dry_run: bool = False, env: str | None = None, database_url: str | DatabaseURL | None = None,
                   lock_timeout: float | None = None) -> AdoptReport:
    """Adopt a database another runner migrated: read that tool's history table (dbmate,
    golang-migrate, diesel or flyway) and record the same migrations as applied in seedkit's history,
    without running them.

    Refuses (exit 3, nothing written) when the files and the tool's history disagree, listing every
    difference; refuses (exit 4) a database that already has a seedkit history, unless --force."""
    with runner(config, env=env, database_url=database_url, lock_timeout=lock_timeout, create=False) as r:
        from . import adopt as _adopt

        return _adopt.import_history(r, tool, table=table, force=force, dry_run=dry_run)


def __getattr__(name: str) -> Any:
    """``AdoptReport``, from the module that adopts databases (loaded when first asked for: ``up`` never is)."""
    if name == "AdoptReport":
        from .adopt import AdoptReport

        return AdoptReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AdoptReport", "Migration", "MigrationRun", "Problem", "ResolveReport", "RunReport", "Runner", "Section",
           "StatusEntry", "StatusReport", "VerifyReport", "Wait", "Watcher", "baseline", "discover", "down",
           "import_history", "load_paths",
           "new", "resolve", "runner", "status", "up", "verify"]
