"""Real ``seedkit`` processes (and waiting for things they do).

A subprocess gets this interpreter's import path, no colour and wide lines, and never inherits a
``DATABASE_URL`` from the developer's shell.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``seedkit`` subprocess: this interpreter's import path, no colour."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "NO_COLOR": "1",
           "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    env.pop("DATABASE_URL", None)
    env.update(extra or {})
    return env


def seedkit_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "seedkit", *args]


def spawn(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``seedkit ARGS`` in ``cwd`` (its stdout/stderr captured as text)."""
    return subprocess.Popen(seedkit_command(*args), cwd=cwd, env=process_env(env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def seedkit(cwd: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``seedkit ARGS`` to completion in a real process."""
    return subprocess.run(seedkit_command(*args), cwd=cwd, env=process_env(env), text=True,
                          capture_output=True, timeout=timeout)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL: no cleanup code of seedkit runs, the sockets just close."""
    proc.kill()
    proc.wait(timeout=30)
    proc.communicate()
    assert proc.returncode == -9, proc.returncode


def no_traceback(*texts: str) -> bool:
    return not any("Traceback" in t for t in texts)


def joined(results: Sequence[subprocess.CompletedProcess[str]]) -> str:
    return "\n".join(r.stdout + r.stderr for r in results)


def run_on_a_terminal(command: list[str], env: dict[str, str] | None = None,
                      timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], bytes]:
    """Run ``command`` with stderr on a pseudo-terminal (what a person at a terminal sees) and stdout piped:
    the finished process and every byte written to the terminal. The terminal is read while the process
    runs, so a long progress bar never fills it and blocks the process."""
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(command, env=process_env(env), stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the process ended: the terminal's other side is gone
                break
            if not chunk:
                break
            seen += chunk
        out = proc.communicate(timeout=timeout)[0]
    finally:
        os.close(master)
    return subprocess.CompletedProcess(command, proc.returncode, out, ""), seen
