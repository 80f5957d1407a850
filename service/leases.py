"""Call leases: at most ``max_concurrent`` runs per entry (or entry and resource key) at once.

A lease is a row of ``govex_leases`` in the ledger's database (the service
schema, migration ``s0002``), so the limit holds across every process that
shares the ledger. A lease lives for a TTL (the entry's timeout plus a grace
that also covers clock skew between processes), is deleted when its run
finishes, and is reclaimed by the next acquirer once expired, so a holder that
crashed never starves the gate. The table is operational state, not evidence:
rows are deleted, and what a call did is in the ledger.

Acquiring is one transaction per scope at a time, across processes: on
PostgreSQL it first takes a transaction-scoped advisory lock on the scope (and
reads in READ COMMITTED, so it sees the previous holder's commit); on SQLite
it begins with ``BEGIN IMMEDIATE`` (the database write lock). Inside, it
deletes the scope's expired leases, counts the live ones and inserts a new
one only below the limit; otherwise it raises
:class:`~service.errors.LeaseUnavailable` with the seconds until the earliest
live lease expires.

Time is always passed in (``now``, timezone-aware); nothing here reads a clock.
A database failure raises :class:`~ledger.errors.LedgerUnavailable` (or
``LedgerStorageFull``), as a failed ledger write does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError

from ledger.sql_session import WRITE_OPTION, prepare_engine, storage_error
from service.errors import LeaseUnavailable
from service.ids import new_ulid

MAX_SCOPE_CHARS = 400  # govex_leases.scope: an entry id (up to 200) and a resource key
MAX_HOLDER_CHARS = 64  # govex_leases.holder: a call id
_SCOPE_SEPARATOR = "|"
# First key of the two-key advisory locks on PostgreSQL ("lz"): the lease namespace. The
# ledger's and the migrations' locks use one bigint key, a separate space in PostgreSQL.
_LOCK_NAMESPACE = 0x6C7A
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_US_PER_S = 1_000_000

_log = structlog.get_logger("govex.leases")

# Table description for queries; the DDL lives in service/migrations (s0002).
_metadata = MetaData()
leases_table = Table(
    "govex_leases",
    _metadata,
    Column("lease_id", String(64), primary_key=True),
    Column("scope", String(MAX_SCOPE_CHARS), nullable=False),
    Column("holder", String(MAX_HOLDER_CHARS), nullable=False),
    Column("acquired_at", BigInteger, nullable=False),  # microseconds since the epoch
    Column("expires_at", BigInteger, nullable=False),  # microseconds since the epoch
)


@dataclass(frozen=True)
class Lease:
    """One held run slot of ``scope``, for call ``holder``, until ``expires_at`` (UTC)."""

    lease_id: str
    scope: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


def lease_scope(entry_id: str, resource_key: str | None = None) -> str:
    """The scope of an entry's leases, or of one resource key of it: ``<entry>|<key>``.

    Raises ``ValueError`` for an empty entry id or resource key, or an entry
    id holding the separator (the scope could then not be read back).
    """
    if not entry_id or _SCOPE_SEPARATOR in entry_id:
        raise ValueError(
            f"entry id {entry_id!r} must be non-empty and free of {_SCOPE_SEPARATOR!r}"
        )
    if resource_key is None:
        return entry_id
    if not resource_key:
        raise ValueError(f"resource key of entry {entry_id!r} must be non-empty (or None)")
    return f"{entry_id}{_SCOPE_SEPARATOR}{resource_key}"


class LeaseGate:
    """Leases in the ``govex_leases`` table of ``engine`` (the ledger's, migrated to head).

    Installs the ledger's dialect hooks on ``engine`` (idempotent), so give it
    the ledger store's engine or a fresh one. Safe to share between threads.
    """

    def __init__(self, engine: Engine) -> None:
        prepare_engine(engine)
        # SQLite: BEGIN IMMEDIATE (see ledger.sql_session). PostgreSQL: each statement after
        # the advisory lock must see the previous holder's commit, whatever the engine default.
        options: dict[str, object] = {WRITE_OPTION: True}
        if engine.dialect.name == "postgresql":
            options["isolation_level"] = "READ COMMITTED"
        self._writer = engine.execution_options(**options)
        self._reader = engine  # plain reads: no write lock (SQLite) for a dry run's check

    def acquire(
        self,
        scope: str,
        holder: str,
        *,
        max_concurrent: int,
        ttl: timedelta,
        now: datetime,
    ) -> Lease:
        """A new lease of ``scope`` for ``holder``, valid from ``now`` for ``ttl``.

        Reclaims the scope's leases that expired at or before ``now`` (committed
        even when the gate is full). Raises :class:`LeaseUnavailable` when
        ``max_concurrent`` live leases are held; ``ValueError`` for a limit
        below 1, a TTL that is not positive, a naive ``now`` or an empty or
        over-long scope or holder.
        """
        _check_text("scope", scope, MAX_SCOPE_CHARS)
        _check_text("holder", holder, MAX_HOLDER_CHARS)
        if max_concurrent < 1:
            raise ValueError(
                f"max_concurrent of {scope!r} must be at least 1, not {max_concurrent}"
            )
        if ttl <= timedelta(0):
            raise ValueError(f"lease TTL of {scope!r} must be positive, not {ttl}")
        now_us = _micros(now)
        lease = Lease(
            lease_id=new_ulid(now),
            scope=scope,
            holder=holder,
            acquired_at=_datetime(now_us),
            expires_at=_datetime(now_us + ttl // _MICROSECOND),
        )
        try:
            with self._writer.begin() as conn:
                refusal = self._take(conn, lease, max_concurrent, now_us)
        except DBAPIError as exc:
            raise storage_error(exc, "acquire a lease") from exc
        if refusal is not None:  # raised after the commit: the reclaim stays done
            raise refusal
        return lease

    def check(self, scope: str, *, max_concurrent: int, now: datetime) -> LeaseUnavailable | None:
        """Whether a lease of ``scope`` could be taken at ``now``, without taking one (dry runs).

        Read-only: expired leases count as free but are left for the next
        acquirer to reclaim. Returns the refusal :meth:`acquire` would raise, or None.
        """
        _check_text("scope", scope, MAX_SCOPE_CHARS)
        now_us = _micros(now)
        try:
            with self._reader.connect() as conn:
                return _refusal(conn, scope, max_concurrent, now_us)
        except DBAPIError as exc:
            raise storage_error(exc, "check a lease") from exc

    def _take(
        self, conn: Connection, lease: Lease, max_concurrent: int, now_us: int
    ) -> LeaseUnavailable | None:
        """Private: inside the acquire transaction, insert ``lease`` or say why not."""
        table, scope = leases_table, lease.scope
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:scope))"),
                {"namespace": _LOCK_NAMESPACE, "scope": scope},
            )
        conn.execute(delete(table).where(table.c.scope == scope, table.c.expires_at <= now_us))
        refusal = _refusal(conn, scope, max_concurrent, now_us)
        if refusal is not None:
            return refusal
        conn.execute(
            insert(table).values(
                lease_id=lease.lease_id,
                scope=scope,
                holder=lease.holder,
                acquired_at=_micros(lease.acquired_at),
                expires_at=_micros(lease.expires_at),
            )
        )
        return None

    def release(self, lease: Lease) -> bool:
        """Delete ``lease``; False when it was no longer there (reclaimed, or released before).

        Never raises for a missing lease: a run that outlived its TTL finishes
        normally, and the False tells its caller the slot was already reused.
        """
        statement = delete(leases_table).where(leases_table.c.lease_id == lease.lease_id)
        try:
            with self._writer.begin() as conn:
                deleted = conn.execute(statement).rowcount
        except DBAPIError as exc:
            raise storage_error(exc, "release a lease") from exc
        return deleted == 1

    def renew(self, lease: Lease, *, ttl: timedelta, now: datetime) -> Lease | None:
        """``lease`` extended to ``now + ttl``; None when it was reclaimed or released.

        A lease past its expiry that no acquirer has reclaimed yet is still
        counted by every acquirer, so renewing it cannot exceed the limit.
        """
        if ttl <= timedelta(0):
            raise ValueError(f"lease TTL of {lease.scope!r} must be positive, not {ttl}")
        expires_us = _micros(now) + ttl // _MICROSECOND
        statement = (
            update(leases_table)
            .where(leases_table.c.lease_id == lease.lease_id)
            .values(expires_at=expires_us)
        )
        try:
            with self._writer.begin() as conn:
                updated = conn.execute(statement).rowcount
        except DBAPIError as exc:
            raise storage_error(exc, "renew a lease") from exc
        if updated != 1:
            return None
        return Lease(
            lease.lease_id, lease.scope, lease.holder, lease.acquired_at, _datetime(expires_us)
        )


@contextmanager
def holding(
    gate: LeaseGate,
    scope: str,
    holder: str,
    *,
    max_concurrent: int,
    ttl: timedelta,
    now: datetime,
) -> Iterator[Lease]:
    """Hold a lease of ``scope`` for the ``with`` body; released on exit, exceptions included.

    Raises what :meth:`LeaseGate.acquire` raises, before the body runs. A lease
    reclaimed before the body finished is logged (``lease_reclaimed_before_release``).
    """
    lease = gate.acquire(scope, holder, max_concurrent=max_concurrent, ttl=ttl, now=now)
    try:
        yield lease
    finally:
        if not gate.release(lease):
            _log.warning(
                "lease_reclaimed_before_release",
                scope=lease.scope,
                holder=lease.holder,
                lease_id=lease.lease_id,
                expires_at=lease.expires_at.isoformat(),
            )


def _refusal(
    conn: Connection, scope: str, max_concurrent: int, now_us: int
) -> LeaseUnavailable | None:
    """Private: the refusal when ``max_concurrent`` leases of ``scope`` are live at ``now_us``.

    Retry-After is the whole seconds (at least 1) until the earliest live lease expires.
    """
    table = leases_table
    held, earliest = conn.execute(
        select(func.count(), func.min(table.c.expires_at)).where(
            table.c.scope == scope, table.c.expires_at > now_us
        )
    ).one()
    if held < max_concurrent:
        return None
    retry_after_s = max(1, -(-(int(earliest) - now_us) // _US_PER_S))
    return LeaseUnavailable(scope, max_concurrent, retry_after_s, held=int(held))


def _check_text(name: str, value: str, limit: int) -> None:
    """Private: refuse an empty value or one longer than its column."""
    if not value or len(value) > limit:
        raise ValueError(f"lease {name} must have 1 to {limit} characters, not {len(value)}")


def _micros(moment: datetime) -> int:
    """Private: ``moment`` as integer microseconds since the Unix epoch; it must be aware."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"lease times must be timezone-aware, not {moment.isoformat()}")
    return (moment - _EPOCH) // _MICROSECOND


def _datetime(micros: int) -> datetime:
    """Private: the UTC datetime of ``micros`` since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)
