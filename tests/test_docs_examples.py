"""The docs are the user contract: every example in README.md and docs/*.md runs here, so a broken
example fails CI.

Each fenced block is handled by its kind:

- a block whose first line is ``# PATH`` (``# seeds/dev/users.py``, ``# seedkit.toml``) is a file: it is
  written into the doc's project and checked the way seedkit reads it;
- ``console``/``sh`` blocks are commands (lines after ``$ ``, or every line), run in that project;
- Python without a file header runs in the project (``exec``, current folder = the project);
- SQL is parsed by PostgreSQL's own parser (pglast); JSON and YAML are parsed; ``ini`` keys must be
  options the pytest plugin registers; untagged and ``text`` blocks are output samples (compared to the
  real output where a test here produces it) or command synopses (every option must exist in --help).

Each doc gets a small project of its own (a "world": schema, base seeds, configuration) in which its
examples make sense, and a check at the end that they did what the doc says. ``test_every_block_is_handled``
fails for a block of a kind nothing here runs.
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pglast
import psycopg
import pytest
from psycopg import sql

from seedkit.config import load_config, read_dotenv
from seedkit.seed.load import load_file
from tests.support.template import REPO, render

DOCS = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
SEEDKIT = str(BIN / "seedkit")

_BLOCK = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
_HEADER = re.compile(r"#\s+(?P<path>[\w./-]+\.(?:py|ya?ml|toml|ini|env|json|csv|sql)|\.env)\b")
SHELL = {"console", "sh", "shell", "bash"}
HANDLED = SHELL | {"python", "yaml", "yml", "toml", "ini", "dotenv", "json", "sql", "text", ""}


@dataclass
class Block:
    doc: str
    line: int
    lang: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def path(self) -> str | None:
        """The file this block is, when its first line says so (``# seeds/dev/users.py``)."""
        first = self.body.split("\n", 1)[0]
        m = _HEADER.match(first)
        return m["path"] if m else None

    def commands(self) -> list[str]:
        lines = [line for line in self.body.splitlines() if line.strip()]
        if any(line.startswith("$ ") for line in lines):
            lines = [line[2:] for line in lines if line.startswith("$ ")]
        return [re.split(r"\s+#\s", line, maxsplit=1)[0].strip() for line in lines]

    @property
    def is_synopsis(self) -> bool:
        lines = [line for line in self.body.splitlines() if line.strip()]
        return bool(lines) and all(line.startswith("seedkit ") for line in lines) and any(
            "[" in line or re.search(r"\b[A-Z]{3,}\b", line) for line in lines)

    @property
    def is_command_list(self) -> bool:
        lines = [line for line in self.body.splitlines() if line.strip()]
        return bool(lines) and all(line.startswith("seedkit ") for line in lines) and not self.is_synopsis


def blocks(doc: str) -> list[Block]:
    text = (REPO / doc).read_text(encoding="utf-8")
    return [Block(doc, text[:m.start()].count("\n") + 1, m["lang"].lower(), m["body"]) for m in _BLOCK.finditer(text)]


def of(doc: str, *langs: str) -> list[Block]:
    return [b for b in blocks(doc) if b.lang in langs]


# --- checks shared by every doc -------------------------------------------------------------------

def test_every_block_is_handled() -> None:
    for doc in DOCS:
        for block in blocks(doc):
            assert block.lang in HANDLED, f"{block.where}: no test runs ```{block.lang} blocks"
            if block.lang == "python" and block.path is None:
                compile(block.body, block.where, "exec")


@pytest.mark.parametrize("doc", DOCS)
def test_sql_json_and_yaml_examples_parse(doc: str, tmp_path: Path) -> None:
    for block in blocks(doc):
        if block.lang == "sql":
            try:
                pglast.parse_sql(block.body)
            except pglast.parser.ParseError as exc:
                pytest.fail(f"{block.where}: the SQL example does not parse: {exc}")
        elif block.lang == "json":
            json.loads(block.body)
        elif block.lang in ("yaml", "yml"):
            assert block.path, f"{block.where}: a YAML example names its file on its first line"
            file = tmp_path / Path(block.path).name
            file.write_text(block.body, encoding="utf-8")
            assert load_file(file, variables={"ADMIN_TOKEN": "t0ken"}), block.where


def test_nothing_cites_a_file_outside_the_repository() -> None:
    """README, docs, --help, the package and the tests speak of the project alone."""
    texts = {doc: (REPO / doc).read_text(encoding="utf-8") for doc in DOCS}
    texts.update({str(p.relative_to(REPO)): p.read_text(encoding="utf-8")
                  for folder in ("seedkit", "tests", "examples", "template", "bench")
                  for p in (REPO / folder).rglob("*") if p.is_file() and p.suffix in (".py", ".jinja", ".md")})
    texts["RELIABILITY.md"] = (REPO / "RELIABILITY.md").read_text(encoding="utf-8")
    pattern = re.compile(r"\bSPEC\b|\bSTYLE\.md\b|/work/shared|HELPER_BRIEF")
    cited = [f"{name}: {m.group(0)}" for name, text in texts.items() if name != "tests/test_docs_examples.py"
             for m in [pattern.search(text)] if m]
    assert cited == []
    # Relative links in the docs point at files that exist.
    for doc, text in texts.items():
        if not doc.endswith(".md"):
            continue
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (REPO / doc).parent.joinpath(target).exists(), f"{doc}: broken link {target}"


def test_configuration_doc_covers_every_key() -> None:
    from seedkit._config_schema import Settings

    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for section, model in Settings.model_fields.items():
        if section == "envs":
            from seedkit._config_schema import EnvSettings

            keys = [f"envs.NAME.{k}" for k in EnvSettings.model_fields]
        elif section == "lint":  # a free-form table: rule id = level
            keys = ["lint.RULE"]
        else:
            keys = [f"{section}.{k}" for k in model.annotation.model_fields]  # type: ignore[union-attr]
        for key in keys:
            assert f"`{key}`" in text, f"docs/configuration.md does not describe {key}"
    for phrase in ("[tool.seedkit]", ".env", "DATABASE_URL", "SEEDKIT_SUPERUSER_URL", "${VAR:-default}",
                   "wins over"):
        assert phrase in text, phrase
    assert "(docs/configuration.md)" in (REPO / "README.md").read_text(encoding="utf-8")


# --- running examples -----------------------------------------------------------------------------

def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.endswith("DATABASE_URL") or k.startswith(("SEEDKIT_", "POSTGRES_", "PG", "PYTEST_")))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def sh(world: Path, command: str, env: dict[str, str], *, ok: tuple[int, ...] = (0,), where: str = ""
       ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, shell=True, cwd=world, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode in ok, f"{where}: `{command}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
    return result


def write_file(world: Path, block: Block) -> Path:
    assert block.path
    path = world / block.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.body, encoding="utf-8")
    return path


def run_python(world: Path, block: Block, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict:
    with monkeypatch.context() as mp:
        mp.chdir(world)
        for key in [k for k in os.environ if k.endswith("DATABASE_URL")]:
            mp.delenv(key)
        for key, value in env.items():
            if key.endswith("_URL") or key == "ADMIN_TOKEN":
                mp.setenv(key, value)
        namespace: dict = {"__name__": "__doc_example__"}
        exec(compile(block.body, block.where, "exec"), namespace)  # noqa: S102
        return namespace


def test_readme(tmp_path: Path) -> None:
    """README's commands are make targets of this repository: each exists and expands (make -n); the
    demo itself runs in test_demo.py, and `make test` is this suite."""
    [block] = of("README.md", *SHELL)
    for command in block.commands():
        assert command.startswith("make "), command
        result = subprocess.run([*shlex.split(command), "-n"], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.strip(), f"{block.where}: {command}\n{result.stderr}"


def test_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = tmp_path / "project"
    world.mkdir()
    outputs = []
    for block in blocks("docs/configuration.md"):
        if block.path:
            path = write_file(world, block)
            if path.name in ("seedkit.toml", "pyproject.toml"):
                config = load_config(path, environ={"DATABASE_URL": "sqlite:///x.db"})
                assert config.settings.envs or config.settings.seeds, block.where
            elif path.name == ".env":
                assert read_dotenv(path), block.where
        elif block.lang in SHELL:
            for command in block.commands():
                outputs.append(sh(world, command, clean_env(), where=block.where).stdout)
    # The precedence the doc states: .env's DATABASE_URL, then a real variable wins, then --env's own URL.
    first, second, third = outputs
    assert "database: postgresql://app:***@127.0.0.1:5432/app\n" in first
    assert "s3cret" not in first + second + third
    assert f"database: sqlite:///{world.resolve() / 'other.db'}" in second
    assert "database: postgresql://app:***@127.0.0.1:5432/app_test" in third


SEEDS_SCHEMA = """
CREATE TABLE roles (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE orgs (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE);
CREATE TABLE teams (id INTEGER PRIMARY KEY, org TEXT NOT NULL, slug TEXT NOT NULL, UNIQUE (org, slug));
CREATE TABLE projects (id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL REFERENCES orgs (id), slug TEXT NOT NULL,
                       UNIQUE (org_id, slug));
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, bio TEXT,
                    role_id INTEGER REFERENCES roles (id), team_id INTEGER REFERENCES teams (id),
                    project_id INTEGER REFERENCES projects (id), api_token TEXT, password_hash TEXT);
CREATE TABLE posts (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, title TEXT,
                    author_id INTEGER REFERENCES users (id));
"""

BASE_SEEDS = {
    "seeds/common/roles.yaml": "key: [name]\nrows:\n  - name: admin\n  - name: member\n",
    "seeds/common/orgs.yaml": "key: [slug]\nrows:\n  - slug: acme\n",
    "seeds/common/teams.yaml": "key: [org, slug]\nrows:\n  - {org: acme, slug: core}\n",
    "seeds/common/projects.yaml": "key: [org_id, slug]\nrows:\n  - {org_id: !ref orgs/acme, slug: rocket}\n",
}


def seeds_world(world: Path) -> Path:
    world.mkdir(parents=True)
    with sqlite3.connect(world / "docs.db") as conn:
        conn.executescript(SEEDS_SCHEMA)
    conn.close()
    for name, text in BASE_SEEDS.items():
        (world / name).parent.mkdir(parents=True, exist_ok=True)
        (world / name).write_text(text, encoding="utf-8")
    return world


def test_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = seeds_world(tmp_path / "project")
    env = clean_env(DATABASE_URL="sqlite:///docs.db", ADMIN_TOKEN="t0ken")
    reports = []
    for block in blocks("docs/seeds.md"):
        if block.path:
            write_file(world, block)
        elif block.lang == "python":
            reports.append(run_python(world, block, monkeypatch, env)["report"])
        elif block.lang in SHELL:
            for command in block.commands():
                sh(world, command, env, where=block.where)
    [report] = reports
    assert report.inserted > 0 and report.table("users").inserted == 1
    with sqlite3.connect(world / "docs.db") as conn:
        row = conn.execute("SELECT u.api_token, r.name, t.slug, p.slug FROM users u JOIN roles r ON r.id = u.role_id "
                           "JOIN teams t ON t.id = u.team_id JOIN projects p ON p.id = u.project_id").fetchone()
    conn.close()
    assert row == ("t0ken", "admin", "core", "rocket")
    # Every option in the doc's table is an option of `seedkit run`.
    help_text = sh(world, f"{SEEDKIT} run --help", env).stdout
    for option in re.findall(r"^\| `(--[a-z-]+)", (REPO / "docs/seeds.md").read_text(), re.M):
        assert option in help_text, option


def test_python_fixtures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = seeds_world(tmp_path / "project")
    (world / "seedkit.toml").write_text(
        '[database]\nurl = "sqlite:///docs.db"\n\n[seeds]\nfaker_seed = 1234\n\n'
        '[envs.dev]\ninclude = ["common", "dev"]\n\n[envs.load]\ninclude = ["common", "load"]\n')
    env = clean_env()
    for block in blocks("docs/python-fixtures.md"):
        if block.path:
            write_file(world, block)
        elif block.lang == "python":
            body = "from seedkit import fixture, ref\n" + block.body  # a fragment of a fixture file
            run_python(world, Block(block.doc, block.line, block.lang, body), monkeypatch, env)
        elif block.lang in SHELL:
            for command in block.commands():
                sh(world, command, env, where=block.where)
    dev = json.loads(sh(world, f"{SEEDKIT} run dev --json", env).stdout)
    assert dev["totals"]["inserted"] == 200 + 100_000 + 5
    again = json.loads(sh(world, f"{SEEDKIT} run dev --json", env).stdout)
    assert not again["changed"]
    load = json.loads(sh(world, f"{SEEDKIT} run load --json", env).stdout)
    assert load["tables"][-1]["table"] == "users" and load["tables"][-1]["inserted"] == 100_000 - 200


@pytest.mark.postgres
def test_pytest(template_repo: Path, tmp_path: Path, pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin's examples run in a project made from the template: on PostgreSQL for the tests (with
    pytest-xdist, as the doc shows), on SQLite for the Python API."""
    parts = urlsplit(pg_server)
    project = render(template_repo, tmp_path / "pg", {"database": "postgresql", "example_schema": True})
    base = urlunsplit((parts.scheme, parts.netloc, "/docs_pytest_test", "", ""))
    env = clean_env(DATABASE_URL=urlunsplit((parts.scheme, parts.netloc, "/docs_pytest", "", "")),
                    TEST_DATABASE_URL=base)
    lite = render(template_repo, tmp_path / "lite", {"database": "sqlite", "example_schema": True})
    plugin_options = set(re.findall(r'addini\("(\w+)"', (REPO / "seedkit/pytest_plugin.py").read_text()))
    ran_tests = False
    for block in blocks("docs/pytest.md"):
        if block.lang == "ini":
            parser = configparser.ConfigParser()
            parser.read_string(block.body)
            assert set(parser["pytest"]) <= plugin_options, block.where
        elif block.path:
            assert block.path.startswith("tests/"), block.where
            write_file(project, block)
        elif block.lang == "python":
            namespace = run_python(lite, block, monkeypatch, clean_env())
            assert namespace["report"].inserted > 0
        elif block.lang in SHELL:
            for command in block.commands():
                assert command.startswith("pytest"), command
                argv = command.replace("pytest", f"{BIN / 'python'} -m pytest -p no:cacheprovider", 1)
                result = sh(project, argv, env, where=block.where)
                ran_tests = True
                # The template's own 4 tests and the doc's 2.
                assert re.search(r"\b6 passed\b", result.stdout), result.stdout
    assert ran_tests
    with psycopg.connect(pg_server, autocommit=True) as admin:
        left = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'docs_pytest%'").fetchall()
        for (name,) in left:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    assert left == [], "the plugin drops what it created"


MIGRATIONS = {
    "20240101000000_orgs.sql": "-- migrate:up\nCREATE TABLE orgs (id INTEGER PRIMARY KEY, name TEXT);\n\n"
                               "-- migrate:down\nDROP TABLE orgs;\n",
    "20240201000000_users.sql": "-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n\n"
                                "-- migrate:down\nDROP TABLE users;\n",
    "20240301120000_index.sql": "-- migrate:up\nCREATE INDEX users_email_idx ON users (email);\n\n"
                                "-- migrate:down\nDROP INDEX users_email_idx;\n",
}
# The doc's failed non-transactional migration: the first statement runs, the second fails.
FAILING_INDEX = ("-- migrate:up transaction:false\nCREATE INDEX users_email_idx ON users (email);\n"
                 "CREATE INDEX users_bad_idx ON no_such_table (email);\n\n"
                 "-- migrate:down\nDROP INDEX users_email_idx;\n")


def migrations_world(world: Path, *, state: str) -> Path:
    """A SQLite project with three migrations: ``fresh`` (none applied), ``applied`` (all), ``failing`` (the
    third is non-transactional and fails at its second statement) or ``failed`` (it did, on `up`)."""
    (world / "migrations").mkdir(parents=True)
    (world / "seedkit.toml").write_text('[database]\nurl = "sqlite:///docs.db"\n')
    for name, text in MIGRATIONS.items():
        failing = state in ("failing", "failed") and "index" in name
        (world / "migrations" / name).write_text(FAILING_INDEX if failing else text)
    if state in ("applied", "failed"):
        up = subprocess.run([SEEDKIT, "migrate", "up"], cwd=world, env=clean_env(), capture_output=True, text=True)
        assert up.returncode == (1 if state == "failed" else 0), up.stderr
    return world


def test_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command line and each API call of the doc, in the state it is meant for: the `resolve` lines
    after a failed non-transactional migration, `down` after `up`, the rest on a fresh project."""
    env = clean_env()
    worlds = iter(range(1000))

    def world(state: str) -> Path:
        return migrations_world(tmp_path / f"w{next(worlds)}", state=state)

    def state_for(text: str) -> str:
        if "resolve" in text:
            return "failed"
        return "fresh" if re.search(r"\b(up|new)\b", text) else "applied"

    for block in blocks("docs/migrations.md"):
        if block.lang in SHELL or block.is_command_list or block.body.startswith("$ "):
            for command in block.commands():
                sample = block.body.startswith("$ ") and block.lang == ""
                result = sh(world("failing" if sample else state_for(command)),
                            command.replace("seedkit ", f"{SEEDKIT} ", 1), env, ok=(1,) if sample else (0,),
                            where=block.where)
                if sample:  # a transcript: the real output starts the way the sample does
                    for shown in block.body.splitlines()[1:]:
                        head = shown.split("…", 1)[0].split("20240301120000", 1)[0]
                        assert head in result.stderr, f"{block.where}: {shown!r} not in\n{result.stderr}"
        elif block.is_synopsis:
            for line in block.body.splitlines():
                words = [w for w in line.split()[:3] if re.fullmatch(r"[a-z]+", w)]
                help_text = sh(tmp_path, f"{SEEDKIT} {' '.join(words[1:])} --help", env, where=block.where).stdout
                for option in re.findall(r"--[a-z-]+", line):
                    assert option in help_text, f"{block.where}: {' '.join(words)} has no {option}"
        elif block.lang == "python":
            # The imports and `config = …` first, then each call on a project in the state it needs.
            tree = ast.parse(block.body)
            setup = [n for n in tree.body if not isinstance(n, ast.Expr) and "migrate." not in ast.unparse(n)]
            calls = [n for n in tree.body if n not in setup]
            assert calls, block.where
            prelude = "\n".join(ast.unparse(n) for n in setup)
            for call in calls:
                code = ast.unparse(call)
                example = Block(block.doc, block.line + call.lineno, "python", prelude + "\n" + code)
                run_python(world(state_for(code)), example, monkeypatch, env)
        elif block.lang == "sql":
            assert "-- migrate:up" in block.body


LINT_MIGRATIONS = {
    "20240102100005_create_users.sql": "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, "
                                       "created_at timestamptz NOT NULL DEFAULT now());\n",
    "20240102100006_create_orgs.sql": "-- migrate:up\nCREATE TABLE orgs (id bigint PRIMARY KEY, name text);\n",
    "20240102100007_users_created_at_idx.sql": "-- migrate:up\nCREATE INDEX users_created_at_idx ON users "
                                               "(created_at);\n",
}


@pytest.mark.postgres
def test_lint(tmp_path: Path, pg_url: str) -> None:
    """The console examples run against a project whose output is the doc's sample, line for line."""
    world = tmp_path / "project"
    (world / "migrations").mkdir(parents=True)
    (world / "seedkit.toml").write_text("[database]\nurl = \"${DATABASE_URL}\"\n")
    for name, text in LINT_MIGRATIONS.items():
        (world / "migrations" / name).write_text(text)
    env = clean_env(DATABASE_URL=pg_url)
    [console] = of("docs/lint.md", *SHELL)
    outputs = {}
    for command in console.commands():
        outputs[command] = sh(world, command.replace("seedkit ", f"{SEEDKIT} ", 1), env, ok=(0, 3),
                              where=console.where)
    sample = next(b for b in blocks("docs/lint.md") if b.lang == "text")
    assert outputs["seedkit migrate lint"].stdout == sample.body, sample.where
    json.loads(outputs["seedkit migrate lint --json"].stdout)


def test_lint_rule_examples_do_what_they_say() -> None:
    """Under each rule of docs/lint.md, the `-- reported` example is reported by that rule and the
    `-- instead` example is not (unless it says it is a script or job, run outside migrations)."""
    from seedkit.lint import RULES, lint_sql

    text = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    sections = re.split(r"^### `([a-z-]+)`\n", text, flags=re.M)
    checked = 0
    for rule, body in zip(sections[1::2], sections[2::2]):
        assert rule in RULES, f"docs/lint.md documents an unknown rule {rule}"
        for m in re.finditer(r"^```sql\n(.*?)^```", body, re.S | re.M):
            example = m.group(1)
            kind = example.split("\n", 1)[0].strip()
            found = {f.rule for f in lint_sql(example, path="example.sql",
                                              transactional="transaction:false" not in example)}
            if kind.startswith("-- reported"):
                assert rule in found, f"docs/lint.md, {rule}: the reported example is not reported ({found})"
            elif kind.startswith("-- instead") and "script or job" not in example:
                assert rule not in found, f"docs/lint.md, {rule}: the 'instead' example is reported too"
            checked += 1
    assert checked >= 30


def test_documented_plugin_options_exist() -> None:
    text = (REPO / "docs" / "pytest.md").read_text(encoding="utf-8")
    source = (REPO / "seedkit" / "pytest_plugin.py").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(--seedkit-[a-z-]+)", text, re.M))
    assert documented == set(re.findall(r'"(--seedkit-[a-z-]+)"', source)), documented
    ini = set(re.findall(r"^\| `--seedkit-[a-z-]+[^|]*\| `(\w+)`", text, re.M))
    assert ini == set(re.findall(r'addini\("(\w+)"', source)), ini
