"""Creating a project's PostgreSQL role and databases on a server the user already runs (no Docker).

``create_role_and_databases`` reads the role, its password and the database names from the project's
configured URLs (seedkit.toml and ``.env``) and creates what is missing through a superuser
connection the user names. It never changes a password or an owner that is already there, and
finally connects the way the project will (as the role, with its password) to prove the URLs work.

``privilege_hint`` turns PostgreSQL's bare "permission denied" messages into a sentence that names the
privilege that is missing.
"""

from __future__ import annotations

import re
from dataclasses import field

from .._record import dataclass
from ..config import Config
from ..errors import ConfigError, DatabaseError, SeedkitError, UsageError
from ..urls import DatabaseURL, conninfo_params, parse_url
from . import connect

# SQLSTATE 42501 (insufficient_privilege) messages → the privilege that is missing.
_PRIVILEGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"permission denied to create database"),
     "the role needs the CREATEDB privilege: as a superuser, `ALTER ROLE {role} CREATEDB;` "
     "(or create the databases with `seedkit db create --superuser URL`)"),
    (re.compile(r"permission denied to create role"),
     "the role needs the CREATEROLE privilege (or SUPERUSER): as a superuser, `ALTER ROLE {role} CREATEROLE;`"),
    (re.compile(r"permission denied to (drop|alter) role"),
     "the role needs the CREATEROLE privilege (and ADMIN OPTION on the role it changes)"),
    (re.compile(r"permission denied for schema (\S+)"),
     "the role needs the CREATE privilege on schema {1}: `GRANT CREATE ON SCHEMA {1} TO {role};` "
     "(PostgreSQL 15 and later no longer grant it on public to everyone), or make it own the database"),
    (re.compile(r"permission denied for database (\S+)"),
     "the role needs the CREATE (or CONNECT) privilege on database {1}: `GRANT CREATE ON DATABASE {1} TO {role};`"),
    (re.compile(r"permission denied for (?:table|relation) (\S+)"),
     "the role needs SELECT, INSERT, UPDATE and DELETE on table {1}: `GRANT SELECT, INSERT, UPDATE, DELETE "
     "ON {1} TO {role};`"),
    (re.compile(r"permission denied for sequence (\S+)"),
     "the role needs USAGE and UPDATE on sequence {1}: `GRANT USAGE, UPDATE ON SEQUENCE {1} TO {role};`"),
    (re.compile(r"must be owner of (\w+) (\S+)"),
     "only the owner of {1} {2} (or a superuser) may do this: run as that role, or `ALTER {1} {2} OWNER TO {role};`"),
    (re.compile(r"must be superuser"),
     "this needs the SUPERUSER attribute: run it as a superuser"),
]


def privilege_hint(message: str, role: str | None = None) -> str | None:
    """A hint naming the missing privilege for a PostgreSQL permission error, or None."""
    for pattern, template in _PRIVILEGES:
        m = pattern.search(message)
        if m:
            groups = [m[0], *(g.strip('"') for g in m.groups())]
            return template.format(*groups, role=role or "<role>")
    return None


@dataclass
class ProvisionReport:
    server: str  # masked superuser URL
    created_roles: list[str] = field(default_factory=list)
    existing_roles: list[str] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)  # "role: CREATEDB"
    created_databases: list[str] = field(default_factory=list)
    existing_databases: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # masked project URLs that connected

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _role_of(url: DatabaseURL) -> tuple[str, str | None]:
    params = conninfo_params(url.raw)  # as libpq reads it (any URL form, or key=value)
    if not params.get("user"):
        raise ConfigError(f"{url} names no user: `seedkit db create` creates the role the URL names",
                          hint="put the user (and its password) in the URL, e.g. postgresql://app:secret@host/app")
    return params["user"], params.get("password")


def project_urls(config: Config, envs: list[str] | None = None) -> list[tuple[str, DatabaseURL]]:
    """The PostgreSQL URLs the project uses: the default one and every unprotected environment's
    (``envs`` narrows it), skipping environments whose variables are not set."""
    names = envs if envs else [n for n, e in config.settings.envs.items() if not e.protected]
    found: list[tuple[str, DatabaseURL]] = []
    for name in names:
        settings = config.env(name)  # an unknown name is a ConfigError with a did-you-mean
        if settings.protected:
            raise UsageError(f"environment {name!r} is protected: `seedkit db create` is for local databases")
        try:
            url = config.database_url(name)
        except ConfigError:
            if envs:
                raise
            continue
        if url.dialect == "postgresql" and all(url.raw != u.raw for _, u in found):
            found.append((name, url))
    return found


def create_role_and_databases(config: Config, superuser_url: str, envs: list[str] | None = None,
                              *, wait: float = 5.0) -> ProvisionReport:
    """Create the role(s) and databases the project's URLs name, through ``superuser_url``."""
    from psycopg import sql

    targets = project_urls(config, envs)
    if not targets:
        raise ConfigError("no PostgreSQL database is configured here: nothing to create",
                          hint="SQLite needs no server; otherwise set DATABASE_URL in .env")
    admin_url = parse_url(superuser_url, source="--superuser")
    if admin_url.dialect != "postgresql":
        raise UsageError(f"--superuser must be a postgresql:// URL, got {admin_url}")
    report = ProvisionReport(server=str(admin_url))
    roles: dict[str, str | None] = {}
    for _, url in targets:
        role, password = _role_of(url)
        roles.setdefault(role, password)

    with connect(admin_url, wait=wait) as admin:
        admin_role = admin.fetchone("SELECT current_user")[0]

        def run(statement: sql.Composable, what: str) -> None:
            try:
                admin.execute(statement)
            except DatabaseError as exc:
                if exc.sqlstate == "42501":
                    hint = privilege_hint(exc.message, admin_role)
                    raise DatabaseError(f"cannot {what} as {admin_role!r}: {exc.message}", sqlstate=exc.sqlstate,
                                        hint=f"the --superuser connection lacks a privilege; {hint}") from None
                raise DatabaseError(f"cannot {what}: {exc.message}", sqlstate=exc.sqlstate, hint=exc.hint) from None

        for role, password in roles.items():
            row = admin.fetchone("SELECT rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = %s", [role])
            if row is None:
                stmt = sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role))
                if password is not None:
                    stmt = sql.SQL("{} PASSWORD {}").format(stmt, sql.Literal(password))
                run(stmt, f"create role {role!r}")
                report.created_roles.append(role)
                continue
            report.existing_roles.append(role)
            createdb, canlogin = row
            # The pytest plugin and `seedkit reset` create databases: the role needs CREATEDB and LOGIN.
            # Its password is left alone: someone may use it already.
            missing = [p for p, has in (("LOGIN", canlogin), ("CREATEDB", createdb)) if not has]
            if missing:
                run(sql.SQL("ALTER ROLE {} " + " ".join(missing)).format(sql.Identifier(role)),
                    f"grant {', '.join(missing)} to role {role!r}")
                report.granted += [f"{role}: {p}" for p in missing]

        for _, url in targets:
            name = url.database or ""
            role, _ = _role_of(url)
            if admin.fetchone("SELECT 1 FROM pg_database WHERE datname = %s", [name]):
                report.existing_databases.append(name)
                continue
            run(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)),
                f"create database {name!r}")
            report.created_databases.append(name)

    # Prove it the way the project will connect: as the role, with the password from .env.
    for env, url in targets:
        try:
            with connect(url, wait=wait) as conn:
                conn.fetchone("SELECT 1")
        except SeedkitError as exc:
            raise DatabaseError(
                f"created, but the {env} environment's URL does not connect: {exc}",
                hint="is DATABASE_URL's host and port the server --superuser points at? A role that "
                     "already existed keeps its own password: `ALTER ROLE … PASSWORD …` to match .env") from None
        report.checked.append(str(url))
    return report
