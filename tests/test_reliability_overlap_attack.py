"""RELIABILITY.md §20 attacked: the overlap (a table's insert on a background thread while the next
fixture's first batch is built, its nested references looked up ahead) must end every run as the plain
run ends it. Each test sets the same project up twice, runs it with the overlap on and with
``SEEDKIT_OVERLAP=0``, and compares exit codes, reports or errors, and table contents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import Project, pg_projects
from tests.test_reliability_overlap import overlap_switch


@pytest.fixture
def twins(pg_server: str, tmp_path: Path) -> Iterator[Callable[[str], tuple[Project, Project]]]:
    """``make(schema)``: two projects on two new databases holding ``schema``."""
    with pg_projects(pg_server, tmp_path, schema="SELECT 1") as make:
        count = [0]

        def both(schema: str) -> tuple[Project, Project]:
            count[0] += 1
            pair = make(f"on{count[0]}"), make(f"off{count[0]}")
            for p in pair:
                p.sql(schema)
            return pair

        yield both


def dump(p: Project, tables: list[str]) -> dict[str, list[tuple]]:
    with psycopg.connect(p.url) as c:
        return {t: c.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}


def compare(pair: tuple[Project, Project], tables: list[str], files: dict[str, str],
            setup: str = "", *args: str) -> tuple[int, Any, list[str]]:
    """Run both (overlap on, then off) after writing ``files`` and running ``setup``; assert they agree;
    the outcome and what the overlapping run did in the background."""
    seen, used_on = [], []
    for p, on in zip(pair, (True, False)):
        for rel, text in files.items():
            p.write(rel, text)
        if setup:
            p.sql(setup)
        used: list[str] = []
        with overlap_switch(on, used):
            code, report = p.seed_report("dev", *args)
        seen.append((code, report, dump(p, tables)))
        if on:
            used_on = used
    assert seen[0] == seen[1], f"overlap on:\n{seen[0]}\noverlap off:\n{seen[1]}"
    return seen[0][0], seen[0][1], used_on


# -- lookups moved ahead of a write that changes what they read --------------------------------------------
CASCADE = """
CREATE TABLE a_kinds (name text PRIMARY KEY);
CREATE TABLE b_items (id serial PRIMARY KEY, name text UNIQUE NOT NULL, kind text NOT NULL REFERENCES a_kinds);
CREATE TABLE c_labels (name text PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE artists (id serial PRIMARY KEY, name text NOT NULL, label_code text REFERENCES c_labels (code)
                      ON UPDATE {action}, UNIQUE (name, label_code));
CREATE TABLE albums (id serial PRIMARY KEY, title text NOT NULL, artist_id int REFERENCES artists,
                     UNIQUE (title, artist_id));
CREATE TABLE d_tracks (id serial PRIMARY KEY, name text NOT NULL UNIQUE, album_id int NOT NULL REFERENCES albums);
INSERT INTO c_labels VALUES ('label', 'OLD');
INSERT INTO artists (name, label_code) VALUES ('singer', 'OLD');
INSERT INTO albums (title, artist_id) VALUES ('record', 1);
"""
CASCADE_FILES = {
    "dev/01_kinds.yaml": "table: a_kinds\nkey: [name]\nrows:\n- {name: k}\n",
    "dev/02_items.yaml": "table: b_items\nkey: [name]\nrows:\n- {name: x, kind: !ref a_kinds/k}\n",
    "dev/03_labels.yaml": "table: c_labels\nkey: [name]\nrows:\n- {name: label, code: NEW}\n",
    "dev/04_tracks.yaml": "table: d_tracks\nkey: [name]\nrows:\n"
                          "- {name: t, album_id: !ref {table: albums, title: record, artist_id: "
                          "!ref {table: artists, name: singer, label_code: OLD}}}\n",
}


@pytest.mark.parametrize("action", ["CASCADE", "SET NULL"])
def test_a_lookup_is_not_moved_before_an_update_whose_foreign_key_action_writes_what_it_reads(
        twins, action: str) -> None:
    """Updating a label's code cascades into ``artists`` (a table with no fixture and no trigger of its
    own): the plain run then finds no artist with the old code. Looked up before that update, the overlap
    found the old artist and loaded the track."""
    code, report, used = compare(twins(CASCADE.format(action=action)),
                                 ["a_kinds", "b_items", "c_labels", "artists", "d_tracks"], CASCADE_FILES)
    assert "background" in used
    assert code == 2, report
    assert "unresolved" in str(report), report


INHERITED = """
CREATE TABLE a_kinds (name text PRIMARY KEY);
CREATE TABLE b_items (id serial PRIMARY KEY, name text UNIQUE NOT NULL, kind text NOT NULL REFERENCES a_kinds);
CREATE TABLE people (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE c_staff (badge text NOT NULL UNIQUE) INHERITS (people);
CREATE TABLE notes (id serial PRIMARY KEY, title text NOT NULL, person_id int NOT NULL, UNIQUE (title, person_id));
CREATE TABLE d_tracks (id serial PRIMARY KEY, name text NOT NULL UNIQUE, note_id int NOT NULL REFERENCES notes);
INSERT INTO c_staff (email, badge) VALUES ('old@example.com', 'B1');
INSERT INTO notes (title, person_id) VALUES ('note', 1);
"""


def test_a_lookup_is_not_moved_before_an_update_of_a_table_its_table_inherits(twins) -> None:
    """``c_staff`` inherits ``people``: updating a staff row's email changes what a lookup in ``people``
    reads. The plain run then finds no one with the old email."""
    files = {**{k: v for k, v in CASCADE_FILES.items() if "tracks" not in k and "labels" not in k},
             "dev/03_staff.yaml": "table: c_staff\nkey: [badge]\nrows:\n- {badge: B1, email: new@example.com}\n",
             "dev/04_tracks.yaml": "table: d_tracks\nkey: [name]\nrows:\n"
                                   "- {name: t, note_id: !ref {table: notes, title: note, person_id: "
                                   "!ref {table: people, email: old@example.com, column: id}}}\n"}
    code, report, used = compare(twins(INHERITED), ["a_kinds", "b_items", "people", "c_staff", "d_tracks"], files)
    assert "background" in used
    assert code == 2, (report, used)
