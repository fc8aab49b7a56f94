"""The fixture model every loader produces: documents of rows, each value remembering where it came from.

``Fixture`` is one document (one YAML document, one JSON object, one CSV file, one Python fixture).
Rows of YAML and JSON fixtures are held in memory; Python and CSV fixtures stream theirs (a CSV file is
read again for every pass over it, so memory does not grow with its size).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from .._record import dataclass
from ..errors import FixtureError, Location


class Ref:
    """A reference to another row: ``table`` row whose ``match`` columns equal the given values.

    ``match`` may be a single unnamed value (scalar form, ``!ref roles/admin``): its column is the
    referenced table's natural key, decided by the planner. ``column`` names the referenced column
    when no foreign key says which. A plain slotted class: Python fixtures create one per row.

    ``location`` may be given as a ``(file, line, column)`` tuple: the Location is then made when it is
    first asked for (a message), not for each of the many references a file is read into.
    """

    __slots__ = ("table", "match", "column", "_at", "scalar", "_hash")

    def __init__(self, table: str, match: tuple[tuple[str | None, Any], ...], column: str | None = None,
                 location: Location | tuple[str, int, int] | None = None):
        self.table = table
        self.match = match
        self.column = column
        self._at = location
        self.scalar = len(match) == 1 and match[0][0] is None
        self._hash: int | None = None  # see __hash__

    @property
    def location(self) -> Location | None:
        at = self._at
        if at.__class__ is tuple:
            at = self._at = Location(file=at[0], line=at[1], column=at[2])
        return at

    @location.setter
    def location(self, value: Location | tuple[str, int, int] | None) -> None:
        self._at = value

    def _ident(self) -> tuple:
        return (self.table, self.match, self.column)

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if other.__class__ is not Ref:
            return isinstance(other, Ref) and self._ident() == other._ident()
        # ``self._ident() == other._ident()`` field by field, the cheap ones first, without building
        # the tuples: nested references meet again and again as keys, and this runs each time
        return self.table == other.table and self.column == other.column and self.match == other.match

    def __hash__(self) -> int:
        """``hash(self._ident())``, computed once: keys holding nested references hash them again and
        again (a reference is not changed once made)."""
        h = self._hash
        if h is None:
            h = self._hash = hash((self.table, self.match, self.column))
        return h

    def __repr__(self) -> str:
        return f"Ref({self.table!r}, {self.match!r}, column={self.column!r})"

    def __str__(self) -> str:
        if self.scalar:
            return f"!ref {self.table}/{self.match[0][1]}"
        inner = ", ".join(f"{k}: {v!r}" for k, v in self.match)
        return f"!ref {{table: {self.table}, {inner}}}"


def make_ref(table: str, values: dict[str, Any] | Any, column: str | None = None,
             location: Location | None = None) -> Ref:
    if isinstance(values, dict):
        if not values:
            raise FixtureError(f"!ref to {table!r} names no columns to match", location=location,
                               hint="write !ref {table: t, col: value} or !ref t/value")
        match = tuple(sorted(values.items()))
    else:
        match = ((None, values),)
    return Ref(table=table, match=match, column=column, location=location)


class Row:
    """One row of a YAML or JSON document: its values, where it is (file, line, document, row) and the
    line of each of its columns.

    ``location`` may be given as a ``(file, line, document, row)`` tuple: the Location is then made
    when it is first asked for (a message), not for each of the many rows a file is read into."""

    __slots__ = ("values", "_at", "column_lines")

    def __init__(self, values: dict[str, Any], location: Location | tuple[str, int | None, int | None, int],
                 column_lines: dict[str, int] | None = None):
        self.values = values
        self._at = location
        self.column_lines = {} if column_lines is None else column_lines

    @property
    def location(self) -> Location:
        at = self._at
        if at.__class__ is tuple:
            at = self._at = Location(file=at[0], line=at[1], document=at[2], row=at[3])
        return at  # type: ignore[return-value]

    @location.setter
    def location(self, value: Location | tuple[str, int | None, int | None, int]) -> None:
        self._at = value

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Row:
            return NotImplemented
        return (self.values, self.location, self.column_lines) == (other.values, other.location,  # type: ignore[attr-defined]
                                                                   other.column_lines)  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # (as the dataclass it was: mutable, compared by value)

    def __repr__(self) -> str:
        return f"Row(values={self.values!r}, location={self.location!r}, column_lines={self.column_lines!r})"

    def where(self, column: str) -> Location:
        loc = self.location
        return Location(file=loc.file, line=self.column_lines.get(column, loc.line), document=loc.document,
                        row=loc.row, field=column)


_HEADER_FIELDS = ("table", "key", "on_conflict", "create_only", "prune")


@dataclass
class FixtureHeader:
    """The document-level settings of a fixture (validated; unknown keys are errors).

    A plain dataclass, checked by ``_plain``; anything that check does not accept goes to the pydantic
    model of ``_header_model``, which converts what it can and words the errors (pydantic loads only
    then: its start-up is a good part of a short run)."""

    table: str | None = None
    key: list[str] | None = None
    on_conflict: Literal["update", "ignore"] = "update"
    create_only: list[str] = field(default_factory=list)
    prune: bool = False

    def __post_init__(self) -> None:
        values = {f: getattr(self, f) for f in _HEADER_FIELDS}
        if not _plain(values):
            checked = _header_model().model_validate(values)  # pydantic's ValidationError when wrong
            for f in _HEADER_FIELDS:
                setattr(self, f, getattr(checked, f))
        else:
            self.key, self.create_only = values["key"], values["create_only"]


def _one_or_many(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


def _plain(values: dict[str, Any]) -> bool:
    """Header values as they should be (lists of names given as one name become lists, in place)."""
    values["key"] = key = _one_or_many(values["key"])
    values["create_only"] = create_only = _one_or_many(values["create_only"])
    return ((values["table"] is None or type(values["table"]) is str)
            and (key is None or (type(key) is list and all(type(k) is str for k in key)))
            and type(values["on_conflict"]) is str and values["on_conflict"] in ("update", "ignore")
            and type(create_only) is list and all(type(c) is str for c in create_only)
            and type(values["prune"]) is bool)


_MODEL: Any = None


def _header_model() -> Any:
    """The header as a pydantic model: the authority on what a header may hold, and on the messages."""
    global _MODEL
    if _MODEL is None:
        from pydantic import BaseModel, ConfigDict, Field, field_validator

        class FixtureHeaderModel(BaseModel):
            model_config = ConfigDict(extra="forbid")

            table: str | None = None
            key: list[str] | None = None
            on_conflict: Literal["update", "ignore"] = "update"
            create_only: list[str] = Field(default_factory=list)
            prune: bool = False

            @field_validator("key", "create_only", mode="before")
            @classmethod
            def _one_or_many(cls, v: Any) -> Any:
                return _one_or_many(v)

        _MODEL = FixtureHeaderModel
    return _MODEL


def parse_header(data: dict[str, Any], location: Location) -> FixtureHeader:
    values = {f: data.get(f, getattr(FixtureHeader, f, None)) for f in _HEADER_FIELDS}
    values["create_only"] = data.get("create_only", [])
    if set(data) <= set(_HEADER_FIELDS) and _plain(values):
        return FixtureHeader(**values)
    from pydantic import ValidationError

    try:
        checked = _header_model().model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"unknown key {key!r}" if err["type"] == "extra_forbidden" else f"{key}: {err['msg']}")
        raise FixtureError("; ".join(problems), location=location,
                           hint="a fixture document may have: table, key, on_conflict, create_only, prune, rows"
                           ) from None
    return FixtureHeader(**{f: getattr(checked, f) for f in _HEADER_FIELDS})


@dataclass
class Fixture:
    """One document of rows for one table."""

    table: str
    header: FixtureHeader
    source: str  # file path as shown in messages (relative to the working directory when below it)
    location: Location
    rows: list[Row] | None = None  # YAML and JSON fixtures
    stream: Callable[[], Iterator[tuple[int, dict[str, Any]]]] | None = None  # Python, CSV: fresh (n, row) pairs
    # identity in seedkit_rows and seedkit_digests: "<path in the seeds folder>#<document>:<table>" or
    # "<path in the seeds folder>:<fixture name>" -- never relative to the working directory
    name: str = ""
    count: int | None = None  # rows a Python fixture will produce, when known
    text_values: bool = False  # CSV: every cell is text (a json column's cell is JSON text)
    path: Path | None = None  # the file, absolute
    ident: str = ""  # the file's path relative to the seeds folder (POSIX separators); ``name`` starts with it
    line_of: Callable[[int], int | None] | None = None  # CSV: the line row n starts on (read again on demand)
    auto: Any = None  # Python fixtures with auto=True: a seedkit.schema.auto.AutoSpec, bound by the run

    def numbered(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(row number from 1, values) for every row; Python fixtures stream theirs."""
        if self.rows is not None:
            return ((n, row.values) for n, row in enumerate(self.rows, start=1))
        assert self.stream is not None
        return self.stream()

    def row_location(self, n: int, column: str | None = None) -> Location:
        if self.rows is not None and 1 <= n <= len(self.rows):
            row = self.rows[n - 1]
            return row.where(column) if column else row.location
        line = self.line_of(n) if self.line_of is not None else self.location.line
        return Location(file=self.source, line=line, document=self.location.document, row=n, field=column)

