"""The command line: a thin layer over the library. Each module registers one command (group); the
application loads a command's module when that command is used (``_app.COMMANDS``)."""

from ._app import app, main

__all__ = ["app", "main"]
