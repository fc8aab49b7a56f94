"""What a command does not need to pay for at start-up.

psycopg and its C package (psycopg-binary) each ask ``importlib.metadata`` for their own version as they
are imported (their ``version`` modules). Importing ``importlib.metadata`` (the email package, zipfile,
csv, …) and searching the installed distributions costs about as much as a small project's whole rerun
spends talking to its database. The version is also in the name of the distribution's
``NAME-VERSION.dist-info`` folder next to the package: ``quick_versions`` reads it there and, before the
package is imported, gives it a version module holding that same value. Anything else asked of such a
module comes from the package's own version module, run on first use. Where the folder is not found
exactly once (an unusual install), or the package is imported already, nothing is done: the package's
own module runs, as always.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from typing import Any

PACKAGES = ("psycopg", "psycopg_binary")  # (their distributions' names, normalized, are the same)


class _Version(types.ModuleType):
    """A package's ``version`` module, its ``__version__`` read from the dist-info folder's name."""

    def __init__(self, name: str, version: str, origin: str):
        super().__init__(name, "version read from the name of its dist-info folder")
        self.__version__ = version
        self._origin = origin
        self._own: types.ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr == "_own":  # (the import system's questions: never the own module)
            raise AttributeError(attr)
        if self._own is None:  # run once, on first use
            spec = importlib.util.spec_from_file_location(self.__name__ + ".__own__", self._origin)
            if spec is None or spec.loader is None:
                raise AttributeError(attr)
            own = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(own)
            self._own = own
        return getattr(self._own, attr)


def dist_info(package: str, distribution: str | None = None) -> tuple[str, str] | None:
    """(version, the package's folder) from the one ``DISTRIBUTION-VERSION.dist-info`` folder beside
    the package (``distribution``: the package's name when not given; matched without regard to case,
    as installers spell it either way), or None: not found exactly once, or the package is not a
    folder."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = next(iter(spec.submodule_search_locations))
    prefix = (distribution or package).lower() + "-"
    try:
        found = [e for e in os.listdir(os.path.dirname(folder))
                 if e.lower().startswith(prefix) and e.endswith(".dist-info")]
    except OSError:
        return None
    if len(found) != 1:
        return None
    version = found[0][len(prefix):-len(".dist-info")]
    return (version, folder) if version and "-" not in version else None


def dist_version(package: str) -> tuple[str, str] | None:
    """(version, path of the package's own version module) from the one ``PACKAGE-VERSION.dist-info``
    folder beside the package, or None."""
    got = dist_info(package)
    if got is None:
        return None
    own = os.path.join(got[1], "version.py")
    return (got[0], own) if os.path.isfile(own) else None


class _Finder:
    """On the import system's path ahead of the others: as one of ``PACKAGES`` is about to be imported,
    give it its version module (it finds nothing itself; the usual finders import the package)."""

    busy = False  # (finding the package's folder asks the finders again)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name in PACKAGES and not self.busy:
            self.busy = True
            try:
                _give(name)
            finally:
                self.busy = False
            if all(p + ".version" in sys.modules or p in sys.modules for p in PACKAGES):
                with contextlib.suppress(ValueError):
                    sys.meta_path.remove(self)
        return None


def _give(package: str) -> None:
    name = package + ".version"
    if package in sys.modules or name in sys.modules:
        return
    got = dist_version(package)
    if got is not None:
        sys.modules[name] = _Version(name, *got)


def quick_versions() -> None:
    """From now on, give psycopg and psycopg-binary their version modules from the dist-info folders as
    they are imported (see above); nothing is imported here."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def keep_interrupts() -> None:
    """From now on, a Ctrl-C whose KeyboardInterrupt Python can only print and drop (it came while a
    weakref callback or a ``__del__`` ran: one of the import system's module locks is freed by such a
    callback, so a Ctrl-C during the imports can land there) is delivered again, to be handled where the
    program is: the command then stops as at any other Ctrl-C, instead of going on as if it were not
    pressed after printing a traceback. Every other such exception goes to the hook in place."""
    if getattr(sys.unraisablehook, "_seedkit", False):
        return
    before = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is None or not issubclass(unraisable.exc_type, KeyboardInterrupt):
            before(unraisable)
            return
        import _thread

        # From another thread, a moment later. Delivered while this hook runs, it would be dropped again:
        # so the hook waits for nothing once that thread exists (``threading.Thread.start`` waits for the
        # thread to start, giving it time to deliver inside the hook on a busy machine), and nothing here
        # after the call below lets a pending signal be handled (the thread needs the interpreter lock,
        # which this thread gives up only at such a point). RuntimeError: the interpreter is shutting
        # down, the command has ended already.
        try:  # noqa: SIM105 - (a ``with`` would call its __exit__ here, where a pending signal is handled)
            _thread.start_new_thread(_interrupt_again, ())
        except RuntimeError:
            pass

    hook._seedkit = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


START_THRESHOLD = 20_000  # new container objects between two collections of the youngest generation


def fewer_collections() -> None:
    """From now on, collect the youngest generation after ``START_THRESHOLD`` new container objects
    instead of Python's 700 (a higher threshold in place is kept). A command is a process run once: what
    its start-up makes (modules, classes, functions, the configuration — some 40 000 objects with the
    database driver) lives until it ends, and at 700 the collector would walk it some sixty times on a
    small project's rerun (~15 ms) to free nothing. Garbage in cycles is still collected, in larger
    and fewer rounds; the engine's own pauses (seed/__init__.py, seed/cache.py) go on as before."""
    import gc

    young, middle, old = gc.get_threshold()
    if young and young < START_THRESHOLD:  # (0: collection disabled by whoever runs us; left so)
        gc.set_threshold(START_THRESHOLD, middle, old)


AGAIN_AFTER = 0.01  # seconds before the interrupt is delivered again (see keep_interrupts)


def _interrupt_again() -> None:
    import _thread
    import time

    time.sleep(AGAIN_AFTER)
    _thread.interrupt_main()


__all__ = ["dist_info", "dist_version", "fewer_collections", "keep_interrupts", "quick_versions"]
