"""Python fixtures: ``@fixture`` functions and generators, ``ref()``, deterministic Faker.

Every row gets a Faker seeded from (``faker_seed``, fixture name, row number), so row *n* always gets
the same values however many rows or fixtures exist, in whatever order files load. Faker itself may
change its generated values between releases; seedkit pins a compatible range.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .._record import dataclass
from ..errors import FixtureError, Location
from .model import Fixture, FixtureHeader, Ref, make_ref

_MARK = "__seedkit_fixture__"


@dataclass(frozen=True)
class FixtureSpec:
    table: str
    key: list[str] | None
    count: int | None
    name: str | None
    on_conflict: str
    create_only: tuple[str, ...]
    prune: bool
    auto: bool = False
    per: tuple[tuple[str, int], ...] = ()


def fixture(table: str, *, key: list[str] | str | None = None, count: int | None = None,
            name: str | None = None, on_conflict: str = "update", create_only: tuple[str, ...] | list[str] = (),
            prune: bool = False, auto: bool = False,
            per: Mapping[str, int] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a Python fixture for ``table``.

    Either ``def f(fake, n) -> dict`` with ``count=N`` (called for n = 1…N), or a generator
    ``def f(fake)`` that yields row dicts (streamed, never held in memory whole).

    ``auto=True``: seedkit fills every column the row does not set with a valid value (the function
    may return a partial dict, or None). ``per={"user_id": 3}`` (a foreign key column or the table it
    points at): 3 rows per parent row, and ``count`` defaults to 3 × the parent rows.
    """
    if per and not auto:
        raise TypeError("per (rows per parent row) only applies to auto fixtures: add auto")
    for target, k in (per or {}).items():
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise TypeError(f"per={{{target!r}: {k!r}}}: the count per parent row must be a positive int")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, _MARK, FixtureSpec(table=table, key=[key] if isinstance(key, str) else key, count=count,
                                         name=name, on_conflict=on_conflict, create_only=tuple(create_only),
                                         prune=prune, auto=auto, per=tuple((per or {}).items())))
        return func

    return decorate


def ref(table: str, value: Any = None, /, *, column: str | None = None, **match: Any) -> Ref:
    """A reference to another row: ``ref("roles", "admin")`` or ``ref("teams", org="acme", slug="core")``."""
    if not match:
        if isinstance(value, dict):
            return make_ref(table, value, column=column)
        return Ref(table, ((None, value),), column)  # what make_ref builds, without its checks: one per row
    if value is not None:
        raise TypeError("ref() takes either one key value or column=value pairs, not both")
    return make_ref(table, match, column=column)


def _seed_for(base: int, name: str, n: int) -> int:
    digest = hashlib.blake2b(f"{base}\x1f{name}\x1f{n}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _make_faker(locale: str) -> Any:
    from .._faker import import_faker

    return import_faker()(locale, use_weighting=False)


class RowFaker:
    """The ``fake`` a fixture receives: a Faker reseeded for every row, on the row's first use.

    Seeding a Faker costs more than most rows do, so rows that never touch ``fake`` never pay for
    it, and Faker itself is only imported when a fixture uses it.
    """

    __slots__ = ("_faker", "_proxy", "_locale", "_base", "_name", "_n", "_seeded")

    def __init__(self, locale: str, base: int, name: str):
        self._faker: Any = None  # the single-locale Generator behind the Faker proxy
        self._proxy: Any = None
        self._locale = locale
        self._base = base
        self._name = name
        self._n = 1
        self._seeded = False

    def __getattr__(self, attr: str) -> Any:
        faker = self._faker
        if faker is None:
            self._proxy = _make_faker(self._locale)
            faker = self._faker = self._proxy.factories[0]  # skip the proxy's dispatch on every call
        if not self._seeded:
            faker.seed_instance(_seed_for(self._base, self._name, self._n))
            self._seeded = True
        try:
            return getattr(faker, attr)
        except AttributeError:  # proxy-level helpers such as fake.unique
            return getattr(self._proxy, attr)


def load_python(path: Path, *, shown: str, faker_seed: int, faker_locale: str,
                ident: str | None = None, project_root: Path | None = None) -> list[Fixture]:
    """Execute a fixture module (not an importable package) and collect its fixtures.

    ``ident`` is the file's path relative to the seeds folder: the ledger and the digests know the
    fixture as ``<ident>:<name>``, whatever the working directory. ``project_root`` (the folder of
    seedkit.toml) is first on the import path while the file runs, so its imports of the project's
    own modules resolve the same from any working directory.
    """
    module_name = "seedkit_fixture_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FixtureError("cannot load this Python file", location=Location(file=shown))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    root = str(project_root) if project_root is not None else None
    if root is not None:
        sys.path.insert(0, root)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise FixtureError(f"syntax error: {exc.msg}", location=Location(file=shown, line=exc.lineno,
                                                                         column=exc.offset)) from None
    except Exception as exc:
        raise FixtureError(f"importing the fixture file failed: {type(exc).__name__}: {exc}",
                           location=Location(file=shown, line=_line_in(exc, path))) from None
    finally:
        sys.modules.pop(module_name, None)
        if root is not None and root in sys.path:
            sys.path.remove(root)
    fixtures = []
    for attr, func in vars(module).items():
        fspec = getattr(func, _MARK, None)
        if fspec is None or not callable(func):
            continue
        fx = _to_fixture(func, fspec, attr, path, shown, faker_seed, faker_locale)
        fx.ident = ident or shown
        fx.name = fx.ident + fx.name[len(shown):]
        fx.path = path.resolve()
        fixtures.append(fx)
    return fixtures


def _line_in(exc: BaseException, path: Path) -> int | None:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    return line


def _def_line(func: Callable[..., Any]) -> int | None:
    """The line the function's definition starts at (its first decorator's), as ``inspect.getsourcelines``
    gives it (of the function a wrapper names with ``__wrapped__``), read from the code object: without reading
    the file and tokenizing the function's source."""
    if not hasattr(func, "__code__"):
        return None
    code = getattr(inspect.unwrap(func), "__code__", None)
    return code.co_firstlineno if code is not None else None


def _to_fixture(func: Callable[..., Any], fspec: FixtureSpec, attr: str, path: Path, shown: str,
                faker_seed: int, faker_locale: str) -> Fixture:
    name = fspec.name or attr
    def_line = _def_line(func)
    loc = Location(file=shown, line=def_line)
    header = FixtureHeader(table=fspec.table, key=fspec.key, on_conflict=fspec.on_conflict,  # type: ignore[arg-type]
                           create_only=list(fspec.create_only), prune=fspec.prune)
    generator = inspect.isgeneratorfunction(func)
    if not generator and fspec.count is None and not fspec.per:
        raise FixtureError(f"fixture {name!r} needs count=N (or make it a generator that yields rows)",
                           location=loc)

    def fail(exc: BaseException, n: int) -> FixtureError:
        return FixtureError(f"fixture {name!r} raised {type(exc).__name__}: {exc}",
                            location=Location(file=shown, line=_line_in(exc, path) or def_line, row=n))

    def stream() -> Iterator[tuple[int, dict[str, Any]]]:
        """(row number, row) pairs; ``fake`` is re-seeded for each row before the fixture runs."""
        fake = RowFaker(faker_locale, faker_seed, name)
        if generator:
            it = func(fake)
            n = 0
            while True:
                n += 1
                fake._n = n
                fake._seeded = False
                try:
                    row = next(it)
                except StopIteration:
                    return
                except Exception as exc:
                    raise fail(exc, n) from None
                if row.__class__ is not dict:
                    row = {} if row is None and fspec.auto else _checked(row, name, shown, def_line, n)
                yield n, row
        else:
            for n in range(1, (fx.count or 0) + 1):  # an auto fixture's count may come from per=
                fake._n = n
                fake._seeded = False
                try:
                    row = func(fake, n)
                except Exception as exc:
                    raise fail(exc, n) from None
                if row.__class__ is not dict:
                    row = {} if row is None and fspec.auto else _checked(row, name, shown, def_line, n)
                yield n, row

    fx = Fixture(table=fspec.table, header=header, source=shown, location=loc, stream=stream,
                 name=f"{shown}:{name}", count=None if generator else fspec.count)
    if fspec.auto:
        from ..schema.auto import AutoSpec

        fx.auto = AutoSpec(name=name, faker_seed=faker_seed, faker_locale=faker_locale, per=dict(fspec.per),
                           generator=generator)
    return fx


def _checked(row: Any, name: str, shown: str, line: int | None, n: int) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise FixtureError(f"fixture {name!r} returned {type(row).__name__}, not a dict of column: value",
                           location=Location(file=shown, line=line, row=n))
    return dict(row)
