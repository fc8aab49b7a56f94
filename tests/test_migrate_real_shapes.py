"""Shapes found by running the runner on real public migration histories (crates.io: 285 Diesel folder
migrations; supabase/auth: 70 golang-migrate style up-only pairs; mattermost/mattermost: its PostgreSQL
golang-migrate style pairs, applied by its own runner, morph). Each test is our own small reproduction
of something that broke, or had to be checked, on those histories."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Project


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Project:
    return Project.with_migrations(tmp_path, db_url, url_variable="APP_DATABASE_URL")


@pytest.fixture
def pg_project(tmp_path: Path, pg_url: str) -> Project:
    return Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")


def folder(project: Project, name: str, up: str, down: str | None = None, metadata: str | None = None) -> Path:
    path = project.migrations_dir / name
    path.mkdir()
    (path / "up.sql").write_text(up, encoding="utf-8")
    if down is not None:
        (path / "down.sql").write_text(down, encoding="utf-8")
    if metadata is not None:
        (path / "metadata.toml").write_text(metadata, encoding="utf-8")
    return path


def tables(project: Project) -> set[str]:
    if project.url.startswith("sqlite"):
        return {r[0] for r in project.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {r[0] for r in project.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


@pytest.mark.postgres
def test_diesel_metadata_toml_turns_the_transaction_off(pg_project: Project) -> None:
    """crates.io marks its CREATE INDEX CONCURRENTLY folders with Diesel's metadata.toml."""
    folder(pg_project, "2024-01-01-000000_users", "CREATE TABLE users (id int, name text);", "DROP TABLE users;")
    idx = folder(pg_project, "2024-02-12-120203_users_name_index",
                 "CREATE INDEX CONCURRENTLY users_name ON users (name);",
                 "DROP INDEX CONCURRENTLY IF EXISTS users_name;", "run_in_transaction = false\n")
    up = pg_project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert "applied 20240212120203_users_name_index (1 statement, no transaction" in up.stdout
    down = pg_project.migrate("down")
    assert down.returncode == 0, down.stderr
    assert pg_project.migrate("up").returncode == 0
    # the setting is part of what was applied
    (idx / "metadata.toml").write_text("run_in_transaction = true\n", encoding="utf-8")
    changed = pg_project.migrate("verify")
    assert changed.returncode == 3 and "was changed after it was applied" in changed.stderr


def test_without_metadata_toml_the_same_folder_is_refused_before_anything_runs(project: Project) -> None:
    folder(project, "2024-01-01-000000_users", "CREATE TABLE users (id int, name text);")
    folder(project, "2024-02-12-120203_users_name_index", "CREATE INDEX CONCURRENTLY users_name ON users (name);")
    result = project.migrate("up")
    if project.url.startswith("sqlite"):  # SQLite has no CONCURRENTLY: its own syntax error, located
        assert result.returncode == 1 and "up.sql:1:" in result.stderr
        return
    assert result.returncode == 2
    assert "2024-02-12-120203_users_name_index/up.sql:1:1: CREATE INDEX CONCURRENTLY cannot run inside a " \
           "transaction" in result.stderr
    assert "users" not in tables(project)


@pytest.mark.parametrize("metadata", ["run_in_transaction = 'no'\n", "run_in_transaction = \n"])
def test_a_bad_metadata_toml_is_a_located_error(project: Project, metadata: str) -> None:
    folder(project, "2024-01-01-000000_users", "CREATE TABLE users (id int);", metadata=metadata)
    result = project.migrate("status")
    assert result.returncode == 2
    assert "2024-01-01-000000_users/metadata.toml" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("statement", [
    "DROP TABLE IF EXISTS schema_migrations;",
    "DROP TABLE schema_migrations_log;",
    "ALTER TABLE schema_migrations RENAME TO old_schema_migrations;",
    "DELETE FROM schema_migrations;",
])
def test_a_migration_that_drops_another_runners_history_table_is_refused(project: Project,
                                                                          statement: str) -> None:
    """crates.io's 20170502181306_drop_schema_migrations drops its old runner's table; ours had the same
    name, so the run dropped its own history half-way."""
    project.single("1", "a", "CREATE TABLE a (x int);")
    project.single("2", "drop_schema_migrations", statement)
    project.single("3", "b", "CREATE TABLE b (x int);")
    result = project.migrate("up")
    assert result.returncode == 2, result.stderr
    assert "2_drop_schema_migrations.sql:2:1: migration 2_drop_schema_migrations runs " in result.stderr
    assert "is where seedkit records the migrations it applied; nothing was run" in result.stderr
    assert '[migrations] table = \\"seedkit_migrations\\"' in result.stderr or \
        '[migrations] table = "seedkit_migrations"' in result.stderr
    assert "a" not in tables(project)  # refused before the first migration ran

    # following the hint: a table of seedkit's own; the old one (left by the refused run, as another
    # tool's would be) goes as the migration intends
    project.config_path.write_text(project.config_path.read_text().replace(
        'dir = "migrations"', 'dir = "migrations"\ntable = "seedkit_migrations"'), encoding="utf-8")
    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert {"a", "b", "seedkit_migrations"} <= tables(project)


def test_mixed_precision_diesel_versions_run_in_date_order(project: Project) -> None:
    """crates.io mixes 2026-01-20-162913 and 2025-11-19-091444-0000: as plain numbers every 18-digit
    version sorts after every 14-digit one, so the history ran out of date order."""
    folder(project, "2024-01-01-000000_a", "CREATE TABLE a (x int);")
    folder(project, "2025-11-19-091444-0000_b", "CREATE TABLE b (x int);")
    folder(project, "2026-01-20-162913_c", "CREATE TABLE c (x int);", "DROP TABLE c;")
    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert [line.split()[1] for line in up.stdout.splitlines() if line.startswith("applied")] == [
        "20240101000000_a", "202511190914440000_b", "20260120162913_c"]
    assert "is at version 20260120162913" in up.stdout
    folder(project, "2026-02-01-000000-0000_d", "CREATE TABLE d (x int);", "DROP TABLE d;")
    later = project.migrate("up")
    assert later.returncode == 0, later.stderr  # not "older than the newest applied one"
    status = project.migrate("status", "--json")
    assert [m["version"] for m in __import__("json").loads(status.stdout)["migrations"]] == [
        "20240101000000", "202511190914440000", "20260120162913", "202602010000000000"]
    assert project.migrate("down", "--steps", "2").returncode == 0
    assert tables(project) >= {"a", "b"} and not tables(project) & {"c", "d"}


@pytest.mark.postgres
def test_a_down_sql_missing_a_semicolon_is_located_and_rolled_back(pg_project: Project) -> None:
    """crates.io 20170318181441_downloads_need_no_id/down.sql: two statements, one semicolon."""
    folder(pg_project, "20170318181441_downloads_need_no_id",
           "CREATE TABLE crate_downloads (id serial PRIMARY KEY, date date);\n"
           "ALTER TABLE crate_downloads DROP COLUMN id;",
           "ALTER TABLE crate_downloads ADD COLUMN id int\n"
           "ALTER TABLE crate_downloads ALTER COLUMN date TYPE timestamp;")
    assert pg_project.migrate("up").returncode == 0
    down = pg_project.migrate("down")
    assert down.returncode == 1
    assert "20170318181441_downloads_need_no_id/down.sql:2:1: syntax error at or near \"ALTER\" " \
           "(SQLSTATE 42601)" in down.stderr
    assert pg_project.rows("SELECT version FROM schema_migrations") == [("20170318181441",)]


@pytest.mark.postgres
def test_concurrently_in_a_transactional_down_is_refused_before_anything_runs(pg_project: Project) -> None:
    """crates.io 2024-04-12-144536_remove-downloads-column/down.sql re-creates indexes CONCURRENTLY."""
    folder(pg_project, "2024-01-01-000000_crates", "CREATE TABLE crates (id int);", "DROP TABLE crates;")
    folder(pg_project, "2024-04-12-144536_remove-downloads-column", "SELECT 1;",
           "ALTER TABLE crates ADD COLUMN downloads int NOT NULL DEFAULT 0;\n\n"
           "CREATE INDEX CONCURRENTLY index_crate_downloads ON crates (downloads);")
    assert pg_project.migrate("up").returncode == 0
    down = pg_project.migrate("down", "--to", "0")
    assert down.returncode == 2
    assert "remove-downloads-column/down.sql:3:1: CREATE INDEX CONCURRENTLY cannot run inside a transaction, " \
           "and the down section" in down.stderr
    assert "'-- seedkit: transaction=false'" in down.stderr
    assert len(pg_project.rows("SELECT version FROM schema_migrations")) == 2  # nothing rolled back


@pytest.mark.postgres
def test_a_non_transactional_down_failing_first_says_nothing_ran(pg_project: Project) -> None:
    """crates.io 2024-10-25-112826_make-unique-version-unique: up creates a unique index, down drops a
    constraint of that name (there is none)."""
    folder(pg_project, "2024-01-01-000000_versions", "CREATE TABLE versions (crate_id int, num text);")
    folder(pg_project, "2024-10-25-112826_make-unique-version-unique",
           "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS versions_uindex ON versions (crate_id, num);",
           "ALTER TABLE versions DROP CONSTRAINT versions_uindex;", "run_in_transaction = false\n")
    assert pg_project.migrate("up").returncode == 0
    down = pg_project.migrate("down")
    assert down.returncode == 1
    assert "make-unique-version-unique/down.sql:1:1: constraint \"versions_uindex\" of relation \"versions\" " \
           "does not exist (SQLSTATE 42704)" in down.stderr
    assert "none of its statements had run, so the database is as it was" in down.stderr
    assert "resolve" not in down.stderr  # resolve is for failed ups; this migration is still applied
    assert pg_project.migrate("status", "--exit-code").returncode == 0


def test_an_up_only_history_refuses_down_and_names_a_few(project: Project) -> None:
    """supabase/auth ships up files only."""
    for n in range(1, 9):
        project.migrations_dir.joinpath(f"2021071003544{n}_step_{n}.up.sql").write_text(
            f"CREATE TABLE t{n} (x int);\n", encoding="utf-8")
    assert project.migrate("up").returncode == 0
    down = project.migrate("down", "--to", "0")
    assert down.returncode == 2
    assert "cannot roll back: no down section in " in down.stderr
    assert "and 3 more; nothing was run" in down.stderr
    assert len(tables(project) & {f"t{n}" for n in range(1, 9)}) == 8


def test_a_stray_sql_file_in_the_migrations_folder_is_named(project: Project) -> None:
    """crates.io keeps data_oauth_github.sql next to its migration folders (Diesel only reads folders).
    seedkit stays strict: a .sql file without a version may be a misnamed migration."""
    folder(project, "2024-01-01-000000_a", "CREATE TABLE a (x int);")
    (project.migrations_dir / "data_oauth_github.sql").write_text("INSERT INTO a VALUES (1);\n", encoding="utf-8")
    (project.migrations_dir / "README.md").write_text("# Migrations\n", encoding="utf-8")
    result = project.migrate("up")
    assert result.returncode == 2
    assert "data_oauth_github.sql: a .sql file whose name does not start with a version" in result.stderr
    assert "a" not in tables(project)


def test_dbmate_names_with_a_dash_after_the_version(project: Project) -> None:
    """supabase/postgres runs init-scripts/00000000000000-initial-schema.sql with dbmate, which reads
    the leading digits alone; seedkit called it "a .sql file whose name does not start with a version"."""
    (project.migrations_dir / "00000000000000-initial-schema.sql").write_text(
        "-- migrate:up\nCREATE TABLE a (x int);\n\n-- migrate:down\nDROP TABLE a;\n", encoding="utf-8")
    (project.migrations_dir / "00000000000001-auth-schema.sql").write_text(
        "-- migrate:up\nCREATE TABLE b (x int);\n", encoding="utf-8")
    (project.migrations_dir / "10000000000000_demote-postgres.sql").write_text(
        "-- migrate:up\nCREATE TABLE c (x int);\n", encoding="utf-8")
    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert [line.split()[1] for line in up.stdout.splitlines() if line.startswith("applied")] == [
        "00000000000000_initial-schema", "00000000000001_auth-schema", "10000000000000_demote-postgres"]
    assert {"a", "b", "c"} <= tables(project)


def pair(project: Project, name: str, up: str, down: str | None = None) -> None:
    project.migrations_dir.joinpath(f"{name}.up.sql").write_text(up, encoding="utf-8")
    if down is not None:
        project.migrations_dir.joinpath(f"{name}.down.sql").write_text(down, encoding="utf-8")


@pytest.mark.postgres
def test_morphs_nontransactional_first_line_turns_the_transaction_off(pg_project: Project) -> None:
    """mattermost marks each CREATE/DROP INDEX CONCURRENTLY pair with morph's first line
    '-- morph:nontransactional' (its last statement often without a semicolon); seedkit refused them all."""
    pair(pg_project, "000001_widgets", "CREATE TABLE widgets (id int, owner text);\n", "DROP TABLE widgets;\n")
    pair(pg_project, "000002_widgets_owner_idx",
         "-- morph:nontransactional\nCREATE INDEX CONCURRENTLY IF NOT EXISTS widgets_owner ON widgets (owner)\n",
         "-- morph:nontransactional\nDROP INDEX CONCURRENTLY IF EXISTS widgets_owner;\n"
         "DROP INDEX CONCURRENTLY IF EXISTS widgets_owner_old;\n")
    assert pg_project.migrate("lint").returncode == 0
    assert pg_project.migrate("verify").returncode == 0
    up = pg_project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert "applied 000002_widgets_owner_idx (1 statement, no transaction" in up.stdout
    down = pg_project.migrate("down")
    assert down.returncode == 0, down.stderr
    assert "rolled back 000002_widgets_owner_idx (2 statements, no transaction" in down.stdout
    assert pg_project.migrate("up").returncode == 0


@pytest.mark.postgres
def test_morphs_marker_counts_only_on_the_first_line(pg_project: Project) -> None:
    """morph reads the marker at the start of the file only; further down it is an ordinary comment."""
    pair(pg_project, "000001_widgets", "CREATE TABLE widgets (id int, owner text);\n")
    pair(pg_project, "000002_widgets_owner_idx",
         "-- index for lookups\n-- morph:nontransactional\n"
         "CREATE INDEX CONCURRENTLY widgets_owner ON widgets (owner);\n")
    up = pg_project.migrate("up")
    assert up.returncode == 2
    assert "000002_widgets_owner_idx.up.sql:3:1: CREATE INDEX CONCURRENTLY cannot run inside a transaction" \
        in up.stderr
    assert "widgets" not in tables(pg_project)


@pytest.mark.postgres
def test_a_pair_wrapped_in_begin_commit_is_told_to_drop_them(pg_project: Project) -> None:
    """golang-migrate runs each file as one query, so its histories often wrap a file in BEGIN; … COMMIT;.
    seedkit refuses them before anything runs; the hint said to keep the migration to one statement."""
    pair(pg_project, "000001_widgets", "BEGIN;\nCREATE TABLE widgets (id int);\nCREATE INDEX w_id ON widgets (id);\n"
         "COMMIT;\n", "DROP TABLE widgets;\n")
    up = pg_project.migrate("up")
    assert up.returncode == 2
    assert "000001_widgets.up.sql:1:1: transaction control (BEGIN) cannot run inside a transaction" in up.stderr
    assert "hint: remove the transaction control (BEGIN, COMMIT, …): seedkit already runs the section in one " \
           "transaction; to manage transactions yourself instead, make its first line " \
           "'-- seedkit: transaction=false'" in up.stderr
    assert "one statement" not in up.stderr
    assert "widgets" not in tables(pg_project)



@pytest.mark.parametrize("layout", ["pair", "folder", "file"])
def test_rolling_back_a_migration_without_down_says_what_to_add_in_its_layout(project: Project,
                                                                              layout: str) -> None:
    """mattermost's newest pairs may lack their .down.sql in a checkout; the hint spoke of a
    '-- migrate:down' section, which a pair cannot have."""
    pair(project, "000001_widgets", "CREATE TABLE widgets (id int);\n", "DROP TABLE widgets;\n")
    if layout == "pair":
        pair(project, "000002_add-widget-colour_v6.0", "ALTER TABLE widgets ADD COLUMN colour text;\n")
        advice = "add 000002_add-widget-colour_v6.0.down.sql next to 000002_add-widget-colour_v6.0.up.sql"
    elif layout == "folder":
        folder(project, "2024-01-01-000000_colour", "ALTER TABLE widgets ADD COLUMN colour text;\n")
        advice = "add down.sql to 2024-01-01-000000_colour/"
    else:
        (project.migrations_dir / "000002_colour.sql").write_text(
            "-- migrate:up\nALTER TABLE widgets ADD COLUMN colour text;\n", encoding="utf-8")
        advice = "add a '-- migrate:down' section"
    assert project.migrate("up").returncode == 0
    down = project.migrate("down")
    assert down.returncode == 2
    assert f"hint: {advice}, or roll forward with a new migration instead" in down.stderr
    assert "widgets" in tables(project)


@pytest.mark.postgres
def test_a_database_morph_migrated_is_imported_from_its_db_migrations_table(tmp_path: Path, pg_url: str) -> None:
    """mattermost's databases were migrated by morph, which keeps one db_migrations row per applied
    migration with a bigint version: dbmate's shape, read with --table (docs/migrations.md says so)."""
    p = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    pair(p, "000001_widgets", "CREATE TABLE widgets (id int);\n", "DROP TABLE widgets;\n")
    pair(p, "000002_widgets_owner_idx", "-- morph:nontransactional\nCREATE INDEX CONCURRENTLY w_id ON widgets (id)\n",
         "DROP INDEX IF EXISTS w_id;\n")
    pair(p, "000004_gadgets", "CREATE TABLE gadgets (id int);\n", "DROP TABLE gadgets;\n")
    p.sql("CREATE TABLE widgets (id int); CREATE INDEX w_id ON widgets (id);"
          "CREATE TABLE db_migrations (version bigint PRIMARY KEY, name varchar(64) NOT NULL);"
          "INSERT INTO db_migrations VALUES (1, 'widgets'), (2, 'widgets_owner_idx');")
    r = p.migrate("import", "--from", "dbmate", "--table", "db_migrations")
    assert r.returncode == 0, r.stderr
    assert "recorded 2 migration(s) from dbmate (db_migrations) without running them; 1 pending" in r.stdout
    up = p.migrate("up")
    assert up.returncode == 0, up.stderr
    assert [line.split(" (")[0] for line in up.stdout.splitlines() if line.startswith("applied")] == [
        "applied 000004_gadgets"]
    assert p.migrate("verify").returncode == 0  # the imported CONCURRENTLY pair respects its flag


@pytest.mark.parametrize("directive", ["-- morph:nontransactional", "-- seedkit: transaction=false"])
def test_a_repeatable_with_a_no_transaction_directive_names_that_directive(project: Project,
                                                                          directive: str) -> None:
    """Repeatables always run in a transaction; the hint named seedkit's directive even for morph's."""
    repeatable = project.migrations_dir / "repeatable"
    repeatable.mkdir()
    (repeatable / "widget_view.sql").write_text(f"{directive}\nCREATE VIEW widget_view AS SELECT 1 AS x;\n",
                                                encoding="utf-8")
    result = project.migrate("up")
    assert result.returncode == 2
    assert "repeatable/widget_view.sql:1: a repeatable migration always runs in a transaction" in result.stderr
    assert f"hint: remove '{directive}': a failed re-apply must roll back" in result.stderr


@pytest.mark.parametrize(("newest", "created"), [
    ("000150_add_colour.up.sql", ["000151_add_widgets.up.sql", "000151_add_widgets.down.sql"]),
    ("20240301120000_add_colour.up.sql", ["20250102030405_add_widgets.up.sql",
                                          "20250102030405_add_widgets.down.sql"]),
    ("0007_add_colour.sql", ["0008_add_widgets.sql"]),
    ("20240301120000_add_colour.sql", ["20250102030405_add_widgets.sql"]),
])
def test_a_new_migration_follows_the_folders_newest_one(tmp_path: Path, newest: str, created: list[str]) -> None:
    """mattermost numbers its pairs 000001 … 000150 (golang-migrate's create -seq); 'migrate new' wrote
    a dbmate file versioned by the clock next to them."""
    from datetime import datetime, timezone

    from seedkit.migrate.files import write_new

    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / newest).write_text("-- migrate:up\nSELECT 1;\n" if newest.count(".") == 1 else "SELECT 1;\n",
                                     encoding="utf-8")
    if newest.endswith(".up.sql"):
        (migrations / newest.replace(".up.sql", ".down.sql")).write_text("SELECT 1;\n", encoding="utf-8")
    path = write_new(migrations, "add widgets", now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert path.name == created[0]
    assert sorted(p.name for p in migrations.iterdir()) == sorted([newest, *created]
                                                                   + ([newest.replace(".up.sql", ".down.sql")]
                                                                      if newest.endswith(".up.sql") else []))


def test_migrate_new_in_a_sequential_pair_folder_names_both_files_and_up_applies_them(project: Project) -> None:
    pair(project, "000150_add_colour", "CREATE TABLE widgets (id int);\n", "DROP TABLE widgets;\n")
    result = project.migrate("new", "add widgets")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("created ") and "migrations/000151_add_widgets.up.sql and " in result.stdout
    assert result.stdout.rstrip().endswith("migrations/000151_add_widgets.down.sql")
    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert "applied 000151_add_widgets (0 statements" in up.stdout


@pytest.mark.parametrize("layout", ["pair", "folder"])
def test_adding_the_missing_down_file_of_an_applied_migration_lets_down_roll_it_back(project: Project,
                                                                                      layout: str) -> None:
    """supabase/auth ships up files only: down says to add the missing .down.sql, and doing so made down,
    up and verify refuse the migration as "changed after it was applied" (the checksum covers the down
    file too). Adding a down file that was not there is not an edit of what was applied; editing it
    afterwards, or removing it, still is."""
    pair(project, "000001_widgets", "CREATE TABLE widgets (id int);\n", "DROP TABLE widgets;\n")
    if layout == "pair":
        pair(project, "000002_colour", "ALTER TABLE widgets ADD COLUMN colour text;\n")
        down_file = project.migrations_dir / "000002_colour.down.sql"
    else:
        folder(project, "2024-01-01-000000_colour", "ALTER TABLE widgets ADD COLUMN colour text;\n",
               metadata="run_in_transaction = true\n")
        down_file = project.migrations_dir / "2024-01-01-000000_colour" / "down.sql"
    assert project.migrate("up").returncode == 0
    assert project.migrate("down").returncode == 2  # no down section yet: says to add one
    down_file.write_text("ALTER TABLE widgets DROP COLUMN colour;\n", encoding="utf-8")
    for command in ("verify", "up"):
        r = project.migrate(command)
        assert r.returncode == 0, r.stderr
    status = project.migrate("status", "--exit-code")
    assert status.returncode == 0 and "changed" not in status.stdout, status.stdout
    down = project.migrate("down")
    assert down.returncode == 0, down.stderr
    assert "colour" not in {r[0] for r in project.rows(
        "SELECT name FROM pragma_table_info('widgets')" if project.url.startswith("sqlite") else
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'widgets'")}
    assert project.migrate("up").returncode == 0
    # once applied with its down file, editing or removing that file is a change again
    down_file.write_text("ALTER TABLE widgets DROP COLUMN colour CASCADE;\n", encoding="utf-8")
    assert project.migrate("verify").returncode == 3
    down_file.unlink()
    changed = project.migrate("verify")
    assert changed.returncode == 3 and "was changed after it was applied" in changed.stderr


TEMPLATED = 'CREATE TABLE {{ index .Options "Namespace" }}.widgets (id int);\n'
TEMPLATED_DO = 'DO $$ BEGIN\n  ALTER TABLE {{ index .Options "Namespace" }}.widgets ADD COLUMN c text;\nEND $$;\n'


@pytest.mark.postgres
@pytest.mark.parametrize(("up_sql", "where"), [(TEMPLATED, ":1:14:"), (TEMPLATED_DO, ":2:15:")])
def test_a_go_template_placeholder_is_named_by_up(pg_project: Project, up_sql: str, where: str) -> None:
    """supabase/auth's files hold {{ index .Options "Namespace" }}, which its runner (gobuffalo/pop)
    renders before running them; up said only 'syntax error at or near "{"', with a hint about the
    rollback, and never that seedkit does no templating."""
    pair(pg_project, "00_init", up_sql)
    up = pg_project.migrate("up")
    assert up.returncode == 1
    assert f'00_init.up.sql{where} syntax error at or near "{{"' in up.stderr
    assert "hint: '{{ … }}' is a template placeholder" in up.stderr
    assert "render the files into plain SQL first" in up.stderr
    assert "the whole migration was rolled back" in up.stderr


@pytest.mark.postgres
def test_a_go_template_placeholder_is_named_by_lint(pg_project: Project) -> None:
    """lint's syntax-error hint suggested marking the file as SQLite."""
    pair(pg_project, "00_init", TEMPLATED)
    lint = pg_project.migrate("lint")
    assert lint.returncode == 3
    assert '00_init.up.sql:1:14 syntax-error error syntax error at or near "{"' in lint.stdout
    assert "hint: '{{ … }}' is a template placeholder" in lint.stdout
    assert "sqlite" not in lint.stdout.lower()


@pytest.mark.parametrize("command", [("status",), ("status", "--json"), ("verify",), ("baseline", "001"),
                                     ("up",), ("down",)])
def test_another_runners_table_under_seedkits_history_name_is_named_by_every_command(
        project: Project, command: tuple[str, ...]) -> None:
    """supabase/auth's runner (gobuffalo/pop) keeps auth.schema_migrations (one version column), and its
    role's search_path is auth, so seedkit's default schema_migrations is that table. up and down said
    whose table it was; status, verify and baseline said only 'column "name" does not exist'."""
    pair(project, "001_widgets", "CREATE TABLE widgets (id int);\n", "DROP TABLE widgets;\n")
    project.sql("CREATE TABLE schema_migrations (version varchar(255) NOT NULL PRIMARY KEY);"
                "INSERT INTO schema_migrations VALUES ('001');")
    r = project.migrate(*command)
    assert r.returncode == 1, r.stderr
    assert "exists but is not a seedkit history table (missing columns: name, checksum," in r.stderr
    assert "hint: set [migrations] table in seedkit.toml to another name" in r.stderr
    assert "does not exist" not in r.stderr
