"""The one exception tree of seedkit.

::

    SeedkitError                      exit 1 unless a subclass says otherwise
    ├── UsageError                    exit 2  bad arguments
    │   └── SnapshotError             exit 2  a table or option that cannot be snapshotted as asked
    ├── ConfigError                   exit 2  seedkit.toml / pyproject / environment variables
    ├── FixtureError                  exit 2  fixture files: carries file, line, document, row, column
    ├── UnknownObject                 exit 2  a table or column the database does not have
    ├── MigrationFileError            exit 2  migration files that cannot be read or parsed
    ├── DatabaseError                 exit 1  the database refused something (carries SQLSTATE)
    │   └── MigrationError            exit 1  a migration statement failed (file, line, column)
    │       ├── LockLost              exit 1  the connection holding the migration lock ended mid-run
    │       └── AlreadyRecorded       exit 1  another run recorded the same migration (nothing committed)
    ├── DriftError                    exit 3  a check found pending work or drift
    └── RefusedError                  exit 4  protected environment, stamped database
        └── LockTimeout               exit 4  another run holds the lock

The CLI catches ``SeedkitError`` once and prints ``error: <message>`` with the location and hint.
"""

from __future__ import annotations

from ._record import dataclass


@dataclass(frozen=True)
class Location:
    """Where a problem is: any part may be unknown."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    document: int | None = None
    row: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.document is not None:
            parts.append(f"document {self.document}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field:
            parts.append(f"column {self.field!r}")
        return ", ".join(parts)


class SeedkitError(Exception):
    """Base of every error seedkit raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        where = str(self.location) if self.location else ""
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict:
        loc = self.location
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "location": None if loc is None else {k: v for k, v in loc.__dict__.items() if v is not None},
        }


class UsageError(SeedkitError):
    exit_code = 2


class ConfigError(SeedkitError):
    exit_code = 2


class FixtureError(SeedkitError):
    """A fixture cannot be loaded; several problems may be collected in ``problems``."""

    exit_code = 2

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None,
                 problems: list[FixtureError] | None = None):
        super().__init__(message, location=location, hint=hint)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        lines = [super().__str__()] if self.message else []
        lines += [f"  {p}" + (f"\n    hint: {p.hint}" if p.hint else "") for p in self.problems]
        return "\n".join(lines)


class SnapshotError(UsageError):
    """A table or option that cannot be snapshotted as asked (exit 2)."""


class MigrationFileError(SeedkitError):
    exit_code = 2


class DatabaseError(SeedkitError):
    """The database refused a statement or a connection."""

    exit_code = 1

    def __init__(self, message: str, *, sqlstate: str | None = None, location: Location | None = None,
                 hint: str | None = None):
        super().__init__(message, location=location, hint=hint)
        self.sqlstate = sqlstate


class MigrationError(DatabaseError):
    """A migration statement failed; ``location`` points into the migration file."""


class LockLost(MigrationError):
    """The applying connection (which holds the migration lock) ended or no longer holds the lock."""


class AlreadyRecorded(MigrationError):
    """The history already has the row this run meant to add: the run's transaction does not commit."""


class UnknownObject(SeedkitError):
    """An unknown table or column; the hint names the closest known ones."""

    exit_code = 2

    def __init__(self, what: str, name: str, choices: list[str], *, location: Location | None = None):
        import difflib

        close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else None
        super().__init__(f"unknown {what} {name!r}", location=location, hint=hint)


class DriftError(SeedkitError):
    exit_code = 3


class RefusedError(SeedkitError):
    exit_code = 4


class LockTimeout(RefusedError):
    pass
