"""The Copier template (copier.yml + template/) as the template and end-to-end tests use it: copied
to a temporary git repository, rendered with Copier's Python API, and the environment to run seedkit in
a rendered project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml

import seedkit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEMPLATE_FILES = ("copier.yml", "template")

# Identity for the commits these tests make (and Copier makes in its own scratch repositories).
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "seedkit tests",
    "GIT_AUTHOR_EMAIL": "tests@seedkit.invalid",
    "GIT_COMMITTER_NAME": "seedkit tests",
    "GIT_COMMITTER_EMAIL": "tests@seedkit.invalid",
}

__all__ = ["BIN", "GIT_IDENTITY", "REPO", "files_of", "git", "load_yaml_all", "make_dotenv", "project_env", "render",
           "template_copy", "tomllib", "walk"]


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"git {' '.join(args)} failed in {cwd}:\n{result.stdout}{result.stderr}"
    return result.stdout


def template_copy(dst: Path, tag: str | None = None) -> Path:
    """A git repository holding this working tree's copier.yml and template/ (committed and tagged)."""
    dst.mkdir(parents=True)
    for name in TEMPLATE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
        else:
            shutil.copy2(src, dst / name)
    git(dst, "init", "--quiet", "--initial-branch=main")
    git(dst, "add", "--all")
    git(dst, "commit", "--quiet", "--no-gpg-sign", "-m", "template")
    git(dst, "tag", tag or f"v{seedkit.__version__}")
    return dst


def render(template: Path, dst: Path, data: dict[str, Any] | None = None, *, dotenv: bool = True,
           password: str | None = None, **kwargs: Any) -> Path:
    """``copier copy --defaults`` with ``data`` as ``-d key=value`` answers; never trusts the template.

    Then ``make .env`` (the first thing ``make install`` does), with ``DB_PASSWORD=password`` when given,
    unless ``dotenv`` is false.
    """
    with pytest.MonkeyPatch.context() as mp:
        for key, value in GIT_IDENTITY.items():
            mp.setenv(key, value)
        copier.run_copy(str(template), str(dst), data=data or {}, defaults=True, quiet=True, unsafe=False,
                        **kwargs)
    if dotenv:
        make_dotenv(dst, password)
    return dst


def make_dotenv(project: Path, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """``make .env`` in ``project``, under the usual umask; asserts it succeeded."""
    env = {k: v for k, v in os.environ.items() if k not in ("DB_PASSWORD", "MAKEFLAGS")}
    if password is not None:
        env["DB_PASSWORD"] = password
    result = subprocess.run(["make", ".env"], cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def project_env(project: Path, **extra: str) -> dict[str, str]:
    """The environment for running seedkit in a rendered project: nothing inherited that it reads."""
    env = {k: v for k, v in os.environ.items()
           if not (k.endswith("DATABASE_URL") or k.startswith(("SEEDKIT_", "POSTGRES_", "PG")))}
    env.update(extra)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def files_of(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


class _TaggedLoader(yaml.SafeLoader):
    """YAML with seedkit's tags (!ref, !env) accepted as plain values."""


_TaggedLoader.add_multi_constructor("!", lambda loader, suffix, node: f"{suffix}:{node.value!r}")


def walk(node: Any, key: Any = None) -> Iterator[tuple[Any, Any]]:
    """Every (key, scalar) pair in parsed YAML; list items carry their list's key."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, key)
    else:
        yield key, node


def load_yaml_all(path: Path) -> list[Any]:
    return list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_TaggedLoader))
