"""The configuration's schema as pydantic models: the authority on what ``seedkit.toml`` may hold
and the source of every message about a file that breaks it.

``seedkit.config`` reads a valid file without importing pydantic (its start-up cost is a good part of a
short ``seedkit run``): it checks the same rules itself and builds plain dataclasses, and hands the
file to these models only when its own check fails, so the messages come from here. The tests keep
both in step (tests/test_config.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DatabaseSettings(_Section):
    url: str | None = None
    connect_timeout: float = Field(default=10.0, ge=0)


class MigrationSettings(_Section):
    dir: str = "migrations"
    repeatable_dir: str | None = None  # default: <dir>/repeatable
    table: str = "schema_migrations"
    lock_timeout: float = Field(default=60.0, ge=0)


class SeedSettings(_Section):
    dir: str = "seeds"
    faker_seed: int = 0
    faker_locale: str = "en_US"
    batch_size: int = Field(default=10000, ge=1)
    lock_timeout: float = Field(default=60.0, ge=0)
    cache: bool = True


class EnvSettings(_Section):
    include: list[str] = Field(default_factory=list)
    database_url: str | None = None
    protected: bool = False


class SnapshotSettings(_Section):
    """``[snapshot]``: how ``seedkit snapshot`` keys tables and masks columns (see docs/snapshot.md)."""

    salt: str | None = None  # ${VAR} allowed; the masking secret
    keys: dict[str, list[str]] = Field(default_factory=dict)  # table → natural key columns
    mask: dict[str, Any] = Field(default_factory=dict)  # "table.column" → provider | "null" | {constant = …}
    csv_rows: int = Field(default=10000, ge=0)  # --format auto: CSV from this many rows on


class Settings(_Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    migrations: MigrationSettings = Field(default_factory=MigrationSettings)
    seeds: SeedSettings = Field(default_factory=SeedSettings)
    envs: dict[str, EnvSettings] = Field(default_factory=dict)
    # [lint]: rule id = "error" | "warning" | "off" (checked against the rules by seedkit.lint)
    lint: dict[str, Literal["error", "warning", "off"]] = Field(default_factory=dict)
    snapshot: SnapshotSettings = Field(default_factory=SnapshotSettings)
