"""Configuration: ``seedkit.toml`` (or ``[tool.seedkit]`` in pyproject.toml), validated by pydantic.

Database URLs are interpolated (``${VAR}``, ``${VAR:-default}``) when they are used, so an
environment that is not run never needs its variables. A ``.env`` file next to the configuration
is read; real environment variables win over it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError, Location
from .urls import DatabaseURL, parse_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILE = "seedkit.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DatabaseSettings(_Section):
    url: str | None = None
    connect_timeout: float = Field(default=10.0, ge=0)


class MigrationSettings(_Section):
    dir: str = "migrations"
    table: str = "schema_migrations"
    lock_timeout: float = Field(default=60.0, ge=0)


class SeedSettings(_Section):
    dir: str = "seeds"
    faker_seed: int = 0
    faker_locale: str = "en_US"
    batch_size: int = Field(default=5000, ge=1)
    lock_timeout: float = Field(default=60.0, ge=0)


class EnvSettings(_Section):
    include: list[str] = Field(default_factory=list)
    database_url: str | None = None
    protected: bool = False


class Settings(_Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    migrations: MigrationSettings = Field(default_factory=MigrationSettings)
    seeds: SeedSettings = Field(default_factory=SeedSettings)
    envs: dict[str, EnvSettings] = Field(default_factory=dict)


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def interpolate(value: str, variables: Mapping[str, str], *, where: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable without a default is an error."""

    def sub(m: re.Match[str]) -> str:
        name, default = m["name"], m["default"]
        got = variables.get(name)
        if got not in (None, ""):
            return got  # type: ignore[return-value]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set (used by {where})",
                          hint=f"export {name}=… or add it to the .env file, or write ${{{name}:-default}}")

    return _VAR.sub(sub, value)


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@dataclass
class Config:
    """A loaded configuration and where it came from."""

    settings: Settings
    root: Path
    path: Path | None = None  # the file it was read from (None: defaults)
    variables: dict[str, str] = field(default_factory=dict)  # .env overlaid with os.environ

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "defaults"

    @property
    def migrations_dir(self) -> Path:
        return (self.root / self.settings.migrations.dir).resolve()

    @property
    def seeds_dir(self) -> Path:
        return (self.root / self.settings.seeds.dir).resolve()

    def env(self, name: str) -> EnvSettings:
        try:
            return self.settings.envs[name]
        except KeyError:
            known = ", ".join(sorted(self.settings.envs)) or "none"
            raise ConfigError(f"unknown environment {name!r} (configured: {known})",
                              location=Location(file=self.source),
                              hint=f"add an [envs.{name}] table to {self.path.name if self.path else CONFIG_FILE}"
                              ) from None

    def database_url(self, env: str | None = None, override: str | None = None) -> DatabaseURL:
        """The URL to use: an explicit override, then the environment's, then ``[database] url``,
        then ``DATABASE_URL``."""
        candidates: list[tuple[str | None, str]] = [(override, "--database")]
        if env is not None:
            candidates.append((self.env(env).database_url, f"envs.{env}.database_url in {self.source}"))
        candidates.append((self.settings.database.url, f"database.url in {self.source}"))
        candidates.append((self.variables.get("DATABASE_URL"), "DATABASE_URL"))
        for value, where in candidates:
            if value:
                return parse_url(interpolate(value, self.variables, where=where), base_dir=self.root,
                                 source=where)
        raise ConfigError("no database URL is configured",
                          hint="pass --database URL, set [database] url in seedkit.toml, or set DATABASE_URL")


def find_config(start: Path | None = None) -> Path | None:
    """``seedkit.toml`` in ``start`` or its parents; else a pyproject.toml with ``[tool.seedkit]``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "seedkit" in _read_toml(pyproject).get("tool", {}):
            return pyproject
    return None


def load_config(path: str | os.PathLike[str] | None = None, *, start: Path | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Load the configuration from ``path``, or discover it from ``start`` (default: cwd).

    With no file anywhere, the defaults apply with the current directory as the project root.
    """
    environ = os.environ if environ is None else environ
    if path is not None:
        file: Path | None = Path(path).resolve()
        if not file.is_file():  # type: ignore[union-attr]
            raise ConfigError(f"configuration file not found: {path}")
    else:
        file = find_config(start)
    root = file.parent if file else (start or Path.cwd()).resolve()
    variables = {**read_dotenv(root / ".env"), **environ}
    if file is None:
        return Config(settings=Settings(), root=root, path=None, variables=variables)
    data = _read_toml(file)
    prefix = ""
    if file.name == "pyproject.toml":
        data = data.get("tool", {}).get("seedkit")
        prefix = "tool.seedkit."
        if data is None:
            raise ConfigError(f"{file} has no [tool.seedkit] table")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, file, prefix) from None
    return Config(settings=settings, root=root, path=file, variables=variables)


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+), column (\d+)", str(exc))
        loc = Location(file=str(file), line=int(m[1]) if m else None, column=int(m[2]) if m else None)
        raise ConfigError(f"invalid TOML: {exc}", location=loc) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None


def _config_error(exc: ValidationError, file: Path, prefix: str) -> ConfigError:
    problems = []
    first_line = None
    for err in exc.errors():
        key = prefix + ".".join(str(p) for p in err["loc"])
        line = _line_of_key(file, [str(p) for p in err["loc"]], prefix)
        first_line = first_line or line
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r}" + (f" (line {line})" if line else ""))
        else:
            problems.append(f"{key}: {err['msg']}" + (f" (line {line})" if line else ""))
    message = "invalid configuration: " + "; ".join(problems)
    return ConfigError(message, location=Location(file=str(file), line=first_line),
                       hint="see the [database], [migrations], [seeds] and [envs.NAME] tables in the docs")


def _line_of_key(file: Path, loc: list[str], prefix: str) -> int | None:
    """Best-effort line of a key: TOML parsers keep no positions, so find the table then the key."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    *tables, key = loc if loc else [""]
    header = prefix + ".".join(tables)
    start = 0
    if tables:
        pat = re.compile(r"^\s*\[\s*" + re.escape(header).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
        for i, text in enumerate(lines):
            if pat.match(text):
                start = i + 1
                break
        else:
            return None
    key_pat = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
    for i in range(start, len(lines)):
        if i > start and lines[i].lstrip().startswith("[") and tables:
            break
        if key_pat.match(lines[i]):
            return i + 1
    return start or None
