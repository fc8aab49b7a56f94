"""Shared fixtures: a real PostgreSQL (started here unless SEEDKIT_TEST_DATABASE_URL is set) and real
SQLite files. With ``CI=true``, a missing PostgreSQL fails the run instead of skipping tests."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

sys.path.insert(0, str(Path(__file__).parent))
from pgcluster import ClusterUnavailable, start_cluster, wait_ready  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server (maintenance database) the tests may create databases on."""
    url = os.environ.get("SEEDKIT_TEST_DATABASE_URL")
    if url:
        wait_ready(url)
        yield url
        return
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true and no PostgreSQL could be started: {exc}", pytrace=False)
        pytest.skip(f"no PostgreSQL available: {exc}")
    try:
        wait_ready(cluster.url)
        with psycopg.connect(cluster.url) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
        sys.stderr.write(f"\n[seedkit tests] started PostgreSQL {version} at {cluster.url}\n")
        yield cluster.url
    finally:
        cluster.stop()


def _with_db(server_url: str, name: str) -> str:
    from seedkit.urls import parse_url

    return parse_url(server_url).with_database(name).raw


def create_pg_database(server_url: str, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_db(server_url, name)


def drop_pg_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


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
