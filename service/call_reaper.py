"""Calls left ``created`` or ``running`` by a process that is gone are finished, not forgotten.

A run cannot outlive its deadline (its timeout, plus its lease grace: the runners stop
it at the timeout), so a call still unfinished in the index past that deadline belongs
to a worker that crashed or was killed. Each is claimed in the index (one worker wins),
then finished in the ledger: ``call.finished`` with ``error_running`` and "interrupted".
Its lease, if any, expires on its own (``service.leases``). Runs at start-up and then
periodically in every worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ledger.entry import format_ts, parse_ts
from service.call_recovery import settle_from_ledger
from service.verdicts import Verdict

if TYPE_CHECKING:
    from service.runtime import Runtime

_log = structlog.get_logger("govex.calls")
INTERRUPTED = "interrupted: the process running it ended before the call did"


def reap_interrupted(runtime: Runtime) -> list[str]:
    """Finish every call past its deadline that nobody finished; returns their ids."""
    now = runtime.clock()
    reaped = []
    for record in runtime.calls.unfinished_past(format_ts(now)):
        if not runtime.calls.claim_unfinished(record.call_id):
            continue  # another worker finished it meanwhile
        if settle_from_ledger(runtime, record):
            continue  # its process died after call.finished: the ledger says how it ended
        started = parse_ts(record.created_at)
        finished = runtime.ledger.append(
            "call.finished",
            {
                "call_id": record.call_id,
                "verdict": Verdict.error_running.value,
                "exit_code": Verdict.error_running.exit_code,
                "result_digest": None,
                "rows": 0,
                "bytes": 0,
                "duration_ms": max(0, int((now - started).total_seconds() * 1000)),
                "complete": None,
                "error": INTERRUPTED,
            },
            now,
        )
        runtime.calls.update(
            record.call_id,
            verdict=Verdict.error_running.value,
            finished_seq=finished.seq,
            finished_at=format_ts(now),
        )
        _log.warning("call.interrupted", call_id=record.call_id, finished_seq=finished.seq)
        reaped.append(record.call_id)
    return reaped
