"""YAML fixture files read straight from libyaml's events: the common shapes, without a node tree.

PyYAML's composer and constructor build a node (and marks) for every value and then construct the
value from it; for a fixture of plain rows that is most of the time of reading. This reader takes the
events of PyYAML's libyaml parser (``CParser``) and builds the documents, rows, values, references and
positions directly, with the same resolver and the same constructors, so the result is the same.

It reads only what it is sure of: plain and quoted scalars, ``!ref`` (scalar or mapping), ``!json``,
plain nested mappings and lists. At anything else (an anchor, an alias, a merge key, another tag,
a key repeated, a key that is not text where a column is expected) and at any error it gives up and
returns None: the file is then read by the composer path of seedkit.seed.load, which says what and
where. A file that reads a variable (``!env``, however spelled) is never read here, so the variables
are not touched.
"""

from __future__ import annotations

import gc
import importlib.machinery
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .model import Fixture, Ref

# PyYAML, imported by the first ``read`` (seedkit.seed.yaml_load imports it too): a run whose files all come
# from the fixture cache never imports it
yaml: Any = None

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


_MISSING = object()
_T = TypeVar("_T")

# Set by the command line (seedkit.cli._seed): this process ends after one run. Rows read while the
# collector is paused then go to its permanent generation (gc.freeze) instead of being walked by the
# next collections: they live until the process ends anyway, and hold no cycles.
ONE_SHOT = False


def resume_collections(collecting: bool) -> None:
    """Turn the collector back on after reading rows with it paused (if it was on before)."""
    if collecting:
        if ONE_SHOT:
            gc.freeze()  # O(1): the objects made meanwhile are not walked by the next collection
        gc.enable()


def pyyaml_stamp() -> tuple[str, bool]:
    """(PyYAML's ``__version__``, ``__with_libyaml__``), for the keys of what was read with it (the fixture
    cache, the rerun record), without importing PyYAML when it is not imported yet: the version from the name
    of its one ``PyYAML-VERSION.dist-info`` folder, libyaml from its compiled module (``yaml/_yaml``) being
    there. Elsewhere (another kind of install) PyYAML is imported and asked. A value read here that PyYAML
    would not give only makes keys nothing was kept under (an entry is kept under the key of the PyYAML
    that read the file, which is imported by then): a miss, never a wrong hit."""
    if "yaml" not in sys.modules:
        from .._startup import dist_info

        got = dist_info("yaml", "PyYAML")
        if got is not None:
            try:
                own = os.listdir(got[1])
            except OSError:
                own = []
            suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
            return got[0], any(e.startswith("_yaml.") and e.endswith(suffixes) for e in own)
    import yaml as pyyaml

    return pyyaml.__version__, bool(pyyaml.__with_libyaml__)


class _GiveUp(Exception):
    """A shape this reader leaves to the composer path."""


def read(loader_class: type, text: str, path: Path, shown: str, document: Callable[..., Fixture | None]
         ) -> list[Fixture] | None:
    """The documents of ``text``, or None when the composer path must read it."""
    global yaml
    import yaml

    if not getattr(yaml, "__with_libyaml__", False) or not hasattr(loader_class, "raw_parse"):
        return None
    return with_reader(loader_class, text, shown, lambda reader: reader.stream(path, document))


def with_reader(loader_class: type, text: str, shown: str, work: Callable[[_Reader], _T]) -> _T | None:
    """``work`` given a reader of ``text`` (a loader of ``loader_class``), the collector paused; None when
    the loader cannot be made or has path resolvers, or ``work`` raises anything: a slower path then
    reads the file, and says what is wrong and where."""
    try:
        loader = loader_class(text)
    except Exception:  # noqa: BLE001 - the slower path says what is wrong
        return None
    collecting = gc.isenabled()
    gc.disable()  # many small containers, none in a cycle: the collector would only walk them
    try:
        if loader.yaml_path_resolvers:
            return None
        return work(_Reader(loader, shown))
    except Exception:  # noqa: BLE001 - anything unusual or wrong: the slower path reads it again
        return None
    finally:
        resume_collections(collecting)
        loader.dispose()


class _Reader:
    def __init__(self, loader: Any, shown: str):
        self.loader = loader
        self.shown = shown
        self.get = loader.get_event
        self.plain: dict[str, Any] = {}  # a plain scalar's value depends on its text alone (immutable ones)
        self.keys: dict[str, bool] = {}  # plain text → whether it resolves to text
        # the standard resolvers (none added): plain digits without a leading zero are an int
        self.digits = (loader.yaml_implicit_resolvers is yaml.resolver.Resolver.yaml_implicit_resolvers
                       and getattr(loader, "plain_ints", False))

    # -- documents ------------------------------------------------------------------------------
    def stream(self, path: Path, document: Callable[..., Fixture | None]) -> list[Fixture]:
        get = self.get
        if type(get()) is not yaml.StreamStartEvent:
            raise _GiveUp
        fixtures: list[Fixture] = []
        doc_no = 0
        while True:
            event = get()
            if type(event) is yaml.StreamEndEvent:
                return fixtures
            if type(event) is not yaml.DocumentStartEvent:
                raise _GiveUp
            doc_no += 1
            root = get()
            line = root.start_mark.line + 1
            row_lines = None
            plain = root.anchor is None and root.tag is None
            if plain and type(root) is yaml.SequenceStartEvent:
                data, row_lines = self.rows()
            elif plain and type(root) is yaml.MappingStartEvent:
                data, row_lines = self.document_mapping()
            elif type(root) is yaml.ScalarEvent:
                data = self.value(root)
            else:
                raise _GiveUp
            if type(get()) is not yaml.DocumentEndEvent:
                raise _GiveUp
            fx = document(data, path, self.shown, doc_no, line, row_lines)
            if fx is not None:
                fixtures.append(fx)

    def document_mapping(self) -> tuple[dict[Any, Any], Any]:
        get = self.get
        data: dict[Any, Any] = {}
        seen: set[str] = set()
        row_lines = None
        while True:
            key = get()
            if type(key) is yaml.MappingEndEvent:
                return data, row_lines
            if type(key) is not yaml.ScalarEvent or key.anchor is not None or key.tag is not None:
                raise _GiveUp
            text = key.value
            if text in seen:
                raise _GiveUp
            seen.add(text)
            value = get()
            if (text == "rows" and type(value) is yaml.SequenceStartEvent and value.anchor is None
                    and value.tag is None and self.is_text(key)):
                data["rows"], row_lines = self.rows()
            else:
                data[self.scalar(key)] = self.value(value)

    # -- rows -----------------------------------------------------------------------------------
    def rows(self) -> tuple[list[Any], list[tuple[int, dict[str, int]]]]:
        """The rows of a list whose start was read: each a plain mapping of text keys. (The common
        case, a plain or quoted scalar, is read here; the rest by ``value``.)"""
        get = self.get
        value = self.value
        is_text = self.is_text
        keys = self.keys
        plain = self.plain
        scalar = self.scalar
        ref = self.ref
        names: dict[str, str] = {}
        rows: list[Any] = []
        lines: list[tuple[int, dict[str, int]]] = []
        mapping_start, mapping_end, scalar_event = yaml.MappingStartEvent, yaml.MappingEndEvent, yaml.ScalarEvent
        missing = _MISSING
        while True:
            start = get()
            if type(start) is not mapping_start:
                if type(start) is yaml.SequenceEndEvent:
                    return rows, lines
                raise _GiveUp
            if start.anchor is not None or start.tag is not None:
                raise _GiveUp
            values: dict[str, Any] = {}
            cols: dict[str, int] = {}
            while True:
                key = get()
                if type(key) is not scalar_event:
                    if type(key) is mapping_end:
                        break
                    raise _GiveUp
                column = names.setdefault(key.value, key.value)  # one string per name: less memory, smaller entries
                if key.anchor is not None or key.tag is not None or column in values:
                    raise _GiveUp
                if key.implicit[0] and not keys.get(column) and not is_text(key):
                    raise _GiveUp
                cols[column] = key.start_mark.line + 1
                event = get()
                if type(event) is scalar_event and event.anchor is None:
                    tag = event.tag
                    if tag is None:
                        if event.implicit[0]:
                            v = plain.get(event.value, missing)
                            values[column] = scalar(event) if v is missing else v
                        elif event.implicit[1]:
                            values[column] = event.value
                        else:
                            raise _GiveUp
                    elif tag == "!ref":
                        values[column] = ref(event)
                    else:
                        values[column] = value(event)
                else:
                    values[column] = value(event)
            rows.append(values)
            lines.append((start.start_mark.line + 1, cols))

    def is_text(self, key: Any) -> bool:
        """Whether an untagged scalar resolves to text (as a column name must)."""
        if not key.implicit[0]:  # quoted or block: no implicit type
            return True
        return self.plain_is_text(key.value)

    def plain_is_text(self, text: str) -> bool:
        """Whether a plain scalar of this text resolves to text."""
        known = self.keys.get(text)
        if known is None:
            known = self.loader.resolve(yaml.ScalarNode, text, (True, False)) == _STR
            if len(self.keys) < 4096:
                self.keys[text] = known
        return known

    # -- values ---------------------------------------------------------------------------------
    def value(self, event: Any) -> Any:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            if event.anchor is not None:
                raise _GiveUp
            tag = event.tag
            if tag is None:
                return self.scalar(event)
            if tag == "!ref":
                return self.ref(event)
            if tag == "!json":
                from .. import jsontext

                return jsontext.loads(event.value)
            raise _GiveUp
        if event.anchor is not None:
            raise _GiveUp
        if kind is yaml.MappingStartEvent:
            if event.tag == "!ref":
                return self.ref_mapping(event)
            if event.tag is not None:
                raise _GiveUp
            return self.mapping()
        if kind is yaml.SequenceStartEvent and event.tag is None:
            get = self.get
            items = []
            while True:
                item = get()
                if type(item) is yaml.SequenceEndEvent:
                    return items
                items.append(self.value(item))
        raise _GiveUp

    def scalar(self, event: Any) -> Any:
        """An untagged scalar's value: text when quoted, else what its text resolves to, built by
        the loader's own constructors (floats as Decimal, see seedkit.seed.load)."""
        text = event.value
        if not event.implicit[0]:
            if event.implicit[1]:
                return text
            raise _GiveUp
        if event.style:
            raise _GiveUp
        return self.plain_value(text, event.start_mark, event.end_mark)

    def plain_value(self, text: str, start_mark: Any = None, end_mark: Any = None) -> Any:
        """A plain scalar's value (the marks, when known, for a constructor's message)."""
        plain = self.plain
        if text in plain:
            return plain[text]
        if self.digits and text.isdigit() and text.isascii() and text[0] != "0":
            return int(text)  # what the resolver and construct_yaml_int make of it (unique: not kept)
        loader = self.loader
        tag = loader.resolve(yaml.ScalarNode, text, (True, False))
        if tag == _STR:
            value: Any = text
        else:
            constructors = loader.yaml_constructors
            node = yaml.ScalarNode(tag, text, start_mark, end_mark)
            value = constructors.get(tag, constructors[None])(loader, node)
            if type(value) is float:  # nan and inf: each read is its own object, as the composer's
                return value
        if len(plain) < 65536:
            plain[text] = value
        return value

    def ref(self, event: Any) -> Ref:
        mark = event.start_mark
        return self.scalar_ref(event.value, mark.line + 1, mark.column + 1)

    def scalar_ref(self, text: str, line: int, column: int) -> Ref:
        """``!ref table/value`` whose tag starts at (line, column), both from 1."""
        table, sep, value = text.partition("/")
        if not sep or not table or value == "":
            raise _GiveUp
        return Ref(table.strip(), ((None, value),), None, (self.shown, line, column))

    def ref_mapping(self, start: Any) -> Ref:
        """``!ref {table: t, col: value, …}``: values plain or !ref scalars, or such mappings again."""
        get = self.get
        keys = self.keys
        plain = self.plain
        scalar_event = yaml.ScalarEvent
        missing = _MISSING
        data: dict[str, Any] = {}
        while True:
            key = get()
            if type(key) is not scalar_event:
                if type(key) is yaml.MappingEndEvent:
                    break
                raise _GiveUp
            if key.anchor is not None or key.tag is not None or (
                    key.implicit[0] and not keys.get(key.value) and not self.is_text(key)):
                raise _GiveUp
            value = get()
            if value.anchor is not None:
                raise _GiveUp
            if type(value) is scalar_event:
                tag = value.tag
                if tag is None:
                    if value.implicit[0]:
                        v = plain.get(value.value, missing)
                        data[key.value] = self.scalar(value) if v is missing else v
                    elif value.implicit[1]:
                        data[key.value] = value.value
                    else:
                        raise _GiveUp
                elif tag == "!ref":
                    data[key.value] = self.ref(value)
                else:
                    raise _GiveUp
            elif type(value) is yaml.MappingStartEvent and value.tag == "!ref":
                data[key.value] = self.ref_mapping(value)
            else:
                raise _GiveUp
        mark = start.start_mark
        return self.mapping_ref(data, mark.line + 1, mark.column + 1)

    def mapping_ref(self, data: dict[str, Any], line: int, column: int) -> Ref:
        """``!ref {table: t, col: value, …}`` read into ``data``, whose tag starts at (line, column)."""
        table = data.pop("table", None)
        col = data.pop("column", None)
        if type(table) is not str or not table or not data:
            raise _GiveUp
        for v in data.values():
            if v is None or isinstance(v, (dict, list)):
                raise _GiveUp
        return Ref(table, tuple(sorted(data.items())), col, (self.shown, line, column))

    def mapping(self) -> dict[Any, Any]:
        """A plain nested mapping (a JSON value written as YAML)."""
        get = self.get
        data: dict[Any, Any] = {}
        seen: set[str] = set()
        while True:
            key = get()
            if type(key) is yaml.MappingEndEvent:
                return data
            if type(key) is not yaml.ScalarEvent or key.anchor is not None or key.tag is not None:
                raise _GiveUp
            if key.value in seen:
                raise _GiveUp
            seen.add(key.value)
            k = self.scalar(key)  # a merge key (<<) or value key (=) has no constructor: given up
            data[k] = self.value(get())
