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

``Faker(locale)`` then asks each localized provider whether it has that locale, and Faker answers by
listing the provider's folder and every locale folder in it (``list_module``: some 650 folder
listings for one ``Faker``) to test ``locale not in`` that list. When ``faker/factory.py`` uses
``list_module`` for that one test alone, seedkit gives it a listing whose ``in`` looks at the one
folder of that name as ``pkgutil`` would (a folder, no dot in its name, an ``__init__`` inside), and
lists them all (Faker's own function) only when iterated. Which locale each provider gets — its own
or its fallback — is unchanged.

The internet provider imports ``faker.decode``, whose table of 65,536 transliterations is a fifth of a
``Faker``'s import, for ``unidecode`` (emails and user names). When ``faker/decode/__init__.py`` is
exactly the known module, seedkit's stand-in reads the table on its first use; and when the table's
first 128 entries, read from its source, are the ASCII characters themselves, ASCII text (what
Faker's own lists give, in most locales) is returned as it is, the table unread.

``SEEDKIT_FAKER_CENSUS=1`` turns all three off; tests/test_faker_import.py and
tests/test_reliability_lean_faker.py compare both ways.
"""

from __future__ import annotations

import importlib.machinery
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
    module.__file__ = os.path.join(root, "config.py")
    module.__dict__.update(DEFAULT_LOCALE=known[1], META_PROVIDERS_MODULES=["faker.providers"],
                           PROVIDERS=providers, AVAILABLE_LOCALES=_Locales(providers, folder))
    return module


# faker/factory.py's one use of list_module: a membership test of the locale in a provider's folders
_FACTORY_USE = ("\n            available_locales = list_module(provider_module)\n"
                "            if not locale or locale not in available_locales:\n")


class _Listing(Sequence[str]):
    """``list_module(module)`` for a membership test: ``in`` looks at one folder, the list on demand."""

    def __init__(self, module: types.ModuleType, path: str):
        self._module = module
        self._path = path
        self._all: list[str] | None = None

    def _list(self) -> list[str]:
        if self._all is None:
            from faker.utils.loading import list_module

            self._all = list_module(self._module)
        return self._all

    def __contains__(self, name: object) -> bool:
        if self._all is not None:
            return name in self._all
        if not isinstance(name, str) or not name or "." in name:
            return False  # pkgutil lists no folder with a dot in its name (nor one named "")
        try:
            if name not in os.listdir(self._path):  # the exact name, as pkgutil reads it
                return False
            sub = os.path.join(self._path, name)
            # a package: a folder holding an __init__ of any suffix pkgutil knows
            if not os.path.isdir(sub):
                return False
            inits = {"__init__" + suffix for suffix in importlib.machinery.all_suffixes()}
            return not inits.isdisjoint(os.listdir(sub))  # inspect.getmodulename(f) == "__init__"
        except OSError:
            return False

    def __getitem__(self, i: Any) -> Any:
        return self._list()[i]

    def __len__(self) -> int:
        return len(self._list())

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())


def _lean_list_module(module: types.ModuleType) -> Sequence[str]:
    from faker.utils.loading import get_path, list_module

    if getattr(sys, "frozen", False) or getattr(sys, "_MEIPASS", False):
        return list_module(module)
    import pkgutil

    path = get_path(module)
    # pkgutil walks a folder itself only for the file finder of the normal path hook
    if not isinstance(pkgutil.get_importer(path), importlib.machinery.FileFinder):
        return list_module(module)
    return _Listing(module, path)


_LOOKED_AT: set[int] = set()  # faker.factory modules found of another shape: read once


def _lean_factory() -> None:
    """Give faker/factory.py the lean ``list_module`` when it is the known use (see the module doc)."""
    factory = sys.modules.get("faker.factory")
    if (factory is None or getattr(factory, "list_module", None) is _lean_list_module
            or id(factory) in _LOOKED_AT):
        return
    _LOOKED_AT.add(id(factory))
    from faker.utils import loading

    if getattr(factory, "list_module", None) is not loading.list_module:
        return  # someone else's list_module: left alone
    try:
        with open(factory.__file__ or "", encoding="utf-8") as f:
            source = f.read()
    except OSError:
        return
    if (source.count("list_module") == 2 and "\nfrom .utils.loading import list_module\n" in source
            and source.count("available_locales") == 2 and _FACTORY_USE in source):
        factory.list_module = _lean_list_module  # type: ignore[attr-defined]


_DECODE_SOURCE = '''from .codes import codes


def unidecode(txt: str) -> str:
    chars = ""
    for ch in txt:
        codepoint = ord(ch)

        try:
            chars += codes[codepoint]
        except IndexError:
            pass
    return chars
'''


def _ascii_is_itself(path: str) -> bool:
    """Whether the table's source starts with the 128 ASCII characters, each its own entry."""
    import ast

    try:
        with open(path, encoding="utf-8") as f:
            lines = [f.readline() for _ in range(129)]
    except (OSError, UnicodeDecodeError):
        return False
    if lines[0] != "codes = (\n":
        return False
    for i, line in enumerate(lines[1:]):
        text = line.strip()
        if not (line.startswith("    ") and line.endswith(",\n") and text[:1] in ("'", '"')):
            return False
        try:
            if ast.literal_eval(text[:-1]) != chr(i):
                return False
        except (ValueError, SyntaxError):
            return False
    return True


def _lean_decode(root: str) -> types.ModuleType | None:
    """The stand-in for ``faker.decode``, or None when faker's own is not the known module."""
    folder = os.path.join(root, "decode")
    init, table = os.path.join(folder, "__init__.py"), os.path.join(folder, "codes.py")
    try:
        with open(init, encoding="utf-8") as f:
            if f.read() != _DECODE_SOURCE:
                return None
    except OSError:
        return None
    spec = importlib.util.spec_from_file_location("faker.decode", init, submodule_search_locations=[folder])
    if spec is None:
        return None
    module = importlib.util.module_from_spec(spec)
    ascii_same = _ascii_is_itself(table)
    loaded: list[Any] = []

    def codes() -> Any:
        if not loaded:
            from faker.decode.codes import codes as table_

            module.codes = table_  # as faker's own ``from .codes import codes`` leaves it
            loaded.append(table_)
        return loaded[0]

    def unidecode(txt: str) -> str:
        if ascii_same and txt.__class__ is str and txt.isascii():
            return txt
        table_ = codes()
        chars = ""
        for ch in txt:
            codepoint = ord(ch)

            try:  # noqa: SIM105 - faker's own loop, as it is
                chars += table_[codepoint]
            except IndexError:
                pass
        return chars

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module's own attribute hook
        if name == "codes":
            return codes()
        raise AttributeError(f"module 'faker.decode' has no attribute {name!r}")

    unidecode.__module__ = __getattr__.__module__ = "faker.decode"
    module.__dict__.update(unidecode=unidecode, __getattr__=__getattr__)
    return module


def import_faker() -> Any:
    """``faker.Faker``, imported the lean way when faker is not imported yet (see the module doc)."""
    if "faker" not in sys.modules and os.environ.get("SEEDKIT_FAKER_CENSUS") != "1":
        config = _lean_config()
        if config is not None:
            sys.modules["faker.config"] = config
            decode = _lean_decode(os.path.dirname(config.__file__))
            if decode is not None:
                sys.modules["faker.decode"] = decode
            try:
                import faker
            except Exception:  # noqa: BLE001 - anything unexpected: faker as it is
                for name in [m for m in sys.modules if m == "faker" or m.startswith("faker.")]:
                    del sys.modules[name]
            else:
                faker.config = config  # type: ignore[attr-defined]
                if decode is not None:
                    faker.decode = decode  # type: ignore[attr-defined]
                _lean_factory()
                return faker.Faker
    from faker import Faker

    if os.environ.get("SEEDKIT_FAKER_CENSUS") != "1":
        _lean_factory()
    return Faker
