"""The Copier template (copier.yml + template/), rendered with Copier's Python API from a temporary git
copy of this repository: every combination of answers renders, parses and validates, and
`copier update` brings template changes without touching the user's work.

The helpers (``template_copy``, ``render``, ``git``) live in tests/support/template.py, shared with the
end-to-end tests.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from packaging.requirements import Requirement

import seedkit
from seedkit.config import load_config, read_dotenv
from seedkit.migrate import discover
from seedkit.migrate.split import split
from tests.support.template import (
    BIN,
    GIT_IDENTITY,
    REPO,
    files_of,
    git,
    load_yaml_all,
    render,
    template_copy,
    tomllib,
    walk,
)

COMPOSE_SCHEMA = Path(__file__).parent / "compose-spec.json"

COMBINATIONS = [
    {"database": database, "example_schema": example, "ci": ci}
    for database, example, ci in itertools.product(("postgresql", "sqlite"), (True, False),
                                                   ("github", "none"))
]


def combo_id(combo: dict[str, Any]) -> str:
    return f"{combo['database']}-{'example' if combo['example_schema'] else 'blank'}-{combo['ci']}"


def explicit_answers(combo: dict[str, Any]) -> dict[str, Any]:
    """Every question answered, none left to its default."""
    answers: dict[str, Any] = {
        **combo,
        "project_name": "Acme Shop",
        "project_slug": "acme-shop",
        "db_name": "acme",
    }
    if combo["database"] == "postgresql":
        answers.update(postgres_version=16, db_user="acme_app", db_port=55432)
    return answers


# --- copier.yml -----------------------------------------------------------------------------------

def test_copier_settings() -> None:
    conf = yaml.safe_load((REPO / "copier.yml").read_text())
    assert conf["_subdirectory"] == "template"
    assert str(conf["_min_copier_version"]) == "9.6"
    assert "_tasks" not in conf and "_migrations" not in conf, "nothing that would need --trust"
    assert conf["_message_after_copy"].strip()
    assert (REPO / "template" / "{{ _copier_conf.answers_file }}.jinja").is_file()
    questions = {k: v for k, v in conf.items() if not k.startswith("_")}
    assert {"project_name", "database", "postgres_version", "db_name", "db_user", "db_port",
            "example_schema", "ci"} <= set(questions)
    for name, question in questions.items():
        assert "default" in question, f"{name} has no default, so `copier copy --defaults` would fail"
    # Copy-only files are excluded from updates by an operation-dependent pattern.
    assert any("_copier_operation" in str(pattern) and "migrations" in str(pattern)
               for pattern in conf["_exclude"])


def test_the_seedkit_pin_is_computed_never_asked_nor_recorded() -> None:
    """`seedkit` on the public package index is another project: the template pins its own source."""
    conf = yaml.safe_load((REPO / "copier.yml").read_text())
    question = conf["seedkit_requirement"]
    assert question["when"] is False
    assert "_copier_conf.vcs_ref_hash" in question["default"] and "_src_path" in question["default"]


# --- rendering ------------------------------------------------------------------------------------

@pytest.mark.parametrize("explicit", [False, True], ids=["defaults", "explicit"])
@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_render(template_repo: Path, tmp_path: Path, combo: dict[str, Any], explicit: bool) -> None:
    answers = explicit_answers(combo) if explicit else combo
    template = template_repo
    project = render(template_repo, tmp_path / "project", answers)
    files = files_of(project)
    postgres = combo["database"] == "postgresql"
    example = combo["example_schema"]

    expected = {".copier-answers.yml", ".env", ".env.example", ".gitignore", "Makefile", "README.md",
                "pyproject.toml", "seedkit.toml", "migrations/00000000000001_initial.sql",
                "tests/test_database.py"}
    assert expected <= set(files), sorted(expected - set(files))
    assert ("docker-compose.yml" in files) == postgres
    assert (".github/workflows/ci.yml" in files) == (combo["ci"] == "github")
    for folder in ("common", "dev", "test"):
        has_examples = any(name.startswith(f"seeds/{folder}/") and not name.endswith(".gitkeep")
                           for name in files)
        assert has_examples == example, folder
        assert (f"seeds/{folder}/.gitkeep" in files) == (not example)
    if example:
        assert {"seeds/common/roles.yaml", "seeds/dev/users.yaml", "seeds/dev/posts.py",
                "seeds/test/users.yaml"} <= set(files)

    # Nothing left unrendered, in names or contents.
    for name, path in files.items():
        assert "{" not in name and not name.endswith(".jinja"), name
        text = path.read_text(encoding="utf-8")
        assert "{{" not in text and "{%" not in text and "{#" not in text, f"unrendered Jinja in {name}"

    # Every structured file parses.
    for name, path in files.items():
        if name.endswith(".toml"):
            tomllib.loads(path.read_text(encoding="utf-8"))
        elif name.endswith((".yaml", ".yml")):
            assert load_yaml_all(path), name
        elif name.endswith(".json"):
            json.loads(path.read_text(encoding="utf-8"))
        elif name.endswith(".py"):
            compile(path.read_text(encoding="utf-8"), str(path), "exec")

    # The answers file records the answers (so `copier update` can replay them) and no computed secrets.
    recorded = yaml.safe_load(files[".copier-answers.yml"].read_text())
    assert recorded["_commit"] == f"v{seedkit.__version__}"
    for key, value in answers.items():
        assert recorded[key] == value, key
    assert "db_password" not in recorded and "seedkit_requirement" not in recorded

    # pyproject: depends on seedkit from the template's own source at the rendered commit; pytest in the
    # test extra.
    pyproject = tomllib.loads(files["pyproject.toml"].read_text())
    deps = [Requirement(d) for d in pyproject["project"]["dependencies"]]
    seedkit_dep = next(d for d in deps if d.name == "seedkit")
    assert seedkit_dep.url == f"git+{template.resolve().as_uri()}@{git(template, 'rev-parse', 'HEAD').strip()}"
    assert any(Requirement(d).name == "pytest" for d in pyproject["project"]["optional-dependencies"]["test"])
    assert pyproject["project"]["name"] == recorded["project_slug"]

    # seedkit.toml is a valid configuration with the three environments.
    config = load_config(files["seedkit.toml"], environ={})
    envs = config.settings.envs
    assert set(envs) == {"dev", "test", "production"}
    assert envs["dev"].include == ["common", "dev"]
    assert envs["test"].include == ["common", "test"]
    assert envs["production"].include == ["common"]
    assert envs["production"].protected and not envs["dev"].protected and not envs["test"].protected
    assert config.database_url("dev").dialect == combo["database"]
    assert config.database_url("test").dialect == combo["database"]
    assert config.database_url("dev").raw != config.database_url("test").raw

    # .env and .env.example: same keys; .env is ignored by git and has the real password.
    env = read_dotenv(files[".env"])
    env_example = read_dotenv(files[".env.example"])
    assert set(env) == set(env_example) >= {"DATABASE_URL", "TEST_DATABASE_URL"}
    assert ".env" in files[".gitignore"].read_text().splitlines()
    if postgres:
        assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "DB_PORT"} <= set(env)
        assert env["DATABASE_URL"] == (f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}"
                                       f"@127.0.0.1:{env['DB_PORT']}/{env['POSTGRES_DB']}")
        assert re.fullmatch(r"[0-9a-f]{24}", env["POSTGRES_PASSWORD"])
        assert env["POSTGRES_PASSWORD"] not in files[".env.example"].read_text()

    # The initial migration: dbmate layout, up and down, statements valid for the chosen database.
    [migration] = discover(project / "migrations")
    assert migration.version == "00000000000001" and migration.layout == "file"
    assert migration.down is not None
    statements = split(migration.up_sql, combo["database"])
    assert bool(statements) == example
    text = migration.path.read_text()
    assert ("GENERATED BY DEFAULT AS IDENTITY" in text) == (postgres and example)
    if not postgres:  # prove it is SQLite: apply up, then down, on a real SQLite database
        db = sqlite3.connect(":memory:")
        for stmt in statements:
            db.execute(stmt.sql)
        for stmt in split(migration.down_sql or "", "sqlite"):
            db.execute(stmt.sql)
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)

    # Makefile: the documented targets exist and expand to the seedkit commands.
    makefile = files["Makefile"].read_text()
    for target in ("db-up", "db-down", "migrate", "seed", "reset", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    expected_commands = {"migrate": "seedkit migrate up", "schema": "seedkit schema", "seed": "seedkit run dev",
                         "reset": "seedkit reset dev", "test": "pytest"}
    for target, command in expected_commands.items():
        dry = subprocess.run(["make", "-n", target, "SEEDKIT=seedkit", "PYTEST=pytest"], cwd=project,
                             capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.strip() == command
    listed = subprocess.run(["make", "help"], cwd=project, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [
        "help", "install", "db-up", "db-down", *(["db-create"] if postgres else []), "migrate", "schema", "seed",
        "reset", "test"]
    dry = subprocess.run(["make", "-n", "db-up"], cwd=project, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert ("docker compose up" in dry.stdout) == postgres

    # README: the workflow and the migration rules.
    readme = files["README.md"].read_text()
    assert readme.startswith(f"# {recorded['project_name']}\n")
    for phrase in ("make db-up", "make migrate", "make seed", "make reset", "make test",
                   "Never edit a migration", "seeds/", "copier update"):
        assert phrase in readme, phrase
    # PostgreSQL's lock rules only where they apply; the path without Docker only where there is Docker.
    for phrase in ("CONCURRENTLY", "NOT VALID", "VALIDATE CONSTRAINT", "seedkit:nolint", "Without Docker",
                   "make db-create"):
        assert (phrase in readme) == postgres, phrase


def test_copier_cli_as_the_readme_shows(template_repo: Path, tmp_path: Path) -> None:
    """`copier copy --defaults -d database=sqlite SRC DST` in a real process, with the next steps shown."""
    result = subprocess.run([str(BIN / "copier"), "copy", "--defaults", "-d", "database=sqlite",
                             str(template_repo), str(tmp_path / "myapp")],
                            capture_output=True, text=True, env={**os.environ, **GIT_IDENTITY})
    assert result.returncode == 0, result.stdout + result.stderr
    shown = result.stdout + result.stderr
    for step in ("make install", "make migrate", "make seed", "make test", "git init"):
        assert step in shown, step
    assert "make db-up" not in shown, "SQLite has no server to start"
    assert yaml.safe_load((tmp_path / "myapp" / ".copier-answers.yml").read_text())["database"] == "sqlite"
    assert not (tmp_path / "myapp" / "docker-compose.yml").exists()


def test_explicit_answers_reach_the_files(template_repo: Path, tmp_path: Path) -> None:
    answers = explicit_answers({"database": "postgresql", "example_schema": True, "ci": "github"})
    project = render(template_repo, tmp_path / "p", answers)
    env = read_dotenv(project / ".env")
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"], env["DB_PORT"]) == ("acme_app", "acme", "55432")
    compose = yaml.safe_load((project / "docker-compose.yml").read_text())
    assert compose["name"] == "acme-shop"
    assert compose["services"]["db"]["image"] == "postgres:16"
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    assert workflow["jobs"]["test"]["services"]["postgres"]["image"] == "postgres:16"
    assert "acme_test" in workflow["jobs"]["test"]["env"]["TEST_DATABASE_URL"]


def test_the_slug_and_names_derive_from_the_project_name(template_repo: Path, tmp_path: Path) -> None:
    project = render(template_repo, tmp_path / "p", {"project_name": "  Acme Shop 2!  "})
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert (recorded["project_slug"], recorded["db_name"], recorded["db_user"]) == (
        "acme-shop-2", "acme_shop_2", "acme_shop_2")


@pytest.mark.parametrize("bad", [
    {"project_name": "   "},
    {"project_slug": "Bad Slug"},
    {"database": "mysql"},
    {"ci": "jenkins"},
    {"postgres_version": 12},
    {"postgres_version": 99},
    {"db_name": "1abc"},
    {"db_name": "has-dash"},
    {"db_user": "Robert'); DROP TABLE students;--"},
    {"db_port": 80},
    {"db_port": 70000},
], ids=lambda bad: "-".join(f"{k}={v}" for k, v in bad.items())[:40])
def test_invalid_answers_are_refused(template_repo: Path, tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        render(template_repo, tmp_path / "p", bad)
    assert not (tmp_path / "p" / "seedkit.toml").exists()


def test_rendering_is_deterministic(template_repo: Path, tmp_path: Path) -> None:
    """`copier update` replays renders: the same answers give the same files (but .env's password)."""
    first = files_of(render(template_repo, tmp_path / "a", {"db_port": 6543}))
    second = files_of(render(template_repo, tmp_path / "b", {"db_port": 6543}))
    assert set(first) == set(second)
    differing = [name for name in first if first[name].read_bytes() != second[name].read_bytes()]
    assert differing == [".env"]


# --- GitHub workflow and compose file -------------------------------------------------------------

def test_github_workflows_validate(template_repo: Path, tmp_path: Path) -> None:
    workflows = []
    for combo in COMBINATIONS:
        if combo["ci"] != "github":
            continue
        project = render(template_repo, tmp_path / combo_id(combo), combo)
        workflow_file = project / ".github" / "workflows" / "ci.yml"
        workflows.append(workflow_file)
        workflow = yaml.safe_load(workflow_file.read_text())
        job = workflow["jobs"]["test"]
        steps = " ; ".join(step.get("run", step.get("uses", "")) for step in job["steps"])
        # Installed and run as README.md says (make install: seedkit from the pinned source).
        for command in ("make install", "make migrate", "make seed", "seedkit run dev --check", "make test"):
            assert command in steps
        if combo["database"] == "postgresql":
            service = job["services"]["postgres"]
            assert service["image"] == "postgres:17"
            assert "pg_isready" in service["options"]
            assert job["env"]["DATABASE_URL"].startswith("postgresql://")
        else:
            assert "services" not in job
            assert job["env"]["DATABASE_URL"].startswith("sqlite:///")
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                             *map(str, workflows)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", [13, 17, 18])
def test_compose_file(template_repo: Path, tmp_path: Path, version: int) -> None:
    project = render(template_repo, tmp_path / "p", {"postgres_version": version, "db_port": 6543})
    compose_file = project / "docker-compose.yml"
    text = compose_file.read_text()
    compose = yaml.safe_load(text)
    env = read_dotenv(project / ".env")

    assert compose["name"] == "myapp"
    [(service_name, db)] = compose["services"].items()
    assert db["image"] == f"postgres:{version}", "a pinned major version"
    health = db["healthcheck"]
    command = " ".join(health["test"]) if isinstance(health["test"], list) else health["test"]
    assert "pg_isready" in command and "-h 127.0.0.1" in command
    assert "start_period" in health and health["retries"] >= 10
    # A named volume, declared at the top level, where this major keeps its data.
    [volume] = db["volumes"]
    name, mount = volume.split(":", 1)
    assert name in compose["volumes"] and not name.startswith((".", "/"))
    assert mount == ("/var/lib/postgresql" if version >= 18 else "/var/lib/postgresql/data")
    # Bound to loopback only, port from .env.
    assert db["ports"] == ["127.0.0.1:${DB_PORT:-6543}:5432"]
    # Credentials come from .env: no literal password, and every variable used is defined there.
    for key in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert db["environment"][key].startswith("${" + key + ":?"), key
    assert env["POSTGRES_PASSWORD"] not in text
    for key, value in walk(compose):
        if "PASSWORD" in str(key).upper() or "PASSWORD" in str(value).split("=", 1)[0].upper():
            assert re.fullmatch(r"(\w+=)?\$\{\w+(:\?[^}]*)?\}", str(value)), f"{key}: {value}"
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    assert used == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "DB_PORT"}
    assert used <= set(env) and used <= set(read_dotenv(project / ".env.example"))

    result = subprocess.run([str(BIN / "check-jsonschema"), "--schemafile", str(COMPOSE_SCHEMA),
                             str(compose_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- copier update --------------------------------------------------------------------------------

@pytest.fixture
def updatable(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A template at v0.0.1 and a project rendered from it, committed."""
    template = template_copy(tmp_path / "template", tag="v0.0.1")
    project = render(template, tmp_path / "project", {"database": "sqlite"})
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--no-gpg-sign", "-m", "start from the seedkit template")
    yield template, project


def update(project: Path, **kwargs: Any) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in GIT_IDENTITY.items():
            mp.setenv(key, value)
        copier.run_update(str(project), defaults=True, overwrite=True, quiet=True, unsafe=False, **kwargs)


def leftovers(project: Path) -> list[str]:
    """Conflict witnesses: .rej/.orig files or conflict markers anywhere in the project."""
    found = []
    for name, path in files_of(project).items():
        lines = path.read_text(errors="replace").splitlines()
        if name.endswith((".rej", ".orig")) or any(line.startswith(("<<<<<<<", ">>>>>>>")) for line in lines):
            found.append(name)
    return found


def test_copier_update_keeps_user_work_and_brings_template_changes(updatable: tuple[Path, Path]) -> None:
    template, project = updatable
    env_before = (project / ".env").read_text()

    # The user's work: a new migration, an edited seed, a deleted example, an edited README.
    user_migration = project / "migrations" / "20250301120000_add_comments.sql"
    user_migration.write_text("-- migrate:up\n"
                              "CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n\n"
                              "-- migrate:down\nDROP TABLE comments;\n")
    users_seed = project / "seeds" / "dev" / "users.yaml"
    users_seed.write_text(users_seed.read_text() + "  - email: carol@example.com\n    name: Carol\n"
                          "    role_id: !ref roles/reader\n")
    seeded_users = users_seed.read_text()
    (project / "seeds" / "dev" / "posts.py").unlink()
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Our notes\n\nDeploys happen on Tuesdays.\n")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--no-gpg-sign", "-m", "our work")
    initial_migration = (project / "migrations" / "00000000000001_initial.sql").read_text()

    # A newer template: a changed Makefile, and changed examples that must not be re-imposed.
    makefile = template / "template" / "Makefile.jinja"
    makefile.write_text(makefile.read_text()
                        + "\nstatus: ## show migration status\n\t$(SEEDKIT) migrate status\n")
    (template / "template" / "seeds" / "dev" / "{% if example_schema %}users.yaml{% endif %}").write_text(
        "table: users\nkey: [email]\nrows: []\n")
    migration_tpl = template / "template" / "migrations" / "00000000000001_initial.sql.jinja"
    migration_tpl.write_text(migration_tpl.read_text().replace("CREATE TABLE roles", "CREATE TABLE roles_v2"))
    readme_tpl = template / "template" / "README.md.jinja"
    readme_tpl.write_text(readme_tpl.read_text().replace("## Workflow", "## Workflow (updated)"))
    old_commit = git(template, "rev-parse", "HEAD").strip()
    assert f"@{old_commit}" in (project / "pyproject.toml").read_text()
    git(template, "add", "--all")
    git(template, "commit", "--quiet", "--no-gpg-sign", "-m", "template v0.0.2")
    git(template, "tag", "v0.0.2")
    new_commit = git(template, "rev-parse", "HEAD").strip()

    update(project, conflict="rej")

    # The seedkit pin moved to the template's new commit.
    [dep] = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    assert Requirement(dep).url == f"git+{template.resolve().as_uri()}@{new_commit}"

    assert leftovers(project) == []
    # The template change arrived, merged with the user's own README edit.
    assert "migrate status" in (project / "Makefile").read_text()
    readme_text = readme.read_text()
    assert "## Workflow (updated)" in readme_text and "Deploys happen on Tuesdays." in readme_text
    # The user's work survived; examples and migrations were not re-imposed; .env untouched.
    assert user_migration.exists()
    assert users_seed.read_text() == seeded_users
    assert not (project / "seeds" / "dev" / "posts.py").exists()
    assert (project / "migrations" / "00000000000001_initial.sql").read_text() == initial_migration
    assert (project / ".env").read_text() == env_before
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v0.0.2"
    # Git sees only the template's changes: no unmerged paths, nothing unexpected.
    status = git(project, "status", "--porcelain").splitlines()
    assert sorted(line[3:] for line in status) == [".copier-answers.yml", "Makefile", "README.md",
                                                    "pyproject.toml"]
