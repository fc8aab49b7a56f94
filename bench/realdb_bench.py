"""Real sample databases: ``seedkit run`` against psql loading the same rows, whole processes.

Two public sample databases, about 15k and about 46k rows, are turned into fixture folders at bench
time (nothing of them is stored in this repository):

- ``chinook`` — Chinook 1.4.5 for PostgreSQL (``lerocha/chinook-database``,
  ``ChinookDatabase/DataSources/Chinook_PostgreSql.sql``): 11 tables, 15,607 rows; the publisher's
  script loads them with multi-row ``INSERT`` statements;
- ``pagila`` — Pagila 0.10.1 (``morenoh149/postgresDBSamples``, ``pagila-0.10.1/``): 15 tables with
  rows (payments in six inheritance children), 46,273 rows; the publisher ships ``COPY`` data, so the
  psql side replays the same rows as one ``INSERT`` per row (``pg_dump --inserts``, the shape of the
  publisher's own ``pagila-insert-data.sql``) in one transaction.

For each: the publisher's script is loaded into a source database; ids become made up by the
database and a natural key gets a unique constraint where the data has one (artists by name, tracks
by album, name and length, customers by e-mail, rentals by date, item and customer …), other tables
keep their given ids; ``seedkit snapshot`` writes the rows as fixtures — YAML with ``!ref``
references by natural key, CSV for the tables that CSV can hold. Then, each on a fresh database
holding the schema alone (``pg_dump --schema-only`` of the source):

- psql: ``psql -f`` of the data script (a whole process);
- seedkit fresh: ``python -m seedkit run snap --database URL --json`` (a whole process: interpreter
  start, imports, reading and converting every fixture, resolving every reference, loading);
- seedkit rerun: the same again on the loaded database (must report every row unchanged).

Each is measured with the fixture cache (``.seedkit/cache/fixtures``) cold (emptied first: a new
checkout) and warm (left by the run before, the files unchanged). Targets (issue 17): fresh ≤ 3× psql,
judged cold (psql has nothing cached either, and a first run has no cache); rerun ≤ 2× psql, judged
warm (a rerun follows a run, which left the cache). Both states are printed for both, and the cold
first run once more on one core (``SEEDKIT_PARALLEL_READ=0``: no worker process reading YAML), and the
warm first run once more with every statement on the run's thread (``SEEDKIT_OVERLAP=0``: no insert in
the background while the next rows are built).

    python bench/realdb_bench.py [--only chinook|pagila] [--repeat 3] [--database URL]
                                 [--corpus DIR] [--summary FILE]

The sources are read from git mirrors under ``--corpus`` (default ``$SEEDKIT_BENCH_CORPUS`` or
``/work/.mirror``: ``OWNER+NAME/repo`` bare repositories) or downloaded from GitHub.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from seed_bench import Child, run_child, server  # noqa: E402

from seedkit.urls import parse_url  # noqa: E402


# -- the datasets -----------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    files: dict[str, tuple[str, str, str]]  # role -> (repository, commit or HEAD, path)
    # table -> natural key: its id becomes made up (serial/identity) and the key gets a unique constraint
    natural: dict[str, list[str]]
    # table -> id column, for the tables that keep their given ids (no default: not made up)
    given: dict[str, str]
    made_up: dict[str, str]  # table -> id column of the natural-key tables
    deferrable: list[tuple[str, str]] = field(default_factory=list)  # (table, constraint) made DEFERRABLE
    exclude: list[str] = field(default_factory=list)  # tables not seeded
    load_source: Callable[[str, dict[str, str]], None] | None = None
    data_script: Callable[[str, dict[str, str], Path], Path] | None = None


def _psql(url: str, path: Path | None = None, *, text: str | None = None, single: bool = False) -> None:
    cmd = ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", url]
    if single:
        cmd.append("-1")
    if path is not None:
        cmd += ["-f", str(path)]
    subprocess.run(cmd, input=text, text=True, check=True, stdout=subprocess.DEVNULL)


def chinook_load(url: str, text: dict[str, str]) -> None:
    script = text["script"]
    start = script.index("CREATE TABLE")  # the publisher's script drops, creates and \c's its own database
    _psql(url, text=script[start:])


def chinook_data(url: str, text: dict[str, str], out: Path) -> Path:
    """The publisher's own INSERT statements (multi-row, autocommit), as they are."""
    script = text["script"]
    start = script.index("INSERT INTO")
    out.write_text(script[start:], encoding="utf-8")
    return out


def pagila_load(url: str, text: dict[str, str]) -> None:
    # PostgreSQL 9+ has plpgsql already: the 0.10.1 schema still creates it
    schema = "\n".join(line for line in text["schema"].splitlines() if "PROCEDURAL LANGUAGE" not in line)
    _psql(url, text=schema)
    _psql(url, text=text["data"])


def pagila_data(url: str, text: dict[str, str], out: Path) -> Path:
    """The same rows as one INSERT per row (the publisher's insert-data shape), one transaction."""
    dump = subprocess.run(["pg_dump", "--data-only", "--inserts", "--no-owner", "-d", url],
                          capture_output=True, text=True, check=True).stdout
    out.write_text("BEGIN;\nSET CONSTRAINTS ALL DEFERRED;\n" + dump + "\nCOMMIT;\n", encoding="utf-8")
    return out


CHINOOK = Dataset(
    "chinook",
    {"script": ("lerocha/chinook-database", "HEAD", "ChinookDatabase/DataSources/Chinook_PostgreSql.sql")},
    natural={"artist": ["name"], "album": ["title", "artist_id"], "genre": ["name"], "media_type": ["name"],
             "employee": ["email"], "customer": ["email"], "invoice": ["customer_id", "invoice_date"],
             "track": ["name", "album_id", "milliseconds"], "invoice_line": ["invoice_id", "track_id"]},
    made_up={"artist": "artist_id", "album": "album_id", "genre": "genre_id", "media_type": "media_type_id",
             "employee": "employee_id", "customer": "customer_id", "invoice": "invoice_id", "track": "track_id",
             "invoice_line": "invoice_line_id"},
    given={"playlist": "playlist_id"},  # playlist names repeat ("Music", "Movies" …): no natural key
    load_source=chinook_load, data_script=chinook_data)

PAGILA = Dataset(
    "pagila",
    {"schema": ("morenoh149/postgresDBSamples", "HEAD", "pagila-0.10.1/pagila-schema.sql"),
     "data": ("morenoh149/postgresDBSamples", "HEAD", "pagila-0.10.1/pagila-data.sql")},
    natural={"category": ["name"], "language": ["name"], "country": ["country"], "city": ["city", "country_id"],
             "address": ["address", "district", "city_id"], "film": ["title"], "customer": ["email"],
             "staff": ["username"], "rental": ["rental_date", "inventory_id", "customer_id"]},
    made_up={"category": "category_id", "language": "language_id", "country": "country_id", "city": "city_id",
             "address": "address_id", "film": "film_id", "customer": "customer_id", "staff": "staff_id",
             "rental": "rental_id"},
    # two actors share a name; inventory copies repeat; payments have no natural key; two stores
    given={"actor": "actor_id", "inventory": "inventory_id", "store": "store_id",
           **{f"payment_p2007_0{m}": "payment_id" for m in range(1, 7)}},
    deferrable=[("staff", "staff_store_id_fkey")],  # staff ↔ store: both NOT NULL
    exclude=["payment"],  # the parent: DO INSTEAD rules route its rows to the children (seeded directly)
    load_source=pagila_load, data_script=pagila_data)

DATASETS = {d.name: d for d in (CHINOOK, PAGILA)}


# -- sources ------------------------------------------------------------------------------------------
def read_source(corpus: Path, repo: str, commit: str, path: str) -> str:
    mirror = corpus / repo.replace("/", "+") / "repo"
    if mirror.exists():
        out = subprocess.run(["git", "--git-dir", str(mirror), "show", f"{commit}:{path}"], capture_output=True,
                             check=False)
        if out.returncode == 0:
            return out.stdout.decode("utf-8")
    ref = "master" if commit == "HEAD" else commit
    for branch in ([ref, "main"] if commit == "HEAD" else [ref]):
        try:
            with urllib.request.urlopen(f"https://raw.githubusercontent.com/{repo}/{branch}/{path}",
                                        timeout=30) as r:
                return r.read().decode("utf-8")
        except OSError:
            continue
    raise SystemExit(f"cannot read {repo}:{path}: no mirror under {corpus} and no download")


# -- databases ------------------------------------------------------------------------------------------
def admin(server_url: str, statement: sql.Composable) -> None:
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(statement)


def create_db(server_url: str, template: str | None = None) -> tuple[str, str]:
    name = f"realdb_{uuid.uuid4().hex[:10]}"
    if template:
        admin(server_url, sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                           sql.Identifier(template)))
    else:
        admin(server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, parse_url(server_url).with_database(name).raw


def drop_db(server_url: str, name: str) -> None:
    admin(server_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def databases(server_url: str) -> Iterator[Callable[[str | None], tuple[str, str]]]:
    made: list[str] = []

    def make(template: str | None = None) -> tuple[str, str]:
        name, url = create_db(server_url, template)
        made.append(name)
        return name, url

    try:
        yield make
    finally:
        for name in reversed(made):
            drop_db(server_url, name)


def adjust_schema(url: str, ds: Dataset) -> None:
    """Made-up ids and natural keys where the data has them; given ids elsewhere."""
    with psycopg.connect(url, autocommit=True) as c:
        for table, column in ds.made_up.items():
            t, col = sql.Identifier(table), sql.Identifier(column)
            default = c.execute("SELECT column_default, is_identity FROM information_schema.columns "
                                "WHERE table_name = %s AND column_name = %s", [table, column]).fetchone()
            if default and not default[0] and default[1] != "YES":
                c.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} ADD GENERATED BY DEFAULT AS IDENTITY")
                          .format(t, col))
                c.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({}, {}), "
                                  "(SELECT coalesce(max({}), 0) + 1 FROM {}), false)")
                          .format(sql.Literal(table), sql.Literal(column), col, t))
            keys = ds.natural[table]
            c.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({})").format(
                t, sql.Identifier(f"{table}_natural_key"), sql.SQL(", ").join(map(sql.Identifier, keys))))
        for table, column in ds.given.items():
            c.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(sql.Identifier(table),
                                                                                    sql.Identifier(column)))
            if not c.execute("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                             [table]).fetchone():  # pagila's payment children inherit no primary key
                c.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(sql.Identifier(table),
                                                                                 sql.Identifier(column)))
        for table, constraint in ds.deferrable:
            c.execute(sql.SQL("ALTER TABLE {} ALTER CONSTRAINT {} DEFERRABLE").format(sql.Identifier(table),
                                                                                     sql.Identifier(constraint)))
        c.execute("VACUUM ANALYZE")


def table_counts(url: str, exclude: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as c:
        names = [r[0] for r in c.execute("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace "
                                         "WHERE nspname = 'public' AND relkind IN ('r', 'p') ORDER BY 1")]
        return {t: int(c.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(t))).fetchone()[0])
                for t in names if t not in exclude and not t.startswith("seedkit_")}


# -- the run ----------------------------------------------------------------------------------------------
@dataclass
class Line:
    case: str
    seconds: float | None
    ratio: float | None = None
    limit: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool | None:
        if self.limit is None:
            return None
        return self.ratio is not None and self.ratio <= self.limit


def progress(msg: str) -> None:
    print(f"… {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def run_dataset(ds: Dataset, server_url: str, corpus: Path, root: Path, repeat: int) -> list[Line]:
    text = {role: read_source(corpus, *where) for role, where in ds.files.items()}
    work = root / ds.name
    work.mkdir()
    with databases(server_url) as make:
        src_name, src = make(None)
        progress(f"{ds.name}: loading the publisher's script into a source database")
        assert ds.load_source and ds.data_script
        ds.load_source(src, text)
        adjust_schema(src, ds)
        counts = table_counts(src, ds.exclude)
        total = sum(counts.values())
        schema = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "-d", src], capture_output=True,
                                text=True, check=True).stdout
        (work / "schema.sql").write_text(schema, encoding="utf-8")
        data = ds.data_script(src, text, work / "data.sql")

        # the fixtures: seedkit snapshot of the source, natural keys and !ref references, YAML and CSV
        project = work / "project"
        (project / "seeds").mkdir(parents=True)
        (project / "seedkit.toml").write_text(textwrap.dedent(f"""\
            [seeds]
            dir = "seeds"

            [envs.snap]
            include = ["snap"]

            [snapshot]
            csv_rows = 10

            [snapshot.keys]
            {chr(10).join(f'{t} = {json.dumps(k)}' for t, k in ds.natural.items())}
            """), encoding="utf-8")
        progress(f"{ds.name}: seedkit snapshot into YAML + CSV fixtures")
        snap = subprocess.run([sys.executable, "-m", "seedkit", "snapshot", "--database", src, "--out", "seeds/snap",
                               "--json", *[a for t in ds.exclude for a in ("--exclude", t)]],
                              cwd=project, capture_output=True, text=True, check=False)
        if snap.returncode != 0:
            raise SystemExit(f"{ds.name}: seedkit snapshot failed: {snap.stderr or snap.stdout}")
        report = json.loads(snap.stdout)
        formats: dict[str, int] = {}
        refs = 0
        for t in report["tables"]:
            formats[t["format"]] = formats.get(t["format"], 0) + 1
            refs += len(t.get("refs") or [])

        # the schema alone, as a template for every timed database
        tmpl_name, tmpl = make(None)
        _psql(tmpl, work / "schema.sql")
        with psycopg.connect(tmpl, autocommit=True) as c:
            c.execute("VACUUM ANALYZE")

        runs: dict[str, list[Child]] = {case: [] for case in CASES}
        psql_runs: list[float] = []
        problems: list[str] = []
        command = [sys.executable, "-m", "seedkit", "run", "snap", "--database"]

        def seedkit(case: str, target: str, i: int, *, cold: bool, fresh: bool,
                    env: dict[str, str] | None = None) -> Child:
            """One whole-process run; ``cold``: the fixture cache emptied first."""
            progress(f"{ds.name}: seedkit run, {CASES[case]} ({i + 1}/{repeat})")
            if cold:
                shutil.rmtree(project / ".seedkit" / "cache", ignore_errors=True)
            child = run_child([*command, target, "--json"], project, env)
            runs[case].append(child)
            if child.failure():
                problems.append(f"seedkit {CASES[case]}: {child.failure()}")
            elif fresh and child.totals().get("inserted") != total:
                problems.append(f"seedkit {CASES[case]} inserted {child.totals().get('inserted')} of {total}")
            elif not fresh and (child.totals().get("unchanged"), child.totals().get("inserted"),
                                child.totals().get("updated")) != (total, 0, 0):
                problems.append(f"seedkit {CASES[case]} changed rows: {child.totals()}")
            return child

        for i in range(repeat):
            _, target = make(tmpl_name)
            progress(f"{ds.name}: psql -f data.sql ({i + 1}/{repeat})")
            started = time.perf_counter()
            _psql(target, data)
            psql_runs.append(time.perf_counter() - started)
            if i == 0:
                got = table_counts(target, ds.exclude)
                if got != counts:
                    problems.append(f"psql loaded {got}, the source has {counts}")

            _, target = make(tmpl_name)
            child = seedkit("fresh_cold", target, i, cold=True, fresh=True)
            if i == 0 and not child.failure():
                got = table_counts(target, ds.exclude)
                if got != counts:
                    problems.append(f"seedkit loaded {got}, the source has {counts}")
            seedkit("rerun_warm", target, i, cold=False, fresh=False)  # the cache the run before wrote
            seedkit("rerun_cold", target, i, cold=True, fresh=False)
            _, target = make(tmpl_name)
            seedkit("fresh_warm", target, i, cold=False, fresh=True)
            _, target = make(tmpl_name)  # the same with every statement on the run's thread
            seedkit("fresh_warm_no_overlap", target, i, cold=False, fresh=True, env={"SEEDKIT_OVERLAP": "0"})
            _, target = make(tmpl_name)  # the same first run on one core (no worker process reading YAML)
            seedkit("fresh_cold_one_core", target, i, cold=True, fresh=True, env={"SEEDKIT_PARALLEL_READ": "0"})

        floors = fixed_costs(project)

    t_psql = median(psql_runs)
    t = {case: median([c.seconds for c in children]) for case, children in runs.items()}

    def notes(case: str) -> list[str]:
        return ["runs: " + ", ".join(f"{c.seconds:.3f}" for c in sorted(runs[case], key=lambda c: c.seconds))
                + " s", "engine's own time " + ", ".join(str(c.report.get("seconds", "?")) for c in runs[case])
                + f" s; peak RSS {max(c.rss_mb for c in runs[case]):.0f} MB"]

    failed = bool(problems)
    lines = [
        Line(f"{ds.name}: psql -f data ({len(counts)} tables, {total:,} rows)", t_psql,
             notes=["runs: " + ", ".join(f"{x:.3f}" for x in sorted(psql_runs)) + " s",
                    f"{data.stat().st_size / 1e6:.1f} MB of SQL"]),
        Line(f"{ds.name}: seedkit run, empty database, {CASES['fresh_cold']}", None if failed else t["fresh_cold"],
             t["fresh_cold"] / t_psql, 3.0, notes=[
                 *notes("fresh_cold"),
                 f"fixtures: {', '.join(f'{v} {k.upper()}' for k, v in sorted(formats.items()))} files, "
                 f"{refs} reference columns by natural key",
                 f"floors in every run: interpreter + seedkit's imports {floors['start']:.3f} s "
                 f"({floors['start'] / t_psql:.2f}× psql); libyaml's parse alone (events, no values) "
                 f"{floors['parse']:.3f} s ({floors['parse'] / t_psql:.2f}×); reading the fixtures "
                 f"through seedkit (rows, values, references) {floors['load']:.3f} s "
                 f"({floors['load'] / t_psql:.2f}×), from the fixture cache {floors['cached']:.3f} s "
                 f"({floors['cached'] / t_psql:.2f}×)"]),
        Line(f"{ds.name}: seedkit run, empty database, {CASES['fresh_cold_one_core']}",
             None if failed else t["fresh_cold_one_core"], t["fresh_cold_one_core"] / t_psql,
             notes=notes("fresh_cold_one_core")),
        Line(f"{ds.name}: seedkit run, empty database, {CASES['fresh_warm']}", None if failed else t["fresh_warm"],
             t["fresh_warm"] / t_psql, notes=notes("fresh_warm")),
        Line(f"{ds.name}: seedkit run, empty database, {CASES['fresh_warm_no_overlap']}",
             None if failed else t["fresh_warm_no_overlap"], t["fresh_warm_no_overlap"] / t_psql,
             notes=notes("fresh_warm_no_overlap")),
        Line(f"{ds.name}: seedkit run again, nothing changed, {CASES['rerun_warm']}",
             None if failed else t["rerun_warm"], t["rerun_warm"] / t_psql, 2.0, notes=notes("rerun_warm")),
        Line(f"{ds.name}: seedkit run again, nothing changed, {CASES['rerun_cold']}",
             None if failed else t["rerun_cold"], t["rerun_cold"] / t_psql, notes=notes("rerun_cold")),
    ]
    for p in problems:
        lines[1].notes.append(f"WRONG: {p}")
    return lines


# the fixture cache (.seedkit/cache/fixtures) in each case; the targets are judged on the first fresh
# run (cold: a new checkout, nothing cached, as psql has nothing cached) and on the rerun that follows
# a run (warm: that run left the cache, and nothing changed); the others are shown beside them
CASES = {"fresh_cold": "cold fixture cache",
         "fresh_cold_one_core": "cold fixture cache, one core (SEEDKIT_PARALLEL_READ=0)",
         "fresh_warm": "warm fixture cache",
         "fresh_warm_no_overlap": "warm fixture cache, one thread (SEEDKIT_OVERLAP=0)",
         "rerun_warm": "warm fixture cache", "rerun_cold": "cold fixture cache"}


FLOOR_PROBE = r"""
import sys, time
started = time.perf_counter()
import seedkit.cli, seedkit.seed, psycopg, yaml
imported = time.perf_counter()
from pathlib import Path
files = sorted(Path("seeds").rglob("*.yaml"))
for f in files:
    loader = yaml.CSafeLoader(f.read_text(encoding="utf-8"))
    while loader.check_event():
        loader.get_event()
    loader.dispose()
parsed = time.perf_counter()
import os
from seedkit import load_config
from seedkit.seed import load_fixtures
os.environ["SEEDKIT_FIXTURE_CACHE"] = "0"
for fx in load_fixtures(load_config(), ["snap"]):
    for _ in fx.numbered():
        pass
loaded = time.perf_counter()
os.environ["SEEDKIT_FIXTURE_CACHE"] = "1"
load_fixtures(load_config(), ["snap"])  # fills the cache, if the runs before left it empty
cached_start = time.perf_counter()
for fx in load_fixtures(load_config(), ["snap"]):
    for _ in fx.numbered():
        pass
cached = time.perf_counter()
print(imported - started, parsed - imported, loaded - parsed, cached - cached_start)
"""


def fixed_costs(project: Path) -> dict[str, float]:
    """What any run of this project pays before the database sees a row (median of three)."""
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", FLOOR_PROBE], cwd=project, capture_output=True, text=True,
                             check=True)
        runs.append([float(x) for x in out.stdout.split()])
    base = [run_child([sys.executable, "-c", "pass"], project).seconds for _ in range(3)]
    return {"start": median([r[0] for r in runs]) + median(base), "parse": median([r[1] for r in runs]),
            "load": median([r[2] for r in runs]), "cached": median([r[3] for r in runs])}


def print_lines(lines: list[Line]) -> None:
    width = max(len(x.case) for x in lines)
    for x in lines:
        secs = f"{x.seconds:.3f} s" if x.seconds is not None else "failed"
        ratio = f"{x.ratio:.2f}× psql" if x.ratio is not None else ""
        target = f"≤ {x.limit:g}×" if x.limit is not None else ""
        mark = "" if x.ok is None else ("✓" if x.ok and x.seconds is not None else "✗")
        print(f"{x.case:<{width}}  {secs:>9}  {ratio:>11}  {target:>5} {mark}")
        for n in x.notes:
            print(f"{'':<{width}}    {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(DATASETS))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case; the median is used (default 3)")
    parser.add_argument("--database", help="server URL to create throwaway databases on")
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("SEEDKIT_BENCH_CORPUS", "/work/.mirror")),
                        help="folder of OWNER+NAME/repo git mirrors to read the sources from")
    parser.add_argument("--summary", type=Path, help="also write the ratios as JSON lines to this file")
    parser.add_argument("--keep", type=Path, help="copy each fixture project and schema here (for profiling)")
    args = parser.parse_args()
    if not shutil.which("psql") or not shutil.which("pg_dump"):
        raise SystemExit("this bench needs psql and pg_dump on PATH")
    started = time.perf_counter()
    lines: list[Line] = []
    with tempfile.TemporaryDirectory() as tmp, server(args.database) as server_url:
        with psycopg.connect(server_url) as c:
            version = c.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        for name in args.only or sorted(DATASETS, key=lambda n: n != "chinook"):
            lines += run_dataset(DATASETS[name], server_url, args.corpus, Path(tmp), max(1, args.repeat))
            if args.keep:
                shutil.copytree(Path(tmp) / name, args.keep / name, dirs_exist_ok=True)
    print(f"\nreal sample databases: seedkit run vs psql, PostgreSQL {version}, whole processes, "
          f"median of {max(1, args.repeat)} runs; load average {os.getloadavg()[0]:.1f}\n")
    print_lines(lines)
    missed = [x.case for x in lines if x.ok is False or (x.limit is not None and x.seconds is None)]
    print(f"\n{len(missed)} target(s) missed" + (": " + "; ".join(missed) if missed else "")
          + f"  (bench took {time.perf_counter() - started:.0f} s)")
    if args.summary:
        with args.summary.open("a", encoding="utf-8") as f:
            for x in lines:
                if x.limit is not None:
                    f.write(json.dumps({"bench": "real databases", "case": x.case,
                                        "measured": f"≤ {x.limit:g}× psql: {x.ratio:.2f}×" if x.ratio else "failed",
                                        "ok": bool(x.ok and x.seconds is not None)}) + "\n")


if __name__ == "__main__":
    main()
