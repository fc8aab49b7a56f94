"""The fixture cache: the rows of a YAML or JSON file read before, kept until the file changes.

Reading a large YAML file is most of a rerun that changes nothing (the parser alone is several times
what the database needs to compare the rows). So what a file was read into (its documents, rows,
values, references and the line of every row and column, for located messages) is kept under the
project's ``.seedkit/cache/fixtures`` folder, one entry per file, and used again when the file's
bytes are the same: the entry is keyed by a hash of the bytes (not their size or modification time),
the name the file is shown under, seedkit's version, the cache format, the YAML library and Python.

- Only a file read without error is kept; a file that read an environment variable (``!env``) is
  never kept by the loader (its rows depend on the environment, and may hold a secret).
- An entry that cannot be read, is damaged or belongs to other bytes is ignored (and replaced): the
  cache never fails a run. A folder that cannot be written (a read-only checkout) means no cache.
- Entries are written to a temporary file and renamed, so a reader never sees half of one.
- ``[seeds] cache = false`` in seedkit.toml, or ``SEEDKIT_FIXTURE_CACHE=0`` in the environment, turns
  it off.

Entries are length-prefixed ``marshal`` records (plain values only, fast to read): the key, the number of documents,
then each document's header and its rows, a chunk of rows per record; a value of another kind (a list, a
nested mapping) is kept as its pickle inside. Entries are read only from the project's own folder,
which the project's owner writes, like its Python fixtures, which a run executes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import hashlib
import marshal
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import Location
from .model import Fixture, FixtureHeader, Ref, Row
from .yaml_events import pyyaml_stamp, resume_collections

FORMAT = 7  # a change to what reading gives (not only to the entries) moves it too
FOLDER = Path(".seedkit") / "cache" / "fixtures"
ENV = "SEEDKIT_FIXTURE_CACHE"
_NATIVE = (str, int, float, bool, type(None))
_NATIVE_TYPES = frozenset(_NATIVE)  # (looked up by hash: a value of another type is not compared with each)


def enabled(setting: bool = True) -> bool:
    """The configured setting, unless the environment turns the cache off."""
    return setting and os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class FixtureCache:
    """The entries of one project (``root/.seedkit/cache/fixtures``)."""

    def __init__(self, root: Path):
        self.folder = root / FOLDER
        self.hits = self.misses = 0
        self.tmp_prefix = ".tmp-"  # what an entry being written is named (then renamed)

    def _stamp(self) -> bytes:
        from .. import __version__

        return repr(("seedkit", __version__, FORMAT, *pyyaml_stamp(), sys.version_info[:2], marshal.version)).encode()

    def _names(self, shown: str, name: str, raw: bytes) -> tuple[Path, bytes]:
        """The entry's file (one per fixture file) and the key its content must carry."""
        shown_b, name_b = os.fsencode(shown), os.fsencode(name)  # a file name's bytes need not be UTF-8
        where = hashlib.sha256(shown_b + b"\0" + name_b).hexdigest()[:32]
        h = hashlib.sha256(self._stamp() + b"\0" + shown_b + b"\0" + name_b + b"\0")
        h.update(raw)  # (not concatenated: a copy of a large file's bytes)
        return self.folder / where, h.digest()

    def get(self, shown: str, name: str, raw: bytes) -> list[Fixture] | None:
        """The documents the same bytes were read into, or None (no entry, another file's, damaged)."""
        entry, key = self._names(shown, name, raw)
        try:
            data = entry.read_bytes()
        except OSError:
            data = b""
        fixtures = load_entry(data, key)
        if fixtures is None:
            self.misses += 1
            return None
        self.hits += 1
        return fixtures

    def has(self, shown: str, name: str, raw: bytes) -> bool:
        """Whether an entry of these bytes is there (its key alone is read: a hint, ``get`` decides)."""
        entry, key = self._names(shown, name, raw)
        try:
            with entry.open("rb") as f:
                head = f.read(8 + 64)
            return _Records(head).next() == key
        except Exception:  # noqa: BLE001 - no entry, or not one of these bytes
            return False

    def put(self, shown: str, name: str, raw: bytes, fixtures: list[Fixture]) -> bool:
        """Keep what ``raw`` was read into; any problem writing it is ignored (False). Rows are encoded
        and written a chunk at a time, so writing takes little memory beside them."""
        import tempfile

        entry, key = self._names(shown, name, raw)
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=self.tmp_prefix)
            with os.fdopen(fd, "wb") as f:
                if not dump(f, key, fixtures):
                    return False
            os.replace(tmp, entry)
            tmp = None
        except OSError:
            return False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return True


def dump(f: Any, key: bytes, fixtures: list[Fixture]) -> bool:
    """Write an entry (``key``, then the documents) to the open file ``f``; False when a value cannot
    be kept (what was written is then of no use)."""
    import pickle

    collecting = gc.isenabled()
    gc.disable()  # as in load_entry: the collector would walk every row for nothing
    try:
        _write(f, key)
        _write(f, len(fixtures))
        for fx in fixtures:
            _write(f, _encode_head(fx))
            rows = fx.rows or []
            for start in range(0, len(rows), CHUNK):
                _write(f, _encode_rows(fx, rows, start))
    except (ValueError, TypeError, pickle.PicklingError, AttributeError, RecursionError):
        return False
    finally:
        resume_collections(collecting)
    return True


def load_entry(data: bytes, key: bytes) -> list[Fixture] | None:
    """The documents of an entry written by ``dump`` with this ``key``, or None (another key, damaged)."""
    collecting = gc.isenabled()
    gc.disable()  # many small containers, none in a cycle: the collector would only walk them
    try:
        records = _Records(data)
        if records.next() != key:
            raise ValueError("another version of the file")
        fixtures = read_documents(records)
        if not records.done():
            raise ValueError("more than the entry")
    except Exception:  # noqa: BLE001 - an unreadable, damaged or foreign entry is only a miss
        return None
    finally:
        resume_collections(collecting)
    return fixtures


def read_documents(records: _Records) -> list[Fixture]:
    """The documents ``dump`` wrote after its key (ValueError or another error when damaged)."""
    memo: dict[Any, Any] = {}
    fixtures = []
    for _ in range(records.next()):
        head = records.next()
        rows: list[Row] = []
        while len(rows) < head[-1]:
            rows += _decode_rows(records.next(), head, len(rows), memo)
        fixtures.append(_decode_fixture(head, rows))
    return fixtures


CHUNK = 2000  # rows per record of an entry


def _write(f: Any, value: Any) -> None:
    """One record: its length (8 bytes) and its marshal data (read back with one ``loads`` each:
    ``marshal.load`` from a file asks the file for every few bytes)."""
    data = marshal.dumps(value)
    f.write(len(data).to_bytes(8, "little"))
    f.write(data)


class _Records:
    def __init__(self, data: bytes):
        self.view = memoryview(data)
        self.at = 0

    def next(self) -> Any:
        size = int.from_bytes(self.view[self.at:self.at + 8], "little")
        start = self.at + 8
        if size <= 0 or start + size > len(self.view):
            raise ValueError("a damaged record")
        self.at = start + size
        return marshal.loads(self.view[start:self.at])

    def done(self) -> bool:
        return self.at == len(self.view)


# -- encoding -------------------------------------------------------------------------------------------
# A value is kept as itself when marshal holds it exactly (text, int, float, bool, None); anything else
# is a tuple (fixture values are never tuples): ("D", text) a Decimal, ("R", …) a reference,
# ("T", text) a datetime and ("d", text) a date in ISO form, ("P", pickle) the rest.
# A location is kept as its fields (a dict), or, in the shapes the reader gives them, shorter: a row's
# as its line (the file, document and row number are the document's), a reference's as (line, column).
_FIELDS = tuple(f.name for f in dataclasses.fields(Location))
_SHORT = _FIELDS == ("file", "line", "column", "document", "row", "field")  # else every location in full

_new = object.__new__
_set = object.__setattr__


def _location(fields: dict[str, Any]) -> Location:
    """A Location from its fields (a frozen dataclass: set past its ``__setattr__``, one by one so the
    instance keeps the small key-sharing ``__dict__``)."""
    loc = _new(Location)
    for name, value in fields.items():
        _set(loc, name, value)
    return loc


def _encode(v: Any, src: str) -> Any:
    t = type(v)
    if t in _NATIVE:
        return v
    if t is Decimal:
        return ("D", str(v))
    if t is Ref:
        return _encode_ref(v, src)
    if t is dt.datetime:
        return ("T", v.isoformat())
    if t is dt.date:
        return ("d", v.isoformat())
    import pickle

    return ("P", pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL))


def _encode_ref(v: Ref, src: str) -> tuple:
    """``_encode`` of a reference (nested ones encoded here too, without going through ``_encode``)."""
    match = v.match
    for pair in match:
        if pair[1].__class__ not in _NATIVE_TYPES:
            kept = []
            for item in match:
                x = item[1]
                c = x.__class__
                kept.append(item if c in _NATIVE_TYPES else (item[0], _encode_ref(x, src) if c is Ref
                                                             else _encode(x, src)))
            match = tuple(kept)
            break
    loc = v._at  # a Location, or (file, line, column) when it was not asked for yet
    if loc.__class__ is tuple:
        loc = (loc[1], loc[2]) if (_SHORT and loc[0] == src and loc[1].__class__ is int  # type: ignore[index]
                                   and loc[2].__class__ is int) else v.location.__dict__  # type: ignore[index,union-attr]
    elif loc is not None:
        f = loc.__dict__
        if (_SHORT and f["file"] == src and f["document"] is None and f["row"] is None and f["field"] is None
                and type(f["line"]) is int and type(f["column"]) is int):
            loc = (f["line"], f["column"])
        else:
            loc = f  # only read (by marshal)
    return ("R", v.table, match, v.column, loc)


def _decode(v: tuple, memo: dict[Any, Any], src: str) -> Any:
    """A kept value; equal Decimals (immutable) are built once."""
    kind = v[0]
    if kind == "R":
        match = v[2]
        for _k, x in match:
            if type(x) is tuple:
                match = tuple([(k, _decode(x, memo, src) if type(x) is tuple else x) for k, x in match])
                break
        kept = v[4]
        if type(kept) is tuple:  # (line, column): its Location made when asked for, as the reader makes it
            return Ref(v[1], match, v[3], (src, kept[0], kept[1]))
        return Ref(v[1], match, v[3], None if kept is None else _location(kept))
    if kind == "D":
        d = memo.get(v)
        if d is None:
            d = memo[v] = Decimal(v[1])
        return d
    if kind == "T":
        return dt.datetime.fromisoformat(v[1])
    if kind == "d":
        return dt.date.fromisoformat(v[1])
    if kind == "P":
        import pickle

        return pickle.loads(v[1])
    raise ValueError(f"unknown value kind {kind!r}")


def _encode_head(fx: Fixture) -> tuple:
    if fx.rows is None or fx.stream is not None or fx.auto is not None or fx.count is not None:
        raise ValueError("only documents of rows read from a file are kept")
    h = fx.header
    return (fx.table, (h.table, h.key, h.on_conflict, h.create_only, h.prune), fx.source, fx.location.__dict__,
            fx.name, fx.text_values, len(fx.rows))


def _encode_rows(fx: Fixture, rows: list[Row], start: int) -> list[tuple]:
    src = fx.source
    doc = fx.location.document
    out = []
    native = _NATIVE_TYPES
    for n, row in enumerate(rows[start:start + CHUNK], start=start + 1):
        values = row.values
        special = [c for c, v in values.items() if v.__class__ not in native]
        if special:
            values = dict(values)
            for c in special:
                v = values[c]
                values[c] = _encode_ref(v, src) if v.__class__ is Ref else _encode(v, src)
        at = row._at  # a Location, or (file, line, document, row) when it was not asked for yet
        if at.__class__ is tuple:
            loc = at[1] if (_SHORT and at[0] == src and at[2] == doc and at[3] == n and type(at[1]) is int
                            ) else row.location.__dict__
        else:
            f = at.__dict__
            loc = f["line"] if (_SHORT and f["file"] == src and f["document"] == doc and f["row"] == n
                                and f["column"] is None and f["field"] is None and type(f["line"]) is int) else f
        out.append((values, tuple(special), loc, row.column_lines))
    return out


def _decode_rows(kept: list[tuple], head: tuple, done: int, memo: dict[Any, Any]) -> list[Row]:
    src = head[2]
    doc = head[3]["document"]
    out = []
    for n, (values, special, rloc, cols) in enumerate(kept, start=done + 1):
        for c in special:
            values[c] = _decode(values[c], memo, src)
        out.append(Row(values, (src, rloc, doc, n) if type(rloc) is int else _location(rloc), cols))
    if not out:
        raise ValueError("an empty record")
    return out


def _decode_fixture(head: tuple, rows: list[Row]) -> Fixture:
    table, h, src, loc, name, text_values, count = head
    if len(rows) != count:
        raise ValueError("not the rows the entry says")
    return Fixture(table=table, header=FixtureHeader(*h), source=src, location=_location(loc), rows=rows,
                   name=name, text_values=text_values)
