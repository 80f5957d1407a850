"""The approvals index (``govex_approvals``, migration ``s0003``): insert and find, never update.

Each row indexes one ``approval.granted`` ledger entry (its ``seq``); the ledger is the
evidence. The service role gets INSERT and SELECT only on this table (``govex db
grants``): an approval is never changed or withdrawn in place, it lapses. A database
failure raises :class:`~ledger.errors.LedgerUnavailable` (or ``LedgerStorageFull``), as a
failed ledger write does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, insert, select
from sqlalchemy.exc import DBAPIError

from ledger.entry import format_ts, parse_ts
from ledger.sql_session import WRITE_OPTION, storage_error
from service.approvals import ApprovalRecord

MAX_LISTED = 1000

# Table description for queries; the DDL lives in service/migrations (s0003).
_metadata = MetaData()
approvals_table = Table(
    "govex_approvals",
    _metadata,
    Column("approval_id", String(64), primary_key=True),
    Column("entry_id", String(200), nullable=False),
    Column("entry_digest", String(64), nullable=False),  # sha256 hex
    Column("inputs_digest", String(64), nullable=False),  # sha256 hex
    Column("requester", String(200), nullable=False),
    Column("requester_tenant", String(200), nullable=False),
    Column("tenant_relation", String(16), nullable=False),
    Column("approver", String(200), nullable=False),
    Column("approved_at", String(40), nullable=False),  # FORMATS time text
    Column("expires_at", String(40), nullable=False),
    Column("seq", BigInteger, nullable=False),
)


class ApprovalIndex:
    """Approvals in the ledger's database (the service schema, migrated at start-up)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def insert(self, record: ApprovalRecord) -> None:
        """Index ``record`` (after its ledger entry is durable)."""
        values: dict[str, Any] = {
            **record.__dict__,
            "approved_at": format_ts(record.approved_at),
            "expires_at": format_ts(record.expires_at),
        }
        try:
            with self._writer.begin() as conn:
                conn.execute(insert(approvals_table).values(**values))
        except DBAPIError as exc:
            raise storage_error(exc, "approval index") from exc

    def find(self, entry_id: str, requester: str, inputs_digest: str) -> list[ApprovalRecord]:
        """Every approval of ``entry_id`` for ``requester`` with ``inputs_digest`` (sha256 hex)."""
        table = approvals_table
        return self._select(
            select(table).where(
                table.c.entry_id == entry_id,
                table.c.requester == requester,
                table.c.inputs_digest == inputs_digest,
            )
        )

    def latest(self, entry_id: str | None = None, limit: int = MAX_LISTED) -> list[ApprovalRecord]:
        """The latest ``limit`` approvals (of ``entry_id`` when given), newest first."""
        table = approvals_table
        statement = select(table).order_by(table.c.seq.desc()).limit(min(limit, MAX_LISTED))
        if entry_id is not None:
            statement = statement.where(table.c.entry_id == entry_id)
        return self._select(statement)

    def _select(self, statement: Any) -> list[ApprovalRecord]:  # noqa: ANN401 - a select
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(statement).mappings().all()
        except DBAPIError as exc:
            raise storage_error(exc, "read approvals") from exc
        return [
            ApprovalRecord(
                **{
                    **row,
                    "approved_at": parse_ts(row["approved_at"]),
                    "expires_at": parse_ts(row["expires_at"]),
                }
            )
            for row in rows
        ]
