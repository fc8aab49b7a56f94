"""JSON Schemas of fixture files, built from the migrated database (``seedkit schema``).

``write(config)`` writes one draft 2020-12 schema per table to ``.seedkit/schema`` (or ``out``);
``validate.preflight`` checks a run's YAML and JSON rows against the same schemas before any write.
"""

from __future__ import annotations

import json
import os
from dataclasses import field
from pathlib import Path

from .. import db
from .._record import dataclass
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
    editor: str | None = None  # what happened to .vscode/settings.json


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
    report.editor = update_vscode(config.root, target, config.seeds_dir, list(schemas))
    return report


def update_vscode(root: Path, target: Path, seeds_dir: Path, files: list[str]) -> str | None:
    """Map ``seeds/**/<table>.yaml`` (and .yml, .json) to its schema in ``.vscode/settings.json``.

    Only an existing, plain-JSON settings file is changed, and in it only the entries that point
    into ``target``; everything else is kept as it was. Returns a sentence for the user, or None.
    """
    settings = root / ".vscode" / "settings.json"
    if not settings.is_file() or not target.is_relative_to(root) or not seeds_dir.is_relative_to(root):
        return None
    try:
        data = json.loads(settings.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return (f"{settings.relative_to(root)} is not plain JSON (comments?): map seeds/**/<table>.yaml to "
                f"{target.relative_to(root).as_posix()}/<table>.schema.json under yaml.schemas yourself")
    if not isinstance(data, dict):
        return None
    folder = "./" + target.relative_to(root).as_posix()
    seeds = seeds_dir.relative_to(root).as_posix()
    yaml_map = data.get("yaml.schemas")
    yaml_map = {k: v for k, v in (yaml_map if isinstance(yaml_map, dict) else {}).items()
                if not k.startswith(folder + "/")}
    json_list = data.get("json.schemas")
    json_list = [e for e in (json_list if isinstance(json_list, list) else [])
                 if not (isinstance(e, dict) and str(e.get("url", "")).startswith(folder + "/"))]
    for name in sorted(files):
        table = name[: -len(".schema.json")]
        yaml_map[f"{folder}/{name}"] = [f"{seeds}/**/{table}.yaml", f"{seeds}/**/{table}.yml"]
        json_list.append({"fileMatch": [f"{seeds}/**/{table}.json"], "url": f"{folder}/{name}"})
    updated = {**data, "yaml.schemas": yaml_map, "json.schemas": json_list}
    tags = updated.get("yaml.customTags")
    tags = list(tags) if isinstance(tags, list) else []
    for tag in ("!ref scalar", "!ref mapping", "!env scalar"):
        if tag not in tags:
            tags.append(tag)
    updated["yaml.customTags"] = tags
    if updated == data:
        return None
    text = json.dumps(updated, indent=2, ensure_ascii=False) + "\n"
    tmp = settings.with_name(settings.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(settings)
    return f"updated {settings.relative_to(root).as_posix()}: seeds/**/<table>.yaml → its schema"


__all__ = ["DEFAULT_DIR", "Rule", "SchemaReport", "read_rules", "schema_filename", "table_schema", "write"]
