"""The command line: a thin layer over the library. Each module registers one command group."""

import sys

from . import info, run  # noqa: F401  (registers commands)
from ._app import app, main

if sys.argv[1:2] != ["run"]:  # `seedkit run …`, the command run most often, starts without the others
    from . import db, lint, migrate, reset  # noqa: F401

__all__ = ["app", "main"]
