"""Protected environments: refusal with exit 4 and nothing written.

- ``seedkit run`` of a protected environment without ``--yes``;
- ``seedkit run`` of another environment on a database a protected environment seeded (its stamp);
- ``seedkit migrate down`` on a protected environment, and on a database a protected environment
  seeded, whichever way the URL was given (``--env``, the default URL, ``--database``): there is no
  ``--yes`` for rolling production back, the fix is a new migration;
- the pytest plugin pointed at a protected environment, or at a database a protected environment
  seeded (through the environment's URL or ``--seedkit-database-url``): the session fails with the
  refusal, the protected database is untouched and no test database is created next to it.

"Nothing written" is checked on everything: each table's checksum, the list of tables (no
``seedkit_meta`` or ledger created), the migration history, and the list of databases on the server.
"""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests.support import Project, checksums, seedkit, write_files

MIGRATIONS = {
    "migrations/001_roles.sql": """
        -- migrate:up
        CREATE TABLE roles (id integer PRIMARY KEY, name text NOT NULL UNIQUE);

        -- migrate:down
        DROP TABLE roles;
    """,
    "migrations/002_users.sql": """
        -- migrate:up
        CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL UNIQUE, role_id integer REFERENCES roles(id));

        -- migrate:down
        DROP TABLE users;
    """,
}
SEEDS = {
    "seeds/common/roles.yaml": "key: [name]\nrows:\n  - {id: 1, name: admin}\n  - {id: 2, name: member}\n",
    "seeds/dev/users.yaml": "key: [email]\nrows:\n  - {id: 1, email: dev@x.io, role_id: !ref roles/admin}\n",
    "seeds/test/users.yaml": "key: [email]\nrows:\n  - {id: 2, email: test@x.io, role_id: !ref roles/member}\n",
}


def config(url: str, production_url: str | None = None, test_url: str | None = None) -> str:
    return textwrap.dedent(f"""
        [database]
        url = "{url}"

        [envs.dev]
        include = ["common", "dev"]

        [envs.test]
        include = ["common", "test"]
        {f'database_url = "{test_url}"' if test_url else ""}

        [envs.production]
        include = ["common"]
        protected = true
        {f'database_url = "{production_url}"' if production_url else ""}
    """)


def state(url: str) -> dict:
    """Everything that could have been written: tables, their content, the history."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///"):])
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
        finally:
            conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]
    return {"tables": names, "content": checksums(url, names)}


@pytest.fixture
def project(db_url: str, tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    write_files(root, {**MIGRATIONS, **SEEDS, "seedkit.toml": config(db_url)})
    done = seedkit(root, "migrate", "up")
    assert done.returncode == 0, done.stderr
    return Project.bare(root, db_url)


def refused(root: Path, *args: str) -> str:
    done = seedkit(root, *args)
    assert done.returncode == 4, (args, done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    return done.stderr


def test_run_of_a_protected_environment_needs_yes(project: Project) -> None:
    root, url = project.root, project.url
    before = state(url)
    message = refused(root, "run", "production")
    assert "protected" in message and "--yes" in message
    refused(root, "run", "--env", "production", "--json")
    assert state(url) == before  # not even seedkit_meta was created
    done = seedkit(root, "run", "production", "--yes")
    assert done.returncode == 0, done.stderr  # the refusal was the only thing in the way
    assert state(url) != before


def test_a_database_stamped_by_a_protected_environment_refuses_other_environments(
        project: Project) -> None:
    root, url = project.root, project.url
    assert seedkit(root, "run", "production", "--yes").returncode == 0
    before = state(url)
    assert "seeded by the protected environment 'production'" in refused(root, "run", "dev")
    refused(root, "run", "test", "--database", url)
    refused(root, "run", "production")  # the environment itself still needs --yes
    assert state(url) == before
    assert seedkit(root, "run", "dev", "--yes").returncode == 0
    assert state(url) != before


def test_migrate_down_is_refused_on_a_protected_environment(project: Project) -> None:
    root, url = project.root, project.url
    write_files(root, {"seedkit.toml": config(url, production_url=url)})
    before = state(url)
    for args in (["--env", "production"], ["--env", "production", "--steps", "2"], ["--env", "production", "--to", "0"],
                 ["--env", "production", "--dry-run"]):
        message = refused(root, "migrate", "down", *args)
        assert "protected" in message and "new migration" in message
    assert state(url) == before


def test_migrate_down_is_refused_on_a_database_a_protected_environment_seeded(project: Project) -> None:
    """The stamp says this database is production's, whatever the command line says: ``migrate down`` with
    the default URL, with ``--database``, or with a non-protected environment pointing at it is refused
    just as ``run`` and ``reset`` are."""
    root, url = project.root, project.url
    assert seedkit(root, "run", "production", "--yes").returncode == 0
    before = state(url)
    for args in ([], ["--database", url], ["--env", "dev"], ["--steps", "2"]):
        refused(root, "migrate", "down", *args)
        assert state(url) == before, f"migrate down {' '.join(args)} rolled back production"


# -- the pytest plugin ----------------------------------------------------------------------------
INNER_TEST = """
def test_uses_the_database(seedkit_conn):
    seedkit_conn.cursor().execute("SELECT 1")
"""


def databases(url: str) -> list[str]:
    """Databases on the server (PostgreSQL) or files in the folder of the database (SQLite)."""
    if url.startswith("sqlite"):
        return sorted(p.name for p in Path(url[len("sqlite:///"):]).parent.iterdir())
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database ORDER BY 1").fetchall()]


@pytest.mark.parametrize("pointed", ["protected-environment", "environment-url-is-stamped",
                                     "database-url-option-is-stamped"])
def test_pytest_plugin_refuses_protected_environments_and_databases(project: Project, pointed: str,
                                                                     pytester: pytest.Pytester) -> None:
    root, url = project.root, project.url
    assert seedkit(root, "run", "production", "--yes").returncode == 0  # url is now production's database
    inner = pytester.path
    write_files(inner, {**MIGRATIONS, **SEEDS, "tests/test_inner.py": INNER_TEST})
    args = ["-p", "no:cacheprovider", "--seedkit-config", str(inner / "seedkit.toml")]
    if pointed == "protected-environment":
        write_files(inner, {"seedkit.toml": config(url, production_url=url)})
        args += ["--seedkit-env", "production"]
    elif pointed == "environment-url-is-stamped":
        write_files(inner, {"seedkit.toml": config(url, test_url=url)})
    else:
        write_files(inner, {"seedkit.toml": config("sqlite:///elsewhere.db")})
        args += ["--seedkit-database-url", url]
    before, dbs_before = state(url), databases(url)
    result = pytester.runpytest(*args)
    assert result.ret != 0
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*(refused)*", "error: *protected*"])
    assert state(url) == before
    assert databases(url) == dbs_before, "a test database was created next to production's"


def test_every_refusal_is_decided_by_the_one_safety_module() -> None:
    """Protected environments, the stamp and the server's own databases are known to seedkit/_safety.py
    alone; run, migrate down, reset and the pytest plugin ask it (so one policy is checked above)."""
    import seedkit

    root = Path(seedkit.__file__).parent
    # info shows the flag; `db create` (which creates empty databases, never writes to one) skips them
    shows_the_flag = {"_safety.py", "cli/info.py", "db/provision.py"}
    for path in root.rglob("*.py"):
        if path.relative_to(root).as_posix() in shows_the_flag:
            continue
        text = path.read_text()
        shown = path.relative_to(root).as_posix()
        assert "protected_env" not in text, f"{shown} reads the stamp itself"
        assert "template0" not in text, f"{shown} keeps its own list of server databases"
        assert ".protected" not in text.replace("env_settings.protected", ""), \
            f"{shown} decides about protected environments itself"
    users = {"seed/__init__.py", "migrate/__init__.py", "_recreate.py", "pytest_plugin.py"}
    for shown in users:
        assert "_safety" in (root / shown).read_text(), f"{shown} does not ask the safety module"
