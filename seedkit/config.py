"""Configuration: ``seedkit.toml`` (or ``[tool.seedkit]`` in pyproject.toml), checked against the
schema of ``seedkit/_config_schema.py`` (pydantic models, loaded only when a file breaks a rule).

Database URLs are interpolated (``${VAR}``, ``${VAR:-default}``) when they are used, so an
environment that is not run never needs its variables. A ``.env`` file next to the configuration
is read; real environment variables win over it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from ._record import dataclass
from .errors import ConfigError, Location
from .urls import DatabaseURL, parse_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILE = "seedkit.toml"


# The settings as plain dataclasses: the same fields and defaults as the pydantic models of
# seedkit/_config_schema.py, which only load when a file breaks a rule (see _settings).
@dataclass
class DatabaseSettings:
    url: str | None = None
    connect_timeout: float = 10.0


@dataclass
class MigrationSettings:
    dir: str = "migrations"
    repeatable_dir: str | None = None  # default: <dir>/repeatable
    table: str = "schema_migrations"
    lock_timeout: float = 60.0


@dataclass
class SeedSettings:
    dir: str = "seeds"
    faker_seed: int = 0
    faker_locale: str = "en_US"
    batch_size: int = 10000
    lock_timeout: float = 60.0
    cache: bool = True  # keep what YAML/JSON fixture files were read into (.seedkit/cache/fixtures)


@dataclass
class EnvSettings:
    include: list[str] = field(default_factory=list)
    database_url: str | None = None
    protected: bool = False


@dataclass
class SnapshotSettings:
    """``[snapshot]``: how ``seedkit snapshot`` keys tables and masks columns (see docs/snapshot.md)."""

    salt: str | None = None  # ${VAR} allowed; the masking secret
    keys: dict[str, list[str]] = field(default_factory=dict)  # table → natural key columns
    mask: dict[str, Any] = field(default_factory=dict)  # "table.column" → provider | "null" | {constant = …}
    csv_rows: int = 10000  # --format auto: CSV from this many rows on


@dataclass
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    migrations: MigrationSettings = field(default_factory=MigrationSettings)
    seeds: SeedSettings = field(default_factory=SeedSettings)
    envs: dict[str, EnvSettings] = field(default_factory=dict)
    # [lint]: rule id = "error" | "warning" | "off" (checked against the rules by seedkit.lint)
    lint: dict[str, str] = field(default_factory=dict)
    snapshot: SnapshotSettings = field(default_factory=SnapshotSettings)

    @classmethod
    def model_validate(cls, data: Any) -> Settings:
        """Checked as pydantic checks it (strict types, no unknown keys); a ``ValidationError`` from
        pydantic when something is wrong."""
        settings = _fast_settings(data)
        if settings is None:
            from ._config_schema import Settings as Model

            settings = _fast_settings(Model.model_validate(data).model_dump())  # raises on what is wrong
            assert settings is not None, "the configuration's check and its schema disagree"
        return settings


class _Invalid(Exception):
    """Something the fast check does not accept: pydantic says what."""


def _str(v: Any) -> str:
    if type(v) is not str:
        raise _Invalid
    return v


def _opt_str(v: Any) -> str | None:
    return None if v is None else _str(v)


def _float(v: Any, ge: float) -> float:
    if type(v) not in (int, float) or not v >= ge:  # strict: an int is a float, a bool is not; NaN fails
        raise _Invalid
    return float(v)


def _int(v: Any, ge: int | None = None) -> int:
    if type(v) is not int or (ge is not None and v < ge):
        raise _Invalid
    return v


def _bool(v: Any) -> bool:
    if type(v) is not bool:
        raise _Invalid
    return v


def _strs(v: Any) -> list[str]:
    if type(v) is not list:
        raise _Invalid
    return [_str(x) for x in v]


def _table(v: Any) -> dict[str, Any]:
    if type(v) is not dict:
        raise _Invalid
    return v


def _section(cls: type, data: Any, fields: dict[str, Any]) -> Any:
    if data is None:
        return cls()
    data = _table(data)
    if not set(data) <= set(fields):
        raise _Invalid  # an unknown key
    return cls(**{k: fields[k](v) for k, v in data.items()})


_LINT_LEVELS = ("error", "warning", "off")


def _fast_settings(data: Any) -> Settings | None:
    """``data`` (a TOML table) as Settings when it keeps every rule; None when pydantic must look."""
    try:
        data = _table(data)
        if not set(data) <= {"database", "migrations", "seeds", "envs", "lint", "snapshot"}:
            raise _Invalid
        database = _section(DatabaseSettings, data.get("database"), {
            "url": _opt_str, "connect_timeout": lambda v: _float(v, 0)})
        migrations = _section(MigrationSettings, data.get("migrations"), {
            "dir": _str, "repeatable_dir": _opt_str, "table": _str, "lock_timeout": lambda v: _float(v, 0)})
        seeds = _section(SeedSettings, data.get("seeds"), {
            "dir": _str, "faker_seed": _int, "faker_locale": _str, "batch_size": lambda v: _int(v, 1),
            "lock_timeout": lambda v: _float(v, 0), "cache": _bool})
        env_fields = {"include": _strs, "database_url": _opt_str, "protected": _bool}
        envs = {_str(k): _section(EnvSettings, _table(v), env_fields)
                for k, v in _table(data.get("envs", {})).items()}
        lint = {_str(k): v for k, v in _table(data.get("lint", {})).items()}
        if not all(type(v) is str and v in _LINT_LEVELS for v in lint.values()):
            raise _Invalid
        snapshot = _section(SnapshotSettings, data.get("snapshot"), {
            "salt": _opt_str, "keys": lambda v: {_str(k): _strs(x) for k, x in _table(v).items()},
            "mask": lambda v: {_str(k): x for k, x in _table(v).items()}, "csv_rows": lambda v: _int(v, 0)})
    except _Invalid:
        return None
    return Settings(database=database, migrations=migrations, seeds=seeds, envs=envs, lint=lint, snapshot=snapshot)


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def interpolate(value: str, variables: Mapping[str, str], *, where: str,
                location: Location | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` (the default also applies when VAR is empty, as in
    the shell); an unset or empty variable without a default is an error naming it and ``where``."""

    def sub(m: re.Match[str]) -> str:
        name, default = m["name"], m["default"]
        got = variables.get(name)
        if got not in (None, ""):
            return got  # type: ignore[return-value]
        if default is not None:
            return default
        state = "is empty" if got == "" else "is not set"
        raise ConfigError(f"environment variable {name} {state} (used by {where})", location=location,
                          hint=f"export {name}=… or add it to the .env file, or write ${{{name}:-default}}")

    return _VAR.sub(sub, value)


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    import io

    from dotenv import dotenv_values

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark would otherwise become part of the first name
    except UnicodeDecodeError as exc:
        raise ConfigError("the .env file is not valid UTF-8 text",
                          location=Location(file=str(path), line=raw[: exc.start].count(b"\n") + 1),
                          hint="save it as UTF-8") from None
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


@dataclass
class Config:
    """A loaded configuration and where it came from."""

    settings: Settings
    root: Path
    path: Path | None = None  # the file it was read from (None: defaults)
    # .env overlaid with os.environ; kept out of repr() because it holds every secret of the process
    variables: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "defaults"

    @property
    def migrations_dir(self) -> Path:
        return (self.root / self.settings.migrations.dir).resolve()

    @property
    def repeatable_dir(self) -> Path:
        """Where repeatable migrations live: ``[migrations] repeatable_dir``, else ``<dir>/repeatable``."""
        chosen = self.settings.migrations.repeatable_dir
        return (self.root / chosen).resolve() if chosen else self.migrations_dir / "repeatable"

    @property
    def seeds_dir(self) -> Path:
        return (self.root / self.settings.seeds.dir).resolve()

    @property
    def _no_project(self) -> str:
        return f"no {CONFIG_FILE} in {self.root} or its parents"

    _NO_PROJECT_HINT = (f"run seedkit inside the project (where {CONFIG_FILE} is, or below it), or pass "
                        f"--config path/to/{CONFIG_FILE}")

    def env(self, name: str) -> EnvSettings:
        try:
            return self.settings.envs[name]
        except KeyError:
            if self.path is None:
                raise ConfigError(f"{self._no_project}, so no environment {name!r} is configured",
                                  hint=self._NO_PROJECT_HINT) from None
            known = ", ".join(sorted(self.settings.envs)) or "none"
            file = self.path.name if self.path else CONFIG_FILE
            import difflib

            close = difflib.get_close_matches(name, list(self.settings.envs), n=3, cutoff=0.5)
            hint = (f"did you mean {' or '.join(map(repr, close))}?" if close
                    else f"add an [envs.{name}] table to {file}")
            raise ConfigError(f"unknown environment {name!r} (configured: {known})",
                              location=Location(file=str(self.path)) if self.path else None,
                              hint=hint) from None

    def database_url(self, env: str | None = None, override: str | None = None) -> DatabaseURL:
        """The URL to use: an explicit override, then the environment's, then ``[database] url``,
        then ``DATABASE_URL``."""
        candidates: list[tuple[str | None, str, list[str] | None]] = [(override, "--database", None)]
        if env is not None:
            candidates.append((self.env(env).database_url, f"envs.{env}.database_url in {self.source}",
                               ["envs", env, "database_url"]))
        candidates.append((self.settings.database.url, f"database.url in {self.source}", ["database", "url"]))
        candidates.append((self.variables.get("DATABASE_URL"), "DATABASE_URL", None))
        for value, where, key in candidates:
            if value:
                location = None
                if key is not None and self.path is not None:
                    location = Location(file=str(self.path), line=_line_of_key(self.path, key, self._prefix))
                return parse_url(interpolate(value, self.variables, where=where, location=location),
                                 base_dir=self.root, source=where)
        if self.path is None:
            raise ConfigError(f"no database URL is configured: {self._no_project}",
                              hint="pass --database URL or set DATABASE_URL; or r" + self._NO_PROJECT_HINT[1:])
        raise ConfigError("no database URL is configured",
                          hint="pass --database URL, set [database] url in seedkit.toml, or set DATABASE_URL")

    @property
    def _prefix(self) -> str:
        return "tool.seedkit." if self.path is not None and self.path.name == "pyproject.toml" else ""


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
        if not isinstance(data, dict):
            raise ConfigError(f"{file} has no [tool.seedkit] table", location=Location(file=str(file)),
                              hint="add a [tool.seedkit] table, or point --config at a seedkit.toml")
    settings = _fast_settings(data)
    if settings is None:  # something breaks a rule: the schema's own messages say what and where
        from pydantic import ValidationError

        try:
            settings = Settings.model_validate(data)
        except ValidationError as exc:
            raise _config_error(exc, file, prefix) from None
    return Config(settings=settings, root=root, path=file, variables=variables)


def _read_toml(file: Path) -> dict[str, Any]:
    # utf-8-sig: Windows editors start files with a byte-order mark, which is not part of the TOML
    try:
        return tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raw = file.read_bytes()
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("the file is not valid UTF-8 text", location=Location(file=str(file), line=line),
                          hint="save it as UTF-8 (TOML files must be UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+), column (\d+)", str(exc))
        loc = Location(file=str(file), line=int(m[1]) if m else None, column=int(m[2]) if m else None)
        raise ConfigError(f"invalid TOML: {exc}", location=loc) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None


_TOML_TYPES = {"str": "a string", "int": "an integer", "float": "a float", "bool": "a boolean",
               "list": "an array", "dict": "a table", "datetime": "a date-time", "date": "a date",
               "time": "a time"}


def _config_error(exc: Any, file: Path, prefix: str) -> ConfigError:
    problems: list[tuple[int, str]] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = prefix + ".".join(loc)
        line = _line_of_key(file, loc, prefix)
        at = f" (line {line})" if line else ""
        if err["type"] == "extra_forbidden":
            text = f"unknown key {key!r}{at}"
        else:
            got = _TOML_TYPES.get(type(err.get("input")).__name__) if err["type"].endswith("_type") else None
            text = f"{key}: {err['msg']}" + (f", got {got}" if got else "") + at
        problems.append((line or 1 << 30, text))
    problems.sort(key=lambda p: p[0])  # in file order; the location points at the first one
    first_line = problems[0][0] if problems and problems[0][0] != 1 << 30 else None
    message = "invalid configuration: " + "; ".join(text for _, text in problems)
    return ConfigError(message, location=Location(file=str(file), line=first_line),
                       hint="see the [database], [migrations], [seeds] and [envs.NAME] tables in the docs")


_TOML_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_TOML_DOTTED = rf"\s*{_TOML_KEY}(?:\s*\.\s*{_TOML_KEY})*\s*"
_TOML_HEADER = re.compile(rf"^\s*\[\[?({_TOML_DOTTED})\]\]?\s*(?:#.*)?$")
_TOML_ASSIGN = re.compile(rf"^({_TOML_DOTTED})=")


def _split_key(dotted: str) -> list[str]:
    return [k[1:-1] if k[:1] in "\"'" else k for k in re.findall(_TOML_KEY, dotted)]


def _line_of_key(file: Path, loc: list[str], prefix: str = "") -> int | None:
    """Best-effort line of a key (tomllib keeps no positions): scan table headers and ``key = …``
    lines, and return the one that defines the longest leading part of the key's full path."""
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    base = _split_key(prefix.rstrip("."))
    target = base + [str(p) for p in loc]
    table: list[str] = []
    best: tuple[int, int] | None = None  # (length of the matched path, line number)
    for number, text in enumerate(lines, start=1):
        header = _TOML_HEADER.match(text)
        if header:
            table = path = _split_key(header[1])
        elif assign := _TOML_ASSIGN.match(text):
            path = table + _split_key(assign[1])
        else:
            continue
        if len(base) < len(path) <= len(target) and target[:len(path)] == path and (
                best is None or len(path) > best[0]):
            best = (len(path), number)
    return best[1] if best else None
