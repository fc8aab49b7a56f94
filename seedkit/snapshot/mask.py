"""Deterministic masking: the same value, provider and salt give the same output in every table and run.

Each value seeds its own Faker instance from ``HMAC-SHA256(salt, provider, value)``, so the output
depends on nothing else (not the row, the table or the order). Unique columns get a token from the
same HMAC appended (inside the local part for e-mail addresses, which always carry it), so distinct
inputs stay distinct; a collision anyway is detected and refused, never written.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from .._record import dataclass
from ..db.catalog import Catalog, Column, Table, TableName, UnknownObject, did_you_mean
from ..errors import ConfigError, SeedkitError

NULL = "null"


@dataclass
class Mask:
    """How one column is masked: a Faker provider, NULL, or a constant."""

    table: TableName
    column: str
    provider: str | None = None  # a Faker method name, e.g. "email"
    constant: Any = None
    null: bool = False
    unique: bool = False
    source: str = "config"  # "config" | "default" (--mask-default)
    max_length: int | None = None  # varchar(n)/char(n): masked text is cut to fit
    _faker: Any = field(default=None, repr=False)
    _salt: bytes = field(default=b"", repr=False)
    _seen: dict[Any, str] = field(default_factory=dict, repr=False)  # unique columns: output → input

    @property
    def description(self) -> str:
        if self.null:
            return NULL
        if self.provider is None:
            return f"constant {self.constant!r}"
        return self.provider + (" (unique)" if self.unique else "")

    def apply(self, value: str | None) -> Any:
        """The masked value for ``value`` (its text form); NULL stays NULL."""
        if value is None or self.null:
            return None
        if self.provider is None:
            return self.constant
        digest = hmac.new(self._salt, f"{self.provider}\x00{value}".encode(), hashlib.sha256).digest()
        fake = self._faker
        fake.seed_instance(int.from_bytes(digest[:8], "big"))
        out = getattr(fake, self.provider)()
        token = base64.b32encode(digest[8:16]).decode().rstrip("=").lower()[:10]
        if isinstance(out, str) and "email" in self.provider and "@" in out:
            local, _, domain = out.partition("@")
            out = f"{local}.{token}@{domain}"  # always: the same address masks the same way in every column
        elif self.unique:
            out = f"{out}-{token}" if isinstance(out, str) else f"{_text(out)}-{token}"
        if self.max_length is not None and isinstance(out, str) and len(out) > self.max_length:
            at = out.rfind(token)
            if at >= 0:  # keep the token (what makes it unique) and what follows it; cut what comes before
                keep = out[at:]
                out = (out[: max(0, self.max_length - len(keep))] + keep)[-self.max_length:]
            else:
                out = out[: self.max_length]
        if self.unique:
            first = self._seen.setdefault(out, value)
            if first != value:
                raise SeedkitError(f"masking {self.table}.{self.column} gave the same value for two different "
                                   "inputs; nothing was written",
                                   hint="use a provider with more distinct values, or another salt")
        return out


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, (dt.date, dt.time)) else str(value)


# Column names --mask-default recognises (whole name, lower case) → Faker provider.
_DEFAULTS: list[tuple[re.Pattern[str], str]] = [(re.compile(p), prov) for p, prov in [
    (r"^(.*_)?e_?mail(_address)?$", "email"),
    (r"^(.*_)?(phone|mobile|cell|fax|telephone)(_?(number|no))?$", "phone_number"),
    (r"^(first|given|fore)_?name$", "first_name"),
    (r"^(last|family|sur)_?name$|^surname$", "last_name"),
    (r"^(full|contact|display|person|customer|employee)_?name$", "name"),
    (r"^(user_?name|login)$", "user_name"),
    (r"^(.*_)?(street_?)?address(_?line)?_?[12]?$|^street$", "street_address"),
    (r"^(.*_)?(postal_?code|zip_?code|zip|post_?code)$", "postcode"),
    (r"^(.*_)?ip(_?addr(ess)?)?$", "ipv4"),
    (r"^(ssn|social_security_number|national_id)$", "ssn"),
    (r"^(iban|bank_account(_number)?)$", "iban"),
    (r"^(credit_?card(_number)?|card_number|cc_number)$", "credit_card_number"),
    (r"^(birth_?date|date_of_birth|dob|birthday)$", "date_of_birth"),
]]
_PERSON_HINT = re.compile(r"e_?mail")  # a bare "name" is masked only in tables that also hold an e-mail


def default_provider(table: Table, column: Column) -> str | None:
    name = column.name.lower()
    for pattern, provider in _DEFAULTS:
        if pattern.match(name):
            if provider == "date_of_birth" and column.kind not in ("date", "text", "timestamp"):
                return None
            if provider == "ipv4" and column.kind not in ("text", "other"):
                return None
            if provider not in ("date_of_birth",) and column.kind not in ("text", "other"):
                return None
            return provider
    if name == "name" and column.kind == "text" and any(_PERSON_HINT.search(c.lower()) for c in table.columns):
        return "name"
    return None


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not ({"constant", "provider"} & set(value)):
            out += _flatten(value, name + ".")
        else:
            out.append((name, value))
    return out


def build_masks(config: Mapping[str, Any], catalog: Catalog, *, salt: str, locale: str,
                defaults_for: list[Table] | None = None,
                where: str = "[snapshot.mask]") -> dict[tuple[TableName, str], Mask]:
    """Resolve ``[snapshot.mask]`` (and, with ``defaults_for``, masks chosen by column name)."""
    from .._faker import import_faker  # faker without its locale census at import

    fake = import_faker()(locale)
    masks: dict[tuple[TableName, str], Mask] = {}

    def unique(table: Table, column: str) -> bool:
        return any(column in u.columns for u in table.unique_keys)

    for dotted, spec in _flatten(config):
        tname, _, cname = dotted.rpartition(".")
        if not tname:
            raise ConfigError(f"{where}: {dotted!r} must be table.column", hint='e.g. "users.email" = "email"')
        try:
            table = catalog.get(tname)
        except UnknownObject as exc:
            raise ConfigError(f"{where} {dotted!r}: {exc.message}", hint=exc.hint) from None
        if cname not in table.columns:
            close = did_you_mean(cname, list(table.columns))
            raise ConfigError(f"{where} {dotted!r}: unknown column {cname!r} of {table.name}",
                              hint=f"did you mean {', '.join(map(repr, close))}?" if close else None)
        m = Mask(table.name, cname, unique=unique(table, cname), max_length=_length(table.columns[cname]),
                 _faker=fake, _salt=salt.encode())
        if spec == NULL or spec is None:
            m.null = True
        elif isinstance(spec, str):
            m.provider = spec
        elif isinstance(spec, dict) and "constant" in spec and set(spec) == {"constant"}:
            m.constant = spec["constant"]
        elif isinstance(spec, dict) and set(spec) == {"provider"} and isinstance(spec["provider"], str):
            m.provider = spec["provider"]
        else:
            raise ConfigError(f"{where} {dotted!r}: expected a Faker provider name, \"null\" or "
                              f"{{constant = …}}, got {spec!r}")
        _check(m, table, fake, where)
        masks[(table.name, cname)] = m
    for table in defaults_for or ():
        for column in table.columns.values():
            if (table.name, column.name) in masks or column.generated:
                continue
            if any(column.name in fk.columns for fk in table.foreign_keys):
                continue  # a reference follows its parent's mask
            provider = default_provider(table, column)
            if provider:
                m = Mask(table.name, column.name, provider=provider, unique=unique(table, column.name),
                         max_length=_length(column), source="default", _faker=fake, _salt=salt.encode())
                masks[(table.name, column.name)] = m
    return masks


_LENGTH = re.compile(r"^(?:character varying|varchar|character|char|nvarchar|nchar)\s*\((\d+)\)", re.I)


def _length(column: Column) -> int | None:
    m = _LENGTH.match(column.type.strip())
    return int(m[1]) if m else None


def _check(m: Mask, table: Table, fake: Any, where: str) -> None:
    column = table.columns[m.column]
    name = f"{table.name}.{m.column}"
    if m.provider is not None and (m.provider.startswith("_") or not callable(getattr(fake, m.provider, None))):
        choices = [n for n in dir(fake) if not n.startswith("_")]
        close = did_you_mean(m.provider, choices)
        raise ConfigError(f"{where} {name!r}: unknown Faker provider {m.provider!r}",
                          hint=f"did you mean {', '.join(map(repr, close))}?" if close else
                          "see https://faker.readthedocs.io for the provider names")
    if m.null and not column.nullable:
        raise ConfigError(f"{where} {name!r}: the column is NOT NULL and cannot be masked with null",
                          hint="mask it with a Faker provider or a constant")
    if m.provider is None and not m.null and m.unique:
        raise ConfigError(f"{where} {name!r}: a constant cannot keep a unique column unique",
                          hint="mask it with a Faker provider")
