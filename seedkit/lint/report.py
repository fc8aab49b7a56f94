"""What linting found: findings, suppressed findings, per-file results, the report and its JSON schema."""

from __future__ import annotations

import json
from dataclasses import asdict, field
from typing import Any

from .._record import dataclass
from .rules import ERROR, FINDINGS_EXIT, RULES, WARNING


@dataclass(frozen=True)
class Finding:
    path: str
    line: int  # 1-based, in the file
    column: int  # 1-based, in characters
    rule: str
    level: str
    message: str
    hint: str

    def format(self) -> str:
        """``file:line:col RULE level message`` (the hint goes on the next line)."""
        return f"{self.path}:{self.line}:{self.column} {self.rule} {self.level} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Suppressed:
    finding: Finding
    reason: str | None
    line: int  # where the seedkit:nolint comment is

    def to_dict(self) -> dict[str, Any]:
        return {**self.finding.to_dict(), "reason": self.reason, "nolint_line": self.line}


@dataclass
class FileResult:
    """What linting one migration produced."""

    path: str
    version: str | None = None
    transactional: bool = True
    status: str = "linted"  # "linted" | "skipped"
    note: str | None = None
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)


@dataclass
class LintReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.files for f in r.findings]

    @property
    def suppressed(self) -> list[Suppressed]:
        return [s for r in self.files for s in r.suppressed]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.level == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level == WARNING)

    @property
    def exit_code(self) -> int:
        """3 when an error-level finding remains (a check found a problem, as ``status --exit-code``,
        ``verify`` and ``run --check`` say it), else 0."""
        return FINDINGS_EXIT if self.errors else 0

    def summary(self) -> str:
        linted = sum(1 for r in self.files if r.status == "linted")
        skipped = len(self.files) - linted
        files = f"{len(self.files)} migration{'s' if len(self.files) != 1 else ''} checked"
        if skipped:
            files += f" ({skipped} skipped)"
        counts = f"{_plural(self.errors, 'error')}, {_plural(self.warnings, 'warning')}"
        if self.suppressed:
            counts += f", {len(self.suppressed)} suppressed"
        return f"{files}: {counts}"

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document; its shape is ``JSON_SCHEMA`` (and docs/lint.md)."""
        return {
            "version": 1,
            "summary": {
                "files": len(self.files),
                "linted": sum(1 for r in self.files if r.status == "linted"),
                "skipped": sum(1 for r in self.files if r.status == "skipped"),
                "errors": self.errors,
                "warnings": self.warnings,
                "suppressed": len(self.suppressed),
                "exit_code": self.exit_code,
            },
            "files": [{"path": r.path, "version": r.version, "transactional": r.transactional,
                       "status": r.status, "note": r.note,
                       "errors": sum(1 for f in r.findings if f.level == ERROR),
                       "warnings": sum(1 for f in r.findings if f.level == WARNING)} for r in self.files],
            "findings": [f.to_dict() for f in self.findings],
            "suppressed": [s.to_dict() for s in self.suppressed],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


_FINDING_PROPS = {
    "path": {"type": "string"},
    "line": {"type": "integer", "minimum": 1},
    "column": {"type": "integer", "minimum": 1},
    "rule": {"type": "string", "enum": sorted(RULES)},
    "level": {"type": "string", "enum": [ERROR, WARNING]},
    "message": {"type": "string"},
    "hint": {"type": "string"},
}
_COUNT = {"type": "integer", "minimum": 0}
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "seedkit migrate lint --json",
    "type": "object",
    "required": ["version", "summary", "files", "findings", "suppressed"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "summary": {
            "type": "object", "additionalProperties": False,
            "required": ["files", "linted", "skipped", "errors", "warnings", "suppressed", "exit_code"],
            "properties": {"files": _COUNT, "linted": _COUNT, "skipped": _COUNT, "errors": _COUNT,
                           "warnings": _COUNT, "suppressed": _COUNT, "exit_code": {"enum": [0, FINDINGS_EXIT]}},
        },
        "files": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["path", "version", "transactional", "status", "note", "errors", "warnings"],
            "properties": {"path": {"type": "string"}, "version": {"type": ["string", "null"]},
                           "transactional": {"type": "boolean"},
                           "status": {"enum": ["linted", "skipped"]}, "note": {"type": ["string", "null"]},
                           "errors": _COUNT, "warnings": _COUNT},
        }},
        "findings": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": sorted(_FINDING_PROPS),
            "properties": _FINDING_PROPS,
        }},
        "suppressed": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": [*sorted(_FINDING_PROPS), "reason", "nolint_line"],
            "properties": {**_FINDING_PROPS, "reason": {"type": ["string", "null"]},
                           "nolint_line": {"type": "integer", "minimum": 1}},
        }},
    },
}
