"""Database URLs: parsing, and masking passwords in anything we print.

PostgreSQL connection strings are parsed by libpq itself (through psycopg's ``conninfo_to_dict``), so
every form psql accepts is accepted here, read exactly as libpq reads it: ``postgresql:///db`` (the
local socket), ``postgresql://user@/db``, ``?host=/socket/dir``, ``?service=name``, a percent-encoded
socket host, several hosts, ``key=value`` strings; what the string leaves out comes from the ``PG*``
environment variables, the service file and the password file when connecting, as for psql. The
string is passed on unchanged.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from ._record import dataclass
from .errors import ConfigError

# scheme://… up to the next white space or quote: one URL in some text. One slash is enough: a URL
# that went through ``Path`` (e.g. given to an option that takes a file) comes back as ``scheme:/user…``.
_URL = re.compile(r"\b(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*):(?P<slashes>//?)(?P<rest>[^\s'\"`<>]*)")
# ``password=…`` as in libpq keyword strings and URL queries: an unquoted value runs to the next space
# (masking a trailing "&x=1" too is the safe side), or to a quote that is not escaped (libpq wants a
# quote in a value escaped), so a ``"dsn": "password=…"`` inside JSON stays JSON.
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'?|\"[^\"]*\"|(?:[^\s\"'\\]|\\.)+)",
                          re.IGNORECASE)
# a libpq ``key=value`` connection string rather than a URL
_KEYWORDS = re.compile(r"\s*[A-Za-z_]+\s*=")

# Passwords seen in any URL this process parsed; masked wherever they show up, not only inside URLs.
_known_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def remember_secret(secret: str | None) -> None:
    """Mask ``secret`` in everything printed from now on (secrets shorter than 3 characters are not
    worth the noise of masking them wherever they occur). Its JSON-escaped spelling is masked too."""
    global _secret_pattern
    if not secret or len(secret) < 3:
        return
    forms = {secret, json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(secret)[1:-1]}
    if forms <= _known_secrets:
        return
    _known_secrets.update(forms)
    # A secret is masked as a whole token, not inside a longer word: the common local password
    # "postgres" must not turn "postgresql://" into "***ql://".
    alternatives = "|".join(re.escape(s) for s in sorted(_known_secrets, key=len, reverse=True))
    _secret_pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def forget_secrets() -> None:
    """Forget remembered secrets (one process serving several projects, e.g. a test session)."""
    global _secret_pattern
    _known_secrets.clear()
    _secret_pattern = None


# a URL query: "a=1&b=2"
_QUERY = re.compile(r"[^=&]+=[^&]*(?:&[^=&]+=[^&]*)*")
# a libpq host list as the authority of a URL: "h", "h:5432", "[::1]:5432", "%2Ftmp", "h1:5,h2:6"
_HOST_LIST = re.compile(r"(?:\[[^\]]*\]|[^:,\[\]@]*)(?::\d*)?(?:,(?:\[[^\]]*\]|[^:,\[\]@]*)(?::\d*)?)*")


def _password_span(rest: str) -> tuple[int, int] | None:
    """Where the password is in ``rest`` (a URL after ``scheme://``) as its author meant it, even when
    it holds an unencoded ``@``, ``/``, ``?`` or ``:``: from the first ``:`` of the user part to the
    last ``@`` before the query (the first ``?`` after the first ``@``). None when there is none."""
    colon, first_at = rest.find(":"), rest.find("@")
    if colon < 0 or first_at < 0 or colon > first_at:
        return None  # no "@" at all, or the ":" is a port after "user@host"
    authority, _, tail = rest.partition("/") if "/" in rest.partition("?")[0] else rest.partition("?")
    if "@" not in authority and _HOST_LIST.fullmatch(authority):
        path, _, query = tail.partition("?")
        if "@" not in path and (not query or _QUERY.fullmatch(query)):
            return None  # "host:port/db?x=a@b": the "@" belongs to the query
    query = rest.find("?", first_at)
    if query >= 0 and not _QUERY.fullmatch(rest[query + 1:]):
        query = -1  # "?c@d@host/db": not a query, the "?" is part of the password
    end = rest.rfind("@", 0, query if query >= 0 else len(rest))
    return colon + 1, end


def _overlaps(fragment: str, secret: str) -> bool:
    """Whether ``fragment`` (quoted back by libpq) shows a piece of ``secret``."""
    if not fragment:
        return False
    if fragment in secret:
        return True
    from difflib import SequenceMatcher

    match = SequenceMatcher(None, fragment, secret, autojunk=False).find_longest_match()
    return match.size >= min(2, len(secret))


def _mask_url(m: re.Match[str]) -> str:
    rest = m["rest"]
    span = _password_span(rest)
    if span is None:
        return m[0]
    start, end = span
    return f"{m['scheme']}:{m['slashes']}{rest[:start]}***{rest[end:]}"


def mask(text: str) -> str:
    """Hide passwords: in URLs, in ``password=…`` pairs, and any password seen earlier."""
    if _secret_pattern is not None:  # first: the patterns below could cut a known password in pieces
        text = _secret_pattern.sub("***", text)
    text = _URL.sub(_mask_url, text)
    return _KV_PASSWORD.sub(lambda m: m["head"] + "***", text)


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL. ``str()`` is always masked; ``.raw`` is the real one.

    For PostgreSQL, ``database`` is the database libpq connects to: the one the string names, else
    the service's, else ``PGDATABASE``, else the user name (libpq's own order).
    """

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
        if not _is_url(self.raw):
            from psycopg.conninfo import make_conninfo

            return parse_url(make_conninfo(self.raw, dbname=name))
        return parse_url(_replace_url_database(self.raw, name))


def _is_url(text: str) -> bool:
    lowered = text.lower()
    return lowered.startswith(("postgresql://", "postgres://"))


def _replace_url_database(url: str, name: str) -> str:
    """``url`` naming database ``name``, split as libpq splits it: the user part ends at the first
    ``@`` before any ``/``, the host list at the next ``/`` or ``?``; a ``dbname`` query parameter
    (which would win over the path) is dropped."""
    scheme, _, rest = url.partition("://")
    stop = re.search(r"[@/]", rest)
    host_start = stop.end() if stop and stop[0] == "@" else 0
    found = re.search(r"[/?]", rest[host_start:])
    path_start = host_start + found.start() if found else len(rest)
    query_start = rest.find("?", path_start)
    query = rest[query_start + 1:] if query_start >= 0 else ""
    kept = [p for p in query.split("&") if p and unquote(p.split("=", 1)[0]).lower() != "dbname"]
    tail = "?" + "&".join(kept) if kept else ""
    return f"{scheme}://{rest[:path_start]}/{quote(name, safe='')}{tail}"


_env_lock = threading.Lock()


def libpq_defaults(service: str | None = None) -> dict[str, str]:
    """What libpq fills in for options a connection string leaves out: the service file's entries
    (``service``, else ``PGSERVICE``), the ``PG*`` environment variables and compiled-in defaults,
    as libpq itself computes them (``PQconndefaults``)."""
    from psycopg import pq

    with _env_lock:
        saved = os.environ.get("PGSERVICE")
        if service is not None:
            os.environ["PGSERVICE"] = service
        try:
            options = pq.Conninfo.get_defaults()
        finally:
            if service is not None:
                if saved is None:
                    del os.environ["PGSERVICE"]
                else:
                    os.environ["PGSERVICE"] = saved
    return {o.keyword.decode(): o.val.decode(errors="replace") for o in options if o.val is not None}


def conninfo_params(conninfo: str) -> dict[str, Any]:
    """The options a PostgreSQL URL or ``key=value`` string sets explicitly, as libpq parses them
    (raises psycopg.ProgrammingError when libpq cannot)."""
    from psycopg.conninfo import conninfo_to_dict

    return conninfo_to_dict(conninfo)


def _parse_postgres(url: str, where: str) -> DatabaseURL:
    meant: str | None = None  # the password as the URL's author wrote it
    if _is_url(url) or url.lower().startswith(("postgresql+", "postgres+")):
        raw = "postgresql" + url[url.index(":"):]  # postgres://, postgresql+psycopg:// → postgresql://
        rest = raw.partition("://")[2]
        span = _password_span(rest)
        if span is not None:
            meant = rest[span[0]:span[1]]
            remember_secret(meant)
            remember_secret(unquote(meant))
    else:
        raw = url
    for m in _KV_PASSWORD.finditer(raw):
        remember_secret(m["pw"].strip("'\""))
    remember_secret(os.environ.get("PGPASSWORD"))
    import psycopg

    try:
        explicit = conninfo_params(raw)
    except psycopg.Error as exc:
        message = str(exc).strip()
        if meant is not None:  # libpq quotes the token it choked on, which may be a piece of the password
            message = re.sub(r'"[^"]*"', lambda m: '"***"' if _overlaps(m[0][1:-1], meant) or _overlaps(
                m[0][1:-1], unquote(meant)) else m[0], message)
        raise ConfigError(f"bad PostgreSQL URL {mask(raw)!r}{where}: {mask(message)}",
                          hint=_ENCODE_HINT) from None
    remember_secret(explicit.get("password"))
    if meant and unquote(meant) != explicit.get("password"):
        # libpq splits user, password and host at the first "@" or "/": it would read another password
        # and take the rest for a host, port or database, quoting it in its errors
        raise ConfigError(f"the PostgreSQL URL {mask(raw)!r}{where} has an unencoded '@' or '/' in its "
                          "user name or password", hint=_ENCODE_HINT)
    if "=" in str(explicit.get("dbname", "")):  # dbname may itself be a connection string
        return DatabaseURL(raw=raw, dialect="postgresql", database=None)
    database = explicit.get("dbname")
    if not database:
        defaults = libpq_defaults(explicit.get("service"))
        database = defaults.get("dbname") or explicit.get("user") or defaults.get("user")
    return DatabaseURL(raw=raw, dialect="postgresql", database=database or None)


_ENCODE_HINT = ("the form is postgresql://user:password@host:port/database; percent-encode special characters "
                "in the user name and password: @ as %40, / as %2F, % as %25 (or put the password in PGPASSWORD "
                "or a password file)")


def parse_url(url: str, *, base_dir: Path | None = None, source: str | None = None) -> DatabaseURL:
    """Parse a PostgreSQL URL (``postgresql://…``, ``postgres://…``, a libpq ``key=value`` string) or
    ``sqlite:///relative.db`` / ``sqlite:////abs.db``.

    Relative SQLite paths are relative to ``base_dir`` (the project root) when given.
    """
    where = f" (from {source})" if source else ""
    url = url.strip()
    if not url:
        raise ConfigError(f"the database URL is empty{where}",
                          hint="set database.url in seedkit.toml or DATABASE_URL in the environment or .env")
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres") or scheme.startswith(("postgresql+", "postgres+")):
        return _parse_postgres(url, where)
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
    if "://" not in url and _KEYWORDS.match(url):
        return _parse_postgres(url, where)
    raise ConfigError(f"unsupported database URL {mask(url)!r}{where}",
                      hint="seedkit supports postgresql://… URLs (or libpq key=value strings) and sqlite:///… URLs")
