"""Skip rows that cannot have changed before they reach the database (PostgreSQL, Python fixtures).

A Python fixture is deterministic, so a rerun mostly generates what the last run wrote. For each large
streamed fixture a run records, in ``seedkit_digests`` and in the run's own transaction:

- the digest of every group of ``CHUNK * GROUP`` rows (of their values as ``marshal`` writes them, or
  of their COPY text when a value is not of a core type), of every batch (of its values as ``marshal``
  writes them, or of its group digests), of the batch's keys, and of every chunk of ``CHUNK`` rows (of
  its COPY text, without the row number);
- a fingerprint of the target table and of every table it references: the row count and a sum of
  hashes of the rows' ``xmin``. Any insert, update or delete since (by anyone) changes it, because
  every written row version carries the id of the transaction that wrote it. It is scanned once,
  before the run compares or writes the table, and moved by the run's own writes; never scanned
  again after them, so another session's commit during the run cannot end up in it
  (seed/fingerprints.py);
- a digest of everything else that decides what gets written and how the stored rows read back:
  columns, types, key, options, versions, and the tables' shapes (``Database.table_shape``: identity,
  column layout, types down to enum labels and domain constraints, defaults, triggers), the database
  and the cluster (``Database.database_identity``). The SQL behind them is the adapter's
  (db/postgres/fingerprints.py).

The next run compares before staging anything. When the configuration and every fingerprint are
unchanged, the database still holds exactly what the last run left, so a batch (or group, or chunk)
whose digest is unchanged would write nothing: it is not staged or compared, and an unchanged batch or
group is not even formatted as COPY text. Rows
whose digest changed go through the usual staging and exact comparison, which also checks, at its own
snapshot, that no other session changed the tables since the scan (``others_committed``). Nothing
here decides a write: a false "changed" only costs time. A false "unchanged" needs a 64-bit group or
chunk digest collision at the same position, or an outside write whose 32-bit transaction id equals the
``xmin`` it replaced (xid wraparound), or equal sums of 64-bit hashes of those 32-bit ids
(RELIABILITY.md §7).

Repeated keys: the last run proved its keys distinct. A batch whose keys are unchanged keeps that
proof; rows past the end of the last run are checked against the table after staging; any other
change of keys (or a check that finds a clash) stages the whole fixture again, where the full
duplicate check runs. When every batch's keys are unchanged (and the row count too), the staged rows
hold keys that run proved distinct, and the duplicate check over them is skipped (seed/apply.py).
"""

from __future__ import annotations

import hashlib
import json
import marshal
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import field
from itertools import accumulate, compress, repeat
from operator import eq, itemgetter, methodcaller, not_
from typing import Any

from .._record import dataclass
from ..db.base import Database
from ..db.catalog import TableName
from .skip_basics import CHUNK, DIGESTS, Restage

GROUP = 4  # chunks per group digest: only the rows of changed groups are formatted and digested by chunk
FORMAT = 5  # bump when what a digest covers, or how it is computed, changes


def _digest(data: Any, size: int = 16) -> bytes:
    return _sha256(data).digest()[:size]


def _same_chunks(mine: bytes, old: bytes, upto: int) -> list[bool]:
    """Per chunk: is its digest the old one? (Only the first ``upto`` chunks may be; compared in C.)"""
    n = len(mine) // 8
    same = list(map(eq, memoryview(mine).cast("Q")[:upto], memoryview(old).cast("Q")[:upto])) if old else []
    return same + [False] * (n - len(same))


def _group_digests(built: list[Sequence[Any]]) -> bytes | None:
    """The 8-byte digest of every group of CHUNK * GROUP rows, as ``marshal`` writes their values; None
    when a value is not of a core type (str, int, float, bool, None, bytes, tuple, list, dict, …; never a
    subclass: marshal refuses those). Equal bytes mean equal values of the same types (``marshal.loads``
    gives them back), and the COPY text is a function of exactly those and of what the record's
    configuration digest covers: an unchanged group is never formatted. Format version 2 writes every
    value in full (no references to objects written before, no interning flags), so the bytes depend on
    the values alone, not on which objects the rows happen to share."""
    pieces = _group_pieces(built)
    return None if pieces is None else _first8(map(_sha256, pieces))


def _group_pieces(built: list[Sequence[Any]]) -> list[bytes] | None:
    """What ``marshal`` writes of every group of CHUNK * GROUP rows, or None when a value is not of a core type."""
    span, count = CHUNK * GROUP, len(built)
    try:
        return list(map(marshal.dumps, map(built.__getitem__, map(slice, range(0, count, span),
                                                                  range(span, count + span, span))),
                        repeat(_MARSHAL_VERSION)))
    except ValueError:
        return None


def _batch_digest(built: list[Sequence[Any]]) -> bytes | None:
    """The 16-byte digest of a whole batch, as ``marshal`` writes its values (see ``_group_digests``), or
    None when a value is not of a core type. Equal digests mean equal values of the same types, hence equal
    group digests: a batch the last run made alike takes that run's group digests, computed once."""
    try:
        data = marshal.dumps(built, _MARSHAL_VERSION)
    except ValueError:
        return None
    h = _sha256(b"M")
    h.update(data)  # (not ``b"M" + data``: a batch's bytes are not copied once more)
    return h.digest()[:16]


def _one_pass(built: list[Sequence[Any]]) -> tuple[bytes, bytes] | None:
    """(``_group_digests(built)``, ``_batch_digest(built)``) from one pass of ``marshal`` over the rows, or
    None when a value is not of a core type. Version 2 writes a list as ``[``, its length in 4 bytes and
    then every item in full, each the same bytes wherever it stands (no references, no interning flags):
    the batch's bytes are its own header followed by every group's bytes after the group's header. A
    changed batch needs both digests, and its rows are then written once, not twice."""
    count = len(built)
    if built.__class__ is not list or count >= 1 << 31:
        return None
    pieces = _group_pieces(built)
    if pieces is None:
        return None
    h = _sha256(b"M[")
    h.update(count.to_bytes(4, "little"))
    h.update(b"".join(map(_AFTER_HEADER, map(memoryview, pieces))))  # (memoryviews: no piece copied twice)
    return _first8(map(_sha256, pieces)), h.digest()[:16]


_AFTER_HEADER = itemgetter(slice(5, None))  # a list's bytes after ``[`` and its length


def _first8(hashes: Iterator[Any]) -> bytes:
    """The first 8 bytes of each digest, joined."""
    return memoryview(b"".join(map(methodcaller("digest"), hashes))).cast("Q")[::4].tobytes()


def _text_digests(buf: bytearray | bytes, ends: list[int]) -> bytes:
    """The 8-byte digest of the COPY text up to each of ``ends`` (from the previous one), after a NUL
    byte: no marshal output starts with one, so a text digest never meets a marshal one."""
    view = memoryview(buf)
    return _first8(map(_sha256, map(b"\0".__add__, map(view.__getitem__, map(slice, [0, *ends], ends)))))


# Every digest is a truncated SHA-256: on processors with SHA instructions (x86 since about 2017, ARMv8)
# OpenSSL computes it faster than BLAKE2b over what a rerun digests (group digests of 16 rows: about
# a third less time per row)
_sha256 = hashlib.sha256
_MARSHAL_VERSION = 2


def _chunk_ends(buf: bytearray, per: int = CHUNK) -> list[int]:
    """Offsets in ``buf`` (COPY text, one line per row) after every ``per`` rows, and at its end."""
    lines = buf.split(b"\n")
    lines.pop()  # after the last newline
    upto = list(accumulate(map(len, lines)))  # + one newline per line
    ends = [upto[i] + i + 1 for i in range(per - 1, len(upto), per)]
    if len(upto) % per:
        ends.append(len(buf))
    return ends


@dataclass
class Record:
    """What the last run that wrote a fixture left, as stored."""

    config: str
    state: dict[str, list]  # table → fingerprint, as the run left it
    rows: int
    batch_size: int
    batches: bytes  # 16 bytes per batch
    keys: bytes  # 16 bytes per batch
    chunks: bytes  # 8 bytes per chunk of CHUNK rows (empty: not recorded)
    groups: bytes = b""  # 8 bytes per group of GROUP chunks (stored after the chunks)

    @property
    def n_batches(self) -> int:
        return len(self.batches) // 16

    def batch_rows(self, b: int) -> int:
        return min(self.batch_size, self.rows - b * self.batch_size)

    def key(self, b: int) -> bytes:
        return self.keys[16 * b:16 * b + 16]

    @property
    def has_chunks(self) -> bool:
        return len(self.chunks) == 8 * ((self.rows + CHUNK - 1) // CHUNK)

    def groups_of(self, b: int) -> bytes:
        per = (self.batch_size + CHUNK * GROUP - 1) // (CHUNK * GROUP)
        return self.groups[8 * b * per:8 * (b * per + (self.batch_rows(b) + CHUNK * GROUP - 1) // (CHUNK * GROUP))]

    def chunks_of(self, b: int) -> bytes:
        first = b * (self.batch_size // CHUNK)
        return self.chunks[8 * first:8 * (first + (self.batch_rows(b) + CHUNK - 1) // CHUNK)]


@dataclass
class Tracker:
    """Digests of one fixture's rows as they stream: which to send, and what to record."""

    fixture: str
    table: TableName
    config: str
    tables: list[TableName]  # the target first, then referenced tables
    key_positions: list[int]  # where the key values sit in a built row
    batch_size: int
    old: Record | None = None  # usable record of the last run (configuration and fingerprints match)
    # digest every chunk of CHUNK rows too (with no record to compare with, a staged load leaves them
    # to the next run, which fills them in: the staging COPY, unlike a load into an indexed table,
    # cannot hide the time it takes)
    chunked: bool = True
    # the fingerprint scan that decides whether ``old`` still describes the database, when it has not run yet:
    # it runs while the first batches are made (seed/staging.py), and says False when ``old`` does not
    verify: Callable[[], bool] | None = None
    batches: bytearray = field(default_factory=bytearray)
    keys: bytearray = field(default_factory=bytearray)
    chunks: bytearray = field(default_factory=bytearray)
    groups: bytearray = field(default_factory=bytearray)
    rows: int = 0
    skipped: int = 0
    staged: int = 0
    fresh_from: int | None = None  # first staging ordinal of rows past the end of the last run
    # staged rows already updated while the rest streamed (seed/early.py): ordinals up to ``applied``; how
    # many rows those updates changed, and how they moved the target table's fingerprint (hash sum)
    applied: int = 0
    early_rows: int = 0
    early_hashes: int = 0
    # the last batch needed its group digests (changed, or nothing to compare with): the next one likely does
    # too, and is written by marshal once for both digests (``_one_pass``); False once a value was not
    # marshal's (the COPY text is digested instead)
    _groups_next: bool = True
    _marshal_ok: bool = True
    _runs: list[tuple[int, int]] = field(default_factory=list)  # (first ordinal, first row number)
    _starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        kp = self.key_positions
        self._keys_of: Callable[[Sequence[Any]], Any] = itemgetter(*kp) if len(kp) > 1 else itemgetter(kp[0])

    def reset(self) -> None:
        """Start over with nothing skipped (see ``Restage``)."""
        self.old = None
        self.verify = None
        self.chunked = False
        self.batches.clear()
        self.keys.clear()
        self.chunks.clear()
        self.groups.clear()
        self.rows = self.skipped = self.staged = 0
        self.fresh_from = None
        self.applied = self.early_rows = self.early_hashes = 0
        self._groups_next = self._marshal_ok = True
        self._runs.clear()
        self._starts.clear()

    def feed(self, built: list[Sequence[Any]], fmt: Callable[[Sequence[Sequence[Any]]], bytearray]
             ) -> bytes | bytearray | None:
        """One batch of ``built`` rows; ``fmt`` formats rows as COPY text (one line each). Return what to
        send (COPY text) or None.

        The batch digest is the digest of its values as ``marshal`` writes them (``_batch_digest``; of its
        group digests of the COPY text when a value is not of a core type). Group digests
        (``_group_digests``) are computed only where needed: a batch that changed compares them, and only
        the rows of changed groups are formatted and compared chunk by chunk (chunk digests cover the COPY
        text); an unchanged batch takes the last run's; a staged first run records none."""
        b = len(self.batches) // 16
        first_n = self.rows + 1
        count = len(built)
        self.rows += count
        span = CHUNK * GROUP
        buf: bytearray | None = None
        groups: bytes | None = None
        old = self.old
        bd = None
        if self._marshal_ok and (self._groups_next if old is not None and b < old.n_batches else self.chunked):
            both = _one_pass(built)
            if both is not None:
                groups, bd = both
        if bd is None:
            bd = _batch_digest(built)
            self._marshal_ok = bd is not None
        if bd is None:
            buf = fmt(built)
            groups = _text_digests(buf, _chunk_ends(buf, span))
            bd = _digest(b"T" + groups)
        self.batches += bd
        self._groups_next = True
        if old is not None and b < old.n_batches and old.batches[16 * b:16 * b + 16] == bd:
            self._groups_next = False
            self.keys += old.key(b)  # the digest covers the keys and the row count
            kept = old.groups_of(b)
            self.groups += kept if len(kept) == 8 * ((count + span - 1) // span) else (
                groups if groups is not None else self._groups(built))
            if old.has_chunks:
                self.chunks += old.chunks_of(b)
            else:
                buf = fmt(built) if buf is None else buf
                self.chunks += _text_digests(buf, _chunk_ends(buf))
            self.skipped += count
            return None
        kd = self._key_digest(built)
        self.keys += kd
        if old is None or b >= old.n_batches:  # nothing to compare (past the end: checked after staging)
            buf = fmt(built) if buf is None else buf
            if self.chunked:  # (recorded with the chunk digests only)
                self.groups += groups if groups is not None else self._groups(built)
                self.chunks += _text_digests(buf, _chunk_ends(buf))
            self._stage(first_n, count)
            return buf
        if groups is None:
            groups = self._groups(built)
        self.groups += groups
        n_chunks = (count + CHUNK - 1) // CHUNK
        old_count = old.batch_rows(b)
        fresh = n_chunks  # chunks from here on hold rows appended to the last batch of the last run
        if old.key(b) != kd:
            if b != old.n_batches - 1 or count <= old_count or self._key_digest(built[:old_count]) != old.key(b):
                raise Restage
            fresh = old_count // CHUNK
        old_chunks = old.chunks_of(b) if old.has_chunks else b""
        same_groups = _same_chunks(groups, old.groups_of(b) if old_chunks else b"", fresh // GROUP)
        changed_groups = list(compress(range(len(same_groups)), map(not_, same_groups)))
        # the rows of the changed groups, formatted together: every group but the batch's last is
        # whole, so their chunks are every CHUNK lines of it
        if buf is None:
            text = fmt([row for g in changed_groups for row in built[g * span:g * span + span]])
        else:
            gends = _chunk_ends(buf, span)
            text = b"".join([buf[gends[g - 1] if g else 0:gends[g]] for g in changed_groups])
        ends = _chunk_ends(text)
        mine = _text_digests(text, ends)
        at = [k for g in changed_groups for k in range(g * GROUP, min(g * GROUP + GROUP, n_chunks))]
        chunks = bytearray(old_chunks[:8 * n_chunks]).ljust(8 * n_chunks, b"\0")  # each of ``at`` is set below
        parts: list[bytes | bytearray] = []
        before = self.staged
        for i, k in enumerate(at):
            digest = mine[8 * i:8 * i + 8]
            chunks[8 * k:8 * k + 8] = digest
            if k < fresh and old_chunks and old_chunks[8 * k:8 * k + 8] == digest:
                continue
            self._stage(first_n + k * CHUNK, min(CHUNK, count - k * CHUNK))
            parts.append(text[ends[i - 1] if i else 0:ends[i]])
        self.chunks += chunks
        self.skipped += count - (self.staged - before)
        return b"".join(parts) if parts else None

    @staticmethod
    def _groups(built: list[Sequence[Any]]) -> bytes:
        groups = _group_digests(built)
        assert groups is not None  # (the batch digest was marshal's: so is every group's)
        return groups

    def _key_digest(self, built: Sequence[Sequence[Any]]) -> bytes:
        keys = list(map(self._keys_of, built))
        try:  # one text key (no NUL: PostgreSQL text cannot hold it): joining is unambiguous and fast
            text = "\x00".join(keys)
        except TypeError:  # numbers, composite keys, …
            return _digest(b"r" + repr(keys).encode())
        return _digest(b"j" + text.encode("utf-8", "surrogatepass"))


    def _stage(self, first_n: int, count: int) -> None:
        ordinal = self.staged + 1
        if self.old is not None and self.fresh_from is None and first_n + count - 1 > self.old.rows:
            self.fresh_from = ordinal + max(0, self.old.rows + 1 - first_n)
        if not self._runs or self._runs[-1][1] + (ordinal - self._runs[-1][0]) != first_n:
            self._runs.append((ordinal, first_n))
            self._starts.append(ordinal)
        self.staged += count

    def row_number(self, ordinal: int) -> int:
        """The fixture's row number of the staged row ``ordinal`` (1-based, in COPY order)."""
        i = bisect_right(self._starts, ordinal) - 1
        if i < 0:
            return ordinal
        first, n = self._runs[i]
        return n + ordinal - first

    def record(self) -> Record:
        return Record(config=self.config, state={}, rows=self.rows, batch_size=self.batch_size,
                      batches=bytes(self.batches), keys=bytes(self.keys), chunks=bytes(self.chunks),
                      groups=bytes(self.groups))


# -- the store -----------------------------------------------------------------------------------
def config_digest(parts: Any, driver: str = "?") -> str:
    """``driver``: the database driver's version (``Database.driver_version``)."""
    from .. import __version__

    # (marshal's output may change with the interpreter's version: so does the digest of a record)
    text = json.dumps([FORMAT, CHUNK, __version__, driver, _MARSHAL_VERSION, list(sys.version_info[:2]), parts],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def load_records(d: Database) -> dict[tuple[str, str], Record]:
    q = d.quote
    # (binary: the digests are a few bytes per row of every fixture, which as hex text take twice as long to send
    # and to decode)
    rows = d.fetchall_binary(f"SELECT fixture, table_name, config, state, rows, batch_size, batches, keys, chunks "
                             f"FROM {q(DIGESTS)}")
    out = {}
    for fixture, table, config, state, count, batch, batches, keys, chunks in rows:
        chunks = bytes(chunks or b"")  # the chunk digests, then the group digests
        n = 8 * ((int(count) + CHUNK - 1) // CHUNK)
        out[(fixture, table)] = Record(config, json.loads(state), int(count), int(batch), bytes(batches),
                                       bytes(keys), chunks[:n] if len(chunks) > n else chunks, chunks[n:])
    return out


def save_record(d: Database, fixture: str, table: str, record: Record) -> None:
    q, ph = d.quote, d.placeholder
    if not d.table_exists(DIGESTS):  # created only when missing: a role without CREATE can seed
        d.execute(f"CREATE TABLE IF NOT EXISTS {q(DIGESTS)} (fixture TEXT NOT NULL, table_name TEXT NOT NULL, "
                  "config TEXT NOT NULL, state TEXT NOT NULL, rows BIGINT NOT NULL, batch_size INTEGER NOT NULL, "
                  "batches BYTEA NOT NULL, keys BYTEA NOT NULL, chunks BYTEA NOT NULL, "
                  "PRIMARY KEY (fixture, table_name))")
    values = [record.config, json.dumps(record.state, sort_keys=True), record.rows, record.batch_size,
              record.batches, record.keys, record.chunks + record.groups if record.chunks else b""]
    d.execute(f"INSERT INTO {q(DIGESTS)} (fixture, table_name, config, state, rows, batch_size, batches, keys, "
              f"chunks) VALUES ({', '.join([ph] * 9)}) ON CONFLICT (fixture, table_name) DO UPDATE SET "
              "config = excluded.config, state = excluded.state, rows = excluded.rows, "
              "batch_size = excluded.batch_size, batches = excluded.batches, keys = excluded.keys, "
              "chunks = excluded.chunks", [fixture, table, *values])

__all__ = ["CHUNK", "DIGESTS", "Record", "Restage", "Tracker", "config_digest", "load_records", "save_record"]
