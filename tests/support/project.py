"""The suite's one project builder: a seedkit project in a folder (``seedkit.toml``, ``migrations/``,
``seeds/``), the seedkit CLI run on it (in-process or as a real process), and its database.

Three layouts, each a constructor::

    Project(root, url, envs=None)                  # the seed engine's: [seeds] faker_seed = 7 and
                                                   # envs dev/test (+common) and protected production
    Project.with_migrations(root, url)             # the migration runner's: [migrations] dir and a
                                                   # protected production env on the same database
    Project.with_migrations(root, url, url_variable="APP_DATABASE_URL")
                                                   # the same, the URL read from the project's .env
    Project.bare(root, url)                        # nothing written: the test writes its own files

Files: ``write(rel, text)`` a seed file under ``seeds/``; ``write_files({rel: text})`` anything under
the root; ``single``/``pair``/``folder`` a migration in each of the three migration file layouts.
CLI: ``cli(*args)`` in-process (CliRunner), ``migrate(*args)`` = ``cli("migrate", *args)``;
``run(*args)`` / ``spawn(*args)`` / ``command(*args)`` a real ``seedkit`` process. Every one passes
``--config`` so the working folder does not matter.
Database: ``rows``, ``scalar``, ``sql``, ``snapshot``, ``pg_stats``, ``history``, ``applied``, ``tables``.

``pg_projects(server, tmp_path)`` makes projects (env ``dev``) each on a new database of ``server``, for
differential tests that run two paths side by side; the databases are dropped at the end.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from seedkit import db, load_config
from seedkit.config import Config
from tests.support.pg import create_pg_database, drop_pg_database
from tests.support.processes import process_env, seedkit_command

SEED_ENVS: dict[str, dict] = {"dev": {"include": ["common", "dev"]}, "test": {"include": ["common", "test"]},
                              "production": {"include": ["common"], "protected": True}}


def write_files(root: Path, files: dict[str, str]) -> None:
    """Write each ``{relative path: text}`` under ``root`` (text dedented, leading newline dropped)."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def offline_postgres_folder(root: Path, monkeypatch: Any) -> None:
    """Make ``root`` the working directory of a PostgreSQL project whose server is never reached (what lint
    reads): its ``seedkit.toml`` names a port nobody listens on, and no URL comes from the environment."""
    for name in ("DATABASE_URL", "TEST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(root)
    write_files(root, {"seedkit.toml": """
        [database]
        url = "postgresql://app:secret@127.0.0.1:1/app"
        connect_timeout = 0
    """})


class Project:
    """A seedkit project in ``root`` whose database is ``url``; see the module docstring."""

    def __init__(self, root: Path, url: str, envs: dict[str, dict] | None = None, *, _layout: str = "seeds",
                 url_variable: str | None = None):
        self.root = root
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self.config_path = root / "seedkit.toml"
        self.migrations_dir = root / "migrations"
        self.seeds_dir = root / "seeds"
        self.environ: dict[str, str] | None = None  # what ${VARS} in seedkit.toml read (None: os.environ)
        root.mkdir(parents=True, exist_ok=True)
        if _layout == "seeds":
            self._write_seed_layout(envs or SEED_ENVS)
        elif _layout == "migrations":
            self._write_migration_layout(url_variable)

    @classmethod
    def with_migrations(cls, root: Path, url: str, *, url_variable: str | None = None) -> Project:
        return cls(root, url, _layout="migrations", url_variable=url_variable)

    @classmethod
    def bare(cls, root: Path, url: str) -> Project:
        return cls(root, url, _layout="bare")

    def _write_seed_layout(self, envs: dict[str, dict]) -> None:
        lines = ["[database]", f'url = "{self.url}"', "", "[seeds]", "faker_seed = 7", ""]
        for name, spec in envs.items():
            lines.append(f"[envs.{name}]")
            lines.append("include = [" + ", ".join(f'"{i}"' for i in spec["include"]) + "]")
            if spec.get("protected"):
                lines.append("protected = true")
            lines.append("")
        self.config_path.write_text("\n".join(lines))
        for spec in envs.values():
            for folder in spec["include"]:
                (self.seeds_dir / folder).mkdir(parents=True, exist_ok=True)

    def _write_migration_layout(self, url_variable: str | None) -> None:
        self.migrations_dir.mkdir(parents=True, exist_ok=True)
        if url_variable is None:
            self.environ = {}  # nothing from the developer's shell
            url = self.url
        else:
            url = "${" + url_variable + "}"
            (self.root / ".env").write_text(f"{url_variable}={self.url}\n", encoding="utf-8")
        self.config_path.write_text(
            f'[database]\nurl = "{url}"\n\n[migrations]\ndir = "migrations"\n\n'
            f'[envs.production]\nprotected = true\ndatabase_url = "{url}"\n', encoding="utf-8")

    @property
    def pg(self) -> bool:
        return self.dialect == "postgresql"

    def config(self) -> Config:
        """``seedkit.toml`` loaded now."""
        return load_config(self.config_path, environ=self.environ)

    # -- files ---------------------------------------------------------------------------------------
    def write(self, rel: str, text: str) -> Path:
        """A seed file ``seeds/REL`` (text dedented)."""
        path = self.seeds_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def write_files(self, files: dict[str, str]) -> None:
        write_files(self.root, files)

    def single(self, version: str, name: str, up: str, down: str | None = None, *,
               transactional: bool = True) -> Path:
        """``VERSION_NAME.sql`` with ``-- migrate:up`` / ``-- migrate:down`` sections."""
        flag = "" if transactional else " transaction:false"
        text = f"-- migrate:up{flag}\n{up}\n" + (f"\n-- migrate:down\n{down}\n" if down is not None else "")
        path = self.migrations_dir / f"{version}_{name}.sql"
        path.write_text(text, encoding="utf-8")
        return path

    def pair(self, version: str, name: str, up: str, down: str | None = None, *,
             transactional: bool = True) -> Path:
        """``VERSION_NAME.up.sql`` and ``VERSION_NAME.down.sql``."""
        head = "" if transactional else "-- seedkit: transaction=false\n"
        path = self.migrations_dir / f"{version}_{name}.up.sql"
        path.write_text(head + up + "\n", encoding="utf-8")
        if down is not None:
            (self.migrations_dir / f"{version}_{name}.down.sql").write_text(down + "\n", encoding="utf-8")
        return path

    def folder(self, version: str, name: str, up: str, down: str | None = None, *,
               transactional: bool = True) -> Path:
        """``VERSION_NAME/up.sql`` and ``VERSION_NAME/down.sql``."""
        head = "" if transactional else "-- seedkit: transaction=false\n"
        folder = self.migrations_dir / f"{version}_{name}"
        folder.mkdir()
        (folder / "up.sql").write_text(head + up + "\n", encoding="utf-8")
        if down is not None:
            (folder / "down.sql").write_text(down + "\n", encoding="utf-8")
        return folder / "up.sql"

    # -- the CLI -------------------------------------------------------------------------------------
    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``seedkit --config … ARGS`` in-process; returns exit code, stdout and stderr (an exception
        other than an exit is raised, not turned into a code)."""
        from typer.testing import CliRunner

        from seedkit.cli import app

        result = CliRunner().invoke(app, ["--config", str(self.config_path), *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    def seed_report(self, *args: str) -> tuple[int, Any]:
        """``seedkit --config … run ARGS --json`` in-process, in a form two runs can be compared by: the exit
        code and the JSON report without its timings and database URL, or, when it printed no report, the
        output with the project's folder and the times masked."""
        result = self.cli("run", *args, "--json")
        text = result.stdout.replace(str(self.root), "<project>").replace(self.url, "<url>")
        try:
            report = json.loads(text)
        except ValueError:
            said = text + result.stderr.replace(str(self.root), "<project>")
            return result.returncode, re.sub(r"\d+ ms", "<ms>", said)
        report.pop("seconds")
        report.pop("database")
        for t in report["tables"]:
            t.pop("seconds")
        return result.returncode, report

    def migrate(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``seedkit --config … migrate ARGS`` in-process."""
        return self.cli("migrate", *args)

    def command(self, *args: str) -> list[str]:
        """The argv of a real ``seedkit --config … ARGS`` process."""
        return seedkit_command("--config", str(self.config_path), *args)

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``seedkit --config … ARGS`` in the project folder (stdout/stderr captured as text)."""
        return subprocess.Popen(self.command(*args), cwd=self.root, env=process_env(env), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run ``seedkit --config … ARGS`` to completion in a real process."""
        return subprocess.run(self.command(*args), cwd=self.root, env=process_env(env), text=True,
                              capture_output=True, timeout=timeout)

    # -- the database --------------------------------------------------------------------------------
    def rows(self, query: str, params: list[Any] | None = None) -> list[tuple]:
        with db.connect(self.url) as d:
            return [tuple(r) for r in d.fetchall(query, params)]

    def scalar(self, query: str, params: list[Any] | None = None) -> Any:
        return self.rows(query, params)[0][0]

    def sql(self, pg: str, sqlite: str | None = None) -> None:
        """Run DDL/DML, one statement per ';'-terminated chunk (test schemas have no ';' in bodies)."""
        text = pg if self.pg or sqlite is None else sqlite
        with db.connect(self.url) as d:
            if self.pg:
                d.execute(text)
            else:
                d.conn.executescript(text)

    def snapshot(self, tables: list[str]) -> dict[str, list[str]]:
        return {t: sorted(map(repr, self.rows(f"SELECT * FROM {t}"))) for t in tables}

    def pg_stats(self, tables: list[str]) -> dict[str, tuple | None]:
        with db.connect(self.url) as d:
            d.execute("SELECT pg_stat_force_next_flush()") if int(d.server_version.split(".")[0]) >= 15 else None
            out = {}
            for t in tables:
                row = d.fetchone("SELECT n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd FROM pg_stat_user_tables "
                                 "WHERE relname = %s", [t])
                out[t] = tuple(row) if row else None
            return out

    def history(self) -> list[tuple]:
        return self.rows("SELECT version, status FROM schema_migrations ORDER BY version")

    def applied(self) -> list[str]:
        return [v for v, s in self.history() if s == "applied"]

    def tables(self) -> set[str]:
        """The database's tables (seedkit's migration history tables left out)."""
        with db.connect(self.url) as d:
            names = {t.name for t in d.catalog(refresh=True).tables}
        return {n for n in names if not n.startswith("schema_migrations")}


@contextmanager
def pg_projects(server: str, tmp_path: Path, *, schema: str, batch_size: int | None = None,
                files: Callable[[Project], None] | None = None) -> Iterator[Callable[[str], Project]]:
    """``make(name)``: a project in ``tmp_path/name`` with env ``dev`` (``seeds/dev``), on a new database
    of ``server`` holding ``schema``, ``[seeds] batch_size`` when given, then ``files(project)``; every
    database made is dropped on the way out."""
    made: list[str] = []

    def make(name: str) -> Project:
        url = create_pg_database(server)
        made.append(url)
        root = tmp_path / name
        root.mkdir()
        p = Project(root, url, envs={"dev": {"include": ["dev"]}})
        if batch_size is not None:
            p.config_path.write_text(p.config_path.read_text().replace(
                "faker_seed = 7", f"faker_seed = 7\nbatch_size = {batch_size}"))
        p.sql(schema)
        if files is not None:
            files(p)
        return p

    try:
        yield make
    finally:
        for url in made:
            drop_pg_database(server, url)
