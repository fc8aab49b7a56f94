"""What the test suite shares: one project builder, real processes, checksums, PostgreSQL helpers.

Import from here (``from tests.support import Project, seedkit, checksums``); the repository root is
on the import path through ``pythonpath = ["."]`` in pyproject.toml and ``tests`` is a package, so
no test touches ``sys.path``.

Modules:

- ``project``: ``Project``, the one project builder (seedkit.toml, migrations, seeds; the CLI
  in-process or as a real process; the database). ``write_files(root, files)``.
- ``processes``: real ``seedkit`` processes (``seedkit``, ``spawn``, ``process_env``), ``kill``,
  ``wait_for``, ``no_traceback``.
- ``checksums``: table checksums read with the drivers directly, not with seedkit's code.
- ``pg``: throwaway databases (``create_pg_database``/``drop_pg_database``), ``LocalServer``,
  seedkit's sessions and advisory locks on a database.
- ``pgcluster``: the throwaway PostgreSQL cluster the suite (and bench/) starts.
- ``template``: the Copier template copied to a git repository and rendered.
- ``snapshot_schema``: schemas and data of the snapshot tests.
- ``walks``: differential walks: projects side by side, each step run on every side and compared
  (exit code, report, table contents, records; kept fingerprints against their tables).

Fixture names (tests/conftest.py and the test modules):

- ``*_url`` is a database URL string: ``pg_url`` (a fresh PostgreSQL database), ``sqlite_url`` (a
  SQLite file), ``db_url`` (each of the two, parametrized); ``pg_server`` is the server's
  maintenance URL, ``pg_standby`` a hot standby's.
- ``project`` is always a ``Project`` on ``db_url`` (or on the one database its module is about);
  ``pg_project`` / ``sqlite_project`` are the same on ``pg_url`` / ``sqlite_url``. A project fixture
  never returns a tuple (the builder carries ``root``, ``url``, ``dialect``). A fixture that gives only
  a folder is named ``*_dir`` (``project_dir``, ``pg_project_dir`` for a rendered template project).
- ``pg_local`` is the suite's server as a local one (``LocalServer``); ``template_repo`` (conftest) a
  git copy of the Copier template, one per module.
- tests/test_harness.py::test_tests_share_one_support_package_and_name_fixtures_alike keeps this so.
"""

from tests.support.checksums import Checksums, checksums, pg_checksums, sqlite_checksums, sqlite_path
from tests.support.pg import (
    LocalServer,
    advisory_locks,
    backends,
    create_pg_database,
    drop_pg_database,
    pg_database,
    wait_backends_gone,
    with_db,
)
from tests.support.processes import (
    joined,
    kill,
    no_traceback,
    process_env,
    run_on_a_terminal,
    seedkit,
    seedkit_command,
    spawn,
    wait_for,
)
from tests.support.project import Project, offline_postgres_folder, pg_projects, write_files

__all__ = [
    "Checksums", "LocalServer", "Project", "advisory_locks", "backends", "checksums", "create_pg_database",
    "drop_pg_database", "joined", "kill", "no_traceback", "offline_postgres_folder", "pg_checksums", "pg_database",
    "pg_projects", "process_env", "run_on_a_terminal", "seedkit", "seedkit_command", "spawn", "sqlite_checksums",
    "sqlite_path", "wait_backends_gone", "wait_for", "with_db", "write_files",
]
