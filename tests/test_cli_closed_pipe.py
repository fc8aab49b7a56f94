"""A reader that leaves early (``seedkit migrate status | head -1``): found while reading supabase/auth's
70-migration history page by page. seedkit printed "error: unexpected BrokenPipeError … this is a bug in
seedkit" and exited 1, and an ``up`` whose log reader went away stopped after the migration it was
printing. What a command prints is only dropped; what it does, and its exit code, stay its own."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import Project
from tests.support.processes import process_env


def closed_stdout(project: Project, *args: str, fast: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``seedkit ARGS`` with its stdout a pipe whose reading end is closed before it writes."""
    env = process_env(None if fast else {"SEEDKIT_FAST_CLI": "0"})
    proc = subprocess.Popen(project.command(*args), cwd=project.root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, "", stderr)


@pytest.fixture
def project(tmp_path: Path, sqlite_url: str) -> Project:
    p = Project.with_migrations(tmp_path, sqlite_url, url_variable="APP_DATABASE_URL")
    for n in range(1, 4):
        p.single(f"00{n}", f"t{n}", f"CREATE TABLE t{n} (x integer);")
    return p


@pytest.mark.parametrize("fast", [True, False])
def test_up_with_its_reader_gone_applies_everything_and_says_nothing(project: Project, fast: bool) -> None:
    r = closed_stdout(project, "migrate", "up", fast=fast)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    status = project.migrate("status", "--exit-code")
    assert status.returncode == 0 and "3 applied" in status.stdout, status.stdout


@pytest.mark.parametrize("args", [("migrate", "status"), ("migrate", "status", "--exit-code"),
                                  ("migrate", "status", "--json"), ("migrate", "lint"), ("info",)])
def test_a_report_with_its_reader_gone_keeps_its_exit_code(project: Project, args: tuple[str, ...]) -> None:
    assert project.migrate("up", "--to", "001").returncode == 0
    expected = project.cli(*args).returncode  # 3 for status --exit-code: two are pending
    for fast in (True, False):
        r = closed_stdout(project, *args, fast=fast)
        assert (r.returncode, r.stderr) == (expected, ""), (fast, r.stderr)


@pytest.mark.postgres
def test_lint_diff_with_its_reader_gone_keeps_its_exit_code(tmp_path: Path, pg_url: str) -> None:
    """``seedkit migrate lint --diff | head`` writes the diff itself, not through the output path."""
    p = Project.with_migrations(tmp_path, pg_url, url_variable="APP_DATABASE_URL")
    p.single("001", "t", "CREATE TABLE t (x integer);")
    p.single("002", "t_x", "CREATE INDEX t_x ON t (x);")
    diff = p.migrate("lint", "--diff")
    assert diff.returncode == 3 and "CONCURRENTLY" in diff.stdout, diff.stdout
    r = closed_stdout(p, "migrate", "lint", "--diff")
    assert (r.returncode, r.stderr) == (3, "")
    assert "CONCURRENTLY" not in (p.migrations_dir / "002_t_x.sql").read_text(encoding="utf-8")
