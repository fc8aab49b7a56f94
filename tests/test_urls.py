"""Database URLs: the accepted forms, and passwords masked in everything printed."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from seedkit import urls
from seedkit.errors import ConfigError
from seedkit.urls import mask, parse_url, remember_secret


@pytest.fixture(autouse=True)
def _own_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets remembered here (such as "postgres") must not mask other tests' output."""
    monkeypatch.setattr(urls, "_known_secrets", set(urls._known_secrets))
    monkeypatch.setattr(urls, "_secret_pattern", urls._secret_pattern)


def secret() -> str:
    """A password no other test has made this process remember."""
    return "pw" + uuid.uuid4().hex[:10]


@pytest.mark.parametrize("url", [
    "postgresql://app:pw@db.example.com:5433/app_dev?sslmode=require",
    "postgres://app:pw@db.example.com:5433/app_dev?sslmode=require",
    "postgresql+psycopg://app:pw@db.example.com:5433/app_dev?sslmode=require",
])
def test_postgres_forms_normalise_to_postgresql(url: str) -> None:
    parsed = parse_url(url)
    assert parsed.dialect == "postgresql"
    assert parsed.database == "app_dev"
    assert parsed.raw == "postgresql://app:pw@db.example.com:5433/app_dev?sslmode=require"
    assert parsed.path is None


def test_postgres_without_database_or_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGDATABASE", raising=False)
    monkeypatch.setenv("PGUSER", "app_user")
    assert parse_url("postgresql://localhost").database == "app_user"  # libpq's default: the user name
    sock = parse_url("postgresql:///app?host=/var/run/postgresql")
    assert sock.database == "app" and sock.dialect == "postgresql"


def test_postgres_database_name_is_unquoted() -> None:
    assert parse_url("postgresql://h/my%20db").database == "my db"


def test_with_database_keeps_server_credentials_and_query() -> None:
    url = parse_url("postgres://u:pw@h:6000/one?sslmode=disable").with_database("two")
    assert url.raw == "postgresql://u:pw@h:6000/two?sslmode=disable"
    assert url.database == "two"


def test_sqlite_relative_path_is_resolved_against_base_dir(tmp_path: Path) -> None:
    url = parse_url("sqlite:///data/app.db", base_dir=tmp_path)
    assert url.dialect == "sqlite"
    assert url.path == (tmp_path / "data" / "app.db").resolve()
    assert url.raw == f"sqlite:///{url.path}"


def test_sqlite_relative_path_defaults_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_url("sqlite:///app.db").path == (tmp_path / "app.db").resolve()


def test_sqlite_absolute_path(tmp_path: Path) -> None:
    url = parse_url(f"sqlite:///{tmp_path}/abs.db", base_dir=Path("/somewhere/else"))
    assert str(tmp_path).startswith("/")  # so the URL above has four slashes
    assert url.path == (tmp_path / "abs.db").resolve()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite://:memory:", "sqlite:"])
def test_sqlite_memory(url: str) -> None:
    parsed = parse_url(url)
    assert parsed.dialect == "sqlite" and parsed.path is None and parsed.raw == "sqlite:///:memory:"


def test_sqlite_with_database_names_a_sibling_file(tmp_path: Path) -> None:
    url = parse_url("sqlite:///app.db", base_dir=tmp_path).with_database("app_test.db")
    assert url.path == (tmp_path / "app_test.db").resolve()


@pytest.mark.parametrize(("url", "words"), [
    ("", "empty"),
    ("   ", "empty"),
    ("mysql://u:pw@h/db", "unsupported"),
    ("sqlite://relative.db", "bad SQLite URL"),
    ("postgresql://u:pw@[::1/db", "bad PostgreSQL URL"),
])
def test_bad_urls_are_config_errors(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url(url, source="database.url in seedkit.toml")
    assert words in str(info.value)
    assert "database.url in seedkit.toml" in str(info.value)
    assert info.value.hint
    assert info.value.exit_code == 2


def test_bad_url_error_is_masked() -> None:
    pw = secret()
    with pytest.raises(ConfigError) as info:
        parse_url(f"mysql://user:{pw}@h/db")
    assert pw not in str(info.value)
    assert "mysql://user:***@h/db" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_url(f"postgresql://user:{pw}@[::1/db")
    assert pw not in str(info.value)


# --- masking -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://app:s3cr3t@h:5432/db", "postgresql://app:***@h:5432/db"),
    ("connect to postgres://app:s3cr3t@h/db failed", "connect to postgres://app:***@h/db failed"),
    ("'postgresql://:s3cr3t@h/db'", "'postgresql://:***@h/db'"),
    ("postgresql://app:s3:cr3t@h", "postgresql://app:***@h"),
    ("postgresql://app:p@ss@h/db", "postgresql://app:***@h/db"),  # an unencoded @ in the password
    ("postgresql://app:p%40ss@h/db?x=a@b", "postgresql://app:***@h/db?x=a@b"),
    ("a postgresql://app:one@h/a and postgresql://app:two@h/b",
     "a postgresql://app:***@h/a and postgresql://app:***@h/b"),
    ("host=h password=s3cr3t user=app", "host=h password=*** user=app"),
    ("host=h password = 'two words' user=app", "host=h password = *** user=app"),
    ('{"password": 1, "dsn": "password=s3cr3t"}', '{"password": 1, "dsn": "password=***"}'),  # still JSON
    ('{"dsn": "password=s3\\"cr3t x"}', '{"dsn": "password=*** x"}'),
    ("postgresql://app@h/db?sslmode=require&PASSWORD=s3cr3t", "postgresql://app@h/db?sslmode=require&PASSWORD=***"),
])
def test_mask(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", [
    "postgresql://app@h:5432/db",
    "sqlite:////tmp/app.db",
    "mail app@example.com at https://example.com/x",
    "no secrets here",
])
def test_mask_leaves_text_without_passwords_alone(text: str) -> None:
    assert mask(text) == text


def test_parsed_password_is_masked_anywhere() -> None:
    pw = secret()
    parse_url(f"postgresql://app:{pw}@h/db")
    assert mask(f'FATAL: something echoed "{pw}" back') == 'FATAL: something echoed "***" back'


def test_percent_encoded_password_is_remembered_in_both_forms() -> None:
    pw = secret() + "@/:"
    encoded = pw.replace("@", "%40").replace("/", "%2F").replace(":", "%3A")
    url = parse_url(f"postgresql://app:{encoded}@h/db")
    assert pw not in mask(f"raw {pw} here") and encoded not in mask(f"raw {encoded} here")
    assert encoded not in str(url) and encoded not in repr(url) and pw not in url.masked


def test_query_password_is_remembered() -> None:
    pw = secret()
    url = parse_url(f"postgresql://app@h/db?password={pw}")
    assert pw not in str(url)
    assert mask(f"echo {pw}") == "echo ***"


def test_remembered_secret_is_masked_as_a_whole_token_only() -> None:
    remember_secret("postgres")  # the usual local password: must not mangle the rest of the output
    assert mask("postgresql://postgres:postgres@localhost/app") == "postgresql://***:***@localhost/app"
    assert mask("server: postgresql 16.2") == "server: postgresql 16.2"
    assert mask("user postgres, role postgres_ro") == "user ***, role ***_ro"


def test_short_secrets_are_not_remembered() -> None:
    remember_secret("ab")
    remember_secret(None)
    remember_secret("")
    assert mask("tab ab abc") == "tab ab abc"


def test_url_str_and_repr_are_masked_raw_is_not() -> None:
    pw = secret()
    url = parse_url(f"postgresql://app:{pw}@h/db")
    assert pw not in str(url) and pw not in repr(url) and pw not in f"{url}" and pw not in url.masked
    assert pw in url.raw


# --- every form libpq accepts -------------------------------------------------------------------

@pytest.mark.parametrize(("url", "database"), [
    ("postgresql:///mydb", "mydb"),
    ("postgresql://app@/mydb", "mydb"),
    ("postgresql:///mydb?host=/var/run/postgresql", "mydb"),
    ("postgresql://%2Fvar%2Frun%2Fpostgresql:5433/mydb", "mydb"),
    ("postgresql://h1:5432,h2:5433/mydb?target_session_attrs=read-write", "mydb"),
    ("postgresql://[::1]:5432/mydb", "mydb"),
    ("postgresql://h/?dbname=mydb", "mydb"),
    ("host=/tmp port=5433 dbname=mydb", "mydb"),
    ("dbname = 'my db' user=app", "my db"),
])
def test_libpq_forms_are_accepted_as_written(url: str, database: str) -> None:
    parsed = parse_url(url)
    assert parsed.dialect == "postgresql" and parsed.database == database
    assert parsed.raw == url  # passed on unchanged (libpq reads it, not seedkit)


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql:///one", "postgresql:///two"),
    ("postgresql://app@/one?host=/tmp&port=5433", "postgresql://app@/two?host=/tmp&port=5433"),
    ("postgresql://%2Ftmp:5433/one", "postgresql://%2Ftmp:5433/two"),
    ("postgresql://h1:5,h2:6/one", "postgresql://h1:5,h2:6/two"),
    ("postgresql://u:p%40ss@[::1]:5/one?sslmode=disable", "postgresql://u:p%40ss@[::1]:5/two?sslmode=disable"),
    ("postgresql://u:pa:ss@h", "postgresql://u:pa:ss@h/two"),
    ("postgresql://h?dbname=one&port=5", "postgresql://h/two?port=5"),  # a dbname parameter would win
    ("postgresql:///?service=app", "postgresql:///two?service=app"),
])
def test_with_database_replaces_only_the_database(url: str, expected: str) -> None:
    assert parse_url(url).with_database("two").raw == expected


def test_with_database_of_a_keyword_string() -> None:
    url = parse_url("host=/tmp port=5433 dbname=one password=s3cr3t").with_database("t w'o")
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(url.raw) == {"host": "/tmp", "port": "5433", "dbname": "t w'o", "password": "s3cr3t"}
    assert url.database == "t w'o" and "s3cr3t" not in str(url)


@pytest.mark.parametrize("text", [
    "postgresql://app:p@ss@h/db",  # an unencoded "@"
    "postgresql://app:pa/ss@h/db",  # an unencoded "/": libpq would read host "app", port "pa"
    "postgresql://app:p/a@ss@h:5/db?x=1",
    "postgresql://app:p/a?ss@h/db",
    "postgresql://app:p@a?s@s@h/db",
    "postgresql://app:1234/ss@h/db",
])
def test_mask_hides_passwords_with_unencoded_characters(text: str) -> None:
    assert mask(text).startswith("postgresql://app:***@h")
    for piece in ("pa", "ss", "1234"):
        assert piece not in mask(text).replace("postgresql", "")


@pytest.mark.parametrize("url", [
    "postgresql://app:Qq@Zz@h/db", "postgresql://app:Qq/Zz@h/db", "postgresql://app:Qq%zzZz@h/db",
    "postgresql://app:Qq/Zz?Xx@h/db", "postgresql://app:Qq@Zz?Xx@Yy@h/db", "postgresql://app:Qq@Zz/Xx@h/db",
])
def test_urls_libpq_would_read_differently_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url(url, source="DATABASE_URL")
    shown = str(info.value) + str(info.value.hint)
    assert "%40" in shown and "%2F" in shown and "DATABASE_URL" in shown
    for piece in ("Qq", "Zz", "Xx", "Yy"):
        assert piece not in shown


def test_pgpassword_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    pw = secret()
    monkeypatch.setenv("PGPASSWORD", pw)
    parse_url("postgresql:///db")
    assert mask(f"said {pw}") == "said ***"


def test_json_escaped_secret_is_masked() -> None:
    pw = secret() + '"\\x'
    parse_url(f"postgresql://app:{quote(pw, safe='')}@h/db")
    import json

    text = json.dumps({"error": f"bad {pw} here"})
    assert json.loads(mask(text)) == {"error": "bad *** here"}
