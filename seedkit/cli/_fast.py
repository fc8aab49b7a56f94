"""The entry point, and a fast path for the commands typed most: ``seedkit run ENV``,
``seedkit migrate up`` and ``seedkit migrate status``.

Building the Typer application and converting its parameters costs more than a rerun of a small
project does (the framework imports pydantic and rich for that). These three commands, in their plain
forms, are read here with a small parser and call the same functions the Typer commands call, print
through the same output path (``_output``) and report errors the same way (``error: …``, a hint, the
README's exit codes, a traceback with ``--debug``). Anything else — help, completion, ``--version``,
an option this parser does not know, ``--opt=value``, a repeated option, a value that starts with a
dash, a value the framework would refuse — goes to the Typer application, which handles it as it
always has. ``SEEDKIT_FAST_CLI=0`` sends everything there (the tests compare both ways).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any

# (plain classes, not dataclasses: making a dataclass costs about a millisecond at start-up)


class _Spec:
    __slots__ = ("positional", "flags", "values", "repeated", "seconds")

    def __init__(self, *, positional: tuple[str, ...] = (), flags: dict[str, str] | None = None,
                 values: dict[str, str] | None = None, repeated: dict[str, str] | None = None,
                 seconds: frozenset[str] = frozenset()):
        self.positional = positional  # optional positional arguments, in order
        self.flags = flags or {}
        self.values = values or {}
        self.repeated = repeated or {}
        self.seconds = seconds        # values that are a number of seconds, ≥ 0


_SHARED = {"--env": "env", "-e": "env", "--database": "database"}
_SPECS: dict[tuple[str, ...], _Spec] = {
    ("run",): _Spec(positional=("env_arg",),
                    flags={"--dry-run": "dry_run", "--check": "check", "--diff": "diff", "--json": "as_json",
                           "--yes": "yes", "-y": "yes"},
                    values=_SHARED, repeated={"--only": "only"}),
    ("migrate", "up"): _Spec(flags={"--dry-run": "dry_run", "--allow-out-of-order": "allow_out_of_order",
                                    "--json": "as_json", "--reapply-repeatables": "reapply_repeatables"},
                             values={**_SHARED, "--to": "to", "--lock-timeout": "lock_timeout"},
                             seconds=frozenset({"lock_timeout"})),
    ("migrate", "status"): _Spec(flags={"--exit-code": "exit_code", "--json": "as_json",
                                        "--allow-out-of-order": "allow_out_of_order"},
                                 values=_SHARED),
}
_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")


class _Call:
    __slots__ = ("command", "options", "config_path", "debug")

    def __init__(self, command: tuple[str, ...], options: dict[str, Any], config_path: str | None = None,
                 debug: bool = False):
        self.command = command
        self.options = options
        self.config_path = config_path
        self.debug = debug

    def __repr__(self) -> str:
        return f"_Call({self.command!r}, {self.options!r}, {self.config_path!r}, {self.debug!r})"


def parse(argv: list[str]) -> _Call | None:
    """The command line as the fast path runs it, or None when the Typer application must read it."""
    config_path, debug, i = None, False, 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "--debug":
            debug = True
            i += 1
        elif argv[i] in ("--config", "-c") and config_path is None and i + 1 < len(argv) \
                and _plain(argv[i + 1]) and not os.path.isdir(argv[i + 1]):
            config_path = argv[i + 1]
            i += 2
        else:
            return None
    command = next((c for c in _SPECS if tuple(argv[i:i + len(c)]) == c), None)
    if command is None:
        return None
    spec = _SPECS[command]
    options: dict[str, Any] = {name: False for name in spec.flags.values()}
    options.update({name: None for name in (*spec.values.values(), *spec.positional)})
    options.update({name: [] for name in spec.repeated.values()})
    given: set[str] = set()
    positional = list(spec.positional)
    rest = argv[i + len(command):]
    j = 0
    while j < len(rest):
        token = rest[j]
        if token in spec.flags:
            options[spec.flags[token]] = True
            j += 1
        elif token in spec.values or token in spec.repeated:
            if j + 1 >= len(rest) or not _plain(rest[j + 1]):
                return None
            value = rest[j + 1]
            if token in spec.repeated:
                options[spec.repeated[token]].append(value)
            else:
                name = spec.values[token]
                if name in given:
                    return None
                given.add(name)
                if name in spec.seconds:
                    if not _SECONDS.fullmatch(value):
                        return None
                    options[name] = float(value)
                else:
                    options[name] = value
            j += 2
        elif token.startswith("-") or not positional:
            return None
        else:
            options[positional.pop(0)] = token
            j += 1
    return _Call(command, options, config_path, debug)


def _plain(value: str) -> bool:
    return bool(value) and not value.startswith("-")


def _run(call: _Call) -> int:
    from ..config import load_config

    path = call.config_path
    loaded: list[Any] = []

    def config() -> Any:
        if not loaded:
            from pathlib import Path

            loaded.append(load_config(Path(path) if path is not None else None))
        return loaded[0]

    if call.command == ("run",):
        from ._seed import seed_env

        return seed_env(config, **call.options)
    from . import _migrations

    if call.command == ("migrate", "up"):
        return _migrations.up(config(), **call.options)
    return _migrations.status(config(), **call.options)


def run(call: _Call) -> int:
    """Run a parsed command inside the same error boundary as the Typer application's."""
    from ..errors import SeedkitError
    from ._output import err, privilege_hint, report

    try:
        return _run(call)
    except SeedkitError as exc:
        report(exc, str(exc), exc.hint or privilege_hint(exc), debug=call.debug)
        return exc.exit_code
    except KeyboardInterrupt:
        err("error: interrupted")
        return 130
    except Exception as exc:  # a bug: say so, briefly, unless --debug
        report(exc, f"unexpected {type(exc).__name__}: {exc}",
               "this is a bug in seedkit; run again with --debug for the traceback", debug=call.debug)
        return 1


def main(argv: list[str] | None = None, fallback: Callable[[], None] | None = None) -> None:
    """Console-script entry point."""
    from .._startup import fewer_collections, keep_interrupts, quick_versions

    fewer_collections()
    keep_interrupts()
    quick_versions()
    args = sys.argv[1:] if argv is None else argv
    call = None
    if os.environ.get("SEEDKIT_FAST_CLI", "1") != "0" and not os.environ.get("_SEEDKIT_COMPLETE"):
        call = parse(args)
    if call is None:
        from ._app import main as typer_main

        (fallback or typer_main)()
        return
    sys.exit(run(call))
