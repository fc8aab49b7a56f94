"""pytest plugin: tests get a migrated, seeded database (registered through the ``pytest11`` entry point).

Fixtures (docs/pytest.md)::

    seedkit_db_url        session   URL of a test database: created fresh, migrated to head, seeded once
    seedkit_conn          function  a DB-API connection to it, in a transaction rolled back after the test
    seedkit_fresh_db_url  function  URL of a private copy of the seeded database, dropped after the test

How it works, per pytest process (so each pytest-xdist worker has databases of its own):

1. At first use, a *template* database is created next to the configured one (PostgreSQL: a new,
   uniquely named database on the same server; SQLite: a file in a temporary folder), migrated to head
   with ``seedkit.migrate.up`` and seeded with ``seedkit.run(env)``. Nothing connects to it afterwards.
2. ``seedkit_db_url`` is a copy of the template (``CREATE DATABASE … TEMPLATE`` / SQLite backup API);
   ``seedkit_conn`` is one connection to it, kept for the session, each test inside its own transaction.
3. ``seedkit_fresh_db_url`` copies the template again for each test that asks. Copying from a template
   nobody uses, rather than from the database ``seedkit_conn`` holds open, is what makes the PostgreSQL
   copy possible at all (``CREATE DATABASE … TEMPLATE`` refuses a database with open connections), and
   it gives every copy exactly the seeded state, whatever tests committed to ``seedkit_db_url``.
4. At the end of the session every database is dropped, unless ``--seedkit-keep``.

Setup problems (a failing migration, a bad fixture, a protected environment) fail the session with
seedkit's located error message and no traceback. Nothing from seedkit is imported until a fixture is
used, so projects that have seedkit installed but do not use these fixtures pay nothing for them here.
"""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._record import dataclass

if TYPE_CHECKING:  # pragma: no cover
    from seedkit.config import Config
    from seedkit.urls import DatabaseURL

DEFAULT_ENV = "test"
_PG_NAME_LIMIT = 63  # NAMEDATALEN - 1
_KEPT = pytest.StashKey[list]()
_SHOULDFAIL = "seedkit: the test database could not be set up"


# -- options ------------------------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seedkit", "seedkit: a migrated, seeded test database")
    group.addoption("--seedkit-env", dest="seedkit_env", default=None, metavar="ENV",
                    help="environment whose fixtures seed the test database (default: test; ini: seedkit_env)")
    group.addoption("--seedkit-database-url", dest="seedkit_database_url", default=None, metavar="URL",
                    help="server (PostgreSQL) or folder/file (SQLite) URL to create test databases from "
                         "(default: next to the environment's configured database; SQLite: a temporary "
                         "folder; ini: seedkit_database_url)")
    group.addoption("--seedkit-config", dest="seedkit_config", default=None, metavar="PATH",
                    help="seedkit.toml to use (default: found from the current folder; ini: seedkit_config)")
    group.addoption("--seedkit-keep", dest="seedkit_keep", action="store_true", default=False,
                    help="keep the test databases after the session, for a look at them (ini: seedkit_keep)")
    parser.addini("seedkit_env", "seedkit: environment that seeds the test database", default=DEFAULT_ENV)
    parser.addini("seedkit_database_url", "seedkit: server or folder URL to create test databases from",
                  default="")
    parser.addini("seedkit_config", "seedkit: path to seedkit.toml (relative to this ini file)", default="")
    parser.addini("seedkit_keep", "seedkit: keep the test databases after the session", type="bool",
                  default=False)


@dataclass(frozen=True)
class Options:
    """The plugin's settings: command line first, then the ini file, then the defaults."""

    env: str = DEFAULT_ENV
    database_url: str | None = None
    config: Path | None = None
    keep: bool = False

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> Options:
        env = config.getoption("seedkit_env") or config.getini("seedkit_env") or DEFAULT_ENV
        url = config.getoption("seedkit_database_url") or config.getini("seedkit_database_url") or None
        path: Path | None = None
        if config.getoption("seedkit_config"):
            path = Path(config.getoption("seedkit_config"))
        elif config.getini("seedkit_config"):
            base = config.inipath.parent if config.inipath else config.rootpath
            path = base / config.getini("seedkit_config")
        keep = bool(config.getoption("seedkit_keep") or config.getini("seedkit_keep"))
        return cls(env=str(env).strip(), database_url=str(url).strip() if url else None, config=path, keep=keep)


# -- the databases of one pytest process --------------------------------------------------------------

def worker_id(config: pytest.Config) -> str | None:
    """``gw0``, ``gw1``… under pytest-xdist, None otherwise."""
    # ``workerinput`` exists on xdist workers only; unlike PYTEST_XDIST_WORKER, a pytest run started
    # from inside a worker (pytester) does not inherit it.
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput.get("workerid", "gw"))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")


@dataclass
class TestDatabases:
    """The template, the session database and the fresh copies of one pytest process."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    config: Config
    env: str
    base: str  # unique stem of every database name: prefix_worker_token
    make_url: Any  # name -> DatabaseURL
    keep: bool
    template: DatabaseURL | None = None
    created: list[DatabaseURL] = field(default_factory=list)
    _copies: int = 0
    _dropper: Any = None  # a one-thread executor, started by the first drop_later()
    _dropping: list[Any] = field(default_factory=list)

    def url(self, suffix: str = "") -> DatabaseURL:
        return self.make_url(f"{self.base}_{suffix}" if suffix else self.base)

    def build_template(self) -> None:
        """Create, migrate and seed the template database; ``SetupFailed`` says which step failed."""
        from seedkit import migrate, run
        from seedkit.db.admin import create_database
        from seedkit.errors import SeedkitError

        url = self.url("tpl")
        step = f"creating {url}"
        try:
            create_database(url)
            self.created.append(url)
            step = f"migrating {url}"
            migrate.up(self.config, env=self.env, database_url=url.raw)
            step = f"seeding {url}"
            run(self.env, config=self.config, database_url=url.raw)
        except SeedkitError as exc:
            raise SetupFailed(step, exc) from None
        self.template = url

    def copy(self, suffix: str | None = None) -> DatabaseURL:
        """A new database with exactly the template's content."""
        from seedkit.db.admin import create_database

        assert self.template is not None
        if suffix is None:
            self._copies += 1
            suffix = str(self._copies)
        url = self.url(suffix)
        create_database(url, template=self.template)
        self.created.append(url)
        return url

    def drop(self, url: DatabaseURL) -> None:
        """Drop ``url`` now (unless ``keep``); a failure is a warning, not a test error."""
        problem = self._drop(url)
        if problem:
            warnings.warn(problem, stacklevel=2)

    def drop_later(self, url: DatabaseURL) -> None:
        """Drop ``url`` on a background thread, so the next test need not wait for it; ``close``
        waits for every such drop (and warns about failures there, on the main thread)."""
        if self.keep:
            return
        if self._dropper is None:
            from concurrent.futures import ThreadPoolExecutor

            self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seedkit-drop")
        self._dropping.append(self._dropper.submit(self._drop, url))

    def _drop(self, url: DatabaseURL) -> str | None:
        from seedkit.db.admin import drop_database
        from seedkit.errors import SeedkitError

        if self.keep:
            return None
        try:
            drop_database(url, missing_ok=True)
        except SeedkitError as exc:
            return f"seedkit: could not drop the test database {url}: {exc}"
        finally:
            if url in self.created:
                self.created.remove(url)
        return None

    def close(self) -> None:
        if self._dropper is not None:
            self._dropper.shutdown(wait=True)
            self._dropper = None
            problems = [f.result() for f in self._dropping]  # anything but a SeedkitError is a bug: raise
            self._dropping.clear()
            for problem in filter(None, problems):
                warnings.warn(problem, stacklevel=2)
        for url in reversed(list(self.created)):
            self.drop(url)


class SetupFailed(Exception):
    """The test database could not be set up; carries the seedkit error and the step."""

    def __init__(self, step: str, error: Exception):
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


def _plan(options: Options, config: Config,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str, DatabaseURL | None]:
    """Where test databases go: (make_url(name), name prefix, base database to check for a stamp)."""
    from seedkit._safety import is_server_database
    from seedkit.db import adapter
    from seedkit.errors import UsageError
    from seedkit.urls import parse_url

    if options.database_url:
        explicit = options.database_url
        base = parse_url(explicit, base_dir=Path.cwd(), source="--seedkit-database-url")
    else:
        explicit = None
        base = config.database_url(options.env)
    if not adapter(base).file_based:  # a server: test databases are names on it
        name = base.database or ""
        prefix = _slug(name) if name and not is_server_database(base) else "seedkit"
        return base.with_database, prefix, base if name else None
    # SQLite: the folder an explicit URL names (a URL ending in "/", an existing folder, or the folder of
    # a file), else a temporary folder. A database file the URL names is checked for a protected stamp.
    stamped = base if base.path is not None and base.path.is_file() else None
    if explicit and base.path is not None:
        if explicit.split("?", 1)[0].endswith("/") or base.path.is_dir():
            folder, prefix = base.path, "seedkit"
        else:
            folder, prefix = base.path.parent, _slug(base.path.stem)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the folder {folder} for test databases: {exc.strerror}",
                             hint="check --seedkit-database-url") from None
    else:
        folder = tmp_path_factory.mktemp("seedkit", numbered=True)
        prefix = _slug(base.path.stem) if base.path is not None else "seedkit"
    return (lambda n: parse_url(f"sqlite:///{folder / (n + '.db')}")), prefix or "seedkit", stamped


def _unique_base(prefix: str, worker: str | None) -> str:
    """``prefix[_worker]_token``: unique per pytest process, and telling whose database it is."""
    token = uuid.uuid4().hex[:8]
    tail = (f"_{_slug(worker) or 'w'}" if worker else "") + f"_{token}"
    # room for the longest suffix ("_tpl" or a copy number) within PostgreSQL's name limit
    return prefix[: _PG_NAME_LIMIT - len(tail) - 8] + tail


def _refuse_protected(config: Config, env: str, stamp_source: DatabaseURL | None) -> None:
    """Tests never run a protected environment, nor next to a database a protected environment seeded
    (that server or folder is production's, whatever the test configuration says)."""
    from seedkit import _safety as safety

    safety.refuse_protected_tests(config, env)
    safety.refuse_stamped_neighbour(stamp_source, config)


def _setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TestDatabases:
    options = Options.from_pytest(request.config)
    try:
        return _build(request, tmp_path_factory, options)
    except SetupFailed as exc:
        failure = exc  # failed below, outside this handler, so no exception chain is shown
    except Exception:  # a bug, not a setup problem: its traceback is worth seeing, once
        request.session.shouldfail = _SHOULDFAIL
        raise
    _fail_session(request, options.env, failure)
    raise AssertionError("unreachable")  # pragma: no cover


def _build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           options: Options) -> TestDatabases:
    from seedkit.config import load_config
    from seedkit.errors import RefusedError, SeedkitError

    step = "reading the configuration"
    try:
        config = load_config(options.config)
        if config.path is None and options.config is None and request.config.rootpath != Path.cwd():
            config = load_config(start=request.config.rootpath)
        config.env(options.env)  # an unknown environment is a configuration problem
        make_url, prefix, stamp_source = _plan(options, config, tmp_path_factory)
        step = f"checking {stamp_source or 'the environment'}"
        _refuse_protected(config, options.env, stamp_source)
    except SeedkitError as exc:
        raise SetupFailed("refused" if isinstance(exc, RefusedError) else step, exc) from None
    dbs = TestDatabases(config=config, env=options.env, base=_unique_base(prefix, worker_id(request.config)),
                        make_url=make_url, keep=options.keep)
    request.config.stash.setdefault(_KEPT, [])
    try:
        dbs.build_template()
    except BaseException:
        if options.keep:
            request.config.stash[_KEPT].extend(str(u) for u in dbs.created)
        dbs.close()
        raise
    return dbs


def _fail_session(request: pytest.FixtureRequest, env: str, failure: SetupFailed) -> None:
    """Stop the session after this test, showing seedkit's message the way the CLI does."""
    from seedkit.urls import mask

    exc = failure.error
    hint = getattr(exc, "hint", None)
    if not hint and getattr(exc, "sqlstate", None) == "42501" and failure.step.startswith("creating"):
        hint = ("the plugin creates a database per test session: give the database user the CREATEDB "
                "privilege (ALTER ROLE … CREATEDB), or point --seedkit-database-url at a server where it has it")
    lines = [f"seedkit: cannot set up the test database for environment {env!r} ({failure.step})",
             f"error: {exc}"]
    if hint:
        lines.append(f"hint: {hint}")
    request.session.shouldfail = _SHOULDFAIL
    pytest.fail(mask("\n".join(lines)), pytrace=False)


@pytest.fixture(scope="session")
def _seedkit_databases(request: pytest.FixtureRequest,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabases]:
    dbs = _setup(request, tmp_path_factory)
    try:
        yield dbs
    finally:
        if dbs.keep:
            request.config.stash[_KEPT].extend(str(u) for u in dbs.created)
        dbs.close()


@pytest.fixture(scope="session")
def seedkit_db_url(_seedkit_databases: TestDatabases) -> Iterator[str]:
    """URL of this session's test database: migrated to head and seeded once, dropped at the end."""
    url = _copy_or_fail(_seedkit_databases, "")
    try:
        yield url.raw
    finally:
        _seedkit_databases.drop(url)


@pytest.fixture
def seedkit_fresh_db_url(_seedkit_databases: TestDatabases) -> Iterator[str]:
    """URL of a brand-new copy of the seeded database, for a test that must commit; dropped afterwards."""
    url = _copy_or_fail(_seedkit_databases, None)
    try:
        yield url.raw
    finally:
        _seedkit_databases.drop_later(url)


def _copy_or_fail(dbs: TestDatabases, suffix: str | None) -> DatabaseURL:
    from seedkit.errors import SeedkitError

    try:
        return dbs.copy(suffix)
    except SeedkitError as exc:
        pytest.fail(f"seedkit: could not copy the seeded test database: {exc}", pytrace=False)


# -- one connection, one transaction per test ---------------------------------------------------------

class _Connections:
    """The session's connection to ``seedkit_db_url``, reopened when a test closed or broke it."""

    def __init__(self, url: str):
        from seedkit.db import adapter
        from seedkit.urls import parse_url

        self.url = parse_url(url)
        self.adapter = adapter(self.url)  # the database's own rolled-back connection and transaction
        self.conn: Any = None

    def get(self) -> Any:
        if self.conn is None or self.adapter.connection_closed(self.conn):
            self.conn = self.adapter.rolled_back_connection(self.url)
        return self.conn

    def close(self) -> None:
        if self.conn is not None and not self.adapter.connection_closed(self.conn):
            self.conn.close()


@pytest.fixture(scope="session")
def _seedkit_connection(seedkit_db_url: str) -> Iterator[_Connections]:
    connections = _Connections(seedkit_db_url)
    try:
        yield connections
    finally:
        connections.close()


@pytest.fixture
def seedkit_conn(_seedkit_connection: _Connections) -> Iterator[Any]:
    """A DB-API connection (psycopg or sqlite3) to ``seedkit_db_url`` inside a transaction that is
    rolled back after the test: every test starts from exactly the seeded state."""
    conn = _seedkit_connection.get()
    ended = yield from _seedkit_connection.adapter.test_transaction(conn)
    if ended:
        pytest.fail("the test ended seedkit_conn's transaction (a COMMIT?), so its writes may have reached "
                    "the shared test database; use seedkit_fresh_db_url for a test that must commit",
                    pytrace=False)


# -- reporting ----------------------------------------------------------------------------------------

def pytest_sessionfinish(session: pytest.Session) -> None:
    kept = session.config.stash.get(_KEPT, [])
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and kept:  # an xdist worker: hand the list to the controller
        workeroutput["seedkit_kept"] = list(kept)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: collect the databases each worker kept."""
    kept = getattr(node, "workeroutput", {}).get("seedkit_kept")
    if kept:
        node.config.stash.setdefault(_KEPT, []).extend(kept)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    kept = config.stash.get(_KEPT, [])
    if kept:
        terminalreporter.section("seedkit")
        for url in kept:
            terminalreporter.write_line(f"kept test database {url}")
