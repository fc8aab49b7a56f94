"""seedkit: versioned raw-SQL migrations and idempotent seed data for Python teams.

The public API is loaded lazily: ``import seedkit`` (which pytest does to find the plugin, and every
fixture file does for ``fixture``/``ref``) costs almost nothing until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AlreadyRecorded,
    ConfigError,
    DatabaseError,
    DriftError,
    FixtureError,
    Location,
    LockLost,
    LockTimeout,
    MigrationError,
    MigrationFileError,
    RefusedError,
    SeedkitError,
    SnapshotError,
    UnknownObject,
    UsageError,
)

__version__ = "0.1.0"

_LAZY = {
    "Config": ("seedkit.config", "Config"),
    "load_config": ("seedkit.config", "load_config"),
    "fixture": ("seedkit.seed.python_fixtures", "fixture"),
    "ref": ("seedkit.seed.python_fixtures", "ref"),
    "run": ("seedkit.seed", "run"),
    "reset": ("seedkit._recreate", "reset"),
    "Report": ("seedkit.seed.report", "Report"),
    "TableReport": ("seedkit.seed.report", "TableReport"),
    "migrate": ("seedkit.migrate", None),
}

if TYPE_CHECKING:  # pragma: no cover
    from . import migrate
    from ._recreate import reset
    from .config import Config, load_config
    from .seed import run
    from .seed.python_fixtures import fixture, ref
    from .seed.report import Report, TableReport


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'seedkit' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AlreadyRecorded",
    "Config",
    "ConfigError",
    "DatabaseError",
    "DriftError",
    "FixtureError",
    "Location",
    "LockLost",
    "LockTimeout",
    "MigrationError",
    "MigrationFileError",
    "Report",
    "RefusedError",
    "SeedkitError",
    "SnapshotError",
    "TableReport",
    "UnknownObject",
    "UsageError",
    "__version__",
    "fixture",
    "load_config",
    "migrate",
    "ref",
    "reset",
    "run",
]
