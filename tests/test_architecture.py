"""The floor plan holds: dialect code lives only in its adapter's room (see docs/architecture.md).

The seed engine, the migration runner, reset, the safety policy and the pytest plugin talk to a
database through ``seedkit.db`` (``connect``, ``adapter``, the ``Database`` interface). These tests
read their source and fail when one of them imports a driver or an adapter's room directly, or
compares a dialect name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import seedkit

ROOT = Path(seedkit.__file__).parent
DIALECT_FREE = [*sorted((ROOT / "seed").rglob("*.py")), *sorted((ROOT / "migrate").rglob("*.py")),
                ROOT / "_recreate.py", ROOT / "_safety.py", ROOT / "pytest_plugin.py"]
DRIVERS = {"psycopg", "sqlite3", "pglast"}
ROOMS = {"seedkit.db.postgres", "seedkit.db.sqlite"}
DIALECTS = {"postgresql", "sqlite", "postgres"}
EXEMPT_DRIVERS: dict[str, set[str]] = {}


def _absolute(shown: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = ["seedkit", *Path(shown).with_suffix("").parts]
    if not shown.endswith("__init__.py"):
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def problems(source: str, shown: str) -> list[str]:
    """Every direct driver/adapter import and every dialect-name comparison in ``source``, the text of
    the module at ``shown`` (a path inside the package)."""
    tree = ast.parse(source, shown)
    exempt = EXEMPT_DRIVERS.get(shown, set())
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(shown, node)
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] in DRIVERS - exempt or any(name == r or name.startswith(r + ".") for r in ROOMS):
                found.append(f"{shown}:{node.lineno}: imports {name}")
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                if isinstance(side, ast.Constant) and side.value in DIALECTS:
                    found.append(f"{shown}:{node.lineno}: compares with the dialect name {side.value!r}")
                if isinstance(side, (ast.Set, ast.Tuple, ast.List)) and any(
                        isinstance(e, ast.Constant) and e.value in DIALECTS for e in side.elts):
                    found.append(f"{shown}:{node.lineno}: compares with dialect names")
    return found


@pytest.mark.parametrize("path", DIALECT_FREE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_dialect_branches_outside_the_adapters(path: Path) -> None:
    assert problems(path.read_text(), path.relative_to(ROOT).as_posix()) == []


def test_the_check_catches_what_it_is_meant_to_catch() -> None:
    """The checker itself: each kind of branch is reported (so a green run above means something)."""
    source = ("import psycopg\nfrom ..db.postgres import PostgresDatabase\nfrom seedkit.db import sqlite\n"
              "def f(d):\n    if d.dialect == 'postgresql':\n        return 1\n"
              "    return d.dialect in ('sqlite', 'x')\n")
    found = problems(source, "seed/probe.py")
    assert any("imports psycopg" in p for p in found)
    assert any("imports seedkit.db.postgres" in p for p in found)
    assert any("imports seedkit.db.sqlite" in p for p in found)
    assert sum("dialect name" in p for p in found) == 2


def test_every_adapter_is_registered_and_complete() -> None:
    """Each registered adapter implements the whole interface (no abstract method left)."""
    from seedkit.db import _ADAPTERS, adapter

    for dialect in _ADAPTERS:
        cls = adapter(dialect)
        assert not getattr(cls, "__abstractmethods__", None), (dialect, cls.__abstractmethods__)
        assert cls.dialect == dialect
