"""Pure parts of `seedkit snapshot`: key choice, masking, rendering (no database)."""

from __future__ import annotations

import csv
import io

import pytest
from faker import Faker

from seedkit.db.catalog import Column, Table, TableName, UniqueKey
from seedkit.errors import ConfigError
from seedkit.snapshot import parse_limit, parse_where
from seedkit.snapshot.mask import Mask, default_provider
from seedkit.snapshot.plan import choose_key
from seedkit.snapshot.render import csv_line, dump, fix_text

T = TableName(None, "t")


def table(columns: list[Column], keys: list[UniqueKey]) -> Table:
    pk = next((k.columns for k in keys if k.primary), ())
    return Table(T, {c.name: c for c in columns}, primary_key=pk, unique_keys=tuple(keys))


def col(name: str, kind: str = "text", **kw) -> Column:
    return Column(name=name, type=kw.pop("type", kind), kind=kind, **kw)


def test_a_not_null_unique_key_is_preferred_to_a_serial_id() -> None:
    t = table([col("id", "int", autoincrement=True, nullable=False), col("email", nullable=False), col("nick")],
              [UniqueKey("t_pkey", ("id",), primary=True), UniqueKey("t_email", ("email",)),
               UniqueKey("t_nick", ("nick",))])
    choice = choose_key(t)
    assert choice is not None and choice.columns == ("email",) and not choice.surrogate


def test_a_natural_primary_key_wins_and_the_shortest_unique_key_next() -> None:
    t = table([col("code", nullable=False), col("a", nullable=False), col("b", nullable=False)],
              [UniqueKey("t_ab", ("a", "b")), UniqueKey("t_pkey", ("code",), primary=True)])
    assert choose_key(t).columns == ("code",)  # type: ignore[union-attr]
    t = table([col("id", "uuid", default="gen_random_uuid()", nullable=False), col("a", nullable=False),
               col("b", nullable=False), col("c", nullable=False)],
              [UniqueKey("t_pkey", ("id",), primary=True), UniqueKey("t_ab", ("a", "b")), UniqueKey("t_c", ("c",))])
    assert choose_key(t).columns == ("c",)  # type: ignore[union-attr]


def test_partial_and_nullable_unique_keys_are_not_keys() -> None:
    t = table([col("id", "int", autoincrement=True, nullable=False), col("email"), col("slug", nullable=False)],
              [UniqueKey("t_pkey", ("id",), primary=True), UniqueKey("t_email", ("email",)),
               UniqueKey("t_slug", ("slug",), partial=True)])
    choice = choose_key(t)
    assert choice is not None and choice.columns == ("id",) and choice.surrogate
    assert choose_key(table([col("x")], [])) is None


def test_a_key_override_is_checked() -> None:
    t = table([col("id", "int", autoincrement=True, nullable=False), col("email", nullable=False)],
              [UniqueKey("t_pkey", ("id",), primary=True), UniqueKey("t_email", ("email",))])
    assert choose_key(t, ["email"]).columns == ("email",)  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="unknown column 'emial'") as exc:
        choose_key(t, ["emial"])
    assert exc.value.hint == "did you mean 'email'?"
    t2 = table([col("a", nullable=False), col("b")], [UniqueKey("t_pkey", ("a",), primary=True)])
    with pytest.raises(ConfigError, match="not backed"):
        choose_key(t2, ["b"])


def mask(provider: str, *, unique: bool = False, salt: bytes = b"salt", max_length: int | None = None) -> Mask:
    return Mask(T, "c", provider=provider, unique=unique, max_length=max_length, _faker=Faker("en_US"), _salt=salt)


def test_masking_is_a_function_of_value_provider_and_salt_only() -> None:
    a, b = mask("email"), mask("email")
    values = [f"user{i}@corp.example" for i in range(50)]
    first = [a.apply(v) for v in values]
    assert [b.apply(v) for v in reversed(values)] == list(reversed(first))  # order does not matter
    assert mask("email", salt=b"other").apply(values[0]) != first[0]
    assert mask("email", unique=True).apply(values[0]) == first[0]  # e-mails mask alike in every column
    assert all(f != v and "@" in f for f, v in zip(first, values))
    assert a.apply(None) is None


def test_unique_columns_stay_unique_even_with_a_small_provider() -> None:
    m = mask("first_name", unique=True)
    out = [m.apply(str(i)) for i in range(3000)]
    assert len(set(out)) == 3000
    plain = mask("first_name")
    assert len({plain.apply(str(i)) for i in range(3000)}) < 3000  # what the token prevents


def test_masked_text_fits_varchar_and_keeps_its_token() -> None:
    m = mask("first_name", unique=True, max_length=12)
    out = [m.apply(str(i)) for i in range(500)]
    assert all(len(o) <= 12 for o in out) and len(set(out)) == 500
    e = mask("email", max_length=24)
    assert all(len(e.apply(f"x{i}")) <= 24 for i in range(50))


def test_mask_default_recognises_personal_columns_by_name() -> None:
    people = table([col("id", "int"), col("email"), col("name"), col("phone_number"), col("last_ip", "other"),
                    col("street_address"), col("zip"), col("created_at", "timestamp"), col("title")], [])
    found = {c: default_provider(people, people.columns[c]) for c in people.columns}
    assert found == {"id": None, "email": "email", "name": "name", "phone_number": "phone_number",
                     "last_ip": "ipv4", "street_address": "street_address", "zip": "postcode", "created_at": None,
                     "title": None}
    products = table([col("name"), col("sku")], [])
    assert default_provider(products, products.columns["name"]) is None  # a product name is not a person's


def test_csv_quoting_reads_back_with_the_csv_module() -> None:
    cells = ["plain", "comma, here", 'quote " here', "line\nbreak", "\\.", None, "  spaced  "]
    line = csv_line(cells)
    assert line == 'plain,"comma, here","quote "" here","line\nbreak","\\.",,  spaced  \n'
    back = next(csv.reader(io.StringIO(line, newline="")))
    assert back == [c if c is not None else "" for c in cells]


def test_yaml_values_are_json_in_flow_style() -> None:
    from decimal import Decimal

    assert dump({"a": [1, None, "é"], "b": Decimal("1.10")}) == '{"a": [1, null, "é"], "b": 1.10}'
    assert dump(float("nan")) == '"NaN"' and dump(True) == "true" and dump(b"\x00\xff") == '"\\\\x00ff"'
    assert fix_text('"a\x85b\u2028c"') == '"a\\u0085b\\u2028c"'


def test_where_and_limit_options_are_parsed_or_refused() -> None:
    assert parse_where(["orders: total > 10 AND note = 'a:b'"]) == [("orders", "total > 10 AND note = 'a:b'")]
    assert parse_limit(["orders=5"]) == [("orders", 5)]
    for bad in (["orders"], [": x"], ["t:  "]):
        with pytest.raises(Exception, match="expected"):
            parse_where(bad)
    for bad in (["orders"], ["orders=x"], ["orders=-1"]):
        with pytest.raises(Exception, match="expected"):
            parse_limit(bad)


def test_masked_dates_are_written_as_the_column_type_prints_them() -> None:
    import datetime as dt

    from seedkit.snapshot.render import conform

    day = dt.date(1950, 7, 6)
    assert conform(day, col("b", "timestamp")) == "1950-07-06 00:00:00"
    assert conform(day, col("b", "timestamptz")) == "1950-07-06 00:00:00+00"  # as PostgreSQL prints it in UTC
    assert conform(dt.datetime(1950, 7, 6, 1, 2, 3), col("b", "date")) == "1950-07-06"
    assert conform("text", col("b")) == "text"


def test_timestamps_with_a_postgresql_offset_load_on_every_python() -> None:
    """Snapshots write timestamptz as PostgreSQL prints it (+00); Python 3.10's fromisoformat needs +00:00."""
    import datetime as dt

    from seedkit.seed.convert import convert

    got = convert("2024-03-01 08:00:00.123456+00", col("b", "timestamptz"))
    assert got == dt.datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=dt.timezone.utc)
    assert convert("2024-03-01 10:00:00-05", col("b", "timestamptz")).utcoffset() == dt.timedelta(hours=-5)
    assert convert("2024-03-01 10:00:00", col("b", "timestamp")) == dt.datetime(2024, 3, 1, 10)
