"""Faker imported without its locale census (seedkit/_faker.py) is Faker: the same providers, the
same locales, the same locale for each provider (its fallback where it lacks one), the same errors,
the same values for the same seeds; and `seedkit run` imports it that way."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, os, sys
from datetime import datetime
from seedkit._faker import import_faker
Faker = import_faker()
import faker, faker.config
decode = sys.modules.get("faker.decode")
ascii_only = Faker("en_US")
ascii_only.seed_instance(7)
sample = [ascii_only.email() for _ in range(50)]  # ASCII names: the table is not needed
table_read = "faker.decode.codes" in sys.modules
from faker.utils.loading import find_available_locales, find_available_providers
from importlib import import_module
real_providers = find_available_providers([import_module("faker.providers")])
values = {}
for locale in ("en_US", "de_DE", "ja_JP", "fr_FR", "pt_BR"):
    fake = Faker(locale, use_weighting=False)
    fake.seed_instance(1234)
    values[locale] = [fake.name(), fake.email(), fake.address(), fake.sentence(), fake.iban(), fake.phone_number(),
                      str(fake.date_time_between(datetime(2000, 1, 1), datetime(2020, 1, 1)))]
probe = ["en_US", "de", "de_DE", "xx_XX", "en-US", "zh_TW", "", "fil_PH", "../x", 5]
import faker.factory
from faker.utils.loading import list_module
listing = {}  # what Factory asks each localized provider: is this locale one of your folders?
names = ["en_US", "de_DE", "fil_PH", "tl_PH", "xx_XX", "", "__pycache__", "__init__", "en_US.py", "../en_US",
         "EN_US", "en", 5, None]
for path in real_providers:
    module = import_module(path)
    if getattr(module, "localized", False):
        asked = faker.factory.list_module(module)
        listing[path] = [[n in asked for n in names], [n in list_module(module) for n in names],
                         list(asked) == list_module(module)]
METHODS = ["name", "email", "user_name", "domain_name", "slug", "company", "job", "address", "phone_number",
           "color_name", "currency_code", "file_path", "isbn13", "license_plate", "paragraph", "pystr", "ssn",
           "user_agent", "emoji", "latitude", "bban", "credit_card_number", "date_of_birth", "postcode",
           "company_email", "free_email", "url", "ipv4", "catch_phrase", "city", "street_name"]
langs, errors, many = {}, {}, {}
for locale in ("en_US", "de", "en-GB", "fil_PH", "ja_JP", "ru_RU", "zh_CN", "el_GR", "tl_PH", "hy_AM"):
    fake = Faker(locale, use_weighting=False)
    langs[locale] = sorted((p.__provider__, p.__lang__) for p in fake.providers)
    rows = []
    for seed in range(25):
        fake.seed_instance(seed)
        row = []
        for method in METHODS:
            try:
                row.append(str(getattr(fake, method)()))
            except Exception as exc:  # a locale without it: the same error both ways
                row.append(f"{type(exc).__name__}: {exc}")
        rows.append(row)
    many[locale] = rows
for locale in ("xx_XX", "zz", "../en_US"):
    try:
        Faker(locale)
    except Exception as exc:
        errors[locale] = f"{type(exc).__name__}: {exc}"
from faker.decode import unidecode
texts = ["Ærøskøbing", "Jürgen Straße", "東京都", "Москва", "naïve café", "plain", "", "\U0001f600x"]
print(json.dumps({
    "lean": type(faker.config.AVAILABLE_LOCALES).__name__ == "_Locales",
    "providers": faker.config.PROVIDERS == real_providers,
    "default": faker.config.DEFAULT_LOCALE,
    "member": [p in faker.config.AVAILABLE_LOCALES for p in probe],
    "member_real": [p in find_available_locales(real_providers) for p in probe],
    "all": list(faker.config.AVAILABLE_LOCALES) == find_available_locales(real_providers),
    "values": values,
    "lean_factory": faker.factory.list_module.__module__ == "seedkit._faker",
    "lean_decode": decode.__getattr__.__module__ if hasattr(decode, "__getattr__") else None,
    "table_read_for_ascii": table_read,
    "listing": listing,
    "langs": langs,
    "many": many,
    "errors": errors,
    "sample": sample,
    "unidecode": [unidecode(t) for t in texts],
    "codes": [len(faker.decode.codes), faker.decode.codes[0xe9], type(faker.decode.codes).__name__],
}))
"""


def probe(census: bool) -> dict:
    env = {"SEEDKIT_FAKER_CENSUS": "1"} if census else {}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env={**__import__("os").environ, **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_faker_without_its_census_is_faker() -> None:
    lean, full = probe(census=False), probe(census=True)
    assert lean["lean"] and not full["lean"], "the stand-in config was not used (or used when told not to)"
    assert lean["providers"] and lean["all"]
    assert lean["member"] == lean["member_real"]
    assert lean["default"] == full["default"] == "en_US"
    assert lean["values"] == full["values"]  # every generated value is Faker's own


def test_a_run_imports_faker_without_the_census(tmp_path) -> None:
    (tmp_path / "seeds" / "dev").mkdir(parents=True)
    (tmp_path / "seedkit.toml").write_text('[envs.dev]\ninclude = ["dev"]\n', encoding="utf-8")
    (tmp_path / "seeds" / "dev" / "people.py").write_text(
        "from seedkit import fixture\n\n\n@fixture('people', key=['n'], count=3)\n"
        "def people(fake, n):\n    return {'n': n, 'name': fake.name()}\n", encoding="utf-8")
    code = ("from seedkit import load_config\nfrom seedkit.seed import load_fixtures\n"
            "(fx,) = load_fixtures(load_config(), ['dev'])\n"
            "rows = [r for _, r in fx.numbered()]\n"
            "import faker.config\nprint(type(faker.config.AVAILABLE_LOCALES).__name__, len(rows))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["_Locales", "3"]
