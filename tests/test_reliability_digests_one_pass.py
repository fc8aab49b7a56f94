"""A batch written by ``marshal`` once for both of its digests gives the digests of two passes: a
differential test (RELIABILITY.md §7).

A rerun digests every batch of a large Python fixture as ``marshal`` writes it, and a changed batch (or
one of a first run, which records them) by groups of 16 rows too. Where the batch before needed its group
digests, the next one is written once, group by group, and the batch digest is taken from those bytes
(seed/skip_tracker.py, ``_one_pass``). The digests must be byte for byte the ones of writing the batch whole
and then group by group: checked on random batches of every core type against the plain formulas, and on
random runs against the tracker with the one pass switched off (the same report, rows, and recorded digests).
"""

from __future__ import annotations

import hashlib
import marshal
import os
import random
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedkit.seed import skip_tracker
from tests.support import Project, pg_projects

SEED = int(os.environ.get("SEEDKIT_DIFF_SEED", "20261203"))
STEPS = int(os.environ.get("SEEDKIT_DIFF_STEPS", "40"))


def plain_groups(built: list) -> bytes:
    return b"".join(hashlib.sha256(marshal.dumps(built[i:i + 16], 2)).digest()[:8] for i in range(0, len(built), 16))


def plain_batch(built: list) -> bytes:
    return hashlib.sha256(b"M" + marshal.dumps(built, 2)).digest()[:16]


def plain_text(buf: bytes, ends: list[int]) -> bytes:
    return b"".join(hashlib.sha256(b"\0" + buf[s:e]).digest()[:8] for s, e in zip([0, *ends], ends))


def random_value(rng: random.Random) -> Any:
    return rng.choice([
        lambda: rng.choice(["", "a", "ü€", "[\x10\x00\x00\x00", "\ud800", "x" * rng.randint(0, 400)]),
        lambda: rng.randint(-5, 5), lambda: rng.randint(-2 ** 80, 2 ** 80), lambda: rng.random(),
        lambda: None, lambda: rng.random() < 0.5, lambda: b"\x00[" * rng.randint(0, 3),
        lambda: (1, "a", [2.5, None]), lambda: {"k": [1, 2], "j": {"x": None}},
    ])()


def test_one_pass_gives_the_digests_of_two(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    for case in range(400):
        n = rng.choice([0, 1, 15, 16, 17, 100, rng.randint(0, 3000)])
        built = [tuple(random_value(rng) for _ in range(rng.randint(1, 4))) if rng.random() < 0.7
                 else [random_value(rng) for _ in range(3)] for _ in range(n)]
        assert skip_tracker._one_pass(built) == (plain_groups(built), plain_batch(built)), case
        assert skip_tracker._group_digests(built) == plain_groups(built), case
        assert skip_tracker._batch_digest(built) == plain_batch(built), case
        buf = bytearray(b"".join(f"{i}\t{random_value(rng)!r}\n".encode("utf-8", "surrogatepass") for i in range(n)))
        for per in (4, 16):
            ends = skip_tracker._chunk_ends(buf, per) if n else []
            assert skip_tracker._text_digests(buf, ends) == plain_text(bytes(buf), ends), case
    # a value marshal does not write (not of a core type, or a subclass of one): no digest of its rows
    for odd in (Decimal(1), type("S", (str,), {})("s")):
        rows = [("a", 1)] * 20 + [("b", odd)]
        assert skip_tracker._one_pass(rows) is None and skip_tracker._batch_digest(rows) is None
    assert skip_tracker._one_pass(tuple([("a", 1)] * 20)) is None  # (not a list: the two passes decide)


SCHEMA = "CREATE TABLE items (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text NOT NULL, qty int)"


def source(rows: int, changed: dict[int, str], odd: int) -> str:
    return textwrap.dedent(f"""\
        from decimal import Decimal
        from seedkit import fixture

        CHANGED = {changed!r}


        @fixture("items", key=["code"])
        def items(fake):
            for n in range(1, {rows} + 1):
                yield {{"code": f"c{{n:05}}", "label": f"item {{n}}" + CHANGED.get(n, ""),
                       "qty": Decimal(n % 5) if n == {odd} else n % 5}}
        """)


@pytest.fixture
def two_projects(pg_server: str, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    with pg_projects(pg_server, tmp_path, schema=SCHEMA, batch_size=32) as make:
        yield make("one"), make("two")


@pytest.mark.postgres
def test_runs_with_and_without_the_one_pass_record_the_same_digests(two_projects) -> None:
    rng = random.Random(SEED)
    rows, changed, odd = 300, {}, 0
    calls: list[bool] = []
    real = skip_tracker._one_pass

    def counted(built: list) -> Any:
        calls.append(True)
        return real(built)
    history: list[str] = []
    for i in range(STEPS):
        roll = rng.random()
        if i == 0:
            what = "first run"
        elif roll < 0.5:
            changed = {n: rng.choice(["!", "?", ""]) for n in rng.sample(range(1, rows + 1), rng.randint(1, 12))}
            what = f"rows changed: {sorted(changed)}"
        elif roll < 0.7:
            rows = max(40, rows + rng.randint(-70, 90))
            what = f"{rows} rows"
        elif roll < 0.8:
            odd = rng.choice([0, 0, rng.randint(1, rows)])
            what = f"row {odd}'s qty a Decimal" if odd else "no Decimal"
        else:
            n = rng.randint(1, rows)
            what = f"outside: label of c{n:05}"
        history.append(f"{i}: {what}")
        outcomes = []
        for p, one in zip(two_projects, (True, False)):
            p.write("dev/items.py", source(rows, changed, odd))
            if what.startswith("outside"):
                p.sql(f"UPDATE items SET label = 'outside' WHERE code = 'c{n:05}'")
            with pytest.MonkeyPatch.context() as m:
                m.setattr(skip_tracker, "_one_pass", counted if one else lambda built: None)
                code, report = p.seed_report("dev")
            with psycopg.connect(p.url) as c:
                table = c.execute("SELECT code, label, qty FROM items ORDER BY code").fetchall()
                record = c.execute("SELECT rows, batches, keys, chunks FROM seedkit_digests").fetchall() if c.execute(
                    "SELECT to_regclass('seedkit_digests') IS NOT NULL").fetchone() == (True,) else []
            outcomes.append((code, report, table, record))
        where = f"seed {SEED}, step {i}; the steps so far:\n  " + "\n  ".join(history[-12:])
        assert outcomes[0][:2] == outcomes[1][:2], f"exit codes or reports differ at {where}"
        assert outcomes[0][2] == outcomes[1][2], f"rows differ at {where}"
        assert outcomes[0][3] == outcomes[1][3], f"recorded digests differ at {where}"
    assert len(calls) >= STEPS  # (the one pass ran: a first run, and every batch after a changed one)
