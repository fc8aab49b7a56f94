"""Fixture files → ``Fixture`` documents with source locations.

YAML rows as ``seedkit snapshot`` writes them (one flow mapping a line) are read a line at a time
(seedkit.seed.yaml_lines), the common shapes straight from libyaml's events (seedkit.seed.yaml_events); anything
else, and every error, is read with PyYAML's node API so every row and value keeps its line, composed a
row at a time (the node tree of a whole document would take many times the memory of its rows); floats become
``Decimal`` (no float rounding on the way to a numeric column); ``!ref`` and ``!env`` are resolved to
``Ref`` objects and environment values here. CSV files are checked here (UTF-8, header) but their rows
stream from the file each time they are read, so a file of any size loads in the memory of a batch.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FixtureError, Location
from .model import Fixture, Row, make_ref, parse_header

if TYPE_CHECKING:
    from .cache import FixtureCache

SUFFIXES = (".yaml", ".yml", ".json", ".csv", ".py")


def discover(seeds_dir: Path, include: list[str]) -> list[Path]:
    """Fixture files of the included folders, folder order first, then sorted by path."""
    files: list[Path] = []
    for folder in include:
        base = seeds_dir / folder
        if not base.is_dir():
            raise FixtureError(f"seed folder {folder!r} does not exist", location=Location(file=str(base)),
                               hint=f"create {base} or remove {folder!r} from the environment's include")
        files += sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                        and not any(part.startswith((".", "_")) for part in p.relative_to(base).parts))
    return files


def load_file(path: Path, *, variables: Mapping[str, str], display: str | None = None,
              ident: str | None = None, cache: FixtureCache | None = None,
              digests: dict[str, str | None] | None = None) -> list[Fixture]:
    """Read one fixture file (not Python) into documents.

    ``display`` is how messages name the file; ``ident`` is its path relative to the seeds folder,
    the identity the prune ledger and the digests record it under (the same from any directory).
    With a ``cache``, a YAML or JSON file whose bytes were read before without error is not parsed
    again (see seedkit.seed.cache). With ``digests``, a YAML or JSON file's entry (under ``ident``) is
    the SHA-256 of the bytes its rows were read from, or None when reading them read a variable
    (seedkit.seed.rerun).
    """
    shown = display or str(path)
    ident = ident or shown
    if path.suffix.lower() == ".csv":
        return _load_csv(path, shown, ident)
    raw = read_bytes(path, shown)
    fixtures, read_variable = read_documents(raw, path, shown, variables, cache)
    return finish(fixtures, raw, path, shown, ident, read_variable, digests)


def read_bytes(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FixtureError(f"cannot read: {exc.strerror}", location=Location(file=shown)) from None


def read_documents(raw: bytes, path: Path, shown: str, variables: Mapping[str, str],
                   cache: FixtureCache | None) -> tuple[list[Fixture], bool]:
    """A YAML or JSON file's documents (from the cache when the bytes were read before), and whether
    reading them read a variable."""
    fixtures = cache.get(shown, path.name, raw) if cache is not None else None
    if fixtures is not None:
        return fixtures, False  # a cached file read none
    watched = _Watched(variables)
    fixtures = _parse(raw, path.suffix.lower(), path, shown, watched)
    if cache is not None and not watched.read:  # rows that read the environment are never kept
        cache.put(shown, path.name, raw, fixtures)
    return fixtures, watched.read


def finish(fixtures: list[Fixture], raw: bytes, path: Path, shown: str, ident: str, read_variable: bool,
           digests: dict[str, str | None] | None) -> list[Fixture]:
    """The documents named by ``ident`` (see ``load_file``), and the file's digest noted."""
    if digests is not None:
        digests[ident] = None if read_variable else hashlib.sha256(raw).hexdigest()
    for fx in fixtures:
        fx.name = ident + fx.name[len(shown):]  # "<ident>#<document>:<table>"
        fx.path, fx.ident = path.resolve(), ident
    return fixtures


class _Watched(Mapping[str, str]):
    """The variables, noting whether the file read any (``!env``, however its tag is spelled)."""

    def __init__(self, variables: Mapping[str, str]):
        self._variables, self.read = variables, False

    def __getitem__(self, name: str) -> str:
        self.read = True
        return self._variables[name]

    def __iter__(self) -> Iterator[str]:
        self.read = True
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)


def _parse(raw: bytes, suffix: str, path: Path, shown: str, variables: Mapping[str, str]) -> list[Fixture]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FixtureError("the file is not valid UTF-8 text", location=Location(file=shown, line=line),
                           hint="save the file as UTF-8") from None
    if "\x00" in text:
        raise FixtureError("the file contains NUL bytes (binary data?)", location=Location(file=shown))
    try:
        if suffix in (".yaml", ".yml"):
            from .yaml_load import _load_yaml

            fixtures = _load_yaml(text, path, shown, variables)
        elif suffix == ".json":
            fixtures = _load_json(text, path, shown)
        else:
            raise FixtureError(f"unsupported fixture file type {suffix!r}", location=Location(file=shown))
    except RecursionError:
        raise FixtureError("the document is nested too deeply to read", location=Location(file=shown),
                           hint="fixtures are rows of column: value; flatten the structure") from None
    return fixtures


# -- documents ------------------------------------------------------------------------------------
def _document(data: Any, path: Path, shown: str, doc_no: int, line: int | None,
              row_lines: list[tuple[int | None, dict[str, int]]] | None = None) -> Fixture | None:
    loc = Location(file=shown, line=line, document=doc_no)
    if data is None:
        return None
    if isinstance(data, list):  # a bare list of rows
        data = {"rows": data}
    if not isinstance(data, dict):
        raise FixtureError(f"a fixture document must be a mapping with 'rows', not {_kind(data)}", location=loc,
                           hint="write `rows:` followed by a list of mappings")
    header_data = {k: v for k, v in data.items() if k != "rows"}
    header = parse_header(header_data, loc)
    table = header.table or path.stem
    rows_data = data.get("rows")
    if rows_data is None:
        rows_data = []
    if not isinstance(rows_data, list):
        raise FixtureError(f"'rows' must be a list of mappings, not {_kind(rows_data)}", location=loc)
    rows: list[Row] = []
    for i, values in enumerate(rows_data, start=1):
        rline, cols = row_lines[i - 1] if row_lines and i - 1 < len(row_lines) else (line, {})
        rloc = (shown, rline, doc_no, i)  # its Location (file, line, document, row): made when asked for
        if not isinstance(values, dict):
            raise FixtureError(f"a row must be a mapping of column: value, not {_kind(values)}",
                               location=Location(file=shown, line=rline, document=doc_no, row=i))
        for col in values:
            if not isinstance(col, str):
                raise FixtureError(f"column names must be text, not {col!r}",
                                   location=Location(file=shown, line=rline, document=doc_no, row=i))
        rows.append(Row(values=values, location=rloc, column_lines=cols))
    return Fixture(table=table, header=header, source=shown, location=loc, rows=rows,
                   name=f"{shown}#{doc_no}:{table}")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text"}.get(type(value), type(value).__name__)


# -- YAML (seedkit.seed.yaml_load, imported when a YAML file is read) ----------------------------
_EVENTS = True  # False: every file through the composer path (the tests compare both)
_LINES = True  # False: no file through the line reader (seedkit.seed.yaml_lines; the tests compare both)
_FLAT_ROWS = True  # False: every row through the composer and constructor (the tests compare both)
_YAML_NAMES = frozenset({"_Loader", "_FastLoader", "_load_yaml", "_parse_yaml", "_stream_document"})


def __getattr__(name: str) -> Any:
    """The YAML reader's own names, from the module that holds them (imported on first use)."""
    if name in _YAML_NAMES:
        from . import yaml_load

        return getattr(yaml_load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- JSON -----------------------------------------------------------------------------------------
def _json_hook(pairs: list[tuple[str, Any]]) -> Any:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # a key twice: the first such key in the object's order is named
        keys = [k for k, _ in pairs]
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"key {dup!r} appears twice in one object")
    if "$ref" in obj:  # {"$ref": "roles/admin"} or {"$ref": {"table": …}}
        spec = obj.pop("$ref")
        if isinstance(spec, str):
            table, _, value = spec.partition("/")
            return make_ref(table, value)
        if isinstance(spec, dict):
            spec = dict(spec)
            return make_ref(spec.pop("table", ""), spec, column=spec.pop("column", None))
    return obj


def _load_json(text: str, path: Path, shown: str) -> list[Fixture]:
    try:
        data = json.loads(text, parse_float=Decimal, object_pairs_hook=_json_hook)
    except json.JSONDecodeError as exc:
        raise FixtureError(f"malformed JSON: {exc.msg}", location=Location(file=shown, line=exc.lineno,
                                                                           column=exc.colno)) from None
    except ValueError as exc:
        raise FixtureError(f"malformed JSON: {exc}", location=Location(file=shown)) from None
    docs = data if isinstance(data, list) and all(isinstance(d, dict) and "rows" in d for d in data) and data \
        else [data]
    out = []
    for i, doc in enumerate(docs, start=1):
        fx = _document(doc, path, shown, i, None)
        if fx is not None:
            out.append(fx)
    return out


# -- CSV ------------------------------------------------------------------------------------------
# A cell may be as large as the file: a 2 GiB field is refused by csv itself, not by a limit of ours.
FIELD_LIMIT = 2**31 - 1
READ_SIZE = 1 << 20


def _check_text(path: Path, shown: str) -> None:
    """UTF-8 and free of NUL bytes, read a block at a time (the file is never held whole)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    try:
        with path.open("rb") as f:
            while block := f.read(READ_SIZE):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    line = lines + block[: max(exc.start, 0)].count(b"\n") + 1
                    raise FixtureError("the file is not valid UTF-8 text", location=Location(file=shown, line=line),
                                       hint="save the file as UTF-8") from None
                if b"\x00" in block:
                    line = lines + block[: block.index(b"\x00")].count(b"\n") + 1
                    raise FixtureError("the file contains NUL bytes (binary data?)",
                                       location=Location(file=shown, line=line))
                lines += block.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FixtureError("the file is not valid UTF-8 text: it ends inside a character",
                           location=Location(file=shown, line=lines + 1), hint="save the file as UTF-8") from None
    except OSError as exc:
        raise FixtureError(f"cannot read: {exc.strerror}", location=Location(file=shown)) from None


def _csv_error(exc: csv.Error, shown: str, line: int) -> FixtureError:
    problem = str(exc)
    if "end of data" in problem:
        problem = "a quoted cell of the record starting here is still open at the end of the file"
    return FixtureError(f"malformed CSV: {problem}", location=Location(file=shown, line=line),
                        hint="close the quote; a quote inside a quoted cell is written twice (\"\")")


def _csv_records(path: Path, shown: str) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, cells) for every record of the file, header first; blank lines skipped."""
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, strict=True)
        start = 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # located where the broken record starts (an open quote: where it opened)
                raise _csv_error(exc, shown, start) from None
            if record and (len(record) > 1 or record[0].strip()):
                yield start, record
            start = reader.line_num + 1


def _load_csv(path: Path, shown: str, ident: str) -> list[Fixture]:
    """Check the file and its header now; the rows stream from the file each time they are read, so a
    file of any size loads in the memory of one batch."""
    _check_text(path, shown)
    records = _csv_records(path, shown)
    first = next(records, None)
    records.close()
    if first is None:
        return []
    header = [h.strip() for h in first[1]]
    if any(not h for h in header):
        raise FixtureError("the header row has an empty column name", location=Location(file=shown, line=first[0]))
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise FixtureError(f"column {dup!r} appears twice in the header", location=Location(file=shown,
                                                                                         line=first[0]))
    width = len(header)

    def stream() -> Iterator[tuple[int, dict[str, Any]]]:
        records = _csv_records(path, shown)
        next(records)  # the header
        for n, (line, record) in enumerate(records, start=1):
            if len(record) != width:
                raise FixtureError(f"expected {width} cells as in the header, found {len(record)}",
                                   location=Location(file=shown, line=line, row=n))
            yield n, dict(zip(header, [c if c != "" else None for c in record]))

    lines: dict[int, int | None] = {}

    def line_of(n: int) -> int | None:
        """The line row ``n`` starts on: the file is read again up to it (to say where a problem is)."""
        if n not in lines:
            lines[n] = None
            try:
                for i, (line, _) in enumerate(_csv_records(path, shown)):
                    if i == n:
                        lines[n] = line
                        break
            except FixtureError:
                pass
        return lines[n]

    return [Fixture(table=path.stem, header=parse_header({}, Location(file=shown)), source=shown,
                    location=Location(file=shown, line=1), stream=stream, name=f"{ident}:{path.stem}",
                    text_values=True, path=path.resolve(), ident=ident, line_of=line_of)]
