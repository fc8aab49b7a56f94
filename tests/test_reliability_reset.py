"""``seedkit reset`` never leaves you without a database: privileges are checked before anything is
dropped (exit 4 naming the missing one), other sessions are listed and refused unless ``--force``, and a
session ``--force`` cannot end is reported before anything is dropped. Real roles on a real server."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from seedkit.cli import app
from seedkit.urls import parse_url

pytestmark = pytest.mark.postgres


class Server:
    def __init__(self, url: str):
        self.url = url
        self.roles: list[str] = []
        self.databases: list[str] = []

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def role(self, *options: str) -> str:
        name = f"r_{uuid.uuid4().hex[:10]}"
        with self.admin() as c:
            c.execute(sql.SQL("CREATE ROLE {} LOGIN " + " ".join(options)).format(sql.Identifier(name)))
        self.roles.append(name)
        return name

    def database(self, owner: str | None = None) -> str:
        name = f"d_{uuid.uuid4().hex[:10]}"
        with self.admin() as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)) + (
                sql.SQL(" OWNER {}").format(sql.Identifier(owner)) if owner else sql.SQL("")))
        self.databases.append(name)
        with psycopg.connect(self.url_for("postgres", name), autocommit=True) as c:
            c.execute("CREATE TABLE precious (id int PRIMARY KEY); INSERT INTO precious VALUES (42)")
            if owner:
                c.execute(sql.SQL("ALTER TABLE precious OWNER TO {}").format(sql.Identifier(owner)))
        return name

    def url_for(self, role: str, database: str) -> str:
        base = parse_url(self.url)
        return base.with_database(database).raw.replace("postgres@", f"{role}@", 1)

    def still_there(self, database: str) -> bool:
        try:
            with psycopg.connect(self.url_for("postgres", database)) as c:
                return c.execute("SELECT id FROM precious").fetchall() == [(42,)]
        except psycopg.Error:
            return False

    def cleanup(self) -> None:
        with self.admin() as c:
            for name in self.databases:
                c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for name in self.roles:
                c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def server(pg_server: str) -> Iterator[Server]:
    s = Server(pg_server)
    yield s
    s.cleanup()


def project(tmp_path: Path, url: str) -> Path:
    (tmp_path / "seedkit.toml").write_text(textwrap.dedent(f"""
        [database]
        url = "{url}"

        [envs.dev]
        include = ["common"]
    """), encoding="utf-8")
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "1_roles.sql").write_text(
        "-- migrate:up\nCREATE TABLE roles (id int PRIMARY KEY, name text NOT NULL);\n", encoding="utf-8")
    (tmp_path / "seeds" / "common").mkdir(parents=True)
    (tmp_path / "seeds" / "common" / "roles.yaml").write_text("rows:\n  - {id: 1, name: admin}\n",
                                                               encoding="utf-8")
    return tmp_path


def reset(root: Path, *args: str):
    return CliRunner().invoke(app, ["--config", str(root / "seedkit.toml"), "reset", "dev", *args])


def assert_refused(result, *needles: str) -> None:
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("error: refusing to reset "), result.stderr
    assert "nothing was dropped" in result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def test_an_owner_without_createdb_is_refused_before_the_drop(server: Server, tmp_path: Path) -> None:
    role = server.role("NOCREATEDB")
    database = server.database(owner=role)
    result = reset(project(tmp_path, server.url_for(role, database)))
    assert_refused(result, f"role '{role}' lacks the CREATEDB privilege",
                   f"after dropping '{database}' it could not create it again")
    assert f"ALTER ROLE \"{role}\" CREATEDB" in result.stderr
    assert server.still_there(database)


def test_a_missing_database_and_no_createdb_is_refused(server: Server, tmp_path: Path) -> None:
    role = server.role("NOCREATEDB")
    result = reset(project(tmp_path, server.url_for(role, f"d_missing_{uuid.uuid4().hex[:6]}")))
    assert_refused(result, "lacks the CREATEDB privilege", "it could not create")


def test_a_role_that_does_not_own_the_database_is_refused(server: Server, tmp_path: Path) -> None:
    role = server.role("CREATEDB")
    database = server.database()  # owned by the superuser
    result = reset(project(tmp_path, server.url_for(role, database)))
    assert_refused(result, f"role '{role}' does not own database '{database}'", "its owner is 'postgres'",
                   "ownership")
    assert server.still_there(database)


def test_other_sessions_are_listed_and_refused_then_ended_with_force(server: Server, tmp_path: Path) -> None:
    role = server.role("CREATEDB")
    database = server.database(owner=role)
    root = project(tmp_path, server.url_for(role, database))
    left_open = psycopg.connect(server.url_for(role, database), autocommit=True, application_name="psql")
    try:
        pid = left_open.info.backend_pid
        refused = reset(root)
        assert_refused(refused, "1 other session is connected", f"pid {pid}", f"user {role}",
                       "application 'psql'", "since ", "--force")
        assert server.still_there(database)
        assert left_open.execute("SELECT 1").fetchone() == (1,)  # untouched

        forced = reset(root, "--force")
        assert forced.exit_code == 0, forced.output
        assert "recreated" in forced.stdout
        with pytest.raises(psycopg.OperationalError):
            left_open.execute("SELECT 1")
    finally:
        left_open.close()
    assert not server.still_there(database)  # a new database: migrated and seeded, the old rows gone
    with psycopg.connect(server.url_for(role, database)) as c:
        assert c.execute("SELECT id, name FROM roles").fetchall() == [(1, "admin")]


def test_force_cannot_end_a_superusers_session_and_says_so_before_dropping(server: Server,
                                                                           tmp_path: Path) -> None:
    role = server.role("CREATEDB")
    database = server.database(owner=role)
    root = project(tmp_path, server.url_for(role, database))
    with psycopg.connect(server.url_for("postgres", database), autocommit=True,
                         application_name="dba console") as superuser_session:
        result = reset(root, "--force")
        assert_refused(result, "--force cannot end 1 of the", "only a superuser can end a superuser's session",
                       f"pid {superuser_session.info.backend_pid}", "(superuser)")
        assert superuser_session.execute("SELECT 1").fetchone() == (1,)
    assert server.still_there(database)


def test_a_role_with_the_privileges_resets_cleanly(server: Server, tmp_path: Path) -> None:
    role = server.role("CREATEDB")
    database = server.database(owner=role)
    result = reset(project(tmp_path, server.url_for(role, database)))
    assert result.exit_code == 0, result.output
    assert not server.still_there(database)
    with psycopg.connect(server.url_for(role, database)) as c:
        assert c.execute("SELECT name FROM roles").fetchall() == [("admin",)]
