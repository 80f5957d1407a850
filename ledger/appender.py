"""The append transaction, on one dedicated driver connection, in as few round trips as possible.

Only the group-commit leader appends (one batch at a time), so a store keeps
one raw DBAPI connection for it instead of going through SQLAlchemy's
connection and transaction objects for every batch. A batch is:

- PostgreSQL, one round trip: ``govex_ledger_append(...)`` (a function from
  the migrations) takes the transaction-scoped advisory lock, checks that the
  rows chain to the head this appender last wrote, and inserts them. The
  connection is in autocommit, so that one statement is its own transaction:
  committed (durably, ``synchronous_commit`` on) before its reply arrives.
  When another process appended in between, it inserts nothing and returns
  the real head: the rows are rebuilt on it and sent again. After a few such
  misses the batch takes the lock first (``govex_ledger_lock_head()``) in an
  explicit transaction, reads the head and uses ``COPY``. The advisory lock
  orders appends across every process and is released by the commit.
- SQLite: ``BEGIN IMMEDIATE`` (the write lock), the head query, one
  ``executemany``, ``COMMIT`` (``synchronous=FULL``: durable).

A batch with companion writes (:mod:`ledger.companion`) runs them after its rows,
before the commit: on SQLite in the same transaction; on PostgreSQL in a transaction
around the function call (pipelined with it; rolled back when the head had moved) or,
past the tries, in the lock-first one (lock, head, ``COPY``, the writes, ``COMMIT``).

Any failure rolls back, drops the connection (the next batch opens a fresh
one) and is raised as SQLAlchemy's ``DBAPIError``, so callers map storage
errors in one place (:func:`ledger.sql_session.storage_error`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from ledger.companion import pyformat
from ledger.faults import crash_point
from ledger.sql_session import sqlite_write_gate

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy import Engine

EntryRow = tuple[int, str, str, bytes, bytes]  # seq, kind, ts, leaf_input, leaf_hash
Write = tuple[str, "Mapping[str, Any]"]  # a companion's statement (``:name`` style) and values
Head = tuple[int, bytes] | None  # (seq, leaf_hash) of the last entry; None when empty

_HEAD = "SELECT seq, leaf_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1"
_COLUMNS = "seq, kind, ts, leaf_input, leaf_hash"
_SQLITE_INSERT = (
    "INSERT INTO ledger_entries (seq, kind, ts, leaf_input, leaf_hash) VALUES (?, ?, ?, ?, ?)"
)
_COPY = "COPY ledger_entries (seq, kind, ts, leaf_input, leaf_hash) FROM STDIN"
_APPEND = (  # binary parameters: psycopg escapes text-format bytea arrays in Python, slowly
    "SELECT appended, head_seq, head_hash FROM govex_ledger_append("
    "%b, %b, %b::bigint[], %b::text[], %b::text[], %b::bytea[], %b::bytea[])"
)
_OPTIMISTIC_TRIES = 2
_LOCK_FIRST_BATCHES = 32  # after the optimistic tries missed: lock first for this many batches


class _Unknown:
    """Private: the head is not known yet (a fresh store, or after a failure)."""


UNKNOWN = _Unknown()


class Appender:
    """Runs append transactions for one store; not thread-safe (the group leader owns it)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._raw: Any = None  # a pool-managed DBAPI connection, checked out for good
        self._head: Head | _Unknown = UNKNOWN  # the head after this appender's last commit
        self._lock_first = 0  # batches left that skip the optimistic try (others append too)

    def append(
        self,
        build: Callable[[Head], list[EntryRow]],
        writes: Callable[[], list[Write]] | None = None,
    ) -> list[EntryRow]:
        """Lock, read the head, insert ``build(head)``, run ``writes()``, commit; return the rows.

        ``writes`` is called after the last ``build``: the companion writes of those rows.
        """
        try:
            if self._raw is None:
                self._raw = self._checkout()
            driver = self._raw.driver_connection
            crash_point("ledger.append.begin")
            if self._postgres:
                tries = 0 if self._lock_first > 0 else _OPTIMISTIC_TRIES
                rows, missed = _append_postgres(driver, build, writes, self._head, tries)
                self._lock_first = _LOCK_FIRST_BATCHES if missed else max(self._lock_first - 1, 0)
            else:
                gate = sqlite_write_gate(self._engine.url.database)
                entered = gate.enter()
                try:
                    rows = _append_sqlite(driver, build, writes)
                finally:
                    if entered:
                        gate.leave()
        except self._driver_error as exc:
            self._discard()
            raise DBAPIError.instance("ledger append", None, exc, self._driver_error) from exc
        except BaseException:
            self._discard()
            raise
        crash_point("ledger.append.commit")
        if rows:
            self._head = (rows[-1][0], rows[-1][4])
        return rows

    def _checkout(self) -> Any:  # noqa: ANN401 - SQLAlchemy's pooled DBAPI connection
        """Private: a pooled connection for appends; autocommit on PostgreSQL (see ``_APPEND``)."""
        raw: Any = self._engine.raw_connection()
        if self._postgres:
            raw.driver_connection.autocommit = True
        return raw

    def _discard(self) -> None:
        """Private: roll back and drop the connection; the next batch starts on a fresh one."""
        raw, self._raw = self._raw, None
        self._head = UNKNOWN  # a failed commit may or may not have landed
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.invalidate()

    def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                if self._postgres:  # back in the pool, it must behave like its peers
                    raw.driver_connection.autocommit = False
                raw.close()


def _append_postgres(
    driver: Any,  # noqa: ANN401 - a psycopg connection (ledger does not import psycopg)
    build: Callable[[Head], list[EntryRow]],
    writes: Callable[[], list[Write]] | None,
    known: Head | _Unknown,
    tries: int,
) -> tuple[list[EntryRow], bool]:
    """Private: the PostgreSQL batch, in one round trip when ``known`` is still the head.

    Returns the rows and whether the optimistic tries all missed (another
    process appends too: the caller then locks first for a while).

    ``govex_ledger_append`` (see the migrations) checks the head under the
    append lock and inserts only rows that chain to it, in a transaction of
    its own (autocommit). When another process appended meanwhile, it returns the
    real head, and the rows are rebuilt on it and sent again, a few times;
    then, under heavy contention, the batch takes the lock first and reads the
    head (three round trips, never refused).

    With companion ``writes``, a try is a transaction in two round trips (pipelined:
    ``BEGIN``, the function, the writes; then ``COMMIT``, or ``ROLLBACK`` when the
    function appended nothing, as the writes used the seqs of the head it missed).
    """
    head: Head | _Unknown = known
    for _ in range(tries):
        expect: tuple[int | None, bytes | None]
        if isinstance(head, _Unknown):  # learn the head: nothing matches seq -1
            rows, expect = [], (-1, None)
        else:
            rows, expect = build(head), _expect(head)
        arguments = (*expect, *(list(column) for column in _columns(rows)))
        if rows and writes is not None:
            outcome = _append_postgres_with(driver, arguments, writes())
        else:
            # The connection is in autocommit: this one statement is its own transaction,
            # committed (durably) before the reply comes back.
            with driver.cursor() as cursor:
                outcome = cursor.execute(_APPEND, arguments).fetchone()
        appended, seq, digest = outcome
        if appended:
            return rows, False
        head = _as_head((seq, digest))
    return _append_postgres_locked(driver, build, writes), tries > 0


class _Missed(Exception):
    """Private: the function appended nothing (another process did): roll the writes back."""

    def __init__(self, outcome: tuple[Any, ...]) -> None:
        super().__init__("head moved")
        self.outcome = outcome


def _unless_appended(outcome: tuple[Any, ...]) -> None:
    """Private: raise :class:`_Missed` when nothing was appended (the transaction rolls back)."""
    if not outcome[0]:
        raise _Missed(outcome)


def _append_postgres_with(
    driver: Any,  # noqa: ANN401 - a psycopg connection
    arguments: tuple[Any, ...],
    writes: list[Write],
) -> tuple[Any, ...]:
    """Private: the function and the companion writes in one transaction; its outcome row."""
    try:
        with driver.pipeline(), driver.transaction(), driver.cursor() as cursor:
            cursor.execute(_APPEND, arguments)
            with driver.cursor() as companion:
                for statement, values in _grouped(writes):
                    companion.executemany(pyformat(statement), values)
            outcome: tuple[Any, ...] = cursor.fetchone()  # the first round trip ends here
            _unless_appended(outcome)
    except _Missed as missed:
        return missed.outcome
    return outcome


def _append_postgres_locked(
    driver: Any,  # noqa: ANN401 - a psycopg connection
    build: Callable[[Head], list[EntryRow]],
    writes: Callable[[], list[Write]] | None,
) -> list[EntryRow]:
    """Private: lock first, read the head, ``COPY`` the rows, run ``writes()``, commit."""
    with driver.transaction(), driver.cursor() as cursor:
        rows = build(
            _as_head(
                cursor.execute("SELECT seq, leaf_hash FROM govex_ledger_lock_head()").fetchone()
            )
        )
        with cursor.copy(_COPY) as copy:
            copy.write(_copy_text(rows))
        crash_point("ledger.append.insert")
        if writes is not None:
            for statement, values in _grouped(writes()):
                # One statement's writes go together: psycopg pipelines an executemany.
                cursor.executemany(pyformat(statement), values)
    return rows


def _grouped(writes: list[Write]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Private: consecutive writes of one statement together, in order."""
    groups: list[tuple[str, list[Mapping[str, Any]]]] = []
    for statement, values in writes:
        if groups and groups[-1][0] == statement:
            groups[-1][1].append(values)
        else:
            groups.append((statement, [values]))
    return groups


def _as_head(row: tuple[Any, Any] | None) -> Head:
    """Private: a ``(seq, leaf_hash)`` row as the head; no row, or NULLs, is an empty ledger."""
    if row is None or row[0] is None:
        return None
    return int(row[0]), bytes(row[1])


def _expect(head: Head) -> tuple[int | None, bytes | None]:
    """Private: the head as ``govex_ledger_append`` compares it (NULLs for an empty ledger)."""
    return (None, None) if head is None else head


def _columns(rows: list[EntryRow]) -> tuple[tuple[Any, ...], ...]:
    """Private: rows as five columns (empty columns for no rows)."""
    return tuple(zip(*rows, strict=True)) if rows else ((), (), (), (), ())


def _copy_text(rows: list[EntryRow]) -> bytes:
    r"""Private: ``rows`` in COPY text format, built in one go (psycopg's row writer is slower).

    Kinds and times never hold a tab, newline or backslash (the entry models
    refuse them); bytea goes as ``\x`` hex, the backslash itself escaped.
    """
    return "".join(
        f"{seq}\t{kind}\t{ts}\t\\\\x{data.hex()}\t\\\\x{digest.hex()}\n"
        for seq, kind, ts, data, digest in rows
    ).encode("ascii")


def _append_sqlite(
    driver: Any,  # noqa: ANN401 - a sqlite3 connection
    build: Callable[[Head], list[EntryRow]],
    writes: Callable[[], list[Write]] | None,
) -> list[EntryRow]:
    """Private: the SQLite batch under ``BEGIN IMMEDIATE`` (the connection is in autocommit)."""
    driver.execute("BEGIN IMMEDIATE")
    try:
        rows = build(_as_head(driver.execute(_HEAD).fetchone()))
        driver.executemany(_SQLITE_INSERT, rows)
        crash_point("ledger.append.insert")
        if writes is not None:
            for statement, values in _grouped(writes()):
                driver.executemany(statement, values)
        driver.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            driver.execute("ROLLBACK")
        raise
    return rows
