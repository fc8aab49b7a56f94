"""The command line: a thin layer over the library. Each module registers one command group."""

from . import info, lint, migrate, reset, run  # noqa: F401  (registers commands)
from ._app import app, main

__all__ = ["app", "main"]
