"""Faker imported without its locale census (seedkit/_faker.py) is Faker: the same providers, the
same locales, the same values for the same seeds; and `seedkit run` imports it that way."""

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
print(json.dumps({
    "lean": type(faker.config.AVAILABLE_LOCALES).__name__ == "_Locales",
    "providers": faker.config.PROVIDERS == real_providers,
    "default": faker.config.DEFAULT_LOCALE,
    "member": [p in faker.config.AVAILABLE_LOCALES for p in probe],
    "member_real": [p in find_available_locales(real_providers) for p in probe],
    "all": list(faker.config.AVAILABLE_LOCALES) == find_available_locales(real_providers),
    "values": values,
}))
"""


def probe(census: bool) -> dict:
    env = {"SEEDKIT_FAKER_CENSUS": "1"} if census else {}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, **env})
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
