"""Calls a crash left half-recorded: the index takes the ledger's word; orphans get an index row.

:mod:`service.calls` appends to the ledger first and writes the call index after, so a
process that dies between the two leaves the index behind the ledger:

1. ``call.started`` is durable but the call has no index row (it died before the insert).
   Nothing ran. Start-up **adopts** the call: an index row ``created`` with the deadline the
   call would have had (its timeout or lease, plus :data:`~service.calls.QUEUE_ALLOWANCE`),
   so :mod:`service.call_reaper` finishes it (``call.finished``, "interrupted") once that
   deadline passed, at start-up or in any worker's periodic run. A ``call.started`` younger
   than :data:`ORPHAN_GRACE` may belong to a live worker about to insert its row: start-up
   waits that long for it once, then adopts what is still without a row.
2. ``call.finished`` (and maybe ``packet.issued``) is durable but the index still says
   ``created`` or ``running``. Start-up **settles** it from the ledger (state, verdict,
   seqs, packet, counts, claim) and releases the call's lease, so the entry's slot is not
   held until the lease's TTL. The reaper settles the same way when it meets such a call
   (:func:`settle_from_ledger`): without it, a call would be finished twice in the ledger.

Only the ledger (the evidence) is read to decide; the index, a convenience, is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from ledger.entry import (
    CallFinishedBody,
    CallStartedBody,
    Entry,
    PacketIssuedBody,
    entry_from_leaf_input,
    format_ts,
    parse_ts,
)
from ledger.sql_session import WRITE_OPTION, storage_error
from ledger.store import ledger_entries
from service.call_index import CallRecord, calls_table
from service.calls import QUEUE_ALLOWANCE
from service.leases import leases_table
from service.ledger_scan import entries_after

if TYPE_CHECKING:
    from service.runtime import Runtime

_log = structlog.get_logger("govex.calls")
ORPHAN_GRACE = timedelta(seconds=5)
"""How old a ``call.started`` without an index row must be before start-up adopts it."""
_EVERY_UNFINISHED = "9999-12-31T23:59:59.999999Z"  # a deadline later than any real one


@dataclass(frozen=True)
class CallRecovery:
    """What start-up recovery did: call ids settled from the ledger, and adopted."""

    settled: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()


def recover_calls(runtime: Runtime, *, grace: timedelta = ORPHAN_GRACE) -> CallRecovery:
    """Settle unfinished index rows the ledger finished; adopt ``call.started`` without a row.

    Run at start-up before :func:`service.call_reaper.reap_interrupted`, which finishes
    the adopted calls past their deadline. Raises the ledger's errors when the database
    cannot be read or written.
    """
    unfinished = runtime.calls.unfinished_past(_EVERY_UNFINISHED)
    settled: list[str] = []
    if unfinished:
        after = min(-1 if r.started_seq is None else r.started_seq for r in unfinished)
        outcomes = _outcomes(runtime, {r.call_id for r in unfinished}, after)
        for call_id, (finished, issued) in outcomes.items():
            _settle(runtime, call_id, finished, issued)
            settled.append(call_id)
    adopted, wake = _adopt_orphans(runtime, grace)
    if wake is not None:
        # A live worker may be between its call.started and its index insert: give it time.
        time.sleep(max(0.0, (wake - runtime.clock()).total_seconds()))
        more, _ = _adopt_orphans(runtime, timedelta(0))
        adopted += more
    if settled or adopted:
        _log.warning("calls.recovered", settled=settled, adopted=adopted)
    return CallRecovery(tuple(settled), tuple(adopted))


def settle_from_ledger(runtime: Runtime, record: CallRecord) -> bool:
    """Copy the ledger's outcome of ``record``'s call into the index; False when it has none.

    The outcome is the call's ``call.finished`` after its ``call.started`` (and its
    ``packet.issued``, if any). The call's leases are released: a finished call holds none.
    """
    after = -1 if record.started_seq is None else record.started_seq
    outcome = _outcomes(runtime, {record.call_id}, after).get(record.call_id)
    if outcome is None:
        return False
    _settle(runtime, record.call_id, *outcome)
    return True


def _settle(runtime: Runtime, call_id: str, finished: Entry, issued: Entry | None) -> None:
    """Private: the index row of ``call_id`` as the ledger finished it; its leases released."""
    runtime.calls.update(call_id, **_index_values(finished, issued))
    _release_leases(runtime, call_id)


def _outcomes(
    runtime: Runtime, call_ids: set[str], after: int
) -> dict[str, tuple[Entry, Entry | None]]:
    """Private: the first ``call.finished`` (and ``packet.issued``) of each call after ``after``."""
    finished: dict[str, Entry] = {}
    issued: dict[str, Entry] = {}
    kinds = ("call.finished", "packet.issued")
    for entry in entries_after(runtime.ledger.engine, kinds, after):
        call_id = entry.body.get("call_id")
        if call_id not in call_ids:
            continue
        found = finished if entry.kind == "call.finished" else issued
        found.setdefault(str(call_id), entry)
    return {call_id: (entry, issued.get(call_id)) for call_id, entry in finished.items()}


def _index_values(finished: Entry, issued: Entry | None) -> dict[str, Any]:
    """Private: the index columns :func:`service.calls._finish` would have written."""
    body = CallFinishedBody.model_validate(finished.body)
    packet = None if issued is None else PacketIssuedBody.model_validate(issued.body)
    claim = body.claim or {}
    result = body.result_digest is not None
    return {
        "state": "failed" if packet is None else "completed",
        "verdict": body.verdict,
        "finished_seq": finished.seq,
        "packet_id": None if packet is None else packet.packet_id,
        "packet_seq": None if issued is None else issued.seq,
        "manifest_sha256": None if packet is None else packet.manifest_hash.sha256,
        "manifest_blake3": None if packet is None else packet.manifest_hash.blake3,
        "rows": body.rows if result else None,
        "bytes": body.bytes if result else None,
        "finished_at": finished.ts,
        "claim_verdict": claim.get("verdict"),
        "claim_reason": claim.get("reason"),
    }


def _release_leases(runtime: Runtime, call_id: str) -> None:
    """Private: delete the leases ``call_id`` holds (a lease's holder is its call id)."""
    writer = runtime.ledger.engine.execution_options(**{WRITE_OPTION: True})
    try:
        with writer.begin() as conn:
            conn.execute(delete(leases_table).where(leases_table.c.holder == call_id))
    except DBAPIError as exc:
        raise storage_error(exc, "release a recovered call's lease") from exc


def _orphans(runtime: Runtime) -> list[Entry]:
    """Private: every ``call.started`` entry that no index row names (one scan of the ledger).

    An outer join, not ``NOT EXISTS``: ``started_seq`` has no index, and SQLite builds an
    automatic one for a join but not for that subquery (300,000 entries: 0.2 s, not minutes).
    """
    table, calls = ledger_entries, calls_table
    query = (
        select(table.c.leaf_input)
        .select_from(table.outerjoin(calls, calls.c.started_seq == table.c.seq))
        .where(table.c.kind == "call.started", calls.c.call_id.is_(None))
        .order_by(table.c.seq)
    )
    with runtime.ledger.engine.connect() as conn:
        return [entry_from_leaf_input(bytes(row.leaf_input)) for row in conn.execute(query)]


def _adopt_orphans(runtime: Runtime, grace: timedelta) -> tuple[list[str], datetime | None]:
    """Private: adopt orphans older than ``grace``; also when the youngest other turns ``grace``.

    An orphan the ledger already finished (its index insert failed, and the call was
    finished as not run) gets its settled row instead.
    """
    now = runtime.clock()
    orphans = _orphans(runtime)
    if not orphans:
        return [], None
    settled = _outcomes(runtime, {str(e.body["call_id"]) for e in orphans}, orphans[0].seq - 1)
    adopted: list[str] = []
    wake: datetime | None = None
    for entry in orphans:
        started_at = parse_ts(entry.ts)
        if started_at + grace > now:
            wake = max(wake or now, started_at + grace)
            continue
        call_id = str(entry.body["call_id"])
        outcome = settled.get(call_id)
        values = _index_values(*outcome) if outcome else {"state": "created"}
        if _insert_adopted(runtime, entry, started_at, values):
            adopted.append(call_id)
    return adopted, wake


def _insert_adopted(
    runtime: Runtime, started: Entry, started_at: datetime, values: dict[str, Any]
) -> bool:
    """Private: the index row of an orphan; False when a row appeared meanwhile (a worker's)."""
    body = CallStartedBody.model_validate(started.body)
    contract = body.contract
    lease = contract.get("lease")
    deadline_ms = lease["ttl_ms"] if isinstance(lease, dict) else contract["timeout_ms"]
    deadline = started_at + timedelta(milliseconds=deadline_ms) + QUEUE_ALLOWANCE
    row = insert(calls_table).values(
        call_id=body.call_id,
        entry_id=contract["entry"]["id"],
        principal=contract["identity"]["id"],
        mode=contract["mode"],
        started_seq=started.seq,
        created_at=started.ts,
        deadline_at=format_ts(deadline),
        **values,
    )
    writer = runtime.ledger.engine.execution_options(**{WRITE_OPTION: True})
    try:
        with writer.begin() as conn:
            conn.execute(row)
    except IntegrityError:
        return False  # the call's own worker inserted it meanwhile: it is alive
    except DBAPIError as exc:
        raise storage_error(exc, "call index") from exc
    return True
