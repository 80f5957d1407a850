"""The configured sources: what each ``GOVEX_SOURCES`` value names, with its credentials hidden.

A value is a PostgreSQL source when it is a ``postgresql://``, ``postgres://`` or
``postgresql+psycopg://`` URL (a libpq URI, see docs/operations.md); any other
``scheme://`` is refused; anything else is the path of a SQLite file. An entry runs
only on a source of its own engine.

A PostgreSQL URL may hold a password (in its user part, or as a ``password`` or
``sslpassword`` query parameter). It never leaves :class:`PostgresSource` except to
libpq: the repr hides it, messages use :meth:`PostgresSource.redacted` and pass
driver text through :meth:`PostgresSource.scrub`. Contracts name a source, never
its URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, unquote_plus, urlsplit

from catalog.model import Engine, QueryEntry
from service.errors import SourceUnavailable

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CONNINFO_WORD = re.compile(r"(?i)\b(?:host|hostaddr|dbname|user|password|port)\s*=")
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})
HIDDEN = "***"


@dataclass(frozen=True)
class SqliteSource:
    """A SQLite file, opened read-only per call by :mod:`service.run_sql`."""

    engine: ClassVar[Engine] = "sqlite"
    name: str
    path: Path

    def describe(self) -> str:
        return f"a SQLite file ({self.path})"


@dataclass(frozen=True)
class PostgresSource:
    """A PostgreSQL database, connected to per call by :mod:`service.run_postgres`.

    ``conninfo`` is the libpq URI (``postgresql://``), password included: pass it
    to libpq only. ``secrets`` are the password as written and percent-decoded.
    """

    engine: ClassVar[Engine] = "postgresql"
    name: str
    conninfo: str = field(repr=False)
    display: str
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def redacted(self) -> str:
        """The URL with every password replaced by ``***``: safe for messages."""
        return self.display

    def scrub(self, text: str) -> str:
        """``text`` (a driver message) with every form of the password replaced by ``***``."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, HIDDEN)
        return text

    def describe(self) -> str:
        return f"a PostgreSQL database ({self.display})"


Source = SqliteSource | PostgresSource


def parse_source(name: str, value: str) -> Source:
    """What the ``GOVEX_SOURCES`` value of source ``name`` names.

    Raises :class:`SourceUnavailable` for a URL of another scheme or one that does
    not parse; the message never repeats the value (it may hold a password).
    """
    scheme = _URL_SCHEME.match(value)
    if scheme is None:
        if _CONNINFO_WORD.search(value):
            raise SourceUnavailable(
                f"source {name!r} looks like a libpq key=value string; give a PostgreSQL "
                "source as a postgresql:// URL",
                where=name,
            )
        return SqliteSource(name=name, path=Path(value))
    if scheme.group(1).lower() not in POSTGRES_SCHEMES:
        raise SourceUnavailable(
            f"source {name!r} is a {scheme.group(1)!r} URL; only PostgreSQL URLs "
            f"({', '.join(sorted(POSTGRES_SCHEMES))}) or SQLite file paths are sources",
            where=name,
        )
    return _postgres(name, value, len(scheme.group(0)))


def _postgres(name: str, value: str, scheme_end: int) -> PostgresSource:
    rest = value[scheme_end:]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if authority.count("@") > 1 or rest.count("@") != authority.count("@"):
        # libpq and urllib would split such a URL differently: a piece of the password
        # could end up in a host name, and so in an error message.
        raise SourceUnavailable(
            f"the URL of PostgreSQL source {name!r} has an '@' outside its user part: "
            "percent-encode '@', '/', '?' and '#' in the user name and password",
            where=name,
        )
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        raise SourceUnavailable(
            f"the URL of PostgreSQL source {name!r} does not parse", where=name
        ) from None
    secrets = set()
    netloc = parts.netloc
    if password:
        secrets |= {password, unquote(password)}
        user_part, _, host_part = netloc.rpartition("@")
        user = user_part.partition(":")[0]
        netloc = f"{user}:{HIDDEN}@{host_part}"
    query = []
    for pair in parts.query.split("&") if parts.query else ():
        key, eq, raw = pair.partition("=")
        if unquote(key).lower() in _SECRET_QUERY_KEYS and raw:
            secrets |= {raw, unquote(raw), unquote_plus(raw)}
            raw = HIDDEN
        query.append(f"{key}{eq}{raw}")
    display = f"postgresql://{netloc}{parts.path}" + (f"?{'&'.join(query)}" if query else "")
    return PostgresSource(
        name=name,
        conninfo="postgresql://" + value[scheme_end:],
        display=display,
        secrets=tuple(sorted(s for s in secrets if s)),
    )


def resolve_source(sources: Mapping[str, str], entry: QueryEntry) -> Source:
    """The source ``entry`` runs on, checked to be of the entry's engine.

    Raises :class:`SourceUnavailable` when the source is not configured, its value
    is refused by :func:`parse_source`, or it is of another kind than the entry's
    engine (both are named).
    """
    value = sources.get(entry.source)
    if value is None:
        raise SourceUnavailable(
            f"source {entry.source!r} is not configured (GOVEX_SOURCES)", where=entry.source
        )
    source = parse_source(entry.source, value)
    if source.engine != entry.engine:
        raise SourceUnavailable(
            f"entry {entry.id} has engine {entry.engine}, but its source {entry.source!r} is "
            f"{source.describe()}: an entry runs only on a source of its engine",
            where=entry.source,
        )
    return source
