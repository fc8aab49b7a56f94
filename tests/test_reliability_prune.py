"""``prune: true`` gives the same result from wherever ``seedkit run`` is started.

The ledger (``seedkit_rows``) and the digests know a fixture by its path in the seeds folder, never by
the working directory. Every combination of two places a run may start from — the project root,
``seeds/``, a subfolder of the project, another directory with ``--config`` — must prune the row that
left the fixture and keep a row inserted by hand, for YAML and Python fixtures (CSV files have no
header to ask for prune). Ledgers written by
earlier versions (keyed by the path relative to the working directory of that run, or absolute) are
carried over on the first run.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seedkit.cli import app
from tests.support import Project
from tests.support import seedkit as seedkit_process

SCHEMA = """
CREATE TABLE roles (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, label TEXT);
CREATE TABLE users (email TEXT PRIMARY KEY, name TEXT);
"""
ROLES = "key: [name]\nprune: true\nrows:\n  - {name: admin, label: A}\n  - {name: member, label: M}\n" \
        "  - {name: guest, label: G}\n"
USERS = '''
from seedkit import fixture

NAMES = {names}


@fixture("users", key="email", prune=True)
def users(fake):
    for name in NAMES:
        yield {{"email": f"{{name}}@example.com", "name": name}}
'''
PLACES = ["root", "seeds", "subfolder", "elsewhere"]


def make_project(root: Path, url: str) -> Project:
    proj = Project(root, url, {"dev": {"include": ["common", "dev"]}})
    proj.sql(SCHEMA.replace("INTEGER PRIMARY KEY", "serial PRIMARY KEY") if proj.pg else SCHEMA, SCHEMA)
    proj.write("common/roles.yaml", ROLES)
    proj.write("dev/users.py", USERS.format(names=["ada", "bob", "cy"]))
    (root / "src" / "app").mkdir(parents=True)
    return proj


@contextmanager
def cwd(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_from(proj: Project, place: str, elsewhere: Path, *args: str):
    """``seedkit run dev`` started from ``place``; only 'elsewhere' needs --config."""
    folder = {"root": proj.root, "seeds": proj.root / "seeds", "subfolder": proj.root / "src" / "app",
              "elsewhere": elsewhere}[place]
    options = ["--config", str(proj.root / "seedkit.toml")] if place == "elsewhere" else []
    with cwd(folder):
        result = CliRunner().invoke(app, [*options, "run", "dev", *args])
    assert result.exit_code == 0, (place, result.output, result.stderr)
    return result


def state(proj: Project) -> dict[str, list[tuple]]:
    return {"roles": proj.rows("SELECT name FROM roles ORDER BY name"),
            "users": proj.rows("SELECT email FROM users ORDER BY email")}


def remove_one_row_each(proj: Project) -> None:
    proj.write("common/roles.yaml", ROLES.replace("  - {name: member, label: M}\n", ""))
    proj.write("dev/users.py", USERS.format(names=["ada", "cy"]))


def insert_by_hand(proj: Project, suffix: str) -> None:
    proj.sql(f"INSERT INTO roles (name, label) VALUES ('hand{suffix}', 'H');"
             f"INSERT INTO users VALUES ('hand{suffix}@example.com', 'H');")


EXPECTED = {"roles": [("admin",), ("guest",), ("hand1",), ("hand2",), ("member",)],
            "users": [("ada@example.com",), ("cy@example.com",), ("hand1@example.com",), ("hand2@example.com",)]}


@pytest.mark.parametrize("first,second", list(itertools.product(PLACES, PLACES)))
def test_prune_gives_the_same_result_from_every_folder(db_url: str, tmp_path: Path, first: str, second: str) -> None:
    (tmp_path / "proj").mkdir()
    proj = make_project(tmp_path / "proj", db_url)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_from(proj, first, elsewhere)
    insert_by_hand(proj, "1")
    remove_one_row_each(proj)
    run_from(proj, second, elsewhere)
    # the rows that left the fixtures are gone, the rows inserted by hand stay
    after = state(proj)
    assert after == {k: [r for r in v if r[0] not in ("member", "hand2", "hand2@example.com")] for k, v in
                     EXPECTED.items()}
    # the removed rows come back by hand: they are not seedkit's any more, and no run may delete them
    proj.sql("INSERT INTO roles (name, label) VALUES ('member', 'by hand');")
    insert_by_hand(proj, "2")
    for place in PLACES:
        report = run_from(proj, place, elsewhere, "--json")
        assert '"deleted": 0' in report.stdout or '"deleted":0' in report.stdout.replace(" ", ""), report.stdout
    assert state(proj) == EXPECTED
    ledger = proj.rows("SELECT DISTINCT fixture FROM seedkit_rows ORDER BY 1")
    assert ledger == [("common/roles.yaml#1:roles",), ("dev/users.py:users",)]


def test_a_real_process_prunes_the_same_from_seeds_and_from_another_folder(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    proj = make_project(tmp_path / "proj", pg_url)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = seedkit_process(proj.root / "seeds", "run", "dev")
    assert first.returncode == 0, first.stderr
    insert_by_hand(proj, "1")
    remove_one_row_each(proj)
    second = seedkit_process(elsewhere, "--config", str(proj.root / "seedkit.toml"), "run", "dev")
    assert second.returncode == 0, second.stderr
    assert state(proj) == {k: [r for r in v if r[0] not in ("member", "hand2", "hand2@example.com")]
                           for k, v in EXPECTED.items()}


LEGACY = {  # how earlier versions named each fixture, by the folder they ran from
    "root": ("seeds/common/roles.yaml#1:roles", "seeds/dev/users.py:users"),
    "subfolder": ("{root}/seeds/common/roles.yaml#1:roles", "{root}/seeds/dev/users.py:users"),
    "moved-project": ("/old/checkout/seeds/common/roles.yaml#1:roles", "/old/checkout/seeds/dev/users.py:users"),
}


@pytest.mark.parametrize("written_from", sorted(LEGACY))
def test_a_ledger_written_by_an_earlier_version_is_carried_over(db_url: str, tmp_path: Path,
                                                                written_from: str) -> None:
    (tmp_path / "proj").mkdir()
    proj = make_project(tmp_path / "proj", db_url)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_from(proj, "root", elsewhere)
    # rewrite the ledger as an earlier version left it
    names = [n.format(root=proj.root.resolve()) for n in LEGACY[written_from]]
    new = ["common/roles.yaml#1:roles", "dev/users.py:users"]
    ph = "%s" if proj.pg else "?"
    from seedkit import db

    with db.connect(proj.url) as d, d.transaction():
        for old_name, new_name in zip(names, new):
            d.execute(f"UPDATE seedkit_rows SET fixture = {ph} WHERE fixture = {ph}", [old_name, new_name])
        # an unrelated fixture's rows (another file, same table) are not this fixture's
        d.execute(f"INSERT INTO seedkit_rows VALUES ({ph}, 'roles', '[\"hand1\"]')",
                  ["seeds/dev/roles.yaml#1:roles"])
    insert_by_hand(proj, "1")
    remove_one_row_each(proj)
    dry = run_from(proj, "seeds", elsewhere, "--dry-run", "--json")  # a dry run sees the old ledger, writes nothing
    assert dry.stdout.count('"deleted": 1') == 2, dry.stdout
    assert proj.scalar("SELECT count(*) FROM seedkit_rows WHERE fixture LIKE '%seeds/%'") == 7
    run_from(proj, "seeds", elsewhere)
    assert state(proj) == {k: [r for r in v if r[0] not in ("member", "hand2", "hand2@example.com")]
                           for k, v in EXPECTED.items()}
    ledger = proj.rows("SELECT fixture, count(*) FROM seedkit_rows GROUP BY fixture ORDER BY 1")
    assert ledger == [("common/roles.yaml#1:roles", 2), ("dev/users.py:users", 2), ("seeds/dev/roles.yaml#1:roles", 1)]


def test_python_fixtures_import_the_projects_modules_from_every_folder(sqlite_url: str, tmp_path: Path) -> None:
    """A fixture importing a module of the project (not installed) works from any folder, in a real
    process started as ``python -m seedkit`` (which would otherwise put the working directory first)."""
    (tmp_path / "proj").mkdir()
    proj = make_project(tmp_path / "proj", sqlite_url)
    (proj.root / "projnames.py").write_text("NAMES = ['ada', 'bob', 'cy']\n")
    proj.write("dev/users.py", USERS.format(names="__import__('projnames').NAMES"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for folder in (proj.root, proj.root / "seeds", proj.root / "src" / "app", elsewhere):
        done = seedkit_process(folder, "--config", str(proj.root / "seedkit.toml"), "run", "dev")
        assert done.returncode == 0, (folder, done.stderr)
    assert state(proj)["users"] == [("ada@example.com",), ("bob@example.com",), ("cy@example.com",)]


def test_messages_name_the_file_as_seen_from_the_working_directory(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    proj = make_project(tmp_path / "proj", db_url)
    proj.write("common/roles.yaml", ROLES + "  - {name: broken, label: [1]}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    absolute = str((proj.root / "seeds" / "common" / "roles.yaml").resolve())
    for folder, shown in ((proj.root, "seeds/common/roles.yaml:7"), (proj.root / "seeds", "common/roles.yaml:7"),
                          (elsewhere, absolute + ":7")):
        with cwd(folder):
            result = CliRunner().invoke(app, ["--config", str(proj.root / "seedkit.toml"), "run", "dev"])
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {shown}"), (folder, result.stderr)


def test_digests_know_a_fixture_by_its_path_in_the_seeds_folder(pg_url: str, tmp_path: Path) -> None:
    """The record that lets a rerun skip unchanged rows is found again from another folder."""
    (tmp_path / "proj").mkdir()
    proj = make_project(tmp_path / "proj", pg_url)
    config = proj.root / "seedkit.toml"
    config.write_text(config.read_text().replace("faker_seed = 7", "faker_seed = 7\nbatch_size = 100"))
    proj.write("dev/users.py", USERS.format(names=[f"user{i}" for i in range(1000)]).replace(", prune=True", ""))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for place in PLACES:
        run_from(proj, place, elsewhere)
        assert proj.rows("SELECT fixture FROM seedkit_digests") == [("dev/users.py:users",)], place
