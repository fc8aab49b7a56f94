"""RELIABILITY.md §20: overlapping the server's inserts with building the next fixture's rows changes
nothing a run does or says.

Two projects side by side on two new databases, one run with the overlap on (the default) and one with
``SEEDKIT_OVERLAP=0``, walk the same random steps: fixture sets of several tables whose references nest
natural keys two levels deep (track → album → artist), with repeated keys, rows the database rejects
(a CHECK, a NOT NULL), references that do not resolve, values that cannot be converted, and changes made by
another session between runs (rows deleted, renamed, inserted; every table emptied, so the next run loads
empty tables, where the overlap works). After every step: the same exit code, the same report or error
(message, hint, location), the same table contents. Real ``seedkit run`` processes agree too, a trigger that
writes the table the next fixture's lookups read keeps those lookups at their turn, and Ctrl-C or a lost
connection while the background insert runs end the run as they end the plain one, with nothing written.
"""

from __future__ import annotations

import json
import random
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedkit.seed import overlap, staging
from tests.support import Project, pg_projects

SCHEMA = """
CREATE TABLE artists (id serial PRIMARY KEY, name text NOT NULL UNIQUE, country text);
CREATE TABLE albums (id serial PRIMARY KEY, title text NOT NULL, artist_id int NOT NULL REFERENCES artists,
                     year int, UNIQUE (title, artist_id));
CREATE TABLE tracks (id serial PRIMARY KEY, name text NOT NULL, album_id int NOT NULL REFERENCES albums,
                     ms int NOT NULL CHECK (ms > 0) CHECK (ms % 1000 <> 999), UNIQUE (name, album_id));
CREATE TABLE plays (id serial PRIMARY KEY, track_id int NOT NULL REFERENCES tracks, listener text NOT NULL,
                    UNIQUE (track_id, listener));
"""
TABLES = ("artists", "albums", "tracks", "plays")
SEED = 20_261_201
STEPS = 36


def q(text: str) -> str:
    return json.dumps(text)


class World:
    """Random fixture sets and outside changes; ``files()`` writes the current set into a project."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.artists: list[str] = []
        self.albums: list[tuple[str, str]] = []
        self.tracks: list[dict[str, Any]] = []
        self.plays: list[tuple[int, str]] = []
        self.split = False  # tracks in two files
        self.fresh()

    def fresh(self) -> None:
        rng = self.rng
        self.artists = [f"artist {i}" for i in range(rng.randint(3, 12))]
        self.albums = [(f"album {i}", rng.choice(self.artists)) for i in range(rng.randint(3, 20))]
        self.tracks = [{"name": f"track {i}", "album": rng.choice(self.albums), "ms": rng.randint(1, 900_000)}
                       for i in range(rng.randint(5, 120))]
        self.plays = list({(rng.randrange(len(self.tracks)), f"listener {rng.randint(0, 9)}")
                           for _ in range(rng.randint(0, 200))})
        self.split = rng.random() < 0.3

    def spoil(self) -> str:
        """Make one thing wrong (or nothing); say what."""
        rng = self.rng
        kind = rng.choice(["fine", "fine", "fine", "dup track", "dup play", "check", "null", "unresolved album",
                           "unresolved artist", "bad number", "dup album", "foreign key", "foreign key"])
        if kind == "dup track" and self.tracks:
            self.tracks.append(dict(rng.choice(self.tracks)))
        elif kind == "dup play" and self.plays:
            self.plays.append(rng.choice(self.plays))
        elif kind == "dup album":
            self.albums.append(rng.choice(self.albums))
        elif kind == "check" and self.tracks:  # (what a pre-flight check finds, or what only the database finds)
            rng.choice(self.tracks)["ms"] = rng.choice([-rng.randint(0, 5), rng.randint(1, 900) * 1000 + 999])
        elif kind == "null" and self.tracks:
            rng.choice(self.tracks)["ms"] = None
        elif kind == "bad number" and self.tracks:
            rng.choice(self.tracks)["ms"] = "many"
        elif kind == "foreign key" and self.tracks:  # an id written out that no row has: the database refuses
            if rng.random() < 0.5:
                rng.choice(self.tracks)["album"] = None
            else:
                self.plays.append((-1, "listener 0"))
        elif kind == "unresolved album" and self.tracks:
            rng.choice(self.tracks)["album"] = ("no such album", self.artists[0])
        elif kind == "unresolved artist" and self.tracks:
            t = rng.choice(self.tracks)
            t["album"] = (t["album"][0], "nobody")
        return kind

    def edit(self) -> str:
        rng = self.rng
        kind = rng.choice(["add artist", "rename track", "new length", "add play", "add album"])
        if kind == "add artist":
            self.artists.append(f"artist {len(self.artists) + 100}")
        elif kind == "rename track" and self.tracks:
            rng.choice(self.tracks)["name"] = f"track {rng.randint(1000, 9999)}"
        elif kind == "new length" and self.tracks:
            rng.choice(self.tracks)["ms"] = rng.randint(1, 900_000)
        elif kind == "add play" and self.tracks:
            self.plays.append((rng.randrange(len(self.tracks)), f"listener {rng.randint(10, 99)}"))
        elif kind == "add album":
            self.albums.append((f"album {rng.randint(100, 999)}", rng.choice(self.artists)))
        return kind

    def files(self, p: Project) -> None:
        folder = p.seeds_dir / "dev"
        for old in folder.glob("*.yaml"):
            old.unlink()
        rows = "\n".join(f"- {{name: {q(a)}, country: {q('c' + str(i % 3))}}}" for i, a in enumerate(self.artists))
        p.write("dev/01_artists.yaml", f"table: artists\nkey: [name]\nrows:\n{rows}\n")
        rows = "\n".join(f"- {{title: {q(t)}, artist_id: !ref {q('artists/' + a)}, year: {1960 + i}}}"
                         for i, (t, a) in enumerate(self.albums))
        p.write("dev/02_albums.yaml", f"table: albums\nkey: [title, artist_id]\nrows:\n{rows or '[]'}\n")

        def track_row(t: dict[str, Any]) -> str:
            if t["album"] is None:
                return f"- {{name: {q(t['name'])}, album_id: 999999, ms: 1}}"
            title, artist = t["album"]
            ms = "null" if t["ms"] is None else (q(t["ms"]) if isinstance(t["ms"], str) else t["ms"])
            return (f"- {{name: {q(t['name'])}, album_id: !ref {{table: albums, title: {q(title)}, "
                    f"artist_id: !ref {q('artists/' + artist)}}}, ms: {ms}}}")

        cut = len(self.tracks) // 2 if self.split else len(self.tracks)
        for name, part in (("03_tracks.yaml", self.tracks[:cut]), ("04_tracks_more.yaml", self.tracks[cut:])):
            if part or name == "03_tracks.yaml":
                rows = "\n".join(track_row(t) for t in part)
                p.write(f"dev/{name}", f"table: tracks\nkey: [name, album_id]\nrows:\n{rows or '[]'}\n")

        def play_row(i: int, listener: str) -> str:
            t = self.tracks[i % len(self.tracks)]
            if i < 0 or t["album"] is None:
                return f"- {{listener: {q(listener)}, track_id: 999999}}"
            title, artist = t["album"]
            album = f"{{table: albums, title: {q(title)}, artist_id: !ref {q('artists/' + artist)}}}"
            return (f"- {{listener: {q(listener)}, track_id: !ref {{table: tracks, name: {q(t['name'])}, "
                    f"album_id: !ref {album}}}}}")

        rows = "\n".join(play_row(i, who) for i, who in self.plays) if self.tracks else ""
        p.write("dev/05_plays.yaml", f"table: plays\nkey: [track_id, listener]\nrows:\n{rows or '[]'}\n")

    def outside(self) -> tuple[str, str]:
        rng = self.rng
        return rng.choice([
            *[("empty every table", "TRUNCATE artists, albums, tracks, plays RESTART IDENTITY")] * 3,
            ("empty the last two", "TRUNCATE tracks, plays RESTART IDENTITY"),
            ("delete plays", "DELETE FROM plays WHERE id % 2 = 0"),
            ("rename an artist", "UPDATE artists SET name = name || ' (old)' WHERE id = (SELECT min(id) FROM artists)"),
            ("shorten tracks", "UPDATE tracks SET ms = ms + 1 WHERE id % 3 = 0"),
            ("insert an artist", "INSERT INTO artists (name) VALUES ('outsider') ON CONFLICT DO NOTHING"),
        ])


def contents(p: Project) -> tuple:
    with psycopg.connect(p.url) as c:
        return tuple(c.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES)


def outside(p: Project, statement: str) -> None:
    with psycopg.connect(p.url, autocommit=True) as c:
        c.execute(statement)


@contextmanager
def overlap_switch(on: bool, used: list[str]) -> Iterator[None]:
    """The overlap on or off (its environment variable), noting what the run did in the background."""
    real_submit, real_ahead = overlap.Background.submit, staging.Loader.build_ahead

    def submit(self: Any, *a: Any, **k: Any) -> None:
        used.append("background")
        real_submit(self, *a, **k)

    def build_ahead(self: Any, *a: Any, **k: Any) -> Any:
        got = real_ahead(self, *a, **k)
        used.append("built ahead" if got[1] is not None else "not built ahead")
        return got

    with pytest.MonkeyPatch.context() as m:
        m.setenv(overlap.ENV, "1" if on else "0")
        m.setattr(overlap.Background, "submit", submit)
        m.setattr(staging.Loader, "build_ahead", build_ahead)
        yield


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA) as make:
        yield make("overlap"), make("plain")


@pytest.fixture
def two_projects_small_batches(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    """Batches of 16 rows: a fixture's first batch (built ahead) and the ones after it (built at their turn)."""
    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=16) as make:
        yield make("overlap"), make("plain")


def test_runs_with_and_without_the_overlap_leave_the_same_database_and_say_the_same(
        two_projects_small_batches) -> None:
    on, off = two_projects_small_batches
    rng = random.Random(SEED)
    world = World(rng)
    history: list[str] = []
    used: list[str] = []
    codes: set[int] = set()
    for i in range(STEPS):
        what = "first run"
        sql = None
        if i:
            roll = rng.random()
            if roll < 0.4:
                world.fresh()
                what = "new fixtures, " + world.spoil()
                if rng.random() < 0.6:
                    sql = "TRUNCATE artists, albums, tracks, plays RESTART IDENTITY"
                    what += "; empty every table"
            elif roll < 0.6:
                what = "edit: " + world.edit()
            else:
                what, sql = world.outside()
        history.append(f"{i}: {what}")
        outcomes = []
        for p, is_on in ((on, True), (off, False)):
            world.files(p)
            if sql:
                outside(p, sql)
            with overlap_switch(is_on, used if is_on else []):
                code, report = p.seed_report("dev")
            outcomes.append((code, report, contents(p)))
        where = f"seed {SEED}, step {i}; the steps so far:\n  " + "\n  ".join(history[-12:])
        assert outcomes[0][0] == outcomes[1][0], f"exit codes differ at {where}\n{outcomes[0][1]}\n{outcomes[1][1]}"
        assert outcomes[0][1] == outcomes[1][1], f"reports differ at {where}\n{outcomes[0][1]}\n{outcomes[1][1]}"
        assert outcomes[0][2] == outcomes[1][2], f"table contents differ at {where}"
        codes.add(outcomes[0][0])
    # the walk did use the overlap, built batches ahead, and ended both ways
    assert used.count("background") >= STEPS // 2, (used.count("background"), history)
    assert used.count("built ahead") >= STEPS // 3, (used.count("built ahead"), history)
    assert {0, 1, 2} <= codes, (codes, history)


def test_the_switch_turns_it_off(two_projects, tmp_path: Path) -> None:
    """``SEEDKIT_OVERLAP=0`` runs every statement on the run's thread; so do SQLite, --dry-run, --check
    and --diff, with the switch on."""
    on, off = two_projects
    world = World(random.Random(SEED + 1))
    for p, is_on in ((on, True), (off, False)):
        world.files(p)
        used: list[str] = []
        with overlap_switch(is_on, used):
            code, _ = p.seed_report("dev")
        assert code == 0
        assert ("background" in used) is is_on
    outside(on, "TRUNCATE artists, albums, tracks, plays RESTART IDENTITY")
    lite = Project(tmp_path / "lite", f"sqlite:///{tmp_path / 'lite.db'}", envs={"dev": {"include": ["dev"]}})
    lite.sql(SCHEMA.replace("serial PRIMARY KEY", "INTEGER PRIMARY KEY"))
    world.files(lite)
    for p, args in ((on, ["--dry-run"]), (on, ["--check"]), (on, ["--diff"]), (lite, [])):
        used = []
        with overlap_switch(True, used):
            code, report = p.seed_report("dev", *args)
        assert code in (0, 3), (args, report)
        assert used == [], (p.dialect, args)
    assert lite.scalar("SELECT count(*) FROM tracks") == len(world.tracks)


def test_real_processes_say_and_leave_the_same(two_projects) -> None:
    """Whole ``seedkit run`` processes (the default output and --json), the overlap on and off: the same
    exit code, output and table contents, for a clean load, a rejected row, a repeated key and a reference
    that does not resolve."""
    on, off = two_projects
    rng = random.Random(SEED + 2)
    for spoil in ("fine", "check", "dup track", "unresolved artist", "null"):
        world = World(rng)
        while world.spoil() != spoil:
            world.fresh()
        if spoil == "check":
            bad = next(t for t in world.tracks if t["ms"] <= 0 or t["ms"] % 1000 == 999)
            bad["ms"] = 4999  # (only the database finds it)
        seen = []
        for p, env in ((on, "1"), (off, "0")):
            world.files(p)
            outside(p, "TRUNCATE artists, albums, tracks, plays RESTART IDENTITY")
            plain = p.run("run", "dev", env={overlap.ENV: env})
            outside(p, "TRUNCATE artists, albums, tracks, plays RESTART IDENTITY")
            as_json = p.run("run", "dev", "--json", env={overlap.ENV: env})
            report = json.loads(as_json.stdout) if as_json.returncode == 0 else as_json.stdout
            if isinstance(report, dict):
                report.pop("seconds"), report.pop("database")
                for t in report["tables"]:
                    t.pop("seconds")
            mask = (str(p.root), "<project>")
            shown = _no_times(plain.stdout.replace(*mask).replace(p.url.rsplit("/", 1)[1], "<db>"))
            seen.append((plain.returncode, plain.stderr.replace(*mask), shown,
                         as_json.returncode, report, as_json.stderr.replace(*mask), contents(p)))
        assert seen[0] == seen[1], spoil
        # (a row the database's CHECK refuses is named, as bad input: exit 2, as the others)
        assert seen[0][0] == (0 if spoil == "fine" else 2), (spoil, seen[0][:3])


def _no_times(text: str) -> str:
    """The default output without its times (and the table's widths, which follow them)."""
    return re.sub(r"[ ━─]+", " ", re.sub(r"\d+(\.\d+)? ?(ms|s)\b", "<t>", text))


# -- the background insert waited for: a trigger that sleeps ----------------------------------------------
SLOW = """
CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(8); RETURN NULL; END $$;
CREATE TRIGGER slow AFTER INSERT ON tracks FOR EACH STATEMENT EXECUTE FUNCTION slow();
"""


def _wait_for_sleep(p: Project, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    with psycopg.connect(p.url, autocommit=True) as c:
        while time.monotonic() < deadline:
            row = c.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'seedkit' "
                            "AND datname = current_database() AND query LIKE 'INSERT INTO%%tracks%%' "
                            "AND state = 'active'").fetchone()
            if row:
                return int(row[0])
            time.sleep(0.05)
    raise AssertionError("the run never reached the insert into tracks")


@pytest.mark.parametrize("end", ["ctrl-c", "connection lost"])
def test_ctrl_c_or_a_lost_connection_during_the_background_insert_ends_the_run_as_the_plain_one(
        two_projects, end: str) -> None:
    on, off = two_projects
    world = World(random.Random(SEED + 3))
    seen = []
    for p, env in ((on, "1"), (off, "0")):
        p.sql(SLOW)
        world.files(p)
        proc = p.spawn("run", "dev", env={overlap.ENV: env})
        pid = _wait_for_sleep(p)
        if end == "ctrl-c":
            time.sleep(0.3)  # (the plain run's main thread, and the overlap's, are waiting on the insert)
            proc.send_signal(signal.SIGINT)
        else:
            outside(p, f"SELECT pg_terminate_backend({pid})")
        stopped = time.monotonic()
        _, err = proc.communicate(timeout=60)
        # the statement was cancelled, not waited for (it sleeps 8 s)
        assert time.monotonic() - stopped < 5, (env, err)
        seen.append((proc.returncode, err.replace(str(p.root), "<project>"), contents(p), _sessions_left(p)))
    assert seen[0] == seen[1]
    assert seen[0][0] == (130 if end == "ctrl-c" else 1), seen[0]
    assert seen[0][2] == ([], [], [], []), "nothing written"
    assert seen[0][3] == 0, "no session left running"


def _sessions_left(p: Project, timeout: float = 20) -> int:
    """The run's sessions still on the server, once they had time to end."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(p.url, autocommit=True) as c:
        while True:
            row = c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'seedkit' "
                            "AND datname = current_database()").fetchone()
            if not row[0] or time.monotonic() > deadline:
                return int(row[0])
            time.sleep(0.05)


# -- a trigger that writes what the next fixture's lookups read ---------------------------------------
TRIGGER = """
CREATE FUNCTION renew() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pg_trigger_depth() > 1 THEN RETURN NULL; END IF;
  UPDATE artists SET name = name || ' (was)' WHERE name = 'renewed';
  INSERT INTO artists (name) VALUES ('renewed');
  INSERT INTO albums (title, artist_id) SELECT 'reissue', id FROM artists WHERE name = 'renewed';
  RETURN NULL;
END $$;
CREATE TRIGGER renew AFTER INSERT ON albums FOR EACH STATEMENT EXECUTE FUNCTION renew();
"""


def test_lookups_are_never_moved_before_an_insert_whose_trigger_writes_what_they_read(two_projects) -> None:
    """Inserting albums renames the artist 'renewed' and makes a new one of that name with an album
    'reissue': the tracks' nested reference to artists/renewed must be looked up after that insert (the
    plain order), which gives the new artist, whose 'reissue' the track then belongs to."""
    on, off = two_projects
    seen = []
    for p, env in ((on, True), (off, False)):
        p.sql(TRIGGER)
        p.write("dev/01_artists.yaml", "table: artists\nkey: [name]\nrows:\n- {name: renewed}\n- {name: other}\n")
        p.write("dev/02_albums.yaml", "table: albums\nkey: [title, artist_id]\nrows:\n"
                "- {title: reissue, artist_id: !ref artists/renewed}\n"
                "- {title: first, artist_id: !ref artists/other}\n")
        p.write("dev/03_tracks.yaml", "table: tracks\nkey: [name, album_id]\nrows:\n"
                "- {name: t, album_id: !ref {table: albums, title: reissue, artist_id: !ref artists/renewed}, "
                "ms: 1}\n")
        used: list[str] = []
        with overlap_switch(env, used):
            code, report = p.seed_report("dev")
        seen.append((code, report, contents(p)))
        if env:
            assert "background" in used
    assert seen[0] == seen[1]
    assert seen[0][0] == 0, seen[0]
    tracks = seen[0][2][2]
    albums = {a[0]: a for a in seen[0][2][1]}
    artists = {a[0]: a[1] for a in seen[0][2][0]}
    assert artists[albums[tracks[0][2]][2]] == "renewed"  # the track's album is the new artist's reissue


def test_memory_of_a_run_building_ahead_stays_one_batch(two_projects) -> None:
    """Building ahead holds the next fixture's first batch while the insert before it runs, never more:
    with a batch of 50 rows, the rows built ahead are at most 50, however large the fixture."""
    on, _ = two_projects
    on.config_path.write_text(on.config_path.read_text().replace("faker_seed = 7", "faker_seed = 7\nbatch_size = 50"))
    world = World(random.Random(SEED + 4))
    world.tracks = [{"name": f"track {i}", "album": world.albums[i % len(world.albums)], "ms": i + 1}
                    for i in range(400)]
    world.plays = [(i, "x") for i in range(400)]
    world.files(on)
    sizes: list[int] = []
    real = staging.Loader.build_ahead

    def build_ahead(self: Any, *a: Any, **k: Any) -> Any:
        got = real(self, *a, **k)
        sizes.append(len(got[0]))
        return got

    with pytest.MonkeyPatch.context() as m:
        m.setattr(staging.Loader, "build_ahead", build_ahead)
        code, report = on.seed_report("dev")
    assert code == 0, report
    assert sizes and max(sizes) == 50, sizes
