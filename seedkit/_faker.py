"""Faker, imported without its locale census.

``import faker`` runs ``faker/config.py``, which imports every provider package and lists every
locale folder of each to build ``AVAILABLE_LOCALES`` — then ``Faker(locale)`` lists them all again to
pick each provider's locale. The first census is most of the import, and all a seeding run needs of
it is "is this locale known?". So, when ``faker/config.py`` is exactly the small module it has long
been (four names), seedkit puts an equivalent module in its place before importing faker: the same
``DEFAULT_LOCALE``, ``META_PROVIDERS_MODULES`` and ``PROVIDERS`` (provider packages, found by their
folders), and an ``AVAILABLE_LOCALES`` that answers ``in`` by looking for that one locale's folder and
computes the whole list (Faker's own function) only when it is iterated. Generators, providers and
every generated value are Faker's own, untouched. Any other ``faker/config.py`` is imported as it is.
tests/test_faker_import.py compares both ways.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterator, Sequence
from typing import Any

_NAMES = {"DEFAULT_LOCALE", "META_PROVIDERS_MODULES", "PROVIDERS", "AVAILABLE_LOCALES"}
_SOURCE = re.compile(r"""\A(?:from importlib import import_module\s+)?from \.utils\.loading import """
                     r"""find_available_locales, find_available_providers\s+DEFAULT_LOCALE = "(\w+)"\s+"""
                     r"""META_PROVIDERS_MODULES = \[\s*"faker\.providers",?\s*\]\s+"""
                     r"""PROVIDERS = find_available_providers\(\[import_module\(path\) for path in """
                     r"""META_PROVIDERS_MODULES\]\)\s+AVAILABLE_LOCALES = find_available_locales\(PROVIDERS\)\s*\Z""")


class _Locales(Sequence[str]):
    """Faker's ``AVAILABLE_LOCALES``: membership by the locale's folder, the full list on demand."""

    def __init__(self, providers: list[str], folder: str):
        self._providers = providers
        self._folder = folder
        self._all: list[str] | None = None

    def _list(self) -> list[str]:
        if self._all is None:
            from faker.utils.loading import find_available_locales

            self._all = find_available_locales(self._providers)
        return self._all

    def __contains__(self, locale: object) -> bool:
        if self._all is not None:
            return locale in self._all
        if not isinstance(locale, str) or not locale.isidentifier():
            return False
        from importlib import import_module

        for name in self._providers:  # a localized provider with a package of that name
            sub = os.path.join(self._folder, name.rsplit(".", 1)[1], locale, "__init__.py")
            if os.path.isfile(sub) and getattr(import_module(name), "localized", False):
                return True
        return False

    def __getitem__(self, i: Any) -> Any:
        return self._list()[i]

    def __len__(self) -> int:
        return len(self._list())

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())


def _lean_config() -> types.ModuleType | None:
    """The stand-in for ``faker.config``, or None when faker's own is not the known module."""
    spec = importlib.util.find_spec("faker")  # finds the package without running it
    if spec is None or spec.origin is None:
        return None
    root = os.path.dirname(spec.origin)
    try:
        with open(os.path.join(root, "config.py"), encoding="utf-8") as f:
            source = f.read()
    except OSError:
        return None
    known = _SOURCE.match(source)
    if known is None:
        return None
    folder = os.path.join(root, "providers")
    # find_available_providers: the packages of faker.providers (folders with an __init__), sorted
    providers = sorted(f"faker.providers.{e.name}" for e in os.scandir(folder)
                       if e.is_dir() and e.name.isidentifier()
                       and os.path.isfile(os.path.join(e.path, "__init__.py")))
    module = types.ModuleType("faker.config", "faker.config as seedkit imports it (see seedkit/_faker.py)")
    module.__dict__.update(DEFAULT_LOCALE=known[1], META_PROVIDERS_MODULES=["faker.providers"],
                           PROVIDERS=providers, AVAILABLE_LOCALES=_Locales(providers, folder))
    return module


def import_faker() -> Any:
    """``faker.Faker``, imported the lean way when faker is not imported yet (see the module doc)."""
    if "faker" not in sys.modules and os.environ.get("SEEDKIT_FAKER_CENSUS") != "1":
        config = _lean_config()
        if config is not None:
            sys.modules["faker.config"] = config
            try:
                import faker
            except Exception:  # noqa: BLE001 - anything unexpected: faker as it is
                for name in [m for m in sys.modules if m == "faker" or m.startswith("faker.")]:
                    del sys.modules[name]
            else:
                faker.config = config  # type: ignore[attr-defined]
                return faker.Faker
    from faker import Faker

    return Faker
