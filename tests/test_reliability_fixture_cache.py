"""The fixture cache (seedkit.seed.cache): a file read from the cache gives what reading it gives (RELIABILITY.md §15).

A differential test over random YAML and JSON files (references, tags, several documents, anchors,
errors) compares reading without a cache, with an empty one and with a filled one: the same
documents, rows, values, types and positions, the same error and location. The other tests attack
the cache itself: an edited file with the same size and modification time, a damaged entry, an entry
of other bytes, a folder that cannot be written, files that must never be kept, turning it off.
"""

from __future__ import annotations

import json
import os
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import seedkit
from seedkit.errors import FixtureError
from seedkit.seed import cache as cache_mod
from seedkit.seed.cache import FixtureCache
from seedkit.seed.load import load_file
from seedkit.seed.model import Ref
from tests.support.project import Project


def canon(v: Any) -> Any:
    """A value with its exact type (and a reference with its location), comparable with ==."""
    if isinstance(v, Ref):
        return ("Ref", v.table, tuple((k, canon(x)) for k, x in v.match), v.column, v.location)
    if isinstance(v, dict):
        return ("dict", tuple((canon(k), canon(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("list", tuple(canon(x) for x in v))
    return (type(v).__name__, repr(v))


def read(path: Path, cache: FixtureCache | None) -> list:
    return load_file(path, variables={}, display=f"seeds/{path.name}", ident=path.name, cache=cache)


def outcome(path: Path, cache: FixtureCache | None, variables: dict[str, str] | None = None) -> Any:
    try:
        fixtures = load_file(path, variables=variables or {}, display=f"seeds/{path.name}", ident=path.name,
                             cache=cache)
    except FixtureError as exc:
        return ("error", str(exc), exc.hint, exc.location, [str(p) for p in exc.problems or []])
    return [(fx.table, vars(fx.header), fx.source, fx.location, fx.name, fx.path, fx.ident, fx.text_values,
             [(canon(r.values), r.location, r.column_lines) for r in fx.rows or []]) for fx in fixtures]


# -- random files -----------------------------------------------------------------------------------------
_WORDS = ["ada", "Grace Hopper", "U2", "AC/DC", "x: y", "#1 Zero", "", "Motörhead", "12", "yes", "null", "~"]


def _yaml_value(rng: random.Random, anchors: list[str]) -> str:
    kind = rng.randrange(22)
    word = rng.choice(_WORDS)
    if kind == 0:
        return json.dumps(word)
    if kind == 1:
        return str(rng.randint(-10**12, 10**12))
    if kind == 2:
        return rng.choice(["0.99", "1.10", "-3.5e3", "1_000.5", ".inf", ".nan", "-0.0"])
    if kind == 3:
        return rng.choice(["true", "false", "null", "~", "yes", "NO"])
    if kind == 4:
        return rng.choice(["2024-01-02", "2021-08-06 00:00:00", "2024-05-01T09:30:00+02:00",
                           "2001-12-14t21:59:43.10-05:00"])
    if kind == 5:
        return f'!ref "artist/{word}"'
    if kind == 6:
        return f'!ref {{table: album, title: {json.dumps(word)}, artist_id: !ref "artist/{word}"}}'
    if kind == 7:
        return f"!ref {{table: track, column: id, name: {json.dumps(word)}, ms: {rng.randint(1, 9)}}}"
    if kind == 8:
        return rng.choice(["!json '{\"a\": 1.10, \"b\": [null]}'", "!json null", "!json '[1, \"x\"]'"])
    if kind == 9:
        return rng.choice(["{a: 1, b: [x, 2.5]}", "[1, 2, 3]", "[]", "{}"])
    if kind == 10 and anchors:
        return "*" + rng.choice(anchors)
    if kind == 11:
        name = f"a{len(anchors)}"
        anchors.append(name)
        return f"&{name} {json.dumps(word)}"
    if kind == 12:
        return rng.choice(["!!binary aGVsbG8=", "!!str 12", "!!int '7'", "!!float 1"])
    if kind == 13:
        return "'" + word.replace("'", "''") + "'"
    return json.dumps(word) if rng.random() < 0.5 else rng.choice(["plain text", "a b c", "x", "Ünïcode"])


_YAML_ERRORS = [
    ("- {name: a, name: b}\n", "a key twice"),
    ("- {name: !ref noslash}\n", "a bad !ref"),
    ("- {name: !foo x}\n", "an unknown tag"),
    ("- {name: \"open}\n", "an open quote"),
    ("- {name: !ref {column: id, x: 1}}\n", "a !ref without table"),
    ("- {name: !json '{bad'}\n", "bad !json"),
    ("- {when: 2024-13-45}\n", "no such date"),
    ("-  name: a\n  b: c\n", "bad indentation"),
    ("- {name: !env SEEDKIT_TEST_SURELY_UNSET_VAR}\n", "an unset !env"),
    ("- [1, 2]\n", "a row that is not a mapping"),
    ("- {1: x}\n", "a column that is not text"),
]


def random_yaml(rng: random.Random) -> str:
    docs = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        anchors: list[str] = []
        lines = []
        if rng.random() < 0.7:
            lines.append(f"table: {rng.choice(['artist', 'track', 'a.b'])}")
        if rng.random() < 0.4:
            lines.append(f"key: {rng.choice(['name', '[name, n]'])}")
        if rng.random() < 0.2:
            lines.append("base: &base {n: 1, m: two}")
        lines.append("rows:")
        for _ in range(rng.randint(0, 12)):
            cols = rng.sample(["name", "n", "m", "when", "price", "artist_id", "doc"], rng.randint(1, 5))
            pairs = [f"{c}: {_yaml_value(rng, anchors)}" for c in cols]
            if rng.random() < 0.5:
                lines.append("- {" + ", ".join(pairs) + "}")
            else:
                lines.append("- " + "\n  ".join(pairs))
            if rng.random() < 0.05 and any("base" in x for x in lines):
                lines.append("- {<<: *base, name: merged}")
        docs.append("\n".join(lines) + "\n")
    text = "---\n".join(docs) if len(docs) > 1 or rng.random() < 0.5 else docs[0]
    if rng.random() < 0.25:  # an error somewhere: before, inside or after the rows
        bad, _ = rng.choice(_YAML_ERRORS)
        text += ("rows:\n" if not text.rstrip().endswith(("rows:", "}")) and rng.random() < 0.3 else "") + bad
    return text


def _json_value(rng: random.Random) -> Any:
    kind = rng.randrange(8)
    word = rng.choice(_WORDS)
    if kind == 0:
        return {"$ref": f"artist/{word}"}
    if kind == 1:
        return {"$ref": {"table": "album", "title": word, "n": rng.randint(0, 9)}}
    if kind == 2:
        return rng.choice([0.99, 1.5, -2, 10**15, True, None])
    if kind == 3:
        return {"a": [1, word]}
    return word


def random_json(rng: random.Random) -> str:
    rows = [{c: _json_value(rng) for c in rng.sample(["name", "n", "artist_id", "doc"], rng.randint(1, 4))}
            for _ in range(rng.randint(0, 10))]
    doc: Any = {"table": "artist", "rows": rows} if rng.random() < 0.7 else rows
    if rng.random() < 0.3:
        doc = [doc if isinstance(doc, dict) else {"rows": doc}, {"table": "track", "rows": rows[:2]}]
    text = json.dumps(doc, ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.2:
        text = rng.choice([text[:-1], text.replace("]", ",]", 1), '{"rows": [{"a": 1, "a": 2}]}', "{"])
    return text


def test_reading_through_the_cache_gives_what_reading_gives(tmp_path: Path) -> None:
    rng = random.Random(20261130)
    cache = FixtureCache(tmp_path / "project")
    seen = {"ok": 0, "error": 0, "hits": 0}
    for i in range(400):
        suffix = ".json" if i % 4 == 3 else ".yaml"
        path = tmp_path / "seeds" / f"t{i}{suffix}"
        path.parent.mkdir(exist_ok=True)
        path.write_text(random_json(rng) if suffix == ".json" else random_yaml(rng), encoding="utf-8")
        plain = outcome(path, None)
        hits = cache.hits
        cold = outcome(path, cache)  # reads the file and keeps it
        warm = outcome(path, cache)  # from the cache, when it was kept
        assert cold == plain, path.read_text()
        assert warm == plain, path.read_text()
        failed = isinstance(plain, tuple) and plain[0] == "error"
        seen["error" if failed else "ok"] += 1
        if not failed:
            assert cache.hits == hits + 1, path.read_text()  # the warm read came from the cache
            seen["hits"] += 1
        else:
            assert cache.hits == hits  # an error is never kept
    assert seen["ok"] > 150 and seen["error"] > 40, seen  # both kinds are common: the comparison means something


def test_an_edited_file_is_read_again_even_with_the_same_size_and_time(tmp_path: Path) -> None:
    cache = FixtureCache(tmp_path)
    path = tmp_path / "users.yaml"
    path.write_text("rows:\n  - {name: ada, n: 1}\n", encoding="utf-8")
    before = path.stat()
    assert outcome(path, cache) == outcome(path, cache) and cache.hits == 1
    path.write_text("rows:\n  - {name: bob, n: 2}\n", encoding="utf-8")  # the same number of bytes
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    hits = cache.hits
    assert read(path, cache)[0].rows[0].values == {"name": "bob", "n": 2}
    assert cache.hits == hits  # read again, not taken from the cache
    assert read(path, cache)[0].rows[0].values == {"name": "bob", "n": 2}
    assert cache.hits == hits + 1  # and the new bytes are kept


def test_a_damaged_or_foreign_entry_is_only_a_miss(tmp_path: Path) -> None:
    cache = FixtureCache(tmp_path)
    path = tmp_path / "users.yaml"
    path.write_text("rows:\n  - {name: ada, price: 0.99, at: 2024-01-02, r: !ref roles/admin}\n", encoding="utf-8")
    expected = outcome(path, None)
    outcome(path, cache)
    (entry,) = (tmp_path / cache_mod.FOLDER).iterdir()
    good = entry.read_bytes()
    for damaged in (good[: len(good) // 2], b"", b"\x00" * 50, good[:-1] + b"\xff", b"not marshal at all"):
        entry.write_bytes(damaged)
        assert outcome(path, cache) == expected
        assert entry.read_bytes() == good  # and the entry is written again
    other = tmp_path / "other.yaml"  # an entry for other bytes under this file's name: not used
    other.write_text("rows:\n  - {name: zed}\n", encoding="utf-8")
    outcome(other, cache)
    (other_entry,) = {p for p in (tmp_path / cache_mod.FOLDER).iterdir()} - {entry}
    entry.write_bytes(other_entry.read_bytes())
    hits = cache.hits
    assert outcome(path, cache) == expected and cache.hits == hits


def test_files_with_errors_or_env_values_are_never_kept(tmp_path: Path) -> None:
    cache = FixtureCache(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rows:\n  - {name: ada, name: bob}\n", encoding="utf-8")
    with pytest.raises(FixtureError):
        load_file(bad, variables={}, cache=cache)
    env = tmp_path / "env.yaml"
    env.write_text("rows:\n  - {token: !env TOKEN}\n", encoding="utf-8")
    assert load_file(env, variables={"TOKEN": "a"}, cache=cache)[0].rows[0].values == {"token": "a"}
    assert load_file(env, variables={"TOKEN": "b"}, cache=cache)[0].rows[0].values == {"token": "b"}
    assert not (tmp_path / cache_mod.FOLDER).exists() or not list((tmp_path / cache_mod.FOLDER).iterdir())
    assert cache.hits == 0


@pytest.mark.parametrize("text", ["rows:\n  - {token: !%65nv TOKEN}\n",
                                  "%TAG !e! !en\n---\nrows:\n  - {token: !e!v TOKEN}\n",
                                  "rows:\n  - {token: !<!env> 'UNSET:-default'}\n  - {token: !env TOKEN}\n"])
def test_a_file_that_reads_the_environment_is_never_kept_however_the_tag_is_spelled(tmp_path: Path,
                                                                                    text: str) -> None:
    """YAML spells a tag many ways (%-escapes, %TAG handles, verbatim tags): what decides is that the
    file read a variable, not the bytes ``!env``. Kept, it would give an old value, and put a secret
    on disk."""
    cache = FixtureCache(tmp_path)
    path = tmp_path / "env.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_file(path, variables={"TOKEN": "a"}, cache=cache)[0].rows[-1].values == {"token": "a"}
    assert load_file(path, variables={"TOKEN": "b"}, cache=cache)[0].rows[-1].values == {"token": "b"}
    assert cache.hits == 0
    folder = tmp_path / cache_mod.FOLDER
    assert not folder.exists() or not list(folder.iterdir())


def test_a_folder_that_cannot_be_written_means_no_cache_not_a_failure(tmp_path: Path) -> None:
    (tmp_path / ".seedkit").write_text("a file where the cache folder would be", encoding="utf-8")
    cache = FixtureCache(tmp_path)
    path = tmp_path / "users.yaml"
    path.write_text("rows:\n  - {name: ada}\n", encoding="utf-8")
    assert outcome(path, cache) == outcome(path, cache) == outcome(path, None)
    assert cache.hits == 0


def _run_project(tmp_path: Path, sqlite_url: str) -> Project:
    p = Project(tmp_path, sqlite_url)
    p.write_files({"migrations/20240101000000_users.sql": """
        -- migrate:up
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score NUMERIC);
        -- migrate:down
        DROP TABLE users;
        """})
    seedkit.migrate.up(p.config())
    p.write("dev/users.yaml", "key: name\nrows:\n  - {name: ada, score: 1.5}\n  - {name: bob, score: 2}\n")
    return p


def test_a_run_uses_the_cache_and_sees_an_edit(tmp_path: Path, sqlite_url: str) -> None:
    p = _run_project(tmp_path, sqlite_url)
    seedkit.run("dev", config=p.config())
    folder = p.root / cache_mod.FOLDER
    assert len(list(folder.iterdir())) == 1
    path = p.seeds_dir / "dev" / "users.yaml"
    before = path.stat()
    path.write_text(path.read_text().replace("ada", "eve"))  # same size; the same time below
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    seedkit.run("dev", config=p.config())
    assert [r[0] for r in p.rows("SELECT name FROM users ORDER BY name")] == ["ada", "bob", "eve"]
    path.write_text("key: name\nrows:\n  - {name: eve, score: x}\n")  # an error: located the same way
    with pytest.raises(FixtureError) as info:
        seedkit.run("dev", config=p.config())
    assert "users.yaml:3" in str(info.value)


@pytest.mark.parametrize("how", ["config", "environment"])
def test_the_cache_can_be_turned_off(tmp_path: Path, sqlite_url: str, how: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    p = _run_project(tmp_path, sqlite_url)
    if how == "config":
        p.config_path.write_text(p.config_path.read_text().replace("[seeds]\n", "[seeds]\ncache = false\n"))
    else:
        monkeypatch.setenv(cache_mod.ENV, "0")
    seedkit.run("dev", config=p.config())
    assert not (p.root / ".seedkit").exists()
    monkeypatch.delenv(cache_mod.ENV, raising=False)
    if how == "environment":
        seedkit.run("dev", config=p.config())
        assert (p.root / cache_mod.FOLDER).is_dir()


def test_a_wrong_cache_setting_is_a_config_error(tmp_path: Path, sqlite_url: str) -> None:
    p = _run_project(tmp_path, sqlite_url)
    p.config_path.write_text(p.config_path.read_text().replace("[seeds]\n", "[seeds]\ncache = \"sometimes\"\n"))
    result = p.cli("run", "dev")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cache" in result.stdout + result.stderr


def test_decimals_and_references_come_back_as_they_were(tmp_path: Path) -> None:
    cache = FixtureCache(tmp_path)
    path = tmp_path / "t.yaml"
    path.write_text("rows:\n  - {p: 0.990, q: -0.0, r: !ref {table: a, x: !ref b/c, y: 1.50}}\n", encoding="utf-8")
    outcome(path, cache)
    (row,) = read(path, cache)[0].rows
    assert cache.hits == 1
    assert str(row.values["p"]) == "0.990" and str(row.values["q"]) == "-0.0"
    ref = row.values["r"]
    assert ref.match == (("x", Ref("b", ((None, "c"),))), ("y", Decimal("1.50")))
    assert str(ref.match[1][1]) == "1.50" and ref.location.line == 2 and ref.match[0][1].location.line == 2


def test_a_run_reading_every_file_from_the_cache_does_not_import_pyyaml(tmp_path: Path, sqlite_url: str) -> None:
    """PyYAML is imported to read a YAML file, not to find it in the cache: a rerun whose files all come from
    the cache (a Python fixture beside them, so the rerun record does not decide it) never imports it, and
    stores what it stored when it did."""
    p = _run_project(tmp_path, sqlite_url)
    p.write("dev/more.py", 'from seedkit import fixture\n\n\n@fixture("users", key=["name"], count=2)\n'
                           'def more(fake, n):\n    return {"name": f"user{n}", "score": n}\n')
    code = ("import atexit, sys\nfrom seedkit.cli import main\n"
            "atexit.register(lambda: print('yaml imported:', 'yaml' in sys.modules, file=sys.stderr))\n"
            f"main({['--config', str(p.config_path), 'run', 'dev']!r})\n")
    import subprocess
    import sys

    from tests.support.processes import process_env

    runs = [subprocess.run([sys.executable, "-c", code], cwd=p.root, env=process_env(None), text=True,
                           capture_output=True, timeout=180) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert "yaml imported: True" in runs[0].stderr  # the first run read the file
    assert "yaml imported: False" in runs[1].stderr, runs[1].stderr  # the second found it in the cache
    assert "nothing changed" in runs[1].stdout
    assert [r[0] for r in p.rows("SELECT name FROM users ORDER BY name")] == ["ada", "bob", "user1", "user2"]


def test_pyyaml_is_named_in_keys_as_it_names_itself(tmp_path: Path) -> None:
    """The version and libyaml flag the keys carry, read without importing PyYAML, are PyYAML's own."""
    import subprocess
    import sys

    code = ("import sys\nfrom seedkit.seed.yaml_events import pyyaml_stamp\nprobe = pyyaml_stamp()\n"
            "assert 'yaml' not in sys.modules\nimport yaml\n"
            "print(probe == (yaml.__version__, bool(yaml.__with_libyaml__)) == pyyaml_stamp(), probe)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True"), out.stdout
