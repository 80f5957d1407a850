"""How the ledger talks to each SQL dialect: locking, durability, and storage errors.

SQLite: pysqlite's own implicit transactions are switched off and the engine
hooks emit ``BEGIN IMMEDIATE`` for appends (the database write lock from the
first statement) and a deferred ``BEGIN`` for reads, which in WAL mode never
block an append; ``synchronous=FULL`` makes a commit durable.

PostgreSQL: an append transaction first takes a transaction-scoped advisory
lock, so the order of entries is decided inside PostgreSQL across every
process; the lock is released by the commit itself. Commits are durable with
PostgreSQL's defaults (``fsync``, ``synchronous_commit``), which govex never
changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from ledger.errors import LedgerStorageFull, LedgerUnavailable

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

WRITE_OPTION = "govex_ledger_write"  # execution option: this transaction appends
_BUSY_TIMEOUT_S = 60.0  # how long a SQLite writer waits for the write lock
_DISK_FULL_SQLSTATES = frozenset({"53100"})  # PostgreSQL disk_full
_DISK_FULL_TEXTS = ("database or disk is full", "no space left on device", "disk full")


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """Private engine hook: pysqlite leaves transactions to us; WAL, full fsync, FK checks."""
    # pysqlite's own implicit BEGIN would be deferred and come too late; _sqlite_on_begin
    # emits ours (the SQLAlchemy "serializable isolation / savepoints" recipe for pysqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Private engine hook: appends take the write lock at BEGIN; reads stay deferred."""
    writing = conn.get_execution_options().get(WRITE_OPTION)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def prepare_engine(engine: Engine) -> None:
    """Install the dialect's hooks on a fresh ``engine`` (once; idempotent)."""
    if engine.dialect.name == "sqlite":
        if not event.contains(engine, "connect", _sqlite_on_connect):
            event.listen(engine, "connect", _sqlite_on_connect)
        if not event.contains(engine, "begin", _sqlite_on_begin):
            event.listen(engine, "begin", _sqlite_on_begin)
    elif engine.dialect.name != "postgresql":
        raise LedgerUnavailable(
            f"the ledger runs on SQLite or PostgreSQL, not {engine.dialect.name}",
            operation="open",
        )


def storage_error(exc: DBAPIError, operation: str) -> LedgerUnavailable:
    """A driver error as a ledger error: the storage-full case named, no SQL or parameters.

    SQLAlchemy's own message carries the statement and its parameters; only
    the driver's first line goes out.
    """
    original = exc.orig if exc.orig is not None else exc
    first_line = (str(original).strip().splitlines() or [type(original).__name__])[0]
    sqlstate = getattr(original, "sqlstate", None)
    outcome = "; nothing was appended" if operation == "append" else ""
    if sqlstate in _DISK_FULL_SQLSTATES or any(t in first_line.lower() for t in _DISK_FULL_TEXTS):
        return LedgerStorageFull(
            f"ledger storage is full ({first_line}){outcome}", operation=operation
        )
    return LedgerUnavailable(
        f"ledger storage failed during {operation}: {first_line}{outcome}",
        operation=operation,
    )
