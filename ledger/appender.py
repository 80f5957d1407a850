"""The append transaction, on one dedicated driver connection, in as few round trips as possible.

Only the group-commit leader appends (one batch at a time), so a store keeps
one raw DBAPI connection for it instead of going through SQLAlchemy's
connection and transaction objects for every batch. A batch is:

- PostgreSQL, three round trips: ``govex_ledger_lock_head()`` (a function
  from the migrations that takes the transaction-scoped advisory lock, then
  reads the head under a snapshot taken after the lock is held), one
  ``COPY``, ``COMMIT``. The advisory lock orders appends across every
  process and is released by the commit.
- SQLite: ``BEGIN IMMEDIATE`` (the write lock), the head query, one
  ``executemany``, ``COMMIT`` (``synchronous=FULL``: durable).

Any failure rolls back, drops the connection (the next batch opens a fresh
one) and is raised as SQLAlchemy's ``DBAPIError``, so callers map storage
errors in one place (:func:`ledger.sql_session.storage_error`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

EntryRow = tuple[int, str, str, bytes, bytes]  # seq, kind, ts, leaf_input, leaf_hash
Head = tuple[int, bytes] | None  # (seq, leaf_hash) of the last entry; None when empty

_HEAD = "SELECT seq, leaf_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1"
_COLUMNS = "seq, kind, ts, leaf_input, leaf_hash"
_SQLITE_INSERT = (
    "INSERT INTO ledger_entries (seq, kind, ts, leaf_input, leaf_hash) VALUES (?, ?, ?, ?, ?)"
)
_COPY = "COPY ledger_entries (seq, kind, ts, leaf_input, leaf_hash) FROM STDIN"


class Appender:
    """Runs append transactions for one store; not thread-safe (the group leader owns it)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._raw: Any = None  # a pool-managed DBAPI connection, checked out for good

    def append(self, build: Callable[[Head], list[EntryRow]]) -> list[EntryRow]:
        """Lock, read the head, insert ``build(head)`` and commit; return the rows inserted."""
        try:
            if self._raw is None:
                self._raw = self._engine.raw_connection()
            driver = self._raw.driver_connection
            if self._postgres:
                return _append_postgres(driver, build)
            return _append_sqlite(driver, build)
        except self._driver_error as exc:
            self._discard()
            raise DBAPIError.instance("ledger append", None, exc, self._driver_error) from exc
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        """Private: roll back and drop the connection; the next batch starts on a fresh one."""
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.invalidate()

    def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.close()


def _append_postgres(driver: Any, build: Callable[[Head], list[EntryRow]]) -> list[EntryRow]:  # noqa: ANN401
    """Private: the PostgreSQL batch in three round trips: lock and head, COPY, COMMIT."""
    with driver.cursor() as cursor:
        found = cursor.execute("SELECT seq, leaf_hash FROM govex_ledger_lock_head()").fetchone()
        head = None if found is None or found[0] is None else (int(found[0]), bytes(found[1]))
        rows = build(head)
        with cursor.copy(_COPY) as copy:
            copy.write(_copy_text(rows))
    driver.commit()
    return rows


def _copy_text(rows: list[EntryRow]) -> bytes:
    r"""Private: ``rows`` in COPY text format, built in one go (psycopg's row writer is slower).

    Kinds and times never hold a tab, newline or backslash (the entry models
    refuse them); bytea goes as ``\x`` hex, the backslash itself escaped.
    """
    return "".join(
        f"{seq}\t{kind}\t{ts}\t\\\\x{data.hex()}\t\\\\x{digest.hex()}\n"
        for seq, kind, ts, data, digest in rows
    ).encode("ascii")


def _append_sqlite(driver: Any, build: Callable[[Head], list[EntryRow]]) -> list[EntryRow]:  # noqa: ANN401
    """Private: the SQLite batch under ``BEGIN IMMEDIATE`` (the connection is in autocommit)."""
    driver.execute("BEGIN IMMEDIATE")
    try:
        found = driver.execute(_HEAD).fetchone()
        rows = build(None if found is None else (int(found[0]), bytes(found[1])))
        driver.executemany(_SQLITE_INSERT, rows)
        driver.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            driver.execute("ROLLBACK")
        raise
    return rows
