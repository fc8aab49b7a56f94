"""``-- seedkit:nolint RULE reason``: reading the directives and applying them to the findings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .._record import dataclass
from .report import Finding, Suppressed
from .rules import ERROR, META_RULES, RULES, WARNING
from .source import _Raw, _Source

_NOLINT = re.compile(r"--\s*seedkit:\s*nolint\b(?P<rest>.*)$", re.IGNORECASE)


@dataclass
class _Directive:
    line: int  # file line
    offset: int  # section offset of the comment
    rules: list[str]
    reason: str | None
    used: bool = False


def _parse_directive(text: str, line: int, offset: int) -> _Directive | None:
    m = _NOLINT.search(text)
    if m is None:
        return None
    rest = m["rest"].strip()
    words = rest.split(None, 1)
    rules = [r.strip().rstrip(":") for r in words[0].split(",") if r.strip()] if words else []
    reason = words[1].strip().lstrip("-—:").strip() if len(words) > 1 else ""
    return _Directive(line=line, offset=offset, rules=rules,
                      reason=reason if re.search(r"\w", reason) else None)


def _directives(src: _Source, tokens: Sequence[Any],
                do_bodies: Sequence[tuple[int, int]]) -> list[_Directive]:
    """``seedkit:nolint`` comments: real comment tokens, and ``--`` comments inside DO block bodies."""
    found: list[_Directive] = []
    for tok in tokens:
        if tok.name == "SQL_COMMENT":
            d = _parse_directive(src.sql[tok.start:tok.end + 1], src.position(tok.start)[0], tok.start)
            if d:
                found.append(d)
    for begin, end in do_bodies:
        body = src.sql[begin:end]
        for m in re.finditer(r"--[^\n]*", body):
            d = _parse_directive(m.group(0), src.position(begin + m.start())[0], begin + m.start())
            if d:
                found.append(d)
    return found


def _comment_block_above(src: _Source, line: int) -> set[int]:
    """File lines of the comment-only lines directly above ``line`` (no blank line in between)."""
    lines: set[int] = set()
    n = line - 1
    while n > src.line_offset and src.section_line(n).strip().startswith("--"):
        lines.add(n)
        n -= 1
    return lines


# -------------------------------------------------------------------------------------------------
# Entry points
# -------------------------------------------------------------------------------------------------


def _apply_suppressions(src: _Source, raw: list[_Raw],
                        directives: list[_Directive]) -> tuple[list[Finding], list[Suppressed]]:
    findings: list[Finding] = []
    suppressed: list[Suppressed] = []
    above_cache: dict[int, set[int]] = {}
    for r in sorted(raw, key=lambda r: r.offset):
        line, col = src.position(r.offset)
        rule = RULES[r.rule]
        finding = Finding(src.path, line, col, r.rule, rule.level, r.message, r.hint or rule.hint)
        first, last = r.span
        if first not in above_cache:
            above_cache[first] = _comment_block_above(src, first)
        match = next((d for d in directives if r.rule in d.rules
                      and (first <= d.line <= last or d.line in above_cache[first])), None)
        if match is None:
            findings.append(finding)
        else:
            match.used = True
            suppressed.append(Suppressed(finding, match.reason, match.line))
    for d in directives:
        line, col = src.position(d.offset)
        unknown = [r for r in d.rules if r not in RULES or r in META_RULES]
        if not d.rules or unknown:
            what = f"unknown rule {', '.join(unknown)}" if unknown else "no rule named"
            findings.append(Finding(src.path, line, col, "nolint-unknown-rule", ERROR,
                                    f"seedkit:nolint with {what}", RULES["nolint-unknown-rule"].hint))
        if d.reason is None:
            findings.append(Finding(src.path, line, col, "nolint-missing-reason", ERROR,
                                    "seedkit:nolint without a reason", RULES["nolint-missing-reason"].hint))
        if not d.used and d.rules and not unknown:
            findings.append(Finding(src.path, line, col, "nolint-unused", WARNING,
                                    f"seedkit:nolint {','.join(d.rules)} suppresses nothing here",
                                    RULES["nolint-unused"].hint))
    findings.sort(key=lambda f: (f.line, f.column, f.rule))
    return findings, suppressed
