"""The split cache (``seedkit/migrate/split_cache.py``) never changes what ``migrate up`` does.

Over random histories with random failures, and random edits between runs (a section edited, a migration
added or removed, a transaction flag turned off, a failure written in), ``up`` with the cache off, with
an empty cache and with a filled one leaves the same database (catalog, data, history, audit log) and
prints the same output, error, ``file:line:col`` and exit code; the filled cache is used (hits), and a
run over sections it holds never loads the parser."""

from __future__ import annotations

import marshal
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from seedkit.migrate import split_cache
from seedkit.migrate.split_cache import SplitCache
from tests.support import Project
from tests.support.pg import create_pg_database, drop_pg_database
from tests.test_reliability_one_query import _FAILURES, _KINDS, _MS, _history, _ok_statements, _state

pytestmark = pytest.mark.postgres


def _up(project: Project, url: str, monkeypatch: pytest.MonkeyPatch, *, cache: bool,
        hits: list[int] | None = None) -> tuple[int, str, str]:
    with monkeypatch.context() as m:
        m.setenv(split_cache.ENV, "1" if cache else "0")
        if hits is not None:
            get = SplitCache.get

            def spy(self: SplitCache, section: object) -> object:
                found = get(self, section)  # type: ignore[arg-type]
                hits.append(found is not None)
                return found

            m.setattr(SplitCache, "get", spy)
        result = project.migrate("up", "--database", url)
    name = url.rsplit("/", 1)[1]
    return result.returncode, _MS.sub("N ms", result.stdout).replace(name, "DB"), \
        _MS.sub("N ms", result.stderr).replace(name, "DB")


def _edit(rng: random.Random, project: Project) -> str:
    """One random change to the migrations folder; what it was."""
    folder = project.root / "migrations"
    entries = sorted(p for p in folder.iterdir() if p.name[0].isdigit())
    what = rng.choice(["edit", "add", "remove", "flag", "fail", "none"])
    target = rng.choice(entries)
    files = sorted(target.glob("up.sql")) if target.is_dir() else [target]
    if target.name.endswith(".down.sql"):
        files = [target.with_name(target.name.replace(".down.sql", ".up.sql"))]
    up_file = files[0]
    if what == "edit":  # a statement more, at the end (lines below move in the single layout)
        text = up_file.read_text(encoding="utf-8")
        marker = "\n-- migrate:down"
        extra = f";\nCOMMENT ON TABLE pg_class_x IS 'no';\nSELECT {rng.randint(1, 99)}"
        if marker in text:
            text = text.replace(marker, extra + ";" + marker, 1)
        else:
            text += extra
        up_file.write_text(text, encoding="utf-8")
    elif what == "add":
        version = f"{20240101000000 + 50 + rng.randint(0, 40)}"
        project.single(version, "added", ";\n".join(_ok_statements(rng, 90)))
    elif what == "remove":
        if target.is_dir():
            for f in target.iterdir():
                f.unlink()
            target.rmdir()
        else:
            target.unlink()
            twin = target.with_name(target.name.replace(".up.sql", ".down.sql"))
            if twin != target and twin.exists():
                twin.unlink()
    elif what == "flag":  # the same text, outside a transaction
        project.single(f"{20240101000000 + 95}", "concurrent",
                       "CREATE TABLE t_95_a (id int);\nCREATE INDEX CONCURRENTLY t_95_c ON t_95_a (id)",
                       transactional=False)
    elif what == "fail":
        bad = rng.choice(list(_FAILURES.values())).format(version="20240101000099")
        project.single("20240101000099", "failing", f"CREATE TABLE t_99 (id int);\n{bad}")
    return what


@pytest.mark.parametrize("seed", range(len(_KINDS)))
def test_up_with_and_without_the_split_cache_leaves_the_same_database_and_says_the_same(
        seed: int, tmp_path: Path, pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1000 + seed)
    kind = _KINDS[seed % len(_KINDS)]
    project = Project.with_migrations(tmp_path / "project", "postgresql://unused/x")
    _history(rng, project, kind)
    cache_file = project.root / split_cache.FOLDER / "splits"
    urls: list[str] = []
    try:
        for round_ in range(3):
            plain_url, cold_url, warm_url = (create_pg_database(pg_server) for _ in range(3))
            urls += [plain_url, cold_url, warm_url]
            plain = _up(project, plain_url, monkeypatch, cache=False)
            if round_ == 0:
                assert not cache_file.exists()  # the cache off writes nothing
                cold = _up(project, cold_url, monkeypatch, cache=True)  # fills it
                assert cache_file.exists() or kind == "syntax" or "CONCURRENTLY" in kind
            else:
                cold = _up(project, cold_url, monkeypatch, cache=True)  # the edited files: partly filled
            hits: list[int] = []
            warm = _up(project, warm_url, monkeypatch, cache=True, hits=hits)
            assert plain == cold == warm, (kind, round_)
            assert _state(plain_url) == _state(cold_url) == _state(warm_url), (kind, round_)
            # every section planned on the warm run came from the cache, but one the parser rejected
            # (kept never) and those of a run refused while planning (their cuts were not written)
            if kind not in ("syntax", "CONCURRENTLY in a transaction") and round_ == 0:
                assert hits and all(hits), (kind, hits)
            _edit(rng, project)
    finally:
        for url in urls:
            drop_pg_database(pg_server, url)


def test_a_damaged_or_foreign_cache_is_only_a_miss(tmp_path: Path, pg_server: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project.with_migrations(tmp_path / "project", "postgresql://unused/x")
    project.single("1", "a", "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1)")
    project.single("2", "b", "CREATE INDEX a_x ON a (x);\nCOMMENT ON TABLE a IS 'a; b'")
    cache_file = project.root / split_cache.FOLDER / "splits"
    urls = [create_pg_database(pg_server) for _ in range(5)]
    try:
        expected = _up(project, urls[0], monkeypatch, cache=False)
        assert expected[0] == 0
        assert _up(project, urls[1], monkeypatch, cache=True) == expected
        good = cache_file.read_bytes()
        stamp, entries = marshal.loads(good)  # entries that no longer fit their sections: ends moved out
        garbled = marshal.dumps((stamp, {k: tuple((o, e + 10_000, *rest) for o, e, *rest in v)
                                         for k, v in entries.items()}))
        for i, damaged in enumerate([good[: len(good) // 2], b"", garbled]):
            cache_file.write_bytes(damaged)
            hits: list[int] = []
            assert _up(project, urls[2 + i], monkeypatch, cache=True, hits=hits) == expected
            assert _state(urls[2 + i]) == _state(urls[0])
            assert hits and not any(hits), (i, hits)
        # the garbled entries were refused, the sections cut again and the cuts written again
        assert marshal.loads(cache_file.read_bytes()) == (stamp, entries)
    finally:
        for url in urls:
            drop_pg_database(pg_server, url)


def test_a_cache_folder_that_cannot_be_written_is_no_cache(tmp_path: Path, pg_server: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project.with_migrations(tmp_path / "project", "postgresql://unused/x")
    project.single("1", "a", "CREATE TABLE a (x int)")
    (project.root / ".seedkit").write_text("a file where the folder would be", encoding="utf-8")
    url = create_pg_database(pg_server)
    try:
        code, out, err = _up(project, url, monkeypatch, cache=True)
        assert (code, err) == (0, ""), err
        assert "applied 1_a" in out
    finally:
        drop_pg_database(pg_server, url)


def test_an_entry_is_kept_only_for_the_same_text_server_and_history_tables(tmp_path: Path) -> None:
    from seedkit.db.postgres.statements import split_postgres_quick
    from seedkit.migrate.files import Section

    text = "CREATE TABLE a (x int);\n-- note\nCREATE INDEX CONCURRENTLY i ON a (x)"
    section = Section(sql=text, path=tmp_path / "1_a.sql", line_offset=2, transactional=False)
    statements = split_postgres_quick(text, 2)
    cache = SplitCache(tmp_path, server_version=150000, tables=("public", "h", "public", "h_log"))
    cache.put(section, statements, [(None, None), ("CREATE INDEX CONCURRENTLY", None)])
    cache.save()
    again = SplitCache(tmp_path, server_version=150000, tables=("public", "h", "public", "h_log")).get(section)
    assert again is not None
    assert [(s.sql, s.offset, s.line, s.column) for s in again] == \
        [(s.sql, s.offset, s.line, s.column) for s in statements]
    assert [(s.node.no_transaction, s.node.history) for s in again] == \
        [(None, None), ("CREATE INDEX CONCURRENTLY", None)]
    for other in (SplitCache(tmp_path, server_version=110000, tables=("public", "h", "public", "h_log")),
                  SplitCache(tmp_path, server_version=150000, tables=("app", "h", "app", "h_log"))):
        assert other.get(section) is None
    moved = Section(sql=text, path=section.path, line_offset=3, transactional=False)
    assert SplitCache(tmp_path, server_version=150000, tables=("public", "h", "public", "h_log")).get(moved) is None


def test_a_run_over_cached_sections_never_loads_the_parser(tmp_path: Path, pg_server: str) -> None:
    """Whole processes: the first ``up`` (an empty cache) loads pglast; the next one, on a fresh database
    with the same files, applies the same migrations without it; with the cache off it loads it again."""
    project = Project.with_migrations(tmp_path / "project", "postgresql://unused/x")
    rng = random.Random(3)
    for i in range(1, 6):
        project.single(f"{20240101000000 + i}", f"step_{i}", ";\n".join(_ok_statements(rng, i)))
    project.single(f"{20240101000000 + 6}", "concurrent",
                   "CREATE TABLE t_6_a (id int);\nCREATE INDEX CONCURRENTLY t_6_c ON t_6_a (id)", transactional=False)
    probe = ("import runpy, sys\nsys.argv = ['seedkit', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('seedkit', run_name='__main__')\nexcept SystemExit as e:\n"
             "    code = e.code\nprint('pglast' in sys.modules, code)\n")
    urls = [create_pg_database(pg_server) for _ in range(3)]
    try:
        def loaded(url: str, cache: str) -> str:
            env = {**os.environ, split_cache.ENV: cache}
            done = subprocess.run([sys.executable, "-c", probe, "--config", str(project.config_path), "migrate", "up",
                                   "--database", url], cwd=project.root, env=env, capture_output=True, text=True,
                                  check=False)
            assert "applied 20240101000006_concurrent" in done.stdout, done.stderr
            return done.stdout.strip().splitlines()[-1]

        assert loaded(urls[0], "1") == "True 0"
        assert loaded(urls[1], "1") == "False 0"
        assert loaded(urls[2], "0") == "True 0"
        assert _state(urls[0]) == _state(urls[1]) == _state(urls[2])
    finally:
        for url in urls:
            drop_pg_database(pg_server, url)


def test_a_failed_concurrent_build_from_a_cached_cut_names_the_invalid_index(
        tmp_path: Path, pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What only a failure needs (the index a failed ``CREATE INDEX CONCURRENTLY`` left) is parsed then:
    the hint names the same index and the same DROP with the cut from the cache as without it."""
    project = Project.with_migrations(tmp_path / "project", "postgresql://unused/x")
    project.single("1", "a", "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1), (1)")
    project.single("2", "unique", "CREATE UNIQUE INDEX CONCURRENTLY a_x_unique ON a (x)", transactional=False)
    urls = [create_pg_database(pg_server) for _ in range(3)]
    try:
        plain = _up(project, urls[0], monkeypatch, cache=False)
        cold = _up(project, urls[1], monkeypatch, cache=True)
        hits: list[int] = []
        warm = _up(project, urls[2], monkeypatch, cache=True, hits=hits)
        assert hits == [True, True]
        assert plain == cold == warm
        assert plain[0] == 1 and "DROP INDEX CONCURRENTLY" in plain[2] and "a_x_unique" in plain[2], plain
        assert _state(urls[0]) == _state(urls[1]) == _state(urls[2])
        # and the next run's refusal (a failed migration that left an invalid index) says the same
        again = [_up(project, url, monkeypatch, cache=True) for url in urls]
        assert again[0] == again[1] == again[2] and again[0][0] == 3 and "a_x_unique" in again[0][2], again[0]
    finally:
        for url in urls:
            drop_pg_database(pg_server, url)


def test_a_cache_written_by_another_build_of_the_same_version_is_a_miss(tmp_path: Path, pg_server: str) -> None:
    """Another build of seedkit with the same version (an install from a newer commit, an edited
    checkout) may answer otherwise: here a copy that refuses NOTIFY inside a transaction. Its run after
    this build filled the cache refuses as its plain run does (before: it took this build's answer from
    the cache and applied the migration)."""
    import shutil

    import seedkit
    from tests.support.processes import process_env, seedkit_command

    other = tmp_path / "other"
    shutil.copytree(Path(seedkit.__file__).parent, other / "seedkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    statements = other / "seedkit" / "db" / "postgres" / "statements.py"
    text = statements.read_text(encoding="utf-8")
    heads = '_REMARKABLE_HEADS = _TX_CONTROL | {'
    text = text.replace(heads + '"PREPARE",', heads + '"NOTIFY", "PREPARE",')
    concurrent = '    if kind == "IndexStmt" and node.concurrent:\n'
    text = text.replace(concurrent, '    if kind == "NotifyStmt":\n        return "NOTIFY"\n' + concurrent)
    assert text.count("NOTIFY") == 2
    statements.write_text(text, encoding="utf-8")
    project = Project.with_migrations(tmp_path / "project", "postgresql://unused/x")
    project.single("1", "notify", "CREATE TABLE a (x int);\nNOTIFY a_changed")
    urls = [create_pg_database(pg_server) for _ in range(3)]
    try:
        def up(url: str, cache: str, build: Path | None = None) -> tuple[int, str]:
            env = process_env({split_cache.ENV: cache})
            if build is not None:
                env["PYTHONPATH"] = os.pathsep.join([str(build), env["PYTHONPATH"]])
            probe = "import seedkit, sys; sys.stderr.write(seedkit.__file__ + '\\n')"
            where = subprocess.run([sys.executable, "-c", probe], env=env, cwd=project.root, capture_output=True,
                                   text=True, check=True)
            assert where.stderr.startswith(str(build)) == (build is not None), where.stderr
            done = subprocess.run([*seedkit_command("--config", str(project.config_path), "migrate", "up",
                                                    "--database", url)], cwd=project.root, env=env,
                                  capture_output=True, text=True, check=False)
            return done.returncode, done.stderr.replace(url.rsplit("/", 1)[1], "DB")

        assert up(urls[0], "1") == (0, "")  # this build fills the cache
        assert (project.root / split_cache.FOLDER / "splits").exists()
        plain = up(urls[1], "0", other)
        assert plain[0] == 2 and "NOTIFY cannot run inside a transaction" in plain[1], plain
        assert up(urls[2], "1", other) == plain
    finally:
        for url in urls:
            drop_pg_database(pg_server, url)


# Shapes real files have that a cut must get right, each a history of its own.
_SHAPES: dict[str, list[tuple[str, str, bool]]] = {
    "dollar quotes and comments": [("1_f", "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\nBEGIN\n"
                                    "  -- a comment; with a semicolon\n  RETURN 1; /* nested /* ; */ ; */\n"
                                    "END\n$body$;\n"
                                    "/* ; */ SELECT 'a;b' AS \"x;y\";\nDO $$ BEGIN PERFORM f(); END $$;\n"
                                    "SELECT * FROM missing_after_dollars", True)],
    "begin atomic": [("1_g", "CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC\n  SELECT x + 1;\n"
                      "  SELECT CASE WHEN x > 0 THEN x END;\nEND;\nSELECT g(1);\nSELECT g('no')", True)],
    "copy from stdin": [("1_c", "CREATE TABLE c (id int, s text);\nCOPY c (id, s) FROM stdin;\n1\ta;b\n\\.\n", True)],
    "psql meta-command": [("1_m", "CREATE TABLE m (x int);\n\\set ON_ERROR_STOP 1\nSELECT 1", True)],
    "begin and commit without a transaction": [
        ("1_b", "CREATE TABLE b (x int);\nBEGIN;\nINSERT INTO b VALUES (1);\nSELECT 1/0;\nCOMMIT", False)],
    "begin without commit": [("1_o", "CREATE TABLE o (x int);\nBEGIN;\nINSERT INTO o VALUES (1)", False)],
    "commit in a transaction": [("1_t", "CREATE TABLE t (x int);\nCOMMIT;\nINSERT INTO t VALUES (1)", True)],
    "crlf, bom, renamed": [("1_r", "\ufeffCREATE TABLE r (x int);\r\n\r\nINSERT INTO r VALUES (1);\r\n"
                            "SELECT * FROM nope;\r\n", True)],
    "flag added to the same text": [("1_i", "CREATE TABLE i (x int);\nCREATE INDEX CONCURRENTLY i_x ON i (x)", True)],
}


@pytest.mark.parametrize("shape", sorted(_SHAPES))
def test_hostile_shapes_with_and_without_the_split_cache_say_the_same(
        shape: str, tmp_path: Path, pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each shape with the cache off, into an empty cache and from a filled one: the same database,
    output, error, ``file:line:col`` and exit code. Then a change the cut's key must see, made to the
    same migration (renamed, line endings and BOM changed; the transaction flag turned off on the same
    text), and the three runs again."""
    project = Project.with_migrations(tmp_path / "project", "postgresql://unused/x")
    folder = project.root / "migrations"
    for name, text, transactional in _SHAPES[shape]:
        flag = "" if transactional else " transaction:false"
        (folder / f"{name}.sql").write_bytes(f"-- migrate:up{flag}\n{text}\n".encode())
    urls: list[str] = []
    try:
        for round_ in range(2):
            three = [create_pg_database(pg_server) for _ in range(3)]
            urls += three
            said = [_up(project, three[0], monkeypatch, cache=False), _up(project, three[1], monkeypatch, cache=True),
                    _up(project, three[2], monkeypatch, cache=True)]
            assert said[0] == said[1] == said[2], (shape, round_, said)
            assert _state(three[0]) == _state(three[1]) == _state(three[2]), (shape, round_)
            for path in sorted(folder.glob("*.sql")):  # the change the key must see
                raw = path.read_bytes()
                if shape.startswith("crlf"):
                    path.unlink()
                    (folder / path.name.replace("_r", "_renamed")).write_bytes(
                        raw.replace(b"\r\n", b"\n").replace("\ufeff".encode(), b""))
                elif shape.startswith("flag"):
                    path.write_bytes(raw.replace(b"-- migrate:up\n", b"-- migrate:up transaction:false\n"))
                else:
                    path.write_bytes(raw + b"\n-- an edit\n")
    finally:
        for url in urls:
            drop_pg_database(pg_server, url)
