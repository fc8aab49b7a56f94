"""Python fixtures (docs/python-fixtures.md; issue 5): ``@fixture`` functions and generators, ``ref()`` inside
them, deterministic Faker, files that are not packages, located errors, bounded memory, and the
empty-table fast path giving the same database as the merge path. On PostgreSQL and SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import seedkit
from seedkit.errors import FixtureError
from tests.support import Project, create_pg_database, drop_pg_database

PG_SCHEMA = """
CREATE TABLE roles (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, name text, age int,
    role_id int REFERENCES roles (id));
CREATE TABLE teams (id serial PRIMARY KEY, org text NOT NULL, slug text NOT NULL, UNIQUE (org, slug));
CREATE TABLE members (user_id bigint NOT NULL REFERENCES users (id), team_id int NOT NULL REFERENCES teams (id),
    PRIMARY KEY (user_id, team_id));
CREATE TABLE items (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text, qty int,
    price numeric(10,2), active boolean, born date, meta jsonb);
CREATE TABLE big (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, payload text);
CREATE TABLE notes (id bigserial PRIMARY KEY, slug text UNIQUE, user_ref bigint);
"""

SQLITE_SCHEMA = """
CREATE TABLE roles (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, age INTEGER,
    role_id INTEGER REFERENCES roles (id));
CREATE TABLE teams (id INTEGER PRIMARY KEY, org TEXT NOT NULL, slug TEXT NOT NULL, UNIQUE (org, slug));
CREATE TABLE members (user_id INTEGER NOT NULL REFERENCES users (id), team_id INTEGER NOT NULL
    REFERENCES teams (id), PRIMARY KEY (user_id, team_id));
CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, label TEXT, qty INTEGER,
    price DECIMAL(10,2), active BOOLEAN, born DATE, meta JSON);
CREATE TABLE big (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, payload TEXT);
CREATE TABLE notes (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, user_ref INTEGER);
"""

# notes: user_ref has no foreign key; slug is a nullable unique key
TABLES = ["roles", "users", "teams", "members", "items", "big", "notes"]

ROLES = """
key: [name]
rows:
  - {name: admin}
  - {name: member}
"""

USERS_PY = '''
from seedkit import fixture


@fixture("users", key=["email"], count={count})
def users(fake, n):
    return {{"email": f"user{{n}}@example.com", "name": fake.name(), "age": fake.random_int(18, 90)}}
'''

ITEMS_PY = '''
from datetime import date, timedelta
from decimal import Decimal

from seedkit import fixture

COUNT = {count}


@fixture("items", key=["code"])
def items(fake):
    for n in range(1, COUNT + 1):
        yield {{"code": f"item-{{n:04d}}", "label": None if n % 7 == 0 else fake.word(), "qty": n * 3,
               "price": Decimal(n) / 4, "active": n % 2 == 0, "born": date(2000, 1, 1) + timedelta(days=n),
               "meta": {{"n": n, "tags": ["a", fake.word()], "ok": n % 3 == 0}}}}
'''

ENVS = {"dev": {"include": ["common", "dev"]}, "test": {"include": ["common", "test"]},
        "other": {"include": ["other"]}}


def make_project(root: Path, url: str) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    p = Project(root, url, envs=ENVS)
    p.sql(PG_SCHEMA, SQLITE_SCHEMA)
    return p


@pytest.fixture
def project(db_url: str, tmp_path: Path) -> Project:
    return make_project(tmp_path / "project", db_url)


@pytest.fixture
def new_db(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """More empty databases of the same kind as ``db_url`` (to compare two loads side by side)."""
    made: list[str] = []
    server = request.getfixturevalue("pg_server") if not db_url.startswith("sqlite") else None

    def make() -> str:
        url = f"sqlite:///{tmp_path / f'other{len(made)}.db'}" if server is None else create_pg_database(server)
        made.append(url)
        return url

    yield make
    if server is not None:
        for url in made:
            drop_pg_database(server, url)


def run(p: Project, env: str = "dev", **kw) -> seedkit.Report:
    return seedkit.run(env, config=p.config(), **kw)


def counts(report: seedkit.Report, table: str) -> tuple[int, int, int, int]:
    t = report.table(table)
    return (t.inserted, t.updated, t.unchanged, t.deleted)


def contents(p: Project, table: str) -> list[tuple]:
    """Every column of every row, ids included, in id order."""
    order = "user_id, team_id" if table == "members" else "id"
    return p.rows(f"SELECT * FROM {table} ORDER BY {order}")


def everything(p: Project) -> dict[str, list[tuple]]:
    return {t: contents(p, t) for t in TABLES}


def seedkit_cli(p: Project, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seedkit", *args], cwd=p.root, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


# -- @fixture with count, generator fixtures, ref() ---------------------------------------------------
def test_count_fixture_and_generator_fixture_load(project: Project) -> None:
    project.write("dev/users.py", USERS_PY.format(count=5))
    project.write("dev/items.py", ITEMS_PY.format(count=3))
    report = run(project)
    assert counts(report, "users") == (5, 0, 0, 0) and counts(report, "items") == (3, 0, 0, 0)
    users = project.rows("SELECT email, name, age FROM users ORDER BY id")
    assert [u[0] for u in users] == [f"user{n}@example.com" for n in range(1, 6)]
    assert all(isinstance(name, str) and name and 18 <= age <= 90 for _, name, age in users)
    assert len({name for _, name, _ in users}) > 1  # each row has its own Faker seed
    assert project.rows("SELECT code, qty FROM items ORDER BY id") == [("item-0001", 3), ("item-0002", 6),
                                                                   ("item-0003", 9)]
    assert not run(project).changed


def test_rows_may_list_their_columns_in_any_order(project: Project) -> None:
    project.write("dev/items.py", '''
        from seedkit import fixture


        @fixture("items", key=["code"])
        def items(fake):
            for n in range(1, 5):
                if n % 2:
                    yield {"code": f"c{n}", "label": f"L{n}", "qty": n}
                else:
                    yield {"qty": n, "label": f"L{n}", "code": f"c{n}"}
    ''')
    run(project)
    assert project.rows("SELECT code, label, qty FROM items ORDER BY id") == [
        (f"c{n}", f"L{n}", n) for n in range(1, 5)]
    assert not run(project).changed


def test_ref_inside_python_fixtures_scalar_and_keyword_forms(project: Project) -> None:
    project.write("common/roles.yaml", ROLES)
    project.write("common/teams.yaml", "key: [org, slug]\nrows:\n  - {org: acme, slug: core}\n"
                                    "  - {org: acme, slug: web}\n  - {org: globex, slug: core}\n")
    project.write("dev/people.py", '''
        from seedkit import fixture, ref


        @fixture("users", key=["email"], count=4)
        def users(fake, n):
            return {"email": f"user{n}@example.com", "name": fake.first_name(),
                    "role_id": ref("roles", "admin" if n == 1 else "member")}


        @fixture("members", key=["user_id", "team_id"])
        def members(fake):
            for n in range(1, 5):
                yield {"user_id": ref("users", f"user{n}@example.com"),
                       "team_id": ref("teams", org="globex" if n == 4 else "acme", slug="web" if n == 2 else "core")}
    ''')
    report = run(project)
    assert counts(report, "members") == (4, 0, 0, 0)
    assert project.rows("SELECT u.email, r.name FROM users u JOIN roles r ON r.id = u.role_id ORDER BY u.id") == [
        ("user1@example.com", "admin"), ("user2@example.com", "member"), ("user3@example.com", "member"),
        ("user4@example.com", "member")]
    assert project.rows("SELECT u.email, t.org, t.slug FROM members m JOIN users u ON u.id = m.user_id "
                     "JOIN teams t ON t.id = m.team_id ORDER BY u.id") == [
        ("user1@example.com", "acme", "core"), ("user2@example.com", "acme", "web"),
        ("user3@example.com", "acme", "core"), ("user4@example.com", "globex", "core")]
    assert not run(project).changed


def test_ref_with_column_to_a_table_without_foreign_key_loads_the_target_first(project: Project) -> None:
    """notes.user_ref has no foreign key, so only the ref() says notes depend on users (and "notes"
    sorts before "users"). The same reference written in YAML works."""
    project.write("dev/people.py", '''
        from seedkit import fixture, ref


        @fixture("notes", key=["slug"], count=3)
        def notes(fake, n):
            return {"slug": f"note{n}", "user_ref": ref("users", f"user{n}@example.com", column="id")}


        @fixture("users", key=["email"], count=3)
        def users(fake, n):
            return {"email": f"user{n}@example.com"}
    ''')
    run(project)
    assert project.rows("SELECT n.slug, u.email FROM notes n JOIN users u ON u.id = n.user_ref ORDER BY n.id") == [
        (f"note{n}", f"user{n}@example.com") for n in range(1, 4)]
    assert not run(project).changed


@pytest.mark.parametrize("first", ["None", "2"], ids=["first-row-null", "first-row-plain-value"])
def test_ref_after_rows_without_one_in_the_same_column_is_resolved(project: Project, first: str) -> None:
    """Whether a column holds references is not decided by the first row: later rows' ref() count."""
    project.write("common/roles.yaml", ROLES)
    project.write("dev/users.py", f'''
        from seedkit import fixture, ref


        @fixture("users", key=["email"], count=4)
        def users(fake, n):
            return {{"email": f"user{{n}}@example.com", "role_id": {first} if n == 1 else ref("roles", "admin")}}
    ''')
    run(project)
    admin = project.scalar("SELECT id FROM roles WHERE name = 'admin'")
    expected_first = None if first == "None" else 2
    assert project.rows("SELECT email, role_id FROM users ORDER BY id") == [("user1@example.com", expected_first)] + [
        (f"user{n}@example.com", admin) for n in range(2, 5)]
    assert not run(project).changed


@pytest.mark.parametrize("first", ["None", "2"], ids=["first-row-null", "first-row-plain-value"])
def test_ref_with_column_after_rows_without_one_is_resolved(project: Project, first: str) -> None:
    """The same for a column without a foreign key (notes.user_ref), where ref() names the column."""
    project.write("dev/people.py", f'''
        from seedkit import fixture, ref


        @fixture("users", key=["email"], count=3)
        def users(fake, n):
            return {{"email": f"user{{n}}@example.com"}}


        @fixture("notes", key=["slug"], count=3)
        def notes(fake, n):
            return {{"slug": f"note{{n}}",
                    "user_ref": {first} if n == 1 else ref("users", f"user{{n}}@example.com", column="id")}}
    ''')
    run(project)
    ids = dict(project.rows("SELECT email, id FROM users"))
    assert project.rows("SELECT slug, user_ref FROM notes ORDER BY id") == [
        ("note1", None if first == "None" else 2), ("note2", ids["user2@example.com"]),
        ("note3", ids["user3@example.com"])]
    assert not run(project).changed


def test_ref_to_a_row_already_in_the_database(project: Project) -> None:
    project.sql("INSERT INTO roles (name) VALUES ('by-hand')")
    project.write("dev/users.py", '''
        from seedkit import fixture, ref


        @fixture("users", key=["email"], count=2)
        def users(fake, n):
            return {"email": f"u{n}@example.com", "role_id": ref("roles", "by-hand")}
    ''')
    run(project)
    assert project.rows("SELECT DISTINCT r.name FROM users u JOIN roles r ON r.id = u.role_id") == [("by-hand",)]


def test_unresolved_ref_in_a_generator_is_located_and_nothing_is_written(project: Project) -> None:
    project.write("common/roles.yaml", ROLES)
    project.write("dev/users.py", '''
        from seedkit import fixture, ref


        @fixture("users", key=["email"])
        def users(fake):
            for n in range(1, 6):
                yield {"email": f"u{n}@example.com", "role_id": ref("roles", "membr" if n == 3 else "member")}
    ''')
    with pytest.raises(FixtureError) as exc:
        run(project)
    text = str(exc.value)
    assert "users.py" in text and "row 3" in text and "membr" in text, text
    assert project.rows("SELECT count(*) FROM roles") == [(0,)]
    assert project.rows("SELECT count(*) FROM users") == [(0,)]


# -- *.py seed files are not packages ------------------------------------------------------------------
def test_py_files_load_without_being_packages_and_their_names_do_not_clash(project: Project) -> None:
    project.write("dev/01-users.py", '''
        from seedkit import fixture

        PREFIX = "first"


        def label(n):
            return f"{PREFIX}-{n}"


        @fixture("users", key=["email"], count=2)
        def rows(fake, n):
            return {"email": f"u{n}@example.com", "name": label(n)}
    ''')
    project.write("dev/items.py", '''
        from seedkit import fixture

        PREFIX = "second"


        def label(n):
            return f"{PREFIX}-{n}"


        @fixture("items", key=["code"], count=2)
        def rows(fake, n):
            return {"code": f"c{n}", "label": label(n)}
    ''')
    assert not list((project.root / "seeds").rglob("__init__.py"))
    modules = set(sys.modules)
    run(project)
    assert project.rows("SELECT name FROM users ORDER BY id") == [("first-1",), ("first-2",)]
    assert project.rows("SELECT label FROM items ORDER BY id") == [("second-1",), ("second-2",)]
    leaked = {m for m in set(sys.modules) - modules if m in {"items", "01-users", "users"}}
    assert not leaked, f"fixture files left modules behind under importable names: {leaked}"
    assert not run(project).changed


def test_a_function_fixture_without_count_is_a_located_error(project: Project) -> None:
    path = project.write("dev/users.py", '''
        from seedkit import fixture


        @fixture("users", key=["email"])
        def users(fake, n):
            return {"email": f"u{n}@example.com"}
    ''')
    with pytest.raises(FixtureError) as exc:
        run(project)
    assert "users.py" in str(exc.value) and "count" in str(exc.value) and "'users'" in str(exc.value)
    assert exc.value.location is not None and exc.value.location.line in (4, 5), path.read_text()


# -- determinism -----------------------------------------------------------------------------------------
def test_same_values_in_a_fresh_database_and_in_another_process(project: Project, new_db: Callable[[], str],
                                                                 tmp_path: Path) -> None:
    project.write("common/roles.yaml", ROLES)
    project.write("dev/users.py", USERS_PY.format(count=25))
    project.write("dev/items.py", ITEMS_PY.format(count=25))
    run(project)
    other = make_project(tmp_path / "other", new_db())
    other.write("common/roles.yaml", ROLES)
    other.write("dev/users.py", USERS_PY.format(count=25))
    other.write("dev/items.py", ITEMS_PY.format(count=25))
    run(other)
    assert everything(other) == everything(project)
    # another interpreter with another hash seed computes the same rows: --check finds nothing to do
    for hash_seed in ("0", "12345"):
        checked = seedkit_cli(project, "run", "dev", "--check", PYTHONHASHSEED=hash_seed)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_adding_rows_keeps_existing_rows_identical(project: Project) -> None:
    users = project.write("dev/users.py", USERS_PY.format(count=10))
    items = project.write("dev/items.py", ITEMS_PY.format(count=10))
    run(project)
    before = everything(project)
    users.write_text(USERS_PY.format(count=20))
    items.write_text(ITEMS_PY.format(count=20))
    report = run(project)
    assert counts(report, "users") == (10, 0, 10, 0) and counts(report, "items") == (10, 0, 10, 0)
    after = everything(project)
    assert after["users"][:10] == before["users"] and after["items"][:10] == before["items"]
    assert len(after["users"]) == len(after["items"]) == 20


def test_adding_an_unrelated_fixture_reshuffles_nothing(project: Project) -> None:
    project.write("dev/users.py", USERS_PY.format(count=10))
    run(project)
    before = contents(project, "users")
    # a new fixture that also uses Faker, in a file that loads first, and one in the same file
    project.write("dev/aaa_items.py", ITEMS_PY.format(count=10))
    users = project.root / "seeds" / "dev" / "users.py"
    users.write_text('''
from seedkit import fixture


@fixture("roles", key=["name"], count=3)
def roles(fake, n):
    return {"name": fake.job() + f" {n}"}
''' + USERS_PY.format(count=10))
    report = run(project)
    assert counts(report, "users") == (0, 0, 10, 0)
    assert counts(report, "items") == (10, 0, 0, 0) and counts(report, "roles") == (3, 0, 0, 0)
    assert contents(project, "users") == before


def test_same_values_whichever_environment_runs(project: Project, new_db: Callable[[], str], tmp_path: Path) -> None:
    project.write("common/users.py", USERS_PY.format(count=15))
    project.write("dev/items.py", ITEMS_PY.format(count=5))
    project.write("test/roles.yaml", ROLES)
    dev = run(project, "dev")
    assert counts(dev, "users") == (15, 0, 0, 0)
    other = make_project(tmp_path / "other", new_db())
    other.write("common/users.py", USERS_PY.format(count=15))
    other.write("dev/items.py", ITEMS_PY.format(count=5))
    other.write("test/roles.yaml", ROLES)
    test = run(other, "test")
    assert counts(test, "users") == (15, 0, 0, 0)
    assert contents(other, "users") == contents(project, "users")
    # and the test environment run on the dev database finds every user as it is
    assert counts(run(project, "test"), "users") == (0, 0, 15, 0)


def test_reordering_and_moving_files_changes_nothing(project: Project) -> None:
    users = project.write("dev/users.py", USERS_PY.format(count=12))
    items = project.write("common/items.py", ITEMS_PY.format(count=12))
    run(project)
    before = everything(project)
    users.rename(project.root / "seeds" / "common" / "0_users_moved.py")
    items.rename(project.root / "seeds" / "dev" / "zz_items.py")
    project.write("common/aa_roles.yaml", "table: roles" + ROLES)
    report = run(project)
    assert counts(report, "users") == (0, 0, 12, 0) and counts(report, "items") == (0, 0, 12, 0)
    after = everything(project)
    assert after["users"] == before["users"] and after["items"] == before["items"]


# -- located errors, nothing written --------------------------------------------------------------------
COLLIDING_GENERATOR = '''
from seedkit import fixture


@fixture("users", key=["email"])
def users(fake):
    for n in range(1, 9):
        yield {"email": f"user{3 if n == 7 else n}@example.com", "name": fake.name()}
'''

COLLIDING_COUNT = '''
from seedkit import fixture


@fixture("users", key=["email"], count=8)
def users(fake, n):
    return {"email": f"user{3 if n == 7 else n}@example.com", "name": fake.name()}
'''


@pytest.mark.parametrize("prefilled", [False, True], ids=["empty-table", "table-with-rows"])
@pytest.mark.parametrize("source", [COLLIDING_GENERATOR, COLLIDING_COUNT], ids=["generator", "count"])
def test_colliding_generated_keys_are_a_located_error_and_nothing_is_written(project: Project, source: str,
                                                                            prefilled: bool) -> None:
    if prefilled:
        project.sql("INSERT INTO users (email, name) VALUES ('pre@example.com', 'Pre')")
    project.write("common/roles.yaml", ROLES)
    project.write("dev/dupes.py", source)
    before = everything(project)
    with pytest.raises(FixtureError) as exc:
        run(project)
    text = str(exc.value)
    assert "dupes.py" in text and "user3@example.com" in text, text
    assert "row 3" in text and "row 7" in text, text
    assert everything(project) == before


RAISING_COUNT = '''
from seedkit import fixture


@fixture("users", key=["email"], count=6)
def broken_users(fake, n):
    if n == 4:
        raise ValueError("no fourth user")
    return {"email": f"u{n}@example.com"}
'''

RAISING_GENERATOR = '''
from seedkit import fixture


@fixture("users", key=["email"])
def broken_users(fake):
    for n in range(1, 7):
        if n == 4:
            raise ValueError("no fourth user")
        yield {"email": f"u{n}@example.com"}
'''


@pytest.mark.parametrize("source", [RAISING_COUNT, RAISING_GENERATOR], ids=["count", "generator"])
def test_a_raising_fixture_names_fixture_file_line_and_row(project: Project, source: str) -> None:
    project.write("common/roles.yaml", ROLES)
    path = project.write("dev/boom.py", source)
    raise_line = next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "raise ValueError" in line)
    with pytest.raises(FixtureError) as exc:
        run(project)
    text = str(exc.value)
    assert "broken_users" in text and "ValueError" in text and "no fourth user" in text, text
    assert f"boom.py:{raise_line}" in text and "row 4" in text, text
    assert everything(project) == {t: [] for t in TABLES}


def test_a_raising_fixture_fails_the_cli_with_exit_2_and_no_traceback(project: Project) -> None:
    path = project.write("dev/boom.py", RAISING_GENERATOR)
    raise_line = next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "raise ValueError" in line)
    result = seedkit_cli(project, "run", "dev")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert f"boom.py:{raise_line}" in result.stderr and "row 4" in result.stderr and "broken_users" in result.stderr


@pytest.mark.parametrize("case", ["null-key", "no-key-column"])
def test_a_missing_or_null_key_is_a_located_error_and_nothing_is_written(project: Project, case: str) -> None:
    """As in YAML. notes.slug is unique but nullable: a row without its key could never be found
    again, so every run would insert it anew."""
    row3 = '{"user_ref": 3}' if case == "no-key-column" else '{"slug": None, "user_ref": 3}'
    first = '{"user_ref": n}' if case == "no-key-column" else '{"slug": f"n{n}", "user_ref": n}'
    project.write("common/roles.yaml", ROLES)
    project.write("dev/keys.py", f'''
        from seedkit import fixture


        @fixture("notes", key=["slug"])
        def notes(fake):
            for n in range(1, 6):
                yield {row3} if n == 3 else {first}
    ''')
    for _ in range(2):
        with pytest.raises(FixtureError) as exc:
            run(project)
        text = str(exc.value)
        assert "keys.py" in text and "slug" in text and ("row 3" in text or "row 1" in text), text
        assert everything(project) == {t: [] for t in TABLES}


@pytest.mark.parametrize("shape", ["extra-column", "missing-column"])
def test_a_changed_column_set_is_a_located_error_and_nothing_is_written(project: Project, shape: str) -> None:
    change = '{"code": f"c{n}", "label": "x", "qty": n}' if shape == "extra-column" else '{"code": f"c{n}"}'
    project.write("common/roles.yaml", ROLES)
    project.write("dev/shapes.py", f'''
        from seedkit import fixture


        @fixture("items", key=["code"])
        def items(fake):
            for n in range(1, 9):
                yield {change} if n == 5 else {{"code": f"c{{n}}", "label": "x"}}
    ''')
    with pytest.raises(FixtureError) as exc:
        run(project)
    text = str(exc.value)
    assert "shapes.py" in text and "row 5" in text, text
    assert "qty" in text if shape == "extra-column" else "label" in text, text
    assert everything(project) == {t: [] for t in TABLES}


# -- the empty-table fast path and the merge path agree -----------------------------------------------------
def test_empty_table_path_and_merge_path_give_identical_contents(project: Project, new_db: Callable[[], str],
                                                                tmp_path: Path) -> None:
    users_py = '''
        from seedkit import fixture, ref

        COUNT = {count}


        @fixture("users", key=["email"])
        def users(fake):
            for n in range(1, COUNT + 1):
                yield {{"email": f"user{{n}}@example.com", "name": None if n % 5 == 0 else fake.name(),
                       "age": fake.random_int(1, 99), "role_id": ref("roles", "admin" if n % 4 == 0 else "member")}}
    '''
    # at once: every table empty (items has no references, so it can go straight in)
    project.write("common/roles.yaml", ROLES)
    project.write("dev/users.py", users_py.format(count=600))
    project.write("dev/items.py", ITEMS_PY.format(count=600))
    first = run(project)
    assert counts(first, "users") == (600, 0, 0, 0) and counts(first, "items") == (600, 0, 0, 0)
    # in two steps: half the rows first, then all of them into tables that already hold rows
    other = make_project(tmp_path / "other", new_db())
    other.write("common/roles.yaml", ROLES)
    users = other.write("dev/users.py", users_py.format(count=300))
    items = other.write("dev/items.py", ITEMS_PY.format(count=300))
    run(other)
    users.write_text(users.read_text().replace("COUNT = 300", "COUNT = 600"))
    items.write_text(items.read_text().replace("COUNT = 300", "COUNT = 600"))
    second = run(other)
    assert counts(second, "users") == (300, 0, 300, 0) and counts(second, "items") == (300, 0, 300, 0)
    assert everything(other) == everything(project)


def test_streamed_python_rows_and_in_memory_yaml_rows_store_the_same_values(project: Project, tmp_path: Path,
                                                                             new_db: Callable[[], str]) -> None:
    project.write("dev/items.py", '''
        from datetime import date
        from decimal import Decimal

        from seedkit import fixture


        @fixture("items", key=["code"])
        def items(fake):
            yield {"code": "a", "label": "Ada", "qty": 3, "price": Decimal("10.50"), "active": True,
                   "born": date(1815, 12, 10), "meta": {"langs": ["en", "fr"], "level": 3}}
            yield {"code": "b", "label": None, "qty": None, "price": Decimal("0.10"), "active": False,
                   "born": None, "meta": None}
    ''')
    other = make_project(tmp_path / "other", new_db())
    other.write("dev/items.yaml", """
        key: [code]
        rows:
          - {code: a, label: Ada, qty: 3, price: 10.50, active: true, born: 1815-12-10,
             meta: {langs: [en, fr], level: 3}}
          - {code: b, label: null, qty: null, price: 0.10, active: false, born: null, meta: null}
    """)
    run(project)
    run(other)
    assert contents(project, "items") == contents(other, "items")


# -- memory: a 200 k-row generator streams ---------------------------------------------------------------------
BIG_PY = '''
from seedkit import fixture

ROWS = {rows}


@fixture("big", key=["code"])
def big(fake):
    for n in range(1, ROWS + 1):
        yield {{"code": f"c{{n:07d}}", "payload": f"{{n:07d}}" + "x" * 1000}}
'''


# Linux keeps the larger of the old and new address space's high-water mark across exec, so a child
# forked straight from pytest would report pytest's RSS as its own; a small launcher in between cannot.
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def peak_rss_mb(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    """Run ``cmd``: its own peak RSS (MB), exit code and stderr."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=True)
    maxrss, code = done.stdout.split()
    return int(maxrss) / (1024 * 1024 if sys.platform == "darwin" else 1024), int(code), done.stderr


@pytest.mark.slow
def test_a_200k_row_generator_loads_with_bounded_memory(project: Project) -> None:
    """~200 MB of payload: a run that held the rows would need well over the bound; streaming needs
    a batch. The benchmark reports the real figure; this is a generous guard."""
    cmd = [sys.executable, "-m", "seedkit", "run", "dev", "--json"]
    project.write("dev/big.py", BIG_PY.format(rows=2_000))
    small, code, err = peak_rss_mb(cmd, project.root)
    assert code == 0, err
    project.sql("DELETE FROM big")
    project.write("dev/big.py", BIG_PY.format(rows=200_000))
    big, code, err = peak_rss_mb(cmd, project.root)
    assert code == 0, err
    assert project.rows("SELECT count(*), count(DISTINCT payload) FROM big") == [(200_000, 200_000)]
    assert big < 500, f"peak RSS {big:.0f} MB for 200k rows"
    assert big - small < 150, f"peak RSS grew from {small:.0f} MB (2k rows) to {big:.0f} MB (200k rows)"


def test_report_json_counts_python_rows(project: Project) -> None:
    project.write("dev/users.py", USERS_PY.format(count=7))
    result = seedkit_cli(project, "run", "dev", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["totals"]["inserted"] == 7
    assert [t["table"] for t in report["tables"]] == ["users"]


# -- more: the YAML header options, file-level errors, keys shared with YAML ------------------------------------
def test_fixture_options_prune_create_only_and_ignore(project: Project) -> None:
    users = project.write("dev/users.py", '''
        from seedkit import fixture

        COUNT = 10


        @fixture("users", key="email", count=COUNT, prune=True, create_only=["age"])
        def users(fake, n):
            return {"email": f"u{n}@example.com", "name": f"User {n}", "age": n}


        @fixture("roles", key=["name"], count=2, on_conflict="ignore")
        def roles(fake, n):
            return {"name": f"role{n}"}
    ''')
    run(project)
    project.sql("UPDATE users SET age = 99 WHERE email = 'u1@example.com'")
    project.sql("UPDATE roles SET name = 'renamed' WHERE name = 'role2'")
    project.sql("INSERT INTO users (email, name) VALUES ('by-hand@example.com', 'Hand')")
    users.write_text(users.read_text().replace("COUNT = 10", "COUNT = 6").replace('f"User {n}"', 'f"Person {n}"'))
    report = run(project)
    assert counts(report, "users") == (0, 6, 0, 4)
    assert project.rows("SELECT email, name, age FROM users ORDER BY id") == [
        ("u1@example.com", "Person 1", 99)] + [(f"u{n}@example.com", f"Person {n}", n) for n in range(2, 7)] + [
        ("by-hand@example.com", "Hand", None)]
    assert counts(report, "roles") == (1, 0, 1, 0)
    assert project.rows("SELECT name FROM roles ORDER BY id") == [("role1",), ("renamed",), ("role2",)]
    assert not run(project).changed


@pytest.mark.parametrize("python_first", [True, False], ids=["python-then-yaml", "yaml-then-python"])
def test_the_same_key_in_a_python_fixture_and_a_yaml_fixture_names_both(project: Project, python_first: bool) -> None:
    py, yaml = ("common/gen.py", "dev/more.yaml") if python_first else ("dev/gen.py", "common/more.yaml")
    project.write(py, '''
        from seedkit import fixture


        @fixture("users", key=["email"], count=5)
        def users(fake, n):
            return {"email": f"u{n}@example.com", "name": "generated"}
    ''')
    project.write(yaml, "table: users\nkey: [email]\nrows:\n  - {email: x@example.com, name: typed}\n"
                     "  - {email: u4@example.com, name: typed}\n")
    with pytest.raises(FixtureError) as exc:
        run(project)
    text = str(exc.value)
    assert "u4@example.com" in text and "gen.py" in text and "more.yaml" in text, text
    assert everything(project) == {t: [] for t in TABLES}


@pytest.mark.parametrize("case", ["syntax", "import-time", "not-a-dict"])
def test_broken_fixture_files_are_located_errors(project: Project, case: str) -> None:
    source, where = {
        "syntax": ("from seedkit import fixture\n\n\n@fixture('users', count=2)\ndef users(fake, n)\n"
                   "    return {}\n", ["bad.py:5", "syntax"]),
        "import-time": ("from seedkit import fixture\n\nPREFIX = undefined_name\n",
                        ["bad.py:3", "NameError", "undefined_name"]),
        "not-a-dict": ("from seedkit import fixture\n\n\n@fixture('users', key=['email'])\ndef users(fake):\n"
                       "    yield {'email': 'a@example.com'}\n    yield ['b@example.com']\n",
                       ["bad.py", "row 2", "list", "dict"]),
    }[case]
    project.write("common/roles.yaml", ROLES)
    project.write("dev/bad.py", source)
    with pytest.raises(FixtureError) as exc:
        run(project)
    for part in where:
        assert part in str(exc.value), (part, str(exc.value))
    assert everything(project) == {t: [] for t in TABLES}


REF_BATCHES = '''
from seedkit import fixture, ref


@fixture("notes_by_role", key=["slug"])
def notes(fake):
    for n in range(1, 2501):
        role = ref("roles", "admin" if n % 3 else "member")
        if n == 1700:
            role = None  # this batch has to go row by row
        yield {"slug": f"s{n}", "role_id": role, "code_num": ref("codes", n % 5 + 1), "body": f"note {n}"}
'''


@pytest.mark.parametrize("by_column", [True, False], ids=["by column", "row by row"])
def test_reference_batches_built_by_column_store_what_row_by_row_stores(project: Project, by_column: bool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The column-at-a-time builder for batches of ``ref()`` rows (the fast path) and the row-by-row
    one store the same rows; a batch the fast path cannot take falls back on its own."""
    if project.pg:
        project.sql("CREATE TABLE codes (num int PRIMARY KEY, label text); CREATE TABLE notes_by_role (id bigserial "
                 "PRIMARY KEY, slug text NOT NULL UNIQUE, role_id int REFERENCES roles (id), code_num int "
                 "REFERENCES codes (num), body text)")
    else:
        project.sql("", "CREATE TABLE codes (num INTEGER PRIMARY KEY, label TEXT); CREATE TABLE notes_by_role (id "
                     "INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, role_id INTEGER REFERENCES roles (id), "
                     "code_num INTEGER REFERENCES codes (num), body TEXT)")
    project.write("common/roles.yaml", ROLES)
    project.write("common/codes.yaml", "key: [num]\nrows:\n" + "".join(f"  - {{num: {i}, label: c{i}}}\n"
                                                                  for i in range(1, 6)))
    project.write("dev/notes.py", REF_BATCHES)
    toml = project.root / "seedkit.toml"
    toml.write_text(toml.read_text().replace("faker_seed = 7", "faker_seed = 7\nbatch_size = 1000"))
    from seedkit.seed.rows import RowBuilder

    real = RowBuilder.ref_columns_maker
    used: list[bool] = []

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        maker = real(self, *args, **kwargs) if by_column else None
        if maker is None:
            return None

        def counted(chunk):  # type: ignore[no-untyped-def]
            rows = maker(chunk)
            used.append(rows is not None)
            return rows
        return counted

    monkeypatch.setattr(RowBuilder, "ref_columns_maker", spy)
    assert counts(run(project), "notes_by_role") == (2500, 0, 0, 0)
    # SQLite checks every value in Python: the row-by-row path always
    assert used == ([True, False, True] if by_column and project.pg else [])
    got = project.rows("SELECT n.slug, r.name, n.code_num, n.body FROM notes_by_role n LEFT JOIN roles r "
                    "ON r.id = n.role_id ORDER BY n.id")
    want = [(f"s{n}", None if n == 1700 else ("admin" if n % 3 else "member"), n % 5 + 1, f"note {n}")
            for n in range(1, 2501)]
    assert got == want


DEF_LINES = '''\
"""Fixtures laid out in the ways a definition can start."""
import functools

from seedkit import fixture


@fixture("a", key=["n"], count=1)
def plain(fake, n):
    return {"n": n}


@fixture(
    "b",
    key=["n"],
    count=1,
)
def spread(fake, n):
    return {"n": n}


def noted(func):
    @functools.wraps(func)
    def inner(*args):
        return func(*args)
    return inner


@fixture("c", key=["n"], count=1)
@noted
def stacked(fake, n):
    return {"n": n}


@fixture("d", key=["n"])
def streamed(fake):
    yield {"n": 1}

class Holder:
    @staticmethod
    @fixture("e", key=["n"], count=1)
    def inside(fake, n): return {"n": n}
    nested = inside

pulled = Holder.nested
made = fixture("f", key=["n"], count=1)(lambda fake, n: {"n": n})
'''


def test_a_fixture_is_located_where_inspect_says_its_definition_starts(tmp_path: Path) -> None:
    """The line every fixture's problems name is the one ``inspect.getsourcelines`` gives for its function
    (read from the code object, not by tokenizing the file)."""
    import inspect

    from seedkit.seed.python_fixtures import _def_line, load_python

    path = tmp_path / "shapes.py"
    path.write_text(DEF_LINES)
    fixtures = load_python(path, shown="seeds/shapes.py", faker_seed=1, faker_locale="en_US")
    namespace: dict = {}
    exec(compile(DEF_LINES, str(path), "exec"), namespace)  # noqa: S102 - the same file's functions, for inspect
    names = ["plain", "spread", "stacked", "streamed", "pulled", "made"]
    want = [inspect.getsourcelines(namespace[name])[1] for name in names]
    assert [_def_line(namespace[name]) for name in names] == want
    assert [fx.location.line for fx in sorted(fixtures, key=lambda fx: fx.table)] == want == [7, 12, 28, 34, 39, 45]
