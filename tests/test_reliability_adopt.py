"""Repeatables, baseline and import under attack: a killed connection mid re-apply, hostile file and
table names, another run holding the lock. Nothing half-recorded, nothing run that should not be."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from seedkit.db.postgres.migration import LOCK_CLASS, lock_key
from tests.support.project import Project


class AdoptProject(Project):
    """One migration (users), a repeatable folder, seedkit's history in ``seedkit_migrations``."""

    def __init__(self, root: Path, url: str):
        super().__init__(root, url, _layout="bare")
        (self.migrations_dir / "repeatable").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(f'[database]\nurl = "{url}"\n\n[migrations]\ntable = "seedkit_migrations"\n',
                                    encoding="utf-8")
        self.single("001", "users", "CREATE TABLE users (id int PRIMARY KEY);", "DROP TABLE users;")


def test_a_repeatable_killed_mid_reapply_keeps_its_old_definition_and_checksum(tmp_path: Path, pg_url: str) -> None:
    p = AdoptProject(tmp_path, pg_url)
    view = p.migrations_dir / "repeatable" / "v.sql"
    view.write_text("CREATE OR REPLACE VIEW v AS SELECT 1 AS n;\n", encoding="utf-8")
    assert p.migrate("up").returncode == 0
    old = p.rows("SELECT checksum FROM seedkit_migrations_repeatable")
    view.write_text("CREATE OR REPLACE VIEW v AS SELECT 1 AS n, 2 AS m;\nSELECT pg_sleep(30);\n", encoding="utf-8")
    proc = p.spawn("migrate", "up")
    try:
        deadline = time.monotonic() + 20
        killed = 0
        with psycopg.connect(pg_url, autocommit=True) as c:
            while not killed and time.monotonic() < deadline:
                killed = c.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE query LIKE 'SELECT pg_sleep(30)%' AND pid <> pg_backend_pid()").fetchone()[0]
                time.sleep(0.05)
        assert killed == 1
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode != 0 and "lost the connection" in err, err
    assert p.rows("SELECT checksum FROM seedkit_migrations_repeatable") == old
    assert [c for (c,) in p.rows("SELECT column_name FROM information_schema.columns WHERE table_name = 'v'")] == ["n"]
    view.write_text("CREATE OR REPLACE VIEW v AS SELECT 1 AS n, 2 AS m;\n", encoding="utf-8")
    assert p.migrate("up").returncode == 0
    assert p.rows("SELECT n, m FROM v") == [(1, 2)]


def test_hostile_repeatable_file_and_import_table_names(tmp_path: Path, db_url: str) -> None:
    p = AdoptProject(tmp_path, db_url)
    name = "x'); DROP TABLE users; --\"odd"
    (p.migrations_dir / "repeatable" / f"{name}.sql").write_text("CREATE TABLE IF NOT EXISTS marker (n int);\n",
                                                                 encoding="utf-8")
    assert p.migrate("up").returncode == 0
    assert p.rows("SELECT name FROM seedkit_migrations_repeatable") == [(name,)]
    assert p.rows("SELECT count(*) FROM users") == [(0,)]
    r = p.migrate("import", "--from", "diesel", "--table", 'evil"; DROP TABLE users; --')
    assert r.returncode == 2 and "no diesel history table" in r.stderr, r.stderr
    assert p.rows("SELECT count(*) FROM users") == [(0,)]


def test_baseline_and_import_wait_for_the_run_lock_and_write_nothing_when_it_times_out(tmp_path: Path,
                                                                                       pg_url: str) -> None:
    p = AdoptProject(tmp_path, pg_url)
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)")
        c.execute("INSERT INTO schema_migrations VALUES ('001')")
        c.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_CLASS, lock_key("public.seedkit_migrations")])
        for args in (["baseline", "001"], ["import", "--from", "dbmate"]):
            r = p.migrate(*args, "--lock-timeout", "0.3")
            assert r.returncode == 4 and "holds the lock" in r.stderr, r.stderr
        assert p.rows("SELECT to_regclass('seedkit_migrations')") == [(None,)]
    assert p.migrate("import", "--from", "dbmate").returncode == 0
    assert p.rows("SELECT version FROM seedkit_migrations") == [("001",)]
