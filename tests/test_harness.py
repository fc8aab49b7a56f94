"""The test harness itself: database tests never silently vanish in CI, and the throwaway server
starts from any supported set of binaries (the Debian packages, or the pgserver wheel as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.pgcluster import (
    BINDIR_VARIABLE,
    Cluster,
    ClusterUnavailable,
    _pgserver_bindir,
    _server_user,
    start_cluster,
)

HERE = Path(__file__).parent

INNER_TESTS = """
import pytest

def test_needs_postgres(pg_url):
    assert pg_url

@pytest.mark.parametrize("n", [1])
def test_both_databases(db_url, n):
    assert db_url

def test_plain():
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A separate pytest project that uses this suite's conftest and harness."""
    (pytester.path / "conftest.py").write_text((HERE / "conftest.py").read_text())
    shutil.copytree(HERE / "support", pytester.path / "tests" / "support",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (pytester.path / "tests" / "__init__.py").write_text("")
    pytester.makepyfile(test_inner=INNER_TESTS)
    for name in ("SEEDKIT_TEST_DATABASE_URL", "SEEDKIT_TEST_PG_MAJOR", "CI"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def no_postgres(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    empty = tmp_path / "no-postgres-here"
    empty.mkdir()
    monkeypatch.setenv(BINDIR_VARIABLE, str(empty))
    return empty


def test_explicit_bindir_without_binaries_is_unavailable(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    empty = no_postgres(monkeypatch, tmp_path)
    with pytest.raises(ClusterUnavailable, match=f"no PostgreSQL server binaries in {empty}"):
        start_cluster()


def test_ci_without_postgres_fails_loudly(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    empty = no_postgres(monkeypatch, tmp_path)
    monkeypatch.setenv("CI", "true")
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, errors=2)  # test_plain and the SQLite half run; nothing skipped
    result.stdout.fnmatch_lines([f"*CI=true and no PostgreSQL could be started: no PostgreSQL server "
                                 f"binaries in {empty}*"])


def test_without_ci_missing_postgres_skips(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    no_postgres(monkeypatch, tmp_path)
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*no PostgreSQL available: no PostgreSQL server binaries in*"])


def test_postgres_marker_covers_every_postgres_test(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-m", "postgres", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_inner.py::test_needs_postgres",
                                 "test_inner.py::test_both_databases[postgresql-1]"])
    assert "sqlite" not in result.stdout.str() and "test_plain" not in result.stdout.str()


@pytest.mark.postgres
@pytest.mark.skipif(os.geteuid() != 0, reason="the copy is made only when running as root")
def test_pgserver_binaries_unreadable_by_the_server_user_are_copied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pgserver wheel inside a folder only root can enter (a virtualenv under /root, say): the
    harness copies the installation where the server user can run it, and removes the copy after."""
    source = _pgserver_bindir()
    if source is None:
        pytest.skip("the pgserver wheel is not installed (pip install 'pgserver>=0.1.4,<0.2')")
    site = source.parents[2]  # the wheel's layout: site/pgserver/pginstall/bin and site/pgserver.libs
    private = tmp_path / "private" / "site-packages"
    private.mkdir(mode=0o700, parents=True)
    shutil.copytree(source.parent, private / "pgserver" / "pginstall", symlinks=True,
                    ignore=shutil.ignore_patterns("include"))
    if (site / "pgserver.libs").is_dir():
        shutil.copytree(site / "pgserver.libs", private / "pgserver.libs")
    bindir = private / "pgserver" / "pginstall" / "bin"
    assert subprocess.run(["runuser", "-u", _server_user(), "--", str(bindir / "postgres"), "--version"],
                          capture_output=True).returncode != 0  # really out of reach

    monkeypatch.setenv(BINDIR_VARIABLE, str(bindir))
    cluster = start_cluster()
    try:
        assert cluster.bindir != bindir and cluster._copy is not None
        import psycopg

        with psycopg.connect(cluster.url) as conn:
            assert conn.info.server_version // 10000 == 16
            assert conn.execute("SELECT current_user").fetchone()[0] == "postgres"
    finally:
        cluster.stop()
    assert not cluster._copy.exists() and not cluster.tmp.exists()


def test_cluster_rejects_a_folder_without_server_binaries(tmp_path: Path) -> None:
    (tmp_path / "pg_ctl").write_text("")
    with pytest.raises(ClusterUnavailable, match="missing: initdb, postgres"):
        Cluster(tmp_path)


def test_tests_share_one_support_package_and_name_fixtures_alike() -> None:
    """tests/support/ is imported as a package (no sys.path edits, no test module importing another or
    conftest), the only project builder is tests.support.Project, and a fixture called ``project`` or
    ``*_project`` gives that builder (a bare folder is ``*_dir``)."""
    import ast

    problems = []
    for path in sorted(HERE.rglob("*.py")):
        rel = path.relative_to(HERE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and ast.unparse(node.func.value) == "sys.path" \
                    and node.func.attr in {"insert", "append", "extend", "remove", "pop", "clear"}:
                problems.append(f"{rel}:{node.lineno}: sys.path.{node.func.attr}")
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                if isinstance(node, ast.AugAssign) else []
            if any(ast.unparse(t).startswith("sys.path") for t in targets):
                problems.append(f"{rel}:{node.lineno}: assigns sys.path")
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] in {"conftest", "reliability", "seedproj", "pgcluster",
                                                     "snapshot_schema"} | {p.stem for p in HERE.glob("test_*.py")}:
                problems.append(f"{rel}:{node.lineno}: imports {node.module} (use tests.support)")
            if isinstance(node, ast.ClassDef) and node.name.endswith("Project") and rel != "support/project.py" \
                    and not any(isinstance(b, ast.Name) and b.id == "Project" for b in node.bases):
                problems.append(f"{rel}:{node.lineno}: a project builder of its own ({node.name})")
            if isinstance(node, ast.FunctionDef) and any(
                    "fixture" in ast.unparse(d) for d in node.decorator_list) \
                    and (node.name == "project" or node.name.endswith("_project")):
                returns = ast.unparse(node.returns) if node.returns else ""
                if "Project" not in returns:
                    problems.append(f"{rel}:{node.lineno}: fixture {node.name} returns {returns or '?'}, not a Project")
    assert problems == []
