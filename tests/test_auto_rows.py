"""``auto`` rows in Python fixtures (docs/python-fixtures.md, "auto rows"): every column a fixture leaves
out gets a valid, deterministic value -- types and lengths, CHECK ranges and IN lists, enums, NOT NULL,
single and composite unique keys, foreign keys with ``per=`` -- and a rerun writes nothing. The database
enforces every constraint, so a load without error is the proof; the tests also read the rows back.
PostgreSQL and SQLite. (bench/auto_bench.py runs the same shape at 1M rows.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import seedkit
from seedkit.errors import FixtureError
from tests.support import Project, create_pg_database, drop_pg_database

PG_SCHEMA = """
CREATE TYPE tier AS ENUM ('free', 'pro', 'team');
CREATE TABLE users (id serial PRIMARY KEY, email varchar(40) NOT NULL UNIQUE, name text NOT NULL,
    phone text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE shops (id serial PRIMARY KEY, name varchar(30) NOT NULL, city text NOT NULL);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    code varchar(20) NOT NULL UNIQUE,
    user_id int NOT NULL REFERENCES users (id),
    shop_id int NOT NULL REFERENCES shops (id),
    seq int NOT NULL CHECK (seq BETWEEN 1 AND 10),
    qty int NOT NULL CHECK (qty BETWEEN 1 AND 50),
    tier tier NOT NULL,
    state text NOT NULL CHECK (state IN ('open', 'paid', 'shipped')),
    total numeric(8,2) NOT NULL CHECK (total >= 0),
    placed date NOT NULL,
    note text,
    UNIQUE (user_id, seq)
);
CREATE TABLE stock (shop_id int NOT NULL REFERENCES shops (id), user_id int NOT NULL REFERENCES users (id),
    amount int NOT NULL, PRIMARY KEY (shop_id, user_id));
"""

SQLITE_SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(40) NOT NULL UNIQUE, name TEXT NOT NULL,
    phone TEXT, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE shops (id INTEGER PRIMARY KEY, name VARCHAR(30) NOT NULL, city TEXT NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    code VARCHAR(20) NOT NULL UNIQUE CHECK (length(code) <= 20),
    user_id INTEGER NOT NULL REFERENCES users (id),
    shop_id INTEGER NOT NULL REFERENCES shops (id),
    seq INTEGER NOT NULL CHECK (seq BETWEEN 1 AND 10),
    qty INTEGER NOT NULL CHECK (qty BETWEEN 1 AND 50),
    tier TEXT NOT NULL CHECK (tier IN ('free', 'pro', 'team')),
    state TEXT NOT NULL CHECK (state IN ('open', 'paid', 'shipped')),
    total DECIMAL(8,2) NOT NULL CHECK (total >= 0),
    placed DATE NOT NULL,
    note TEXT,
    UNIQUE (user_id, seq)
);
CREATE TABLE stock (shop_id INTEGER NOT NULL REFERENCES shops (id), user_id INTEGER NOT NULL REFERENCES users (id),
    amount INTEGER NOT NULL, PRIMARY KEY (shop_id, user_id));
"""

FIXTURES = '''
from seedkit import fixture


@fixture("users", count={users}, auto=True)
def users(fake, n):
    pass  # every column from auto


@fixture("shops", count=7, auto=True)
def shops(fake, n):
    return {{"city": "Lyon" if n == 1 else fake.city()}}  # an override


@fixture("orders", auto=True, per={{"user_id": 3}})
def orders(fake, n):
    return {{"qty": 1 + n % 50}}


@fixture("stock", count={stock}, auto=True)
def stock(fake, n):
    return None
'''


def shop_project(root: Path, url: str, users: int = 40, stock: int = 200) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    p = Project(root, url, envs={"dev": {"include": ["dev"]}})
    p.sql(PG_SCHEMA, SQLITE_SCHEMA)
    p.write("dev/shop.py", FIXTURES.format(users=users, stock=stock))
    return p


@pytest.fixture
def project(db_url: str, tmp_path: Path) -> Project:
    return shop_project(tmp_path / "p", db_url)


def contents(p: Project) -> dict[str, list[tuple]]:
    return {t: p.rows(f"SELECT * FROM {t} ORDER BY 1, 2") for t in ("users", "shops", "orders", "stock")
            } | {"users": p.rows("SELECT id, email, name, phone FROM users ORDER BY id")}


def test_auto_rows_load_with_every_constraint_kept_and_a_rerun_writes_nothing(project: Project) -> None:
    report = seedkit.run("dev", config=project.config())
    assert [(t.table, t.inserted) for t in report.tables] == [("shops", 7), ("users", 40), ("orders", 120),
                                                               ("stock", 200)]
    again = seedkit.run("dev", config=project.config())
    assert not again.changed and again.unchanged == 367
    # foreign keys with per=: 3 orders for every user, in order
    assert project.rows("SELECT user_id, count(*) FROM orders GROUP BY user_id HAVING count(*) <> 3") == []
    assert project.rows("SELECT user_id FROM orders ORDER BY id LIMIT 4") == [(1,), (1,), (1,), (2,)]
    # the composite key (user_id, seq): seq counts within the user, inside its CHECK range
    assert project.rows("SELECT DISTINCT seq FROM orders ORDER BY seq") == [(1,), (2,), (3,)]
    # the override is kept; CHECK ranges, IN lists and the enum hold (the database checks them too)
    assert project.rows("SELECT count(*) FROM orders WHERE qty <> 1 + id % 50") == [(0,)]
    assert {r[0] for r in project.rows("SELECT DISTINCT state FROM orders")} <= {"open", "paid", "shipped"}
    assert len({r[0] for r in project.rows("SELECT DISTINCT tier FROM orders")}) == 3
    codes = [r[0] for r in project.rows("SELECT code FROM orders")]
    assert len(set(codes)) == len(codes) and max(map(len, codes)) <= 20
    # realistic values by column name
    emails = [r[0] for r in project.rows("SELECT email FROM users")]
    assert all(re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", e) and len(e) <= 40 for e in emails)
    assert len(set(emails)) == 40
    assert all(" " in r[0] for r in project.rows("SELECT name FROM users"))
    assert project.rows("SELECT city FROM shops WHERE id = 1") == [("Lyon",)]
    # the join table's key (shop_id, user_id), only foreign keys: pairs walked in mixed radix, each once
    pairs = project.rows("SELECT count(DISTINCT shop_id), count(DISTINCT user_id) FROM stock")
    assert pairs == [(7, 29)]  # 200 rows = 28 users × 7 shops + 4


def test_auto_values_are_the_same_in_a_fresh_database(db_url: str, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    first = shop_project(tmp_path / "a", db_url)
    seedkit.run("dev", config=first.config())
    if db_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path / 'b.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        other = create_pg_database(server)
        request.addfinalizer(lambda: drop_pg_database(server, other))
    second = shop_project(tmp_path / "b", other)
    seedkit.run("dev", config=second.config())
    assert contents(first) == contents(second)


def test_more_rows_keep_the_existing_ones(project: Project) -> None:
    seedkit.run("dev", config=project.config())
    before = contents(project)
    project.write("dev/shop.py", FIXTURES.format(users=50, stock=200))
    report = seedkit.run("dev", config=project.config())
    assert report.table("users").inserted == 10 and report.table("users").updated == 0
    assert report.table("orders").inserted == 30 and report.table("orders").updated == 0
    after = contents(project)
    assert after["users"][:40] == before["users"] and after["orders"][:120] == before["orders"]


def test_parents_already_in_the_database_are_picked_when_no_fixture_seeds_them(db_url: str, tmp_path: Path) -> None:
    p = Project(tmp_path, db_url, envs={"dev": {"include": ["dev"]}})
    p.sql(PG_SCHEMA, SQLITE_SCHEMA)
    p.sql("INSERT INTO users (id, email, name) VALUES (5, 'a@x.io', 'A'), (9, 'b@x.io', 'B');"
          "INSERT INTO shops (id, name, city) VALUES (3, 'S', 'C')")
    p.write("dev/o.py", '''
from seedkit import fixture


@fixture("orders", auto=True, per={"users": 2})
def orders(fake, n):
    pass
''')
    report = seedkit.run("dev", config=p.config())
    assert report.table("orders").inserted == 4
    assert p.rows("SELECT user_id, shop_id, seq FROM orders ORDER BY id") == [(5, 3, 1), (5, 3, 2), (9, 3, 1),
                                                                             (9, 3, 2)]
    assert not seedkit.run("dev", config=p.config()).changed


def test_a_key_that_cannot_stay_unique_is_a_located_error_and_nothing_is_written(project: Project) -> None:
    project.write("dev/shop.py", FIXTURES.format(users=40, stock=7 * 40 + 1))
    with pytest.raises(FixtureError) as info:
        seedkit.run("dev", config=project.config())
    assert "281 rows cannot keep (shop_id, user_id) of stock unique: the parent rows make only 280" in str(info.value)
    assert info.value.location is not None and info.value.location.file.endswith("shop.py")
    assert project.rows("SELECT count(*) FROM users") == [(0,)]


def test_a_unique_column_whose_check_range_is_too_small_is_an_error(db_url: str, tmp_path: Path) -> None:
    p = Project(tmp_path, db_url, envs={"dev": {"include": ["dev"]}})
    p.sql("CREATE TABLE t (id int PRIMARY KEY CHECK (id BETWEEN 1 AND 5))")
    p.write("dev/t.py", "from seedkit import fixture\n\n\n@fixture('t', count=6, auto=True)\ndef t(fake, n):\n"
                        "    pass\n")
    with pytest.raises(FixtureError, match=r"range holds fewer than 6 values"):
        seedkit.run("dev", config=p.config())
    p.write("dev/t.py", "from seedkit import fixture\n\n\n@fixture('t', count=5, auto=True)\ndef t(fake, n):\n"
                        "    pass\n")
    assert seedkit.run("dev", config=p.config()).table("t").inserted == 5


def test_per_must_name_a_foreign_key(project: Project) -> None:
    project.write("dev/shop.py", FIXTURES.format(users=4, stock=4).replace('per={"user_id": 3}', 'per={"buyer": 3}'))
    with pytest.raises(FixtureError) as info:
        seedkit.run("dev", config=project.config())
    assert "per={'buyer': 3} names no foreign key" in str(info.value)
    assert "user_id (→ users)" in (info.value.hint or "")


def test_auto_parent_without_its_referenced_column_is_referenced_by_key(db_url: str, tmp_path: Path) -> None:
    """A parent fixture that leaves its serial id to the database: children point at its rows by its key."""
    p = Project(tmp_path, db_url, envs={"dev": {"include": ["dev"]}})
    p.sql(PG_SCHEMA, SQLITE_SCHEMA)
    p.write("dev/a.py", '''
from seedkit import fixture


@fixture("users", key="email", count=5, auto=True)
def users(fake, n):
    return {"email": f"u{n}@example.com"}


@fixture("shops", key="name", count=2, auto=True)
def shops(fake, n):
    return {"name": f"shop {n}"}


@fixture("orders", key="code", auto=True, per={"user_id": 2})
def orders(fake, n):
    pass
''')
    p.sql("INSERT INTO users (email, name) VALUES ('first@x.io', 'taken id 1');"
          "CREATE UNIQUE INDEX shop_names ON shops (name)")
    seedkit.run("dev", config=p.config())
    rows = p.rows("SELECT u.email, count(*) FROM orders o JOIN users u ON u.id = o.user_id GROUP BY u.email "
                  "ORDER BY u.email")
    assert rows == [(f"u{i}@example.com", 2) for i in range(1, 6)]
    assert not seedkit.run("dev", config=p.config()).changed


def test_the_docs_example_loads_as_the_docs_say(pg_url: str, tmp_path: Path) -> None:
    """docs/python-fixtures.md, "auto rows": its schema and fixtures, run as written."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "python-fixtures.md").read_text()
    section = text.split("## `auto` rows", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", section, re.S | re.M)
    ddl = next(body for lang, body in blocks if lang == "sql")
    code = next(body for lang, body in blocks if lang == "python")
    p = Project(tmp_path, pg_url, envs={"dev": {"include": ["dev"]}})
    p.sql(ddl)
    p.write("dev/app.py", "from seedkit import fixture\n\n\n" + code)
    report = seedkit.run("dev", config=p.config())
    assert (report.table("accounts").inserted, report.table("projects").inserted) == (1000, 3000)
    assert not seedkit.run("dev", config=p.config()).changed
    assert p.rows("SELECT min(id), max(id), count(DISTINCT email) FROM accounts") == [(1, 1000, 1000)]
    assert p.rows("SELECT count(*) FROM projects WHERE seats <> 5 + id % 20") == [(0,)]
    assert p.rows("SELECT count(*) FROM (SELECT account_id FROM projects GROUP BY account_id "
                  "HAVING count(*) = 3) x") == [(1000,)]
    third = p.rows("SELECT slug FROM projects WHERE id % 3 = 0")
    assert len(third) == 1000 and all(s.endswith("-3") for (s,) in third)
    assert p.rows("SELECT count(*) FROM accounts WHERE created_at IS NULL") == [(0,)]  # left to its default


PAGILA_SHAPES = """
CREATE DOMAIN year AS integer CONSTRAINT year_check CHECK (((VALUE >= 1901) AND (VALUE <= 2155)));
CREATE TABLE film (film_id serial PRIMARY KEY, title text NOT NULL, release_year year,
    fulltext tsvector NOT NULL);
CREATE FUNCTION film_fulltext() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.fulltext := to_tsvector('simple', NEW.title); RETURN NEW; END $$;
CREATE TRIGGER film_fulltext_trigger BEFORE INSERT OR UPDATE ON film FOR EACH ROW EXECUTE FUNCTION film_fulltext();
"""


def test_domain_checks_and_trigger_filled_columns(pg_url: str, tmp_path: Path) -> None:
    """Shapes found on pagila: a domain with a CHECK (year: 1901…2155) and a NOT NULL tsvector that a
    BEFORE INSERT trigger fills. The schema carries the domain's range and does not require the
    trigger's column; auto stays inside the range and leaves the column to the trigger."""
    import json

    from seedkit import schema

    p = Project(tmp_path, pg_url, envs={"dev": {"include": ["dev"]}})
    p.sql(PAGILA_SHAPES)
    out = schema.write(p.config()).out
    film = json.loads((out / "film.schema.json").read_text())["$defs"]["row"]
    year = film["properties"]["release_year"]["anyOf"][0]
    assert (year["minimum"], year["maximum"]) == (1901, 2155)
    assert "required" not in film  # title is NOT NULL, but the trigger may fill any column
    p.write("dev/film.yaml", "- {film_id: 1, title: Academy Dinosaur, release_year: 1800}\n")
    with pytest.raises(FixtureError, match=r"film.yaml:1, document 1, row 1, column 'release_year': 1800 is out of "
                                           r"range: it must be at least 1901"):
        seedkit.run("dev", config=p.config())
    p.write("dev/film.yaml", "- {film_id: 1, title: Academy Dinosaur, release_year: 2006}\n")
    p.write("dev/more.py", "from seedkit import fixture\n\n\n@fixture('film', count=300, auto=True)\n"
                           "def more(fake, n):\n    return {'film_id': n + 1}\n")
    assert seedkit.run("dev", config=p.config()).table("film").inserted == 301
    assert p.rows("SELECT min(release_year) >= 1901, max(release_year) <= 2155, bool_and(fulltext IS NOT NULL) "
                  "FROM film") == [(True, True, True)]
    assert not seedkit.run("dev", config=p.config()).changed


@pytest.mark.parametrize(("column", "provider"), [
    ("email", "email"), ("email_address", "email"), ("first_name", "first_name"), ("name", "name"),
    ("ship_address", "street_address"),  # northwind's orders: "ship_address" holds "ip_addr", not an IP
    ("ip_address", "ipv4"), ("ship_city", "city"), ("ship_postal_code", "postcode"), ("phone", "phone_number"),
    ("homepage", "url"), ("created_by", None), ("shipped", None)])
def test_column_names_choose_providers(column: str, provider: str | None) -> None:
    from seedkit.schema.auto import provider_for

    assert provider_for(column) == provider


def test_per_without_auto_and_a_bad_count_are_refused_at_decoration() -> None:
    from seedkit import fixture

    with pytest.raises(TypeError, match="only applies to auto fixtures"):
        fixture("orders", per={"user_id": 3})
    with pytest.raises(TypeError, match="must be a positive int"):
        fixture("orders", auto=True, per={"user_id": 0})


def test_providers_are_chosen_as_by_searching_every_pattern() -> None:
    """A column name is searched only by the patterns one of whose words it holds: over every pattern's words
    and fragments, joined in pairs in every way and cased, and random names of their letters, the provider
    is the one searching every pattern in turn gives."""
    import random
    import re

    from seedkit.schema.auto import _NEEDS, _PROVIDERS, provider_for

    def plain(column: str) -> str | None:
        return next((method for pattern, method in _PROVIDERS if re.search(pattern, column.lower())), None)

    words = sorted({w for needs in _NEEDS for w in needs} | {
        "e_mail", "email", "first_name", "given_name", "last_name", "family_name", "surname", "user_name",
        "username", "full_name", "fullname", "display_name", "ipv4", "ipv6", "ip_addr", "ipaddress", "organization",
        "organisation", "user_agent", "useragent", "language", "title", "x", "id", "n", "_", ""})
    names = {a + sep + b for a in words for b in words for sep in ("", "_")}
    rng = random.Random(7)
    letters = "".join(sorted(set("".join(words)))) + "_"
    names |= {"".join(rng.choice(letters) for _ in range(rng.randint(1, 12))) for _ in range(20000)}
    names |= {n.upper() for n in list(names)[:5000]} | {n.title() for n in list(names)[:5000]}
    chosen = {n: provider_for(n) for n in names}
    assert chosen == {n: plain(n) for n in names}
    assert len({p for p in chosen.values() if p}) == len({m for _, m in _PROVIDERS})  # every provider was chosen
