"""`make demo`: a project from the local template, on SQLite, migrated and seeded twice.

1. renders template/ (this checkout, uncommitted changes included) into a scratch folder with
   `copier copy`, choosing SQLite so nothing needs installing or starting;
2. `make .env` writes the project's local settings from .env.example (as `make install` would);
   `seedkit migrate up` applies the initial migration;
3. `seedkit run dev` loads seeds/common and seeds/dev (YAML with !ref, and Faker rows);
4. `seedkit run dev` again, and shows that the second run changed nothing: exit 1 if it did.

Usage: python examples/demo.py [--dest FOLDER] [--template PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEEDKIT = Path(sys.executable).parent / "seedkit"


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def seedkit(project: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the seedkit CLI in the project, shown as the user would type it."""
    print(f"$ seedkit {' '.join(args)}", flush=True)
    # The project's .env names its SQLite file; a DATABASE_URL from the caller's shell must not win.
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    result = subprocess.run([str(SEEDKIT), *args], cwd=project, env=env, text=True,
                            capture_output=capture)
    if capture:  # shown all the same: every command echoed here shows its output
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        sys.stdout.flush()
    if result.returncode != 0:
        sys.exit(f"demo failed: `seedkit {' '.join(args)}` exited {result.returncode}")
    return result


def render(template: Path, dest: Path) -> Path:
    import copier

    if dest.exists():
        shutil.rmtree(dest)
    # From a git checkout, HEAD plus uncommitted changes; from anywhere else, the files as they are.
    vcs_ref = "HEAD" if (template / ".git").exists() else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copier warns that the checkout has uncommitted changes
        copier.run_copy(str(template), str(dest), data={"project_name": "demo", "database": "sqlite"},
                        defaults=True, quiet=True, unsafe=False, vcs_ref=vcs_ref)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dest", type=Path, default=REPO / "build" / "demo",
                        help="where to render the project (replaced if it exists; default build/demo)")
    parser.add_argument("--template", type=Path, default=REPO, help="the template (default: this checkout)")
    args = parser.parse_args(argv)
    dest = args.dest.resolve()

    step(f"copier copy {args.template} {dest}  (database=sqlite, defaults for everything else)")
    project = render(args.template, dest)
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        print(f"    {path.relative_to(project)}")

    step("make .env: the project's local settings, from .env.example (make install does this first)")
    made = subprocess.run(["make", ".env"], cwd=project, text=True, capture_output=True,
                          env={k: v for k, v in os.environ.items() if k != "MAKEFLAGS"})
    print(made.stdout + made.stderr, end="")
    if made.returncode:
        return made.returncode

    step("apply the migrations")
    seedkit(project, "migrate", "up")

    step("seed the dev environment")
    seedkit(project, "run", "dev")

    step("seed it again: upserts by natural key, so nothing should change")
    second = seedkit(project, "run", "dev", "--json", capture=True)
    report = json.loads(second.stdout)
    totals = report["totals"]
    if report["changed"] or totals["inserted"] or totals["updated"] or totals["deleted"]:
        print(f"\nFAILED: the second run changed the database ({totals['inserted']} inserted, "
              f"{totals['updated']} updated, {totals['deleted']} deleted)", file=sys.stderr)
        return 1
    if not totals["unchanged"]:
        print("\nFAILED: the second run saw no rows at all", file=sys.stderr)
        return 1
    print(f"\nThe second run changed nothing: {totals['unchanged']} rows unchanged.")
    shown = os.path.relpath(dest) if dest.is_relative_to(Path.cwd()) else str(dest)
    print(f"The project is in {shown}: try `cd {shown}` and `{SEEDKIT} migrate status` there.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
