"""An index of calls for lookups by id: state, verdict, ledger seqs and packet.

The ledger is the evidence; this table is a convenience that can be rebuilt
from it, so it may be updated in place (the ledger never is). Its DDL is the
alembic schema :data:`SERVICE_SCHEMA` (``service/migrations``), brought to
head at start-up with :func:`open_call_index`, or by ``govex db upgrade`` as
the database owner. A write the database refuses raises
:class:`~ledger.errors.LedgerUnavailable` (or ``LedgerStorageFull``), as a
failed append does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from ledger.companion import Companion
from ledger.migrate import Schema, upgrade
from ledger.sql_session import WRITE_OPTION, storage_error

if TYPE_CHECKING:
    from ledger.entry import Entry

SERVICE_SCHEMA = Schema(
    name="service",
    scripts=Path(__file__).parent / "migrations",
    version_table="govex_service_version",
    tables=("govex_calls", "govex_leases", "govex_approvals", "govex_idempotency"),
)
"""The service's own tables (the call index, leases, approvals), migrated like the ledger's."""

# Table description for queries; the DDL lives in service/migrations.
_metadata = MetaData()
calls_table = Table(
    "govex_calls",
    _metadata,
    Column("call_id", String(64), primary_key=True),
    Column("entry_id", String(200), nullable=False),
    Column("principal", String(200), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("verdict", String(32)),
    Column("started_seq", BigInteger),
    Column("finished_seq", BigInteger),
    Column("packet_id", String(64), unique=True),
    Column("packet_seq", BigInteger),
    Column("manifest_sha256", String(64)),
    Column("manifest_blake3", String(64)),
    Column("rows", BigInteger),
    Column("bytes", BigInteger),
    Column("created_at", String(40), nullable=False),  # RFC 3339, as in the ledger
    Column("finished_at", String(40)),
    Column("deadline_at", String(40)),  # when a started call must have ended (s0004)
    Column("cancel_requested_at", String(40)),  # DELETE /v1/calls/{id} asked to stop it
    Column("claim_verdict", String(32)),  # the entry's claim, judged by this call
    Column("claim_reason", String(32)),
)


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    entry_id: str
    principal: str
    mode: str
    state: str
    verdict: str | None
    started_seq: int | None
    finished_seq: int | None
    packet_id: str | None
    packet_seq: int | None
    manifest_sha256: str | None
    manifest_blake3: str | None
    rows: int | None
    bytes: int | None
    created_at: str
    finished_at: str | None
    deadline_at: str | None = None
    cancel_requested_at: str | None = None
    claim_verdict: str | None = None
    claim_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.state in {"completed", "failed"}


@dataclass(frozen=True)
class CallQuery:
    """Filters of :meth:`CallIndex.search`; ``before`` is the paging cursor (a call id)."""

    entry: str | None = None
    principal: str | None = None
    verdict: str | None = None
    state: str | None = None
    since: str | None = None  # FORMATS time: created at or after
    before: str | None = None
    limit: int = 50


# Built once: each call's insert and updates reuse SQLAlchemy's compiled statements.
_CALL_ID_PARAM = "call_id_"
_INSERT = insert(calls_table)
_UPDATE = update(calls_table).where(calls_table.c.call_id == bindparam(_CALL_ID_PARAM))


SeqColumns = Mapping[str, int]
"""Columns that take the seq of an entry of the append they ride: column -> entry's index."""


@lru_cache(maxsize=32)
def _insert_sql(columns: tuple[str, ...]) -> str:
    """The INSERT of ``columns``, with ``:name`` parameters (SQLAlchemy's default form)."""
    return str(_INSERT.compile(column_keys=list(columns)))


@lru_cache(maxsize=32)
def _update_sql(columns: tuple[str, ...]) -> str:
    """The UPDATE of ``columns`` by call id, with ``:name`` parameters."""
    return str(_UPDATE.compile(column_keys=list(columns)))


def _known(columns: Iterable[str]) -> tuple[str, ...]:
    """``columns`` checked against the table: a companion's SQL is built from these names."""
    names = tuple(columns)
    unknown = [name for name in names if name not in calls_table.c]
    if unknown:
        raise ValueError(f"not columns of govex_calls: {', '.join(unknown)}")
    return names


def _with_seqs(
    values: Mapping[str, Any], seqs: SeqColumns
) -> Callable[[Sequence[Entry]], Mapping[str, Any]]:
    def values_of(entries: Sequence[Entry]) -> Mapping[str, Any]:
        return {**values, **{column: entries[index].seq for column, index in seqs.items()}}

    return values_of


class CallIndex:
    """Calls by id and packets by id, in the ledger's database (see :func:`open_call_index`).

    A call's row is written with the ledger entries it follows, as their companion
    (:meth:`insert_with`, :meth:`update_with`; :mod:`ledger.companion`): one commit
    for both, and never one without the other.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Writes take the write lock at BEGIN on SQLite, as ledger appends do.
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def insert(self, **values: Any) -> None:  # noqa: ANN401 - column values
        self._write(_INSERT, values)

    def update(self, call_id: str, **values: Any) -> None:  # noqa: ANN401 - column values
        # The SET clause follows the parameters' names; the compiled form is cached per set.
        self._write(_UPDATE, {_CALL_ID_PARAM: call_id, **values})

    @staticmethod
    def insert_with(values: Mapping[str, Any], seqs: SeqColumns) -> Companion:
        """A new row of ``values``, written with the append it rides; ``seqs`` from its entries."""
        columns = _known((*values, *seqs))
        return Companion(_insert_sql(columns), _with_seqs(values, seqs))

    @staticmethod
    def update_with(call_id: str, values: Mapping[str, Any], seqs: SeqColumns) -> Companion:
        """:meth:`update` of ``call_id``'s row, written with the append it rides."""
        columns = _known((*values, *seqs))
        return Companion(
            _update_sql(columns), _with_seqs({**values, _CALL_ID_PARAM: call_id}, seqs)
        )

    def progress(self, call_id: str, *, rows: int, size: int) -> None:
        """Rows and bytes a ``running`` call has written so far (a finished call is left as is)."""
        table = calls_table
        self._write(
            update(table)
            .where(table.c.call_id == call_id, table.c.state == "running")
            .values(rows=rows, bytes=size)
        )

    def _write(self, statement: Any, values: Mapping[str, Any] | None = None) -> None:  # noqa: ANN401 - an insert or update
        try:
            with self._writer.begin() as conn:
                conn.execute(statement, values)
        except DBAPIError as exc:
            raise storage_error(exc, "call index") from exc

    def get(self, call_id: str) -> CallRecord | None:
        return self._one(calls_table.c.call_id == call_id)

    def by_packet(self, packet_id: str) -> CallRecord | None:
        return self._one(calls_table.c.packet_id == packet_id)

    def search(self, query: CallQuery) -> list[CallRecord]:
        """Calls matching ``query``, newest first (call ids are time-ordered ULIDs)."""
        table = calls_table
        conditions = [
            condition
            for condition in (
                None if query.entry is None else table.c.entry_id == query.entry,
                None if query.principal is None else table.c.principal == query.principal,
                None if query.verdict is None else table.c.verdict == query.verdict,
                None if query.state is None else table.c.state == query.state,
                None if query.since is None else table.c.created_at >= query.since,
                None if query.before is None else table.c.call_id < query.before,
            )
            if condition is not None
        ]
        statement = (
            select(table).where(*conditions).order_by(table.c.call_id.desc()).limit(query.limit)
        )
        with self._engine.connect() as conn:
            return [CallRecord(**row) for row in conn.execute(statement).mappings()]

    def start_running(self, call_id: str, deadline_at: str) -> bool:
        """``created`` -> ``running`` with its run deadline; False when it was not ``created``.

        Not ``created`` any more: a worker finished it as interrupted, so it must not run.
        """
        table = calls_table
        statement = (
            update(table)
            .where(table.c.call_id == call_id, table.c.state == "created")
            .values(state="running", deadline_at=deadline_at)
        )
        try:
            with self._writer.begin() as conn:
                return conn.execute(statement).rowcount == 1
        except DBAPIError as exc:
            raise storage_error(exc, "call index") from exc

    def claim_unfinished(self, call_id: str) -> bool:
        """Mark a ``created`` or ``running`` call ``failed``; False when it was not (any more)."""
        table = calls_table
        statement = (
            update(table)
            .where(table.c.call_id == call_id, table.c.state.in_(("created", "running")))
            .values(state="failed")
        )
        try:
            with self._writer.begin() as conn:
                return conn.execute(statement).rowcount == 1
        except DBAPIError as exc:
            raise storage_error(exc, "call index") from exc

    def cancel_requested(self, call_ids: Iterable[str]) -> set[str]:
        """Which of ``call_ids`` a cancel was requested for (by any worker)."""
        ids = list(call_ids)
        if not ids:
            return set()
        table = calls_table
        statement = select(table.c.call_id).where(
            table.c.call_id.in_(ids), table.c.cancel_requested_at.is_not(None)
        )
        with self._engine.connect() as conn:
            return {row[0] for row in conn.execute(statement)}

    def unfinished_past(self, moment: str) -> list[CallRecord]:
        """Calls still ``created`` or ``running`` whose deadline is before ``moment``."""
        table = calls_table
        statement = select(table).where(
            table.c.state.in_(("created", "running")), table.c.deadline_at < moment
        )
        with self._engine.connect() as conn:
            return [CallRecord(**row) for row in conn.execute(statement).mappings()]

    def _one(self, condition: Any) -> CallRecord | None:  # noqa: ANN401 - a SQLAlchemy clause
        with self._engine.connect() as conn:
            row = conn.execute(select(calls_table).where(condition)).mappings().first()
        return CallRecord(**row) if row else None


def open_call_index(engine: Engine) -> CallIndex:
    """The call index on ``engine``, after migrating :data:`SERVICE_SCHEMA` to head.

    At head this only reads the version table, so a service role without DDL
    rights may start; raises :class:`~ledger.errors.LedgerUnavailable` when the
    database refuses.
    """
    try:
        upgrade(engine.execution_options(**{WRITE_OPTION: True}), SERVICE_SCHEMA)
    except DBAPIError as exc:
        raise storage_error(exc, "migrate the call index") from exc
    return CallIndex(engine)
