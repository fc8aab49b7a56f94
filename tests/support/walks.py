"""Differential walks: the same steps run on projects side by side, one a fast path, the others its plain twin.

The reliability tests of seedkit's fast paths (RELIABILITY.md §7) give two or three projects, each on its own
database, the same seeded random steps — a change of the fixture, an outside change behind seedkit's back —
each followed by ``seedkit run dev --json``, one side as shipped and the others with the fast path switched
off. ``Walk`` runs a step on every side and asserts after it that every side ended as the first one: the same
exit code, the same report (``Project.seed_report``: timings and paths masked) and the same parts of the
database as the test reads them (table contents, the records of runs). With ``fingerprints``, the last part
is ``kept(connection)``: each fingerprint a run kept must be its table's own. A test keeps its own steps, its
own way of running a side, and its own counts of how often the fast path was taken.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from tests.support.project import Project, pg_projects

FINGERPRINT = ("SELECT json_build_array(coalesce(sum(g.c), 0), coalesce(sum(g.c::numeric * "
               "hashint8extended(g.x::text::bigint, 0)), 0)::text)::text FROM "
               "(SELECT xmin AS x, count(*) AS c FROM {} GROUP BY xmin) g")
RECORDS = "SELECT fixture, table_name, state, rows FROM seedkit_digests ORDER BY 1, 2"


@contextmanager
def projects(server: str, tmp_path: Path, sides: Sequence[str], *, schema: str, batch_size: int,
             files: Mapping[str, str]) -> Iterator[tuple[Project, ...]]:
    """A project a side, in ``tmp_path/<side>`` on a new database of ``server`` holding ``schema``, with
    ``[seeds] batch_size`` and ``files`` (path under seeds/: text) written (``pg_projects``)."""
    def write(p: Project) -> None:
        for path, text in files.items():
            p.write(path, text)

    with pg_projects(server, tmp_path, schema=schema, batch_size=batch_size, files=write) as make:
        yield tuple(make(side) for side in sides)


def prepare(p: Project, step: Any) -> None:
    """Before a side runs the step: its fixture (``step.fixture.source()``) written as dev/items.py, and its
    SQL (``step.sql``) run behind seedkit's back."""
    if step.fixture is not None:
        p.write("dev/items.py", step.fixture.source())
    if step.sql is not None:
        p.sql(step.sql)


def records(p: Project) -> list[tuple]:
    """The records of what runs left, as stored."""
    with psycopg.connect(p.url) as c:
        if c.execute("SELECT to_regclass('seedkit_digests') IS NOT NULL").fetchone() != (True,):
            return []
        return c.execute(RECORDS).fetchall()


def kept(c: psycopg.Connection) -> tuple:
    """For each record of a run (fixture, table, state, rows): whether it kept each table's fingerprint, and
    whether the one kept is the table's fingerprint now."""
    if c.execute("SELECT to_regclass('seedkit_digests') IS NOT NULL").fetchone() != (True,):
        return ()

    def state(text: str) -> tuple:
        return tuple(sorted((k, v is None, v == json.loads(c.execute(  # type: ignore[index]
            FINGERPRINT.format(k)).fetchone()[0])) for k, v in json.loads(text).items()))
    return tuple((f, t, state(s), n) for f, t, s, n in c.execute(RECORDS))


class Walk:
    """Steps run on every side (``sides``: a project a side, named by its folder), compared with the first.

    For each step and side: ``prepare(project, step)``, then ``run(project, step, flag, *extra)`` (``flags``:
    one a side, e.g. whether it takes the fast path) gives the exit code and the report, then ``look(project)``
    the parts compared, named by ``parts`` (those also in ``show`` are printed when they differ). With
    ``fingerprints`` the last part is ``kept(...)``: whenever the first side's records change, every
    fingerprint its runs kept must be the table's."""

    def __init__(self, sides: Iterable[Project], flags: Iterable[Any], seed: int,
                 run: Callable[..., tuple[int, Any]], look: Callable[[Project], tuple], parts: Sequence[str], *,
                 show: Sequence[str] = (), fingerprints: bool = False, tail: int = 20,
                 prepare: Callable[[Project, Any], None] = prepare) -> None:
        self.sides = list(zip(sides, flags, strict=True))
        self.seed, self.run, self.look, self.parts, self.show = seed, run, look, parts, show
        self.fingerprints, self.tail, self.prepare = fingerprints, tail, prepare
        self.history: list[str] = []
        self.recorded = records(self.sides[0][0]) if fingerprints else []

    def step(self, i: int, step: Any, *extra: Any, note: str = "") -> dict[str, tuple]:
        """Step ``i`` on every side; the outcomes (exit code, report, *parts) by side."""
        self.history.append(f"{i}: {step.text}{note}")
        outcomes: dict[str, tuple] = {}
        for p, flag in self.sides:
            self.prepare(p, step)
            code, report = self.run(p, step, flag, *extra)
            outcomes[p.root.name] = (code, report, *self.look(p))
        where = f"seed {self.seed}, step {i} ({step.text}); the steps so far:\n  " + "\n  ".join(
            self.history[-self.tail:])
        first, *others = outcomes
        a = outcomes[first]
        for side in others:
            b = outcomes[side]
            vs = f" ({first} vs {side})"
            assert a[0] == b[0], f"exit codes differ{vs} at {where}\n{a[1]}\n{b[1]}"
            assert a[1] == b[1], f"reports differ{vs} at {where}\n{a[1]}\n{b[1]}"
            for k, part in enumerate(self.parts, 2):
                shown = f"\n{a[k]}\n{b[k]}" if part in self.show else ""
                assert a[k] == b[k], f"{part} differ{vs} at {where}{shown}"
        if self.fingerprints:
            # what this run recorded (a record it did not write may be stale: the table changed behind its back,
            # or the run compared every row and kept none): each fingerprint kept is the table's own
            now = records(self.sides[0][0])
            if now != self.recorded:
                for record in a[-1]:
                    assert all(lost or same for _, lost, same in record[2]), \
                        f"a kept fingerprint is not the table's at {where}"
            self.recorded = now
        return outcomes
