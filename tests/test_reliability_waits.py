"""Every wait and failure of ``seedkit run`` explained, and runs with fewer privileges.

Real processes on the suite's PostgreSQL: another session holding a table or a row lock past
``[seeds] lock_timeout`` (the message names the table and the holder), ``--only`` with a typo, no
project, tables missing while migrations are pending, the server ending the connection in the middle of
a run (exit 1, nothing written), ``--diff`` masking like ``--json``; then real roles: one with DML rights
but no CREATE on the schema seeding a prepared database, one without TEMP, and ``--check``/``--dry-run``
on a database whose transactions default to read-only, writing nothing, not even seedkit's own tables.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support import LocalServer, Project, seedkit, spawn, wait_for, write_files

FILES = {
    "seedkit.toml": """
        [database]
        url = "${APP_DB}"

        [seeds]
        lock_timeout = 2

        [envs.dev]
        include = ["common"]
    """,
    "migrations/001_roles.sql": """
        -- migrate:up
        CREATE TABLE roles (id serial PRIMARY KEY, name text NOT NULL UNIQUE, label text);

        -- migrate:down
        DROP TABLE roles;
    """,
    "migrations/002_users.sql": """
        -- migrate:up
        CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE, role_id int REFERENCES roles(id),
                            note text);

        -- migrate:down
        DROP TABLE users;
    """,
    "seeds/common/roles.yaml": """
        key: [name]
        prune: true
        rows:
          - {name: admin, label: Admin}
          - {name: member, label: Member}
    """,
    "seeds/common/users.py": """
        from seedkit import fixture, ref


        @fixture("users", key=["email"])
        def users(fake):
            for i in range(50):
                yield {"email": f"u{i}@example.com", "role_id": ref("roles", "member"), "note": "n"}
    """,
}


def app_env(project: Project, url: str | None = None) -> dict[str, str]:
    """The environment the project's seedkit.toml reads its URL from (``APP_DB``)."""
    return {"APP_DB": url or project.url}


def run_seedkit(project: Project, *args: str, url: str | None = None) -> tuple[int, str]:
    """``seedkit ARGS`` in a real process in the project folder: (exit code, stdout + stderr)."""
    proc = seedkit(project.root, *args, env=app_env(project, url))
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def project(pg_local: LocalServer, pg_url: str, tmp_path: Path) -> Project:
    project = Project.bare(tmp_path, pg_url)  # the URL from APP_DB, see app_env
    project.write_files(FILES)
    return project


@pytest.fixture
def migrated(project: Project) -> Project:
    code, out = run_seedkit(project, "migrate", "up")
    assert code == 0, out
    return project


def backend_of(url: str, application: str = "seedkit") -> int | None:
    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = "
                        "current_database() AND wait_event_type = 'Lock'", [application]).fetchone()
    return row[0] if row else None


# -- waits -------------------------------------------------------------------------------------------

def test_the_seed_lock_held_by_an_idle_session_times_out_naming_the_holder(migrated: Project) -> None:
    """A session holding the seed lock at session level and idle (no transaction, so no start time to
    name) still ends the run as a refusal, exit 4, naming the holder."""
    from seedkit.db.postgres.database import PostgresDatabase

    with psycopg.connect(migrated.url, autocommit=True, application_name="maintenance") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [PostgresDatabase.SEED_LOCK_KEY])
        code, out = run_seedkit(migrated, "run", "dev")
        pid = holder.info.backend_pid
    assert code == 4, out
    assert "another seedkit run holds the seed lock on" in out and f"pid {pid}, application maintenance" in out, out
    assert "since" not in out and "Traceback" not in out
    assert migrated.rows("SELECT count(*) FROM roles") == [(0,)]  # nothing written


@pytest.mark.parametrize("args", [("run", "dev"), ("run", "dev", "--check")])
def test_a_table_lock_held_elsewhere_times_out_naming_table_and_holder(migrated: Project, args: tuple) -> None:
    with psycopg.connect(migrated.url, application_name="nightly-report") as holder:
        holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        pid = holder.info.backend_pid
        started = time.monotonic()
        code, out = run_seedkit(migrated, *args)
        waited = time.monotonic() - started
    assert code == 4, out
    # named by the wait that timed out: reading the catalog ("table users is locked by …"), or locking
    # the table itself ("a lock on table public.users: locked by …")
    assert "table users is locked by" in out or "lock on table public.users: locked by" in out, out
    assert f"pid {pid} (application nightly-report" in out, out
    assert "AccessExclusiveLock" in out
    assert "lock_timeout" in out and "Traceback" not in out
    assert waited < 20  # bounded by lock_timeout = 2, not by the holder
    assert migrated.rows("SELECT count(*) FROM roles") == [(0,)]  # nothing written


def test_a_row_lock_held_elsewhere_times_out_naming_the_table(migrated: Project) -> None:
    code, out = run_seedkit(migrated, "run", "dev")
    assert code == 0, out
    write_files(migrated.root, {"seeds/common/roles.yaml": FILES["seeds/common/roles.yaml"].replace("Admin", "Boss")})
    with psycopg.connect(migrated.url, application_name="admin-console") as holder:
        holder.execute("SELECT * FROM roles WHERE name = 'admin' FOR UPDATE")
        pid = holder.info.backend_pid
        code, out = run_seedkit(migrated, "run", "dev")
    assert code == 4, out
    assert "a row of table roles" in out and f"pid {pid}" in out and "admin-console" in out, out
    assert migrated.rows("SELECT label FROM roles WHERE name = 'admin'") == [("Admin",)]


def test_a_row_lock_timeout_names_only_the_sessions_in_the_way(migrated: Project) -> None:
    """A reader (ACCESS SHARE) and a vacuum-like session (SHARE UPDATE EXCLUSIVE, the mode autovacuum
    takes, which CI once caught listed) hold locks on the table too, but no row lock and none that
    conflicts with the run's: the message names the row's holder alone."""
    code, out = run_seedkit(migrated, "run", "dev")
    assert code == 0, out
    write_files(migrated.root, {"seeds/common/roles.yaml": FILES["seeds/common/roles.yaml"].replace("Admin", "Boss")})
    with psycopg.connect(migrated.url, application_name="reader") as reader, \
            psycopg.connect(migrated.url, application_name="vacuum-like") as vacuum, \
            psycopg.connect(migrated.url, application_name="admin-console") as holder:
        reader.execute("SELECT count(*) FROM roles")
        vacuum.execute("LOCK TABLE roles IN SHARE UPDATE EXCLUSIVE MODE")
        holder.execute("SELECT * FROM roles WHERE name = 'admin' FOR UPDATE")
        pids = reader.info.backend_pid, vacuum.info.backend_pid, holder.info.backend_pid
        code, out = run_seedkit(migrated, "run", "dev")
    assert code == 4, out
    assert "a row of table roles" in out and f"locked by pid {pids[2]} (application admin-console" in out, out
    assert f"pid {pids[0]}" not in out and f"pid {pids[1]}" not in out, out
    assert out.count("locked by") == 1, out
    assert migrated.rows("SELECT label FROM roles WHERE name = 'admin'") == [("Admin",)]


# -- failures explained ------------------------------------------------------------------------------

def test_only_with_an_unknown_table_suggests_the_right_one(migrated: Project) -> None:
    code, out = run_seedkit(migrated, "run", "dev", "--only", "usres")
    assert code == 2, out
    assert "--only 'usres'" in out and "did you mean 'users'" in out and "Traceback" not in out
    code, out = run_seedkit(migrated, "run", "dev", "--only", "zzz")
    assert code == 2 and "roles, users" in out, out
    assert migrated.rows("SELECT count(*) FROM roles") == [(0,)]
    code, out = run_seedkit(migrated, "run", "dev", "--only", "public.users", "--only", "roles")
    assert code == 0, out


def test_outside_a_project(tmp_path: Path) -> None:
    nowhere = tmp_path / "not-a-project"
    nowhere.mkdir()
    for args in (["run", "dev"], ["run", "dev", "--check"]):
        proc = seedkit(nowhere, *args)
        assert proc.returncode == 2, proc.stderr
        assert f"no seedkit.toml in {nowhere.resolve()} or its parents" in proc.stderr
        assert "--config" in proc.stderr


def test_missing_tables_while_migrations_are_pending(project: Project) -> None:
    code, out = run_seedkit(project, "run", "dev")
    assert code == 2, out
    assert "2 tables the fixtures seed do not exist (roles, users), and 2 migrations are pending" in out, out
    assert "seedkit migrate up" in out
    code, out = run_seedkit(project, "migrate", "up", "--to", "001")
    assert code == 0, out
    code, out = run_seedkit(project, "run", "dev")
    assert code == 2 and "1 table the fixtures seed does not exist (users), and 1 migration is pending" in out, out
    assert project.rows("SELECT count(*) FROM roles") == [(0,)]
    code, out = run_seedkit(project, "migrate", "up")
    assert code == 0, out
    code, out = run_seedkit(project, "run", "dev")
    assert code == 0, out


def test_connection_lost_while_waiting_exits_1_and_writes_nothing(migrated: Project) -> None:
    """The server ends the session (pg_terminate_backend) while the run waits for a lock: exit 1,
    "connection lost", no fixture row blamed, nothing written."""
    write_files(migrated.root, {"seedkit.toml": FILES["seedkit.toml"].replace("lock_timeout = 2", "lock_timeout = 60")})
    with psycopg.connect(migrated.url, autocommit=True) as admin, psycopg.connect(migrated.url) as holder:
        holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        proc = spawn(migrated.root, "run", "dev", env=app_env(migrated))
        pid = wait_for(lambda: backend_of(migrated.url), 60, "the run to wait for the lock")
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "connection lost" in err and "nothing was written" in err, err
    assert "row" not in err.split("hint")[0] and "Traceback" not in err
    assert migrated.rows("SELECT count(*) FROM roles") == [(0,)]


def test_connection_lost_during_copy_of_a_python_fixture(migrated: Project) -> None:
    """Killed in the middle of streaming a Python fixture: not a fixture error (exit 2), exit 1."""
    write_files(migrated.root, {"seeds/common/users.py": """
        import time

        from seedkit import fixture, ref


        @fixture("users", key=["email"])
        def users(fake):
            for i in range(100_000):
                if i == 30_000:
                    time.sleep(15)  # the server ends the session meanwhile
                yield {"email": f"u{i}@example.com", "role_id": ref("roles", "member"), "note": "n"}
    """})
    with psycopg.connect(migrated.url, autocommit=True) as admin:
        proc = spawn(migrated.root, "run", "dev", env=app_env(migrated))

        def copying() -> int | None:
            row = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'seedkit' AND "
                                "query LIKE 'COPY%%' AND state = 'active'").fetchone()
            return row[0] if row else None

        pid = wait_for(copying, 60, "the run to stream its Python fixture", interval=0.1)
        time.sleep(1)  # well inside the generator's pause
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "connection lost" in err and "Traceback" not in err, err
    assert "users.py" not in err  # no fixture row blamed
    assert migrated.rows("SELECT count(*) FROM users") == [(0,)]
    assert migrated.rows("SELECT count(*) FROM roles") == [(0,)]


def test_diff_masks_secret_values_like_json(migrated: Project) -> None:
    """A value holding a URL with a password, a password=… pair, or the database's own password."""
    code, out = run_seedkit(migrated, "run", "dev")
    assert code == 0, out
    secret = "Hunter" + uuid.uuid4().hex[:8]
    write_files(migrated.root, {"seeds/common/roles.yaml": f"""
        key: [name]
        rows:
          - {{name: admin, label: "postgresql://app:{secret}@db.example.com/app"}}
          - {{name: member, label: "host=db password={secret}x"}}
    """})
    code, plain = run_seedkit(migrated, "run", "dev", "--dry-run", "--diff")
    assert code == 0, plain
    code, as_json = run_seedkit(migrated, "run", "dev", "--dry-run", "--diff", "--json")
    assert code == 0, as_json
    assert secret not in plain and secret not in as_json
    diffs = [d for t in json.loads(as_json)["tables"] for d in t["diffs"]]
    assert len(diffs) == 2
    for d in diffs:
        assert "***" in d["new"]
        assert f"{d['column']}: {d['old']!r} → {d['new']!r}" in plain  # the very same masked values


# -- privileges --------------------------------------------------------------------------------------

@pytest.fixture
def role(pg_local: LocalServer, project: Project) -> Iterator[str]:
    name = f"seed_dml_{uuid.uuid4().hex[:8]}"
    pg_local.create_role(name)
    yield name
    with psycopg.connect(project.url, autocommit=True, options="-c default_transaction_read_only=off") as c:
        c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    with psycopg.connect(pg_local.url, autocommit=True) as c:
        c.execute(sql.SQL("REASSIGN OWNED BY {} TO postgres").format(sql.Identifier(name)))  # a database
        c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))  # grants on shared objects
        c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def role_url(project: Project, role: str, local: LocalServer) -> str:
    return f"postgresql://{role}@127.0.0.1:{local.port}/{project.url.rsplit('/', 1)[1]}"


def test_a_role_without_create_seeds_a_prepared_database(migrated: Project, role: str, pg_local: LocalServer) -> None:
    code, out = run_seedkit(migrated, "run", "dev")  # the owner prepares it: seedkit's own tables exist now
    assert code == 0, out
    assert {"seedkit_meta", "seedkit_rows"} <= migrated.tables()
    with psycopg.connect(migrated.url, autocommit=True) as c:
        c.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        c.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON roles, users TO {}").format(sql.Identifier(role)))
        c.execute(sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(
            sql.Identifier(role)))
        assert not c.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", [role]).fetchone()[0]
    write_files(migrated.root, {
        "seeds/common/roles.yaml": FILES["seeds/common/roles.yaml"].replace("Admin", "Boss"),
        "seeds/common/users.py": FILES["seeds/common/users.py"].replace('"note": "n"', '"note": "m"')})
    # granted on the application's tables only: the error says what else to grant
    code, out = run_seedkit(migrated, "run", "dev", url=role_url(migrated, role, pg_local))
    assert code == 1, out
    assert f'ON seedkit_meta TO "{role}"' in out and "Traceback" not in out, out
    with psycopg.connect(migrated.url, autocommit=True) as c:
        c.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            sql.Identifier(role)))
    code, out = run_seedkit(migrated, "run", "dev", url=role_url(migrated, role, pg_local))
    assert code == 0, out
    assert migrated.rows("SELECT label FROM roles WHERE name = 'admin'") == [("Boss",)]
    assert migrated.rows("SELECT DISTINCT note FROM users") == [("m",)]
    code, out = run_seedkit(migrated, "run", "dev", "--check", url=role_url(migrated, role, pg_local))
    assert code == 0, out


def test_a_role_without_temp_gets_a_hint(migrated: Project, role: str, pg_local: LocalServer) -> None:
    database = migrated.url.rsplit("/", 1)[1]
    with psycopg.connect(migrated.url, autocommit=True) as c:
        c.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
        c.execute(sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role)))
        c.execute(sql.SQL("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {}").format(sql.Identifier(role)))
        c.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    code, out = run_seedkit(migrated, "run", "dev", url=role_url(migrated, role, pg_local))
    assert code == 1, out
    assert "permission denied to create temporary tables" in out
    assert f'GRANT TEMPORARY ON DATABASE "{database}" TO "{role}"' in out and "Traceback" not in out
    assert migrated.rows("SELECT count(*) FROM roles") == [(0,)]


@pytest.mark.parametrize("how", ["database", "role"])
def test_check_and_dry_run_on_a_read_only_database_write_nothing(migrated: Project, role: str, pg_local: LocalServer,
                                                                  how: str) -> None:
    """Never seeded (no seedkit tables, a prune fixture that would want its ledger), then read-only:
    --check and --dry-run report, a real run is refused by the server, nothing at all is written."""
    database = migrated.url.rsplit("/", 1)[1]
    url = migrated.url
    with psycopg.connect(migrated.url, autocommit=True) as c:
        if how == "database":
            c.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                sql.Identifier(database)))
        else:
            c.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(role)))
            c.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(
                sql.Identifier(role)))
            c.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(role)))
            url = role_url(migrated, role, pg_local)
    before = migrated.tables()
    code, out = run_seedkit(migrated, "run", "dev", "--check", url=url)
    assert code == 3, out  # the database differs from the fixtures
    assert "inserted" in out or "would" in out
    code, out = run_seedkit(migrated, "run", "dev", "--dry-run", "--diff", url=url)
    assert code == 0, out
    code, out = run_seedkit(migrated, "run", "dev", "--check", "--json", url=url)
    assert code == 3 and json.loads(out)["totals"]["inserted"] == 52, out
    assert migrated.tables() == before  # not even seedkit's own tables
    assert migrated.rows("SELECT count(*) FROM roles") == [(0,)]
    code, out = run_seedkit(migrated, "run", "dev", url=url)
    assert code == 1 and "read-only transaction" in out, out
    assert migrated.tables() == before


def test_check_and_dry_run_on_a_hot_standby(migrated: Project, pg_standby: str) -> None:
    """A real standby (pg_basebackup of the suite's cluster): no temporary tables are possible there, yet
    --check and --dry-run report, before and after a first seeding; a real run is refused with a hint."""
    standby = _on(pg_standby, migrated.url.rsplit("/", 1)[1])

    def replayed() -> None:
        with psycopg.connect(migrated.url) as c:
            lsn = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        wait_for(lambda: _standby_at(standby, lsn), 60, "the standby to replay the primary")

    replayed()
    code, out = run_seedkit(migrated, "run", "dev", "--check", "--json", url=standby)
    assert code == 3, out
    assert json.loads(out)["totals"]["inserted"] == 52  # a prune fixture, and no seedkit tables yet
    code, out = run_seedkit(migrated, "run", "dev", url=standby)
    assert code == 1 and "read-only" in out and "--check and --dry-run work here" in out, out
    code, out = run_seedkit(migrated, "run", "dev")  # on the primary
    assert code == 0, out
    write_files(migrated.root, {"seeds/common/roles.yaml": FILES["seeds/common/roles.yaml"].replace("Admin", "Boss")})
    replayed()
    code, out = run_seedkit(migrated, "run", "dev", "--dry-run", "--diff", url=standby)
    assert code == 0 and "'Admin' → 'Boss'" in out, out
    code, out = run_seedkit(migrated, "run", "dev", "--check", "--json", url=standby)
    assert code == 3, out
    assert json.loads(out)["totals"] == {"inserted": 0, "updated": 1, "unchanged": 51, "deleted": 0}
    assert migrated.rows("SELECT label FROM roles ORDER BY name") == [("Admin",), ("Member",)]


def _on(server_url: str, database: str) -> str:
    from seedkit.urls import parse_url

    return parse_url(server_url).with_database(database).raw


def _standby_at(url: str, lsn: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as c:
            return bool(c.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone()[0])
    except psycopg.OperationalError:  # the database itself is not replayed yet
        return False


def test_missing_tables_while_migrations_are_pending_on_sqlite(tmp_path: Path) -> None:
    write_files(tmp_path, {**FILES, "seeds/common/users.py": ""})
    env = {"APP_DB": "sqlite:///app.db"}
    proc = seedkit(tmp_path, "run", "dev", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "1 table the fixtures seed does not exist (roles), and 2 migrations are pending" in proc.stderr
    assert "seedkit migrate up" in proc.stderr
    assert seedkit(tmp_path, "migrate", "up", env=env).returncode == 0
    assert seedkit(tmp_path, "run", "dev", env=env).returncode == 0


@pytest.mark.parametrize("body", ["statement", "interrupt"])
def test_a_session_ended_before_a_failed_block_rolls_back_is_a_lost_connection(
        pg_url: str, body: str, caplog: pytest.LogCaptureFixture) -> None:
    """A statement fails inside a savepoint (here: another session's row lock past ``lock_timeout``) and the
    server ends the session before the savepoint is rolled back: the error raised is the lost connection,
    with the server's reason, not the statement's (a lock wait would be exit 4, "waited … s"), and the
    driver's "error ignored in rollback" never reaches stderr; Ctrl-C in such a block stays Ctrl-C."""
    from seedkit.db.postgres.database import CONNECTION_LOST, PostgresDatabase
    from seedkit.errors import DatabaseError
    from seedkit.urls import parse_url

    d = PostgresDatabase.connect(parse_url(pg_url))
    with psycopg.connect(pg_url, autocommit=True) as admin, psycopg.connect(pg_url) as holder:
        admin.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        holder.execute("SELECT * FROM t FOR UPDATE")
        pid = d.fetchone("SELECT pg_backend_pid()")[0]
        raised: BaseException | None = None
        try:
            with d.transaction(), d.transaction():
                if body == "statement":
                    d.execute("SET LOCAL lock_timeout = '50ms'")
                    try:
                        d.execute("UPDATE t SET id = 2")
                    finally:  # the session ends between the statement's error and the rollback
                        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
                        wait_for(lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                                           [pid]).fetchone(), 10, "the session to end")
                else:
                    admin.execute("SELECT pg_terminate_backend(%s)", [pid])
                    wait_for(lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                                       [pid]).fetchone(), 10, "the session to end")
                    raise KeyboardInterrupt
        except (DatabaseError, KeyboardInterrupt) as exc:
            raised = exc
        holder.rollback()
    if body == "statement":
        assert isinstance(raised, DatabaseError) and raised.sqlstate == CONNECTION_LOST, raised
        assert str(raised).startswith("connection lost: terminating connection due to administrator command"), raised
    else:
        assert isinstance(raised, KeyboardInterrupt)
    assert not [r for r in caplog.records if "error ignored" in r.getMessage()]  # (printed by logging otherwise)
