"""The one output path of the command line, and its one way of reporting an error.

Everything a command prints goes through ``out``/``err``/``show``, masked (no password is ever
printed). Plain Python, no command-line framework: the common commands' fast path (``_fast``) prints
and reports errors exactly as the Typer application does, through the same functions.
"""

from __future__ import annotations

import io
import os
import re
import sys
import traceback
from typing import Any

from ..urls import mask

# what the framework's echo removes when the stream is not a terminal (colour and style codes)
_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:  # noqa: BLE001 - a stream without a working isatty is not a terminal
        return False


def echo(text: str, *, err: bool = False) -> None:
    """A line to stdout (stderr), flushed, as the framework's ``echo`` writes it: colour codes are
    removed when the stream is not a terminal."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    text += "\n"
    if not _isatty(stream):
        text = _ANSI.sub("", text)
    write(stream, text)


def write(stream: Any, text: str) -> None:
    """Write ``text`` as it is and flush; a reader that left early is not an error (``_reader_gone``)."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        _reader_gone(stream)


def _reader_gone(stream: Any) -> None:
    """The pipe's reader left (``seedkit migrate status | head -1``): the rest of the output goes to
    the null device, so the command still does all it was asked and exits with its own code, and
    Python's flush at exit finds nothing to complain about."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file: nothing to redirect
        pass


def err(text: str) -> None:
    """Write to stderr, masked."""
    echo(mask(text), err=True)


def out(text: str = "") -> None:
    """Write to stdout, masked."""
    echo(mask(text))


def show(*renderables: Any, width: int = 100) -> None:
    """Print rich renderables (tables, styled lines) to stdout through ``out``: rendered first, then
    masked like every other line (a URL with a password in a table cell is masked too)."""
    from rich.console import Console

    terminal = Console()
    buffer = io.StringIO()
    console = Console(file=buffer, width=max(width, terminal.width), force_terminal=terminal.is_terminal,
                      color_system=terminal.color_system, highlight=False)
    for renderable in renderables:
        if isinstance(renderable, tuple):  # (text, style)
            console.print(renderable[0], style=renderable[1], markup=False, soft_wrap=True)
        else:
            console.print(renderable, markup=False, soft_wrap=isinstance(renderable, str))
    out(buffer.getvalue().rstrip("\n"))


def privilege_hint(exc: BaseException) -> str | None:
    """PostgreSQL's bare "permission denied …" (SQLSTATE 42501) gets a hint naming the privilege."""
    if getattr(exc, "sqlstate", None) != "42501":
        return None
    from ..db.provision import privilege_hint as hint

    return hint(str(exc))


def report(exc: BaseException, message: str, hint: str | None, *, debug: bool) -> None:
    """``error: …`` and a hint on stderr; the traceback first with ``--debug``."""
    if debug:
        err("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
    err(f"error: {message}")
    if hint:
        err(f"hint: {hint}")
