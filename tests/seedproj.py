"""A small builder for seed-engine test projects: a seedkit.toml, seed folders and a schema."""

from __future__ import annotations

import textwrap
from pathlib import Path

from seedkit import db, load_config
from seedkit.config import Config


class Project:
    def __init__(self, root: Path, url: str, envs: dict[str, dict] | None = None):
        self.root = root
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        envs = envs or {"dev": {"include": ["common", "dev"]}, "test": {"include": ["common", "test"]},
                        "production": {"include": ["common"], "protected": True}}
        lines = ["[database]", f'url = "{url}"', "", "[seeds]", "faker_seed = 7", ""]
        for name, spec in envs.items():
            lines.append(f"[envs.{name}]")
            lines.append("include = [" + ", ".join(f'"{i}"' for i in spec["include"]) + "]")
            if spec.get("protected"):
                lines.append("protected = true")
            lines.append("")
        (root / "seedkit.toml").write_text("\n".join(lines))
        for spec in envs.values():
            for folder in spec["include"]:
                (root / "seeds" / folder).mkdir(parents=True, exist_ok=True)

    @property
    def pg(self) -> bool:
        return self.dialect == "postgresql"

    def config(self) -> Config:
        return load_config(self.root / "seedkit.toml")

    def write(self, rel: str, text: str) -> Path:
        path = self.root / "seeds" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def sql(self, pg: str, sqlite: str | None = None) -> None:
        """Run DDL/DML, one statement per ';'-terminated chunk (test schemas have no ';' in bodies)."""
        text = pg if self.pg or sqlite is None else sqlite
        with db.connect(self.url) as d:
            if self.pg:
                d.execute(text)
            else:
                d.conn.executescript(text)

    def rows(self, query: str) -> list[tuple]:
        with db.connect(self.url) as d:
            return [tuple(r) for r in d.fetchall(query)]

    def scalar(self, query: str):
        return self.rows(query)[0][0]

    def snapshot(self, tables: list[str]) -> dict[str, list[tuple]]:
        return {t: sorted(map(repr, self.rows(f"SELECT * FROM {t}"))) for t in tables}  # type: ignore[misc]

    def pg_stats(self, tables: list[str]) -> dict[str, tuple]:
        with db.connect(self.url) as d:
            d.execute("SELECT pg_stat_force_next_flush()") if int(d.server_version.split(".")[0]) >= 15 else None
            out = {}
            for t in tables:
                row = d.fetchone("SELECT n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd FROM pg_stat_user_tables "
                                 "WHERE relname = %s", [t])
                out[t] = tuple(row) if row else None
            return out
