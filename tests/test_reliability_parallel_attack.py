"""Reading on two cores (seedkit.seed.parallel) against what a user and a machine do to a real
``seedkit run`` process: a terminal, a killed command, a library caller after the command line ran in
its process. Each test runs real processes on a real database and checks what happened.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import seedkit
from seedkit.seed import parallel
from tests.support.processes import process_env
from tests.support.project import Project
from tests.test_reliability_first_run import BIG, MIGRATION

# ``seedkit`` as a process, noting in the file $SEEDKIT_TEST_STARTED whether reading forked a worker
DRIVER = """
import os, sys
from seedkit.seed import parallel
real = parallel.start
def start(*args, **kwargs):
    got = real(*args, **kwargs)
    with open(os.environ["SEEDKIT_TEST_STARTED"], "a") as f:
        f.write(("worker %d" % got[0].pid if got is not None else "none") + "\\n")
        f.flush()
    return got
parallel.start = start
real_collect = parallel.Worker.collect
def collect(self):
    got = real_collect(self)
    with open(os.environ["SEEDKIT_TEST_STARTED"], "a") as f:
        f.write("handed back %d of %d\\n" % (len(got), len(self.jobs)))
    return got
parallel.Worker.collect = collect
if os.environ.get("SEEDKIT_TEST_SLOW_WORKER"):  # a worker on a slow disk: each entry takes 60 s to write
    import time
    from seedkit.seed import cache
    parent, real_dump = os.getpid(), cache.dump
    def dump(f, *args):
        if os.getpid() != parent:  # noted in $SEEDKIT_TEST_STARTED: the entry it writes
            with open(os.environ["SEEDKIT_TEST_STARTED"], "a") as note:
                note.write("writing %s\\n" % os.readlink("/proc/self/fd/%d" % f.fileno()))
            time.sleep(60)
        return real_dump(f, *args)
    cache.dump = dump
sys.argv[0] = "seedkit"
from seedkit.cli import main
main()
"""


def _project(root: Path, files: int = 3) -> Project:
    """A SQLite project whose first run reads enough YAML for the worker (``files`` files of 4,000 rows)."""
    p = Project(root, f"sqlite:///{root / 'db.sqlite'}")
    p.write_files({"migrations/20240101000000_users.sql": MIGRATION})
    seedkit.migrate.up(p.config())
    p.write("dev/a_teams.yaml", "table: teams\nkey: name\nrows:\n" + "".join(f"- {{name: t{i}}}\n" for i in range(7)))
    for k in range(files):
        p.write(f"dev/users{k}.yaml", BIG.replace("name: user", f"name: u{k}_"))
    return p


def _command(p: Project, *args: str) -> list[str]:
    return [sys.executable, "-c", DRIVER, "--config", str(p.config_path), *args]


def test_a_run_on_a_terminal_reads_on_two_cores(tmp_path: Path) -> None:
    """With stderr a terminal the progress bar is shown; its redrawing thread must not start before the
    files are read, or the process has two threads and never forks the worker (every interactive run
    read on one core)."""
    p = _project(tmp_path)
    started = tmp_path / "started"
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(_command(p, "run", "dev"), stdout=subprocess.PIPE, stderr=slave, text=True,
                                env=process_env({"TERM": "xterm", "SEEDKIT_TEST_STARTED": str(started)}))
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        out = proc.communicate(timeout=120)[0]
    finally:
        os.close(master)
    assert proc.returncode == 0, (out, seen[-800:])
    assert started.read_text().startswith("worker "), started.read_text()
    assert b"users" in seen and b"4000/4000" in seen, seen[-500:]  # the bar, after the reading
    assert p.scalar("SELECT count(*) FROM users") == 12000
    assert parallel.ENV not in os.environ


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to see the worker")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_leaves_no_worker_behind(tmp_path: Path, sig: signal.Signals) -> None:
    """``kill -9`` (or ``kill``) of a run while its worker reads: a plain run would simply be gone; the
    worker must go with it, not read on alone for minutes, and leave no half-written cache entry."""
    p = _project(tmp_path)
    started = tmp_path / "started"
    proc = subprocess.Popen(_command(p, "run", "dev"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=process_env({"SEEDKIT_TEST_STARTED": str(started), "SEEDKIT_TEST_SLOW_WORKER": "1"}))
    deadline = time.monotonic() + 60
    while not (started.exists() and started.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.01)
    forked = re.search(r"^worker (\d+)$", started.read_text(), re.M)
    assert forked, started.read_text()
    worker = int(forked[1])
    while not re.search(r"^writing (.*)$", started.read_text(), re.M) and time.monotonic() < deadline:
        time.sleep(0.01)  # the worker is writing its first entry
    entry = Path(re.search(r"^writing (.*)$", started.read_text(), re.M)[1])
    assert entry.exists() and entry.name.startswith(".tmp-") and _alive(worker)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 20
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the worker reads on after its run was killed"
    proc.communicate(timeout=20)  # and the output's readers see its end (the worker held it open)
    assert not entry.exists()  # its half-written entry removed
    assert p.scalar("SELECT count(*) FROM users") == 0


def test_a_library_caller_is_not_forked_after_the_command_line_ran_in_its_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line run in-process (Typer's CliRunner, as test suites do) marks the process one-shot
    for its run only: a later ``seedkit.run()`` from the same process (with its own connections and
    state) is a library call and reads on one core."""
    small = Project(tmp_path / "small", f"sqlite:///{tmp_path / 'small.sqlite'}")
    small.write("dev/t.yaml", "table: teams\nkey: name\nrows:\n- {name: t0}\n")
    small.write_files({"migrations/20240101000000_users.sql": MIGRATION})
    seedkit.migrate.up(small.config())
    assert small.cli("run", "dev").returncode == 0
    p = _project(tmp_path / "big")
    forks: list[int] = []

    def fork() -> int:
        forks.append(1)
        raise OSError("no fork here")  # reading then goes on in this process

    monkeypatch.setattr(parallel.os, "fork", fork)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)
    monkeypatch.delenv(parallel.ENV, raising=False)
    report = seedkit.run("dev", config=p.config_path)
    assert report.inserted == 12007 and p.scalar("SELECT count(*) FROM users") == 12000
    assert forks == [], "a library call forked a worker"


def test_a_file_name_that_is_not_utf8_reads_as_with_the_cache_off(tmp_path: Path) -> None:
    """A seed file whose name's bytes are not UTF-8 (Latin-1 ``café``): the fixture cache, and the
    worker's look at it, named its entry with the name's text and stopped the run ("unexpected
    UnicodeEncodeError", exit 1); the cache off, the run worked."""
    outcomes = []
    for cache, root, started in (("0", tmp_path / "plain", "none"), ("1", tmp_path / "cached", "worker"),
                                 ("1", tmp_path / "cached", "none")):  # the plain path; the cache cold, warm
        if not root.exists():
            p = _project(root, files=2)
            (p.seeds_dir / "dev" / os.fsdecode(b"caf\xe9.yaml")).write_text(BIG.replace("name: user", "name: latin"))
        (root / "started").unlink(missing_ok=True)
        result = subprocess.run(_command(p, "run", "dev", "--json"), capture_output=True, text=True,
                                env=process_env({"SEEDKIT_TEST_STARTED": str(root / "started"),
                                                 "SEEDKIT_FIXTURE_CACHE": cache, parallel.ENV: cache}))
        assert result.returncode == 0, result.stderr
        assert (root / "started").read_text().startswith(started)  # (warm: nothing left to read)
        outcomes.append((json_totals(result.stdout), p.rows("SELECT name, score, team FROM users ORDER BY name")))
    assert outcomes[0] == outcomes[1] and len(outcomes[0][1]) == 12000
    assert outcomes[1][1] == outcomes[2][1] and outcomes[2][0]["unchanged"] == 12007


def json_totals(stdout: str) -> dict[str, int]:
    return json.loads(stdout)["totals"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to see the worker")
def test_ctrl_c_while_the_worker_writes_leaves_no_half_entry(tmp_path: Path) -> None:
    """Ctrl-C in a terminal reaches the whole process group: the worker gets SIGINT, and a moment later
    the SIGTERM of the run stopping it. The second signal broke off the removal of the entry the first
    made it abandon (about one Ctrl-C in three left a ``.tmp-`` file in the cache folder); a plain run
    stopped by Ctrl-C leaves none."""
    p = _project(tmp_path)
    started = tmp_path / "started"
    for _ in range(10):
        started.unlink(missing_ok=True)
        env = process_env({"SEEDKIT_TEST_STARTED": str(started), "SEEDKIT_TEST_SLOW_WORKER": "1"})
        proc = subprocess.Popen(_command(p, "run", "dev"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, env=env)
        deadline = time.monotonic() + 60
        while not (started.exists() and re.search(r"^writing ", started.read_text(), re.M)) \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        text = started.read_text()
        worker = int(re.findall(r"^worker (\d+)$", text, re.M)[0])
        entry = Path(re.findall(r"^writing (.*)$", text, re.M)[0])
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and err == "error: interrupted\n", err
        assert not _alive(worker)
        assert not entry.exists(), "the worker left its half-written entry"
    assert p.scalar("SELECT count(*) FROM users") == 0


def test_a_run_with_its_standard_streams_closed_reads_on_two_cores(tmp_path: Path) -> None:
    """``seedkit run <&- >&-``: the worker's own files may then sit where standard input and output
    were; it must not take them for the terminal it lets go of (what it read would be lost)."""
    p = _project(tmp_path)
    started = tmp_path / "started"
    result = subprocess.run(_command(p, "run", "dev"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, close_fds=True,
                            preexec_fn=lambda: (os.close(0), os.close(1)),  # noqa: PLW1509 - the streams closed
                            env=process_env({"SEEDKIT_TEST_STARTED": str(started)}))
    assert result.returncode == 0, result.stderr
    handed = re.findall(r"^handed back (\d+) of (\d+)$", started.read_text(), re.M)
    assert handed and handed[0][0] == handed[0][1] != "0", started.read_text()
    assert p.scalar("SELECT count(*) FROM users") == 12000
