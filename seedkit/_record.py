"""``dataclass``: the standard library's dataclasses, with their methods compiled in one ``exec``.

On Python 3.10 to 3.12, ``dataclasses.dataclass`` compiles every method it writes (``__init__``,
``__repr__``, ``__eq__``, the order methods, ``__hash__``, a frozen class's ``__setattr__`` and
``__delattr__``) with an ``exec`` of its own: about a millisecond per class, and a command's start-up
builds a few dozen of them. This decorator lets the standard library do everything but write those
methods (``dataclass(init=False, repr=False, eq=False)``: fields, defaults set on the class,
``__match_args__``, ``__dataclass_fields__``), then writes the same methods, from the same source text,
in one ``exec`` for the class, and sets ``__dataclass_params__`` and ``__doc__`` as the standard library
would. The compiled source is kept in ``__pycache__`` (see ``_compiled``): a later run execs the code
object without compiling it again.

The class is a real dataclass: ``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` see
no difference, and its methods have the standard library's bytecode. tests/test_record.py compares
every class made here with its twin made by ``dataclasses.dataclass`` (fields, signature, doc, bytecode,
repr, equality, order, hash, frozenness, ``replace``, ``asdict``, ``__post_init__``).

Left to the standard library's own decorator, unchanged:

- Python 3.13 and later, whose ``dataclasses`` already compiles a class's methods in one ``exec``;
- ``slots=True`` and ``weakref_slot=True`` (the standard library makes a new class);
- a class with a dataclass among its bases (the frozen/non-frozen inheritance checks see the
  parameters the standard library is given).

No seedkit class has slots or a dataclass base. ``field``, ``fields``, ``replace``, ``asdict``,
``FrozenInstanceError`` stay the standard library's.
"""

from __future__ import annotations

import abc
import atexit
import dataclasses
import marshal
import os
import sys
from typing import TYPE_CHECKING, Any

__all__ = ["dataclass"]

# Every class this module made (or handed to the standard library), with what the test needs to build
# its standard-library twin: (class, the decorator's keyword arguments, the class namespace as the class
# statement made it, each field() object's kw_only as given). Appending costs well under a microsecond.
REGISTRY: list[tuple[type, dict[str, Any], dict[str, Any], dict[str, Any]]] = []

_STDLIB = dataclasses.dataclass
_ONE_EXEC = sys.version_info < (3, 13)  # 3.13's dataclasses compiles a class's methods in one exec
_SET_OF_NAMES = sys.version_info >= (3, 12)  # how a frozen class's __setattr__ tests the name
_MISSING = dataclasses.MISSING
if _ONE_EXEC:
    _FIELD = dataclasses._FIELD  # type: ignore[attr-defined]
    _FIELD_INITVAR = dataclasses._FIELD_INITVAR  # type: ignore[attr-defined]
    _HAS_DEFAULT_FACTORY = dataclasses._HAS_DEFAULT_FACTORY  # type: ignore[attr-defined]
    _recursive_repr = dataclasses._recursive_repr  # type: ignore[attr-defined]
    _FrozenInstanceError = dataclasses.FrozenInstanceError

# (unsafe_hash, eq, frozen, has_explicit_hash) -> what to do with __hash__: the standard library's table.
_ADD, _NONE, _RAISE = "add", "none", "raise"
_HASH_ACTION = {
    (False, False, False, False): None, (False, False, False, True): None,
    (False, False, True, False): None, (False, False, True, True): None,
    (False, True, False, False): _NONE, (False, True, False, True): None,
    (False, True, True, False): _ADD, (False, True, True, True): None,
    (True, False, False, False): _ADD, (True, False, False, True): _RAISE,
    (True, False, True, False): _ADD, (True, False, True, True): _RAISE,
    (True, True, False, False): _ADD, (True, True, False, True): _RAISE,
    (True, True, True, False): _ADD, (True, True, True, True): _RAISE,
}
_ORDER = (("__lt__", "<"), ("__le__", "<="), ("__gt__", ">"), ("__ge__", ">="))


_repr = repr

# Compiled method sources, kept between runs as CPython keeps a module's bytecode: a file in
# _record's __pycache__ maps each source text to its code object, marshalled (unmarshalled only when a
# class needs it). The text alone decides the code: the values it uses come in as the outer function's
# arguments. Compiling a class's methods costs about a millisecond; reading them back, some twenty
# microseconds. Written (atomically) at exit when a run compiled a text the file lacked, unless bytecode
# is not written (PYTHONDONTWRITEBYTECODE); ignored when unreadable or of another bytecode version.
_codes: dict[str, bytes] | None = None
_new: dict[str, bytes] = {}
_KEEP_AT_MOST = 4000  # texts; a file past this starts afresh


def _cache_path() -> str | None:
    try:
        import importlib.util

        return importlib.util.cache_from_source(__file__)[: -len(".pyc")] + ".methods"
    except (NotImplementedError, ValueError, AttributeError):
        return None


def _read(path: str | None) -> dict[str, bytes]:
    import importlib.util

    try:
        with open(path, "rb") as f:  # type: ignore[arg-type]
            magic, codes = marshal.load(f)
        if magic == importlib.util.MAGIC_NUMBER and type(codes) is dict:
            return codes
    except Exception:  # missing, unreadable, truncated, another version's: compile instead
        pass
    return {}


def _save() -> None:
    import importlib.util

    path = _cache_path()
    if path is None or not _new:
        return
    codes = _read(path)  # what other runs added meanwhile
    if len(codes) + len(_new) > _KEEP_AT_MOST:
        codes = {}
    codes.update(_new)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            marshal.dump((importlib.util.MAGIC_NUMBER, codes), f)
        os.replace(tmp, path)
    except OSError:  # a read-only install: compile next time too
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _compiled(text: str) -> Any:
    """The code object of ``text``, compiled or read back from an earlier run."""
    global _codes
    if _codes is None:
        _codes = _read(_cache_path())
    blob = _codes.get(text)
    if blob is not None:
        try:
            return marshal.loads(blob)
        except Exception:  # not what _save writes: compile it
            pass
    # dont_inherit: this module's `from __future__ import annotations` would make __init__'s
    # annotations the names of the outer function's parameters
    code = compile(text, "<string>", "exec", dont_inherit=True)
    _codes[text] = blob = marshal.dumps(code)
    if not sys.dont_write_bytecode:
        if not _new:
            atexit.register(_save)
        _new[text] = blob
    return code


def _signature_is_init(cls: type) -> bool:
    """inspect.signature(cls) is that of cls.__init__ less self: no metaclass __call__, no __new__, no
    __signature__, __wrapped__ or __partialmethod__ (what inspect looks at first)."""
    return (type(cls).__call__ is type.__call__ and cls.__new__ is object.__new__  # type: ignore[comparison-overlap]
            and not any(hasattr(cls, a) for a in ("__signature__", "__wrapped__", "__partialmethod__")))


def _tuple_str(obj_name: str, fields: list[Any]) -> str:
    if not fields:
        return "()"
    return f'({",".join([f"{obj_name}.{f.name}" for f in fields])},)'


def _process(cls: type, init: bool, repr: bool, eq: bool, order: bool, unsafe_hash: bool,
             frozen: bool, match_args: bool, kw_only: bool) -> type:
    if order and not eq:
        raise ValueError("eq must be true if order is true")
    cls_dict = cls.__dict__
    class_hash = cls_dict.get("__hash__", _MISSING)
    has_explicit_hash = not (class_hash is _MISSING or (class_hash is None and "__eq__" in cls_dict))
    wants_doc = not cls.__doc__
    if wants_doc:
        cls.__doc__ = "-"  # the standard library would make it from a signature without our __init__
    _STDLIB(cls, init=False, repr=False, eq=False, order=False, unsafe_hash=False, frozen=False,
            match_args=match_args, kw_only=kw_only)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    params.init, params.repr, params.eq, params.order = init, repr, eq, order
    params.unsafe_hash, params.frozen = unsafe_hash, frozen

    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    # name of the outer function's parameter -> its value: the generated methods close over these
    env: dict[str, Any] = {}
    lines: list[str] = []
    made: list[str] = []

    std: list[Any] = []
    kwo: list[Any] = []
    if init:  # the standard library checks the defaults' order even when the class has an __init__
        init_fields = [f for f in fields.values() if f._field_type is _FIELD or f._field_type is _FIELD_INITVAR]
        std = [f for f in init_fields if f.init and not f.kw_only]
        kwo = [f for f in init_fields if f.init and f.kw_only]
        seen_default = False
        for f in std:
            if not (f.default is _MISSING and f.default_factory is _MISSING):
                seen_default = True
            elif seen_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
        self_name = "__dataclass_self__" if "self" in fields else "self"
        body = []
        for f in init_fields:
            dflt = f"__dataclass_dflt_{f.name}__"
            if f.default_factory is not _MISSING:
                env[dflt] = f.default_factory
                env["__dataclass_HAS_DEFAULT_FACTORY__"] = _HAS_DEFAULT_FACTORY
                value = (f"{dflt}() if {f.name} is __dataclass_HAS_DEFAULT_FACTORY__ else {f.name}"
                         if f.init else f"{dflt}()")
            elif f.init:
                if f.default is not _MISSING:
                    env[dflt] = f.default
                value = f.name
            else:
                continue  # reading it finds the class attribute holding the default
            if f._field_type is _FIELD_INITVAR:
                continue
            if frozen:
                env["__dataclass_builtins_object__"] = object
                body.append(f"__dataclass_builtins_object__.__setattr__({self_name},{f.name!r},{value})")
            else:
                body.append(f"{self_name}.{f.name}={value}")
        if hasattr(cls, "__post_init__"):
            initvars = ",".join(f.name for f in init_fields if f._field_type is _FIELD_INITVAR)
            body.append(f"{self_name}.__post_init__({initvars})")

        def param(f: Any) -> str:
            env[f"__dataclass_type_{f.name}__"] = f.type
            if f.default is not _MISSING:
                default = f"=__dataclass_dflt_{f.name}__"
            elif f.default_factory is not _MISSING:
                default = "=__dataclass_HAS_DEFAULT_FACTORY__"
            else:
                default = ""
            return f"{f.name}:__dataclass_type_{f.name}__{default}"

        if "__init__" not in cls_dict:
            args = [self_name] + [param(f) for f in std] + (["*"] + [param(f) for f in kwo] if kwo else [])
            env["__dataclass_return_type__"] = None
            lines.append(f" def __init__({','.join(args)})->__dataclass_return_type__:")
            lines.extend(f"  {b}" for b in body or ["pass"])
            made.append("__init__")

    field_list = [f for f in fields.values() if f._field_type is _FIELD]
    if repr and "__repr__" not in cls_dict:
        shown = ", ".join([f"{f.name}={{self.{f.name}!r}}" for f in field_list if f.repr])
        lines.append(" def __repr__(self):")
        lines.append(f'  return self.__class__.__qualname__ + f"({shown})"')
        made.append("__repr__")

    compared = [f for f in field_list if f.compare]
    cmp = [("__eq__", "==")] if eq else []
    if order:
        for name, _op in _ORDER:
            if name in cls_dict:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}. "
                                "Consider using functools.total_ordering")
        cmp += _ORDER
    if cmp:
        self_tuple, other_tuple = _tuple_str("self", compared), _tuple_str("other", compared)
        for name, op in cmp:
            if name in cls_dict:
                continue
            lines.append(f" def {name}(self, other):")
            lines.append("  if other.__class__ is self.__class__:")
            lines.append(f"   return {self_tuple}{op}{other_tuple}")
            lines.append("  return NotImplemented")
            made.append(name)

    if frozen:
        for name in ("__setattr__", "__delattr__"):
            if name in cls_dict:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
        env["cls"] = cls
        env["FrozenInstanceError"] = _FrozenInstanceError
        if _SET_OF_NAMES:  # 3.12: a set of the names, and none when there are no fields
            condition = "type(self) is cls" + (
                " or name in {" + ", ".join(_repr(f.name) for f in field_list) + "}" if field_list else "")
        else:
            names = "(" + ",".join(_repr(f.name) for f in field_list) + ",)" if field_list else "()"
            condition = f"type(self) is cls or name in {names}"
        lines += [" def __setattr__(self, name, value):",
                  f"  if {condition}:",
                  '   raise FrozenInstanceError(f"cannot assign to field {name!r}")',
                  "  super(cls, self).__setattr__(name, value)",
                  " def __delattr__(self, name):",
                  f"  if {condition}:",
                  '   raise FrozenInstanceError(f"cannot delete field {name!r}")',
                  "  super(cls, self).__delattr__(name)"]
        made += ["__setattr__", "__delattr__"]

    hash_action = _HASH_ACTION[bool(unsafe_hash), bool(eq), bool(frozen), has_explicit_hash]
    if hash_action is _RAISE:
        raise TypeError(f"Cannot overwrite attribute __hash__ in class {cls.__name__}")
    if hash_action is _ADD:
        hashed = [f for f in field_list if (f.compare if f.hash is None else f.hash)]
        lines.append(" def __hash__(self):")
        lines.append(f"  return hash({_tuple_str('self', hashed)})")
        made.append("__hash__")  # set unconditionally, as the standard library does

    if made:
        text = (f"def __create_fn__({', '.join(env)}):\n" + "\n".join(lines)
                + f"\n return ({', '.join(made)},)")
        module = sys.modules.get(cls.__module__)
        ns: dict[str, Any] = {}
        exec(_compiled(text), module.__dict__ if module is not None else {}, ns)
        qualname = cls.__qualname__
        for name, fn in zip(made, ns["__create_fn__"](**env)):
            if name == "__repr__":
                fn = _recursive_repr(fn)
            fn.__qualname__ = f"{qualname}.{name}"
            setattr(cls, name, fn)
    if hash_action is _NONE:
        cls.__hash__ = None  # type: ignore[assignment]

    if wants_doc:
        import inspect

        try:
            if "__init__" in made and _signature_is_init(cls):
                # what str(inspect.signature(cls)) says, without its machinery (a tenth of a millisecond)
                shown = [f"{f.name}: {inspect.formatannotation(f.type)}" + (
                    f" = {f.default!r}" if f.default is not _MISSING
                    else f" = {_HAS_DEFAULT_FACTORY!r}" if f.default_factory is not _MISSING else "")
                    for f in std + kwo]
                if kwo:
                    shown.insert(len(std), "*")
                text_sig = f"({', '.join(shown)}) -> None".replace(" -> None", "")
            else:
                text_sig = str(inspect.signature(cls)).replace(" -> None", "")
        except (TypeError, ValueError):
            text_sig = ""
        cls.__doc__ = cls.__name__ + text_sig
    if made and hasattr(cls, "__abstractmethods__"):
        abc.update_abstractmethods(cls)
    return cls


if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
else:
    def dataclass(cls=None, /, *, init=True, repr=True, eq=True, order=False,
                  unsafe_hash=False, frozen=False, match_args=True, kw_only=False, slots=False,
                  weakref_slot=False):
        """``dataclasses.dataclass``, the same class, its methods compiled in one ``exec``."""
        kwargs = {"init": init, "repr": repr, "eq": eq, "order": order, "unsafe_hash": unsafe_hash,
                  "frozen": frozen, "match_args": match_args, "kw_only": kw_only, "slots": slots}
        if weakref_slot:
            kwargs["weakref_slot"] = weakref_slot

        def wrap(cls):
            ns = dict(cls.__dict__)
            given = {k: v.kw_only for k, v in ns.items() if type(v) is dataclasses.Field}
            if (not _ONE_EXEC or slots or weakref_slot
                    or any(hasattr(b, "__dataclass_fields__") for b in cls.__mro__[1:])):
                made = _STDLIB(cls, **kwargs)  # slots: a new class
            else:
                made = _process(cls, init, repr, eq, order, unsafe_hash, frozen, match_args, kw_only)
            REGISTRY.append((made, kwargs, ns, given))
            return made

        return wrap if cls is None else wrap(cls)
