"""``seedkit migrate lint --fix`` / ``--diff``: each fixable rule before and after, the fixed migrations
applied (and rolled back) on a real PostgreSQL and linted clean; applied migrations never edited."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedkit.db import connect
from tests.support.project import Project

BASE = """-- migrate:up
CREATE TABLE users (id bigint PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, email text, total int);
-- seedkit:nolint seed-data-in-migration rows for the test
INSERT INTO users VALUES (1), (2);
-- seedkit:nolint seed-data-in-migration rows for the test
INSERT INTO orders VALUES (1, 1, 'a@x', 3), (2, 2, 'b@x', 5);

-- migrate:down
DROP TABLE orders;
DROP TABLE users;
"""


class FixProject(Project):
    """A migrations project whose first migration (users, orders with rows) is written."""

    def __init__(self, root: Path, url: str):
        super().__init__(root, url, _layout="bare")
        self.migrations_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(f'[database]\nurl = "{url}"\n\n[migrations]\ndir = "migrations"\n',
                                    encoding="utf-8")
        (self.migrations_dir / "20240101000000_base.sql").write_text(BASE, encoding="utf-8")

    def write(self, name: str, text: str) -> Path:
        """A file under ``migrations/`` (not ``seeds/``)."""
        path = self.migrations_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def files(self) -> dict[str, str]:
        return {str(p.relative_to(self.migrations_dir)): p.read_text()
                for p in sorted(self.migrations_dir.rglob("*.sql"))}


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> FixProject:
    p = FixProject(tmp_path, pg_url)
    assert p.migrate("up").returncode == 0
    return p


def fix_and_check(p: FixProject, *, rollback: int) -> dict[str, str]:
    """--diff writes nothing and exits 3; --fix writes and re-lints clean; the result applies, rolls back
    ``rollback`` steps, and applies again on the real server; lint of everything is clean."""
    before = p.files()
    r = p.migrate("lint", "--diff")
    assert r.returncode == 3, r.stdout + r.stderr
    assert p.files() == before  # --diff writes nothing
    diff = r.stdout
    r = p.migrate("lint", "--fix")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "after fixing:" in r.stdout and "0 errors" in r.stdout, r.stdout
    after = p.files()
    for name, text in after.items():  # what --diff showed is what --fix wrote
        if before.get(name) != text:
            assert name in diff
    assert p.migrate("lint", "--diff").returncode == 0  # nothing left to fix
    r = p.migrate("up")
    assert r.returncode == 0, r.stdout + r.stderr
    r = p.migrate("down", "--steps", str(rollback))
    assert r.returncode == 0, r.stdout + r.stderr
    r = p.migrate("up")
    assert r.returncode == 0, r.stdout + r.stderr
    assert p.migrate("lint").returncode == 0
    assert p.migrate("verify").returncode == 0
    return after


def test_create_index_alone_is_marked_no_transaction(project: FixProject) -> None:
    p = project
    p.write("20240102000000_idx.sql", "-- migrate:up\nCREATE INDEX orders_user ON orders (user_id);\n\n"
                                      "-- migrate:down\nDROP INDEX orders_user;\n")
    after = fix_and_check(p, rollback=1)
    assert after["20240102000000_idx.sql"] == (
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY orders_user ON orders (user_id);\n\n"
        "-- migrate:down\nDROP INDEX orders_user;\n")
    assert p.rows("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'orders'::regclass "
                   "AND NOT indisprimary") == [("orders_user",)]


def test_create_index_with_other_statements_moves_to_its_own_migration(project: FixProject) -> None:
    p = project
    p.write("20240102000000_more.sql", """-- migrate:up
ALTER TABLE orders ADD COLUMN note text;
-- look orders up by user
CREATE INDEX ON orders (user_id);

-- migrate:down
DROP INDEX orders_user_id_idx;
ALTER TABLE orders DROP COLUMN note;
""")
    after = fix_and_check(p, rollback=2)
    assert after["20240102000000_more.sql"] == """-- migrate:up
ALTER TABLE orders ADD COLUMN note text;

-- migrate:down
ALTER TABLE orders DROP COLUMN note;
"""
    assert after["20240102000001_more_index.sql"] == """-- migrate:up transaction:false
-- Written by 'seedkit migrate lint --fix' from 20240102000000_more.
-- look orders up by user
CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS orders_user_id_idx;
"""


def test_pair_layout_split_writes_a_pair_with_the_directive(project: FixProject) -> None:
    p = project
    p.write("20240102000000_more.up.sql",
            "CREATE TABLE notes (id int);\nCREATE UNIQUE INDEX orders_email ON orders (email);\n")
    p.write("20240102000000_more.down.sql", "DROP TABLE notes;\n")
    after = fix_and_check(p, rollback=2)
    assert after["20240102000000_more.up.sql"] == "CREATE TABLE notes (id int);\n"
    assert after["20240102000001_more_index.up.sql"] == (
        "-- seedkit: transaction=false\n-- Written by 'seedkit migrate lint --fix' from 20240102000000_more.\n"
        "CREATE UNIQUE INDEX CONCURRENTLY orders_email ON orders (email);\n")
    assert after["20240102000001_more_index.down.sql"] == (
        "-- seedkit: transaction=false\nDROP INDEX CONCURRENTLY IF EXISTS orders_email;\n")


def test_concurrently_in_a_transaction_is_marked(project: FixProject) -> None:
    p = project
    p.write("20240102000000_idx/up.sql", "CREATE INDEX CONCURRENTLY orders_total ON orders (total);\n")
    p.write("20240102000000_idx/down.sql", "DROP INDEX orders_total;\n")
    after = fix_and_check(p, rollback=1)
    assert after["20240102000000_idx/up.sql"] == (
        "-- seedkit: transaction=false\nCREATE INDEX CONCURRENTLY orders_total ON orders (total);\n")


def test_foreign_key_and_check_become_not_valid_plus_validate(project: FixProject) -> None:
    p = project
    p.write("20240102000000_fk.sql", """-- migrate:up
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE orders ADD CHECK (total > 0);

-- migrate:down
ALTER TABLE orders DROP CONSTRAINT orders_total_check;
ALTER TABLE orders DROP CONSTRAINT orders_user_fk;
""")
    after = fix_and_check(p, rollback=2)
    assert after["20240102000000_fk.sql"] == """-- migrate:up
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE \
NOT VALID;
ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total > 0) NOT VALID;

-- migrate:down
ALTER TABLE orders DROP CONSTRAINT orders_total_check;
ALTER TABLE orders DROP CONSTRAINT orders_user_fk;
"""
    assert after["20240102000001_fk_validate.sql"] == """-- migrate:up
-- Written by 'seedkit migrate lint --fix' from 20240102000000_fk.
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;

-- migrate:down
-- nothing to undo: VALIDATE CONSTRAINT changes no definition
"""
    assert p.rows("SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'orders'::regclass "
                   "AND contype IN ('f', 'c') ORDER BY conname") == [("orders_total_check", True),
                                                                      ("orders_user_fk", True)]


def test_set_not_null_becomes_check_validate_set_drop(project: FixProject) -> None:
    p = project
    p.write("20240102000000_email.sql", """-- migrate:up
ALTER TABLE orders ALTER COLUMN email SET NOT NULL;

-- migrate:down
ALTER TABLE orders ALTER COLUMN email DROP NOT NULL;
""")
    after = fix_and_check(p, rollback=1)
    assert after["20240102000000_email.sql"] == """-- migrate:up
ALTER TABLE orders ADD CONSTRAINT orders_email_not_null CHECK (email IS NOT NULL) NOT VALID;

-- migrate:down
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_email_not_null;
ALTER TABLE orders ALTER COLUMN email DROP NOT NULL;
"""
    assert after["20240102000001_email_validate.sql"] == """-- migrate:up
-- Written by 'seedkit migrate lint --fix' from 20240102000000_email.
ALTER TABLE orders VALIDATE CONSTRAINT orders_email_not_null;
ALTER TABLE orders ALTER COLUMN email SET NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_email_not_null;

-- migrate:down
ALTER TABLE orders ALTER COLUMN email DROP NOT NULL;
ALTER TABLE orders ADD CONSTRAINT orders_email_not_null CHECK (email IS NOT NULL) NOT VALID;
"""
    # after one step down the NOT VALID check is back, as the first migration left it
    assert p.rows("SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'orders'::regclass "
                   "AND contype = 'c'") == []  # up ran again: the check was dropped after SET NOT NULL
    assert p.rows("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'orders'::regclass "
                   "AND attname = 'email'") == [(True,)]
    assert p.migrate("down", "--steps", "1").returncode == 0
    assert p.rows("SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'orders'::regclass "
                   "AND contype = 'c'") == [("orders_email_not_null", False)]
    assert p.migrate("down", "--steps", "1").returncode == 0
    assert p.rows("SELECT count(*) FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype = 'c'") == [(0,)]


def test_volatile_default_becomes_add_column_then_set_default(project: FixProject) -> None:
    p = project
    p.write("20240102000000_token.sql", """-- migrate:up
ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();

-- migrate:down
ALTER TABLE orders DROP COLUMN token;
""")
    after = fix_and_check(p, rollback=1)
    assert after["20240102000000_token.sql"] == """-- migrate:up
ALTER TABLE orders ADD COLUMN token uuid;
ALTER TABLE orders ALTER COLUMN token SET DEFAULT gen_random_uuid();

-- migrate:down
ALTER TABLE orders DROP COLUMN token;
"""
    assert p.rows("SELECT count(*) FROM orders WHERE token IS NULL") == [(2,)]  # existing rows: backfill later
    with connect(p.url) as db:
        db.execute("INSERT INTO orders (id) VALUES (3)")
    assert p.rows("SELECT token IS NOT NULL FROM orders WHERE id = 3") == [(True,)]


def test_inline_check_and_references_in_add_column(project: FixProject) -> None:
    """The shape of crates.io's 2026-06-17-155847-0000_add_version_zip_checksums (Diesel folders)."""
    p = project
    p.write("2024-01-02-000000-0000_zip/up.sql", """ALTER TABLE orders
    ADD COLUMN IF NOT EXISTS zip bytea NULL CONSTRAINT orders_zip_len CHECK (octet_length(zip) = 32),
    ADD COLUMN buyer bigint CHECK (buyer > 0) REFERENCES users (id);
""")
    p.write("2024-01-02-000000-0000_zip/down.sql", "ALTER TABLE orders DROP COLUMN zip, DROP COLUMN buyer;\n")
    after = fix_and_check(p, rollback=2)
    assert after["2024-01-02-000000-0000_zip/up.sql"] == (
        "ALTER TABLE orders ADD COLUMN IF NOT EXISTS zip bytea NULL, ADD CONSTRAINT orders_zip_len CHECK "
        "(octet_length(zip) = 32) NOT VALID, ADD COLUMN buyer bigint, ADD CONSTRAINT orders_buyer_check CHECK "
        "(buyer > 0) NOT VALID, ADD CONSTRAINT orders_buyer_fkey FOREIGN KEY (buyer) REFERENCES users (id) "
        "NOT VALID;\n")
    # the new folder is named like Diesel's, with the next free version
    assert after["2024-01-02-000000-0001_zip_validate/up.sql"].splitlines()[1:] == [
        "ALTER TABLE orders VALIDATE CONSTRAINT orders_zip_len;",
        "ALTER TABLE orders VALIDATE CONSTRAINT orders_buyer_check;",
        "ALTER TABLE orders VALIDATE CONSTRAINT orders_buyer_fkey;"]
    assert p.rows("SELECT count(*) FROM pg_constraint WHERE conrelid = 'orders'::regclass AND convalidated "
                   "AND conname IN ('orders_zip_len', 'orders_buyer_check', 'orders_buyer_fkey')") == [(3,)]


def test_several_fixes_in_one_statement_and_file(project: FixProject) -> None:
    p = project
    p.write("20240102000000_harden.sql", """-- migrate:up
ALTER TABLE orders ADD CHECK (total > 0), ALTER COLUMN email SET NOT NULL,
  ADD COLUMN seen timestamptz DEFAULT clock_timestamp();
CREATE INDEX orders_email_idx ON orders (email);

-- migrate:down
DROP INDEX orders_email_idx;
ALTER TABLE orders DROP COLUMN seen, DROP CONSTRAINT orders_total_check, ALTER COLUMN email DROP NOT NULL;
""")
    after = fix_and_check(p, rollback=3)
    assert after["20240102000000_harden.sql"].split("-- migrate:down")[0] == (
        "-- migrate:up\nALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total > 0) NOT VALID, "
        "ADD CONSTRAINT orders_email_not_null CHECK (email IS NOT NULL) NOT VALID, ADD COLUMN seen timestamptz;\n"
        "ALTER TABLE orders ALTER COLUMN seen SET DEFAULT clock_timestamp();\n\n")
    assert sorted(after) == ["20240101000000_base.sql", "20240102000000_harden.sql",
                             "20240102000001_harden_index.sql", "20240102000002_harden_validate.sql"]


def test_unfixable_findings_are_named_and_left(project: FixProject) -> None:
    p = project
    text = """-- migrate:up
ALTER TABLE orders ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE orders ADD COLUMN n bigserial;
DO $$ BEGIN CREATE INDEX orders_total_idx ON orders (total); END $$;
"""
    p.write("20240102000000_bad.sql", text)
    r = p.migrate("lint", "--fix")
    assert r.returncode == 3, r.stdout
    assert "volatile-default not fixed: the column is NOT NULL" in r.stdout
    assert "volatile-default not fixed: a serial, identity or generated column" in r.stdout
    assert "index-not-concurrent not fixed: inside a DO block" in r.stdout
    assert (p.migrations_dir / "20240102000000_bad.sql").read_text() == text
    assert "fixed 0 finding(s)" in r.stdout


def test_applied_migrations_are_never_edited(project: FixProject) -> None:
    p = project
    applied = p.write("20240102000000_applied.sql", "-- migrate:up\n-- seedkit:nolint index-not-concurrent at first\n"
                                                    "CREATE INDEX orders_a ON orders (total);\n")
    assert p.migrate("up").returncode == 0
    applied.write_text("-- migrate:up\nCREATE INDEX orders_a ON orders (total);\n")  # edited after it ran
    r = p.migrate("lint", "--fix")  # only pending migrations are looked at
    assert r.returncode == 0 and "fixed 0 finding(s)" in r.stdout, r.stdout
    r = p.migrate("lint", "--fix", str(applied))  # named: said why it is left alone
    assert "the migration is applied" in r.stdout and "never edited" in r.stdout, r.stdout
    assert applied.read_text() == "-- migrate:up\nCREATE INDEX orders_a ON orders (total);\n"
    assert sorted(p.files()) == ["20240101000000_base.sql", "20240102000000_applied.sql"]
    # a non-transactional migration that failed half-way is not pending either
    failed = p.write("20240103000000_half.sql", "-- migrate:up transaction:false\n"
                     "ALTER TABLE orders ADD COLUMN z int;\nALTER TABLE orders ADD COLUMN z int;\n")
    applied.write_text("-- migrate:up\n-- seedkit:nolint index-not-concurrent at first\n"
                       "CREATE INDEX orders_a ON orders (total);\n")
    assert p.migrate("up").returncode == 1
    failed.write_text(failed.read_text().replace("ADD COLUMN z int;\n", "ADD COLUMN z int DEFAULT random();\n", 1))
    r = p.migrate("lint", "--fix", str(failed))
    assert "the migration is applied (or failed half-way)" in r.stdout, r.stdout
    assert "DEFAULT random()" in failed.read_text()


def test_no_free_version_leaves_the_finding(tmp_path: Path, pg_url: str) -> None:
    p = FixProject(tmp_path, pg_url)
    (p.migrations_dir / "20240101000000_base.sql").unlink()
    p.write("001_base.sql", BASE)
    p.write("002_fk.sql", "-- migrate:up\nALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);\n")
    p.write("003_later.sql", "-- migrate:up\nCREATE TABLE later (id int);\n")
    assert p.migrate("up", "--to", "001").returncode == 0
    r = p.migrate("lint", "--fix")
    assert "no free version between 002 and the next migration" in r.stdout, r.stdout
    assert r.returncode == 3
    (p.migrations_dir / "003_later.sql").unlink()
    r = p.migrate("lint", "--fix")
    assert r.returncode == 0, r.stdout
    assert (p.migrations_dir / "003_fk_validate.sql").read_text().count("VALIDATE CONSTRAINT orders_user_id_fkey") == 1
    fixed = (p.migrations_dir / "002_fk.sql").read_text()
    assert "orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID" in fixed


def test_fix_and_diff_together_is_a_usage_error(project: FixProject) -> None:
    r = project.migrate("lint", "--fix", "--diff")
    assert r.returncode == 2 and "--fix or --diff" in r.stderr
