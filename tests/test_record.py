"""seedkit._record.dataclass makes the class ``dataclasses.dataclass`` makes.

Every class the decorator made (all of seedkit's, found by importing every module, and the ones below,
which use what seedkit does not: InitVar, kw_only, unsafe_hash, a class-body __hash__/__eq__/__repr__,
init=False fields, a field named ``self``...) is compared with its twin: the same class statement's
namespace given to ``dataclasses.dataclass`` with the same arguments. Compared: fields and their
flags, ``__dataclass_params__``, the class attributes, the generated methods' bytecode (the same
instructions, so as fast per call), ``inspect.signature``, ``__doc__``,
``__match_args__``, and on instances built from distinct sample values (and equal but distinct copies):
``repr``, the ``==``/``!=`` and order results between every two instances, hash equality and
unhashability, ``setattr``/``delattr`` on every field (frozen or not), ``replace`` of every field,
``asdict``, and the instance's attributes after ``__init__``/``__post_init__``. Each comparison is shown
to fail when the decorator is given one fault. The compiled methods kept in __pycache__ are checked
against their source.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import itertools
import marshal
import operator
import pkgutil
import re
import sys
import types
from collections.abc import Callable
from dataclasses import InitVar, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

import seedkit
from seedkit import _record
from seedkit._record import dataclass

# --- classes using what seedkit's do not (they are in the registry too) -------------------------------


@dataclass
class _Plain:
    a: int
    b: str = "x"


@dataclass(frozen=True, order=True)
class _Ordered:
    first: int
    second: str
    third: tuple[int, ...] = ()
    ignored: list[int] = field(default_factory=list, compare=False)
    quiet: int = field(default=0, repr=False)
    shared: ClassVar[int] = 7


@dataclass(unsafe_hash=True)
class _UnsafeHash:
    a: int
    b: int = field(default=1, hash=False)
    c: int = field(default=2, compare=False, hash=True)


@dataclass(eq=False)
class _NoEq:
    self: int  # a field named self: __init__'s first parameter is renamed
    other: str = ""


@dataclass
class _PostInit:
    """Written by hand."""

    a: int
    scale: InitVar[int] = 2
    later: int = field(init=False, default=5)
    made: list[int] = field(init=False, default_factory=list)

    def __post_init__(self, scale: int) -> None:
        self.scaled = self.a * scale
        self.made.append(scale)


@dataclass(kw_only=True)
class _KwOnly:
    a: int
    b: str = "b"


@dataclass
class _MixedKw:
    a: int
    b: int = field(default=3, kw_only=True)
    c: str = "c"


@dataclass(frozen=True)
class _ExplicitHash:
    a: int

    def __hash__(self) -> int:
        return 42


@dataclass
class _BodyMethods:
    a: int
    b: int = 0

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.a == other.a

    def __repr__(self) -> str:
        return f"<{self.a}>"


@dataclass
class _BodyInit:
    a: int
    b: int = 1

    def __init__(self, a: int, b: int = 1) -> None:
        self.a, self.b = a, b * 2


@dataclass(frozen=True)
class _BodyEqFrozen:
    a: int

    def __eq__(self, other: object) -> bool:  # __hash__ is set to None by Python, then made by dataclass
        return type(other) is type(self) and self.a == other.a


@dataclass(init=False, repr=False, eq=False, match_args=False)
class _NothingMade:
    a: int = 1


@dataclass(frozen=True, eq=False)
class _FrozenNoEq:
    a: int
    b: tuple[int, ...] = (1,)


class _Outer:
    @dataclass(frozen=True, order=True)
    class Inner:  # __qualname__ is not __name__: repr shows the one, __doc__ the other
        x: int
        y: str = "y"


# annotations that are objects, not strings (no `from __future__ import annotations` there), no docstring
_Annotated = dataclass(type("_Annotated", (), {
    "__module__": __name__, "__qualname__": "_Annotated", "__doc__": None,
    "__annotations__": {"a": int, "b": list[int] | None, "h": Any, "c": Path, "d": InitVar[int], "e": dict[str, Any],
                        "f": ClassVar[int], "g": "tuple[int, ...]"},
    "b": None, "c": Path("x"), "d": 1, "e": field(default_factory=dict), "f": 3, "h": 0,
    "g": field(default=(), kw_only=True)}))


@dataclass
class _WithNew:  # inspect.signature(cls) is that of __new__: so is __doc__
    a: int

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)


@dataclass
class _Empty:
    pass


@dataclass(frozen=True, order=True)
class _EmptyFrozen:
    pass


@dataclass
class _Factories:
    items: dict[str, int] = field(default_factory=dict)
    n: int = field(default=4, metadata={"unit": "rows"})


@dataclass(frozen=True)
class _Base:
    a: int


@dataclass(frozen=True)
class _Derived(_Base):  # a dataclass base: made by the standard library's decorator
    b: int = 2


@dataclass(slots=True)
class _Slotted:  # slots: made by the standard library's decorator
    a: int


# --- building the twin and comparing --------------------------------------------------------------------

def _import_every_module() -> None:
    for info in pkgutil.walk_packages(seedkit.__path__, "seedkit."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            importlib.import_module(info.name)


def _twin(cls: type, kwargs: dict[str, Any], ns: dict[str, Any], given: dict[str, Any]) -> type:
    """The same class statement, made by dataclasses.dataclass."""
    body = {}
    for k, v in ns.items():
        if k in ("__dict__", "__weakref__"):
            continue
        if isinstance(v, dataclasses.Field):  # as field() returned it, before the decorator filled it in
            v = copy.copy(v)
            v.name = v.type = v._field_type = None
            v.kw_only = given[k]
        body[k] = v
    body["__qualname__"] = cls.__qualname__
    return dataclasses.dataclass(**kwargs)(type(cls)(cls.__name__, cls.__bases__, body))


# per-class sample values for fields whose __post_init__ wants a given shape
SAMPLES: dict[str, dict[str, Callable[[int], Any]]] = {
    "seedkit.seed.model.FixtureHeader": {
        "table": lambda v: f"t{v}", "key": lambda v: [f"k{v}"], "on_conflict": lambda v: ("update", "ignore")[v % 2],
        "create_only": lambda v: [f"c{v}"] * v, "prune": lambda v: bool(v % 2)},
    "seedkit.seed.skip_tracker.Tracker": {"key_positions": lambda v: list(range(v + 1))},
    "seedkit.urls.DatabaseURL": {"raw": lambda v: f"postgresql://user:secret{v}@host/db{v}"},
}


def _sample(cls: type, f: dataclasses.Field, i: int, v: int) -> Any:
    """Field number i's value number v: an int, a str or a tuple by field, made afresh each call."""
    special = SAMPLES.get(f"{cls.__module__}.{cls.__qualname__}", {}).get(f.name)
    if special is not None:
        return special(v)
    kind = i % 3
    if kind == 0:
        return int(str(10 * i + v))  # small ints are cached; equal anyway
    if kind == 1:
        return "".join(["s", str(i), "_", str(v)])  # a new str object each call
    return tuple([v, str(i)])


def _outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """What calling fn gives: ("ok", value) or ("raised", exception type, message)."""
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as e:  # the comparison is of which exception, with which message
        return ("raised", type(e), str(e))


_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _repr(obj: object) -> str:
    return _ADDRESS.sub("", repr(obj))


def _state(obj: object) -> dict[str, Any]:
    """An instance's attributes, comparable between twins: type name and repr (without addresses)."""
    out = {}
    attrs = vars(obj) if hasattr(obj, "__dict__") else {
        k: getattr(obj, k) for k in type(obj).__slots__ if hasattr(obj, k)}
    for k, v in attrs.items():
        out[k] = (type(v).__qualname__, _repr(v))
    return out


def _asdict(obj: object) -> tuple[str, str]:
    return _state(types.SimpleNamespace(d=dataclasses.asdict(obj)))["d"]


def _astuple(obj: object) -> tuple[str, str]:
    return _state(types.SimpleNamespace(d=dataclasses.astuple(obj)))["d"]


def _instances(cls: type) -> list[Callable[[type], Any]]:
    """Recipes, each making one instance of a class like cls (cls or its twin): all fields at sample 0,
    each one field changed to sample 1, all at sample 1, and again all at 0 (an equal, distinct
    instance); plus only the required arguments (defaults and factories)."""
    fs = [f for f in dataclasses.fields(cls) if f.init]
    fs += [f for f in cls.__dataclass_fields__.values() if f._field_type is dataclasses._FIELD_INITVAR]
    if not cls.__dataclass_params__.init:
        return [lambda c: c()]
    variants = [dict.fromkeys(range(len(fs)), 0)]
    variants += [{**variants[0], j: 1} for j in range(len(fs))]
    variants += [dict.fromkeys(range(len(fs)), 1), dict.fromkeys(range(len(fs)), 0)]

    def recipe(values: dict[int, int]) -> Callable[[type], Any]:
        return lambda c: c(**{f.name: _sample(cls, f, i, values[i]) for i, f in enumerate(fs)})

    recipes = [recipe(v) for v in variants]
    required = [(i, f) for i, f in enumerate(fs)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    recipes.append(lambda c: c(**{f.name: _sample(cls, f, i, 0) for i, f in required}))
    return recipes


def _same_hash(a: object, b: object) -> bool:
    return hash(a) == hash(b)


_CMP = (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge)


def _field_facts(cls: type) -> list[tuple[Any, ...]]:
    return [(f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.hash, f.compare, dict(f.metadata),
             f.kw_only, f._field_type)
            for f in cls.__dataclass_fields__.values()]


def compare(cls: type, twin: type) -> None:
    """Fail (AssertionError) where cls and twin differ."""
    name = f"{cls.__module__}.{cls.__qualname__}"
    assert dataclasses.is_dataclass(cls), name
    assert _field_facts(cls) == _field_facts(twin), name
    assert repr(cls.__dataclass_params__) == repr(twin.__dataclass_params__), name
    assert sorted(vars(cls)) == sorted(vars(twin)), name
    for attr, value in vars(twin).items():
        mine = vars(cls)[attr]
        if inspect.isfunction(value) and value.__qualname__.startswith(cls.__qualname__ + "."):
            assert inspect.isfunction(mine) and mine.__qualname__ == value.__qualname__, (name, attr)
            assert mine.__module__ == value.__module__, (name, attr)
            # the same instructions: as fast per call (repr is wrapped by the recursion guard in both)
            code, theirs = getattr(mine, "__wrapped__", mine).__code__, getattr(value, "__wrapped__", value).__code__
            assert code.co_code == theirs.co_code, (name, attr)
            assert (code.co_names, code.co_consts, code.co_argcount, code.co_kwonlyargcount) == (
                theirs.co_names, theirs.co_consts, theirs.co_argcount, theirs.co_kwonlyargcount), (name, attr)
        elif inspect.ismemberdescriptor(value) or inspect.isgetsetdescriptor(value):  # slots, __dict__
            assert type(mine) is type(value), (name, attr)
        elif attr not in ("__doc__", "__dataclass_fields__", "__dataclass_params__") and not callable(value):
            assert mine is value or mine == value, (name, attr)
    assert (cls.__hash__ is None) == (twin.__hash__ is None), name
    assert inspect.signature(cls) == inspect.signature(twin), name
    assert str(inspect.signature(cls)) == str(inspect.signature(twin)), name
    assert cls.__doc__ == twin.__doc__, name
    assert getattr(cls, "__match_args__", None) == getattr(twin, "__match_args__", None), name

    recipes = _instances(cls)
    built = [(_outcome(r, cls), _outcome(r, twin)) for r in recipes]
    for (mine, theirs) in built:
        assert mine[0] == theirs[0], (name, mine, theirs)
        if mine[0] == "raised":
            assert mine[1:] == theirs[1:], name
    pairs = [(m[1], t[1]) for m, t in built if m[0] == "ok"]
    assert pairs, f"{name}: no instance could be made from the samples (add them to SAMPLES)"
    for m, t in pairs:
        assert type(m) is cls and type(t) is twin, name
        assert _outcome(_repr, m) == _outcome(_repr, t), name
        assert _state(m) == _state(t), name
        assert _outcome(_asdict, m) == _outcome(_asdict, t), name
        assert _outcome(_astuple, m) == _outcome(_astuple, t), name
        hm, ht = _outcome(hash, m), _outcome(hash, t)
        assert hm[0] == ht[0], (name, hm, ht)
        if hm[0] == "raised":
            assert hm[1:] == ht[1:], name
        elif "__hash__" in vars(cls) and inspect.isfunction(vars(cls)["__hash__"]):
            assert hm == ht, name  # made, or written in the class: the hash of the same values
    for (m1, t1), (m2, t2) in itertools.product(pairs, repeat=2):
        for op in _CMP:
            assert _outcome(op, m1, m2) == _outcome(op, t1, t2), (name, op.__name__)
        h = _outcome(_same_hash, m1, m2), _outcome(_same_hash, t1, t2)
        assert h[0] == h[1], (name, "hash equality")
    # replace() of every field, then setattr/delattr of every field and of an attribute that is none
    for i, f in enumerate(dataclasses.fields(cls)):
        m, t = pairs[0]
        m, t = copy.copy(m), copy.copy(t)
        new = _sample(cls, f, i, 2)
        rm = _outcome(dataclasses.replace, m, **{f.name: new})
        rt = _outcome(dataclasses.replace, t, **{f.name: new})
        assert rm[0] == rt[0], (name, f.name, rm, rt)
        if rm[0] == "ok":
            assert _outcome(_repr, rm[1]) == _outcome(_repr, rt[1]), (name, f.name)
            assert _state(rm[1]) == _state(rt[1]), (name, f.name)
        else:
            assert rm[1:] == rt[1:], (name, f.name)
        for attr in (f.name, "_not_a_field"):
            assert _outcome(setattr, m, attr, new) == _outcome(setattr, t, attr, new), (name, attr)
            assert _state(m) == _state(t), (name, attr)
            assert _outcome(delattr, m, attr) == _outcome(delattr, t, attr), (name, attr)
            assert _state(m) == _state(t), (name, attr)


def _registered() -> list[tuple[type, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    _import_every_module()
    return list(_record.REGISTRY)


def test_every_seedkit_dataclass_is_made_by_the_record_decorator() -> None:
    _import_every_module()
    made = {c for c, *_ in _record.REGISTRY}
    found = set()
    for mod_name, module in list(sys.modules.items()):
        if mod_name == "seedkit" or mod_name.startswith("seedkit."):
            for value in vars(module).values():
                if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == mod_name:
                    found.add(value)
    assert len(found) > 50
    assert found - made == set(), "made by dataclasses.dataclass: switch them to seedkit._record.dataclass"


def test_every_class_made_matches_the_standard_library() -> None:
    entries = _registered()
    seedkit_classes = [c for c, *_ in entries if c.__module__.startswith("seedkit.")]
    assert len(seedkit_classes) > 50
    for cls, kwargs, ns, given in entries:
        compare(cls, _twin(cls, kwargs, ns, given))


def test_the_fast_path_is_the_one_taken() -> None:
    """On the Pythons whose dataclasses exec each method alone, a record's methods come from one source
    text (they start on different lines of it); those the standard library made each start on line 2."""
    if not _record._ONE_EXEC:
        pytest.skip("dataclasses compiles a class's methods in one exec on this Python")

    def first_lines(cls: type) -> set[int]:
        return {getattr(vars(cls)[n], "__wrapped__", vars(cls)[n]).__code__.co_firstlineno
                for n in ("__init__", "__repr__", "__eq__", "__setattr__") if n in vars(cls)}

    for cls in (_Ordered, _PostInit, _UnsafeHash):
        assert len(first_lines(cls)) > 1, cls
        assert first_lines(_twin(*_entry(cls))) == {2}
    seedkit_classes = [c for c, *_ in _registered() if c.__module__.startswith("seedkit.")]
    assert seedkit_classes and all(len(first_lines(c)) > 1 for c in seedkit_classes)
    for cls in (_Derived, _Slotted):  # the standard library's, as the module says
        assert first_lines(cls) == {2}, cls


def test_every_code_object_used_is_what_its_source_compiles_to() -> None:
    """The code objects read back from __pycache__ (or compiled in this run) are those of their text."""
    _import_every_module()
    assert _record._ONE_EXEC is False or len(_record._codes) > 50
    for text, blob in (_record._codes or {}).items():
        assert marshal.loads(blob) == compile(text, "<string>", "exec", dont_inherit=True), text


def test_the_methods_cache_is_written_and_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new text is kept at exit and read back by the next run; a file from another bytecode version or
    a damaged one is ignored."""
    if not _record._ONE_EXEC:
        pytest.skip("no methods are compiled here on this Python")
    path = tmp_path / "__pycache__" / "_record.methods"
    monkeypatch.setattr(_record, "_cache_path", lambda: str(path))
    monkeypatch.setattr(_record, "_codes", None)
    monkeypatch.setattr(_record, "_new", {})
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    text = "def __create_fn__(x):\n def f(self):\n  return x\n return (f,)"
    code = _record._compiled(text)
    _record._save()
    monkeypatch.setattr(_record, "_codes", None)
    assert _record._compiled(text) is not code  # read back, equal
    assert _record._compiled(text) == code and _record._read(str(path)) == {text: marshal.dumps(code)}
    for damage in (b"", b"\x00" * 7, marshal.dumps((b"XXXX", {text: marshal.dumps(code)}))):
        path.write_bytes(damage)
        assert _record._read(str(path)) == {}



def test_the_methods_cache_is_not_written_without_bytecode_nor_where_it_cannot_be(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With bytecode writing off (PYTHONDONTWRITEBYTECODE) a new text is compiled and kept for this run
    only, nothing is saved at exit; where the file cannot be written (here its folder is a file) saving
    leaves nothing behind and raises nothing: the next run compiles again."""
    if not _record._ONE_EXEC:
        pytest.skip("no methods are compiled here on this Python")
    path = tmp_path / "__pycache__" / "_record.methods"
    monkeypatch.setattr(_record, "_cache_path", lambda: str(path))
    monkeypatch.setattr(_record, "_codes", None)
    monkeypatch.setattr(_record, "_new", {})
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    text = "def __create_fn__(x):\n def g(self):\n  return x\n return (g,)"
    code = _record._compiled(text)
    assert _record._new == {} and _record._compiled(text) == code
    _record._save()
    assert not path.exists() and not path.parent.exists()

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(_record, "_codes", None)
    _record._compiled(text)
    assert list(_record._new) == [text]
    path.parent.write_text("not a folder")
    _record._save()  # (an OSError inside: ignored)
    assert path.parent.read_text() == "not a folder" and list(tmp_path.iterdir()) == [path.parent]

def _entry(cls: type) -> tuple[type, dict[str, Any], dict[str, Any], dict[str, Any]]:
    return next(e for e in _record.REGISTRY if e[0] is cls)


@pytest.mark.parametrize("change", [
    {"repr": False}, {"eq": False, "order": False}, {"frozen": False}, {"order": False}, {"unsafe_hash": True},
    {"match_args": False}, {"kw_only": True},
])
def test_the_comparison_notices_other_parameters(change: dict[str, Any]) -> None:
    cls, kwargs, ns, given = _entry(_Ordered)
    with pytest.raises(AssertionError):
        compare(cls, _twin(cls, {**kwargs, **change}, ns, given))


# one fault put in the generated source: (pattern, replacement)
_FAULTS = {
    "hash of no field": (r"hash\(\(self\..*\)\)", "hash(())"),
    "repr of the class name": (r"self\.__class__\.__qualname__", "self.__class__.__name__"),
    "frozen __init__ through __setattr__": (r"__dataclass_builtins_object__\.__setattr__\(self,", "setattr(self,"),
    "__post_init__ not called": (r"self\.__post_init__\(", "(lambda *a: None)("),
    "eq by identity": (r"return \(self\..*\)==\(other\..*\)", "return self is other"),
    "frozen setattr allowed": (r'raise FrozenInstanceError\(f"cannot assign', r'return None; (f"cannot assign'),
    "default factory called once": (r"(__dataclass_dflt_\w+__)\(\) if", r"\1 if"),
    "lt is le": (r"\)<\(", ")<=("),
}


@pytest.mark.parametrize("fault", ["reversed fields", *_FAULTS])
def test_the_comparison_notices_a_wrong_generator(fault: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decorator with one fault put in makes classes the comparison rejects."""
    if not _record._ONE_EXEC:
        pytest.skip("the standard library's decorator makes every class on this Python")
    if fault == "reversed fields":
        real_tuple_str = _record._tuple_str
        monkeypatch.setattr(_record, "_tuple_str", lambda obj, fs: real_tuple_str(obj, list(fs)[::-1]))
    else:
        pattern, replacement = _FAULTS[fault]
        real_compile = compile
        changed = []

        def broken_compile(text: str, *args: Any, **kw: Any) -> Any:
            new = re.sub(pattern, replacement, text)
            changed.append(new != text)
            return real_compile(new, *args, **kw)
        monkeypatch.setattr(_record, "compile", broken_compile, raising=False)
    # what is compiled here is wrong on purpose: neither read from nor kept in the cache
    monkeypatch.setattr(_record, "_codes", {})
    monkeypatch.setattr(_record, "_new", {})
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    made = len(_record.REGISTRY)
    try:
        def fresh(qualname: str, kwargs: dict[str, Any], body: dict[str, Any]) -> type:
            name = qualname.rsplit(".", 1)[-1]
            return dataclass(**kwargs)(type(name, (), {"__module__": __name__, "__qualname__": qualname, **body}))

        def post(self: Any, scale: int) -> None:
            self.scaled = self.a * scale

        classes = [
            fresh("Outer.Nested", {"frozen": True, "order": True},
                  {"__annotations__": {"first": int, "second": str}, "__doc__": None}),
            fresh("Post", {}, {"__annotations__": {"a": int, "scale": InitVar[int], "f": list},
                               "scale": 3, "f": field(default_factory=list), "__post_init__": post}),
        ]
        failures = []
        for cls in classes:
            try:
                compare(cls, _twin(*_entry(cls)))
            except AssertionError as e:
                failures.append(e)
        assert failures, f"{fault}: every class still compared equal"
        if fault != "reversed fields":
            assert any(changed), f"{fault}: the pattern matched no generated source"
    finally:
        del _record.REGISTRY[made:]
