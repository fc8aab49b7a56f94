"""The one safety policy: protected environments, the stamp a protected run leaves, server databases.

``seedkit run`` stamps every database it seeds (``seedkit_meta``: the last environment, and the
protected environment that seeded it, if any). Whatever would write to, roll back or drop a database
asks here first:

- ``run`` refuses a protected environment, and a database another protected environment stamped,
  unless ``--yes``;
- ``migrate down`` refuses a protected environment and a stamped database (no override);
- ``reset`` refuses a protected environment, a stamped database and a server's own databases (no
  override: nothing makes ``reset`` drop production);
- the pytest plugin refuses a protected environment, and creating test databases next to a stamped one.
"""

from __future__ import annotations

from . import db
from .config import Config
from .errors import RefusedError
from .urls import DatabaseURL

# Databases a server needs for itself: never dropped, nor used to name test databases after.
SERVER_DATABASES = frozenset({"postgres", "template0", "template1"})

META = "seedkit_meta"  # the stamp's table: key → value


# -- protected environments ---------------------------------------------------------------------------

def refuse_protected_run(config: Config, env: str, *, yes: bool) -> None:
    """``seedkit run`` of a protected environment needs ``--yes``."""
    if config.env(env).protected and not yes:
        raise RefusedError(f"environment {env!r} is protected", hint="add --yes if you mean it")


def refuse_protected_rollback(config: Config, env: str | None) -> None:
    """``migrate down`` never runs on a protected environment: roll forward there."""
    if env is not None and config.env(env).protected:
        raise RefusedError(f"refusing to roll back the protected environment {env!r}",
                           hint="write a new migration that undoes the change and apply it with "
                                "'seedkit migrate up'")


def refuse_protected_reset(config: Config, env: str) -> None:
    """``reset`` drops the database: never on a protected environment, with no override."""
    if config.env(env).protected:
        raise RefusedError(f"refusing to reset the protected environment {env!r}: reset drops the database",
                           hint="there is no override; migrate with 'seedkit migrate up' and seed with "
                                f"'seedkit run {env} --yes' instead")


def refuse_protected_tests(config: Config, env: str) -> None:
    """The pytest plugin never seeds a protected environment."""
    if config.env(env).protected:
        raise RefusedError(f"environment {env!r} is protected: the pytest plugin never seeds it",
                           hint="use a test environment, e.g. --seedkit-env test")


# -- server databases ---------------------------------------------------------------------------------

def is_server_database(url: DatabaseURL) -> bool:
    """A database the server needs for itself (``postgres``, ``template0``, ``template1``)."""
    return url.database is not None and url.database in SERVER_DATABASES


def refuse_server_database(url: DatabaseURL) -> None:
    """Never drop a server's own database, whatever the configuration says."""
    if is_server_database(url):
        raise RefusedError(f"refusing to drop {url.database!r}: the server needs it",
                           hint="give the environment a database of its own")


# -- stamps -------------------------------------------------------------------------------------------

def _meta(d: db.Database, key: str) -> str | None:
    row = d.fetchone(f"SELECT value FROM {d.quote(META)} WHERE key = {d.placeholder}", [key])
    return row[0] if row else None


def ensure_meta(d: db.Database) -> None:
    """Create the stamp's table (only when missing: a role without CREATE can still seed)."""
    d.execute(f"CREATE TABLE IF NOT EXISTS {d.quote(META)} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def database_stamp(d: db.Database) -> str | None:
    """The protected environment that seeded this database, if any."""
    if META not in {t.name for t in d.catalog(refresh=True).tables}:
        return None
    return _meta(d, "protected_env")


def stamped_by(url: DatabaseURL, config: Config) -> str | None:
    """The protected environment that seeded the database ``url`` names (None: none, or no database)."""
    from .db.admin import database_exists

    if not database_exists(url):
        return None
    with db.connect(url, wait=config.settings.database.connect_timeout) as conn:
        return database_stamp(conn)


def refuse_other_environment(d: db.Database, env: str, *, yes: bool, meta_exists: bool) -> None:
    """``seedkit run`` of ``env`` on a database another protected environment seeded needs ``--yes``."""
    if not meta_exists:
        return
    owner = _meta(d, "protected_env")
    if owner and owner != env and not yes:
        raise RefusedError(f"this database was seeded by the protected environment {owner!r}; refusing to run "
                           f"{env!r} fixtures on it", hint="pass --yes if this really is the right database")


def refuse_stamped_rollback(d: db.Database) -> None:
    """``migrate down`` never rolls back a database a protected environment seeded."""
    owner = database_stamp(d)
    if owner is not None:
        raise RefusedError(f"refusing to roll back: this database was seeded by the protected environment "
                           f"{owner!r}", hint="write a new migration that undoes the change and apply it with "
                                              "'seedkit migrate up'")


def refuse_stamped_reset(url: DatabaseURL, config: Config) -> None:
    """``reset`` never drops a database a protected environment seeded."""
    owner = stamped_by(url, config)
    if owner:
        raise RefusedError(f"refusing to reset {url}: it was seeded by the protected environment {owner!r}",
                           hint="check the environment's database URL; there is no override")


def refuse_stamped_neighbour(url: DatabaseURL | None, config: Config) -> None:
    """The pytest plugin creates no test databases next to a database a protected environment seeded
    (that server or folder is production's, whatever the test configuration says)."""
    if url is None:
        return
    owner = stamped_by(url, config)
    if owner:
        raise RefusedError(f"{url} was seeded by the protected environment {owner!r}: refusing to "
                           "create test databases next to it",
                           hint="point --seedkit-database-url (or the environment's database_url) at a "
                                "test server or folder")


def stamp(d: db.Database, env: str, *, protected: bool) -> None:
    """Record that ``env`` seeded this database (and, for a protected environment, that it owns it)."""
    ph = d.placeholder
    wanted = {"last_env": env}
    if protected:
        wanted["protected_env"] = env
    for key, value in wanted.items():
        current = _meta(d, key)
        if current == value:
            continue  # an unchanged run writes nothing
        if current is None:
            d.execute(f"INSERT INTO {d.quote(META)} (key, value) VALUES ({ph}, {ph})", [key, value])
        else:
            d.execute(f"UPDATE {d.quote(META)} SET value = {ph} WHERE key = {ph}", [value, key])
