"""Reruns over unchanged fixture files are decided from digests, exactly (seed/rerun.py; RELIABILITY.md §7).

A differential test: two databases side by side get the same random steps (a fixture file edited, a
row moved to another file, prune or ``create_only`` switched, an outside insert, update or delete in
any table, a catalog-only change, a commit by another session at the end of a run, ``--only``,
``--check``), then ``seedkit run dev --json``. One side runs as shipped (a rerun whose record matches
reads no fixture row), the other with the record switched off (every row read, planned, staged and
compared). After every step both must have the same exit code, the same report and the same table
contents. The steps come from a seeded generator (``SEEDKIT_RERUN_SEED``, ``SEEDKIT_RERUN_STEPS``).
"""

from __future__ import annotations

import json
import os
import random
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

import seedkit
from seedkit.cli import app
from seedkit.seed import rerun
from tests.support import Project, create_pg_database, drop_pg_database, pg_projects

pytestmark = pytest.mark.postgres

STEPS = int(os.environ.get("SEEDKIT_RERUN_STEPS", "120"))
SEED = int(os.environ.get("SEEDKIT_RERUN_SEED", "20261130"))

SCHEMA = """
CREATE TABLE artists (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, country text);
CREATE TABLE albums (id bigserial PRIMARY KEY, artist_id bigint NOT NULL REFERENCES artists (id) ON DELETE CASCADE,
                     title text NOT NULL, year int CHECK (year > 1900), UNIQUE (artist_id, title));
CREATE TABLE tracks (id bigserial PRIMARY KEY, album_id bigint NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
                     name text NOT NULL, ms int, UNIQUE (album_id, name));
CREATE TABLE staff (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, boss_id bigint REFERENCES staff (id));
CREATE TABLE genres (name text PRIMARY KEY, note text);
CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.country := upper(NEW.country); RETURN NEW; END $$;
"""
TABLES = ("artists", "albums", "tracks", "staff", "genres")
NAMES = [f"artist {i}" for i in range(8)]


@dataclass
class Files:
    """The fixture files both sides hold; a step may change any part."""

    artists: dict[str, str] = field(default_factory=lambda: {n: "se" for n in NAMES[:5]})
    moved: list[str] = field(default_factory=list)  # artists listed in more_artists.yaml instead
    prune: bool = False
    albums: dict[tuple[str, str], int] = field(default_factory=lambda: {
        (NAMES[i % 5], f"album {i}"): 1990 + i for i in range(6)})
    create_only: bool = False
    ignore: bool = False
    tracks: dict[tuple[str, str, str], int] = field(default_factory=lambda: {
        (NAMES[i % 6 % 5], f"album {i % 6}", f"track {i}"): 1000 * i for i in range(12)})
    staff: dict[str, str | None] = field(default_factory=lambda: {
        "a@x": None, "b@x": "a@x", "c@x": "b@x", "d@x": "a@x"})
    genres: dict[str, str] = field(default_factory=lambda: {"rock": "loud", "jazz": "cool"})
    comment: str = "a"  # a comment in artists.yaml: an edit of the same size

    def write(self, p: Project) -> None:
        def artist_rows(names: list[str]) -> str:
            return "".join(f"  - {{name: {n!r}, country: {self.artists[n]!r}}}\n" for n in names)

        listed = [n for n in self.artists if n not in self.moved]
        p.write("dev/artists.yaml", f"# {self.comment}\nkey: [name]\nprune: {str(self.prune).lower()}\nrows:\n"
                + (artist_rows(listed) if listed else "  []\n").replace("rows:\n  []", "rows: []"))
        moved = [n for n in self.artists if n in self.moved]
        p.write("dev/more_artists.yaml", "table: artists\nkey: [name]\nrows:\n" + artist_rows(moved)
                if moved else "table: artists\nkey: [name]\nrows: []\n")
        head = "key: [artist_id, title]\n" + ("create_only: [year]\n" if self.create_only else "") + (
            "on_conflict: ignore\n" if self.ignore else "")
        p.write("dev/albums.yaml", head + "rows:\n" + "".join(
            f"  - {{artist_id: !ref {{table: artists, name: {a!r}}}, title: {t!r}, year: {y}}}\n"
            for (a, t), y in self.albums.items()))
        p.write("dev/tracks.yaml", "key: [album_id, name]\nrows:\n" + "".join(
            f"  - album_id: !ref {{table: albums, artist_id: !ref {{table: artists, name: {a!r}}}, title: {t!r}}}\n"
            f"    name: {n!r}\n    ms: {ms}\n" for (a, t, n), ms in self.tracks.items()))
        p.write("dev/staff.yaml", "key: [email]\nrows:\n" + "".join(
            f"  - {{email: {e!r}, boss_id: {('!ref {table: staff, email: ' + repr(b) + '}') if b else 'null'}}}\n"
            for e, b in self.staff.items()))
        p.write("dev/genres.csv", "name,note\n" + "".join(f"{g},{n}\n" for g, n in self.genres.items()))


@dataclass
class Step:
    text: str
    files: bool = False  # the files changed
    sql: str | None = None  # behind seedkit's back, before the run (may fail: both sides alike)
    at_end: str | None = None  # another session commits this after the run's last write
    args: list[str] = field(default_factory=list)
    same_size: bool = False  # artists.yaml edited in place, its size and modification time kept


class World:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.files = Files()
        self.trigger = False

    def step(self) -> Step:
        rng, f = self.rng, self.files
        if rng.random() < 0.4:  # most runs change nothing: the case the record is for
            return Step("nothing changed")
        kind = rng.choice(["country", "move", "artist", "album", "track", "staff", "genre",
                           "prune", "create_only", "ignore", "same size", "update", "delete", "insert",
                           "catalog", "trigger", "at end", "only", "check"])
        if kind == "country":
            n = rng.choice(list(f.artists))
            f.artists[n] = rng.choice(["se", "no", "fi"])
            return Step(f"country of {n} becomes {f.artists[n]}", files=True)
        if kind == "move":
            n = rng.choice(list(f.artists))
            f.moved = [m for m in f.moved if m != n] if n in f.moved else [*f.moved, n]
            return Step(f"{n} moved to the other file", files=True)
        if kind == "artist":
            n = rng.choice(NAMES)
            used = {a for a, _ in f.albums} | {a for a, _, _ in f.tracks}
            if n in f.artists and n not in used:
                del f.artists[n]
                f.moved = [m for m in f.moved if m != n]
                return Step(f"{n} removed", files=True)
            f.artists.setdefault(n, "dk")
            return Step(f"{n} added", files=True)
        if kind == "album":
            key = (rng.choice(list(f.artists)), f"album {rng.randrange(8)}")
            f.albums[key] = rng.randrange(1950, 2020)
            return Step(f"album {key} year {f.albums[key]}", files=True)
        if kind == "track":
            key = (*rng.choice(list(f.albums)), f"track {rng.randrange(20)}")
            f.tracks[key] = rng.randrange(0, 9000)
            return Step(f"track {key} ms {f.tracks[key]}", files=True)
        if kind == "staff":
            e = rng.choice(list(f.staff))
            f.staff[e] = rng.choice([None, *[x for x in f.staff if x != e]])
            return Step(f"staff {e} reports to {f.staff[e]}", files=True)
        if kind == "genre":
            g = rng.choice(["rock", "jazz", "folk"])
            f.genres[g] = rng.choice(["loud", "cool", "old"])
            return Step(f"genre {g} note {f.genres[g]}", files=True)
        if kind == "prune":
            f.prune = not f.prune
            return Step(f"prune becomes {f.prune}", files=True)
        if kind == "create_only":
            f.create_only = not f.create_only
            return Step(f"create_only becomes {f.create_only}", files=True)
        if kind == "ignore":
            f.ignore = not f.ignore
            return Step(f"on_conflict ignore becomes {f.ignore}", files=True)
        if kind == "same size":
            f.comment = chr(ord("a") + (ord(f.comment) - ord("a") + 1) % 26)
            n = rng.choice(list(f.artists))
            f.artists[n] = {"se": "no", "no": "fi", "fi": "se", "dk": "is", "is": "dk"}.get(f.artists[n], "se")
            return Step(f"artists edited in place, same size and mtime ({n}: {f.artists[n]})", files=True,
                        same_size=True)
        if kind == "update":
            return Step("UPDATE behind seedkit's back", sql=rng.choice([
                "UPDATE artists SET country = 'xx' WHERE name = 'artist 1'",
                "UPDATE artists SET country = country WHERE name = 'artist 2'",  # the same values, new row versions
                "UPDATE tracks SET ms = ms + 1 WHERE id = (SELECT min(id) FROM tracks)",
                "UPDATE staff SET boss_id = NULL",
                "UPDATE genres SET note = 'odd' WHERE name = 'rock'",
                "UPDATE albums SET year = year WHERE true"]))
        if kind == "delete":
            return Step("DELETE behind seedkit's back", sql=rng.choice([
                "DELETE FROM tracks WHERE id = (SELECT max(id) FROM tracks)",
                "DELETE FROM albums WHERE id = (SELECT min(id) FROM albums)",
                "DELETE FROM genres WHERE name = 'jazz'",
                "DELETE FROM artists WHERE name = 'artist 3'"]))
        if kind == "insert":
            return Step("insert behind seedkit's back", sql=rng.choice([
                "INSERT INTO artists (name, country) VALUES ('stranger', 'zz') ON CONFLICT DO NOTHING",
                "INSERT INTO genres (name, note) VALUES ('folk', 'x') ON CONFLICT (name) DO UPDATE SET note = 'y'",
                "INSERT INTO staff (email) VALUES ('z@x') ON CONFLICT DO NOTHING"]))
        if kind == "catalog":
            return Step("catalog-only change", sql=rng.choice([
                "ALTER TABLE artists ALTER COLUMN country SET DEFAULT 'dk'",
                "ALTER TABLE albums DROP CONSTRAINT IF EXISTS late; "
                "ALTER TABLE albums ADD CONSTRAINT late CHECK (year > 2100) NOT VALID",  # the rows break it
                "ALTER TABLE albums DROP CONSTRAINT IF EXISTS late",
                "ALTER TABLE tracks ALTER COLUMN ms TYPE bigint",
                "ALTER TABLE tracks ALTER COLUMN ms TYPE int",
                "CREATE INDEX IF NOT EXISTS by_country ON artists (country)",
                "DROP INDEX IF EXISTS by_country"]))
        if kind == "trigger":
            self.trigger = not self.trigger
            return Step(f"BEFORE trigger {'added' if self.trigger else 'dropped'}", sql=(
                "CREATE TRIGGER shout BEFORE INSERT OR UPDATE ON artists FOR EACH ROW EXECUTE FUNCTION shout()"
                if self.trigger else "DROP TRIGGER shout ON artists"))
        if kind == "at end":
            return Step("another session at the end of the run", at_end=rng.choice([
                "UPDATE genres SET note = 'late' WHERE name = 'rock'",
                "UPDATE artists SET country = 'late' WHERE name = 'artist 0'",
                "CREATE TABLE IF NOT EXISTS unrelated (x int)"]))
        if kind == "only":
            return Step("--only", args=["--only", rng.choice(TABLES)])
        return Step("--check", args=[rng.choice(["--check", "--dry-run"])])


def contents(p: Project) -> tuple:
    with psycopg.connect(p.url) as c:
        return tuple(c.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES)


def other_session(p: Project, statement: str) -> None:
    with psycopg.connect(p.url, autocommit=True) as c:
        c.execute("SET lock_timeout = '2s'")
        c.execute(statement)


def apply_sql(p: Project, statement: str) -> str:
    try:
        other_session(p, statement)
    except psycopg.Error as exc:
        return f"failed: {exc.sqlstate}"
    return "ok"


@contextmanager
def side(p: Project, step: Step, fast: bool, hits: list[bool]) -> Iterator[None]:
    """The record on (fast) or off. ``step.at_end`` is committed by another session after the run's last
    write: before the run records (or, when the record decided the run, before the stamp)."""
    real_lookup, real_record, real_stamp = rerun.lookup, rerun.record, seedkit.seed.safety.stamp
    fired: list[bool] = []

    def fire() -> None:
        if step.at_end and not fired:
            fired.append(True)
            other_session(p, step.at_end)

    def lookup(*a: Any, **k: Any) -> Any:
        got = real_lookup(*a, **k)
        hits.append(got is not None)
        return got

    def record(*a: Any, **k: Any) -> bool:
        fire()
        return real_record(*a, **k)

    def stamp(*a: Any, **k: Any) -> None:
        fire()
        real_stamp(*a, **k)

    with pytest.MonkeyPatch.context() as m:
        if fast:
            m.setattr(rerun, "lookup", lookup)
            m.setattr(rerun, "record", record)
        else:
            m.setattr(rerun, "prepare", lambda *a, **k: None)
        m.setattr(seedkit.seed.safety, "stamp", stamp)
        yield


def seedkit_run(p: Project, step: Step, fast: bool, hits: list[bool]) -> tuple[int, Any]:
    with side(p, step, fast, hits):
        outcome = p.seed_report("dev", *step.args)
    return outcome


def write_files(p: Project, files: Files, same_size: bool) -> None:
    path = p.root / "seeds" / "dev" / "artists.yaml"
    before = path.stat() if same_size and path.exists() else None
    size = before.st_size if before else None
    files.write(p)
    if before is not None:
        assert path.stat().st_size == size, "the in-place edit keeps the size"
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA, files=lambda p: Files().write(p)) as make:
        yield make("fast"), make("plain")


def test_a_rerun_decided_from_digests_agrees_with_the_plain_run_step_by_step(two_projects) -> None:
    fast, plain = two_projects
    world = World(random.Random(SEED))
    history: list[str] = []
    hits: list[bool] = []
    hit_after: list[str] = []  # the steps whose run the record decided
    after_writes = 0  # … right after a run that wrote rows (its record, not a plain rerun's)
    wrote_last = wrote_now = False
    for i in range(STEPS):
        step = Step("first run") if i == 0 else world.step()
        history.append(f"{i}: {step.text}")
        outcomes = []
        for p, is_fast in ((fast, True), (plain, False)):
            if step.files:
                write_files(p, world.files, step.same_size)
            done = apply_sql(p, step.sql) if step.sql else ""
            before = len(hits)
            code, report = seedkit_run(p, step, is_fast, hits)
            outcomes.append((code, report, done, contents(p)))
            if is_fast and len(hits) > before and hits[-1]:
                hit_after.append(step.text)
                after_writes += bool(wrote_last)
            if is_fast:
                wrote_now = isinstance(report, dict) and not report["dry_run"] and any(
                    t["inserted"] or t["updated"] for t in report["tables"])
        where = f"seed {SEED}, step {i} ({step.text}); the steps so far:\n  " + "\n  ".join(history[-25:])
        assert outcomes[0][0] == outcomes[1][0], f"exit codes differ at {where}\n{outcomes[0][1]}\n{outcomes[1][1]}"
        assert outcomes[0][1] == outcomes[1][1], f"reports differ at {where}\n{outcomes[0][1]}\n{outcomes[1][1]}"
        assert outcomes[0][2:] == outcomes[1][2:], f"table contents differ at {where}"
        wrote_last = wrote_now
    # the walk did decide reruns from digests, and tried every kind of change
    assert len(hit_after) >= STEPS // 10, (hit_after, history)
    assert after_writes >= 3, (hit_after, history)
    wanted = ["moved to the other file", "same size and mtime", "UPDATE behind", "DELETE behind", "insert behind",
              "catalog-only", "BEFORE trigger", "at the end", "--only", "--check", "prune becomes", "staff"]
    assert [w for w in wanted if w not in "\n".join(history)] == []


# -- single attacks, each shown directly ------------------------------------------------------------
@pytest.fixture
def project(pg_server: str, tmp_path: Path) -> Iterator[Project]:
    url = create_pg_database(pg_server)
    p = Project(tmp_path / "p", url, envs={"dev": {"include": ["dev"]}})
    p.sql(SCHEMA)
    Files().write(p)
    yield p
    drop_pg_database(pg_server, url)


def decided(p: Project, *args: str, env: dict[str, str] | None = None) -> tuple[bool, Any]:
    """One ``seedkit run dev`` in this process: whether the record decided it, and its report.

    A run leaves its record only when no other transaction committed on the server meanwhile (the
    cluster's autovacuum can): a run that wrote nothing and kept no record for that reason alone is run
    again, as it is (the same report), until one keeps it, so the next call sees what a quiet server gives."""
    for _ in range(20):
        hit, busy, report = _decided_once(p, args, env)
        wrote = not isinstance(report, list) or any(t[1] or t[2] or t[4] for t in report)
        if not busy or wrote:
            break
    return hit, report


def loaded(p: Project, *args: str, env: dict[str, str] | None = None) -> tuple[bool, Any]:
    """``decided`` for a run that writes (a first load), which the next run expects to have left a record:
    when it kept none only because another transaction committed while it ran (the cluster's autovacuum
    can), the same run again (it writes nothing now) until one keeps it. Gives the first run's outcome."""
    hit, busy, report = _decided_once(p, args, env)
    for _ in range(20):
        if not busy:
            break
        _, busy, _ = _decided_once(p, args, env)
    return hit, report


def _decided_once(p: Project, args: tuple[str, ...], env: dict[str, str] | None) -> tuple[bool, bool, Any]:
    """(decided by the record, kept no record only because another transaction committed, report)"""
    hits: list[bool] = []
    busy: list[bool] = []
    real_lookup, real_record = rerun.lookup, rerun.record

    def lookup(*a: Any, **k: Any) -> Any:
        got = real_lookup(*a, **k)
        hits.append(got is not None)
        return got

    def record(d: Any, *a: Any, **k: Any) -> bool:
        real_others = d.others_committed

        def others(*oa: Any, **ok: Any) -> Any:
            got = real_others(*oa, **ok)
            busy.append(got is not False)
            return got

        d.others_committed = others
        try:
            kept = real_record(d, *a, **k)
        finally:
            del d.others_committed
        if kept:
            busy.clear()
        return kept

    with pytest.MonkeyPatch.context() as m:
        m.setattr(rerun, "lookup", lookup)
        m.setattr(rerun, "record", record)
        for k, v in (env or {}).items():
            m.setenv(k, v)
        result = CliRunner().invoke(app, ["--config", str(p.root / "seedkit.toml"), "run", "dev", "--json", *args])
    try:
        report: Any = json.loads(result.stdout)
        report = [(t["table"], t["inserted"], t["updated"], t["unchanged"], t["deleted"]) for t in report["tables"]]
    except ValueError:
        report = (result.exit_code, result.stdout + result.stderr)
    return any(hits), any(busy), report


ALL_UNCHANGED = [("artists", 0, 0, 5, 0), ("albums", 0, 0, 6, 0), ("genres", 0, 0, 2, 0), ("staff", 0, 0, 4, 0),
                 ("tracks", 0, 0, 12, 0)]


def test_the_rerun_after_a_first_load_reads_no_fixture_file(project: Project) -> None:
    p = project
    assert loaded(p)[0] is False  # the first load
    with pytest.MonkeyPatch.context() as m:
        def refuse(*a: Any, **k: Any) -> Any:
            raise AssertionError("a fixture file was read")

        m.setattr(seedkit.seed, "load_file", refuse)
        assert decided(p) == (True, ALL_UNCHANGED)
    assert p.scalar("SELECT count(*) FROM seedkit_reruns") == 1


@pytest.mark.parametrize("attack", [
    "UPDATE artists SET country = 'xx' WHERE name = 'artist 1'",  # a table references point into
    "UPDATE artists SET country = country WHERE name = 'artist 1'",  # the same values, new row versions
    "DELETE FROM tracks WHERE name = 'track 3'",
    "INSERT INTO genres VALUES ('folk', 'x')",  # a row no fixture lists: the report is the same, but read again
    "ALTER TABLE albums ADD CONSTRAINT late CHECK (year > 2100) NOT VALID",  # catalog only: the pre-flight fails
    "ALTER TABLE artists ALTER COLUMN country SET DEFAULT 'dk'",
    "CREATE TRIGGER shout BEFORE INSERT OR UPDATE ON artists FOR EACH ROW EXECUTE FUNCTION shout()",
    "CREATE TABLE unrelated (x int)",
])
def test_an_outside_change_is_never_taken_for_unchanged(project: Project, attack: str) -> None:
    p = project
    loaded(p)
    assert decided(p)[0] is True
    other_session(p, attack)
    hit, report = decided(p)
    assert hit is False
    twin = Project(p.root.parent / "twin", create_pg_database(p.url.rsplit("/", 1)[0] + "/postgres"),
                   envs={"dev": {"include": ["dev"]}})
    try:  # the plain run on a database with the same history says the same
        twin.sql(SCHEMA)
        Files().write(twin)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(rerun, "prepare", lambda *a, **k: None)
            decided(twin)
            other_session(twin, attack)
            assert decided(twin)[1] == report or isinstance(report, tuple) and report[0] == decided(twin)[1][0]
    finally:
        drop_pg_database(p.url.rsplit("/", 1)[0] + "/postgres", twin.url)


@pytest.mark.parametrize("file, text", [
    ("events.csv", "id,at,span,note\n1,now,,it is late\n"),  # CSV text is read by the server: 'now' is the clock
    ("events.yaml", "key: [id]\nrows:\n  - {id: 1, span: '[now,)'}\n"),  # so is a range bound in YAML
    ("events.json", '{"key": ["id"], "rows": [{"id": 1, "span": "(,NOW]"}]}'),
    ("events.yaml", "key: [id]\nrows:\n  - {id: 1, days: ['[now,)']}\n"),  # in an array's element
])
def test_a_value_the_server_reads_from_the_clock_is_never_decided_from_digests(project: Project, file: str,
                                                                              text: str) -> None:
    p = project
    p.sql("CREATE TABLE events (id int PRIMARY KEY, at timestamptz, span tstzrange, note text, days tstzrange[])")
    p.write(f"dev/{file}", text)
    decided(p, "--only", "events")
    for _ in range(2):  # the plain run writes the new time each time: so must every rerun
        hit, report = decided(p, "--only", "events")
        assert (hit, report) == (False, [("events", 0, 1, 0, 0)])


def test_a_text_column_saying_now_keeps_the_record(project: Project) -> None:
    p = project
    (p.root / "seeds" / "dev" / "genres.csv").unlink()  # the same rows in YAML: words in a text column are text
    p.sql("ALTER TABLE genres ADD COLUMN tags text[]")
    p.write("dev/genres.yaml", "key: [name]\nrows:\n  - {name: rock, note: now or never, tags: [now]}\n"
            "  - {name: jazz, note: Today}\n")
    loaded(p)
    assert decided(p) == (True, ALL_UNCHANGED)


def test_a_session_that_reads_zone_abbreviations_otherwise_compares_every_row(project: Project) -> None:
    p = project
    p.sql("CREATE TABLE events (id int PRIMARY KEY, at timestamptz)")
    p.write("dev/events.csv", "id,at\n1,2020-01-01 10:00 EST\n")  # EST: -05 by default, +10 in the Australia set
    loaded(p, "--only", "events")
    assert decided(p, "--only", "events") == (True, [("events", 0, 0, 1, 0)])
    australia = {"PGOPTIONS": "-c timezone_abbreviations=Australia"}
    assert decided(p, "--only", "events", env=australia) == (False, [("events", 0, 1, 0, 0)])
    assert str(p.scalar("SELECT at FROM events")).startswith("2020-01-01 00:00:00")


@pytest.mark.parametrize("file, text", [
    ("names.csv", "id,r\n1,counter\n"),
    ("names.yaml", "key: [id]\nrows:\n  - {id: 1, r: counter}\n"),
])
@pytest.mark.parametrize("types, column", [
    ("", "regclass"),
    ("CREATE DOMAIN rel AS regclass;", "rel"),  # a domain over the type
    ("CREATE DOMAIN rel AS regclass;", "rel[]"),  # an array of that
    ("CREATE DOMAIN rel0 AS regclass; CREATE DOMAIN rel AS rel0 NOT NULL;", "rel"),  # a domain over that
    ("CREATE DOMAIN rel AS regclass; CREATE TYPE pair AS (a int, b rel);", "pair"),  # a composite holding it
])
def test_a_name_the_server_reads_as_an_oid_is_never_decided_from_digests(project: Project, file: str, text: str,
                                                                         types: str, column: str) -> None:
    p = project
    p.sql(f"CREATE SEQUENCE counter; {types} CREATE TABLE names (id int PRIMARY KEY, r {column})")
    csv = file.endswith(".csv")
    given = {"pair": '"(7,counter)"' if csv else "'(7,counter)'",
             "rel[]": '"[""counter""]"' if csv else "[counter]"}.get(column, "counter")
    stored = {"pair": "(7,counter)", "rel[]": "{counter}"}.get(column, "counter")
    p.write(f"dev/{file}", text.replace("counter", given))
    decided(p, "--only", "names")
    assert decided(p, "--only", "names") == (False, [("names", 0, 0, 1, 0)])
    other_session(p, "DROP SEQUENCE counter; CREATE SEQUENCE counter")  # no table changed: another oid
    assert decided(p, "--only", "names") == (False, [("names", 0, 1, 0, 0)])
    assert p.scalar("SELECT r::text FROM names") == stored


def test_a_session_that_reads_xml_as_documents_rejects_what_the_plain_run_rejects(project: Project) -> None:
    p = project
    try:  # a server built without libxml has no xml values: the setting must still part the record
        p.scalar("SELECT xmlparse(content 'text<b/>')")
        xml = True
    except Exception:
        xml = False
    p.sql(f"CREATE TABLE pages (id int PRIMARY KEY, body {'xml' if xml else 'text'})")
    p.write("dev/pages.csv", "id,body\n1,text<b/>\n")  # XML content, not a document
    loaded(p, "--only", "pages")
    assert decided(p, "--only", "pages") == (True, [("pages", 0, 0, 1, 0)])
    hit, report = decided(p, "--only", "pages", env={"PGOPTIONS": "-c xmloption=document"})
    assert hit is False
    if xml:
        assert report[0] == 2 and "pages.csv:2, row 1, column 'body': invalid XML document" in report[1]
    else:
        assert report == [("pages", 0, 0, 1, 0)]


def test_a_file_edited_in_place_with_the_same_size_and_time_is_read_again(project: Project) -> None:
    p = project
    loaded(p)
    assert decided(p)[0] is True
    f = Files()
    f.artists["artist 1"] = "no"  # "se" → "no": the same size
    write_files(p, f, same_size=True)
    assert decided(p) == (False, [("artists", 0, 1, 4, 0), *ALL_UNCHANGED[1:]])
    assert p.scalar("SELECT country FROM artists WHERE name = 'artist 1'") == "no"


def test_a_row_moved_to_another_file_and_only_agree_with_the_plain_run(project: Project) -> None:
    p = project
    decided(p)
    f = Files()
    f.moved = ["artist 2"]
    f.write(p)
    assert decided(p) == (False, ALL_UNCHANGED)  # another file: read again, and unchanged
    assert decided(p) == (True, ALL_UNCHANGED)
    assert decided(p, "--only", "genres") == (False, [("genres", 0, 0, 2, 0)])  # its own record, made now
    assert decided(p, "--only", "genres") == (True, [("genres", 0, 0, 2, 0)])
    assert decided(p, "--only", "artists") == (False, [("artists", 0, 0, 5, 0)])
    assert decided(p) == (True, ALL_UNCHANGED)  # the whole environment's record still holds


def test_a_file_that_reads_a_variable_is_never_decided_from_digests(project: Project) -> None:
    p = project
    p.write("dev/genres.csv", "name,note\n")
    p.write("dev/genres.yaml", "table: genres\nkey: [name]\nrows:\n  - {name: rock, note: !env NOTE}\n")
    for note in ("loud", "loud", "quiet"):
        hit, report = decided(p, env={"NOTE": note})
        assert hit is False
        assert p.scalar("SELECT note FROM genres WHERE name = 'rock'") == note
    assert not p.rows("SELECT 1 FROM pg_tables WHERE tablename = 'seedkit_reruns'")


def test_another_database_copied_from_this_one_compares_every_row(project: Project) -> None:
    p = project
    loaded(p)
    assert decided(p)[0] is True
    server = p.url.rsplit("/", 1)[0] + "/postgres"
    copy_name = p.url.rsplit("/", 1)[1] + "_copy"
    with psycopg.connect(server, autocommit=True) as c:  # the same files, the same xmin of every row
        c.execute(f'CREATE DATABASE "{copy_name}" TEMPLATE "{p.url.rsplit("/", 1)[1]}"')
    try:
        twin = Project(p.root.parent / "copy", p.url.rsplit("/", 1)[0] + "/" + copy_name,
                       envs={"dev": {"include": ["dev"]}})
        Files().write(twin)
        (twin.root / ".seedkit").mkdir(exist_ok=True)
        import shutil

        shutil.copytree(p.root / ".seedkit", twin.root / ".seedkit", dirs_exist_ok=True)
        assert decided(twin) == (False, ALL_UNCHANGED)
    finally:
        drop_pg_database(server, p.url.rsplit("/", 1)[0] + "/" + copy_name)


def test_a_commit_by_another_session_during_the_run_leaves_no_record(project: Project) -> None:
    p = project
    decided(p)
    f = Files()
    f.artists["artist 1"] = "no"
    f.write(p)
    real = rerun.record

    def record(*a: Any, **k: Any) -> bool:  # after the run's last write, a row it did not write
        other_session(p, "UPDATE genres SET note = 'late' WHERE name = 'jazz'")
        return real(*a, **k)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(rerun, "record", record)
        assert decided(p)[1][0] == ("artists", 0, 1, 4, 0)
    hit, report = decided(p)  # the plain run: it writes the note back
    assert (hit, report[2]) == (False, ("genres", 0, 1, 1, 0))
    assert p.scalar("SELECT note FROM genres WHERE name = 'jazz'") == "cool"


def test_the_switch_turns_it_off_and_sqlite_runs_the_plain_path(project: Project, tmp_path: Path) -> None:
    p = project
    decided(p, env={"SEEDKIT_FIXTURE_CACHE": "0"})
    assert decided(p, env={"SEEDKIT_FIXTURE_CACHE": "0"}) == (False, ALL_UNCHANGED)
    assert not (p.root / ".seedkit").exists()
    lite = Project(tmp_path / "lite", f"sqlite:///{tmp_path / 'lite.db'}", envs={"dev": {"include": ["dev"]}})
    lite.sql("CREATE TABLE genres (name text PRIMARY KEY, note text)")
    lite.write("dev/genres.csv", "name,note\nrock,loud\n")
    for _ in range(3):
        assert decided(lite) == (False, [("genres", 0, 0, 1, 0)]) or lite.scalar("SELECT count(*) FROM genres") == 1
    assert decided(lite) == (False, [("genres", 0, 0, 1, 0)])


def test_a_kept_preflight_verdict_never_hides_a_row_the_schema_now_rejects(project: Project) -> None:
    p = project
    decided(p)
    verdicts = list((p.root / rerun.VERDICTS).iterdir())
    assert len(verdicts) == 5  # the YAML documents (CSV rows are checked as they stream)
    other_session(p, "ALTER TABLE staff ALTER COLUMN email TYPE varchar(2) USING left(email, 2)")
    hit, (code, out) = decided(p)
    assert (hit, code) == (False, 2)
    assert "staff.yaml:" in out and "email" in out
    other_session(p, "ALTER TABLE staff ALTER COLUMN email TYPE text")
    assert decided(p)[1][3] == ("staff", 4, 0, 0, 0)
    # a failure is never kept, and the schema is the first one again
    assert len(list((p.root / rerun.VERDICTS).iterdir())) == 5


def test_the_second_process_imports_neither_jsonschema_nor_faker(project: Project) -> None:
    p = project
    # an enum column: its rows are checked by jsonschema itself (simpler columns are decided without it)
    p.sql("CREATE TYPE mood AS ENUM ('calm', 'loud'); ALTER TABLE genres ADD COLUMN mood mood")
    p.write("dev/moods.yaml", "table: genres\nkey: name\nrows:\n  - {name: ambient, mood: calm}\n")
    p.write("dev/staff.py", textwrap.dedent("""\
        from seedkit import fixture

        @fixture("genres", key=["name"], count=3, auto=True)
        def more(fake, n):
            return {"name": f"auto {n}"}
        """))
    probe = ("import sys, runpy; sys.argv = ['seedkit', '--config', {cfg!r}, 'run', 'dev', '--json']\n"
             "try:\n    runpy.run_module('seedkit', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('MODULES', 'jsonschema' in sys.modules, 'faker' in sys.modules)")
    import subprocess
    import sys

    def modules() -> str:
        out = subprocess.run([sys.executable, "-c", probe.format(cfg=str(p.root / "seedkit.toml"))], cwd=p.root,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.rsplit("MODULES", 1)[1].strip()

    first = p.rows("SELECT * FROM genres ORDER BY 1") if modules() == "True True" else None
    assert first is not None
    assert modules() == "False False"
    # the values from kept pools are Faker's own
    assert p.rows("SELECT * FROM genres ORDER BY 1") == first
    for entry in (p.root / ".seedkit" / "cache" / "pools").iterdir():
        entry.write_text("[damaged")
    assert modules() == "False True"  # made again
    assert p.rows("SELECT * FROM genres ORDER BY 1") == first


def test_kept_pools_give_the_values_faker_gives(tmp_path: Path) -> None:
    from seedkit.schema import auto

    spec = auto.AutoSpec(name="x.py:posts", faker_seed=3, faker_locale="en_US")
    made = auto._pool(spec, None, "title", "sentence", 40)  # type: ignore[arg-type]
    spec.pools = rerun.Pools(tmp_path / "pools")
    assert auto._pool(spec, None, "title", "sentence", 40) == made  # type: ignore[arg-type]
    assert len(list((tmp_path / "pools").iterdir())) == 1
    with pytest.MonkeyPatch.context() as m:
        m.setattr(auto, "_make_pool", lambda *a: pytest.fail("made again"))
        assert auto._pool(spec, None, "title", "sentence", 40) == made  # type: ignore[arg-type]
    other = auto.AutoSpec(name="x.py:posts", faker_seed=4, faker_locale="en_US", pools=spec.pools)
    assert auto._pool(other, None, "title", "sentence", 40) != made  # type: ignore[arg-type]
