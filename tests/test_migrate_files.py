"""Migration files without a database: layouts, sections, directives, versions, checksums."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seedkit.errors import Location, MigrationFileError
from seedkit.migrate.files import (
    Section,
    checksum,
    discover,
    display_path,
    load_paths,
    normalise,
    parse_single,
    write_new,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def test_single_file_sections_and_line_offsets(tmp_path: Path) -> None:
    write(tmp_path / "20240101120000_create_users.sql",
          "-- a comment before the up section is fine\n"
          "-- migrate:up\n"
          "CREATE TABLE users (id int);\n"
          "\n"
          "-- migrate:down\n"
          "DROP TABLE users;\n")
    [m] = discover(tmp_path)
    assert (m.version, m.number, m.name, m.layout) == (
        "20240101120000", 20240101120000, "create_users", "file")
    assert m.up_sql == "CREATE TABLE users (id int);\n\n"
    assert m.up_line_offset == 3  # the line after '-- migrate:up'
    assert m.down_sql == "DROP TABLE users;\n"
    assert m.down is not None and m.down.line_offset == 6
    assert m.transactional and m.down.transactional
    assert m.paths == (tmp_path / "20240101120000_create_users.sql",)


def test_single_file_transaction_false_per_section(tmp_path: Path) -> None:
    write(tmp_path / "2_idx.sql", "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
                                  "-- migrate:down   transaction:false\nDROP INDEX CONCURRENTLY i;\n")
    [m] = discover(tmp_path)
    assert not m.transactional
    assert m.down is not None and not m.down.transactional


def test_pair_and_folder_layouts_with_directive(tmp_path: Path) -> None:
    write(tmp_path / "002_add_index.up.sql",
          "-- seedkit: transaction=false\nCREATE INDEX CONCURRENTLY i ON t (a);\n")
    write(tmp_path / "002_add_index.down.sql", "DROP INDEX i;\n")
    write(tmp_path / "2019-02-26-002946_create_posts" / "up.sql", "CREATE TABLE posts (id int);\n")
    write(tmp_path / "2019-02-26-002946_create_posts" / "down.sql", "DROP TABLE posts;\n")
    write(tmp_path / "README.md", "not a migration\n")
    write(tmp_path / ".hidden.sql", "ignored\n")
    pair, folder = discover(tmp_path)
    assert (pair.version, pair.layout, pair.transactional) == ("002", "pair", False)
    assert pair.up_line_offset == 1 and pair.down_sql == "DROP INDEX i;\n"
    assert pair.paths == (tmp_path / "002_add_index.up.sql", tmp_path / "002_add_index.down.sql")
    assert (folder.version, folder.number, folder.name, folder.layout) == (
        "20190226002946", 20190226002946, "create_posts", "folder")
    assert folder.transactional
    assert folder.entry == tmp_path / "2019-02-26-002946_create_posts"


def test_versions_are_ordered_numerically_across_layouts(tmp_path: Path) -> None:
    write(tmp_path / "10_ten.sql", "-- migrate:up\nSELECT 10;\n")
    write(tmp_path / "9_nine.up.sql", "SELECT 9;\n")
    write(tmp_path / "100_hundred" / "up.sql", "SELECT 100;\n")
    assert [m.number for m in discover(tmp_path)] == [9, 10, 100]


@pytest.mark.parametrize("names", [
    ("001_a.sql", "1_b.up.sql"),
    ("5_a.sql", "0005_b/up.sql"),
    ("2019-01-01_a.sql", "20190101_b.sql"),
])
def test_duplicate_versions_are_rejected(tmp_path: Path, names: tuple[str, str]) -> None:
    for name in names:
        write(tmp_path / name, "-- migrate:up\nSELECT 1;\n")
    with pytest.raises(MigrationFileError, match="is used twice"):
        discover(tmp_path)


@pytest.mark.parametrize(("name", "text", "message", "line"), [
    ("1_a.sql", "CREATE TABLE t (a int);\n", "no '-- migrate:up' section", None),
    ("1_a.sql", "-- migrate:down\nDROP TABLE t;\n-- migrate:up\nCREATE TABLE t (a int);\n",
     "comes before", 1),
    ("1_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n", "second '-- migrate:up'", 3),
    ("1_a.sql", "SELECT 0;\n-- migrate:up\nSELECT 1;\n", "before the '-- migrate:up' line", 1),
    ("1_a.sql", "-- migrate:up transaction:maybe\nSELECT 1;\n", "unknown migration option", 1),
    ("1_a.up.sql", "-- seedkit: transactions=false\nSELECT 1;\n", "unknown seedkit directive", 1),
    ("1_a.up.sql", "-- seedkit: transaction=no\nSELECT 1;\n", "unknown seedkit directive", 1),
    ("1_a.up.sql", "-- seedkit: notransaction\nSELECT 1;\n", "unknown seedkit directive", 1),
    ("create_users.sql", "-- migrate:up\nSELECT 1;\n", "does not start with a version", None),
])
def test_malformed_files_are_located(tmp_path: Path, name: str, text: str, message: str,
                                     line: int | None) -> None:
    write(tmp_path / name, text)
    with pytest.raises(MigrationFileError, match=re.escape(message)) as info:
        discover(tmp_path)
    assert info.value.location is not None
    assert info.value.location.file is not None and info.value.location.file.endswith(name)
    assert info.value.location.line == line
    assert info.value.exit_code == 2


def test_orphan_down_file_and_folder_without_up(tmp_path: Path) -> None:
    write(tmp_path / "3_x.down.sql", "DROP TABLE x;\n")
    with pytest.raises(MigrationFileError, match="without its .up.sql"):
        discover(tmp_path)
    (tmp_path / "3_x.down.sql").unlink()
    write(tmp_path / "4_y" / "down.sql", "DROP TABLE y;\n")
    with pytest.raises(MigrationFileError, match="without an up.sql"):
        discover(tmp_path)


def test_checksum_is_sha256_with_normalised_line_endings(tmp_path: Path) -> None:
    text = "-- migrate:up\nCREATE TABLE t (a int);\n-- migrate:down\nDROP TABLE t;\n"
    write(tmp_path / "lf" / "1_a.sql", text)
    write(tmp_path / "crlf" / "1_a.sql", text.replace("\n", "\r\n"))
    write(tmp_path / "bom" / "1_a.sql", "\ufeff" + text)
    sums = {discover(tmp_path / d)[0].checksum for d in ("lf", "crlf", "bom")}
    assert sums == {hashlib.sha256(text.encode()).hexdigest()}
    # CRLF files still give the right line numbers
    crlf = discover(tmp_path / "crlf")[0]
    assert crlf.up_line_offset == 2 and "\r" not in crlf.up_sql
    write(tmp_path / "edited" / "1_a.sql", text.replace("int", "bigint"))
    assert discover(tmp_path / "edited")[0].checksum not in sums


def test_pair_checksum_covers_the_down_file(tmp_path: Path) -> None:
    write(tmp_path / "1_a.up.sql", "CREATE TABLE t (a int);\n")
    before = discover(tmp_path)[0].checksum
    assert before == checksum("CREATE TABLE t (a int);\n")
    write(tmp_path / "1_a.down.sql", "DROP TABLE t;\n")
    after = discover(tmp_path)[0].checksum
    assert after != before and after == checksum("CREATE TABLE t (a int);\n", "DROP TABLE t;\n")


def test_missing_folder_has_no_migrations_and_a_file_is_an_error(tmp_path: Path) -> None:
    assert discover(tmp_path / "nope") == []
    write(tmp_path / "file", "x")
    with pytest.raises(MigrationFileError, match="not a folder"):
        discover(tmp_path / "file")


def test_write_new_uses_utc_timestamp_and_both_sections(tmp_path: Path) -> None:
    now = datetime(2024, 3, 9, 8, 7, 6, tzinfo=timezone.utc)
    path = write_new(tmp_path / "migrations", "add posts", now=now)
    assert path.name == "20240309080706_add_posts.sql"
    [m] = discover(tmp_path / "migrations")
    assert m.down is not None and m.up_sql.strip() == "" and m.transactional
    with pytest.raises(MigrationFileError, match="already exists"):
        write_new(tmp_path / "migrations", "other", now=now)
    with pytest.raises(MigrationFileError, match="bad migration name"):
        write_new(tmp_path / "migrations", "drop;table", now=now)


def test_load_paths_accepts_files_folders_and_directories(tmp_path: Path) -> None:
    write(tmp_path / "m" / "1_a.sql", "-- migrate:up\nSELECT 1;\n")
    write(tmp_path / "m" / "2_b.up.sql", "SELECT 2;\n")
    write(tmp_path / "m" / "2_b.down.sql", "SELECT 2;\n")
    write(tmp_path / "m" / "3_c" / "up.sql", "SELECT 3;\n")
    assert [m.number for m in load_paths([tmp_path / "m"])] == [1, 2, 3]
    picked = load_paths([tmp_path / "m" / "3_c" / "up.sql", tmp_path / "m" / "2_b.down.sql"])
    assert [(m.number, m.layout) for m in picked] == [(2, "pair"), (3, "folder")]
    with pytest.raises(MigrationFileError, match="no such file"):
        load_paths([tmp_path / "missing.sql"])


def test_first_line_comments_of_other_tools_are_not_runner_directives(tmp_path: Path) -> None:
    write(tmp_path / "1_a.up.sql", "-- seedkit:nolint drop-table replaced by accounts\nDROP TABLE legacy;\n")
    write(tmp_path / "2_b" / "up.sql", "-- seedkit: dialect=sqlite, transaction=false\nVACUUM;\n")
    write(tmp_path / "3_c.up.sql", "-- seedkit: dialect=postgresql\nSELECT 1;\n")
    a, b, c = discover(tmp_path)
    assert (a.transactional, b.transactional, c.transactional) == (True, False, True)


def test_display_path_follows_links_as_resolve_does(tmp_path, monkeypatch) -> None:
    """Display paths remember resolved folders (a run shows hundreds of paths in a few folders) yet
    read as ``Path.resolve()`` made them: through a linked folder, a linked file, ``..``, and outside
    the working directory."""
    real = tmp_path / "real" / "migrations"
    real.mkdir(parents=True)
    (real / "1_a.sql").write_text("-- migrate:up\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "target.sql").write_text("-- migrate:up\n", encoding="utf-8")
    (real / "2_linked.sql").symlink_to(elsewhere / "target.sql")
    work = tmp_path / "work"
    work.mkdir()
    (work / "m").symlink_to(real, target_is_directory=True)
    monkeypatch.chdir(work)

    def expected(path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)

    paths = [Path("m/1_a.sql"), Path("m/2_linked.sql"), work / "m" / "1_a.sql", Path("m/../m/1_a.sql"),
             Path("m"), Path("."), elsewhere / "target.sql", Path(os.path.relpath(real / "1_a.sql"))]
    for path in paths:
        assert display_path(path) == expected(path), path
    # the folder stays remembered while the link inside it changes: the file itself is looked at again
    (real / "2_linked.sql").unlink()
    (real / "2_linked.sql").symlink_to(work)
    assert display_path(Path("m/2_linked.sql")) == expected(Path("m/2_linked.sql")) == "."


# -- a dbmate file's markers: only lines naming "migrate:" are looked at, with the same result -------

def _parse_single_line_by_line(path: Path, text: str) -> tuple[Section, Section | None]:
    """``parse_single`` as it was written first: every line looked at. The reference of the test below."""
    from seedkit.migrate.files import _MARKER, _first_sql_line, _has_sql, _options

    text = normalise(text)
    lines = text.split("\n")
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    markers: list[tuple[str, int, bool]] = []
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("--"):
            continue
        m = _MARKER.match(line.strip())
        if m:
            which = m["which"].lower()
            if any(w == which for w, _, _ in markers):
                raise MigrationFileError(f"a second '-- migrate:{which}' section",
                                         location=Location(file=display_path(path), line=i + 1))
            markers.append((which, i, _options(m["options"], path, i + 1)))
    if not markers or markers[0][0] != "up":
        raise MigrationFileError("no '-- migrate:up' section" if not markers else
                                 "'-- migrate:down' comes before '-- migrate:up'",
                                 location=Location(file=display_path(path),
                                                   line=markers[0][1] + 1 if markers else None))
    if _has_sql(text[:starts[markers[0][1]]]):
        raise MigrationFileError("SQL before the '-- migrate:up' line would never run",
                                 location=Location(file=display_path(path), line=_first_sql_line(lines, markers[0][1])))

    def section(k: int) -> Section:
        _, idx, transactional = markers[k]
        begin = starts[idx + 1] if idx + 1 < len(lines) else len(text)
        end = starts[markers[k + 1][1]] if k + 1 < len(markers) else len(text)
        return Section(sql=text[begin:end], path=path, line_offset=idx + 2, transactional=transactional)

    return section(0), section(1) if len(markers) > 1 else None


_LINES = ["-- migrate:up", "-- migrate:down", "--migrate:UP", "  -- MIGRATE:down transaction:false",
          "-- migrate:up transaction:false", "\u00a0-- migrate:down", "\x0c-- migrate:up", "-- migrate:upper",
          "x -- migrate:up", "/* -- migrate:up */", "-- migrate:down transaction:maybe", "--\tmigrate:down ",
          "-- m\u0131grate:up", "-- MİGRATE:up", "SELECT 'migrate:up';", "CREATE TABLE a (x int);", "", "  ",
          "-- a comment", "-- migrate:", "--migrate:down\r", "\u2028-- migrate:up", "-- migrate:up -- migrate:down",
          "SELECT 1; -- migrate:up migrate:down"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_LINES), max_size=9), st.sampled_from(["", "\n", "\r\n"]))
def test_markers_are_found_as_a_line_by_line_reading_finds_them(lines: list[str], end: str) -> None:
    path = Path("1_x.sql")
    text = "\n".join(lines) + end

    def outcome(parse: Any) -> Any:
        try:
            up, down = parse(path, text)
        except MigrationFileError as exc:
            return "error", exc.message, exc.location
        return up, down

    assert outcome(parse_single) == outcome(_parse_single_line_by_line)
