"""RELIABILITY.md and the reliability tests stay in step: every test it names exists, every reliability
test is named there, and the README links it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def reliability_tests() -> set[str]:
    names = set()
    for path in (REPO / "tests").glob("test_reliability_*.py"):
        if path.name == Path(__file__).name:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def test_every_guarantee_names_a_real_test_and_every_test_is_listed() -> None:
    text = (REPO / "RELIABILITY.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_[a-z0-9_]+)", text))
    tests = reliability_tests()
    assert named - tests == set(), "RELIABILITY.md names tests that do not exist"
    assert tests - named == set(), "reliability tests missing from RELIABILITY.md"
    for file in re.findall(r"`(tests/test_reliability_[a-z_]+\.py)`", text):
        assert (REPO / file).is_file(), file


def test_readme_links_reliability() -> None:
    assert "(RELIABILITY.md)" in (REPO / "README.md").read_text(encoding="utf-8")
