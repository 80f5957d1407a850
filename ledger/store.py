"""The ledger's SQL store (I/O): append-only rows of exact entry bytes.

One table, ``ledger_entries(seq, kind, ts, leaf_input, leaf_hash)``, through
SQLAlchemy Core. The database itself refuses UPDATE and DELETE (triggers that
raise ``govex ledger is append-only``), not only this code.

Order is decided inside the database, never in process memory: ``append``
reads the head and inserts its successor in one write transaction that holds
the database's write lock from its first statement. On SQLite that is
``BEGIN IMMEDIATE`` (emitted by the engine hooks in :func:`_install_sqlite_hooks`);
read-only work uses a plain deferred ``BEGIN`` and, in WAL mode, never blocks
an append. With ``synchronous=FULL`` an appended entry is durable once
``append`` returns. Dialect-specific pieces are the two ``_sqlite_*``
functions; PostgreSQL (a locked head row and grants) slots in beside them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from pydantic import ValidationError
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)

from ledger.canonical import jcs
from ledger.entry import (
    ZERO_PREV,
    Entry,
    Kind,
    entry_from_leaf_input,
    explain,
    format_ts,
    leaf_input,
)
from ledger.errors import (
    AppendRefused,
    CanonicalizationError,
    CorruptEntry,
    EntryNotFound,
    LedgerVerifyError,
)
from ledger.merkle import leaf_hash
from ledger.verify import ChainVerifier, LedgerReport

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from datetime import datetime
    from types import TracebackType

    from sqlalchemy import Connection
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

APPEND_ONLY_MESSAGE = "govex ledger is append-only"
_WRITE = "govex_ledger_write"  # execution option: this transaction appends
_BATCH = 1000  # rows per read transaction when streaming
_BUSY_TIMEOUT_S = 60.0  # how long a writer waits for SQLite's write lock

# The table description is fixed at import and never changed; each store binds its own engine.
_metadata = MetaData()
ledger_entries = Table(
    "ledger_entries",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("ts", Text, nullable=False),
    Column("leaf_input", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
)


def _sqlite_triggers() -> tuple[str, ...]:
    """Private: SQLite DDL refusing UPDATE and DELETE (SQLite has no TRUNCATE)."""
    return tuple(
        f"CREATE TRIGGER IF NOT EXISTS ledger_entries_no_{op.lower()} "
        f"BEFORE {op} ON ledger_entries "
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
        for op in ("UPDATE", "DELETE")
    )


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
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _install_sqlite_hooks(engine: Engine) -> None:
    """Private: install the SQLite hooks on ``engine`` once."""
    if not event.contains(engine, "connect", _sqlite_on_connect):
        event.listen(engine, "connect", _sqlite_on_connect)
    if not event.contains(engine, "begin", _sqlite_on_begin):
        event.listen(engine, "begin", _sqlite_on_begin)


class LedgerStore:
    """An append-only ledger in one SQL database.

    ``LedgerStore(engine)`` wraps an engine (for SQLite it installs the
    locking hooks, so give it a fresh engine that no connection was taken
    from yet); :meth:`open` builds the engine from a URL and creates the
    schema. Safe to share between threads; several processes may each open
    their own store on the same database.
    """

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name == "sqlite":
            _install_sqlite_hooks(engine)
        self._engine = engine
        self._writer = engine.execution_options(**{_WRITE: True})

    @classmethod
    def open(cls, url: str) -> Self:
        """Open (creating when missing, idempotently) the ledger at SQLAlchemy ``url``."""
        store = cls(create_engine(url))
        store.create_schema()
        return store

    @property
    def engine(self) -> Engine:
        return self._engine

    def create_schema(self) -> None:
        """Create the table and its append-only triggers when missing (under the write lock)."""
        with self._writer.begin() as conn:
            _metadata.create_all(conn, checkfirst=True)
            if conn.dialect.name == "sqlite":
                for ddl in _sqlite_triggers():
                    conn.exec_driver_sql(ddl)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def append(self, kind: str, body: Mapping[str, Any], ts: datetime) -> Entry:
        """Append an entry of ``kind`` and return it as stored; durable when this returns.

        Raises :class:`AppendRefused` (nothing written) for an unknown kind, a
        body its kind's model refuses, or a body value JCS cannot encode, and
        :class:`ledger.errors.InvalidTimestamp` for a naive ``ts``.
        """
        ts_text = format_ts(ts)
        try:
            model_kind = Kind(kind)
        except ValueError:
            raise AppendRefused(f"unknown ledger entry kind {kind!r}", kind=kind) from None
        try:
            draft = Entry(v=1, seq=0, ts=ts_text, kind=model_kind, prev=ZERO_PREV, body=dict(body))
            jcs(draft.body, where="body")
        except ValidationError as exc:
            raise AppendRefused(f"{kind} entry refused: {explain(exc)}", kind=kind) from exc
        except CanonicalizationError as exc:
            raise AppendRefused(f"{kind} entry refused: {exc.message}", kind=kind) from exc
        with self._writer.begin() as conn:
            head = conn.execute(
                select(ledger_entries.c.seq, ledger_entries.c.leaf_hash)
                .order_by(ledger_entries.c.seq.desc())
                .limit(1)
            ).one_or_none()
            if head is None:
                seq, prev = 0, ZERO_PREV
            else:
                seq, prev = head.seq + 1, bytes(head.leaf_hash).hex()
            # seq and prev are computed here, from the locked head: no need to revalidate.
            data = leaf_input(draft.model_copy(update={"seq": seq, "prev": prev}))
            conn.execute(
                insert(ledger_entries).values(
                    seq=seq, kind=kind, ts=ts_text, leaf_input=data, leaf_hash=leaf_hash(data)
                )
            )
        return entry_from_leaf_input(data)

    def size(self) -> int:
        """Return the number of entries: one past the highest stored seq."""
        with self._engine.connect() as conn:
            highest = conn.execute(select(func.max(ledger_entries.c.seq))).scalar_one()
        return 0 if highest is None else int(highest) + 1

    def _rows(self, start: int, stop: int) -> Iterator[tuple[int, bytes, bytes]]:
        """Private: ``(seq, leaf_input, leaf_hash)`` of stored rows in ``[start, stop)``, by seq.

        Streams in batches, one short read transaction each, so neither memory
        nor a held transaction grows with the ledger. Missing rows are skipped:
        callers that care compare the seq column.
        """
        cursor = start
        while cursor < stop:
            with self._engine.connect() as conn:
                batch = conn.execute(
                    select(
                        ledger_entries.c.seq,
                        ledger_entries.c.leaf_input,
                        ledger_entries.c.leaf_hash,
                    )
                    .where(ledger_entries.c.seq >= cursor, ledger_entries.c.seq < stop)
                    .order_by(ledger_entries.c.seq)
                    .limit(_BATCH)
                ).all()
            if not batch:
                return
            for row in batch:
                yield int(row.seq), bytes(row.leaf_input), bytes(row.leaf_hash)
            cursor = int(batch[-1].seq) + 1

    def iter_leaf_inputs(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Stream the stored bytes of entries ``[start, stop)`` (``stop`` defaults to the size)."""
        end = self.size() if stop is None else stop
        for _, data, _ in self._rows(start, end):
            yield data

    def get(self, seq: int) -> Entry:
        """Return the entry at ``seq``; raise :class:`EntryNotFound` or :class:`CorruptEntry`."""
        with self._engine.connect() as conn:
            data = conn.execute(
                select(ledger_entries.c.leaf_input).where(ledger_entries.c.seq == seq)
            ).scalar_one_or_none()
        if data is None:
            raise EntryNotFound(seq)
        return _parse(seq, bytes(data))

    def list_entries(self, start: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries from ``start`` on, in seq order."""
        if start < 0 or limit < 0:
            raise ValueError(f"start and limit must not be negative, got {start} and {limit}")
        return [_parse(seq, data) for seq, data, _ in self._rows(start, start + limit)]

    def verify(self) -> LedgerReport:
        """Verify every stored entry as ``verify_entries`` does, plus the stored columns.

        Beyond the checks of :mod:`ledger.verify`, each row's ``seq`` column
        must be its position (check ``seq``: a missing row) and its stored
        ``leaf_hash`` must hash its bytes (check ``leaf_hash``), so a row
        edited behind the triggers' back is named at its own seq. Raises
        :class:`LedgerVerifyError` at the first bad row.
        """
        verifier = ChainVerifier()
        for seq, data, stored_hash in self._rows(0, self.size()):
            position = verifier.size
            if seq != position:
                raise LedgerVerifyError(
                    seq=position, check="seq", detail=f"no row at seq {position}; next is {seq}"
                )
            computed = leaf_hash(data)
            if stored_hash != computed:
                raise LedgerVerifyError(
                    seq=position,
                    check="leaf_hash",
                    detail=(
                        f"stored leaf_hash {stored_hash.hex()} but the stored bytes hash to "
                        f"{computed.hex()}: the row was changed after it was appended"
                    ),
                )
            verifier.feed(data)
        return verifier.report()


def _parse(seq: int, data: bytes) -> Entry:
    """Private: stored bytes to an entry, or :class:`CorruptEntry` at ``seq``."""
    try:
        return entry_from_leaf_input(data)
    except ValueError as exc:
        raise CorruptEntry(seq=seq, detail=str(exc)) from exc
