"""``seedkit snapshot``: database → fixture files → ``seedkit run`` → the same database, byte-stable."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import create_pg_database, drop_pg_database
from snapshot_schema import PG_CANONICAL, PG_DATA, PG_SCHEMA, SQLITE_CANONICAL, SQLITE_DATA, SQLITE_SCHEMA
from typer.testing import CliRunner

import seedkit.seed as seed
from seedkit import db, load_config
from seedkit.cli import app
from seedkit.snapshot import snapshot


def run_sql(url: str, text: str) -> None:
    with db.connect(url) as d:
        if d.dialect == "postgresql":
            d.execute(text)
        else:
            d.conn.executescript(text)


def rows(url: str, query: str) -> list[tuple]:
    with db.connect(url) as d:
        return [tuple(r) for r in d.fetchall(query)]


def canonical(url: str, queries: dict[str, str]) -> dict[str, list[str]]:
    """Rows as text (repr), so NaN equals NaN."""
    return {t: [repr(r) for r in rows(url, q)] for t, q in queries.items()}


def project(root: Path, target_url: str, extra: str = "") -> Path:
    """A project whose `snap` environment loads the snapshot folder into ``target_url``."""
    (root / "seeds" / "snap").mkdir(parents=True, exist_ok=True)
    (root / "seedkit.toml").write_text(
        f'[database]\nurl = "{target_url}"\n\n[seeds]\nfaker_seed = 3\n\n[envs.snap]\ninclude = ["snap"]\n\n{extra}')
    return root / "seedkit.toml"


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def pg_pair(pg_server: str):
    a = create_pg_database(pg_server, "snap_a")
    b = create_pg_database(pg_server, "snap_b")
    yield a, b
    drop_pg_database(pg_server, a)
    drop_pg_database(pg_server, b)


def test_pg_round_trip_is_exact_and_byte_stable(pg_pair, tmp_path: Path) -> None:
    a, b = pg_pair
    run_sql(a, PG_SCHEMA + PG_DATA)
    run_sql(b, PG_SCHEMA)
    cfg = project(tmp_path, b)
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=a, format="yaml")
    by_table = {t.table: t for t in report.tables}
    assert set(by_table) == set(PG_CANONICAL)
    assert by_table["users"].dropped == ["id"] and by_table["users"].key == ["email"]
    assert set(by_table["users"].refs) == {"org_id", "manager_id"}
    assert by_table["memberships"].key == ["project_id", "user_id"]
    users = (out / "users.yaml").read_text()
    assert "!ref orgs/" not in users and '!ref "orgs/acme"' in users  # scalar references by natural key
    assert not re.search(r"\bid: ", users)  # made-up ids are left out
    members = (out / "memberships.yaml").read_text()
    assert '!ref {table: projects, org_id: !ref "orgs/acme", slug: "rocket"}' in members  # nested

    first = seed.run("snap", config=load_config(cfg))
    assert first.inserted == sum(t.rows for t in report.tables)
    assert canonical(b, PG_CANONICAL) == canonical(a, PG_CANONICAL)

    again = seed.run("snap", config=load_config(cfg))
    assert not again.changed

    second = tmp_path / "second"
    snapshot(second, config=cfg, database_url=b, format="yaml")
    assert files(second) == files(out)


def test_sqlite_round_trip(tmp_path: Path) -> None:
    a = f"sqlite:///{tmp_path / 'a.db'}"
    b = f"sqlite:///{tmp_path / 'b.db'}"
    run_sql(a, SQLITE_SCHEMA + SQLITE_DATA)
    run_sql(b, SQLITE_SCHEMA)
    cfg = project(tmp_path, b)
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=a)
    assert {t.table for t in report.tables} == set(SQLITE_CANONICAL)
    first = seed.run("snap", config=load_config(cfg))
    assert first.inserted == report.rows
    assert canonical(b, SQLITE_CANONICAL) == canonical(a, SQLITE_CANONICAL)
    assert not seed.run("snap", config=load_config(cfg)).changed
    second = tmp_path / "second"
    snapshot(second, config=cfg, database_url=b)
    assert files(second) == files(out)
