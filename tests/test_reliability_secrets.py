"""Secrets: a database password never appears in anything seedkit prints.

A PostgreSQL role with a password (the harness server trusts 127.0.0.1, so any password connects, which
is all this test needs) is used through a URL kept in ``.env``, and through a URL in seedkit.toml that
interpolates the password from ``.env``. Then every command a user or a CI log sees runs in a real
process, on success and on failure: ``info`` (plain, ``--json``, ``--debug``), ``migrate lint/up/status/
verify`` (plain and ``--json``), ``run`` (plain, ``--json``, ``--check``, ``--dry-run --diff``), a failing
migration, a fixture error, a Python fixture whose exception quotes the URL and the password, a
constraint violation, a lock timeout (whose message names the lock holder), connection failures
(refused, unknown database, malformed port) and usage errors that quote the URL back — each also with
``--debug`` tracebacks where one is printed. Neither the password nor its percent-encoded form may
appear in any stdout or stderr.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
import pytest
from psycopg import sql

from seedkit.db.postgres import PostgresDatabase
from tests.support import spawn, write_files

PASSWORDS = {
    # special characters that need percent-encoding in a URL: the encoded and the plain form must both stay hidden
    "url-in-dotenv": "p@ss:w/rd%S3cr3t#1",
    # the compose style: the password alone in .env, interpolated into the URL in seedkit.toml
    "password-in-dotenv": "Zq9-Secret_Pw.42",
}

SEEDS = {
    "seeds/common/roles.yaml": "key: [name]\nrows:\n  - {name: admin}\n  - {name: member}\n",
    "seeds/dev/users.yaml": "key: [email]\nrows:\n  - {email: a@x.io, role_id: !ref roles/admin, score: 1}\n",
    "migrations/001_init.sql": """
        -- migrate:up
        CREATE TABLE roles (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
        CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE, role_id int REFERENCES roles(id),
                            score int CHECK (score * 2 >= 0));  -- an expression: refused by the database

        -- migrate:down
        DROP TABLE users;
        DROP TABLE roles;
    """,
}


def check_all(root: Path, secrets: set[str], runs: list[tuple[int, list[str]]], outputs: list[str]) -> list[str]:
    """Run the commands side by side (real processes); each must exit as expected and print no secret."""
    texts: list[str] = []
    for i in range(0, len(runs), 6):
        batch = runs[i:i + 6]
        procs = [spawn(root, *args) for _, args in batch]
        for (code, args), proc in zip(batch, procs):
            out, err = proc.communicate(timeout=120)
            text = out + err
            for secret in secrets:
                assert secret not in text, f"{args} printed the password: {text}"
            assert proc.returncode == code, (args, text)
            texts.append(text)
    outputs.extend(texts)
    return texts


@dataclass
class Setup:
    root: Path
    password: str
    url: str  # the URL with the password, percent-encoded
    server: str  # host:port
    full: bool  # every command; the other variant runs those where the password's origin could matter


@pytest.fixture(params=sorted(PASSWORDS))
def setup(request: pytest.FixtureRequest, pg_server: str, pg_url: str, tmp_path: Path) -> Iterator[Setup]:
    password = PASSWORDS[request.param]
    role = f"sk_secret_{uuid.uuid4().hex[:8]}"
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(sql.Identifier(dbname), sql.Identifier(role)))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(role)))
    server = urlsplit(pg_url).netloc.rsplit("@", 1)[1]
    url = f"postgresql://{role}:{quote(password, safe='')}@{server}/{dbname}"
    root = tmp_path / "proj"
    config_url = "${DATABASE_URL}" if request.param == "url-in-dotenv" else \
        f"postgresql://{role}:${{DB_PASSWORD}}@{server}/{dbname}"
    dotenv = f"DATABASE_URL={url}\n" if request.param == "url-in-dotenv" else ""
    write_files(root, {**SEEDS,
                 "seedkit.toml": f"""
                     [database]
                     url = "{config_url}"
                     connect_timeout = 1

                     [seeds]
                     lock_timeout = 60

                     [envs.dev]
                     include = ["common", "dev"]
                 """,
                 ".env": dotenv + f"DB_PASSWORD='{password}'\n"})
    yield Setup(root, password, url, server, full=request.param == "url-in-dotenv")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_no_command_prints_the_password(setup: Setup) -> None:
    root, password = setup.root, setup.password
    secrets = {password, quote(password, safe=""), quote(password)}
    outputs: list[str] = []

    def check(expected_code: int, *args: str) -> str:
        return check_all(root, secrets, [(expected_code, list(args))], outputs)[0]

    # success paths (commands that change nothing run side by side)
    full = setup.full
    shown = check_all(root, secrets, [(0, ["info"]), (0, ["--debug", "info", "--json"])] + [
        (0, ["migrate", "lint"]), (0, ["migrate", "lint", "--json"]), (0, ["migrate", "up", "--dry-run"])] * full,
        outputs)
    assert "***" in shown[0]
    check(0, "migrate", "up")
    if full:
        check_all(root, secrets, [(0, ["migrate", "status"]), (0, ["migrate", "status", "--json"]),
                                  (0, ["migrate", "verify"]), (0, ["migrate", "verify", "--json"])], outputs)
    check(0, "run", "dev", "--json")
    if full:
        check_all(root, secrets, [(0, ["run", "dev"]), (0, ["run", "dev", "--check"]),
                                  (0, ["run", "dev", "--dry-run", "--diff"])], outputs)

    # a failing migration, with and without a traceback
    write_files(root, {"migrations/002_broken.sql": "-- migrate:up\nSELECT * FROM no_such_table;\n"})
    check(1, "--debug", "migrate", "up")
    if full:
        check_all(root, secrets, [(1, ["migrate", "up"]), (3, ["migrate", "status", "--exit-code"]),
                                  (0, ["migrate", "status", "--json"])], outputs)
    (root / "migrations" / "002_broken.sql").unlink()

    # fixture errors: a located one, and a Python fixture whose exception quotes the URL and the password
    write_files(root, {"seeds/dev/bad.yaml": "table: users\nkey: [email]\nrows:\n  - {email: b@x.io, nmae: x}\n"})
    check_all(root, secrets, [(2, ["run", "dev"]), (2, ["--debug", "run", "dev", "--json"])][:1 + full], outputs)
    (root / "seeds" / "dev" / "bad.yaml").unlink()
    write_files(root, {"seeds/dev/leaky.py": """
        import os

        from seedkit import fixture


        @fixture("users", key=["email"])
        def leaky(fake):
            yield {"email": "c@x.io"}
            raise RuntimeError(f"cannot reach {os.environ.get('DATABASE_URL')} with {os.environ['DB_PASSWORD']}")
    """})
    check_all(root, secrets, [(2, ["--debug", "run", "dev"]), (2, ["run", "dev"])][:1 + full], outputs)
    (root / "seeds" / "dev" / "leaky.py").unlink()

    # a database error in the middle of the run (a CHECK constraint: the row is named, exit 2)
    write_files(root, {"seeds/dev/negative.yaml":
                       "table: users\nkey: [email]\nrows:\n  - {email: n@x.io, score: -1}\n"})
    check_all(root, secrets, [(2, ["--debug", "run", "dev"]), (2, ["run", "dev"])][:1 + full], outputs)
    (root / "seeds" / "dev" / "negative.yaml").unlink()

    # a lock timeout: the message names the holder (its query is run with the URL). Until now the runs
    # side by side could wait for each other as long as a busy machine needs; this one gives up at once.
    config = root / "seedkit.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("lock_timeout = 60", "lock_timeout = 1"),
                      encoding="utf-8")
    with psycopg.connect(setup.url, autocommit=False) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [PostgresDatabase.SEED_LOCK_KEY])
        assert "***" in check(4, "--debug", "run", "dev")

    assert len(outputs) >= (25 if full else 9)


def test_connection_failures_and_usage_errors_do_not_print_the_password(tmp_path: Path, pg_url: str) -> None:
    """No role is needed here: the server refuses, the database does not exist, the port is not a number,
    or the URL lands where an option or a command was expected and the framework quotes it back."""
    password = "p@ss:w/rd%S3cr3t#2"
    secrets = {password, quote(password, safe=""), quote(password)}
    server = urlsplit(pg_url).netloc.rsplit("@", 1)[1]
    user = f"someone:{quote(password, safe='')}"
    write_files(tmp_path, {**SEEDS, "seedkit.toml": """
        [database]
        url = "sqlite:///unused.db"
        connect_timeout = 1

        [envs.dev]
        include = ["common", "dev"]
    """})
    refused = f"postgresql://{user}@127.0.0.1:1/nowhere"
    unknown_db = f"postgresql://{user}@{server}/no_such_database_{uuid.uuid4().hex[:6]}"
    bad_port = f"postgresql://{user}@127.0.0.1:port/db"
    runs = [(1, args) for url in (refused, unknown_db, bad_port) for args in (
        ["info", "--database", url], ["--debug", "info", "--database", url], ["run", "dev", "--database", url],
        ["migrate", "status", "--database", url], ["--debug", "migrate", "up", "--database", url])]
    runs += [(2, ["run", "dev", refused]), (2, [refused]), (2, ["--config", refused, "info"]),
             (2, ["migrate", "up", "--lock-timeout", refused]), (2, ["--debug", "run", "dev", "--only"])]
    texts = check_all(tmp_path, secrets, runs, [])
    assert all("Traceback" in text for (_, args), text in zip(runs, texts) if args[0] == "--debug" and
               args[1] != "run")  # the tracebacks were shown, and masked
