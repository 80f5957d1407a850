"""``POST /v1/calls`` as an execution: accept now, answer with the result or with ``202``.

Every check runs before the answer (a refusal is the same 4xx as ever). An accepted call
runs on the service's :class:`~service.call_executor.CallExecutor`; the request waits up to
``wait_s`` for it (``GOVEX_CALL_WAIT_S``, or less with ``Prefer: wait=N``, none with
``Prefer: respond-async``) and gets the result, or the call's status to follow at
``/v1/calls/{id}``. With an ``Idempotency-Key`` (:mod:`service.idempotency`) a retried
request gets the call it started, whatever state it is in, instead of a second call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from starlette.concurrency import run_in_threadpool

from ledger.entry import format_ts
from service.calls import AcceptedCall, CallResult, accept
from service.errors import NotFound
from service.idempotency import IdempotencyKeys, IdempotentRequest

if TYPE_CHECKING:
    from concurrent.futures import Future

    from service.call_executor import CallExecutor, PendingAccept, RunningCall
    from service.call_index import CallRecord
    from service.contract import CallRequest
    from service.identity import Principal
    from service.runtime import Runtime


@dataclass(frozen=True)
class Submitted:
    """What the caller learns now: the result when the call ended in time, else its record."""

    call_id: str
    result: CallResult | None = None  # ended within the wait, or a dry run
    record: CallRecord | None = None  # still going (or a replay): its index row
    replayed: bool = False  # an Idempotency-Key named an earlier call


class _BoundElsewhere(Exception):
    def __init__(self, call_id: str) -> None:
        super().__init__(call_id)
        self.call_id = call_id


async def submit(
    runtime: Runtime,
    executor: CallExecutor,
    principal: Principal,
    request: CallRequest,
    *,
    request_id: str | None,
    wait_s: float,
    idempotency_key: str | None = None,
) -> Submitted:
    """Accept ``request`` and wait up to ``wait_s`` for its result, on the event loop.

    With a wait to make, a thread of the executor accepts the call and runs it next (no
    hand-off between them; the call is indexed ``running`` at once). When no thread took
    it within the wait (the executor is busy with long calls), or with no wait at all
    (``respond-async``), it is accepted on the event loop's thread pool instead (indexed
    ``created``) and queued: a busy executor never delays the answer past the wait.

    Raises what :func:`service.calls.accept` raises (every refusal, ledgered), and
    ``InvalidIdempotencyKey`` / ``IdempotencyKeyReused`` for a bad or reused key.
    """
    keyed = (
        None
        if idempotency_key is None or request.mode == "dry_run"
        else IdempotentRequest.of(principal.id, idempotency_key, request)
    )

    def accept_to_run_now() -> AcceptedCall | Submitted | _Replay:
        return _accept(runtime, principal, request, request_id, keyed, run_now=True)

    def accept_to_queue() -> AcceptedCall | Submitted | _Replay:
        return _accept(runtime, principal, request, request_id, keyed, run_now=False)

    outcome: RunningCall | Submitted | _Replay | None = None
    started = time.monotonic()
    if wait_s > 0:
        # mypy solves the executor's type variable as object from this union: named here.
        pending = cast(
            "PendingAccept[Submitted | _Replay]", executor.accept_then_run(accept_to_run_now)
        )
        handoff = asyncio.wrap_future(pending.handoff)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(handoff), wait_s)
        except TimeoutError:
            if not pending.withdraw():  # a thread took it meanwhile: it is accepting now
                outcome = await handoff
    if outcome is None:
        queued = await run_in_threadpool(accept_to_queue)
        outcome = executor.submit(queued) if isinstance(queued, AcceptedCall) else queued
    if isinstance(outcome, _Replay):
        return await run_in_threadpool(_replay, runtime, executor, outcome.call_id, wait_s)
    if isinstance(outcome, Submitted):
        return outcome
    result = await _result_within(outcome.future, wait_s - (time.monotonic() - started))
    if result is None:
        record = await run_in_threadpool(runtime.calls.get, outcome.call_id)
        return Submitted(outcome.call_id, record=record)
    return Submitted(outcome.call_id, result=result)


async def _result_within(future: Future[CallResult], wait_s: float) -> CallResult | None:
    """The call's result if it ends within ``wait_s``; None while it still runs.

    Giving up must not cancel ``future``: a queued call's future is still pending, and
    cancelling it would drop the call before it ran (its ``call.started`` never finished).
    """
    if wait_s <= 0 and not future.done():
        return None
    waiting = asyncio.wrap_future(future)
    try:
        return await asyncio.wait_for(asyncio.shield(waiting), wait_s)
    except TimeoutError:
        # Its outcome is followed through the index (GET /v1/calls/{id}), not here.
        waiting.add_done_callback(_retrieved)
        return None


def _retrieved(waiting: asyncio.Future[CallResult]) -> None:
    """Private: mark an outcome nobody awaits as seen (asyncio logs unseen exceptions)."""
    if not waiting.cancelled():
        waiting.exception()


@dataclass(frozen=True)
class _Replay:
    """Private: an Idempotency-Key named the call ``call_id``."""

    call_id: str


def _accept(
    runtime: Runtime,
    principal: Principal,
    request: CallRequest,
    request_id: str | None,
    keyed: IdempotentRequest | None,
    *,
    run_now: bool,
) -> AcceptedCall | Submitted | _Replay:
    """Private: the call a key names, or accept ``request`` (a dry run ends here)."""
    keys = IdempotencyKeys(runtime.ledger.engine)
    if keyed is not None:
        earlier = keys.bound_call(keyed)
        if earlier is not None:
            return _Replay(earlier)

    def bind_key(call_id: str) -> None:
        if keyed is None:
            return
        bound = keys.bind(keyed, call_id, format_ts(runtime.clock()))
        if bound != call_id:
            raise _BoundElsewhere(bound)

    try:
        accepted = accept(
            runtime,
            principal,
            request,
            request_id=request_id,
            before_start=bind_key,
            run_now=run_now,
        )
    except _BoundElsewhere as race:
        return _Replay(race.call_id)
    if isinstance(accepted, CallResult):  # a dry run
        return Submitted(accepted.call_id, result=accepted)
    return accepted


def _replay(runtime: Runtime, executor: CallExecutor, call_id: str, wait_s: float) -> Submitted:
    """The call an idempotency key started; waits for it like a first request would."""
    running = executor.get(call_id)
    if running is not None:
        running.done_within(wait_s)
    record = runtime.calls.get(call_id)
    if record is None:  # pragma: no cover - a bound call is indexed before its key is read
        raise NotFound("call", call_id)
    return Submitted(call_id, record=record, replayed=True)


def preferred_wait(prefer: str | None, default_s: float) -> tuple[float, bool]:
    """How long to wait given an RFC 7240 ``Prefer`` header, and whether respond-async applied.

    ``respond-async`` waits for nothing; ``wait=N`` waits at most ``N`` seconds (never
    longer than ``default_s``); anything else is ignored, as RFC 7240 asks.
    """
    wait_s, respond_async = default_s, False
    for preference in (prefer or "").split(","):
        item = preference.strip().lower()
        if item == "respond-async":
            respond_async = True
        elif item.startswith("wait="):
            try:
                asked = float(item.removeprefix("wait=").strip())
            except ValueError:
                continue
            if asked >= 0:
                wait_s = min(wait_s, asked)
    return (0.0 if respond_async else wait_s), respond_async
