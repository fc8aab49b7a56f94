"""``seedkit reset ENV``: start over with a fresh database, the way teams do in development.

Drop the environment's database and create it empty (PostgreSQL: on a maintenance connection to the
same server; SQLite: a new file), migrate it to head, seed ENV. There is deliberately no override for
protected environments, nor for a database that a protected environment has seeded: ``--yes`` makes
``seedkit run`` write to production, but nothing makes ``reset`` drop it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import db, migrate, seed
from .config import Config, load_config
from .db.admin import create_database, database_exists, drop_check, drop_database
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
    if config.env(env).protected:
        raise RefusedError(f"refusing to reset the protected environment {env!r}: reset drops the database",
                           hint="there is no override; migrate with 'seedkit migrate up' and seed with "
                                f"'seedkit run {env} --yes' instead")
    url = config.database_url(env, database_url)
    _refuse_unsafe_target(url, config)
    if url.dialect == "postgresql":
        _preflight(url, force=force)
    _recreate(url, force=force)
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


def _preflight(url: DatabaseURL, *, force: bool) -> None:
    """Refuse (exit 4) before anything is dropped when the reset could not finish: a database this
    role cannot drop or create again, or other sessions it was not told to end (or cannot end)."""
    check = drop_check(url)
    name = url.database
    if not (check.superuser or check.createdb):
        what = f"after dropping {name!r} it could not create it again" if check.exists \
            else f"it could not create {name!r}"
        raise RefusedError(f"refusing to reset {url}: role {check.role!r} lacks the CREATEDB privilege, so "
                           f"{what}; nothing was dropped",
                           hint=f"as a superuser: ALTER ROLE {_ident(check.role)} CREATEDB; or recreate the "
                                "database by hand and run 'seedkit migrate up' and 'seedkit run'")
    if check.exists and not check.can_drop:
        raise RefusedError(f"refusing to reset {url}: role {check.role!r} does not own database {name!r} (its "
                           f"owner is {check.owner!r}) and is not a superuser, so it lacks the privilege to "
                           "drop it (ownership); nothing was dropped",
                           hint=f"as a superuser or {check.owner!r}: ALTER DATABASE {_ident(name or '')} OWNER TO "
                                f"{_ident(check.role)}")
    deadline = time.monotonic() + 1.0
    while check.sessions and time.monotonic() < deadline:  # a session just closed may linger a moment
        time.sleep(0.1)
        check = drop_check(url)
    if not check.sessions:
        return
    listing = "\n".join(f"  {s}" for s in check.sessions)
    count = len(check.sessions)
    others = f"{count} other session{'s are' if count != 1 else ' is'} connected to {name!r}"
    if not force:
        raise RefusedError(f"refusing to reset {url}: {others}; nothing was dropped:\n{listing}",
                           hint="close them (e.g. a psql or an app left running), or pass --force to end them")
    stuck = [s for s in check.sessions if not s.can_terminate]
    if stuck:
        why = ("only a superuser can end a superuser's session" if any(s.superuser for s in stuck)
               else f"role {check.role!r} may only end sessions of roles it is a member of "
                    "(or with pg_signal_backend)")
        lines = "\n".join(f"  {s}" for s in stuck)
        raise RefusedError(f"refusing to reset {url}: --force cannot end {len(stuck)} of the {others.split(' ', 1)[1]}"
                           f" ({why}); nothing was dropped:\n{lines}",
                           hint="ask whoever holds them to disconnect, or run the reset as a role that may end "
                                "them")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _recreate(url: DatabaseURL, *, force: bool = True) -> None:
    drop_database(url, missing_ok=True, force=force)
    if url.dialect == "sqlite":
        assert url.path is not None
        url.path.parent.mkdir(parents=True, exist_ok=True)
    create_database(url)


__all__ = ["ResetReport", "reset"]
