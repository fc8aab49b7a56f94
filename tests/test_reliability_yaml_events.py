"""The events reader (seedkit.seed.yaml_events) reads what the composer path reads (RELIABILITY.md §15).

YAML fixture files are read straight from libyaml's events when their shapes are the common ones,
and by PyYAML's composer and constructor otherwise. A differential test over random documents,
hostile ones among them (aliases, merge keys, explicit tags, %TAG handles, %-escaped tags, binary,
non-UTF-8 bytes, a BOM, keys twice, deep nesting, huge integers, .nan, dates and times, variables),
compares both: the same documents, rows, values, types, positions and the same errors with the same
locations. It also checks the events reader really read most of them (a reader that always gave up
would pass the comparison and be no faster).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from seedkit.errors import FixtureError
from seedkit.seed import load, yaml_events
from tests.test_reliability_fixture_cache import outcome

VARIABLES = {"TOKEN": "s3cret", "EMPTY": ""}

_WORDS = ["ada", "Grace Hopper", "U2", "AC/DC", "x: y", "#1 Zero", "", "Motörhead", "12", "yes", "null", "~",
          "on", "0x1F", "1_000", "2024-01-02", "tab\there", "quote\"d", "it's", "a\\b", "\u2028", "🎵"]

_SCALARS = [
    # numbers in every spelling YAML 1.1 resolves
    "0", "-0", "+5", "007", "012", "0o17", "0x1F", "0b101", "1_000", "1:30", "190:20:30", "12345678901234567890",
    "0.99", "1.10", "-3.5e+3", "1e3", "1_000.5", ".5", "-.5", "1:30.5", "-1:30.5", ".inf", "-.Inf", "+.INF",
    ".nan", ".NaN", "-0.0", "1.", "3.14abc",
    # booleans, nulls
    "true", "False", "yes", "NO", "on", "Off", "y", "n", "null", "Null", "~", "",
    # dates and times
    "2024-01-02", "2021-08-06 00:00:00", "2024-05-01T09:30:00+02:00", "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5", "2024-1-2",
    # text that looks like something else
    "'quoted ''text'''", '"double \\" quoted \\u00e9"', '"12"', "'yes'", '"2024-01-02"', "plain text", "Ünïcode",
]
_BAD_SCALARS = ["1" * 5000, "-" + "9" * 4400, "2024-13-45", "2024-02-30 10:00:00", "<<", "=", "1:x:3.5"]

_TAGGED = [
    "!!str 12", "!!int '7'", "!!int 0x10", "!!float 1", "!!float '1.50'", "!!bool yes", "!!null ''",
    "!!binary aGVsbG8=", "!!timestamp 2024-01-02", "!!set {a, b}", "!!omap [{a: 1}]", "!!pairs [{a: 1}, {a: 2}]",
    "!!map {a: 1}", "!!seq [1, 2]", "! nonspecific", "!<tag:yaml.org,2002:str> verbatim", "!%72ef roles/admin",
    "!<!ref> roles/admin", "!json '{\"a\": 1.10, \"b\": [null]}'", "!json null", "!json '[1, \"x\"]'",
    "!env TOKEN", "!env 'UNSET_SURELY:-fallback'", "!%65nv TOKEN", "!<!env> EMPTY",
]
_BAD_TAGGED = ["!!binary not-base64!", "!!python/object:os.system x", "!foo x", "!json '{bad'", "!json {a: 1}",
               "!env UNSET_SURELY", "!env [x]", "!ref", "!ref ''", "!ref noslash", "!ref /x", "!ref t/",
               "!ref [a, b]", "!!int 12abc", "!!float x"]

_REFS = ["!ref {table: t, a: 1, a: 2}", "!ref {table: t, column: 5, x: 1}", "!ref {table: t, 1: x}",
         "!ref {table: t, <<: {x: 1}}", "!ref {table: t, x: !json 1}", "!ref {table: t, x: &a 1, y: *a}",
         "!ref {table: t, x: !!str 1}", "!ref {table: ' t ', x: 2024-01-02}", "!ref ' t /v/w'", "!ref t/ v "]
_TAME_REFS = [r for r in _REFS if not any(x in r for x in ("<<", "&", "!!", "!json", "1: x"))]
_BAD_REFS = ["!ref {column: id, x: 1}", "!ref {table: t}", "!ref {table: t, x: null}", "!ref {table: t, x: [1]}",
             "!ref {table: t, x: {a: 1}}", "!ref {table: 5, x: 1}", "!ref {table: t, ? [k]: 1}"]


_REF_SCALARS = [v for v in _SCALARS if v not in ("null", "Null", "~", "")]  # a reference matches a value


def _pick(rng: random.Random, good: list[str], bad: list[str], hostile: float) -> str:
    return rng.choice(bad) if rng.random() < hostile else rng.choice(good)


def _ref(rng: random.Random, hostile: float, depth: int = 0) -> str:
    word = json.dumps(rng.choice(_WORDS))
    kind = rng.randrange(8)
    if kind == 0 or depth > 2:
        return "!ref " + json.dumps("artist/" + (rng.choice(_WORDS) or "x"), ensure_ascii=False)
    if kind == 1:
        return f"!ref {{table: album, title: {word}, artist_id: {_ref(rng, hostile, depth + 1)}}}"
    if kind == 2:
        return f"!ref {{table: track, column: id, name: {word}, ms: {rng.choice(_REF_SCALARS)}}}"
    if kind == 3:
        return _pick(rng, _REFS, _BAD_REFS, hostile) if hostile >= 0 else rng.choice(_TAME_REFS)
    return f"!ref {{table: t, x: {rng.choice(_REF_SCALARS)}, y: {_ref(rng, hostile, depth + 1)}}}"


_TAME_TAGGED = [t for t in _TAGGED if t.startswith(("!json", "!<!ref>", "!%72ef"))]


def _value(rng: random.Random, anchors: list[str], hostile: float, depth: int = 0) -> str:
    """A value's text; a ``hostile`` below 0 means tame: no anchors, aliases, merges or other tags."""
    kind = rng.randrange(16)
    if hostile < 0:
        kind = rng.choice([0, 1, 2, 3, 6, 7, 8, 9, 10, 13, 14])
        if kind < 4 and rng.random() < 0.2:
            return rng.choice(_TAME_TAGGED)
    if kind < 4:
        return _pick(rng, _SCALARS, _BAD_SCALARS, hostile)
    if kind < 6:
        return _pick(rng, _TAGGED, _BAD_TAGGED, hostile)
    if kind < 9:
        return _ref(rng, hostile)
    if kind == 9 and depth < 3:
        keys = rng.sample(["a", "b", "1", "on", "null", '"c"', "2024-01-02", "x y", ".nan"] + ["="] * (hostile >= 0),
                          rng.randint(0, 3))
        if rng.random() < hostile and keys:
            keys.append(keys[0])  # a key twice
        pairs = [f"{k}: {_value(rng, anchors, hostile, depth + 1)}" for k in keys]
        if rng.random() < 0.1 and hostile >= 0:
            pairs.append(rng.choice(["<<: {z: 1}", "<<: [{z: 1}, {a: 2}]", "? [k]: 1", "<<: 5"]))
        return "{" + ", ".join(pairs) + "}"
    if kind == 10 and depth < 3:
        return "[" + ", ".join(_value(rng, anchors, hostile, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    if kind == 11 and anchors:
        return "*" + rng.choice(anchors)
    if kind == 12:
        name = f"a{len(anchors)}"
        anchors.append(name)
        return f"&{name} " + rng.choice([rng.choice(_SCALARS), _ref(rng, hostile), "{k: 1}", "[1, 2]"])
    if kind == 13:
        return json.dumps(rng.choice(_WORDS), ensure_ascii=rng.random() < 0.5)
    if kind == 14:
        return "'" + rng.choice(_WORDS).replace("'", "''") + "'"
    return _pick(rng, ["[[[[1]]]]", "{a: {b: {c: [1, {d: 2}]}}}", "[" * 60 + "]" * 60],
                 ["*nowhere", "&x", "[1, 2", "{a: 1"], hostile)


def _row(rng: random.Random, anchors: list[str], hostile: float) -> str:
    good = ["name", "n", "m", "when", "price", "artist_id", "doc", '"q"', "'rows'", "a b", "Ünï"]
    good += ["="] * (hostile >= 0)
    bad = ["on", "1", "null", "? complex", "[x]"]
    cols = rng.sample(good, rng.randint(0, 5)) + ([rng.choice(bad)] if rng.random() < hostile else [])
    rng.shuffle(cols)
    if rng.random() < hostile and cols:
        cols.append(cols[0])  # a column twice
    pairs = [f"{c}: {_value(rng, anchors, hostile)}" for c in cols]
    if rng.random() < 0.1 and hostile >= 0:
        rows = [a for a in anchors if a.startswith("row")]
        pairs.insert(rng.randrange(len(pairs) + 1), "<<: " + rng.choice(
            ["{x: 1, name: merged}", "[{x: 1}, {y: 2}]"] + [f"*{r}" for r in rows]))
    style = rng.randrange(6)
    if style == 0:
        return "- " + "\n  ".join(pairs) if pairs else "- {}"
    if style == 1 and hostile >= 0:
        anchors.append(f"row{len(anchors)}")
        return f"- &{anchors[-1]} {{" + ", ".join(pairs) + "}"
    if style == 2 and rng.random() < hostile:
        return "- " + rng.choice(["!!map {" + ", ".join(pairs) + "}", "[1, 2]", "just text", "null", "!ref a/b"])
    if style == 3:  # block scalars in block style
        block = rng.choice(["block: |\n    a block\n    of text", "block: >-\n    folded\n    text"])
        return "- " + "\n  ".join([*pairs, block])
    return "- {" + ", ".join(pairs) + "}"


def random_document(rng: random.Random, hostile: float) -> str:
    anchors: list[str] = []
    lines = []
    if rng.random() < 0.2:
        lines.append(rng.choice(["%YAML 1.1", "%TAG !e! !en", "%TAG !r! !re"] +
                                ["%TAG ! tag:example.com,2000:"] * (hostile >= 0)))
        lines.append("---")
    header = [rng.choice(["table: artist", "table: 'a.b'", "? table\n: qmark"] + ["table: !!str 5"] * (hostile >= 0)),
              rng.choice(["key: name", "key: [name, n]", '"key": name']), "on_conflict: ignore", "prune: yes",
              "create_only: [n]"] + ["<<: {table: merged}"] * (hostile >= 0)
    bad = ["table: [x]", "table: 7", "key: 5", "unknown: 1", "table: twice", "rows: []", "prune: maybe",
           "? [complex]\n: 1"]
    lines += rng.sample(header, rng.randint(0, 3)) + ([rng.choice(bad)] if rng.random() < hostile else [])
    if rng.randrange(8) == 0:
        lines = [_row(rng, anchors, hostile) for _ in range(rng.randint(0, 6))]  # a bare list of rows
    else:
        lines.append(_pick(rng, ["rows:", "rows:", "rows:", "'rows':"] + ["rows: !!seq", "rows: &all"] * (hostile >= 0),
                           ["rows: 5", "rows: {a: 1}"], hostile))
        lines += [_row(rng, anchors, hostile) for _ in range(rng.randint(0, 8))]
    if rng.random() < 0.1 and hostile >= 0:
        lines.append(rng.choice(["- {n: !e!v TOKEN}", "- {n: !r!f t/v}", "- {n: !<!env> TOKEN}"]))
    return "\n".join(lines) + "\n"


def random_file(rng: random.Random) -> bytes:
    hostile = rng.choice([-1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 0.02, 0.05, 0.2, 0.2])
    docs = [random_document(rng, hostile) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    sep = rng.choice(["---\n", "...\n---\n", "--- # comment\n"])
    text = sep.join(docs) if len(docs) > 1 or rng.random() < 0.3 else docs[0]
    if rng.random() < 0.1:
        text = rng.choice(["# only a comment\n", "---\n", "---\n...\n"]) + text
    if rng.random() < hostile:
        text = rng.choice(["", "--- 5\n", "--- !ref a/b\n", "- x\n", "[\n", "{rows: [{a: 1}]} trailing\n",
                           "rows:\n" + "  - " * 3 + "x\n"]) + text
    raw = text.encode("utf-8")
    kind = rng.randrange(30)
    if kind == 0:
        raw = b"\xef\xbb\xbf" + raw  # a BOM
    elif kind == 1:
        raw = raw.replace(b"\n", b"\r\n")
    elif rng.random() < hostile * 2:
        raw = rng.choice([
            raw[: len(raw) // 2] + b"\xff\xfe" + raw[len(raw) // 2:],  # not UTF-8
            raw + b"\x00\x01binary",
            raw + b"- {n: \x07bell}\n",  # a character YAML does not allow
            raw + b"- {n: " + b"[" * 3000 + b"]" * 3000 + b"}\n",  # deeper than Python recurses
            raw + b"\t- {n: 1}\n",
        ])
    return raw


def _outcome(path: Path, events: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(load, "_EVENTS", events)
    return outcome(path, None, VARIABLES)


def test_the_events_reader_reads_what_the_composer_path_reads(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261130)
    read_here = 0
    real_read = yaml_events.read

    def counting(*args: Any) -> Any:
        nonlocal read_here
        fixtures = real_read(*args)
        read_here += fixtures is not None
        return fixtures

    monkeypatch.setattr(yaml_events, "read", counting)
    seen = {"ok": 0, "error": 0}
    for i in range(600):
        path = tmp_path / f"t{i}.yaml"
        path.write_bytes(random_file(rng))
        new = _outcome(path, True, monkeypatch)
        old = _outcome(path, False, monkeypatch)
        assert new == old, path.read_bytes().decode("utf-8", "replace")
        seen["error" if isinstance(old, tuple) and old[0] == "error" else "ok"] += 1
    assert seen["ok"] > 120 and seen["error"] > 200, seen  # both outcomes are common
    assert read_here > 120, read_here  # and the events reader read a good part itself


@pytest.mark.parametrize("text", [
    "rows:\n  - {token: !env TOKEN}\n", "rows:\n  - {token: !%65nv TOKEN}\n",
    "%TAG !e! !en\n---\nrows:\n  - {token: !e!v TOKEN}\n", "rows:\n  - {token: !<!env> 'UNSET:-default'}\n",
    "rows:\n  - {r: !ref {table: t, x: !env TOKEN}}\n", "rows:\n  - {d: {a: [!env TOKEN]}}\n",
    "table: !env TOKEN\nrows: []\n"])
def test_the_events_reader_never_reads_a_variable(tmp_path: Path, text: str) -> None:
    """A file that reads the environment is left to the composer path, which notes that it did (the
    fixture cache must never keep it): the events reader gives up without touching the variables."""
    touched = []

    class Watching(dict):  # type: ignore[type-arg]
        def __getitem__(self, name: str) -> str:
            touched.append(name)
            return super().__getitem__(name)

        def get(self, name: str, default: Any = None) -> Any:
            touched.append(name)
            return super().get(name, default)

    path = tmp_path / "env.yaml"
    path.write_text(text, encoding="utf-8")
    assert yaml_events.read(load._FastLoader, text, path, "env.yaml", load._document) is None
    assert touched == []
    fixtures = load.load_file(path, variables=Watching(VARIABLES))
    assert touched and fixtures  # the composer path read it, and read the variable


def test_the_common_shapes_are_read_from_events(tmp_path: Path) -> None:
    """The shapes ``seedkit snapshot`` writes, and hand-written ones, are read by the events reader
    (not given up on), with the values and positions the composer path gives."""
    text = ("table: track\nkey: [name, album_id]\nrows:\n"
            '- {name: "\\"40\\"", album_id: !ref {table: album, title: "War", artist_id: !ref "artist/U2"},'
            " ms: 157962, price: 0.99, at: 2024-05-01T09:30:00+02:00, gone: null, ok: yes, doc: {a: [1, b]}}\n"
            "- name: Zoo\n  album_id: !ref album/Zooropa\n  ms: 0x10\n  price: .nan\n  doc: !json '{\"a\": 1.10}'\n"
            "---\n- {name: second document, ms: -5}\n")
    path = tmp_path / "track.yaml"
    path.write_text(text, encoding="utf-8")
    new = yaml_events.read(load._FastLoader, text, path, "track.yaml", load._document)
    assert new is not None
    load._EVENTS = False
    try:
        old = load._load_yaml(text, path, "track.yaml", {})
    finally:
        load._EVENTS = True
    from tests.test_reliability_fixture_cache import canon
    assert [[(canon(r.values), r.location, r.column_lines) for r in fx.rows] for fx in new] == \
        [[(canon(r.values), r.location, r.column_lines) for r in fx.rows] for fx in old]
    ref = new[0].rows[0].values["album_id"]
    line = text.splitlines()[3]
    assert (ref.location.line, ref.location.column) == (4, line.index("!ref {") + 1)
    assert ref.match[0][1].location.column == line.index('!ref "artist') + 1 and new[0].rows[1].column_lines == {
        "name": 5, "album_id": 6, "ms": 7, "price": 8, "doc": 9}


@pytest.mark.parametrize(("value", "expected"), [("1:30.5", "90.5"), ("-1:30.5", "-90.5"),
                                                 ("190:20:30.15", "685230.15")])
def test_base_60_floats_are_exact_decimals(tmp_path: Path, value: str, expected: str) -> None:
    """YAML 1.1 reads 1:30.5 as a number (90.5); it was an unhandled decimal error (a traceback)."""
    path = tmp_path / "t.yaml"
    path.write_text(f"rows:\n  - {{n: {value}}}\n", encoding="utf-8")
    for events in (True, False):
        load._EVENTS = events
        try:
            assert str(load.load_file(path, variables={})[0].rows[0].values["n"]) == expected
        finally:
            load._EVENTS = True


@pytest.mark.parametrize(("text", "where", "words"), [
    ("rows:\n  - {n: 1, big: " + "7" * 5000 + "}\n", "t.yaml:2:17", "5000 digits, more than the"),
    ("- id: 1\n  data: 0x" + "00ff" * 4000 + "\n", "t.yaml:2:9", "digits, more than the"),  # a hex blob
    ("rows:\n  - {n: 1:x:3.5}\n", None, None),  # text, not a number: read as such
    ("? [a, b]\n: 1\nrows: []\n", "t.yaml:1:3", "keys are names"),
])
def test_numbers_and_keys_python_cannot_hold_are_located_errors(tmp_path: Path, text: str, where: str | None,
                                                                 words: str | None) -> None:
    """An integer of more digits than Python converts, a list as a document's key: a located fixture
    error (exit 2), not a traceback, by both readers."""
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    for events in (True, False):
        load._EVENTS = events
        try:
            if where is None:
                assert load.load_file(path, variables={})[0].rows[0].values["n"] == "1:x:3.5"
                continue
            with pytest.raises(FixtureError) as info:
                load.load_file(path, variables={}, display="t.yaml")
            assert where in str(info.value) and words in str(info.value), str(info.value)
            assert info.value.exit_code == 2
        finally:
            load._EVENTS = True


@pytest.mark.parametrize(("obj", "key"), [('{"b": 1, "a": 2, "a": 3, "b": 4}', "b"), ('{"x": 1, "y": 2, "y": 3}', "y")])
def test_a_json_key_twice_names_the_first_repeated_key(tmp_path: Path, obj: str, key: str) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"rows": [' + obj + "]}", encoding="utf-8")
    with pytest.raises(FixtureError) as info:
        load.load_file(path, variables={})
    assert f"key {key!r} appears twice in one object" in str(info.value)
