"""The command line: a thin layer over the library. Each module registers one command (group); the
application loads a command's module when that command is used (``_app.COMMANDS``). The entry point
(``main``, in ``_fast``) runs the commands typed most without building the application at all."""

from __future__ import annotations

from typing import Any

from ._fast import main


def __getattr__(name: str) -> Any:
    if name == "app":  # the Typer application, built on first use
        from ._app import app

        return app
    raise AttributeError(f"module 'seedkit.cli' has no attribute {name!r}")


__all__ = ["app", "main"]
