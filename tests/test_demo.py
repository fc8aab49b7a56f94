"""`make demo` (examples/demo.py): render the local template on SQLite, migrate, seed dev twice, and
fail when the second run changes anything. Run as a real process, the way `make demo` runs it."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.template import REPO, git, project_env, template_copy

DEMO = REPO / "examples" / "demo.py"


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    # A DATABASE_URL in the caller's environment must not redirect the demo (the demo drops it too).
    env = {**project_env(REPO), "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/never"}
    return subprocess.run([sys.executable, str(DEMO), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_make_demo_runs_the_quick_start(tmp_path: Path) -> None:
    dest = tmp_path / "demo"
    result = run_demo("--dest", str(dest))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    steps = ["$ seedkit migrate up", "$ seedkit run dev\n", "$ seedkit run dev --json"]
    assert [out.index(step) for step in steps] == sorted(out.index(step) for step in steps)
    assert "The second run changed nothing: 30 rows unchanged." in out
    # Every command it echoes shows its own output right after it.
    after_up = out.split("$ seedkit migrate up", 1)[1].split("$ seedkit", 1)[0]
    assert "00000000000001_initial" in after_up
    after_run = out.split("$ seedkit run dev\n", 1)[1].split("$ seedkit", 1)[0]
    assert "seed dev → sqlite:///" in after_run and "changed 3 tables: 30 inserted, 0 updated, 0 deleted" in after_run
    after_json = out.split("$ seedkit run dev --json", 1)[1].split("The second run", 1)[0]
    shown = json.loads(after_json)
    assert shown["totals"] == {"inserted": 0, "updated": 0, "unchanged": 30, "deleted": 0}
    assert "seedkit.toml" in out and "migrations/00000000000001_initial.sql" in out
    # The rendered project is there, on SQLite, seeded.
    assert "database: sqlite" in (dest / ".copier-answers.yml").read_text()
    db = sqlite3.connect(dest / "demo.db")
    try:
        assert db.execute("SELECT count(*) FROM posts").fetchone() == (25,)
        assert db.execute("SELECT name FROM roles ORDER BY name").fetchall() == [("admin",), ("member",),
                                                                                ("reader",)]
        db.execute("CREATE TABLE leftover (id integer)")
        db.commit()
    finally:
        db.close()
    # Running the demo again starts from scratch.
    again = run_demo("--dest", str(dest))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "The second run changed nothing: 30 rows unchanged." in again.stdout
    db = sqlite3.connect(dest / "demo.db")
    try:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'leftover'").fetchall() == []
    finally:
        db.close()


def test_the_demo_fails_when_the_second_run_changes_something(tmp_path: Path) -> None:
    """A fixture that is not deterministic (values from uuid4, not from `fake`) must fail the demo."""
    template = template_copy(tmp_path / "template")
    posts = template / "template" / "seeds" / "dev" / "{% if example_schema %}posts.py{% endif %}"
    text = posts.read_text()
    assert 'return {"slug": f"post-{n}"}' in text
    posts.write_text(text.replace('return {"slug": f"post-{n}"}',
                                  'return {"slug": f"post-{n}", "title": __import__("uuid").uuid4().hex}'))
    git(template, "commit", "--quiet", "--no-gpg-sign", "-am", "random titles")

    result = run_demo("--dest", str(tmp_path / "demo"), "--template", str(template))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED: the second run changed the database (0 inserted, 25 updated, 0 deleted)" in result.stderr


@pytest.mark.slow
def test_make_demo_from_nothing_prints_no_warnings(tmp_path: Path) -> None:
    """`make demo` as a newcomer runs it: a fresh .venv (pip install -e), then the demo. No setuptools
    deprecation or other warnings before the demo's own output."""
    venv = tmp_path / "venv"
    env = {k: v for k, v in project_env(REPO).items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != str(Path(sys.executable).parent))
    result = subprocess.run(["make", "demo", f"VENV={venv}", f"DEMO_ARGS=--dest {tmp_path / 'demo'}"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    noise = [line for line in (result.stdout + result.stderr).splitlines()
             if re.search(r"warn|deprecat", line, re.I) and "WARNING: Location 'file:" not in line]
    assert noise == [], "\n".join(noise)
    assert "The second run changed nothing: 30 rows unchanged." in result.stdout
