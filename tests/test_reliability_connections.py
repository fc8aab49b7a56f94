"""Every connection string psql accepts really connects, through every command.

Each form below names the suite's own server in another way (its Unix socket with no host at all, a
socket folder in the query or percent-encoded as the host, a service in a ``pg_service.conf``, several
hosts, ``PG*`` variables filling what the URL leaves out, a password file, a libpq ``key=value``
string). For each, real ``seedkit`` processes run ``migrate up``, ``run`` and ``run --check``; the rows
must land in the database the form names, and the password (for forms that carry one, through a role
that pg_hba.conf makes give it) must appear in no output. ``reset`` and the pytest plugin get the
socket form too, since they derive other databases (maintenance, test copies) from the URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from seedkit.urls import parse_url
from tests.support import LocalServer, process_env, seedkit, with_db, write_files

FILES = {
    "seedkit.toml": """
        [database]
        url = "${APP_DATABASE_URL}"

        [envs.dev]
        include = ["common"]
    """,
    "migrations/001_init.sql": """
        -- migrate:up
        CREATE TABLE roles (id serial PRIMARY KEY, name text NOT NULL UNIQUE);

        -- migrate:down
        DROP TABLE roles;
    """,
    "seeds/common/roles.yaml": "key: [name]\nrows:\n  - {name: admin}\n  - {name: member}\n",
}


@dataclass
class Setup:
    local: LocalServer
    root: Path
    database: str  # a fresh database, owned by ``role``
    role: str  # a login role that must give its password
    password: str
    env: dict[str, str]  # a clean PG* environment for the seedkit processes

    @property
    def admin_url(self) -> str:
        return with_db(self.local.url, self.database)


PG_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE",
                "PGSERVICEFILE", "PGPASSFILE", "PGOPTIONS", "PGAPPNAME", "PGSYSCONFDIR", "PGCONNECT_TIMEOUT")


@pytest.fixture
def setup(pg_local: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    for var in PG_VARIABLES:  # the seedkit processes inherit this process's environment
        monkeypatch.delenv(var, raising=False)
    suffix = uuid.uuid4().hex[:10]
    database, role = f"urls_{suffix}", f"urls_role_{suffix}"
    # every character a URL has to percent-encode, and a quote JSON has to escape
    password = f"pw:{suffix}@/?#%&= '\"x"
    pg_local.create_role(role, password=password)
    with psycopg.connect(pg_local.url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role)))
    write_files(tmp_path, FILES)
    env = {"PGPASSFILE": str(tmp_path / "no-pgpass")}  # never the home folder's password file
    yield Setup(pg_local, tmp_path, database, role, password, env)
    with psycopg.connect(pg_local.url, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def socket_env(s: Setup, **extra: str) -> dict[str, str]:
    """PGPORT (and PGHOST unless the server listens in libpq's default socket folder)."""
    env = {**s.env, "PGPORT": str(s.local.port), **extra}
    if not s.local.default_socket:
        env["PGHOST"] = s.local.socket_dir
    return env


def pgpass_line(*fields: str) -> str:
    return ":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields) + "\n"


def run_all(s: Setup, url: str, env: dict[str, str]) -> str:
    """migrate up, run, run --check, info with ``url``: each succeeds; the rows are in the database."""
    env = {**env, "APP_DATABASE_URL": url}
    outputs = []
    for args in (["migrate", "up"], ["run", "dev", "--json"], ["run", "dev", "--check"], ["info"]):
        proc = seedkit(s.root, *args, env=env)
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, f"{args} with {url!r}: {proc.stdout}{proc.stderr}"
    report = json.loads(outputs[1])
    assert report["totals"]["inserted"] + report["totals"]["unchanged"] == 2, outputs[1]
    with psycopg.connect(s.admin_url) as c:
        assert c.execute("SELECT name FROM roles ORDER BY name").fetchall() == [("admin",), ("member",)]
    everything = "\n".join(outputs)
    for secret in (s.password, quote(s.password, safe=""), json.dumps(s.password)[1:-1]):
        assert secret not in everything
    return everything


def test_socket_url_without_host(setup: Setup) -> None:
    """``postgresql:///db``: the local socket, user and port from the environment (as psql)."""
    out = run_all(setup, f"postgresql:///{setup.database}", socket_env(setup, PGUSER="postgres"))
    assert f"postgresql:///{setup.database}" in out


def test_user_without_host(setup: Setup) -> None:
    run_all(setup, f"postgresql://postgres@/{setup.database}", socket_env(setup))


def test_socket_folder_in_the_query(setup: Setup) -> None:
    url = f"postgresql://postgres@/{setup.database}?host={setup.local.socket_dir}&port={setup.local.port}"
    run_all(setup, url, setup.env)


def test_percent_encoded_socket_host(setup: Setup) -> None:
    url = f"postgresql://postgres@{quote(setup.local.socket_dir, safe='')}:{setup.local.port}/{setup.database}"
    run_all(setup, url, setup.env)


def test_postgres_scheme_over_tcp(setup: Setup) -> None:
    run_all(setup, f"postgres://postgres@127.0.0.1:{setup.local.port}/{setup.database}", setup.env)


def test_several_hosts_first_unreachable(setup: Setup) -> None:
    """libpq tries the hosts in turn: a socket folder with no server, then the real server."""
    missing = setup.root / "no-server-here"
    missing.mkdir()
    url = (f"postgresql://postgres@{quote(str(missing), safe='')}:{setup.local.port},"
           f"127.0.0.1:{setup.local.port}/{setup.database}?connect_timeout=5")
    run_all(setup, url, setup.env)


def test_service_file(setup: Setup) -> None:
    service_file = setup.root / "pg_service.conf"
    service_file.write_text(f"[app]\nhost={setup.local.socket_dir}\nport={setup.local.port}\n"
                            f"user={setup.role}\ndbname={setup.database}\npassword={setup.password}\n")
    env = {**setup.env, "PGSERVICEFILE": str(service_file)}
    run_all(setup, "postgresql:///?service=app", env)
    assert parse_url("postgresql:///?service=app").database is not None  # resolved here only with the env
    # the keyword form and the service named by PGSERVICE alone
    run_all(setup, "service=app", env)
    run_all(setup, "postgresql://", {**env, "PGSERVICE": "app"})


def test_environment_fills_what_the_url_leaves_out(setup: Setup) -> None:
    """Host, port, user, password and database all from PG* variables; the password really checked."""
    env = {**setup.env, "PGHOST": "127.0.0.1", "PGPORT": str(setup.local.port), "PGUSER": setup.role,
           "PGPASSWORD": setup.password, "PGDATABASE": setup.database}
    run_all(setup, "postgresql://", env)
    # the password is required: a wrong one fails, and the failure prints neither
    wrong = seedkit(setup.root, "run", "dev", env={**env, "PGPASSWORD": "not-the-password",
                                                    "APP_DATABASE_URL": "postgresql://"})
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "password authentication failed" in wrong.stderr
    assert "not-the-password" not in wrong.stdout + wrong.stderr


def test_password_file(setup: Setup) -> None:
    passfile = setup.root / "pgpass"
    passfile.write_text(pgpass_line("127.0.0.1", str(setup.local.port), "*", setup.role, setup.password)
                        + pgpass_line(setup.local.socket_dir, "*", "*", setup.role, setup.password))
    passfile.chmod(0o600)
    env = {**setup.env, "PGPASSFILE": str(passfile)}
    run_all(setup, f"postgresql://{setup.role}@127.0.0.1:{setup.local.port}/{setup.database}", env)
    run_all(setup, f"postgresql://{quote(setup.role)}@/{setup.database}?host={setup.local.socket_dir}"
                   f"&port={setup.local.port}", env)


def test_keyword_string(setup: Setup) -> None:
    conninfo = (f"host={setup.local.socket_dir} port={setup.local.port} user={setup.role} "
                f"dbname={setup.database} password='{setup.password.replace(chr(39), chr(92) + chr(39))}'")
    run_all(setup, conninfo, setup.env)


def test_percent_encoded_password(setup: Setup) -> None:
    url = f"postgresql://{setup.role}:{quote(setup.password, safe='')}@127.0.0.1:{setup.local.port}/{setup.database}"
    run_all(setup, url, setup.env)


def test_unencoded_colon_in_password_connects(setup: Setup, pg_local: LocalServer) -> None:
    """libpq splits user and password at the first ':', so a ':' in the password needs no encoding."""
    password = f"a:b:{uuid.uuid4().hex[:8]}:c"
    with psycopg.connect(pg_local.url, autocommit=True) as c:
        c.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(setup.role), sql.Literal(password)))
    setup.password = password
    run_all(setup, f"postgresql://{setup.role}:{password}@127.0.0.1:{setup.local.port}/{setup.database}", setup.env)


@pytest.mark.parametrize("shape", ["{a}@{b}", "{a}/{b}", "{a}@{b}/{c}", "{a}/{b}@{c}", "{a}/{b}?{c}",
                                   "{a}@{b}?{c}@{d}", "{a}%zz{b}", "{a}:{b}@{c}", "{n}/{b}?{c}",
                                   "{n}/{b}@{c}"])
def test_unencoded_special_characters_are_refused_without_printing_them(tmp_path: Path, pg_local: LocalServer,
                                                                        shape: str) -> None:
    """libpq would read another password and take the rest for a host, port or database (quoting it in
    its errors): refused up front, exit 2, with the encoding to use, and no piece of the password shown."""
    write_files(tmp_path, FILES)
    pieces = {k: uuid.uuid4().hex[:8] for k in "abcd"}
    pieces["n"] = str(uuid.uuid4().int)[:8]  # digits: the part before a "/" could pass for a port
    password = shape.format(**pieces)
    url = f"postgresql://someone:{password}@127.0.0.1:{pg_local.port}/postgres"
    for args in (["--debug", "run", "dev"], ["migrate", "up"]):
        proc = seedkit(tmp_path, *args, env={"APP_DATABASE_URL": url})
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, f"{args}: {out}"
        assert "%40" in out and "%2F" in out, out
        if "--debug" not in args:
            assert "Traceback" not in out
        for piece in [password, *(p for k, p in pieces.items() if "{" + k + "}" in shape)]:
            assert piece not in out, f"{piece!r} of {password!r} printed: {out}"


def test_reset_over_the_socket(setup: Setup) -> None:
    """reset drops and recreates the database through a maintenance connection derived from the URL."""
    env = socket_env(setup, PGUSER="postgres", APP_DATABASE_URL=f"postgresql:///{setup.database}")
    with psycopg.connect(setup.admin_url, autocommit=True) as c:
        c.execute("CREATE TABLE leftover (x int)")
    proc = seedkit(setup.root, "reset", "dev", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with psycopg.connect(setup.admin_url) as c:
        assert c.execute("SELECT to_regclass('leftover') IS NULL, count(*) FROM roles").fetchone() == (True, 2)


def test_pytest_plugin_over_the_socket(setup: Setup) -> None:
    """The plugin creates, seeds and drops its test databases through the socket URL."""
    (setup.root / "test_inner.py").write_text(textwrap.dedent("""
        def test_seeded(seedkit_conn, seedkit_db_url):
            assert seedkit_db_url.startswith("postgresql://")
            names = [r[0] for r in seedkit_conn.execute("SELECT name FROM roles ORDER BY name")]
            assert names == ["admin", "member"]
            user, = seedkit_conn.execute("SELECT current_user").fetchone()
            assert user == "postgres"
    """))
    env = socket_env(setup, PGUSER="postgres", APP_DATABASE_URL=f"postgresql:///{setup.database}")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--seedkit-env", "dev",
                           "test_inner.py"], cwd=setup.root, env=process_env(env), capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    with psycopg.connect(setup.local.url) as c:
        left = c.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                         [setup.database + "%"]).fetchall()
    assert left == [(setup.database,)]  # the test databases are gone, the project's own is untouched


def test_effective_database_follows_libpq(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database seedkit would drop or copy is the one libpq connects to."""
    for var in ("PGDATABASE", "PGUSER", "PGSERVICE"):
        monkeypatch.delenv(var, raising=False)
    service_file = setup.root / "pg_service.conf"
    service_file.write_text("[app]\ndbname=from_service\nuser=svc_user\n")
    monkeypatch.setenv("PGSERVICEFILE", str(service_file))
    assert parse_url("postgresql:///?service=app").database == "from_service"
    assert parse_url("postgresql:///named?service=app").database == "named"
    assert parse_url("postgresql://?service=app&dbname=q").database == "q"
    monkeypatch.setenv("PGDATABASE", "from_env")
    assert parse_url("postgresql://h").database == "from_env"
    assert parse_url("postgresql:///?service=app").database == "from_service"  # the service wins over PG*
    monkeypatch.delenv("PGDATABASE")
    monkeypatch.setenv("PGUSER", "someone")
    assert parse_url("postgresql://h").database == "someone"  # libpq: the database defaults to the user
    assert parse_url("postgresql://other@h").database == "other"
    assert os.environ.get("PGSERVICE") is None  # resolving a service leaves the environment as it was
