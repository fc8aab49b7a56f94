"""seedkit: versioned raw-SQL migrations and idempotent seed data for Python teams."""

from __future__ import annotations

__version__ = "0.1.0"

from . import migrate
from .config import Config, load_config
from .errors import (
    ConfigError,
    DatabaseError,
    DriftError,
    FixtureError,
    LockTimeout,
    MigrationError,
    RefusedError,
    SeedkitError,
    UsageError,
)
from .seed import fixture, ref, run
from .seed.report import Report, TableReport

__all__ = [
    "Config",
    "ConfigError",
    "DatabaseError",
    "DriftError",
    "FixtureError",
    "LockTimeout",
    "MigrationError",
    "Report",
    "RefusedError",
    "SeedkitError",
    "TableReport",
    "UsageError",
    "__version__",
    "fixture",
    "load_config",
    "migrate",
    "ref",
    "run",
]
