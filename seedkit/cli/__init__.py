"""The command line: a thin layer over the library. Each module registers one command group."""

import sys

from ._app import app, main

if sys.argv[1:2] == ["snapshot"]:  # a snapshot streams a large table: start without the other commands
    from . import snapshot  # noqa: F401
else:
    from . import info, run  # noqa: F401  (registers commands)

    if sys.argv[1:2] != ["run"]:  # `seedkit run …`, the command run most often, starts without the others
        from . import db, lint, migrate, reset, snapshot  # noqa: F401

__all__ = ["app", "main"]
