"""Migration files: the three layouts, their sections and directives, versions and checksums.

Accepted entries in the migrations folder (detected per entry, so layouts can be mixed):

- ``VERSION_name.sql``: one file with ``-- migrate:up`` and optional ``-- migrate:down`` sections
  (dbmate's format); ``-- migrate:up transaction:false`` runs that section outside a transaction;
- ``VERSION_name.up.sql`` + ``VERSION_name.down.sql``: a pair;
- ``VERSION_name/up.sql`` + ``down.sql``: a folder (Diesel's layout; dashes in VERSION are ignored).

In the pair and folder layouts a first-line comment ``-- seedkit: transaction=false`` turns the
transaction off for that file, and so does morph's ``-- morph:nontransactional`` (the runner that
golang-migrate style pairs such as mattermost's were written for; like morph, only at the very start).
Versions compare numerically; two entries with the same version are an error. Anything that is not
``*.sql`` or a folder starting with a digit is ignored (README, .gitkeep).

The checksum is the sha256 of the migration's text with line endings normalised to ``\\n`` (and a
UTF-8 byte-order mark dropped), so a checkout on Windows does not look like an edited migration. For
a pair or folder it covers the up file, then the down file when there is one. Adding the down file
of an applied pair or folder that had none is not a change (``Migration.checksum_before_down``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from .._record import dataclass
from ..errors import Location, MigrationFileError

UP_MARKER = "-- migrate:up"
DOWN_MARKER = "-- migrate:down"

# VERSION is digits, optionally in dash-separated groups (Diesel: 2019-02-26-002946); the name follows
# an underscore, or a dash (dbmate reads the leading digits alone: 00000000000000-initial-schema.sql).
_VERSION = r"(?P<version>\d+(?:-\d+)*)-?"
_SINGLE = re.compile(rf"^{_VERSION}(?:[_-](?P<name>.*?))?\.sql$", re.IGNORECASE)
_PAIR = re.compile(rf"^{_VERSION}(?:[_-](?P<name>.*?))?\.(?P<dir>up|down)\.sql$", re.IGNORECASE)
_FOLDER = re.compile(rf"^{_VERSION}(?:[_-](?P<name>.*))?$")
# A section marker: "-- migrate:up" or "-- migrate:down", then options such as "transaction:false".
_MARKER = re.compile(r"^--\s*migrate:(?P<which>up|down)\b(?P<options>.*)$", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^--\s*seedkit:\s*(?P<body>.*)$", re.IGNORECASE)
# morph (mattermost's runner) runs a file without a transaction when its text starts with this
_MORPH_NONTRANSACTIONAL = "-- morph:nontransactional"
_NAME_OK = re.compile(r"^[A-Za-z0-9_]+$")
# what a line that may hold a marker holds (the lines _MARKER can match all hold it, matched alike)
_CANDIDATE = re.compile(r"migrate:", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    """One direction of a migration: its SQL and where that SQL starts in its file."""

    sql: str
    path: Path
    line_offset: int  # 1-based line of ``path`` on which ``sql`` starts (column 1)
    transactional: bool = True


@dataclass(frozen=True)
class Migration:
    """One migration, whatever its layout.

    ``version`` is the text stored in the history table (the digits of the file's version, dashes
    removed); ``number`` is the same as an integer, used for ordering.
    """

    version: str
    number: int
    name: str
    layout: str  # "file" | "pair" | "folder"
    path: Path  # the file holding the up section (the single file, the .up.sql, or folder/up.sql)
    up: Section
    down: Section | None
    checksum: str
    down_path: Path | None = None  # the file holding the down section (same as path for "file")
    meta: str | None = None  # a folder's metadata.toml, as read (part of the checksum)

    @property
    def up_sql(self) -> str:
        return self.up.sql

    @property
    def down_sql(self) -> str | None:
        return self.down.sql if self.down else None

    @property
    def up_line_offset(self) -> int:
        return self.up.line_offset

    @property
    def transactional(self) -> bool:
        """Whether the up section runs inside a transaction."""
        return self.up.transactional

    def checksum_before_down(self) -> str | None:
        """For a pair or folder that has a down file, the checksum the entry had without it; else None.

        Adding the down file an applied migration lacked (the only way to roll back an up-only
        history) is not an edit of what was applied: validation accepts this checksum too. Only
        called when the recorded checksum differs, so the up path does no extra work.
        """
        if self.down is None or self.layout == "file":
            return None
        return _entry_checksum(self.up.sql, None, self.meta)

    @property
    def paths(self) -> tuple[Path, ...]:
        if self.down_path is None or self.down_path == self.path:
            return (self.path,)
        return (self.path, self.down_path)

    @property
    def entry(self) -> Path:
        """The entry in the migrations folder: the file, the up file of a pair, or the folder."""
        return self.path.parent if self.layout == "folder" else self.path

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}" if self.name else self.version

    @property
    def order(self) -> tuple[int, int]:
        """Where the migration sorts (``version_order``); ``number`` is its identity."""
        return version_order(self.version)


def normalise(text: str) -> str:
    """Line endings to ``\\n`` and no byte-order mark: what checksums and line numbers are computed on."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def checksum(*texts: str) -> str:
    digest = hashlib.sha256()
    for i, text in enumerate(texts):
        if i:
            digest.update(b"\0")
        digest.update(normalise(text).encode("utf-8"))
    return digest.hexdigest()


TEMPLATE_HINT = ("'{{ … }}' is a template placeholder (a Go template, filled in by the runner these files were "
                 "written for, such as gobuffalo/pop); seedkit runs the SQL as written, with no templating: "
                 "render the files into plain SQL first (e.g. with sed, into a copy) and migrate those")


def template_hint(sql: str, message: str) -> str | None:
    """The hint for a syntax error at a ``{{ … }}`` template placeholder, else None (error paths only)."""
    return TEMPLATE_HINT if 'at or near "{"' in message and "{{" in sql else None


def _entry_checksum(up: str, down: str | None, meta: str | None) -> str:
    """A pair's or folder's checksum: its up file, then its down file and a folder's metadata.toml when
    there are."""
    return checksum(up, *([down] if down is not None else []), *([meta] if meta is not None else []))


def display_path(path: Path) -> str:
    """A path as people want to read it: relative to the working directory when inside it."""
    full = os.path.abspath(path)
    name = os.path.basename(full)
    if name and name not in (".", "..") and not os.path.islink(full):
        # the file itself is looked at every time (as in _resolved); the rest is remembered per run
        return _display_in(os.path.dirname(full), name, os.getcwd()) or str(path)
    try:
        return str(_resolved(Path(path)).relative_to(_resolved(Path.cwd())))
    except ValueError:  # outside the working directory
        return str(path)


@functools.lru_cache(maxsize=4096)
def _display_in(folder: str, name: str, cwd: str) -> str | None:
    """``display_path`` of ``name`` (not a link) in ``folder``, or None outside ``cwd``: a run shows each
    migration's path a few times (its progress line, its statements, its report)."""
    try:
        return str((_resolved_folder(folder) / name).relative_to(_resolved(Path(cwd))))
    except ValueError:
        return None


def _resolved(path: Path) -> Path:
    """``path.resolve()``, resolving each folder once: a run shows hundreds of paths in a few folders.

    Only the last part is looked at on each call (is it a link?); the folders are remembered per run
    of the working directory, since a link among them would be followed the same way every time."""
    path = Path(os.path.abspath(path))
    name = path.name
    if not name or name in (".", "..") or os.path.islink(path):
        return path.resolve()
    return _resolved_folder(str(path.parent)) / name


@functools.lru_cache(maxsize=256)
def _resolved_folder(folder: str) -> Path:
    return Path(folder).resolve()


def parse_version(text: str) -> tuple[str, int]:
    digits = text.replace("-", "")
    return digits, int(digits)


def version_order(version: str | int) -> tuple[int, int]:
    """The sort key of a version: plain numbers compare as numbers; timestamps (14 digits or more,
    YYYYMMDDHHMMSS and finer) compare as moments in time, whatever their precision.

    Diesel names newer migrations ``2025-11-19-091444-0000`` (18 digits) and older ones
    ``2025-01-20-162913`` (14): as plain numbers every 18-digit version would sort after every
    14-digit one, and a history mixing both would run out of date order. Timestamps are therefore
    compared with their digits padded on the right, and all come after plain sequence numbers
    (``00_init``, ``000001``)."""
    digits = str(version).replace("-", "")
    if len(digits) >= 14:
        return 1, int(digits.ljust(32, "0")[:32])
    return 0, int(digits)


def _read(path: Path) -> str:
    try:
        return normalise(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise MigrationFileError(f"not UTF-8 text: {exc.reason} at byte {exc.start}",
                                 location=Location(file=display_path(path))) from None
    except OSError as exc:
        raise MigrationFileError(f"cannot read the file: {exc.strerror}",
                                 location=Location(file=display_path(path))) from None


def _options(text: str, path: Path, line: int) -> bool:
    """Parse marker options (``transaction:false``); return whether the section is transactional."""
    transactional = True
    for option in text.split():
        key, _, value = option.partition(":")
        if key.lower() == "transaction" and value.lower() in ("true", "false"):
            transactional = value.lower() == "true"
        else:
            raise MigrationFileError(f"unknown migration option {option!r}",
                                     location=Location(file=display_path(path), line=line),
                                     hint="the only option is transaction:false")
    return transactional


def parse_single(path: Path, text: str | None = None) -> tuple[Section, Section | None]:
    """Split a dbmate-style file into its up and down sections."""
    text = _read(path) if text is None else normalise(text)
    lines = text.split("\n")
    starts: dict[int, int] = {}  # character offset of a line (of the few asked for)
    markers: list[tuple[str, int, bool]] = []  # (which, line index, transactional)
    # only a line naming "migrate:" can be a marker: look at those alone (the same match, fewer lines)
    for found in _CANDIDATE.finditer(text):
        start = text.rfind("\n", 0, found.start()) + 1
        i = text.count("\n", 0, start)
        if i in starts:
            continue  # (named twice on one line)
        starts[i] = start
        line = lines[i]
        if not line.lstrip().startswith("--"):
            continue  # (a marker is a comment line)
        m = _MARKER.match(line.strip())
        if m:
            which = m["which"].lower()
            if any(w == which for w, _, _ in markers):
                raise MigrationFileError(f"a second '-- migrate:{which}' section",
                                         location=Location(file=display_path(path), line=i + 1),
                                         hint="a migration has one up and at most one down section")
            markers.append((which, i, _options(m["options"], path, i + 1)))
    if not markers or markers[0][0] != "up":
        line = markers[0][1] + 1 if markers else None
        raise MigrationFileError("no '-- migrate:up' section" if not markers else
                                 "'-- migrate:down' comes before '-- migrate:up'",
                                 location=Location(file=display_path(path), line=line),
                                 hint="start the file with a '-- migrate:up' line; put the rollback "
                                      "after a '-- migrate:down' line")
    first_marker = markers[0][1]
    if _has_sql(text[:starts[first_marker]]):  # (every marker's line has its offset)
        raise MigrationFileError("SQL before the '-- migrate:up' line would never run",
                                 location=Location(file=display_path(path), line=_first_sql_line(lines, first_marker)),
                                 hint="move it below '-- migrate:up'")

    def section(k: int) -> Section:
        _, idx, transactional = markers[k]
        begin = starts[idx] + len(lines[idx]) + 1 if idx + 1 < len(lines) else len(text)
        end = starts[markers[k + 1][1]] if k + 1 < len(markers) else len(text)
        return Section(sql=text[begin:end], path=path, line_offset=idx + 2, transactional=transactional)

    up = section(0)
    down = section(1) if len(markers) > 1 else None
    return up, down


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.split("\n"))


def _first_sql_line(lines: list[str], stop: int) -> int:
    for i, line in enumerate(lines[:stop]):
        if line.strip() and not line.strip().startswith("--"):
            return i + 1
    return 1  # pragma: no cover


def _directive_section(path: Path, text: str) -> Section:
    """A whole file as a section; a first-line ``-- seedkit: transaction=false`` (or morph's
    ``-- morph:nontransactional``) turns the transaction off."""
    first = text.split("\n", 1)[0].strip()
    if first.startswith(_MORPH_NONTRANSACTIONAL):
        return Section(sql=text, path=path, line_offset=1, transactional=False)
    transactional = True
    m = _DIRECTIVE.match(first)
    body = m["body"].strip() if m else ""
    # "-- seedkit:nolint RULE reason" belongs to the linter; other KEY=VALUE settings (dialect=…) to
    # other tools. Only transaction=… is the runner's, and a near miss of it is an error, not a no-op.
    if body and not body.lower().startswith("nolint"):
        for option in body.replace(",", " ").split():
            key, eq, value = option.partition("=")
            if key.lower() == "transaction" and value.lower() in ("true", "false"):
                transactional = value.lower() == "true"
            elif key.lower().startswith("transact") or not eq:
                raise MigrationFileError(f"unknown seedkit directive {option!r}",
                                         location=Location(file=display_path(path), line=1),
                                         hint="the directive is '-- seedkit: transaction=false'")
    return Section(sql=text, path=path, line_offset=1, transactional=transactional)


def _diesel_transactional(path: Path, text: str) -> bool:
    """``run_in_transaction`` from a Diesel ``metadata.toml`` next to up.sql (default: true)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _entry_error(path, f"invalid TOML: {exc}") from None
    value = data.get("run_in_transaction", True)
    if not isinstance(value, bool):
        raise MigrationFileError("run_in_transaction must be true or false",
                                 location=Location(file=display_path(path)),
                                 hint="write 'run_in_transaction = false' to run the migration without a "
                                      "transaction")
    return value


def _entry_error(path: Path, message: str, hint: str | None = None) -> MigrationFileError:
    return MigrationFileError(message, location=Location(file=display_path(path)), hint=hint)


def load_entry(path: Path) -> Migration | None:
    """Read one entry of the migrations folder (a file or a folder); ``None`` when it is not a migration.

    For a pair, call this with the ``.up.sql`` file; the ``.down.sql`` is found next to it.
    """
    name = path.name
    if name.startswith("."):
        return None
    if path.is_dir():
        m = _FOLDER.match(name)
        if not m:
            return None
        up_file, down_file = path / "up.sql", path / "down.sql"
        if not up_file.is_file():
            raise _entry_error(path, "migration folder without an up.sql",
                               hint="a folder migration holds up.sql and, optionally, down.sql")
        version, number = parse_version(m["version"])
        up = _directive_section(up_file, _read(up_file))
        down = _directive_section(down_file, _read(down_file)) if down_file.is_file() else None
        metadata = path / "metadata.toml"
        meta_text = None
        if metadata.is_file():  # Diesel's per-migration settings: run_in_transaction = false
            meta_text = _read(metadata)  # part of what was applied: editing it later is a change
            if not _diesel_transactional(metadata, meta_text):
                up = dataclasses.replace(up, transactional=False)
                down = dataclasses.replace(down, transactional=False) if down else None
        return Migration(version=version, number=number, name=m["name"] or "", layout="folder", path=up_file,
                         up=up, down=down, down_path=down_file if down else None, meta=meta_text,
                         checksum=_entry_checksum(up.sql, down.sql if down else None, meta_text))
    if not name.lower().endswith(".sql"):
        return None
    pair = _PAIR.match(name)
    if pair:
        if pair["dir"].lower() == "down":
            up_file = path.with_name(name[: -len(".down.sql")] + ".up.sql")
            if not up_file.is_file():
                raise _entry_error(path, "a .down.sql without its .up.sql",
                                   hint=f"add {up_file.name}, or remove this file")
            return None  # loaded with its up file
        version, number = parse_version(pair["version"])
        down_file = path.with_name(name[: -len(".up.sql")] + ".down.sql")
        up = _directive_section(path, _read(path))
        down = _directive_section(down_file, _read(down_file)) if down_file.is_file() else None
        return Migration(version=version, number=number, name=pair["name"] or "", layout="pair", path=path,
                         up=up, down=down, down_path=down_file if down else None,
                         checksum=_entry_checksum(up.sql, down.sql if down else None, None))
    single = _SINGLE.match(name)
    if not single:
        raise _entry_error(path, "a .sql file whose name does not start with a version",
                           hint="name migrations VERSION_name.sql, e.g. "
                                f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}_{path.stem}.sql")
    version, number = parse_version(single["version"])
    text = _read(path)
    up, down = parse_single(path, text)
    return Migration(version=version, number=number, name=single["name"] or "", layout="file", path=path,
                     up=up, down=down, down_path=path if down else None, checksum=checksum(text))


def discover(directory: Path | str) -> list[Migration]:
    """Every migration in ``directory``, in version order; duplicate versions are an error.

    A missing folder holds no migrations (a fresh project); a path that is not a folder is an error.
    """
    directory = Path(directory)
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise _entry_error(directory, "the migrations path is not a folder")
    found: dict[int, Migration] = {}
    for entry in sorted(directory.iterdir()):
        migration = load_entry(entry)
        if migration is None:
            continue
        other = found.get(migration.number)
        if other is not None:
            raise MigrationFileError(
                f"version {migration.version} is used twice: {display_path(other.entry)} and "
                f"{display_path(migration.entry)}",
                location=Location(file=display_path(migration.entry)),
                hint="give one of them a new version (seedkit migrate new NAME picks a timestamp)")
        found[migration.number] = migration
    return sorted(found.values(), key=lambda m: (m.order, m.number))


def load_paths(paths: Iterable[Path | str]) -> list[Migration]:
    """Migrations named explicitly (files or folders, or migrations folders), in version order.

    Used by tools that take ``PATHS`` (the linter); a folder that is itself a migration is loaded as one.
    """
    result: dict[tuple[int, Path], Migration] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise _entry_error(path, "no such file or folder")
        migration: Migration | None = None
        if path.is_dir() and not _FOLDER.match(path.name):
            for m in discover(path):
                result[(m.number, m.path)] = m
            continue
        if path.is_file() and path.name.lower() in ("up.sql", "down.sql") and _FOLDER.match(path.parent.name):
            path = path.parent
        if path.is_file() and _PAIR.match(path.name) and path.name.lower().endswith(".down.sql"):
            path = path.with_name(path.name[: -len(".down.sql")] + ".up.sql")
        migration = load_entry(path)
        if migration is None:
            raise _entry_error(path, "not a migration file or folder")
        result[(migration.number, migration.path)] = migration
    return sorted(result.values(), key=lambda m: (m.order, m.number, m.path))


def new_name(name: str) -> str:
    """Validate a migration name: letters, digits and underscores (spaces and dashes become ``_``)."""
    cleaned = re.sub(r"[\s-]+", "_", name.strip()).strip("_")
    if not cleaned or not _NAME_OK.match(cleaned):
        raise MigrationFileError(f"bad migration name {name!r}",
                                 hint="use letters, digits and underscores, e.g. add_posts")
    return cleaned


TEMPLATE = """-- migrate:up


-- migrate:down

"""


def write_new(directory: Path, name: str, *, now: datetime | None = None) -> Path:
    """Write ``YYYYMMDDHHMMSS_name.sql`` (UTC) with both sections; refuse to reuse a version.

    A folder whose newest migration follows another convention is followed instead: a sequential
    version (fewer than 14 digits, golang-migrate's ``create -seq``: ``000151`` after ``000150``) goes
    on from it, zero-padded to the same width, and a pair (``.up.sql``/``.down.sql``) gets a pair.
    The path returned is the file (or the pair's up file) to edit first."""
    cleaned = new_name(name)
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")
    directory.mkdir(parents=True, exist_ok=True)
    migrations = discover(directory)
    existing = {m.number: m for m in migrations}
    newest = max(migrations, key=lambda m: (m.order, m.number)) if migrations else None
    version = stamp
    if newest is not None and newest.version.isdigit() and len(newest.version) < 14:
        version = str(newest.number + 1).zfill(len(newest.version))
    if int(version) in existing:
        taken = display_path(existing[int(version)].entry)
        raise MigrationFileError(f"version {version} already exists: {taken}",
                                 hint="wait a second and run the command again")
    if newest is not None and newest.layout == "pair":
        up, down = directory / f"{version}_{cleaned}.up.sql", directory / f"{version}_{cleaned}.down.sql"
        up.write_text("", encoding="utf-8")
        down.write_text("", encoding="utf-8")
        return up
    path = directory / f"{version}_{cleaned}.sql"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


__all__ = ["DOWN_MARKER", "TEMPLATE_HINT", "UP_MARKER", "Migration", "Section", "checksum", "discover",
           "display_path", "load_entry", "load_paths", "new_name", "normalise", "parse_single", "template_hint",
           "write_new"]
