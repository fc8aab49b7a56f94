"""``seedkit reset ENV``: start over with a fresh database, the way teams do in development.

Drop the environment's database and create it empty (PostgreSQL: on a maintenance connection to the
same server; SQLite: a new file), migrate it to head, seed ENV. There is deliberately no override for
protected environments, nor for a database that a protected environment has seeded: ``--yes`` makes
``seedkit run`` write to production, but nothing makes ``reset`` drop it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import db, migrate, seed
from .config import Config, load_config
from .db.admin import create_database, database_exists, drop_database
from .errors import RefusedError, UsageError
from .migrate.runner import MigrationRun, RunReport
from .seed.report import Report
from .urls import DatabaseURL

# Databases a server needs for itself: never dropped, whatever the configuration says.
_SERVER_DATABASES = frozenset({"postgres", "template0", "template1"})


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
          migration_progress: Callable[[MigrationRun], None] | None = None,
          seed_progress: Callable[[str, int, int | None], None] | None = None) -> ResetReport:
    """Drop and recreate ENV's database, migrate it to head and seed ENV.

    Refused (exit 4) for protected environments and for databases seeded by one; there is no --yes."""
    if not isinstance(config, Config):
        config = load_config(config)
    if config.env(env).protected:
        raise RefusedError(f"refusing to reset the protected environment {env!r}: reset drops the database",
                           hint="there is no override; migrate with 'seedkit migrate up' and seed with "
                                f"'seedkit run {env} --yes' instead")
    url = config.database_url(env, database_url)
    _refuse_unsafe_target(url, config)
    _recreate(url)
    migrations = migrate.up(config, env=env, database_url=url.raw, progress=migration_progress)
    seeds = seed.run(env, config=config, database_url=url.raw, progress=seed_progress)
    return ResetReport(env=env, database=str(url), migrations=migrations, seeds=seeds)


def _refuse_unsafe_target(url: DatabaseURL, config: Config) -> None:
    """Refuse before anything is dropped: server databases, in-memory SQLite, protected stamps."""
    if url.dialect == "sqlite" and url.path is None:
        raise UsageError("cannot reset an in-memory SQLite database: there is nothing to drop",
                         hint="point the environment at a file, e.g. sqlite:///dev.db")
    if url.dialect == "postgresql":
        if not url.database:
            raise UsageError(f"the database URL {url} names no database", hint="add /DBNAME to the URL")
        if url.database in _SERVER_DATABASES:
            raise RefusedError(f"refusing to drop {url.database!r}: the server needs it",
                               hint="give the environment a database of its own")
    if not database_exists(url):
        return
    with db.connect(url, wait=config.settings.database.connect_timeout) as conn:
        owner = seed.database_stamp(conn)
    if owner:
        raise RefusedError(f"refusing to reset {url}: it was seeded by the protected environment {owner!r}",
                           hint="check the environment's database URL; there is no override")


def _recreate(url: DatabaseURL) -> None:
    drop_database(url, missing_ok=True)
    if url.dialect == "sqlite":
        assert url.path is not None
        url.path.parent.mkdir(parents=True, exist_ok=True)
    create_database(url)


__all__ = ["ResetReport", "reset"]
