"""Faker built the lean way (seedkit/_faker.py) is Faker: each provider asked for its locale by looking at
that one folder, the transliteration table read on first need, and a faker of another shape left as it
is. The probe (tests/test_faker_import.py) runs in a fresh process each way."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.test_faker_import import probe


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
