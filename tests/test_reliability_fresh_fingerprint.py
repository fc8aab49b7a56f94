"""A first run's fingerprint of a table it filled is the one the plain path records: a differential test
(RELIABILITY.md §7).

A fixture whose rows reference other rows is staged, then inserted into its empty table by one
``INSERT … SELECT`` under a savepoint of its own (seed/write.py, ``insert_all``). Every row it inserts has
the same ``xmin``, so the fingerprint it moves (seed/fingerprints.py) is the row count times the hash of one
row read back (``Fingerprints.write_into_empty``), not a sum returned row by row. Two databases side by side
get the same random steps (the fixture's rows and references change, rows are removed or added behind
seedkit's back, the table is emptied so the next run fills it again, another session commits a row into
the table just before the insert, a reference that does not resolve, a repeated key, a value the table
refuses), each followed by ``seedkit run dev --json``: one side as shipped, the other with the insert
returning every row's hash (the plain path). After every step both have the same exit code, the same
report and the same table contents, and each side's recorded fingerprint of the table matches the table
(or not) alike; after a successful run that nobody else wrote meanwhile it matches, so the next run skips
rows. ``SEEDKIT_FRESH_SEED`` / ``SEEDKIT_FRESH_STEPS`` replay another walk.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedkit.db.catalog import TableName
from seedkit.seed.fingerprints import Fingerprints
from seedkit.seed.write import Writer
from tests.support import Project, pg_projects

pytestmark = pytest.mark.postgres

STEPS = int(os.environ.get("SEEDKIT_FRESH_STEPS", "40"))
SEED = int(os.environ.get("SEEDKIT_FRESH_SEED", "20261201"))
BATCH = 40

SCHEMA = """
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, name text);
CREATE TABLE posts (id bigserial PRIMARY KEY, slug text NOT NULL UNIQUE, title text, score int CHECK (score >= 0),
                    author_id bigint NOT NULL REFERENCES users (id));
"""
USERS = 30

POSTS = '''\
from seedkit import fixture, ref

ROWS = {rows}
SHIFT = {shift}
MISSING = {missing}
DUP = {dup}
NEGATIVE = {negative}
TITLE = {title!r}


@fixture("posts", key=["slug"])
def posts(fake):
    for i in range(1, ROWS + 1):
        author = f"u{{(i + SHIFT) % {users} + 1}}@x.org" if i != MISSING else "nobody@x.org"
        yield {{"slug": f"p{{1 if i == DUP else i}}", "title": f"{{TITLE}} {{i}}",
               "score": -1 if i == NEGATIVE else i % 7, "author_id": ref("users", author)}}
'''


def users_yaml() -> str:
    return "key: [email]\nrows:\n" + "".join(f"  - {{email: u{n}@x.org, name: U{n}}}\n" for n in range(1, USERS + 1))


def posts_source(rng: random.Random) -> str:
    rows = rng.choice([0, 1, BATCH - 1, BATCH, 3 * BATCH + 7, 6 * BATCH])
    bad = rng.random() < 0.25 and rows > 2
    kind = rng.choice(["missing", "dup", "negative"]) if bad else ""
    pick = (lambda: rng.randint(2, rows)) if rows > 2 else (lambda: 0)
    return POSTS.format(rows=rows, shift=rng.randint(0, 3), users=USERS, title=rng.choice(["Post", "Entry"]),
                        missing=pick() if kind == "missing" else 0, dup=pick() if kind == "dup" else 0,
                        negative=pick() if kind == "negative" else 0)


def fingerprint_matches(p: Project) -> bool | None:
    """Does the recorded fingerprint of posts match posts as it is (None: nothing recorded)?"""
    with psycopg.connect(p.url) as c:
        if c.execute("SELECT to_regclass('seedkit_digests') IS NULL").fetchone()[0]:  # type: ignore[index]
            return None
        row = c.execute("SELECT state FROM seedkit_digests WHERE table_name = 'posts'").fetchone()
        if row is None:
            return None
        recorded = json.loads(row[0]).get("posts")
        now = c.execute("SELECT count(*), coalesce(sum(hashint8extended(xmin::text::bigint, 0)::numeric), 0)::text "
                        "FROM posts").fetchone()
    return recorded is not None and [int(now[0]), now[1]] == [recorded[0], recorded[1]]  # type: ignore[index]


def contents(p: Project) -> tuple:
    with psycopg.connect(p.url) as c:
        return tuple(c.execute(q).fetchall() for q in (
            "SELECT p.id, p.slug, p.title, p.score, u.email FROM posts p JOIN users u ON u.id = p.author_id "
            "ORDER BY p.slug",
            "SELECT id, email, name FROM users ORDER BY email"))


def run(p: Project, plain: bool, commit_before_insert: str | None, read_back: list[int]) -> tuple[int, Any]:
    with pytest.MonkeyPatch.context() as m:
        real_insert, real_fresh = Writer.insert_all, Fingerprints.write_into_empty

        def insert_all(self: Writer, *args: Any) -> None:
            if commit_before_insert:  # another session commits a row into the table just before the insert
                with psycopg.connect(p.url, autocommit=True) as c:
                    c.execute(commit_before_insert)
            real_insert(self, *args)

        def fresh(self: Fingerprints, statement: str, table: TableName, target: str) -> tuple[int, int]:
            read_back.append(1)
            return real_fresh(self, statement, table, target)

        m.setattr(Writer, "insert_all", insert_all)
        if plain:
            m.setattr(Fingerprints, "write_into_empty",  # the plain path: every row's hash returned
                      lambda self, statement, table, target: self.write(statement, table))
        else:
            m.setattr(Fingerprints, "write_into_empty", fresh)
        return p.seed_report("dev")


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    def files(p: Project) -> None:
        p.write("dev/users.yaml", users_yaml())

    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=BATCH, files=files) as make:
        yield make("fast"), make("plain")


def test_a_first_run_records_the_fingerprint_the_plain_path_records(two_projects) -> None:
    fast, plain = two_projects
    rng = random.Random(SEED)
    history: list[str] = []
    read_back: list[int] = []
    matched_after_clean_run = 0
    source = posts_source(rng)
    for i in range(STEPS):
        outside, commit = [], None
        what = rng.choice(["fixture", "empty", "empty", "delete", "insert", "commit", "nothing"])
        if what == "fixture" or i == 0:
            source = posts_source(rng)
        elif what == "empty":
            outside.append("DELETE FROM posts" if rng.random() < 0.5 else "TRUNCATE posts")
        elif what == "delete":
            outside.append(f"DELETE FROM posts WHERE slug = 'p{rng.randint(1, 50)}'")
        elif what == "insert":
            outside.append(f"INSERT INTO posts (slug, title, score, author_id) SELECT 'x{i}', 'hand', 1, min(id) "
                           "FROM users")
        elif what == "commit":
            outside.append("TRUNCATE posts")
            commit = (f"INSERT INTO posts (slug, title, score, author_id) SELECT 'c{i}', 'other', 2, min(id) "
                      "FROM users WHERE NOT EXISTS (SELECT 1 FROM posts)")
        history.append(f"{i}: {what} {outside} {source.splitlines()[2:8]}")
        outcomes = []
        for p, is_plain in ((fast, False), (plain, True)):
            p.write("dev/posts.py", source)
            for statement in outside:
                p.sql(statement)
            before = len(read_back)
            code, report = run(p, is_plain, commit, read_back)
            outcomes.append((code, report, contents(p), fingerprint_matches(p)))
            if not is_plain and code == 0 and not commit and len(read_back) > before and outcomes[-1][3] is not None:
                assert outcomes[-1][3], "\n".join(history)  # the record matches what the run left
                matched_after_clean_run += 1
        assert outcomes[0] == outcomes[1], "\n".join(history)
    assert read_back, "the walk never filled an empty table by INSERT … SELECT"
    assert matched_after_clean_run >= 3
