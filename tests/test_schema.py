"""``seedkit schema`` (docs/schema.md): one JSON Schema per table from the live catalog, checked by the real
check-jsonschema command on valid and invalid fixture files, and ``seedkit run``'s pre-flight reporting the
same problems with file:line before anything is written. PostgreSQL for every column type; SQLite too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import seedkit
from seedkit import schema
from seedkit.errors import FixtureError
from seedkit.schema.checks import parse_check, sqlite_checks
from tests.support import Project, create_pg_database

PG_SCHEMA = """
CREATE TYPE mood AS ENUM ('happy', 'sad', 'ok');
CREATE TABLE owners (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE kinds (
    id bigserial PRIMARY KEY,
    code varchar(8) NOT NULL UNIQUE,
    small smallint, num integer NOT NULL, big bigint,
    ratio double precision, price numeric(6,2),
    flag boolean, note text, born date, seen timestamp, seen_tz timestamptz, at time,
    span interval, doc jsonb, uid uuid, raw bytea, mood mood, tags text[], scores int[],
    qty int CHECK (qty BETWEEN 1 AND 100), status text CHECK (status IN ('new', 'done')),
    short text CHECK (length(short) <= 3), owner_id int REFERENCES owners (id),
    total int GENERATED ALWAYS AS (num * 2) STORED
);
CREATE SCHEMA audit;
CREATE TABLE audit.events (id serial PRIMARY KEY, what text NOT NULL);
"""

OWNERS = """
key: name
rows:
  - {name: ada}
  - {name: bob}
"""

# valid files: every document shape `seedkit run` reads, every column type (tag-free: check-jsonschema's
# YAML reader refuses tags it does not know, see test_check_jsonschema_refuses_ref_tags_as_documented)
VALID = {
    "list.yaml": """
        - id: 1
          code: a1
          small: -32768
          num: 1
          big: 9223372036854775807
          ratio: 0.5
          price: 9999.99
          flag: true
          note: plain text
          born: 2024-02-29
          seen: 2024-05-01 09:30:00
          seen_tz: 2024-05-01T09:30:00+02:00
          at: "10:30:00"
          span: 1 day
          doc: {a: [1, 2, {b: null}]}
          uid: 0b9e6b5e-4a3b-4c5d-8e9f-1a2b3c4d5e6f
          raw: "\\\\x00ff"
          mood: happy
          tags: [a, b]
          scores: [1, 2, null]
          qty: 100
          status: new
          short: abc
        - {id: 2, code: a2, num: 2, price: "12.50", flag: no, note: 12345, mood: sad, tags: [], qty: 1, status: done}
        - {id: 3, code: a3, num: 3, small: null, note: null, doc: null, born: null}
    """,
    "mapping.yaml": """
        table: kinds
        key: code
        on_conflict: update
        create_only: [note]
        prune: false
        rows:
          - {code: m1, num: 10, mood: ok}
          - {code: m2, num: 11, span: 3600}
    """,
    "empty.yaml": "",
    "other-table.yaml": """
        table: owners
        key: [name]
        rows:
          - {name: carol}
    """,
    "as.json": '{"key": ["code"], "rows": [{"code": "j1", "num": 5, "ratio": 1e3, "doc": [1, "x"]}]}',
}

# invalid files: (file text, the column or key check-jsonschema names, what seedkit's message says, line)
INVALID = {
    "wrong-type": ("- {id: 1, code: b1, num: abc}\n", "num", "expected an integer, got text 'abc'", 1),
    "unknown-column": ("- id: 1\n  code: b2\n  num: 1\n  nmu: 2\n", "nmu", "unknown column 'nmu'", 4),
    "missing-required": ("- id: 1\n  code: b3\n  note: x\n", "num", "missing column 'num'", 1),
    "enum-typo": ("- {id: 1, code: b4, num: 1, mood: hapy}\n", "mood", "'hapy' is not one of 'happy', 'sad', 'ok'", 1),
    "too-long": ("- id: 1\n  code: abcdefghij\n  num: 1\n", "code", "is too long: 10 characters, at most 8", 2),
    "smallint-range": ("- {id: 1, code: b6, num: 1, small: 40000}\n", "small", "40000 is out of range", 1),
    "check-range": ("- {id: 1, code: b7, num: 1, qty: 0}\n", "qty", "0 is out of range", 1),
    "check-in-list": ("- {id: 1, code: b8, num: 1, status: nwe}\n", "status", "'nwe' is not one of 'new', 'done'", 1),
    "check-length": ("- {id: 1, code: b9, num: 1, short: abcd}\n", "short", "too long: 4 characters, at most 3", 1),
    "bad-date": ('- {code: c1, num: 1, born: "2024-13-01"}\n', "born", "'2024-13-01' is not a valid date", 1),
    "bad-uuid": ("- {id: 1, code: c2, num: 1, uid: not-a-uuid}\n", "uid", "'not-a-uuid' is not a valid UUID", 1),
    "not-a-list": ("- {id: 1, code: c3, num: 1, tags: notalist}\n", "tags", "expected array, got text", 1),
    "array-item": ("- {id: 1, code: c4, num: 1, scores: [1, x]}\n", "scores", "", 1),
    "numeric-precision": ("- {id: 1, code: c5, num: 1, price: 12345.67}\n", "price", "12345.67 is out of range", 1),
    "bool": ("- {id: 1, code: c6, num: 1, flag: maybe}\n", "flag", "'maybe' is not one of", 1),
    "generated": ("- {id: 1, code: c7, num: 1, total: 2}\n", "total", "unknown column 'total'", 1),
    "null-not-null": ("- {id: 1, code: c8, num: null}\n", "num", "'num' is null, and kinds.num is NOT NULL", 1),
    "header-key": ("keys: [code]\nrows:\n  - {id: 1, code: c9, num: 1}\n", "keys", "unknown key 'keys'", 1),
    "on-conflict": ("on_conflict: upsert\nrows: []\n", "on_conflict", "on_conflict", 1),
}


@pytest.fixture(scope="module")
def pg_project(tmp_path_factory: pytest.TempPathFactory, pg_server: str) -> Project:
    """One database with every column type, its schemas written to .seedkit/schema (the module's tests
    each start by clearing its seed folder and tables)."""
    url = create_pg_database(pg_server, "schema")
    root = tmp_path_factory.mktemp("schema-project")
    p = Project(root, url, envs={"dev": {"include": ["dev"]}})
    p.sql(PG_SCHEMA)
    schema.write(p.config())
    return p


def schemas(p: Project) -> Path:
    return p.root / ".seedkit" / "schema"


def check_jsonschema(schema_file: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema_file),
                           *map(str, files)], capture_output=True, text=True, timeout=120)


def seedkit_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seedkit", *args], cwd=root, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))


def test_one_schema_per_table_named_after_it(pg_project: Project) -> None:
    p, out = pg_project, schemas(pg_project)
    assert out == p.root / ".seedkit" / "schema"
    names = sorted(f.name for f in out.iterdir())
    assert names == ["audit.events.schema.json", "kinds.schema.json", "owners.schema.json"]
    kinds = json.loads((out / "kinds.schema.json").read_text())
    assert kinds["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    row = kinds["$defs"]["row"]
    assert row["additionalProperties"] is False
    assert row["required"] == ["code", "num"]  # NOT NULL without default; id has one
    props = row["properties"]
    assert "total" not in props  # generated
    first = {name: spec["anyOf"][0] for name, spec in props.items()}
    assert first["code"] == {"type": ["string", "number"], "maxLength": 8}  # `zip: 12345` is text too
    assert first["small"] == {"type": ["integer", "string"], "pattern": r"^\s*[-+]?[0-9][0-9_]*\s*$",
                              "minimum": -32768, "maximum": 32767}
    assert first["num"]["maximum"] == 2**31 - 1 and first["big"]["maximum"] == 2**63 - 1
    assert first["price"]["exclusiveMaximum"] == 10**4
    assert first["born"] == {"type": "string", "format": "date"}
    assert first["uid"] == {"type": "string", "format": "uuid"}
    assert first["mood"]["enum"] == ["happy", "sad", "ok"]
    assert first["tags"]["type"] == "array" and first["scores"]["items"]["anyOf"][0]["minimum"] == -(2**31)
    assert first["doc"] == {}
    assert (first["qty"]["minimum"], first["qty"]["maximum"]) == (1, 100)
    assert first["status"]["enum"] == ["new", "done"] and first["short"]["maxLength"] == 3
    # nullability: a nullable column also takes null, a NOT NULL one does not
    assert {"type": "null"} in props["small"]["anyOf"] and {"type": "null"} not in props["num"]["anyOf"]
    # every column also takes a !ref, as a validator sees the tag
    assert all({"$ref": "#/$defs/ref"} in spec["anyOf"] for spec in props.values())


def test_a_second_run_rewrites_nothing_and_a_dropped_table_is_removed(pg_project: Project) -> None:
    p = pg_project
    again = schema.write(p.config())
    assert again.written == [] and len(again.unchanged) == 3
    p.sql("CREATE TABLE scratch (id int PRIMARY KEY)")
    assert "scratch.schema.json" in schema.write(p.config()).written
    p.sql("DROP TABLE scratch")
    assert schema.write(p.config()).removed == ["scratch.schema.json"]


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_fixture_files_pass_check_jsonschema_and_seedkit_run(pg_project: Project, name: str,
                                                                  tmp_path: Path) -> None:
    import textwrap

    p, out = pg_project, schemas(pg_project)
    target = "owners" if name == "other-table.yaml" else "kinds"
    f = tmp_path / name
    f.write_text(textwrap.dedent(VALID[name]).lstrip("\n"))
    result = check_jsonschema(out / "kinds.schema.json", f)
    assert result.returncode == 0, result.stdout + result.stderr
    if target == "owners":
        assert check_jsonschema(out / "owners.schema.json", f).returncode == 0
    # the same file loads with seedkit run
    for old in (p.root / "seeds" / "dev").glob("*"):
        old.unlink()
    p.write("dev/owners.yaml", OWNERS)
    p.write(f"dev/kinds{f.suffix}", f.read_text())
    p.sql("TRUNCATE kinds, owners RESTART IDENTITY CASCADE")
    report = seedkit.run("dev", config=p.config())
    assert report.inserted >= (2 if name != "empty.yaml" else 2)


def test_every_document_of_a_multi_document_file_is_checked(pg_project: Project) -> None:
    """check-jsonschema reads one document per file; editors and seedkit check each document of a
    multi-document YAML file against the schema on its own."""
    p = pg_project
    for old in (p.root / "seeds" / "dev").glob("*"):
        old.unlink()
    p.write("dev/owners.yaml", OWNERS)
    p.write("dev/kinds.yaml", """
        - {id: 1, code: d1, num: 1}
        ---
        table: kinds
        key: code
        rows:
          - {code: d2, num: oops}
        ---
        - {id: 3, code: d3, num: 3, mood: meh}
    """)
    with pytest.raises(FixtureError) as info:
        seedkit.run("dev", config=p.config())
    text = str(info.value)
    assert "2 fixture rows do not fit" in text
    assert "kinds.yaml:6, document 2, row 1, column 'num'" in text
    assert "kinds.yaml:8, document 3, row 1, column 'mood'" in text


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_files_are_rejected_by_check_jsonschema_and_by_seedkit_run_with_file_and_line(
        pg_project: Project, case: str) -> None:
    p, out = pg_project, schemas(pg_project)
    text, column, message, line = INVALID[case]
    for old in (p.root / "seeds" / "dev").glob("*"):
        old.unlink()
    p.write("dev/owners.yaml", OWNERS)
    f = p.write("dev/kinds.yaml", text)
    result = check_jsonschema(out / "kinds.schema.json", f)
    assert result.returncode == 1, result.stdout + result.stderr
    assert column in result.stdout, result.stdout  # it names the same column (or key)
    p.sql("TRUNCATE kinds, owners RESTART IDENTITY CASCADE")
    cli = seedkit_cli(p.root, "run", "dev")
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "Traceback" not in cli.stderr
    assert f"kinds.yaml:{line}" in cli.stderr, cli.stderr
    assert message in cli.stderr, cli.stderr
    if case not in ("header-key", "on-conflict"):  # the header is read before the schema
        assert f"'{column}'" in cli.stderr
    assert p.rows("SELECT count(*) FROM owners") == [(0,)]  # nothing written, not even the valid file


def test_all_problems_of_all_files_at_once(pg_project: Project) -> None:
    p = pg_project
    for old in (p.root / "seeds" / "dev").glob("*"):
        old.unlink()
    p.write("dev/owners.yaml", "- {id: 1, name: ada, age: 3}\n")
    p.write("dev/kinds.yaml", "- {id: 1, code: e1, num: x}\n- {id: 2, code: e2}\n"
                              "- {id: 3, code: abcdefghij, num: 1, mood: no}\n")
    cli = seedkit_cli(p.root, "run", "dev")
    assert cli.returncode == 2
    err = cli.stderr
    assert "5 fixture rows do not fit their tables' schemas; nothing was written" in err
    for where in ("owners.yaml:1, document 1, row 1, column 'age'", "kinds.yaml:1, document 1, row 1, column 'num'",
                  "kinds.yaml:2, document 1, row 2", "kinds.yaml:3, document 1, row 3, column 'code'",
                  "kinds.yaml:3, document 1, row 3, column 'mood'"):
        assert where in err, err
    assert "did you mean" not in err or "hint" in err


def test_a_ref_is_accepted_in_any_column_and_still_resolved(pg_project: Project) -> None:
    p = pg_project
    for old in (p.root / "seeds" / "dev").glob("*"):
        old.unlink()
    p.write("dev/owners.yaml", OWNERS)
    p.write("dev/kinds.yaml", """
        - {id: 1, code: r1, num: 1, owner_id: !ref owners/ada}
        - {id: 2, code: r2, num: 2, owner_id: !ref {table: owners, name: bob}}
    """)
    p.sql("TRUNCATE kinds, owners RESTART IDENTITY CASCADE")
    seedkit.run("dev", config=p.config())
    assert p.rows("SELECT k.code, o.name FROM kinds k JOIN owners o ON o.id = k.owner_id ORDER BY 1") == [
        ("r1", "ada"), ("r2", "bob")]


def test_check_jsonschema_refuses_ref_tags_as_documented(pg_project: Project, tmp_path: Path) -> None:
    """docs/schema.md: check-jsonschema's YAML reader knows no custom tags, so a file with !ref fails to
    parse there (not a schema problem); editors are told about the tag (yaml.customTags)."""
    out = schemas(pg_project)
    f = tmp_path / "kinds.yaml"
    f.write_text("- {id: 1, code: t1, num: 1, owner_id: !ref owners/ada}\n")
    result = check_jsonschema(out / "kinds.schema.json", f)
    assert result.returncode != 0
    assert "!ref" in result.stdout + result.stderr


def test_ref_shapes_as_an_editor_sees_them_are_valid(pg_project: Project) -> None:
    from jsonschema import Draft202012Validator

    out = schemas(pg_project)
    s = json.loads((out / "kinds.schema.json").read_text())
    v = Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert v.is_valid([{"id": 1, "code": "x", "num": "owners/ada", "owner_id": {"table": "owners", "name": "bob"}}])
    assert not v.is_valid([{"id": 1, "code": "x", "num": "ada"}])  # not a ref: no table/
    assert not v.is_valid([{"id": 1, "code": "x", "num": 1, "owner_id": {"name": "bob"}}])  # a mapping ref needs table


def test_schema_command_and_its_out_option(pg_project: Project, tmp_path: Path) -> None:
    p = pg_project
    result = seedkit_cli(p.root, "schema", "--out", str(tmp_path / "s"))
    assert result.returncode == 0, result.stderr
    assert "3 table schemas" in result.stdout and "3 written" in result.stdout
    assert (tmp_path / "s" / "audit.events.schema.json").is_file()
    again = seedkit_cli(p.root, "schema", "--out", str(tmp_path / "s"))
    assert "0 written, 3 unchanged" in again.stdout


def test_sqlite_schema_and_preflight(tmp_path: Path) -> None:
    p = Project(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", envs={"dev": {"include": ["dev"]}})
    p.sql("", """CREATE TABLE t (id INTEGER PRIMARY KEY, code VARCHAR(3) NOT NULL UNIQUE,
                 qty INTEGER CHECK (qty >= 0 AND qty < 10), kind TEXT CHECK (kind IN ('a', 'b')), born DATE);""")
    out = schema.write(p.config()).out
    s = json.loads((out / "t.schema.json").read_text())
    code = s["$defs"]["row"]["properties"]["code"]["anyOf"][0]
    assert "maxLength" not in code  # SQLite stores longer text in a VARCHAR(3) column
    qty = s["$defs"]["row"]["properties"]["qty"]["anyOf"][0]
    assert (qty["minimum"], qty["exclusiveMaximum"]) == (0, 10)
    p.write("dev/t.yaml", "- {id: 1, code: abcdef, qty: 3, kind: a}\n- {id: 2, code: x, qty: 10, kind: c}\n")
    with pytest.raises(FixtureError) as info:
        seedkit.run("dev", config=p.config())
    text = str(info.value)
    assert "t.yaml:2, document 1, row 2, column 'qty': 10 is out of range: it must be less than 10" in text
    assert "t.yaml:2, document 1, row 2, column 'kind'" in text
    assert "row 1" not in text


def test_check_parsing_shapes() -> None:
    r = parse_check("CHECK (((qty >= 1) AND (qty <= '-5'::integer)))")["qty"]
    assert (r.minimum, r.maximum) == (1, -5)
    assert parse_check("CHECK (((status)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])"
                       "::text[])))")["status"].values == ("a", "b")
    assert parse_check("s = 'a' OR s = 'b'")["s"].values == ("a", "b")
    assert parse_check("a > b") == {} and parse_check("a > 1 OR b > 2") == {} and parse_check("(((") == {}
    r = parse_check("length(x) > 0 AND char_length(x) < 10")["x"]
    assert (r.min_length, r.max_length) == (1, 9)
    assert parse_check("z > (- 3)")["z"].exclusive_minimum
    assert sqlite_checks("CREATE TABLE t (a int CHECK (a > 0), \"check\" text, b text CHECK(b IN ('x)', 'y')), "
                         "-- CHECK (no)\n CONSTRAINT c CHECK (length(b) <= 3))") == [
        "a > 0", "b IN ('x)', 'y')", "length(b) <= 3"]


def test_vscode_settings_map_every_table_and_keep_the_rest(pg_project: Project) -> None:
    p = pg_project
    settings = p.root / ".vscode" / "settings.json"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(json.dumps({"editor.tabSize": 2, "yaml.schemas": {
        "./.seedkit/schema/gone.schema.json": ["seeds/**/gone.yaml"], "other.json": ["x.yaml"]}}))
    report = schema.write(p.config())
    data = json.loads(settings.read_text())
    assert data["editor.tabSize"] == 2 and data["yaml.schemas"]["other.json"] == ["x.yaml"]
    assert "./.seedkit/schema/gone.schema.json" not in data["yaml.schemas"]
    assert data["yaml.schemas"]["./.seedkit/schema/kinds.schema.json"] == ["seeds/**/kinds.yaml", "seeds/**/kinds.yml"]
    assert data["yaml.schemas"]["./.seedkit/schema/audit.events.schema.json"] == [
        "seeds/**/audit.events.yaml", "seeds/**/audit.events.yml"]
    assert {"fileMatch": ["seeds/**/owners.json"], "url": "./.seedkit/schema/owners.schema.json"} in data[
        "json.schemas"]
    assert "!ref scalar" in data["yaml.customTags"] and "!ref mapping" in data["yaml.customTags"]
    assert report.editor and "updated .vscode/settings.json" in report.editor
    assert schema.write(p.config()).editor is None  # unchanged: not rewritten
    settings.write_text('{\n  // a comment\n  "yaml.schemas": {}\n}\n')
    assert "not plain JSON" in (schema.write(p.config()).editor or "")
    assert "// a comment" in settings.read_text()
    settings.unlink()


def test_hostile_table_names_stay_inside_the_schema_folder(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    p = Project(tmp_path / "p", pg_url, envs={"dev": {"include": ["dev"]}})
    p.sql('CREATE TABLE "../../escape" (id int PRIMARY KEY); CREATE TABLE "a/b*{c}" (id int PRIMARY KEY);'
          'CREATE TABLE ".hidden" (id int PRIMARY KEY)')
    out = schema.write(p.config(), out=tmp_path / "p" / "s").out
    names = sorted(f.name for f in out.iterdir())
    assert names == ["%2E.%2F..%2Fescape.schema.json", "%2Ehidden.schema.json", "a%2Fb%2A%7Bc%7D.schema.json"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["p"]  # nothing written outside
    assert json.loads((out / names[0]).read_text())["title"] == "seedkit fixture for table ../../escape"


def test_a_typo_is_one_problem_not_an_unknown_and_a_missing_column(pg_project: Project) -> None:
    p = pg_project
    for old in (p.root / "seeds" / "dev").glob("*"):
        old.unlink()
    p.write("dev/owners.yaml", "key: name\nrows:\n  - {nmae: ada}\n")
    with pytest.raises(FixtureError) as info:
        seedkit.run("dev", config=p.config())
    assert str(info.value).endswith("owners.yaml:3, document 1, row 1, column 'nmae': unknown column 'nmae'")
    assert info.value.hint == "did you mean 'name'?"


# Values of every kind, fitting some columns of `kinds` and not others (types, lengths, ranges, formats,
# enums, CHECK lists, ref shapes): the verdict cache must decide as jsonschema does on the whole row.
_POOL = [0, 1, -1, 2, 3, 50, 100, 101, 40000, 2**40, True, False, None, 1.5, 0.25, 12.34, 12345.67,
         "", "a", "abc", "abcd", "abcdefgh", "abcdefghi", "12", "1.5", "x", "happy", "hapy", "sad", "new",
         "done", "nwe", "2024-01-01", "2024-13-01", "2024-05-01 09:30", "2024-05-01T09:30:00+02:00",
         "09:30", "1 day", "3f1c0c2e-9b1a-4a5e-8f7e-0d1c2b3a4f5e", "not-a-uuid", "\\x00ff", "owners/ada",
         [1, 2], [1, "x"], ["a", "b"], [], {"a": 1}, {"table": "owners", "name": "ada"}, {"table": "owners"},
         # !ref shapes, as the loader shows them, and near misses: the pre-flight decides these without jsonschema
         "owners/", "/ada", " owners/ada", "owners/\n", "own/ers/ada", "owners/ada\n", "a b/c d", "x/1",
         {"table": ""}, {"table": 5, "name": "ada"}, {"table": "owners", "column": "id", "name": "ada"},
         {"table": "owners", "column": 5, "name": "ada"}, {"table": "owners", "name": None},
         {"table": "owners", "name": [1]}, {"table": "owners", "n": 1.5, "b": True, "i": 2**40},
         {"table": "albums", "title": "War", "artist_id": "artists/U2"},
         {"table": "albums", "title": "War", "artist_id": {"table": "artists", "name": "U2"}},
         {"table": "owners", "at": {"x": None}}, {"column": "id", "name": "ada"}, {"table": "t", "column": None},
         # numbers at and around the bounds of every integer size, integral floats, not-a-number; times
         32767, 32768, -32768, -32769, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, 99, 1.0, 2.0,
         -0.0, 1e300, float("nan"), float("inf"), 99999999.99, 100000000, -100000000.5, "2024-05-01T09:30",
         "2024-05-01 09:30:00.1234567", "25:00", "9:30", " 12 ", "1e5", "-.5", "12a"]


@pytest.mark.parametrize("key", [[], ["code"]], ids=["no-key", "key-code"])
def test_the_verdict_cache_decides_as_jsonschema_does_on_the_whole_row(pg_project: Project, key: list[str]) -> None:
    import random

    from seedkit import db
    from seedkit.schema.checks import read_rules
    from seedkit.schema.validate import RowChecker, as_json

    with db.connect(pg_project.config().database_url("dev")) as d:
        catalog = d.catalog(refresh=True)
        rules = read_rules(d, catalog)
    table = catalog.find("kinds")
    checker = RowChecker(table, catalog, rules, key)
    names = [*table.columns, "nmae"]
    rng = random.Random(20261130)
    verdicts = []
    for _ in range(4000):  # one checker throughout, so later rows meet remembered verdicts
        if rng.random() < 0.3:  # anything: unknown and missing columns, values of every kind
            view = {c: rng.choice(_POOL) for c in rng.sample(names, rng.randint(1, len(names)))}
        else:  # the required columns, mostly fitting, and a few others: the values decide
            others = [c for c in table.columns if c not in ("code", "num", "total")]
            view = {"code": rng.choice(["abc", "abc", "abcdefghi", 1]), "num": rng.choice([1, 1, "12", None, 1.5]),
                    **{c: rng.choice(_POOL) for c in rng.sample(others, rng.randint(0, 3))}}
        plain = checker.validator.is_valid(view)
        assert checker._valid(view) == plain, view
        verdicts.append(plain)
        # the same row as the loader gives it (references, Decimals, dates), decided without its view
        raw = {c: _raw(rng, v) for c, v in view.items()}
        assert checker._valid_values(raw) == checker.validator.is_valid({c: as_json(v) for c, v in raw.items()}), raw
    assert 200 < sum(verdicts) < len(verdicts) - 200  # both verdicts are common: the comparison means something


def test_the_pre_flight_builds_a_validator_only_for_a_column_it_has_to_ask(pg_project: Project) -> None:
    """jsonschema validators are built on first need: a row of references and remembered kinds of values
    builds none, a column with no values builds none, a failed row builds the whole row's; and the
    verdicts are those of a validator built up front from the same schema."""
    import random

    from jsonschema import Draft202012Validator

    from seedkit import db
    from seedkit.schema.checks import read_rules
    from seedkit.schema.validate import RowChecker, as_json

    with db.connect(pg_project.config().database_url("dev")) as d:
        catalog = d.catalog(refresh=True)
        rules = read_rules(d, catalog)
    table = catalog.find("kinds")
    checker = RowChecker(table, catalog, rules, ["code"])
    assert checker._validator is None and checker._shape is None and checker.columns == {}
    eager = Draft202012Validator(checker.row_schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    from seedkit.seed.model import Ref

    assert checker._valid_values({"code": "abc", "num": 1, "owner_id": Ref("owners", (("name", "ada"),))})
    built = set(checker.columns)
    assert built <= {"code", "num"}  # the reference was decided without jsonschema
    assert checker._valid_values({"code": "xyz", "num": 7})  # same kinds of values: remembered verdicts
    assert set(checker.columns) == built and checker._validator is None
    rng = random.Random(20261201)
    for _ in range(3000):
        cols = ["code", "num", *rng.sample([c for c in table.columns if c not in ("code", "num", "total", "tags")], 2)]
        raw = {c: _raw(rng, rng.choice(_POOL)) for c in cols}
        view = {c: as_json(v) for c, v in raw.items()}
        assert checker._valid_values(raw) == eager.is_valid(view), raw
        assert bool(checker.problems(_row(raw))) == (not eager.is_valid(view)), raw
    assert checker._validator is not None  # a failed row was explained by the whole row's validator
    assert "tags" in checker.props and "tags" not in checker.columns  # no row gave it a value


def _row(values: dict[str, Any]) -> Any:
    from seedkit.errors import Location
    from seedkit.seed.model import Row

    return Row(values=values, location=Location(file="kinds.yaml", line=1, row=1))


def test_the_ref_shape_is_decided_as_jsonschema_decides_it() -> None:
    """The pre-flight decides "fits the !ref shape" without jsonschema (references differ from row to row,
    so no verdict is ever remembered for them): it must say exactly what jsonschema says of REF."""
    import random

    from jsonschema import Draft202012Validator

    from seedkit.schema.build import REF
    from seedkit.schema.validate import fits_ref

    ref = Draft202012Validator({"$defs": {"ref": REF}, "$ref": "#/$defs/ref"})
    rng = random.Random(17)
    values = list(_POOL)
    for _ in range(3000):  # mappings mixing what the ref shape takes and what it does not
        keys = rng.sample(["table", "column", "name", "id", "at"], rng.randint(0, 5))
        values.append({k: rng.choice(_POOL) for k in keys})
    fits = [fits_ref(v) for v in values]
    assert fits == [ref.is_valid(v) for v in values]
    assert 100 < sum(fits) < len(fits) - 100  # both verdicts are common


def _random_ref(rng: Any, depth: int = 0) -> Any:
    """A reference as any loader (or a Python fixture) may build one, fitting the ref shape or not."""
    import datetime as dt
    from decimal import Decimal

    from seedkit.seed.model import Ref

    table = rng.choice(["owners", "", " owners", "a/b", "x", 5])
    if rng.random() < 0.4:
        return Ref(table, ((None, rng.choice(["ada", "", "a\nb", "\n", "x/y", " z"])),))
    values = [None, [1], (1,), "ada", 3, 1.5, True, Decimal("0.99"), dt.date(2024, 1, 2), {"a": 1}, ""]
    if depth < 2:
        values.append(_random_ref(rng, depth + 1))
    keys = rng.sample(["name", "id", "table", "column", 7, None], rng.randint(1, 3))
    match = tuple((k, rng.choice(values)) for k in keys)
    return Ref(table, match, column=rng.choice([None, "", "id", 0, 5]))


def _raw(rng: Any, view_value: Any) -> Any:
    """A loaded value for a view value: sometimes a reference, a Decimal or a date instead."""
    import datetime as dt
    from decimal import Decimal

    r = rng.random()
    if r < 0.2:
        return _random_ref(rng)
    if r < 0.25:
        return rng.choice([Decimal("1.5"), Decimal("12.34"), Decimal("1E+3"), Decimal("NaN")])
    if r < 0.3:
        return rng.choice([dt.date(2024, 1, 1), dt.datetime(2024, 5, 1, 9, 30), dt.time(9, 30)])
    return view_value


def test_a_reference_is_decided_as_its_view_would_be() -> None:
    import random

    from seedkit.schema.validate import as_json, fits_ref, ref_fits

    rng = random.Random(1730)
    refs = [_random_ref(rng) for _ in range(4000)]
    fits = [ref_fits(r) for r in refs]
    assert fits == [fits_ref(as_json(r)) for r in refs]
    assert 300 < sum(fits) < len(fits) - 300  # both verdicts are common


def test_a_column_schema_decided_in_python_decides_as_jsonschema_does(pg_project: Project) -> None:
    """The pre-flight decides a column's schema in Python when it uses only type, pattern, lengths,
    bounds and the date and UUID formats (``native_decider``): for every column of ``kinds`` so decided,
    over every value of the pool and numbers, text, lengths, dates and UUIDs at and around every bound
    and form, the verdict is jsonschema's; columns with enums or lists are left to jsonschema."""
    from jsonschema import Draft202012Validator

    from seedkit import db
    from seedkit.schema.checks import read_rules
    from seedkit.schema.validate import RowChecker, native_decider

    with db.connect(pg_project.config().database_url("dev")) as d:
        catalog = d.catalog(refresh=True)
        rules = read_rules(d, catalog)
    checker = RowChecker(catalog.find("kinds"), catalog, rules, ["code"])
    extra: list[Any] = [2**15 - 1, 2**15, -(2**15), -(2**15) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 1, 100,
                        0.5, 100.5, 1e8, -1e8, 1e8 - 0.01, 99999999.999, 9999.995, 9999.99, 10000, -9999.99,
                        "abcdefgh", "abcdefghi", "abc", "abcd", "\u00e9" * 8, "\u00e9" * 9, "1_000", " +7 ", "0x10",
                        "12.5e3", "2024-01-01 09:30:00+02", "2024-01-01T09:30:00Z", "2024-01-01 09:30:00 +0200",
                        "10:00:00.5", "٣", "１２", float("-inf"), -0.0, 3.0, 2.0**53, True, False, None,
                        "2024-02-29", "2023-02-29", "2024-1-01", "2024-01-01 ", "٢٠٢٤-٠١-٠١", "2024-00-10",
                        "0000-01-01", "20240101", "2024-W01-1", "3F1C0C2E-9B1A-4A5E-8F7E-0D1C2B3A4F5E",
                        "{3f1c0c2e-9b1a-4a5e-8f7e-0d1c2b3a4f5e}", "urn:uuid:3f1c0c2e-9b1a-4a5e-8f7e-0d1c2b3a4f5e",
                        "3f1c0c2e9b1a4a5e8f7e0d1c2b3a4f5e", "3f1c0c2e-9b1a-4a5e-8f7e-0d1c2b3a4f5",
                        "3f1c0c2e-9b1a4a5e-8f7e-0d1c2b3a4f5e-"]
    decided = set()
    for name, spec in checker.props.items():
        native = native_decider(spec)
        if native is None:
            continue
        decided.add(name)
        plain = Draft202012Validator({"$defs": {"ref": checker.defs["ref"]}, **spec},
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
        for value in [*_POOL, *extra]:
            assert native(value) == plain.is_valid(value), (name, value)
    assert {"code", "small", "num", "big", "ratio", "price", "note", "seen", "qty", "short", "born", "uid"} <= decided
    assert not decided & {"mood", "tags", "status", "flag"}  # enums, lists


def test_a_run_whose_rows_fit_does_not_import_jsonschema(pg_project: Project) -> None:
    """Rows that fit columns of types, patterns, lengths and bounds are decided without jsonschema (its
    import is a good part of a short run); a row that does not fit is explained by it, as before."""
    pg_project.write("dev/owners.yaml", OWNERS)
    pg_project.write("dev/kinds.yaml", "key: [code]\nrows:\n"
                     "  - {code: a1, num: 1, small: 2, big: 3, ratio: 1.5, price: 12.34, note: x, qty: 5,\n"
                     "     seen: 2024-05-01 09:30, short: abc, owner_id: !ref owners/ada}\n")
    probe = ("import sys, seedkit; seedkit.run('dev', config=sys.argv[1]); "
             "print('jsonschema' in sys.modules)")
    ran = subprocess.run([sys.executable, "-c", probe, str(pg_project.config_path)], capture_output=True,
                         text=True, cwd=pg_project.root)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "False"
    pg_project.write("dev/kinds.yaml", "key: [code]\nrows:\n  - {code: abcdefghi, num: 1}\n")
    with pytest.raises(FixtureError) as info:
        seedkit.run("dev", config=pg_project.config())
    assert "kinds.yaml:3" in str(info.value) and "too long: 9 characters, at most 8" in str(info.value)
