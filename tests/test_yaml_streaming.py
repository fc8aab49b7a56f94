"""YAML documents are composed a row at a time (seed/load.py ``_stream_document``): everything YAML
allows between rows still works the way it does in a document composed whole, with both parsers
(libyaml's events and PyYAML's own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedkit.errors import FixtureError
from seedkit.seed import load


def parse(tmp_path: Path, text: str, loader: type) -> list:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    return load._parse_yaml(loader, text, path, "users.yaml", {"TOKEN": "t0k"})


LOADERS = [pytest.param(load._FastLoader, id="libyaml"), pytest.param(load._Loader, id="pyyaml")]


@pytest.mark.parametrize("loader", LOADERS)
def test_anchors_aliases_and_merge_keys_across_rows(tmp_path: Path, loader: type) -> None:
    (fx,) = parse(tmp_path, """\
key: [email]
rows:
  - &base {email: a@x.io, role: admin, active: true}
  - <<: *base
    email: b@x.io
  - {email: c@x.io, role: &role member, token: !env TOKEN}
  - {email: d@x.io, role: *role}
""", loader)
    assert [r.values for r in fx.rows] == [
        {"email": "a@x.io", "role": "admin", "active": True},
        {"email": "b@x.io", "role": "admin", "active": True},
        {"email": "c@x.io", "role": "member", "token": "t0k"},
        {"email": "d@x.io", "role": "member"}]
    assert [r.location.line for r in fx.rows] == [3, 4, 6, 7]
    assert fx.rows[1].column_lines == {"<<": 4, "email": 5}
    assert fx.header.key == ["email"]


@pytest.mark.parametrize("loader", LOADERS)
def test_a_header_merge_key_a_bare_list_and_several_documents(tmp_path: Path, loader: type) -> None:
    fixtures = parse(tmp_path, """\
- {email: a@x.io}
- {email: b@x.io}
---
table: roles
<<: {table: users, key: [name]}
rows:
  - {name: admin}
---
---
!!map {table: teams, rows: [{slug: core}]}
""", loader)
    assert [(f.table, f.location.document, [r.values for r in f.rows]) for f in fixtures] == [
        ("users", 1, [{"email": "a@x.io"}, {"email": "b@x.io"}]),
        ("roles", 2, [{"name": "admin"}]),
        ("teams", 4, [{"slug": "core"}])]
    assert fixtures[1].header.key == ["name"]


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("text,line,message", [
    ("rows:\n  - {email: a}\nrows:\n  - {email: b}\n", 3, "key 'rows' appears twice"),
    ("key: [email]\nrows:\n  - {email: a, email: b}\n", 3, "key 'email' appears twice"),
    ("rows:\n  - {email: a}\n  - *nowhere\n", 3, "undefined alias"),
    ("rows:\n  - {email: a}\n  - [unclosed\n", 4, "malformed YAML"),
])
def test_errors_between_rows_are_located_as_before(tmp_path: Path, loader: type, text: str, line: int,
                                                   message: str) -> None:
    with pytest.raises(FixtureError) as caught:
        parse(tmp_path, text, loader)
    assert caught.value.location is not None and caught.value.location.line == line, str(caught.value)
    assert message in str(caught.value)


FLAT_ROW_SHAPES = [
    "- {a: 1, b: 1.5, c: true, d: null, e: ~, f: 2024-01-02, g: 2024-01-02 03:04:05, h: '007', i: \"x\"}",
    "- {a: 0x1F, b: 1_000, c: .inf, d: -.nan, e: yes, f: 'yes', g: '', h: 12e3, i: +1}",
    "- {a: !ref users/a@x.io, b: !ref {table: posts, slug: p1, author: !ref users/b@x.io}}",
    "- {a: !env TOKEN, b: [1, 2], c: {d: 1}, e: !!str 5, f: !!binary aGk=}",
    "- a: |\n    two\n    lines\n  b: >\n    folded\n  c: plain",
    "- &x {a: 1}\n- {b: *x}\n- {c: &y 3, d: *y}",
    "- {a: 1, <<: {b: 2, a: 9}, c: 3}",
    "- {a: 1, 2: two}",
    "- {a: 1, ? [k] : v}",
    "- {a: 1, a: 2}",
    "- {a: 1, <<: {a: 2}, a: 3}",
    "- {a: 1, b: !ref {table: t, x: 1, x: 2}}",
    "- {a: 2024-02-30}",
    "- {a: !foo 1}",
    "- {a: 1, b: *nowhere}",
    "- {a: 1, b: !ref nothing}",
    "- {=: 1}",
    "- {a: !ref {table: t, x: 1, column: id}, b: !ref {table: t, x: !ref {table: u, y: 2.5, z: !ref u/k}}}",
    "- {a: !ref {table: t, x: &v 1}, b: *v}",
    "- {a: !ref {table: t, x: [1]}}",
    "- {a: !ref {table: t, <<: {x: 1}}}",
    "- {a: !ref {table: t, 1: x, y: 2}}",
    "- {a: !ref {table: t, x: !!str 1, y: 2024-01-01}}",
    "- {a: !ref {x: 1}}",
    "- {a: !ref {table: t, x: null}}",
    "- {a: !ref {table: t, x: !ref {table: u, y: [2]}}}",
    "- {a: !ref {table: t, x: 1, x: 2}}",
    "- {a: !ref {table: '', x: 1}}",
]


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("shape", FLAT_ROW_SHAPES)
def test_rows_built_from_events_equal_rows_built_from_nodes(tmp_path: Path, loader: type, shape: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows of column: scalar are built straight from the parser's events (the composer and the
    constructor cost several times the parsing); every shape gives the values, lines and errors the
    node path gives."""
    text = "rows:\n" + "\n".join("  " + line for line in shape.splitlines()) + "\n"

    def outcome() -> object:
        try:
            (fx,) = parse(tmp_path, text, loader)
        except FixtureError as exc:
            return ("error", str(exc), exc.location)
        return [(r.values, r.location, r.column_lines) for r in fx.rows]

    fast = outcome()
    monkeypatch.setattr(load, "_FLAT_ROWS", False)
    assert outcome() == fast


HEADER_SHAPES = [
    {}, {"table": "users"}, {"key": "email"}, {"key": ["a", "b"]}, {"key": None}, {"on_conflict": "ignore"},
    {"create_only": "password"}, {"create_only": ["a"]}, {"prune": True}, {"table": None},
    {"table": "t", "key": ["k"], "on_conflict": "update", "create_only": [], "prune": False},
    # converted by the schema, or refused by it
    {"prune": "yes"}, {"prune": 1}, {"prune": "maybe"}, {"table": 5}, {"key": 5}, {"key": [1]},
    {"key": ("a",)}, {"on_conflict": "replace"}, {"on_conflict": None}, {"create_only": None},
    {"extra": 1}, {"table": b"users"},
]


@pytest.mark.parametrize("data", HEADER_SHAPES, ids=repr)
def test_a_header_is_read_as_the_schema_reads_it(data: dict) -> None:
    """Headers are checked without pydantic when they are plain; the schema (loaded only otherwise)
    decides the rest: the same values, the same errors."""
    import dataclasses

    from pydantic import ValidationError

    from seedkit.errors import Location
    from seedkit.seed.model import _header_model, parse_header

    loc = Location(file="f.yaml", line=1)
    try:
        want = _header_model().model_validate(dict(data)).model_dump()
    except ValidationError:
        with pytest.raises(FixtureError):
            parse_header(dict(data), loc)
        return
    assert dataclasses.asdict(parse_header(dict(data), loc)) == want
