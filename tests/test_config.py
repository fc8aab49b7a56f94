"""Configuration: discovery, validation with located errors, interpolation, .env, environments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seedkit.config import Config, ConfigError, find_config, interpolate, load_config

FULL = """\
[database]
url = "${DATABASE_URL}"
connect_timeout = 0.5

[migrations]
dir = "db/migrations"
table = "history"

[seeds]
dir = "db/seeds"
faker_seed = 1234
faker_locale = "de_DE"

[envs.dev]
include = ["common", "dev"]

[envs.test]
include = ["common", "test"]
database_url = "${TEST_DATABASE_URL}"

[envs.production]
include = ["common"]
protected = true
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "TEST_DATABASE_URL", "SEEDKIT_X"):
        monkeypatch.delenv(name, raising=False)


# --- discovery ------------------------------------------------------------------------------------

def test_found_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "seedkit.toml", FULL)
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.path == cfg.resolve()
    assert config.root == tmp_path.resolve()
    assert config.settings.seeds.faker_seed == 1234


def test_found_in_a_parent_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "seedkit.toml", FULL)
    deep = tmp_path / "src" / "app" / "models"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_config() == cfg.resolve()
    config = load_config()
    assert config.root == tmp_path.resolve()
    # folders in the configuration are relative to the project root, not to the working directory
    assert config.migrations_dir == (tmp_path / "db" / "migrations").resolve()
    assert config.seeds_dir == (tmp_path / "db" / "seeds").resolve()


def test_nearest_configuration_wins(tmp_path: Path) -> None:
    write(tmp_path / "seedkit.toml", FULL)
    inner = write(tmp_path / "sub" / "seedkit.toml", "[seeds]\nfaker_seed = 7\n")
    assert load_config(start=tmp_path / "sub").path == inner.resolve()
    assert load_config(start=tmp_path / "sub").settings.seeds.faker_seed == 7


def test_explicit_path_overrides_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "seedkit.toml", FULL)
    other = write(tmp_path / "elsewhere" / "custom.toml", "[seeds]\nfaker_seed = 99\n")
    monkeypatch.chdir(tmp_path)
    config = load_config("elsewhere/custom.toml")  # relative to the working directory
    assert config.path == other.resolve()
    assert config.root == other.parent.resolve()
    assert config.settings.seeds.faker_seed == 99


def test_explicit_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found: .*nope.toml"):
        load_config(tmp_path / "nope.toml")


def test_pyproject_tool_seedkit(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "app"\n\n[tool.seedkit.seeds]\nfaker_seed = 5\n\n'
          '[tool.seedkit.envs.dev]\ninclude = ["common"]\n')
    (tmp_path / "pkg").mkdir()
    config = load_config(start=tmp_path / "pkg")
    assert config.path == (tmp_path / "pyproject.toml").resolve()
    assert config.settings.seeds.faker_seed == 5
    assert config.env("dev").include == ["common"]


def test_pyproject_without_tool_seedkit_is_skipped(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seedkit.toml", FULL)
    write(tmp_path / "sub" / "pyproject.toml", '[project]\nname = "app"\n[tool.ruff]\nline-length = 100\n')
    assert load_config(start=tmp_path / "sub").path == cfg.resolve()


def test_seedkit_toml_wins_over_pyproject_in_the_same_folder(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.seedkit.seeds]\nfaker_seed = 1\n")
    cfg = write(tmp_path / "seedkit.toml", "[seeds]\nfaker_seed = 2\n")
    config = load_config(start=tmp_path)
    assert config.path == cfg.resolve() and config.settings.seeds.faker_seed == 2


def test_pyproject_in_a_nearer_folder_wins_over_seedkit_toml_further_up(tmp_path: Path) -> None:
    write(tmp_path / "seedkit.toml", "[seeds]\nfaker_seed = 2\n")
    near = write(tmp_path / "sub" / "pyproject.toml", "[tool.seedkit.seeds]\nfaker_seed = 3\n")
    assert load_config(start=tmp_path / "sub").path == near.resolve()


def test_explicit_pyproject_needs_the_table(tmp_path: Path) -> None:
    py = write(tmp_path / "pyproject.toml", '[project]\nname = "app"\n')
    with pytest.raises(ConfigError, match=r"has no \[tool.seedkit\] table"):
        load_config(py)


def test_no_configuration_anywhere_gives_defaults(tmp_path: Path) -> None:
    config = load_config(start=tmp_path)
    assert config.path is None and config.source == "defaults"
    assert config.root == tmp_path.resolve()
    assert config.settings.migrations.dir == "migrations"
    assert config.settings.migrations.table == "schema_migrations"
    assert config.settings.seeds.dir == "seeds"
    assert config.settings.envs == {}


def test_full_example_from_the_spec(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "seedkit.toml", FULL))
    s = config.settings
    assert s.database.url == "${DATABASE_URL}" and s.database.connect_timeout == 0.5
    assert (s.migrations.dir, s.migrations.table) == ("db/migrations", "history")
    assert (s.seeds.dir, s.seeds.faker_seed, s.seeds.faker_locale) == ("db/seeds", 1234, "de_DE")
    assert config.env("dev").include == ["common", "dev"]
    assert config.env("dev").protected is False and config.env("dev").database_url is None
    assert config.env("test").database_url == "${TEST_DATABASE_URL}"
    assert config.env("production").protected is True


# --- validation -----------------------------------------------------------------------------------

def test_unknown_key_names_key_file_and_line(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seedkit.toml", '[database]\nurl = "sqlite:///a.db"\n\n[seeds]\nfaker_sed = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    err = info.value
    assert "unknown key 'seeds.faker_sed'" in err.message
    assert err.location is not None
    assert err.location.file == str(cfg.resolve()) and err.location.line == 5
    assert str(err).startswith(f"{cfg.resolve()}:5: ")
    assert err.exit_code == 2


def test_unknown_table_is_located_at_its_header(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seedkit.toml", '# settings\n[database]\nurl = "x"\n\n[databse]\nurl = "y"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "unknown key 'databse'" in str(info.value)
    assert info.value.location.line == 5


def test_unknown_key_in_an_environment(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seedkit.toml", '[envs.dev]\ninclude = ["a"]\n\n[envs.test]\nincludes = ["b"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "unknown key 'envs.test.includes' (line 5)" in str(info.value)
    assert info.value.location.line == 5


def test_unknown_key_in_pyproject_is_located_in_tool_seedkit(tmp_path: Path) -> None:
    py = write(tmp_path / "pyproject.toml",
               '[tool.other]\nfoo = 1\n\n[tool.seedkit]\nfoo = 2\n')
    with pytest.raises(ConfigError) as info:
        load_config(py)
    assert "unknown key 'tool.seedkit.foo' (line 5)" in str(info.value)
    assert info.value.location.file == str(py.resolve())


@pytest.mark.parametrize(("toml", "key", "line", "words"), [
    ('[seeds]\nfaker_seed = "1234"\n', "seeds.faker_seed", 2, "valid integer, got a string"),
    ('[seeds]\nbatch_size = 0\n', "seeds.batch_size", 2, "greater than or equal to 1"),
    ('[database]\nconnect_timeout = "5"\n', "database.connect_timeout", 2, "valid number"),
    ('[database]\nurl = 5\n', "database.url", 2, "valid string"),
    ('\n[envs.dev]\ninclude = "common"\n', "envs.dev.include", 3, "valid list, got a string"),
    ('[envs.dev]\ninclude = ["common", 3]\n', "envs.dev.include.1", 2, "valid string, got an integer"),
    ('[envs.prod]\ninclude = []\nprotected = "yes"\n', "envs.prod.protected", 3, "valid boolean"),
    ('[envs]\ndev = 1\n', "envs.dev", 2, "valid dictionary"),
    ('seeds = "x"\n', "seeds", 1, "got a string"),
])
def test_wrong_types_name_key_file_and_line(tmp_path: Path, toml: str, key: str, line: int,
                                             words: str) -> None:
    cfg = write(tmp_path / "seedkit.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    err = info.value
    assert f"{key}: " in err.message and words in err.message, err.message
    assert err.location.file == str(cfg.resolve()) and err.location.line == line
    assert err.hint


def test_several_problems_are_reported_together_in_file_order(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seedkit.toml",
                '[seeds]\nfaker_seed = "x"\n[extra]\na = 1\n[envs.dev]\nnope = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = info.value.message
    assert message.index("seeds.faker_seed") < message.index("'extra'") < message.index("'envs.dev.nope'")
    assert info.value.location.line == 2


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seedkit.toml", '[database]\nurl = "x"\n\nthis is not toml\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "invalid TOML" in info.value.message
    assert info.value.location.file == str(cfg.resolve())
    assert info.value.location.line == 4
    assert str(info.value).startswith(f"{cfg.resolve()}:4:")


def test_invalid_toml_in_a_discovered_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.seedkit\n")
    with pytest.raises(ConfigError) as info:
        load_config(start=tmp_path)
    assert info.value.location.file == str((tmp_path / "pyproject.toml").resolve())
    assert info.value.location.line == 1


# --- interpolation --------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("${A}", "alpha"),
    ("x-${A}-${B}-y", "x-alpha-beta-y"),
    ("${MISSING:-fallback}", "fallback"),
    ("${A:-fallback}", "alpha"),
    ("${EMPTY:-fallback}", "fallback"),  # as in the shell, an empty variable takes the default
    ("${MISSING:-}", ""),
    ("postgresql://u@h/${MISSING:-app}_dev", "postgresql://u@h/app_dev"),
    ("${MISSING:-sqlite:///a.db}", "sqlite:///a.db"),
    ("no variables $A or {A}", "no variables $A or {A}"),
])
def test_interpolate(value: str, expected: str) -> None:
    assert interpolate(value, {"A": "alpha", "B": "beta", "EMPTY": ""}, where="here") == expected


def test_interpolate_missing_variable_names_it_and_where() -> None:
    with pytest.raises(ConfigError) as info:
        interpolate("postgresql://${DB_USER}@h/db", {}, where="database.url in seedkit.toml")
    err = info.value
    assert "DB_USER is not set" in err.message and "database.url in seedkit.toml" in err.message
    assert "${DB_USER:-default}" in err.hint and ".env" in err.hint


def test_interpolate_empty_variable_says_empty() -> None:
    with pytest.raises(ConfigError, match="DB_USER is empty"):
        interpolate("${DB_USER}", {"DB_USER": ""}, where="x")


def test_database_url_interpolated_from_environment(tmp_path: Path, no_env: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "seedkit.toml", '[database]\nurl = "sqlite:///${SEEDKIT_X:-default}.db"\n')
    assert load_config(cfg).database_url().path == (tmp_path / "default.db").resolve()
    monkeypatch.setenv("SEEDKIT_X", "fromenv")
    assert load_config(cfg).database_url().path == (tmp_path / "fromenv.db").resolve()


def test_missing_variable_in_config_is_located(tmp_path: Path, no_env: None) -> None:
    cfg = write(tmp_path / "seedkit.toml", FULL)
    config = load_config(cfg)
    with pytest.raises(ConfigError) as info:
        config.database_url("test")
    err = info.value
    assert "TEST_DATABASE_URL is not set" in err.message
    assert f"envs.test.database_url in {cfg.resolve()}" in err.message
    assert err.location.file == str(cfg.resolve()) and err.location.line == 19
    with pytest.raises(ConfigError) as info:
        config.database_url("dev")  # falls back to [database] url
    assert "DATABASE_URL is not set" in info.value.message and info.value.location.line == 2


def test_unused_environments_need_no_variables(tmp_path: Path, no_env: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///dev.db")
    config = load_config(write(tmp_path / "seedkit.toml", FULL))
    assert config.database_url("dev").path == (tmp_path / "dev.db").resolve()


# --- .env -----------------------------------------------------------------------------------------

def test_dotenv_next_to_the_config_is_read(tmp_path: Path, no_env: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "seedkit.toml", FULL)
    write(tmp_path / ".env", "# local settings\nDATABASE_URL=sqlite:///from_dotenv.db\n"
          "export TEST_DATABASE_URL='sqlite:///test_from_dotenv.db'\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)  # .env belongs to the project root, not to the working directory
    config = load_config()
    assert config.path == cfg.resolve()
    assert config.database_url().path == (tmp_path / "from_dotenv.db").resolve()
    assert config.database_url("test").path == (tmp_path / "test_from_dotenv.db").resolve()
    assert "DATABASE_URL" not in os.environ  # read, not exported into the process


def test_real_environment_wins_over_dotenv(tmp_path: Path, no_env: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "seedkit.toml", FULL)
    write(tmp_path / ".env", "DATABASE_URL=sqlite:///from_dotenv.db\n")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///from_env.db")
    assert load_config(cfg).database_url().path == (tmp_path / "from_env.db").resolve()


def test_dotenv_without_config_file(tmp_path: Path, no_env: None) -> None:
    write(tmp_path / ".env", "DATABASE_URL=sqlite:///only_env.db\n")
    config = load_config(start=tmp_path)
    assert config.path is None
    assert config.database_url().path == (tmp_path / "only_env.db").resolve()


def test_explicit_environ_mapping(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seedkit.toml", '[database]\nurl = "${U}"\n')
    write(tmp_path / ".env", "U=sqlite:///dotenv.db\n")
    assert load_config(cfg, environ={"U": "sqlite:///mapped.db"}).database_url().path.name == "mapped.db"
    assert load_config(cfg, environ={}).database_url().path.name == "dotenv.db"


def test_variables_are_not_in_the_repr(tmp_path: Path) -> None:
    config = load_config(start=tmp_path, environ={"SECRET_TOKEN": "hunter2-secret"})
    assert "hunter2-secret" not in repr(config)


# --- environments and URLs ------------------------------------------------------------------------

def test_database_url_precedence(tmp_path: Path, no_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "seedkit.toml",
                '[database]\nurl = "sqlite:///main.db"\n[envs.test]\ndatabase_url = "sqlite:///test.db"\n'
                '[envs.dev]\ninclude = ["dev"]\n')
    monkeypatch.setenv("DATABASE_URL", "sqlite:///env.db")
    config = load_config(cfg)
    assert config.database_url().path.name == "main.db"
    assert config.database_url("dev").path.name == "main.db"
    assert config.database_url("test").path.name == "test.db"
    assert config.database_url("test", "sqlite:///override.db").path.name == "override.db"
    bare = load_config(write(tmp_path / "bare" / "seedkit.toml", "[seeds]\n"))
    assert bare.database_url().path.name == "env.db"


def test_no_database_url_at_all(tmp_path: Path, no_env: None) -> None:
    with pytest.raises(ConfigError, match="no database URL is configured") as info:
        load_config(start=tmp_path).database_url()
    assert "--database" in info.value.hint
    assert f"no seedkit.toml in {tmp_path.resolve()} or its parents" in info.value.message


def test_unknown_environment(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seedkit.toml", FULL)
    config = load_config(cfg)
    with pytest.raises(ConfigError) as info:
        config.env("staging")
    err = info.value
    assert "unknown environment 'staging'" in err.message
    assert "dev, production, test" in err.message
    assert err.location.file == str(cfg.resolve())
    assert "[envs.staging]" in err.hint
    with pytest.raises(ConfigError, match="unknown environment 'staging'"):
        config.database_url("staging", "sqlite:///x.db")


def test_unknown_environment_without_a_config_file(tmp_path: Path) -> None:
    start = tmp_path / "somewhere"
    start.mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(start=start).env("dev")
    assert info.value.message == f"no seedkit.toml in {start.resolve()} or its parents, so no environment 'dev' " \
                                 "is configured"
    assert info.value.location is None
    assert "--config" in info.value.hint and info.value.exit_code == 2


def test_sqlite_relative_paths_resolve_against_the_project_root(tmp_path: Path, no_env: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "proj" / "seedkit.toml", '[database]\nurl = "sqlite:///var/app.db"\n'
          '[envs.test]\ndatabase_url = "sqlite:///test.db"\n')
    work = tmp_path / "proj" / "src" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    config = load_config()
    assert config.database_url().path == (tmp_path / "proj" / "var" / "app.db").resolve()
    assert config.database_url("test").path == (tmp_path / "proj" / "test.db").resolve()
    absolute = config.database_url(override=f"sqlite:///{tmp_path}/abs.db")
    assert absolute.path == (tmp_path / "abs.db").resolve()


def test_postgres_url_from_config(tmp_path: Path, no_env: None) -> None:
    cfg = write(tmp_path / "seedkit.toml", '[database]\nurl = "postgres://app:${PW:-pw}@localhost:5432/app"\n')
    url = load_config(cfg).database_url()
    assert url.dialect == "postgresql" and url.database == "app"
    assert url.raw == "postgresql://app:pw@localhost:5432/app"


def test_config_dataclass_is_usable_directly(tmp_path: Path) -> None:
    from seedkit.config import Settings

    config = Config(settings=Settings(), root=tmp_path)
    assert config.source == "defaults"
    assert config.migrations_dir == (tmp_path / "migrations").resolve()


# -- the fast check and the schema agree ------------------------------------------------------------
CONFIG_SHAPES = [
    {},
    {"database": {"url": "postgresql:///x", "connect_timeout": 3}},
    {"database": {"connect_timeout": 2.5}, "migrations": {"dir": "db", "table": "t", "lock_timeout": 0}},
    {"migrations": {"repeatable_dir": "db/repeatable"}},
    {"migrations": {"repeatable_dir": 1}},
    {"seeds": {"dir": "s", "faker_seed": 7, "faker_locale": "de_DE", "batch_size": 1, "lock_timeout": 1.5}},
    {"envs": {"dev": {"include": ["a", "b"]}, "prod": {"database_url": "${X}", "protected": True}}},
    {"lint": {"no-such-rule": "off", "other": "warning"}},
    {"snapshot": {"salt": "s", "keys": {"users": ["email"]}, "mask": {"u.e": "email", "u.n": {"constant": ""}},
                  "csv_rows": 0}},
    {"database": {"connect_timeout": float("inf")}},
    # each of these breaks a rule
    {"database": {"connect_timeout": -1}},
    {"database": {"connect_timeout": float("nan")}},
    {"database": {"connect_timeout": True}},
    {"database": {"connect_timeout": "3"}},
    {"database": {"url": 5}},
    {"database": {"nope": 1}},
    {"nope": {}},
    {"database": "x"},
    {"migrations": {"lock_timeout": -0.5}},
    {"seeds": {"faker_seed": True}},
    {"seeds": {"faker_seed": 1.0}},
    {"seeds": {"batch_size": 0}},
    {"envs": {"dev": {"include": "a"}}},
    {"envs": {"dev": {"include": [1]}}},
    {"envs": {"dev": {"protected": 1}}},
    {"envs": {"dev": {"extra": 1}}},
    {"envs": {"dev": "x"}},
    {"envs": []},
    {"lint": {"rule": "fatal"}},
    {"lint": {"rule": 1}},
    {"snapshot": {"keys": {"users": "email"}}},
    {"snapshot": {"keys": {"users": [1]}}},
    {"snapshot": {"csv_rows": -1}},
    {"snapshot": {"mask": []}},
    {"snapshot": {"salt": 1}},
]


@pytest.mark.parametrize("data", CONFIG_SHAPES, ids=lambda d: repr(d)[:60])
def test_the_fast_check_and_the_schema_agree(data: dict) -> None:
    """A valid file is read without pydantic (seedkit.config checks the rules itself); the schema in
    seedkit/_config_schema.py decides the rest. Both must accept and reject the same files, with the
    same values."""
    import dataclasses

    from pydantic import ValidationError

    from seedkit import _config_schema
    from seedkit.config import _fast_settings

    fast = _fast_settings(data)
    try:
        model = _config_schema.Settings.model_validate(data)
    except ValidationError:
        assert fast is None, f"accepted what the schema rejects: {data}"
        return
    assert fast is not None, f"sent to the schema what it accepts: {data}"
    assert dataclasses.asdict(fast) == model.model_dump()


def test_the_dataclasses_have_the_schema_fields_and_defaults() -> None:
    import dataclasses

    from seedkit import _config_schema, config

    for name in ("DatabaseSettings", "MigrationSettings", "SeedSettings", "EnvSettings", "SnapshotSettings",
                 "Settings"):
        model, plain = getattr(_config_schema, name), getattr(config, name)
        assert [f.name for f in dataclasses.fields(plain)] == list(model.model_fields), name
        assert dataclasses.asdict(plain()) == model().model_dump(), name


def test_a_valid_configuration_loads_without_pydantic(tmp_path: Path) -> None:
    """`seedkit run` on a valid project never imports pydantic for its configuration."""
    (tmp_path / "seedkit.toml").write_text('[seeds]\nfaker_seed = 3\n[envs.dev]\ninclude = ["common"]\n'
                                           '[database]\nconnect_timeout = 5\n', encoding="utf-8")
    code = ("import sys; from seedkit.config import load_config; c = load_config(); "
            "assert c.settings.seeds.faker_seed == 3 and c.settings.database.connect_timeout == 5.0; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
