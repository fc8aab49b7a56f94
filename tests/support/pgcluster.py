"""A throwaway PostgreSQL cluster for the test suite and the benchmarks.

Which server binaries:

- ``SEEDKIT_TEST_PG_BINDIR=/path/to/bin`` uses exactly those (``=pgserver``: the binaries in the
  ``pgserver`` wheel). An explicit choice never falls back to anything else, so a run that asked for
  PostgreSQL 16 cannot quietly test another version, and an empty folder means "no PostgreSQL".
- Otherwise the local server binaries (``pg_ctl`` on PATH, else the newest ``/usr/lib/postgresql/*/bin``),
  then the ``pgserver`` wheel when it is installed.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` OS user (``nobody``
when there is none) through ``runuser``, from a temporary folder that user owns. When that user cannot
execute the binaries where they are (a wheel inside a virtualenv under a private home folder, say),
the installation is copied to a temporary folder it can read. Trust authentication on 127.0.0.1 and
the Unix sockets, except for members of the role ``seedkit_password`` (password tests).

Run as a script to start one and print its URL (``python -m tests.support.pgcluster``); Ctrl-C stops it.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BINDIR_VARIABLE = "SEEDKIT_TEST_PG_BINDIR"
NEEDED = ("initdb", "pg_ctl", "postgres")


class ClusterUnavailable(RuntimeError):
    pass


def explicit_bindir() -> Path | None:
    """The folder ``SEEDKIT_TEST_PG_BINDIR`` names (absolute), or None when it is not set."""
    value = os.environ.get(BINDIR_VARIABLE, "").strip()
    if not value:
        return None
    if value == "pgserver":
        found = _pgserver_bindir()
        if found is None:
            raise ClusterUnavailable(f"{BINDIR_VARIABLE}=pgserver but the pgserver package is not installed "
                                     "(pip install 'pgserver>=0.1.4,<0.2')")
        return found
    return Path(value).expanduser().resolve()


def find_bindir() -> Path | None:
    """Local server binaries: ``SEEDKIT_TEST_PG_BINDIR``, ``pg_ctl`` on PATH, ``/usr/lib/postgresql``."""
    explicit = explicit_bindir()
    if explicit is not None:
        return explicit
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name)
                  if Path(d).parent.name.isdigit() else 0)
    for d in reversed(dirs):
        if (Path(d) / "pg_ctl").exists():
            return Path(d)
    return None


def _pgserver_bindir() -> Path | None:
    """The binaries inside the ``pgserver`` wheel, found without importing it (its import has side
    effects such as warnings about XDG_RUNTIME_DIR)."""
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location).resolve() / "pginstall" / "bin"
        if (candidate / "pg_ctl").exists():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ClusterUnavailable("running as root and there is neither a 'postgres' nor a 'nobody' OS user")


class Cluster:
    def __init__(self, bindir: Path, port: int | None = None):
        self.bindir = Path(bindir).resolve()
        missing = [name for name in NEEDED if not (self.bindir / name).is_file()]
        if missing:
            raise ClusterUnavailable(f"no PostgreSQL server binaries in {self.bindir} "
                                     f"(missing: {', '.join(missing)})")
        self.port = port or free_port()
        self.user: str | None = None
        self._copy: Path | None = None  # a readable copy of the installation, removed by stop()
        self.tmp = Path(tempfile.mkdtemp(prefix="seedkit-pg-"))
        self.datadir = self.tmp / "data"
        if os.geteuid() == 0:
            try:
                self._prepare_for_root()
            except BaseException:
                self.stop()
                raise

    def _prepare_for_root(self) -> None:
        if shutil.which("runuser") is None:
            raise ClusterUnavailable("running as root and `runuser` is not available")
        self.user = _server_user()
        pw = pwd.getpwnam(self.user)
        os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        self.tmp.chmod(0o700)
        if not self._as_user("test", "-w", str(self.tmp)):
            raise ClusterUnavailable(f"the {self.user!r} OS user cannot reach {self.tmp}; set TMPDIR to a "
                                     "folder every user can enter (such as /tmp)")
        if not self._as_user(str(self.bindir / "postgres"), "--version"):
            self._copy_installation()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_user(self, *cmd: str) -> bool:
        assert self.user is not None
        proc = subprocess.run(["runuser", "-u", self.user, "--", *cmd], capture_output=True, cwd=self.tmp)
        return proc.returncode == 0

    def _copy_installation(self) -> None:
        """Copy the installation where the server user can read it. The layout is relocatable; a
        wheel's binaries also find their bundled libraries through ``$ORIGIN/../../../NAME.libs``
        (pgserver: ``pgserver/pginstall/bin`` → ``pgserver.libs``), so that folder is copied too."""
        prefix = self.bindir.parent  # .../pgserver/pginstall
        anchor = prefix.parent.parent  # .../site-packages
        self._copy = Path(tempfile.mkdtemp(prefix="seedkit-pginstall-"))
        self._copy.chmod(0o755)
        target = self._copy / prefix.relative_to(anchor)
        for part in ("bin", "lib", "share"):
            if (prefix / part).is_dir():
                shutil.copytree(prefix / part, target / part, symlinks=True)
        bundled = anchor / f"{prefix.parent.name}.libs"
        if bundled.is_dir():
            shutil.copytree(bundled, self._copy / bundled.name, symlinks=True)
        for folder, _dirs, files in os.walk(self._copy):
            Path(folder).chmod(Path(folder).stat().st_mode | 0o055)
            for name in files:
                path = Path(folder) / name
                if not path.is_symlink():
                    mode = path.stat().st_mode
                    path.chmod(mode | (0o055 if mode & 0o100 else 0o044))
        self.bindir = target / "bin"
        if not self._as_user(str(self.bindir / "postgres"), "--version"):
            raise ClusterUnavailable(f"the {self.user!r} OS user cannot run the PostgreSQL binaries from "
                                     f"{prefix}, not even from a copy in {self._copy}")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.tmp)
        except OSError as exc:
            raise ClusterUnavailable(f"cannot run {cmd[0]}: {exc}") from None
        if proc.returncode != 0:
            output = proc.stderr.strip() or proc.stdout.strip()
            raise ClusterUnavailable(f"{' '.join(args[:2])} failed: {output}")

    def socket_dirs(self) -> list[str]:
        """Where the server makes its Unix sockets: its own folder, and libpq's default socket folder
        when the server user may write there, so ``postgresql:///db`` with just ``PGPORT`` reaches it
        as it reaches a packaged server (each cluster has its own port, so its own socket file)."""
        dirs = [str(self.tmp)]
        default = Path("/var/run/postgresql")
        if default.is_dir() and (self._as_user("test", "-w", str(default)) if self.user
                                 else os.access(default, os.W_OK)):
            dirs.append(str(default))
        return dirs

    def _require_passwords(self) -> None:
        """Members of the ``seedkit_password`` role (which the tests create) must give their password,
        over TCP and over the socket; everyone else is trusted."""
        hba = self.datadir / "pg_hba.conf"
        rules = ("local all +seedkit_password scram-sha-256\n"
                 "host all +seedkit_password 127.0.0.1/32 scram-sha-256\n")
        text = rules + hba.read_text()
        if self.user:
            self._run_shell_write(hba, text)
        else:
            hba.write_text(text)

    def _run_shell_write(self, path: Path, text: str) -> None:
        cmd = ["runuser", "-u", str(self.user), "--", "tee", str(path)]
        subprocess.run(cmd, input=text, text=True, capture_output=True, check=True, cwd=self.tmp)

    def start(self) -> Cluster:
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C")
        self._require_passwords()
        return self._launch(self.socket_dirs())

    def start_as_standby_of(self, primary: Cluster) -> Cluster:
        """A hot standby streaming from ``primary`` (pg_basebackup; initdb allows local replication)."""
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D",
                  str(self.datadir), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        return self._launch([str(self.tmp)])

    def _launch(self, socket_dirs: list[str]) -> Cluster:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {','.join(socket_dirs)} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                "-c shared_buffers=256MB")
        self._run("pg_ctl", "-D", str(self.datadir), "-o", opts, "-l", str(self.tmp / "server.log"),
                  "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(ClusterUnavailable):
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self._copy is not None:
            shutil.rmtree(self._copy, ignore_errors=True)


def start_cluster() -> Cluster:
    """Start a cluster from the chosen binaries (see the module docstring)."""
    explicit = explicit_bindir()
    if explicit is not None:
        return _start(explicit)
    errors = []
    for find in (find_bindir, _pgserver_bindir):  # the wheel is looked for only when it is needed
        bindir = find()
        if bindir is None:
            continue
        try:
            return _start(bindir)
        except ClusterUnavailable as exc:
            errors.append(str(exc))
    raise ClusterUnavailable("; ".join(errors) or "no PostgreSQL server binaries found: install the "
                             "postgresql server package, or `pip install 'pgserver>=0.1.4,<0.2'`, or set "
                             "SEEDKIT_TEST_DATABASE_URL")


def _start(bindir: Path) -> Cluster:
    cluster = Cluster(bindir)
    try:
        return cluster.start()
    except BaseException:
        cluster.stop()
        raise


def wait_ready(url: str, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def server(url: str | None = None) -> Iterator[str]:
    """A PostgreSQL server URL for the benchmarks: ``url``, else ``SEEDKIT_TEST_DATABASE_URL``, else a
    throwaway cluster started here and stopped afterwards."""
    url = url or os.environ.get("SEEDKIT_TEST_DATABASE_URL")
    if url:
        yield url
        return
    cluster = start_cluster()
    try:
        wait_ready(cluster.url)
        yield cluster.url
    finally:
        cluster.stop()


if __name__ == "__main__":  # pragma: no cover
    c = start_cluster()
    print(c.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()
