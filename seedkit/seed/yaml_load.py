"""YAML fixture files (seedkit.seed.load): PyYAML's loaders with seedkit's constructors, a line at a time for the
rows seedkit snapshot writes (seedkit.seed.yaml_lines), libyaml's events (seedkit.seed.yaml_events) for the
common shapes, and PyYAML's node API, a row at a time, for the rest and for
every error. A module of its own, imported when a YAML file is read: a run whose files all come from the fixture
cache (seedkit.seed.cache) does not import PyYAML at all.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from .. import jsontext
from ..errors import FixtureError, Location
from . import load, yaml_events, yaml_lines
from .load import _document
from .model import Fixture, make_ref


class _Loader(yaml.SafeLoader):
    variables: Mapping[str, str] = {}
    shown = ""


def _number_error(loader: _Loader, node: yaml.ScalarNode, exc: Exception, digits: int | None = None) -> FixtureError:
    text = str(node.value)
    shown = text if len(text) <= 40 else f"{text[:20]}…{text[-10:]} ({len(text)} characters)"
    if digits is None:
        digits = sum(c.isdigit() for c in text)
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    problem = (f"{digits} digits, more than the {limit} a number may have" if "digits" in str(exc) and limit
               else "not a number")
    return FixtureError(f"cannot read the number {shown!r}: {problem}",
                        location=Location(file=loader.shown, line=node.start_mark.line + 1,
                                          column=node.start_mark.column + 1),
                        hint="quote the value to keep it as text")


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        value = yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError as exc:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise _number_error(loader, node, exc) from None
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    if limit and value.bit_length() > 3.32 * (limit - 1):  # 0x… or 0b… of that many digits: no text form
        try:
            str(value)
        except ValueError as exc:  # a hex blob (0x0001…) is a number to YAML: it could never be written
            raise _number_error(loader, node, exc, digits=int(value.bit_length() * 0.30103) + 1) from None
    return value


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    low = text.lower()
    if low in (".inf", "+.inf", "-.inf", ".nan"):
        return yaml.SafeLoader.construct_yaml_float(loader, node)
    try:
        if ":" in text:  # YAML 1.1's base 60 (1:30.5 is 90.5), exact
            sign = -1 if text[0] == "-" else 1
            value = Decimal(0)
            for part in text.lstrip("+-").split(":"):
                value = value * 60 + Decimal(part)
            return sign * value
        return Decimal(text)
    except ArithmeticError as exc:
        raise _number_error(loader, node, exc) from None


def _construct_env(loader: _Loader, node: yaml.Node) -> Any:
    loc = Location(file=loader.shown, line=node.start_mark.line + 1, column=node.start_mark.column + 1)
    if not isinstance(node, yaml.ScalarNode):
        raise FixtureError("!env takes a variable name, e.g. !env ADMIN_TOKEN", location=loc)
    name = str(loader.construct_scalar(node)).strip()
    default = None
    if ":-" in name:
        name, default = name.split(":-", 1)
    value = loader.variables.get(name)
    if value is None:
        if default is not None:
            return default
        raise FixtureError(f"environment variable {name} is not set (used by !env)", location=loc,
                           hint=f"export {name}=… or add it to the .env file")
    return value


def _construct_ref(loader: _Loader, node: yaml.Node) -> Any:
    loc = Location(file=loader.shown, line=node.start_mark.line + 1, column=node.start_mark.column + 1)
    if isinstance(node, yaml.ScalarNode):
        text = str(loader.construct_scalar(node))
        table, sep, value = text.partition("/")
        if not sep or not table or value == "":
            raise FixtureError(f"bad !ref {text!r}", location=loc,
                               hint="write !ref table/key-value or !ref {table: t, column: value}")
        return make_ref(table.strip(), value, location=loc)
    if isinstance(node, yaml.MappingNode):
        return _mapping_ref(loader.construct_mapping(node, deep=True), loc)
    raise FixtureError("!ref takes table/value or a mapping", location=loc)


def _mapping_ref(data: dict[Any, Any], loc: Location) -> Any:
    """``!ref {table: t, column: c, key: value, …}`` as read from a mapping, checked."""
    table = data.pop("table", None)
    column = data.pop("column", None)
    if not isinstance(table, str) or not table:
        raise FixtureError("!ref {…} needs a 'table'", location=loc)
    for k, v in data.items():
        if isinstance(v, (dict, list)) or v is None:
            raise FixtureError(f"!ref value for {k!r} must be a plain value or another !ref", location=loc)
    return make_ref(table, {str(k): v for k, v in data.items()}, column=column, location=loc)


def _construct_json(loader: _Loader, node: yaml.Node) -> Any:
    """``!json TEXT``: a JSON value written as JSON text; ``!json null`` is JSON null, not SQL NULL."""
    loc = Location(file=loader.shown, line=node.start_mark.line + 1, column=node.start_mark.column + 1)
    if not isinstance(node, yaml.ScalarNode):
        raise FixtureError("!json takes JSON text, e.g. !json null or !json '{\"a\": 1.10}'", location=loc)
    text = str(loader.construct_scalar(node))
    try:
        return jsontext.loads(text)
    except ValueError as exc:
        raise FixtureError(f"!json {text!r}: not JSON ({exc})", location=loc) from None


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise FixtureError(f"invalid date or time {node.value!r}: {exc}",
                           location=Location(file=loader.shown, line=node.start_mark.line + 1,
                                             column=node.start_mark.column + 1),
                           hint="write a real calendar date, or quote the value to keep it as text") from None


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same, parsed by libyaml (several times faster) when PyYAML was built with it."""

    variables: Mapping[str, str] = {}
    shown = ""
    plain_ints = True  # ASCII digits without a leading zero are int(text) (for seedkit.seed.yaml_events)


# libyaml's parser keeps its composer to itself: documents are composed in Python from its events,
# a row at a time (see _stream_document)
for _name in ("compose_node", "compose_scalar_node", "compose_sequence_node", "compose_mapping_node"):
    setattr(_FastLoader, _name, getattr(yaml.composer.Composer, _name))

for _cls in (_Loader, _FastLoader):
    _cls.add_constructor("tag:yaml.org,2002:float", _construct_float)
    _cls.add_constructor("tag:yaml.org,2002:int", _construct_int)
    _cls.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
    _cls.add_constructor("!env", _construct_env)
    _cls.add_constructor("!ref", _construct_ref)
    _cls.add_constructor("!json", _construct_json)


def _load_yaml(text: str, path: Path, shown: str, variables: Mapping[str, str]) -> list[Fixture]:
    """libyaml reads the file; anything it finds wrong is read again by PyYAML's own parser, whose
    messages and positions are the ones documented and tested."""
    if _FastLoader is not _Loader and yaml.__with_libyaml__:
        if load._EVENTS:  # the common shapes straight from libyaml's events (None: anything else)
            fixtures = None
            if load._LINES:  # the rows seedkit snapshot writes, a line at a time (None: anything else)
                fixtures = yaml_lines.read(_FastLoader, text, path, shown, _document)
            if fixtures is None:
                fixtures = yaml_events.read(_FastLoader, text, path, shown, _document)
            if fixtures is not None:
                return fixtures
        try:
            return _parse_yaml(_FastLoader, text, path, shown, variables)
        except Exception:  # noqa: BLE001 - the pure-Python parser below says what and where
            pass
    return _parse_yaml(_Loader, text, path, shown, variables)




def _parse_yaml(cls: type, text: str, path: Path, shown: str, variables: Mapping[str, str]) -> list[Fixture]:
    try:
        loader = cls(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, found before parsing
        at = min(max(exc.position, 0), len(text))
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        raise FixtureError(f"malformed YAML: character {exc.character!r} is not allowed in YAML",
                           location=Location(file=shown, line=line, column=column),
                           hint="remove the control character, or quote binary data as text") from None
    loader.variables = variables
    loader.shown = shown
    if not hasattr(loader, "anchors"):
        loader.anchors = {}  # libyaml's parser feeds the Python composer below, which keeps them here
    fixtures: list[Fixture] = []
    try:
        loader.get_event()  # the stream's start
        doc_no = 0
        while not loader.check_event(yaml.StreamEndEvent):
            loader.get_event()  # the document's start
            doc_no += 1
            fx = _stream_document(loader, path, shown, doc_no)
            loader.get_event()  # the document's end
            loader.anchors = {}
            if fx is not None:
                fixtures.append(fx)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file=shown, line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None)
        problem = exc.problem or exc.context or "invalid YAML"
        ctx = exc.context_mark
        if exc.context and ctx is not None and (mark is None or ctx.line != mark.line):
            problem += f" ({exc.context} that starts at line {ctx.line + 1}, column {ctx.column + 1})"
        hint = None
        if "could not determine a constructor" in str(exc):
            hint = "seedkit understands the tags !ref, !env and !json"
        raise FixtureError(f"malformed YAML: {problem}", location=loc, hint=hint) from None
    except yaml.YAMLError as exc:
        raise FixtureError(f"malformed YAML: {exc}", location=Location(file=shown)) from None
    except RecursionError:
        raise FixtureError("the document is nested too deeply to read",
                           location=Location(file=shown, line=loader.line + 1, column=loader.column + 1),
                           hint="fixtures are rows of column: value; flatten the structure") from None
    finally:
        loader.dispose()
    return fixtures


def _compose(loader: Any) -> yaml.Node:
    """The next node of the document."""
    return loader.compose_node(None, None)


def _construct(loader: Any, node: yaml.Node, shown: str) -> Any:
    _check_duplicate_keys(node, shown)
    return loader.construct_document(node)


def _stream_document(loader: Any, path: Path, shown: str, doc_no: int) -> Fixture | None:
    """One document. Its rows are composed and constructed one at a time, so the node tree of the
    whole document (many times the size of its rows) never exists; what stays is the rows."""
    event = loader.peek_event()
    line = event.start_mark.line + 1
    plain = event.anchor is None and event.tag is None
    if plain and isinstance(event, yaml.SequenceStartEvent):  # a bare list of rows
        rows, row_lines = _stream_rows(loader, shown)
        return _document(rows, path, shown, doc_no, line, row_lines)
    if not (plain and isinstance(event, yaml.MappingStartEvent)):
        node = _compose(loader)
        return _document(_construct(loader, node, shown), path, shown, doc_no, line, _row_lines(node))
    loader.get_event()
    data: dict[Any, Any] = {}
    seen: dict[str, int] = {}
    row_lines: list[tuple[int | None, dict[str, int]]] | None = None
    while not loader.check_event(yaml.MappingEndEvent):
        key_node = _compose(loader)
        if not isinstance(key_node, yaml.ScalarNode):  # `? [a, b]`: no document key is a list or mapping
            raise FixtureError(f"a fixture document's keys are names (table, key, rows, …), not "
                               f"{'a list' if isinstance(key_node, yaml.SequenceNode) else 'a mapping'}",
                               location=Location(file=shown, line=key_node.start_mark.line + 1,
                                                 column=key_node.start_mark.column + 1))
        if isinstance(key_node, yaml.ScalarNode):
            if key_node.value in seen:
                raise FixtureError(f"key {key_node.value!r} appears twice in one mapping (first on line "
                                   f"{seen[key_node.value]})", location=Location(
                                       file=shown, line=key_node.start_mark.line + 1,
                                       column=key_node.start_mark.column + 1))
            seen[key_node.value] = key_node.start_mark.line + 1
        value = loader.peek_event()
        if (isinstance(key_node, yaml.ScalarNode) and key_node.value == "rows" and key_node.tag == _STR
                and isinstance(value, yaml.SequenceStartEvent) and value.anchor is None and value.tag is None):
            data["rows"], row_lines = _stream_rows(loader, shown)
        elif key_node.tag == "tag:yaml.org,2002:merge":  # `<<: …` in the header: keys written out win
            merged = _construct(loader, yaml.MappingNode("tag:yaml.org,2002:map", [(key_node, _compose(loader))]),
                                shown)
            for k, v in merged.items():
                data.setdefault(k, v)
        else:
            data[_construct(loader, key_node, shown)] = _construct(loader, _compose(loader), shown)
    loader.get_event()
    return _document(data, path, shown, doc_no, line, row_lines)


_STR = "tag:yaml.org,2002:str"


def _stream_rows(loader: Any, shown: str) -> tuple[list[Any], list[tuple[int | None, dict[str, int]]]]:
    loader.get_event()  # the sequence's start
    rows: list[Any] = []
    lines: list[tuple[int | None, dict[str, int]]] = []
    tags: dict[str, str] = {}  # a plain scalar's resolved tag depends on its text alone
    while not loader.check_event(yaml.SequenceEndEvent):
        event = loader.peek_event()
        if load._FLAT_ROWS and type(event) is yaml.MappingStartEvent and event.anchor is None and event.tag is None:
            values, where = _flat_row(loader, shown, tags)  # the common row: column: scalar, from events
            rows.append(values)
            lines.append(where)
            continue
        node = _compose(loader)
        lines.append(_row_location(node))
        rows.append(_construct(loader, node, shown))
    loader.get_event()
    return rows, lines




def _flat_row(loader: Any, shown: str, tags: dict[str, str]) -> tuple[Any, tuple[int, dict[str, int]]]:
    """A row of ``column: scalar`` pairs straight from the parser's events, without the node tree
    (composing and constructing cost several times the parsing). Values are built by the same
    constructors as the node path, so the result is the same. A value that is not a plain or !ref
    scalar (a nested !ref {…}, an anchor, an alias, another tag) is composed and constructed as a node
    of its own; at a key that is not plain text the rest of the row is (see _row_rest)."""
    start = loader.get_event()
    values: dict[str, Any] = {}
    cols: dict[str, int] = {}
    constructors = loader.yaml_constructors
    while True:
        key = loader.peek_event()
        if type(key) is yaml.MappingEndEvent:
            loader.get_event()
            return values, (start.start_mark.line + 1, cols)
        if (type(key) is not yaml.ScalarEvent or key.anchor is not None or key.tag is not None
                or _scalar_tag(loader, key, tags) != _STR):
            return _row_rest(loader, shown, start, values, cols)
        loader.get_event()
        column = key.value
        if column in values:
            raise FixtureError(f"key {column!r} appears twice in one mapping (first on line {cols[column]})",
                               location=Location(file=shown, line=key.start_mark.line + 1,
                                                 column=key.start_mark.column + 1))
        cols[column] = key.start_mark.line + 1
        value = loader.peek_event()
        if type(value) is not yaml.ScalarEvent or value.anchor is not None or (
                value.tag is not None and value.tag != "!ref"):
            if type(value) is yaml.MappingStartEvent and value.tag == "!ref" and value.anchor is None:
                values[column] = _flat_ref(loader, shown, tags)[0]  # !ref {table: …, column: value, …}
            else:  # a nested value, an anchor, an alias, another tag: its own node
                values[column] = _construct(loader, _compose(loader), shown)
            continue
        loader.get_event()
        vtag = value.tag or _scalar_tag(loader, value, tags)
        if vtag == _STR:
            values[column] = value.value
        else:
            node = yaml.ScalarNode(vtag, value.value, value.start_mark, value.end_mark, style=value.style)
            values[column] = constructors.get(vtag, constructors[None])(loader, node)


def _scalar(loader: Any, event: Any, tags: dict[str, str]) -> tuple[Any, yaml.ScalarNode]:
    """A tagless or !ref scalar's value, and its node (for a fallback that needs it)."""
    tag = event.tag or _scalar_tag(loader, event, tags)
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
    if tag == _STR:
        return event.value, node
    constructors = loader.yaml_constructors
    return constructors.get(tag, constructors[None])(loader, node), node


def _flat_ref(loader: Any, shown: str, tags: dict[str, str]) -> tuple[Any, yaml.MappingNode]:
    """``!ref {table: t, col: value, …}`` from events, as ``_construct_ref`` builds it from its node
    (values plain or !ref scalars, or such mappings again). The node is built on the way: at anything
    else, the rest is composed and the whole node constructed the ordinary way."""
    start = loader.get_event()
    pairs: list[tuple[Any, Any]] = []
    data: dict[str, Any] = {}
    while True:
        key = loader.peek_event()
        if type(key) is yaml.MappingEndEvent:
            end = loader.get_event()
            node = yaml.MappingNode("!ref", pairs, start.start_mark, end.end_mark, flow_style=start.flow_style)
            break
        value = None
        if (type(key) is yaml.ScalarEvent and key.anchor is None and key.tag is None
                and _scalar_tag(loader, key, tags) == _STR):
            loader.get_event()
            knode = yaml.ScalarNode(_STR, key.value, key.start_mark, key.end_mark, style=key.style)
            value = loader.peek_event()
            if type(value) is yaml.ScalarEvent and value.anchor is None and value.tag in (None, "!ref"):
                loader.get_event()
                data[key.value], vnode = _scalar(loader, value, tags)
                pairs.append((knode, vnode))
                continue
            if type(value) is yaml.MappingStartEvent and value.tag == "!ref" and value.anchor is None:
                data[key.value], vnode = _flat_ref(loader, shown, tags)
                pairs.append((knode, vnode))
                continue
            pairs.append((knode, _compose(loader)))  # and the rest the ordinary way
        while not loader.check_event(yaml.MappingEndEvent):
            k = _compose(loader)
            pairs.append((k, _compose(loader)))
        end = loader.get_event()
        node = yaml.MappingNode("!ref", pairs, start.start_mark, end.end_mark, flow_style=start.flow_style)
        return _construct(loader, node, shown), node
    loc = Location(file=shown, line=start.start_mark.line + 1, column=start.start_mark.column + 1)
    return _mapping_ref(data, loc), node


def _scalar_tag(loader: Any, event: Any, tags: dict[str, str]) -> str:
    """The tag a tagless scalar resolves to (a plain one's depends on its text alone: remembered)."""
    if event.style:  # quoted or block: no implicit type
        return loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    tag = tags.get(event.value)
    if tag is None:
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if len(tags) < 4096:
            tags[event.value] = tag
    return tag


def _row_rest(loader: Any, shown: str, start: Any, values: dict[str, Any],
              cols: dict[str, int]) -> tuple[Any, tuple[int, dict[str, int]]]:
    """Finish a row at a key that is not plain text (a merge key, an anchor, a number …): the rest of
    the mapping is composed and constructed the ordinary way and joined to the columns read so far
    (those win over merged ones, as keys written out do)."""
    pairs: list[tuple[Any, Any]] = []
    while not loader.check_event(yaml.MappingEndEvent):
        k = _compose(loader)
        pairs.append((k, _compose(loader)))
    end = loader.get_event()
    for k, _v in pairs:
        if isinstance(k, yaml.ScalarNode) and k.tag == _STR and k.value in cols:
            raise FixtureError(f"key {k.value!r} appears twice in one mapping (first on line {cols[k.value]})",
                               location=Location(file=shown, line=k.start_mark.line + 1,
                                                 column=k.start_mark.column + 1))
    node = yaml.MappingNode(loader.resolve(yaml.MappingNode, None, start.implicit), pairs, start.start_mark,
                            end.end_mark, flow_style=start.flow_style)
    for k, _v in pairs:  # before constructing: that folds merge keys into the mapping
        if isinstance(k, yaml.ScalarNode):
            cols.setdefault(k.value, k.start_mark.line + 1)
    rest = _construct(loader, node, shown)
    row = dict(values)
    for k, v in rest.items():
        row.setdefault(k, v)
    return row, (start.start_mark.line + 1, cols)


def _row_lines(node: yaml.Node) -> list[tuple[int | None, dict[str, int]]] | None:
    rows_node = None
    if isinstance(node, yaml.SequenceNode):
        rows_node = node
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "rows" and isinstance(v, yaml.SequenceNode):
                rows_node = v
    if rows_node is None:
        return None
    return [_row_location(item) for item in rows_node.value]


def _row_location(node: yaml.Node) -> tuple[int | None, dict[str, int]]:
    """The line a row starts on, and the line of each of its columns."""
    cols: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, _v in node.value:
            if isinstance(k, yaml.ScalarNode):
                cols[k.value] = k.start_mark.line + 1
    return node.start_mark.line + 1, cols


def _check_duplicate_keys(node: yaml.Node, shown: str) -> None:
    """PyYAML keeps the last of duplicated mapping keys silently; a fixture must not."""
    stack = [node]
    visited: set[int] = set()  # aliases share nodes (and may form cycles): look at each node once
    while stack:
        n = stack.pop()
        if id(n) in visited:
            continue
        visited.add(id(n))
        if isinstance(n, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen and n.tag != "!ref":
                        raise FixtureError(
                            f"key {k.value!r} appears twice in one mapping (first on line {seen[k.value]})",
                            location=Location(file=shown, line=k.start_mark.line + 1,
                                              column=k.start_mark.column + 1))
                    seen[k.value] = k.start_mark.line + 1
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
