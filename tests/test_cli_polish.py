"""The command line reads like a mature tool's: did-you-mean for environments, no Python API wording in
messages, natural metavars, working shell completion, a report title that never wraps its URL, a
one-line summary after `--check`, counts that match what is listed, and permission errors that name
the privilege."""

from __future__ import annotations

import ast
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import typer.main
from psycopg import sql
from typer.testing import CliRunner

import seedkit
from seedkit.cli import app
from seedkit.cli._app import natural_metavars

REPO = Path(__file__).resolve().parent.parent
SEEDKIT_SCRIPT = Path(sys.executable).parent / "seedkit"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def sqlite_project(folder: Path, *, url: str | None = None, rows: int = 3, bad_refs: int = 0) -> Path:
    """A SQLite project: teams and people (people.team_id → teams.id), seeds for dev."""
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / "app.db"
    with sqlite3.connect(db_file) as conn:
        conn.executescript("CREATE TABLE teams (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE);"
                           "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, "
                           "team_id INTEGER REFERENCES teams (id));")
    conn.close()
    (folder / "seedkit.toml").write_text(
        f'[database]\nurl = "{url or "sqlite:///app.db"}"\n\n[envs.dev]\ninclude = ["dev"]\n\n'
        '[envs.production]\ninclude = ["dev"]\nprotected = true\n', encoding="utf-8")
    seeds = folder / "seeds" / "dev"
    seeds.mkdir(parents=True, exist_ok=True)
    (seeds / "teams.yaml").write_text("key: [slug]\nrows:\n  - slug: core\n  - slug: web\n", encoding="utf-8")
    people = ["key: [email]", "rows:"]
    for i in range(rows):
        people.append(f"  - {{email: p{i}@example.com, team_id: !ref teams/core}}")
    for i in range(bad_refs):
        people.append(f"  - {{email: bad{i}@example.com, team_id: !ref teams/nope{i}}}")
    (seeds / "people.yaml").write_text("\n".join(people) + "\n", encoding="utf-8")
    return folder


# --- environment names ----------------------------------------------------------------------------

def test_an_unknown_environment_gets_a_did_you_mean(runner: CliRunner, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sqlite_project(tmp_path / "p"))
    result = runner.invoke(app, ["run", "deb"])
    assert result.exit_code == 2
    assert "unknown environment 'deb' (configured: dev, production)" in result.stderr
    assert "hint: did you mean 'dev'?" in result.stderr
    unrelated = runner.invoke(app, ["run", "staging"])
    assert unrelated.exit_code == 2
    assert "hint: add an [envs.staging] table to seedkit.toml" in unrelated.stderr


def test_the_protected_hint_speaks_cli(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sqlite_project(tmp_path / "p"))
    result = runner.invoke(app, ["run", "production"])
    assert result.exit_code == 4
    assert "hint: add --yes if you mean it" in result.stderr
    assert "=True" not in result.stderr


_PYTHON_WORDING = re.compile(r"\(\w+=(True|False|None)\)|\b[a-z_]+=(True|False)\b")


def test_no_message_in_the_package_uses_python_api_wording() -> None:
    """No string a user can see (error messages, hints, help) spells a keyword argument."""
    found = []
    for path in sorted((REPO / "seedkit").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and _PYTHON_WORDING.search(node.value)):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert found == []


# --- help -----------------------------------------------------------------------------------------

def every_command_path() -> list[list[str]]:
    """Every command, asked of each group the way click asks (commands load when listed or used)."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(command: Any, prefix: list[str]) -> None:
        if not hasattr(command, "list_commands"):  # a group (typer carries its own click)
            return
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, [*prefix, name]
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def test_help_shows_natural_metavars(runner: CliRunner) -> None:
    paths = every_command_path()
    assert ["db", "create"] in paths and ["migrate", "up"] in paths and ["run"] in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], terminal_width=200, env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        text = result.stdout
        assert not re.search(r"<(bool|str|int|float|file|path|text)>", text), (path, text)
        assert not re.search(r"--[a-z-]+\s+[A-Z]+_[A-Z_]+", text), (path, text)  # e.g. LOCK_TIMEOUT
    run_help = runner.invoke(app, ["run", "--help"], terminal_width=200, env={"COLUMNS": "200"}).stdout
    assert re.search(r"--database\s+URL", run_help) and re.search(r"--only\s+TABLE", run_help)
    assert re.search(r"--dry-run\s+Do everything", run_help)  # a flag: nothing between it and its help
    up_help = runner.invoke(app, ["migrate", "up", "--help"], terminal_width=200, env={"COLUMNS": "200"}).stdout
    assert re.search(r"--lock-timeout\s+SECONDS", up_help)


def test_natural_metavars_is_idempotent() -> None:
    command = typer.main.get_command(app)
    natural_metavars(command)
    natural_metavars(command)
    root_config = next(p for p in command.params if p.name == "config")
    assert root_config.metavar == "PATH"


def test_shell_completion_installs_and_completes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "SHELL": "/bin/bash",
           "PATH": f"{SEEDKIT_SCRIPT.parent}{os.pathsep}{os.environ['PATH']}"}
    # Typed at a bash prompt: the shell is found from the process tree (`; true` keeps bash the parent).
    installed = subprocess.run(["bash", "-c", f"'{SEEDKIT_SCRIPT}' --install-completion; true"], env=env,
                               capture_output=True, text=True, timeout=60)
    assert "completion installed" in installed.stdout, installed.stdout + installed.stderr
    script = home / ".bash_completions" / "seedkit.sh"
    assert script.is_file() and str(script) in (home / ".bashrc").read_text()
    # Use it the way bash does: complete `seedkit mi<TAB>` and `seedkit migrate st<TAB>`.
    probe = (f"source '{script}'; COMP_WORDS=(seedkit mi); COMP_CWORD=1; _seedkit_completion seedkit; "
             "echo \"${COMPREPLY[*]}\"; COMP_WORDS=(seedkit migrate st); COMP_CWORD=2; "
             "_seedkit_completion seedkit; echo \"${COMPREPLY[*]}\"")
    completed = subprocess.run(["bash", "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    first, second = completed.stdout.splitlines()
    assert first.split() == ["migrate"]
    assert second.split() == ["status"]


def test_installing_seedkit_uses_an_spdx_license() -> None:
    """A license table makes setuptools print a deprecation warning on every install."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])


# --- the report -----------------------------------------------------------------------------------

def test_the_report_title_never_wraps_the_url(tmp_path: Path) -> None:
    folder = tmp_path / ("a-rather-long-folder-name-" * 6).rstrip("-")
    project = sqlite_project(folder)
    result = subprocess.run([str(SEEDKIT_SCRIPT), "run", "dev"], cwd=project, capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "80"}, timeout=120)
    assert result.returncode == 0, result.stderr
    url = f"sqlite:///{(project / 'app.db').resolve()}"
    assert len(url) > 150
    assert any(line.strip().endswith(url) for line in result.stdout.splitlines()), result.stdout


def test_check_with_drift_ends_with_a_one_line_summary(runner: CliRunner, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sqlite_project(tmp_path / "p"))
    drift = runner.invoke(app, ["run", "dev", "--check"])
    assert drift.exit_code == 3
    assert drift.stdout.rstrip().splitlines()[-1] == (
        "drift: 5 rows differ from the fixtures in 2 tables (5 inserted, 0 updated, 0 deleted); "
        "`seedkit run dev` applies them")
    applied = runner.invoke(app, ["run", "dev"])
    assert applied.exit_code == 0
    assert applied.stdout.rstrip().splitlines()[-1] == "changed 2 tables: 5 inserted, 0 updated, 0 deleted"
    in_sync = runner.invoke(app, ["run", "dev", "--check"])
    assert in_sync.exit_code == 0
    assert in_sync.stdout.rstrip().splitlines()[-1] == "in sync: nothing would change"


@pytest.mark.parametrize("bad, listed", [(60, 50), (3, 3)])
def test_the_count_of_problems_matches_what_was_found(runner: CliRunner, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, bad: int, listed: int) -> None:
    """YAML references are checked before writing: every problem counted, the first 50 listed."""
    monkeypatch.chdir(sqlite_project(tmp_path / "p", bad_refs=bad))
    result = runner.invoke(app, ["run", "dev"])
    assert result.exit_code == 2
    more = "" if bad == listed else f" (the first {listed} listed)"
    assert f"error: {bad} problems in the fixtures{more}:" in result.stderr
    assert result.stderr.count("no teams row with slug") == listed
    with sqlite3.connect(tmp_path / "p" / "app.db") as conn:
        assert conn.execute("SELECT count(*) FROM people").fetchone() == (0,)  # nothing written
    conn.close()


@pytest.mark.parametrize("bad, listed", [(25, 10), (3, 3)])
def test_the_count_of_unresolved_references_matches_the_rows(runner: CliRunner, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, bad: int,
                                                             listed: int) -> None:
    """A Python fixture's references resolve in SQL while applying: "25 rows" when 25 rows failed."""
    project = sqlite_project(tmp_path / "p", rows=0)
    (project / "seeds" / "dev" / "people.yaml").unlink()
    (project / "seeds" / "dev" / "people.py").write_text(
        "from seedkit import fixture, ref\n\n\n"
        f"@fixture('people', key=['email'], count={bad + 5})\n"
        "def people(fake, n):\n"
        f"    team = 'core' if n <= 5 else f'nope{{n}}'\n"
        "    return {'email': f'p{n}@example.com', 'team_id': ref('teams', team)}\n", encoding="utf-8")
    monkeypatch.chdir(project)
    result = runner.invoke(app, ["run", "dev"])
    assert result.exit_code == 2, result.output
    more = "" if bad == listed else f" (the first {listed} listed)"
    assert f"error: {bad} rows with unresolved references{more}:" in result.stderr, result.stderr
    assert result.stderr.count("unresolved reference: no teams row") == listed
    with sqlite3.connect(project / "app.db") as conn:
        assert conn.execute("SELECT count(*) FROM people").fetchone() == (0,)  # nothing written
    conn.close()


# --- permissions and `seedkit db create` ----------------------------------------------------------

def _url(server: str, user: str, password: str, database: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(server)
    return f"postgresql://{user}:{password}@{parts.hostname}:{parts.port or 5432}/{database}"


@pytest.fixture
def pg_roles(pg_server: str):
    created: list[str] = []

    def role(*attributes: str, password: str = "pw") -> str:
        name = f"r_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} " + " ".join(attributes)).format(
                sql.Identifier(name), sql.Literal(password)))
        created.append(name)
        return name

    yield role
    with psycopg.connect(pg_server, autocommit=True) as admin:
        for name in created:
            for (db,) in admin.execute("SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                                       "WHERE r.rolname = %s", [name]).fetchall():
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def pg_project(folder: Path, dev_url: str, test_url: str) -> Path:
    folder.mkdir(parents=True)
    (folder / ".env").write_text(f"DATABASE_URL={dev_url}\nTEST_DATABASE_URL={test_url}\n")
    (folder / "seedkit.toml").write_text(
        '[database]\nurl = "${DATABASE_URL}"\n\n[envs.dev]\ninclude = ["dev"]\n\n'
        '[envs.test]\ninclude = ["test"]\ndatabase_url = "${TEST_DATABASE_URL}"\n\n'
        '[envs.production]\ninclude = []\nprotected = true\ndatabase_url = "${PRODUCTION_DATABASE_URL}"\n')
    return folder


@pytest.mark.postgres
def test_db_create_makes_the_role_and_databases_from_dotenv(runner: CliRunner, tmp_path: Path, pg_server: str,
                                                           pg_roles, monkeypatch: pytest.MonkeyPatch) -> None:
    user = f"app_{uuid.uuid4().hex[:8]}"
    password = "s3cr:t/p@ss%"  # percent-encoded in the URL
    from urllib.parse import quote

    dev = _url(pg_server, user, quote(password, safe=""), user)
    project = pg_project(tmp_path / "p", dev, dev.rsplit("/", 1)[0] + f"/{user}_test")
    monkeypatch.chdir(project)
    monkeypatch.delenv("PRODUCTION_DATABASE_URL", raising=False)
    try:
        parts = urlsplit(pg_server)  # the suite's server trusts local connections: any password will do
        superuser = pg_server if parts.password else pg_server.replace("@", ":Sup3rS3cret@", 1)
        result = runner.invoke(app, ["db", "create", "--superuser", superuser])
        assert result.exit_code == 0, result.output
        assert "Sup3rS3cret" not in result.output and "on postgresql://" in result.stdout
        assert f"created role {user}" in result.stdout
        assert f"created database {user}\n" in result.stdout and f"created database {user}_test" in result.stdout
        assert password not in result.output and quote(password, safe="") not in result.output
        # The project connects with its own URL; the role can create the test databases.
        with psycopg.connect(dev) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == (user, user)
            assert conn.execute("SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user"
                                ).fetchone() == (True, False)
        again = runner.invoke(app, ["db", "create", "--json"], env={"SEEDKIT_SUPERUSER_URL": pg_server})
        assert again.exit_code == 0, again.output
        import json

        report = json.loads(again.stdout)
        assert report["created_roles"] == [] and report["existing_roles"] == [user]
        assert sorted(report["existing_databases"]) == [user, f"{user}_test"]
        assert len(report["checked"]) == 2
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            for name in (user, f"{user}_test"):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))


@pytest.mark.postgres
def test_db_create_names_the_missing_privilege(runner: CliRunner, tmp_path: Path, pg_server: str, pg_roles,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    weak = pg_roles()  # may log in, nothing else
    user = f"app_{uuid.uuid4().hex[:8]}"
    project = pg_project(tmp_path / "p", _url(pg_server, user, "pw", user), _url(pg_server, user, "pw", f"{user}_t"))
    monkeypatch.chdir(project)
    result = runner.invoke(app, ["db", "create", "--superuser", _url(pg_server, weak, "pw", "postgres")])
    assert result.exit_code == 1
    assert f"cannot create role '{user}' as '{weak}': permission denied to create role" in result.stderr
    assert "CREATEROLE" in result.stderr.split("hint:", 1)[1]
    # A role that may create roles but not databases: the hint names CREATEDB.
    creator = pg_roles("CREATEROLE")
    with psycopg.connect(pg_server, autocommit=True) as admin:  # the role to create exists already
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD 'pw'").format(sql.Identifier(user)))
        admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(user), sql.Identifier(creator)))
    try:
        result = runner.invoke(app, ["db", "create", "--superuser", _url(pg_server, creator, "pw", "postgres")])
        assert result.exit_code == 1
        assert "permission denied to create database" in result.stderr
        assert "CREATEDB" in result.stderr.split("hint:", 1)[1]
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))


def test_db_create_needs_a_superuser_connection_and_postgresql(runner: CliRunner, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEEDKIT_SUPERUSER_URL", raising=False)
    monkeypatch.chdir(pg_project(tmp_path / "pg", "postgresql://app:pw@127.0.0.1:1/app",
                                 "postgresql://app:pw@127.0.0.1:1/app_test"))
    missing = runner.invoke(app, ["db", "create"])
    assert missing.exit_code == 2
    assert "needs a superuser connection" in missing.stderr and "--superuser postgresql://" in missing.stderr
    monkeypatch.chdir(sqlite_project(tmp_path / "lite"))
    lite = runner.invoke(app, ["db", "create", "--superuser", "postgresql://postgres@127.0.0.1:1/postgres"])
    assert lite.exit_code == 2
    assert "no PostgreSQL database is configured here" in lite.stderr


@pytest.mark.postgres
def test_a_missing_createdb_privilege_is_named(runner: CliRunner, tmp_path: Path, pg_server: str, pg_roles,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`seedkit reset` as a role that owns its database but may not create one: the hint says CREATEDB."""
    role = pg_roles()
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(role), sql.Identifier(role)))
    url = _url(pg_server, role, "pw", role)
    project = pg_project(tmp_path / "p", url, url + "_test")
    (project / "migrations").mkdir()
    monkeypatch.chdir(project)
    result = runner.invoke(app, ["reset", "dev"])
    # refused before the drop (the database is kept), naming the privilege
    assert result.exit_code == 4, result.output
    assert "lacks the CREATEDB privilege" in result.stderr and "nothing was dropped" in result.stderr
    assert "CREATEDB" in result.stderr.split("hint:", 1)[1], result.stderr


def test_version_is_the_package_version(runner: CliRunner) -> None:
    assert runner.invoke(app, ["--version"]).stdout.strip() == f"seedkit {seedkit.__version__}"


@pytest.mark.postgres
def test_the_privilege_hint_reaches_every_caller(pg_server: str, pg_roles) -> None:
    """The pytest plugin and the Python API create databases through db.admin: the hint is on the error."""
    from seedkit.db import admin
    from seedkit.errors import DatabaseError
    from seedkit.urls import parse_url

    role = pg_roles()
    with pytest.raises(DatabaseError) as raised:
        admin.create_database(parse_url(_url(pg_server, role, "pw", f"{role}_x")))
    assert raised.value.sqlstate == "42501"
    assert "CREATEDB" in (raised.value.hint or "")


@pytest.mark.parametrize("message, privilege", [
    ("permission denied to create database", "CREATEDB"),
    ("permission denied to create role", "CREATEROLE"),
    ("permission denied for schema public", "GRANT CREATE ON SCHEMA public"),
    ("permission denied for table users", "ON users"),
    ("permission denied for sequence users_id_seq", "ON SEQUENCE users_id_seq"),
    ('must be owner of table "users"', "OWNER TO"),
    ("must be superuser to create this extension", "SUPERUSER"),
])
def test_privilege_hints(message: str, privilege: str) -> None:
    from seedkit.db.provision import privilege_hint

    hint = privilege_hint(message, "app")
    assert hint is not None and privilege in hint, hint
    assert privilege_hint("relation users does not exist") is None
