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


def test_faker_without_its_folder_listings_is_faker() -> None:
    """Factory's "has this provider this locale?" looks at one folder, the transliteration table is read
    on first need: each provider gets the same locale (its fallback where it lacks one), the same values
    for many seeds, locales and providers, the same errors for unknown locales."""
    lean, full = probe(census=False), probe(census=True)
    assert lean["lean_factory"] and not full["lean_factory"], "the one-folder listing was not used"
    assert lean["lean_decode"] == "faker.decode" and full["lean_decode"] is None, "the lazy table was not used"
    assert not lean["table_read_for_ascii"] and full["table_read_for_ascii"]
    for path, (asked, real, whole) in lean["listing"].items():
        assert asked == real and whole, path
    assert lean["listing"] == full["listing"]
    assert lean["langs"] == full["langs"]
    fallbacks = {p for p, lang in lean["langs"]["fil_PH"] if lang not in (None, "fil_PH")}
    assert fallbacks, "fil_PH is meant to lack some providers: each falls back to its default locale"
    assert lean["many"] == full["many"]
    assert lean["errors"] == full["errors"] and len(lean["errors"]) == 3
    assert lean["sample"] == full["sample"] and lean["unidecode"] == full["unidecode"]
    assert lean["codes"] == full["codes"]


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


def test_a_faker_of_another_shape_is_left_as_it_is(tmp_path) -> None:
    """A faker whose factory.py uses list_module otherwise, or whose decode module is not the known one,
    runs as it is (its own listing, its own table), with the same values."""
    import os
    from pathlib import Path

    import faker

    real = Path(faker.__file__).parent
    copy = tmp_path / "faker"
    copy.mkdir()
    for entry in real.iterdir():
        if entry.name not in ("factory.py", "decode", "__pycache__"):
            os.symlink(entry, copy / entry.name)
    (copy / "factory.py").write_text((real / "factory.py").read_text(encoding="utf-8")
                                     + "\n_ALSO = list_module  # another use\n", encoding="utf-8")
    (copy / "decode").mkdir()
    os.symlink(real / "decode" / "codes.py", copy / "decode" / "codes.py")
    (copy / "decode" / "__init__.py").write_text((real / "decode" / "__init__.py").read_text(encoding="utf-8")
                                                 + "# another\n", encoding="utf-8")
    code = ("import sys, json\nfrom seedkit._faker import import_faker\nF = import_faker()\n"
            "import faker, faker.factory\nfrom faker.utils.loading import list_module\nf = F('de_DE')\n"
            "f.seed_instance(5)\nv = [f.email() for _ in range(20)]\n"
            "print(json.dumps([faker.__file__, faker.factory.list_module is list_module,\n"
            "                  hasattr(sys.modules['faker.decode'], '__getattr__'), v]))\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    where, own_listing, stand_in, values = json.loads(out.stdout)
    assert where == str(copy / "__init__.py")
    assert own_listing and not stand_in
    (tmp_path / "elsewhere").mkdir()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path / "elsewhere")
    assert json.loads(out.stdout)[1:] == [False, True, values]  # the installed faker: the lean way, same values
