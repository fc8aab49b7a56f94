"""Template answers are validated or escaped wherever they land: a hostile project name renders valid
TOML, YAML, Makefile, .env and Python; validators refuse a trailing newline; the default slug derived
from any name passes its own validator; `make .env` writes .env private, with the password
percent-encoded in the URLs; the seedkit pin
follows the template's source (a folder, a git folder, a `file://` git URL)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jinja2
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2_ansible_filters import AnsibleCoreFiltersExtension
from packaging.requirements import Requirement

from seedkit.config import load_config, read_dotenv
from tests.support.template import REPO, files_of, git, load_yaml_all, render, tomllib

HOSTILE_NAME = "Robert'); \"DROP\" $HOME ${PATH} `whoami` \\n\\ #x % Ünïcødé 日本 🚀"

CONF = yaml.safe_load((REPO / "copier.yml").read_text())


def assert_every_file_parses(project: Path) -> dict[str, Path]:
    files = files_of(project)
    for name, path in files.items():
        text = path.read_text(encoding="utf-8")
        if name.endswith(".toml"):
            tomllib.loads(text)
        elif name.endswith((".yaml", ".yml")):
            load_yaml_all(path)
        elif name.endswith(".py"):
            compile(text, name, "exec")
        elif name in (".env", ".env.example"):
            read_dotenv(path)
    listed = subprocess.run(["make", "help"], cwd=project, capture_output=True, text=True)
    assert listed.returncode == 0 and "install" in listed.stdout, listed.stderr
    for target in ("install", "migrate", "seed", "test"):
        dry = subprocess.run(["make", "-n", target], cwd=project, capture_output=True, text=True)
        assert dry.returncode == 0, (target, dry.stderr)
    return files


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_a_hostile_project_name_renders_files_that_parse(template_repo: Path, tmp_path: Path,
                                                          database: str) -> None:
    project = render(template_repo, tmp_path / "p", {"project_name": HOSTILE_NAME, "database": database})
    files = assert_every_file_parses(project)
    pyproject = tomllib.loads(files["pyproject.toml"].read_text(encoding="utf-8"))
    assert pyproject["project"]["description"].startswith(HOSTILE_NAME + ":")
    assert yaml.safe_load(files[".copier-answers.yml"].read_text(encoding="utf-8"))["project_name"] == HOSTILE_NAME
    assert files["README.md"].read_text(encoding="utf-8").startswith(f"# {HOSTILE_NAME}\n")
    slug = pyproject["project"]["name"]
    assert slug == "robert-drop-home-path-whoami-n-x-n-c-d"
    config = load_config(files["seedkit.toml"], environ={})
    assert config.database_url("dev").dialect == database


def test_the_password_is_percent_encoded_in_the_urls(template_repo: Path, tmp_path: Path) -> None:
    password = "p@ss:w/rd%#?&=é"
    project = render(template_repo, tmp_path / "p", password=password)  # make .env DB_PASSWORD=…
    assert_every_file_parses(project)
    env = read_dotenv(project / ".env")
    assert env["POSTGRES_PASSWORD"] == password  # what docker compose gives the server
    config = load_config(project / "seedkit.toml", environ={})
    for name in ("dev", "test"):
        parts = urlsplit(config.database_url(name).raw)
        assert unquote(parts.password or "") == password, name
        assert (parts.hostname, parts.port) == ("127.0.0.1", 5432)
    # The generated one needs no encoding, but goes through the same path.
    default = read_dotenv(render(template_repo, tmp_path / "q", {}) / ".env")
    assert unquote(urlsplit(default["DATABASE_URL"]).password or "") == default["POSTGRES_PASSWORD"]


@pytest.mark.parametrize("bad", [
    {"project_name": "two\nlines"},
    {"project_name": "tab\there"},
    {"project_slug": "acme\n"},
    {"db_name": "acme\n"},
    {"db_user": "acme\n"},
    {"project_slug": "a" * 59},
], ids=lambda bad: "-".join(f"{k}={v!r}" for k, v in bad.items())[:40])
def test_trailing_newlines_and_unquotable_answers_are_refused(template_repo: Path, tmp_path: Path,
                                                              bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Validation error"):
        render(template_repo, tmp_path / "p", bad)
    assert not (tmp_path / "p" / "seedkit.toml").exists()


# --- .env: made by `make .env`, never by copier -----------------------------------------------------

def make_env_under_umask_022(project: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DB_PASSWORD", "MAKEFLAGS")}
    return subprocess.run(["make", ".env"], cwd=project, env={**env, **extra}, capture_output=True, text=True,
                          preexec_fn=lambda: os.umask(0o022))


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_dotenv_is_private_from_the_moment_it_exists(template_repo: Path, tmp_path: Path, database: str) -> None:
    """copier gives rendered files the checkout's mode (0644), so .env is not rendered: `make .env`
    writes it from .env.example with mode 0600 even under umask 022, once, with a fresh password."""
    project = render(template_repo, tmp_path / "p", {"database": database}, dotenv=False)
    assert not (project / ".env").exists()
    example = (project / ".env.example").read_text(encoding="utf-8")
    made = make_env_under_umask_022(project)
    assert made.returncode == 0, made.stderr
    dotenv = project / ".env"
    assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
    env, env_example = read_dotenv(dotenv), read_dotenv(project / ".env.example")
    assert set(env) == set(env_example) >= {"DATABASE_URL", "TEST_DATABASE_URL"}
    if database == "postgresql":
        password = env["POSTGRES_PASSWORD"]
        assert re.fullmatch(r"[0-9a-f]{24}", password) and password not in example
        assert unquote(urlsplit(env["DATABASE_URL"]).password or "") == password
        # Each project gets its own password.
        other = render(template_repo, tmp_path / "q", {"database": database})
        assert read_dotenv(other / ".env")["POSTGRES_PASSWORD"] != password
    # Never overwritten: a second `make .env` (or `make install`) leaves the user's file alone.
    dotenv.write_text(dotenv.read_text(encoding="utf-8") + "MINE=1\n", encoding="utf-8")
    again = make_env_under_umask_022(project)
    assert again.returncode == 0 and read_dotenv(dotenv)["MINE"] == "1"
    # `make install` makes it first, and tightens one made some other way.
    dry = subprocess.run(["make", "-n", "install"], cwd=project, capture_output=True, text=True)
    assert "chmod go-rwx .env" in dry.stdout, dry.stdout


@pytest.mark.parametrize("password", ["with space", "quote'd", "dollar$x", "back`tick", "back\\slash", "tab\tx"])
def test_an_unquotable_password_is_refused_and_nothing_written(template_repo: Path, tmp_path: Path,
                                                                password: str) -> None:
    project = render(template_repo, tmp_path / "p", dotenv=False)
    made = make_env_under_umask_022(project, DB_PASSWORD=password)
    assert made.returncode != 0
    assert "DB_PASSWORD cannot contain" in made.stderr and "Traceback" not in made.stderr
    assert not (project / ".env").exists()


# --- the default slug, from any name --------------------------------------------------------------

_JINJA = jinja2.Environment(extensions=[AnsibleCoreFiltersExtension])


def derived(project_name: str) -> tuple[str, str, str]:
    """(project_slug, db_name, the validators' complaints) as copier.yml computes them."""
    slug = _JINJA.from_string(CONF["project_slug"]["default"]).render(project_name=project_name)
    db_name = _JINJA.from_string(CONF["db_name"]["default"]).render(project_slug=slug)
    problems = (_JINJA.from_string(CONF["project_slug"]["validator"]).render(project_slug=slug)
                + _JINJA.from_string(CONF["db_name"]["validator"]).render(db_name=db_name)
                + _JINJA.from_string(CONF["db_user"]["validator"]).render(db_user=db_name))
    return slug, db_name, problems.strip()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=120).filter(lambda s: s.strip()))
def test_the_default_slug_from_any_name_passes_its_validators(name: str) -> None:
    slug, db_name, problems = derived(name)
    assert problems == "", (name, slug, db_name)


@pytest.mark.parametrize("name, slug", [("1st", "app-1st"), ("日本", "app"), ("  Acme Shop 2!  ", "acme-shop-2"),
                                        ("x" * 100, "x" * 40), ("---", "app"), ("9", "app-9")])
def test_default_slugs(name: str, slug: str) -> None:
    assert derived(name)[0] == slug


def test_a_name_starting_with_a_digit_renders(template_repo: Path, tmp_path: Path) -> None:
    """`project_name=1st` used to crash copier: its default slug failed its own validator."""
    project = render(template_repo, tmp_path / "p", {"project_name": "1st"})
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert (recorded["project_slug"], recorded["db_name"]) == ("app-1st", "app_1st")


# --- where seedkit comes from ---------------------------------------------------------------------

def seedkit_pin(project: Path) -> Requirement:
    [dep] = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    requirement = Requirement(dep)
    assert requirement.name == "seedkit"
    return requirement


def test_the_pin_follows_the_source(template_repo: Path, tmp_path: Path) -> None:
    commit = git(template_repo, "rev-parse", "HEAD").strip()
    # A git folder, by path.
    from_path = seedkit_pin(render(template_repo, tmp_path / "a", {"database": "sqlite"}))
    assert from_path.url == f"git+{template_repo.resolve().as_uri()}@{commit}"
    # Git URLs (file:// stands in for https://, which the tests cannot reach): a clone's URL as copier
    # takes it (git+file://…, or …/name.git).
    url = f"git+{template_repo.resolve().as_uri()}"
    from_url = seedkit_pin(render(url, tmp_path / "b", {"database": "sqlite"}))
    assert from_url.url == f"{url}@{commit}"
    bare = tmp_path / "clones" / "seedkit.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(template_repo), str(bare))
    from_bare = seedkit_pin(render(bare.as_uri(), tmp_path / "b2", {"database": "sqlite"}))
    assert from_bare.url == f"git+{bare.as_uri()}@{commit}"
    # A folder that is not a git repository (with a space in its name): the folder itself.
    plain = tmp_path / "plain copy" / "seedkit"
    shutil.copytree(template_repo, plain, ignore=shutil.ignore_patterns(".git"))
    from_folder = seedkit_pin(render(plain, tmp_path / "c", {"database": "sqlite"}))
    assert from_folder.url == plain.resolve().as_uri()
    assert "%20" in from_folder.url


@pytest.mark.parametrize("src, expected", [
    ("gh:acme/seedkit", "git+https://github.com/acme/seedkit@C"),
    ("https://example.com/acme/seedkit.git", "git+https://example.com/acme/seedkit.git@C"),
    ("git+https://example.com/acme/seedkit", "git+https://example.com/acme/seedkit@C"),
    ("git@github.com:acme/seedkit.git", "git+ssh://git@github.com/acme/seedkit.git@C"),
    ("ssh://git@example.com/acme/seedkit.git", "git+ssh://git@example.com/acme/seedkit.git@C"),
])
def test_the_pin_of_remote_sources(src: str, expected: str) -> None:
    """Sources the tests cannot clone: the same expression copier evaluates, with a fake commit."""
    rendered = _JINJA.from_string(CONF["seedkit_requirement"]["default"]).render(
        _copier_answers={"_src_path": src}, _copier_conf={"vcs_ref_hash": "C", "src_path": "/tmp/clone"})
    assert rendered == f"seedkit @ {expected}"
    assert Requirement(rendered).url == expected


# --- make db-up without a working Docker ----------------------------------------------------------

STUB = """#!/bin/sh
echo "$@" >> "{log}"
case "$1" in
  info) exit {info} ;;
  compose) case "$2" in version) exit {compose} ;; *) exit 0 ;; esac ;;
esac
"""


@pytest.mark.parametrize("info, compose, says", [
    (1, 0, "is installed but not running"),
    (0, 1, "does not work here: install Docker Compose"),
    (0, 0, None),
])
def test_make_db_up_says_what_to_do_without_a_working_docker(template_repo: Path, tmp_path: Path, info: int,
                                                             compose: int, says: str | None) -> None:
    project = render(template_repo, tmp_path / "p", {"database": "postgresql"})
    stub = tmp_path / "bin"
    stub.mkdir()
    log = tmp_path / "docker.log"
    (stub / "docker").write_text(STUB.format(log=log, info=info, compose=compose))
    (stub / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["make", "db-up"], cwd=project, env=env, capture_output=True, text=True)
    calls = log.read_text().splitlines()
    if says is None:
        assert result.returncode == 0, result.stderr
        assert calls[-1] == "compose up --detach --wait"
    else:
        assert result.returncode != 0
        assert says in result.stderr
        assert "make db-create SUPERUSER_URL=postgresql://" in result.stderr
        assert "compose up --detach --wait" not in calls
