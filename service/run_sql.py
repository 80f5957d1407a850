"""Run one approved SQL statement against a SQLite source, read-only in depth.

Layers, because no single one is enough (STYLE G8):
- the file is opened with a ``mode=ro`` URI (the OS-level handle cannot write);
- ``PRAGMA query_only`` makes the connection refuse every write;
- an authorizer allows reads only: ``mode=ro`` alone still lets ``VACUUM INTO`` write a
  new file and ``ATTACH`` open other databases (it lets table-valued functions such as
  ``json_each`` declare their columns, which SQLite asks about as an UPDATE of the schema
  table it never runs);
- a progress handler stops the VM at the contract deadline (``timed_out``);
- extension loading stays disabled, and the statement ran through ``catalog.sqlcheck``.

Rows are streamed with ``fetchmany``; the result is never held in memory. Column types
come from the declared types of the columns the result reads (:mod:`service.sqlite_types`).
"""

from __future__ import annotations

import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from service.errors import QueryFailed, QueryTimedOut, SourceUnavailable
from service.packets.columns import ColumnType
from service.packets.tables import EncodedRows
from service.sqlite_types import declared_types

if TYPE_CHECKING:
    from service.sqlite_readers import SqliteReaders

BOUNDARY_SQLITE = (
    "mode=ro",
    "query_only",
    "read_transaction",  # the statement runs in one read transaction: one snapshot
    "read_authorizer",
    "progress_deadline",
    "single_statement",
)
_FETCH_BATCH = 1000
_PROGRESS_EVERY_N_OPS = 10_000  # VM steps between two looks at the deadline
_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_FORBIDDEN_FUNCTIONS = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"}
)
# Declaring a table-valued function's columns (json_each, json_tree) makes SQLite compile, and
# then discard, an UPDATE of the schema table, and it asks the authorizer about each column:
# denied, the query fails with "vtable constructor failed". A statement's own UPDATE of the
# schema table never gets that far ("table sqlite_master may not be modified" comes first;
# PRAGMA writable_schema is denied), and mode=ro and query_only stop any write besides.
_SCHEMA_TABLES = frozenset(
    {"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"}
)

SqlValue = int | float | str | bytes | None


@dataclass
class QueryResult:
    """Column names and types, then rows as they come from the engine.

    ``column_types`` has one entry per column, the type the engine states for it
    (``None`` where it states none; empty: none at all). ``encoded``, when set, holds
    the rows as the engine itself encoded them (PostgreSQL's COPY), and ``rows`` is empty.
    ``engine_version`` is the engine's version as it ran the statement (SQLite's library
    version; PostgreSQL's ``server_version``), recorded in ``call.finished`` for replays.
    """

    columns: tuple[str, ...]
    rows: Iterator[tuple[SqlValue, ...]]
    column_types: tuple[ColumnType | None, ...] = ()
    encoded: EncodedRows | None = None
    engine_version: str | None = None


def _authorize_read_only(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None
) -> int:
    """SQLite authorizer: reads only. The last line refuses."""
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or arg1 or "").lower()
        return sqlite3.SQLITE_DENY if name in _FORBIDDEN_FUNCTIONS else sqlite3.SQLITE_OK
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 in _SCHEMA_TABLES:
        return sqlite3.SQLITE_OK  # a table-valued function's declaration (see _SCHEMA_TABLES)
    return sqlite3.SQLITE_DENY


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open ``path`` read-only with every layer in place; refuse a missing file."""
    return open_snapshot(path)[0]


def open_snapshot(path: Path) -> tuple[SourceConnection, int]:
    """:func:`open_read_only`, and the schema version of the snapshot it reads."""
    source_identity(path)
    conn = connect_read_only(path)
    try:
        return conn, begin_snapshot(conn, path)
    except BaseException:
        conn.close()
        raise


def source_identity(path: Path) -> tuple[int, int]:
    """The file ``path`` names now (``st_dev``, ``st_ino``); refuses a missing file."""
    try:
        status = path.stat()
    except OSError:
        status = None
    if status is None or not stat.S_ISREG(status.st_mode):
        raise SourceUnavailable(f"SQLite source file {path} does not exist", where=str(path))
    return status.st_dev, status.st_ino


class SourceConnection(sqlite3.Connection):
    """A connection to a SQLite source, and the read authorizer installed on it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - sqlite3.connect's
        super().__init__(*args, **kwargs)
        self.lifted = False  # our own snapshot statements are being prepared
        # Installed once: replacing an authorizer expires every prepared statement, and the
        # entry's statement is then prepared (and authorized) again at each call.
        self.set_authorizer(self._authorize)

    def _authorize(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, src: str | None
    ) -> int:
        if self.lifted:
            return sqlite3.SQLITE_OK
        return _authorize_read_only(action, arg1, arg2, db, src)

    def run_own(self, sql: str) -> sqlite3.Cursor:
        """Run one of this module's snapshot statements, which the read authorizer refuses."""
        self.lifted = True
        try:
            return self.execute(sql)
        finally:
            self.lifted = False


def connect_read_only(path: Path) -> SourceConnection:
    """A ``mode=ro``, ``query_only`` connection to ``path`` under the read authorizer."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, factory=SourceConnection
        )
        conn.run_own("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise SourceUnavailable(
            f"cannot open SQLite source {path} read-only: {exc}", where=str(path)
        ) from exc
    return conn


# Our own statements pass the authorizer when they are prepared, and sqlite3 keeps them
# prepared, keyed by their text, without asking it again. A statement of an entry with the
# very same text would run as prepared: the text holds a secret of this process, which no
# catalog, sealed before the process started, can contain (and catalog.sqlcheck admits one
# SELECT only).
_NONCE = secrets.token_hex(16)
_BEGIN = f"BEGIN /* govex snapshot {_NONCE} */"
_SCHEMA_VERSION = f"PRAGMA schema_version /* govex snapshot {_NONCE} */"
_END = f"ROLLBACK /* govex snapshot {_NONCE} */"


def begin_snapshot(conn: SourceConnection, path: Path) -> int:
    """Begin a read transaction (one snapshot for the statement); its schema version."""
    try:
        conn.run_own(_BEGIN)
        schema_version: int = conn.run_own(_SCHEMA_VERSION).fetchone()[0]
    except sqlite3.Error as exc:
        raise SourceUnavailable(
            f"cannot read SQLite source {path}: {exc}", where=str(path)
        ) from exc
    return schema_version


def end_snapshot(conn: SourceConnection) -> bool:
    """End the read transaction :func:`begin_snapshot` began; False if it could not."""
    try:
        if conn.in_transaction:
            conn.run_own(_END)
    except sqlite3.Error:
        return False
    return not conn.in_transaction


@contextmanager
def _fresh_snapshot(path: Path) -> Iterator[tuple[SourceConnection, int]]:
    """Private: a snapshot on a connection of its own, closed after the statement."""
    conn, schema_version = open_snapshot(path)
    try:
        yield conn, schema_version
    finally:
        conn.close()


@contextmanager
def run_query(
    path: Path,
    sql: str,
    params: Mapping[str, object],
    timeout_ms: int,
    *,
    readers: SqliteReaders | None = None,
) -> Iterator[QueryResult]:
    """Execute ``sql`` with bound ``params``; rows stream out of the returned result.

    With ``readers`` the statement runs on a connection kept between calls
    (:mod:`service.sqlite_readers`); without, on one opened for it and closed after.

    Raises :class:`QueryTimedOut` (from the iteration too) when the deadline passes,
    :class:`QueryFailed` when the engine refuses or fails the statement.
    """
    snapshot = _fresh_snapshot(path) if readers is None else readers.snapshot(path)
    with snapshot as (conn, schema_version):
        yield from _run_in_snapshot(conn, schema_version, path, sql, params, timeout_ms)


def _run_in_snapshot(
    conn: sqlite3.Connection,
    schema_version: int,
    path: Path,
    sql: str,
    params: Mapping[str, object],
    timeout_ms: int,
) -> Iterator[QueryResult]:
    """Private: :func:`run_query` in a snapshot begun on ``conn``."""
    deadline = time.monotonic() + timeout_ms / 1000
    expired = False

    def _past_deadline() -> int:
        nonlocal expired
        expired = time.monotonic() > deadline
        return 1 if expired else 0

    conn.set_progress_handler(_past_deadline, _PROGRESS_EVERY_N_OPS)

    def _translate(exc: sqlite3.Error) -> Exception:
        if expired:
            return QueryTimedOut(
                f"statement stopped at its {timeout_ms} ms deadline", timeout_ms=timeout_ms
            )
        return QueryFailed(f"SQLite refused or failed the statement: {exc}")

    executed: list[sqlite3.Cursor] = []  # closed after, so the snapshot can end
    try:
        try:
            cursor = conn.execute(sql, dict(params))
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        executed.append(cursor)
        columns = tuple(d[0] for d in cursor.description or ())
        types = declared_types(path, sql, columns, schema_version=schema_version)

        def _batch() -> list[tuple[SqlValue, ...]]:
            try:
                return cursor.fetchmany(_FETCH_BATCH)
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

        # Rows flow through C iterators: a Python frame per row would cost a fifth of an export.
        rows = chain.from_iterable(iter(_batch, []))
        yield QueryResult(columns, rows, column_types=types, engine_version=sqlite3.sqlite_version)
    finally:
        conn.set_progress_handler(None, 0)
        for cursor in executed:
            cursor.close()
