"""The command line end to end: help, version, the error boundary (README exit codes) and password masking.

In-process through ``typer.testing.CliRunner`` and, for what only a real process shows (the console
script, ``python -m seedkit``, what reaches the terminal), through real subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from typer.testing import CliRunner

import seedkit
from seedkit.cli import app

CLOSED_PORT_URL = "postgresql://app:{pw}@127.0.0.1:1/app"  # nothing listens on port 1


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty project folder as the working directory, with no database variables around."""
    for name in ("DATABASE_URL", "TEST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def password() -> str:
    return "Pw" + uuid.uuid4().hex[:12]


def with_password(url: str) -> tuple[str, str]:
    """``url`` with a password in it (the test server trusts local connections and ignores it)."""
    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    pw = password()
    netloc = f"{parts.username or ''}:{pw}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), pw


def config(folder: Path, url: str | None = None, extra: str = "") -> Path:
    text = "[database]\nconnect_timeout = 0\n"  # one attempt: nothing here waits for a server
    if url is not None:
        text += f'url = "{url}"\n'
    text += extra
    path = folder / "seedkit.toml"
    path.write_text(text, encoding="utf-8")
    return path


def assert_clean_error(stdout: str, stderr: str, *, traceback: bool = False) -> None:
    """``error: …`` on stderr, nothing on stdout, a traceback only when asked for."""
    assert stdout == ""
    assert "error: " in stderr
    if traceback:
        assert "Traceback (most recent call last)" in stderr
        assert stderr.rstrip().splitlines()[-1].startswith(("error: ", "hint: "))  # the message comes last
    else:
        assert stderr.startswith("error: ")
        assert "Traceback" not in stderr and 'File "' not in stderr


# --- help and version -----------------------------------------------------------------------------

def test_help(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("Usage", "--config", "--debug", "--version", "info"):
        assert word in result.stdout
    assert runner.invoke(app, ["-h"]).stdout == result.stdout


def test_command_help_is_the_docstring(runner: CliRunner) -> None:
    result = runner.invoke(app, ["info", "--help"])
    assert result.exit_code == 0
    assert "Show the configuration in use" in result.stdout
    assert "--database" in result.stdout and "--json" in result.stdout


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"seedkit {seedkit.__version__}\n"


def test_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command" in result.stderr


# --- seedkit info ---------------------------------------------------------------------------------

def test_info_without_connecting(runner: CliRunner, project_dir: Path) -> None:
    cfg = config(project_dir, "sqlite:///app.db", '[envs.dev]\ninclude = ["common", "dev"]\n'
                 '[envs.production]\ninclude = ["common"]\nprotected = true\n')
    result = runner.invoke(app, ["info", "--no-connect"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"config: {cfg}" in lines
    assert f"database: sqlite:///{project_dir / 'app.db'}" in lines
    assert "  dev: common, dev" in lines
    assert "  production: common (protected)" in lines
    assert not (project_dir / "app.db").exists()


def test_info_on_sqlite(runner: CliRunner, project_dir: Path) -> None:
    config(project_dir, "sqlite:///app.db")
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["server"].startswith("sqlite ")
    assert data["tables"] == 0
    assert data["root"] == str(project_dir)


def test_info_env_picks_the_environment_database(runner: CliRunner, project_dir: Path) -> None:
    config(project_dir, "sqlite:///main.db", '[envs.test]\ninclude = ["test"]\ndatabase_url = "sqlite:///t.db"\n')
    result = runner.invoke(app, ["info", "--no-connect", "--env", "test", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["database"] == f"sqlite:///{project_dir / 't.db'}"


def test_config_option_overrides_discovery(runner: CliRunner, project_dir: Path, tmp_path_factory) -> None:
    config(project_dir, "sqlite:///here.db")
    other = config(tmp_path_factory.mktemp("other"), "sqlite:///there.db")
    result = runner.invoke(app, ["--config", str(other), "info", "--no-connect", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"] == str(other)
    assert data["database"] == f"sqlite:///{other.parent / 'there.db'}"


@pytest.mark.postgres
def test_info_on_postgres(runner: CliRunner, project_dir: Path, pg_url: str) -> None:
    url, pw = with_password(pg_url)
    config(project_dir, url)
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "server: postgresql " in result.stdout
    assert "tables: 0" in result.stdout
    assert pw not in result.output
    assert ":***@" in result.stdout

    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["server"].startswith("postgresql ") and pw not in result.output


# --- the error boundary ---------------------------------------------------------------------------

def test_config_error_exit_2(runner: CliRunner, project_dir: Path) -> None:
    cfg = config(project_dir, "sqlite:///a.db", "[seeds]\nfaker_sed = 1\n")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 2
    assert_clean_error(result.stdout, result.stderr)
    assert f"error: {cfg}:5: invalid configuration: unknown key 'seeds.faker_sed'" in result.stderr
    assert "\nhint: " in result.stderr


def test_config_error_with_debug_shows_the_traceback(runner: CliRunner, project_dir: Path) -> None:
    config(project_dir, "sqlite:///a.db", "[seeds]\nfaker_sed = 1\n")
    result = runner.invoke(app, ["--debug", "info"])
    assert result.exit_code == 2
    assert_clean_error(result.stdout, result.stderr, traceback=True)
    assert "seedkit.errors.ConfigError" in result.stderr


def test_invalid_toml_exit_2(runner: CliRunner, project_dir: Path) -> None:
    (project_dir / "seedkit.toml").write_text("[database\n")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 2
    assert_clean_error(result.stdout, result.stderr)
    assert "seedkit.toml:1" in result.stderr and "invalid TOML" in result.stderr


def test_missing_config_file_exit_2(runner: CliRunner, project_dir: Path) -> None:
    result = runner.invoke(app, ["--config", "nope.toml", "info"])
    assert result.exit_code == 2
    assert_clean_error(result.stdout, result.stderr)
    assert "configuration file not found: nope.toml" in result.stderr


def test_missing_variable_exit_2(runner: CliRunner, project_dir: Path) -> None:
    config(project_dir, "${DATABASE_URL}")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 2
    assert_clean_error(result.stdout, result.stderr)
    assert "environment variable DATABASE_URL is not set (used by database.url in" in result.stderr
    assert "seedkit.toml:3: " in result.stderr


def test_unknown_environment_exit_2(runner: CliRunner, project_dir: Path) -> None:
    config(project_dir, "sqlite:///a.db", '[envs.dev]\ninclude = ["dev"]\n')
    result = runner.invoke(app, ["info", "--env", "staging"])
    assert result.exit_code == 2
    assert_clean_error(result.stdout, result.stderr)
    assert "unknown environment 'staging' (configured: dev)" in result.stderr


def test_no_database_configured_exit_2(runner: CliRunner, project_dir: Path) -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 2
    assert_clean_error(result.stdout, result.stderr)
    assert "no database URL is configured" in result.stderr and "hint: pass --database" in result.stderr


def test_database_error_exit_1(runner: CliRunner, project_dir: Path) -> None:
    config(project_dir, CLOSED_PORT_URL.format(pw=password()))
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 1
    assert_clean_error(result.stdout, result.stderr)
    assert "error: cannot connect to postgresql://app:***@127.0.0.1:1/app" in result.stderr


def test_missing_sqlite_folder_exit_1(runner: CliRunner, project_dir: Path) -> None:
    config(project_dir, "sqlite:///no/such/folder/app.db")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 1
    assert_clean_error(result.stdout, result.stderr)
    assert "does not exist" in result.stderr


def test_unexpected_exception_is_reported_as_a_bug(runner: CliRunner, project_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pw = password()
    config(project_dir, "sqlite:///a.db")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom while using postgresql://app:{pw}@h/db")

    monkeypatch.setattr(seedkit.db, "connect", broken)
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 1
    assert_clean_error(result.stdout, result.stderr)
    assert "error: unexpected RuntimeError: boom while using postgresql://app:***@h/db" in result.stderr
    assert "--debug" in result.stderr and pw not in result.stderr

    result = runner.invoke(app, ["--debug", "info"])
    assert result.exit_code == 1
    assert_clean_error(result.stdout, result.stderr, traceback=True)
    assert "RuntimeError" in result.stderr and pw not in result.stderr


def test_interrupt_exit_130(runner: CliRunner, project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config(project_dir, "sqlite:///a.db")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(seedkit.db, "connect", interrupted)
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted\n"


# --- passwords never appear -----------------------------------------------------------------------

SOURCES = ["config", "dotenv", "environ", "option"]


def place_url(source: str, url: str, project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Put ``url`` where ``source`` says; return the extra arguments ``info`` needs."""
    if source == "config":
        config(project_dir, url)
        return []
    config(project_dir, "${DATABASE_URL}" if source != "option" else "sqlite:///unused.db")
    if source == "dotenv":
        (project_dir / ".env").write_text(f"DATABASE_URL={url}\n")
    elif source == "environ":
        monkeypatch.setenv("DATABASE_URL", url)
    else:
        return ["--database", url]
    return []


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("flags", [[], ["--json"], ["--debug"], ["--debug", "--json"]], ids=str)
def test_password_never_shown_on_failure(runner: CliRunner, project_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                         source: str, flags: list[str]) -> None:
    pw = password()
    extra = place_url(source, CLOSED_PORT_URL.format(pw=pw), project_dir, monkeypatch)
    global_flags = [f for f in flags if f == "--debug"]
    result = runner.invoke(app, [*global_flags, "info", *extra, *[f for f in flags if f != "--debug"]])
    assert result.exit_code == 1, result.output
    assert pw not in result.output
    assert "postgresql://app:***@127.0.0.1:1/app" in result.stderr
    assert ("Traceback" in result.stderr) == ("--debug" in flags)


@pytest.mark.parametrize("source", SOURCES)
def test_password_never_shown_on_success(runner: CliRunner, project_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                         source: str) -> None:
    pw = password()
    extra = place_url(source, CLOSED_PORT_URL.format(pw=pw), project_dir, monkeypatch)
    for flags in ([], ["--json"]):
        result = runner.invoke(app, ["info", "--no-connect", *extra, *flags])
        assert result.exit_code == 0, result.output
        assert pw not in result.output
        assert "postgresql://app:***@127.0.0.1:1/app" in result.stdout


@pytest.mark.parametrize("url", [
    "mysql://app:{pw}@h/db",                   # unsupported scheme
    "postgresql://app:{pw}@[::1/db",           # unparseable
    "postgresql://app:{pw}@127.0.0.1:1/db?bogus=1",  # refused by the driver
])
def test_password_never_shown_in_bad_url_errors(runner: CliRunner, project_dir: Path, url: str) -> None:
    pw = password()
    config(project_dir, url.format(pw=pw))
    for flags in ([], ["--debug"]):
        result = runner.invoke(app, [*flags, "info"])
        assert result.exit_code in (1, 2), result.output
        assert "error: " in result.stderr
        assert pw not in result.output


# --- real processes -------------------------------------------------------------------------------

SEEDKIT_SCRIPT = Path(sys.executable).parent / "seedkit"


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    environ.update(env)
    environ.pop("COLUMNS", None)
    return subprocess.run(args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", [[sys.executable, "-m", "seedkit"], [str(SEEDKIT_SCRIPT)]],
                         ids=["python -m seedkit", "console script"])
def test_real_process_help_and_version(command: list[str], tmp_path: Path) -> None:
    version = run([*command, "--version"], tmp_path)
    assert (version.returncode, version.stdout, version.stderr) == (0, f"seedkit {seedkit.__version__}\n", "")
    helped = run([*command, "--help"], tmp_path)
    assert helped.returncode == 0 and "Usage: seedkit" in helped.stdout and "info" in helped.stdout


@pytest.mark.parametrize("command", [[sys.executable, "-m", "seedkit"], [str(SEEDKIT_SCRIPT)]],
                         ids=["python -m seedkit", "console script"])
def test_real_process_config_error(command: list[str], tmp_path: Path) -> None:
    config(tmp_path, "sqlite:///a.db", "[migrations]\ntable = 5\n")
    proc = run([*command, "info"], tmp_path)
    assert proc.returncode == 2
    assert_clean_error(proc.stdout, proc.stderr)
    assert "seedkit.toml:5: invalid configuration: migrations.table: Input should be a valid string" \
        in proc.stderr
    debug = run([*command, "--debug", "info"], tmp_path)
    assert debug.returncode == 2
    assert_clean_error(debug.stdout, debug.stderr, traceback=True)


def test_real_process_database_error_masks_the_dotenv_password(tmp_path: Path) -> None:
    pw = password()
    config(tmp_path, "${DATABASE_URL}")
    (tmp_path / ".env").write_text(f"DATABASE_URL={CLOSED_PORT_URL.format(pw=pw)}\n")
    for flags in ([], ["--debug"]):
        proc = run([str(SEEDKIT_SCRIPT), *flags, "info", "--json"], tmp_path)
        assert proc.returncode == 1
        assert_clean_error(proc.stdout, proc.stderr, traceback=bool(flags))
        assert "cannot connect to postgresql://app:***@127.0.0.1:1/app" in proc.stderr
        assert pw not in proc.stdout + proc.stderr


def test_cli_does_not_need_click(tmp_path: Path) -> None:
    """typer brings its own click; seedkit must not depend on the separate package being installed."""
    code = ("import sys; sys.modules['click'] = None\n"
            "from seedkit.cli import main\n"
            "sys.argv = ['seedkit', 'info', '--help']\n"
            "main()\n")
    proc = run([sys.executable, "-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: seedkit info" in proc.stdout


@pytest.mark.postgres
def test_real_process_info_on_postgres(tmp_path: Path, pg_url: str) -> None:
    url, pw = with_password(pg_url)
    config(tmp_path, "sqlite:///unused.db")
    proc = run([str(SEEDKIT_SCRIPT), "info", "--json", "--database", url], tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["server"].startswith("postgresql ") and data["tables"] == 0
    assert pw not in proc.stdout + proc.stderr


def test_seedkit_run_starts_without_the_heavy_modules_it_does_not_need() -> None:
    """Start-up time counts for `seedkit run dev` (issue 5): no migration commands, no SQL parser,
    no Faker (until a fixture touches ``fake``), no database driver before it connects."""
    code = ("import sys; sys.argv = ['seedkit', 'run', 'dev']; import seedkit.cli; "
            "print(sorted(m for m in ('seedkit.migrate.runner', 'pglast', 'faker', 'psycopg') if m in sys.modules)); "
            "import seedkit.lint; print('pglast' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["[]", "False"]  # and the lint module imports pglast only to lint
