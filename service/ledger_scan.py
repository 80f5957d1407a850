"""Ledger entries of some kinds after a seq, streamed in seq order (I/O, reads only).

Start-up recovery (:mod:`service.packets.recovery`, :mod:`service.call_recovery`) asks the
ledger what became durable before a crash: which packets were issued, which calls were
finished. The store has no index on ``kind``; each query reads forward from a seq the
caller knows to be early enough (a call's ``call.started``), one short read transaction
per batch, so neither memory nor a held transaction grows with the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from ledger.entry import Entry, entry_from_leaf_input
from ledger.store import ledger_entries

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

    from sqlalchemy import Engine

_BATCH = 500


def entries_after(engine: Engine, kinds: Collection[str], after: int) -> Iterator[Entry]:
    """Every entry of one of ``kinds`` with a seq above ``after``, in seq order."""
    table = ledger_entries
    while True:
        query = (
            select(table.c.seq, table.c.leaf_input)
            .where(table.c.kind.in_(list(kinds)), table.c.seq > after)
            .order_by(table.c.seq)
            .limit(_BATCH)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            yield entry_from_leaf_input(bytes(row.leaf_input))
        if len(rows) < _BATCH:
            return
        after = int(rows[-1].seq)
