"""The worked example of docs/snapshot.md runs as written: its files, its commands, its output."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "snapshot.md"
BLOCK = re.compile(r"^```(\w+)(?: file=(\S+))?\n(.*?)^```$", re.M | re.S)


def blocks() -> list[tuple[str, str | None, str]]:
    """(language, file, content): the file is named by ``file=`` after the language, or (YAML) by a
    ``# path`` first line, which is not part of the file's content."""
    out = []
    for m in BLOCK.finditer(DOC.read_text()):
        lang, name, text = m[1], m[2], m[3]
        first, _, rest = text.partition("\n")
        if lang == "yaml" and name is None and first.startswith("# seeds/"):
            name, text = first[2:].strip(), rest
        out.append((lang, name, text))
    return out


def test_the_worked_example_runs_as_documented(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SNAPSHOT_SALT")}
    written: dict[str, str] = {}
    for _lang, name, text in blocks():
        if name and not name.startswith("seeds/"):
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif name:
            written[name] = text
    assert {"seedkit.toml", "data.sql"} <= {p.name for p in tmp_path.iterdir()}
    assert len(written) == 4  # three tables and the manifest are shown in full

    def seedkit(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "seedkit", *args], cwd=tmp_path, capture_output=True,
                              text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    seedkit("migrate", "up")
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.executescript((tmp_path / "data.sql").read_text())
    commands = [shlex.split(line[2:]) for lang, _, text in blocks() if lang == "console"
                for line in text.splitlines() if line.startswith("$ seedkit ")]
    assert len(commands) == 4
    outputs = [seedkit(*cmd[1:]) for cmd in commands]
    for name, text in written.items():
        assert (tmp_path / name).read_text() == text, name
    assert "inserted" in outputs[2] and "nothing changed" in outputs[3]
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("SELECT count(*) FROM users").fetchone() == (2,)
        assert copy.execute("""SELECT p.slug, u.email, m.email FROM posts p JOIN users u ON u.id = p.author_id
                               JOIN users m ON m.id = u.manager_id ORDER BY 1""").fetchall() == [
            ("again", "samuelday.x3ahc344el@example.com", "kyle20.oyhyayzrxm@example.org"),
            ("hello", "samuelday.x3ahc344el@example.com", "kyle20.oyhyayzrxm@example.org")]
