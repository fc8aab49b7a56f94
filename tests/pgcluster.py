"""A throwaway PostgreSQL cluster for the test suite and the benchmarks.

Uses the local server binaries (``pg_ctl`` on PATH or ``/usr/lib/postgresql/*/bin``), else the
``pgserver`` wheel. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` OS user from a temporary folder it owns. Trust authentication on 127.0.0.1 only.

Run as a script to start one and print its URL (``python tests/pgcluster.py``); Ctrl-C stops it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class ClusterUnavailable(RuntimeError):
    pass


def find_bindir() -> Path | None:
    if os.environ.get("SEEDKIT_TEST_PG_BINDIR"):
        return Path(os.environ["SEEDKIT_TEST_PG_BINDIR"])
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
    try:
        import pgserver  # type: ignore[import-not-found]
    except ImportError:
        return None
    candidate = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return candidate if (candidate / "pg_ctl").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, bindir: Path, port: int | None = None):
        self.bindir = bindir
        self.port = port or free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="seedkit-pg-"))
        self.datadir = self.tmp / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ClusterUnavailable("running as root and there is no 'postgres' OS user") from exc
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            self.tmp.chmod(0o700)
            self.user = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.tmp)
        if proc.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(args[:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def start(self) -> Cluster:
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C")
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.tmp} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                "-c shared_buffers=256MB")
        self._run("pg_ctl", "-D", str(self.datadir), "-o", opts, "-l", str(self.tmp / "server.log"),
                  "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        except ClusterUnavailable:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_cluster() -> Cluster:
    """Start a cluster from local binaries, else from the pgserver wheel."""
    errors = []
    for bindir in (find_bindir(), _pgserver_bindir()):
        if bindir is None:
            continue
        cluster = Cluster(bindir)
        try:
            return cluster.start()
        except ClusterUnavailable as exc:
            cluster.stop()
            errors.append(str(exc))
    raise ClusterUnavailable("; ".join(errors) or
                             "no PostgreSQL server binaries found (install postgresql or `pip install pgserver`)")


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
