"""An index of calls for lookups by id: state, verdict, ledger seqs and packet.

The ledger is the evidence; this table is a convenience that can be rebuilt
from it, so it may be updated in place (the ledger never is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert, select, update

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
    Column("started_seq", Integer),
    Column("finished_seq", Integer),
    Column("packet_id", String(64), unique=True),
    Column("packet_seq", Integer),
    Column("manifest_sha256", String(64)),
    Column("manifest_blake3", String(64)),
    Column("rows", Integer),
    Column("bytes", Integer),
    Column("created_at", String(40), nullable=False),  # RFC 3339, as in the ledger
    Column("finished_at", String(40)),
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


class CallIndex:
    """Calls by id and packets by id, in the ledger's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        _metadata.create_all(engine)

    def insert(self, **values: Any) -> None:  # noqa: ANN401 - column values
        with self._engine.begin() as conn:
            conn.execute(insert(calls_table).values(**values))

    def update(self, call_id: str, **values: Any) -> None:  # noqa: ANN401 - column values
        with self._engine.begin() as conn:
            conn.execute(
                update(calls_table).where(calls_table.c.call_id == call_id).values(**values)
            )

    def get(self, call_id: str) -> CallRecord | None:
        return self._one(calls_table.c.call_id == call_id)

    def by_packet(self, packet_id: str) -> CallRecord | None:
        return self._one(calls_table.c.packet_id == packet_id)

    def _one(self, condition: Any) -> CallRecord | None:  # noqa: ANN401 - a SQLAlchemy clause
        with self._engine.connect() as conn:
            row = conn.execute(select(calls_table).where(condition)).mappings().first()
        return CallRecord(**row) if row else None
