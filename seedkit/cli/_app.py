"""The Typer application, its global options and the one error boundary."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from .. import __version__
from .._record import dataclass
from ..config import Config, load_config
from ..errors import SeedkitError
from ..urls import mask
from ._output import err, out, privilege_hint, report, show  # noqa: F401  (the one output path, masked)

# Recent typer carries its own copy of click (own exceptions, no dependency on click): do not import
# click in seedkit, it may not be installed.
try:
    from typer.exceptions import TyperException as _CliProblem
except ImportError:  # pragma: no cover  (older typer is built on click)
    from click import ClickException as _CliProblem

# Exceptions the command-line framework raises on purpose (--help, usage errors, exit codes): let them
# through the boundary untouched.
_FRAMEWORK = (typer.Exit, typer.Abort, _CliProblem)


@dataclass
class State:
    config_path: Path | None = None
    debug: bool = False
    _config: Config | None = None

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


# -- options several commands share, defined once ---------------------------------------------------

ENV_OPTION: Any = typer.Option(None, "--env", "-e", help="Environment whose database to use (from seedkit.toml).")
DATABASE_OPTION: Any = typer.Option(None, "--database", help="Database URL (overrides the configuration).")


def _masked(exc: _CliProblem) -> _CliProblem:
    """The framework's own error, with any password in what it quotes back masked."""
    for attr in ("message", "ui_filename"):
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            setattr(exc, attr, mask(value))
    return exc


# Help shows what a value is, as a user would name it, and nothing after a flag (no `<bool>`).
_METAVARS = {"database": "URL", "superuser": "URL", "config": "PATH", "only": "TABLE", "env": "ENV",
             "to": "VERSION", "steps": "N", "lock_timeout": "SECONDS", "dialect": "DIALECT"}


def natural_metavars(command: Any) -> None:
    """Flags get no metavar, options a word in capitals; recursively through command groups."""
    if not getattr(command, "_seedkit_metavars", False):
        command._seedkit_metavars = True
        get_help_option = command.get_help_option

        def help_option(ctx: Any) -> Any:
            option = get_help_option(ctx)
            if option is not None:
                option.metavar = ""
            return option

        command.get_help_option = help_option
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") == "argument":
            param.display_type_rich = lambda ctx: None  # the name ([ENV]) says it; no `<str>` after it
            continue
        if getattr(param, "param_type_name", "") != "option" or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
        else:
            param.metavar = _METAVARS.get(param.name or "", (param.name or "value").upper())
    for sub in getattr(command, "commands", {}).values():
        natural_metavars(sub)


# Each command lives in its own module, imported when the command is used (or listed, for --help):
# `seedkit run` starts without the migration runner, the SQL parser or the snapshot writer.
COMMANDS: dict[str, tuple[str, ...]] = {
    "info": ("info",), "run": ("run",), "db": ("db",), "migrate": ("migrate", "lint"),
    "reset": ("reset",), "schema": ("schema",), "snapshot": ("snapshot",),
}


class BoundaryGroup(TyperGroup):
    """Catches every ``SeedkitError`` once: ``error: …`` on stderr, a hint, the exit code the README lists.

    Its commands are loaded on first use (``COMMANDS``)."""

    def _load(self, names: list[str]) -> None:
        if not names:
            return
        for name in names:
            for module in COMMANDS[name]:
                importlib.import_module(f"{__package__}.{module}")
        built = typer.main.get_command(app)
        for name in names:
            command = getattr(built, "commands", {}).get(name)
            if command is not None:
                natural_metavars(command)
                self.commands[name] = command

    def _incomplete(self, name: str) -> bool:
        """Not loaded yet, or built before every module that adds to it was imported (for example
        ``seedkit.cli.migrate`` imported on its own, without ``seedkit.cli.lint``'s ``migrate lint``)."""
        return name not in self.commands or any(f"{__package__}.{module}" not in sys.modules
                                                for module in COMMANDS[name])

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and self._incomplete(cmd_name):
            self._load([cmd_name])
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Any) -> list[str]:
        self._load([name for name in COMMANDS if self._incomplete(name)])
        return [name for name in COMMANDS if name in self.commands] + \
            [name for name in super().list_commands(ctx) if name not in COMMANDS]

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        natural_metavars(self)
        try:
            return super().make_context(*args, **kwargs)
        except _CliProblem as exc:
            raise _masked(exc) from None

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except _CliProblem as exc:  # a usage error repeats what was typed, e.g. a URL given as an argument
            raise _masked(exc) from None
        except _FRAMEWORK:
            raise
        except SeedkitError as exc:
            self._report(ctx, exc, str(exc), exc.hint or privilege_hint(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("error: interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so, briefly, unless --debug
            self._report(ctx, exc, f"unexpected {type(exc).__name__}: {exc}",
                         "this is a bug in seedkit; run again with --debug for the traceback")
            raise typer.Exit(1) from None

    @staticmethod
    def _report(ctx: typer.Context, exc: BaseException, message: str, hint: str | None) -> None:
        report(exc, message, hint, debug=state(ctx).debug)


app = typer.Typer(
    cls=BoundaryGroup,
    name="seedkit",
    help="Versioned raw-SQL migrations and idempotent seed data.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        out(f"seedkit {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", "-c", help="Path to seedkit.toml (default: "
                                       "found in the current folder or its parents).", dir_okay=False),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    st = state(ctx)
    st.config_path = config
    st.debug = debug


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="seedkit")
    except SystemExit as exc:
        sys.exit(exc.code)
