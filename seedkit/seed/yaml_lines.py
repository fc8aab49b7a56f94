"""The rows ``seedkit snapshot`` writes, read a line at a time: an accelerator in front of the events reader.

A snapshot's YAML file is a header (``table:``, ``key:`` …), a line ``rows:``, then one row per line,
each a flow mapping of ``column: value`` whose values are double-quoted strings, plain numbers and
words, ``!ref "table/value"`` and ``!ref {table: t, col: value, …}``::

    - {name: "War", album_id: !ref {table: album, title: "War", artist_id: !ref "artist/U2"}, ms: 157962}

libyaml makes a Python event object and two marks for every value of such a line, which costs more
than the values themselves. This reads exactly that shape from the text, with regular expressions,
and gives the same fixtures as the events reader (seedkit.seed.yaml_events): the header is read by the
events reader itself (the text before ``rows:``, followed by an empty list of rows), every plain
scalar is resolved and constructed by the events reader's own code (PyYAML's resolver, seedkit's
constructors, the same per-text cache), and the references are built by it too, at the positions
libyaml gives (a tagged value starts at its tag).

It is not a YAML parser: it reads only what it is sure of and gives up (returns None: the events
reader, then the composer path, read the file as before) at anything else — a comment, an empty line
among the rows, a tab, a character YAML does not allow or reads as a line break, an escape other than
the ones JSON writes, a single-quoted or multi-line value, another tag, a nested mapping or list, a
column twice, a column name that is not text, more than one document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import yaml_events
from .model import Fixture, Ref

# A character YAML does not allow (outside the printable set), or reads as a line break other than
# \n (\r, NEL, U+2028/2029), or a BOM, a tab, a lone surrogate: given up on, wherever it is.
_UNSURE_WIDE = "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
# the same for ASCII text: compiling the class above costs about 9 ms (its ranges span the whole of
# Unicode), so it is compiled only when a file holds other characters
_UNSURE_ASCII = re.compile("[^\n\x20-\x7e]")
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
# a flow mapping (up to 4 deep) with its quoted strings, as text: where a ``!ref {…}`` ends
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_BRACES = r'\{[^"{}]*(?:' + _STRING + r'[^"{}]*)*\}'
for _ in range(3):  # (written so that no text can be matched two ways: no backtracking to speak of)
    _BRACES = r'\{[^"{}]*(?:(?:' + _STRING + "|" + _BRACES + r')[^"{}]*)*\}'
# a column and its value, followed by what ends the value (", " or "}"): the column plain (a word: whether
# it resolves to text is asked of the resolver) or quoted; the value quoted, plain, !ref "…", !ref {…}
# as a whole, or the start of a !ref {…} nested deeper than that
_PAIR = re.compile(r'(?:([A-Za-z_][A-Za-z0-9_.]*)|' + _QUOTED + r'): (?:'
                   + _QUOTED + r'(?=, |\})'
                   r'|((?:[0-9A-Za-z_.+]|-(?=[0-9A-Za-z_.+-]))[0-9A-Za-z_.+-]*)(?=, |\})'
                   r'|!ref ' + _QUOTED + r'(?=, |\})'
                   r'|(!ref ' + _BRACES + r')(?=, |\})'
                   r'|(!ref \{))')
# the escapes JSON writes (json.dumps), decoded as YAML decodes them; any other is given up on
_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))|(\\)')
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ROWS = "\nrows:\n"
# YAML reads a key only when its ':' comes within 1024 characters of its start (a "simple key"): a longer
# one is an error, given up on here
_LONGEST = 1000


class _GiveUp(Exception):
    """Not the shape this reader is sure of."""


def _unescape(match: re.Match[str]) -> str:
    code, simple, other = match.groups()
    if other is not None:
        raise _GiveUp
    if simple is not None:
        return _SIMPLE[simple]
    n = int(code, 16)
    if 0xD800 <= n <= 0xDFFF:  # libyaml refuses a surrogate, PyYAML's own scanner takes it
        raise _GiveUp
    return chr(n)


def _text(raw: str) -> str:
    return _ESCAPE.sub(_unescape, raw) if "\\" in raw else raw


def _unsure(text: str) -> bool:
    """Does ``text`` hold a character ``_UNSURE_WIDE`` matches?"""
    if text.isascii():
        return _UNSURE_ASCII.search(text) is not None
    return re.search(_UNSURE_WIDE, text) is not None  # (re keeps the compiled pattern)


def read(loader_class: type, text: str, path: Path, shown: str, document: Callable[..., Fixture | None]
         ) -> list[Fixture] | None:
    """The one document of ``text``, or None when the events reader must read it."""
    if text.startswith("rows:\n"):
        at = 0
    else:
        at = text.find(_ROWS) + 1
        if at == 0:
            return None
    head = text[:at]
    body = text[at + 6:]
    if not body.endswith("}\n") or _unsure(text) or "\n---" in text or "\n..." in text \
            or text.startswith(("---", "...", "%")):
        return None
    # the header, read by the events reader as a document of no rows (its rows are put in below)
    got: list[tuple[Any, ...]] = []

    def keep(data: Any, *rest: Any) -> None:
        got.append((data, *rest))

    if yaml_events.read(loader_class, head + "rows: []\n", path, shown, keep) is None or len(got) != 1:
        return None
    data, _path, _shown, doc_no, line, row_lines = got[0]
    if (type(data) is not dict or doc_no != 1 or row_lines != [] or data.get("rows") != []
            or next(reversed(data)) != "rows"):
        return None

    def rows(reader: yaml_events._Reader) -> list[Fixture]:
        data["rows"], lines = _rows(reader, body, head.count("\n") + 2)
        fixture = document(data, path, shown, doc_no, line, lines)
        return [] if fixture is None else [fixture]

    # (anything unusual or wrong: None, and the events reader reads it again)
    return yaml_events.with_reader(loader_class, "", shown, rows)


def _rows(reader: Any, body: str, first: int) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, int]]]]:
    """The rows of ``body`` (its lines from line ``first``), each ``- {column: value, …}``.

    A reference met again (the same text) is built from what its first reading gave, at its own
    position: the first reading is the events reader's own code (``scalar_ref``, ``mapping_ref``)."""
    pair = _PAIR.match
    plain = reader.plain
    plain_value = reader.plain_value
    keys = reader.keys
    plain_is_text = reader.plain_is_text
    scalar_ref = reader.scalar_ref
    shown = reader.shown
    missing = yaml_events._MISSING
    names: dict[str, str] = {}
    columns: dict[str, str] = {}  # a plain column name that resolves to text → its one string
    scalar_refs: dict[str, tuple[str, Any]] = {}  # the text of !ref "…" → its table and match
    mapping_refs: dict[str, Any] = {}  # the text of !ref {…} → how to build it anywhere (None: anew)
    rows: list[dict[str, Any]] = []
    lines: list[tuple[int, dict[str, int]]] = []

    def column(m: re.Match[str]) -> str:
        k = m[1]
        if k is None:
            if len(m[2]) > _LONGEST:
                raise _GiveUp
            return _text(m[2])
        if len(k) > _LONGEST or not keys.get(k) and not plain_is_text(k):
            raise _GiveUp
        return k

    def a_scalar_ref(raw: str, n: int, col: int) -> Ref:
        known = scalar_refs.get(raw)
        if known is None:
            ref = scalar_ref(_text(raw), n, col)
            scalar_refs[raw] = (ref.table, ref.match)
            return ref
        return Ref(known[0], known[1], None, (shown, n, col))

    def a_mapping_ref(m: re.Match[str], s: str, at: int, n: int) -> tuple[Ref, int]:
        """The ``!ref {…}`` whose tag starts at ``at`` (``m``: its match), and where what follows it starts."""
        whole = m[6]
        if whole is not None:
            known = mapping_refs.get(whole, missing)
            if known is not missing and known is not None:
                return build(known, n, at + 1), m.end()
        ref, end = read_mapping_ref(s, at, n)
        if whole is not None:
            if end != m.end():
                raise _GiveUp
            mapping_refs[whole] = template(ref, at + 1)
        return ref, end

    def read_mapping_ref(s: str, at: int, n: int) -> tuple[Ref, int]:
        data: dict[str, Any] = {}
        i = at + 6
        while True:
            m = pair(s, i)
            if m is None:
                raise _GiveUp
            k = column(m)
            if k in data:
                raise _GiveUp
            kind = m.lastindex
            if kind == 3:
                data[k] = _text(m[3])
            elif kind == 4:
                data[k] = plain_value(m[4])
            elif kind == 5:
                data[k] = a_scalar_ref(m[5], n, m.start(5) - 5)
            else:
                data[k], j = a_mapping_ref(m, s, m.start(kind), n)
            if kind < 6:
                j = m.end()
            c = s[j]
            if c == "}":
                return reader.mapping_ref(data, n, at + 1), j + 1
            if c != "," or s[j + 1] != " ":
                raise _GiveUp
            i = j + 2

    def template(ref: Ref, col: int) -> Any:
        """How to build ``ref`` (whose tag is at column ``col``) at another place, or None."""
        subs = []
        for idx, (k, v) in enumerate(ref.match):
            if type(v) is Ref:
                sub = template(v, col)
                if sub is None:
                    return None
                subs.append((idx, k, sub))
            elif type(v) is float:  # nan and inf: each read is its own object
                return None
        return (ref.table, ref.column, ref.match, tuple(subs), ref._at[2] - col)

    def build(known: Any, n: int, col: int) -> Ref:
        table, col_name, match, subs, offset = known
        if subs:
            items = list(match)
            for idx, k, sub in subs:
                items[idx] = (k, build(sub, n, col))
            match = tuple(items)
        return Ref(table, match, col_name, (shown, n, col + offset))

    n = first
    for s in body.split("\n"):
        if not s:
            break  # the end (body ends with "}\n": only the last piece is empty)
        if not s.startswith("- {"):
            raise _GiveUp
        values: dict[str, Any] = {}
        count = 0
        i = 3
        while True:
            m = pair(s, i)
            if m is None:
                raise _GiveUp
            k = m[1]
            if k is None:
                if len(m[2]) > _LONGEST:
                    raise _GiveUp
                k = _text(m[2])
                k = names.setdefault(k, k)  # one string per name: less memory, smaller cache entries
            else:
                name = columns.get(k)
                if name is None:
                    if len(k) > _LONGEST or not plain_is_text(k):
                        raise _GiveUp
                    name = columns[k] = k
                k = name
            count += 1
            kind = m.lastindex
            if kind == 4:
                v = plain.get(m[4], missing)
                values[k] = plain_value(m[4]) if v is missing else v
                j = m.end()
            elif kind == 3:
                values[k] = _text(m[3])
                j = m.end()
            elif kind == 5:
                known = scalar_refs.get(m[5])
                if known is None:
                    values[k] = a_scalar_ref(m[5], n, m.start(5) - 5)
                else:
                    values[k] = Ref(known[0], known[1], None, (shown, n, m.start(5) - 5))
                j = m.end()
            else:
                known = mapping_refs.get(m[6]) if kind == 6 else None
                if known is None:
                    values[k], j = a_mapping_ref(m, s, m.start(kind), n)
                else:
                    values[k] = build(known, n, m.start(6) + 1)
                    j = m.end()
            c = s[j]
            if c == "}":
                if j + 1 != len(s):
                    raise _GiveUp
                break
            if c != "," or s[j + 1] != " ":
                raise _GiveUp
            i = j + 2
        if len(values) != count:  # a column twice
            raise _GiveUp
        rows.append(values)
        lines.append((n, dict.fromkeys(values, n)))
        n += 1
    if n == first or n - first != body.count("\n"):
        raise _GiveUp
    return rows, lines
