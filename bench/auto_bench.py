"""``auto`` rows at scale: the same tables loaded by a fixture with hand-written values and by ``auto=True``.

The table (issue 19): ``orders`` with a ``varchar(20)`` unique column, a composite unique key
``(user_id, seq)``, a CHECK range, a CHECK IN list, an enum and two foreign keys (users, shops); its
parents are loaded in the same run (``rows / 10`` users with ``per=10``, 50 shops). The hand-written
fixture sets every column itself from ``n`` with f-strings and arithmetic (no Faker: the cheapest
values a person would write); the auto fixture sets nothing. Both run as ``seedkit run`` subprocesses
(whole process), each into a fresh database holding the schema only, alternating, ``--repeat`` times;
the median counts. Then each project runs again on its loaded database (once): it must change nothing.
Target: auto ≤ 1.5× hand-written. A missed target is printed (✗), not turned into an exit status.

    python bench/auto_bench.py [--rows 1000000] [--repeat 2] [--database URL]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # a script: the repository root, for tests.support
from seedkit.urls import parse_url  # noqa: E402
from tests.support.pgcluster import server  # noqa: E402

SCHEMA = """
CREATE TYPE tier AS ENUM ('free', 'pro', 'team');
CREATE TABLE users (id serial PRIMARY KEY, email varchar(40) NOT NULL UNIQUE, name text NOT NULL);
CREATE TABLE shops (id serial PRIMARY KEY, name varchar(30) NOT NULL, city text NOT NULL);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    code varchar(20) NOT NULL UNIQUE,
    user_id int NOT NULL REFERENCES users (id),
    shop_id int NOT NULL REFERENCES shops (id),
    seq int NOT NULL CHECK (seq BETWEEN 1 AND 10),
    qty int NOT NULL CHECK (qty BETWEEN 1 AND 50),
    tier tier NOT NULL,
    state text NOT NULL CHECK (state IN ('open', 'paid', 'shipped')),
    total numeric(8,2) NOT NULL CHECK (total >= 0),
    placed date NOT NULL,
    UNIQUE (user_id, seq)
);
"""

HAND = '''
from datetime import date, timedelta
from decimal import Decimal

from seedkit import fixture

ORDERS = {rows}
USERS = ORDERS // 10
TIERS = ("free", "pro", "team")
STATES = ("open", "paid", "shipped")
DAY0 = date(2020, 1, 1)


@fixture("users", count=USERS)
def users(fake, n):
    return {{"id": n, "email": f"user{{n}}@example.com", "name": f"User {{n}}"}}


@fixture("shops", count=50)
def shops(fake, n):
    return {{"id": n, "name": f"Shop {{n}}", "city": f"City {{n % 7}}"}}


@fixture("orders", count=ORDERS)
def orders(fake, n):
    return {{"id": n, "code": f"ord-{{n}}", "user_id": (n - 1) // 10 + 1, "shop_id": n % 50 + 1,
            "seq": (n - 1) % 10 + 1, "qty": n % 50 + 1, "tier": TIERS[n % 3], "state": STATES[n % 3],
            "total": Decimal(n % 100000) / 100, "placed": DAY0 + timedelta(days=n % 1826)}}
'''

AUTO = '''
from seedkit import fixture

ORDERS = {rows}


@fixture("users", count=ORDERS // 10, auto=True)
def users(fake, n):
    pass


@fixture("shops", count=50, auto=True)
def shops(fake, n):
    pass


@fixture("orders", auto=True, per={{"user_id": 10}})
def orders(fake, n):
    pass
'''


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"auto_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = parse_url(server_url).with_database(name).raw
    try:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(SCHEMA)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def write_project(root: Path, text: str) -> None:
    (root / "seeds" / "bench").mkdir(parents=True)
    (root / "seedkit.toml").write_text("[seeds]\nfaker_seed = 42\n\n[envs.bench]\ninclude = [\"bench\"]\n")
    (root / "seeds" / "bench" / "orders.py").write_text(text)


def seed(root: Path, url: str) -> tuple[float, dict]:
    env = {**os.environ, "NO_COLOR": "1"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "seedkit", "run", "bench", "--database", url, "--json"], cwd=root,
                          capture_output=True, text=True, env=env, check=False)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"seedkit run failed ({proc.returncode}):\n{proc.stderr}")
    return took, json.loads(proc.stdout)


def check(url: str, rows: int) -> str:
    with psycopg.connect(url) as c:
        (n, users, codes, longest, per_user) = c.execute(
            "SELECT count(*), count(DISTINCT user_id), count(DISTINCT code), max(length(code)),"
            " (SELECT count(*) FROM (SELECT user_id FROM orders GROUP BY user_id HAVING count(*) <> 10) x)"
            " FROM orders").fetchone()
    assert n == rows and codes == rows and users == rows // 10 and per_user == 0 and longest <= 20
    return f"{n} orders, {users} users × 10, {codes} distinct codes (longest {longest} characters)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--database", help="a PostgreSQL server URL (default: a throwaway server)")
    args = parser.parse_args()
    rows = args.rows - args.rows % 10
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")
    with server(args.database) as srv, tempfile.TemporaryDirectory() as tmp:
        hand, auto = Path(tmp) / "hand", Path(tmp) / "auto"
        write_project(hand, HAND.format(rows=rows))
        write_project(auto, AUTO.format(rows=rows))
        times: dict[str, list[float]] = {"hand": [], "auto": []}
        rerun: dict[str, tuple[float, int]] = {}
        for i in range(args.repeat):
            for name, root in (("hand", hand), ("auto", auto)):
                with fresh_database(srv) as url:
                    took, report = seed(root, url)
                    times[name].append(took)
                    shown = check(url, rows)
                    print(f"  {name} #{i + 1}: {took:.1f} s  ({shown})")
                    if name not in rerun:
                        again, second = seed(root, url)
                        changed = sum(t["inserted"] + t["updated"] + t["deleted"] for t in second["tables"])
                        rerun[name] = (again, changed)
        h, a = statistics.median(times["hand"]), statistics.median(times["auto"])
        ratio = a / h
        print(f"\n{rows:,} orders (+ {rows // 10:,} users, 50 shops), median of {args.repeat}:")
        print(f"  hand-written values  {h:7.1f} s")
        print(f"  auto=True            {a:7.1f} s   ratio {ratio:.2f}× (target ≤ 1.5×) {'✓' if ratio <= 1.5 else '✗'}")
        for name in ("hand", "auto"):
            took, changed = rerun[name]
            print(f"  {name} rerun           {took:7.1f} s   rows changed: {changed} {'✓' if changed == 0 else '✗'}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")


if __name__ == "__main__":
    main()
