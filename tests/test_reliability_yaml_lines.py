"""The line reader (seedkit.seed.yaml_lines) reads what the events reader reads (RELIABILITY.md §15).

Files in the shape ``seedkit snapshot`` writes (a header, ``rows:``, one flow mapping per line) are read
a line at a time; anything else is given up on and read by the events reader, then the composer path.
A differential test over thousands of random files of that shape — column names YAML reads as other
things, numbers in every spelling, dates, every escape, quotes, backslashes, ``#``, ``: ``, ``, ``,
braces, astral and combining characters, references by text and nested mappings of references with
hostile content — and over random one-character changes of them, compares the line reader with the
events reader (the same rows, values and types, positions of rows, columns and references) and the
whole read with the line reader on and off (the same fixtures, or the same error at the same place).
It also checks the line reader really read the files of that shape (one that always gave up would
pass the comparison and be no faster).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from seedkit.seed import load, yaml_events, yaml_lines
from seedkit.snapshot import render
from seedkit.snapshot.render import fix_text
from tests.test_reliability_fixture_cache import canon, outcome

_NAMES = ["name", "album_id", "n", "x1", "_id", "a.b", "yes", "no", "null", "on", "off", "y", "n", "Y", "true",
          "NULL", "e1", "inf", "nan", "table", "column", "rows", "key", "Ünï", "a b", "1", "0x1F", "2024-01-02",
          ".inf", "<<", "=", "~", ""]
_LONG_NAMES = ["k" * 998, "k" * 1030, "é" * 1100]  # YAML reads a key of up to 1024 characters
_PLAIN = ["0", "-0", "+5", "007", "012", "0o17", "0x1F", "0b101", "1_000", "-1_0", "12345678901234567890",
          "9" * 30, "0.99", "1.10", "-3.5e+3", "1e3", "1.0e-3", "1_000.5", ".5", "-.5", "1.", ".inf", "-.Inf",
          "+.INF", ".nan", ".NaN", "-0.0", "3.14abc", "true", "False", "yes", "NO", "on", "Off", "y", "n",
          "null", "Null", "NULL", "2024-01-02", "2024-1-2", "20240102", "abc", "a_b", "_", "-", "--x",
          "2024-02-30", "2024-13-45", "+", ".", "..", "e", "E5", "0e0", "1__2", "0b", "0x", "0o"]
_TEXT = ["", "War", "U2", "AC/DC", "Lost, Season 2", "x: y", "#1 Zero", "a # b", "{", "}", "{a}", "[", "]",
         "it's", 'quote"d', "a\\b", "\\", "\\\\", "\"\"", "tab\there", "line\nbreak", "cr\rhere", "\u2028",
         "\x85", "\x7f", "\x00", "\x01", "\ufeff", "\ufffe", "Motörhead", "é", "e\u0301", "🎵", "𝄞x", "日本",
         "!ref a/b", "&a", "*a", "%x", "@x", "`x", "- x", "? x", "...", "---", "2021-08-06 00:00:00", "null",
         "yes", "12", "0.99", " lead", "trail ", "  ", ", ", ": ", "/", "a/b/c", " t / v "]
_ESCAPED = ['"\\x41"', '"\\U0001F600"', '"\\e"', '"\\N"', '"\\_"', '"\\L"', '"\\P"', '"\\0"', '"\\a"', '"\\v"',
            '"\\ "', '"\\ud83c\\udfb5"', '"\\ud800"', '"\\u00e9\\u0301"', '"\\/"', '"\\q"', '"\\u12"']


_BAD_DATES = ["2024-02-30", "2024-13-45", "-"]  # a constructor's error, or not a plain scalar to libyaml


def _string(rng: random.Random, hostile: bool) -> str:
    if hostile and rng.random() < 0.1:
        return rng.choice(_ESCAPED)
    text = "".join(rng.choice(_TEXT) for _ in range(rng.choice([1, 1, 2, 3])))
    if not hostile or rng.random() < 0.5:  # as seedkit snapshot writes text
        return fix_text(json.dumps(text, ensure_ascii=False))
    return json.dumps(text, ensure_ascii=rng.random() < 0.3)


def _plain(rng: random.Random, hostile: bool) -> str:
    value = rng.choice(_PLAIN)
    return value if hostile or value not in _BAD_DATES else "1"


def _name(rng: random.Random, hostile: bool) -> str:
    if not hostile:
        return render.name(rng.choice(_NAMES))  # as seedkit snapshot writes a name
    name = rng.choice(_NAMES + _LONG_NAMES)
    if rng.random() < 0.2:
        return json.dumps(name, ensure_ascii=False)
    if not name or not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c in "_." for c in name) \
            or not name.isascii():
        return json.dumps(name, ensure_ascii=False)  # as seedkit snapshot writes a name that is not a word
    return name


def _ref(rng: random.Random, hostile: bool, depth: int = 0) -> str:
    kind = rng.randrange(5)
    if kind < 2 or depth > 5:
        text = "".join(rng.choice(_TEXT) for _ in range(rng.choice([1, 1, 2])))
        body = rng.choice(["artist", "media_type", " t ", "", "a.b"]) + rng.choice(["/", "/", "/", ""]) + text \
            if hostile else "artist/" + (text or "x")
        quoted = fix_text(json.dumps(body, ensure_ascii=False)) if not hostile or rng.random() < 0.5 \
            else json.dumps(body, ensure_ascii=rng.random() < 0.3)
        if hostile and rng.random() < 0.1:
            quoted = quoted[:-1] + rng.choice(_ESCAPED)[1:]
        return "!ref " + quoted
    tables = ["album", "track", json.dumps("t t"), "x"] + (["5", "null", '""'] if hostile else [])
    pairs = ["table: " + rng.choice(tables)]
    if rng.random() < 0.2:
        pairs.append(f"column: {rng.choice(['id', json.dumps('c'), '5'] if hostile else ['id'])}")
    names = {"table", "column"}
    while len(names) < 3 or rng.random() < 0.4:
        name = _name(rng, hostile)
        if hostile and rng.random() < 0.3:
            break
        if not hostile and (json.loads(name) if name.startswith('"') else name) in names:
            continue
        names.add(name if not name.startswith('"') else json.loads(name))
        value = rng.choice([_string(rng, hostile), _plain(rng, hostile), _ref(rng, hostile, depth + 1)])
        if not hostile and value in ("null", "Null", "NULL", "~"):
            value = "0"
        if hostile and rng.random() < 0.05:
            value = rng.choice(["null", "~", "[1]", "{a: 1}", "!json 1", "&a 1", "'single'"])
        pairs.append(f"{name}: {value}")
    rng.shuffle(pairs)
    return "!ref {" + ", ".join(pairs) + "}"


def _value(rng: random.Random, hostile: bool, seen: list[str]) -> str:
    kind = rng.randrange(10)
    if kind >= 6 and seen and rng.random() < 0.5:
        return rng.choice(seen)  # a reference met again (elsewhere on another line)
    if 6 <= kind < 9:
        seen.append(_ref(rng, hostile))
        return seen[-1]
    if kind < 3:
        return _string(rng, hostile)
    if kind < 6:
        return _plain(rng, hostile)
    if kind < 9:
        return _ref(rng, hostile)
    return rng.choice(["null", "true", "false"] + (["~", "[1, 2]", "{a: 1}", "!json null", "!!str 5", "'it''s'",
                                                    "&a 1", "*a", "plain words", "a: b", "!ref plain/text"]
                                                   if hostile else []))


def random_text(rng: random.Random, hostility: float) -> str:
    """A file of the snapshot's shape; each row (and the header) hostile with the given likelihood."""
    hostile = rng.random() < hostility
    header = rng.choice([[], ["table: track"], ["table: track", "key: [name, album_id]"],
                         ["# a comment", "table: t", "key: name", "on_conflict: ignore"],
                         ["key: [a, b]", "table: 'x'"]])
    if hostile and rng.random() < 0.2:
        header = header + [rng.choice(["rows: []", "table: [x]", "prune: maybe", "%YAML 1.1", "---",
                                       "note: |\n  text", "note: \"open", "- x"])]
    lines = [*header, "rows:"]
    seen: list[str] = []
    for _ in range(rng.randint(1 if not hostile else 0, 8)):
        hostile = rng.random() < hostility
        cols: list[str] = []
        while len(cols) < rng.randint(1, 6):
            name = _name(rng, hostile)
            if name in cols and not (hostile and rng.random() < 0.3):
                continue
            cols.append(name)
        lines.append("- {" + ", ".join(f"{c}: {_value(rng, hostile, seen)}" for c in cols) + "}")
    return "\n".join(lines) + "\n"


_CHANGES = [" ", "  ", "\t", "#", " #", '"', "'", "\\", "{", "}", ",", ":", ": ", ", ", "\n", "\n\n", "-", "!",
            "&", "*", "[", "]", "?", "|", ">", "%", "@", "`", "\x85", "\ufeff", "\r", "\u2028", "\x00", "é", "🎵",
            "0", "a", "...", "---", "!ref ", "!!str ", "}\n- {"]


def mutate(rng: random.Random, text: str) -> str:
    at = rng.randrange(len(text) + 1)
    how = rng.randrange(3)
    if how == 0:
        return text[:at] + rng.choice(_CHANGES) + text[at:]
    if how == 1:
        return text[:at] + text[at + 1:]
    return text[:at] + rng.choice(_CHANGES) + text[at + 1:]


def _whole(path: Path, lines: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(load, "_LINES", lines)
    return outcome(path, None, {})


def _fixtures(fixtures: list[Any] | None) -> Any:
    if fixtures is None:
        return None
    return [(fx.table, vars(fx.header), fx.source, fx.location, fx.name,
             [(canon(r.values), r.location, r.column_lines) for r in fx.rows]) for fx in fixtures]


def test_the_line_reader_reads_what_the_events_reader_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261201)
    taken = {"tame": 0, "tame_total": 0, "hostile": 0, "mutated": 0}
    outcomes = {"ok": 0, "error": 0}
    path = tmp_path / "track.yaml"
    for i in range(3000):
        kind = "tame" if i % 3 == 0 else "hostile" if i % 3 == 1 else "mutated"
        text = random_text(rng, 0.3 if kind == "hostile" else 0.0)
        if kind == "mutated":
            for _ in range(rng.choice([1, 1, 1, 2])):
                text = mutate(rng, text)
        raw = text.encode("utf-8", "surrogatepass")
        path.write_bytes(raw)
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            decoded = None
        if decoded is not None:
            fast = yaml_lines.read(load._FastLoader, decoded, path, "seeds/track.yaml", load._document)
            if fast is not None:
                taken[kind] += 1
                events = yaml_events.read(load._FastLoader, decoded, path, "seeds/track.yaml", load._document)
                assert _fixtures(fast) == _fixtures(events), text
        taken["tame_total"] += kind == "tame"
        on, off = _whole(path, True, monkeypatch), _whole(path, False, monkeypatch)
        assert on == off, text
        outcomes["error" if isinstance(off, tuple) else "ok"] += 1
    # the shape seedkit snapshot writes is read by the line reader, the rest mostly given up on
    assert taken["tame"] > 0.9 * taken["tame_total"], taken
    assert taken["hostile"] > 200 and taken["mutated"] > 200, taken
    assert outcomes["ok"] > 1000 and outcomes["error"] > 200, outcomes


def test_the_line_reader_reads_a_snapshot_line_with_its_positions(tmp_path: Path) -> None:
    """A row as ``seedkit snapshot`` writes it: the values, and the lines and columns libyaml gives a
    row, its columns and each reference (a tagged value starts at its tag), also for a reference met again."""
    row = ('- {name: "\\"40\\" 🎵", album_id: !ref {table: album, title: "War", artist_id: !ref "artist/U2"}, '
           'media_type_id: !ref "media_type/MPEG audio file", composer: null, milliseconds: 157962, '
           "unit_price: 0.99, at: 2024-01-02, ok: yes}")
    text = "table: track\nkey: [name, album_id, milliseconds]\nrows:\n" + row + "\n" + row.replace("157962", "7") + "\n"
    path = tmp_path / "track.yaml"
    path.write_text(text, encoding="utf-8")
    fast = yaml_lines.read(load._FastLoader, text, path, "track.yaml", load._document)
    assert fast is not None
    events = yaml_events.read(load._FastLoader, text, path, "track.yaml", load._document)
    assert _fixtures(fast) == _fixtures(events)
    for number, r in enumerate(fast[0].rows, start=4):
        album = r.values["album_id"]
        assert (album.location.line, album.location.column) == (number, row.index("!ref {") + 1)
        artist = dict(album.match)["artist_id"]
        assert (artist.location.line, artist.location.column) == (number, row.index('!ref "artist') + 1)
        assert r.location.line == number and set(r.column_lines.values()) == {number}
    assert str(fast[0].rows[0].values["unit_price"]) == "0.99" and fast[0].rows[0].values["composer"] is None
    assert fast[0].rows[0].values["ok"] is True and fast[0].rows[1].values["milliseconds"] == 7


@pytest.mark.parametrize("text", [
    "rows:\n- {a: 1} # comment\n", "rows:\n- {a: 1}\n\n- {a: 2}\n", "rows:\n- {a: 'x'}\n", "rows:\n- {a: &x 1}\n",
    "rows:\n- {a: [1]}\n", "rows:\n- {a: !env TOKEN}\n", "rows:\n- {a: 1, a: 2}\n", "rows:\n- {yes: 1}\n",
    "rows:\n- {a: \"\\x41\"}\n", "rows:\n- {a: \"\t\"}\n", "rows:\n- {a: 1} \n", "---\nrows:\n- {a: 1}\n",
    "rows:\n- {a: 1}\n---\nrows:\n- {a: 2}\n", "rows:\n- {a: \"\ufeff\"}\n", "rows:\n- {a: 1}", "rows:\n",
    "rows:\n- {a: \"x\n  y\"}\n", "rows:\n- {a: 1}\r\n", "rows:\n- {" + "k" * 1030 + ": 1}\n",
    "rows:\n- {\"" + "k" * 1030 + "\": 1}\n", "rows:\n- {r: !ref {table: t, " + "k" * 1030 + ": 1}}\n"])
def test_the_line_reader_gives_up_on_anything_else(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.yaml"
    assert yaml_lines.read(load._FastLoader, text, path, "t.yaml", load._document) is None


def test_the_ascii_check_gives_up_where_the_whole_class_does() -> None:
    """ASCII text is checked with a small class (the whole one costs ~9 ms to compile): every ASCII
    character alone, between others and at either end, and random mixes with other characters (read by
    the whole class), are unsure exactly when the whole class finds a match."""
    import re

    wide = re.compile(yaml_lines._UNSURE_WIDE)
    texts = [t for cp in range(128) for t in (chr(cp), f"a{chr(cp)}b", f"{chr(cp)}\n", f"ab{chr(cp)}")]
    rng = random.Random(20261202)
    pool = [chr(cp) for cp in range(128)] + ["é", "\x85", "\xa0", "\u2028", "\u2029", "\ufeff", "\ufffe", "\ud800",
                                             "🎵", "\U0010ffff", "\ue000", "\uff00", "日"]
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(5000)]
    got = [(t, yaml_lines._unsure(t)) for t in texts]
    assert got == [(t, wide.search(t) is not None) for t in texts]
    assert sum(u for _, u in got) > 1000 and sum(not u for _, u in got) > 100  # both answers seen
