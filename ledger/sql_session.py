"""How the ledger talks to each SQL dialect: locking, durability, and storage errors.

SQLite: pysqlite's own implicit transactions are switched off and the engine
hooks emit ``BEGIN IMMEDIATE`` for appends (the database write lock from the
first statement) and a deferred ``BEGIN`` for reads, which in WAL mode never
block an append; ``synchronous=FULL`` makes a commit durable. Writers of one
process queue for the write lock on a lock of the process's own
(:func:`sqlite_write_gate`) before they ask SQLite for it: SQLite's busy handler
sleeps and polls (up to 100 ms a nap), which under load made a few calls wait
a second while others went ahead; a queue hands the lock over at once.

PostgreSQL: an append transaction first takes a transaction-scoped advisory
lock, so the order of entries is decided inside PostgreSQL across every
process; the lock is released by the commit itself. Commits are durable with
PostgreSQL's defaults (``fsync``, ``synchronous_commit``), which govex never
changes.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from ledger.errors import LedgerStorageFull, LedgerUnavailable

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

WRITE_OPTION = "govex_ledger_write"  # execution option: this transaction appends
_GATE_INFO = "govex_write_gate"  # connection info key: this connection holds its file's gate
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


class SqliteWriteGate:
    """The order in which one process's writers of one SQLite file take its write lock.

    SQLite grants its lock to whoever polls at the right moment; threads queued on this
    gate get it in turn as soon as the holder's commit returns. Another process still
    meets SQLite's own busy handler, as before. A writer that waits past the busy
    timeout goes on to SQLite's lock without the gate (it never deadlocks on it).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def enter(self) -> bool:
        """Wait for the gate; False when it was not granted within the busy timeout."""
        return self._lock.acquire(timeout=_BUSY_TIMEOUT_S)

    def leave(self) -> None:
        self._lock.release()


# One gate per database file, as SQLite has one write lock per file: process-wide by nature.
_GATES: dict[str, SqliteWriteGate] = {}
_GATES_LOCK = threading.Lock()


def sqlite_write_gate(database: str | None) -> SqliteWriteGate:
    """The gate of the SQLite file ``database`` (an engine URL's database part)."""
    name = database or ":memory:"
    gate = _GATES.get(name)
    if gate is None:
        real = os.path.realpath(name) if name != ":memory:" else name
        with _GATES_LOCK:  # two names of one file share the file's gate
            gate = _GATES.setdefault(real, SqliteWriteGate())
            _GATES[name] = gate
    return gate


def _sqlite_on_begin(conn: Connection) -> None:
    """Private engine hook: appends take the write lock at BEGIN; reads stay deferred."""
    if not conn.get_execution_options().get(WRITE_OPTION):
        conn.exec_driver_sql("BEGIN")
        return
    gate = sqlite_write_gate(conn.engine.url.database)
    if gate.enter():
        conn.info[_GATE_INFO] = gate  # left when the connection goes back to the pool
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _leave_gate(conn.info)
        raise


def _leave_gate(info: dict[str, object]) -> None:
    """Private: leave the gate the connection with ``info`` holds, if it holds one."""
    gate = info.pop(_GATE_INFO, None)
    if isinstance(gate, SqliteWriteGate):
        gate.leave()


def _sqlite_on_checkin(_dbapi: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
    """Private pool hook: the write transaction is over (committed or rolled back)."""
    _leave_gate(record.info)


def _sqlite_on_invalidate(
    _dbapi: DBAPIConnection | None, record: ConnectionPoolEntry, _exc: BaseException | None
) -> None:
    """Private pool hook: a connection dropped mid-transaction leaves its gate too."""
    _leave_gate(record.info)


def prepare_engine(engine: Engine) -> None:
    """Install the dialect's hooks on a fresh ``engine`` (once; idempotent)."""
    if engine.dialect.name == "sqlite":
        if not event.contains(engine, "connect", _sqlite_on_connect):
            event.listen(engine, "connect", _sqlite_on_connect)
        if not event.contains(engine, "begin", _sqlite_on_begin):
            event.listen(engine, "begin", _sqlite_on_begin)
        if not event.contains(engine, "checkin", _sqlite_on_checkin):
            event.listen(engine, "checkin", _sqlite_on_checkin)
            event.listen(engine, "invalidate", _sqlite_on_invalidate)
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
