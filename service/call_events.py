"""A call's Server-Sent Events: its state and progress as they change, then ``end``.

The source is the call index, polled, so the events are the same whichever worker runs
the call. Each change of state, verdict, rows or bytes is one ``state`` event whose data
is the call's status (as ``GET /v1/calls/{id}``); a comment keeps idle connections
open; once the call has ended, one last ``end`` event closes the stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from service.api_models import CallStatus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from service.runtime import Runtime

POLL_S = 0.25
KEEPALIVE_S = 15.0


def sse(event: str, data: str) -> str:
    """One SSE message (``data`` is one line of JSON)."""
    return f"event: {event}\ndata: {data}\n\n"


async def call_events(
    runtime: Runtime, call_id: str, *, poll_s: float = POLL_S
) -> AsyncIterator[str]:
    """The events of ``call_id`` until it has ended (the caller checked it may read it)."""
    last: tuple[object, ...] | None = None
    quiet_since = time.monotonic()
    while True:
        record = await run_in_threadpool(runtime.calls.get, call_id)
        if record is None:  # pragma: no cover - the route found it before streaming
            return
        seen = (record.state, record.verdict, record.rows, record.bytes, record.finished_seq)
        if seen != last:
            last = seen
            quiet_since = time.monotonic()
            yield sse("state", CallStatus.of(record).model_dump_json())
        if record.done:
            yield sse("end", json.dumps({"call_id": call_id, "state": record.state}))
            return
        if time.monotonic() - quiet_since >= KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll_s)
