"""A first run's reading of fixture files (seedkit.seed.load, seedkit.seed.parallel): what the
shortcuts of a one-shot process change is where the work is done, never what is read (RELIABILITY.md §18).

- Reading on two cores: random fixture folders (YAML of every shape, hostile ones among them, JSON,
  CSV, Python, files that read variables, unreadable bytes) read by the plain path and by the forked
  worker, with the fixture cache on (cold and warm) and off, give the same documents, rows, values,
  types, positions, digests and cache entries, and the same errors (messages, locations, order); a
  worker that dies or hands back nothing leaves every file to the plain path; a run as a real process
  gives the same report, database, messages and exit code either way.
- In a one-shot process (the command line), rows read with the collector paused go to its permanent
  generation (``gc.freeze``): later collections do not walk them again. A library caller's collector
  is left as it was.
"""

from __future__ import annotations

import gc
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import seedkit
from seedkit import load_config
from seedkit.errors import FixtureError
from seedkit.seed import cache as cache_mod
from seedkit.seed import load, load_fixtures, parallel, yaml_events
from tests.support.project import Project
from tests.test_reliability_fixture_cache import canon, random_json, random_yaml
from tests.test_reliability_yaml_events import random_document, random_file

VARIABLES = {"TOKEN": "s3cret", "EMPTY": ""}


# -- reading on two cores ------------------------------------------------------------------------------
def _outcome(config: Any) -> Any:
    digests: dict[str, str | None] = {}
    try:
        fixtures = load_fixtures(config, ["dev"], digests=digests)
    except FixtureError as exc:
        return ("error", str(exc), exc.hint, exc.location,
                [(str(p), p.hint, p.location) for p in exc.problems or []])
    rows = [(fx.table, vars(fx.header), fx.source, fx.location, fx.name, fx.path, fx.ident, fx.text_values,
             [(canon(r.values), r.location, r.column_lines) for r in fx.rows or []] if fx.stream is None
             else _streamed(fx)) for fx in fixtures]
    return rows, list(digests.items())


def _streamed(fx: Any) -> Any:
    try:
        return [(n, canon(v)) for n, v in fx.stream()]
    except FixtureError as exc:
        return ("error", str(exc), exc.location)


def _entries(root: Path) -> dict[str, bytes]:
    folder = root / cache_mod.FOLDER
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def _random_folder(rng: random.Random, seeds: Path) -> None:
    tame = rng.random() < 0.5  # half the folders without errors (mostly)
    for i in range(rng.randint(1, 7)):
        kind = rng.randrange(12)
        if tame:
            path, raw = seeds / f"t{i}.yaml", random_document(rng, -1.0).encode()
            if rng.random() < 0.3:
                raw *= 1 + rng.randrange(3)  # a few documents
            path.write_bytes(raw)
            continue
        if kind < 5:
            path, raw = seeds / f"y{i}.yaml", random_yaml(rng).encode()
            if rng.random() < 0.3:  # made large: rows repeated
                raw = raw + b"".join(line + b"\n" for line in raw.splitlines() if line.startswith(b"- {")) * 20
        elif kind < 8:
            path, raw = seeds / f"h{i}.yml", random_file(rng)
        elif kind < 10:
            path, raw = seeds / f"j{i}.json", random_json(rng).encode()
        elif kind == 10:
            path, raw = seeds / f"c{i}.csv", rng.choice([b"name,n\nada,1\nbob,\n", b"a,a\n1,2\n", b"x\n\"open\n"])
        else:
            path, raw = seeds / f"p{i}.py", rng.choice([
                b"from seedkit.seed import fixture\n\n@fixture('t')\ndef rows():\n    yield {'n': 1}\n",
                b"raise ValueError('broken on purpose')\n"])
        path.write_bytes(raw)


def _two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's path whatever the sizes and threads of the test process (pytest-xdist runs threads
    that the worker never touches: it only parses and writes files, then leaves with os._exit)."""
    monkeypatch.setattr(yaml_events, "ONE_SHOT", True)
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)


def test_reading_on_two_cores_reads_what_the_plain_path_reads(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _two_cores(monkeypatch)
    rng = random.Random(20261201)
    handed: list[int] = []
    real_read_here = parallel.read_here

    def counting(*args: Any) -> Any:
        handed.append(1)
        return real_read_here(*args)

    monkeypatch.setattr(parallel, "read_here", counting)
    seen = {"ok": 0, "error": 0}
    try:
        for i in range(60):
            root = tmp_path / f"p{i}"
            project = Project(root, f"sqlite:///{root / 'db.sqlite'}")
            _random_folder(rng, project.seeds_dir / "dev")
            config = load_config(project.config_path)
            config.variables = dict(VARIABLES)
            results = {}
            for mode, cache in (("0", "0"), ("1", "0"), ("0", "1"), ("1", "1"), ("1", "warm")):
                monkeypatch.setenv(parallel.ENV, mode)
                monkeypatch.setenv(cache_mod.ENV, "0" if cache == "0" else "1")
                if cache == "1":
                    entries = _entries(root)
                    cache_mod_folder = root / cache_mod.FOLDER
                    for p in cache_mod_folder.iterdir() if cache_mod_folder.is_dir() else []:
                        p.unlink()
                results[(mode, cache)] = _outcome(config)
                if cache == "1":
                    if mode == "1":  # the worker keeps the entries the plain path keeps, byte for byte
                        assert _entries(root) == entries, sorted(p.name for p in (project.seeds_dir / "dev").iterdir())
                    entries = _entries(root)
            plain = results[("0", "0")]
            for key, got in results.items():
                assert got == plain, (key, sorted(p.name for p in (project.seeds_dir / "dev").iterdir()))
            seen["error" if plain[0] == "error" else "ok"] += 1
    finally:
        monkeypatch.undo()
    assert seen["ok"] > 15 and seen["error"] > 15, seen  # both outcomes are common
    assert len(handed) > 60, len(handed)  # and the worker really handed many files back


@pytest.mark.parametrize("end", ["dies", "raises", "nothing"])
def test_a_worker_that_fails_leaves_every_file_to_the_plain_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  end: str) -> None:
    _two_cores(monkeypatch)
    project = Project(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    rng = random.Random(7)
    for i in range(4):
        project.write(f"dev/t{i}.yaml", "table: t\nrows:\n" + "".join(
            f"- {{n: {rng.randint(0, 99)}, r: !ref {{table: a, x: {j}}}}}\n" for j in range(200)))
    project.write("dev/bad.yaml", "rows:\n  - {n: 1, n: 2}\n")
    config = load_config(project.config_path)
    monkeypatch.setenv(cache_mod.ENV, "0")  # (a filled cache would leave the worker nothing to read)
    monkeypatch.setenv(parallel.ENV, "0")
    plain = _outcome(config)
    assert plain[0] == "error" and "bad.yaml:2" in plain[1]
    monkeypatch.setenv(parallel.ENV, "1")
    if end == "dies":
        monkeypatch.setattr(parallel, "_work", lambda *a: os._exit(3))
    elif end == "raises":
        monkeypatch.setattr(parallel, "_work", lambda *a: 1 / 0)
    else:
        monkeypatch.setattr(parallel, "_work", lambda jobs, variables, cache, out: out.flush())
    collected: list[dict] = []
    real_collect = parallel.Worker.collect

    def collect(self: parallel.Worker) -> Any:
        collected.append(real_collect(self))
        return collected[-1]

    monkeypatch.setattr(parallel.Worker, "collect", collect)
    assert _outcome(config) == plain
    assert collected == [{}]  # a worker ran, and handed back nothing


def test_a_stopped_worker_leaves_no_process_and_no_half_entry(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or any end of the run while the worker reads) stops the worker: it is reaped, and the
    cache entry it was writing is removed, not left half written."""
    _two_cores(monkeypatch)
    real_dump = cache_mod.dump

    def slow_dump(*args: Any) -> bool:  # (in the worker) stopped while its entry is written
        kept = real_dump(*args)
        time.sleep(30)
        return kept

    monkeypatch.setattr(cache_mod, "dump", slow_dump)
    cache = cache_mod.FixtureCache(tmp_path)
    path = tmp_path / "t.yaml"
    path.write_text(ROWS, encoding="utf-8")
    worker = parallel.Worker([parallel.Job(0, path, path.name, path.read_bytes())], {}, cache)
    pid = worker.pid
    assert pid is not None
    folder = tmp_path / cache_mod.FOLDER
    deadline = time.monotonic() + 20
    while not (folder.is_dir() and list(folder.glob(".tmp-*"))) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(folder.glob(".tmp-*")), "the worker never started its entry"
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 10  # it did not wait for the worker to finish
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no process left
    assert list(folder.iterdir()) == []  # no half entry, no entry


def test_two_cores_only_where_they_pay_and_are_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_events, "ONE_SHOT", True)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.delenv(parallel.ENV, raising=False)
    assert parallel.possible()
    monkeypatch.setattr(threading, "active_count", lambda: 2)  # a fork copies locks other threads hold
    assert not parallel.possible()
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    for off in ("0", "false", "off", "no"):
        monkeypatch.setenv(parallel.ENV, off)
        assert not parallel.possible()
    monkeypatch.delenv(parallel.ENV)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _pid: {0})  # one core
    assert not parallel.possible()
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _pid: {0, 1})
    monkeypatch.setattr(yaml_events, "ONE_SHOT", False)  # a library caller's process is never forked
    assert not parallel.possible()


def test_the_terminal_progress_bar_starts_no_thread_before_the_fixtures_are_read() -> None:
    """In a terminal, ``seedkit run`` shows a progress bar whose refresh is a thread: started before
    reading, it would keep every interactive run from reading on two cores."""
    from seedkit.cli._seed import _progress_bar

    def refreshing() -> int:  # rich's refresh threads (other tests' threads come and go meanwhile)
        return sum(type(t).__name__ == "_RefreshThread" for t in threading.enumerate())

    def settled(count: int) -> bool:  # (rich's stop does not wait for its thread to end)
        deadline = time.monotonic() + 5
        while refreshing() != count and time.monotonic() < deadline:
            time.sleep(0.01)
        return refreshing() == count

    assert settled(0)
    bar = _progress_bar()
    try:
        assert refreshing() == 0, "a thread before any progress"
        bar.update("users", 1, 10)  # the first table's progress: reading is over
        assert refreshing() == 1
    finally:
        bar.close()
    assert settled(0)
    _progress_bar().close()  # a run that failed before any progress: nothing to stop
    assert refreshing() == 0


def test_the_split_balances_the_two_processes() -> None:
    jobs = [parallel.Job(i, Path(f"f{i}.yaml"), f"f{i}.yaml", b"x" * size)
            for i, size in enumerate([1_740_000, 1_060_000, 760_000, 100_000, 28_000, 17_000, 9_000, 3_000])]
    taken = parallel.split(jobs, cached=True)
    assert taken and len(taken) < len(jobs)
    assert [j.index for j in taken] == sorted(j.index for j in taken)  # handed back in the files' order
    own = sum(len(j.raw) for j in jobs if j not in taken) * (parallel.PARSE + parallel.ENCODE)
    there = sum(len(j.raw) for j in taken) * (parallel.PARSE + parallel.ENCODE)
    here = own + sum(len(j.raw) for j in taken) * parallel.DECODE
    serial = sum(len(j.raw) for j in jobs) * (parallel.PARSE + parallel.ENCODE)
    assert max(here, there) < 0.75 * serial  # the longer of the two is well below reading alone


BIG = "table: users\nkey: name\nrows:\n" + "".join(
    f"- {{name: user{i}, score: {i % 97}.5, team: !ref {{table: teams, name: t{i % 7}}}}}\n" for i in range(4000))


MIGRATION = """
-- migrate:up
CREATE TABLE teams (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score NUMERIC,
                    team INTEGER REFERENCES teams (id));
-- migrate:down
DROP TABLE users;
DROP TABLE teams;
"""


@pytest.mark.parametrize("broken", [False, True])
def test_a_run_reads_the_same_on_one_or_two_cores(tmp_path: Path, db_url: str, broken: bool) -> None:
    """A real ``seedkit run`` process, large enough for the worker: the same report, database,
    messages and exit code with parallel reading on and off; a bad file writes nothing either way."""
    results = []
    for mode in ("0", "1"):
        root = tmp_path / f"run{len(results)}"
        p = Project(root, db_url if db_url.startswith("postgresql") else f"sqlite:///{root / 'db.sqlite'}")
        identity = "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" if p.pg else "INTEGER PRIMARY KEY"
        p.write_files({"migrations/20240101000000_users.sql": MIGRATION.replace("INTEGER PRIMARY KEY", identity)})
        seedkit.migrate.up(p.config())
        p.write("dev/a_teams.yaml", "table: teams\nkey: name\nrows:\n" + "".join(f"- {{name: t{i}}}\n"
                                                                               for i in range(7)))
        p.write("dev/users.yaml", BIG)
        other = BIG.replace("user", "other").replace("table: others", "table: users")
        third = BIG.replace("user", "third").replace("table: thirds", "table: users")
        if broken:  # a key twice in one file, a bad reference in another (the worker reads one of them)
            other = other.replace("{name: other70,", "{name: other70, name: twice,")
            third = third.replace("{name: third70,", "{name: !ref noslash,")
        p.write("dev/users2.yaml", other)
        p.write("dev/users3.yaml", third)
        result = p.run("run", "dev", "--json", env={parallel.ENV: mode})
        report = json.loads(result.stdout) if result.returncode == 0 else None
        if report is not None:
            report.pop("seconds", None)
            report.pop("database", None)
            for t in report["tables"]:
                t.pop("seconds", None)
        rows = p.rows("SELECT name, score, team FROM users ORDER BY name")
        results.append((result.returncode, result.stderr.replace(str(root), "ROOT"), report, rows))
        if db_url.startswith("postgresql"):
            p.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    assert results[0] == results[1], results[0][:2]
    code, stderr, report, rows = results[0]
    if broken:
        assert code == 2 and rows == [] and "2 fixture files have problems" in stderr, stderr
        assert stderr.index("users2.yaml:74:") < stderr.index("users3.yaml:74:")  # located, in the files' order
    else:
        assert code == 0 and len(rows) == 12000 and report["totals"]["inserted"] == 12007

ROWS = "table: t\nrows:\n" + "".join(f"- {{id: {i}, name: n{i}, r: !ref {{table: a, x: {i}}}}}\n" for i in range(300))


def _tracked_ids() -> set[int]:
    return {id(o) for g in range(3) for o in gc.get_objects(generation=g)}


@pytest.mark.parametrize("one_shot", [True, False])
def test_rows_read_by_a_one_shot_process_are_not_walked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              one_shot: bool) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(ROWS, encoding="utf-8")
    monkeypatch.setattr(yaml_events, "ONE_SHOT", one_shot)
    frozen = gc.get_freeze_count()
    try:
        fixtures = load.load_file(path, variables={})
        rows = fixtures[0].rows
        assert rows is not None and len(rows) == 300
        tracked = _tracked_ids()
        walked = sum(id(r.values) in tracked for r in rows)
        if one_shot:  # in the permanent generation: no collection walks them
            assert walked == 0 and gc.get_freeze_count() > frozen
        else:  # a library caller's collector is left alone: its objects stay collectable
            assert walked == len(rows) and gc.get_freeze_count() == frozen
    finally:
        if one_shot:
            gc.unfreeze()
