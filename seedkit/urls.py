"""Database URLs: parsing, and masking passwords in anything we print."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from .errors import ConfigError

# scheme://user:PASSWORD@host — the password runs to the last "@" of the authority (an unencoded "@" in
# a password is what urlsplit accepts too), so nothing of it is left behind. One slash is enough: a URL
# that went through ``Path`` (e.g. given to an option that takes a file) comes back as ``scheme:/user…``.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://?[^:/?#@\s]*:)(?P<pw>[^/\s]*)(?P<at>@)(?=[^@/?#\s]*(?:[/?#\s]|$))")
# ``password=…`` as in libpq keyword strings and URL queries: an unquoted value runs to the next space
# (masking a trailing "&x=1" too is the safe side).
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|\S+)", re.IGNORECASE)

# Passwords seen in any URL this process parsed; masked wherever they show up, not only inside URLs.
_known_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def remember_secret(secret: str | None) -> None:
    """Mask ``secret`` in everything printed from now on (secrets shorter than 3 characters are not
    worth the noise of masking them wherever they occur)."""
    global _secret_pattern
    if secret and len(secret) >= 3 and secret not in _known_secrets:
        _known_secrets.add(secret)
        # A secret is masked as a whole token, not inside a longer word: the common local password
        # "postgres" must not turn "postgresql://" into "***ql://".
        alternatives = "|".join(re.escape(s) for s in sorted(_known_secrets, key=len, reverse=True))
        _secret_pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def forget_secrets() -> None:
    """Forget remembered secrets (one process serving several projects, e.g. a test session)."""
    global _secret_pattern
    _known_secrets.clear()
    _secret_pattern = None


def mask(text: str) -> str:
    """Hide passwords: in URLs, in ``password=…`` pairs, and any password seen earlier."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + "***" + m["at"], text)
    text = _KV_PASSWORD.sub(lambda m: m["head"] + "***", text)
    if _secret_pattern is not None:
        text = _secret_pattern.sub("***", text)
    return text


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL. ``str()`` is always masked; ``.raw`` is the real one."""

    raw: str
    dialect: str  # "postgresql" | "sqlite"
    path: Path | None = None  # SQLite file (None for :memory:)
    database: str | None = None  # PostgreSQL database name

    def __str__(self) -> str:
        return mask(self.raw)

    def __repr__(self) -> str:
        return f"DatabaseURL({str(self)!r})"

    @property
    def masked(self) -> str:
        return str(self)

    def with_database(self, name: str) -> DatabaseURL:
        """The same server with another database (PostgreSQL) or another file (SQLite)."""
        if self.dialect == "sqlite":
            assert self.path is not None
            return parse_url(f"sqlite:///{self.path.with_name(name)}")
        parts = urlsplit(self.raw)
        return parse_url(urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment)))


def parse_url(url: str, *, base_dir: Path | None = None, source: str | None = None) -> DatabaseURL:
    """Parse ``postgresql://…``, ``postgres://…`` or ``sqlite:///relative.db`` / ``sqlite:////abs.db``.

    Relative SQLite paths are relative to ``base_dir`` (the project root) when given.
    """
    where = f" (from {source})" if source else ""
    url = url.strip()
    if not url:
        raise ConfigError(f"the database URL is empty{where}",
                          hint="set database.url in seedkit.toml or DATABASE_URL in the environment or .env")
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        try:
            parts = urlsplit(url)  # the port is left to libpq, which accepts "h1:5432,h2:5433"
        except ValueError as exc:
            raise ConfigError(f"bad PostgreSQL URL {mask(url)!r}{where}: {exc}",
                              hint="the form is postgresql://user:password@host:port/database; "
                                   "percent-encode special characters in the password") from None
        if parts.password:
            remember_secret(unquote(parts.password))
            remember_secret(parts.password)
        for key, value in parse_qsl(parts.query):
            if key.lower() == "password":
                remember_secret(value)
        raw = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))
        database = unquote(parts.path.lstrip("/")) or None
        return DatabaseURL(raw=raw, dialect="postgresql", database=database)
    if scheme == "sqlite":
        rest = url[len("sqlite:"):]
        if rest in ("", "//", "///", "///:memory:", "//:memory:", ":memory:"):
            return DatabaseURL(raw="sqlite:///:memory:", dialect="sqlite", path=None)
        if not rest.startswith("///"):
            raise ConfigError(f"bad SQLite URL {mask(url)!r}{where}",
                              hint="use sqlite:///relative/path.db or sqlite:////absolute/path.db")
        file = rest[3:].split("?", 1)[0]
        path = Path(unquote(file))
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        path = path.resolve()
        return DatabaseURL(raw=f"sqlite:///{path}", dialect="sqlite", path=path)
    raise ConfigError(f"unsupported database URL {mask(url)!r}{where}",
                      hint="seedkit supports postgresql://… and sqlite:///… URLs")
