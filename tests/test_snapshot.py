"""``seedkit snapshot``: database → fixture files → ``seedkit run`` → the same database, byte-stable."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import seedkit.seed as seed
from seedkit import db, load_config
from seedkit.cli import app
from seedkit.snapshot import snapshot
from tests.support import create_pg_database, drop_pg_database
from tests.support.snapshot_schema import PG_CANONICAL, PG_DATA, PG_SCHEMA, SQLITE_CANONICAL, SQLITE_DATA, SQLITE_SCHEMA


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


@pytest.fixture
def pg_a(pg_pair, tmp_path: Path):
    """Database A with data, B with the schema only, and a project loading the snapshot into B."""
    a, b = pg_pair
    run_sql(a, PG_SCHEMA + PG_DATA)
    run_sql(b, PG_SCHEMA)
    return a, b, project(tmp_path, b)


def _load(cfg: Path):
    return seed.run("snap", config=load_config(cfg))


# -- subsets -------------------------------------------------------------------------------------
def test_where_subset_is_closed_under_foreign_keys_and_loads(pg_a, tmp_path: Path) -> None:
    a, b, cfg = pg_a
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=a, tables=["users"], where=["users: email = 'null@globex.test'"])
    counts = {t.table: t.rows for t in report.tables}
    # the chosen user, its manager chain (self-reference, two levels) and their organisations
    assert counts == {"users": 3, "orgs": 2}
    _load(cfg)
    assert [r[0] for r in rows(b, "SELECT email FROM users ORDER BY 1")] == [
        "boss@acme.test", "line@globex.test", "null@globex.test"]
    assert [r[0] for r in rows(b, "SELECT slug FROM orgs ORDER BY 1")] == ["acme", "globex"]


def test_limit_takes_the_first_rows_by_key_and_follows_a_cycle(pg_a, tmp_path: Path) -> None:
    a, b, cfg = pg_a
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=a, tables=["players"], limit=["players=1"])
    assert {t.table: t.rows for t in report.tables} == {"players": 2, "teams": 1}
    _load(cfg)
    # ann → team red → its captain bob → team red: the cycle closes
    assert rows(b, "SELECT p.handle, t.name FROM players p JOIN teams t ON t.id = p.team_id ORDER BY 1") == [
        ("ann", "red"), ("bob", "red")]
    assert rows(b, "SELECT t.name, c.handle FROM teams t JOIN players c ON c.id = t.captain_id") == [("red", "bob")]


def test_with_children_follows_keys_down_then_closes_up(pg_a, tmp_path: Path) -> None:
    a, b, cfg = pg_a
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=a, tables=["orgs"], where=["orgs: slug = 'globex'"],
                      with_children=True)
    counts = {t.table: t.rows for t in report.tables}
    assert counts["events"] == 2 and counts["invites"] == 1  # globex's own rows
    _load(cfg)
    assert {r[0] for r in rows(b, "SELECT email FROM users")} >= {"line@globex.test", "null@globex.test",
                                                                  "boss@acme.test"}
    # every foreign key of B holds (PostgreSQL checked them at commit) and globex's rows are all there
    assert canonical(b, {"events": PG_CANONICAL["events"]})["events"] == [
        r for r in canonical(a, {"events": PG_CANONICAL["events"]})["events"] if "'globex'" in r]
    without = snapshot(tmp_path / "plain", config=cfg, database_url=a, tables=["orgs"],
                       where=["orgs: slug = 'globex'"])
    assert {t.table for t in without.tables} == {"orgs"}


# -- masking ---------------------------------------------------------------------------------------
MASKS = """[snapshot]
salt = "${SNAP_SALT:-pepper}"

[snapshot.mask]
"users.email" = "email"
"invites.email" = "email"
"users.nickname" = "null"
"orgs.name" = { constant = "Org" }
"players.handle" = "first_name"
"users.seen_at" = "date_of_birth"
"""


def test_masking_is_deterministic_consistent_and_keeps_unique_columns_unique(pg_pair, tmp_path: Path) -> None:
    a, b = pg_pair
    run_sql(a, PG_SCHEMA + PG_DATA)
    run_sql(b, PG_SCHEMA)
    cfg = project(tmp_path, b, MASKS)
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=a, format="yaml")
    snapshot(tmp_path / "again", config=cfg, database_url=a, format="yaml")
    assert files(tmp_path / "again") == files(out)  # deterministic
    assert {t.table: t.masked for t in report.tables}["users"] == {"email": "email (unique)", "nickname": "null",
                                                                   "seen_at": "date_of_birth"}
    text = "".join(p.read_text() for p in out.glob("*.yaml"))
    for original in ("boss@acme.test", "dev@acme.test", "null@globex.test", "Acme, Inc.", "ann", "bob"):
        assert original not in text
    _load(cfg)
    masked = dict(rows(b, "SELECT u.public_id::text, u.email FROM users u"))
    original = dict(rows(a, "SELECT u.public_id::text, u.email FROM users u"))
    assert masked.keys() == original.keys() and len(set(masked.values())) == 4
    assert all(masked[k] != original[k] for k in masked)
    # the same address masks the same way in another table; references follow the masked key
    dev = masked[next(k for k, v in original.items() if v == "dev@acme.test")]
    assert rows(b, "SELECT email FROM invites WHERE code IN ('i1', 'i2')") == [(dev,), (dev,)]
    assert rows(b, "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id") == [(5,)]
    assert rows(b, "SELECT DISTINCT name FROM orgs") == [("Org",)]
    assert rows(b, "SELECT count(*) FROM users WHERE nickname IS NOT NULL") == [(0,)]
    handles = [r[0] for r in rows(b, "SELECT handle FROM players")]
    assert len(set(handles)) == 4  # first_name + a token: unique even when two names coincide
    # unmasked columns are unchanged
    assert rows(b, "SELECT public_id::text, balance, prefs FROM users ORDER BY 1") == rows(
        a, "SELECT public_id::text, balance, prefs FROM users ORDER BY 1")
    # B holds the masked values: its plain snapshot is byte-identical to A's masked one
    plain = tmp_path / "plain"
    project(tmp_path / "p2", b)
    snapshot(plain, config=tmp_path / "p2" / "seedkit.toml", database_url=b, format="yaml")
    assert {k: v for k, v in files(plain).items() if k != "_snapshot.yaml"} == {
        k: v for k, v in files(out).items() if k != "_snapshot.yaml"}
    # another salt, other values
    os.environ["SNAP_SALT"] = "other"
    try:
        snapshot(tmp_path / "salted", config=cfg, database_url=a, format="yaml")
    finally:
        del os.environ["SNAP_SALT"]
    assert (tmp_path / "salted" / "users.yaml").read_bytes() != (out / "users.yaml").read_bytes()


def test_mask_default_masks_by_column_name_and_lists_it(pg_a, tmp_path: Path) -> None:
    a, _b, cfg = pg_a
    result = CliRunner().invoke(app, ["--config", str(cfg), "snapshot", "--database", a, "--out",
                                      str(tmp_path / "seeds" / "snap"), "--mask-default", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "users.email → email" in report["masked_by_default"]
    assert "invites.email → email" in report["masked_by_default"]
    assert "boss@acme.test" not in (tmp_path / "seeds" / "snap" / "users.yaml").read_text()
    assert "without [snapshot] salt" in result.stderr
    _load(cfg)


# -- formats ---------------------------------------------------------------------------------------
def test_csv_round_trip_where_csv_can_hold_the_table(pg_a, tmp_path: Path) -> None:
    a, b, cfg = pg_a
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=a, format="csv")
    fmt = {t.table: (t.format, t.note) for t in report.tables}
    assert fmt["countries"] == ("csv", None)
    assert fmt["categories"][0] == "yaml" and "empty strings" in fmt["categories"][1]
    assert fmt["users"][0] == "yaml" and "references" in fmt["users"][1]
    assert (out / "countries.csv").read_text().startswith("code,name,population,area,langs\n")
    _load(cfg)
    assert canonical(b, PG_CANONICAL) == canonical(a, PG_CANONICAL)
    snapshot(tmp_path / "second", config=cfg, database_url=b, format="csv")
    assert files(tmp_path / "second") == files(out)
    auto = snapshot(tmp_path / "auto", config=cfg, database_url=a)  # small tables: YAML
    assert {t.format for t in auto.tables} == {"yaml"}


# -- errors ----------------------------------------------------------------------------------------
def cli(cfg: Path, *args: str):
    return CliRunner().invoke(app, ["--config", str(cfg), "snapshot", *args])


def test_a_table_without_a_natural_key_is_refused_or_written_with_ids(db_url: str, tmp_path: Path) -> None:
    pg = db_url.startswith("postgresql")
    serial = "serial PRIMARY KEY" if pg else "INTEGER PRIMARY KEY"
    run_sql(db_url, f"CREATE TABLE notes (id {serial}, body text);"
                    "CREATE TABLE logs (msg text);"
                    "INSERT INTO notes (body) VALUES ('one'), ('two');")
    cfg = project(tmp_path, db_url)
    out = tmp_path / "seeds" / "snap"
    result = cli(cfg, "--database", db_url, "--out", str(out))
    assert result.exit_code == 2
    assert "notes has only the made-up key (id)" in result.stderr
    assert "logs has no primary key" in result.stderr
    assert "--keep-ids" in result.stderr and "--exclude" in result.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing written
    result = cli(cfg, "--database", db_url, "--out", str(out), "--exclude", "logs", "--keep-ids")
    assert result.exit_code == 0, result.output
    assert "id: 1" in (out / "notes.yaml").read_text()
    run_sql(db_url, "DELETE FROM notes")
    assert _load(cfg).inserted == 2
    assert rows(db_url, "SELECT id, body FROM notes ORDER BY id") == [(1, "one"), (2, "two")]


def test_unknown_names_in_options_get_a_did_you_mean(pg_a, tmp_path: Path) -> None:
    a, _b, cfg = pg_a
    out = str(tmp_path / "out")
    result = cli(cfg, "--database", a, "--out", out, "--table", "userz")
    assert result.exit_code == 2 and "unknown table 'userz'" in result.stderr and "'users'" in result.stderr
    result = cli(cfg, "--database", a, "--out", out, "--where", "users: emial = 'x'")
    assert result.exit_code == 2 and "'email'" in result.stderr and "--where users" in result.stderr
    result = cli(cfg, "--database", a, "--out", out, "--limit", "playrs=3")
    assert result.exit_code == 2 and "'players'" in result.stderr
    result = cli(cfg, "--database", a, "--out", out, "--table", "no_such_*")
    assert result.exit_code == 2 and "matches no table" in result.stderr
    result = cli(cfg, "--database", a, "--out", out, "--table", "schema_migrations")
    assert result.exit_code == 2
    (cfg.parent / "seedkit.toml").write_text(cfg.read_text() + '\n[snapshot.mask]\n"users.emal" = "email"\n')
    result = cli(cfg, "--database", a, "--out", out)
    assert result.exit_code == 2 and "'email'" in result.stderr and "[snapshot.mask]" in result.stderr
    (cfg.parent / "seedkit.toml").write_text(cfg.read_text().replace('"users.emal" = "email"',
                                                                     '"users.email" = "emale"'))
    result = cli(cfg, "--database", a, "--out", out)
    assert result.exit_code == 2 and "unknown Faker provider 'emale'" in result.stderr and "'email'" in result.stderr
    assert not Path(out).exists()


def test_a_password_is_never_printed(tmp_path: Path) -> None:
    cfg = project(tmp_path, "sqlite:///x.db")
    secret = "hunter2-s3cr3t"
    result = cli(cfg, "--database", f"postgresql://snap:{secret}@127.0.0.1:1/nowhere", "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert secret not in result.output and secret not in result.stderr and "cannot connect" in result.stderr


def test_the_out_folder_is_replaced_whole_and_kept_on_failure(pg_a, tmp_path: Path) -> None:
    a, _b, cfg = pg_a
    out = tmp_path / "seeds" / "snap"
    assert cli(cfg, "--database", a, "--out", str(out)).exit_code == 0
    before = files(out)
    result = cli(cfg, "--database", a, "--out", str(out), "--where", "users: no_such_column = 1")
    assert result.exit_code == 2
    assert files(out) == before  # a failed snapshot leaves the earlier one as it was
    assert cli(cfg, "--database", a, "--out", str(out), "--table", "orgs").exit_code == 0
    assert set(files(out)) == {"orgs.yaml", "_snapshot.yaml"}  # tables no longer chosen are gone
    (out / "mine.yaml").write_text("rows: []\n")
    result = cli(cfg, "--database", a, "--out", str(out))
    assert result.exit_code == 2 and "mine.yaml" in result.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    result = cli(cfg, "--database", a, "--out", str(other))
    assert result.exit_code == 2 and "not empty" in result.stderr
    assert not list(tmp_path.glob(".*snapshot-*"))  # no temporary folder left behind


def test_json_report_per_table_and_env_option(pg_a, tmp_path: Path) -> None:
    a, _b, cfg = pg_a
    cfg.write_text(cfg.read_text() + f'\n[envs.prod]\ninclude = []\ndatabase_url = "{a}"\n')
    result = cli(cfg, "--env", "prod", "--out", str(tmp_path / "seeds" / "snap"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    users = next(t for t in report["tables"] if t["table"] == "users")
    assert users["rows"] == 4 and users["file"] == "users.yaml" and users["format"] == "yaml"
    assert users["key"] == ["email"] and users["dropped"] == ["id"] and users["refs"] == ["org_id", "manager_id"]
    assert [t["table"] for t in report["tables"]].index("orgs") < [t["table"] for t in report["tables"]].index(
        "users")  # load order
    manifest = (tmp_path / "seeds" / "snap" / "_snapshot.yaml").read_text()
    assert manifest.index("table: orgs") < manifest.index("table: users")
    result = cli(cfg, "--env", "nope", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "unknown environment" in result.stderr


def test_snapshot_command_in_a_real_process(pg_a, tmp_path: Path) -> None:
    import subprocess
    import sys

    a, b, cfg = pg_a
    proc = subprocess.run([sys.executable, "-m", "seedkit", "snapshot", "--database", a, "--out", "seeds/snap"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "rows in 12 files" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "seedkit", "run", "snap"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert canonical(b, PG_CANONICAL) == canonical(a, PG_CANONICAL)


def test_hostile_names_round_trip(db_url: str, tmp_path: Path) -> None:
    pg = db_url.startswith("postgresql")
    auto = "serial PRIMARY KEY" if pg else "INTEGER PRIMARY KEY"
    run_sql(db_url, f'''CREATE TABLE "we ird""t: able" ("id" {auto}, "key: x" text NOT NULL UNIQUE, "null" text,
                                                       "-dash" int);
                        CREATE TABLE "_child" ("id" {auto}, "parent" int NOT NULL REFERENCES "we ird""t: able" ("id"),
                                               "n" int NOT NULL, UNIQUE ("parent", "n"));
                        INSERT INTO "we ird""t: able" ("key: x", "null", "-dash") VALUES ('a/b: c', 'null', -1),
                                                                                       ('yes', NULL, 2);
                        INSERT INTO "_child" ("parent", "n") VALUES (1, 1), (2, 1);''')
    cfg = project(tmp_path, db_url)
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=db_url)
    names = {t.table: t.file for t in report.tables}
    assert set(names) == {'we ird"t: able', "_child"}
    assert not any(f.startswith(("_", ".")) for f in names.values())  # the loader would skip such a file
    before = rows(db_url, '''SELECT c."n", p."key: x", p."null", p."-dash" FROM "_child" c
                             JOIN "we ird""t: able" p ON p."id" = c."parent" ORDER BY 2''')
    run_sql(db_url, 'DELETE FROM "_child"; DELETE FROM "we ird""t: able"')
    assert _load(cfg).inserted == 4
    after = rows(db_url, '''SELECT c."n", p."key: x", p."null", p."-dash" FROM "_child" c
                            JOIN "we ird""t: able" p ON p."id" = c."parent" ORDER BY 2''')
    assert after == before == [(1, "a/b: c", "null", -1), (1, "yes", None, 2)]


def test_a_column_referring_to_a_masked_column_is_masked_alike(pg_server: str, tmp_path: Path) -> None:
    a = create_pg_database(pg_server, "snap_m")
    b = create_pg_database(pg_server, "snap_m")
    try:
        schema = """CREATE TABLE accounts (email text PRIMARY KEY, plan text);
                    CREATE TABLE logins (id serial PRIMARY KEY, at int NOT NULL, email text NOT NULL
                                         REFERENCES accounts (email), UNIQUE (email, at));"""
        run_sql(a, schema + """INSERT INTO accounts VALUES ('x@corp.example', 'pro'), ('y@corp.example', NULL);
                               INSERT INTO logins (at, email) VALUES (1, 'x@corp.example'), (2, 'x@corp.example'),
                                                                     (1, 'y@corp.example');""")
        run_sql(b, schema)
        cfg = project(tmp_path, b, '[snapshot]\nsalt = "s"\n[snapshot.mask]\n"accounts.email" = "email"\n')
        report = snapshot(tmp_path / "seeds" / "snap", config=cfg, database_url=a)
        assert {t.table: t.masked for t in report.tables}["logins"] == {"email": "email (unique)"}
        _load(cfg)
        assert rows(b, "SELECT count(*) FROM logins JOIN accounts USING (email)") == [(3,)]
        assert rows(b, "SELECT count(*) FROM accounts WHERE email LIKE '%corp.example'") == [(0,)]
    finally:
        drop_pg_database(pg_server, a)
        drop_pg_database(pg_server, b)


@pytest.mark.contrib
def test_text_keys_sort_in_byte_order_whatever_the_collation(pg_pair, tmp_path: Path) -> None:
    a, _b = pg_pair
    collation = rows(a, """SELECT collname FROM pg_collation WHERE collname IN ('en-x-icu', 'und-x-icu', 'en_US',
                           'en_US.utf8') ORDER BY collname LIMIT 1""")
    assert collation, "this PostgreSQL has no linguistic collation to test with"
    name = collation[0][0].replace('"', '""')
    run_sql(a, f'CREATE TABLE words (w text COLLATE "{name}" PRIMARY KEY);'
               "INSERT INTO words VALUES ('b'), ('B'), ('a'), ('A'), ('é');")
    assert [r[0] for r in rows(a, "SELECT w FROM words ORDER BY w")] != ["A", "B", "a", "b", "é"]
    out = tmp_path / "w"
    snapshot(out, config=project(tmp_path, a), database_url=a, tables=["words"])
    assert [line for line in (out / "words.yaml").read_text().splitlines() if line.startswith("- ")] == [
        '- {w: "A"}', '- {w: "B"}', '- {w: "a"}', '- {w: "b"}', '- {w: "é"}']


def _peak_rss_kb(args: list[str], cwd: Path) -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "seedkit", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return usage.ru_maxrss


@pytest.mark.parametrize("fmt", ["yaml", "csv"])
def test_rows_stream_with_bounded_memory_and_report_progress(pg_url: str, tmp_path: Path, fmt: str) -> None:
    run_sql(pg_url, """CREATE TABLE small (k text PRIMARY KEY, v text); CREATE TABLE big (k text PRIMARY KEY, v text);
                       INSERT INTO small SELECT 'k' || g, repeat('x', 200) FROM generate_series(1, 2000) g;
                       INSERT INTO big SELECT 'k' || g, repeat('x', 200) FROM generate_series(1, 300000) g;""")
    small = _peak_rss_kb(["snapshot", "--database", pg_url, "--out", "s", "--table", "small", "--format", fmt],
                         tmp_path)
    big = _peak_rss_kb(["snapshot", "--database", pg_url, "--out", "b", "--table", "big", "--format", fmt], tmp_path)
    written = sum(p.stat().st_size for p in (tmp_path / "b").iterdir())
    assert written > 60_000_000  # 60 MB written ...
    assert big - small < 30_000, (small, big)  # ... with less than 30 MB more memory than 2,000 rows take
    seen: list[tuple[str, int, int | None]] = []
    snapshot(tmp_path / "p", database_url=pg_url, tables=["big"], format=fmt,
             progress=lambda t, done, total: seen.append((t, done, total)))
    assert seen[0] == ("big", 0, 300000) and seen[-1] == ("big", 300000, 300000)
    assert len(seen) > 3 and [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)


def test_writes_during_a_snapshot_do_not_show_in_it(pg_a, tmp_path: Path) -> None:
    a, b, cfg = pg_a
    done = []

    def meddle(table: str, n: int, total: int | None) -> None:
        if not done:  # after the first table began: commit changes from another connection
            done.append(table)
            run_sql(a, """INSERT INTO orgs (slug, name) VALUES ('late', 'Late');
                          INSERT INTO users (email, org_id) SELECT 'late@x.test', id FROM orgs WHERE slug = 'late';
                          DELETE FROM memberships; UPDATE countries SET name = 'changed'""")

    snapshot(tmp_path / "seeds" / "snap", config=cfg, database_url=a, progress=meddle)
    assert done
    text = "".join(p.read_text() for p in (tmp_path / "seeds" / "snap").iterdir())
    assert "late" not in text and "changed" not in text and "owner" in text  # all as of the start
    _load(cfg)
    assert rows(b, "SELECT count(*) FROM memberships") == [(5,)]


def test_a_read_only_role_on_a_read_only_session_can_snapshot(pg_a, pg_server: str, tmp_path: Path) -> None:
    a, b, cfg = pg_a
    role = f"reader_{os.getpid()}"
    run_sql(a, f"""DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'pw';
                   GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};
                   ALTER ROLE {role} SET default_transaction_read_only = on""")
    try:
        reader = a.replace("postgres@", f"{role}:pw@", 1)
        assert role in reader
        report = snapshot(tmp_path / "seeds" / "snap", config=cfg, database_url=reader)
        assert report.rows > 0
        _load(cfg)
        assert canonical(b, PG_CANONICAL) == canonical(a, PG_CANONICAL)
        # a subset needs temporary tables, which a read-only transaction cannot create: a clear error
        with pytest.raises(Exception, match="read-only"):
            snapshot(tmp_path / "sub", config=cfg, database_url=reader, where=["users: true"])
    finally:
        run_sql(a, f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        run_sql(pg_server, f"DROP ROLE {role}")


def test_sqlite_subset_with_children_loads_into_an_empty_file(tmp_path: Path) -> None:
    a = f"sqlite:///{tmp_path / 'a.db'}"
    b = f"sqlite:///{tmp_path / 'b.db'}"
    run_sql(a, SQLITE_SCHEMA + SQLITE_DATA)
    run_sql(b, SQLITE_SCHEMA)
    cfg = project(tmp_path, b)
    report = snapshot(tmp_path / "seeds" / "snap", config=cfg, database_url=a, tables=["users"],
                      where=["users: email = 'x@globex.test'"], with_children=True)
    assert {t.table: t.rows for t in report.tables} == {"orgs": 2, "users": 2, "memberships": 1, "projects": 1}
    _load(cfg)
    assert rows(b, "SELECT email FROM users ORDER BY 1") == [("boss@acme.test",), ("x@globex.test",)]
    assert rows(b, """SELECT u.email, p.slug, o.slug FROM memberships m JOIN users u ON u.id = m.user_id
                      JOIN projects p ON p.id = m.project_id JOIN orgs o ON o.id = p.org_id""") == [
        ("x@globex.test", "rocket", "globex")]
    limited = snapshot(tmp_path / "lim", config=cfg, database_url=a, tables=["countries"], limit=["countries=1"])
    assert [(t.table, t.rows) for t in limited.tables] == [("countries", 1)]
    assert '"de"' in (tmp_path / "lim" / "countries.yaml").read_text()


def test_the_api_returns_what_the_cli_prints(tmp_path: Path) -> None:
    a = f"sqlite:///{tmp_path / 'a.db'}"
    run_sql(a, SQLITE_SCHEMA + SQLITE_DATA)
    cfg = project(tmp_path, a)
    result = cli(cfg, "--database", a, "--out", str(tmp_path / "cli"), "--json")
    assert result.exit_code == 0, result.output
    api = snapshot(tmp_path / "api", config=cfg, database_url=a).to_dict()
    printed = json.loads(result.stdout)
    for report in (api, printed):
        report.pop("seconds"), report.pop("out")
        for t in report["tables"]:
            t.pop("seconds")
    assert printed == api


def test_keep_ids_writes_ids_and_plain_references(pg_a, tmp_path: Path) -> None:
    a, b, cfg = pg_a
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=a, keep_ids=True)
    users = next(t for t in report.tables if t.table == "users")
    assert users.key == ["email"] and users.dropped == [] and users.refs == []
    text = (out / "users.yaml").read_text()
    assert "!ref" not in text and "id: 1, email: " in text and "org_id: 1" in text
    _load(cfg)
    assert canonical(b, PG_CANONICAL) == canonical(a, PG_CANONICAL)
    assert rows(b, "SELECT id, email FROM users ORDER BY id") == rows(a, "SELECT id, email FROM users ORDER BY id")


def test_jsonb_numbers_and_json_null_round_trip_in_yaml_and_csv(pg_pair, tmp_path: Path) -> None:
    a, b = pg_pair
    schema = "CREATE TABLE settings (key text PRIMARY KEY, value jsonb, raw json, label text);"
    run_sql(a, schema + """INSERT INTO settings VALUES
        ('a-json-null', 'null', 'null', 'x'), ('b-sql-null', NULL, NULL, 'x'),
        ('c-digits', '{"n": 1.10, "tiny": 0.1000000000000000000001, "list": [2.50, 1e-3]}', '[1.10]', 'x'),
        ('d-scalar', '1.10', '"null"', 'x'), ('e-string', '"null"', '{}', 'x')""")
    query = "SELECT key, value::text, value IS NULL, raw::jsonb::text, raw IS NULL FROM settings ORDER BY key"
    for fmt in ("yaml", "csv"):
        run_sql(b, "DROP TABLE IF EXISTS settings;" + schema)
        cfg = project(tmp_path / fmt, b)
        out = tmp_path / fmt / "seeds" / "snap"
        report = snapshot(out, config=cfg, database_url=a, format=fmt)
        assert [t.format for t in report.tables] == [fmt]
        written = (out / f"settings.{fmt}").read_text()
        if fmt == "yaml":
            assert '- {key: "a-json-null", value: !json null, raw: !json null, label: "x"}' in written
            assert '- {key: "b-sql-null", value: null, raw: null, label: "x"}' in written
            assert "1.10" in written and "0.1000000000000000000001" in written
        else:
            assert "a-json-null,null,null,x\n" in written and "b-sql-null,,,x\n" in written
        _load(cfg)
        assert rows(b, query) == rows(a, query)
        assert rows(b, "SELECT value::text FROM settings WHERE key = 'c-digits'") == [
            ('{"n": 1.10, "list": [2.50, 0.001], "tiny": 0.1000000000000000000001}',)]
        assert not _load(cfg).changed
        snapshot(tmp_path / fmt / "second", config=cfg, database_url=b, format=fmt)
        assert files(tmp_path / fmt / "second") == files(out)


def test_json_tag_in_fixtures_is_json_text_and_checked(db_url: str, tmp_path: Path) -> None:
    """`!json null` is the JSON value null; bad JSON or !json null for another type is a located error."""
    run_sql(db_url, "CREATE TABLE docs (name text PRIMARY KEY, body " + (
        "jsonb" if db_url.startswith("postgresql") else "JSON") + ", note text)")
    cfg = project(tmp_path, db_url)
    fixture = tmp_path / "seeds" / "snap" / "docs.yaml"
    fixture.write_text('table: docs\nkey: [name]\nrows:\n- {name: "j", body: !json null}\n- {name: "s", body: null}\n'
                       "- {name: \"t\", body: !json '{\"n\": 1.10}'}\n")
    _load(cfg)
    got = rows(db_url, "SELECT name, body IS NULL, " + ("body::text" if db_url.startswith("postgresql") else "body")
               + " FROM docs ORDER BY name")
    assert got in ([("j", False, "null"), ("s", True, None), ("t", False, '{"n": 1.10}')],
                   [("j", 0, "null"), ("s", 1, None), ("t", 0, '{"n":1.10}')])
    fixture.write_text('table: docs\nkey: [name]\nrows:\n- {name: "j", body: !json "{nope"}\n')
    result = CliRunner().invoke(app, ["--config", str(cfg), "run", "snap"])
    assert result.exit_code == 2 and "docs.yaml:4" in result.output and "!json" in result.output, result.output
    fixture.write_text('table: docs\nkey: [name]\nrows:\n- {name: "j", note: !json null}\n')
    result = CliRunner().invoke(app, ["--config", str(cfg), "run", "snap"])
    assert result.exit_code == 2 and "docs.yaml:4" in result.output and "json column" in result.output, result.output


def test_not_null_cycle_and_inheritance_children_like_pagila(pg_pair, tmp_path: Path) -> None:
    """The shape of the pagila sample database: staff and store refer to each other through NOT NULL
    columns (loadable once one constraint is DEFERRABLE), made-up keys only (--keep-ids), a char(n)
    column, an inheritance child without a key (refused, or left out with --exclude)."""
    a, b = pg_pair
    schema = """
        CREATE TABLE store (store_id serial PRIMARY KEY, manager_staff_id int NOT NULL, code char(6) NOT NULL);
        CREATE TABLE staff (staff_id serial PRIMARY KEY, name text NOT NULL,
                            store_id int NOT NULL REFERENCES store(store_id));
        ALTER TABLE store ADD CONSTRAINT store_manager FOREIGN KEY (manager_staff_id) REFERENCES staff(staff_id)
            DEFERRABLE;
        CREATE TABLE payment (payment_id serial PRIMARY KEY, staff_id int NOT NULL REFERENCES staff(staff_id),
                              amount numeric(5,2));
        CREATE TABLE payment_2007 () INHERITS (payment);"""
    run_sql(a, schema + """
        BEGIN; SET CONSTRAINTS ALL DEFERRED;
        INSERT INTO store VALUES (1, 1, 'a'), (2, 2, 'bb');
        INSERT INTO staff VALUES (1, 'Mike', 1), (2, 'Jon', 2);
        COMMIT;
        INSERT INTO payment VALUES (1, 1, 1.10);
        INSERT INTO payment_2007 VALUES (2, 2, 2.00);""")
    run_sql(b, schema)
    cfg = project(tmp_path, b)
    out = tmp_path / "seeds" / "snap"
    refused = cli(cfg, "--database", a, "--out", str(out), "--keep-ids")
    assert refused.exit_code == 2 and "payment_2007 has no primary key" in refused.stderr
    result = cli(cfg, "--database", a, "--out", str(out), "--keep-ids", "--exclude", "payment_*")
    assert result.exit_code == 0, result.output
    assert '"a     "' in (out / "store.yaml").read_text()  # char(6) keeps its padding
    _load(cfg)
    for query in ("SELECT * FROM store ORDER BY 1", "SELECT * FROM staff ORDER BY 1",
                  "SELECT * FROM ONLY payment ORDER BY 1"):
        assert rows(b, query) == rows(a, query)
    assert not _load(cfg).changed
    snapshot(tmp_path / "second", config=cfg, database_url=b, keep_ids=True, exclude=["payment_*"])
    assert files(tmp_path / "second") == files(out)


def test_yaml_built_by_copy_quoting_matches_yaml_built_as_json(pg_pair, tmp_path: Path, monkeypatch) -> None:
    """Tables of plain values are written with COPY's own quoting (DELIMITER '"'); the same tables built
    value by value as JSON in SQL give the same bytes (controls, quotes, backslashes, NULLs, refs)."""
    import seedkit.snapshot.write as write

    a, _ = pg_pair
    run_sql(a, PG_SCHEMA + PG_DATA + r"""
        CREATE TABLE oddities (k text PRIMARY KEY, t text, d date, ts timestamptz, b bytea, u uuid, i interval,
                               num numeric, f float8, ok boolean, r int4range, cat text REFERENCES categories(code));
        INSERT INTO oddities VALUES
          ('all', E'\\N "\\N" \\v \\\\v' || chr(11) || chr(27) || ' \N', '2024-02-29', 'infinity', '\x5c4e'::bytea,
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '-1 days 00:00:01', 'NaN', '-Infinity', false, 'empty', 'c"\'),
          ('nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          ('"\N"', '', '0001-01-01', '2024-01-01 00:00:00.5+05:30', '', NULL, '0', 0, 0, true, '[,)', 'root');""")
    used = []
    real = write.quoted_columns
    monkeypatch.setattr(write, "quoted_columns", lambda q: (lambda r: used.append((q.spec.name, r is not None)) or r)(
        real(q)))
    snapshot(tmp_path / "quoted", database_url=a, format="yaml", config=project(tmp_path, a))
    took = {name for name, quoted in used if quoted}
    assert {"oddities", "categories", "orgs", "teams", "players", "projects", "invites", "langs"} <= took
    assert not {"users", "events", "countries", "memberships"} & took  # jsonb, arrays, a ref by two columns
    monkeypatch.setattr(write, "quoted_columns", lambda q: None)
    snapshot(tmp_path / "json", database_url=a, format="yaml", config=project(tmp_path, a))
    assert files(tmp_path / "quoted") == files(tmp_path / "json")
    text = (tmp_path / "quoted" / "oddities.yaml").read_text()
    assert '- {k: "nulls", t: null, d: null' in text and "\\u000b" in text and "\\u001b" in text
    from seedkit.seed.load import _load_yaml

    loaded = {r.values["k"]: r.values for r in _load_yaml(text, Path("o.yaml"), "o.yaml", {})[0].rows}
    assert [(loaded[k]["t"], loaded[k]["b"]) for k in ("all", "nulls", '"\\N"')] == [
        tuple(r) for r in rows(a, """SELECT t, '\\x' || encode(b, 'hex') FROM oddities
                                   ORDER BY array_position(ARRAY['all', 'nulls', '"\\N"'], k)""")]


def test_a_progress_bar_per_table_on_a_terminal(pg_url: str, tmp_path: Path) -> None:
    """On a terminal (stderr is a pty), each table gets its own bar with rows done of rows to write."""
    import pty
    import subprocess
    import sys

    run_sql(pg_url, """CREATE TABLE alpha (k text PRIMARY KEY, v text); CREATE TABLE beta (k int PRIMARY KEY);
                       INSERT INTO alpha SELECT 'k' || g, repeat('x', 100) FROM generate_series(1, 200000) g;
                       INSERT INTO beta SELECT g FROM generate_series(1, 3000) g;""")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "seedkit", "snapshot", "--database", pg_url, "--out", "o",
                             "--format", "yaml"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        seen += chunk
    stdout = proc.communicate()[0]
    os.close(master)
    assert proc.returncode == 0, seen.decode(errors="replace")
    assert b"200000/200000" in seen and b"3000/3000" in seen  # both tables, each counted to its end
    assert b"alpha" in seen and b"beta" in seen and "━".encode() in seen
    assert b"200000/200000" not in stdout and b"200000" in stdout  # the bar stays on stderr; the report is stdout


def test_csv_tells_an_empty_string_from_its_look_alike_inside_a_quoted_value(pg_pair, tmp_path: Path) -> None:
    """PostgreSQL's CSV output is searched for "" as a whole cell; the same bytes inside a multi-line
    quoted value are checked against the table and the file stays CSV."""
    a, b = pg_pair
    schema = "CREATE TABLE notes (k text PRIMARY KEY, v text, n int);"
    run_sql(a, schema + """INSERT INTO notes VALUES ('k1', E'a\\n",', 1), ('k2', E'x\\n""\\n', NULL)""")
    run_sql(b, schema)
    cfg = project(tmp_path, b)
    out = tmp_path / "seeds" / "snap"
    report = snapshot(out, config=cfg, database_url=a, format="csv")
    assert [(t.format, t.note) for t in report.tables] == [("csv", None)]
    assert '\n"",' in (out / "notes.csv").read_text()  # the look-alike: "" at a line start, then a comma
    _load(cfg)
    assert rows(b, "SELECT * FROM notes ORDER BY k") == rows(a, "SELECT * FROM notes ORDER BY k")
    run_sql(a, "INSERT INTO notes VALUES ('k3', '', 3)")
    report = snapshot(tmp_path / "again", config=cfg, database_url=a, format="csv")
    assert [t.format for t in report.tables] == ["yaml"] and "empty strings" in report.tables[0].note
