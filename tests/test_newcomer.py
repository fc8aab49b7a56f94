"""The newcomer's journey, on a machine that has never seen seedkit: `copier copy` from the template's git
source, then the rendered README's commands in order, in real processes, with the project's own fresh
.venv (`make install` installs seedkit from the source pinned in pyproject.toml — not from the package
index, where the name belongs to another project). It ends with the project's own tests passing.

PostgreSQL: Docker is not available to the suite, so the journey takes the README's "Without Docker"
path: `make db-up` must say what to do instead, and `make db-create SUPERUSER_URL=…` (the suite's own
server) creates the role and databases from .env. SQLite: the README's workflow as it stands.

Slow (two `pip install`s; pip's cache makes reruns faster). Nothing here is skipped in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

import seedkit
from tests.support.template import GIT_IDENTITY, REPO, git, render

pytestmark = pytest.mark.slow


def full_source(dst: Path) -> Path:
    """This working tree as a fresh git repository (uncommitted changes included), tagged."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file() and "__pycache__" not in src.parts:
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    git(dst, "init", "--quiet", "--initial-branch=main")
    git(dst, "add", "--all")
    git(dst, "commit", "--quiet", "--no-gpg-sign", "-m", "seedkit")
    git(dst, "tag", f"v{seedkit.__version__}")
    return dst


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return full_source(tmp_path_factory.mktemp("src") / "seedkit")


def clean_env(**extra: str) -> dict[str, str]:
    """A newcomer's shell: no seedkit settings, no virtual environment, not the suite's own tools."""
    outer_bin = str(Path(os.sys.executable).parent)
    env = {k: v for k, v in os.environ.items()
           if not (k.endswith("DATABASE_URL") or k.startswith(("SEEDKIT_", "POSTGRES_", "PG", "PYTEST_", "COV_"))
                   or k in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != outer_bin)
    env.update(GIT_IDENTITY)
    env.update(extra)
    return env


def console_blocks(readme: str, heading: str) -> list[list[str]]:
    """The commands of each ```console block in the section under ``heading`` (comments stripped)."""
    section = readme.split(heading + "\n", 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
    blocks = re.findall(r"```console\n(.*?)```", section, re.S)
    return [[line.split(" #", 1)[0].strip() for line in block.splitlines() if line.strip()] for block in blocks]


def sh(project: Path, command: str, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, shell=True, cwd=project, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def install_and_check(project: Path, env: dict[str, str], source: Path) -> None:
    result = sh(project, "make install", env)
    assert "arning" not in result.stderr.replace("WARNING: Location", ""), result.stderr  # no deprecations
    # seedkit came from the pinned source, not from the package index.
    shown = subprocess.run([str(project / ".venv/bin/python"), "-m", "pip", "show", "seedkit"], capture_output=True,
                           text=True, env=env)
    assert f"Version: {seedkit.__version__}" in shown.stdout, shown.stdout
    direct = next((project / ".venv/lib").glob("python3.*/site-packages/seedkit-*.dist-info/direct_url.json"))
    assert source.name in direct.read_text() and git(source, "rev-parse", "HEAD").strip() in direct.read_text()
    # .env holds the password: readable by its owner alone.
    assert stat.S_IMODE((project / ".env").stat().st_mode) == 0o600


def run_other_commands(project: Path, readme: str, env: dict[str, str]) -> None:
    """README's "Everyday commands", with the virtual environment active."""
    [commands] = console_blocks(readme, "## Everyday commands")
    active = {**env, "PATH": f"{project / '.venv/bin'}{os.pathsep}{env['PATH']}", "VIRTUAL_ENV": str(project / ".venv")}
    for command in commands:
        sh(project, command, active)
    assert any(p.name.endswith("_add_comments.sql") for p in (project / "migrations").iterdir())


@pytest.mark.postgres
def test_a_postgresql_project_without_docker(source: Path, tmp_path: Path, pg_server: str) -> None:
    server = urlsplit(pg_server)
    suffix = uuid.uuid4().hex[:8]
    bare = tmp_path / "remote" / "seedkit.git"  # stands in for https://…/seedkit.git
    git(tmp_path, "clone", "--quiet", "--bare", str(source), str(bare))
    project = render(bare.as_uri(), tmp_path / "myapp", {
        "database": "postgresql", "db_port": server.port or 5432, "db_name": f"newcomer_{suffix}",
        "db_user": f"newcomer_{suffix}"})
    readme = (project / "README.md").read_text()
    env = clean_env()
    user = f"newcomer_{suffix}"
    try:
        [workflow] = console_blocks(readme, "## Workflow")
        assert workflow[:2] == ["make install", "make db-up"]
        [without_docker] = console_blocks(readme, "### Without Docker")
        assert len([c for c in without_docker if c not in workflow]) <= 2, "at most 2 commands more than with Docker"

        # `make db-up` where Docker is missing, and where it is installed but not running.
        missing = subprocess.run(["make", "db-up", "COMPOSE=no-such-docker compose"], cwd=project, env=env,
                                 capture_output=True, text=True)
        assert missing.returncode != 0
        assert "no-such-docker is not installed" in missing.stderr and "make db-create SUPERUSER_URL=" in missing.stderr
        stub = tmp_path / "stub-bin"
        stub.mkdir()
        (stub / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
        (stub / "docker").chmod(0o755)
        stopped = subprocess.run(["make", "db-up"], cwd=project, capture_output=True, text=True,
                                 env={**env, "PATH": f"{stub}{os.pathsep}{env['PATH']}"})
        assert stopped.returncode != 0
        assert "installed but not running" in stopped.stderr and "make db-create" in stopped.stderr

        # The README's path without Docker, in order; SUPERUSER_URL is the suite's server.
        for command in without_docker:
            if command.startswith("make db-create"):
                assert "SUPERUSER_URL=postgresql://postgres@127.0.0.1:5432/postgres" in command
                created = sh(project, f"make db-create SUPERUSER_URL='{pg_server}'", env)
                assert f"created role {user}" in created.stdout
                assert f"created database newcomer_{suffix}" in created.stdout
                assert server.password is None or server.password not in created.stdout + created.stderr
                again = sh(project, f"make db-create SUPERUSER_URL='{pg_server}'", env)
                assert "already exists" in again.stdout
            elif command == "make install":
                install_and_check(project, env, bare)
            else:
                result = sh(project, command, env)
                if command == "make test":
                    assert re.search(r"\b4 passed\b", result.stdout), result.stdout
                    assert " failed" not in result.stdout and " error" not in result.stdout
        # The role may create databases (the test databases above) and owns its own.
        with psycopg.connect(pg_server) as admin:
            assert admin.execute("SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = %s",
                                 [user]).fetchone() == (True, False)
        run_other_commands(project, readme, env)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            for (name,) in admin.execute("SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                                         "WHERE r.rolname = %s", [user]).fetchall():
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))


def test_a_sqlite_project(source: Path, tmp_path: Path) -> None:
    """Rendered from a local path; its README's workflow in order, as written."""
    project = render(source, tmp_path / "myapp", {"database": "sqlite"})
    readme = (project / "README.md").read_text()
    env = clean_env()
    [workflow] = console_blocks(readme, "## Workflow")
    assert workflow[0] == "make install" and "make test" in workflow
    for command in workflow:
        if command == "make install":
            install_and_check(project, env, source)
            continue
        result = sh(project, command, env)
        if command == "make test":
            assert re.search(r"\b4 passed\b", result.stdout), result.stdout
    assert (project / "myapp.db").is_file()
    run_other_commands(project, readme, env)
