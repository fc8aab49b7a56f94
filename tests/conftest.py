"""Shared fixtures: a real PostgreSQL (started here unless SEEDKIT_TEST_DATABASE_URL is set) and real
SQLite files. With ``CI=true``, a missing PostgreSQL fails the run instead of skipping tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from seedkit.urls import mask
from tests.support.pg import LocalServer, create_pg_database, drop_pg_database
from tests.support.pgcluster import Cluster, ClusterUnavailable, start_cluster, wait_ready
from tests.support.template import template_copy

# The suite runs under `make test`; the Makefiles the tests run (the rendered project's) must behave as
# when a user types `make`, not as a sub-make printing "Entering directory" lines.
for _var in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
    os.environ.pop(_var, None)

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SERVERS: list[str] = []  # the PostgreSQL servers this run used, repeated in the summary
CLUSTERS: list = []  # the throwaway cluster this process started (for a standby of it)


@pytest.fixture(autouse=True)
def _fresh_secrets() -> None:
    """Each test starts like a new seedkit process: no password remembered from an earlier test."""
    from seedkit.urls import forget_secrets

    forget_secrets()


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a PostgreSQL server (maintenance database) the tests may create databases on.

    ``SEEDKIT_TEST_DATABASE_URL`` names one; otherwise a throwaway cluster is started (see
    tests/support/pgcluster.py for which binaries). ``SEEDKIT_TEST_PG_MAJOR=16`` fails the run on any other major
    version, so a run meant for one version cannot pass on another.
    """
    url = os.environ.get("SEEDKIT_TEST_DATABASE_URL")
    cluster = None
    if not url:
        try:
            cluster = start_cluster()
        except ClusterUnavailable as exc:
            if IN_CI:
                pytest.fail(f"CI=true and no PostgreSQL could be started: {exc}", pytrace=False)
            pytest.skip(f"no PostgreSQL available: {exc}")
        url = cluster.url
        CLUSTERS.append(cluster)
    try:
        wait_ready(url)
        with psycopg.connect(url) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
            major = c.info.server_version // 10000
        wanted = os.environ.get("SEEDKIT_TEST_PG_MAJOR")
        if wanted and int(wanted) != major:
            pytest.fail(f"SEEDKIT_TEST_PG_MAJOR={wanted} but the server is PostgreSQL {version}",
                        pytrace=False)
        origin = f"started from {cluster.bindir}" if cluster else "from SEEDKIT_TEST_DATABASE_URL"
        SERVERS.append(f"PostgreSQL {version} {origin} at {mask(url)}")
        reporter = request.config.pluginmanager.getplugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"[seedkit tests] {SERVERS[-1]}")
        yield url
    finally:
        if cluster is not None:
            cluster.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for server in SERVERS:
        terminalreporter.write_line(f"[seedkit tests] database tests ran on {server}")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses PostgreSQL ``postgres``, so ``-m postgres`` selects all of them
    (including the PostgreSQL half of ``db_url``) without each test having to say so."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        uses_db_url_pg = callspec is not None and callspec.params.get("db_url") == "postgresql"
        if "pg_server" in getattr(item, "fixturenames", ()) or uses_db_url_pg:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    url = create_pg_database(pg_server)
    yield url
    drop_pg_database(pg_server, url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on PostgreSQL and once on SQLite."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(scope="session")
def pg_local(pg_server: str) -> LocalServer:
    """The suite's server as a local one (socket folder, port, password roles); fails under CI=true
    when the server is not local (SEEDKIT_TEST_DATABASE_URL naming a remote one)."""
    with psycopg.connect(pg_server, autocommit=True) as c:
        dirs = [d.strip() for d in c.execute("SHOW unix_socket_directories").fetchone()[0].split(",") if d.strip()]
        port = int(c.execute("SHOW port").fetchone()[0])
        if c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [LocalServer.PASSWORD_GROUP]).fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateObject):
                c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(LocalServer.PASSWORD_GROUP)))
        passwords = c.execute(
            "SELECT count(*) > 0 FROM pg_hba_file_rules WHERE %s = ANY(user_name) "
            "AND auth_method IN ('scram-sha-256', 'md5', 'password')",
            ["+" + LocalServer.PASSWORD_GROUP]).fetchone()[0]
    reachable = [d for d in dirs if os.path.exists(os.path.join(d, f".s.PGSQL.{port}"))]
    if not reachable or not passwords:
        why = (f"the server's socket is not reachable here (folders {dirs})" if not reachable else
               f"its pg_hba.conf asks no password of +{LocalServer.PASSWORD_GROUP}")
        if IN_CI:
            pytest.fail(f"CI=true and the test server cannot be used as a local one: {why}", pytrace=False)
        pytest.skip(f"the test server is not a local one started by the suite: {why}")
    return LocalServer(pg_server, reachable, port, passwords)


@pytest.fixture(scope="session")
def pg_standby(pg_server: str) -> Iterator[str]:
    """URL (maintenance database) of a hot standby of the suite's own cluster, started on first use."""
    if not CLUSTERS:
        if IN_CI:
            pytest.fail("CI=true and the test server was not started by the suite: no standby of it",
                        pytrace=False)
        pytest.skip("a hot standby needs the suite's own cluster (SEEDKIT_TEST_DATABASE_URL is set)")
    primary = CLUSTERS[0]
    standby = Cluster(primary.bindir)
    try:
        standby.start_as_standby_of(primary)
        wait_ready(standby.url)
        yield standby.url
    finally:
        standby.stop()


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding this working tree's copier.yml and template/ (one per test module)."""
    return template_copy(tmp_path_factory.mktemp("tpl") / "seedkit")
