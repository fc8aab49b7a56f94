"""PostgreSQL helpers of the suite: throwaway databases on the test server, the server as a local one
(socket folders, password roles), and watching seedkit's sessions on a database."""

from __future__ import annotations

import time
import uuid

import psycopg
from psycopg import sql

from tests.support.processes import wait_for


def with_db(server_url: str, name: str) -> str:
    """``server_url`` pointing at database ``name``."""
    from seedkit.urls import parse_url

    return parse_url(server_url).with_database(name).raw


def create_pg_database(server_url: str, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_db(server_url, name)


def drop_pg_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class LocalServer:
    """How the suite's server is reached without a URL host: its Unix socket folders and port, and
    the group role whose members must give a password (pg_hba.conf, see pgcluster.py)."""

    PASSWORD_GROUP = "seedkit_password"

    def __init__(self, url: str, socket_dirs: list[str], port: int, passwords: bool):
        self.url = url
        self.socket_dirs = socket_dirs  # the folders holding this server's socket, reachable from here
        self.socket_dir = socket_dirs[0]
        self.port = port
        self.passwords = passwords  # whether members of PASSWORD_GROUP really need their password
        self.default_socket = "/var/run/postgresql" in socket_dirs  # libpq's compiled-in folder

    def create_role(self, name: str, *, password: str | None = None, options: str = "LOGIN") -> None:
        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)))
            if password is not None:
                c.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
                c.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(self.PASSWORD_GROUP), sql.Identifier(name)))

    def drop_role(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as c:
            for (db,) in c.execute("SELECT datname FROM pg_database WHERE datallowconn").fetchall():
                with psycopg.connect(with_db(self.url, db), autocommit=True) as d:
                    d.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


# -- seedkit's sessions on a database ----------------------------------------------------------------
def pg_database(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def backends(url: str, application_like: str = "seedkit%") -> list[tuple]:
    """(pid, application_name, state, wait_event, query) of seedkit's sessions on the URL's database."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT pid, application_name, state, wait_event, query FROM pg_stat_activity "
            "WHERE datname = %s AND application_name LIKE %s AND pid <> pg_backend_pid()",
            [pg_database(url), application_like]).fetchall()]


def advisory_locks(url: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT l.pid, l.classid, l.objid, l.granted FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = %s", [pg_database(url)]).fetchall()]


def wait_backends_gone(url: str, timeout: float, application_like: str = "seedkit%") -> float:
    """Wait until no seedkit session is left on the database; return how long that took."""
    started = time.monotonic()
    wait_for(lambda: not backends(url, application_like), timeout,
             f"the killed run's sessions to end (still there: {backends(url, application_like)})", 0.05)
    return time.monotonic() - started

