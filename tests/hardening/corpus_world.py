"""The worlds the corpus runs in: a shop database on each engine, and the runners' boundary.

- :class:`PgShop` is a fresh PostgreSQL database with :mod:`corpus_schema`'s rows, the
  reader role made by docs/operations.md's SQL block exactly as written (own role and
  database names), a canary session, and a scratch folder statements aim at (``{var}``).
- :class:`SqliteShop` is a SQLite file of the same rows, in rollback-journal or WAL mode.
- :func:`run_postgres` and :func:`run_sqlite` call the real runners
  (:func:`service.run_postgres.run_postgres_query`, :func:`service.run_sql.run_query`):
  the statement goes in as given, with no static check, which is the test-only way past
  ``catalog.sqlcheck`` (the runners never call it; the catalog loader does). They return
  what happened as an :class:`Outcome`.
- :func:`unchecked_catalog` is the test-only seam for the whole call path: a sealed catalog
  of corpus statements built from the resolved models directly, skipping the loader (and so
  the static check), to swap into a running :class:`~service.runtime.Runtime`. Nothing in
  the service builds entries this way; no setting, file or request can reach it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from catalog.authority import AuthorityStatus
from catalog.model import JsonScalar, QueryEntry, ResolvedCatalog
from catalog.seal import catalog_digest, compute_seal
from service.errors import QueryFailed, QueryTimedOut, SourceUnavailable
from service.packets.tables import TableFormat
from service.run_postgres import run_postgres_query
from service.run_sql import run_query
from service.sealed_catalog import SealedCatalog
from service.sources import PostgresSource, parse_source
from service.sqlite_readers import SqliteReaders
from tests.hardening.corpus_data import Mutating
from tests.hardening.corpus_schema import create_postgres, create_sqlite
from tests.hardening.fingerprint import (
    Canary,
    Fingerprint,
    folder_fingerprint,
    postgres_fingerprint,
)
from tests.pg_harness import PostgresServer

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
READER_PASSWORD = "corpus-Reader-7e41"  # loopback-only throwaway server
TIMEOUT_MS = 3000
_NEXT_SESSION = """SELECT current_user, session_user, current_setting('search_path'),
  current_setting('work_mem'), current_setting('default_transaction_read_only'),
  current_setting('statement_timeout'), current_setting('role'),
  (SELECT count(*) FROM pg_prepared_statements), (SELECT count(*) FROM pg_cursors),
  (SELECT count(*) FROM pg_listening_channels()), pg_backend_pid() > 0"""


@dataclass(frozen=True)
class Outcome:
    """What the boundary did with one statement: its rows, or the error it raised."""

    rows: tuple[tuple[object, ...], ...] | None
    error: str | None

    @property
    def ran(self) -> bool:
        return self.error is None


def documented_block() -> str:
    """The reader-role SQL block of docs/operations.md, as written."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- reader-role-sql:[^>]*-->\n```sql\n(.*?)```", text, re.DOTALL)
    assert found is not None, "docs/operations.md lost its reader-role-sql block"
    return found.group(1)


@dataclass
class PgShop:
    """A shop database on ``server``, its documented reader role and a canary session."""

    server: PostgresServer
    name: str
    source: PostgresSource
    var: Path
    canary: Canary
    admin: psycopg.Connection[tuple[object, ...]]

    @classmethod
    def create(
        cls, server: PostgresServer, var: Path, *, password: str = READER_PASSWORD
    ) -> PgShop:
        """A new shop database with its reader role (logging in with ``password``)."""
        name = f"shop_{uuid.uuid4().hex[:12]}"
        server.create_database(name)
        create_postgres(server.dsn(name))
        role = f"govex_reader_{uuid.uuid4().hex[:12]}"
        block = (
            documented_block()
            .replace("govex_reader", role)
            .replace("DATABASE sales", f'DATABASE "{name}"')
            .replace("'change-me'", f"'{password}'")
        )
        server.execute(block, name)  # as the superuser, as the docs say
        source = parse_source("shop", server.url(name, role, password))
        assert isinstance(source, PostgresSource)
        var.mkdir(parents=True, exist_ok=True)
        admin = psycopg.connect(server.dsn(name), autocommit=True, application_name="corpus")
        return cls(server, name, source, var, Canary(server.dsn(name)), admin)

    @property
    def dsn(self) -> str:
        return self.server.dsn(self.name)

    def fingerprint(self) -> Fingerprint:
        """The database, the server around it, the canary, ``{var}``, and the next session.

        ``next session`` is what a new call's connection sees (settings, role, prepared
        statements, cursors, channels): the service keeps no pool, so this is the session a
        statement's leftovers would reach if any outlived its call.
        """
        db = postgres_fingerprint(self.admin, self.canary)
        probe = run_postgres(self.source, _NEXT_SESSION)
        return Fingerprint(
            {
                **db.parts,
                **folder_fingerprint(self.var).parts,
                "next session": probe.rows if probe.ran else probe.error,
            }
        )

    def close(self) -> None:
        self.canary.close()
        self.admin.close()


@dataclass(frozen=True)
class SqliteShop:
    """A shop SQLite file in its own folder; ``{var}`` is a sibling folder."""

    path: Path
    var: Path

    @classmethod
    def create(cls, folder: Path, *, wal: bool) -> SqliteShop:
        (folder / "source").mkdir(parents=True)
        (folder / "var").mkdir()
        path = create_sqlite(folder / "source" / "shop.sqlite", wal=wal)
        return cls(path, folder / "var")

    def fingerprint(self) -> Fingerprint:
        """Every file in the source folder (the database and its journals) and in ``{var}``."""
        return folder_fingerprint(self.path.parent, self.var)


def run_postgres(
    source: PostgresSource,
    sql: str,
    *,
    encode: TableFormat | None = None,
    params: dict[str, JsonScalar] | None = None,
    timeout_ms: int = TIMEOUT_MS,
) -> Outcome:
    """``sql`` through the PostgreSQL runner (``encode="csv"``: its COPY path, when it plans)."""
    try:
        with run_postgres_query(source, sql, params or {}, timeout_ms, encode=encode) as result:
            if result.encoded is not None:
                lines = tuple((bytes(line),) for line in result.encoded.lines)
                return Outcome(lines, None)
            return Outcome(tuple(result.rows), None)
    except (QueryFailed, QueryTimedOut, SourceUnavailable) as exc:
        return Outcome(None, exc.message)


def run_sqlite(
    path: Path,
    sql: str,
    *,
    params: dict[str, JsonScalar] | None = None,
    timeout_ms: int = TIMEOUT_MS,
    readers: SqliteReaders | None = None,
) -> Outcome:
    """``sql`` through the SQLite runner (on a kept connection of ``readers`` if given)."""
    try:
        with run_query(path, sql, params or {}, timeout_ms, readers=readers) as result:
            return Outcome(tuple(result.rows), None)
    except (QueryFailed, QueryTimedOut, SourceUnavailable) as exc:
        return Outcome(None, exc.message)


def unchecked_entry_id(record: Mutating) -> str:
    """The entry id :func:`unchecked_catalog` gives ``record``."""
    return "corpus." + record.id.replace("-", "_")


def unchecked_catalog(records: list[tuple[Mutating, str, Path]]) -> SealedCatalog:
    """TEST ONLY: a sealed catalog of ``(statement, source, {var} folder)`` entries, unchecked.

    The entries are built from :class:`~catalog.model.QueryEntry` directly, so
    ``catalog.sqlcheck`` never sees them; the seal is computed over them (authority
    ``sealed``), so the runtime's per-call digest check passes as for a real seal.
    """
    entries = sorted(
        (
            QueryEntry(
                id=unchecked_entry_id(record),
                title=record.threat,
                source=source,
                engine=record.engine,
                sql_file=f"queries/{record.id}.sql",
                sql=record.text(str(var)),
                timeout_ms=TIMEOUT_MS,
            )
            for record, source, var in records
        ),
        key=lambda e: e.id,
    )
    catalog = ResolvedCatalog(name="corpus", version="1", entries=tuple(entries))
    seal = compute_seal(catalog, datetime.now(UTC))
    return SealedCatalog(catalog, seal, catalog_digest(catalog), AuthorityStatus.sealed, None)
