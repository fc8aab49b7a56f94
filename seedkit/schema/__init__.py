"""JSON Schemas of fixture files, built from the migrated database (``seedkit schema``).

``write(config)`` writes one draft 2020-12 schema per table to ``.seedkit/schema`` (or ``out``);
``validate.preflight`` checks a run's YAML and JSON rows against the same schemas before any write.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import db
from ..config import Config, load_config
from .build import all_schemas, schema_filename, table_schema
from .checks import Rule, read_rules

DEFAULT_DIR = ".seedkit/schema"


@dataclass
class SchemaReport:
    out: Path
    written: list[str] = field(default_factory=list)  # file names whose content changed
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # schemas of tables that no longer exist


def write(config: Config | str | os.PathLike[str] | None = None, *, env: str | None = None,
          out: str | os.PathLike[str] | None = None, database_url: str | None = None) -> SchemaReport:
    """Write ``<table>.schema.json`` for every table of the environment's database.

    Files are rewritten only when their content changes; schemas of tables that are gone are removed
    (only ``*.schema.json`` files, only in that folder).
    """
    if not isinstance(config, Config):
        config = load_config(config)
    url = config.database_url(env, database_url)
    target = Path(out) if out is not None else config.root / DEFAULT_DIR
    if not target.is_absolute():
        target = Path.cwd() / target
    with db.connect(url) as d:
        catalog = d.catalog(refresh=True)
        rules = read_rules(d, catalog)
    schemas = all_schemas(catalog, rules)
    target.mkdir(parents=True, exist_ok=True)
    report = SchemaReport(out=target)
    for name, schema in schemas.items():
        text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        path = target / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            report.unchanged.append(name)
            continue
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        report.written.append(name)
    for stale in sorted(target.glob("*.schema.json")):
        if stale.name not in schemas:
            stale.unlink()
            report.removed.append(stale.name)
    return report


__all__ = ["DEFAULT_DIR", "Rule", "SchemaReport", "read_rules", "schema_filename", "table_schema", "write"]
