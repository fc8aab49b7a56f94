"""Recreating a database from scratch (``seedkit.reset``, behind ``seedkit reset ENV``): drop the
environment's database, create it empty (through its adapter: a server's maintenance connection, or a
new file), migrate it to head and seed ENV, the way teams start over in development.

There is deliberately no override for protected environments, nor for a database that a protected
environment has seeded: ``--yes`` makes ``seedkit run`` write to production, but nothing makes
``reset`` drop it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._record import dataclass
from ._safety import refuse_protected_reset, refuse_server_database, refuse_stamped_reset
from .config import Config, load_config
from .db import adapter
from .db.admin import check_resettable, create_database, drop_database
from .errors import UsageError
from .migrate import up as migrate_up
from .migrate.reports import MigrationRun, RunReport
from .urls import DatabaseURL

if TYPE_CHECKING:  # pragma: no cover
    from .seed.report import Report


@dataclass
class ResetReport:
    """What a reset did: the database it recreated, then the migration and seed reports."""

    env: str
    database: str  # masked URL
    migrations: RunReport
    seeds: Report

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "database": self.database, "migrations": self.migrations.to_dict(),
                "seeds": self.seeds.to_dict()}


def reset(env: str, *, config: Config | str | os.PathLike[str] | None = None, database_url: str | None = None,
          force: bool = False, migration_progress: Callable[[MigrationRun], None] | None = None,
          seed_progress: Callable[[str, int, int | None], None] | None = None) -> ResetReport:
    """Drop and recreate ENV's database, migrate it to head and seed ENV.

    Refused (exit 4) for protected environments and for databases seeded by one; there is no --yes.
    Before anything is dropped, PostgreSQL checks that this role can drop the database (its owner or
    a superuser) and create it again (CREATEDB or superuser), and lists other sessions connected to
    it: reset refuses while there are any, unless --force, which ends them (and refuses first when
    one of them is a session this role may not end)."""
    if not isinstance(config, Config):
        config = load_config(config)
    refuse_protected_reset(config, env)
    url = config.database_url(env, database_url)
    _refuse_unsafe_target(url, config)
    check_resettable(url, force=force)
    _recreate(url, force=force)
    migrations = migrate_up(config, env=env, database_url=url.raw, progress=migration_progress)
    from .seed import run as seed_run  # the seed engine: loaded when a reset runs, not by --help

    seeds = seed_run(env, config=config, database_url=url.raw, progress=seed_progress)
    return ResetReport(env=env, database=str(url), migrations=migrations, seeds=seeds)


def _refuse_unsafe_target(url: DatabaseURL, config: Config) -> None:
    """Refuse before anything is dropped: server databases, in-memory SQLite, protected stamps."""
    file_based = adapter(url).file_based
    if file_based and url.path is None:
        raise UsageError("cannot reset an in-memory SQLite database: there is nothing to drop",
                         hint="point the environment at a file, e.g. sqlite:///dev.db")
    if not file_based and not url.database:
        raise UsageError(f"the database URL {url} names no database", hint="add /DBNAME to the URL")
    refuse_server_database(url)
    refuse_stamped_reset(url, config)


def _recreate(url: DatabaseURL, *, force: bool = True) -> None:
    drop_database(url, missing_ok=True, force=force)
    create_database(url)  # a file's folder is created too


__all__ = ["ResetReport", "reset"]
