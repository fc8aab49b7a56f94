"""The split cache: how ``migrate up`` cut a migration section into statements, kept until its text changes.

On PostgreSQL, cutting a section is pglast's work, and loading pglast is a good part of a short ``up``
(a fresh test database migrated from scratch, say). So for each section ``up`` planned, what the
runner learnt from the parser is kept under the project's ``.seedkit/cache/migrations`` folder: where
each statement starts and ends, its line and column in the file, and the two questions the runner
asks each statement before anything runs (can it run inside a transaction, does it touch the history
tables). A later ``up`` that finds every pending section in the cache never loads the parser.

- An entry is keyed by a hash of the section's text, the line it starts on and its transaction flag;
  the whole file by seedkit's version and the sizes and times of its files that cut and answer
  (another build of the same version may answer otherwise), the cache format, the installed pglast,
  Python's marshal format, the server's version and the history tables' names. Anything else is a miss.
- Only a section the parser accepted whole is kept; a section that was refused (a statement that
  cannot run in a transaction, a change to the history table) is refused by the parser every time.
- The answers kept are the parser's; what else a failure needs (the index a failed
  ``CREATE INDEX CONCURRENTLY`` left, where in a ``DO`` block an error is) parses the statement then.
- A file that cannot be read, is damaged or is for another stamp is a miss (and replaced): the cache
  never fails a run. A folder that cannot be written (a read-only checkout) means no cache. The file is
  written to a temporary file and renamed, so a reader never sees half of one.
- ``SEEDKIT_MIGRATION_CACHE=0`` in the environment turns it off.

The file is one ``marshal`` record (plain values only, fast to read): the stamp, then the entries. It
is read only from the project's own folder, which the project's owner writes, like its migrations.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import marshal
import os
import sys
from pathlib import Path
from typing import Any

from ..db.statements import Judged, Statement
from .files import Section

FORMAT = 1
FOLDER = Path(".seedkit") / "cache" / "migrations"
ENV = "SEEDKIT_MIGRATION_CACHE"
LIMIT = 20_000  # entries kept in the file; past that, only the current run's

# one statement: (offset, end, line, column, needs_no_transaction's answer, touches_history's answer)
Entry = tuple[tuple[int, int, int, int, "str | None", "str | None"], ...]


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def parser_stamp() -> str:
    """Which pglast is installed, without importing it: its files' sizes and modification times."""
    spec = importlib.util.find_spec("pglast")
    if spec is None or not spec.submodule_search_locations:
        return "none"
    parts = []
    for location in spec.submodule_search_locations:
        with contextlib.suppress(OSError):
            for entry in sorted(os.scandir(location), key=lambda e: e.name):
                if entry.is_file() and (entry.name.startswith(("parser.", "__init__.")) or
                                        entry.name.endswith((".so", ".pyd"))):
                    st = entry.stat()
                    parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


# seedkit's own files that decide a cut and its answers: another build of the same version (an install
# from a newer commit, an edited checkout) may cut or answer otherwise
_DECIDERS = ("db/statements.py", "db/postgres/statements.py", "db/postgres/migration.py", "migrate/split_cache.py")


def code_stamp() -> str:
    """seedkit's files that decide the cuts and the answers kept, by size and modification time (as
    ``parser_stamp``: an install or a checkout writes them anew)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = []
    for name in _DECIDERS:
        try:
            st = os.stat(os.path.join(root, name))
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append("-")
    return ";".join(parts)


class SplitCache:
    """The kept cuts of one project (``root/.seedkit/cache/migrations/splits``) for one stamp."""

    def __init__(self, root: Path, *, server_version: int | None, tables: tuple[str, ...]):
        from .. import __version__

        self.file = root / FOLDER / "splits"
        self.stamp = repr(("seedkit", __version__, code_stamp(), FORMAT, parser_stamp(), marshal.version,
                           sys.version_info[:2], server_version, tables))
        self._entries: dict[bytes, Entry] | None = None
        self._used: dict[bytes, Entry] = {}
        self._added = False
        self.hits = self.misses = 0

    @staticmethod
    def key(section: Section) -> bytes:
        head = f"{section.line_offset}\0{int(section.transactional)}\0".encode()
        return hashlib.sha256(head + section.sql.encode("utf-8", "surrogatepass")).digest()

    def _load(self) -> dict[bytes, Entry]:
        if self._entries is None:
            self._entries = {}
            try:
                stamp, entries = marshal.loads(self.file.read_bytes())
                if stamp == self.stamp and isinstance(entries, dict):
                    self._entries = entries
            except Exception:  # noqa: BLE001 - missing, unreadable, damaged or another format: a miss
                pass
        return self._entries

    def get(self, section: Section) -> list[Statement] | None:
        """The statements ``section`` was cut into, each with a ``Judged`` node, or None."""
        key = self.key(section)
        entry = self._load().get(key)
        statements = _decode(section.sql, entry) if entry is not None else None
        if statements is None:
            self.misses += 1
            return None
        self.hits += 1
        self._used[key] = entry  # type: ignore[assignment]
        return statements

    def put(self, section: Section, statements: list[Statement], answers: list[tuple[str | None, str | None]]) -> None:
        """Keep the cut of ``section`` (every statement with a parse node) and the runner's answers."""
        if any(s.node is None for s in statements) or len(answers) != len(statements):
            return
        entry = tuple((s.offset, s.offset + len(s.sql), s.line, s.column, no_tx, history)
                      for s, (no_tx, history) in zip(statements, answers))
        decoded = _decode(section.sql, entry) or []
        if [(d.sql, d.offset, d.line, d.column) for d in decoded] != \
                [(s.sql, s.offset, s.line, s.column) for s in statements]:
            return  # (never expected: a statement's text is a slice of the section's)
        self._used[self.key(section)] = entry
        self._added = True

    def save(self) -> None:
        """Write the file when this run added entries; any problem writing is ignored."""
        if not self._added:
            return
        import tempfile

        entries = dict(self._load())
        if len(entries) + len(self._used) > LIMIT:
            entries = {}
        entries.update(self._used)
        tmp = None
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps((self.stamp, entries)))
            os.replace(tmp, self.file)
            tmp = None
            self._entries, self._added = entries, False
        except (OSError, ValueError):
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _decode(text: str, entry: Any) -> list[Statement] | None:
    """The statements of ``entry`` over ``text``, or None when the entry does not fit the text."""
    try:
        out: list[Statement] = []
        for offset, end, line, column, no_tx, history in entry:
            if not (type(offset) is type(end) is type(line) is type(column) is int and 0 <= offset < end <= len(text)
                    and isinstance(no_tx, (str, type(None))) and isinstance(history, (str, type(None)))):
                return None
            out.append(Statement(sql=text[offset:end], offset=offset, line=line, column=column,
                                 node=Judged(no_tx, history)))
        return out
    except (TypeError, ValueError):
        return None
